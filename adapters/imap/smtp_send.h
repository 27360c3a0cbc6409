/*
 * Email replies over SMTP (smtp_send.c): the imap adapter puts
 * smtp_build_send and smtp_read_send into its ops table.
 *
 * The call is sent with curl's SMTP: url = the channel's smtp_url,
 * mail_from/rcpt_to = the envelope, body = the RFC 5322 message. The
 * delivery calls smtp_read_send with the last SMTP reply code as the status
 * and, as the "answer", the message that was sent (an SMTP server answers
 * no message id): the provider message id is the Message-ID we wrote, which
 * the ingest side records as a thread reference so the customer's answer
 * files into the same conversation.
 */
#ifndef HARK_SMTP_SEND_H
#define HARK_SMTP_SEND_H

#include <stddef.h>
#include <stdint.h>

#include "hark/channel.h"

/* Most Message-IDs kept in References (the first one and the newest ones). */
#define SMTP_MAX_REFERENCES 40

/*
 * Compose the reply as an RFC 5322 message: From, To, Subject ("Re: "
 * once, RFC 2047 when not ASCII), Date (now_ms), Message-ID, In-Reply-To
 * (ob->reply_to), References (ob->references + reply_to), MIME-Version and
 * a text/plain UTF-8 body (7bit when plain ASCII with short lines, else
 * quoted-printable); attachment URLs are listed as links after the text.
 * `from` is the From header value ("Name <addr>" or "addr"). Pure. Returns
 * a new NUL-terminated string with *len set, or NULL with err filled.
 */
char *smtp_compose(const struct hark_outbound *ob, const char *from, const char *message_id,
                   int64_t now_ms, size_t *len, char *err, size_t err_len);

/* The Message-ID of our reply: "<hark.ID@domain of from>". 0 or -1. */
int smtp_message_id(const char *our_id, const char *from, char *out, size_t cap);

/* Subject of the reply: "Re: " + subject without its own Re: prefixes. New string or NULL. */
char *smtp_reply_subject(const char *subject);

int smtp_build_send(const struct hark_channel *ch, const struct hark_outbound *ob,
                    struct hark_http_call *call, char *err, size_t err_len);

/*
 * 2xx OK (provider id = the Message-ID found in the message passed as
 * body), 4xx and 0 (no answer) RETRY, 5xx FAIL.
 */
enum hark_send_outcome smtp_read_send(const struct hark_channel *ch, long smtp_code,
                                      const char *body, size_t body_len,
                                      char **provider_message_id,
                                      char *err, size_t err_len);

#endif
