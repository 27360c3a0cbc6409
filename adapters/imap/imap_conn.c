/*
 * hark: the IMAP connection: DNS, TCP, TLS (implicit or STARTTLS),
 * greeting, capabilities, authentication and SELECT, as an explicit state
 * machine with one setter that logs every transition. What happens once
 * the mailbox is selected lives in imap_sync.c.
 *
 * Any error closes the connection and arms the reconnect timer with
 * exponential backoff and jitter (1 s doubling to 5 min). Nothing is lost
 * by a reconnect: the sync resumes from the stored checkpoint.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "hark/alloc.h"
#include "hark/log.h"
#include "imap_int.h"

static const char *const state_names[IMAP_S_COUNT] = {
    "stopped", "wait", "connect", "greeting", "starttls", "tls", "capability", "auth",
    "postcap", "select", "checkpoint", "list", "fetch", "process", "after", "retry",
    "idle-start", "idle", "idle-done", "poll", "noop",
};

/* The one place the state changes; logs the transition at debug level. */
void imap_set_state(struct imap_ctx *ctx, enum imap_state st)
{
    if (ctx->state != st) {
        log_debug("imap", "channel=%s state %s -> %s", ctx->name, state_names[ctx->state],
                  state_names[st]);
    }
    ctx->state = st;
    if (ctx->bev != NULL) {
        /* Long waits are legitimate while idling or polling; commands must answer. */
        int64_t ms = (st == IMAP_S_IDLE || st == IMAP_S_POLL || st == IMAP_S_PROCESS
                      || st == IMAP_S_RETRY || st == IMAP_S_CHECKPOINT)
                         ? (ctx->idle_restart_ms > ctx->poll_ms ? ctx->idle_restart_ms
                                                                : ctx->poll_ms) + 360000
                         : IMAP_CMD_TIMEOUT_S * 1000;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        bufferevent_set_timeouts(ctx->bev, &tv, NULL);
    }
}

/* Arm the channel's single timer in ms (replacing any earlier arming). */
void imap_arm(struct imap_ctx *ctx, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ctx->timer, &tv);
}

/*
 * Send one command line: a fresh tag, the text, CRLF. `secret` lines
 * (credentials) are never logged. 0, or -1 when the line is too long.
 */
int imap_send_raw(struct imap_ctx *ctx, const char *line, int secret)
{
    char buf[8192];
    int n;

    ctx->tagno++;
    snprintf(ctx->tag, sizeof(ctx->tag), "h%u", ctx->tagno % 1000000u);
    n = snprintf(buf, sizeof(buf), "%s %s\r\n", ctx->tag, line);
    if (n < 0 || (size_t)n >= sizeof(buf) || ctx->bev == NULL) {
        return -1;
    }
    log_debug("imap", "channel=%s > %s %s", ctx->name, ctx->tag,
              secret ? "(credentials)" : line);
    return bufferevent_write(ctx->bev, buf, (size_t)n);
}

/* printf-style imap_send_raw for commands without secrets. */
int imap_send(struct imap_ctx *ctx, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        return -1;
    }
    return imap_send_raw(ctx, line, 0);
}

/* Close the connection (if any) and forget this connection's work. */
static void conn_close(struct imap_ctx *ctx)
{
    if (ctx->bev != NULL) {
        bufferevent_free(ctx->bev);
        ctx->bev = NULL;
    }
    ctx->gen++;
    ctx->rlen = 0;
    memset(&ctx->fr, 0, sizeof(ctx->fr));
    ctx->caps = 0;
    ctx->discard_input = 0;
    ctx->have_checkpoint = 0;
    ctx->auth_retried = 0;
    imap_sync_reset(ctx);
}

/* Close everything and stay stopped (stop, destroy). */
void imap_halt(struct imap_ctx *ctx)
{
    conn_close(ctx);
    if (ctx->timer != NULL) {
        evtimer_del(ctx->timer);
    }
    imap_set_state(ctx, IMAP_S_STOPPED);
}

/* Drop the connection and come back after a backoff delay. */
void imap_fail(struct imap_ctx *ctx, const char *why)
{
    uint32_t rnd = 0;
    int64_t ms;

    conn_close(ctx);
    if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1) {
        rnd = (uint32_t)ctx->gen * 2654435761u;
    }
    ms = imap_backoff_ms(ctx->attempt, rnd);
    if (ctx->attempt < 32) {
        ctx->attempt++;
    }
    log_warn("imap", "channel=%s host=%s error=\"%s\" reconnect_in_ms=%lld", ctx->name,
             ctx->url.host, why, (long long)ms);
    imap_set_state(ctx, IMAP_S_WAIT);
    imap_arm(ctx, ms);
}

/* A new SSL object for one connection: SNI and host name (or IP) check. */
static SSL *tls_new_ssl(struct imap_ctx *ctx)
{
    SSL *ssl = SSL_new(ctx->ssl_ctx);
    struct in6_addr a6;
    int numeric;

    if (ssl == NULL) {
        return NULL;
    }
    numeric = evutil_inet_pton(AF_INET, ctx->url.host, &a6) == 1
              || evutil_inet_pton(AF_INET6, ctx->url.host, &a6) == 1;
    if (!numeric && SSL_set_tlsext_host_name(ssl, ctx->url.host) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    if (ctx->tls_verify) {
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        int ok = numeric ? X509_VERIFY_PARAM_set1_ip_asc(param, ctx->url.host)
                         : X509_VERIFY_PARAM_set1_host(param, ctx->url.host, 0);
        if (ok != 1) {
            SSL_free(ssl);
            return NULL;
        }
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    return ssl;
}

/*
 * The TLS context of a channel: TLS 1.2 or later, peer verification
 * against ca_file or the system store unless tls_verify = no. 0 or -1.
 */
int imap_tls_init(struct imap_ctx *ctx, char *err, size_t err_len)
{
    ctx->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (ctx->ssl_ctx == NULL) {
        snprintf(err, err_len, "cannot create a TLS context");
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_2_VERSION);
    if (ctx->ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(ctx->ssl_ctx, ctx->ca_file, NULL) != 1) {
            snprintf(err, err_len, "cannot load ca_file %s", ctx->ca_file);
            return -1;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx->ssl_ctx) != 1) {
        snprintf(err, err_len, "cannot load the system CA store");
        return -1;
    }
    SSL_CTX_set_verify(ctx->ssl_ctx, ctx->tls_verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    return 0;
}

/* Describe the last TLS error of bev (or errno) for a log line. */
static void describe_error(struct bufferevent *bev, short what, char *buf, size_t cap)
{
    unsigned long e = bev ? bufferevent_get_openssl_error(bev) : 0;
    int dns = bev ? bufferevent_socket_get_dns_error(bev) : 0;

    if (dns != 0) {
        snprintf(buf, cap, "DNS: %s", evutil_gai_strerror(dns));
    } else if (e != 0) {
        char tmp[200];
        ERR_error_string_n(e, tmp, sizeof(tmp));
        snprintf(buf, cap, "TLS: %s", tmp);
    } else if (what & BEV_EVENT_TIMEOUT) {
        snprintf(buf, cap, "timed out");
    } else if (what & BEV_EVENT_EOF) {
        snprintf(buf, cap, "connection closed by the server");
    } else {
        snprintf(buf, cap, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    }
}

static void conn_on_read(struct bufferevent *bev, void *arg);

static void conn_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct imap_ctx *ctx = arg;
    char why[256];

    if (what & BEV_EVENT_CONNECTED) {
        if (ctx->state == IMAP_S_CONNECT) {
            log_info("imap", "channel=%s connected host=%s port=%u tls=%s", ctx->name,
                     ctx->url.host, ctx->url.port, ctx->url.tls ? "yes" : "no");
            imap_set_state(ctx, IMAP_S_GREETING);
        } else if (ctx->state == IMAP_S_TLS) {
            imap_set_state(ctx, IMAP_S_CAPABILITY);
            if (imap_send(ctx, "CAPABILITY") < 0) {
                imap_fail(ctx, "cannot send CAPABILITY");
            }
        }
        return;
    }
    describe_error(bev, what, why, sizeof(why));
    imap_fail(ctx, why);
}

/* Switch the plain connection to TLS after "OK" to STARTTLS. 0 or -1. */
static int conn_starttls(struct imap_ctx *ctx)
{
    SSL *ssl = tls_new_ssl(ctx);
    struct bufferevent *tls;

    if (ssl == NULL) {
        return -1;
    }
    /* Anything that came with the OK was sent in clear text: drop it. */
    evbuffer_drain(bufferevent_get_input(ctx->bev),
                   evbuffer_get_length(bufferevent_get_input(ctx->bev)));
    ctx->discard_input = 1;
    tls = bufferevent_openssl_filter_new(ctx->base, ctx->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (tls == NULL) {
        SSL_free(ssl);
        return -1;
    }
    ctx->bev = tls;
    bufferevent_setcb(tls, conn_on_read, NULL, conn_on_event, ctx);
    bufferevent_enable(tls, EV_READ | EV_WRITE);
    imap_set_state(ctx, IMAP_S_TLS);
    return 0;
}

/* Start DNS + TCP (+ TLS for imaps://). Failures go to the backoff path. */
void imap_connect(struct imap_ctx *ctx)
{
    SSL *ssl;

    conn_close(ctx);
    imap_set_state(ctx, IMAP_S_CONNECT);
    if (ctx->url.tls) {
        ssl = tls_new_ssl(ctx);
        if (ssl == NULL) {
            imap_fail(ctx, "cannot set up TLS");
            return;
        }
        ctx->bev = bufferevent_openssl_socket_new(ctx->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                  BEV_OPT_CLOSE_ON_FREE
                                                      | BEV_OPT_DEFER_CALLBACKS);
        if (ctx->bev == NULL) {
            SSL_free(ssl);
        }
    } else {
        ctx->bev = bufferevent_socket_new(ctx->base, -1,
                                          BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    }
    if (ctx->bev == NULL) {
        imap_fail(ctx, "cannot create the connection");
        return;
    }
    bufferevent_setcb(ctx->bev, conn_on_read, NULL, conn_on_event, ctx);
    bufferevent_enable(ctx->bev, EV_READ | EV_WRITE);
    {
        struct timeval tv = {30, 0};
        bufferevent_set_timeouts(ctx->bev, &tv, &tv);
    }
    /* Asynchronous resolution through evdns: no blocking call on the loop. */
    if (bufferevent_socket_connect_hostname(ctx->bev, ctx->dns, AF_UNSPEC, ctx->url.host,
                                            ctx->url.port) < 0) {
        imap_fail(ctx, "cannot start connecting");
    }
}

/* Send the credentials: XOAUTH2, AUTHENTICATE PLAIN or LOGIN. 0 or -1. */
static int conn_auth(struct imap_ctx *ctx)
{
    char secret[HARK_SECRET_MAX];
    char b64[4 * HARK_SECRET_MAX];
    char line[sizeof(b64) + 64];
    int rc = -1;

    ctx->auth_sent_ir = 0;
    if (ctx->oauth_token != NULL) {
        ctx->auth_xoauth2 = 1;
        if (hark_secret_read(ctx->oauth_token, secret, sizeof(secret)) < 0
            || imap_xoauth2(ctx->username, secret, b64, sizeof(b64)) < 0) {
            goto out;
        }
    } else {
        ctx->auth_xoauth2 = 0;
        if (hark_secret_read(ctx->password, secret, sizeof(secret)) < 0) {
            goto out;
        }
        if (!(ctx->caps & IMAP_CAP_AUTH_PLAIN)) {
            ssize_t n;
            if (ctx->caps & IMAP_CAP_LOGINDISABLED) {
                log_error("imap", "channel=%s the server refuses LOGIN (LOGINDISABLED)",
                          ctx->name);
                goto out;
            }
            memcpy(line, "LOGIN ", 6);
            n = imap_quote(ctx->username, line, sizeof(line), 6);
            if (n < 0 || (size_t)n + 1 >= sizeof(line)) {
                goto out;
            }
            line[n++] = ' ';
            if (imap_quote(secret, line, sizeof(line), (size_t)n) < 0) {
                log_error("imap", "channel=%s credentials cannot be sent with LOGIN "
                          "(8-bit or control characters) and AUTH=PLAIN is missing",
                          ctx->name);
                goto out;
            }
            rc = imap_send_raw(ctx, line, 1);
            goto out;
        }
        if (imap_sasl_plain(ctx->username, secret, b64, sizeof(b64)) < 0) {
            goto out;
        }
    }
    if (ctx->caps & IMAP_CAP_SASL_IR) {
        snprintf(line, sizeof(line), "AUTHENTICATE %s %s",
                 ctx->auth_xoauth2 ? "XOAUTH2" : "PLAIN", b64);
        ctx->auth_sent_ir = 1;
    } else {
        snprintf(line, sizeof(line), "AUTHENTICATE %s", ctx->auth_xoauth2 ? "XOAUTH2" : "PLAIN");
    }
    rc = imap_send_raw(ctx, line, 1);
out:
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(b64, sizeof(b64));
    OPENSSL_cleanse(line, sizeof(line));
    if (rc == 0) {
        imap_set_state(ctx, IMAP_S_AUTH);
    }
    return rc;
}

/* "+" during AUTHENTICATE: our initial response, or the XOAUTH2 error challenge. */
static int conn_auth_continue(struct imap_ctx *ctx)
{
    char secret[HARK_SECRET_MAX];
    char b64[4 * HARK_SECRET_MAX];
    int rc = -1;
    ssize_t n;

    if (ctx->auth_sent_ir) {
        /* A failure challenge (a base64 JSON for XOAUTH2): answer empty, expect NO. */
        return bufferevent_write(ctx->bev, "\r\n", 2);
    }
    ctx->auth_sent_ir = 1;
    if (ctx->auth_xoauth2) {
        n = hark_secret_read(ctx->oauth_token, secret, sizeof(secret)) < 0 ? -1
            : imap_xoauth2(ctx->username, secret, b64, sizeof(b64));
    } else {
        n = hark_secret_read(ctx->password, secret, sizeof(secret)) < 0 ? -1
            : imap_sasl_plain(ctx->username, secret, b64, sizeof(b64));
    }
    if (n >= 0 && (size_t)n + 2 < sizeof(b64)) {
        memcpy(b64 + n, "\r\n", 2);
        rc = bufferevent_write(ctx->bev, b64, (size_t)n + 2);
    }
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(b64, sizeof(b64));
    return rc;
}

/* After the greeting or a CAPABILITY: STARTTLS when needed, else log in. */
static int conn_after_caps(struct imap_ctx *ctx)
{
    if (!ctx->url.tls && ctx->starttls && ctx->state != IMAP_S_CAPABILITY) {
        imap_set_state(ctx, IMAP_S_STARTTLS);
        return imap_send(ctx, "STARTTLS");
    }
    if (ctx->caps == 0) {
        imap_set_state(ctx, IMAP_S_CAPABILITY);
        return imap_send(ctx, "CAPABILITY");
    }
    return conn_auth(ctx);
}

/* SELECT the configured mailbox. */
static int conn_select(struct imap_ctx *ctx)
{
    char line[300];

    memcpy(line, "SELECT ", 7);
    if (imap_quote(ctx->url.mailbox, line, sizeof(line), 7) < 0) {
        return -1;
    }
    ctx->uidvalidity = 0;
    imap_set_state(ctx, IMAP_S_SELECT);
    return imap_send_raw(ctx, line, 0);
}

/* The tagged answer to the command in flight, before the mailbox is selected. */
static int conn_on_tagged(struct imap_ctx *ctx, const struct imap_resp *r)
{
    int ok = r->status == IMAP_ST_OK;

    if (r->has_caps) {
        ctx->caps = r->caps;
    }
    switch (ctx->state) {
    case IMAP_S_STARTTLS:
        if (!ok) {
            imap_fail(ctx, "the server refused STARTTLS");
            return 1;
        }
        return conn_starttls(ctx);
    case IMAP_S_CAPABILITY:
        return ok ? conn_auth(ctx) : -1;
    case IMAP_S_AUTH:
        if (ok) {
            log_info("imap", "channel=%s logged in user=%s", ctx->name, ctx->username);
            ctx->auth_retried = 0;
            if (r->has_caps) {
                return conn_select(ctx);
            }
            ctx->caps = 0;
            imap_set_state(ctx, IMAP_S_POSTCAP);
            return imap_send(ctx, "CAPABILITY");
        }
        if (ctx->auth_xoauth2 && !ctx->auth_retried) {
            /* The token may have been refreshed meanwhile (SIGHUP): re-read and retry once. */
            ctx->auth_retried = 1;
            log_warn("imap", "channel=%s XOAUTH2 refused (%s); retrying with the current token",
                     ctx->name, r->text);
            return conn_auth(ctx);
        }
        ctx->auth_retried = 0;
        log_error("imap", "channel=%s authentication failed user=%s: %s", ctx->name,
                  ctx->username, r->text);
        imap_fail(ctx, "authentication failed");
        return 1;
    case IMAP_S_POSTCAP:
        return ok ? conn_select(ctx) : -1;
    case IMAP_S_SELECT:
        if (!ok) {
            log_error("imap", "channel=%s cannot select mailbox %s: %s", ctx->name,
                      ctx->url.mailbox, r->text);
            imap_fail(ctx, "SELECT failed");
            return 1;
        }
        if (ctx->uidvalidity == 0) {
            imap_fail(ctx, "the server sent no UIDVALIDITY");
            return 1;
        }
        imap_sync_selected(ctx);
        return 0;
    default:
        return imap_sync_on_tagged(ctx, r);
    }
}

/*
 * Handle one parsed response. Returns 0, 1 when the connection was
 * already closed by the handler, or -1 for a protocol error.
 */
static int conn_on_response(struct imap_ctx *ctx, const struct imap_resp *r)
{
    if (r->type == IMAP_R_CONTINUE) {
        if (ctx->state == IMAP_S_AUTH) {
            return conn_auth_continue(ctx);
        }
        if (ctx->state == IMAP_S_IDLE_START) {
            if (ctx->got_exists) {
                /* Mail came between the last listing and this "+": end IDLE now. */
                imap_set_state(ctx, IMAP_S_IDLE_DONE);
                return bufferevent_write(ctx->bev, "DONE\r\n", 6);
            }
            imap_set_state(ctx, IMAP_S_IDLE);
            imap_arm(ctx, ctx->idle_restart_ms);
            return 0;
        }
        return -1;
    }
    if (r->type == IMAP_R_TAGGED) {
        if (strcmp(r->tag, ctx->tag) != 0) {
            return -1;
        }
        return conn_on_tagged(ctx, r);
    }
    /* Untagged. */
    if (r->has_caps) {
        ctx->caps = r->caps;
    }
    if (r->code == IMAP_C_UIDVALIDITY) {
        ctx->uidvalidity = r->code_num;
    }
    if (r->status == IMAP_ST_BYE) {
        log_info("imap", "channel=%s server says BYE: %s", ctx->name, r->text);
        return 0;
    }
    if (r->code == IMAP_C_ALERT) {
        log_warn("imap", "channel=%s server alert: %s", ctx->name, r->text);
    }
    if (ctx->state == IMAP_S_GREETING) {
        if (r->status == IMAP_ST_OK) {
            return conn_after_caps(ctx);
        }
        if (r->status == IMAP_ST_PREAUTH && (ctx->url.tls || !ctx->starttls)) {
            return conn_select(ctx);
        }
        return -1;
    }
    if (r->data == IMAP_D_FETCH) {
        return imap_sync_on_fetch(ctx, r);
    }
    if (r->data == IMAP_D_EXISTS) {
        ctx->got_exists = 1;
        if (ctx->state == IMAP_S_IDLE) {
            evtimer_del(ctx->timer);
            imap_set_state(ctx, IMAP_S_IDLE_DONE);
            return bufferevent_write(ctx->bev, "DONE\r\n", 6);
        }
    }
    return 0;
}

/* Make room for `more` bytes in the receive buffer, within rmax. 0 or -1. */
static int rbuf_reserve(struct imap_ctx *ctx, size_t more)
{
    size_t want = ctx->rlen + more;
    size_t cap = ctx->rcap ? ctx->rcap : 16384;
    char *p;

    if (want <= ctx->rcap) {
        return 0;
    }
    if (want > ctx->rmax) {
        return -1;
    }
    while (cap < want) {
        cap = cap > ctx->rmax / 2 ? ctx->rmax : cap * 2;
    }
    p = hark_realloc(ctx->rbuf, cap);
    if (p == NULL) {
        return -1;
    }
    ctx->rbuf = p;
    ctx->rcap = cap;
    return 0;
}

/*
 * Bytes arrived: append them to the receive buffer, frame and handle
 * every complete response. The handler may close the connection (or
 * replace the bufferevent for STARTTLS); the loop notices through gen.
 */
static void conn_on_read(struct bufferevent *bev, void *arg)
{
    struct imap_ctx *ctx = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    unsigned gen = ctx->gen;

    while (evbuffer_get_length(in) > 0) {
        size_t chunk = evbuffer_get_length(in);
        size_t used = 0;

        if (chunk > 65536) {
            chunk = 65536;
        }
        if (rbuf_reserve(ctx, chunk) < 0) {
            imap_fail(ctx, "response too large");
            return;
        }
        ctx->rlen += (size_t)evbuffer_remove(in, ctx->rbuf + ctx->rlen, chunk);
        for (;;) {
            struct imap_resp r;
            ssize_t n = imap_frame(&ctx->fr, ctx->rbuf + used, ctx->rlen - used,
                                   ctx->max_size + IMAP_HEADER_PEEK);
            int rc;

            if (n == 0) {
                break;
            }
            if (n < 0 || imap_parse(ctx->rbuf + used, (size_t)n, &r) < 0) {
                imap_fail(ctx, "malformed or oversized response");
                return;
            }
            log_debug("imap", "channel=%s < %.*s", ctx->name,
                      (int)((size_t)n > 120 ? 120 : (size_t)n - 2), ctx->rbuf + used);
            used += (size_t)n;
            memset(&ctx->fr, 0, sizeof(ctx->fr));
            rc = conn_on_response(ctx, &r);
            if (ctx->gen != gen || rc > 0) {
                return;
            }
            if (rc < 0) {
                imap_fail(ctx, "unexpected response");
                return;
            }
            if (ctx->discard_input) {
                ctx->discard_input = 0;
                ctx->rlen = 0;
                memset(&ctx->fr, 0, sizeof(ctx->fr));
                return;
            }
        }
        /* Keep the unfinished response at the start of the buffer. */
        if (used > 0) {
            memmove(ctx->rbuf, ctx->rbuf + used, ctx->rlen - used);
            ctx->rlen -= used;
        }
    }
}
