/*
 * libFuzzer target: HTTP/1.1 request framing (src/http_parse.c).
 *
 * The input is what a client sends on a connection: a request head, then
 * whatever follows it (a chunked body, the next request). Every call sees a
 * heap buffer of exactly the length it is given, so ASan reports any read
 * past it. Checks:
 *   - the head's end is found at the same place whether the bytes arrive
 *     at once or in pieces (scan resumed), and scan only moves forward;
 *   - a parsed head's offsets and strings stay inside the head, and bytes
 *     holding no complete head do not parse;
 *   - the chunked decoder gives the same status, lengths and data in one
 *     call, in two calls with the buffer moved between them, and a byte
 *     at a time; out <= in <= len, and what follows the body is untouched.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

#define CHECK(cond) do { if (!(cond)) { __builtin_trap(); } } while (0)

/* src[0..len) in a new buffer of exactly len bytes (malloc(0) aside). */
static char *dup_exact(const char *src, size_t len)
{
    char *p = malloc(len > 0 ? len : 1);

    CHECK(p != NULL);
    if (len > 0) {
        memcpy(p, src, len);
    }
    return p;
}

/* The head arriving in pieces ending at the (ascending) split points. */
static void check_head_end_resumed(const char *data, size_t end, const size_t *splits,
                                   size_t n_splits)
{
    size_t scan = 0, prev = 0;

    for (size_t i = 0; i < n_splits; i++) {
        size_t len = splits[i], n;
        char *part = dup_exact(data, len);

        n = hark_http_head_end(part, len, &scan);
        free(part);
        if (end != 0 && end <= len) {
            CHECK(n == end);
            return;
        }
        CHECK(n == 0);
        CHECK(scan >= prev && scan <= len);
        prev = scan;
    }
    CHECK(end == 0);            /* the last split is the whole input */
}

/* offset names a NUL-terminated string inside the head buf[0..len). */
static void check_string(const char *buf, size_t len, uint32_t offset)
{
    CHECK(offset < len);
    CHECK(memchr(buf + offset, '\0', len - offset) != NULL);
}

static void check_head(const char *data, size_t end)
{
    char *head = dup_exact(data, end);
    struct hark_http_head h;
    int rc = hark_http_parse_head(head, end, &h);

    CHECK(rc == 0 || rc == 400 || rc == 417 || rc == 431 || rc == 501 || rc == 505);
    if (rc == 0) {
        check_string(head, end, h.method);
        check_string(head, end, h.target);
        CHECK(h.minor == 0 || h.minor == 1);
        CHECK(h.n_fields <= HARK_HTTP_MAX_HEADERS);
        for (size_t i = 0; i < h.n_fields; i++) {
            const char *v;

            check_string(head, end, h.fields[i].name);
            check_string(head, end, h.fields[i].value);
            /* The lookup finds this field or an earlier one of the same name. */
            v = hark_http_head_field(&h, head, head + h.fields[i].name);
            CHECK(v != NULL && v >= head && v <= head + h.fields[i].value);
        }
        CHECK(h.keep_alive == 0 || h.keep_alive == 1);
        CHECK(h.chunked == 0 || h.chunked == 1);
        CHECK(h.has_length == 0 || h.has_length == 1);
        CHECK(h.expect_continue == 0 || h.expect_continue == 1);
        CHECK(!(h.chunked && h.has_length));
        CHECK(!(h.chunked && h.minor == 0));
        CHECK(h.has_length || h.content_length == 0);
    }
    free(head);
}

/*
 * The parser given bytes in which hark_http_head_end found no head (not
 * how it is meant to be called, but a caller's slip must not read past
 * them): without the empty line it cannot succeed.
 */
static void check_incomplete_head(const char *data, size_t size)
{
    char *head = dup_exact(data, size);
    struct hark_http_head h;
    int rc = hark_http_parse_head(head, size, &h);

    CHECK(rc == 400 || rc == 417 || rc == 431 || rc == 501 || rc == 505);
    free(head);
}

/* What one decoding of a body ended with. */
struct decoded {
    int rc;
    struct hark_chunked st;
    char *buf;                  /* owns the body's buffer */
};

static void check_decoded(const struct decoded *d, const char *body, size_t len)
{
    CHECK(d->rc == 0 || d->rc == 1 || d->rc == 400 || d->rc == 413);
    CHECK(d->st.out <= d->st.in && d->st.in <= len);
    if (d->rc == 0) {
        CHECK(d->st.in == len);         /* everything that arrived was taken */
    }
    if (d->rc == 1) {
        CHECK(memcmp(d->buf + d->st.in, body + d->st.in, len - d->st.in) == 0);
    }
}

static void check_chunked(const char *body, size_t len, size_t split, size_t max)
{
    struct decoded one = {0}, two = {0}, bytes = {0};

    /* All at once. */
    one.buf = dup_exact(body, len);
    one.rc = hark_chunked_decode(&one.st, one.buf, len, max);
    check_decoded(&one, body, len);

    /* In two pieces, the buffer moved and grown in between as a reader would. */
    two.buf = dup_exact(body, split);
    two.rc = hark_chunked_decode(&two.st, two.buf, split, max);
    if (two.rc == 0 || two.rc == 1) {
        char *grown = realloc(two.buf, len > 0 ? len : 1);

        CHECK(grown != NULL);
        two.buf = grown;
        memcpy(two.buf + split, body + split, len - split);
        two.rc = hark_chunked_decode(&two.st, two.buf, len, max);
    }
    check_decoded(&two, body, len);

    /* A byte at a time in place, stopping at the first answer. */
    bytes.buf = dup_exact(body, len);
    for (size_t n = 0; n <= len; n++) {
        bytes.rc = hark_chunked_decode(&bytes.st, bytes.buf, n, max);
        if (bytes.rc != 0) {
            break;
        }
    }
    check_decoded(&bytes, body, len);

    CHECK(one.rc == two.rc && one.rc == bytes.rc);
    CHECK(one.st.in == two.st.in && one.st.in == bytes.st.in);
    CHECK(one.st.out == two.st.out && one.st.out == bytes.st.out);
    CHECK(memcmp(one.buf, two.buf, one.st.out) == 0);
    CHECK(memcmp(one.buf, bytes.buf, one.st.out) == 0);
    free(one.buf);
    free(two.buf);
    free(bytes.buf);
}

static void sort_sizes(size_t *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && a[j - 1] > a[j]; j--) {
            size_t t = a[j];
            a[j] = a[j - 1];
            a[j - 1] = t;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t limits[] = {0, 7, 1024, 65536, SIZE_MAX};
    char *buf = dup_exact((const char *)data, size);
    size_t scan = 0, end, off, pick;
    size_t splits[5];

    end = hark_http_head_end(buf, size, &scan);
    CHECK(end <= size && scan <= size);
    if (end != 0) {
        CHECK(end >= 2 && buf[end - 1] == '\n');
        CHECK(buf[end - 2] == '\n' || (end >= 3 && buf[end - 2] == '\r' && buf[end - 3] == '\n'));
    }

    /* Split points taken from the input so the fuzzer can steer them. */
    pick = size > 0 ? data[0] : 0;
    splits[0] = pick % (size + 1);
    splits[1] = size / 3;
    splits[2] = size / 2;
    splits[3] = size > 0 ? size - 1 : 0;
    splits[4] = size;
    sort_sizes(splits, 5);
    check_head_end_resumed(buf, end, splits, 5);

    if (end != 0) {
        check_head(buf, end);
    } else {
        check_incomplete_head(buf, size);
    }

    /* The rest (all of it when no head ended) as a chunked body. */
    off = end;
    pick = size > 1 ? (size_t)data[1] * 256 + data[size - 1] : 0;
    check_chunked(buf + off, size - off, pick % (size - off + 1),
                  limits[pick % (sizeof(limits) / sizeof(limits[0]))]);
    free(buf);
    return 0;
}
