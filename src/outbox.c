/*
 * The outbox consumer: reads <prefix>:outbox with the consumer group
 * "harkd", hands each entry to the job machine (src/delivery_job.c) and
 * claims entries that a crashed instance left pending.
 *
 * Two Redis connections: `rd` only ever waits in XREADGROUP BLOCK, `cmd`
 * carries every other command, so a blocked read never delays a step.
 * On each (re)connection the group is created if missing (MKSTREAM, from
 * the start of the stream so that nothing written before the first start
 * is lost), then our own pending entries are read again (ID 0) before new
 * ones (ID >). A timer claims entries idle longer than claim_idle
 * (XAUTOCLAIM) and refreshes the idle time of the entries this instance is
 * still working on (XCLAIM ... JUSTID), so a long backoff is not mistaken
 * for a crash.
 */
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "hark/alloc.h"
#include "hark/log.h"
#include "hark/text.h"
#include "delivery_job.h"
#include "outbox.h"

extern const char hark_outbound_lua[];
extern const size_t hark_outbound_lua_len;

#define OB_READ_COUNT 100
#define OB_BLOCK_MS "2000"
#define OB_CLAIM_COUNT "100"
#define OB_HEARTBEAT_MAX 512

const struct hark_conf_key hark_outbox_conf_keys[] = {
    {"enabled", HARK_CT_BOOL, "yes", 0, 0, 0, "consume <prefix>:outbox and deliver replies"},
    {"consumer", HARK_CT_STRING, NULL, 0, 0, 0,
     "consumer name in the group harkd (default: the host name)"},
    {"concurrency", HARK_CT_INT, "16", 0, 1, 1024, "provider calls in flight per provider"},
    {"max_connections", HARK_CT_INT, "64", 0, 1, 4096, "connections kept open in total"},
    {"timeout", HARK_CT_DURATION, "15s", 0, 100, 600000, "time limit of one provider call"},
    {"max_attempts", HARK_CT_INT, "6", 0, 1, 100, "tries before a reply fails"},
    {"backoff_base", HARK_CT_DURATION, "1s", 0, 1, 3600000, "first retry delay (doubles)"},
    {"backoff_max", HARK_CT_DURATION, "5m", 0, 1, 86400000, "longest retry delay"},
    {"claim_idle", HARK_CT_DURATION, "60s", 0, 1000, 86400000,
     "claim entries pending longer than this (crashed instances)"},
    {"max_inflight", HARK_CT_INT, "256", 0, 1, 100000, "entries worked on at once"},
    {"idempotency_ttl", HARK_CT_DURATION, "7d", 0, 60000, 0, "lifetime of <prefix>:idem:<key>"},
    {"events_maxlen", HARK_CT_INT, "1000000", 0, 1000, 0, "MAXLEN ~ of the events streams"},
    {NULL, 0, NULL, 0, 0, 0, NULL},
};

static void outbox_read(struct hark_outbox *o);

uint32_t outbox_random(struct hark_outbox *o)
{
    o->rnd ^= o->rnd << 13;
    o->rnd ^= o->rnd >> 7;
    o->rnd ^= o->rnd << 17;
    return (uint32_t)(o->rnd >> 16);
}

void outbox_job_done(struct hark_outbox *o)
{
    if (!o->reading && o->group_ready) {
        outbox_read(o);
    }
}

/* Start jobs for the entries of an XREADGROUP/XAUTOCLAIM entry list; returns how many. */
static size_t outbox_take_entries(struct hark_outbox *o, const redisReply *list)
{
    size_t n = 0;

    if (list == NULL || list->type != REDIS_REPLY_ARRAY) {
        return 0;
    }
    for (size_t i = 0; i < list->elements; i++) {
        const redisReply *e = list->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING) {
            continue;
        }
        n++;
        if (ob_job_find(o, e->element[0]->str) != NULL) {
            continue;   /* already ours and in flight */
        }
        ob_job_start(o, e->element[0]->str, e->element[1]);
    }
    return n;
}

static void outbox_on_read(redisAsyncContext *c, void *reply, void *arg)
{
    struct hark_outbox *o = arg;
    redisReply *r = reply;
    size_t got = 0;

    (void)c;
    o->reading = 0;
    if (o->stopping) {
        return;
    }
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        log_warn("outbox", "msg=\"XREADGROUP failed\" error=\"%s\"", r ? r->str : "disconnected");
        if (r != NULL && strstr(r->str, "NOGROUP") != NULL) {
            o->group_ready = 0;
        }
        struct timeval tv = {1, 0};
        evtimer_add(o->read_ev, &tv);
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        const redisReply *s = r->element[0];
        if (s->type == REDIS_REPLY_ARRAY && s->elements == 2) {
            got = outbox_take_entries(o, s->element[1]);
        }
    }
    if (o->read_history && got == 0) {
        o->read_history = 0;    /* our pending history is done: new entries now */
    }
    outbox_read(o);
}

static void outbox_on_group(redisAsyncContext *c, void *reply, void *arg)
{
    struct hark_outbox *o = arg;
    redisReply *r = reply;

    (void)c;
    o->reading = 0;
    if (o->stopping) {
        return;
    }
    if (r == NULL || (r->type == REDIS_REPLY_ERROR && strstr(r->str, "BUSYGROUP") == NULL)) {
        log_warn("outbox", "msg=\"cannot create the consumer group\" error=\"%s\"",
                 r ? r->str : "disconnected");
        struct timeval tv = {1, 0};
        evtimer_add(o->read_ev, &tv);
        return;
    }
    o->group_ready = 1;
    o->read_history = 1;
    outbox_read(o);
}

/*
 * Issue the next read on rd: create the group first when needed; read
 * only while there is room for more jobs.
 */
static void outbox_read(struct hark_outbox *o)
{
    char count[16];

    if (o->stopping || o->reading || !hark_redis_connected(o->rd)) {
        return;
    }
    if (!o->group_ready) {
        const char *argv[6] = {"XGROUP", "CREATE", o->stream_key, "harkd", "0", "MKSTREAM"};
        if (hark_redis_command(o->rd, outbox_on_group, o, 6, argv, NULL) == 0) {
            o->reading = 1;     /* until the group answer starts the read */
        }
        return;
    }
    if ((int)o->n_jobs >= o->cfg.max_inflight) {
        return;     /* outbox_job_done reads again */
    }
    snprintf(count, sizeof(count), "%d",
             o->cfg.max_inflight - (int)o->n_jobs < OB_READ_COUNT
                 ? o->cfg.max_inflight - (int)o->n_jobs : OB_READ_COUNT);
    {
        const char *argv[10] = {"XREADGROUP", "GROUP", "harkd", o->cfg.consumer, "COUNT", count,
                                "BLOCK", OB_BLOCK_MS, "STREAMS", o->stream_key};
        const char *hist[10] = {"XREADGROUP", "GROUP", "harkd", o->cfg.consumer, "COUNT", count,
                                "STREAMS", o->stream_key, "0", NULL};
        int rc;
        if (o->read_history) {
            rc = hark_redis_command(o->rd, outbox_on_read, o, 9, hist, NULL);
        } else {
            const char *full[11];
            memcpy(full, argv, sizeof(argv));
            full[10] = ">";
            rc = hark_redis_command(o->rd, outbox_on_read, o, 11, full, NULL);
        }
        if (rc == 0) {
            o->reading = 1;
        }
    }
}

static void outbox_on_read_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    outbox_read(arg);
}

static void outbox_on_rd_state(void *arg, int connected)
{
    struct hark_outbox *o = arg;

    if (connected && !o->stopping) {
        o->group_ready = 0;
        o->reading = 0;
        outbox_read(o);
    }
}

/* For fire-and-forget commands (heartbeat, acks of deleted entries). */
static void outbox_on_ignored(redisAsyncContext *c, void *reply, void *arg)
{
    (void)c;
    (void)reply;
    (void)arg;
}

static void outbox_on_claimed(redisAsyncContext *c, void *reply, void *arg)
{
    struct hark_outbox *o = arg;
    redisReply *r = reply;

    (void)c;
    if (o->stopping || r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        return;
    }
    if (outbox_take_entries(o, r->element[1]) > 0) {
        log_info("outbox", "msg=\"claimed entries left pending by another consumer\" count=%zu",
                 r->element[1]->elements);
    }
    /* Entries deleted from the stream while pending: nothing to deliver, acknowledge. */
    if (r->elements >= 3 && r->element[2]->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->element[2]->elements; i++) {
            const char *argv[4] = {"XACK", o->stream_key, "harkd", r->element[2]->element[i]->str};
            if (r->element[2]->element[i]->type == REDIS_REPLY_STRING) {
                hark_redis_command(o->cmd, outbox_on_ignored, NULL, 4, argv, NULL);
            }
        }
    }
}

/* Claim what others left behind; refresh the idle time of what we hold. */
static void outbox_on_claim_timer(evutil_socket_t fd, short what, void *arg)
{
    struct hark_outbox *o = arg;
    char idle[32];
    const char *ids[OB_HEARTBEAT_MAX];
    const char *argv[OB_HEARTBEAT_MAX + 7];
    size_t n;

    (void)fd;
    (void)what;
    if (o->stopping || !o->group_ready) {
        return;
    }
    n = ob_job_ids(o, ids, OB_HEARTBEAT_MAX);
    if (n > 0) {
        argv[0] = "XCLAIM";
        argv[1] = o->stream_key;
        argv[2] = "harkd";
        argv[3] = o->cfg.consumer;
        argv[4] = "0";
        memcpy(&argv[5], ids, n * sizeof(ids[0]));
        argv[5 + n] = "JUSTID";
        hark_redis_command(o->cmd, outbox_on_ignored, NULL, (int)(n + 6), argv, NULL);
    }
    if ((int)o->n_jobs < o->cfg.max_inflight) {
        const char *claim[8] = {"XAUTOCLAIM", o->stream_key, "harkd", o->cfg.consumer, idle, "0-0",
                                "COUNT", OB_CLAIM_COUNT};
        snprintf(idle, sizeof(idle), "%lld", (long long)o->cfg.claim_idle_ms);
        hark_redis_command(o->cmd, outbox_on_claimed, o, 8, claim, NULL);
    }
}

/* Read the [outbox] section into cfg. 0 or -1. */
static int outbox_config(struct hark_outbox *o, const struct hark_section *conf)
{
    const char *consumer = hark_section_get(conf, "consumer");
    char host[256];

    if (consumer == NULL || consumer[0] == '\0') {
        if (gethostname(host, sizeof(host)) != 0) {
            snprintf(host, sizeof(host), "harkd");
        }
        host[sizeof(host) - 1] = '\0';
        consumer = host;
    }
    o->cfg.consumer = hark_strdup(consumer);
    o->cfg.per_provider = (int)hark_section_int(conf, "concurrency", 16);
    o->cfg.max_connections = (int)hark_section_int(conf, "max_connections", 64);
    o->cfg.timeout_ms = hark_section_duration_ms(conf, "timeout", 15000);
    o->cfg.max_attempts = (int)hark_section_int(conf, "max_attempts", 6);
    o->cfg.backoff_base_ms = hark_section_duration_ms(conf, "backoff_base", 1000);
    o->cfg.backoff_max_ms = hark_section_duration_ms(conf, "backoff_max", 300000);
    o->cfg.claim_idle_ms = hark_section_duration_ms(conf, "claim_idle", 60000);
    o->cfg.max_inflight = (int)hark_section_int(conf, "max_inflight", 256);
    o->cfg.idem_ttl_ms = hark_section_duration_ms(conf, "idempotency_ttl", 7LL * 86400000);
    o->cfg.events_maxlen = (long long)hark_section_int(conf, "events_maxlen", 1000000);
    if (o->cfg.max_attempts < 1) {
        o->cfg.max_attempts = 1;
    }
    if (o->cfg.max_inflight < 1) {
        o->cfg.max_inflight = 1;
    }
    return o->cfg.consumer ? 0 : -1;
}

struct hark_outbox *hark_outbox_start(struct event_base *base, const struct hark_redis_opts *redis,
                                      const char *prefix, int partitions,
                                      struct hark_channel *const *channels, size_t n_channels,
                                      const struct hark_section *conf)
{
    struct hark_outbox *o;
    struct hark_delivery_opts dopts;
    struct timeval tv;

    if (!hark_section_bool(conf, "enabled", 1)) {
        log_info("outbox", "msg=\"outbox disabled by configuration\"");
        return NULL;
    }
    o = hark_calloc(1, sizeof(*o));
    if (o == NULL) {
        return NULL;
    }
    o->base = base;
    o->partitions = partitions > 0 ? partitions : 1;
    o->channels = channels;
    o->n_channels = n_channels;
    o->rnd = (uint64_t)hark_now_ms() * 6364136223846793005ULL + (uint64_t)getpid() + 1;
    o->prefix = hark_strdup(prefix);
    o->stream_key = hark_asprintf("%s:outbox", prefix);
    o->dead_key = hark_asprintf("%s:outbox:dead", prefix);
    if (o->prefix == NULL || o->stream_key == NULL || o->dead_key == NULL ||
        outbox_config(o, conf) < 0) {
        goto fail;
    }
    hark_script_init(&o->script, hark_outbound_lua, hark_outbound_lua_len);
    memset(&dopts, 0, sizeof(dopts));
    dopts.per_provider = o->cfg.per_provider;
    dopts.max_connections = o->cfg.max_connections;
    dopts.timeout_ms = o->cfg.timeout_ms;
    o->dl = hark_delivery_new(base, &dopts);
    o->read_ev = evtimer_new(base, outbox_on_read_timer, o);
    o->claim_ev = event_new(base, -1, EV_PERSIST, outbox_on_claim_timer, o);
    if (o->dl == NULL || o->read_ev == NULL || o->claim_ev == NULL) {
        goto fail;
    }
    o->cmd = hark_redis_new(base, redis, "outbox", NULL, NULL);
    o->rd = hark_redis_new(base, redis, "outbox-read", outbox_on_rd_state, o);
    if (o->cmd == NULL || o->rd == NULL) {
        goto fail;
    }
    /* Claim and heartbeat at a third of claim_idle: a live job never looks idle. */
    tv.tv_sec = (time_t)(o->cfg.claim_idle_ms / 3000);
    tv.tv_usec = (suseconds_t)((o->cfg.claim_idle_ms / 3 % 1000) * 1000);
    event_add(o->claim_ev, &tv);
    log_info("outbox", "msg=\"consuming replies\" stream=%s consumer=%s", o->stream_key,
             o->cfg.consumer);
    return o;
fail:
    log_error("outbox", "msg=\"cannot start the outbox\"");
    hark_outbox_stop(o);
    return NULL;
}

void hark_outbox_stop(struct hark_outbox *o)
{
    if (o == NULL) {
        return;
    }
    o->stopping = 1;
    /* Connections first: their pending callbacks see `stopping` and touch nothing. */
    if (o->rd) {
        hark_redis_free(o->rd);
    }
    if (o->cmd) {
        hark_redis_free(o->cmd);
    }
    hark_delivery_free(o->dl);
    ob_job_free_all(o);
    if (o->read_ev) {
        event_free(o->read_ev);
    }
    if (o->claim_ev) {
        event_free(o->claim_ev);
    }
    hark_free(o->cfg.consumer);
    hark_free(o->prefix);
    hark_free(o->stream_key);
    hark_free(o->dead_key);
    hark_free(o);
}
