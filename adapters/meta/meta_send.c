/*
 * hark meta adapter: replies (pure). build_send turns an outbound message
 * into one Graph API call, chosen by ob->channel; read_send reads Meta's
 * answer. The core performs the HTTP call and its retries.
 *
 *   messenger         POST {api_url}/{page_id|me}/messages  (Send API)
 *   instagram         POST {api_url}/{page_id|me}/messages, or with a
 *                     thread_ref POST {api_url}/{comment_id}/replies
 *   facebook_comment  POST {api_url}/{comment_id}/comments
 *   whatsapp          POST {api_url}/{phone_number_id}/messages
 */
#include <stdio.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/text.h"

#include "meta.h"

/* 1 when s can go into a URL path segment unescaped (Graph ids). */
static int path_id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > 128) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '-' || c == '.')) {
            return 0;
        }
    }
    return 1;
}

/* 1 when ob is a single attachment without text: it is sent as media. */
static int only_one_attachment(const struct hark_outbound *ob)
{
    return (ob->text == NULL || ob->text[0] == '\0') && ob->n_attachments == 1 &&
           ob->attachment_urls[0] != NULL;
}

/* Fill call with a JSON POST to url (both taken over). 0, or -1 (no memory). */
static int call_post_json(struct hark_http_call *call, char *url, json_t *body,
                          const char *token)
{
    char *dumped = body ? json_dumps(body, JSON_COMPACT) : NULL;

    json_decref(body);
    call->method = "POST";
    call->url = url;
    call->body = dumped;
    call->body_len = dumped ? strlen(dumped) : 0;
    call->headers[0] = hark_strdup("Content-Type: application/json");
    call->n_headers = call->headers[0] ? 1 : 0;
    call->bearer = hark_strdup(token);
    if (url == NULL || dumped == NULL || call->n_headers == 0 || call->bearer == NULL) {
        hark_http_call_clear(call);
        return -1;
    }
    return 0;
}

/* Send API body for Messenger and Instagram direct messages. */
static json_t *dm_body(const struct hark_outbound *ob, const char *text, int messenger)
{
    json_t *message;

    if (only_one_attachment(ob)) {
        message = json_pack("{s:{s:s, s:{s:s, s:b}}}", "attachment", "type", "file",
                            "payload", "url", ob->attachment_urls[0], "is_reusable", 0);
    } else {
        message = json_pack("{s:s}", "text", text);
    }
    if (message == NULL) {
        return NULL;
    }
    if (messenger) {
        return json_pack("{s:{s:s}, s:s, s:o}", "recipient", "id", ob->to,
                         "messaging_type", "RESPONSE", "message", message);
    }
    return json_pack("{s:{s:s}, s:o}", "recipient", "id", ob->to, "message", message);
}

/*
 * WhatsApp Cloud body: a text message inside the 24-hour customer service
 * window, a template message outside it when ob->template_name is given
 * ("name" or "name:language", default language en_US). NULL with err set.
 */
static json_t *wa_body(const struct hark_outbound *ob, const char *text, int64_t now_ms,
                       char *err, size_t err_len)
{
    char to[24], name[256];
    const char *lang = "en_US", *colon;
    json_t *body;
    int in_window = ob->last_inbound_at > 0 && now_ms - ob->last_inbound_at < META_WINDOW_MS;

    if (hark_phone_e164(ob->to, to, sizeof(to)) < 0) {
        snprintf(err, err_len, "WhatsApp recipient is not a phone number");
        return NULL;
    }
    if (!in_window && (ob->template_name == NULL || ob->template_name[0] == '\0')) {
        snprintf(err, err_len, "outside the WhatsApp 24-hour customer service window "
                 "(last inbound message older than 24 h or unknown): a template is required");
        return NULL;
    }
    if (!in_window) {
        colon = strchr(ob->template_name, ':');
        snprintf(name, sizeof(name), "%.*s",
                 (int)(colon ? (size_t)(colon - ob->template_name) : strlen(ob->template_name)),
                 ob->template_name);
        if (colon != NULL && colon[1] != '\0') {
            lang = colon + 1;
        }
        return json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:{s:s}}}", "messaging_product",
                         "whatsapp", "recipient_type", "individual", "to", to + 1, "type",
                         "template", "template", "name", name, "language", "code", lang);
    }
    if (only_one_attachment(ob)) {
        body = json_pack("{s:s, s:s, s:s, s:s, s:{s:s}}", "messaging_product", "whatsapp",
                         "recipient_type", "individual", "to", to + 1, "type", "document",
                         "document", "link", ob->attachment_urls[0]);
    } else {
        body = json_pack("{s:s, s:s, s:s, s:s, s:{s:b, s:s}}", "messaging_product", "whatsapp",
                         "recipient_type", "individual", "to", to + 1, "type", "text",
                         "text", "preview_url", 0, "body", text);
    }
    if (body != NULL && ob->reply_to != NULL && ob->reply_to[0] != '\0' &&
        json_object_set_new(body, "context", json_pack("{s:s}", "message_id", ob->reply_to)) < 0) {
        json_decref(body);
        body = NULL;
    }
    if (body == NULL) {
        snprintf(err, err_len, "out of memory");
    }
    return body;
}

/*
 * The URL and body for ob on its channel. Returns 0, or -1 with err set
 * (unknown channel, missing or unsafe ids, nothing to send).
 */
static int build_for_channel(const struct meta_ctx *ctx, const struct hark_outbound *ob,
                             const char *text, json_t **body, char **url,
                             char *err, size_t err_len)
{
    const char *ch = ob->channel ? ob->channel : "";
    const char *comment = ob->thread_ref ? ob->thread_ref : ob->reply_to;
    const char *sender = ob->from && ob->from[0] ? ob->from : ctx->page_id;

    *body = NULL;
    *url = NULL;
    if (strcmp(ch, "facebook_comment") == 0 ||
        (strcmp(ch, "instagram") == 0 && ob->thread_ref != NULL)) {
        int fb = ch[0] == 'f';
        if (!path_id_ok(comment)) {
            snprintf(err, err_len, "no usable comment id to reply to");
            return -1;
        }
        *url = hark_asprintf("%s/%s/%s", ctx->api_url, comment, fb ? "comments" : "replies");
        *body = json_pack("{s:s}", "message", text);
        if (fb && *body && ob->n_attachments > 0 && ob->attachment_urls[0] != NULL &&
            (ob->text == NULL || ob->text[0] == '\0')) {
            json_object_set_new(*body, "attachment_url", json_string(ob->attachment_urls[0]));
        }
    } else if (strcmp(ch, "messenger") == 0 || strcmp(ch, "instagram") == 0) {
        if (ob->to == NULL || ob->to[0] == '\0' || (sender && !path_id_ok(sender))) {
            snprintf(err, err_len, "no recipient id, or an unusable page id");
            return -1;
        }
        *url = hark_asprintf("%s/%s/messages", ctx->api_url, sender ? sender : "me");
        *body = dm_body(ob, text, ch[0] == 'm');
    } else if (strcmp(ch, "whatsapp") == 0) {
        if (!path_id_ok(sender)) {
            snprintf(err, err_len, "no WhatsApp phone_number_id to send from");
            return -1;
        }
        if ((*body = wa_body(ob, text, hark_now_ms(), err, err_len)) == NULL) {
            return -1;
        }
        *url = hark_asprintf("%s/%s/messages", ctx->api_url, sender);
    } else {
        snprintf(err, err_len, "channel \"%.32s\" is not served by the meta adapter", ch);
        return -1;
    }
    if (*url == NULL || *body == NULL) {
        json_decref(*body);
        hark_free(*url);
        *body = NULL;
        *url = NULL;
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    return 0;
}

/*
 * build_send: fill call for ob (see the table at the top). Returns 0, or
 * -1 with err set and call left empty.
 */
int meta_build_send(const struct hark_channel *ch, const struct hark_outbound *ob,
                    struct hark_http_call *call, char *err, size_t err_len)
{
    const struct meta_ctx *ctx = ch->ctx;
    char token[HARK_SECRET_MAX], *text, *url;
    json_t *body;
    int len, rc;

    memset(call, 0, sizeof(*call));
    len = ctx->access_token ? hark_secret_read(ctx->access_token, token, sizeof(token)) : -1;
    if (len <= 0) {
        explicit_bzero(token, sizeof(token));
        snprintf(err, err_len, "access_token is not configured");
        return -1;
    }
    if ((text = hark_outbound_text(ob, 0)) == NULL) {
        explicit_bzero(token, sizeof(token));
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    if (text[0] == '\0' && ob->n_attachments == 0 &&
        (ob->template_name == NULL || strcmp(ob->channel ? ob->channel : "", "whatsapp") != 0)) {
        rc = -1;
        snprintf(err, err_len, "nothing to send: no text and no attachment");
    } else if ((rc = build_for_channel(ctx, ob, text, &body, &url, err, err_len)) == 0 &&
               (rc = call_post_json(call, url, body, token)) < 0) {
        snprintf(err, err_len, "out of memory");
    }
    explicit_bzero(token, sizeof(token));
    hark_free(text);
    return rc;
}

/* 1 for Graph error codes that mean "slow down, try later". */
static int throttled(json_int_t code)
{
    static const json_int_t codes[] = {1, 2, 4, 17, 32, 341, 613, 80007, 130429,
                                       131048, 131056};

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (code == codes[i]) {
            return 1;
        }
    }
    return 0;
}

/* The provider id in a 2xx answer: message_id, messages[0].id or id. */
static const char *answer_id(const json_t *root, char *buf, size_t cap)
{
    const char *id = meta_id(root, "message_id", buf, cap);

    if (id == NULL) {
        id = meta_id(json_array_get(json_object_get(root, "messages"), 0), "id", buf, cap);
    }
    return id ? id : meta_id(root, "id", buf, cap);
}

/*
 * read_send: 2xx is OK (the provider id, when the answer names one, goes to
 * *provider_message_id); 429, 5xx, transport failures and Graph throttling
 * codes are RETRY; other 4xx are FAIL with error.message as the reason.
 */
enum hark_send_outcome meta_read_send(const struct hark_channel *ch, long http_status,
                                      const char *body, size_t body_len,
                                      char **provider_message_id,
                                      char *err, size_t err_len)
{
    const char *why = NULL, *msg, *id;
    const json_t *error;
    json_t *root = NULL;
    json_int_t code;
    char buf[24];
    enum hark_send_outcome out;

    (void)ch;
    *provider_message_id = NULL;
    if (body != NULL && body_len > 0) {
        root = hark_json_parse(body, body_len, &why);
    }
    error = json_object_get(root, "error");
    msg = hark_json_str(error, "message");
    code = hark_json_int(error, "code", 0);
    if (http_status >= 200 && http_status < 300) {
        id = answer_id(root, buf, sizeof(buf));
        out = HARK_SEND_OK;
        if (id != NULL && (*provider_message_id = hark_strdup(id)) == NULL) {
            snprintf(err, err_len, "out of memory reading the answer");
            out = HARK_SEND_RETRY;
        }
    } else if (http_status == 429 || http_status >= 500 || http_status < 200 ||
               http_status < 400 || throttled(code) ||
               json_is_true(json_object_get(error, "is_transient"))) {
        snprintf(err, err_len, "HTTP %ld: %.140s", http_status, msg ? msg : "try again later");
        out = HARK_SEND_RETRY;
    } else {
        snprintf(err, err_len, "HTTP %ld: %.140s (code %" JSON_INTEGER_FORMAT ")", http_status,
                 msg ? msg : "request refused", code);
        out = HARK_SEND_FAIL;
    }
    json_decref(root);
    return out;
}
