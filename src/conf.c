/*
 * Configuration values: expansion of ${ENV} and file:PATH, typed parsing,
 * section lookups and reloadable secrets.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf_priv.h"
#include "hark/alloc.h"

#define CONF_FILE_MAX 65536

/* A secret: its raw spec is re-expanded on reload, under a write lock. */
struct hark_secret {
    pthread_rwlock_t lock;
    char *raw;
    char *value;
};

/* Read a credential file; NULL with why on failure. */
static char *read_value_file(const char *path, char *why, size_t why_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf;
    ssize_t got;
    size_t len = 0;

    if (fd < 0) {
        snprintf(why, why_len, "cannot read file %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = hark_malloc(CONF_FILE_MAX + 1);
    if (buf == NULL) {
        close(fd);
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    while (len < CONF_FILE_MAX && (got = read(fd, buf + len, CONF_FILE_MAX - len)) > 0) {
        len += (size_t)got;
    }
    close(fd);
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
    }
    if (len > 0 && buf[len - 1] == '\r') {
        len--;
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        hark_free(buf);
        snprintf(why, why_len, "file %s holds a NUL byte", path);
        return NULL;
    }
    return buf;
}

/* Replace every ${NAME} with the environment's value. */
static char *expand_env(const char *raw, char *why, size_t why_len)
{
    size_t cap = strlen(raw) + 1, len = 0;
    char *out = hark_malloc(cap);
    const char *p = raw;

    if (out == NULL) {
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    while (*p) {
        const char *add = p;
        size_t add_len = 1;
        if (p[0] == '$' && p[1] == '{') {
            const char *close = strchr(p + 2, '}');
            char name[128];
            size_t name_len = close ? (size_t)(close - p - 2) : 0;
            if (close == NULL || name_len == 0 || name_len >= sizeof(name)) {
                snprintf(why, why_len, "malformed ${NAME} reference");
                hark_free(out);
                return NULL;
            }
            memcpy(name, p + 2, name_len);
            name[name_len] = '\0';
            add = getenv(name);
            if (add == NULL) {
                snprintf(why, why_len, "environment variable %s is not set", name);
                hark_free(out);
                return NULL;
            }
            add_len = strlen(add);
            p = close + 1;
        } else {
            p++;
        }
        if (len + add_len + 1 > cap) {
            char *grown;
            cap = (len + add_len + 1) * 2;
            grown = hark_realloc(out, cap);
            if (grown == NULL) {
                hark_free(out);
                snprintf(why, why_len, "out of memory");
                return NULL;
            }
            out = grown;
        }
        memcpy(out + len, add, add_len);
        len += add_len;
    }
    out[len] = '\0';
    return out;
}

char *hark_conf_expand(const char *raw, char *why, size_t why_len)
{
    char *value = expand_env(raw, why, why_len), *content;

    if (value == NULL || strncmp(value, "file:", 5) != 0) {
        return value;
    }
    content = read_value_file(value + 5, why, why_len);
    hark_free(value);
    return content;
}

static struct hark_conf_entry *find_entry(const struct hark_section *sec, const char *key)
{
    if (sec == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < sec->n; i++) {
        if (strcmp(sec->entries[i].key, key) == 0) {
            return &sec->entries[i];
        }
    }
    return NULL;
}

const char *hark_section_get(const struct hark_section *sec, const char *key)
{
    const struct hark_conf_entry *e = find_entry(sec, key);
    return e ? e->value : NULL;
}

int64_t hark_section_int(const struct hark_section *sec, const char *key, int64_t def)
{
    const char *v = hark_section_get(sec, key);
    char *end;
    long long n;

    if (v == NULL) {
        return def;
    }
    errno = 0;
    n = strtoll(v, &end, 10);
    return (errno || end == v || *end) ? def : n;
}

int hark_section_bool(const struct hark_section *sec, const char *key, int def)
{
    int b;
    const char *v = hark_section_get(sec, key);
    return v && hark_parse_bool(v, &b) == 0 ? b : def;
}

int64_t hark_section_duration_ms(const struct hark_section *sec, const char *key, int64_t def)
{
    int64_t ms;
    const char *v = hark_section_get(sec, key);
    return v && hark_parse_duration_ms(v, &ms) == 0 ? ms : def;
}

int64_t hark_section_size(const struct hark_section *sec, const char *key, int64_t def)
{
    int64_t n;
    const char *v = hark_section_get(sec, key);
    return v && hark_parse_size(v, &n) == 0 ? n : def;
}

char *hark_section_base_url(const struct hark_section *sec, const char *key, const char *def,
                            char *err, size_t err_len)
{
    const char *url = hark_section_get(sec, key);
    size_t len;
    char *out;

    url = url ? url : def;
    if (url == NULL || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)) {
        snprintf(err, err_len, "%s must start with https:// or http://", key);
        return NULL;
    }
    len = strlen(url);
    while (len > 0 && url[len - 1] == '/') {
        len--;
    }
    out = hark_strndup(url, len);
    if (out == NULL) {
        snprintf(err, err_len, "out of memory");
    }
    return out;
}

struct hark_secret *hark_section_secret(const struct hark_section *sec, const char *key)
{
    const struct hark_conf_entry *e = find_entry(sec, key);
    return e ? e->secret : NULL;
}

int hark_secret_read(const struct hark_secret *secret, char *buf, size_t cap)
{
    struct hark_secret *s = (struct hark_secret *)secret;
    size_t len;
    int rc = -1;

    if (s == NULL || cap == 0) {
        return -1;
    }
    pthread_rwlock_rdlock(&s->lock);
    len = strlen(s->value);
    if (len < cap) {
        memcpy(buf, s->value, len + 1);
        rc = (int)len;
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

static struct hark_secret *secret_new(const char *raw, char *value)
{
    struct hark_secret *s = hark_calloc(1, sizeof(*s));

    if (s == NULL || (s->raw = hark_strdup(raw)) == NULL) {
        hark_free(s);
        return NULL;
    }
    pthread_rwlock_init(&s->lock, NULL);
    s->value = value;
    return s;
}

static void secret_free(struct hark_secret *s)
{
    if (s == NULL) {
        return;
    }
    pthread_rwlock_destroy(&s->lock);
    if (s->value != NULL) {
        explicit_bzero(s->value, strlen(s->value));
    }
    hark_free(s->value);
    hark_free(s->raw);
    hark_free(s);
}

/* Re-expand a secret; keeps the old value when the new one cannot be read. */
static int secret_reload(struct hark_secret *s, char *why, size_t why_len)
{
    char *fresh = hark_conf_expand(s->raw, why, why_len), *old;

    if (fresh == NULL) {
        return -1;
    }
    pthread_rwlock_wrlock(&s->lock);
    old = s->value;
    s->value = fresh;
    pthread_rwlock_unlock(&s->lock);
    explicit_bzero(old, strlen(old));
    hark_free(old);
    return 0;
}

void hark_section_free(struct hark_section *sec)
{
    if (sec == NULL) {
        return;
    }
    for (size_t i = 0; i < sec->n; i++) {
        hark_free(sec->entries[i].key);
        hark_free(sec->entries[i].raw);
        hark_free(sec->entries[i].value);
        secret_free(sec->entries[i].secret);
    }
    hark_free(sec->entries);
    hark_free(sec->name);
    hark_free(sec);
}

/* The schema row for key in any of the tables, or NULL. */
static const struct hark_conf_key *schema_find(const struct hark_conf_key *const *schemas,
                                               const char *key)
{
    for (size_t t = 0; schemas && schemas[t]; t++) {
        for (const struct hark_conf_key *k = schemas[t]; k->name; k++) {
            if (strcmp(k->name, key) == 0) {
                return k;
            }
        }
    }
    return NULL;
}

/* Append "a, b, c" of every key name into buf for the unknown-key error. */
static void schema_names(const struct hark_conf_key *const *schemas, char *buf, size_t cap)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t t = 0; schemas && schemas[t]; t++) {
        for (const struct hark_conf_key *k = schemas[t]; k->name && len < cap; k++) {
            int n = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", k->name);
            len += n > 0 ? (size_t)n : 0;
        }
    }
}

int hark_section_expand(struct hark_section *sec, const struct hark_conf_key *const *schemas,
                        struct hark_conf_errors *errs)
{
    size_t before = errs->n;

    for (size_t i = 0; i < sec->n; i++) {
        struct hark_conf_entry *e = &sec->entries[i];
        const struct hark_conf_key *k = schema_find(schemas, e->key);
        char why[256];
        char *value;
        const char *bad;

        if (schemas != NULL && k == NULL) {
            char names[512];
            schema_names(schemas, names, sizeof(names));
            hark_conf_error(errs, "%s:%d: [%s] unknown key \"%s\" (allowed: %s)", sec->file,
                            e->line, sec->name, e->key, names);
            continue;
        }
        value = hark_conf_expand(e->raw, why, sizeof(why));
        if (value == NULL) {
            hark_conf_error(errs, "%s:%d: [%s] %s: %s", sec->file, e->line, sec->name, e->key, why);
            continue;
        }
        bad = k ? hark_conf_check_value(k, value) : NULL;
        if (bad != NULL) {
            /* Quote the value only when it is not a secret. */
            if (k->type == HARK_CT_SECRET) {
                hark_conf_error(errs, "%s:%d: [%s] %s: %s", sec->file, e->line, sec->name,
                                e->key, bad);
            } else {
                hark_conf_error(errs, "%s:%d: [%s] %s = \"%s\": %s", sec->file, e->line,
                                sec->name, e->key, value, bad);
            }
            hark_free(value);
            continue;
        }
        if (k && k->type == HARK_CT_SECRET) {
            e->secret = secret_new(e->raw, value);
            e->value = hark_strdup("(secret)");
            if (e->secret == NULL) {
                hark_free(value);
            }
        } else {
            e->value = value;
        }
        if (e->value == NULL || (k && k->type == HARK_CT_SECRET && e->secret == NULL)) {
            hark_conf_error(errs, "%s:%d: out of memory", sec->file, e->line);
        }
    }
    for (size_t t = 0; schemas && schemas[t]; t++) {
        for (const struct hark_conf_key *k = schemas[t]; k->name; k++) {
            if (k->required && find_entry(sec, k->name) == NULL) {
                hark_conf_error(errs, "%s:%d: [%s] missing required key \"%s\" (%s)", sec->file,
                                sec->line, sec->name, k->name, k->desc ? k->desc : "");
            }
        }
    }
    return errs->n == before ? 0 : -1;
}

int hark_conf_reload_secrets(struct hark_conf *conf)
{
    int failures = 0;

    for (size_t i = 0; i < conf->n; i++) {
        struct hark_section *sec = conf->sections[i];
        for (size_t j = 0; j < sec->n; j++) {
            char why[256];
            if (sec->entries[j].secret && secret_reload(sec->entries[j].secret, why, sizeof(why)) < 0) {
                failures++;
            }
        }
    }
    return failures;
}

/* Parse a non-negative number and its unit suffix. */
static int parse_number_unit(const char *text, int64_t *num, const char **unit)
{
    char *end;
    long long n;

    while (isspace((unsigned char)*text)) {
        text++;
    }
    if (!isdigit((unsigned char)*text)) {
        return -1;
    }
    errno = 0;
    n = strtoll(text, &end, 10);
    if (errno || n < 0) {
        return -1;
    }
    while (isspace((unsigned char)*end)) {
        end++;
    }
    *num = n;
    *unit = end;
    return 0;
}

int hark_parse_duration_ms(const char *text, int64_t *out)
{
    static const struct { const char *unit; int64_t ms; } units[] = {
        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    int64_t n;
    const char *unit;

    if (parse_number_unit(text, &n, &unit) < 0) {
        return -1;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(unit, units[i].unit) == 0) {
            if (n > INT64_MAX / units[i].ms) {
                return -1;
            }
            *out = n * units[i].ms;
            return 0;
        }
    }
    return -1;
}

int hark_parse_size(const char *text, int64_t *out)
{
    static const struct { const char *unit; int64_t mult; } units[] = {
        {"", 1}, {"b", 1}, {"k", 1024}, {"kb", 1024}, {"m", 1048576}, {"mb", 1048576},
        {"g", 1073741824}, {"gb", 1073741824},
    };
    int64_t n;
    const char *unit;

    if (parse_number_unit(text, &n, &unit) < 0) {
        return -1;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(unit, units[i].unit) == 0) {
            if (n > INT64_MAX / units[i].mult) {
                return -1;
            }
            *out = n * units[i].mult;
            return 0;
        }
    }
    return -1;
}

int hark_parse_bool(const char *text, int *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

const char *hark_conf_check_value(const struct hark_conf_key *key, const char *value)
{
    int64_t n = 0;
    int b;
    char *end;

    switch (key->type) {
    case HARK_CT_STRING:
    case HARK_CT_SECRET:
        return NULL;
    case HARK_CT_BOOL:
        return hark_parse_bool(value, &b) == 0 ? NULL : "expected yes or no";
    case HARK_CT_INT:
        errno = 0;
        n = strtoll(value, &end, 10);
        if (errno || end == value || *end) {
            return "expected an integer";
        }
        break;
    case HARK_CT_DURATION:
        if (hark_parse_duration_ms(value, &n) < 0) {
            return "expected a duration such as 30s, 5m or 250ms";
        }
        break;
    case HARK_CT_SIZE:
        if (hark_parse_size(value, &n) < 0) {
            return "expected a size such as 512k or 1m";
        }
        break;
    }
    if ((key->min || key->max) && (n < key->min || n > key->max)) {
        return "value out of range";
    }
    return NULL;
}

struct hark_section *hark_section_from_text(const char *name, const char *text,
                                            const char *const *secret_keys)
{
    struct hark_conf conf = {0};
    struct hark_conf_errors errs = {0};
    struct hark_section *sec = NULL;
    char *doc = hark_asprintf("[%s]\n%s", name, text);

    if (doc != NULL && hark_ini_parse("(text)", doc, strlen(doc), &conf, &errs) == 0 &&
        conf.n == 1) {
        sec = conf.sections[0];
        conf.sections[0] = NULL;
        conf.n = 0;
        sec->file = "(text)";   /* conf.file is freed below */
        /* Mark secrets by giving a one-off schema for them only. */
        for (size_t i = 0; i < sec->n; i++) {
            struct hark_conf_key k = {sec->entries[i].key, HARK_CT_STRING, NULL, 0, 0, 0, NULL};
            struct hark_conf_key rows[2] = {k, {0}};
            const struct hark_conf_key *schemas[2] = {rows, NULL};
            for (size_t s = 0; secret_keys && secret_keys[s]; s++) {
                if (strcmp(secret_keys[s], k.name) == 0) {
                    rows[0].type = HARK_CT_SECRET;
                }
            }
            struct hark_section one = *sec;
            one.entries = &sec->entries[i];
            one.n = 1;
            if (hark_section_expand(&one, schemas, &errs) < 0) {
                break;
            }
        }
    }
    if (errs.n && sec) {
        hark_section_free(sec);
        sec = NULL;
    }
    hark_conf_errors_free(&errs);
    hark_conf_free(&conf);
    hark_free(doc);
    return sec;
}
