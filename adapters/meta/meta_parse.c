/*
 * hark meta adapter: the pure parser for Messenger, Instagram and Page feed
 * webhooks. Page feed and Instagram comment changes are in meta_changes.c,
 * WhatsApp Cloud changes in meta_whatsapp.c.
 *
 * A request is one envelope {"object": ..., "entry": [...]} (or, as some
 * documentation pages print it, an array of envelopes). Every event the
 * adapter understands becomes a record in the batch; events of other kinds
 * inside a valid envelope are skipped. A structural error anywhere (wrong
 * type or missing required field in an event we handle, an unknown object)
 * fails the whole request with 400 and nothing is produced.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/text.h"

#include "meta.h"

/* Where the events of one entry belong: channel, our id, identity kind. */
struct dm_scope {
    const char *channel;            /* "messenger" or "instagram" */
    const char *our_id;             /* entry.id: the Page or Instagram account */
    char ident_kind[META_MAX_ID + 16];
    int standby;                    /* the event came in entry.standby[] */
};

int meta_fail(struct meta_parse *p, int status, const char *fmt, ...)
{
    va_list ap;

    if (p->status == 0) {
        p->status = status;
        va_start(ap, fmt);
        vsnprintf(p->why, sizeof(p->why), fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* 1 when s is usable as an id: printable ASCII without spaces or '|'. */
static int id_chars_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || c == '|') {
            return 0;
        }
    }
    return 1;
}

const char *meta_id(const json_t *obj, const char *key, char *buf, size_t cap)
{
    const json_t *v;

    if (!json_is_object(obj)) {
        return NULL;
    }
    v = json_object_get(obj, key);
    if (json_is_string(v)) {
        size_t n = json_string_length(v);
        const char *s = json_string_value(v);
        return n > 0 && n <= META_MAX_ID && id_chars_ok(s, n) ? s : NULL;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0 && cap >= 24) {
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    return NULL;
}

int meta_count_event(struct meta_parse *p)
{
    if (++p->events > META_MAX_EVENTS) {
        return meta_fail(p, 413, "more than %d events in one request", META_MAX_EVENTS);
    }
    return 0;
}

int meta_push(struct meta_parse *p, struct hark_msg *msg)
{
    size_t max = p->out->max ? p->out->max : HARK_BATCH_MAX;
    const char *bad;

    if (msg == NULL) {
        return meta_fail(p, 503, "out of memory");
    }
    if ((bad = hark_msg_validate(msg)) != NULL) {
        hark_msg_free(msg);
        return meta_fail(p, 400, "%s", bad);
    }
    if (p->out->n >= max) {
        hark_msg_free(msg);
        return meta_fail(p, 413, "more than %zu messages in one request", max);
    }
    if (hark_batch_push(p->out, msg) < 0) {
        return meta_fail(p, 503, "out of memory");
    }
    return 0;
}

int meta_extra_str(struct hark_msg *msg, const char *key, const char *value)
{
    return value == NULL ? 0 : hark_msg_extra_set(msg, key, json_string(value));
}

int64_t meta_epoch_ms(json_int_t t)
{
    if (t <= 0 || t >= 100000000000000LL) {
        return 0;
    }
    return t < 100000000000LL ? (int64_t)t * 1000 : (int64_t)t;
}

/* extra[key] = a copy of obj when it is an object. 0 or -1. */
static int extra_copy(struct hark_msg *m, const char *key, const json_t *obj)
{
    return json_is_object(obj) ? hark_msg_extra_set(m, key, json_deep_copy(obj)) : 0;
}

/*
 * A record of a Messenger/Instagram event: identity, parties, thread key
 * "<customer>|<our id>", provider id and time. NULL when out of memory.
 */
static struct hark_msg *dm_new(const struct meta_parse *p, const struct dm_scope *s,
                               enum hark_msg_kind kind, int outbound, const char *customer,
                               const char *pmid, const json_t *ev)
{
    struct hark_msg *m = hark_msg_new(kind, s->channel, META_PROVIDER, p->account);
    int rc = 0;

    if (m == NULL) {
        return NULL;
    }
    m->direction = outbound ? HARK_DIR_OUTBOUND : HARK_DIR_INBOUND;
    if (outbound) {
        m->status = "sent";
    }
    rc |= hark_strset(&m->from.id, outbound ? s->our_id : customer);
    rc |= hark_strset(&m->to.id, outbound ? customer : s->our_id);
    rc |= hark_msg_add_ident(m, s->ident_kind, customer);
    rc |= hark_strset(&m->provider_message_id, pmid);
    m->thread_key = hark_asprintf("%s|%s", customer, s->our_id);
    rc |= m->thread_key ? 0 : -1;
    m->sent_at = meta_epoch_ms(hark_json_int(ev, "timestamp", 0));
    if (s->standby) {
        rc |= hark_msg_extra_set(m, "standby", json_true());
    }
    if (rc < 0) {
        hark_msg_free(m);
        return NULL;
    }
    return m;
}

/* geo: URI of a Messenger location attachment, or NULL (no coordinates). */
static char *geo_uri(const json_t *payload)
{
    const json_t *c = json_object_get(payload, "coordinates");
    const json_t *lat = json_object_get(c, "lat"), *lon = json_object_get(c, "long");
    double la, lo;

    if (!json_is_number(lat) || !json_is_number(lon)) {
        return NULL;
    }
    la = json_number_value(lat);
    lo = json_number_value(lon);
    if (!isfinite(la) || !isfinite(lo) || fabs(la) > 90.0 || fabs(lo) > 180.0) {
        return NULL;
    }
    return hark_asprintf("geo:%.6f,%.6f", la, lo);
}

/*
 * Append one Messenger/Instagram attachment {type, payload}: media types keep
 * their URL with the type as content type; location becomes a geo: URI;
 * template payloads go to extra.template (their text fills an empty text);
 * stickers keep sticker_id as file id; fallback keeps url and title.
 * Returns 0, or -1 with the failure recorded.
 */
static int dm_attachment(struct meta_parse *p, struct hark_msg *m, const json_t *att)
{
    const char *type = hark_json_str(att, "type");
    const json_t *payload = json_object_get(att, "payload");
    const char *url = hark_json_str(payload, "url");
    const char *title = hark_json_str(payload, "title");
    char idbuf[24], *geo = NULL;
    const char *file_id = NULL;
    int rc = 0;

    if (!json_is_object(att) || type == NULL) {
        return meta_fail(p, 400, "attachment without a type");
    }
    if (payload != NULL && !json_is_object(payload) && !json_is_null(payload)) {
        return meta_fail(p, 400, "attachment payload is not an object");
    }
    if (strcmp(type, "location") == 0) {
        geo = geo_uri(payload);
        url = geo;
        title = title ? title : hark_json_str(att, "title");
    } else if (strcmp(type, "template") == 0) {
        rc |= extra_copy(m, "template", payload);
        if (m->text == NULL) {
            rc |= hark_strset(&m->text, hark_json_str(payload, "text"));
        }
    } else if (strcmp(type, "fallback") == 0) {
        url = url ? url : hark_json_str(att, "url");
        title = title ? title : hark_json_str(att, "title");
    } else if (strcmp(type, "sticker") == 0) {
        file_id = meta_id(payload, "sticker_id", idbuf, sizeof(idbuf));
    }
    rc |= hark_msg_add_attachment(m, url, type, title, -1, file_id);
    hark_free(geo);
    return rc < 0 ? meta_fail(p, 503, "out of memory") : 0;
}

/* The attachments array of a message (absent is fine). 0 or -1. */
static int dm_attachments(struct meta_parse *p, struct hark_msg *m, const json_t *arr)
{
    size_t i;
    const json_t *att;

    if (arr == NULL) {
        return 0;
    }
    if (!json_is_array(arr) || json_array_size(arr) > HARK_MAX_ATTACHMENTS) {
        return meta_fail(p, 400, "message.attachments is not an array of at most %d",
                         HARK_MAX_ATTACHMENTS);
    }
    json_array_foreach(arr, i, att) {
        if (dm_attachment(p, m, att) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Reply references, quick replies, echo details and ads referral. 0 or -1. */
static int dm_message_details(struct hark_msg *m, const json_t *message, int echo)
{
    const json_t *rt = json_object_get(message, "reply_to");
    const json_t *story = json_object_get(rt, "story");
    const char *ref;
    char buf[24];
    int rc = 0;

    rc |= meta_extra_str(m, "quick_reply_payload",
                         hark_json_str(json_object_get(message, "quick_reply"), "payload"));
    if ((ref = meta_id(rt, "mid", buf, sizeof(buf))) != NULL) {
        rc |= hark_msg_thread_set(m, "reply_to", ref);
    }
    if ((ref = meta_id(story, "id", buf, sizeof(buf))) != NULL) {
        rc |= hark_msg_thread_set(m, "story_id", ref);
    }
    rc |= meta_extra_str(m, "story_url", hark_json_str(story, "url"));
    if (echo) {
        rc |= meta_extra_str(m, "app_id", meta_id(message, "app_id", buf, sizeof(buf)));
        rc |= meta_extra_str(m, "metadata", hark_json_str(message, "metadata"));
    }
    if (json_is_true(json_object_get(message, "is_unsupported"))) {
        rc |= hark_msg_extra_set(m, "unsupported", json_true());
    }
    rc |= extra_copy(m, "referral", json_object_get(message, "referral"));
    return rc;
}

/*
 * A "message" event: a customer's message, or with is_echo one the Page or
 * account sent (outbound: the customer is the recipient); is_deleted
 * (Instagram) removes the message. Returns 0 or -1.
 */
static int dm_message(struct meta_parse *p, const struct dm_scope *s, const json_t *ev,
                      const json_t *message, const char *sender, const char *recipient)
{
    char buf[24];
    const char *mid = meta_id(message, "mid", buf, sizeof(buf));
    int echo = json_is_true(json_object_get(message, "is_echo"));
    const char *customer = echo ? recipient : sender;
    enum hark_msg_kind kind = json_is_true(json_object_get(message, "is_deleted"))
                                  ? HARK_KIND_REMOVE : HARK_KIND_MESSAGE;
    const json_t *text = json_object_get(message, "text");
    struct hark_msg *m;

    if (!json_is_object(message) || mid == NULL) {
        return meta_fail(p, 400, "message without a mid");
    }
    if (customer == NULL) {
        return meta_fail(p, 400, "message without %s.id", echo ? "recipient" : "sender");
    }
    if (text != NULL && !json_is_string(text)) {
        return meta_fail(p, 400, "message.text is not a string");
    }
    if ((m = dm_new(p, s, kind, echo, customer, mid, ev)) == NULL) {
        return meta_fail(p, 503, "out of memory");
    }
    if (kind == HARK_KIND_MESSAGE) {
        if (hark_strset(&m->text, json_string_value(text)) < 0 ||
            dm_message_details(m, message, echo) < 0) {
            hark_msg_free(m);
            return meta_fail(p, 503, "out of memory");
        }
        if (dm_attachments(p, m, json_object_get(message, "attachments")) < 0) {
            hark_msg_free(m);
            return -1;
        }
    }
    return meta_push(p, m);
}

/* A "message_edit" event: new text for a known message. 0 or -1. */
static int dm_edit(struct meta_parse *p, const struct dm_scope *s, const json_t *ev,
                   const json_t *edit, const char *sender)
{
    char buf[24];
    const char *mid = meta_id(edit, "mid", buf, sizeof(buf));
    struct hark_msg *m;
    char *event_id;
    int rc = 0;

    if (mid == NULL || sender == NULL) {
        return meta_fail(p, 400, "message_edit without mid or sender.id");
    }
    if ((m = dm_new(p, s, HARK_KIND_EDIT, 0, sender, mid, ev)) == NULL) {
        return meta_fail(p, 503, "out of memory");
    }
    rc |= hark_strset(&m->text, hark_json_str(edit, "text"));
    event_id = hark_asprintf("%s:edit:%" JSON_INTEGER_FORMAT, mid,
                             hark_json_int(edit, "num_edit", 0));
    rc |= event_id ? hark_msg_extra_set(m, "event_id", json_string(event_id)) : -1;
    hark_free(event_id);
    if (rc < 0) {
        hark_msg_free(m);
        return meta_fail(p, 503, "out of memory");
    }
    return meta_push(p, m);
}

/*
 * A postback (button tap: title as text, payload in extra) or a referral
 * (m.me link, ad, chat plugin: a message without text, referral in extra).
 * Neither always carries a mid: the id is then "<kind>:<sender>:<timestamp>".
 */
static int dm_postback(struct meta_parse *p, const struct dm_scope *s, const json_t *ev,
                       const json_t *obj, const char *sender, const char *what)
{
    char buf[24], *synth = NULL;
    const char *mid = meta_id(obj, "mid", buf, sizeof(buf));
    struct hark_msg *m;
    int is_postback = strcmp(what, "postback") == 0, rc = 0;

    if (!json_is_object(obj)) {
        return meta_fail(p, 400, "%s is not an object", what);
    }
    if (sender == NULL) {
        return is_postback ? meta_fail(p, 400, "postback without sender.id") : 0;
    }
    if (mid == NULL) {
        synth = hark_asprintf("%s:%s:%" JSON_INTEGER_FORMAT, what, sender,
                              hark_json_int(ev, "timestamp", 0));
        if (synth == NULL) {
            return meta_fail(p, 503, "out of memory");
        }
        mid = synth;
    }
    m = dm_new(p, s, HARK_KIND_MESSAGE, 0, sender, mid, ev);
    hark_free(synth);
    if (m == NULL) {
        return meta_fail(p, 503, "out of memory");
    }
    if (is_postback) {
        rc |= hark_strset(&m->text, hark_json_str(obj, "title"));
        rc |= meta_extra_str(m, "postback_payload", hark_json_str(obj, "payload"));
        rc |= extra_copy(m, "referral", json_object_get(obj, "referral"));
    } else {
        rc |= extra_copy(m, "referral", obj);
    }
    if (rc < 0) {
        hark_msg_free(m);
        return meta_fail(p, 503, "out of memory");
    }
    return meta_push(p, m);
}

/* One status record for the message pmid. 0 or -1. */
static int dm_status_one(struct meta_parse *p, const struct dm_scope *s, const json_t *ev,
                         const char *customer, const char *pmid, const char *status,
                         json_int_t watermark)
{
    struct hark_msg *m = dm_new(p, s, HARK_KIND_STATUS, 1, customer, pmid, ev);

    if (m == NULL) {
        return meta_fail(p, 503, "out of memory");
    }
    m->status = status;
    if (m->sent_at == 0) {
        m->sent_at = meta_epoch_ms(watermark);
    }
    if (watermark > 0 && hark_msg_extra_set(m, "watermark", json_integer(watermark)) < 0) {
        hark_msg_free(m);
        return meta_fail(p, 503, "out of memory");
    }
    return meta_push(p, m);
}

/*
 * "delivery" {mids[], watermark} and "read" {watermark} or {mid}: one
 * status record per mid; without mids, one record "<status>:<watermark>"
 * that names every message sent before the watermark (see the docs).
 */
static int dm_status(struct meta_parse *p, const struct dm_scope *s, const json_t *ev,
                     const json_t *obj, const char *customer, const char *status)
{
    const json_t *mids = json_object_get(obj, "mids"), *v;
    json_int_t watermark = hark_json_int(obj, "watermark", 0);
    char buf[24], *synth;
    const char *mid = meta_id(obj, "mid", buf, sizeof(buf));
    size_t i;
    int rc;

    if (!json_is_object(obj) || customer == NULL) {
        return meta_fail(p, 400, "%s event without an object or sender.id", status);
    }
    if (mids != NULL && !json_is_array(mids)) {
        return meta_fail(p, 400, "delivery.mids is not an array");
    }
    json_array_foreach(mids, i, v) {
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) > META_MAX_ID) {
            return meta_fail(p, 400, "delivery.mids holds a non-id");
        }
        if (meta_count_event(p) < 0 ||
            dm_status_one(p, s, ev, customer, json_string_value(v), status, watermark) < 0) {
            return -1;
        }
    }
    if (json_array_size(mids) > 0) {
        return 0;
    }
    if (mid != NULL) {
        return dm_status_one(p, s, ev, customer, mid, status, watermark);
    }
    if (watermark <= 0) {
        return 0;   /* nothing to name */
    }
    synth = hark_asprintf("%s:%" JSON_INTEGER_FORMAT, status, watermark);
    if (synth == NULL) {
        return meta_fail(p, 503, "out of memory");
    }
    rc = dm_status_one(p, s, ev, customer, synth, status, watermark);
    hark_free(synth);
    return rc;
}

/* One element of entry.messaging[] or entry.standby[]. 0 or -1. */
static int dm_event(struct meta_parse *p, const struct dm_scope *s, const json_t *ev)
{
    char b1[24], b2[24];
    const char *sender, *recipient;
    const json_t *v;

    if (meta_count_event(p) < 0) {
        return -1;
    }
    if (!json_is_object(ev)) {
        return meta_fail(p, 400, "messaging event is not an object");
    }
    sender = meta_id(json_object_get(ev, "sender"), "id", b1, sizeof(b1));
    recipient = meta_id(json_object_get(ev, "recipient"), "id", b2, sizeof(b2));
    if ((v = json_object_get(ev, "message")) != NULL) {
        return dm_message(p, s, ev, v, sender, recipient);
    }
    if ((v = json_object_get(ev, "message_edit")) != NULL) {
        return dm_edit(p, s, ev, v, sender);
    }
    if ((v = json_object_get(ev, "postback")) != NULL) {
        return dm_postback(p, s, ev, v, sender, "postback");
    }
    if ((v = json_object_get(ev, "referral")) != NULL) {
        return dm_postback(p, s, ev, v, sender, "referral");
    }
    if ((v = json_object_get(ev, "delivery")) != NULL) {
        return dm_status(p, s, ev, v, sender, "delivered");
    }
    if ((v = json_object_get(ev, "read")) != NULL) {
        return dm_status(p, s, ev, v, sender, "read");
    }
    return 0;   /* reactions, optins, handover, policy notices: not messages */
}

/* entry[key] as an array, or NULL when absent; -1 in *bad on a wrong type. */
static const json_t *entry_array(struct meta_parse *p, const json_t *entry, const char *key,
                                 int *bad)
{
    const json_t *a = json_object_get(entry, key);

    if (a != NULL && !json_is_array(a)) {
        *bad = meta_fail(p, 400, "entry.%s is not an array", key);
        return NULL;
    }
    return a;
}

/* One entry of a "page" or "instagram" envelope. 0 or -1. */
static int social_entry(struct meta_parse *p, const json_t *entry, int instagram)
{
    struct dm_scope s = {instagram ? "instagram" : "messenger", NULL, {0}, 0};
    const json_t *messaging, *standby, *changes, *v;
    json_int_t time;
    char buf[24];
    int bad = 0;
    size_t i;

    if (!json_is_object(entry) || (s.our_id = meta_id(entry, "id", buf, sizeof(buf))) == NULL) {
        return meta_fail(p, 400, "entry without an id");
    }
    time = hark_json_int(entry, "time", 0);
    snprintf(s.ident_kind, sizeof(s.ident_kind), "%s:%s", s.channel, s.our_id);
    messaging = entry_array(p, entry, "messaging", &bad);
    standby = entry_array(p, entry, "standby", &bad);
    changes = entry_array(p, entry, "changes", &bad);
    if (bad < 0) {
        return -1;
    }
    json_array_foreach(messaging, i, v) {
        if (dm_event(p, &s, v) < 0) {
            return -1;
        }
    }
    s.standby = 1;
    json_array_foreach(standby, i, v) {
        if (dm_event(p, &s, v) < 0) {
            return -1;
        }
    }
    json_array_foreach(changes, i, v) {
        if (meta_count_event(p) < 0 ||
            (instagram ? meta_ig_change(p, s.our_id, time, v)
                       : meta_page_change(p, s.our_id, time, v)) < 0) {
            return -1;
        }
    }
    return 0;
}

/* One envelope {object, entry[]}. 0 or -1. */
static int parse_envelope(struct meta_parse *p, const json_t *env)
{
    const char *object = hark_json_str(env, "object");
    const json_t *entries = json_object_get(env, "entry"), *entry, *changes, *c;
    size_t i, j;
    int kind;

    if (!json_is_object(env) || object == NULL || !json_is_array(entries)) {
        return meta_fail(p, 400, "payload is not {\"object\": ..., \"entry\": [...]}");
    }
    if (strcmp(object, "page") == 0) {
        kind = 0;
    } else if (strcmp(object, "instagram") == 0) {
        kind = 1;
    } else if (strcmp(object, "whatsapp_business_account") == 0) {
        kind = 2;
    } else {
        return meta_fail(p, 400, "unknown object \"%.40s\"", object);
    }
    json_array_foreach(entries, i, entry) {
        if (meta_count_event(p) < 0) {
            return -1;
        }
        if (kind < 2) {
            if (social_entry(p, entry, kind) < 0) {
                return -1;
            }
            continue;
        }
        changes = json_object_get(entry, "changes");
        if (!json_is_object(entry) || (changes != NULL && !json_is_array(changes))) {
            return meta_fail(p, 400, "entry is not an object with a changes array");
        }
        json_array_foreach(changes, j, c) {
            if (meta_count_event(p) < 0 || meta_wa_change(p, c) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/*
 * parse: the signed body into records (pure). On success the batch holds
 * every record and resp is 200 "EVENT_RECEIVED"; on failure nothing is
 * added to the batch and resp carries the 4xx/503 and its reason.
 */
int meta_parse(const struct hark_channel *ch, const struct hark_request *req,
               struct hark_batch *out, struct hark_response *resp)
{
    struct meta_parse p = {.account = ch->name, .out = out};
    size_t start = out->n, i;
    const char *why = NULL;
    const json_t *env;
    json_t *root;
    int rc = 0;

    root = hark_json_parse((const char *)req->body, req->body_len, &why);
    if (root == NULL) {
        return hark_response_fail(resp, 400, "%s", why ? why : "malformed JSON");
    }
    if (json_is_array(root)) {
        if (json_array_size(root) == 0 || json_array_size(root) > META_MAX_ENVELOPES) {
            rc = meta_fail(&p, 400, "payload array must hold 1 to %d envelopes",
                           META_MAX_ENVELOPES);
        }
        json_array_foreach(root, i, env) {
            if (rc == 0) {
                rc = parse_envelope(&p, env);
            }
        }
    } else {
        rc = parse_envelope(&p, root);
    }
    json_decref(root);
    if (rc == 0) {
        memcpy(resp->note, p.note, sizeof(p.note));
    }
    if (rc == 0 && hark_response_set(resp, 200, "text/plain", "EVENT_RECEIVED") < 0) {
        rc = meta_fail(&p, 503, "out of memory");
    }
    if (rc < 0) {
        for (i = start; i < out->n; i++) {
            hark_msg_free(out->msgs[i]);
        }
        out->n = start;
        return hark_response_fail(resp, p.status ? p.status : 400, "%s", p.why);
    }
    return 0;
}
