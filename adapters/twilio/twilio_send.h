/*
 * Twilio Programmable Messaging: the reply sender (twilio_send.c).
 * The twilio adapter puts these two functions into its ops table.
 */
#ifndef HARK_TWILIO_SEND_H
#define HARK_TWILIO_SEND_H

#include <stddef.h>

#include "hark/channel.h"

/* Twilio refuses bodies longer than this many characters (error 21617). */
#define TWILIO_BODY_MAX_CHARS 1600
/* Twilio accepts at most this many MediaUrl parameters per message. */
#define TWILIO_MEDIA_MAX 10

/*
 * Build POST {api_url}/2010-04-01/Accounts/{account_sid}/Messages.json
 * (form: To, From or MessagingServiceSid, Body, MediaUrl..., StatusCallback)
 * with basic auth account_sid:auth_token. Borrows ch and ob; fills call
 * (the caller clears it). Returns 0, or -1 with err saying why the reply
 * cannot be sent at all (a permanent failure).
 */
int twilio_build_send(const struct hark_channel *ch, const struct hark_outbound *ob,
                      struct hark_http_call *call, char *err, size_t err_len);

/*
 * Classify Twilio's answer: 2xx OK (provider id = the "sid", a new string
 * the caller frees; NULL when the answer has none), 408/429/5xx RETRY,
 * other statuses FAIL with Twilio's code and message in err.
 */
enum hark_send_outcome twilio_read_send(const struct hark_channel *ch, long http_status,
                                        const char *body, size_t body_len,
                                        char **provider_message_id,
                                        char *err, size_t err_len);

#endif
