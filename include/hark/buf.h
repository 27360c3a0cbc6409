/*
 * hark: a bounded growing string for building requests and messages.
 *
 * Appends never fail loudly: the first allocation failure or overflow of
 * `max` sets `failed`, later appends do nothing, and the caller checks
 * once at the end. The string is always NUL-terminated when non-NULL.
 */
#ifndef HARK_BUF_H
#define HARK_BUF_H

#include <stddef.h>

struct hark_buf {
    char *s;
    size_t len;
    size_t cap;
    size_t max;     /* hard bound on len; 0: 1 MiB */
    int failed;
};

void hark_buf_add(struct hark_buf *b, const char *s, size_t n);
void hark_buf_str(struct hark_buf *b, const char *s);

/* Release the string; the struct may be reused. */
void hark_buf_free(struct hark_buf *b);

/*
 * The string (ownership to the caller) or NULL when an append failed (the
 * buffer is then freed).
 */
char *hark_buf_take(struct hark_buf *b);

#endif
