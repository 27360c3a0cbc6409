/*
 * Unit-test harness: cmocka plus helpers to read shared fixtures.
 */
#ifndef HARK_TEST_HARNESS_H
#define HARK_TEST_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

/* Directory holding the providers' vectors (overridable for CI layouts). */
static inline const char *harness_vectors_dir(void)
{
    const char *dir = getenv("HARK_VECTORS");
    return dir ? dir : "../shared/vectors";
}

/* Read a whole file under dir into a NUL-terminated buffer; fails the test if missing. */
static inline char *harness_read(const char *dir, const char *name, size_t *len)
{
    char path[1024];
    FILE *f;
    long size;
    char *buf;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL) {
        fail_msg("cannot open %s", path);
    }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    buf[size] = '\0';
    fclose(f);
    if (len) {
        *len = (size_t)size;
    }
    return buf;
}

/* The signature vectors as a JSON array. */
static inline json_t *harness_signature_vectors(void)
{
    size_t len;
    char *text = harness_read(harness_vectors_dir(), "signatures.json", &len);
    json_error_t err;
    json_t *root = json_loadb(text, len, 0, &err);
    free(text);
    assert_non_null(root);
    return root;
}

/* The first vector whose provider and name contain the given substrings. */
static inline json_t *harness_find_vector(json_t *all, const char *provider, const char *name_part)
{
    size_t i;
    json_t *v;

    json_array_foreach(all, i, v) {
        const char *p = json_string_value(json_object_get(v, "provider"));
        const char *n = json_string_value(json_object_get(v, "name"));
        if (p && n && strstr(p, provider) && strstr(n, name_part)) {
            return v;
        }
    }
    fail_msg("no vector %s / %s", provider, name_part);
    return NULL;
}

#endif
