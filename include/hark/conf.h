/*
 * hark: configuration as adapters see it.
 *
 * The core reads the INI file into sections of key = value entries (each
 * remembering its file and line), checks every section against a schema
 * table (unknown keys, types, required keys) and collects every error
 * before failing. Values may be `${NAME}` (environment) and `file:PATH`
 * (a systemd credential); see docs/configuration.md.
 */
#ifndef HARK_CONF_H
#define HARK_CONF_H

#include <stddef.h>
#include <stdint.h>

enum hark_conf_type {
    HARK_CT_STRING,     /* any text, expanded */
    HARK_CT_SECRET,     /* text that is never logged; re-read on SIGHUP */
    HARK_CT_INT,        /* decimal integer within [min, max] */
    HARK_CT_BOOL,       /* yes/no, true/false, on/off, 1/0 */
    HARK_CT_DURATION,   /* number with unit: ms, s, m, h, d (plain: seconds) */
    HARK_CT_SIZE,       /* number with unit: k, m, g (plain: bytes) */
};

/* One row of a schema table; the table ends with a row whose name is NULL. */
struct hark_conf_key {
    const char *name;
    enum hark_conf_type type;
    const char *def;        /* default as text, NULL for none */
    int required;
    int64_t min, max;       /* bounds for INT/DURATION/SIZE (0, 0: none) */
    const char *desc;       /* one line for docs and -t output */
};

struct hark_secret;

struct hark_conf_entry {
    char *key;
    char *raw;          /* the text as written */
    char *value;        /* expanded; for secrets "(secret)" so it never leaks */
    struct hark_secret *secret;  /* set when the schema says HARK_CT_SECRET */
    int line;
};

struct hark_section {
    char *name;         /* "server", "channel.sms-main", ... */
    const char *file;
    int line;
    struct hark_conf_entry *entries;
    size_t n;
};

/* The expanded value of key, its schema default, or NULL. */
const char *hark_section_get(const struct hark_section *sec, const char *key);

/* Typed getters; they return the schema default when the key is absent. */
int64_t hark_section_int(const struct hark_section *sec, const char *key, int64_t def);
int hark_section_bool(const struct hark_section *sec, const char *key, int def);
/* Durations in milliseconds. */
int64_t hark_section_duration_ms(const struct hark_section *sec, const char *key, int64_t def);
int64_t hark_section_size(const struct hark_section *sec, const char *key, int64_t def);

/*
 * The secret for key (NULL when not configured). The returned object lives
 * as long as the configuration; its value may change on SIGHUP.
 */
struct hark_secret *hark_section_secret(const struct hark_section *sec, const char *key);

/*
 * Copy the current value of a secret into buf (NUL-terminated). Returns its
 * length, or -1 when it does not fit or the secret is NULL. Safe from any
 * thread while another thread reloads it.
 */
int hark_secret_read(const struct hark_secret *secret, char *buf, size_t cap);

#define HARK_SECRET_MAX 1024

/*
 * Build a section from "key = value" lines, expanding values as the config
 * file does and treating the keys named in `secret_keys` (NULL-terminated,
 * may be NULL) as secrets. For tests and fuzzers; NULL on error.
 */
struct hark_section *hark_section_from_text(const char *name, const char *text,
                                            const char *const *secret_keys);
void hark_section_free(struct hark_section *sec);

/*
 * An http(s) base URL from key (def when absent), without trailing
 * slashes: a new string, or NULL with err filled (not http(s), or no
 * memory).
 */
char *hark_section_base_url(const struct hark_section *sec, const char *key, const char *def,
                            char *err, size_t err_len);

/* Parse helpers shared by the schema check and adapters. 0 or -1. */
int hark_parse_duration_ms(const char *text, int64_t *out);
int hark_parse_size(const char *text, int64_t *out);
int hark_parse_bool(const char *text, int *out);

#endif
