/*
 * A reconnecting asynchronous Redis connection on one event base.
 *
 * State: DOWN → CONNECTING → HANDSHAKE (AUTH, SELECT, SCRIPT LOAD) → UP.
 * Any failure goes back to DOWN and arms a reconnect timer with
 * exponential backoff and jitter (100 ms doubling to 5 s).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/hiredis.h>

#include "hark/alloc.h"
#include "hark/crypto.h"
#include "hark/codec.h"
#include "hark/log.h"
#include "redis_conn.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MAX_PRELOAD 4

enum conn_state {
    CONN_DOWN,
    CONN_CONNECTING,
    CONN_HANDSHAKE,
    CONN_UP,
};

struct hark_redis {
    struct event_base *base;
    const struct hark_redis_opts *opts;
    char name[32];
    redisAsyncContext *ac;
    enum conn_state state;
    struct event *retry_timer;
    int backoff_ms;
    int closing;
    size_t pending;
    size_t handshake_left;
    const struct hark_script *preload[MAX_PRELOAD];
    size_t n_preload;
    hark_redis_state_fn on_state;
    void *arg;
};

/* A script call in flight: kept so that NOSCRIPT can be answered by EVAL. */
struct script_call {
    struct hark_redis *r;
    const struct hark_script *script;
    redisCallbackFn *fn;
    void *privdata;
    int argc;
    const char **argv;
    const size_t *argvlen;
    int retried;
};

static void conn_connect(struct hark_redis *r);

void hark_script_init(struct hark_script *s, const char *body, size_t len)
{
    unsigned char digest[HARK_DIGEST_MAX];

    s->body = body;
    s->len = len;
    hark_digest(HARK_SHA1, body, len, digest);
    hark_hex_encode(digest, 20, s->sha1, sizeof(s->sha1));
}

/* Resolve host once, at startup, to a numeric address (no DNS on the loop). */
static int resolve_host(const char *host, char **out, char *err, size_t err_len)
{
    struct addrinfo hints = {0}, *res = NULL;
    char buf[INET6_ADDRSTRLEN];
    int rc;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, err_len, "cannot resolve redis host \"%s\": %s", host, gai_strerror(rc));
        return -1;
    }
    if (res->ai_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, buf, sizeof(buf));
    } else {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, buf, sizeof(buf));
    }
    freeaddrinfo(res);
    *out = hark_strdup(buf);
    return *out ? 0 : -1;
}

/* Parse a decimal in [lo, hi] from s[0..n). */
static int parse_int_range(const char *s, size_t n, long lo, long hi, int *out)
{
    long v = 0;

    if (n == 0 || n > 9) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

int hark_redis_opts_parse(const char *url, struct hark_redis_opts *o, char *err, size_t err_len)
{
    const char *p, *at, *slash, *colon, *hostend;
    char host[256];

    memset(o, 0, sizeof(*o));
    o->port = 6379;
    if (strncmp(url, "unix:", 5) == 0) {
        const char *q = strchr(url + 5, '?');
        size_t len = q ? (size_t)(q - url - 5) : strlen(url + 5);
        if (len == 0 || url[5] != '/') {
            snprintf(err, err_len, "unix socket URL needs an absolute path: unix:/run/redis/redis.sock");
            return -1;
        }
        o->unix_path = hark_strndup(url + 5, len);
        if (q && (strncmp(q, "?db=", 4) != 0 ||
                  parse_int_range(q + 4, strlen(q + 4), 0, 1 << 20, &o->db) < 0)) {
            snprintf(err, err_len, "unix socket URL accepts only ?db=N");
            return -1;
        }
        return o->unix_path ? 0 : -1;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, err_len, "redis url must start with redis:// or unix:/");
        return -1;
    }
    p = url + 8;
    slash = strchr(p, '/');
    at = memchr(p, '@', slash ? (size_t)(slash - p) : strlen(p));
    if (at) {
        const char *pw = memchr(p, ':', (size_t)(at - p));
        if (pw) {
            o->url_password = hark_strndup(pw + 1, (size_t)(at - pw - 1));
        }
        p = at + 1;
    }
    hostend = slash ? slash : p + strlen(p);
    colon = memchr(p, ':', (size_t)(hostend - p));
    if ((size_t)((colon ? colon : hostend) - p) >= sizeof(host) || (colon ? colon : hostend) == p) {
        snprintf(err, err_len, "redis url has no host");
        return -1;
    }
    memcpy(host, p, (size_t)((colon ? colon : hostend) - p));
    host[(colon ? colon : hostend) - p] = '\0';
    if (colon && parse_int_range(colon + 1, (size_t)(hostend - colon - 1), 1, 65535, &o->port) < 0) {
        snprintf(err, err_len, "redis url has an invalid port");
        return -1;
    }
    if (slash && slash[1] != '\0' &&
        parse_int_range(slash + 1, strlen(slash + 1), 0, 1 << 20, &o->db) < 0) {
        snprintf(err, err_len, "redis url has an invalid database number");
        return -1;
    }
    return resolve_host(host, &o->host, err, err_len);
}

void hark_redis_opts_clear(struct hark_redis_opts *o)
{
    hark_free(o->host);
    hark_free(o->unix_path);
    if (o->url_password) {
        explicit_bzero(o->url_password, strlen(o->url_password));
    }
    hark_free(o->url_password);
    memset(o, 0, sizeof(*o));
}

static void set_state(struct hark_redis *r, enum conn_state state)
{
    static const char *const names[] = {"down", "connecting", "handshake", "up"};
    int was_up = r->state == CONN_UP;

    if (r->state == state) {
        return;
    }
    log_debug("redis", "conn=%s state=%s->%s", r->name, names[r->state], names[state]);
    r->state = state;
    if (state == CONN_UP) {
        r->backoff_ms = 0;
        log_info("redis", "conn=%s msg=\"connected\"", r->name);
        if (r->on_state) {
            r->on_state(r->arg, 1);
        }
    } else if (was_up && r->on_state) {
        r->on_state(r->arg, 0);
    }
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_connect(arg);
}

/* Arm the reconnect timer: full jitter over an exponential window. */
static void schedule_retry(struct hark_redis *r)
{
    struct timeval tv;
    int window;

    if (r->closing) {
        return;
    }
    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (r->backoff_ms > BACKOFF_MAX_MS) {
        r->backoff_ms = BACKOFF_MAX_MS;
    }
    window = r->backoff_ms / 2 + (int)(random() % (r->backoff_ms / 2 + 1));
    tv.tv_sec = window / 1000;
    tv.tv_usec = (window % 1000) * 1000;
    evtimer_add(r->retry_timer, &tv);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct hark_redis *r = ac->data;

    (void)status;
    if (r == NULL) {
        return;
    }
    if (!r->closing) {
        log_warn("redis", "conn=%s msg=\"disconnected\" error=\"%s\"", r->name,
                 ac->errstr[0] ? ac->errstr : "closed");
    }
    r->ac = NULL;
    set_state(r, CONN_DOWN);
    schedule_retry(r);
}

/* One handshake reply (AUTH, SELECT, SCRIPT LOAD): all must succeed. */
static void on_handshake_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct hark_redis *r = privdata;
    redisReply *rep = reply;

    r->pending--;
    if (rep == NULL || r->state != CONN_HANDSHAKE) {
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        log_error("redis", "conn=%s msg=\"handshake refused\" error=\"%s\"", r->name, rep->str);
        redisAsyncDisconnect(ac);
        return;
    }
    if (--r->handshake_left == 0) {
        set_state(r, CONN_UP);
    }
}

static int handshake_send(struct hark_redis *r, int argc, const char **argv, const size_t *lens)
{
    if (redisAsyncCommandArgv(r->ac, on_handshake_reply, r, argc, argv, lens) != REDIS_OK) {
        return -1;
    }
    r->pending++;
    r->handshake_left++;
    return 0;
}

/* Authenticate, select the database and load the scripts, pipelined. */
static void start_handshake(struct hark_redis *r)
{
    char pw[HARK_SECRET_MAX];
    int pw_len = -1;
    char db[16];

    set_state(r, CONN_HANDSHAKE);
    r->handshake_left = 0;
    if (r->opts->password) {
        pw_len = hark_secret_read(r->opts->password, pw, sizeof(pw));
    } else if (r->opts->url_password) {
        pw_len = (int)strlen(r->opts->url_password);
        memcpy(pw, r->opts->url_password, (size_t)pw_len + 1);
    }
    if (pw_len > 0) {
        const char *argv[] = {"AUTH", pw};
        size_t lens[] = {4, (size_t)pw_len};
        handshake_send(r, 2, argv, lens);
        explicit_bzero(pw, sizeof(pw));
    }
    if (r->opts->db != 0) {
        const char *argv[] = {"SELECT", db};
        size_t lens[2] = {6, 0};
        lens[1] = (size_t)snprintf(db, sizeof(db), "%d", r->opts->db);
        handshake_send(r, 2, argv, lens);
    }
    for (size_t i = 0; i < r->n_preload; i++) {
        const char *argv[] = {"SCRIPT", "LOAD", r->preload[i]->body};
        size_t lens[] = {6, 4, r->preload[i]->len};
        handshake_send(r, 3, argv, lens);
    }
    {
        const char *argv[] = {"PING"};
        size_t lens[] = {4};
        handshake_send(r, 1, argv, lens);
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct hark_redis *r = ac->data;

    if (r == NULL) {
        return;
    }
    if (status != REDIS_OK) {
        log_warn("redis", "conn=%s msg=\"connect failed\" error=\"%s\"", r->name, ac->errstr);
        r->ac = NULL;   /* hiredis frees the context after this callback */
        set_state(r, CONN_DOWN);
        schedule_retry(r);
        return;
    }
    start_handshake(r);
}

static void conn_connect(struct hark_redis *r)
{
    redisAsyncContext *ac;

    if (r->closing || r->ac != NULL) {
        return;
    }
    set_state(r, CONN_CONNECTING);
    ac = r->opts->unix_path ? redisAsyncConnectUnix(r->opts->unix_path)
                            : redisAsyncConnect(r->opts->host, r->opts->port);
    if (ac == NULL || ac->err) {
        log_warn("redis", "conn=%s msg=\"connect failed\" error=\"%s\"", r->name,
                 ac ? ac->errstr : "out of memory");
        if (ac) {
            redisAsyncFree(ac);
        }
        set_state(r, CONN_DOWN);
        schedule_retry(r);
        return;
    }
    ac->data = r;
    r->ac = ac;
    redisLibeventAttach(ac, r->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

struct hark_redis *hark_redis_new(struct event_base *base, const struct hark_redis_opts *opts,
                                  const char *name, hark_redis_state_fn on_state, void *arg)
{
    struct hark_redis *r = hark_calloc(1, sizeof(*r));

    if (r == NULL) {
        return NULL;
    }
    r->base = base;
    r->opts = opts;
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->on_state = on_state;
    r->arg = arg;
    r->retry_timer = evtimer_new(base, retry_cb, r);
    if (r->retry_timer == NULL) {
        hark_free(r);
        return NULL;
    }
    /* Connect from the loop, so that callers finish wiring first. */
    {
        const struct timeval now = {0, 0};
        evtimer_add(r->retry_timer, &now);
    }
    return r;
}

int hark_redis_preload(struct hark_redis *r, const struct hark_script *script)
{
    if (r->n_preload == MAX_PRELOAD) {
        return -1;
    }
    r->preload[r->n_preload++] = script;
    return 0;
}

void hark_redis_free(struct hark_redis *r)
{
    if (r == NULL) {
        return;
    }
    r->closing = 1;
    if (r->ac != NULL) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        /* Pending callbacks run now with NULL replies; they must not use r. */
        redisAsyncFree(ac);
    }
    event_free(r->retry_timer);
    hark_free(r);
}

int hark_redis_connected(const struct hark_redis *r)
{
    return r != NULL && r->state == CONN_UP;
}

size_t hark_redis_pending(const struct hark_redis *r)
{
    return r->pending;
}

/* Wrapper for user commands: keeps the pending count. */
struct cmd_call {
    struct hark_redis *r;
    redisCallbackFn *fn;
    void *privdata;
};

static void on_command_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct cmd_call *call = privdata;

    if (!call->r->closing) {
        call->r->pending--;
    }
    call->fn(ac, reply, call->privdata);
    hark_free(call);
}

int hark_redis_command(struct hark_redis *r, redisCallbackFn *fn, void *privdata,
                       int argc, const char **argv, const size_t *argvlen)
{
    struct cmd_call *call;

    if (r->state != CONN_UP || r->ac == NULL) {
        return -1;
    }
    call = hark_malloc(sizeof(*call));
    if (call == NULL) {
        return -1;
    }
    call->r = r;
    call->fn = fn;
    call->privdata = privdata;
    if (redisAsyncCommandArgv(r->ac, on_command_reply, call, argc, argv, argvlen) != REDIS_OK) {
        hark_free(call);
        return -1;
    }
    r->pending++;
    return 0;
}

static int script_send(struct script_call *call, int use_eval);

static void on_script_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct script_call *call = privdata;
    redisReply *rep = reply;

    if (!call->r->closing) {
        call->r->pending--;
    }
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR && !call->retried &&
        strncmp(rep->str, "NOSCRIPT", 8) == 0 && !call->r->closing) {
        /* The server lost the script (restart, SCRIPT FLUSH): send the body. */
        call->retried = 1;
        if (script_send(call, 1) == 0) {
            return;
        }
        rep = NULL;
    }
    call->fn(ac, rep, call->privdata);
    hark_free(call);
}

/* Send EVALSHA (or EVAL) sha numkeys keys... args... */
static int script_send(struct script_call *call, int use_eval)
{
    const char *stack_argv[66];
    size_t stack_lens[66];
    const char **argv = stack_argv;
    size_t *lens = stack_lens;
    int n = call->argc + 2, rc;

    if (n > 66) {
        argv = hark_malloc((size_t)n * sizeof(*argv));
        lens = hark_malloc((size_t)n * sizeof(*lens));
        if (argv == NULL || lens == NULL) {
            hark_free(argv);
            hark_free(lens);
            return -1;
        }
    }
    argv[0] = use_eval ? "EVAL" : "EVALSHA";
    lens[0] = use_eval ? 4 : 7;
    argv[1] = use_eval ? call->script->body : call->script->sha1;
    lens[1] = use_eval ? call->script->len : 40;
    memcpy(argv + 2, call->argv, (size_t)call->argc * sizeof(*argv));
    memcpy(lens + 2, call->argvlen, (size_t)call->argc * sizeof(*lens));
    rc = call->r->ac != NULL && call->r->state == CONN_UP &&
                 redisAsyncCommandArgv(call->r->ac, on_script_reply, call, n, argv, lens) == REDIS_OK
             ? 0
             : -1;
    if (argv != stack_argv) {
        hark_free(argv);
        hark_free(lens);
    }
    if (rc == 0) {
        call->r->pending++;
    }
    return rc;
}

int hark_redis_script(struct hark_redis *r, const struct hark_script *script,
                      redisCallbackFn *fn, void *privdata,
                      int argc, const char **argv, const size_t *argvlen)
{
    struct script_call *call = hark_calloc(1, sizeof(*call));

    if (call == NULL) {
        return -1;
    }
    call->r = r;
    call->script = script;
    call->fn = fn;
    call->privdata = privdata;
    call->argc = argc;
    call->argv = argv;
    call->argvlen = argvlen;
    if (script_send(call, 0) < 0) {
        hark_free(call);
        return -1;
    }
    return 0;
}
