/*
 * HTTP/1.1 request framing (RFC 9112), pure: no I/O, no allocation.
 *
 * The head parser works in place: it NUL-terminates the method, the target
 * and every header name and value inside the caller's buffer, and records
 * them as offsets from the buffer's start, so the buffer may be moved or
 * grown while the body is still arriving. The chunked decoder moves a
 * body's data bytes down over its framing, also in place, and resumes
 * where it stopped as more bytes arrive.
 *
 * Errors are the HTTP status the server should answer with before closing.
 */
#ifndef HARK_HTTP_PARSE_H
#define HARK_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define HARK_HTTP_MAX_HEADERS 64

struct hark_http_field {
    uint32_t name;              /* offsets of NUL-terminated strings in the buffer */
    uint32_t value;             /* without leading or trailing whitespace */
};

struct hark_http_head {
    uint32_t method;
    uint32_t target;            /* the raw request-target */
    int minor;                  /* HTTP/1.<minor>: 0 or 1 */
    struct hark_http_field fields[HARK_HTTP_MAX_HEADERS];
    size_t n_fields;
    uint64_t content_length;    /* meaningful when has_length */
    int has_length;
    int chunked;                /* Transfer-Encoding: chunked */
    int keep_alive;             /* Connection header and the version's default */
    int expect_continue;        /* Expect: 100-continue */
};

/*
 * Length of the request head in buf[0..len) through its empty line, or 0
 * when the head is not complete yet. *scan keeps where the search got to,
 * so that a head arriving a byte at a time is not searched over and over;
 * start it at 0 for every new head.
 */
size_t hark_http_head_end(const char *buf, size_t len, size_t *scan);

/*
 * Parse the complete head buf[0..len) (len from hark_http_head_end) in
 * place. Returns 0, or the status to answer: 400 (malformed), 431 (too
 * many header fields), 501 (a transfer coding other than chunked), 505
 * (not HTTP/1.x), 417 (an expectation other than 100-continue).
 */
int hark_http_parse_head(char *buf, size_t len, struct hark_http_head *h);

/* The value of the first field called name (case-insensitive), or NULL. */
const char *hark_http_head_field(const struct hark_http_head *h, const char *buf,
                                 const char *name);

/* Resumable state of one chunked body; zero it for each new body. */
struct hark_chunked {
    int state;
    int digits;                 /* hex digits of the current chunk size */
    uint64_t left;              /* data bytes left in the current chunk */
    size_t line;                /* bytes of the current extension or trailer section */
    size_t in;                  /* raw bytes consumed, from the body's start */
    size_t out;                 /* decoded bytes, at the body's start */
};

/*
 * Decode what has arrived of a chunked body: buf[0..len) holds its raw
 * bytes (the region after the head). Data bytes are moved to buf[0..out).
 * Returns 1 when the body and its trailer section are complete (st->in
 * bytes of buf were the body: whatever follows is the next request), 0
 * when more bytes are needed, or the status to answer: 400 (malformed) or
 * 413 (the data would exceed max bytes).
 */
int hark_chunked_decode(struct hark_chunked *st, char *buf, size_t len, size_t max);

#endif
