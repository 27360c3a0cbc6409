/*
 * The HTTP/1.1 server under the webhook front: listeners, connections,
 * request framing (http_parse.c) and one response per request.
 *
 * Why not evhttp: libevent's server enables and disables a connection's
 * events several times per request and asks the socket's size with an
 * ioctl before each read: about six system calls per request where one
 * read and one write are needed. Here a connection keeps its read event
 * for its whole life, reads into one buffer, and answers with one send;
 * the write event is used only when the socket cannot take the answer.
 *
 * Everything runs on one event base (one worker). A request handler may
 * answer at once or later (after the store acknowledged); the connection
 * waits for that answer before it reads the next request, so pipelined
 * requests are answered in order.
 */
#ifndef HARK_HTTP_SERVER_H
#define HARK_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct hark_http_server;
struct hark_http_conn;

/* A request, valid only during the handler call (it lives in the connection's buffer). */
struct hark_http_request {
    struct hark_http_conn *conn;    /* to answer with, now or later */
    const char *method;
    char *target;                   /* raw request-target; the handler may cut it */
    const char *peer;               /* client address as text ("unix" for a unix socket) */
    char *body;                     /* NUL-terminated; body_len excludes the NUL */
    size_t body_len;
};

typedef void (*hark_http_handler)(void *arg, struct hark_http_request *req);

struct hark_http_limits {
    size_t max_body;                /* larger bodies: 413 */
    size_t max_head;                /* larger heads: 431 */
    int64_t timeout_ms;             /* idle, read and write timeout of a connection */
};

struct hark_http_server *hark_http_server_new(struct event_base *base,
                                              const struct hark_http_limits *limits,
                                              hark_http_handler handler, void *arg);

/* Accept connections on the listening socket fd (non-blocking; the server owns it). */
int hark_http_server_listen(struct hark_http_server *srv, int fd);

/*
 * Stop accepting and close idle connections. Requests being read or
 * waiting for their answer go on; their connections close after it.
 */
void hark_http_server_stop(struct hark_http_server *srv);

/* Close every connection and listener and free the server. */
void hark_http_server_free(struct hark_http_server *srv);

/* A header of the request being handled (case-insensitive), or NULL. */
const char *hark_http_request_header(const struct hark_http_request *req, const char *name);

/*
 * Answer the request of conn: exactly once per request, during the
 * handler call or after it. extra_headers: "Name: value\r\n" lines or
 * NULL. A 503 gets Retry-After. The body is copied (NULL when len is 0).
 */
void hark_http_respond(struct hark_http_conn *conn, int status, const char *content_type,
                       const char *extra_headers, const char *body, size_t len);

#endif
