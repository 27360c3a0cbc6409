/*
 * What pull adapters may ask of the core (include/hark/core.h): storing
 * messages, a small durable state per channel, and the quarantine.
 */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "hark/alloc.h"
#include "hark/core.h"
#include "hark/log.h"
#include "hark/text.h"
#include "worker.h"

/* A state/quarantine command in flight. */
struct op {
    hark_done_fn done;
    hark_value_fn value;
    void *arg;
};

void hark_ingest(struct hark_channel *ch, struct hark_batch *batch, hark_done_fn done, void *arg)
{
    struct hark_worker *w = ch->core->worker;

    hark_store_submit(w->store, batch, done, arg);
}

/* Run the callback of an op that could not be sent, from the loop. */
static void on_unsent(evutil_socket_t fd, short what, void *arg)
{
    struct op *op = arg;

    (void)fd;
    (void)what;
    if (op->value) {
        op->value(op->arg, HARK_STORE_RETRY, NULL);
    } else if (op->done) {
        op->done(op->arg, HARK_STORE_RETRY);
    }
    hark_free(op);
}

static void fail_unsent(struct hark_worker *w, struct op *op)
{
    const struct timeval zero = {0, 0};

    if (event_base_once(w->base, -1, EV_TIMEOUT, on_unsent, op, &zero) < 0) {
        on_unsent(-1, 0, op);
    }
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct op *op = privdata;
    redisReply *rep = reply;
    enum hark_store_result res = HARK_STORE_OK;

    (void)ac;
    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        res = HARK_STORE_RETRY;
    }
    if (op->value) {
        op->value(op->arg, res, res == HARK_STORE_OK && rep->type == REDIS_REPLY_STRING
                                    ? rep->str : NULL);
    } else if (op->done) {
        op->done(op->arg, res);
    }
    hark_free(op);
}

static struct op *op_new(hark_done_fn done, hark_value_fn value, void *arg)
{
    struct op *op = hark_calloc(1, sizeof(*op));

    if (op != NULL) {
        op->done = done;
        op->value = value;
        op->arg = arg;
    }
    return op;
}

static void send_op(struct hark_worker *w, struct op *op, int argc, const char **argv)
{
    size_t lens[16];

    for (int i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    if (hark_redis_command(w->redis, on_reply, op, argc, argv, lens) < 0) {
        fail_unsent(w, op);
    }
}

void hark_state_get(struct hark_channel *ch, const char *field, hark_value_fn done, void *arg)
{
    struct hark_worker *w = ch->core->worker;
    struct op *op = op_new(NULL, done, arg);
    char key[256];
    const char *argv[3] = {"HGET", key, field};

    if (op == NULL) {
        done(arg, HARK_STORE_RETRY, NULL);
        return;
    }
    snprintf(key, sizeof(key), "%s:state:%s", w->settings->prefix, ch->name);
    send_op(w, op, 3, argv);
}

void hark_state_set(struct hark_channel *ch, const char *field, const char *value,
                    hark_done_fn done, void *arg)
{
    struct hark_worker *w = ch->core->worker;
    struct op *op = op_new(done, NULL, arg);
    char key[256];
    const char *argv[4] = {"HSET", key, field, value};

    if (op == NULL) {
        done(arg, HARK_STORE_RETRY);
        return;
    }
    snprintf(key, sizeof(key), "%s:state:%s", w->settings->prefix, ch->name);
    send_op(w, op, 4, argv);
}

void hark_quarantine(struct hark_channel *ch, const char *reason, json_t *record,
                     hark_done_fn done, void *arg)
{
    struct hark_worker *w = ch->core->worker;
    struct op *op = op_new(done, NULL, arg);
    char key[256], at[24];
    char *data = record ? json_dumps(record, JSON_COMPACT) : NULL;
    const char *argv[14] = {"XADD", key, "MAXLEN", "~", "100000", "*", "channel", ch->name,
                            "reason", reason, "at", at, "data", data ? data : "{}"};

    log_warn("ingest", "channel=%s msg=\"quarantined\" reason=\"%s\"", ch->name, reason);
    if (op == NULL) {
        hark_free(data);
        done(arg, HARK_STORE_RETRY);
        return;
    }
    snprintf(key, sizeof(key), "%s:quarantine", w->settings->prefix);
    snprintf(at, sizeof(at), "%lld", (long long)hark_now_ms());
    send_op(w, op, 14, argv);
    hark_free(data);
}
