/*
 * hark meta adapter: entry[].changes[] of the Page feed (comments and
 * visitor posts, channel facebook_comment) and of Instagram (comments,
 * live comments and mentions, channel instagram). Pure, like the rest of
 * the parser.
 */
#include <string.h>

#include "hark/alloc.h"
#include "hark/text.h"

#include "meta.h"

/* Attachments of a feed item: photo, video, link and photos[] URLs. 0 or -1. */
static int feed_attachments(struct meta_parse *p, struct hark_msg *m, const json_t *value)
{
    static const char *const keys[] = {"photo", "video", "link"};
    const json_t *photos = json_object_get(value, "photos"), *v;
    size_t i;
    int rc = 0;

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *url = hark_json_str(value, keys[i]);
        if (url != NULL) {
            rc |= hark_msg_add_attachment(m, url, keys[i], NULL, -1, NULL);
        }
    }
    if (photos != NULL && (!json_is_array(photos) ||
                           json_array_size(photos) > HARK_MAX_ATTACHMENTS - 3)) {
        return meta_fail(p, 400, "feed photos is not a short array");
    }
    json_array_foreach(photos, i, v) {
        if (json_is_string(v)) {
            rc |= hark_msg_add_attachment(m, json_string_value(v), "photo", NULL, -1, NULL);
        }
    }
    return rc < 0 ? meta_fail(p, 503, "out of memory") : 0;
}

/* The record kind for a feed verb; -1 for verbs that are not kept. */
static int feed_kind(const char *verb)
{
    if (strcmp(verb, "add") == 0) {
        return HARK_KIND_MESSAGE;
    }
    if (strcmp(verb, "edited") == 0 || strcmp(verb, "edit") == 0 ||
        strcmp(verb, "update") == 0) {
        return HARK_KIND_EDIT;
    }
    if (strcmp(verb, "remove") == 0 || strcmp(verb, "delete") == 0) {
        return HARK_KIND_REMOVE;
    }
    return -1;
}

/* Thread refs, identity, text and extras of a feed record. 0 or -1 (no memory). */
static int feed_fill(struct hark_msg *m, const json_t *value, const char *page_id,
                     const char *post_id, const char *id, const char *from_id,
                     json_int_t entry_time, const char *verb, int is_comment)
{
    const json_t *from = json_object_get(value, "from");
    char buf[24], *kind = NULL, *event_id = NULL;
    const char *parent = meta_id(value, "parent_id", buf, sizeof(buf));
    int rc = 0;

    rc |= hark_strset(&m->provider_message_id, id);
    rc |= hark_strset(&m->from.id, from_id);
    rc |= hark_strset(&m->from.name, hark_json_str(from, "name"));
    rc |= hark_strset(&m->to.id, page_id);
    rc |= hark_strset(&m->text, hark_json_str(value, "message"));
    rc |= hark_strset(&m->own_ref, id);
    rc |= hark_msg_thread_set(m, "post_id", post_id);
    if (is_comment) {
        rc |= hark_msg_thread_set(m, "comment_id", id);
    }
    if (parent != NULL) {
        rc |= hark_msg_thread_set(m, "parent_id", parent);
    }
    if (from_id != NULL) {
        kind = hark_asprintf("facebook:%s", page_id);
        m->thread_key = hark_asprintf("post:%s|%s", post_id, from_id);
        rc |= kind && m->thread_key ? hark_msg_add_ident(m, kind, from_id) : -1;
    }
    if (m->kind == HARK_KIND_EDIT) {
        event_id = hark_asprintf("%s:%s:%" JSON_INTEGER_FORMAT, id, verb, entry_time);
        rc |= event_id ? meta_extra_str(m, "event_id", event_id) : -1;
    }
    m->sent_at = meta_epoch_ms(hark_json_int(value, "created_time", 0));
    hark_free(kind);
    hark_free(event_id);
    return rc;
}

/*
 * A Page change {field, value}: "feed" comments and visitor posts become
 * facebook_comment records (add: message, edited: edit, remove: remove),
 * one conversation per post and author. The Page's own posts and comments
 * and other fields are skipped. Returns 0 or -1.
 */
int meta_page_change(struct meta_parse *p, const char *page_id, json_int_t entry_time,
                       const json_t *change)
{
    const json_t *value = json_object_get(change, "value");
    const char *field = hark_json_str(change, "field"), *item, *verb, *post_id, *id;
    const char *from_id;
    char b1[24], b2[24], b3[24];
    struct hark_msg *m;
    int kind, is_comment;

    if (!json_is_object(change) || field == NULL) {
        return meta_fail(p, 400, "change without a field");
    }
    if (strcmp(field, "feed") != 0) {
        return 0;
    }
    item = hark_json_str(value, "item");
    verb = hark_json_str(value, "verb");
    if (!json_is_object(value) || item == NULL || verb == NULL) {
        return meta_fail(p, 400, "feed change without value.item or value.verb");
    }
    is_comment = strcmp(item, "comment") == 0;
    if (!is_comment && strcmp(item, "post") != 0 && strcmp(item, "status") != 0 &&
        strcmp(item, "photo") != 0 && strcmp(item, "video") != 0 &&
        strcmp(item, "share") != 0) {
        return 0;   /* reactions, likes, events, ratings */
    }
    if ((kind = feed_kind(verb)) < 0) {
        return 0;   /* hide, unhide, block, ... */
    }
    post_id = meta_id(value, "post_id", b1, sizeof(b1));
    id = is_comment ? meta_id(value, "comment_id", b2, sizeof(b2)) : post_id;
    if (post_id == NULL || id == NULL) {
        return meta_fail(p, 400, "feed %s without post_id%s", item,
                         is_comment ? " or comment_id" : "");
    }
    from_id = meta_id(json_object_get(value, "from"), "id", b3, sizeof(b3));
    if (from_id != NULL && strcmp(from_id, page_id) == 0) {
        return 0;   /* the Page's own post or reply */
    }
    if (kind == HARK_KIND_MESSAGE && from_id == NULL) {
        return 0;   /* author withheld: nobody to file it under */
    }
    m = hark_msg_new((enum hark_msg_kind)kind, "facebook_comment", META_PROVIDER, p->account);
    if (m == NULL || feed_fill(m, value, page_id, post_id, id, from_id, entry_time, verb,
                               is_comment) < 0) {
        hark_msg_free(m);
        return meta_fail(p, 503, "out of memory");
    }
    if (kind != HARK_KIND_REMOVE && feed_attachments(p, m, value) < 0) {
        hark_msg_free(m);
        return -1;
    }
    return meta_push(p, m);
}

/*
 * An Instagram change: "comments"/"live_comments" {id, from{id, username},
 * text, media{id}, parent_id} become instagram records in the conversation
 * "post:<media_id>|<author>"; "mentions" {media_id, comment_id} carry no
 * author and are filed under the media ("mention:<media_id>").
 */
int meta_ig_change(struct meta_parse *p, const char *ig_id, json_int_t entry_time,
                     const json_t *change)
{
    const json_t *value = json_object_get(change, "value");
    const json_t *from = json_object_get(value, "from");
    const char *field = hark_json_str(change, "field"), *id, *from_id, *media_id, *parent;
    char b1[24], b2[24], b3[24], b4[24], *kind = NULL;
    int mention, rc = 0;
    struct hark_msg *m;

    if (!json_is_object(change) || field == NULL) {
        return meta_fail(p, 400, "change without a field");
    }
    mention = strcmp(field, "mentions") == 0;
    if (!mention && strcmp(field, "comments") != 0 && strcmp(field, "live_comments") != 0) {
        return 0;
    }
    if (!json_is_object(value)) {
        return meta_fail(p, 400, "%s change without a value object", field);
    }
    if (mention) {
        media_id = meta_id(value, "media_id", b1, sizeof(b1));
        id = meta_id(value, "comment_id", b2, sizeof(b2));
        from_id = NULL;
    } else {
        media_id = meta_id(json_object_get(value, "media"), "id", b1, sizeof(b1));
        id = meta_id(value, "id", b2, sizeof(b2));
        from_id = meta_id(from, "id", b3, sizeof(b3));
    }
    parent = meta_id(value, "parent_id", b4, sizeof(b4));
    if (media_id == NULL || (!mention && (id == NULL || from_id == NULL))) {
        return meta_fail(p, 400, "%s change without media id, comment id or from.id", field);
    }
    if (from_id != NULL && strcmp(from_id, ig_id) == 0) {
        return 0;   /* the account's own comment or reply */
    }
    if ((m = hark_msg_new(HARK_KIND_MESSAGE, "instagram", META_PROVIDER, p->account)) == NULL) {
        return meta_fail(p, 503, "out of memory");
    }
    if (mention) {
        kind = hark_asprintf("instagram-mention:%s", ig_id);
        m->thread_key = hark_asprintf("mention:%s", media_id);
        m->provider_message_id = id ? hark_strdup(id) : hark_asprintf("mention:%s", media_id);
        rc |= kind ? hark_msg_add_ident(m, kind, media_id) : -1;
        rc |= hark_msg_extra_set(m, "mention", json_true());
    } else {
        kind = hark_asprintf("instagram:%s", ig_id);
        m->thread_key = hark_asprintf("post:%s|%s", media_id, from_id);
        rc |= hark_strset(&m->provider_message_id, id);
        rc |= kind ? hark_msg_add_ident(m, kind, from_id) : -1;
        rc |= hark_strset(&m->from.id, from_id);
        rc |= hark_strset(&m->from.handle, hark_json_str(from, "username"));
        rc |= hark_strset(&m->text, hark_json_str(value, "text"));
        rc |= meta_extra_str(m, "media_product_type",
                             hark_json_str(json_object_get(value, "media"), "media_product_type"));
        if (strcmp(field, "live_comments") == 0) {
            rc |= hark_msg_extra_set(m, "live", json_true());
        }
    }
    rc |= m->thread_key && m->provider_message_id ? 0 : -1;
    rc |= hark_strset(&m->to.id, ig_id);
    rc |= hark_msg_thread_set(m, "media_id", media_id);
    if (id != NULL) {
        rc |= hark_msg_thread_set(m, "comment_id", id);
        rc |= hark_strset(&m->own_ref, id);
    }
    if (parent != NULL) {
        rc |= hark_msg_thread_set(m, "parent_id", parent);
    }
    m->sent_at = meta_epoch_ms(entry_time);
    hark_free(kind);
    if (rc < 0) {
        hark_msg_free(m);
        return meta_fail(p, 503, "out of memory");
    }
    return meta_push(p, m);
}
