/*
 * X (Account Activity API) adapter: configuration, lifecycle, the CRC
 * handshake and webhook signatures. The parser lives in x_parse.c, replies
 * in x_send.c. See docs/adapters/x.md.
 */
#include <stdio.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/codec.h"
#include "hark/conf.h"
#include "hark/crypto.h"

#include "x.h"

static const struct hark_conf_key x_keys[] = {
    {"consumer_secret", HARK_CT_SECRET, NULL, 1, 0, 0,
     "API key secret of the X app (signs CRC answers and webhooks)"},
    {"access_token", HARK_CT_SECRET, NULL, 0, 0, 0,
     "OAuth 2.0 user access token of the company account, for replies"},
    {"api_url", HARK_CT_STRING, X_DEFAULT_API_URL, 0, 0, 0, "X API base URL (tests, proxies)"},
    {"user_id", HARK_CT_STRING, NULL, 0, 0, 0,
     "numeric user id of the company account (default: the payload's for_user_id)"},
    {0},
};

int x_id_ok(const char *s)
{
    size_t n = 0;

    if (s == NULL) {
        return 0;
    }
    for (; s[n]; n++) {
        if (s[n] < '0' || s[n] > '9' || n == X_MAX_ID) {
            return 0;
        }
    }
    return n > 0;
}

static void x_destroy(void *arg)
{
    struct x_ctx *ctx = arg;

    if (ctx == NULL) {
        return;
    }
    hark_free(ctx->api_url);
    hark_free(ctx->user_id);
    hark_free(ctx);
}

/*
 * Build the ctx: cache the secrets, check user_id (digits) and api_url
 * (http or https, trailing '/' dropped). 0, or -1 with err filled.
 */
static int x_init(struct hark_channel *ch, char *err, size_t err_len)
{
    struct x_ctx *ctx = hark_calloc(1, sizeof(*ctx));
    const char *uid;

    if (ctx == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    ctx->consumer_secret = hark_section_secret(ch->section, "consumer_secret");
    ctx->access_token = hark_section_secret(ch->section, "access_token");
    if (ctx->consumer_secret == NULL) {
        snprintf(err, err_len, "consumer_secret is required");
        goto fail;
    }
    uid = hark_section_get(ch->section, "user_id");
    if (uid != NULL && !x_id_ok(uid)) {
        snprintf(err, err_len, "user_id must be the numeric id of the account");
        goto fail;
    }
    ctx->api_url = hark_section_base_url(ch->section, "api_url", X_DEFAULT_API_URL, err, err_len);
    if (ctx->api_url == NULL) {
        goto fail;
    }
    if (uid != NULL && (ctx->user_id = hark_strdup(uid)) == NULL) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    ch->ctx = ctx;
    return 0;

fail:
    x_destroy(ctx);
    return -1;
}

/*
 * "sha256=" + base64 HMAC-SHA256(consumer_secret, data) into out (at least
 * 64 bytes). 0, or -1 when the secret is unavailable.
 */
static int x_sign(const struct x_ctx *ctx, const void *data, size_t len, char *out, size_t cap)
{
    char secret[HARK_SECRET_MAX];
    unsigned char mac[HARK_DIGEST_MAX];
    int n, m;

    n = hark_secret_read(ctx->consumer_secret, secret, sizeof(secret));
    if (n < 0) {
        return -1;
    }
    m = hark_hmac(HARK_SHA256, secret, (size_t)n, data, len, mac);
    memset(secret, 0, sizeof(secret));
    if (m < 0 || cap < 8) {
        return -1;
    }
    memcpy(out, "sha256=", 7);
    return hark_base64_encode(mac, (size_t)m, out + 7, cap - 7) < 0 ? -1 : 0;
}

/*
 * The CRC handshake: GET ?crc_token=T answers 200 application/json
 * {"response_token":"sha256=<base64 HMAC-SHA256(consumer_secret, T)>"}.
 * A GET without a usable crc_token is a 400.
 */
static enum hark_verdict x_crc(const struct x_ctx *ctx, const struct hark_request *req,
                               struct hark_response *resp)
{
    struct hark_form form;
    const char *why = NULL, *token;
    char sig[96];
    json_t *answer;
    char *text;

    if (req->query == NULL || hark_form_parse(req->query, strlen(req->query), &form, &why) < 0) {
        if (req->query != NULL) {
            hark_form_free(&form);
        }
        hark_response_fail(resp, 400, "x: GET without a crc_token");
        return HARK_ANSWERED;
    }
    token = hark_form_get(&form, "crc_token");
    if (token == NULL || token[0] == '\0' || strlen(token) > X_MAX_CRC_TOKEN) {
        hark_form_free(&form);
        hark_response_fail(resp, 400, "x: GET without a usable crc_token");
        return HARK_ANSWERED;
    }
    if (x_sign(ctx, token, strlen(token), sig, sizeof(sig)) < 0) {
        hark_form_free(&form);
        hark_response_fail(resp, 500, "x: consumer_secret unavailable");
        return HARK_ANSWERED;
    }
    hark_form_free(&form);
    answer = json_pack("{ss}", "response_token", sig);
    text = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
    json_decref(answer);
    if (text == NULL || hark_response_set(resp, 200, "application/json", text) < 0) {
        hark_response_fail(resp, 500, "x: out of memory");
    }
    hark_free(text);
    return HARK_ANSWERED;
}

/*
 * Check a request from X: GET is the CRC handshake (answered here), POST
 * must carry x-twitter-webhooks-signature equal, in constant time, to
 * "sha256=" + base64 HMAC-SHA256 of the raw body (403 when missing or
 * wrong); other methods get 405.
 */
static enum hark_verdict x_verify(const struct hark_channel *ch, const struct hark_request *req,
                                  struct hark_response *resp)
{
    const struct x_ctx *ctx = ch->ctx;
    const char *got;
    char want[96];

    if (req->method != NULL && strcmp(req->method, "GET") == 0) {
        return x_crc(ctx, req, resp);
    }
    if (req->method == NULL || strcmp(req->method, "POST") != 0) {
        hark_response_fail(resp, 405, "x: method not allowed");
        return HARK_ANSWERED;
    }
    got = req->header ? req->header(req, "x-twitter-webhooks-signature") : NULL;
    if (got == NULL) {
        hark_response_fail(resp, 403, "x: missing x-twitter-webhooks-signature");
        return HARK_ANSWERED;
    }
    if (x_sign(ctx, req->body ? (const void *)req->body : "", req->body_len, want,
               sizeof(want)) < 0) {
        hark_response_fail(resp, 500, "x: consumer_secret unavailable");
        return HARK_ANSWERED;
    }
    if (!hark_ct_equal(got, strlen(got), want, strlen(want))) {
        hark_response_fail(resp, 403, "x: wrong webhook signature");
        return HARK_ANSWERED;
    }
    return HARK_VERIFIED;
}

const struct hark_adapter hark_adapter_x = {
    .name = "x",
    .caps = HARK_CAP_WEBHOOK | HARK_CAP_SENDER,
    .keys = x_keys,
    .init = x_init,
    .destroy = x_destroy,
    .verify = x_verify,
    .parse = x_parse,
    .build_send = x_build_send,
    .read_send = x_read_send,
};
