/*
 * HTTP/1.1 request framing (RFC 9112): the request head and chunked bodies.
 *
 * Strict where leniency lets two parsers disagree about where a request
 * ends (request smuggling): both Content-Length and Transfer-Encoding, two
 * different lengths, obsolete line folding and stray control bytes are all
 * refused. Lenient where the RFC allows it: a bare LF ends a line, and one
 * empty line before the request line is ignored.
 */
#include <string.h>
#include <strings.h>

#include "http_parse.h"
#include "hark/text.h"

/* RFC 9110 tchar: the bytes of a token (method, field name). */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return 1;
    }
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value's bytes: visible ASCII, space, tab and obs-text. */
static int is_value_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/*
 * The end of the line starting at i: sets *next to the start of the next
 * line and returns the index of its CR or LF, or -1 on a CR not followed
 * by LF or a line that runs off the head.
 */
static long line_end_at(const char *buf, size_t len, size_t i, size_t *next)
{
    if (i < len && buf[i] == '\n') {
        *next = i + 1;
        return (long)i;
    }
    if (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n') {
        *next = i + 2;
        return (long)i;
    }
    return -1;
}

size_t hark_http_head_end(const char *buf, size_t len, size_t *scan)
{
    size_t i = *scan;

    while (i < len) {
        const char *lf = memchr(buf + i, '\n', len - i);
        if (lf == NULL) {
            i = len;
            break;
        }
        i = (size_t)(lf - buf);
        if (i + 1 == len) {
            break;
        }
        if (buf[i + 1] == '\n') {
            return i + 2;
        }
        if (buf[i + 1] == '\r') {
            if (i + 2 == len) {
                break;
            }
            if (buf[i + 2] == '\n') {
                return i + 3;
            }
        }
        i++;
    }
    *scan = i;
    return 0;
}

/* Each element of a comma-separated list, without surrounding whitespace. */
typedef int (*list_item_fn)(struct hark_http_head *h, const char *item, size_t n);

static int for_each_item(struct hark_http_head *h, const char *v, list_item_fn fn)
{
    while (*v != '\0') {
        const char *start, *end;
        size_t n;
        int rc;

        while (*v == ' ' || *v == '\t' || *v == ',') {
            v++;
        }
        start = v;
        while (*v != '\0' && *v != ',') {
            v++;
        }
        end = v;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }
        n = (size_t)(end - start);
        if (n > 0 && (rc = fn(h, start, n)) != 0) {
            return rc;
        }
    }
    return 0;
}

/* Transfer-Encoding: chunked, once and last; no other coding is supported. */
static int transfer_coding(struct hark_http_head *h, const char *item, size_t n)
{
    if (h->chunked) {
        return 400;
    }
    if (!hark_strncaseeq(item, n, "chunked")) {
        return 501;
    }
    h->chunked = 1;
    return 0;
}

/* Connection options: close and keep-alive (bits 1 and 2 of keep_alive meanwhile). */
static int connection_option(struct hark_http_head *h, const char *item, size_t n)
{
    if (hark_strncaseeq(item, n, "close")) {
        h->keep_alive |= 1;
    } else if (hark_strncaseeq(item, n, "keep-alive")) {
        h->keep_alive |= 2;
    }
    return 0;
}

static int content_length(struct hark_http_head *h, const char *v)
{
    uint64_t n = 0;
    size_t digits = 0;

    for (; *v >= '0' && *v <= '9'; v++, digits++) {
        if (digits == 18) {
            return 400;     /* beyond any body we would take */
        }
        n = n * 10 + (uint64_t)(*v - '0');
    }
    if (digits == 0 || *v != '\0' || (h->has_length && h->content_length != n)) {
        return 400;
    }
    h->has_length = 1;
    h->content_length = n;
    return 0;
}

/* What the fields that frame the request say. */
static int apply_field(struct hark_http_head *h, const char *name, const char *value)
{
    if (strcasecmp(name, "content-length") == 0) {
        return content_length(h, value);
    }
    if (strcasecmp(name, "transfer-encoding") == 0) {
        int rc = for_each_item(h, value, transfer_coding);
        /*
         * A Transfer-Encoding naming no coding ("" or ",") is still one
         * without chunked last (RFC 9112 6.3): a parser in front may frame
         * the body by it, so Content-Length must not be trusted beside it.
         */
        return rc == 0 && !h->chunked ? 400 : rc;
    }
    if (strcasecmp(name, "connection") == 0) {
        return for_each_item(h, value, connection_option);
    }
    if (strcasecmp(name, "expect") == 0) {
        if (strcasecmp(value, "100-continue") != 0) {
            return 417;
        }
        h->expect_continue = 1;
    }
    return 0;
}

/* "METHOD SP target SP HTTP/1.x": sets method, target, minor and *next. */
static int parse_request_line(char *buf, size_t len, struct hark_http_head *h, size_t *next)
{
    size_t i = 0, start;
    long eol;

    /* One empty line before the request line is ignored (RFC 9112 2.2). */
    if (line_end_at(buf, len, 0, &i) != 0) {
        i = 0;
    }
    start = i;
    while (i < len && is_tchar((unsigned char)buf[i])) {
        i++;
    }
    if (i == start || i >= len || buf[i] != ' ') {
        return 400;
    }
    buf[i++] = '\0';
    h->method = (uint32_t)start;
    start = i;
    while (i < len && (unsigned char)buf[i] > 0x20 && (unsigned char)buf[i] < 0x7f) {
        i++;
    }
    if (i == start || i >= len || buf[i] != ' ') {
        return 400;
    }
    buf[i++] = '\0';
    h->target = (uint32_t)start;
    if (len - i < 8 || memcmp(buf + i, "HTTP/", 5) != 0 || buf[i + 6] != '.' ||
        buf[i + 5] < '0' || buf[i + 5] > '9' || buf[i + 7] < '0' || buf[i + 7] > '9') {
        return 400;
    }
    if (buf[i + 5] != '1') {
        return 505;
    }
    /* A later 1.x minor is answered as 1.1 (RFC 9110 6.2). */
    h->minor = buf[i + 7] == '0' ? 0 : 1;
    eol = line_end_at(buf, len, i + 8, next);
    return eol < 0 ? 400 : 0;
}

/* One "name: value" line at *pos; advances *pos past it. */
static int parse_field(char *buf, size_t len, struct hark_http_head *h, size_t *pos)
{
    size_t i = *pos, name = i, value, end;
    int rc;

    if (buf[i] == ' ' || buf[i] == '\t') {
        return 400;         /* obsolete line folding */
    }
    while (i < len && is_tchar((unsigned char)buf[i])) {
        i++;
    }
    if (i == name || i >= len || buf[i] != ':') {
        return 400;         /* no name, or whitespace before the colon */
    }
    buf[i++] = '\0';
    while (i < len && (buf[i] == ' ' || buf[i] == '\t')) {
        i++;
    }
    value = i;
    while (i < len && is_value_byte((unsigned char)buf[i])) {
        i++;
    }
    if (line_end_at(buf, len, i, pos) < 0) {
        return 400;         /* a control byte, or a CR without LF */
    }
    end = i;
    while (end > value && (buf[end - 1] == ' ' || buf[end - 1] == '\t')) {
        end--;
    }
    buf[end] = '\0';
    if (h->n_fields == HARK_HTTP_MAX_HEADERS) {
        return 431;
    }
    h->fields[h->n_fields].name = (uint32_t)name;
    h->fields[h->n_fields].value = (uint32_t)value;
    h->n_fields++;
    rc = apply_field(h, buf + name, buf + value);
    return rc;
}

int hark_http_parse_head(char *buf, size_t len, struct hark_http_head *h)
{
    size_t i = 0, next;
    int rc;

    memset(h, 0, sizeof(*h));
    if (len > UINT32_MAX) {
        return 431;
    }
    rc = parse_request_line(buf, len, h, &i);
    if (rc != 0) {
        return rc;
    }
    while (line_end_at(buf, len, i, &next) < 0) {
        if (i >= len) {
            return 400;     /* the head lacks its empty line */
        }
        rc = parse_field(buf, len, h, &i);
        if (rc != 0) {
            return rc;
        }
    }
    if (h->chunked && (h->has_length || h->minor == 0)) {
        return 400;         /* two framings, or chunked in HTTP/1.0 */
    }
    /* keep_alive held the options seen: 1 close, 2 keep-alive. */
    if (h->keep_alive & 1) {
        h->keep_alive = 0;
    } else {
        h->keep_alive = h->minor == 1 || (h->keep_alive & 2);
    }
    return 0;
}

const char *hark_http_head_field(const struct hark_http_head *h, const char *buf,
                                 const char *name)
{
    for (size_t i = 0; i < h->n_fields; i++) {
        if (strcasecmp(buf + h->fields[i].name, name) == 0) {
            return buf + h->fields[i].value;
        }
    }
    return NULL;
}

/* Chunked framing limits: a size line's extensions, and the trailer section. */
#define CHUNK_LINE_MAX 4096
#define TRAILER_MAX 8192

enum {
    CH_SIZE,            /* hex digits of a chunk size */
    CH_EXT,             /* chunk extensions, ignored up to the line's end */
    CH_SIZE_LF,         /* CR seen after the size line */
    CH_DATA,
    CH_DATA_END,        /* the CRLF after a chunk's data */
    CH_DATA_LF,
    CH_TRAILER,         /* start of a trailer line (or the final empty line) */
    CH_TRAILER_LINE,
    CH_TRAILER_LF,      /* CR seen inside a trailer line */
    CH_END_LF,          /* CR of the final empty line */
    CH_DONE,
};

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

/* The size line ended: a data chunk follows, or the last-chunk's trailers. */
static int size_line_done(struct hark_chunked *st, size_t max)
{
    st->digits = 0;
    st->line = 0;
    if (st->left == 0) {
        st->state = CH_TRAILER;
        return 0;
    }
    if (st->left > max - st->out) {
        return 413;
    }
    st->state = CH_DATA;
    return 0;
}

/* One framing byte c (not chunk data). Returns 0, 1 (body complete) or a status. */
static int chunk_framing_byte(struct hark_chunked *st, unsigned char c, size_t max)
{
    int d;

    switch (st->state) {
    case CH_SIZE:
        d = hex_value(c);
        if (d >= 0) {
            if (st->digits == 15) {
                return 413;     /* 2^60 bytes: more than any limit */
            }
            st->left = st->left * 16 + (uint64_t)d;
            st->digits++;
            return 0;
        }
        if (st->digits == 0) {
            return 400;
        }
        if (c == ';' || c == ' ' || c == '\t') {
            st->state = CH_EXT;
            return 0;
        }
        if (c == '\r') {
            st->state = CH_SIZE_LF;
            return 0;
        }
        return c == '\n' ? size_line_done(st, max) : 400;
    case CH_EXT:
        if (c == '\r') {
            st->state = CH_SIZE_LF;
            return 0;
        }
        if (c == '\n') {
            return size_line_done(st, max);
        }
        return (++st->line > CHUNK_LINE_MAX || !is_value_byte(c)) ? 400 : 0;
    case CH_SIZE_LF:
        return c == '\n' ? size_line_done(st, max) : 400;
    case CH_DATA_END:
        if (c == '\r') {
            st->state = CH_DATA_LF;
            return 0;
        }
        /* A bare LF ends the line too. */
        __attribute__((fallthrough));
    case CH_DATA_LF:
        if (c != '\n') {
            return 400;
        }
        st->state = CH_SIZE;
        st->left = 0;
        return 0;
    case CH_TRAILER:
        if (c == '\r') {
            st->state = CH_END_LF;
            return 0;
        }
        if (c == '\n') {
            st->state = CH_DONE;
            return 1;
        }
        st->state = CH_TRAILER_LINE;
        /* The byte belongs to the trailer line. */
        __attribute__((fallthrough));
    case CH_TRAILER_LINE:
        if (++st->line > TRAILER_MAX) {
            return 400;
        }
        if (c == '\n') {
            st->state = CH_TRAILER;
        } else if (c == '\r') {
            st->state = CH_TRAILER_LF;
        } else if (!is_value_byte(c)) {
            return 400;
        }
        return 0;
    case CH_TRAILER_LF:
        if (c != '\n') {
            return 400;
        }
        st->state = CH_TRAILER;
        return 0;
    case CH_END_LF:
        if (c != '\n') {
            return 400;
        }
        st->state = CH_DONE;
        return 1;
    default:
        return 1;
    }
}

int hark_chunked_decode(struct hark_chunked *st, char *buf, size_t len, size_t max)
{
    if (st->state == CH_DONE) {
        return 1;
    }
    while (st->in < len) {
        int rc;

        if (st->state == CH_DATA) {
            /* Data moves down over the framing already consumed: out <= in. */
            size_t n = len - st->in;
            if (n > st->left) {
                n = (size_t)st->left;
            }
            memmove(buf + st->out, buf + st->in, n);
            st->out += n;
            st->in += n;
            st->left -= n;
            if (st->left == 0) {
                st->state = CH_DATA_END;
            }
            continue;
        }
        rc = chunk_framing_byte(st, (unsigned char)buf[st->in], max);
        st->in++;
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}
