/*
 * Text helpers: UTF-8 validation, phone numbers, time, safe JSON access.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hark/text.h"

int hark_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;

    while (p < end) {
        unsigned c = *p;
        size_t len;
        unsigned cp;

        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if ((size_t)(end - p) < len) {
            return 0;
        }
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return 0;
            }
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        p += len;
    }
    return 1;
}

/* Skip a case-insensitive scheme prefix such as "whatsapp:". */
static const char *skip_prefix(const char *in)
{
    static const char *const prefixes[] = {"whatsapp:", "tel:", "sms:", "messenger:"};

    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t len = strlen(prefixes[i]);
        if (strncasecmp(in, prefixes[i], len) == 0) {
            return in + len;
        }
    }
    return in;
}

int hark_phone_e164(const char *in, char *out, size_t cap)
{
    const char *p;
    size_t digits = 0;
    int seen_plus = 0;
    char buf[16];

    if (in == NULL || cap < 17) {
        return -1;
    }
    p = skip_prefix(in);
    while (*p == ' ') {
        p++;
    }
    if (*p == '+') {
        seen_plus = 1;
        p++;
    } else if (p[0] == '0' && p[1] == '0') {
        seen_plus = 1;      /* international call prefix */
        p += 2;
    }
    (void)seen_plus;
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (isdigit(c)) {
            if (digits == sizeof(buf)) {
                return -1;
            }
            buf[digits++] = (char)c;
        } else if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') {
            continue;
        } else {
            return -1;      /* letters: an alphanumeric sender id */
        }
    }
    /* E.164: country code first (never 0), at most 15 digits in all. */
    if (digits < 7 || digits > 15 || buf[0] == '0') {
        return -1;
    }
    out[0] = '+';
    memcpy(out + 1, buf, digits);
    out[digits + 1] = '\0';
    return 0;
}

int hark_strncaseeq(const char *a, size_t a_len, const char *b)
{
    return strlen(b) == a_len && strncasecmp(a, b, a_len) == 0;
}

int64_t hark_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *hark_json_str(const json_t *obj, const char *key)
{
    const json_t *v;

    if (!json_is_object(obj)) {
        return NULL;
    }
    v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

json_int_t hark_json_int(const json_t *obj, const char *key, json_int_t def)
{
    const json_t *v;

    if (!json_is_object(obj)) {
        return def;
    }
    v = json_object_get(obj, key);
    if (json_is_integer(v)) {
        return json_integer_value(v);
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        json_int_t n = 0;
        size_t i = 0;
        if (s[0] == '\0' || strlen(s) > 18) {
            return def;
        }
        for (; s[i]; i++) {
            if (!isdigit((unsigned char)s[i])) {
                return def;
            }
            n = n * 10 + (s[i] - '0');
        }
        return n;
    }
    return def;
}

/* 1 when the nesting of arrays and objects stays within the bound. */
static int json_depth_ok(const char *s, size_t n, int max_depth)
{
    int depth = 0, in_string = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = 0;
            }
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth) {
                return 0;
            }
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 1;
}

json_t *hark_json_parse(const char *body, size_t n, const char **why)
{
    json_error_t error;
    json_t *root;

    if (n == 0) {
        *why = "empty body";
        return NULL;
    }
    if (memchr(body, '\0', n) != NULL || !hark_utf8_valid(body, n)) {
        *why = "body is not valid UTF-8";
        return NULL;
    }
    if (!json_depth_ok(body, n, HARK_JSON_MAX_DEPTH)) {
        *why = "JSON nested too deeply";
        return NULL;
    }
    root = json_loadb(body, n, JSON_REJECT_DUPLICATES, &error);
    if (root == NULL) {
        *why = "malformed JSON";
    }
    return root;
}
