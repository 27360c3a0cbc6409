/*
 * hark: the normalized message (DESIGN.md "Normalized message v1").
 *
 * Adapters turn provider payloads into struct hark_msg values; the core
 * computes the deterministic id, serializes the message to JSON and stores
 * it with the ingest script.
 *
 * Ownership rules:
 *  1. hark_msg_new() returns a message that the caller owns; hark_msg_free()
 *     releases it and everything it points to (NULL is a no-op, and a half
 *     built message may be freed).
 *  2. Every char * field is owned by the message and set with hark_strset()
 *     or the setters below. `channel`, `provider`, `status` and `account`
 *     point to static or long-lived strings and are never freed.
 *  3. `thread` and `extra` are jansson objects owned by the message.
 *  4. hark_batch_push() takes ownership of the message, even on failure.
 */
#ifndef HARK_MSG_H
#define HARK_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define HARK_MSG_VERSION 1
#define HARK_MSG_ID_LEN 32          /* hex characters in a message id */
#define HARK_MAX_IDENTS 4
#define HARK_MAX_ATTACHMENTS 64
#define HARK_MAX_THREAD_REFS 64

enum hark_direction {
    HARK_DIR_INBOUND = 0,
    HARK_DIR_OUTBOUND = 1,
};

/* What the store does with the record. */
enum hark_msg_kind {
    HARK_KIND_MESSAGE = 0,  /* a new message: dedupe, file, message.received/sent */
    HARK_KIND_STATUS,       /* status of a stored message, found by provider id */
    HARK_KIND_EDIT,         /* new text for a stored message */
    HARK_KIND_REMOVE,       /* the provider says the message was removed */
};

struct hark_party {
    char *id;       /* provider id: E.164 number, email address, user id */
    char *name;     /* display name, may be NULL */
    char *handle;   /* @handle or username, may be NULL */
};

struct hark_attachment {
    char *url;          /* where to fetch it (or geo:/tel: URIs); may be NULL */
    char *content_type; /* MIME type, or a provider kind when no type is known */
    char *filename;
    int64_t size;       /* bytes, -1 when unknown */
    char *file_id;      /* provider file id (Telegram, WhatsApp media id) */
};

/* An identity of the customer: kind is "phone", "email" or a provider kind. */
struct hark_ident {
    char *kind;
    char *value;
};

struct hark_msg {
    enum hark_msg_kind kind;
    const char *channel;   /* "sms", "whatsapp", ... (static) */
    const char *provider;  /* "twilio", ... (static) */
    const char *account;   /* the channel instance name (outlives the message) */
    enum hark_direction direction;
    struct hark_party from;
    struct hark_party to;
    char *subject;
    char *text;
    char *reply_text;      /* NULL: same as text */
    struct hark_attachment *attachments;
    size_t n_attachments;
    char *provider_message_id;
    json_t *thread;        /* provider thread refs, object or NULL */
    json_t *extra;         /* provider specifics kept for the CRM, object or NULL */
    const char *status;    /* "received", "sent", "delivered", ... (static) */
    char *error;           /* failure reason for status "failed" */
    int64_t sent_at;       /* epoch ms, 0 unknown */
    int64_t received_at;   /* epoch ms, set by the core when 0 */

    /*
     * Routing. idents[0] is the routing identity: it picks the partition
     * and names the contact. thread_key names the conversation inside the
     * account (for SMS: customer number + our number). thread_refs are
     * provider references that may name a known conversation (email
     * Message-IDs); own_ref is this message's reference that later
     * messages may name.
     */
    struct hark_ident idents[HARK_MAX_IDENTS];
    size_t n_idents;
    char *thread_key;
    char **thread_refs;
    size_t n_thread_refs;
    char *own_ref;

    /*
     * A part of a concatenated SMS (Vonage concat-ref/-total/-part): when
     * concat_total > 1 the store keeps the part and files the whole message
     * once every part is there (or, flagged incomplete, when the TTL ends).
     */
    char *concat_ref;
    int concat_total;
    int concat_part;

    /* Set by the store for KIND_STATUS/EDIT/REMOVE of an inbound message. */
    char *target_id;    /* our id of the message to update, NULL: derive it */
};

struct hark_msg *hark_msg_new(enum hark_msg_kind kind, const char *channel,
                              const char *provider, const char *account);
void hark_msg_free(struct hark_msg *msg);

/* Append an attachment; strings are copied, NULL allowed. 0 or -1. */
int hark_msg_add_attachment(struct hark_msg *msg, const char *url,
                            const char *content_type, const char *filename,
                            int64_t size, const char *file_id);

/* Append an identity (copied). The first one added is the routing one. */
int hark_msg_add_ident(struct hark_msg *msg, const char *kind, const char *value);

/* Append a thread reference (copied). */
int hark_msg_add_thread_ref(struct hark_msg *msg, const char *ref);

/* Set thread[key] = value (string copied); creates the object. */
int hark_msg_thread_set(struct hark_msg *msg, const char *key, const char *value);

/* Set extra[key] = value; takes the reference to value. */
int hark_msg_extra_set(struct hark_msg *msg, const char *key, json_t *value);

/*
 * Check the invariants the store relies on. Returns NULL when the message
 * is acceptable, otherwise a static sentence naming what is wrong, fit for
 * a log line and a 4xx body.
 */
const char *hark_msg_validate(const struct hark_msg *msg);

/*
 * The deterministic id: 32 lowercase hex characters of SHA-256 over
 * channel, account and provider message id, so that a redelivery maps to
 * the same id. `out` receives HARK_MSG_ID_LEN + 1 bytes.
 */
void hark_msg_id(const struct hark_msg *msg, char out[HARK_MSG_ID_LEN + 1]);

/* The same derivation for any (namespace, account, key) triple. */
void hark_derive_id(const char *ns, const char *account, const char *key,
                    char out[HARK_MSG_ID_LEN + 1]);

/*
 * The message as a JSON object (contract v1) without conversation_id and
 * contact_id, which the ingest script appends. New reference; NULL on
 * allocation failure.
 */
json_t *hark_msg_to_json(const struct hark_msg *msg, const char *id);

/*
 * The same document as compact JSON text (json_dumps(..., JSON_COMPACT) of
 * hark_msg_to_json), written without building a tree: the store's hot
 * path. New string or NULL.
 */
char *hark_msg_json_text(const struct hark_msg *msg, const char *id);

/* A list of messages produced by one request; bounded. */
struct hark_batch {
    struct hark_msg **msgs;
    size_t n;
    size_t cap;
    size_t max;     /* 0: HARK_BATCH_MAX */
};
#define HARK_BATCH_MAX 1000

/* Append msg; takes ownership even on failure. -1 when full or no memory. */
int hark_batch_push(struct hark_batch *batch, struct hark_msg *msg);

/* Free every message and the array (the struct itself is the caller's). */
void hark_batch_clear(struct hark_batch *batch);

#endif
