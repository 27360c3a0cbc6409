/*
 * hark: email (RFC 5322 / MIME) to normalized message, pure functions.
 *
 * Agreed interface between the MIME parser (mime*.c, reply.c, html.c) and
 * the IMAP client (imap*.c). The parser does no I/O: attachment contents
 * come back in memory and hark_mime_save_attachments() writes them.
 */
#ifndef HARK_IMAP_MIME_H
#define HARK_IMAP_MIME_H

#include <stddef.h>
#include <stdint.h>

#include "hark/msg.h"

struct hark_mime_opts {
    const char *account;            /* channel instance name (msg->account) */
    const char *mailbox_address;    /* our address, lowercased; may be NULL */
    size_t max_attachment_size;     /* larger attachments are listed, not kept */
    size_t max_parts;               /* bound on MIME parts (0: 256) */
    size_t max_depth;               /* bound on multipart/rfc822 nesting (0: 16) */
};

/* An attachment body kept in memory until saved. */
struct hark_mime_blob {
    size_t attachment_index;        /* index into msg->attachments */
    unsigned char *data;            /* owned */
    size_t len;
};

struct hark_mime_result {
    struct hark_msg *msg;           /* owned; channel "email", provider "imap" */
    struct hark_mime_blob *blobs;   /* owned */
    size_t n_blobs;
    int auto_generated;             /* Auto-Submitted, Precedence bulk/list/junk, bounce, vacation */
    const char *auto_reason;        /* static, when auto_generated */
};

/*
 * Parse a raw message. Fills res (msg with from, to, subject, text,
 * reply_text, attachments, thread: message_id/in_reply_to/references,
 * thread_refs, own_ref, idents[0] = email of the sender, thread_key,
 * provider_message_id = Message-ID or a digest when absent, sent_at).
 * Returns 0, or -1 with a sentence in why (nothing allocated is left).
 */
int hark_mime_parse(const char *raw, size_t len, const struct hark_mime_opts *opts,
                    struct hark_mime_result *res, char *why, size_t why_len);

void hark_mime_result_clear(struct hark_mime_result *res);

/*
 * Write each blob under dir with a content-addressed name (sha256 hex +
 * extension) and set the attachment url to url_base + "/" + name. I/O.
 * Returns 0 or -1 with why.
 */
int hark_mime_save_attachments(struct hark_mime_result *res, const char *dir,
                               const char *url_base, char *why, size_t why_len);

/*
 * The new part of a reply: text without quoted history, attribution lines
 * ("On ... wrote:" in EN/ES/PT/FR/DE, Outlook headers blocks), "> " quotes,
 * signatures ("-- ", "Sent from my iPhone", ...). Returns a new string
 * (hark_malloc) or NULL on allocation failure.
 */
char *hark_reply_strip(const char *text, size_t len);

/*
 * Readable UTF-8 text from an HTML document: no tags, scripts or styles,
 * block elements as line breaks, links kept as "text <url>". New string
 * or NULL.
 */
char *hark_html_to_text(const char *html, size_t len);

#endif
