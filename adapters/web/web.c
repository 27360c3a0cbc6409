/*
 * Signed web form / chat widget adapter: operations table, configuration
 * schema, ctx and the verify step. A site's backend (or a widget relay)
 * POSTs a JSON submission with
 *   X-Hark-Timestamp: <unix seconds>
 *   X-Hark-Signature: sha256=<hex HMAC-SHA256(secret, timestamp "." body)>
 * (docs/adapters/web.md). There is no sender: replies to web customers go
 * out by email through an imap channel.
 */
#include <stdio.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/codec.h"
#include "hark/conf.h"
#include "hark/crypto.h"
#include "hark/text.h"

#include "web.h"

static const struct hark_conf_key web_keys[] = {
    {"secret", HARK_CT_SECRET, NULL, 1, 0, 0,
     "shared HMAC-SHA256 key of the site that posts submissions"},
    {"max_skew", HARK_CT_DURATION, "5m", 0, 1000, 86400000,
     "reject submissions whose X-Hark-Timestamp is further than this from now"},
    {0},
};

static void web_destroy(void *arg)
{
    hark_free(arg);
}

/* Build the ctx: the secret (required) and the replay window. 0 or -1. */
static int web_init(struct hark_channel *ch, char *err, size_t err_len)
{
    struct web_ctx *ctx = hark_calloc(1, sizeof(*ctx));

    if (ctx == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    ctx->secret = hark_section_secret(ch->section, "secret");
    if (ctx->secret == NULL) {
        snprintf(err, err_len, "secret is required");
        web_destroy(ctx);
        return -1;
    }
    ctx->max_skew_ms = hark_section_duration_ms(ch->section, "max_skew", 5 * 60 * 1000);
    ch->ctx = ctx;
    return 0;
}

int web_request_timestamp(const struct hark_request *req, int64_t *secs)
{
    const char *ts = req->header ? req->header(req, WEB_TIMESTAMP_HEADER) : NULL;
    int64_t v = 0;
    size_t n;

    if (ts == NULL || (n = strlen(ts)) == 0 || n > 12) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (ts[i] < '0' || ts[i] > '9') {
            return -1;
        }
        v = v * 10 + (ts[i] - '0');
    }
    *secs = v;
    return 0;
}

/*
 * HMAC-SHA256(secret, ts "." body) as lowercase hex into hex (65 bytes).
 * 0, or -1 when the secret cannot be read or memory runs out.
 */
static int web_expected(const struct web_ctx *ctx, const char *ts,
                        const struct hark_request *req, char hex[65])
{
    char secret[HARK_SECRET_MAX];
    unsigned char digest[HARK_DIGEST_MAX];
    size_t ts_len = strlen(ts);
    char *input = hark_malloc(ts_len + 1 + req->body_len + 1);
    int len, size = -1;

    if (input == NULL) {
        return -1;
    }
    memcpy(input, ts, ts_len);
    input[ts_len] = '.';
    if (req->body_len > 0) {
        memcpy(input + ts_len + 1, req->body, req->body_len);
    }
    len = hark_secret_read(ctx->secret, secret, sizeof(secret));
    if (len >= 0) {
        size = hark_hmac(HARK_SHA256, secret, (size_t)len, input, ts_len + 1 + req->body_len,
                         digest);
    }
    explicit_bzero(secret, sizeof(secret));
    hark_free(input);
    if (size != 32 || hark_hex_encode(digest, 32, hex, 65) != 64) {
        return -1;
    }
    return 0;
}

/*
 * The verify step: POST only; both headers present; the timestamp within
 * max_skew of now (replays answered 403); the signature "sha256=" + hex
 * HMAC over timestamp "." raw body, compared in constant time (hex in any
 * case). 403 for every authentication failure, 405 for other methods.
 */
static enum hark_verdict web_verify(const struct hark_channel *ch,
                                    const struct hark_request *req,
                                    struct hark_response *resp)
{
    const struct web_ctx *ctx = ch->ctx;
    const char *ts_text, *sig;
    char expected[65];
    int64_t ts;

    if (req->method == NULL || strcmp(req->method, "POST") != 0) {
        hark_response_fail(resp, 405, "web: only POST is accepted");
        return HARK_ANSWERED;
    }
    ts_text = req->header ? req->header(req, WEB_TIMESTAMP_HEADER) : NULL;
    sig = req->header ? req->header(req, WEB_SIGNATURE_HEADER) : NULL;
    if (ts_text == NULL || sig == NULL) {
        hark_response_fail(resp, 403, "web: missing %s or %s header", WEB_TIMESTAMP_HEADER,
                           WEB_SIGNATURE_HEADER);
        return HARK_ANSWERED;
    }
    if (web_request_timestamp(req, &ts) < 0) {
        hark_response_fail(resp, 403, "web: malformed %s", WEB_TIMESTAMP_HEADER);
        return HARK_ANSWERED;
    }
    if (ts * 1000 < req->now_ms - ctx->max_skew_ms || ts * 1000 > req->now_ms + ctx->max_skew_ms) {
        hark_response_fail(resp, 403, "web: timestamp outside max_skew (stale or replayed)");
        return HARK_ANSWERED;
    }
    if (strncmp(sig, "sha256=", 7) != 0 || strlen(sig) != 7 + 64) {
        hark_response_fail(resp, 403, "web: malformed %s", WEB_SIGNATURE_HEADER);
        return HARK_ANSWERED;
    }
    if (web_expected(ctx, ts_text, req, expected) < 0) {
        hark_response_fail(resp, 503, "web: cannot compute the signature");
        return HARK_ANSWERED;
    }
    if (!hark_ct_equal_nocase(expected, 64, sig + 7, 64)) {
        hark_response_fail(resp, 403, "web: signature mismatch");
        return HARK_ANSWERED;
    }
    return HARK_VERIFIED;
}

const struct hark_adapter hark_adapter_web = {
    .name = "web",
    .caps = HARK_CAP_WEBHOOK,
    .keys = web_keys,
    .init = web_init,
    .destroy = web_destroy,
    .verify = web_verify,
    .parse = web_parse,
};
