/*
 * X (Account Activity API) adapter: what its files share (private).
 */
#ifndef HARK_ADAPTER_X_H
#define HARK_ADAPTER_X_H

#include "hark/channel.h"
#include "hark/conf.h"

#define X_DEFAULT_API_URL "https://api.twitter.com"
#define X_MAX_CRC_TOKEN 256     /* bytes of crc_token we answer */
#define X_MAX_EVENTS 100        /* events of one kind in one payload */
#define X_MAX_ID 20             /* digits of a user, tweet or DM event id */

struct x_ctx {
    struct hark_secret *consumer_secret;
    struct hark_secret *access_token;   /* OAuth 2.0 user token for replies, may be NULL */
    char *api_url;                      /* without trailing '/' */
    char *user_id;                      /* the company account, NULL: for_user_id */
};

/* 1 when s is 1 to X_MAX_ID decimal digits (an X id). */
int x_id_ok(const char *s);

/* adapters/x/x_parse.c: the pure parser (the adapter's parse op). */
int x_parse(const struct hark_channel *ch, const struct hark_request *req,
            struct hark_batch *out, struct hark_response *resp);

/* adapters/x/x_send.c: DMs and replies to mentions through the v2 API. */
int x_build_send(const struct hark_channel *ch, const struct hark_outbound *ob,
                 struct hark_http_call *call, char *err, size_t err_len);
enum hark_send_outcome x_read_send(const struct hark_channel *ch, long http_status,
                                   const char *body, size_t body_len,
                                   char **provider_message_id, char *err, size_t err_len);

#endif
