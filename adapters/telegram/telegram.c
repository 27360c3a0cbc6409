/*
 * Telegram Bot API adapter: configuration, lifecycle and webhook
 * verification. The parser lives in telegram_parse.c, replies in
 * telegram_send.c. See docs/adapters/telegram.md.
 */
#include <stdio.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/conf.h"
#include "hark/crypto.h"

#include "telegram.h"

static const struct hark_conf_key telegram_keys[] = {
    {"secret_token", HARK_CT_SECRET, NULL, 1, 0, 0,
     "secret_token given to setWebhook (1-256 of A-Z a-z 0-9 _ -)"},
    {"bot_token", HARK_CT_SECRET, NULL, 0, 0, 0, "bot token from @BotFather, for replies"},
    {"api_url", HARK_CT_STRING, TELEGRAM_DEFAULT_API_URL, 0, 0, 0,
     "Bot API base URL (tests, local Bot API servers)"},
    {0},
};

/* 1 when s is a token Telegram accepts as secret_token. */
static int telegram_token_chars_ok(const char *s, size_t n)
{
    if (n == 0 || n > 256) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

static void telegram_destroy(void *arg)
{
    struct telegram_ctx *ctx = arg;

    if (ctx == NULL) {
        return;
    }
    hark_free(ctx->api_url);
    hark_free(ctx);
}

/*
 * Build the ctx from the channel section: cache the secrets, check that
 * the secret token has the shape setWebhook accepts (so a typo fails at
 * startup, not at the first update) and normalize api_url. 0 or -1.
 */
static int telegram_init(struct hark_channel *ch, char *err, size_t err_len)
{
    struct telegram_ctx *ctx = hark_calloc(1, sizeof(*ctx));
    char buf[HARK_SECRET_MAX];
    int n;

    if (ctx == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    ctx->secret_token = hark_section_secret(ch->section, "secret_token");
    ctx->bot_token = hark_section_secret(ch->section, "bot_token");
    n = hark_secret_read(ctx->secret_token, buf, sizeof(buf));
    if (n < 0 || !telegram_token_chars_ok(buf, (size_t)n)) {
        snprintf(err, err_len, "secret_token must be 1-256 characters of A-Z a-z 0-9 _ -");
        goto fail;
    }
    ctx->api_url = hark_section_base_url(ch->section, "api_url", TELEGRAM_DEFAULT_API_URL, err,
                                         err_len);
    if (ctx->api_url == NULL) {
        goto fail;
    }
    memset(buf, 0, sizeof(buf));
    ch->ctx = ctx;
    return 0;

fail:
    memset(buf, 0, sizeof(buf));
    telegram_destroy(ctx);
    return -1;
}

/*
 * Check that a request comes from Telegram: POST only (405 otherwise) and
 * the X-Telegram-Bot-Api-Secret-Token header equal, in constant time, to
 * the configured secret_token (403 when missing or different). Returns
 * HARK_VERIFIED or HARK_ANSWERED with resp filled.
 */
static enum hark_verdict telegram_verify(const struct hark_channel *ch,
                                         const struct hark_request *req,
                                         struct hark_response *resp)
{
    const struct telegram_ctx *ctx = ch->ctx;
    char secret[HARK_SECRET_MAX];
    const char *got;
    int n, ok;

    if (req->method == NULL || strcmp(req->method, "POST") != 0) {
        hark_response_fail(resp, 405, "telegram: method not allowed");
        return HARK_ANSWERED;
    }
    got = req->header ? req->header(req, "X-Telegram-Bot-Api-Secret-Token") : NULL;
    if (got == NULL) {
        hark_response_fail(resp, 403, "telegram: missing X-Telegram-Bot-Api-Secret-Token");
        return HARK_ANSWERED;
    }
    n = hark_secret_read(ctx->secret_token, secret, sizeof(secret));
    if (n < 0) {
        hark_response_fail(resp, 500, "telegram: secret_token unavailable");
        return HARK_ANSWERED;
    }
    ok = hark_ct_equal(got, strlen(got), secret, (size_t)n);
    memset(secret, 0, sizeof(secret));
    if (!ok) {
        hark_response_fail(resp, 403, "telegram: wrong secret token");
        return HARK_ANSWERED;
    }
    return HARK_VERIFIED;
}

const struct hark_adapter hark_adapter_telegram = {
    .name = "telegram",
    .caps = HARK_CAP_WEBHOOK | HARK_CAP_SENDER,
    .keys = telegram_keys,
    .init = telegram_init,
    .destroy = telegram_destroy,
    .verify = telegram_verify,
    .parse = telegram_parse,
    .build_send = telegram_build_send,
    .read_send = telegram_read_send,
};
