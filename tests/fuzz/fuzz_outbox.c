/*
 * libFuzzer target: reading and checking a CRM's reply request from an
 * outbox stream entry (src/outbox_entry.c). A CRM writes these entries, so
 * anything can be in them: odd field counts, non-string fields, huge or
 * invalid UTF-8 text, attachments that are not JSON.
 *
 * Input: one control byte, then the entry's fields separated by NUL bytes.
 * Control bits: 1 the entry is missing, 2 it is not an array, 4 the
 * second field is an integer reply instead of a string.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outbox_entry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    redisReply top = {0}, *elems[OB_FIELDS_MAX + 2], items[OB_FIELDS_MAX + 2];
    struct ob_entry e = {0};
    char reason[320] = "";
    uint8_t control;
    size_t n = 0, start;
    char *copy;

    if (size == 0) {
        return 0;
    }
    control = data[0];
    /* Exactly the input's size: ASan reports any read past its end. */
    copy = malloc(size);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size);
    memset(items, 0, sizeof(items));
    start = 1;
    for (size_t i = 1; i <= size && n < OB_FIELDS_MAX + 2; i++) {
        if (i == size || copy[i] == '\0') {
            items[n].type = REDIS_REPLY_STRING;
            items[n].str = copy + start;
            items[n].len = i - start;
            elems[n] = &items[n];
            n++;
            start = i + 1;
        }
    }
    if ((control & 4) && n > 1) {
        items[1].type = REDIS_REPLY_INTEGER;
        items[1].str = NULL;
        items[1].len = 0;
    }
    top.type = (control & 2) ? REDIS_REPLY_STRING : REDIS_REPLY_ARRAY;
    top.elements = (control & 2) ? 0 : n;
    top.element = (control & 2) ? NULL : elems;
    if (ob_entry_read(&e, (control & 1) ? NULL : &top, reason, sizeof(reason)) == 0) {
        int ok = ob_entry_validate(&e, reason, sizeof(reason)) == 0;
        /* A valid request names a conversation and carries text or attachments. */
        if (ok && (e.conv_id == NULL || reason[0] != '\0' ||
                   ((e.text == NULL || e.text[0] == '\0') && json_array_size(e.attachments) == 0))) {
            __builtin_trap();
        }
        if (!ok && reason[0] == '\0') {
            __builtin_trap();   /* a refusal must say why */
        }
    }
    ob_entry_clear(&e);
    free(copy);
    return 0;
}
