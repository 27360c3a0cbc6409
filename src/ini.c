/*
 * The INI reader: [section] headers and key = value lines, with line
 * numbers kept for error messages. Comments start with ';' or '#' at the
 * beginning of a line, or after whitespace inside a value; a value in
 * double quotes is taken literally.
 *
 * We read INI ourselves rather than with Debian's libinih because its
 * packaged build gives handlers no line numbers, and errors must name the
 * file, the line and the key.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_priv.h"
#include "hark/alloc.h"

#define INI_MAX_LINE 4096
#define INI_MAX_FILE (1024 * 1024)

void hark_conf_error(struct hark_conf_errors *errs, const char *fmt, ...)
{
    va_list ap;
    char buf[512];
    char **grown;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    grown = hark_realloc(errs->lines, (errs->n + 1) * sizeof(*grown));
    if (grown == NULL) {
        return;
    }
    errs->lines = grown;
    grown[errs->n] = hark_strdup(buf);
    if (grown[errs->n] != NULL) {
        errs->n++;
    }
}

void hark_conf_errors_free(struct hark_conf_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++) {
        hark_free(errs->lines[i]);
    }
    hark_free(errs->lines);
    errs->lines = NULL;
    errs->n = 0;
}

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1])) {
        *--end = '\0';
    }
    return s;
}

/* Cut an inline comment: ';' or '#' that follows whitespace. */
static void cut_comment(char *v)
{
    for (char *p = v; *p; p++) {
        if ((*p == ';' || *p == '#') && p > v && isspace((unsigned char)p[-1])) {
            *p = '\0';
            return;
        }
    }
}

/* Unquote "..." (with \" and \\ escapes) in place; -1 when unterminated. */
static int unquote(char *v)
{
    char *out = v, *in = v + 1;

    while (*in && *in != '"') {
        if (*in == '\\' && (in[1] == '"' || in[1] == '\\')) {
            in++;
        }
        *out++ = *in++;
    }
    if (*in != '"') {
        return -1;
    }
    in++;
    while (isspace((unsigned char)*in)) {
        in++;
    }
    if (*in != '\0' && *in != ';' && *in != '#') {
        return -1;
    }
    *out = '\0';
    return 0;
}

static int valid_name(const char *s)
{
    if (*s == '\0') {
        return 0;
    }
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.') {
            return 0;
        }
    }
    return 1;
}

struct hark_section *hark_section_new(const char *name, const char *file, int line)
{
    struct hark_section *sec = hark_calloc(1, sizeof(*sec));

    if (sec == NULL) {
        return NULL;
    }
    sec->name = hark_strdup(name);
    if (sec->name == NULL) {
        hark_free(sec);
        return NULL;
    }
    sec->file = file;
    sec->line = line;
    return sec;
}

int hark_section_add(struct hark_section *sec, const char *key, const char *raw, int line)
{
    struct hark_conf_entry *grown, *e;

    grown = hark_realloc(sec->entries, (sec->n + 1) * sizeof(*grown));
    if (grown == NULL) {
        return -1;
    }
    sec->entries = grown;
    e = &grown[sec->n];
    memset(e, 0, sizeof(*e));
    e->key = hark_strdup(key);
    e->raw = hark_strdup(raw);
    e->line = line;
    if (e->key == NULL || e->raw == NULL) {
        hark_free(e->key);
        hark_free(e->raw);
        return -1;
    }
    sec->n++;
    return 0;
}

/* Find or create [name] so that repeated headers merge. */
static struct hark_section *open_section(struct hark_conf *conf, const char *name,
                                         const char *file, int line)
{
    struct hark_section **grown, *sec = hark_conf_section(conf, name);

    if (sec != NULL) {
        return sec;
    }
    grown = hark_realloc(conf->sections, (conf->n + 1) * sizeof(*grown));
    if (grown == NULL) {
        return NULL;
    }
    conf->sections = grown;
    sec = hark_section_new(name, file, line);
    if (sec == NULL) {
        return NULL;
    }
    grown[conf->n++] = sec;
    return sec;
}

/* Handle one line; syntax errors go to errs. */
static void parse_line(struct hark_conf *conf, struct hark_section **cur, char *line,
                       int lineno, struct hark_conf_errors *errs)
{
    const char *file = conf->file;
    char *s = trim(line), *eq, *key, *value;

    if (*s == '\0' || *s == ';' || *s == '#') {
        return;
    }
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (close == NULL || *trim(close + 1) != '\0') {
            if (close == NULL || (*trim(close + 1) != ';' && *trim(close + 1) != '#')) {
                hark_conf_error(errs, "%s:%d: malformed section header \"%s\"", file, lineno, s);
                return;
            }
        }
        *close = '\0';
        s = trim(s + 1);
        if (!valid_name(s)) {
            hark_conf_error(errs, "%s:%d: invalid section name \"%s\"", file, lineno, s);
            return;
        }
        *cur = open_section(conf, s, file, lineno);
        if (*cur == NULL) {
            hark_conf_error(errs, "%s:%d: out of memory", file, lineno);
        }
        return;
    }
    eq = strchr(s, '=');
    if (eq == NULL) {
        hark_conf_error(errs, "%s:%d: expected \"key = value\", got \"%s\"", file, lineno, s);
        return;
    }
    *eq = '\0';
    key = trim(s);
    value = trim(eq + 1);
    if (!valid_name(key)) {
        hark_conf_error(errs, "%s:%d: invalid key \"%s\"", file, lineno, key);
        return;
    }
    if (*cur == NULL) {
        hark_conf_error(errs, "%s:%d: key \"%s\" outside of any [section]", file, lineno, key);
        return;
    }
    if (*value == '"') {
        if (unquote(value) < 0) {
            hark_conf_error(errs, "%s:%d: key \"%s\": unterminated quoted value", file, lineno, key);
            return;
        }
    } else {
        cut_comment(value);
        value = trim(value);
    }
    for (size_t i = 0; i < (*cur)->n; i++) {
        if (strcmp((*cur)->entries[i].key, key) == 0) {
            hark_conf_error(errs, "%s:%d: key \"%s\" repeats line %d in [%s]", file, lineno,
                            key, (*cur)->entries[i].line, (*cur)->name);
            return;
        }
    }
    if (hark_section_add(*cur, key, value, lineno) < 0) {
        hark_conf_error(errs, "%s:%d: out of memory", file, lineno);
    }
}

int hark_ini_parse(const char *file, const char *text, size_t len,
                   struct hark_conf *conf, struct hark_conf_errors *errs)
{
    struct hark_section *cur = NULL;
    size_t start = 0, before = errs->n;
    int lineno = 0;
    char line[INI_MAX_LINE];

    if (conf->file == NULL && (conf->file = hark_strdup(file)) == NULL) {
        hark_conf_error(errs, "%s: out of memory", file);
        return -1;
    }
    while (start < len) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t n = nl ? (size_t)(nl - (text + start)) : len - start;

        lineno++;
        if (n >= sizeof(line)) {
            hark_conf_error(errs, "%s:%d: line longer than %d bytes", file, lineno, INI_MAX_LINE);
        } else if (memchr(text + start, '\0', n) != NULL) {
            hark_conf_error(errs, "%s:%d: NUL byte in line", file, lineno);
        } else {
            memcpy(line, text + start, n);
            line[n] = '\0';
            if (n > 0 && line[n - 1] == '\r') {
                line[n - 1] = '\0';
            }
            parse_line(conf, &cur, line, lineno, errs);
        }
        start += n + 1;
    }
    return errs->n == before ? 0 : -1;
}

int hark_conf_load(const char *path, struct hark_conf *conf, struct hark_conf_errors *errs)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *text;
    ssize_t got;
    size_t len = 0;
    int rc;

    if (fd < 0) {
        hark_conf_error(errs, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || st.st_size > INI_MAX_FILE) {
        hark_conf_error(errs, "%s: not a readable file of at most 1 MiB", path);
        close(fd);
        return -1;
    }
    text = hark_malloc((size_t)st.st_size + 1);
    if (text == NULL) {
        close(fd);
        hark_conf_error(errs, "%s: out of memory", path);
        return -1;
    }
    while (len < (size_t)st.st_size &&
           (got = read(fd, text + len, (size_t)st.st_size - len)) > 0) {
        len += (size_t)got;
    }
    close(fd);
    text[len] = '\0';
    rc = hark_ini_parse(path, text, len, conf, errs);
    hark_free(text);
    return rc;
}

struct hark_section *hark_conf_section(const struct hark_conf *conf, const char *name)
{
    for (size_t i = 0; i < conf->n; i++) {
        if (strcmp(conf->sections[i]->name, name) == 0) {
            return conf->sections[i];
        }
    }
    return NULL;
}

void hark_conf_free(struct hark_conf *conf)
{
    for (size_t i = 0; i < conf->n; i++) {
        hark_section_free(conf->sections[i]);
    }
    hark_free(conf->sections);
    hark_free(conf->file);
    conf->sections = NULL;
    conf->file = NULL;
    conf->n = 0;
}
