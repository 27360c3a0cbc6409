/*
 * Allocation wrappers with a failure-injection hook for tests.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hark/alloc.h"

/* Countdown to the injected failure; negative when injection is off. */
static _Atomic long fail_countdown = -1;
static _Atomic int fail_sticky;

/* Decide whether this allocation is the one that must fail. */
static int should_fail(void)
{
    long n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (n < 0) {
        return 0;
    }
    if (n == 0) {
        if (!atomic_load_explicit(&fail_sticky, memory_order_relaxed)) {
            atomic_store(&fail_countdown, -1);
        }
        return 1;
    }
    atomic_store(&fail_countdown, n - 1);
    return 0;
}

void hark_alloc_fail_after(long n, int sticky)
{
    atomic_store(&fail_sticky, sticky);
    atomic_store(&fail_countdown, n);
}

void *hark_malloc(size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return malloc(size ? size : 1);
}

void *hark_calloc(size_t nmemb, size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return calloc(nmemb ? nmemb : 1, size ? size : 1);
}

void *hark_realloc(void *ptr, size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return realloc(ptr, size ? size : 1);
}

void hark_free(void *ptr)
{
    free(ptr);
}

char *hark_strndup(const char *s, size_t n)
{
    char *copy;

    if (s == NULL) {
        return NULL;
    }
    copy = hark_malloc(n + 1);
    if (copy == NULL) {
        return NULL;
    }
    memcpy(copy, s, n);
    copy[n] = '\0';
    return copy;
}

char *hark_strdup(const char *s)
{
    return s == NULL ? NULL : hark_strndup(s, strlen(s));
}

int hark_strnset(char **dst, const char *src, size_t n)
{
    char *copy = NULL;

    if (src != NULL) {
        copy = hark_strndup(src, n);
        if (copy == NULL) {
            return -1;
        }
    }
    hark_free(*dst);
    *dst = copy;
    return 0;
}

int hark_strset(char **dst, const char *src)
{
    return hark_strnset(dst, src, src == NULL ? 0 : strlen(src));
}

char *hark_asprintf(const char *fmt, ...)
{
    va_list ap;
    int len;
    char *out;

    va_start(ap, fmt);
    len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0) {
        return NULL;
    }
    out = hark_malloc((size_t)len + 1);
    if (out == NULL) {
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(out, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return out;
}

void hark_alloc_init_json(void)
{
    json_set_alloc_funcs(hark_malloc, hark_free);
}
