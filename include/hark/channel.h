/*
 * hark: the adapter contract.
 *
 * An adapter is a const table of operations registered by name (like a
 * Fluent Bit plugin): one adapter type runs any number of channel
 * instances, each with its own ctx created by `init`. The core owns HTTP,
 * Redis, timers and retries; adapters only translate.
 *
 * Webhook adapters are called in two steps for each request routed to
 * their path: `verify` (handshakes and signatures, before anything is
 * parsed), then `parse` (bytes to normalized messages; pure: no I/O, no
 * globals, so that it can be unit-tested and fuzzed). The core replies
 * exactly once per request: with the response prepared by the adapter
 * once every message of the batch is acknowledged by Redis, or with 503
 * when the store fails.
 */
#ifndef HARK_CHANNEL_H
#define HARK_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "hark/conf.h"
#include "hark/msg.h"

struct event_base;
struct hark_core;

/*
 * Work an adapter's verify step may hand to its parse step for the same
 * request (a decoded form, say), so nothing is decoded twice. The core
 * calls free(data) after parse; data NULL means parse starts afresh.
 */
struct hark_scratch {
    void *data;
    void (*free)(void *data);
};

/* A request as the adapter sees it: borrowed, valid during the call. */
struct hark_request {
    const char *method;         /* "GET", "POST", ... */
    const char *path;           /* path as sent (escapes kept), without query */
    const char *query;          /* raw query string without '?', or NULL */
    const unsigned char *body;  /* raw bytes (NUL-terminated for convenience) */
    size_t body_len;
    /* public_url + path [+ '?' + query]: the URL the provider signed. */
    const char *signed_url;
    int64_t now_ms;
    /* Header lookup (case-insensitive), NULL when absent. */
    const char *(*header)(const struct hark_request *req, const char *name);
    const void *impl;
    struct hark_scratch *scratch;   /* may be NULL (tests, fuzzers) */
};

/* The answer prepared by the adapter. */
struct hark_response {
    int status;
    const char *content_type;   /* static */
    char *body;                 /* owned (hark_malloc), may be NULL */
    size_t body_len;
    char reason[192];           /* why it failed: for the log line */
    char note[192];             /* on success: something operators should see (logged) */
};

/* Set status and a copy of body (NULL: empty). 0 or -1. */
int hark_response_set(struct hark_response *resp, int status,
                      const char *content_type, const char *body);

/*
 * Fail with status and a reason that goes into the log line and, followed
 * by a newline, into the text/plain body. Always returns -1 so that
 * parsers can `return hark_response_fail(...)`.
 */
int hark_response_fail(struct hark_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void hark_response_clear(struct hark_response *resp);

/* Verdict of a verify step. */
enum hark_verdict {
    HARK_VERIFIED = 0,   /* authentic: go on to parse */
    HARK_ANSWERED = 1,   /* resp is final (handshake answered, or rejected) */
};

struct hark_channel;

/* Capabilities. */
#define HARK_CAP_WEBHOOK 0x1u   /* receives HTTP requests on its path */
#define HARK_CAP_POLLER 0x2u    /* runs its own connection on the loop (IMAP) */
#define HARK_CAP_SENDER 0x4u    /* can deliver replies */

/* A provider HTTP call prepared by an adapter's send step. */
struct hark_http_call {
    const char *method;         /* static */
    char *url;                  /* owned */
    char *headers[8];           /* owned "Name: value" lines */
    size_t n_headers;
    char *body;                 /* owned */
    size_t body_len;
    char *userpwd;              /* owned "user:password" for basic auth, or NULL */
    char *bearer;               /* owned OAuth 2.0 bearer token, or NULL */
    /* SMTP (url smtp:// or smtps://): envelope; body is the RFC 5322 message. */
    char *mail_from;
    char *rcpt_to;
    /* TLS trust for this call: a PEM file of a private CA (NULL: system store). */
    char *ca_file;
    int tls_no_verify;          /* 1 only when the operator turned verification off */
};

/* What a reply to deliver looks like to a sender (borrowed). */
struct hark_outbound {
    const char *message_id;     /* our id of the outbound message */
    const char *conversation_id;
    const char *channel;
    const char *to;             /* the customer's provider id */
    const char *from;           /* our id on the channel (number, page) */
    const char *text;
    const char *const *attachment_urls;
    size_t n_attachments;
    const char *reply_to;       /* provider id of the message answered, or NULL */
    const char *subject;        /* email: subject of the conversation */
    const char *references;     /* email: space-separated Message-IDs, oldest first */
    const char *thread_ref;     /* comments/mentions: comment or tweet answered; NULL for DMs */
    const char *template_name;  /* WhatsApp template outside the 24 h window */
    int64_t last_inbound_at;    /* epoch ms of the customer's last message */
};

/* The outcome of a provider call, as the adapter reads the answer. */
enum hark_send_outcome {
    HARK_SEND_OK = 0,
    HARK_SEND_RETRY,            /* transient: try again later */
    HARK_SEND_FAIL,             /* permanent: record the failure */
};

struct hark_adapter {
    const char *name;
    unsigned caps;
    const struct hark_conf_key *keys;   /* allowed keys besides type and path */

    /* Create ch->ctx from ch->section; 0, or -1 with err filled. */
    int (*init)(struct hark_channel *ch, char *err, size_t err_len);
    void (*destroy)(void *ctx);

    /* Webhook (HARK_CAP_WEBHOOK). */
    enum hark_verdict (*verify)(const struct hark_channel *ch,
                                const struct hark_request *req,
                                struct hark_response *resp);
    int (*parse)(const struct hark_channel *ch, const struct hark_request *req,
                 struct hark_batch *out, struct hark_response *resp);

    /* Poller (HARK_CAP_POLLER): run on the given event base. */
    int (*start)(struct hark_channel *ch, struct event_base *base);
    void (*stop)(struct hark_channel *ch);

    /* Sender (HARK_CAP_SENDER): build the provider request, read its answer. */
    int (*build_send)(const struct hark_channel *ch, const struct hark_outbound *ob,
                      struct hark_http_call *call, char *err, size_t err_len);
    enum hark_send_outcome (*read_send)(const struct hark_channel *ch, long http_status,
                                        const char *body, size_t body_len,
                                        char **provider_message_id,
                                        char *err, size_t err_len);
    /* Status callbacks arrive through verify/parse as HARK_KIND_STATUS messages. */
};

/* One configured instance: [channel.NAME]. */
struct hark_channel {
    char *name;                         /* instance name: the message's account */
    const struct hark_adapter *adapter;
    char *path;                         /* webhook route */
    const struct hark_section *section;
    void *ctx;
    struct hark_core *core;             /* for pollers: hark_ingest() */
};

/*
 * ob->text followed by each attachment URL on its own line, for channels
 * that send links instead of files. New string, or NULL when it would be
 * longer than max bytes (0: 1 MiB) or memory ran out.
 */
char *hark_outbound_text(const struct hark_outbound *ob, size_t max);

/* Release what an adapter's build_send filled. */
void hark_http_call_clear(struct hark_http_call *call);

#endif
