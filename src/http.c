/*
 * The HTTP front: health endpoints, routing to channel adapters, and the
 * one reply each request gets (after the store acknowledged its records).
 */
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "hark/alloc.h"
#include "hark/log.h"
#include "hark/text.h"
#include "worker.h"

/* A request waiting for its records to be stored. */
struct pending {
    struct hark_worker *worker;
    struct evhttp_request *req;
    const struct hark_channel *ch;
    struct hark_response resp;
    size_t n_records;
    int64_t started_ms;
};

static const char *request_header(const struct hark_request *req, const char *name)
{
    return evhttp_find_header((const struct evkeyvalq *)req->impl, name);
}

/* Send one reply and log it; body may be NULL. */
static void send_reply(struct evhttp_request *req, int status, const char *content_type,
                       const char *body, size_t len)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);

    if (content_type != NULL) {
        evhttp_add_header(headers, "Content-Type", content_type);
    }
    if (status == 503) {
        evhttp_add_header(headers, "Retry-After", "5");
    }
    if (body != NULL && len > 0) {
        evbuffer_add(out, body, len);
    }
    evhttp_send_reply(req, status, NULL, out);
}

static void send_text(struct evhttp_request *req, int status, const char *text)
{
    send_reply(req, status, "text/plain; charset=utf-8", text, strlen(text));
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    default:
        return "OTHER";
    }
}

static void handle_health(struct hark_worker *w, struct evhttp_request *req, int ready)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        send_text(req, 405, "method not allowed\n");
        return;
    }
    /* Ready means every worker reaches Redis, whichever one answers. */
    if (ready && atomic_load(&w->fleet->redis_up) < w->fleet->n_workers) {
        send_text(req, 503, "redis unreachable\n");
        return;
    }
    send_text(req, 200, "ok\n");
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
        send_reply(p->req, p->resp.status, p->resp.content_type, p->resp.body, p->resp.body_len);
        log_debug("http", "channel=%s status=%d records=%zu ms=%lld", p->ch->name, p->resp.status,
                  p->n_records, (long long)ms);
    } else {
        log_warn("http", "channel=%s status=503 records=%zu msg=\"store unavailable, provider "
                 "will retry\"", p->ch->name, p->n_records);
        send_text(p->req, 503, "storage unavailable, retry later\n");
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

static void handle_channel(struct hark_worker *w, struct evhttp_request *req,
                           const struct hark_channel *ch, const char *path)
{
    const struct hark_settings *s = w->settings;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    const char *uri = evhttp_request_get_uri(req);
    const struct evhttp_uri *parsed = evhttp_request_get_evhttp_uri(req);
    struct hark_request hr = {0};
    struct hark_response resp = {0};
    struct hark_batch batch = {0};
    struct hark_scratch scratch = {NULL, NULL};
    struct pending *p;
    char *signed_url;
    const char *why;
    int rc;

    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, POST");
        send_text(req, 405, "method not allowed\n");
        return;
    }
    /* NUL-terminate the body for parsers' convenience; body_len excludes it. */
    hr.body_len = evbuffer_get_length(in);
    evbuffer_add(in, "", 1);
    hr.body = evbuffer_pullup(in, -1);
    hr.method = method_name(cmd);
    hr.path = path;
    hr.query = evhttp_uri_get_query(parsed);
    hr.now_ms = hark_now_ms();
    hr.header = request_header;
    hr.impl = evhttp_request_get_input_headers(req);
    hr.scratch = &scratch;
    signed_url = hark_asprintf("%s%s", s->public_url, uri);
    if (signed_url == NULL || hr.body == NULL) {
        hark_free(signed_url);
        send_text(req, 500, "out of memory\n");
        return;
    }
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
    p->req = req;
    p->ch = ch;
    p->resp = resp;
    p->n_records = batch.n;
    p->started_ms = hr.now_ms;
    w->requests_waiting++;
    hark_free(signed_url);
    hark_store_submit(w->store, &batch, on_stored, p);
    hark_free(batch.msgs);
    return;

reply_now:
    hark_free(signed_url);
    send_reply(req, resp.status ? resp.status : 500, resp.content_type, resp.body, resp.body_len);
    hark_response_clear(&resp);
}

/* Every request lands here. */
static void on_request(struct evhttp_request *req, void *arg)
{
    struct hark_worker *w = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const struct hark_channel *ch;

    if (path == NULL || path[0] == '\0') {
        path = "/";
    }
    if (w->stopping) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        send_text(req, 503, "shutting down\n");
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        handle_health(w, req, 0);
        return;
    }
    if (strcmp(path, "/readyz") == 0) {
        handle_health(w, req, 1);
        return;
    }
    if (w->ratelimit != NULL) {
        char *peer = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &port);
        if (!hark_ratelimit_allow(w->ratelimit, peer, hark_now_ms())) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
            send_text(req, 429, "too many requests\n");
            return;
        }
    }
    ch = hark_settings_route(w->settings, path);
    if (ch == NULL) {
        send_text(req, 404, "not found\n");
        return;
    }
    handle_channel(w, req, ch, path);
}

void hark_http_install(struct hark_worker *w)
{
    const struct hark_settings *s = w->settings;

    evhttp_set_gencb(w->http, on_request, w);
    evhttp_set_max_body_size(w->http, (ev_ssize_t)s->max_body);
    evhttp_set_max_headers_size(w->http, (ev_ssize_t)s->max_headers);
    evhttp_set_timeout(w->http, (int)(s->request_timeout_ms / 1000));
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(w->http, "text/plain; charset=utf-8");
}
