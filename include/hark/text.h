/*
 * hark: small text helpers for adapters (pure functions).
 */
#ifndef HARK_TEXT_H
#define HARK_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* 1 when s[0..n) is valid UTF-8 (no overlongs, no surrogates). */
int hark_utf8_valid(const char *s, size_t n);

/*
 * Normalize a phone number to E.164 ("+" and 8 to 15 digits). Accepts
 * "+34 612-345-678", "34612345678" (WhatsApp wa_id, Vonage msisdn),
 * "whatsapp:+34...", "tel:+34...", "00 34 ...". Returns 0 and writes into
 * out (at least 17 bytes), or -1 when the input is not a phone number
 * (short codes and alphanumeric sender ids are not numbers).
 */
int hark_phone_e164(const char *in, char *out, size_t cap);

/* Case-insensitive ASCII compare of a with NUL-terminated b over a_len bytes. */
int hark_strncaseeq(const char *a, size_t a_len, const char *b);

/* Current wall-clock time in epoch milliseconds. */
int64_t hark_now_ms(void);

/*
 * jansson helpers that never crash on a wrong type: the string at key of
 * object obj, or NULL when obj is not an object or the value is not a
 * string. hark_json_int accepts integers, and strings of digits (some
 * providers quote numbers), returning def otherwise.
 */
const char *hark_json_str(const json_t *obj, const char *key);
json_int_t hark_json_int(const json_t *obj, const char *key, json_int_t def);

/* Maximum nesting accepted for any JSON body (checked before parsing). */
#define HARK_JSON_MAX_DEPTH 32

/*
 * Parse a JSON body with the depth bound above, rejecting invalid UTF-8
 * and NUL bytes. Returns a new reference or NULL with *why set to a static
 * reason.
 */
json_t *hark_json_parse(const char *body, size_t n, const char **why);

#endif
