/*
 * Vonage SMS adapter: replies through the SMS API (POST {api_url}/sms/json
 * with a JSON body) and the reading of its answer.
 */
#include <stdio.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/text.h"

#include "vonage.h"

#define VONAGE_MAX_SEND_TEXT (64 * 1024)

/*
 * The address as the SMS API wants it: an E.164 number without '+', or
 * (for `from` only, alphanumeric allowed) the sender id as configured.
 * Writes into out (at least 40 bytes); 0 or -1.
 */
static int api_address(const char *in, int alnum_ok, char *out, size_t cap)
{
    char e164[20];

    if (in == NULL || in[0] == '\0') {
        return -1;
    }
    if (hark_phone_e164(in, e164, sizeof(e164)) == 0) {
        snprintf(out, cap, "%s", e164 + 1);
        return 0;
    }
    if (!alnum_ok || strlen(in) > 11) {
        return -1;
    }
    for (const char *c = in; *c; c++) {
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
              (*c >= 'A' && *c <= 'Z') || *c == ' ')) {
            return -1;
        }
    }
    snprintf(out, cap, "%s", in);
    return 0;
}

/* 1 when s has a byte outside ASCII (the SMS must then be sent as unicode). */
static int non_ascii(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s >= 0x80) {
            return 1;
        }
    }
    return 0;
}

/*
 * Build the SMS API request for a reply: POST {api_url}/sms/json with
 * api_key, api_secret, from, to (digits, no '+'), text, type "unicode"
 * when the text is not ASCII, and client-ref = our message id (it comes
 * back in the delivery receipts). Fills call (owned by the caller, release
 * with hark_http_call_clear). Returns 0, or -1 with err filled.
 */
int vonage_build_send(const struct hark_channel *ch, const struct hark_outbound *ob,
                      struct hark_http_call *call, char *err, size_t err_len)
{
    const struct vonage_ctx *ctx = ch->ctx;
    char secret[HARK_SECRET_MAX], to[40], from[40];
    char *text = NULL;
    json_t *req = NULL;
    int rc = -1;

    memset(call, 0, sizeof(*call));
    secret[0] = '\0';
    if (ctx->api_key == NULL || hark_secret_read(ctx->api_secret, secret, sizeof(secret)) < 0) {
        snprintf(err, err_len, "vonage: api_key and api_secret are needed to send");
        goto done;
    }
    if (api_address(ob->to, 0, to, sizeof(to)) < 0) {
        snprintf(err, err_len, "vonage: recipient is not a phone number");
        goto done;
    }
    if (api_address(ob->from, 1, from, sizeof(from)) < 0) {
        snprintf(err, err_len, "vonage: sender is neither a number nor an alphanumeric id");
        goto done;
    }
    if (ob->text == NULL || (ob->text[0] == '\0' && ob->n_attachments == 0)) {
        snprintf(err, err_len, "vonage: nothing to send");
        goto done;
    }
    if ((text = hark_outbound_text(ob, VONAGE_MAX_SEND_TEXT)) == NULL || (req = json_object()) == NULL) {
        snprintf(err, err_len, "vonage: text too long or out of memory");
        goto done;
    }
    if (json_object_set_new(req, "api_key", json_string(ctx->api_key)) < 0 ||
        json_object_set_new(req, "api_secret", json_string(secret)) < 0 ||
        json_object_set_new(req, "from", json_string(from)) < 0 ||
        json_object_set_new(req, "to", json_string(to)) < 0 ||
        json_object_set_new(req, "text", json_string(text)) < 0 ||
        (non_ascii(text) && json_object_set_new(req, "type", json_string("unicode")) < 0) ||
        (ob->message_id != NULL &&
         json_object_set_new(req, "client-ref", json_string(ob->message_id)) < 0)) {
        snprintf(err, err_len, "vonage: out of memory (or text not UTF-8)");
        goto done;
    }
    call->method = "POST";
    call->url = hark_asprintf("%s/sms/json", ctx->api_url);
    call->headers[0] = hark_strdup("Content-Type: application/json");
    call->headers[1] = hark_strdup("Accept: application/json");
    call->n_headers = 2;
    call->body = json_dumps(req, JSON_COMPACT);
    if (call->url == NULL || call->headers[0] == NULL || call->headers[1] == NULL ||
        call->body == NULL) {
        snprintf(err, err_len, "vonage: out of memory");
        hark_http_call_clear(call);
        goto done;
    }
    call->body_len = strlen(call->body);
    rc = 0;
done:
    explicit_bzero(secret, sizeof(secret));
    json_decref(req);
    hark_free(text);
    return rc;
}

/* A message status of the answer as text ("0"), from a string or an integer. */
static const char *part_status(const json_t *part, char *buf, size_t cap)
{
    const json_t *v = json_object_get(part, "status");

    if (json_is_string(v)) {
        return json_string_value(v);
    }
    if (json_is_integer(v)) {
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    return NULL;
}

/*
 * Read the SMS API answer. HTTP 429 and 5xx: RETRY. Otherwise the body's
 * messages[] decide: every part status "0" is OK with messages[0]
 * message-id in *provider_message_id (owned by the caller); status 1
 * (throttled), 5 (internal error) and 10 (too many binds) on the first
 * part are RETRY; anything else is FAIL with error-text in err. A later
 * part failing after the first was accepted is FAIL too (a retry would
 * send the accepted parts twice).
 */
enum hark_send_outcome vonage_read_send(const struct hark_channel *ch, long http_status,
                                        const char *body, size_t body_len,
                                        char **provider_message_id, char *err,
                                        size_t err_len)
{
    json_t *root, *msgs, *part;
    const char *why = NULL, *first_id;
    enum hark_send_outcome out = HARK_SEND_OK;
    size_t i;

    (void)ch;
    *provider_message_id = NULL;
    if (http_status == 429 || http_status >= 500) {
        snprintf(err, err_len, "vonage: HTTP %ld", http_status);
        return HARK_SEND_RETRY;
    }
    if (http_status < 200 || http_status > 299) {
        snprintf(err, err_len, "vonage: HTTP %ld", http_status);
        return HARK_SEND_FAIL;
    }
    root = body ? hark_json_parse(body, body_len, &why) : NULL;
    msgs = json_object_get(root, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        snprintf(err, err_len, "vonage: unreadable answer (%s)", why ? why : "no messages");
        json_decref(root);
        return HARK_SEND_FAIL;
    }
    json_array_foreach(msgs, i, part) {
        char buf[32];
        const char *st = part_status(part, buf, sizeof(buf));
        const char *text = hark_json_str(part, "error-text");
        if (st != NULL && strcmp(st, "0") == 0) {
            continue;
        }
        snprintf(err, err_len, "vonage: status %s%s%s", st ? st : "(none)", text ? ": " : "",
                 text ? text : "");
        out = HARK_SEND_FAIL;
        if (i == 0 && st != NULL &&
            (strcmp(st, "1") == 0 || strcmp(st, "5") == 0 || strcmp(st, "10") == 0)) {
            out = HARK_SEND_RETRY;
        }
        break;
    }
    first_id = hark_json_str(json_array_get(msgs, 0), "message-id");
    if (out == HARK_SEND_OK && first_id == NULL) {
        snprintf(err, err_len, "vonage: accepted without a message-id");
        out = HARK_SEND_FAIL;
    }
    if (first_id != NULL && out != HARK_SEND_RETRY &&
        (*provider_message_id = hark_strdup(first_id)) == NULL && out == HARK_SEND_OK) {
        snprintf(err, err_len, "vonage: out of memory");
        out = HARK_SEND_RETRY;
    }
    json_decref(root);
    return out;
}
