/*
 * Retry arithmetic of the delivery: backoff with jitter and Retry-After.
 * Pure functions (no I/O, no globals) so they are unit-tested directly.
 */
#include <ctype.h>
#include <string.h>
#include <time.h>

#include "delivery.h"

int64_t hark_retry_delay_ms(int attempt, int64_t base_ms, int64_t max_ms,
                            int64_t retry_after_ms, uint32_t rnd)
{
    int64_t delay = base_ms > 0 ? base_ms : 1;
    int64_t half;

    if (max_ms < delay) {
        max_ms = delay;
    }
    /* Doubling stops at the cap, so no overflow whatever attempt is. */
    for (int i = 1; i < attempt && delay < max_ms; i++) {
        delay = delay > max_ms / 2 ? max_ms : delay * 2;
    }
    if (delay > max_ms) {
        delay = max_ms;
    }
    half = delay / 2;
    delay = half + (int64_t)(rnd % (uint64_t)(delay - half + 1));
    if (retry_after_ms >= 0) {
        if (retry_after_ms > max_ms) {
            retry_after_ms = max_ms;
        }
        if (delay < retry_after_ms) {
            delay = retry_after_ms;
        }
    }
    return delay;
}

/* Parse s[0..len) as a date in one strptime format; 0 on success. */
static int parse_date(const char *s, const char *fmt, struct tm *tm)
{
    const char *end;

    memset(tm, 0, sizeof(*tm));
    end = strptime(s, fmt, tm);
    if (end == NULL) {
        return -1;
    }
    while (*end == ' ') {
        end++;
    }
    return *end == '\0' ? 0 : -1;
}

int64_t hark_retry_after_parse(const char *value, size_t len, int64_t now_ms)
{
    char buf[64];
    size_t i = 0;
    struct tm tm;
    time_t when;

    while (len > 0 && (value[0] == ' ' || value[0] == '\t')) {
        value++;
        len--;
    }
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t' ||
                       value[len - 1] == '\r' || value[len - 1] == '\n')) {
        len--;
    }
    if (len == 0 || len >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, value, len);
    buf[len] = '\0';
    if (isdigit((unsigned char)buf[0])) {
        int64_t secs = 0;
        for (i = 0; i < len; i++) {
            if (!isdigit((unsigned char)buf[i])) {
                return -1;
            }
            if (secs > 100000000) {
                return -1;  /* more than three years: nonsense */
            }
            secs = secs * 10 + (buf[i] - '0');
        }
        return secs * 1000;
    }
    /* HTTP-date: the preferred form and the two obsolete ones (RFC 9110 5.6.7). */
    if (parse_date(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm) < 0 &&
        parse_date(buf, "%A, %d-%b-%y %H:%M:%S GMT", &tm) < 0 &&
        parse_date(buf, "%a %b %e %H:%M:%S %Y", &tm) < 0) {
        return -1;
    }
    when = timegm(&tm);
    if (when == (time_t)-1) {
        return -1;
    }
    if ((int64_t)when * 1000 <= now_ms) {
        return 0;
    }
    return (int64_t)when * 1000 - now_ms;
}

int hark_http_status_retryable(long status)
{
    return status == 408 || status == 425 || status == 429 || (status >= 500 && status <= 599);
}
