/*
 * hark: internals shared by mime.c, mime_body.c and mime_save.c.
 *
 * Not part of the agreed interface (mime.h); the IMAP client must not
 * include this header.
 */
#ifndef HARK_IMAP_MIME_PRIV_H
#define HARK_IMAP_MIME_PRIV_H

#include <stddef.h>

#include <gmime/gmime.h>

#include "mime.h"

#define MIME_DEFAULT_MAX_PARTS 256
#define MIME_DEFAULT_MAX_DEPTH 16
#define MIME_DEFAULT_MAX_ATTACHMENT (10u * 1024u * 1024u)
#define MIME_MAX_HEADERS 1000       /* header fields in one entity */
#define MIME_MAX_RAW (64u * 1024u * 1024u)

/* What a walk over the MIME tree collects. */
struct mime_walk {
    const struct hark_mime_opts *opts;
    struct hark_mime_result *res;
    size_t max_parts;
    size_t max_depth;
    size_t max_attachment;
    size_t n_parts;
    char *plain;            /* hark_malloc'd UTF-8, the text/plain body */
    size_t plain_len;
    char *html;             /* hark_malloc'd UTF-8, the first text/html body */
    int truncated;          /* more attachments than HARK_MAX_ATTACHMENTS */
    char *why;
    size_t why_len;
};

/*
 * Walk the tree under obj (depth 0 at the message body): pick the body,
 * list attachments with their blobs. Returns 0 or -1 with w->why set.
 */
int mime_walk_object(struct mime_walk *w, GMimeObject *obj, size_t depth, int body_wanted);

/*
 * Bytes in charset label (may be NULL) to a NUL-terminated UTF-8 string,
 * CRLF folded to LF, NUL bytes dropped, invalid bytes never kept. The
 * fallback order is in docs/email.md. hark_malloc'd; NULL on no memory.
 */
char *mime_to_utf8(const char *data, size_t len, const char *charset);

/*
 * A copy of a header value fit for one line of UTF-8: invalid bytes
 * replaced with U+FFFD, control characters as spaces, outer spaces
 * trimmed. NULL in gives NULL out (and NULL on no memory).
 */
char *mime_clean_line(const char *s);

/* Message-ID without surrounding space, always as "<id>". hark_malloc'd. */
char *mime_bracket_id(const char *id);

#endif
