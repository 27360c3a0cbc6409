/*
 * Vonage SMS adapter: the operations table, the configuration schema,
 * the per-instance ctx and the webhook verify step (signed parameters,
 * see docs/adapters/vonage.md).
 */
#include <stdio.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/conf.h"
#include "hark/text.h"

#include "vonage.h"

static const struct hark_conf_key vonage_keys[] = {
    {"signature_secret", HARK_CT_SECRET, NULL, 1, 0, 0,
     "signature secret from the Vonage dashboard (API settings)"},
    {"signature_method", HARK_CT_STRING, "md5hash", 0, 0, 0,
     "md5hash, md5, sha1, sha256 or sha512, as set in the dashboard"},
    {"api_key", HARK_CT_STRING, NULL, 0, 0, 0, "API key, for sending replies"},
    {"api_secret", HARK_CT_SECRET, NULL, 0, 0, 0, "API secret, for sending replies"},
    {"api_url", HARK_CT_STRING, "https://rest.nexmo.com", 0, 0, 0,
     "SMS API base URL (tests, proxies)"},
    {"max_skew", HARK_CT_DURATION, "5m", 0, 1000, 86400000,
     "reject signed requests whose timestamp is further than this from now"},
    {0},
};

/* Release a ctx, including a half-built one; NULL is a no-op. */
static void vonage_destroy(void *arg)
{
    struct vonage_ctx *ctx = arg;

    if (ctx == NULL) {
        return;
    }
    hark_free(ctx->api_url);
    hark_free(ctx);
}

/*
 * Build the ctx from the channel section: the signature secret (required),
 * the method, the optional sending credentials and the replay window.
 * Returns 0, or -1 with err filled and nothing allocated.
 */
static int vonage_init(struct hark_channel *ch, char *err, size_t err_len)
{
    struct vonage_ctx *ctx = hark_calloc(1, sizeof(*ctx));
    const char *method = hark_section_get(ch->section, "signature_method");

    if (ctx == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    ctx->sig_secret = hark_section_secret(ch->section, "signature_secret");
    if (ctx->sig_secret == NULL) {
        snprintf(err, err_len, "signature_secret is required (Vonage dashboard, API settings)");
        goto fail;
    }
    if (vonage_sig_method_parse(method ? method : "md5hash", &ctx->method) < 0) {
        snprintf(err, err_len, "signature_method must be md5hash, md5, sha1, sha256 or sha512");
        goto fail;
    }
    ctx->api_key = hark_section_get(ch->section, "api_key");
    ctx->api_secret = hark_section_secret(ch->section, "api_secret");
    if ((ctx->api_key == NULL) != (ctx->api_secret == NULL)) {
        snprintf(err, err_len, "api_key and api_secret go together");
        goto fail;
    }
    ctx->api_url = hark_section_base_url(ch->section, "api_url", "https://rest.nexmo.com", err,
                                         err_len);
    if (ctx->api_url == NULL) {
        goto fail;
    }
    ctx->max_skew_ms = hark_section_duration_ms(ch->section, "max_skew", 5 * 60 * 1000);
    ch->ctx = ctx;
    return 0;
fail:
    vonage_destroy(ctx);
    return -1;
}

/*
 * The verify step: GET or POST only; every parameter but sig is signed
 * with the configured method and secret; sig must match (any hex case, in
 * constant time) and the signed unix `timestamp` must lie within max_skew
 * of now, so that a captured request cannot be replayed later. Answers 403
 * for a missing or wrong signature or a stale timestamp, 400/415 for a
 * request whose parameters cannot be read.
 */
static enum hark_verdict vonage_verify(const struct hark_channel *ch,
                                       const struct hark_request *req,
                                       struct hark_response *resp)
{
    const struct vonage_ctx *ctx = ch->ctx;
    struct vonage_params ps;
    char secret[HARK_SECRET_MAX];
    const char *why = NULL, *sig;
    int64_t ts;
    int len, rc;

    if (req->method == NULL || (strcmp(req->method, "GET") != 0 &&
                                strcmp(req->method, "POST") != 0)) {
        hark_response_fail(resp, 405, "vonage: only GET and POST are accepted");
        return HARK_ANSWERED;
    }
    rc = vonage_params_collect(req, &ps, &why);
    if (rc != 0) {
        vonage_params_free(&ps);
        hark_response_fail(resp, rc == VONAGE_NO_MEMORY ? 503
                                 : rc == VONAGE_BAD_MEDIA ? 415 : 400, "vonage: %s", why);
        return HARK_ANSWERED;
    }
    sig = vonage_params_get(&ps, "sig");
    if (sig == NULL || sig[0] == '\0') {
        vonage_params_free(&ps);
        hark_response_fail(resp, 403, "vonage: unsigned request (no sig parameter)");
        return HARK_ANSWERED;
    }
    len = hark_secret_read(ctx->sig_secret, secret, sizeof(secret));
    if (len < 0) {
        vonage_params_free(&ps);
        hark_response_fail(resp, 503, "vonage: signature secret unavailable");
        return HARK_ANSWERED;
    }
    rc = vonage_sig_check(&ps, ctx->method, secret, (size_t)len, sig);
    explicit_bzero(secret, sizeof(secret));
    if (rc != 1) {
        vonage_params_free(&ps);
        hark_response_fail(resp, rc < 0 ? 503 : 403, "vonage: %s",
                           rc < 0 ? "out of memory" : "signature mismatch");
        return HARK_ANSWERED;
    }
    rc = vonage_parse_unix(vonage_params_get(&ps, "timestamp"), &ts);
    vonage_params_free(&ps);
    if (rc < 0) {
        hark_response_fail(resp, 403, "vonage: signed request without a valid timestamp");
        return HARK_ANSWERED;
    }
    if (ts * 1000 < req->now_ms - ctx->max_skew_ms || ts * 1000 > req->now_ms + ctx->max_skew_ms) {
        hark_response_fail(resp, 403, "vonage: timestamp outside max_skew (stale or replayed)");
        return HARK_ANSWERED;
    }
    return HARK_VERIFIED;
}

const struct hark_adapter hark_adapter_vonage = {
    .name = "vonage",
    .caps = HARK_CAP_WEBHOOK | HARK_CAP_SENDER,
    .keys = vonage_keys,
    .init = vonage_init,
    .destroy = vonage_destroy,
    .verify = vonage_verify,
    .parse = vonage_parse,
    .build_send = vonage_build_send,
    .read_send = vonage_read_send,
};
