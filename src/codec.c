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

/*
 * Decode in[0..n) at *out in the form's text, NUL-terminated; advances
 * *out. -1 on a malformed escape.
 */
static int decode_component(const char *in, size_t n, char **out)
{
    ssize_t len = hark_percent_decode(in, n, *out, n + 1, 1);

    if (len < 0) {
        return -1;
    }
    *out += len + 1;
    return 0;
}

/*
 * Every name and value is decoded into one allocation (decoding never
 * lengthens, and each pair adds at most two NULs: 2n + 2 bytes hold them
 * all), and the pairs array is sized by counting the separators first:
 * two allocations per form, whatever its size.
 */
int hark_form_parse(const char *in, size_t n, struct hark_form *form, const char **why)
{
    size_t start = 0, cap = 1;
    char *out;

    form->pairs = NULL;
    form->n = 0;
    form->text = NULL;
    for (const char *amp = in; (amp = memchr(amp, '&', (size_t)(in + n - amp))) != NULL; amp++) {
        cap++;
    }
    if (cap > HARK_FORM_MAX_PAIRS) {
        cap = HARK_FORM_MAX_PAIRS + 1;      /* enough to notice one too many */
    }
    form->pairs = hark_malloc(cap * sizeof(*form->pairs));
    form->text = hark_malloc(2 * n + 2);
    if (form->pairs == NULL || form->text == NULL) {
        *why = "out of memory";
        return -1;
    }
    out = form->text;
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
        pair = &form->pairs[form->n];
        pair->name = out;
        if (decode_component(seg, name_len, &out) < 0) {
            *why = "malformed percent-encoding";
            return -1;
        }
        pair->value = out;
        if (decode_component(eq ? eq + 1 : seg + seg_len, eq ? seg_len - name_len - 1 : 0,
                             &out) < 0) {
            *why = "malformed percent-encoding";
            return -1;
        }
        form->n++;
    }
    return 0;
}

void hark_form_free(struct hark_form *form)
{
    hark_free(form->pairs);
    hark_free(form->text);
    form->pairs = NULL;
    form->text = NULL;
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
