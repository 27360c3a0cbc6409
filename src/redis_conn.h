/*
 * A reconnecting asynchronous Redis connection bound to one event base
 * (hiredis + its libevent adapter). Private to the core.
 *
 * Contract (hiredis' own, passed up unchanged): every callback given to
 * hark_redis_command()/hark_redis_script() runs exactly once, on the
 * connection's loop, with reply NULL when the command failed because the
 * connection is down or went down; the reply is valid only during the
 * callback. Commands are pipelined: many may be in flight at once.
 */
#ifndef HARK_REDIS_CONN_H
#define HARK_REDIS_CONN_H

#include <stddef.h>
#include <hiredis/async.h>

#include "hark/conf.h"

struct event_base;

/* Where Redis is: parsed from [redis] url (redis://[:pw@]host:port/db or unix:/path[?db=N]). */
struct hark_redis_opts {
    char *host;         /* numeric address, resolved once at startup */
    int port;
    char *unix_path;    /* set for unix sockets (host NULL) */
    int db;
    const struct hark_secret *password;    /* may be NULL */
    char *url_password; /* password given inside the URL, if any */
};

int hark_redis_opts_parse(const char *url, struct hark_redis_opts *opts, char *err, size_t err_len);
void hark_redis_opts_clear(struct hark_redis_opts *opts);

/* A Lua script embedded in the binary, run with EVALSHA (EVAL on NOSCRIPT). */
struct hark_script {
    const char *body;
    size_t len;
    char sha1[41];
};

/* Fill sha1 from body. */
void hark_script_init(struct hark_script *s, const char *body, size_t len);

struct hark_redis;

/* Called on each change: connected 1 once AUTH/SELECT succeeded, 0 when lost. */
typedef void (*hark_redis_state_fn)(void *arg, int connected);

/*
 * Connect (asynchronously) and keep reconnecting with backoff until freed.
 * `name` tags log lines. Returns NULL on allocation failure.
 */
struct hark_redis *hark_redis_new(struct event_base *base, const struct hark_redis_opts *opts,
                                  const char *name, hark_redis_state_fn on_state, void *arg);

/* SCRIPT LOAD script at every (re)connect, before the connection is up. */
int hark_redis_preload(struct hark_redis *r, const struct hark_script *script);

/* Disconnect; pending callbacks run with a NULL reply. */
void hark_redis_free(struct hark_redis *r);

int hark_redis_connected(const struct hark_redis *r);

/* Commands queued but not answered yet. */
size_t hark_redis_pending(const struct hark_redis *r);

/*
 * Send argv. Returns 0 when queued (fn will run), -1 when not connected
 * (fn will NOT run).
 */
int hark_redis_command(struct hark_redis *r, redisCallbackFn *fn, void *privdata,
                       int argc, const char **argv, const size_t *argvlen);

/*
 * EVALSHA script numkeys keys... args...; on a NOSCRIPT error the same
 * call is sent again as EVAL, transparently. argv holds numkeys, keys and
 * args (not the command or the sha); argv and argvlen must stay valid
 * until fn has run. Same return contract as above.
 */
int hark_redis_script(struct hark_redis *r, const struct hark_script *script,
                      redisCallbackFn *fn, void *privdata,
                      int argc, const char **argv, const size_t *argvlen);

#endif
