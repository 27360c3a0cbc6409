/*
 * hark meta adapter: what its files share (private to adapters/meta/).
 *
 * One adapter serves every Meta product that posts to a webhook signed
 * with the app secret: Messenger (object "page", messaging[]), the Page
 * feed (object "page", changes[] field "feed"), Instagram (object
 * "instagram") and the WhatsApp Cloud API (object
 * "whatsapp_business_account"). See docs/adapters/meta.md.
 */
#ifndef HARK_META_H
#define HARK_META_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "hark/channel.h"
#include "hark/msg.h"

#define META_PROVIDER "meta"
#define META_DEFAULT_API_URL "https://graph.facebook.com/v19.0"

/* Bounds on what one webhook request may carry. */
#define META_MAX_ENVELOPES 16       /* top-level array form of the payload */
#define META_MAX_EVENTS (4 * HARK_BATCH_MAX)  /* events looked at, kept or skipped */
#define META_MAX_ID 512             /* longest id accepted (mids are ~200) */
#define META_WINDOW_MS (24LL * 3600 * 1000)   /* WhatsApp customer service window */

/* Per-instance state, created by init from the [channel.NAME] section. */
struct meta_ctx {
    struct hark_secret *app_secret;
    struct hark_secret *verify_token;
    struct hark_secret *access_token;   /* NULL: replies are not possible */
    char *api_url;                      /* without a trailing slash */
    char *page_id;                      /* NULL when not configured */
};

/* State of one parse: where the messages go and why it failed. */
struct meta_parse {
    const char *account;        /* the channel instance name */
    struct hark_batch *out;
    size_t events;              /* events looked at so far */
    int status;                 /* 0, or the HTTP status of the failure */
    char why[160];              /* the failure, for the log line and body */
    char note[160];             /* an error Meta reported in a valid payload (logged) */
};

/* Record the first failure; always returns -1. */
int meta_fail(struct meta_parse *p, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The id at obj[key]: a string (1..META_MAX_ID bytes, borrowed from obj) or
 * an integer written into buf (at least 24 bytes). NULL when absent or of
 * another type.
 */
const char *meta_id(const json_t *obj, const char *key, char *buf, size_t cap);

/* Count one event against META_MAX_EVENTS. 0, or -1 (failure recorded). */
int meta_count_event(struct meta_parse *p);

/* Append msg to the batch (takes ownership). 0, or -1 (failure recorded). */
int meta_push(struct meta_parse *p, struct hark_msg *msg);

/* Set extra[key] to a string copy when value is not NULL. 0 or -1. */
int meta_extra_str(struct hark_msg *msg, const char *key, const char *value);

/* Epoch ms from a provider timestamp in seconds or milliseconds. */
int64_t meta_epoch_ms(json_int_t t);

/* Page feed and Instagram changes of the entry whose id is given. 0 or -1. */
int meta_page_change(struct meta_parse *p, const char *page_id, json_int_t entry_time,
                     const json_t *change);
int meta_ig_change(struct meta_parse *p, const char *ig_id, json_int_t entry_time,
                   const json_t *change);

/* WhatsApp Cloud: one entry[].changes[] element. 0, or -1 (failure recorded). */
int meta_wa_change(struct meta_parse *p, const json_t *change);

/* The parse and send entry points of the adapter table. */
int meta_parse(const struct hark_channel *ch, const struct hark_request *req,
               struct hark_batch *out, struct hark_response *resp);
int meta_build_send(const struct hark_channel *ch, const struct hark_outbound *ob,
                    struct hark_http_call *call, char *err, size_t err_len);
enum hark_send_outcome meta_read_send(const struct hark_channel *ch, long http_status,
                                      const char *body, size_t body_len,
                                      char **provider_message_id,
                                      char *err, size_t err_len);

#endif
