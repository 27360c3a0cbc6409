/*
 * Twilio Programmable Messaging: replies (SMS, MMS, WhatsApp).
 *
 * POST /2010-04-01/Accounts/{AccountSid}/Messages.json with a form body,
 * authenticated with HTTP basic auth AccountSid:AuthToken. The answer is
 * the Message resource as JSON; its "sid" (SM... or MM...) is the id the
 * status callbacks (MessageStatus) name later.
 */
#include <stdio.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/conf.h"
#include "hark/text.h"
#include "delivery.h"
#include "hark/buf.h"
#include "twilio_send.h"

#define TWILIO_DEFAULT_API "https://api.twilio.com"
#define TWILIO_BODY_CAP (256 * 1024)

/* Append name=value, percent-encoded as application/x-www-form-urlencoded. */
static void fb_pair(struct hark_buf *b, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";

    if (b->len > 0) {
        hark_buf_add(b, "&", 1);
    }
    hark_buf_add(b, name, strlen(name));
    hark_buf_add(b, "=", 1);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        char enc[3];
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '*') {
            hark_buf_add(b, (const char *)p, 1);
        } else if (*p == ' ') {
            hark_buf_add(b, "+", 1);
        } else {
            enc[0] = '%';
            enc[1] = hex[*p >> 4];
            enc[2] = hex[*p & 15];
            hark_buf_add(b, enc, 3);
        }
    }
}

/* Code points in a valid UTF-8 string. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80) {
            n++;
        }
    }
    return n;
}

/*
 * Write the address for Twilio into out: WhatsApp addresses carry the
 * "whatsapp:" prefix (added when the stored id is a bare number), SMS
 * addresses are used as stored. Returns 0 or -1 when it does not fit.
 */
static int twilio_address(const char *channel, const char *id, char *out, size_t cap)
{
    int n;

    if (strcmp(channel, "whatsapp") == 0 && strncmp(id, "whatsapp:", 9) != 0) {
        n = snprintf(out, cap, "whatsapp:%s", id);
    } else {
        n = snprintf(out, cap, "%s", id);
    }
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Add a "Name: value" header line to call; 0 or -1. */
static int call_header(struct hark_http_call *call, const char *line)
{
    if (call->n_headers == sizeof(call->headers) / sizeof(call->headers[0])) {
        return -1;
    }
    call->headers[call->n_headers] = hark_strdup(line);
    if (call->headers[call->n_headers] == NULL) {
        return -1;
    }
    call->n_headers++;
    return 0;
}

int twilio_build_send(const struct hark_channel *ch, const struct hark_outbound *ob,
                      struct hark_http_call *call, char *err, size_t err_len)
{
    const char *sid = hark_section_get(ch->section, "account_sid");
    const char *api = hark_section_get(ch->section, "api_url");
    const char *service = hark_section_get(ch->section, "messaging_service_sid");
    const char *from = ob->from && ob->from[0] ? ob->from : hark_section_get(ch->section, "from");
    const char *callback = hark_section_get(ch->section, "status_callback");
    const char *channel = ob->channel ? ob->channel : "sms";
    char token[HARK_SECRET_MAX];
    char addr[256];
    struct hark_buf b = {.max = TWILIO_BODY_CAP};
    size_t api_len;

    memset(call, 0, sizeof(*call));
    if (sid == NULL || sid[0] == '\0') {
        snprintf(err, err_len, "channel %s has no account_sid for replies", ch->name);
        return -1;
    }
    if (hark_secret_read(hark_section_secret(ch->section, "auth_token"), token, sizeof(token)) <= 0) {
        snprintf(err, err_len, "channel %s has no auth_token", ch->name);
        return -1;
    }
    if (ob->to == NULL || ob->to[0] == '\0') {
        snprintf(err, err_len, "conversation has no customer address");
        goto fail;
    }
    if ((service == NULL || service[0] == '\0') && (from == NULL || from[0] == '\0')) {
        snprintf(err, err_len, "no sender: neither our number nor messaging_service_sid is known");
        goto fail;
    }
    if ((ob->text == NULL || ob->text[0] == '\0') && ob->n_attachments == 0) {
        snprintf(err, err_len, "reply has neither text nor attachments");
        goto fail;
    }
    if (ob->text && utf8_chars(ob->text) > TWILIO_BODY_MAX_CHARS) {
        snprintf(err, err_len, "text longer than %d characters", TWILIO_BODY_MAX_CHARS);
        goto fail;
    }
    if (ob->n_attachments > TWILIO_MEDIA_MAX) {
        snprintf(err, err_len, "more than %d attachments", TWILIO_MEDIA_MAX);
        goto fail;
    }
    if (twilio_address(channel, ob->to, addr, sizeof(addr)) < 0) {
        snprintf(err, err_len, "customer address too long");
        goto fail;
    }
    fb_pair(&b, "To", addr);
    if (service != NULL && service[0] != '\0') {
        fb_pair(&b, "MessagingServiceSid", service);
    } else {
        if (twilio_address(channel, from, addr, sizeof(addr)) < 0) {
            snprintf(err, err_len, "sender address too long");
            goto fail;
        }
        fb_pair(&b, "From", addr);
    }
    if (ob->text != NULL && ob->text[0] != '\0') {
        fb_pair(&b, "Body", ob->text);
    }
    for (size_t i = 0; i < ob->n_attachments; i++) {
        fb_pair(&b, "MediaUrl", ob->attachment_urls[i]);
    }
    if (callback != NULL && callback[0] != '\0') {
        fb_pair(&b, "StatusCallback", callback);
    }
    if (b.failed) {
        snprintf(err, err_len, "request too large or out of memory");
        goto fail;
    }
    if (api == NULL || api[0] == '\0') {
        api = TWILIO_DEFAULT_API;
    }
    api_len = strlen(api);
    while (api_len > 0 && api[api_len - 1] == '/') {
        api_len--;
    }
    call->method = "POST";
    call->url = hark_asprintf("%.*s/2010-04-01/Accounts/%s/Messages.json", (int)api_len, api, sid);
    call->userpwd = hark_asprintf("%s:%s", sid, token);
    call->body = b.s;
    call->body_len = b.len;
    b.s = NULL;
    if (call->url == NULL || call->userpwd == NULL ||
        call_header(call, "Content-Type: application/x-www-form-urlencoded") < 0 ||
        call_header(call, "Accept: application/json") < 0) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    memset(token, 0, sizeof(token));
    return 0;
fail:
    memset(token, 0, sizeof(token));
    hark_free(b.s);
    hark_http_call_clear(call);
    return -1;
}

enum hark_send_outcome twilio_read_send(const struct hark_channel *ch, long http_status,
                                        const char *body, size_t body_len,
                                        char **provider_message_id,
                                        char *err, size_t err_len)
{
    const char *why = NULL;
    json_t *root = NULL;
    const char *message = NULL;
    json_int_t code = 0;
    enum hark_send_outcome out;

    (void)ch;
    *provider_message_id = NULL;
    err[0] = '\0';
    if (body != NULL && body_len > 0) {
        root = hark_json_parse(body, body_len, &why);
    }
    if (root != NULL && json_is_object(root)) {
        message = hark_json_str(root, "message");
        code = hark_json_int(root, "code", 0);
    }
    if (http_status >= 200 && http_status <= 299) {
        const char *sid = root && json_is_object(root) ? hark_json_str(root, "sid") : NULL;
        const char *status = root && json_is_object(root) ? hark_json_str(root, "status") : NULL;
        if (status != NULL && (strcmp(status, "failed") == 0 || strcmp(status, "undelivered") == 0)) {
            snprintf(err, err_len, "twilio accepted the message as %s (error %lld)", status,
                     (long long)hark_json_int(root, "error_code", 0));
            json_decref(root);
            return HARK_SEND_FAIL;
        }
        if (sid != NULL && sid[0] != '\0') {
            *provider_message_id = hark_strdup(sid);
        } else {
            /* Accepted: sending again would duplicate the message. */
            snprintf(err, err_len, "twilio answered %ld without a message sid", http_status);
        }
        json_decref(root);
        return HARK_SEND_OK;
    }
    out = hark_http_status_retryable(http_status) ? HARK_SEND_RETRY : HARK_SEND_FAIL;
    if (message != NULL) {
        snprintf(err, err_len, "twilio %ld error %lld: %s", http_status, (long long)code, message);
    } else {
        snprintf(err, err_len, "twilio answered %ld", http_status);
    }
    json_decref(root);
    return out;
}
