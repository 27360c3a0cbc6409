/*
 * The store: batching, pipelining and the argument layout of ingest.lua.
 */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "hark/alloc.h"
#include "hark/log.h"
#include "hark/text.h"
#include "store.h"

#define RECORD_FIELDS 20
#define CALL_HEADER 6           /* numkeys, events key, base, maxlen, now, n */

extern const char hark_ingest_lua[];
extern const size_t hark_ingest_lua_len;

/* What a submit waits for. */
struct waiter {
    size_t remaining;
    enum hark_store_result result;
    hark_done_fn done;
    void *arg;
};

/* One record of the script call, with the strings its arguments point to. */
struct record {
    struct record *next;
    struct hark_msg *msg;
    struct waiter *waiter;
    const char *op;
    char id[HARK_MSG_ID_LEN + 1];
    char conv[HARK_MSG_ID_LEN + 1];
    char contact[HARK_MSG_ID_LEN + 1];
    char ownref[HARK_MSG_ID_LEN + 1];
    char ts[24];
    char concat[48];
    char *json;
    char *idents;
    char *refs;
    const char *customer;
    const char *ours;
};

struct partition {
    char base[96];              /* "<prefix>:{P}:" */
    char events[104];           /* "<prefix>:{P}:events" */
    struct record *head, *tail;
    size_t queued;
    int inflight;
};

struct hark_store {
    struct event_base *base;
    struct hark_redis *redis;
    struct hark_script script;
    struct hark_store_opts opts;
    char maxlen[24];
    struct partition *parts;
    size_t inflight_records;
};

/* A script call in flight. */
struct call {
    struct hark_store *st;
    int partition;
    struct record *records;
    size_t n;
    const char **argv;
    size_t *lens;
    char now[24];
    char count[24];
};

int hark_store_partition(const char *kind, const char *value, int partitions)
{
    uint32_t h = 2166136261u;
    const char *parts[3] = {kind, ":", value};

    if (partitions <= 1) {
        return 0;
    }
    for (int i = 0; i < 3; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++) {
            h = (h ^ *p) * 16777619u;
        }
    }
    return (int)(h % (uint32_t)partitions);
}

struct hark_store *hark_store_new(struct event_base *base, struct hark_redis *redis,
                                  const struct hark_store_opts *opts)
{
    struct hark_store *st = hark_calloc(1, sizeof(*st));

    if (st == NULL) {
        return NULL;
    }
    st->base = base;
    st->redis = redis;
    st->opts = *opts;
    if (st->opts.max_batch == 0) {
        st->opts.max_batch = 64;
    }
    if (st->opts.max_inflight == 0) {
        st->opts.max_inflight = 4;
    }
    if (st->opts.partitions < 1) {
        st->opts.partitions = 1;
    }
    snprintf(st->maxlen, sizeof(st->maxlen), "%lld", (long long)opts->events_maxlen);
    hark_script_init(&st->script, hark_ingest_lua, hark_ingest_lua_len);
    hark_redis_preload(redis, &st->script);
    st->parts = hark_calloc((size_t)st->opts.partitions, sizeof(*st->parts));
    if (st->parts == NULL) {
        hark_free(st);
        return NULL;
    }
    for (int p = 0; p < st->opts.partitions; p++) {
        snprintf(st->parts[p].base, sizeof(st->parts[p].base), "%s:{%d}:", opts->prefix, p);
        snprintf(st->parts[p].events, sizeof(st->parts[p].events), "%s:{%d}:events",
                 opts->prefix, p);
    }
    return st;
}

size_t hark_store_inflight(const struct hark_store *st)
{
    return st->inflight_records;
}

static void record_free(struct record *r)
{
    hark_msg_free(r->msg);
    hark_free(r->json);
    hark_free(r->idents);
    hark_free(r->refs);
    hark_free(r);
}

/* Account one record's outcome; the waiter's callback runs after the last. */
static void record_finish(struct hark_store *st, struct record *r, enum hark_store_result res)
{
    struct waiter *w = r->waiter;

    st->inflight_records--;
    if (res > w->result) {
        w->result = res;
    }
    if (--w->remaining == 0) {
        w->done(w->arg, w->result);
        hark_free(w);
    }
    record_free(r);
}

/* "a\37b\36c\37d": kinds and values of the identities. */
static char *pack_idents(const struct hark_msg *m)
{
    size_t len = 1;
    char *out, *p;

    for (size_t i = 0; i < m->n_idents; i++) {
        len += strlen(m->idents[i].kind) + strlen(m->idents[i].value) + 2;
    }
    out = p = hark_malloc(len);
    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < m->n_idents; i++) {
        size_t k = strlen(m->idents[i].kind), v = strlen(m->idents[i].value);
        if (i > 0) {
            *p++ = '\36';
        }
        memcpy(p, m->idents[i].kind, k);
        p += k;
        *p++ = '\37';
        memcpy(p, m->idents[i].value, v);
        p += v;
    }
    *p = '\0';
    return out;
}

/* Hashed references, "\36"-separated. */
static char *pack_refs(const struct hark_msg *m)
{
    char *out = hark_malloc(m->n_thread_refs * (HARK_MSG_ID_LEN + 1) + 1), *p = out;

    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < m->n_thread_refs; i++) {
        if (i > 0) {
            *p++ = '\36';
        }
        hark_derive_id("ref", "", m->thread_refs[i], p);
        p += HARK_MSG_ID_LEN;
    }
    *p = '\0';
    return out;
}

/* The update document of a status/edit/remove record. */
static char *update_json(const struct hark_msg *m)
{
    json_t *o = json_object();
    char *out = NULL;
    int64_t at = m->sent_at ? m->sent_at : m->received_at;

    if (o != NULL &&
        json_object_set_new(o, "at", json_integer(at)) == 0 &&
        json_object_set_new(o, "status", json_string(m->status ? m->status : "")) == 0 &&
        (m->error == NULL || json_object_set_new(o, "error", json_string(m->error)) == 0) &&
        json_object_set_new(o, "text", json_string(m->text ? m->text : "")) == 0 &&
        json_object_set_new(o, "pmid", json_string(m->provider_message_id)) == 0 &&
        json_object_set_new(o, "channel", json_string(m->channel)) == 0 &&
        json_object_set_new(o, "account", json_string(m->account)) == 0) {
        out = json_dumps(o, JSON_COMPACT);
    }
    json_decref(o);
    return out;
}

/*
 * Turn a message into a record: id, JSON, derived ids. Returns NULL with
 * *why set when the message is invalid or memory ran out.
 */
static struct record *record_new(struct hark_msg *m, int64_t now, int64_t concat_ttl_ms,
                                 const char **why)
{
    struct record *r;
    const char *kind_ops[] = {"m", "s", "e", "r"};
    char key[512];

    *why = hark_msg_validate(m);
    if (*why != NULL) {
        return NULL;
    }
    r = hark_calloc(1, sizeof(*r));
    if (r == NULL) {
        *why = "out of memory";
        return NULL;
    }
    r->msg = m;
    if (m->received_at == 0) {
        m->received_at = now;
    }
    r->op = kind_ops[m->kind];
    hark_msg_id(m, r->id);
    if (m->kind == HARK_KIND_MESSAGE && m->concat_total > 1) {
        /* A part: filed under the whole message's id once every part is in. */
        char *whole = hark_asprintf("concat:%s", m->concat_ref);
        if (whole == NULL || hark_strset(&m->provider_message_id, whole) < 0) {
            hark_free(whole);
            hark_free(r);
            *why = "out of memory";
            return NULL;
        }
        hark_free(whole);
        hark_msg_id(m, r->id);
        r->op = "p";
        snprintf(r->concat, sizeof(r->concat), "%d/%d/%lld", m->concat_part, m->concat_total,
                 (long long)concat_ttl_ms);
    }
    snprintf(r->ts, sizeof(r->ts), "%lld", (long long)(m->sent_at ? m->sent_at : m->received_at));
    if (m->kind == HARK_KIND_MESSAGE) {
        r->json = hark_msg_json_text(m, r->id);
        hark_derive_id("conv", m->account, m->thread_key, r->conv);
        snprintf(key, sizeof(key), "%s:%s", m->idents[0].kind, m->idents[0].value);
        hark_derive_id("contact", "", key, r->contact);
    } else {
        r->json = update_json(m);
        /* A watermark status names a conversation, not a message (see ingest.lua). */
        if (m->thread_key != NULL) {
            hark_derive_id("conv", m->account, m->thread_key, r->conv);
        }
    }
    if (m->own_ref != NULL) {
        hark_derive_id("ref", "", m->own_ref, r->ownref);
    }
    r->idents = pack_idents(m);
    r->refs = pack_refs(m);
    if (m->direction == HARK_DIR_INBOUND) {
        r->customer = m->from.id;
        r->ours = m->to.id;
    } else {
        r->customer = m->to.id;
        r->ours = m->from.id;
    }
    if (r->json == NULL || r->idents == NULL || r->refs == NULL) {
        r->msg = NULL;
        record_free(r);
        *why = "out of memory";
        return NULL;
    }
    return r;
}

static void set_arg(struct call *c, size_t i, const char *s)
{
    c->argv[i] = s ? s : "";
    c->lens[i] = s ? strlen(s) : 0;
}

static void flush_partition(struct hark_store *st, int p);

static void call_free(struct call *c)
{
    hark_free(c->argv);
    hark_free(c->lens);
    hark_free(c);
}

/* The script's answer: one word per record, or an error for all. */
static void on_ingest_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct call *c = privdata;
    struct hark_store *st = c->st;
    redisReply *rep = reply;
    enum hark_store_result res = HARK_STORE_OK;
    struct record *r, *next;

    (void)ac;
    if (rep == NULL) {
        res = HARK_STORE_RETRY;
    } else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != c->n) {
        log_error("store", "msg=\"ingest script failed\" error=\"%s\"",
                  rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
        res = HARK_STORE_RETRY;
    }
    st->parts[c->partition].inflight--;
    for (r = c->records; r; r = next) {
        next = r->next;
        record_finish(st, r, res);
    }
    c->records = NULL;
    if (st->redis != NULL) {
        flush_partition(st, c->partition);
    }
    call_free(c);
}

/* Fail records in a deferred callback, never from inside submit. */
struct deferred {
    struct hark_store *st;
    struct record *records;
    enum hark_store_result result;
};

static void on_deferred(evutil_socket_t fd, short what, void *arg)
{
    struct deferred *d = arg;
    struct record *r, *next;

    (void)fd;
    (void)what;
    for (r = d->records; r; r = next) {
        next = r->next;
        record_finish(d->st, r, d->result);
    }
    hark_free(d);
}

static void fail_later(struct hark_store *st, struct record *records, enum hark_store_result res)
{
    struct deferred *d = hark_malloc(sizeof(*d));
    const struct timeval zero = {0, 0};

    if (d == NULL || event_base_once(st->base, -1, EV_TIMEOUT, on_deferred, d, &zero) < 0) {
        /* Last resort: answer now rather than never. */
        struct deferred now = {st, records, res};
        hark_free(d);
        on_deferred(-1, 0, &now);
        return;
    }
    d->st = st;
    d->records = records;
    d->result = res;
}

/* Send up to max_batch queued records of partition p as one script call. */
static int send_batch(struct hark_store *st, int p)
{
    struct partition *part = &st->parts[p];
    struct call *c = hark_calloc(1, sizeof(*c));
    size_t n = part->queued < st->opts.max_batch ? part->queued : st->opts.max_batch;
    size_t argc = CALL_HEADER + n * RECORD_FIELDS, i = 0;
    struct record *r, *last = NULL;

    if (c == NULL || (c->argv = hark_malloc(argc * sizeof(*c->argv))) == NULL ||
        (c->lens = hark_malloc(argc * sizeof(*c->lens))) == NULL) {
        if (c) {
            call_free(c);
        }
        /* No memory for the call: fail the whole queue rather than spin. */
        fail_later(st, part->head, HARK_STORE_RETRY);
        part->head = part->tail = NULL;
        part->queued = 0;
        return -1;
    }
    c->st = st;
    c->partition = p;
    c->n = n;
    c->records = part->head;
    snprintf(c->now, sizeof(c->now), "%lld", (long long)hark_now_ms());
    snprintf(c->count, sizeof(c->count), "%zu", n);
    set_arg(c, i++, "1");
    set_arg(c, i++, part->events);
    set_arg(c, i++, part->base);
    set_arg(c, i++, st->maxlen);
    set_arg(c, i++, c->now);
    set_arg(c, i++, c->count);
    r = part->head;
    for (size_t k = 0; k < n; k++, last = r, r = r->next) {
        const struct hark_msg *m = r->msg;
        set_arg(c, i++, r->op);
        set_arg(c, i++, r->id);
        set_arg(c, i++, r->json);
        set_arg(c, i++, r->conv);
        set_arg(c, i++, m->kind == HARK_KIND_MESSAGE ? m->thread_key
                        : m->extra ? hark_json_str(m->extra, "event_id") : NULL);
        set_arg(c, i++, m->channel);
        set_arg(c, i++, m->account);
        set_arg(c, i++, m->direction == HARK_DIR_INBOUND ? "inbound" : "outbound");
        set_arg(c, i++, r->idents);
        set_arg(c, i++, r->contact);
        set_arg(c, i++, m->direction == HARK_DIR_INBOUND ? m->from.name : m->to.name);
        set_arg(c, i++, r->refs);
        set_arg(c, i++, r->ownref);
        set_arg(c, i++, r->customer);
        set_arg(c, i++, r->ours);
        set_arg(c, i++, m->provider_message_id);
        set_arg(c, i++, r->ts);
        set_arg(c, i++, m->subject);
        set_arg(c, i++, r->concat);
        set_arg(c, i++, m->own_ref);
    }
    /* Detach the records from the queue; the call owns them now. */
    part->head = r;
    if (r == NULL) {
        part->tail = NULL;
    }
    if (last != NULL) {         /* n >= 1: callers only flush a non-empty queue */
        last->next = NULL;
    }
    part->queued -= n;
    if (st->redis == NULL ||
        hark_redis_script(st->redis, &st->script, on_ingest_reply, c, (int)argc, c->argv,
                          c->lens) < 0) {
        fail_later(st, c->records, HARK_STORE_RETRY);
        c->records = NULL;
        call_free(c);
        return -1;
    }
    part->inflight++;
    return 0;
}

static void flush_partition(struct hark_store *st, int p)
{
    struct partition *part = &st->parts[p];

    /* A failed send consumes its records (answered RETRY), so this ends. */
    while (part->queued > 0 && part->inflight < st->opts.max_inflight) {
        send_batch(st, p);
    }
}

void hark_store_submit(struct hark_store *st, struct hark_batch *batch,
                       hark_done_fn done, void *arg)
{
    struct waiter *w = hark_calloc(1, sizeof(*w));
    struct record *ready = NULL, **tail = &ready;
    int64_t now = hark_now_ms();
    const char *why = NULL;
    size_t i;

    if (w == NULL) {
        hark_batch_clear(batch);
        done(arg, HARK_STORE_RETRY);    /* no memory even to defer: answer now */
        return;
    }
    w->done = done;
    w->arg = arg;
    /* Validate and prepare every record first: all or nothing. */
    for (i = 0; i < batch->n; i++) {
        struct record *r = record_new(batch->msgs[i], now, st->opts.concat_ttl_ms, &why);
        if (r == NULL) {
            break;
        }
        batch->msgs[i] = NULL;
        r->waiter = w;
        *tail = r;
        tail = &r->next;
        w->remaining++;
    }
    if (i < batch->n) {
        struct record *r, *next;
        log_warn("store", "msg=\"record refused\" reason=\"%s\"", why);
        for (r = ready; r; r = next) {
            next = r->next;
            r->waiter = NULL;
            record_free(r);
        }
        hark_batch_clear(batch);
        w->remaining = 1;
        st->inflight_records++;
        struct record *stub = hark_calloc(1, sizeof(*stub));
        if (stub != NULL) {
            stub->waiter = w;
            fail_later(st, stub, HARK_STORE_ERROR);
        }
        return;
    }
    hark_batch_clear(batch);
    if (ready == NULL) {
        struct record *stub = hark_calloc(1, sizeof(*stub));
        w->remaining = 1;
        st->inflight_records++;
        if (stub != NULL) {
            stub->waiter = w;
            fail_later(st, stub, HARK_STORE_OK);
        }
        return;
    }
    st->inflight_records += w->remaining;
    for (struct record *r = ready, *next; r; r = next) {
        int p = r->msg->n_idents ? hark_store_partition(r->msg->idents[0].kind,
                                                        r->msg->idents[0].value,
                                                        st->opts.partitions)
                                 : 0;
        struct partition *part = &st->parts[p];
        next = r->next;
        r->next = NULL;
        if (part->tail) {
            part->tail->next = r;
        } else {
            part->head = r;
        }
        part->tail = r;
        part->queued++;
    }
    for (int p = 0; p < st->opts.partitions; p++) {
        if (st->parts[p].queued > 0 && st->redis != NULL) {
            flush_partition(st, p);
        }
    }
}

/* The sweep's answer: {filed, reported}. Only logged. */
static void on_sweep_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct call *c = privdata;
    redisReply *rep = reply;

    (void)ac;
    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        (rep->element[0]->integer > 0 || rep->element[1]->integer > 0)) {
        log_info("store", "partition=%d msg=\"sweep\" incomplete_sms_filed=%lld unanswered_reported=%lld",
                 c->partition, rep->element[0]->integer, rep->element[1]->integer);
    } else if (rep != NULL && rep->type == REDIS_REPLY_ERROR) {
        log_error("store", "msg=\"sweep failed\" error=\"%s\"", rep->str);
    }
    call_free(c);
}

void hark_store_sweep(struct hark_store *st, int64_t unanswered_after_ms)
{
    int64_t now = hark_now_ms();

    if (st->redis == NULL || !hark_redis_connected(st->redis)) {
        return;
    }
    for (int p = 0; p < st->opts.partitions; p++) {
        struct call *c = hark_calloc(1, sizeof(*c));
        char cutoff[24];
        size_t i = 0;

        if (c == NULL || (c->argv = hark_calloc(8, sizeof(*c->argv))) == NULL ||
            (c->lens = hark_calloc(8, sizeof(*c->lens))) == NULL) {
            if (c) {
                call_free(c);
            }
            return;
        }
        c->st = st;
        c->partition = p;
        snprintf(c->now, sizeof(c->now), "%lld", (long long)now);
        /* A disabled report (0) uses a cutoff no conversation can reach. */
        snprintf(cutoff, sizeof(cutoff), "%lld",
                 unanswered_after_ms > 0 ? (long long)(now - unanswered_after_ms) : -1LL);
        snprintf(c->count, sizeof(c->count), "%s", cutoff);
        set_arg(c, i++, "1");
        set_arg(c, i++, st->parts[p].events);
        set_arg(c, i++, st->parts[p].base);
        set_arg(c, i++, st->maxlen);
        set_arg(c, i++, c->now);
        set_arg(c, i++, "sweep");
        set_arg(c, i++, c->count);
        set_arg(c, i++, "100");
        if (hark_redis_script(st->redis, &st->script, on_sweep_reply, c, (int)i, c->argv,
                              c->lens) < 0) {
            call_free(c);
        }
    }
}

void hark_store_detach(struct hark_store *st)
{
    if (st != NULL) {
        st->redis = NULL;
    }
}

void hark_store_free(struct hark_store *st)
{
    if (st == NULL) {
        return;
    }
    for (int p = 0; p < st->opts.partitions; p++) {
        struct record *r, *next;
        for (r = st->parts[p].head; r; r = next) {
            next = r->next;
            record_finish(st, r, HARK_STORE_RETRY);
        }
    }
    hark_free(st->parts);
    hark_free(st);
}
