/*
 * Private to the outbox (src/outbox.c, src/delivery_job.c): the consumer
 * state and the per-entry state machine.
 */
#ifndef HARK_DELIVERY_JOB_H
#define HARK_DELIVERY_JOB_H

#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

#include "hark/channel.h"
#include "delivery.h"
#include "redis_conn.h"

struct event;
struct ob_job;

struct outbox_cfg {
    char *consumer;
    int per_provider;
    int max_connections;
    int64_t timeout_ms;
    int max_attempts;
    int64_t backoff_base_ms;
    int64_t backoff_max_ms;
    int64_t claim_idle_ms;
    int64_t idem_ttl_ms;
    long long events_maxlen;
    int max_inflight;
};

struct hark_outbox {
    struct event_base *base;
    char *prefix;
    int partitions;
    struct hark_channel *const *channels;
    size_t n_channels;
    struct outbox_cfg cfg;
    struct hark_redis *rd;      /* blocking reads only */
    struct hark_redis *cmd;     /* everything else */
    struct hark_delivery *dl;
    struct hark_script script;
    struct event *claim_ev;
    struct event *read_ev;
    char *stream_key;
    char *dead_key;
    int group_ready;
    int reading;
    int read_history;           /* 1 while re-reading our own pending entries */
    int stopping;
    struct ob_job *jobs;
    size_t n_jobs;
    uint64_t rnd;
};

/* Start a job for one stream entry (fields: the entry's field/value array, may be NULL). */
void ob_job_start(struct hark_outbox *o, const char *entry_id, const redisReply *fields);

/* The job for entry_id in flight here, or NULL. */
struct ob_job *ob_job_find(struct hark_outbox *o, const char *entry_id);

/* Entry ids of jobs in flight (for the idle-time heartbeat): up to cap. */
size_t ob_job_ids(struct hark_outbox *o, const char **ids, size_t cap);

/* Free every job without acknowledging anything (stop). */
void ob_job_free_all(struct hark_outbox *o);

/* Called by the job machine when a job ended (room to read more). */
void outbox_job_done(struct hark_outbox *o);

/* xorshift: jitter for the backoff. */
uint32_t outbox_random(struct hark_outbox *o);

#endif
