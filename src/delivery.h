/*
 * Delivery of provider calls (private to the core).
 *
 * The delivery engine runs libcurl's multi socket interface on a libevent
 * loop: one easy handle per call, connections reused across calls, a
 * per-provider concurrency limit (calls beyond it wait in a FIFO) and a
 * total connection cap. It makes exactly one attempt per submitted call;
 * retries, backoff and recording are the outbox's business
 * (src/outbox.c), helped by the pure functions at the end of this header
 * (src/delivery_retry.c).
 *
 * Contract: the callback of a submitted call runs exactly once, on the
 * loop, never from inside hark_delivery_submit(); when the engine is
 * freed with calls in flight their callbacks run with `aborted` set.
 */
#ifndef HARK_DELIVERY_H
#define HARK_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "hark/channel.h"

struct event_base;
struct hark_delivery;

struct hark_delivery_opts {
    int per_provider;           /* calls in flight per provider key */
    int max_connections;        /* total connections kept by curl */
    int64_t timeout_ms;         /* whole call */
    size_t max_answer;          /* bytes of answer body kept (more is cut) */
};

/* What one attempt gave. Borrowed by the callback, valid during it only. */
struct hark_delivery_result {
    int aborted;                /* engine freed before the call ended */
    int transport_error;        /* 1: no usable answer (DNS, connect, timeout, TLS) */
    const char *error;          /* curl's text for transport errors, else "" */
    long status;                /* HTTP status, or the last SMTP reply code */
    const char *body;           /* the answer (NUL-terminated), "" when none */
    size_t body_len;
    int64_t retry_after_ms;     /* from Retry-After, -1 when absent or invalid */
};

typedef void (*hark_delivery_fn)(void *arg, const struct hark_delivery_result *res);

/* A new engine on base; NULL on failure (logged). */
struct hark_delivery *hark_delivery_new(struct event_base *base,
                                        const struct hark_delivery_opts *opts);

/*
 * Free the engine: every call still waiting or in flight is abandoned and
 * its callback runs (synchronously, from here) with `aborted` set.
 */
void hark_delivery_free(struct hark_delivery *d);

/*
 * Queue one call under `provider` (the key of the concurrency limit). The
 * engine takes the call's contents (call is cleared) whatever the result.
 * Returns 0 (fn will run) or -1 on allocation failure (fn will not run).
 */
int hark_delivery_submit(struct hark_delivery *d, const char *provider,
                         struct hark_http_call *call, hark_delivery_fn fn, void *arg);

/* Calls waiting or in flight. */
size_t hark_delivery_busy(const struct hark_delivery *d);

/* ---- Pure helpers (src/delivery_retry.c) ---- */

/*
 * The delay before retry number `attempt` (1 = the first retry):
 * exponential from base_ms, capped at max_ms, with "equal jitter": half
 * the delay is fixed and the other half is chosen by rnd. When the
 * provider gave a Retry-After (retry_after_ms >= 0) it is honoured as a
 * lower bound (and itself capped at max_ms).
 */
int64_t hark_retry_delay_ms(int attempt, int64_t base_ms, int64_t max_ms,
                            int64_t retry_after_ms, uint32_t rnd);

/*
 * Parse a Retry-After value: delta-seconds or an HTTP-date (IMF-fixdate,
 * RFC 850 or asctime form), relative to now_ms. Returns milliseconds
 * (0 for a date in the past) or -1 when the value is not valid.
 */
int64_t hark_retry_after_parse(const char *value, size_t len, int64_t now_ms);

/*
 * Whether an HTTP status is worth retrying whatever the adapter thinks:
 * 408, 425, 429 and 5xx. Adapters use it in their read_send.
 */
int hark_http_status_retryable(long status);

#endif
