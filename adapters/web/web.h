/*
 * Signed web form / chat widget adapter ("web"): private interfaces shared
 * by web.c (ops table, config, verify) and web_parse.c (pure parsing).
 * The wire format is ours; docs/adapters/web.md is its specification.
 */
#ifndef HARK_ADAPTER_WEB_H
#define HARK_ADAPTER_WEB_H

#include <stddef.h>
#include <stdint.h>

#include "hark/channel.h"
#include "hark/conf.h"

#define WEB_TIMESTAMP_HEADER "X-Hark-Timestamp"
#define WEB_SIGNATURE_HEADER "X-Hark-Signature"

/* Bounds on a submission (see docs/adapters/web.md). */
#define WEB_MAX_ID 128
#define WEB_MAX_TEXT (64 * 1024)
#define WEB_MAX_EMAIL 254
#define WEB_MAX_NAME 256
#define WEB_MAX_SUBJECT 998
#define WEB_MAX_URL 2048
#define WEB_MAX_SHORT 255
#define WEB_MAX_ATTACHMENTS 16

/* The operations table (web.c), for the registry. */
extern const struct hark_adapter hark_adapter_web;

/* Per-instance state. */
struct web_ctx {
    const struct hark_secret *secret;
    int64_t max_skew_ms;
};

/* The X-Hark-Timestamp header as unix seconds (1 to 12 digits). 0 or -1. */
int web_request_timestamp(const struct hark_request *req, int64_t *secs);

/*
 * The parse step: one JSON submission becomes one inbound message on
 * channel "web". 200 {"ok":true}, or 4xx/503 with nothing produced.
 */
int web_parse(const struct hark_channel *ch, const struct hark_request *req,
              struct hark_batch *out, struct hark_response *resp);

#endif
