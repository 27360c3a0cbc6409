/*
 * Unit tests: retry arithmetic of the delivery (backoff with jitter,
 * Retry-After parsing, retryable statuses).
 */
#include "harness.h"

#include "delivery.h"

static void test_backoff_grows_and_caps(void **state)
{
    (void)state;
    /* rnd 0 gives the lower half, a huge rnd modulo gives at most the full delay. */
    assert_int_equal(hark_retry_delay_ms(1, 1000, 300000, -1, 0), 500);
    assert_int_equal(hark_retry_delay_ms(2, 1000, 300000, -1, 0), 1000);
    assert_int_equal(hark_retry_delay_ms(3, 1000, 300000, -1, 0), 2000);
    assert_int_equal(hark_retry_delay_ms(1, 1000, 300000, -1, 500), 1000);
    assert_int_equal(hark_retry_delay_ms(3, 1000, 300000, -1, 2000), 4000);
    /* Capped, and no overflow for absurd attempt numbers. */
    assert_int_equal(hark_retry_delay_ms(20, 1000, 300000, -1, 150000), 300000);
    assert_int_equal(hark_retry_delay_ms(1000000, 1000, 300000, -1, 0), 150000);
    assert_true(hark_retry_delay_ms(64, INT64_MAX / 4, INT64_MAX / 2, -1, 7) > 0);
}

static void test_backoff_jitter_range(void **state)
{
    (void)state;
    for (uint32_t r = 0; r < 5000; r += 7) {
        int64_t d = hark_retry_delay_ms(4, 1000, 300000, -1, r * 2654435761u);
        assert_true(d >= 4000 && d <= 8000);
    }
}

static void test_backoff_retry_after(void **state)
{
    (void)state;
    /* Retry-After is a lower bound ... */
    assert_int_equal(hark_retry_delay_ms(1, 1000, 300000, 30000, 0), 30000);
    /* ... that never shortens the backoff ... */
    assert_int_equal(hark_retry_delay_ms(3, 1000, 300000, 10, 0), 2000);
    /* ... and is capped by the maximum. */
    assert_int_equal(hark_retry_delay_ms(1, 1000, 60000, 3600000, 0), 60000);
    assert_int_equal(hark_retry_delay_ms(1, 1000, 60000, 0, 0), 500);
}

static void test_retry_after_parse(void **state)
{
    /* Sun, 06 Nov 1994 08:49:37 GMT = 784111777 */
    int64_t now = 784111777LL * 1000;
    (void)state;

    assert_int_equal(hark_retry_after_parse("120", 3, now), 120000);
    assert_int_equal(hark_retry_after_parse(" 7 \r\n", 5, now), 7000);
    assert_int_equal(hark_retry_after_parse("0", 1, now), 0);
    assert_int_equal(hark_retry_after_parse("Sun, 06 Nov 1994 08:49:47 GMT", 29, now), 10000);
    assert_int_equal(hark_retry_after_parse("Sunday, 06-Nov-94 08:50:37 GMT", 30, now), 60000);
    assert_int_equal(hark_retry_after_parse("Sun Nov  6 08:49:38 1994", 24, now), 1000);
    /* A date in the past means now. */
    assert_int_equal(hark_retry_after_parse("Sun, 06 Nov 1994 08:00:00 GMT", 29, now), 0);
    /* Not valid: negative, fractional, garbage, empty, huge, trailing junk. */
    assert_int_equal(hark_retry_after_parse("-5", 2, now), -1);
    assert_int_equal(hark_retry_after_parse("1.5", 3, now), -1);
    assert_int_equal(hark_retry_after_parse("soon", 4, now), -1);
    assert_int_equal(hark_retry_after_parse("", 0, now), -1);
    assert_int_equal(hark_retry_after_parse("99999999999999999999", 20, now), -1);
    assert_int_equal(hark_retry_after_parse("Sun, 06 Nov 1994 08:49:47 GMT x", 31, now), -1);
    /* Only len bytes are read. */
    assert_int_equal(hark_retry_after_parse("12345", 2, now), 12000);
}

static void test_retryable_status(void **state)
{
    (void)state;
    assert_true(hark_http_status_retryable(429));
    assert_true(hark_http_status_retryable(500));
    assert_true(hark_http_status_retryable(503));
    assert_true(hark_http_status_retryable(408));
    assert_false(hark_http_status_retryable(400));
    assert_false(hark_http_status_retryable(401));
    assert_false(hark_http_status_retryable(404));
    assert_false(hark_http_status_retryable(200));
    assert_false(hark_http_status_retryable(600));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_grows_and_caps),
        cmocka_unit_test(test_backoff_jitter_range),
        cmocka_unit_test(test_backoff_retry_after),
        cmocka_unit_test(test_retry_after_parse),
        cmocka_unit_test(test_retryable_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
