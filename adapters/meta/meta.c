/*
 * hark meta adapter: configuration, instance lifecycle and the webhook
 * verify step (subscription handshake and X-Hub-Signature-256).
 *
 * The parser lives in meta_parse.c and meta_whatsapp.c, the reply builder
 * in meta_send.c.
 */
#include <stdio.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/codec.h"
#include "hark/conf.h"
#include "hark/crypto.h"
#include "hark/text.h"

#include "meta.h"

#define META_CHALLENGE_MAX 256
#define META_SIG_PREFIX "sha256="
#define META_SIG_HEX (2 * 32)

static const struct hark_conf_key meta_keys[] = {
    {"app_secret", HARK_CT_SECRET, NULL, 1, 0, 0,
     "App secret: key of the X-Hub-Signature-256 HMAC over each POST body"},
    {"verify_token", HARK_CT_SECRET, NULL, 1, 0, 0,
     "Token entered in the app dashboard, echoed in the subscription handshake"},
    {"access_token", HARK_CT_SECRET, NULL, 0, 0, 0,
     "Page, Instagram or WhatsApp system-user token for replies"},
    {"api_url", HARK_CT_STRING, META_DEFAULT_API_URL, 0, 0, 0,
     "Graph API base URL (versioned) for replies"},
    {"page_id", HARK_CT_STRING, NULL, 0, 0, 0,
     "Sender id used when a reply names none: Page id (Send API) or WhatsApp phone_number_id"},
    {0},
};

/* Release a ctx, complete or half built. */
static void meta_destroy(void *arg)
{
    struct meta_ctx *ctx = arg;

    if (ctx == NULL) {
        return;
    }
    hark_free(ctx->api_url);
    hark_free(ctx->page_id);
    hark_free(ctx);
}

/*
 * Create the ctx from ch->section: cache the secrets (their values are read
 * at each use, so a reload takes effect), copy api_url without a trailing
 * slash. Returns 0, or -1 with err filled.
 */
static int meta_init(struct hark_channel *ch, char *err, size_t err_len)
{
    struct meta_ctx *ctx = hark_calloc(1, sizeof(*ctx));
    const char *url, *page;
    size_t n;

    if (ctx == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    ctx->app_secret = hark_section_secret(ch->section, "app_secret");
    ctx->verify_token = hark_section_secret(ch->section, "verify_token");
    ctx->access_token = hark_section_secret(ch->section, "access_token");
    if (ctx->app_secret == NULL || ctx->verify_token == NULL) {
        snprintf(err, err_len, "app_secret and verify_token are required");
        goto fail;
    }
    url = hark_section_get(ch->section, "api_url");
    if (url == NULL || url[0] == '\0') {
        url = META_DEFAULT_API_URL;
    }
    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
        snprintf(err, err_len, "api_url must be an http(s) URL");
        goto fail;
    }
    n = strlen(url);
    while (n > 0 && url[n - 1] == '/') {
        n--;
    }
    if ((ctx->api_url = hark_strndup(url, n)) == NULL) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    page = hark_section_get(ch->section, "page_id");
    if (page != NULL && page[0] != '\0' && (ctx->page_id = hark_strdup(page)) == NULL) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    ch->ctx = ctx;
    return 0;
fail:
    meta_destroy(ctx);
    return -1;
}

/* 1 when the challenge is 1..META_CHALLENGE_MAX printable ASCII characters. */
static int challenge_ok(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i >= META_CHALLENGE_MAX || (unsigned char)s[i] < 0x21 ||
            (unsigned char)s[i] > 0x7e) {
            return 0;
        }
    }
    return i > 0;
}

/*
 * The subscription handshake: GET ?hub.mode=subscribe&hub.verify_token=T
 * &hub.challenge=C. Answers 200 text/plain C when T equals verify_token
 * (constant time) and C is a bounded printable token, 403 otherwise.
 */
static enum hark_verdict verify_handshake(const struct meta_ctx *ctx,
                                          const struct hark_request *req,
                                          struct hark_response *resp)
{
    struct hark_form form = {0};
    const char *why = NULL, *mode, *token, *challenge;
    char secret[HARK_SECRET_MAX];
    int len, ok;

    if (req->query == NULL ||
        hark_form_parse(req->query, strlen(req->query), &form, &why) < 0) {
        hark_form_free(&form);
        hark_response_fail(resp, 403, "handshake: missing or malformed query");
        return HARK_ANSWERED;
    }
    mode = hark_form_get(&form, "hub.mode");
    token = hark_form_get(&form, "hub.verify_token");
    challenge = hark_form_get(&form, "hub.challenge");
    if (mode == NULL || strcmp(mode, "subscribe") != 0 || token == NULL ||
        challenge == NULL) {
        hark_form_free(&form);
        hark_response_fail(resp, 403, "handshake: hub.mode, hub.verify_token or "
                           "hub.challenge missing");
        return HARK_ANSWERED;
    }
    len = hark_secret_read(ctx->verify_token, secret, sizeof(secret));
    ok = len > 0 && hark_ct_equal(token, strlen(token), secret, (size_t)len);
    explicit_bzero(secret, sizeof(secret));
    if (!ok) {
        hark_form_free(&form);
        hark_response_fail(resp, 403, "handshake: wrong verify token");
        return HARK_ANSWERED;
    }
    if (!challenge_ok(challenge)) {
        hark_form_free(&form);
        hark_response_fail(resp, 403, "handshake: hub.challenge empty, too long or "
                           "not printable");
        return HARK_ANSWERED;
    }
    if (hark_response_set(resp, 200, "text/plain", challenge) < 0) {
        hark_response_fail(resp, 503, "out of memory");
    }
    hark_form_free(&form);
    return HARK_ANSWERED;
}

/* 1 when s[0..n) is hexadecimal. */
static int is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

/*
 * Check X-Hub-Signature-256 ("sha256=" + hex HMAC-SHA256 of the raw body
 * with the app secret, hex compared case-insensitively in constant time).
 * Returns HARK_VERIFIED, or HARK_ANSWERED with a 403 in resp.
 */
static enum hark_verdict verify_signature(const struct meta_ctx *ctx,
                                          const struct hark_request *req,
                                          struct hark_response *resp)
{
    const char *sig = req->header ? req->header(req, "X-Hub-Signature-256") : NULL;
    size_t plen = strlen(META_SIG_PREFIX);
    unsigned char mac[HARK_DIGEST_MAX];
    char secret[HARK_SECRET_MAX], hex[2 * HARK_DIGEST_MAX + 1];
    int len, n, ok;

    if (sig == NULL) {
        hark_response_fail(resp, 403, "X-Hub-Signature-256 missing");
        return HARK_ANSWERED;
    }
    if (strlen(sig) != plen + META_SIG_HEX || !hark_strncaseeq(sig, plen, META_SIG_PREFIX) ||
        !is_hex(sig + plen, META_SIG_HEX)) {
        hark_response_fail(resp, 403, "X-Hub-Signature-256 malformed");
        return HARK_ANSWERED;
    }
    len = hark_secret_read(ctx->app_secret, secret, sizeof(secret));
    if (len <= 0) {
        explicit_bzero(secret, sizeof(secret));
        hark_response_fail(resp, 403, "app_secret is not available");
        return HARK_ANSWERED;
    }
    n = hark_hmac(HARK_SHA256, secret, (size_t)len, req->body ? req->body : (const void *)"",
                  req->body_len, mac);
    explicit_bzero(secret, sizeof(secret));
    ok = n == 32 && hark_hex_encode(mac, 32, hex, sizeof(hex)) == META_SIG_HEX &&
         hark_ct_equal_nocase(sig + plen, META_SIG_HEX, hex, META_SIG_HEX);
    if (!ok) {
        hark_response_fail(resp, 403, "X-Hub-Signature-256 does not match");
        return HARK_ANSWERED;
    }
    return HARK_VERIFIED;
}

/* verify: GET is the handshake, POST must be signed, anything else is 405. */
static enum hark_verdict meta_verify(const struct hark_channel *ch,
                                     const struct hark_request *req,
                                     struct hark_response *resp)
{
    const struct meta_ctx *ctx = ch->ctx;

    if (req->method != NULL && strcmp(req->method, "GET") == 0) {
        return verify_handshake(ctx, req, resp);
    }
    if (req->method != NULL && strcmp(req->method, "POST") == 0) {
        return verify_signature(ctx, req, resp);
    }
    hark_response_fail(resp, 405, "method not allowed: use GET or POST");
    return HARK_ANSWERED;
}

const struct hark_adapter hark_adapter_meta = {
    .name = "meta",
    .caps = HARK_CAP_WEBHOOK | HARK_CAP_SENDER,
    .keys = meta_keys,
    .init = meta_init,
    .destroy = meta_destroy,
    .verify = meta_verify,
    .parse = meta_parse,
    .build_send = meta_build_send,
    .read_send = meta_read_send,
};
