/*
 * The HTTP front: health endpoints, routing to channel adapters, and the
 * one reply each request gets (after the store acknowledged its records).
 */
#include <string.h>
#include <strings.h>

#include "hark/alloc.h"
#include "hark/log.h"
#include "hark/text.h"
#include "http_server.h"
#include "worker.h"

/* A request waiting for its records to be stored. */
struct pending {
    struct hark_worker *worker;
    struct hark_http_conn *conn;
    const struct hark_channel *ch;
    struct hark_response resp;
    size_t n_records;
    int64_t started_ms;
};

static const char *request_header(const struct hark_request *req, const char *name)
{
    return hark_http_request_header((const struct hark_http_request *)req->impl, name);
}

static void send_text(struct hark_http_conn *conn, int status, const char *extra_headers,
                      const char *text)
{
    hark_http_respond(conn, status, "text/plain; charset=utf-8", extra_headers, text,
                      strlen(text));
}

static void handle_health(struct hark_worker *w, const struct hark_http_request *req, int ready)
{
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        send_text(req->conn, 405, "Allow: GET, HEAD\r\n", "method not allowed\n");
        return;
    }
    /* Ready means every worker reaches Redis, whichever one answers. */
    if (ready && atomic_load(&w->fleet->redis_up) < w->fleet->n_workers) {
        send_text(req->conn, 503, NULL, "redis unreachable\n");
        return;
    }
    send_text(req->conn, 200, NULL, "ok\n");
}

/* The store answered: reply with the adapter's response or 503. */
static void on_stored(void *arg, enum hark_store_result result)
{
    struct pending *p = arg;
    struct hark_worker *w = p->worker;
    int64_t ms = hark_now_ms() - p->started_ms;

    if (result == HARK_STORE_OK) {
        if (p->resp.note[0] != '\0') {
            log_warn("http", "channel=%s note=\"%s\"", p->ch->name, p->resp.note);
        }
        hark_http_respond(p->conn, p->resp.status, p->resp.content_type, NULL, p->resp.body,
                          p->resp.body_len);
        log_debug("http", "channel=%s status=%d records=%zu ms=%lld", p->ch->name, p->resp.status,
                  p->n_records, (long long)ms);
    } else {
        log_warn("http", "channel=%s status=503 records=%zu msg=\"store unavailable, provider "
                 "will retry\"", p->ch->name, p->n_records);
        send_text(p->conn, 503, NULL, "storage unavailable, retry later\n");
    }
    hark_response_clear(&p->resp);
    hark_free(p);
    hark_worker_request_done(w);
}

/* Validate every record before anything is stored: all or nothing. */
static const char *validate_batch(const struct hark_batch *batch)
{
    for (size_t i = 0; i < batch->n; i++) {
        const char *why = hark_msg_validate(batch->msgs[i]);
        if (why != NULL) {
            return why;
        }
    }
    return NULL;
}

static void handle_channel(struct hark_worker *w, const struct hark_http_request *req,
                           const struct hark_channel *ch, const char *path, const char *query,
                           const char *signed_url)
{
    struct hark_request hr = {0};
    struct hark_response resp = {0};
    struct hark_batch batch = {0};
    struct hark_scratch scratch = {NULL, NULL};
    struct pending *p;
    const char *why;
    int rc;

    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0) {
        send_text(req->conn, 405, "Allow: GET, POST\r\n", "method not allowed\n");
        return;
    }
    hr.body = (const unsigned char *)req->body;
    hr.body_len = req->body_len;
    hr.method = req->method;
    hr.path = path;
    hr.query = query;
    hr.now_ms = hark_now_ms();
    hr.header = request_header;
    hr.impl = req;
    hr.scratch = &scratch;
    hr.signed_url = signed_url;
    rc = ch->adapter->verify ? (int)ch->adapter->verify(ch, &hr, &resp) : HARK_VERIFIED;
    if (rc == HARK_ANSWERED) {
        if (scratch.free != NULL) {
            scratch.free(scratch.data);
        }
        if (resp.status >= 400) {
            log_warn("http", "channel=%s status=%d reason=\"%s\"", ch->name, resp.status,
                     resp.reason);
        }
        goto reply_now;
    }
    rc = ch->adapter->parse(ch, &hr, &batch, &resp);
    if (scratch.free != NULL) {
        scratch.free(scratch.data);
    }
    if (rc < 0) {
        hark_batch_clear(&batch);
        log_warn("http", "channel=%s status=%d reason=\"%s\"", ch->name, resp.status, resp.reason);
        goto reply_now;
    }
    why = validate_batch(&batch);
    if (why != NULL) {
        hark_batch_clear(&batch);
        hark_response_fail(&resp, 400, "%s", why);
        log_warn("http", "channel=%s status=400 reason=\"%s\"", ch->name, why);
        goto reply_now;
    }
    if (batch.n == 0) {
        if (resp.note[0] != '\0') {
            log_warn("http", "channel=%s note=\"%s\"", ch->name, resp.note);
        }
        goto reply_now;
    }
    p = hark_calloc(1, sizeof(*p));
    if (p == NULL) {
        hark_batch_clear(&batch);
        hark_response_fail(&resp, 503, "out of memory");
        goto reply_now;
    }
    p->worker = w;
    p->conn = req->conn;
    p->ch = ch;
    p->resp = resp;
    p->n_records = batch.n;
    p->started_ms = hr.now_ms;
    w->requests_waiting++;
    hark_store_submit(w->store, &batch, on_stored, p);
    hark_free(batch.msgs);
    return;

reply_now:
    hark_http_respond(req->conn, resp.status ? resp.status : 500, resp.content_type, NULL,
                      resp.body, resp.body_len);
    hark_response_clear(&resp);
}

/*
 * The origin-form of a request-target: an absolute-form one
 * ("http://host/path?q", as proxies send) loses its scheme and authority.
 */
static const char *origin_form(const char *target)
{
    if (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0) {
        const char *slash = strchr(strstr(target, "//") + 2, '/');
        return slash ? slash : "/";
    }
    return target;
}

/* Every request lands here. */
static void on_request(void *arg, struct hark_http_request *req)
{
    struct hark_worker *w = arg;
    const struct hark_settings *s = w->settings;
    const struct hark_channel *ch;
    char *path = (char *)origin_form(req->target), *query;

    if (w->stopping) {
        send_text(req->conn, 503, NULL, "shutting down\n");
        return;
    }
    query = strchr(path, '?');
    if (query != NULL) {
        *query++ = '\0';
    }
    if (strcmp(path, "/healthz") == 0) {
        handle_health(w, req, 0);
    } else if (strcmp(path, "/readyz") == 0) {
        handle_health(w, req, 1);
    } else if (w->ratelimit != NULL && !hark_ratelimit_allow(w->ratelimit, req->peer,
                                                              hark_now_ms())) {
        send_text(req->conn, 429, "Retry-After: 1\r\n", "too many requests\n");
    } else if ((ch = hark_settings_route(s, path)) == NULL) {
        send_text(req->conn, 404, NULL, "not found\n");
    } else {
        /* The URL the provider signed: public_url + path [+ '?' + query]. */
        char *signed_url = hark_asprintf("%s%s%s%s", s->public_url, path, query ? "?" : "",
                                         query ? query : "");
        if (signed_url == NULL) {
            send_text(req->conn, 500, NULL, "out of memory\n");
        } else {
            handle_channel(w, req, ch, path, query, signed_url);
        }
        hark_free(signed_url);
    }
}

int hark_http_install(struct hark_worker *w)
{
    const struct hark_settings *s = w->settings;
    const struct hark_http_limits limits = {
        .max_body = s->max_body,
        .max_head = s->max_headers,
        .timeout_ms = s->request_timeout_ms,
    };

    w->http = hark_http_server_new(w->base, &limits, on_request, w);
    return w->http ? 0 : -1;
}
