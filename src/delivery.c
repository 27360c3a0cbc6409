/*
 * The delivery engine: libcurl's multi socket interface on libevent.
 *
 * curl tells us which sockets to watch (delivery_on_curl_socket) and when
 * to wake it (delivery_on_curl_timer); libevent reports readiness back
 * through curl_multi_socket_action(). Finished transfers are collected
 * after each action (delivery_collect) and their callbacks run there, so
 * a callback never runs inside hark_delivery_submit(). Connections stay
 * in curl's cache between calls (keep-alive, TLS sessions).
 *
 * Each provider key has a concurrency limit: calls beyond it wait in a
 * FIFO and start as earlier ones finish.
 */
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "hark/alloc.h"
#include "hark/log.h"
#include "hark/text.h"
#include "delivery.h"

#ifndef HARK_VERSION
#define HARK_VERSION "0"
#endif

struct dl_provider;

struct dl_call {
    struct hark_delivery *d;
    struct dl_provider *prov;
    struct dl_call *next, *prev;    /* provider queue, or the running list */
    CURL *easy;
    struct curl_slist *headers;
    struct curl_slist *rcpt;
    struct hark_http_call call;
    int smtp;
    size_t upload_off;
    char *answer;
    size_t answer_len, answer_cap;
    int64_t retry_after_ms;
    hark_delivery_fn fn;
    void *arg;
    char errbuf[CURL_ERROR_SIZE];
};

struct dl_provider {
    char *name;
    int active;
    struct dl_call *qhead, *qtail;
    struct dl_provider *next;
};

struct hark_delivery {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct event *pump;         /* starts queued calls from the loop */
    struct hark_delivery_opts opts;
    struct dl_provider *providers;
    struct dl_call *running;
    size_t busy;
};

static void call_free(struct dl_call *c)
{
    if (c == NULL) {
        return;
    }
    if (c->easy != NULL) {
        curl_easy_cleanup(c->easy);
    }
    curl_slist_free_all(c->headers);
    curl_slist_free_all(c->rcpt);
    hark_http_call_clear(&c->call);
    hark_free(c->answer);
    hark_free(c);
}

/* Keep the answer body, up to opts.max_answer bytes (the rest is dropped). */
static size_t delivery_on_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct dl_call *c = arg;
    size_t n = size * nmemb;
    size_t room = c->d->opts.max_answer > c->answer_len ? c->d->opts.max_answer - c->answer_len : 0;
    size_t take = n < room ? n : room;

    if (take > 0 && c->answer_len + take + 1 > c->answer_cap) {
        size_t ncap = c->answer_cap ? c->answer_cap : 1024;
        char *grown;
        while (ncap < c->answer_len + take + 1) {
            ncap *= 2;
        }
        grown = hark_realloc(c->answer, ncap);
        if (grown == NULL) {
            return n;   /* keep going; the answer is just shorter */
        }
        c->answer = grown;
        c->answer_cap = ncap;
    }
    if (take > 0) {
        memcpy(c->answer + c->answer_len, ptr, take);
        c->answer_len += take;
        c->answer[c->answer_len] = '\0';
    }
    return n;
}

/* Pick Retry-After out of the answer's header lines. */
static size_t delivery_on_header(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct dl_call *c = arg;
    size_t n = size * nmemb;

    if (n > 12 && hark_strncaseeq(ptr, 12, "retry-after:")) {
        c->retry_after_ms = hark_retry_after_parse(ptr + 12, n - 12, hark_now_ms());
    } else if (n > 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        c->retry_after_ms = -1;     /* a new response (after 100 Continue) */
    }
    return n;
}

/* Feed the SMTP message to curl. */
static size_t delivery_on_read(char *buf, size_t size, size_t nitems, void *arg)
{
    struct dl_call *c = arg;
    size_t room = size * nitems;
    size_t left = c->call.body_len - c->upload_off;
    size_t n = left < room ? left : room;

    memcpy(buf, c->call.body + c->upload_off, n);
    c->upload_off += n;
    return n;
}

/* Configure the easy handle for the call. 0 or -1. */
static int call_setup(struct dl_call *c)
{
    const struct hark_delivery_opts *o = &c->d->opts;
    CURL *e = curl_easy_init();
    int rc = 0;

    if (e == NULL) {
        return -1;
    }
    c->easy = e;
    rc |= curl_easy_setopt(e, CURLOPT_URL, c->call.url);
    rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                           (long)(o->timeout_ms < 10000 ? o->timeout_ms : 10000));
    rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,smtp,smtps");
    rc |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, delivery_on_write);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    rc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, delivery_on_header);
    rc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    rc |= curl_easy_setopt(e, CURLOPT_USERAGENT, "harkd/" HARK_VERSION);
    if (c->call.ca_file != NULL) {
        rc |= curl_easy_setopt(e, CURLOPT_CAINFO, c->call.ca_file);
    }
    if (c->call.tls_no_verify) {
        rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (c->call.userpwd != NULL) {
        rc |= curl_easy_setopt(e, CURLOPT_USERPWD, c->call.userpwd);
    }
    if (c->smtp) {
        if (c->call.mail_from == NULL || c->call.rcpt_to == NULL ||
            (c->rcpt = curl_slist_append(NULL, c->call.rcpt_to)) == NULL) {
            return -1;
        }
        rc |= curl_easy_setopt(e, CURLOPT_MAIL_FROM, c->call.mail_from);
        rc |= curl_easy_setopt(e, CURLOPT_MAIL_RCPT, c->rcpt);
        rc |= curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        rc |= curl_easy_setopt(e, CURLOPT_READFUNCTION, delivery_on_read);
        rc |= curl_easy_setopt(e, CURLOPT_READDATA, c);
        rc |= curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->call.body_len);
        if (strncmp(c->call.url, "smtp://", 7) == 0) {
            /* STARTTLS whenever offered; required when credentials are sent. */
            rc |= curl_easy_setopt(e, CURLOPT_USE_SSL, c->call.userpwd || c->call.bearer
                                                           ? (long)CURLUSESSL_ALL
                                                           : (long)CURLUSESSL_TRY);
        }
        if (c->call.bearer != NULL) {
            rc |= curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, c->call.bearer);
        }
        return rc == CURLE_OK ? 0 : -1;
    }
    for (size_t i = 0; i < c->call.n_headers; i++) {
        struct curl_slist *l = curl_slist_append(c->headers, c->call.headers[i]);
        if (l == NULL) {
            return -1;
        }
        c->headers = l;
    }
    if (c->call.bearer != NULL) {
        rc |= curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, c->call.bearer);
        rc |= curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
    } else if (c->call.userpwd != NULL) {
        rc |= curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    }
    rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    if (c->call.method == NULL || strcmp(c->call.method, "POST") == 0) {
        rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->call.body ? c->call.body : "");
        rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->call.body_len);
    } else if (strcmp(c->call.method, "GET") == 0) {
        rc |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        rc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->call.method);
        if (c->call.body != NULL) {
            rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->call.body);
            rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->call.body_len);
        }
    }
    return rc == CURLE_OK ? 0 : -1;
}

static void running_link(struct hark_delivery *d, struct dl_call *c)
{
    c->prev = NULL;
    c->next = d->running;
    if (d->running) {
        d->running->prev = c;
    }
    d->running = c;
}

static void running_unlink(struct hark_delivery *d, struct dl_call *c)
{
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        d->running = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->next = c->prev = NULL;
}

/*
 * Run a call's callback and free it. A call that never reached curl
 * (setup failed) reports a transport error.
 */
static void call_finish(struct dl_call *c, int aborted, int curl_rc)
{
    struct hark_delivery_result res;
    long status = 0;

    memset(&res, 0, sizeof(res));
    res.aborted = aborted;
    res.retry_after_ms = c->retry_after_ms;
    if (c->easy != NULL) {
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    }
    res.status = status;
    res.error = "";
    if (curl_rc != CURLE_OK && (!c->smtp || status < 400)) {
        res.transport_error = 1;
        res.error = c->errbuf[0] ? c->errbuf : curl_easy_strerror((CURLcode)curl_rc);
    }
    if (c->smtp) {
        res.body = c->call.body ? c->call.body : "";
        res.body_len = c->call.body_len;
    } else {
        res.body = c->answer ? c->answer : "";
        res.body_len = c->answer_len;
    }
    c->d->busy--;
    c->fn(c->arg, &res);
    call_free(c);
}

/* Start waiting calls of prov while it has room. */
static void provider_pump(struct hark_delivery *d, struct dl_provider *p)
{
    while (p->qhead != NULL && p->active < d->opts.per_provider) {
        struct dl_call *c = p->qhead;
        p->qhead = c->next;
        if (p->qhead == NULL) {
            p->qtail = NULL;
        }
        c->next = NULL;
        p->active++;
        if (call_setup(c) < 0 || curl_multi_add_handle(d->multi, c->easy) != CURLM_OK) {
            p->active--;
            log_warn("delivery", "msg=\"cannot set up a provider call\" provider=%s", p->name);
            call_finish(c, 0, CURLE_FAILED_INIT);
            continue;
        }
        running_link(d, c);
    }
}

/* Collect finished transfers and run their callbacks. */
static void delivery_collect(struct hark_delivery *d)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(d->multi, &left)) != NULL) {
        struct dl_call *c = NULL;
        CURLcode rc;
        struct dl_provider *p;
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        rc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        curl_multi_remove_handle(d->multi, c->easy);
        running_unlink(d, c);
        p = c->prov;
        p->active--;
        call_finish(c, 0, rc);
        provider_pump(d, p);
    }
}

/* Start what waits, on every provider that has room. */
static void delivery_on_pump(evutil_socket_t fd, short what, void *arg)
{
    struct hark_delivery *d = arg;

    (void)fd;
    (void)what;
    for (struct dl_provider *p = d->providers; p != NULL; p = p->next) {
        provider_pump(d, p);
    }
}

static void delivery_on_socket(evutil_socket_t fd, short what, void *arg)
{
    struct hark_delivery *d = arg;
    int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;

    curl_multi_socket_action(d->multi, fd, action, &running);
    delivery_collect(d);
}

static void delivery_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct hark_delivery *d = arg;
    int running;

    (void)fd;
    (void)what;
    curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    delivery_collect(d);
}

/* curl: watch socket s for `what` (or stop watching it). */
static int delivery_on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct hark_delivery *d = userp;
    struct event *ev = socketp;
    short kind = EV_PERSIST;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (ev != NULL) {
            event_free(ev);
            curl_multi_assign(d->multi, s, NULL);
        }
        return 0;
    }
    if (what & CURL_POLL_IN) {
        kind |= EV_READ;
    }
    if (what & CURL_POLL_OUT) {
        kind |= EV_WRITE;
    }
    if (ev == NULL) {
        ev = event_new(d->base, s, kind, delivery_on_socket, d);
        if (ev == NULL) {
            return -1;
        }
        curl_multi_assign(d->multi, s, ev);
    } else {
        event_del(ev);
        event_assign(ev, d->base, s, kind, delivery_on_socket, d);
    }
    event_add(ev, NULL);
    return 0;
}

/* curl: wake me in timeout_ms (-1: never). */
static int delivery_on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct hark_delivery *d = userp;
    struct timeval tv;

    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(d->timer);
        return 0;
    }
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    evtimer_add(d->timer, &tv);
    return 0;
}

struct hark_delivery *hark_delivery_new(struct event_base *base,
                                        const struct hark_delivery_opts *opts)
{
    struct hark_delivery *d = hark_calloc(1, sizeof(*d));

    if (d == NULL) {
        return NULL;
    }
    d->base = base;
    d->opts = *opts;
    if (d->opts.per_provider < 1) {
        d->opts.per_provider = 1;
    }
    if (d->opts.max_answer == 0) {
        d->opts.max_answer = 64 * 1024;
    }
    d->multi = curl_multi_init();
    d->timer = evtimer_new(base, delivery_on_timeout, d);
    d->pump = evtimer_new(base, delivery_on_pump, d);
    if (d->multi == NULL || d->timer == NULL || d->pump == NULL) {
        log_error("delivery", "msg=\"cannot create the curl multi handle\"");
        hark_delivery_free(d);
        return NULL;
    }
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, delivery_on_curl_socket);
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, delivery_on_curl_timer);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
    curl_multi_setopt(d->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)opts->max_connections);
    curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, (long)opts->max_connections);
    return d;
}

void hark_delivery_free(struct hark_delivery *d)
{
    struct dl_provider *p, *pn;

    if (d == NULL) {
        return;
    }
    while (d->running != NULL) {
        struct dl_call *c = d->running;
        running_unlink(d, c);
        curl_multi_remove_handle(d->multi, c->easy);
        c->prov->active--;
        call_finish(c, 1, CURLE_ABORTED_BY_CALLBACK);
    }
    for (p = d->providers; p != NULL; p = pn) {
        pn = p->next;
        while (p->qhead != NULL) {
            struct dl_call *c = p->qhead;
            p->qhead = c->next;
            call_finish(c, 1, CURLE_ABORTED_BY_CALLBACK);
        }
        hark_free(p->name);
        hark_free(p);
    }
    if (d->multi != NULL) {
        curl_multi_cleanup(d->multi);
    }
    if (d->timer != NULL) {
        event_free(d->timer);
    }
    if (d->pump != NULL) {
        event_free(d->pump);
    }
    hark_free(d);
}

/* The provider record for name, created on first use; NULL on allocation failure. */
static struct dl_provider *provider_get(struct hark_delivery *d, const char *name)
{
    struct dl_provider *p;

    for (p = d->providers; p != NULL; p = p->next) {
        if (strcmp(p->name, name) == 0) {
            return p;
        }
    }
    p = hark_calloc(1, sizeof(*p));
    if (p == NULL || (p->name = hark_strdup(name)) == NULL) {
        hark_free(p);
        return NULL;
    }
    p->next = d->providers;
    d->providers = p;
    return p;
}

int hark_delivery_submit(struct hark_delivery *d, const char *provider,
                         struct hark_http_call *call, hark_delivery_fn fn, void *arg)
{
    struct dl_provider *p = provider_get(d, provider);
    struct dl_call *c = p ? hark_calloc(1, sizeof(*c)) : NULL;

    if (c == NULL) {
        hark_http_call_clear(call);
        return -1;
    }
    c->d = d;
    c->prov = p;
    c->call = *call;
    memset(call, 0, sizeof(*call));
    c->smtp = c->call.url != NULL && (strncmp(c->call.url, "smtp://", 7) == 0 ||
                                      strncmp(c->call.url, "smtps://", 8) == 0);
    c->retry_after_ms = -1;
    c->fn = fn;
    c->arg = arg;
    if (p->qtail) {
        p->qtail->next = c;
    } else {
        p->qhead = c;
    }
    p->qtail = c;
    d->busy++;
    /*
     * Start it from the loop, not from here: curl may finish a call at
     * once (bad URL) and the callback must not run inside submit.
     */
    if (p->active < d->opts.per_provider) {
        struct timeval now = {0, 0};
        evtimer_add(d->pump, &now);
    }
    return 0;
}

size_t hark_delivery_busy(const struct hark_delivery *d)
{
    return d->busy;
}
