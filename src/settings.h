/*
 * The daemon's settings: the configuration file checked against the core
 * schema and every adapter's schema, with channel instances created.
 */
#ifndef HARK_SETTINGS_H
#define HARK_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "conf_priv.h"
#include "hark/channel.h"
#include "redis_conn.h"

struct hark_settings {
    struct hark_conf conf;

    char **listen;              /* "127.0.0.1:8080", "[::1]:80", "unix:/path" */
    size_t n_listen;
    char *public_url;           /* without trailing slash */
    int workers;                /* resolved: >= 1 */
    int64_t max_body;
    int64_t max_headers;
    int64_t request_timeout_ms;
    int64_t drain_timeout_ms;
    int64_t unanswered_after_ms;
    int64_t sweep_interval_ms;
    int64_t rate_limit;
    int64_t rate_burst;

    struct hark_redis_opts redis;
    const char *prefix;
    int partitions;
    int64_t events_maxlen;
    int batch;
    int pipeline;
    int64_t concat_ttl_ms;

    int log_level;
    const char *log_file;

    struct hark_channel **channels;
    size_t n_channels;
    const struct hark_section *outbox;  /* [outbox], may be NULL */
};

/*
 * Load and check path. On failure every problem found is in errs (each
 * naming file, line and key) and -1 is returned; settings must still be
 * released with hark_settings_free().
 */
int hark_settings_load(const char *path, struct hark_settings *s, struct hark_conf_errors *errs);

void hark_settings_free(struct hark_settings *s);

/* The channel whose webhook path is path, or NULL. */
const struct hark_channel *hark_settings_route(const struct hark_settings *s, const char *path);

/* Print every key of every schema (harkd --keys): the reference in docs. */
void hark_settings_print_keys(void);

#endif
