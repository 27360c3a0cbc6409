/*
 * The message as compact JSON text, written straight into one buffer.
 *
 * This is the hot path of every ingest: building a jansson tree and dumping
 * it costs some forty allocations per message, this costs one or two. The
 * output is byte for byte what json_dumps(hark_msg_to_json(), JSON_COMPACT)
 * gives (a unit test holds the two together), because the store splices the
 * text: "status" and "error" must close the object.
 */
#include <stdio.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/buf.h"
#include "hark/msg.h"

/* A JSON string literal, escaped as jansson does (UTF-8 passes through). */
static void put_string(struct hark_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";   /* jansson writes \u000B */
    const char *run = s;

    hark_buf_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *esc = NULL;
        char u[7];

        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        hark_buf_add(b, run, (size_t)(s - run));
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            u[6] = '\0';
            esc = u;
        }
        hark_buf_str(b, esc);
        run = s + 1;
    }
    hark_buf_add(b, run, (size_t)(s - run));
    hark_buf_add(b, "\"", 1);
}

/* ,"key":"value" (or null when value is NULL and keep_null). */
static void put_field(struct hark_buf *b, const char *key, const char *value, int keep_null)
{
    if (value == NULL && !keep_null) {
        return;
    }
    hark_buf_add(b, ",\"", 2);
    hark_buf_str(b, key);
    hark_buf_add(b, "\":", 2);
    if (value == NULL) {
        hark_buf_add(b, "null", 4);
    } else {
        put_string(b, value);
    }
}

static void put_int(struct hark_buf *b, const char *key, int64_t v, int null_if_zero)
{
    char num[24];

    hark_buf_add(b, ",\"", 2);
    hark_buf_str(b, key);
    hark_buf_add(b, "\":", 2);
    if (null_if_zero && v == 0) {
        hark_buf_add(b, "null", 4);
        return;
    }
    snprintf(num, sizeof(num), "%lld", (long long)v);
    hark_buf_str(b, num);
}

/* A jansson value (thread, extra) in compact form. */
static void put_json(struct hark_buf *b, const char *key, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

    if (text == NULL) {
        b->failed = 1;
        return;
    }
    hark_buf_add(b, ",\"", 2);
    hark_buf_str(b, key);
    hark_buf_add(b, "\":", 2);
    hark_buf_str(b, text);
    hark_free(text);
}

static void put_attachments(struct hark_buf *b, const struct hark_msg *msg)
{
    hark_buf_str(b, ",\"attachments\":[");
    for (size_t i = 0; i < msg->n_attachments; i++) {
        const struct hark_attachment *a = &msg->attachments[i];
        hark_buf_str(b, i ? ",{\"url\":" : "{\"url\":");
        if (a->url) {
            put_string(b, a->url);
        } else {
            hark_buf_add(b, "null", 4);
        }
        put_field(b, "content_type", a->content_type, 0);
        put_field(b, "filename", a->filename, 0);
        if (a->size >= 0) {
            put_int(b, "size", a->size, 0);
        } else {
            hark_buf_str(b, ",\"size\":null");
        }
        put_field(b, "file_id", a->file_id, 0);
        hark_buf_add(b, "}", 1);
    }
    hark_buf_add(b, "]", 1);
}

char *hark_msg_json_text(const struct hark_msg *msg, const char *id)
{
    struct hark_buf b = {.max = 64 * 1024 * 1024};
    const char *reply = msg->reply_text ? msg->reply_text : msg->text;

    hark_buf_str(&b, "{\"id\":");
    put_string(&b, id);
    put_int(&b, "v", HARK_MSG_VERSION, 0);
    put_field(&b, "channel", msg->channel, 0);
    put_field(&b, "provider", msg->provider, 0);
    put_field(&b, "account", msg->account, 0);
    put_field(&b, "direction", msg->direction == HARK_DIR_OUTBOUND ? "outbound" : "inbound", 0);
    hark_buf_str(&b, ",\"from\":{\"id\":");
    if (msg->from.id) {
        put_string(&b, msg->from.id);
    } else {
        hark_buf_add(&b, "null", 4);
    }
    put_field(&b, "name", msg->from.name, 0);
    put_field(&b, "handle", msg->from.handle, 0);
    hark_buf_str(&b, "},\"to\":{\"id\":");
    if (msg->to.id) {
        put_string(&b, msg->to.id);
    } else {
        hark_buf_add(&b, "null", 4);
    }
    hark_buf_add(&b, "}", 1);
    put_field(&b, "subject", msg->subject, 0);
    put_field(&b, "text", msg->text ? msg->text : "", 0);
    put_field(&b, "reply_text", reply ? reply : "", 0);
    put_attachments(&b, msg);
    put_field(&b, "provider_message_id", msg->provider_message_id, 1);
    if (msg->thread) {
        put_json(&b, "thread", msg->thread);
    } else {
        hark_buf_str(&b, ",\"thread\":{}");
    }
    put_int(&b, "sent_at", msg->sent_at, 1);
    put_int(&b, "received_at", msg->received_at, 0);
    if (msg->extra) {
        put_json(&b, "extra", msg->extra);
    }
    put_field(&b, "status", msg->status, 0);
    put_field(&b, "error", msg->error, 1);
    hark_buf_add(&b, "}", 1);
    return hark_buf_take(&b);
}
