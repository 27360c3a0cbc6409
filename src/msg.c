/*
 * The normalized message: construction, validation, id and JSON form.
 */
#include <string.h>
#include <sys/uio.h>

#include "hark/alloc.h"
#include "hark/codec.h"
#include "hark/crypto.h"
#include "hark/msg.h"
#include "hark/text.h"

struct hark_msg *hark_msg_new(enum hark_msg_kind kind, const char *channel,
                              const char *provider, const char *account)
{
    struct hark_msg *msg = hark_calloc(1, sizeof(*msg));

    if (msg == NULL) {
        return NULL;
    }
    msg->kind = kind;
    msg->channel = channel;
    msg->provider = provider;
    msg->account = account;
    msg->status = "received";
    return msg;
}

static void party_clear(struct hark_party *p)
{
    hark_free(p->id);
    hark_free(p->name);
    hark_free(p->handle);
}

void hark_msg_free(struct hark_msg *msg)
{
    size_t i;

    if (msg == NULL) {
        return;
    }
    party_clear(&msg->from);
    party_clear(&msg->to);
    hark_free(msg->subject);
    hark_free(msg->text);
    hark_free(msg->reply_text);
    for (i = 0; i < msg->n_attachments; i++) {
        struct hark_attachment *a = &msg->attachments[i];
        hark_free(a->url);
        hark_free(a->content_type);
        hark_free(a->filename);
        hark_free(a->file_id);
    }
    hark_free(msg->attachments);
    hark_free(msg->provider_message_id);
    json_decref(msg->thread);
    json_decref(msg->extra);
    hark_free(msg->error);
    for (i = 0; i < msg->n_idents; i++) {
        hark_free(msg->idents[i].kind);
        hark_free(msg->idents[i].value);
    }
    hark_free(msg->thread_key);
    for (i = 0; i < msg->n_thread_refs; i++) {
        hark_free(msg->thread_refs[i]);
    }
    hark_free(msg->thread_refs);
    hark_free(msg->own_ref);
    hark_free(msg->concat_ref);
    hark_free(msg->target_id);
    hark_free(msg);
}

int hark_msg_add_attachment(struct hark_msg *msg, const char *url,
                            const char *content_type, const char *filename,
                            int64_t size, const char *file_id)
{
    struct hark_attachment *grown, *a;

    if (msg->n_attachments == HARK_MAX_ATTACHMENTS) {
        return -1;
    }
    grown = hark_realloc(msg->attachments, (msg->n_attachments + 1) * sizeof(*grown));
    if (grown == NULL) {
        return -1;
    }
    msg->attachments = grown;
    a = &grown[msg->n_attachments];
    memset(a, 0, sizeof(*a));
    a->size = size;
    if (hark_strset(&a->url, url) < 0 || hark_strset(&a->content_type, content_type) < 0 ||
        hark_strset(&a->filename, filename) < 0 || hark_strset(&a->file_id, file_id) < 0) {
        hark_free(a->url);
        hark_free(a->content_type);
        hark_free(a->filename);
        hark_free(a->file_id);
        return -1;
    }
    msg->n_attachments++;
    return 0;
}

int hark_msg_add_ident(struct hark_msg *msg, const char *kind, const char *value)
{
    struct hark_ident *id;

    if (msg->n_idents == HARK_MAX_IDENTS || kind == NULL || value == NULL) {
        return -1;
    }
    id = &msg->idents[msg->n_idents];
    id->kind = hark_strdup(kind);
    id->value = hark_strdup(value);
    if (id->kind == NULL || id->value == NULL) {
        hark_free(id->kind);
        hark_free(id->value);
        id->kind = id->value = NULL;
        return -1;
    }
    msg->n_idents++;
    return 0;
}

int hark_msg_add_thread_ref(struct hark_msg *msg, const char *ref)
{
    char **grown;
    char *copy;

    if (msg->n_thread_refs == HARK_MAX_THREAD_REFS) {
        return 0;   /* the newest references come first; the rest add nothing */
    }
    copy = hark_strdup(ref);
    if (copy == NULL) {
        return -1;
    }
    grown = hark_realloc(msg->thread_refs, (msg->n_thread_refs + 1) * sizeof(*grown));
    if (grown == NULL) {
        hark_free(copy);
        return -1;
    }
    msg->thread_refs = grown;
    grown[msg->n_thread_refs++] = copy;
    return 0;
}

int hark_msg_thread_set(struct hark_msg *msg, const char *key, const char *value)
{
    json_t *v;

    if (msg->thread == NULL && (msg->thread = json_object()) == NULL) {
        return -1;
    }
    v = json_string(value);
    if (v == NULL) {
        return -1;
    }
    return json_object_set_new(msg->thread, key, v);
}

int hark_msg_extra_set(struct hark_msg *msg, const char *key, json_t *value)
{
    if (value == NULL) {
        return -1;
    }
    if (msg->extra == NULL && (msg->extra = json_object()) == NULL) {
        json_decref(value);
        return -1;
    }
    return json_object_set_new(msg->extra, key, value);
}

/* 1 when s is NULL or valid UTF-8. */
static int text_ok(const char *s)
{
    return s == NULL || hark_utf8_valid(s, strlen(s));
}

const char *hark_msg_validate(const struct hark_msg *msg)
{
    size_t i;

    if (msg->channel == NULL || msg->provider == NULL || msg->account == NULL) {
        return "message has no channel, provider or account";
    }
    if (msg->provider_message_id == NULL || msg->provider_message_id[0] == '\0') {
        return "message has no provider message id";
    }
    if (msg->kind == HARK_KIND_MESSAGE) {
        if (msg->n_idents == 0 || msg->idents[0].value[0] == '\0') {
            return "message has no sender identity";
        }
        if (msg->thread_key == NULL || msg->thread_key[0] == '\0') {
            return "message has no conversation key";
        }
    }
    if (msg->kind == HARK_KIND_STATUS && msg->status == NULL) {
        return "status update without a status";
    }
    if (!text_ok(msg->text) || !text_ok(msg->reply_text) || !text_ok(msg->subject) ||
        !text_ok(msg->from.id) || !text_ok(msg->from.name) || !text_ok(msg->from.handle) ||
        !text_ok(msg->to.id) || !text_ok(msg->provider_message_id) || !text_ok(msg->error)) {
        return "message text is not valid UTF-8";
    }
    for (i = 0; i < msg->n_attachments; i++) {
        const struct hark_attachment *a = &msg->attachments[i];
        if (!text_ok(a->url) || !text_ok(a->filename) || !text_ok(a->content_type) ||
            !text_ok(a->file_id)) {
            return "attachment field is not valid UTF-8";
        }
    }
    for (i = 0; i < msg->n_idents; i++) {
        if (!text_ok(msg->idents[i].value)) {
            return "identity is not valid UTF-8";
        }
    }
    return NULL;
}

void hark_derive_id(const char *ns, const char *account, const char *key,
                    char out[HARK_MSG_ID_LEN + 1])
{
    unsigned char digest[HARK_DIGEST_MAX];
    /* The terminating NULs separate the parts: ("a","bc") differs from ("ab","c"). */
    struct iovec parts[3] = {
        {(void *)ns, strlen(ns) + 1},
        {(void *)account, strlen(account) + 1},
        {(void *)key, strlen(key)},
    };

    hark_digest_iov(HARK_SHA256, parts, 3, digest);
    hark_hex_encode(digest, HARK_MSG_ID_LEN / 2, out, HARK_MSG_ID_LEN + 1);
}

void hark_msg_id(const struct hark_msg *msg, char out[HARK_MSG_ID_LEN + 1])
{
    hark_derive_id(msg->channel, msg->account, msg->provider_message_id, out);
}

/* obj[key] = string s, skipped when s is NULL. 0 or -1. */
static int set_str(json_t *obj, const char *key, const char *s)
{
    if (s == NULL) {
        return 0;
    }
    return json_object_set_new(obj, key, json_string(s));
}

static json_t *party_json(const struct hark_party *p, int full)
{
    json_t *o = json_object();

    if (o == NULL) {
        return NULL;
    }
    if (json_object_set_new(o, "id", p->id ? json_string(p->id) : json_null()) < 0 ||
        (full && (set_str(o, "name", p->name) < 0 || set_str(o, "handle", p->handle) < 0))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *attachments_json(const struct hark_msg *msg)
{
    json_t *arr = json_array();
    size_t i;

    for (i = 0; arr != NULL && i < msg->n_attachments; i++) {
        const struct hark_attachment *a = &msg->attachments[i];
        json_t *o = json_object();
        if (o == NULL || json_array_append_new(arr, o) < 0 ||
            json_object_set_new(o, "url", a->url ? json_string(a->url) : json_null()) < 0 ||
            set_str(o, "content_type", a->content_type) < 0 ||
            set_str(o, "filename", a->filename) < 0 ||
            json_object_set_new(o, "size", a->size >= 0 ? json_integer(a->size) : json_null()) < 0 ||
            set_str(o, "file_id", a->file_id) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *hark_msg_to_json(const struct hark_msg *msg, const char *id)
{
    json_t *o = json_object();
    const char *reply = msg->reply_text ? msg->reply_text : msg->text;

    if (o == NULL) {
        return NULL;
    }
    if (json_object_set_new(o, "id", json_string(id)) < 0 ||
        json_object_set_new(o, "v", json_integer(HARK_MSG_VERSION)) < 0 ||
        set_str(o, "channel", msg->channel) < 0 ||
        set_str(o, "provider", msg->provider) < 0 ||
        set_str(o, "account", msg->account) < 0 ||
        set_str(o, "direction", msg->direction == HARK_DIR_OUTBOUND ? "outbound" : "inbound") < 0 ||
        json_object_set_new(o, "from", party_json(&msg->from, 1)) < 0 ||
        json_object_set_new(o, "to", party_json(&msg->to, 0)) < 0 ||
        (msg->subject && set_str(o, "subject", msg->subject) < 0) ||
        json_object_set_new(o, "text", json_string(msg->text ? msg->text : "")) < 0 ||
        json_object_set_new(o, "reply_text", json_string(reply ? reply : "")) < 0 ||
        json_object_set_new(o, "attachments", attachments_json(msg)) < 0 ||
        json_object_set_new(o, "provider_message_id", msg->provider_message_id
                                ? json_string(msg->provider_message_id) : json_null()) < 0 ||
        json_object_set_new(o, "thread", msg->thread ? json_incref(msg->thread) : json_object()) < 0 ||
        json_object_set_new(o, "sent_at", msg->sent_at ? json_integer(msg->sent_at) : json_null()) < 0 ||
        json_object_set_new(o, "received_at", json_integer(msg->received_at)) < 0 ||
        (msg->extra && json_object_set(o, "extra", msg->extra) < 0) ||
        /* status and error come last: the store updates them in place. */
        set_str(o, "status", msg->status) < 0 ||
        json_object_set_new(o, "error", msg->error ? json_string(msg->error) : json_null()) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int hark_batch_push(struct hark_batch *batch, struct hark_msg *msg)
{
    size_t max = batch->max ? batch->max : HARK_BATCH_MAX;

    if (msg == NULL) {
        return -1;
    }
    if (batch->n == max) {
        hark_msg_free(msg);
        return -1;
    }
    if (batch->n == batch->cap) {
        size_t ncap = batch->cap ? batch->cap * 2 : 4;
        struct hark_msg **grown = hark_realloc(batch->msgs, ncap * sizeof(*grown));
        if (grown == NULL) {
            hark_msg_free(msg);
            return -1;
        }
        batch->msgs = grown;
        batch->cap = ncap;
    }
    batch->msgs[batch->n++] = msg;
    return 0;
}

void hark_batch_clear(struct hark_batch *batch)
{
    for (size_t i = 0; i < batch->n; i++) {
        hark_msg_free(batch->msgs[i]);
    }
    hark_free(batch->msgs);
    batch->msgs = NULL;
    batch->n = batch->cap = 0;
}
