/*
 * A bounded growing string.
 */
#include <string.h>

#include "hark/alloc.h"
#include "hark/buf.h"

#define BUF_DEFAULT_MAX (1024 * 1024)

void hark_buf_add(struct hark_buf *b, const char *s, size_t n)
{
    size_t max = b->max ? b->max : BUF_DEFAULT_MAX;

    if (b->failed) {
        return;
    }
    if (b->len + n + 1 > max) {
        b->failed = 1;
        return;
    }
    if (b->s == NULL || b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        char *grown;
        while (ncap < b->len + n + 1) {
            ncap *= 2;
        }
        grown = hark_realloc(b->s, ncap);
        if (grown == NULL) {
            b->failed = 1;
            return;
        }
        b->s = grown;
        b->cap = ncap;
    }
    if (n > 0) {
        memcpy(b->s + b->len, s, n);
    }
    b->len += n;
    b->s[b->len] = '\0';
}

void hark_buf_str(struct hark_buf *b, const char *s)
{
    hark_buf_add(b, s, strlen(s));
}

void hark_buf_free(struct hark_buf *b)
{
    hark_free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

char *hark_buf_take(struct hark_buf *b)
{
    char *s;

    if (b->failed) {
        hark_buf_free(b);
        return NULL;
    }
    if (b->s == NULL) {
        hark_buf_add(b, "", 0);
        if (b->failed) {
            return NULL;
        }
    }
    s = b->s;
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}
