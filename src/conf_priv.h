/*
 * Private configuration interfaces of the core: the INI reader, value
 * expansion, error collection and the loaded configuration.
 */
#ifndef HARK_CONF_PRIV_H
#define HARK_CONF_PRIV_H

#include <stddef.h>

#include "hark/conf.h"

/* Errors collected while reading and checking a configuration. */
struct hark_conf_errors {
    char **lines;
    size_t n;
};

void hark_conf_error(struct hark_conf_errors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void hark_conf_errors_free(struct hark_conf_errors *errs);

/* A whole file: its sections in order. */
struct hark_conf {
    char *file;
    struct hark_section **sections;
    size_t n;
};

/*
 * Read INI text into conf (values raw, unexpanded). Syntax errors are
 * collected in errs; returns 0 when none was found.
 */
int hark_ini_parse(const char *file, const char *text, size_t len,
                   struct hark_conf *conf, struct hark_conf_errors *errs);

/* Read and parse a file; 0, or -1 with errors collected. */
int hark_conf_load(const char *path, struct hark_conf *conf, struct hark_conf_errors *errs);

void hark_conf_free(struct hark_conf *conf);

/* The section named name, or NULL. */
struct hark_section *hark_conf_section(const struct hark_conf *conf, const char *name);

/*
 * Expand a raw value: every ${NAME} from the environment, then a leading
 * "file:" reads that file (one trailing newline dropped). Returns a new
 * string, or NULL with why (a sentence) filled.
 */
char *hark_conf_expand(const char *raw, char *why, size_t why_len);

/*
 * Expand every entry of a section against its schema (keys may be NULL:
 * nothing is secret). Unknown keys are reported when schema is given.
 */
int hark_section_expand(struct hark_section *sec, const struct hark_conf_key *const *schemas,
                        struct hark_conf_errors *errs);

/* Typed check of one value against its schema row; NULL or a reason. */
const char *hark_conf_check_value(const struct hark_conf_key *key, const char *value);

/* Re-read every secret of the configuration (SIGHUP). Returns failures. */
int hark_conf_reload_secrets(struct hark_conf *conf);

/* Append a raw entry to a section (used by the reader and tests). */
int hark_section_add(struct hark_section *sec, const char *key, const char *raw, int line);
struct hark_section *hark_section_new(const char *name, const char *file, int line);

#endif
