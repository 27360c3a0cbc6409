/*
 * Per-client-address request rate limit: a token bucket per address in a
 * fixed-size table per worker (no locks, no allocation per request). When
 * two addresses share a slot the newer one takes it over, which can only
 * make the limit more lenient, never block a client wrongly for long.
 */
#ifndef HARK_RATELIMIT_H
#define HARK_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct hark_ratelimit;

/* rate requests per second with bursts of burst; rate 0 disables (NULL). */
struct hark_ratelimit *hark_ratelimit_new(double rate, double burst);
void hark_ratelimit_free(struct hark_ratelimit *rl);

/* 1 when a request from addr (text form) may go on at now_ms; NULL rl: always. */
int hark_ratelimit_allow(struct hark_ratelimit *rl, const char *addr, int64_t now_ms);

#endif
