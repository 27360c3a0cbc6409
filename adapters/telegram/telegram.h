/*
 * Telegram Bot API adapter: what its files share (private to the adapter).
 */
#ifndef HARK_ADAPTER_TELEGRAM_H
#define HARK_ADAPTER_TELEGRAM_H

#include "hark/channel.h"
#include "hark/conf.h"

#define TELEGRAM_DEFAULT_API_URL "https://api.telegram.org"
#define TELEGRAM_MAX_TEXT_UNITS 4096    /* sendMessage limit in UTF-16 units */

struct telegram_ctx {
    struct hark_secret *secret_token;   /* X-Telegram-Bot-Api-Secret-Token */
    struct hark_secret *bot_token;      /* for replies, may be NULL */
    char *api_url;                      /* without trailing '/' */
};

/* adapters/telegram/telegram_parse.c: the pure parser (the adapter's parse op). */
int telegram_parse(const struct hark_channel *ch, const struct hark_request *req,
                   struct hark_batch *out, struct hark_response *resp);

/* adapters/telegram/telegram_send.c: replies through sendMessage. */
int telegram_build_send(const struct hark_channel *ch, const struct hark_outbound *ob,
                        struct hark_http_call *call, char *err, size_t err_len);
enum hark_send_outcome telegram_read_send(const struct hark_channel *ch, long http_status,
                                          const char *body, size_t body_len,
                                          char **provider_message_id,
                                          char *err, size_t err_len);

#endif
