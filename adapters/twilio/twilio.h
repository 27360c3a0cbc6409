/*
 * Twilio adapter (SMS, MMS, WhatsApp through Twilio): shared declarations.
 */
#ifndef HARK_TWILIO_H
#define HARK_TWILIO_H

#include <stddef.h>

#include "hark/channel.h"
#include "hark/codec.h"

/* Per-instance state. */
struct twilio_ctx {
    struct hark_secret *auth_token;
};

/* Length of a base64 HMAC-SHA1 plus NUL. */
#define TWILIO_SIG_LEN 29

/*
 * X-Twilio-Signature of url and params: base64 HMAC-SHA1 over the URL then
 * every parameter as name+value, sorted by name (values sorted within a
 * repeated name). Returns 0, or -1 on allocation failure.
 */
int twilio_signature(const char *token, size_t token_len, const char *url,
                     const struct hark_form *params, char out[TWILIO_SIG_LEN]);

/*
 * The other spelling of url with respect to the default port: adds :443
 * (https) or :80 (http) when absent, removes it when present. Twilio may
 * sign either. Returns 0 and writes out, or -1 when there is no variant.
 */
int twilio_url_port_variant(const char *url, char *out, size_t cap);

/* 1 when `given` signs url (or its default-port variant) with params. */
int twilio_signature_matches(const char *token, size_t token_len, const char *url,
                             const struct hark_form *params, const char *given);

/* Webhook parse (pure): form → message or status record. */
int twilio_parse(const struct hark_channel *ch, const struct hark_request *req,
                 struct hark_batch *out, struct hark_response *resp);

/* Parse the params of a request already decoded (shared with the fuzzer). */
int twilio_parse_form(const struct hark_channel *ch, const struct hark_form *form,
                      struct hark_batch *out, struct hark_response *resp);

/* Replies (adapters/twilio/twilio_send.c). */
int twilio_build_send(const struct hark_channel *ch, const struct hark_outbound *ob,
                      struct hark_http_call *call, char *err, size_t err_len);
enum hark_send_outcome twilio_read_send(const struct hark_channel *ch, long http_status,
                                        const char *body, size_t body_len,
                                        char **provider_message_id, char *err, size_t err_len);

extern const struct hark_conf_key twilio_conf_keys[];

#endif
