/*
 * hark: byte encodings shared by adapters (pure functions, no I/O).
 *
 * Output buffers are always sized by the caller; every function says how
 * large they must be and returns the number of bytes written, or -1 when
 * the input is malformed or the output does not fit.
 */
#ifndef HARK_CODEC_H
#define HARK_CODEC_H

#include <stddef.h>
#include <sys/types.h>

/* Standard base64 with padding. out needs 4 * ((n + 2) / 3) + 1 bytes. */
ssize_t hark_base64_encode(const unsigned char *in, size_t n, char *out, size_t cap);

/* Decode standard or URL-safe base64, padding optional. out needs 3 * n / 4 + 3. */
ssize_t hark_base64_decode(const char *in, size_t n, unsigned char *out, size_t cap);

/* Lowercase hex. out needs 2 * n + 1 bytes. */
ssize_t hark_hex_encode(const unsigned char *in, size_t n, char *out, size_t cap);

/*
 * Percent-decoding as in application/x-www-form-urlencoded (`+` is a
 * space when plus_is_space). Rejects malformed %XX escapes and NUL bytes.
 * out needs n + 1 bytes; the result is NUL-terminated.
 */
ssize_t hark_percent_decode(const char *in, size_t n, char *out, size_t cap,
                            int plus_is_space);

/* One decoded name=value pair (both point into the form's text). */
struct hark_form_pair {
    char *name;
    char *value;
};

/* A decoded form or query string: pairs in the order they came. */
struct hark_form {
    struct hark_form_pair *pairs;
    size_t n;
    char *text;                 /* every decoded name and value */
};

#define HARK_FORM_MAX_PAIRS 1000

/*
 * Parse an application/x-www-form-urlencoded body or a query string.
 * Returns 0, or -1 with *why set to a static reason (malformed escape, too
 * many pairs, allocation failure). The form must be released with
 * hark_form_free() in both cases.
 */
int hark_form_parse(const char *in, size_t n, struct hark_form *form, const char **why);
void hark_form_free(struct hark_form *form);

/* The first value named `name`, or NULL. */
const char *hark_form_get(const struct hark_form *form, const char *name);

#endif
