/*
 * Twilio webhook parser (pure): inbound SMS/MMS/WhatsApp and status
 * callbacks, from decoded form parameters to normalized records.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hark/alloc.h"
#include "hark/text.h"
#include "twilio.h"

#define TWILIO_MAX_MEDIA 10     /* Twilio sends at most 10 media per message */

/* The empty TwiML answer: Twilio then sends nothing back to the customer. */
static const char empty_twiml[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

/* Twilio's message statuses mapped onto ours; NULL when not a delivery status. */
static const char *map_status(const char *s)
{
    static const struct { const char *twilio, *ours; } map[] = {
        {"accepted", "queued"}, {"scheduled", "queued"}, {"queued", "queued"},
        {"sending", "queued"}, {"sent", "sent"}, {"delivered", "delivered"},
        {"read", "read"}, {"undelivered", "failed"}, {"failed", "failed"},
        {"canceled", "failed"},
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcasecmp(s, map[i].twilio) == 0) {
            return map[i].ours;
        }
    }
    return NULL;
}

/* A Twilio address ("+34...", "whatsapp:+34...", short code) as our id. */
static void address_id(const char *addr, char *out, size_t cap)
{
    if (hark_phone_e164(addr, out, cap) == 0) {
        return;
    }
    /* Short codes and alphanumeric senders stay as given, minus a scheme. */
    if (strncasecmp(addr, "whatsapp:", 9) == 0) {
        addr += 9;
    }
    snprintf(out, cap, "%s", addr);
}

static int is_whatsapp(const char *addr)
{
    return strncasecmp(addr, "whatsapp:", 9) == 0;
}

/* extra: the Twilio fields a CRM may want, kept as given. */
static int add_extra(struct hark_msg *m, const struct hark_form *form)
{
    static const char *const keep[] = {
        "AccountSid", "MessagingServiceSid", "NumSegments", "WaId", "FromCountry",
        "FromCity", "FromState", "ToCountry", "ButtonText", "ButtonPayload",
        "Latitude", "Longitude", "Address", "Label", "ReferralSourceUrl",
    };

    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        const char *v = hark_form_get(form, keep[i]);
        if (v != NULL && v[0] != '\0' && hark_utf8_valid(v, strlen(v)) &&
            hark_msg_extra_set(m, keep[i], json_string(v)) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Media attachments MediaUrlN / MediaContentTypeN for N < NumMedia. */
static int add_media(struct hark_msg *m, const struct hark_form *form, long num,
                     struct hark_response *resp)
{
    for (long i = 0; i < num; i++) {
        char url_key[40], type_key[48];
        const char *url, *type;

        snprintf(url_key, sizeof(url_key), "MediaUrl%ld", i);
        snprintf(type_key, sizeof(type_key), "MediaContentType%ld", i);
        url = hark_form_get(form, url_key);
        type = hark_form_get(form, type_key);
        if (url == NULL || url[0] == '\0') {
            return hark_response_fail(resp, 400, "NumMedia is %ld but %s is missing", num, url_key);
        }
        if (hark_msg_add_attachment(m, url, type, NULL, -1, NULL) < 0) {
            return hark_response_fail(resp, 500, "out of memory");
        }
    }
    return 0;
}

/* Parse NumMedia: absent is 0; anything but 0..10 is malformed. */
static int num_media(const struct hark_form *form, long *out)
{
    const char *v = hark_form_get(form, "NumMedia");

    *out = 0;
    if (v == NULL || v[0] == '\0') {
        return 0;
    }
    if (strlen(v) > 2 || strspn(v, "0123456789") != strlen(v)) {
        return -1;
    }
    *out = v[1] ? (v[0] - '0') * 10 + (v[1] - '0') : v[0] - '0';
    return *out <= TWILIO_MAX_MEDIA ? 0 : -1;
}

/* A status callback: MessageStatus of a message we sent to the customer (To). */
static int parse_status(const struct hark_channel *ch, const struct hark_form *form,
                        const char *sid, const char *status, struct hark_batch *out,
                        struct hark_response *resp)
{
    const char *to = hark_form_get(form, "To"), *from = hark_form_get(form, "From");
    const char *code = hark_form_get(form, "ErrorCode");
    const char *text = hark_form_get(form, "ErrorMessage");
    struct hark_msg *m;
    char customer[64];

    if (to == NULL || to[0] == '\0') {
        return hark_response_fail(resp, 400, "status callback without To");
    }
    m = hark_msg_new(HARK_KIND_STATUS, is_whatsapp(to) ? "whatsapp" : "sms", "twilio", ch->name);
    if (m == NULL) {
        return hark_response_fail(resp, 500, "out of memory");
    }
    m->direction = HARK_DIR_OUTBOUND;
    m->status = status;
    address_id(to, customer, sizeof(customer));
    if (hark_strset(&m->provider_message_id, sid) < 0 ||
        hark_msg_add_ident(m, hark_phone_e164(to, customer, sizeof(customer)) == 0
                                  ? "phone" : "sms_sender", customer) < 0 ||
        hark_strset(&m->to.id, customer) < 0 ||
        (from && hark_strset(&m->from.id, from) < 0)) {
        hark_msg_free(m);
        return hark_response_fail(resp, 500, "out of memory");
    }
    if (code != NULL && code[0] != '\0') {
        m->error = hark_asprintf("Twilio error %s%s%s", code, text ? ": " : "", text ? text : "");
    }
    if (hark_batch_push(out, m) < 0) {
        return hark_response_fail(resp, 500, "out of memory");
    }
    return 0;
}

int twilio_parse_form(const struct hark_channel *ch, const struct hark_form *form,
                      struct hark_batch *out, struct hark_response *resp)
{
    const char *sid = hark_form_get(form, "MessageSid");
    const char *from = hark_form_get(form, "From"), *to = hark_form_get(form, "To");
    const char *body = hark_form_get(form, "Body");
    const char *status = hark_form_get(form, "MessageStatus");
    const char *name = hark_form_get(form, "ProfileName");
    char customer[64], ours[64];
    struct hark_msg *m;
    long media;
    int wa;

    if (sid == NULL || sid[0] == '\0') {
        sid = hark_form_get(form, "SmsMessageSid");
    }
    if (sid == NULL || sid[0] == '\0') {
        return hark_response_fail(resp, 400, "missing MessageSid");
    }
    if (status != NULL && strcasecmp(status, "received") != 0) {
        const char *ours_status = map_status(status);
        if (ours_status == NULL) {
            return hark_response_fail(resp, 400, "unknown MessageStatus");
        }
        return parse_status(ch, form, sid, ours_status, out, resp);
    }
    if (from == NULL || from[0] == '\0' || to == NULL || to[0] == '\0') {
        return hark_response_fail(resp, 400, "missing From or To");
    }
    if (num_media(form, &media) < 0) {
        return hark_response_fail(resp, 400, "NumMedia must be 0 to %d", TWILIO_MAX_MEDIA);
    }
    wa = is_whatsapp(from);
    m = hark_msg_new(HARK_KIND_MESSAGE, wa ? "whatsapp" : media > 0 ? "mms" : "sms", "twilio",
                     ch->name);
    if (m == NULL) {
        return hark_response_fail(resp, 500, "out of memory");
    }
    address_id(from, customer, sizeof(customer));
    address_id(to, ours, sizeof(ours));
    m->thread_key = hark_asprintf("%s|%s|%s", wa ? "whatsapp" : "sms", customer, ours);
    if (m->thread_key == NULL || hark_strset(&m->provider_message_id, sid) < 0 ||
        hark_strset(&m->from.id, customer) < 0 || hark_strset(&m->to.id, ours) < 0 ||
        hark_strset(&m->text, body ? body : "") < 0 ||
        (name && name[0] && hark_strset(&m->from.name, name) < 0) ||
        hark_msg_add_ident(m, hark_phone_e164(from, customer, sizeof(customer)) == 0
                                  ? "phone" : "sms_sender", customer) < 0 ||
        add_extra(m, form) < 0) {
        hark_msg_free(m);
        return hark_response_fail(resp, 500, "out of memory");
    }
    if (add_media(m, form, media, resp) < 0) {
        hark_msg_free(m);
        return -1;
    }
    if (hark_batch_push(out, m) < 0) {
        return hark_response_fail(resp, 500, "out of memory");
    }
    return 0;
}

int twilio_parse(const struct hark_channel *ch, const struct hark_request *req,
                 struct hark_batch *out, struct hark_response *resp)
{
    struct hark_form form = {0};
    const char *why = NULL;
    const char *src = (const char *)req->body;
    size_t len = req->body_len;
    int rc;

    /* A GET webhook carries its parameters in the query string. */
    if (strcmp(req->method, "GET") == 0) {
        src = req->query ? req->query : "";
        len = strlen(src);
    }
    if (req->scratch != NULL && req->scratch->data != NULL && strcmp(req->method, "POST") == 0) {
        /* verify decoded this very body already. */
        rc = twilio_parse_form(ch, req->scratch->data, out, resp);
    } else {
        if (hark_form_parse(src, len, &form, &why) < 0) {
            hark_form_free(&form);
            return hark_response_fail(resp, 400, "form body: %s", why);
        }
        rc = twilio_parse_form(ch, &form, out, resp);
        hark_form_free(&form);
    }
    if (rc == 0) {
        rc = hark_response_set(resp, 200, "text/xml", empty_twiml);
    }
    if (rc < 0) {
        hark_batch_clear(out);
    }
    return rc;
}
