/*
 * A CRM's reply request as read from the outbox stream: copied out of the
 * hiredis reply and checked, with no I/O, so that it can be fuzzed. The
 * outbox's job (delivery_job.c) owns one for each entry it works on.
 */
#ifndef HARK_OUTBOX_ENTRY_H
#define HARK_OUTBOX_ENTRY_H

#include <stddef.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#define OB_TEXT_MAX (64 * 1024)
#define OB_KEY_MAX 256
#define OB_FIELDS_MAX 64

struct ob_entry {
    char **fields;              /* name/value pairs as given, for the dead letter */
    size_t n_fields;
    const char *conv_id, *text, *attachments_raw, *idem_key;   /* into fields */
    json_t *attachments;        /* parsed by ob_entry_validate */
};

/* 1 when r is a string-like reply (string or status). */
int ob_reply_is_str(const redisReply *r);

/*
 * Copy the entry's field/value array f (may be NULL) into e. Returns -1
 * when out of memory; otherwise 0, with reason filled (non-empty) when the
 * entry is not a list of string pairs.
 */
int ob_entry_read(struct ob_entry *e, const redisReply *f, char *reason, size_t cap);

/* 0 when the request can be sent; -1 with reason filled otherwise. */
int ob_entry_validate(struct ob_entry *e, char *reason, size_t cap);

/* Release what e holds; e may be read again. */
void ob_entry_clear(struct ob_entry *e);

#endif
