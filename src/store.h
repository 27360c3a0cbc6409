/*
 * The store: files normalized messages into Redis with the ingest script.
 *
 * Records are queued per partition and sent as EVALSHA calls carrying up
 * to max_batch records each; up to max_inflight calls per partition are
 * pipelined on the worker's connection. Under load the queue grows while
 * calls are in flight, so batches grow by themselves; when idle, a record
 * goes out alone at once. Each submit's callback runs once all of its
 * records are acknowledged, so a provider is answered only after its own
 * write. This file is the only one that knows the key layout besides the
 * Lua scripts.
 */
#ifndef HARK_STORE_H
#define HARK_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "hark/core.h"
#include "hark/msg.h"
#include "redis_conn.h"

struct event_base;

struct hark_store_opts {
    const char *prefix;         /* "hark" */
    int partitions;             /* >= 1 */
    int64_t events_maxlen;      /* MAXLEN ~ of each events stream */
    size_t max_batch;           /* records per script call (0: 64) */
    int max_inflight;           /* pipelined calls per partition (0: 4) */
    int64_t concat_ttl_ms;      /* how long parts of a concatenated SMS wait */
};

struct hark_store;

struct hark_store *hark_store_new(struct event_base *base, struct hark_redis *redis,
                                  const struct hark_store_opts *opts);

/*
 * Forget the connection before it is freed: calls answered afterwards (with
 * NULL replies, during hark_redis_free) send nothing new.
 */
void hark_store_detach(struct hark_store *st);

/* Fail every queued record with RETRY (callbacks run) and free. */
void hark_store_free(struct hark_store *st);

/*
 * Store the batch's messages (ownership taken; the batch is emptied).
 * done(arg, result) runs exactly once, later, on the store's loop: OK when
 * every record is filed (duplicates included), RETRY when Redis could not
 * take them, ERROR when a record was invalid (nothing of it was written).
 */
void hark_store_submit(struct hark_store *st, struct hark_batch *batch,
                       hark_done_fn done, void *arg);

/*
 * Periodic work of worker 0: file concatenated SMS whose deadline passed
 * (flagged incomplete) and report conversations unanswered for longer than
 * unanswered_after_ms (0: never) with conversation.unanswered.
 */
void hark_store_sweep(struct hark_store *st, int64_t unanswered_after_ms);

/* Records submitted and not answered yet. */
size_t hark_store_inflight(const struct hark_store *st);

/* The partition of a routing identity (FNV-1a of "kind:value"). */
int hark_store_partition(const char *kind, const char *value, int partitions);

#endif
