/*
 * hark meta adapter: WhatsApp Cloud API webhooks (pure).
 *
 * entry[].changes[] with field "messages" carries value {messaging_product,
 * metadata {display_phone_number, phone_number_id}, contacts[], messages[],
 * statuses[], errors[]}; field "smb_message_echoes" (WhatsApp Business app
 * coexistence) carries message_echoes[] that the business sent from the
 * app. Customers are identified by their number in E.164 (identity kind
 * "phone"), so WhatsApp through Meta and through Twilio meet in one contact.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/text.h"

#include "meta.h"

#define WA_MAX_SHARED_CONTACTS 16

/* Our side of a change and the profiles that came with it. */
struct wa_scope {
    const char *phone_number_id;
    const char *display;            /* display_phone_number, may be NULL */
    const json_t *contacts;         /* value.contacts, may be NULL */
};

/* The profile name given for wa_id in contacts[], or NULL. */
static const char *wa_profile_name(const json_t *contacts, const char *wa_id)
{
    const json_t *c;
    char buf[24];
    size_t i;

    json_array_foreach(contacts, i, c) {
        const char *id = meta_id(c, "wa_id", buf, sizeof(buf));
        if (id != NULL && strcmp(id, wa_id) == 0) {
            return hark_json_str(json_object_get(c, "profile"), "name");
        }
    }
    return NULL;
}

/*
 * Identity, parties and thread key "<customer>|<phone_number_id>" of a
 * record about customer (a wa_id). The identity is the E.164 number (kind
 * "phone"); a wa_id that is not a number keeps kind "whatsapp". 0 or -1.
 */
static int wa_route(struct hark_msg *m, const struct wa_scope *s, const char *customer,
                    int outbound)
{
    char e164[24], our[24];
    const char *who = customer, *kind = "whatsapp";
    int rc = 0;

    if (hark_phone_e164(customer, e164, sizeof(e164)) == 0) {
        who = e164;
        kind = "phone";
    }
    rc |= hark_msg_add_ident(m, kind, who);
    m->thread_key = hark_asprintf("%s|%s", who, s->phone_number_id);
    rc |= m->thread_key ? 0 : -1;
    rc |= hark_strset(outbound ? &m->to.id : &m->from.id, who);
    rc |= hark_strset(outbound ? &m->from.id : &m->to.id, s->phone_number_id);
    if (s->display != NULL) {
        const char *d = hark_phone_e164(s->display, our, sizeof(our)) == 0 ? our : s->display;
        rc |= hark_strset(outbound ? &m->from.handle : &m->to.handle, d);
    }
    if (!outbound) {
        rc |= hark_strset(&m->from.name, wa_profile_name(s->contacts, customer));
    }
    return rc;
}

/* A media message part {id, mime_type, sha256, caption, filename, url}. 0 or -1. */
static int wa_media(struct meta_parse *p, struct hark_msg *m, const json_t *media,
                    const char *type)
{
    char buf[24];
    int rc = 0;

    if (!json_is_object(media)) {
        return meta_fail(p, 400, "WhatsApp %s message without its %s object", type, type);
    }
    rc |= hark_msg_add_attachment(m, hark_json_str(media, "url"),
                                  hark_json_str(media, "mime_type"),
                                  hark_json_str(media, "filename"), -1,
                                  meta_id(media, "id", buf, sizeof(buf)));
    rc |= hark_strset(&m->text, hark_json_str(media, "caption"));
    rc |= meta_extra_str(m, "sha256", hark_json_str(media, "sha256"));
    if (json_is_true(json_object_get(media, "voice"))) {
        rc |= hark_msg_extra_set(m, "voice", json_true());
    }
    return rc < 0 ? meta_fail(p, 503, "out of memory") : 0;
}

/* A location {latitude, longitude, name, address, url} as a geo: attachment. */
static int wa_location(struct meta_parse *p, struct hark_msg *m, const json_t *loc)
{
    const json_t *la = json_object_get(loc, "latitude"), *lo = json_object_get(loc, "longitude");
    char *geo = NULL;
    int rc = 0;

    if (!json_is_object(loc)) {
        return meta_fail(p, 400, "WhatsApp location message without its location object");
    }
    if (json_is_number(la) && json_is_number(lo) && isfinite(json_number_value(la)) &&
        isfinite(json_number_value(lo)) && fabs(json_number_value(la)) <= 90.0 &&
        fabs(json_number_value(lo)) <= 180.0) {
        geo = hark_asprintf("geo:%.6f,%.6f", json_number_value(la), json_number_value(lo));
        rc |= geo ? 0 : -1;
    }
    rc |= hark_msg_add_attachment(m, geo, "location", hark_json_str(loc, "name"), -1, NULL);
    rc |= hark_msg_extra_set(m, "location", json_deep_copy(loc));
    hark_free(geo);
    return rc < 0 ? meta_fail(p, 503, "out of memory") : 0;
}

/* Shared contact cards: a "Name: phone, phone" line each, cards in extra. */
static int wa_contacts(struct meta_parse *p, struct hark_msg *m, const json_t *cards)
{
    const json_t *card, *ph;
    char *text = NULL, *next;
    size_t i, j;

    if (!json_is_array(cards) || json_array_size(cards) > WA_MAX_SHARED_CONTACTS) {
        return meta_fail(p, 400, "WhatsApp contacts message without a short contacts array");
    }
    json_array_foreach(cards, i, card) {
        const char *name = hark_json_str(json_object_get(card, "name"), "formatted_name");
        const json_t *phones = json_object_get(card, "phones");
        next = hark_asprintf("%s%s%s:", text ? text : "", text ? "\n" : "", name ? name : "?");
        hark_free(text);
        text = next;
        json_array_foreach(phones, j, ph) {
            const char *num = hark_json_str(ph, "phone");
            if (text == NULL || j >= WA_MAX_SHARED_CONTACTS || num == NULL) {
                continue;
            }
            next = hark_asprintf("%s%s %s", text, j ? "," : "", num);
            hark_free(text);
            text = next;
        }
        if (text == NULL) {
            return meta_fail(p, 503, "out of memory");
        }
    }
    m->text = text;
    if (hark_msg_extra_set(m, "contacts", json_deep_copy(cards)) < 0) {
        return meta_fail(p, 503, "out of memory");
    }
    return 0;
}

/* An interactive reply: button_reply, list_reply or nfm_reply (Flows). 0 or -1. */
static int wa_interactive(struct meta_parse *p, struct hark_msg *m, const json_t *it)
{
    const char *itype = hark_json_str(it, "type");
    const json_t *reply = itype ? json_object_get(it, itype) : NULL;
    char buf[24];
    int rc = 0;

    if (!json_is_object(it) || itype == NULL) {
        return meta_fail(p, 400, "WhatsApp interactive message without a type");
    }
    rc |= meta_extra_str(m, "interactive_type", itype);
    if (json_is_object(reply)) {
        const char *title = hark_json_str(reply, "title");
        rc |= hark_strset(&m->text, title ? title : hark_json_str(reply, "body"));
        rc |= meta_extra_str(m, "interactive_id", meta_id(reply, "id", buf, sizeof(buf)));
        rc |= meta_extra_str(m, "interactive_description", hark_json_str(reply, "description"));
        rc |= meta_extra_str(m, "response_json", hark_json_str(reply, "response_json"));
    }
    return rc < 0 ? meta_fail(p, 503, "out of memory") : 0;
}

/* The type-specific part of a message. 0 or -1. */
static int wa_body(struct meta_parse *p, struct hark_msg *m, const json_t *msg,
                   const char *type)
{
    const json_t *part = json_object_get(msg, type);
    char buf[24];
    int rc = 0;

    if (strcmp(type, "text") == 0) {
        if (!json_is_object(part) || !json_is_string(json_object_get(part, "body"))) {
            return meta_fail(p, 400, "WhatsApp text message without text.body");
        }
        rc |= hark_strset(&m->text, hark_json_str(part, "body"));
    } else if (strcmp(type, "image") == 0 || strcmp(type, "video") == 0 ||
               strcmp(type, "audio") == 0 || strcmp(type, "document") == 0 ||
               strcmp(type, "sticker") == 0) {
        return wa_media(p, m, part, type);
    } else if (strcmp(type, "location") == 0) {
        return wa_location(p, m, part);
    } else if (strcmp(type, "contacts") == 0) {
        return wa_contacts(p, m, part);
    } else if (strcmp(type, "interactive") == 0) {
        return wa_interactive(p, m, part);
    } else if (strcmp(type, "button") == 0) {
        rc |= hark_strset(&m->text, hark_json_str(part, "text"));
        rc |= meta_extra_str(m, "button_payload", hark_json_str(part, "payload"));
    } else if (strcmp(type, "reaction") == 0) {
        const char *target = meta_id(part, "message_id", buf, sizeof(buf));
        rc |= hark_strset(&m->text, hark_json_str(part, "emoji"));
        if (target != NULL) {
            rc |= hark_msg_thread_set(m, "reply_to", target);
            rc |= meta_extra_str(m, "reaction_to", target);
        }
    } else if (strcmp(type, "order") == 0 || strcmp(type, "system") == 0) {
        const char *t = hark_json_str(part, strcmp(type, "order") == 0 ? "text" : "body");
        rc |= hark_strset(&m->text, t);
        if (json_is_object(part)) {
            rc |= hark_msg_extra_set(m, type, json_deep_copy(part));
        }
    } else {
        rc |= hark_msg_extra_set(m, "unsupported", json_true());
    }
    return rc < 0 ? meta_fail(p, 503, "out of memory") : 0;
}

/* Reply context, forwarding, ad referral and per-message errors. 0 or -1. */
static int wa_details(struct hark_msg *m, const json_t *msg, const char *type)
{
    const json_t *ctx = json_object_get(msg, "context");
    const json_t *errors = json_object_get(msg, "errors");
    const char *ref;
    char buf[24];
    int rc = 0;

    rc |= meta_extra_str(m, "type", type);
    if ((ref = meta_id(ctx, "id", buf, sizeof(buf))) != NULL) {
        rc |= hark_msg_thread_set(m, "reply_to", ref);
    }
    if (json_is_true(json_object_get(ctx, "forwarded")) ||
        json_is_true(json_object_get(ctx, "frequently_forwarded"))) {
        rc |= hark_msg_extra_set(m, "forwarded", json_true());
    }
    if (json_is_object(json_object_get(ctx, "referred_product"))) {
        rc |= hark_msg_extra_set(m, "referred_product",
                                 json_deep_copy(json_object_get(ctx, "referred_product")));
    }
    if (json_is_object(json_object_get(msg, "referral"))) {
        rc |= hark_msg_extra_set(m, "referral", json_deep_copy(json_object_get(msg, "referral")));
    }
    if (json_is_array(errors) && json_array_size(errors) > 0) {
        rc |= hark_msg_extra_set(m, "errors", json_deep_copy(errors));
    }
    return rc;
}

/*
 * One element of messages[] (or, outbound, message_echoes[] where "to" is
 * the customer): a message record of any documented type. 0 or -1.
 */
static int wa_message(struct meta_parse *p, const struct wa_scope *s, const json_t *msg,
                      int outbound)
{
    char b1[24], b2[24];
    const char *id = meta_id(msg, "id", b1, sizeof(b1));
    const char *customer = meta_id(msg, outbound ? "to" : "from", b2, sizeof(b2));
    const char *type = hark_json_str(msg, "type");
    struct hark_msg *m;

    if (!json_is_object(msg) || id == NULL || customer == NULL || type == NULL) {
        return meta_fail(p, 400, "WhatsApp message without id, %s or type",
                         outbound ? "to" : "from");
    }
    m = hark_msg_new(HARK_KIND_MESSAGE, "whatsapp", META_PROVIDER, p->account);
    if (m == NULL) {
        return meta_fail(p, 503, "out of memory");
    }
    m->direction = outbound ? HARK_DIR_OUTBOUND : HARK_DIR_INBOUND;
    m->status = outbound ? "sent" : "received";
    m->sent_at = meta_epoch_ms(hark_json_int(msg, "timestamp", 0));
    if (hark_strset(&m->provider_message_id, id) < 0 || wa_route(m, s, customer, outbound) < 0 ||
        wa_details(m, msg, type) < 0) {
        hark_msg_free(m);
        return meta_fail(p, 503, "out of memory");
    }
    if (wa_body(p, m, msg, type) < 0) {
        hark_msg_free(m);
        return -1;
    }
    return meta_push(p, m);
}

/* The error text of a failed status: "title (code N): details". */
static char *wa_error_text(const json_t *errors)
{
    const json_t *e = json_array_get(errors, 0);
    const char *title = hark_json_str(e, "title"), *msg = hark_json_str(e, "message");
    const char *details = hark_json_str(json_object_get(e, "error_data"), "details");
    json_int_t code = hark_json_int(e, "code", 0);

    if (!json_is_object(e)) {
        return hark_strdup("failed (no reason given)");
    }
    return hark_asprintf("%s (code %" JSON_INTEGER_FORMAT ")%s%s",
                         msg ? msg : title ? title : "failed", code,
                         details ? ": " : "", details ? details : "");
}

/*
 * One element of statuses[]: sent, delivered, read or failed (with the
 * first error as the reason) for a message the business sent. Other
 * statuses (deleted, warning) are skipped. 0 or -1.
 */
static int wa_status(struct meta_parse *p, const struct wa_scope *s, const json_t *st)
{
    static const char *const known[] = {"sent", "delivered", "read", "failed"};
    char b1[24], b2[24];
    const char *id = meta_id(st, "id", b1, sizeof(b1));
    const char *customer = meta_id(st, "recipient_id", b2, sizeof(b2));
    const char *status = hark_json_str(st, "status"), *mapped = NULL;
    const json_t *conv = json_object_get(st, "conversation");
    const json_t *pricing = json_object_get(st, "pricing");
    struct hark_msg *m;
    int rc = 0;

    if (!json_is_object(st) || id == NULL || customer == NULL || status == NULL) {
        return meta_fail(p, 400, "WhatsApp status without id, recipient_id or status");
    }
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(status, known[i]) == 0) {
            mapped = known[i];
        }
    }
    if (mapped == NULL) {
        return 0;
    }
    m = hark_msg_new(HARK_KIND_STATUS, "whatsapp", META_PROVIDER, p->account);
    if (m == NULL) {
        return meta_fail(p, 503, "out of memory");
    }
    m->direction = HARK_DIR_OUTBOUND;
    m->status = mapped;
    m->sent_at = meta_epoch_ms(hark_json_int(st, "timestamp", 0));
    rc |= hark_strset(&m->provider_message_id, id);
    rc |= wa_route(m, s, customer, 1);
    if (strcmp(mapped, "failed") == 0) {
        m->error = wa_error_text(json_object_get(st, "errors"));
        rc |= m->error ? 0 : -1;
    }
    if (json_is_array(json_object_get(st, "errors"))) {
        rc |= hark_msg_extra_set(m, "errors", json_deep_copy(json_object_get(st, "errors")));
    }
    rc |= meta_extra_str(m, "conversation_id", hark_json_str(conv, "id"));
    rc |= meta_extra_str(m, "pricing_category", hark_json_str(pricing, "category"));
    if (rc < 0) {
        hark_msg_free(m);
        return meta_fail(p, 503, "out of memory");
    }
    return meta_push(p, m);
}

/* value[key] as an array, NULL when absent; sets *bad on a wrong type. */
static const json_t *wa_array(struct meta_parse *p, const json_t *value, const char *key,
                              int *bad)
{
    const json_t *a = json_object_get(value, key);

    if (a != NULL && !json_is_array(a)) {
        *bad = meta_fail(p, 400, "WhatsApp value.%s is not an array", key);
        return NULL;
    }
    return a;
}

/*
 * One change {field, value}. Fields other than messages and
 * smb_message_echoes, and values of another messaging_product, are skipped;
 * value.errors (problems Meta reports about the webhook itself) are
 * dropped, as a pure parser has nowhere to put them. 0 or -1.
 */
int meta_wa_change(struct meta_parse *p, const json_t *change)
{
    const char *field = hark_json_str(change, "field");
    const json_t *value = json_object_get(change, "value");
    const char *product = hark_json_str(value, "messaging_product");
    const json_t *messages, *statuses, *echoes, *v;
    struct wa_scope s = {0};
    char buf[24];
    int bad = 0;
    size_t i;

    if (!json_is_object(change) || field == NULL) {
        return meta_fail(p, 400, "change without a field");
    }
    if (strcmp(field, "messages") != 0 && strcmp(field, "smb_message_echoes") != 0) {
        return 0;
    }
    if (!json_is_object(value)) {
        return meta_fail(p, 400, "WhatsApp change without a value object");
    }
    if (product != NULL && strcmp(product, "whatsapp") != 0) {
        return 0;
    }
    messages = wa_array(p, value, "messages", &bad);
    statuses = wa_array(p, value, "statuses", &bad);
    echoes = wa_array(p, value, "message_echoes", &bad);
    s.contacts = wa_array(p, value, "contacts", &bad);
    if (bad < 0) {
        return -1;
    }
    if (json_array_size(json_object_get(value, "errors")) > 0 && p->note[0] == '\0') {
        /* Account-level errors (value.errors) carry no message: log them. */
        char *text = wa_error_text(json_object_get(value, "errors"));
        snprintf(p->note, sizeof(p->note), "WhatsApp reported an error: %s",
                 text ? text : "(unreadable)");
        hark_free(text);
    }
    s.phone_number_id = meta_id(json_object_get(value, "metadata"), "phone_number_id",
                                buf, sizeof(buf));
    s.display = hark_json_str(json_object_get(value, "metadata"), "display_phone_number");
    if (s.phone_number_id == NULL && json_array_size(messages) + json_array_size(statuses) +
                                     json_array_size(echoes) > 0) {
        return meta_fail(p, 400, "WhatsApp value without metadata.phone_number_id");
    }
    json_array_foreach(messages, i, v) {
        if (meta_count_event(p) < 0 || wa_message(p, &s, v, 0) < 0) {
            return -1;
        }
    }
    json_array_foreach(echoes, i, v) {
        if (meta_count_event(p) < 0 || wa_message(p, &s, v, 1) < 0) {
            return -1;
        }
    }
    json_array_foreach(statuses, i, v) {
        if (meta_count_event(p) < 0 || wa_status(p, &s, v) < 0) {
            return -1;
        }
    }
    return 0;
}
