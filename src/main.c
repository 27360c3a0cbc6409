/*
 * harkd: entry point and lifecycle.
 *
 * The main thread reads the configuration, starts the workers, then runs a
 * small loop of its own for signals (SIGTERM/SIGINT: drain and exit 0;
 * SIGHUP: reopen logs, re-read secrets), systemd notifications (READY=1
 * once every worker listens and reaches Redis) and the watchdog, which is
 * fed only while every worker loop keeps beating.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <systemd/sd-daemon.h>

#include "hark/alloc.h"
#include "hark/log.h"
#include "hark/text.h"
#include "registry.h"
#include "settings.h"
#include "worker.h"

#define DEFAULT_CONFIG "/etc/hark/harkd.conf"

struct daemon {
    struct hark_settings settings;
    struct hark_worker *workers;
    int n_workers;
    struct hark_fleet fleet;
    struct event_base *base;
    struct event *readiness;
    struct event *watchdog;
    uint64_t watchdog_usec;
    int ready;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: harkd [-c FILE] [-t] [--keys] [--version] [-h]\n"
            "  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ")\n"
            "  -t, --test         check the configuration and exit\n"
            "      --keys         print every configuration key and exit\n"
            "  -v, --version      print the version and exit\n"
            "  -h, --help         this text\n");
}

static void on_signal_stop(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;

    (void)what;
    log_info("main", "msg=\"stopping\" signal=%d", (int)sig);
    sd_notify(0, "STOPPING=1\nSTATUS=draining");
    event_base_loopexit(d->base, NULL);
}

static void on_signal_hup(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    int failed;

    (void)sig;
    (void)what;
    hark_log_reopen();
    failed = hark_conf_reload_secrets(&d->settings.conf);
    if (failed) {
        log_warn("main", "msg=\"some secrets could not be re-read; old values kept\" count=%d", failed);
    } else {
        log_info("main", "msg=\"logs reopened and secrets re-read\"");
    }
}

/* READY=1 once every worker reached Redis. */
static void on_readiness(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;

    (void)fd;
    (void)what;
    if (atomic_load(&d->fleet.redis_up) < d->n_workers) {
        return;
    }
    if (!d->ready) {
        d->ready = 1;
        sd_notifyf(0, "READY=1\nSTATUS=listening, %d workers, redis up", d->n_workers);
        log_info("main", "msg=\"ready\" workers=%d", d->n_workers);
    }
}

/* Feed the watchdog only while every loop beats. */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    int64_t now = hark_now_ms(), limit = (int64_t)(d->watchdog_usec / 1000);

    (void)fd;
    (void)what;
    for (int i = 0; i < d->n_workers; i++) {
        if (now - atomic_load(&d->workers[i].beat_ms) > limit / 2) {
            log_error("main", "msg=\"worker loop stalled\" worker=%d", i);
            return;
        }
    }
    sd_notify(0, "WATCHDOG=1");
}

static int start_workers(struct daemon *d)
{
    char err[256];

    d->n_workers = d->settings.workers;
    d->fleet.n_workers = d->n_workers;
    d->workers = hark_calloc((size_t)d->n_workers, sizeof(*d->workers));
    if (d->workers == NULL) {
        return -1;
    }
    for (int i = 0; i < d->n_workers; i++) {
        if (hark_worker_init(&d->workers[i], i, &d->settings, &d->fleet, err, sizeof(err)) < 0) {
            log_error("main", "msg=\"cannot start worker\" worker=%d error=\"%s\"", i, err);
            d->n_workers = i + 1;
            return -1;
        }
    }
    for (int i = 0; i < d->n_workers; i++) {
        if (hark_worker_start(&d->workers[i]) < 0) {
            log_error("main", "msg=\"cannot start worker thread\" worker=%d", i);
            return -1;
        }
    }
    return 0;
}

static void stop_workers(struct daemon *d)
{
    for (int i = 0; i < d->n_workers; i++) {
        hark_worker_stop(&d->workers[i]);
    }
    for (int i = 0; i < d->n_workers; i++) {
        hark_worker_join(&d->workers[i]);
    }
    hark_free(d->workers);
    d->workers = NULL;
}

/* Install signal events and timers on the main loop. */
static int setup_main_loop(struct daemon *d, struct event **sigs)
{
    const int stop_signals[] = {SIGTERM, SIGINT};
    const struct timeval every_100ms = {0, 100000};

    d->base = event_base_new();
    if (d->base == NULL) {
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        sigs[i] = evsignal_new(d->base, stop_signals[i], on_signal_stop, d);
        event_add(sigs[i], NULL);
    }
    sigs[2] = evsignal_new(d->base, SIGHUP, on_signal_hup, d);
    event_add(sigs[2], NULL);
    d->readiness = event_new(d->base, -1, EV_PERSIST, on_readiness, d);
    event_add(d->readiness, &every_100ms);
    if (sd_watchdog_enabled(0, &d->watchdog_usec) > 0) {
        struct timeval tv = {(time_t)(d->watchdog_usec / 4 / 1000000),
                             (suseconds_t)(d->watchdog_usec / 4 % 1000000)};
        d->watchdog = event_new(d->base, -1, EV_PERSIST, on_watchdog, d);
        event_add(d->watchdog, &tv);
    }
    return 0;
}

static int load_config(const char *path, struct hark_settings *s)
{
    struct hark_conf_errors errs = {0};
    int rc = hark_settings_load(path, s, &errs);

    for (size_t i = 0; i < errs.n; i++) {
        fprintf(stderr, "harkd: %s\n", errs.lines[i]);
    }
    if (rc < 0 && errs.n == 0) {
        fprintf(stderr, "harkd: %s: invalid configuration\n", path);
    }
    hark_conf_errors_free(&errs);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"test", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'v'},      {"help", no_argument, NULL, 'h'},
        {"keys", no_argument, NULL, 'k'},         {NULL, 0, NULL, 0},
    };
    const char *config = DEFAULT_CONFIG;
    int test_only = 0, opt, rc = 1;
    struct daemon d;
    struct event *sigs[3] = {NULL, NULL, NULL};

    memset(&d, 0, sizeof(d));
    while ((opt = getopt_long(argc, argv, "c:tvh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config = optarg;
            break;
        case 't':
            test_only = 1;
            break;
        case 'v':
            printf("harkd %s\n", HARK_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        case 'k':
            hark_settings_print_keys();
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    hark_alloc_init_json();
    if (hark_registry_check() < 0) {
        fprintf(stderr, "harkd: two adapters share a name\n");
        return 1;
    }
    if (load_config(config, &d.settings) < 0) {
        hark_settings_free(&d.settings);
        return 1;
    }
    if (test_only) {
        printf("harkd: %s: configuration OK (%zu channels)\n", config, d.settings.n_channels);
        hark_settings_free(&d.settings);
        return 0;
    }
    hark_log_threshold = (enum hark_log_level)d.settings.log_level;
    if (d.settings.log_file) {
        hark_log_set_file(d.settings.log_file);
    }
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    if (setup_main_loop(&d, sigs) == 0 && start_workers(&d) == 0) {
        log_info("main", "msg=\"started\" version=%s workers=%d channels=%zu", HARK_VERSION,
                 d.n_workers, d.settings.n_channels);
        event_base_dispatch(d.base);
        rc = 0;
    }
    stop_workers(&d);
    for (int i = 0; i < 3; i++) {
        if (sigs[i]) {
            event_free(sigs[i]);
        }
    }
    if (d.readiness) {
        event_free(d.readiness);
    }
    if (d.watchdog) {
        event_free(d.watchdog);
    }
    if (d.base) {
        event_base_free(d.base);
    }
    hark_settings_free(&d.settings);
    log_info("main", "msg=\"stopped\" rc=%d", rc);
    return rc;
}
