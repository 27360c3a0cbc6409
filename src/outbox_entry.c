/*
 * Reading a CRM's reply request from an outbox stream entry (see
 * outbox_entry.h): its fields are copied, the ones the outbox uses are
 * found, and the request is checked before anything is sent.
 */
#include <stdio.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/msg.h"
#include "hark/text.h"
#include "outbox_entry.h"

int ob_reply_is_str(const redisReply *r)
{
    return r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

int ob_entry_read(struct ob_entry *e, const redisReply *f, char *reason, size_t cap)
{
    if (f == NULL || f->type != REDIS_REPLY_ARRAY || f->elements % 2 || f->elements > OB_FIELDS_MAX) {
        snprintf(reason, cap, "outbox entry has no fields");
        return 0;
    }
    e->fields = hark_calloc(f->elements ? f->elements : 1, sizeof(char *));
    if (e->fields == NULL) {
        return -1;
    }
    for (size_t i = 0; i < f->elements; i++) {
        if (!ob_reply_is_str(f->element[i])) {
            snprintf(reason, cap, "outbox entry field is not a string");
            return 0;
        }
        e->fields[i] = hark_strndup(f->element[i]->str, f->element[i]->len);
        if (e->fields[i] == NULL) {
            return -1;
        }
        e->n_fields++;
    }
    for (size_t i = 0; i + 1 < e->n_fields; i += 2) {
        const char *n = e->fields[i], *v = e->fields[i + 1];
        if (strcmp(n, "conversation_id") == 0) {
            e->conv_id = v;
        } else if (strcmp(n, "text") == 0) {
            e->text = v;
        } else if (strcmp(n, "attachments") == 0) {
            e->attachments_raw = v;
        } else if (strcmp(n, "idempotency_key") == 0) {
            e->idem_key = v;
        }
    }
    return 0;
}

int ob_entry_validate(struct ob_entry *e, char *reason, size_t cap)
{
    const char *why = NULL;
    size_t tlen = e->text ? strlen(e->text) : 0;

    if (reason[0]) {
        return -1;              /* ob_entry_read found it malformed */
    }
    if (e->conv_id == NULL || e->conv_id[0] == '\0' || strlen(e->conv_id) > OB_KEY_MAX) {
        snprintf(reason, cap, "missing or invalid conversation_id");
        return -1;
    }
    if (e->idem_key != NULL && (e->idem_key[0] == '\0' || strlen(e->idem_key) > OB_KEY_MAX)) {
        snprintf(reason, cap, "idempotency_key empty or longer than %d bytes", OB_KEY_MAX);
        return -1;
    }
    if (tlen > OB_TEXT_MAX || (e->text && !hark_utf8_valid(e->text, tlen))) {
        snprintf(reason, cap, "text is not valid UTF-8 or too long");
        return -1;
    }
    if (e->attachments_raw != NULL && e->attachments_raw[0] != '\0') {
        size_t i;
        json_t *u;
        e->attachments = hark_json_parse(e->attachments_raw, strlen(e->attachments_raw), &why);
        if (!json_is_array(e->attachments) || json_array_size(e->attachments) > HARK_MAX_ATTACHMENTS) {
            snprintf(reason, cap, "attachments is not a JSON array of URLs");
            return -1;
        }
        json_array_foreach(e->attachments, i, u) {
            const char *s = json_string_value(u);
            if (s == NULL || (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)) {
                snprintf(reason, cap, "attachment %zu is not an http(s) URL", i);
                return -1;
            }
        }
    }
    if (tlen == 0 && json_array_size(e->attachments) == 0) {
        snprintf(reason, cap, "empty text and no attachments");
        return -1;
    }
    return 0;
}

void ob_entry_clear(struct ob_entry *e)
{
    for (size_t i = 0; i < e->n_fields; i++) {
        hark_free(e->fields[i]);
    }
    hark_free(e->fields);
    json_decref(e->attachments);
    memset(e, 0, sizeof(*e));
}
