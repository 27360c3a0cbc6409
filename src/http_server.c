/*
 * The HTTP/1.1 server: connections and their buffers (see http_server.h).
 *
 * A connection's life: it reads into one buffer until a request is framed
 * (http_parse.c), hands it to the handler and stops framing until the
 * answer is written; what arrives meanwhile waits in the buffer (a
 * pipelined request). The read event stays added the whole time, so the
 * common request costs one recv and one send. One timer per connection
 * bounds the wait for a request (idle and slow senders) and for a client
 * that does not take its answer; none runs while the store works.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "hark/alloc.h"
#include "hark/buf.h"
#include "hark/log.h"
#include "http_parse.h"
#include "http_server.h"

#define IN_INITIAL 4096             /* a webhook request fits in one page */
#define IN_KEEP_MAX 16384           /* a larger idle buffer is given back */
#define CHUNK_SLACK 16384           /* framing of a chunked body beyond its data */
#define ACCEPT_BURST 32             /* connections taken per wake-up */
#define LINGER_MS 2000              /* wait for the client to close after our close */
#define ACCEPT_PAUSE_MS 1000        /* after running out of descriptors */

struct listener {
    int fd;
    struct event *ev;
};

struct hark_http_server {
    struct event_base *base;
    struct hark_http_limits limits;
    hark_http_handler handler;
    void *arg;
    struct listener *listeners;
    size_t n_listeners;
    struct event *resume_accept;
    struct hark_http_conn *conns;   /* every open connection, for stop and free */
    const struct timeval *timeout;  /* libevent common timeout of limits.timeout_ms */
    int stopping;
    time_t date_sec;
    char date[40];                  /* Date header value, rebuilt once a second */
};

struct hark_http_conn {
    struct hark_http_server *srv;
    struct hark_http_conn *prev, *next;
    int fd;
    struct event *rev, *wev, *timer;
    char *in;                       /* in_len < in_cap: one byte stays spare for a NUL */
    size_t in_len, in_cap;
    size_t scan;                    /* head terminator search position */
    size_t head_len;                /* > 0: the current request's head is parsed */
    struct hark_http_head head;
    struct hark_chunked chunk;
    struct hark_buf out;            /* answers to send; at most hark_buf's 1 MiB */
    size_t out_pos;                 /* sent so far */
    char peer[INET6_ADDRSTRLEN];
    unsigned busy : 1;              /* a request waits for its answer */
    unsigned keep_alive : 1;
    unsigned head_only : 1;         /* HEAD: no body in the answer */
    unsigned close_after : 1;       /* close once the answer is written */
    unsigned in_process : 1;        /* inside conn_process: answers do not recurse */
    unsigned read_paused : 1;       /* read event removed: buffer full while busy */
    unsigned writing : 1;           /* write event added */
    unsigned eof : 1;               /* the client closed its side */
    unsigned lingering : 1;         /* our side is shut: reading until the client closes */
    unsigned dead : 1;              /* socket gone; the struct waits for the answer */
};

static void conn_process(struct hark_http_conn *c);

static void conn_release_socket(struct hark_http_conn *c)
{
    if (c->rev) {
        event_free(c->rev);
    }
    if (c->wev) {
        event_free(c->wev);
    }
    if (c->timer) {
        event_free(c->timer);
    }
    c->rev = c->wev = c->timer = NULL;
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
    c->dead = 1;
}

/*
 * Close a connection. One whose request still waits for its answer keeps
 * its struct (the handler holds it) until hark_http_respond.
 */
static void conn_close(struct hark_http_conn *c)
{
    conn_release_socket(c);
    if (c->busy) {
        return;
    }
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        c->srv->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    hark_free(c->in);
    hark_buf_free(&c->out);
    hark_free(c);
}

static void arm_timer(struct hark_http_conn *c, const struct timeval *tv)
{
    if (c->timer) {
        event_add(c->timer, tv);
    }
}

/* Write what is pending; the write event only while the socket is full. */
static void conn_flush(struct hark_http_conn *c)
{
    while (c->out_pos < c->out.len && !c->dead) {
        ssize_t n = send(c->fd, c->out.s + c->out_pos, c->out.len - c->out_pos, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_pos += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->writing) {
                event_add(c->wev, NULL);
                c->writing = 1;
            }
            arm_timer(c, c->srv->timeout);
            return;
        } else {
            log_debug("http", "peer=%s msg=\"send failed\" error=\"%s\"", c->peer,
                      n < 0 ? strerror(errno) : "closed");
            conn_release_socket(c);
        }
    }
    c->out_pos = c->out.len = 0;
    if (c->writing && !c->dead) {
        event_del(c->wev);
        c->writing = 0;
    }
}

/*
 * After reading or writing: close when the exchange is over, wait for the
 * client to take what is pending, or linger after an error answer so that
 * the client reads it instead of a reset.
 */
static void conn_settle(struct hark_http_conn *c)
{
    static const struct timeval linger = {LINGER_MS / 1000, (LINGER_MS % 1000) * 1000};

    if (c->dead) {
        if (!c->busy) {
            conn_close(c);
        }
        return;
    }
    if (c->busy || c->out_pos < c->out.len || c->lingering) {
        return;
    }
    if (c->close_after || (c->eof && c->in_len == 0)) {
        if (c->eof) {
            conn_close(c);
            return;
        }
        /* Unread bytes would make our close a reset that can destroy the answer. */
        shutdown(c->fd, SHUT_WR);
        c->lingering = 1;
        if (c->read_paused) {
            event_add(c->rev, NULL);
            c->read_paused = 0;
        }
        arm_timer(c, &linger);
        return;
    }
    if (c->eof) {
        conn_close(c);          /* a partial request that can never complete */
        return;
    }
    if (c->read_paused) {
        event_add(c->rev, NULL);
        c->read_paused = 0;
    }
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

/* The Date header (RFC 9110 6.6.1), from the loop's cached clock. */
static const char *http_date(struct hark_http_server *srv)
{
    struct timeval tv = {0, 0};

    if (event_base_gettimeofday_cached(srv->base, &tv) < 0 || tv.tv_sec != srv->date_sec) {
        struct tm tm;
        time_t now = tv.tv_sec;
        if (gmtime_r(&now, &tm) == NULL ||
            strftime(srv->date, sizeof(srv->date), "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0) {
            srv->date[0] = '\0';
        }
        srv->date_sec = now;
    }
    return srv->date;
}

void hark_http_respond(struct hark_http_conn *c, int status, const char *content_type,
                       const char *extra_headers, const char *body, size_t len)
{
    char head[512];
    int n;

    if (!c->busy) {
        log_error("http", "peer=%s msg=\"second answer to one request dropped\" status=%d",
                  c->peer, status);
        return;
    }
    c->busy = 0;
    if (c->dead) {
        conn_close(c);          /* the client went away while we worked */
        return;
    }
    if (c->srv->stopping || !c->keep_alive) {
        c->close_after = 1;
    }
    if (extra_headers == NULL) {
        extra_headers = "";
    }
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\nDate: %s\r\n%s%s%sContent-Length: %zu\r\n%s%s",
                 status, reason_phrase(status), http_date(c->srv),
                 content_type ? "Content-Type: " : "", content_type ? content_type : "",
                 content_type ? "\r\n" : "", len,
                 status == 503 ? "Retry-After: 5\r\n" : "",
                 c->close_after ? "Connection: close\r\n" : "Connection: keep-alive\r\n");
    if (n > 0 && (size_t)n < sizeof(head)) {
        hark_buf_add(&c->out, head, (size_t)n);
        hark_buf_str(&c->out, extra_headers);
        hark_buf_add(&c->out, "\r\n", 2);
        if (!c->head_only && len > 0) {
            hark_buf_add(&c->out, body, len);
        }
    }
    if (n <= 0 || (size_t)n >= sizeof(head) || c->out.failed) {
        log_error("http", "peer=%s msg=\"cannot build the answer\" status=%d", c->peer, status);
        conn_release_socket(c);
    } else {
        conn_flush(c);
        /* An answered request starts the wait for the next one. */
        if (!c->dead && c->out_pos == c->out.len && !c->close_after) {
            arm_timer(c, c->srv->timeout);
        }
    }
    if (!c->in_process) {
        conn_process(c);
    }
}

/* Answer a request that could not be framed, then close. */
static void reply_error(struct hark_http_conn *c, int status)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%s\n", reason_phrase(status));

    log_warn("http", "peer=%s status=%d msg=\"request refused before routing\"", c->peer, status);
    c->busy = 1;
    c->keep_alive = 0;
    c->head_only = 0;
    hark_http_respond(c, status, "text/plain; charset=utf-8", NULL, body, (size_t)n);
}

/*
 * Frame the request at the start of the buffer. Returns 1 when it is
 * complete, 0 when more bytes are needed, or the status to refuse it with.
 */
static int frame_request(struct hark_http_conn *c)
{
    const struct hark_http_limits *lim = &c->srv->limits;

    if (c->head_len == 0) {
        size_t end = hark_http_head_end(c->in, c->in_len, &c->scan);
        int status;

        if (end == 0) {
            return c->in_len > lim->max_head ? 431 : 0;
        }
        if (end > lim->max_head) {
            return 431;
        }
        status = hark_http_parse_head(c->in, end, &c->head);
        if (status != 0) {
            return status;
        }
        c->head_len = end;
        memset(&c->chunk, 0, sizeof(c->chunk));
        if (c->head.has_length && c->head.content_length > lim->max_body) {
            return 413;
        }
        if (c->head.expect_continue && c->head.minor == 1 && c->in_len == end &&
            (c->head.chunked || c->head.content_length > 0)) {
            static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
            hark_buf_add(&c->out, go_on, sizeof(go_on) - 1);
            conn_flush(c);
        }
    }
    if (c->head.chunked) {
        char *body = c->in + c->head_len;
        size_t raw = c->in_len - c->head_len;
        int rc = hark_chunked_decode(&c->chunk, body, raw, lim->max_body);
        if (rc > 1) {
            return rc;
        }
        /* Drop the framing decoded so far: the buffer then holds about the data alone. */
        if (c->chunk.in > c->chunk.out) {
            memmove(body + c->chunk.out, body + c->chunk.in, raw - c->chunk.in);
            c->in_len -= c->chunk.in - c->chunk.out;
            c->chunk.in = c->chunk.out;
        }
        return rc;
    }
    return c->in_len - c->head_len >= (c->head.has_length ? c->head.content_length : 0);
}

/* Hand the framed request to the handler, then drop its bytes from the buffer. */
static void dispatch(struct hark_http_conn *c)
{
    struct hark_http_request req;
    size_t body_len = c->head.chunked ? c->chunk.out : (size_t)c->head.content_length;
    size_t consumed = c->head_len + body_len;
    char *body = c->in + c->head_len;
    char saved = body[body_len];    /* in_len < in_cap: this byte exists */

    /* The body is NUL-terminated for parsers; a pipelined request may start there. */
    body[body_len] = '\0';
    req.conn = c;
    req.method = c->in + c->head.method;
    req.target = c->in + c->head.target;
    req.peer = c->peer;
    req.body = body;
    req.body_len = body_len;
    c->busy = 1;
    c->keep_alive = c->head.keep_alive && !c->srv->stopping;
    c->head_only = strcmp(req.method, "HEAD") == 0;
    if (c->timer) {
        event_del(c->timer);    /* the store has its own deadlines */
    }
    c->srv->handler(c->srv->arg, &req);
    body[body_len] = saved;
    if (consumed < c->in_len) {
        memmove(c->in, c->in + consumed, c->in_len - consumed);
    }
    c->in_len -= consumed;
    c->head_len = 0;
    c->scan = 0;
}

/* Frame and dispatch requests while the connection is free to. */
static void conn_process(struct hark_http_conn *c)
{
    c->in_process = 1;
    while (!c->busy && !c->dead && !c->close_after && !c->lingering &&
           c->out_pos == c->out.len) {
        int rc = frame_request(c);
        if (rc == 0) {
            break;
        }
        if (rc > 1) {
            reply_error(c, rc);
            break;
        }
        dispatch(c);
    }
    c->in_process = 0;
    if (!c->busy && !c->dead && c->in_len == 0 && c->in_cap > IN_KEEP_MAX) {
        char *small = hark_realloc(c->in, IN_INITIAL);
        if (small != NULL) {
            c->in = small;
            c->in_cap = IN_INITIAL;
        }
    }
    conn_settle(c);
}

/* How large the input buffer may grow for what is being read now. */
static size_t in_limit(const struct hark_http_conn *c)
{
    const struct hark_http_limits *lim = &c->srv->limits;

    if (c->busy || c->close_after) {
        return c->in_cap;       /* pipelined bytes wait in what we have */
    }
    if (c->head_len == 0) {
        return lim->max_head + 2;
    }
    if (c->head.chunked) {
        return c->head_len + lim->max_body + CHUNK_SLACK;
    }
    return c->head_len + (size_t)c->head.content_length + 1;
}

/* Make room to read into; 0, or -1 when the buffer may not grow. */
static int in_make_room(struct hark_http_conn *c)
{
    size_t limit, cap;
    char *p;

    if (c->in_cap - c->in_len > 1) {
        return 0;
    }
    limit = in_limit(c);
    if (c->in_cap >= limit) {
        return -1;
    }
    cap = c->in_cap * 2;
    /* A body of known length is read in one go. */
    if (c->head_len > 0 && !c->head.chunked && !c->busy) {
        cap = limit;
    }
    if (cap > limit) {
        cap = limit;
    }
    p = hark_realloc(c->in, cap);
    if (p == NULL) {
        return -1;
    }
    c->in = p;
    c->in_cap = cap;
    return 0;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct hark_http_conn *c = arg;
    ssize_t n;

    (void)what;
    if (c->lingering) {
        char sink[4096];
        n = recv(fd, sink, sizeof(sink), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            conn_close(c);
        }
        return;
    }
    if (in_make_room(c) < 0) {
        if (c->busy || c->close_after) {
            /* Wait for the answer before reading on. */
            event_del(c->rev);
            c->read_paused = 1;
            return;
        }
        reply_error(c, c->head_len ? 413 : 431);
        return;
    }
    n = recv(fd, c->in + c->in_len, c->in_cap - c->in_len - 1, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            return;
        }
        log_debug("http", "peer=%s msg=\"recv failed\" error=\"%s\"", c->peer, strerror(errno));
        conn_close(c);
        return;
    }
    if (n == 0) {
        /* The client is done sending; an answer still due is sent, then we close. */
        c->eof = 1;
        event_del(c->rev);
        c->read_paused = 0;
        if (c->busy || c->out_pos < c->out.len) {
            c->close_after = 1;
            return;
        }
    } else {
        c->in_len += (size_t)n;
    }
    if (!c->busy) {
        conn_process(c);
    }
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct hark_http_conn *c = arg;

    (void)fd;
    (void)what;
    conn_flush(c);
    if (c->out_pos == c->out.len && !c->dead && !c->busy && !c->close_after) {
        arm_timer(c, c->srv->timeout);
    }
    conn_process(c);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct hark_http_conn *c = arg;

    (void)fd;
    (void)what;
    if (c->busy) {
        return;
    }
    log_debug("http", "peer=%s msg=\"connection timed out\" pending_bytes=%zu", c->peer,
              c->in_len);
    conn_close(c);
}

static void peer_text(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    const void *addr = NULL;

    if (ss->ss_family == AF_INET) {
        addr = &((const struct sockaddr_in *)ss)->sin_addr;
    } else if (ss->ss_family == AF_INET6) {
        addr = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    }
    if (addr == NULL || inet_ntop(ss->ss_family, addr, out, (socklen_t)cap) == NULL) {
        snprintf(out, cap, "unix");
    }
}

static void conn_open(struct hark_http_server *srv, int fd, const struct sockaddr_storage *ss)
{
    struct hark_http_conn *c = hark_calloc(1, sizeof(*c));

    if (c != NULL) {
        c->in = hark_malloc(IN_INITIAL);
        c->rev = event_new(srv->base, fd, EV_READ | EV_PERSIST, on_readable, c);
        c->wev = event_new(srv->base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
        c->timer = evtimer_new(srv->base, on_timeout, c);
    }
    if (c == NULL || c->in == NULL || c->rev == NULL || c->wev == NULL || c->timer == NULL ||
        event_add(c->rev, NULL) < 0) {
        log_error("http", "msg=\"out of memory for a connection\"");
        if (c != NULL) {
            c->fd = fd;
            c->srv = srv;
            conn_release_socket(c);
            hark_free(c->in);
            hark_free(c);
        } else {
            close(fd);
        }
        return;
    }
    c->srv = srv;
    c->fd = fd;
    c->in_cap = IN_INITIAL;
    peer_text(ss, c->peer, sizeof(c->peer));
    if (ss->ss_family == AF_INET || ss->ss_family == AF_INET6) {
        int one = 1;
        /* Answers are written whole; never hold one back for an ACK. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    c->next = srv->conns;
    if (srv->conns) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    arm_timer(c, srv->timeout);
}

static void set_accepting(struct hark_http_server *srv, int on)
{
    for (size_t i = 0; i < srv->n_listeners; i++) {
        if (on) {
            event_add(srv->listeners[i].ev, NULL);
        } else {
            event_del(srv->listeners[i].ev);
        }
    }
}

static void on_resume_accept(evutil_socket_t fd, short what, void *arg)
{
    struct hark_http_server *srv = arg;

    (void)fd;
    (void)what;
    if (!srv->stopping) {
        set_accepting(srv, 1);
    }
}

static void on_acceptable(evutil_socket_t lfd, short what, void *arg)
{
    struct hark_http_server *srv = arg;

    (void)what;
    for (int i = 0; i < ACCEPT_BURST; i++) {
        struct sockaddr_storage ss = {0};
        socklen_t len = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd >= 0) {
            conn_open(srv, fd, &ss);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) {
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* The backlog keeps the client waiting until descriptors free up. */
            static const struct timeval pause = {ACCEPT_PAUSE_MS / 1000, 0};
            log_warn("http", "msg=\"cannot accept, pausing\" error=\"%s\"", strerror(errno));
            set_accepting(srv, 0);
            event_add(srv->resume_accept, &pause);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            log_warn("http", "msg=\"accept failed\" error=\"%s\"", strerror(errno));
        }
        return;
    }
}

struct hark_http_server *hark_http_server_new(struct event_base *base,
                                              const struct hark_http_limits *limits,
                                              hark_http_handler handler, void *arg)
{
    struct hark_http_server *srv = hark_calloc(1, sizeof(*srv));
    struct timeval tv;

    if (srv == NULL) {
        return NULL;
    }
    srv->base = base;
    srv->limits = *limits;
    srv->handler = handler;
    srv->arg = arg;
    srv->date_sec = -1;
    tv.tv_sec = (time_t)(limits->timeout_ms / 1000);
    tv.tv_usec = (suseconds_t)(limits->timeout_ms % 1000 * 1000);
    srv->timeout = event_base_init_common_timeout(base, &tv);
    srv->resume_accept = evtimer_new(base, on_resume_accept, srv);
    if (srv->timeout == NULL || srv->resume_accept == NULL) {
        hark_http_server_free(srv);
        return NULL;
    }
    return srv;
}

int hark_http_server_listen(struct hark_http_server *srv, int fd)
{
    struct listener *l = hark_realloc(srv->listeners, (srv->n_listeners + 1) * sizeof(*l));
    struct event *ev;

    if (l == NULL) {
        return -1;
    }
    srv->listeners = l;
    ev = event_new(srv->base, fd, EV_READ | EV_PERSIST, on_acceptable, srv);
    if (ev == NULL || event_add(ev, NULL) < 0) {
        if (ev) {
            event_free(ev);
        }
        return -1;
    }
    l[srv->n_listeners].fd = fd;
    l[srv->n_listeners].ev = ev;
    srv->n_listeners++;
    return 0;
}

static void close_listeners(struct hark_http_server *srv)
{
    for (size_t i = 0; i < srv->n_listeners; i++) {
        event_free(srv->listeners[i].ev);
        close(srv->listeners[i].fd);
    }
    hark_free(srv->listeners);
    srv->listeners = NULL;
    srv->n_listeners = 0;
}

void hark_http_server_stop(struct hark_http_server *srv)
{
    struct hark_http_conn *c, *next;

    srv->stopping = 1;
    close_listeners(srv);
    if (srv->resume_accept) {
        event_del(srv->resume_accept);
    }
    for (c = srv->conns; c; c = next) {
        next = c->next;
        if (!c->busy && c->in_len == 0 && c->out_pos == c->out.len) {
            conn_close(c);
        }
    }
}

void hark_http_server_free(struct hark_http_server *srv)
{
    if (srv == NULL) {
        return;
    }
    close_listeners(srv);
    while (srv->conns) {
        struct hark_http_conn *c = srv->conns;
        c->busy = 0;            /* nobody will answer now: the loop is gone */
        conn_close(c);
    }
    if (srv->resume_accept) {
        event_free(srv->resume_accept);
    }
    hark_free(srv);
}

const char *hark_http_request_header(const struct hark_http_request *req, const char *name)
{
    return hark_http_head_field(&req->conn->head, req->conn->in, name);
}
