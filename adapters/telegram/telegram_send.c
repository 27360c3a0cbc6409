/*
 * Telegram Bot API adapter: replies through sendMessage.
 *
 * The chat to answer is taken from reply_to ("<chat_id>:<message_id>", the
 * provider id of the message answered: it also names the group chat the
 * customer wrote in), or else from the customer's user id (their private
 * chat with the bot). The answer's provider id has the same
 * "<chat_id>:<message_id>" form as inbound messages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/text.h"

#include "telegram.h"

/* Parse a whole decimal integer (optional '-'); 0 or -1. */
static int tg_parse_int(const char *s, size_t n, long long *out)
{
    char buf[24];
    char *end;

    if (n == 0 || n >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (!(buf[0] == '-' || (buf[0] >= '0' && buf[0] <= '9'))) {
        return -1;
    }
    errno = 0;
    *out = strtoll(buf, &end, 10);
    return (errno != 0 || *end != '\0' || end == buf) ? -1 : 0;
}

/* 1 when a bot token looks like "<digits>:<A-Za-z0-9_->", safe inside a URL path. */
static int tg_bot_token_ok(const char *t)
{
    const char *colon = strchr(t, ':');

    if (colon == NULL || colon == t || colon[1] == '\0') {
        return 0;
    }
    for (const char *c = t; *c; c++) {
        if (c < colon ? !(*c >= '0' && *c <= '9')
                      : !((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                          (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || c == colon)) {
            return 0;
        }
    }
    return 1;
}

/* Length of a UTF-8 string in UTF-16 code units (Telegram counts those). */
static size_t tg_utf16_units(const char *s)
{
    size_t units = 0;

    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if ((*c & 0xC0) != 0x80) {
            units += (*c >= 0xF0) ? 2 : 1;
        }
    }
    return units;
}

/*
 * Build POST {api_url}/bot<token>/sendMessage with a JSON body {chat_id,
 * text, reply_parameters}. Returns 0 with call filled, or -1 with err set
 * (no bot_token, no chat to answer, text empty or over 4096 units).
 */
int telegram_build_send(const struct hark_channel *ch, const struct hark_outbound *ob,
                        struct hark_http_call *call, char *err, size_t err_len)
{
    const struct telegram_ctx *ctx = ch->ctx;
    char token[HARK_SECRET_MAX];
    long long chat_id = 0, reply_id = 0;
    int have_reply = 0;
    char *text = NULL;
    json_t *body = NULL;
    int rc = -1;

    if (hark_secret_read(ctx->bot_token, token, sizeof(token)) < 0) {
        snprintf(err, err_len, "telegram: bot_token is not configured");
        return -1;
    }
    if (!tg_bot_token_ok(token)) {
        snprintf(err, err_len, "telegram: bot_token is malformed");
        goto done;
    }
    if (ob->reply_to != NULL && strchr(ob->reply_to, ':') != NULL) {
        const char *colon = strrchr(ob->reply_to, ':');
        have_reply = tg_parse_int(ob->reply_to, (size_t)(colon - ob->reply_to), &chat_id) == 0 &&
                     tg_parse_int(colon + 1, strlen(colon + 1), &reply_id) == 0 && reply_id > 0;
    }
    if (!have_reply && (ob->to == NULL || tg_parse_int(ob->to, strlen(ob->to), &chat_id) < 0)) {
        snprintf(err, err_len, "telegram: no chat to answer (to is not a Telegram id)");
        goto done;
    }
    text = hark_outbound_text(ob, 0);
    if (text == NULL) {
        snprintf(err, err_len, "telegram: out of memory");
        goto done;
    }
    if (text[0] == '\0' || tg_utf16_units(text) > TELEGRAM_MAX_TEXT_UNITS ||
        !hark_utf8_valid(text, strlen(text))) {
        snprintf(err, err_len, "telegram: text must be 1-%d characters of UTF-8",
                 TELEGRAM_MAX_TEXT_UNITS);
        goto done;
    }
    body = json_pack("{sIss}", "chat_id", (json_int_t)chat_id, "text", text);
    if (body != NULL && have_reply &&
        json_object_set_new(body, "reply_parameters",
                            json_pack("{sIsb}", "message_id", (json_int_t)reply_id,
                                      "allow_sending_without_reply", 1)) < 0) {
        json_decref(body);
        body = NULL;
    }
    memset(call, 0, sizeof(*call));
    call->method = "POST";
    call->url = hark_asprintf("%s/bot%s/sendMessage", ctx->api_url, token);
    call->headers[0] = hark_strdup("Content-Type: application/json");
    call->n_headers = call->headers[0] ? 1 : 0;
    call->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (call->url == NULL || call->n_headers == 0 || call->body == NULL) {
        hark_http_call_clear(call);
        snprintf(err, err_len, "telegram: out of memory");
        goto done;
    }
    call->body_len = strlen(call->body);
    rc = 0;

done:
    memset(token, 0, sizeof(token));
    json_decref(body);
    hark_free(text);
    return rc;
}

/*
 * Read sendMessage's answer. {"ok":true,"result":{message_id, chat.id}} is
 * HARK_SEND_OK with *provider_message_id = "<chat_id>:<message_id>" (NULL
 * when the answer cannot be read: the message was sent all the same).
 * 429 (parameters.retry_after) and 5xx are HARK_SEND_RETRY; anything else
 * is HARK_SEND_FAIL with Telegram's description in err.
 */
enum hark_send_outcome telegram_read_send(const struct hark_channel *ch, long http_status,
                                          const char *body, size_t body_len,
                                          char **provider_message_id,
                                          char *err, size_t err_len)
{
    const char *why = NULL, *desc;
    json_t *root = NULL;
    enum hark_send_outcome out;

    (void)ch;
    *provider_message_id = NULL;
    if (body != NULL && body_len > 0) {
        root = hark_json_parse(body, body_len, &why);
    }
    desc = hark_json_str(root, "description");
    if (http_status >= 200 && http_status < 300 && json_is_true(json_object_get(root, "ok"))) {
        const json_t *res = json_object_get(root, "result");
        const json_t *mid = json_object_get(res, "message_id");
        const json_t *cid = json_object_get(json_object_get(res, "chat"), "id");
        if (json_is_integer(mid) && json_is_integer(cid)) {
            *provider_message_id = hark_asprintf("%" JSON_INTEGER_FORMAT ":%" JSON_INTEGER_FORMAT,
                                                 json_integer_value(cid), json_integer_value(mid));
        }
        out = HARK_SEND_OK;
    } else if (http_status >= 200 && http_status < 300 && root == NULL) {
        out = HARK_SEND_OK;     /* sent, but the answer is unreadable */
    } else if (http_status == 429 || http_status >= 500 || http_status <= 0) {
        json_int_t after = hark_json_int(json_object_get(root, "parameters"), "retry_after", -1);
        snprintf(err, err_len, "telegram: HTTP %ld: %s (retry after %" JSON_INTEGER_FORMAT " s)",
                 http_status, desc ? desc : "temporary failure", after);
        out = HARK_SEND_RETRY;
    } else {
        snprintf(err, err_len, "telegram: HTTP %ld: %s", http_status,
                 desc ? desc : "request refused");
        out = HARK_SEND_FAIL;
    }
    json_decref(root);
    return out;
}
