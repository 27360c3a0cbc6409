/*
 * hark: allocation wrappers.
 *
 * Every allocation in hark goes through these functions so that tests can
 * inject failures (hark_alloc_fail_after) and so that jansson shares them.
 * Each returns NULL on failure; hark_free(NULL) is a no-op.
 */
#ifndef HARK_ALLOC_H
#define HARK_ALLOC_H

#include <stddef.h>

void *hark_malloc(size_t size);
void *hark_calloc(size_t nmemb, size_t size);
void *hark_realloc(void *ptr, size_t size);
void hark_free(void *ptr);

/* A NUL-terminated copy of s (NULL gives NULL). */
char *hark_strdup(const char *s);

/* A NUL-terminated copy of the first n bytes of s. */
char *hark_strndup(const char *s, size_t n);

/*
 * Replace *dst with a copy of src (NULL clears it). Returns 0, or -1 when
 * the copy could not be allocated (then *dst is unchanged).
 */
int hark_strset(char **dst, const char *src);
int hark_strnset(char **dst, const char *src, size_t n);

/* printf into a new string; NULL on allocation failure. */
char *hark_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Test hook: make the n-th allocation from now on fail (and every one after
 * it while `sticky`); n < 0 disables injection.
 */
void hark_alloc_fail_after(long n, int sticky);

/* Route jansson's allocations through the wrappers above. */
void hark_alloc_init_json(void);

#endif
