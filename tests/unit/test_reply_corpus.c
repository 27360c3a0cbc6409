/*
 * The reply corpus: every tests/data/replies/NNN-<client>-<lang>.txt is
 * stripped with hark_reply_strip() and compared exactly with its
 * .expected file (trailing newlines ignored). Prints
 * "reply corpus: X/Y exact (Z%)" and fails below 100%.
 *
 *   make build/tests/test_reply_corpus && ./build/tests/test_reply_corpus
 *
 * HARK_REPLY_CORPUS overrides the directory.
 */
#include <dirent.h>

#include "harness.h"

#include "hark/alloc.h"
#include "../../adapters/imap/mime.h"

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_reply_corpus(void **state)
{
    const char *dir = getenv("HARK_REPLY_CORPUS");
    char *names[1024];
    size_t n = 0, i, exact = 0;
    struct dirent *de;
    DIR *d;
    (void)state;

    if (dir == NULL) {
        dir = "tests/data/replies";
    }
    d = opendir(dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL && n < 1024) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".txt") == 0) {
            names[n++] = strdup(de->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), by_name);
    for (i = 0; i < n; i++) {
        char exp_name[512];
        size_t tlen, elen;
        char *text = harness_read(dir, names[i], &tlen);
        char *expected, *got;

        snprintf(exp_name, sizeof(exp_name), "%.*s.expected",
                 (int)(strlen(names[i]) - 4), names[i]);
        expected = harness_read(dir, exp_name, &elen);
        while (elen > 0 && expected[elen - 1] == '\n') {
            expected[--elen] = '\0';
        }
        got = hark_reply_strip(text, tlen);
        assert_non_null(got);
        if (strcmp(got, expected) == 0) {
            exact++;
        } else {
            printf("MISMATCH %s\n--- expected\n%s\n--- got\n%s\n---\n", names[i], expected, got);
        }
        hark_free(got);
        free(text);
        free(expected);
        free(names[i]);
    }
    printf("reply corpus: %zu/%zu exact (%.1f%%)\n", exact, n,
           n ? 100.0 * (double)exact / (double)n : 0.0);
    assert_true(n >= 60);
    assert_int_equal(exact, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_corpus),
    };
    hark_alloc_init_json();
    return cmocka_run_group_tests_name("reply_corpus", tests, NULL, NULL);
}
