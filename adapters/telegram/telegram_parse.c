/*
 * Telegram Bot API adapter: the pure parser.
 *
 * A webhook request carries exactly one Update. We keep:
 *  - message          -> HARK_KIND_MESSAGE, provider id "<chat_id>:<message_id>"
 *  - edited_message   -> HARK_KIND_EDIT of "<chat_id>:<message_id>"
 *  - callback_query   -> HARK_KIND_MESSAGE (a button press), provider id
 *                        "cb:<callback_query.id>", text = data
 * and answer 200 with nothing for every other update kind (channel posts,
 * inline queries, polls, member updates, business messages...). The
 * update_id goes into extra "event_id": it is unique per delivery, while
 * the provider id stays stable so that an edit can name its message.
 *
 * No I/O, no globals: this file is fuzzed (tests/fuzz/fuzz_telegram.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/msg.h"
#include "hark/text.h"

#include "telegram.h"

#define TG_MAX_PHOTO_SIZES 32
#define TG_ID_BUF 24

/* What one parse call carries around. */
struct tg_parse {
    const struct hark_channel *ch;
    json_int_t update_id;
    const char *why;    /* static reason of a 400 */
};

/* Fail with a static reason; returns -1. */
static int tg_bad(struct tg_parse *p, const char *why)
{
    p->why = why;
    return -1;
}

/*
 * Read obj[key] as an integer id (Telegram sends numbers, chat ids may be
 * negative) into buf. Returns 1 found, 0 absent, -1 present with a wrong
 * type.
 */
static int tg_id(const json_t *obj, const char *key, json_int_t *val, char buf[TG_ID_BUF])
{
    const json_t *v = json_object_get(obj, key);

    if (v == NULL) {
        return 0;
    }
    if (!json_is_integer(v)) {
        return -1;
    }
    *val = json_integer_value(v);
    snprintf(buf, TG_ID_BUF, "%" JSON_INTEGER_FORMAT, *val);
    return 1;
}

/* obj[key] as a string: 1 found, 0 absent (or null), -1 wrong type. */
static int tg_str(const json_t *obj, const char *key, const char **out)
{
    const json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_string(v)) {
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

/*
 * Fill a party from a Telegram User (or Chat, for anonymous senders): id,
 * name = first_name + " " + last_name (or the chat title), handle =
 * username. Returns 0, or -1 with p->why set.
 */
static int tg_party(struct tg_parse *p, const json_t *user, struct hark_party *party)
{
    const char *first, *last, *title, *username;
    json_int_t id;
    char idbuf[TG_ID_BUF];
    char *name = NULL;

    if (!json_is_object(user) || tg_id(user, "id", &id, idbuf) != 1) {
        return tg_bad(p, "sender without a numeric id");
    }
    if (tg_str(user, "first_name", &first) < 0 || tg_str(user, "last_name", &last) < 0 ||
        tg_str(user, "title", &title) < 0 || tg_str(user, "username", &username) < 0) {
        return tg_bad(p, "sender field of the wrong type");
    }
    if (first != NULL && last != NULL && last[0] != '\0') {
        name = hark_asprintf("%s %s", first, last);
    } else if (first != NULL || title != NULL) {
        name = hark_strdup(first != NULL ? first : title);
    }
    if ((name == NULL && (first != NULL || title != NULL)) ||
        hark_strset(&party->id, idbuf) < 0 || hark_strset(&party->handle, username) < 0) {
        hark_free(name);
        return tg_bad(p, "out of memory");
    }
    hark_free(party->name);
    party->name = name;
    return 0;
}

/* Append {"kind", "file_unique_id"} to extra "media". 0 or -1. */
static int tg_media_meta(struct hark_msg *msg, const char *kind, const char *unique_id)
{
    json_t *arr = msg->extra ? json_object_get(msg->extra, "media") : NULL;
    json_t *o;

    if (arr == NULL) {
        if (hark_msg_extra_set(msg, "media", json_array()) < 0) {
            return -1;
        }
        arr = json_object_get(msg->extra, "media");
    }
    o = json_pack("{ss}", "kind", kind);
    if (o == NULL || (unique_id && json_object_set_new(o, "file_unique_id",
                                                       json_string(unique_id)) < 0)) {
        json_decref(o);
        return -1;
    }
    return json_array_append_new(arr, o);
}

/*
 * Add one file object (Document, Audio, Voice, Video, VideoNote,
 * Animation, Sticker, PhotoSize) as an attachment: file_id is required,
 * file_unique_id, file_size, mime_type and file_name are taken when given.
 * def_type is used when no mime_type is given. 0, or -1 with p->why set.
 */
static int tg_file(struct tg_parse *p, struct hark_msg *msg, const char *kind,
                   const json_t *f, const char *def_type)
{
    const char *file_id, *unique_id, *mime, *file_name;
    const json_t *size = json_object_get(f, "file_size");

    if (!json_is_object(f) || tg_str(f, "file_id", &file_id) != 1 || file_id[0] == '\0') {
        return tg_bad(p, "media without a file_id");
    }
    if (tg_str(f, "file_unique_id", &unique_id) < 0 || tg_str(f, "mime_type", &mime) < 0 ||
        tg_str(f, "file_name", &file_name) < 0 || (size != NULL && !json_is_integer(size))) {
        return tg_bad(p, "media field of the wrong type");
    }
    if (hark_msg_add_attachment(msg, NULL, mime ? mime : def_type, file_name,
                                size ? json_integer_value(size) : -1, file_id) < 0 ||
        tg_media_meta(msg, kind, unique_id) < 0) {
        return tg_bad(p, "too many attachments or out of memory");
    }
    return 0;
}

/* The largest PhotoSize of a photo array (by area, then bytes); -1 when malformed. */
static int tg_photo(struct tg_parse *p, struct hark_msg *msg, const json_t *arr)
{
    const json_t *best = NULL, *v;
    json_int_t best_area = -1, best_size = -1;
    size_t i;

    if (!json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) > TG_MAX_PHOTO_SIZES) {
        return tg_bad(p, "photo is not a short array of sizes");
    }
    json_array_foreach(arr, i, v) {
        json_int_t w = hark_json_int(v, "width", 0), h = hark_json_int(v, "height", 0);
        json_int_t area = (w > 0 && h > 0 && w < 100000 && h < 100000) ? w * h : 0;
        json_int_t size = hark_json_int(v, "file_size", 0);
        if (!json_is_object(v)) {
            return tg_bad(p, "photo size is not an object");
        }
        if (area > best_area || (area == best_area && size > best_size)) {
            best = v;
            best_area = area;
            best_size = size;
        }
    }
    return tg_file(p, msg, "photo", best, "image/jpeg");
}

/* A Location as a geo: URI attachment. 0, or -1 with p->why set. */
static int tg_location(struct tg_parse *p, struct hark_msg *msg, const json_t *loc,
                       const json_t *venue)
{
    const json_t *lat = json_object_get(loc, "latitude"), *lon = json_object_get(loc, "longitude");
    const char *title = NULL;
    char *uri;
    int rc;

    if (!json_is_number(lat) || !json_is_number(lon) ||
        json_number_value(lat) < -90.0 || json_number_value(lat) > 90.0 ||
        json_number_value(lon) < -180.0 || json_number_value(lon) > 180.0) {
        return tg_bad(p, "location without valid coordinates");
    }
    if (venue != NULL && tg_str(venue, "title", &title) < 0) {
        return tg_bad(p, "venue title is not a string");
    }
    uri = hark_asprintf("geo:%.6f,%.6f", json_number_value(lat), json_number_value(lon));
    rc = uri ? hark_msg_add_attachment(msg, uri, "location", title, -1, NULL) : -1;
    hark_free(uri);
    if (rc < 0 || tg_media_meta(msg, "location", NULL) < 0) {
        return tg_bad(p, "out of memory");
    }
    return 0;
}

/* A shared Contact: tel: URI (E.164 when it is a number), name as filename. */
static int tg_contact(struct tg_parse *p, struct hark_msg *msg, const json_t *c)
{
    const char *phone, *first, *last;
    char e164[32];
    char *uri = NULL, *name = NULL;
    int rc;

    if (!json_is_object(c) || tg_str(c, "phone_number", &phone) != 1 ||
        tg_str(c, "first_name", &first) < 0 || tg_str(c, "last_name", &last) < 0) {
        return tg_bad(p, "contact without a phone number");
    }
    if (hark_phone_e164(phone, e164, sizeof(e164)) == 0) {
        uri = hark_asprintf("tel:%s", e164);
    }
    name = hark_asprintf("%s%s%s", first ? first : "", first && last ? " " : "",
                         last ? last : "");
    rc = hark_msg_add_attachment(msg, uri, "contact", name, -1, NULL);
    hark_free(uri);
    hark_free(name);
    if (rc < 0 || tg_media_meta(msg, "contact", NULL) < 0) {
        return tg_bad(p, "out of memory");
    }
    return 0;
}

/* File-like media a Message may carry, with the type used when none is given. */
static const struct {
    const char *key;
    const char *def_type;
} tg_file_kinds[] = {
    {"document", "application/octet-stream"},
    {"audio", "audio/mpeg"},
    {"voice", "audio/ogg"},
    {"video", "video/mp4"},
    {"video_note", "video/mp4"},
    {"animation", "video/mp4"},
};

/*
 * Every attachment of a Message. An animation message also carries a
 * "document" copy of the same file: it is skipped. 0, or -1 with p->why.
 */
static int tg_media(struct tg_parse *p, struct hark_msg *msg, const json_t *m)
{
    const json_t *v, *loc;
    int has_animation = json_object_get(m, "animation") != NULL;

    if ((v = json_object_get(m, "photo")) != NULL && tg_photo(p, msg, v) < 0) {
        return -1;
    }
    for (size_t i = 0; i < sizeof(tg_file_kinds) / sizeof(tg_file_kinds[0]); i++) {
        v = json_object_get(m, tg_file_kinds[i].key);
        if (v == NULL || (has_animation && strcmp(tg_file_kinds[i].key, "document") == 0)) {
            continue;
        }
        if (tg_file(p, msg, tg_file_kinds[i].key, v, tg_file_kinds[i].def_type) < 0) {
            return -1;
        }
    }
    if ((v = json_object_get(m, "sticker")) != NULL) {
        const char *type = "image/webp";
        if (json_is_true(json_object_get(v, "is_video"))) {
            type = "video/webm";
        } else if (json_is_true(json_object_get(v, "is_animated"))) {
            type = "application/x-tgsticker";
        }
        if (tg_file(p, msg, "sticker", v, type) < 0) {
            return -1;
        }
    }
    if ((loc = json_object_get(m, "location")) != NULL &&
        tg_location(p, msg, loc, json_object_get(m, "venue")) < 0) {
        return -1;
    }
    if ((v = json_object_get(m, "contact")) != NULL && tg_contact(p, msg, v) < 0) {
        return -1;
    }
    return 0;
}

/* Set thread, extra and routing fields shared by messages and edits. */
static int tg_common(struct tg_parse *p, struct hark_msg *msg, const char *chat_id,
                     const json_t *chat)
{
    char ev[TG_ID_BUF];
    const char *type, *title;

    snprintf(ev, sizeof(ev), "%" JSON_INTEGER_FORMAT, p->update_id);
    if (tg_str(chat, "type", &type) < 0 || tg_str(chat, "title", &title) < 0) {
        return tg_bad(p, "chat field of the wrong type");
    }
    if (hark_msg_add_ident(msg, "telegram", msg->from.id) < 0 ||
        hark_strset(&msg->thread_key, chat_id) < 0 ||
        hark_msg_thread_set(msg, "chat_id", chat_id) < 0 ||
        hark_msg_extra_set(msg, "event_id", json_string(ev)) < 0 ||
        (type && hark_msg_extra_set(msg, "chat_type", json_string(type)) < 0) ||
        (title && hark_msg_extra_set(msg, "chat_title", json_string(title)) < 0)) {
        return tg_bad(p, "out of memory");
    }
    return 0;
}

/*
 * A Message (kind MESSAGE) or an edited Message (kind EDIT). A message
 * with neither text nor any media we know (service messages: members
 * joining, pinned messages, polls, dice...) is skipped, and so is an edit
 * without text or caption (a live location moving). Returns 0 (with or
 * without a message pushed), or -1 with p->why set.
 */
static int tg_message(struct tg_parse *p, const json_t *m, enum hark_msg_kind kind,
                      struct hark_batch *out)
{
    const json_t *chat = json_object_get(m, "chat"), *sender, *reply;
    json_int_t chat_id, message_id, date, n;
    char chat_buf[TG_ID_BUF], mid_buf[TG_ID_BUF], ref_buf[TG_ID_BUF];
    const char *text, *caption;
    struct hark_msg *msg;
    char *pmid;

    if (!json_is_object(m) || !json_is_object(chat) ||
        tg_id(chat, "id", &chat_id, chat_buf) != 1 ||
        tg_id(m, "message_id", &message_id, mid_buf) != 1) {
        return tg_bad(p, "message without chat.id or message_id");
    }
    if (tg_str(m, "text", &text) < 0 || tg_str(m, "caption", &caption) < 0) {
        return tg_bad(p, "message text of the wrong type");
    }
    sender = json_object_get(m, "from");
    if (sender == NULL) {
        sender = json_object_get(m, "sender_chat");
    }
    if (sender == NULL) {
        sender = chat;      /* private chats: the chat is the user */
    }
    msg = hark_msg_new(kind, "telegram", "telegram", p->ch->name);
    if (msg == NULL) {
        return tg_bad(p, "out of memory");
    }
    pmid = hark_asprintf("%s:%s", chat_buf, mid_buf);
    if (pmid == NULL) {
        hark_msg_free(msg);
        return tg_bad(p, "out of memory");
    }
    msg->provider_message_id = pmid;
    if (tg_party(p, sender, &msg->from) < 0 || tg_common(p, msg, chat_buf, chat) < 0 ||
        hark_msg_thread_set(msg, "message_id", mid_buf) < 0 ||
        hark_strset(&msg->text, text ? text : caption) < 0) {
        goto fail;
    }
    date = hark_json_int(m, kind == HARK_KIND_EDIT ? "edit_date" : "date", 0);
    if (date > 0 && date < INT64_MAX / 1000) {
        msg->sent_at = (int64_t)date * 1000;
    }
    if ((reply = json_object_get(m, "reply_to_message")) != NULL) {
        if (!json_is_object(reply) || tg_id(reply, "message_id", &n, ref_buf) != 1) {
            tg_bad(p, "reply_to_message without a message_id");
            goto fail;
        }
        char *ref = hark_asprintf("%s:%s", chat_buf, ref_buf);
        int rc = ref ? hark_msg_thread_set(msg, "reply_to", ref) : -1;
        hark_free(ref);
        if (rc < 0) {
            tg_bad(p, "out of memory");
            goto fail;
        }
    }
    if (tg_id(m, "message_thread_id", &n, ref_buf) < 0 ||
        (json_object_get(m, "message_thread_id") &&
         hark_msg_thread_set(msg, "message_thread_id", ref_buf) < 0)) {
        tg_bad(p, "message_thread_id of the wrong type");
        goto fail;
    }
    if (kind == HARK_KIND_MESSAGE && tg_media(p, msg, m) < 0) {
        goto fail;
    }
    if (msg->text == NULL && msg->n_attachments == 0) {
        /* A service message, or an edit without text (live location moves). */
        hark_msg_free(msg);
        return 0;
    }
    if (hark_batch_push(out, msg) < 0) {
        return tg_bad(p, "out of memory");
    }
    return 0;

fail:
    hark_msg_free(msg);
    return -1;
}

/*
 * A CallbackQuery (inline keyboard button pressed): text = data, the
 * sender is from, the conversation is the chat of the message that held
 * the button (thread reply_to names it), or the user's private chat.
 */
static int tg_callback(struct tg_parse *p, const json_t *cq, struct hark_batch *out)
{
    const json_t *m = json_object_get(cq, "message"), *chat = NULL;
    const char *id, *data, *inline_id;
    json_int_t n;
    char chat_buf[TG_ID_BUF], mid_buf[TG_ID_BUF];
    struct hark_msg *msg;

    if (!json_is_object(cq) || tg_str(cq, "id", &id) != 1 || id[0] == '\0' ||
        tg_str(cq, "data", &data) < 0 || tg_str(cq, "inline_message_id", &inline_id) < 0) {
        return tg_bad(p, "callback_query without an id");
    }
    if (m != NULL) {
        chat = json_object_get(m, "chat");
        if (!json_is_object(m) || !json_is_object(chat) ||
            tg_id(chat, "id", &n, chat_buf) != 1 || tg_id(m, "message_id", &n, mid_buf) != 1) {
            return tg_bad(p, "callback_query message without chat.id or message_id");
        }
    }
    msg = hark_msg_new(HARK_KIND_MESSAGE, "telegram", "telegram", p->ch->name);
    if (msg == NULL) {
        return tg_bad(p, "out of memory");
    }
    msg->provider_message_id = hark_asprintf("cb:%s", id);
    if (msg->provider_message_id == NULL || tg_party(p, json_object_get(cq, "from"), &msg->from) < 0) {
        if (p->why == NULL) {
            tg_bad(p, "out of memory");
        }
        goto fail;
    }
    if (m == NULL) {
        snprintf(chat_buf, sizeof(chat_buf), "%s", msg->from.id);
    }
    if (tg_common(p, msg, chat_buf, chat) < 0 || hark_strset(&msg->text, data ? data : "") < 0 ||
        hark_msg_extra_set(msg, "callback_query_id", json_string(id)) < 0 ||
        (inline_id && hark_msg_extra_set(msg, "inline_message_id", json_string(inline_id)) < 0)) {
        tg_bad(p, "out of memory");
        goto fail;
    }
    if (m != NULL) {
        char *ref = hark_asprintf("%s:%s", chat_buf, mid_buf);
        int rc = ref ? hark_msg_thread_set(msg, "reply_to", ref) : -1;
        hark_free(ref);
        if (rc < 0) {
            tg_bad(p, "out of memory");
            goto fail;
        }
    }
    if (hark_batch_push(out, msg) < 0) {
        return tg_bad(p, "out of memory");
    }
    return 0;

fail:
    hark_msg_free(msg);
    return -1;
}

/*
 * The adapter's parse op: one Update per request. Returns 0 with 200 and
 * an empty body in resp (possibly with nothing added to out, for update
 * kinds we skip), or -1 with a 400 in resp and nothing added to out.
 */
int telegram_parse(const struct hark_channel *ch, const struct hark_request *req,
                   struct hark_batch *out, struct hark_response *resp)
{
    struct tg_parse p = {ch, 0, NULL};
    size_t n0 = out->n;
    const json_t *v;
    json_t *root;
    char idbuf[TG_ID_BUF];
    int rc = 0;

    root = hark_json_parse((const char *)req->body, req->body_len, &p.why);
    if (root == NULL) {
        return hark_response_fail(resp, 400, "telegram: %s", p.why);
    }
    if (!json_is_object(root) || tg_id(root, "update_id", &p.update_id, idbuf) != 1 ||
        p.update_id < 0) {
        json_decref(root);
        return hark_response_fail(resp, 400, "telegram: not an Update (no update_id)");
    }
    if ((v = json_object_get(root, "message")) != NULL) {
        rc = tg_message(&p, v, HARK_KIND_MESSAGE, out);
    } else if ((v = json_object_get(root, "edited_message")) != NULL) {
        rc = tg_message(&p, v, HARK_KIND_EDIT, out);
    } else if ((v = json_object_get(root, "callback_query")) != NULL) {
        rc = tg_callback(&p, v, out);
    }
    json_decref(root);
    if (rc < 0) {
        while (out->n > n0) {
            hark_msg_free(out->msgs[--out->n]);
        }
        return hark_response_fail(resp, 400, "telegram: %s", p.why ? p.why : "malformed update");
    }
    for (size_t i = n0; i < out->n; i++) {
        const char *bad = hark_msg_validate(out->msgs[i]);
        if (bad != NULL) {
            while (out->n > n0) {
                hark_msg_free(out->msgs[--out->n]);
            }
            return hark_response_fail(resp, 400, "telegram: %s", bad);
        }
    }
    if (hark_response_set(resp, 200, "text/plain", NULL) < 0) {
        return hark_response_fail(resp, 500, "telegram: out of memory");
    }
    return 0;
}
