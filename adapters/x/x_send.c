/*
 * X adapter: replies through the v2 API with the company account's OAuth
 * 2.0 user access token (bearer).
 *  - x_mention: POST {api_url}/2/tweets {"text", "reply":{"in_reply_to_tweet_id"}}
 *    answering thread_ref (the tweet answered) or reply_to.
 *  - x_dm (and anything else): POST
 *    {api_url}/2/dm_conversations/with/{to}/messages {"text"}.
 * Attachment URLs are appended to the text (media upload is not done).
 */
#include <stdio.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/text.h"

#include "x.h"

/*
 * Build the provider call for one reply. Returns 0 with call filled, or -1
 * with err set (no access_token, no valid recipient or tweet to answer,
 * empty text).
 */
int x_build_send(const struct hark_channel *ch, const struct hark_outbound *ob,
                 struct hark_http_call *call, char *err, size_t err_len)
{
    const struct x_ctx *ctx = ch->ctx;
    char token[HARK_SECRET_MAX];
    int mention = ob->channel != NULL && strcmp(ob->channel, "x_mention") == 0;
    const char *target = mention ? (ob->thread_ref ? ob->thread_ref : ob->reply_to) : ob->to;
    char *text = NULL;
    json_t *body = NULL;
    int rc = -1;

    if (hark_secret_read(ctx->access_token, token, sizeof(token)) <= 0) {
        snprintf(err, err_len, "x: access_token is not configured");
        return -1;
    }
    if (!x_id_ok(target)) {
        snprintf(err, err_len, mention ? "x: no tweet to answer" : "x: recipient is not an X id");
        goto done;
    }
    text = hark_outbound_text(ob, 0);
    if (text == NULL || text[0] == '\0' || !hark_utf8_valid(text, strlen(text))) {
        snprintf(err, err_len, "x: %s", text == NULL ? "out of memory" : "empty or invalid text");
        goto done;
    }
    if (mention) {
        body = json_pack("{sss{ss}}", "text", text, "reply", "in_reply_to_tweet_id", target);
    } else {
        body = json_pack("{ss}", "text", text);
    }
    memset(call, 0, sizeof(*call));
    call->method = "POST";
    call->url = mention ? hark_asprintf("%s/2/tweets", ctx->api_url)
                        : hark_asprintf("%s/2/dm_conversations/with/%s/messages",
                                        ctx->api_url, target);
    call->headers[0] = hark_strdup("Content-Type: application/json");
    call->n_headers = call->headers[0] ? 1 : 0;
    call->bearer = hark_strdup(token);
    call->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (call->url == NULL || call->n_headers == 0 || call->bearer == NULL || call->body == NULL) {
        hark_http_call_clear(call);
        snprintf(err, err_len, "x: out of memory");
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

/* The most telling error text of an X API v2 error answer, or NULL. */
static const char *x_error_text(const json_t *root)
{
    const json_t *errs = json_object_get(root, "errors");
    const char *s;

    if ((s = hark_json_str(root, "detail")) != NULL || (s = hark_json_str(root, "title")) != NULL) {
        return s;
    }
    if (json_is_array(errs) && json_array_size(errs) > 0) {
        const json_t *e = json_array_get(errs, 0);
        if ((s = hark_json_str(e, "message")) != NULL || (s = hark_json_str(e, "detail")) != NULL) {
            return s;
        }
    }
    return NULL;
}

/*
 * Read the answer: 2xx with data.dm_event_id (DM) or data.id (tweet) is
 * HARK_SEND_OK with that id (NULL when unreadable: it was sent anyway);
 * 429 and 5xx are HARK_SEND_RETRY; anything else HARK_SEND_FAIL.
 */
enum hark_send_outcome x_read_send(const struct hark_channel *ch, long http_status,
                                   const char *body, size_t body_len,
                                   char **provider_message_id, char *err, size_t err_len)
{
    const char *why = NULL, *id, *text;
    json_t *root = NULL;
    enum hark_send_outcome out;

    (void)ch;
    *provider_message_id = NULL;
    if (body != NULL && body_len > 0) {
        root = hark_json_parse(body, body_len, &why);
    }
    text = x_error_text(root);
    if (http_status >= 200 && http_status < 300) {
        const json_t *data = json_object_get(root, "data");
        id = hark_json_str(data, "dm_event_id");
        if (id == NULL) {
            id = hark_json_str(data, "id");
        }
        if (x_id_ok(id)) {
            *provider_message_id = hark_strdup(id);
        }
        out = HARK_SEND_OK;
    } else if (http_status == 429 || http_status >= 500 || http_status <= 0) {
        snprintf(err, err_len, "x: HTTP %ld: %s", http_status, text ? text : "temporary failure");
        out = HARK_SEND_RETRY;
    } else {
        snprintf(err, err_len, "x: HTTP %ld: %s", http_status, text ? text : "request refused");
        out = HARK_SEND_FAIL;
    }
    json_decref(root);
    return out;
}
