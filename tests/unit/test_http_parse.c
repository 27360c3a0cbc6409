/*
 * Unit tests: HTTP/1.1 request framing (src/http_parse.c): where a head
 * ends, the head parser's fields and refusals, the chunked body decoder.
 *
 * Every input is copied into a heap buffer of exactly its length, so the
 * sanitized run (make unit-san) catches any read past the end.
 */
#include "harness.h"

#include "http_parse.h"

/* text[0..len) in a buffer of exactly len bytes (at least one, for malloc). */
static char *dup_exact(const char *text, size_t len)
{
    char *buf = malloc(len > 0 ? len : 1);

    assert_non_null(buf);
    memcpy(buf, text, len);
    return buf;
}

/*
 * Parse the complete head text[0..len): checks that hark_http_head_end
 * finds its end exactly at len first, so that every case below really is a
 * whole head. Returns the status; *out keeps the buffer (free it) or NULL.
 */
static int parse_n(const char *text, size_t len, struct hark_http_head *h, char **out)
{
    char *buf = dup_exact(text, len);
    size_t scan = 0;
    int rc;

    assert_int_equal(hark_http_head_end(buf, len, &scan), len);
    rc = hark_http_parse_head(buf, len, h);
    if (out != NULL) {
        *out = buf;
    } else {
        free(buf);
    }
    return rc;
}

static int parse(const char *text, struct hark_http_head *h, char **out)
{
    return parse_n(text, strlen(text), h, out);
}

/* The status of parsing a complete head, the parsed head thrown away. */
static int status_of(const char *text)
{
    struct hark_http_head h;

    return parse(text, &h, NULL);
}

/* hark_http_head_end from scan 0 on a copy of text of exactly its length. */
static size_t head_end_of(const char *text, size_t *scan)
{
    size_t len = strlen(text), n;
    char *buf = dup_exact(text, len);

    *scan = 0;
    n = hark_http_head_end(buf, len, scan);
    free(buf);
    return n;
}

/* ---- hark_http_head_end ---- */

static void test_head_end_crlf(void **state)
{
    size_t scan;
    (void)state;

    /* 16 + 9 + 2 bytes: the request line, one field, the empty line. */
    assert_int_equal(head_end_of("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &scan), 27);
    /* The body that follows is not part of the head. */
    assert_int_equal(head_end_of("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", &scan), 38);
    /* A body that itself holds an empty line does not move the end. */
    assert_int_equal(head_end_of("POST / HTTP/1.1\r\n\r\n\r\n\r\n", &scan), 19);
}

static void test_head_end_bare_lf(void **state)
{
    size_t scan;
    (void)state;

    assert_int_equal(head_end_of("GET / HTTP/1.1\nHost: a\n\nXYZ", &scan), 24);
    /* LF then CRLF, and CRLF then LF: both end the head. */
    assert_int_equal(head_end_of("GET / HTTP/1.1\nHost: a\n\r\nXYZ", &scan), 25);
    assert_int_equal(head_end_of("GET / HTTP/1.1\r\nHost: a\r\n\nXYZ", &scan), 26);
}

static void test_head_end_incomplete(void **state)
{
    size_t scan;
    (void)state;

    assert_int_equal(head_end_of("", &scan), 0);
    assert_int_equal(scan, 0);
    assert_int_equal(head_end_of("GET / HTTP/1.1", &scan), 0);
    assert_int_equal(scan, 14);
    /* Stopped at the last LF: the empty line may still follow it. */
    assert_int_equal(head_end_of("GET / HTTP/1.1\r\nHost: a\r\n", &scan), 0);
    assert_int_equal(scan, 24);
    assert_int_equal(head_end_of("GET / HTTP/1.1\r\nHost: a\r\n\r", &scan), 0);
    assert_int_equal(scan, 24);
    /* A CR after an LF that is not followed by LF is no empty line. */
    assert_int_equal(head_end_of("GET / HTTP/1.1\r\n\rHost: a\r\n", &scan), 0);
    assert_int_equal(scan, 25);
    assert_int_equal(head_end_of("GET / HTTP/1.1\r\r\n", &scan), 0);
}

/*
 * The head arrives a byte at a time with scan kept between calls: it is
 * complete exactly when its last byte is there, and scan only moves forward.
 */
static void feed_bytewise(const char *text, size_t head_len)
{
    size_t total = strlen(text), scan = 0, prev = 0;
    char *buf = dup_exact(text, total);

    for (size_t len = 0; len <= total; len++) {
        /* Each call sees a buffer of exactly len bytes (ASan) at the same place. */
        char *part = dup_exact(buf, len);
        size_t n = hark_http_head_end(part, len, &scan);

        free(part);
        if (len < head_len) {
            assert_int_equal(n, 0);
            assert_true(scan >= prev);
            assert_true(scan <= len);
            prev = scan;
        } else {
            assert_int_equal(n, head_len);
            break;
        }
    }
    /* The search got at least to the LF before the empty line. */
    assert_true(prev >= head_len - 3);
    free(buf);
}

static void test_head_end_resume_bytewise(void **state)
{
    (void)state;

    feed_bytewise("GET /x HTTP/1.1\r\nHost: a\r\nX-Y: z\r\n\r\nBODY", 36);
    feed_bytewise("GET /x HTTP/1.1\nHost: a\n\nBODY", 25);
    feed_bytewise("\r\nGET / HTTP/1.1\r\n\r\n", 20);
}

static void test_head_end_leading_empty_line(void **state)
{
    struct hark_http_head h;
    char *buf;
    size_t scan;
    (void)state;

    /* The leading CRLF is no end of the head: the line after it is not empty. */
    assert_int_equal(head_end_of("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", &scan), 29);
    assert_int_equal(parse("\r\nGET /p HTTP/1.1\r\nHost: a\r\n\r\n", &h, &buf), 0);
    assert_int_equal(h.method, 2);
    assert_string_equal(buf + h.method, "GET");
    assert_int_equal(h.target, 6);
    assert_string_equal(buf + h.target, "/p");
    assert_int_equal(h.n_fields, 1);
    free(buf);
    assert_int_equal(parse("\nGET / HTTP/1.1\n\n", &h, &buf), 0);
    assert_int_equal(h.method, 1);
    assert_string_equal(buf + h.method, "GET");
    free(buf);
    /* Only one is ignored: two empty lines are a complete, empty head. */
    assert_int_equal(head_end_of("\r\n\r\nGET / HTTP/1.1\r\n\r\n", &scan), 4);
    assert_int_equal(status_of("\r\n\r\n"), 400);
    assert_int_equal(status_of("\n\n"), 400);
}

/* ---- hark_http_parse_head ---- */

static void test_parse_request_line(void **state)
{
    struct hark_http_head h;
    char *buf;
    (void)state;

    assert_int_equal(parse("POST /sms/twilio?a=1&b=%20 HTTP/1.1\r\nHost: example.com\r\n\r\n",
                           &h, &buf), 0);
    assert_int_equal(h.method, 0);
    assert_string_equal(buf + h.method, "POST");
    assert_int_equal(h.target, 5);
    assert_string_equal(buf + h.target, "/sms/twilio?a=1&b=%20");
    assert_int_equal(h.minor, 1);
    assert_int_equal(h.n_fields, 1);
    assert_int_equal(h.fields[0].name, 37);
    assert_string_equal(buf + h.fields[0].name, "Host");
    assert_int_equal(h.fields[0].value, 43);
    assert_string_equal(buf + h.fields[0].value, "example.com");
    assert_int_equal(h.has_length, 0);
    assert_int_equal(h.chunked, 0);
    assert_int_equal(h.expect_continue, 0);
    assert_int_equal(h.keep_alive, 1);
    free(buf);

    assert_int_equal(parse("OPTIONS * HTTP/1.0\r\n\r\n", &h, &buf), 0);
    assert_string_equal(buf + h.method, "OPTIONS");
    assert_string_equal(buf + h.target, "*");
    assert_int_equal(h.minor, 0);
    assert_int_equal(h.n_fields, 0);
    free(buf);

    assert_int_equal(status_of(" / HTTP/1.1\r\n\r\n"), 400);           /* no method */
    assert_int_equal(status_of("GET  / HTTP/1.1\r\n\r\n"), 400);       /* two spaces */
    assert_int_equal(status_of("GET / x HTTP/1.1\r\n\r\n"), 400);
    assert_int_equal(status_of("GET /a\tb HTTP/1.1\r\n\r\n"), 400);    /* control in target */
    assert_int_equal(status_of("G(T / HTTP/1.1\r\n\r\n"), 400);        /* not a token */
    assert_int_equal(status_of("GET / HTTP/1.1 \r\n\r\n"), 400);
    assert_int_equal(status_of("GET /\r\n\r\n"), 400);                 /* HTTP/0.9 style */
    assert_int_equal(status_of("GET / \r\n\r\n"), 400);
}

static void test_parse_versions(void **state)
{
    struct hark_http_head h;
    char *buf;
    (void)state;

    assert_int_equal(status_of("GET / HTTP/2.0\r\n\r\n"), 505);
    assert_int_equal(status_of("GET / HTTP/0.9\r\n\r\n"), 505);
    assert_int_equal(status_of("GET / HTTP/1.x\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/x.1\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/11\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.10\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / http/1.1\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTPS/1.1\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / garbage\r\n\r\n"), 400);
    /* A later minor version is answered as 1.1. */
    assert_int_equal(parse("GET / HTTP/1.2\r\n\r\n", &h, &buf), 0);
    assert_int_equal(h.minor, 1);
    assert_int_equal(h.keep_alive, 1);
    free(buf);
    assert_int_equal(parse("GET / HTTP/1.9\r\n\r\n", &h, &buf), 0);
    assert_int_equal(h.minor, 1);
    free(buf);
}

static void test_parse_fields_ows(void **state)
{
    struct hark_http_head h;
    char *buf;
    (void)state;

    assert_int_equal(parse("GET / HTTP/1.1\r\n"
                           "Host:example.com\r\n"
                           "X-Spaced: \t spaced  value \t \r\n"
                           "X-Empty:  \t \r\n"
                           "X-Bare:\r\n"
                           "X-Lf: lf ended \n"
                           "X-Utf8: caf\xc3\xa9\r\n"
                           "\r\n", &h, &buf), 0);
    assert_int_equal(h.n_fields, 6);
    assert_string_equal(buf + h.fields[0].name, "Host");
    assert_string_equal(buf + h.fields[0].value, "example.com");
    assert_int_equal(h.fields[1].name, 34);
    assert_string_equal(buf + h.fields[1].name, "X-Spaced");
    /* The value starts after the leading whitespace; inner spaces stay. */
    assert_int_equal(h.fields[1].value, 46);
    assert_string_equal(buf + h.fields[1].value, "spaced  value");
    assert_string_equal(buf + h.fields[2].name, "X-Empty");
    assert_string_equal(buf + h.fields[2].value, "");
    assert_string_equal(buf + h.fields[3].value, "");
    assert_string_equal(buf + h.fields[4].name, "X-Lf");
    assert_string_equal(buf + h.fields[4].value, "lf ended");
    assert_string_equal(buf + h.fields[5].value, "caf\xc3\xa9");
    free(buf);
}

static void test_parse_field_lookup(void **state)
{
    struct hark_http_head h;
    char *buf;
    (void)state;

    assert_int_equal(parse("POST /x HTTP/1.1\r\n"
                           "host: a.example\r\n"
                           "X-Twilio-Signature: sig1\r\n"
                           "x-twilio-signature: sig2\r\n"
                           "\r\n", &h, &buf), 0);
    assert_string_equal(hark_http_head_field(&h, buf, "Host"), "a.example");
    assert_string_equal(hark_http_head_field(&h, buf, "HOST"), "a.example");
    /* The first of two fields of the same name. */
    assert_string_equal(hark_http_head_field(&h, buf, "X-TWILIO-SIGNATURE"), "sig1");
    assert_null(hark_http_head_field(&h, buf, "Content-Type"));
    assert_null(hark_http_head_field(&h, buf, "Hos"));
    assert_null(hark_http_head_field(&h, buf, "Host2"));
    free(buf);
}

static void test_parse_content_length(void **state)
{
    struct hark_http_head h;
    char *buf;
    (void)state;

    assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 1234\r\n\r\n", &h, &buf), 0);
    assert_int_equal(h.has_length, 1);
    assert_int_equal(h.content_length, 1234);
    assert_int_equal(h.chunked, 0);
    free(buf);
    assert_int_equal(parse("POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n", &h, &buf), 0);
    assert_int_equal(h.has_length, 1);
    assert_int_equal(h.content_length, 0);
    free(buf);
    /* Twice the same length is one length. */
    assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 7\r\nX: y\r\n"
                           "CONTENT-LENGTH: 7\r\n\r\n", &h, &buf), 0);
    assert_int_equal(h.content_length, 7);
    free(buf);
    /* The largest accepted: 18 digits. */
    assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 999999999999999999\r\n\r\n",
                           &h, &buf), 0);
    assert_true(h.content_length == 999999999999999999ULL);
    free(buf);

    assert_int_equal(status_of("POST / HTTP/1.1\r\nContent-Length: 7\r\n"
                               "Content-Length: 8\r\n\r\n"), 400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nContent-Length: 7, 7\r\n\r\n"), 400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n"), 400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n"), 400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n"), 400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n"), 400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nContent-Length: \r\n\r\n"), 400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nContent-Length: 1000000000000000000\r\n\r\n"),
                     400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nContent-Length: 18446744073709551617\r\n\r\n"),
                     400);
}

static void test_parse_transfer_encoding(void **state)
{
    struct hark_http_head h;
    char *buf;
    (void)state;

    assert_int_equal(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &h, &buf), 0);
    assert_int_equal(h.chunked, 1);
    assert_int_equal(h.has_length, 0);
    free(buf);
    assert_int_equal(parse("POST / HTTP/1.1\r\ntransfer-encoding:  Chunked \r\n\r\n", &h, &buf), 0);
    assert_int_equal(h.chunked, 1);
    free(buf);

    assert_int_equal(status_of("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), 501);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
                     400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n"), 400);
    /* chunked must be the last coding. */
    assert_int_equal(status_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 400);
    /* Both framings, in either order. */
    assert_int_equal(status_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                               "Content-Length: 5\r\n\r\n"), 400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nContent-Length: 5\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n"), 400);
    /* HTTP/1.0 has no chunked coding. */
    assert_int_equal(status_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
    /*
     * A Transfer-Encoding that names no coding is not "no Transfer-Encoding":
     * a parser in front may still frame the body by it, so Content-Length
     * must not be trusted beside it.
     */
    assert_int_equal(status_of("POST / HTTP/1.1\r\nTransfer-Encoding: \r\n"
                               "Content-Length: 5\r\n\r\n"), 400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nTransfer-Encoding: ,\r\n\r\n"), 400);
}

static void test_parse_connection(void **state)
{
    struct hark_http_head h;
    (void)state;

    assert_int_equal(parse("GET / HTTP/1.1\r\n\r\n", &h, NULL), 0);
    assert_int_equal(h.keep_alive, 1);
    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &h, NULL), 0);
    assert_int_equal(h.keep_alive, 0);
    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n", &h, NULL), 0);
    assert_int_equal(h.keep_alive, 0);
    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", &h, NULL), 0);
    assert_int_equal(h.keep_alive, 1);
    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", &h, NULL), 0);
    assert_int_equal(h.keep_alive, 1);

    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &h, NULL), 0);
    assert_int_equal(h.keep_alive, 0);
    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &h, NULL), 0);
    assert_int_equal(h.keep_alive, 1);
    /* close wins over keep-alive, in either order and across fields. */
    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", &h, NULL), 0);
    assert_int_equal(h.keep_alive, 0);
    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: close\r\n"
                           "Connection: keep-alive\r\n\r\n", &h, NULL), 0);
    assert_int_equal(h.keep_alive, 0);
}

static void test_parse_expect(void **state)
{
    struct hark_http_head h;
    (void)state;

    assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 10\r\n"
                           "Expect: 100-continue\r\n\r\n", &h, NULL), 0);
    assert_int_equal(h.expect_continue, 1);
    assert_int_equal(parse("POST / HTTP/1.1\r\nexpect: 100-Continue \r\n\r\n", &h, NULL), 0);
    assert_int_equal(h.expect_continue, 1);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n"), 417);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nExpect: 100-continue, foo\r\n\r\n"), 417);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nExpect:\r\n\r\n"), 417);
}

static void test_parse_malformed_fields(void **state)
{
    static const char nul_value[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    static const char nul_name[] = "GET / HTTP/1.1\r\nX\0Y: a\r\n\r\n";
    (void)state;

    /* Obsolete line folding, with a space or a tab. */
    assert_int_equal(status_of("GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nX-A: one\r\n\ttwo\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400);
    /* Whitespace before the colon, no colon, no name. */
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost a\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\n: a\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nX(Y): a\r\n\r\n"), 400);
    /* Control bytes in a value; a tab is allowed. */
    assert_int_equal(parse_n(nul_value, sizeof(nul_value) - 1, &(struct hark_http_head){0},
                             NULL), 400);
    assert_int_equal(parse_n(nul_name, sizeof(nul_name) - 1, &(struct hark_http_head){0},
                             NULL), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nX: a\x01" "b\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nX: a\x1f\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nX: a\tb\r\n\r\n"), 0);
    /* A bare CR, in a value, at a line's end, in the request line. */
    assert_int_equal(status_of("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nX: a\r\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nX: a\r\n\rY: b\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\r\nX: a\r\n\r\n"), 400);
    assert_int_equal(status_of("GET /a\rb HTTP/1.1\r\n\r\n"), 400);
}

static void test_parse_too_many_fields(void **state)
{
    char text[4096];
    size_t n = 0;
    struct hark_http_head h;
    char *buf;
    (void)state;

    n += (size_t)snprintf(text + n, sizeof(text) - n, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < HARK_HTTP_MAX_HEADERS; i++) {
        n += (size_t)snprintf(text + n, sizeof(text) - n, "X-%d: %d\r\n", i, i);
    }
    /* Exactly the maximum is accepted... */
    memcpy(text + n, "\r\n", 3);
    assert_int_equal(parse(text, &h, &buf), 0);
    assert_int_equal(h.n_fields, HARK_HTTP_MAX_HEADERS);
    assert_string_equal(buf + h.fields[HARK_HTTP_MAX_HEADERS - 1].name, "X-63");
    assert_string_equal(buf + h.fields[HARK_HTTP_MAX_HEADERS - 1].value, "63");
    free(buf);
    /* ...one more is not. */
    n += (size_t)snprintf(text + n, sizeof(text) - n, "X-last: 1\r\n\r\n");
    assert_true(n < sizeof(text));
    assert_int_equal(status_of(text), 431);
}

/* Heads without their empty line (given to the parser anyway). */
static void test_parse_no_empty_line(void **state)
{
    static const char *const heads[] = {
        "GET / HTTP/1.1\r\nHost: a\r\n",
        "GET / HTTP/1.1\nHost: a\n",
        "GET / HTTP/1.1\r\nHost: a",
        "GET / HTTP/1.1\r\n",
        "GET / HTTP/1.1\r",
        "GET / HTTP/1.1",
        "GET / HTTP/1.1\r\nHost: a\r\n\r",
        "GET",
        "",
    };
    (void)state;

    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        struct hark_http_head h;
        size_t len = strlen(heads[i]);
        char *buf = dup_exact(heads[i], len);

        assert_int_equal(hark_http_parse_head(buf, len, &h), 400);
        free(buf);
    }
}

/* ---- hark_chunked_decode ---- */

/* Extensions (with and without BWS), trailers, a chunk of CRLFs. */
static const char chunked_body[] =
    "4;name=value\r\nWiki\r\n"
    "5\r\npedia\r\n"
    "E ; ext=\"q s\"\r\n in\r\n\r\nchunks.\r\n"
    "0;last\r\n"
    "X-Trailer: a\r\n"
    "Y: b\r\n"
    "\r\n";
static const char chunked_data[] = "Wikipedia in\r\n\r\nchunks.";

static void test_chunked_one_call(void **state)
{
    struct hark_chunked st = {0};
    size_t len = sizeof(chunked_body) - 1;
    char *buf = dup_exact(chunked_body, len);
    (void)state;

    assert_int_equal(hark_chunked_decode(&st, buf, len, 1024), 1);
    assert_int_equal(st.in, len);
    assert_int_equal(st.out, 23);
    assert_memory_equal(buf, chunked_data, 23);
    /* Done stays done. */
    assert_int_equal(hark_chunked_decode(&st, buf, len, 1024), 1);
    assert_int_equal(st.in, len);
    assert_int_equal(st.out, 23);
    free(buf);
}

/*
 * The same body arriving a byte at a time (len grows, same state): nothing
 * is complete before the last byte, everything that arrived is consumed,
 * and the result is the one-call result.
 */
static void test_chunked_bytewise(void **state)
{
    struct hark_chunked st = {0};
    size_t total = sizeof(chunked_body) - 1;
    char *buf = dup_exact(chunked_body, total);
    (void)state;

    for (size_t len = 0; len < total; len++) {
        assert_int_equal(hark_chunked_decode(&st, buf, len, 1024), 0);
        assert_int_equal(st.in, len);
        assert_true(st.out <= st.in);
    }
    assert_int_equal(hark_chunked_decode(&st, buf, total, 1024), 1);
    assert_int_equal(st.in, total);
    assert_int_equal(st.out, 23);
    assert_memory_equal(buf, chunked_data, 23);
    free(buf);
}

/* Two calls split at every point give the one-call result. */
static void test_chunked_split_anywhere(void **state)
{
    size_t total = sizeof(chunked_body) - 1;
    (void)state;

    for (size_t k = 0; k <= total; k++) {
        struct hark_chunked st = {0};
        char *buf = dup_exact(chunked_body, total);

        assert_int_equal(hark_chunked_decode(&st, buf, k, 1024), k == total);
        assert_int_equal(hark_chunked_decode(&st, buf, total, 1024), 1);
        assert_int_equal(st.in, total);
        assert_int_equal(st.out, 23);
        assert_memory_equal(buf, chunked_data, 23);
        free(buf);
    }
}

static size_t decode_all(const char *body, char *out, size_t out_size, size_t max, int *rc)
{
    struct hark_chunked st = {0};
    size_t len = strlen(body);
    char *buf = dup_exact(body, len);

    *rc = hark_chunked_decode(&st, buf, len, max);
    assert_true(st.out <= st.in);
    assert_true(st.in <= len);
    assert_true(st.out < out_size);
    memcpy(out, buf, st.out);
    out[st.out] = '\0';
    free(buf);
    return st.out;
}

/* The status of decoding body whole, with a limit of 1 KiB. */
static int chunked_status(const char *body)
{
    char out[256];
    int rc;

    decode_all(body, out, sizeof(out), 1024, &rc);
    return rc;
}

static void test_chunked_hex_case(void **state)
{
    char out[128];
    int rc;
    (void)state;

    assert_int_equal(decode_all("a\r\n0123456789\r\n"
                                "A\r\nabcdefghij\r\n"
                                "1f\r\n0123456789012345678901234567890\r\n"
                                "1F\r\nABCDEFGHIJKLMNOPQRSTUVWXYZ01234\r\n"
                                "00\r\n\r\n", out, sizeof(out), 1024, &rc), 82);
    assert_int_equal(rc, 1);
    assert_string_equal(out, "0123456789abcdefghij0123456789012345678901234567890"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ01234");
}

/* The next request after the body is left where it was, st->in at its start. */
static void test_chunked_pipelined(void **state)
{
    static const char body[] = "5\r\nhello\r\n0\r\n\r\n";
    static const char next[] = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
    struct hark_chunked st = {0};
    size_t blen = sizeof(body) - 1, nlen = sizeof(next) - 1;
    char *buf = malloc(blen + nlen);
    (void)state;

    assert_non_null(buf);
    memcpy(buf, body, blen);
    memcpy(buf + blen, next, nlen);
    assert_int_equal(hark_chunked_decode(&st, buf, blen + nlen, 1024), 1);
    assert_int_equal(st.in, blen);
    assert_int_equal(st.out, 5);
    assert_memory_equal(buf, "hello", 5);
    assert_memory_equal(buf + st.in, next, nlen);
    /* A later call with more bytes does not touch them either. */
    assert_int_equal(hark_chunked_decode(&st, buf, blen + nlen, 1024), 1);
    assert_int_equal(st.in, blen);
    assert_memory_equal(buf + st.in, next, nlen);
    free(buf);

    /* The same with trailers and bare LFs. */
    memset(&st, 0, sizeof(st));
    buf = dup_exact("1\nx\n0\nT: v\n\nNEXT", 16);
    assert_int_equal(hark_chunked_decode(&st, buf, 16, 1024), 1);
    assert_int_equal(st.in, 12);
    assert_int_equal(st.out, 1);
    assert_memory_equal(buf + 12, "NEXT", 4);
    free(buf);
}

static void test_chunked_limit(void **state)
{
    static const char body[] = "5\r\nhello\r\n4\r\nabcd\r\n0\r\n\r\n";
    char out[64];
    int rc;
    (void)state;

    /* Exactly the limit fits. */
    assert_int_equal(decode_all(body, out, sizeof(out), 9, &rc), 9);
    assert_int_equal(rc, 1);
    assert_string_equal(out, "helloabcd");
    /* One byte less: refused at the second size line, before its data. */
    assert_int_equal(decode_all(body, out, sizeof(out), 8, &rc), 5);
    assert_int_equal(rc, 413);
    assert_int_equal(decode_all(body, out, sizeof(out), 0, &rc), 0);
    assert_int_equal(rc, 413);
    /* Sizes too large for any limit. */
    assert_int_equal(chunked_status("ffffffffffffffff\r\n"), 413);
    assert_int_equal(chunked_status("10000000000000000000\r\n"), 413);
    assert_int_equal(chunked_status("401\r\n"), 413);
}

static void test_chunked_malformed(void **state)
{
    char ext[4200];
    (void)state;

    /* No size. */
    assert_int_equal(chunked_status("\r\nhello\r\n0\r\n\r\n"), 400);
    assert_int_equal(chunked_status(";ext\r\n"), 400);
    assert_int_equal(chunked_status(" 5\r\nhello\r\n0\r\n\r\n"), 400);
    assert_int_equal(chunked_status("5\r\nhello\r\n\r\n"), 400);
    /* Not hex. */
    assert_int_equal(chunked_status("g\r\n"), 400);
    assert_int_equal(chunked_status("5g\r\nhello\r\n0\r\n\r\n"), 400);
    assert_int_equal(chunked_status("-5\r\n"), 400);
    assert_int_equal(chunked_status("0x5\r\nhello\r\n0\r\n\r\n"), 400);
    /* Junk after a chunk's data instead of its CRLF. */
    assert_int_equal(chunked_status("3\r\nabcd\r\n0\r\n\r\n"), 400);
    assert_int_equal(chunked_status("3\r\nabc \r\n0\r\n\r\n"), 400);
    /* Bare CR: in the size line, its extension, after data, in a trailer, at the end. */
    assert_int_equal(chunked_status("3\rabc\r\n0\r\n\r\n"), 400);
    assert_int_equal(chunked_status("3;a\rb\r\nabc\r\n0\r\n\r\n"), 400);
    assert_int_equal(chunked_status("3\r\nabc\rX0\r\n\r\n"), 400);
    assert_int_equal(chunked_status("0\r\nT: a\rb\r\n\r\n"), 400);
    assert_int_equal(chunked_status("0\r\n\rX"), 400);
    /* Control bytes in an extension or a trailer. */
    assert_int_equal(chunked_status("3;a\x01\r\nabc\r\n0\r\n\r\n"), 400);
    assert_int_equal(chunked_status("0\r\nT: a\x7f\r\n\r\n"), 400);
    /* An extension longer than a size line may be. */
    memset(ext, 'e', sizeof(ext));
    memcpy(ext, "1;", 2);
    memcpy(ext + sizeof(ext) - 3, "\r\n", 3);
    assert_int_equal(chunked_status(ext), 400);
}

static void test_chunked_bare_lf(void **state)
{
    char out[64];
    int rc;
    (void)state;

    assert_int_equal(decode_all("4\nWiki\n5;e=1\npedia\r\n0\nT: v\nU: w\r\n\n", out, sizeof(out),
                                1024, &rc), 9);
    assert_int_equal(rc, 1);
    assert_string_equal(out, "Wikipedia");
    assert_int_equal(decode_all("0\n\n", out, sizeof(out), 1024, &rc), 0);
    assert_int_equal(rc, 1);
}

static void test_chunked_incomplete(void **state)
{
    struct hark_chunked st = {0};
    char *buf = dup_exact("4\r\nWi", 5);
    char out[16];
    int rc;
    (void)state;

    assert_int_equal(hark_chunked_decode(&st, buf, 5, 1024), 0);
    assert_int_equal(st.in, 5);
    assert_int_equal(st.out, 2);
    assert_memory_equal(buf, "Wi", 2);
    free(buf);
    /* Complete up to the trailer section, which has not ended. */
    decode_all("2\r\nab\r\n0\r\nT: v\r\n", out, sizeof(out), 1024, &rc);
    assert_int_equal(rc, 0);
    decode_all("2\r\nab\r\n0\r\n", out, sizeof(out), 1024, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(chunked_status(""), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_end_crlf),
        cmocka_unit_test(test_head_end_bare_lf),
        cmocka_unit_test(test_head_end_incomplete),
        cmocka_unit_test(test_head_end_resume_bytewise),
        cmocka_unit_test(test_head_end_leading_empty_line),
        cmocka_unit_test(test_parse_request_line),
        cmocka_unit_test(test_parse_versions),
        cmocka_unit_test(test_parse_fields_ows),
        cmocka_unit_test(test_parse_field_lookup),
        cmocka_unit_test(test_parse_content_length),
        cmocka_unit_test(test_parse_transfer_encoding),
        cmocka_unit_test(test_parse_connection),
        cmocka_unit_test(test_parse_expect),
        cmocka_unit_test(test_parse_malformed_fields),
        cmocka_unit_test(test_parse_too_many_fields),
        cmocka_unit_test(test_parse_no_empty_line),
        cmocka_unit_test(test_chunked_one_call),
        cmocka_unit_test(test_chunked_bytewise),
        cmocka_unit_test(test_chunked_split_anywhere),
        cmocka_unit_test(test_chunked_hex_case),
        cmocka_unit_test(test_chunked_pipelined),
        cmocka_unit_test(test_chunked_limit),
        cmocka_unit_test(test_chunked_malformed),
        cmocka_unit_test(test_chunked_bare_lf),
        cmocka_unit_test(test_chunked_incomplete),
    };
    return cmocka_run_group_tests_name("http_parse", tests, NULL, NULL);
}
