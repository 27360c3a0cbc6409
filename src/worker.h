/*
 * A worker: one thread, one event base, its own listeners (SO_REUSEPORT),
 * its own Redis connection and store. Nothing is shared between workers
 * but the read-only settings (and secrets behind their lock).
 */
#ifndef HARK_WORKER_H
#define HARK_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "settings.h"
#include "ratelimit.h"
#include "store.h"

/* What workers share: how many of them currently reach Redis. */
struct hark_fleet {
    _Atomic int redis_up;
    int n_workers;
};

struct hark_worker {
    int index;
    struct hark_fleet *fleet;
    pthread_t thread;
    const struct hark_settings *settings;
    struct event_base *base;
    struct hark_http_server *http;
    struct hark_redis *redis;
    struct hark_store *store;
    struct event *stop_event;       /* activated from the main thread */
    struct event *heartbeat;
    struct event *drain_timer;
    size_t requests_waiting;        /* requests waiting for the store */
    int stopping;
    int runs_pollers;
    struct event *sweep_timer;      /* worker 0 only */
    struct hark_ratelimit *ratelimit;   /* NULL: no limit */
    void *outbox;                   /* struct hark_outbox *, when running */
    _Atomic int64_t beat_ms;        /* last heartbeat of the loop */
};

/* The core context pollers reach through ch->core. */
struct hark_core {
    struct hark_worker *worker;
};

/* Create the worker's base, listeners and connection (in the main thread). */
int hark_worker_init(struct hark_worker *w, int index, const struct hark_settings *settings,
                     struct hark_fleet *fleet, char *err, size_t err_len);

/* Run the loop in a new thread. */
int hark_worker_start(struct hark_worker *w);

/* Ask the worker to drain and stop (any thread). */
void hark_worker_stop(struct hark_worker *w);

/* Join the thread and release everything. */
void hark_worker_join(struct hark_worker *w);

/* HTTP side (http.c): create w->http with the request handler. 0 or -1. */
int hark_http_install(struct hark_worker *w);

/* Called when a waiting request is answered: may end a drain. */
void hark_worker_request_done(struct hark_worker *w);

#endif
