/*
 * X (Account Activity API) adapter: the pure parser.
 *
 * One POST carries a for_user_id (the subscribed account, "us") and arrays
 * of events. We keep:
 *  - direct_message_events (message_create) -> x_dm messages, inbound or,
 *    when we sent them, outbound echoes (the customer is the recipient);
 *  - tweet_create_events that mention us or reply to us -> x_mention
 *    messages; our own replies to a customer's tweet -> outbound echoes;
 *  - direct_message_mark_read_events by the customer -> STATUS "read";
 *  - tweet_delete_events of a customer's tweet -> REMOVE;
 * and skip everything else (favorites, follows, typing, our own plain
 * tweets, retweets) with 200. See docs/adapters/x.md for the thread rule.
 *
 * No I/O, no globals: this file is fuzzed (tests/fuzz/fuzz_x.c).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/msg.h"
#include "hark/text.h"

#include "x.h"

#define X_MAX_MEDIA 16
#define X_MAX_VARIANTS 32
#define X_MAX_MENTIONS 100

/* What one parse call carries around. */
struct x_parse_state {
    const struct hark_channel *ch;
    const char *us;         /* the company account's user id */
    const json_t *users;    /* the payload's users map, may be NULL */
    const char *why;        /* static reason of a 400 */
};

static int x_bad(struct x_parse_state *p, const char *why)
{
    p->why = why;
    return -1;
}

/* obj[key] as an id string: 1 valid, 0 absent or null, -1 anything else. */
static int x_id(const json_t *obj, const char *key, const char **out)
{
    const json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_string(v) || !x_id_ok(json_string_value(v))) {
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

/* Epoch ms from "Wed Oct 10 20:19:24 +0000 2018" (X's created_at); 0 unknown. */
static int64_t x_created_at(const char *s)
{
    struct tm tm;
    const char *end;

    if (s == NULL) {
        return 0;
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%a %b %d %H:%M:%S +0000 %Y", &tm);
    if (end == NULL || *end != '\0') {
        return 0;
    }
    return (int64_t)timegm(&tm) * 1000;
}

/* A timestamp in ms given as digits (or a number); 0 when absent or silly. */
static int64_t x_ms(const json_t *obj, const char *key)
{
    json_int_t v = hark_json_int(obj, key, 0);
    return (v > 0 && v < (json_int_t)1e15) ? (int64_t)v : 0;
}

/*
 * Fill a party with id and, from the user object (or the users map entry
 * for id), name and screen_name as handle. 0 or -1 (no memory, wrong type).
 */
static int x_party(struct x_parse_state *p, struct hark_party *party, const char *id,
                   const json_t *user)
{
    const json_t *name, *handle;

    if (user == NULL && json_is_object(p->users)) {
        user = json_object_get(p->users, id);
    }
    name = json_object_get(user, "name");
    handle = json_object_get(user, "screen_name");
    if ((name && !json_is_string(name) && !json_is_null(name)) ||
        (handle && !json_is_string(handle) && !json_is_null(handle))) {
        return x_bad(p, "user name of the wrong type");
    }
    if (hark_strset(&party->id, id) < 0 ||
        hark_strset(&party->name, json_string_value(name)) < 0 ||
        hark_strset(&party->handle, json_string_value(handle)) < 0) {
        return x_bad(p, "out of memory");
    }
    return 0;
}

/* The MIME type of a media object: best mp4 variant for videos, else from the URL. */
static int x_media(struct x_parse_state *p, struct hark_msg *msg, const json_t *media,
                   char **strip_url)
{
    const char *id = NULL, *type = hark_json_str(media, "type");
    const char *url = hark_json_str(media, "media_url_https");
    const char *ctype = "image/jpeg";
    const json_t *variants = json_object_get(json_object_get(media, "video_info"), "variants");

    if (!json_is_object(media) || x_id(media, "id_str", &id) < 0) {
        return x_bad(p, "media without a valid id_str");
    }
    if (url == NULL) {
        url = hark_json_str(media, "media_url");
    }
    if (url != NULL && strlen(url) > 4 && strcmp(url + strlen(url) - 4, ".png") == 0) {
        ctype = "image/png";
    }
    if (type != NULL && (strcmp(type, "video") == 0 || strcmp(type, "animated_gif") == 0)) {
        json_int_t best = -1;
        size_t i;
        const json_t *v;
        if (!json_is_array(variants) || json_array_size(variants) > X_MAX_VARIANTS) {
            return x_bad(p, "video without a short variants array");
        }
        json_array_foreach(variants, i, v) {
            const char *vt = hark_json_str(v, "content_type"), *vu = hark_json_str(v, "url");
            json_int_t rate = hark_json_int(v, "bitrate", 0);
            if (vt != NULL && vu != NULL && strcmp(vt, "video/mp4") == 0 && rate > best) {
                best = rate;
                url = vu;
                ctype = vt;
            }
        }
    }
    if (hark_msg_add_attachment(msg, url, ctype, NULL, -1, id) < 0) {
        return x_bad(p, "too many attachments or out of memory");
    }
    if (strip_url != NULL && hark_json_str(media, "url") != NULL &&
        hark_strset(strip_url, hark_json_str(media, "url")) < 0) {
        return x_bad(p, "out of memory");
    }
    return 0;
}

/* Drop a trailing " <url>" (the t.co link X appends for media) from msg->text. */
static void x_strip_tail(struct hark_msg *msg, const char *url)
{
    size_t n, u;

    if (msg->text == NULL || url == NULL || (u = strlen(url)) == 0) {
        return;
    }
    n = strlen(msg->text);
    if (n >= u && strcmp(msg->text + n - u, url) == 0) {
        n -= u;
        while (n > 0 && msg->text[n - 1] == ' ') {
            n--;
        }
        msg->text[n] = '\0';
    }
}

/* A new message of the given kind on channel with provider id pmid, or NULL. */
static struct hark_msg *x_msg_new(struct x_parse_state *p, enum hark_msg_kind kind,
                                  const char *channel, const char *pmid)
{
    struct hark_msg *msg = hark_msg_new(kind, channel, "x", p->ch->name);

    if (msg == NULL || hark_strset(&msg->provider_message_id, pmid) < 0) {
        hark_msg_free(msg);
        x_bad(p, "out of memory");
        return NULL;
    }
    return msg;
}

/* Push msg (owned) after setting ident and thread key to the customer. */
static int x_finish(struct x_parse_state *p, struct hark_msg *msg, const char *customer,
                    const char *thread_key, struct hark_batch *out)
{
    if (hark_msg_add_ident(msg, "x", customer) < 0 ||
        hark_strset(&msg->thread_key, thread_key) < 0) {
        hark_msg_free(msg);
        return x_bad(p, "out of memory");
    }
    if (hark_batch_push(out, msg) < 0) {
        return x_bad(p, "too many messages or out of memory");
    }
    return 0;
}

/*
 * One direct_message_events entry. Only message_create is a message; the
 * customer is the sender, or the recipient when we are the sender.
 */
static int x_dm(struct x_parse_state *p, const json_t *ev, struct hark_batch *out)
{
    const json_t *mc = json_object_get(ev, "message_create"), *data, *att;
    const char *type, *id, *sender, *recipient, *customer, *text;
    char *strip = NULL;
    struct hark_msg *msg;

    if (!json_is_object(ev) || (type = hark_json_str(ev, "type")) == NULL) {
        return x_bad(p, "direct message event without a type");
    }
    if (strcmp(type, "message_create") != 0) {
        return 0;
    }
    data = json_object_get(mc, "message_data");
    if (x_id(ev, "id", &id) != 1 || !json_is_object(mc) ||
        x_id(mc, "sender_id", &sender) != 1 ||
        x_id(json_object_get(mc, "target"), "recipient_id", &recipient) != 1 ||
        !json_is_object(data)) {
        return x_bad(p, "message_create without id, sender_id, recipient_id or message_data");
    }
    text = hark_json_str(data, "text");
    if (json_object_get(data, "text") != NULL && text == NULL) {
        return x_bad(p, "message_data.text is not a string");
    }
    msg = x_msg_new(p, HARK_KIND_MESSAGE, "x_dm", id);
    if (msg == NULL) {
        return -1;
    }
    msg->direction = strcmp(sender, p->us) == 0 ? HARK_DIR_OUTBOUND : HARK_DIR_INBOUND;
    customer = msg->direction == HARK_DIR_OUTBOUND ? recipient : sender;
    msg->sent_at = x_ms(ev, "created_timestamp");
    if (x_party(p, &msg->from, sender, NULL) < 0 || hark_strset(&msg->to.id, recipient) < 0 ||
        hark_strset(&msg->text, text ? text : "") < 0 ||
        hark_msg_thread_set(msg, "dm_event_id", id) < 0) {
        goto fail;
    }
    if ((att = json_object_get(data, "attachment")) != NULL) {
        if (!json_is_object(att) || x_media(p, msg, json_object_get(att, "media"), &strip) < 0) {
            x_bad(p, p->why ? p->why : "malformed attachment");
            goto fail;
        }
        x_strip_tail(msg, strip);
        hark_free(strip);
    }
    if (hark_json_str(mc, "source_app_id") != NULL &&
        hark_msg_extra_set(msg, "source_app_id",
                           json_string(hark_json_str(mc, "source_app_id"))) < 0) {
        goto fail;
    }
    return x_finish(p, msg, customer, customer, out);

fail:
    if (p->why == NULL) {
        x_bad(p, "out of memory");
    }
    hark_msg_free(msg);
    return -1;
}

/* 1 when the tweet's user_mentions (entities or extended_tweet) name us; -1 malformed. */
static int x_mentions_us(struct x_parse_state *p, const json_t *tweet)
{
    const json_t *lists[2] = {
        json_object_get(json_object_get(tweet, "entities"), "user_mentions"),
        json_object_get(json_object_get(json_object_get(tweet, "extended_tweet"), "entities"),
                        "user_mentions"),
    };

    for (size_t l = 0; l < 2; l++) {
        const json_t *m;
        size_t i;
        if (lists[l] == NULL) {
            continue;
        }
        if (!json_is_array(lists[l]) || json_array_size(lists[l]) > X_MAX_MENTIONS) {
            return x_bad(p, "user_mentions is not a short array");
        }
        json_array_foreach(lists[l], i, m) {
            const char *uid = hark_json_str(m, "id_str");
            if (uid != NULL && strcmp(uid, p->us) == 0) {
                return 1;
            }
        }
    }
    return 0;
}

/* The media of a tweet: extended_entities (extended_tweet's first), else entities. */
static int x_tweet_media(struct x_parse_state *p, struct hark_msg *msg, const json_t *tweet)
{
    const json_t *ext = json_object_get(tweet, "extended_tweet");
    const json_t *cands[3] = {
        json_object_get(json_object_get(ext, "extended_entities"), "media"),
        json_object_get(json_object_get(tweet, "extended_entities"), "media"),
        json_object_get(json_object_get(tweet, "entities"), "media"),
    };
    char *strip = NULL;

    for (size_t c = 0; c < 3; c++) {
        const json_t *m;
        size_t i;
        if (cands[c] == NULL) {
            continue;
        }
        if (!json_is_array(cands[c]) || json_array_size(cands[c]) > X_MAX_MEDIA) {
            return x_bad(p, "media is not a short array");
        }
        json_array_foreach(cands[c], i, m) {
            if (x_media(p, msg, m, &strip) < 0) {
                hark_free(strip);
                return -1;
            }
        }
        x_strip_tail(msg, strip);
        hark_free(strip);
        return 0;
    }
    return 0;
}

/*
 * One tweet_create_events entry. A tweet by someone else that mentions us
 * or replies to us is an inbound mention; our own reply to another user's
 * tweet is an outbound echo; everything else (our plain tweets, retweets,
 * tweets not about us) is skipped. Thread key: "tweet:<anchor>|<customer>"
 * with anchor = conversation id when given, else the tweet replied to,
 * else the tweet itself; own_ref/thread_refs let the store follow chains.
 */
static int x_tweet(struct x_parse_state *p, const json_t *tw, struct hark_batch *out)
{
    const json_t *user = json_object_get(tw, "user"), *ext = json_object_get(tw, "extended_tweet");
    const char *id, *author, *reply_user, *reply_status, *conv, *customer, *text;
    char *key = NULL, *ref = NULL;
    struct hark_msg *msg;
    int mentions, outbound;

    if (!json_is_object(tw) || x_id(tw, "id_str", &id) != 1 || !json_is_object(user) ||
        x_id(user, "id_str", &author) != 1 ||
        x_id(tw, "in_reply_to_user_id_str", &reply_user) < 0 ||
        x_id(tw, "in_reply_to_status_id_str", &reply_status) < 0 ||
        x_id(tw, "conversation_id_str", &conv) < 0) {
        return x_bad(p, "tweet without valid id_str and user.id_str");
    }
    if (json_object_get(tw, "retweeted_status") != NULL) {
        return 0;
    }
    outbound = strcmp(author, p->us) == 0;
    if (outbound) {
        if (reply_status == NULL || reply_user == NULL || strcmp(reply_user, p->us) == 0) {
            return 0;   /* our own tweet or thread continuation: not a conversation */
        }
        customer = reply_user;
    } else {
        if ((mentions = x_mentions_us(p, tw)) < 0) {
            return -1;
        }
        if (!mentions && !(reply_user != NULL && strcmp(reply_user, p->us) == 0)) {
            return 0;
        }
        customer = author;
    }
    text = hark_json_str(ext, "full_text");
    if (text == NULL) {
        text = hark_json_str(tw, "full_text");
    }
    if (text == NULL) {
        text = hark_json_str(tw, "text");
    }
    msg = x_msg_new(p, HARK_KIND_MESSAGE, "x_mention", id);
    if (msg == NULL) {
        return -1;
    }
    msg->direction = outbound ? HARK_DIR_OUTBOUND : HARK_DIR_INBOUND;
    msg->sent_at = x_ms(tw, "timestamp_ms");
    if (msg->sent_at == 0) {
        msg->sent_at = x_created_at(hark_json_str(tw, "created_at"));
    }
    key = hark_asprintf("tweet:%s|%s", conv ? conv : reply_status ? reply_status : id, customer);
    msg->own_ref = hark_asprintf("tweet:%s", id);
    ref = reply_status ? hark_asprintf("tweet:%s", reply_status) : NULL;
    if (key == NULL || msg->own_ref == NULL || (reply_status && ref == NULL) ||
        x_party(p, &msg->from, author, user) < 0 ||
        hark_strset(&msg->to.id, outbound ? customer : p->us) < 0 ||
        hark_strset(&msg->text, text ? text : "") < 0 ||
        hark_msg_thread_set(msg, "tweet_id", id) < 0 ||
        (reply_status && (hark_msg_thread_set(msg, "in_reply_to_status_id", reply_status) < 0 ||
                          hark_msg_add_thread_ref(msg, ref) < 0)) ||
        (conv && hark_msg_thread_set(msg, "conversation_id", conv) < 0) ||
        x_tweet_media(p, msg, tw) < 0) {
        if (p->why == NULL) {
            x_bad(p, "out of memory");
        }
        hark_free(key);
        hark_free(ref);
        hark_msg_free(msg);
        return -1;
    }
    hark_free(ref);
    int rc = x_finish(p, msg, customer, key, out);
    hark_free(key);
    return rc;
}

/* A direct_message_mark_read_events entry: the customer read up to an event. */
static int x_read(struct x_parse_state *p, const json_t *ev, struct hark_batch *out)
{
    const char *sender, *recipient, *last, *ts;
    struct hark_msg *msg;
    char *eid;

    if (!json_is_object(ev) || x_id(ev, "sender_id", &sender) != 1 ||
        x_id(json_object_get(ev, "target"), "recipient_id", &recipient) != 1 ||
        x_id(ev, "last_read_event_id", &last) != 1) {
        return x_bad(p, "mark_read event without sender_id, recipient_id or last_read_event_id");
    }
    if (strcmp(sender, p->us) == 0) {
        return 0;   /* we read the customer's messages: nothing to record */
    }
    msg = x_msg_new(p, HARK_KIND_STATUS, "x_dm", last);
    if (msg == NULL) {
        return -1;
    }
    msg->status = "read";
    msg->sent_at = x_ms(ev, "created_timestamp");
    ts = hark_json_str(ev, "created_timestamp");
    eid = hark_asprintf("read:%s:%s", sender, ts ? ts : last);
    if (eid == NULL || x_party(p, &msg->from, sender, NULL) < 0 ||
        hark_strset(&msg->to.id, recipient) < 0 ||
        hark_msg_extra_set(msg, "event_id", json_string(eid)) < 0) {
        hark_free(eid);
        hark_msg_free(msg);
        return x_bad(p, p->why ? p->why : "out of memory");
    }
    hark_free(eid);
    return x_finish(p, msg, sender, sender, out);
}

/* A tweet_delete_events entry: a customer's tweet was removed. */
static int x_delete(struct x_parse_state *p, const json_t *ev, struct hark_batch *out)
{
    const json_t *st = json_object_get(ev, "status");
    const char *id, *uid;
    struct hark_msg *msg;

    if (!json_is_object(ev) || !json_is_object(st) || x_id(st, "id", &id) != 1 ||
        x_id(st, "user_id", &uid) != 1) {
        return x_bad(p, "tweet_delete event without status.id and status.user_id");
    }
    if (strcmp(uid, p->us) == 0) {
        return 0;
    }
    msg = x_msg_new(p, HARK_KIND_REMOVE, "x_mention", id);
    if (msg == NULL) {
        return -1;
    }
    msg->sent_at = x_ms(ev, "timestamp_ms");
    if (hark_strset(&msg->from.id, uid) < 0) {
        hark_msg_free(msg);
        return x_bad(p, "out of memory");
    }
    return x_finish(p, msg, uid, uid, out);
}

typedef int (*x_event_fn)(struct x_parse_state *p, const json_t *ev, struct hark_batch *out);

/* Event arrays we read, in the order their records are produced. */
static const struct {
    const char *key;
    x_event_fn fn;
} x_events[] = {
    {"direct_message_events", x_dm},
    {"tweet_create_events", x_tweet},
    {"direct_message_mark_read_events", x_read},
    {"tweet_delete_events", x_delete},
};

/* Run every event array of the payload. 0, or -1 with p->why set. */
static int x_parse_root(struct x_parse_state *p, const json_t *root, struct hark_batch *out)
{
    for (size_t k = 0; k < sizeof(x_events) / sizeof(x_events[0]); k++) {
        const json_t *arr = json_object_get(root, x_events[k].key), *ev;
        size_t i;
        if (arr == NULL) {
            continue;
        }
        if (!json_is_array(arr) || json_array_size(arr) > X_MAX_EVENTS) {
            return x_bad(p, "event list is not an array of at most 100 events");
        }
        json_array_foreach(arr, i, ev) {
            if (x_events[k].fn(p, ev, out) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/*
 * The adapter's parse op. Returns 0 with 200 in resp (records, possibly
 * none, appended to out), or -1 with a 400 and nothing appended. A payload
 * for another account than the configured user_id is answered 200 and
 * skipped (one X app webhook may serve several subscriptions).
 */
int x_parse(const struct hark_channel *ch, const struct hark_request *req,
            struct hark_batch *out, struct hark_response *resp)
{
    const struct x_ctx *ctx = ch->ctx;
    struct x_parse_state p = {ch, NULL, NULL, NULL};
    size_t n0 = out->n;
    const char *for_user;
    const char *bad = NULL;
    json_t *root;
    int rc;

    root = hark_json_parse((const char *)req->body, req->body_len, &p.why);
    if (root == NULL) {
        return hark_response_fail(resp, 400, "x: %s", p.why);
    }
    if (!json_is_object(root) || x_id(root, "for_user_id", &for_user) != 1) {
        json_decref(root);
        return hark_response_fail(resp, 400, "x: not an activity payload (no for_user_id)");
    }
    p.us = ctx->user_id ? ctx->user_id : for_user;
    p.users = json_object_get(root, "users");
    rc = 0;
    if (strcmp(for_user, p.us) == 0) {
        rc = x_parse_root(&p, root, out);
    }
    for (size_t i = n0; rc == 0 && i < out->n; i++) {
        if ((bad = hark_msg_validate(out->msgs[i])) != NULL) {
            rc = x_bad(&p, bad);
        }
    }
    json_decref(root);
    if (rc < 0) {
        while (out->n > n0) {
            hark_msg_free(out->msgs[--out->n]);
        }
        return hark_response_fail(resp, 400, "x: %s", p.why ? p.why : "malformed payload");
    }
    if (hark_response_set(resp, 200, "text/plain", NULL) < 0) {
        return hark_response_fail(resp, 500, "x: out of memory");
    }
    return 0;
}
