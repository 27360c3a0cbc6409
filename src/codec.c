/*
 * Byte encodings: base64, hex, percent-decoding and form parsing.
 */
#include <string.h>

#include "hark/alloc.h"
#include "hark/codec.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

ssize_t hark_base64_encode(const unsigned char *in, size_t n, char *out, size_t cap)
{
    size_t need = 4 * ((n + 2) / 3) + 1;
    size_t i, o = 0;

    if (cap < need) {
        return -1;
    }
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = b64_alphabet[v >> 6 & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n) {
            v |= (unsigned)in[i + 1] << 8;
        }
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = i + 1 < n ? b64_alphabet[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return (ssize_t)o;
}

/* Value of a base64 digit (standard or URL-safe alphabet), -1 otherwise. */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+' || c == '-') {
        return 62;
    }
    if (c == '/' || c == '_') {
        return 63;
    }
    return -1;
}

ssize_t hark_base64_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0, i;

    while (n > 0 && in[n - 1] == '=') {
        n--;
    }
    if (n % 4 == 1) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6 | (unsigned)v) & 0xffffffu;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap) {
                return -1;
            }
            out[o++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
    return (ssize_t)o;
}

ssize_t hark_hex_encode(const unsigned char *in, size_t n, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    if (cap < 2 * n + 1) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
    return (ssize_t)(2 * n);
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

ssize_t hark_percent_decode(const char *in, size_t n, char *out, size_t cap,
                            int plus_is_space)
{
    size_t i, o = 0;

    if (cap < n + 1) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n) {
                return -1;
            }
            hi = hex_value((unsigned char)in[i + 1]);
            lo = hex_value((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0) {
                return -1;
            }
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c == '\0') {
            return -1;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (ssize_t)o;
}

/* Decode in[0..n) into a new string; NULL with *why on failure. */
static char *decode_component(const char *in, size_t n, const char **why)
{
    char *out = hark_malloc(n + 1);

    if (out == NULL) {
        *why = "out of memory";
        return NULL;
    }
    if (hark_percent_decode(in, n, out, n + 1, 1) < 0) {
        hark_free(out);
        *why = "malformed percent-encoding";
        return NULL;
    }
    return out;
}

int hark_form_parse(const char *in, size_t n, struct hark_form *form, const char **why)
{
    size_t start = 0, cap = 0;

    form->pairs = NULL;
    form->n = 0;
    while (start < n) {
        const char *seg = in + start;
        const char *amp = memchr(seg, '&', n - start);
        size_t seg_len = amp ? (size_t)(amp - seg) : n - start;
        const char *eq = memchr(seg, '=', seg_len);
        size_t name_len = eq ? (size_t)(eq - seg) : seg_len;
        struct hark_form_pair *pair;

        start += seg_len + 1;
        if (seg_len == 0) {
            continue;
        }
        if (form->n == HARK_FORM_MAX_PAIRS) {
            *why = "too many form fields";
            return -1;
        }
        if (form->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct hark_form_pair *grown = hark_realloc(form->pairs, ncap * sizeof(*grown));
            if (grown == NULL) {
                *why = "out of memory";
                return -1;
            }
            form->pairs = grown;
            cap = ncap;
        }
        pair = &form->pairs[form->n];
        pair->name = decode_component(seg, name_len, why);
        if (pair->name == NULL) {
            return -1;
        }
        pair->value = eq ? decode_component(eq + 1, seg_len - name_len - 1, why)
                         : hark_strdup("");
        if (pair->value == NULL) {
            hark_free(pair->name);
            if (!eq) {
                *why = "out of memory";
            }
            return -1;
        }
        form->n++;
    }
    return 0;
}

void hark_form_free(struct hark_form *form)
{
    size_t i;

    for (i = 0; i < form->n; i++) {
        hark_free(form->pairs[i].name);
        hark_free(form->pairs[i].value);
    }
    hark_free(form->pairs);
    form->pairs = NULL;
    form->n = 0;
}

const char *hark_form_get(const struct hark_form *form, const char *name)
{
    size_t i;

    for (i = 0; i < form->n; i++) {
        if (strcmp(form->pairs[i].name, name) == 0) {
            return form->pairs[i].value;
        }
    }
    return NULL;
}
