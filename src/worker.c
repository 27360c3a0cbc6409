/*
 * Workers: thread lifecycle, listeners, drain on stop.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "hark/alloc.h"
#include "hark/core.h"
#include "hark/log.h"
#include "hark/text.h"
#include "http_server.h"
#include "listen.h"
#include "outbox_hook.h"
#include "worker.h"

/* Every second: prove the loop is alive. */
static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    struct hark_worker *w = arg;

    (void)fd;
    (void)what;
    atomic_store(&w->beat_ms, hark_now_ms());
}

/* Worker 0: look for unanswered conversations and overdue SMS parts. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct hark_worker *w = arg;

    (void)fd;
    (void)what;
    if (!w->stopping) {
        hark_store_sweep(w->store, w->settings->unanswered_after_ms);
    }
}

static void on_redis_state(void *arg, int connected)
{
    struct hark_worker *w = arg;

    atomic_fetch_add(&w->fleet->redis_up, connected ? 1 : -1);
}

/* Exit the loop once nothing waits for Redis any more. */
static void maybe_finish(struct hark_worker *w)
{
    if (w->stopping && w->requests_waiting == 0 && hark_store_inflight(w->store) == 0) {
        event_base_loopexit(w->base, NULL);
    }
}

void hark_worker_request_done(struct hark_worker *w)
{
    w->requests_waiting--;
    maybe_finish(w);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct hark_worker *w = arg;

    (void)fd;
    (void)what;
    log_warn("worker", "worker=%d msg=\"drain timeout\" waiting=%zu", w->index, w->requests_waiting);
    event_base_loopexit(w->base, NULL);
}

static void stop_pollers(struct hark_worker *w)
{
    const struct hark_settings *s = w->settings;

    if (!w->runs_pollers) {
        return;
    }
    for (size_t i = 0; i < s->n_channels; i++) {
        struct hark_channel *ch = s->channels[i];
        if ((ch->adapter->caps & HARK_CAP_POLLER) && ch->adapter->stop) {
            ch->adapter->stop(ch);
        }
    }
    hark_outbox_hook_stop(w);
}

/* Stop accepting, then wait for in-flight requests and their writes. */
static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct hark_worker *w = arg;
    struct timeval tv;

    (void)fd;
    (void)what;
    if (w->stopping) {
        return;
    }
    w->stopping = 1;
    hark_http_server_stop(w->http);
    stop_pollers(w);
    tv.tv_sec = w->settings->drain_timeout_ms / 1000;
    tv.tv_usec = (w->settings->drain_timeout_ms % 1000) * 1000;
    evtimer_add(w->drain_timer, &tv);
    maybe_finish(w);
}

int hark_worker_init(struct hark_worker *w, int index, const struct hark_settings *s,
                     struct hark_fleet *fleet, char *err, size_t err_len)
{
    const struct timeval beat = {1, 0};
    struct hark_store_opts opts = {
        .prefix = s->prefix,
        .partitions = s->partitions,
        .events_maxlen = s->events_maxlen,
        .max_batch = (size_t)s->batch,
        .max_inflight = s->pipeline,
        .concat_ttl_ms = s->concat_ttl_ms,
    };
    char name[16];

    memset(w, 0, sizeof(*w));
    w->index = index;
    w->fleet = fleet;
    w->settings = s;
    w->runs_pollers = index == 0;
    {
        /*
         * Event changes made while handling one wake-up (hiredis adds and
         * removes its write event per command) are folded into one
         * epoll_ctl at the next dispatch.
         */
        struct event_config *cfg = event_config_new();
        if (cfg != NULL) {
            event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
            w->base = event_base_new_with_config(cfg);
            event_config_free(cfg);
        }
    }
    if (w->base == NULL || hark_http_install(w) < 0) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    w->ratelimit = hark_ratelimit_new((double)s->rate_limit, (double)s->rate_burst);
    for (size_t i = 0; i < s->n_listen; i++) {
        int fd = hark_listen_open(s->listen[i], err, err_len);
        if (fd < 0) {
            return -1;
        }
        if (hark_http_server_listen(w->http, fd) < 0) {
            close(fd);
            snprintf(err, err_len, "cannot accept on %s", s->listen[i]);
            return -1;
        }
    }
    snprintf(name, sizeof(name), "w%d", index);
    w->redis = hark_redis_new(w->base, &s->redis, name, on_redis_state, w);
    w->store = w->redis ? hark_store_new(w->base, w->redis, &opts) : NULL;
    w->stop_event = event_new(w->base, -1, 0, on_stop, w);
    w->heartbeat = event_new(w->base, -1, EV_PERSIST, on_heartbeat, w);
    w->drain_timer = evtimer_new(w->base, on_drain_timeout, w);
    if (w->store == NULL || w->stop_event == NULL || w->heartbeat == NULL || w->drain_timer == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    event_add(w->heartbeat, &beat);
    if (w->runs_pollers) {
        struct timeval every = {(time_t)(s->sweep_interval_ms / 1000),
                                (suseconds_t)(s->sweep_interval_ms % 1000 * 1000)};
        w->sweep_timer = event_new(w->base, -1, EV_PERSIST, on_sweep, w);
        if (w->sweep_timer == NULL) {
            snprintf(err, err_len, "out of memory");
            return -1;
        }
        event_add(w->sweep_timer, &every);
    }
    atomic_store(&w->beat_ms, hark_now_ms());
    return 0;
}

static void *worker_main(void *arg)
{
    struct hark_worker *w = arg;
    const struct hark_settings *s = w->settings;

    if (w->runs_pollers) {
        static struct hark_core core;
        core.worker = w;
        for (size_t i = 0; i < s->n_channels; i++) {
            struct hark_channel *ch = s->channels[i];
            ch->core = &core;
            if ((ch->adapter->caps & HARK_CAP_POLLER) && ch->adapter->start &&
                ch->adapter->start(ch, w->base) < 0) {
                log_error("worker", "channel=%s msg=\"poller failed to start\"", ch->name);
            }
        }
        hark_outbox_hook_start(w);
    }
    event_base_dispatch(w->base);
    return NULL;
}

int hark_worker_start(struct hark_worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

void hark_worker_stop(struct hark_worker *w)
{
    if (w->stop_event != NULL) {
        event_active(w->stop_event, 0, 0);
    }
}

void hark_worker_join(struct hark_worker *w)
{
    if (w->thread) {
        pthread_join(w->thread, NULL);
    }
    /* Work handed to blocking threads must not outlive the bases. */
    hark_blocking_drain();
    /* Answer whatever still waits (with 503) before the connections go. */
    hark_store_detach(w->store);
    hark_redis_free(w->redis);
    hark_store_free(w->store);
    hark_http_server_free(w->http);
    if (w->stop_event) {
        event_free(w->stop_event);
    }
    if (w->heartbeat) {
        event_free(w->heartbeat);
    }
    if (w->drain_timer) {
        event_free(w->drain_timer);
    }
    if (w->sweep_timer) {
        event_free(w->sweep_timer);
    }
    hark_ratelimit_free(w->ratelimit);
    if (w->base) {
        event_base_free(w->base);
    }
    memset(w, 0, sizeof(*w));
}
