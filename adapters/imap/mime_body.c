/*
 * hark: the MIME tree walk (body choice, attachments) and charset
 * conversion to UTF-8.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hark/alloc.h"
#include "hark/text.h"
#include "mime_priv.h"

/* A growing byte buffer on hark_malloc. */
struct buf {
    char *p;
    size_t n, cap;
    int oom;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->oom) {
        return;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *g;
        while (cap < b->n + n + 1) {
            cap *= 2;
        }
        g = hark_realloc(b->p, cap);
        if (g == NULL) {
            b->oom = 1;
            return;
        }
        b->p = g;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len, i;

    if (s[0] < 0x80) {
        return 1;
    }
    len = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || len > n) {
        return 0;
    }
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    return hark_utf8_valid((const char *)s, len) ? len : 0;
}

/*
 * Copy UTF-8-ish bytes into b: invalid sequences become U+FFFD, NUL is
 * dropped, CRLF and lone CR become LF. With one_line, every control
 * character becomes a space.
 */
static void add_clean(struct buf *b, const char *s, size_t n, int one_line)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, k;

    while (i < n) {
        if (u[i] == '\0') {
            i++;
        } else if (u[i] < 0x20 || u[i] == 0x7f) {
            if (one_line) {
                buf_add(b, " ", 1);
            } else if (u[i] == '\r') {
                buf_add(b, "\n", 1);
                if (i + 1 < n && u[i + 1] == '\n') {
                    i++;
                }
            } else if (u[i] == '\n' || u[i] == '\t' || u[i] == '\f') {
                buf_add(b, u[i] == '\f' ? "\n" : (const char *)&u[i], 1);
            }
            i++;
        } else if ((k = utf8_seq(u + i, n - i)) > 0) {
            buf_add(b, s + i, k);
            i += k;
        } else {
            buf_add(b, "\xef\xbf\xbd", 3);
            i++;
        }
    }
}

char *mime_clean_line(const char *s)
{
    struct buf b = {0};
    size_t start = 0, end;

    if (s == NULL) {
        return NULL;
    }
    add_clean(&b, s, strlen(s), 1);
    buf_add(&b, "", 0);
    if (b.oom) {
        hark_free(b.p);
        return NULL;
    }
    end = b.n;
    while (start < end && b.p[start] == ' ') {
        start++;
    }
    while (end > start && b.p[end - 1] == ' ') {
        end--;
    }
    memmove(b.p, b.p + start, end - start);
    b.p[end - start] = '\0';
    return b.p;
}

/* 1 when data has a byte >= 0x80. */
static int has_8bit(const char *data, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if ((unsigned char)data[i] >= 0x80) {
            return 1;
        }
    }
    return 0;
}

/*
 * 1 when data is mostly UTF-8: more valid multi-byte sequences than
 * invalid bytes (Latin text almost never forms valid sequences).
 */
static int mostly_utf8(const char *data, size_t len)
{
    const unsigned char *u = (const unsigned char *)data;
    size_t i = 0, good = 0, bad = 0, k;

    while (i < len) {
        if (u[i] < 0x80) {
            i++;
        } else if ((k = utf8_seq(u + i, len - i)) > 0) {
            good++;
            i += k;
        } else {
            bad++;
            i++;
        }
    }
    return good > bad;
}

/*
 * data converted from charset by iconv into *out_len bytes, or NULL when
 * any byte is invalid.
 */
static char *try_convert(const char *data, size_t len, const char *charset, size_t *out_len)
{
    GError *err = NULL;
    gsize out_len_g = 0;
    const char *name = g_mime_charset_iconv_name(charset);
    char *out = g_convert(data, (gssize)len, "UTF-8", name ? name : charset, NULL, &out_len_g, &err);

    if (err != NULL) {
        g_error_free(err);
        g_free(out);
        return NULL;
    }
    *out_len = out_len_g;
    return out;
}

char *mime_to_utf8(const char *data, size_t len, const char *charset)
{
    struct buf b = {0};
    char *conv = NULL;
    size_t conv_len = 0;
    int latin = 0;

    if (charset != NULL) {
        latin = strcasecmp(charset, "iso-8859-1") == 0 || strcasecmp(charset, "latin1") == 0 ||
                strcasecmp(charset, "us-ascii") == 0 || strcasecmp(charset, "ascii") == 0 ||
                strcasecmp(charset, "windows-1252") == 0 || strcasecmp(charset, "cp1252") == 0 ||
                strcasecmp(charset, "iso-8859-15") == 0;
    }
    if (!has_8bit(data, len) && (charset == NULL || latin || strncasecmp(charset, "utf", 3) == 0)) {
        add_clean(&b, data, len, 0);
    } else if ((charset == NULL || latin || strncasecmp(charset, "utf-8", 5) == 0 ||
                strcasecmp(charset, "utf8") == 0) && hark_utf8_valid(data, len)) {
        /* Declared UTF-8, none, or a Latin label on bytes that are valid UTF-8. */
        add_clean(&b, data, len, 0);
    } else {
        if (charset != NULL && !latin && strncasecmp(charset, "utf-8", 5) != 0) {
            conv = try_convert(data, len, charset, &conv_len);
        }
        if (conv == NULL && !latin && mostly_utf8(data, len)) {
            add_clean(&b, data, len, 0);
        } else {
            if (conv == NULL && (charset == NULL || strcasecmp(charset, "iso-8859-15") != 0)) {
                conv = try_convert(data, len, "windows-1252", &conv_len);
            }
            if (conv == NULL) {
                conv = try_convert(data, len, charset && !strcasecmp(charset, "iso-8859-15")
                                                  ? "iso-8859-15" : "iso-8859-1", &conv_len);
            }
            if (conv != NULL) {
                add_clean(&b, conv, conv_len, 0);
            } else {
                add_clean(&b, data, len, 0);
            }
        }
    }
    g_free(conv);
    buf_add(&b, "", 0);
    if (b.oom) {
        hark_free(b.p);
        return NULL;
    }
    return b.p;
}

/* The decoded content of a leaf part in a new GByteArray-backed stream. */
static GMimeStream *part_content(GMimePart *part)
{
    GMimeDataWrapper *dw = g_mime_part_get_content(part);
    GMimeStream *mem = g_mime_stream_mem_new();

    if (dw != NULL) {
        g_mime_data_wrapper_write_to_stream(dw, mem);
    }
    return mem;
}

/* Undo format=flowed soft breaks (RFC 3676) in place. */
static void unflow(char *s, int delsp)
{
    char *r = s, *wp = s;

    while (*r) {
        char *nl = strchr(r, '\n');
        size_t n = nl ? (size_t)(nl - r) : strlen(r);
        int soft = nl != NULL && n > 0 && r[n - 1] == ' ' && !(n == 3 && strncmp(r, "-- ", 3) == 0);
        if (*r == ' ') {        /* space stuffing */
            r++;
            n--;
        }
        memmove(wp, r, n);
        wp += n;
        if (soft && delsp) {
            wp--;
        }
        if (nl == NULL) {
            break;
        }
        if (!soft) {
            *wp++ = '\n';
        }
        r = nl + 1;
    }
    *wp = '\0';
}

/* The text of a text/... part as UTF-8 (hark_malloc'd) or NULL. */
static char *part_text(GMimePart *part)
{
    GMimeObject *o = GMIME_OBJECT(part);
    GMimeStream *mem = part_content(part);
    GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    const char *fmt = g_mime_object_get_content_type_parameter(o, "format");
    const char *delsp = g_mime_object_get_content_type_parameter(o, "delsp");
    char *text = mime_to_utf8(ba->len ? (const char *)ba->data : "", ba->len,
                              g_mime_object_get_content_type_parameter(o, "charset"));

    g_object_unref(mem);
    if (text != NULL && fmt != NULL && strcasecmp(fmt, "flowed") == 0) {
        unflow(text, delsp != NULL && strcasecmp(delsp, "yes") == 0);
    }
    return text;
}

/* Record an attachment and, when small enough, its bytes as a blob. */
static int add_attachment(struct mime_walk *w, const char *ctype, const char *filename,
                          const unsigned char *data, size_t len)
{
    struct hark_msg *msg = w->res->msg;
    char *name = mime_clean_line(filename);
    int rc;

    if (msg->n_attachments == HARK_MAX_ATTACHMENTS) {
        hark_free(name);
        w->truncated = 1;
        return 0;
    }
    rc = hark_msg_add_attachment(msg, NULL, ctype, name && name[0] ? name : NULL,
                                 (int64_t)len, NULL);
    hark_free(name);
    if (rc < 0) {
        return -1;
    }
    if (len <= w->max_attachment) {
        struct hark_mime_blob *g = hark_realloc(w->res->blobs,
                                                (w->res->n_blobs + 1) * sizeof(*g));
        unsigned char *copy = hark_malloc(len);
        if (g == NULL || copy == NULL) {
            if (g != NULL) {
                w->res->blobs = g;
            }
            hark_free(copy);
            return -1;
        }
        w->res->blobs = g;
        if (len > 0) {
            memcpy(copy, data, len);
        }
        g[w->res->n_blobs].attachment_index = msg->n_attachments - 1;
        g[w->res->n_blobs].data = copy;
        g[w->res->n_blobs].len = len;
        w->res->n_blobs++;
    }
    return 0;
}

static void walk_why(struct mime_walk *w, const char *text)
{
    if (w->why != NULL && w->why_len > 0) {
        snprintf(w->why, w->why_len, "%s", text);
    }
}

/* A leaf: body text (when wanted) or an attachment. */
static int walk_leaf(struct mime_walk *w, GMimePart *part, int body_wanted)
{
    GMimeObject *o = GMIME_OBJECT(part);
    GMimeContentType *ct = g_mime_object_get_content_type(o);
    GMimeContentDisposition *cd = g_mime_object_get_content_disposition(o);
    const char *filename = g_mime_part_get_filename(part);
    int is_plain = g_mime_content_type_is_type(ct, "text", "plain");
    int is_html = g_mime_content_type_is_type(ct, "text", "html");
    int attached = (cd != NULL && g_mime_content_disposition_is_attachment(cd)) || filename != NULL;
    GMimeStream *mem;
    GByteArray *ba;
    char *mt;
    int rc;

    if ((is_plain || is_html) && !attached) {
        char *text;
        if (!body_wanted || (is_html && (w->html != NULL || w->plain != NULL))) {
            return 0;
        }
        if ((text = part_text(part)) == NULL) {
            walk_why(w, "out of memory decoding a text part");
            return -1;
        }
        if (is_html) {
            w->html = text;
            return 0;
        }
        if (w->plain == NULL) {
            w->plain = text;
            w->plain_len = strlen(text);
            return 0;
        }
        {
            struct buf b = {w->plain, w->plain_len, w->plain_len + 1, 0};
            buf_add(&b, "\n", 1);
            buf_add(&b, text, strlen(text));
            hark_free(text);
            w->plain = b.p;
            w->plain_len = b.n;
            if (b.oom) {
                walk_why(w, "out of memory joining text parts");
                return -1;
            }
        }
        return 0;
    }
    mem = part_content(part);
    ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    mt = g_mime_content_type_get_mime_type(ct);
    rc = add_attachment(w, mt, filename, ba->data, ba->len);
    g_free(mt);
    g_object_unref(mem);
    if (rc < 0) {
        walk_why(w, "out of memory keeping an attachment");
    }
    return rc;
}

/* message/rfc822: one attachment for the whole message, then its attachments. */
static int walk_message(struct mime_walk *w, GMimeMessagePart *mp, size_t depth)
{
    GMimeMessage *inner = g_mime_message_part_get_message(mp);
    GMimeStream *mem;
    GByteArray *ba;
    const char *subject;
    int rc;

    if (inner == NULL) {
        return 0;
    }
    subject = g_mime_message_get_subject(inner);
    mem = g_mime_stream_mem_new();
    g_mime_object_write_to_stream(GMIME_OBJECT(inner), NULL, mem);
    ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    rc = add_attachment(w, "message/rfc822", subject ? subject : "message", ba->data, ba->len);
    g_object_unref(mem);
    if (rc < 0) {
        walk_why(w, "out of memory keeping an attached message");
        return -1;
    }
    if (g_mime_message_get_mime_part(inner) == NULL) {
        return 0;
    }
    return mime_walk_object(w, g_mime_message_get_mime_part(inner), depth + 1, 0);
}

/* Index of the alternative to read as the body: text/plain, else html, else the last. */
static int pick_alternative(GMimeMultipart *mp)
{
    int i, n = g_mime_multipart_get_count(mp), html = -1;

    for (i = 0; i < n; i++) {
        GMimeObject *c = g_mime_multipart_get_part(mp, i);
        GMimeContentType *ct = g_mime_object_get_content_type(c);
        if (GMIME_IS_PART(c) && g_mime_content_type_is_type(ct, "text", "plain")) {
            return i;
        }
        if (html < 0 && GMIME_IS_PART(c) && g_mime_content_type_is_type(ct, "text", "html")) {
            html = i;
        }
    }
    return html >= 0 ? html : n - 1;
}

int mime_walk_object(struct mime_walk *w, GMimeObject *obj, size_t depth, int body_wanted)
{
    if (++w->n_parts > w->max_parts) {
        walk_why(w, "too many MIME parts");
        return -1;
    }
    if (depth > w->max_depth) {
        walk_why(w, "MIME nesting too deep");
        return -1;
    }
    if (g_mime_header_list_get_count(g_mime_object_get_header_list(obj)) > MIME_MAX_HEADERS) {
        walk_why(w, "too many header fields in a MIME part");
        return -1;
    }
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        GMimeContentType *ct = g_mime_object_get_content_type(obj);
        int i, n = g_mime_multipart_get_count(mp), chosen = -1;
        if (body_wanted && g_mime_content_type_is_type(ct, "multipart", "alternative")) {
            chosen = pick_alternative(mp);
        }
        for (i = 0; i < n; i++) {
            int want = chosen < 0 ? body_wanted : (i == chosen);
            if (mime_walk_object(w, g_mime_multipart_get_part(mp, i), depth + 1, want) < 0) {
                return -1;
            }
        }
        return 0;
    }
    if (GMIME_IS_MESSAGE_PART(obj)) {
        return walk_message(w, GMIME_MESSAGE_PART(obj), depth);
    }
    if (GMIME_IS_PART(obj)) {
        return walk_leaf(w, GMIME_PART(obj), body_wanted);
    }
    return 0;
}
