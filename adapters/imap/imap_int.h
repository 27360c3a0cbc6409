/*
 * hark: private state of the IMAP adapter (imap.c, imap_conn.c, imap_sync.c).
 *
 * One struct imap_ctx per [channel.NAME] of type imap. It owns one
 * connection at a time; everything runs on the loop given to start().
 *
 * Async calls into the core (hark_ingest, hark_state_*, hark_quarantine)
 * carry a struct imap_op: the callback finds the ctx through it and
 * ignores the answer when the connection it belonged to is gone (the
 * generation changed) or when the ctx was destroyed (op->ctx NULL).
 */
#ifndef HARK_IMAP_INT_H
#define HARK_IMAP_INT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "hark/channel.h"
#include "hark/core.h"
#include "imap_proto.h"

#define IMAP_SLICE_MAX 50                       /* messages per UID FETCH */
#define IMAP_SLICE_BYTES (32u * 1024 * 1024)    /* bytes per UID FETCH */
#define IMAP_PENDING_MAX 10000                  /* UIDs listed per round */
#define IMAP_HEADER_PEEK 16384                  /* header bytes kept of a too large message */
#define IMAP_CMD_TIMEOUT_S 120

enum imap_state {
    IMAP_S_STOPPED = 0,
    IMAP_S_WAIT,            /* reconnect timer armed */
    IMAP_S_CONNECT,         /* DNS + TCP (+ TLS for imaps) */
    IMAP_S_GREETING,
    IMAP_S_STARTTLS,        /* STARTTLS sent */
    IMAP_S_TLS,             /* TLS handshake after STARTTLS */
    IMAP_S_CAPABILITY,      /* CAPABILITY before login */
    IMAP_S_AUTH,            /* LOGIN / AUTHENTICATE sent */
    IMAP_S_POSTCAP,         /* CAPABILITY after login */
    IMAP_S_SELECT,
    IMAP_S_CHECKPOINT,      /* reading / writing the checkpoint */
    IMAP_S_LIST,            /* UID FETCH n:* (UID RFC822.SIZE) */
    IMAP_S_FETCH,           /* UID FETCH of one slice */
    IMAP_S_PROCESS,         /* storing the slice, one message at a time */
    IMAP_S_AFTER,           /* after_ingest commands */
    IMAP_S_RETRY,           /* the store asked us to come back later */
    IMAP_S_IDLE_START,      /* IDLE sent, waiting for "+" */
    IMAP_S_IDLE,
    IMAP_S_IDLE_DONE,       /* DONE sent */
    IMAP_S_POLL,            /* no IDLE: waiting for the poll timer */
    IMAP_S_NOOP,
    IMAP_S_COUNT,
};

/* One message of the current slice. */
struct imap_item {
    uint32_t uid;
    uint64_t size;
    int too_large;          /* only the header was fetched */
    char *raw;              /* owned; NULL when the server sent nothing */
    size_t len;
};

struct imap_pending {
    uint32_t uid;
    uint64_t size;
};

struct imap_ctx;

struct imap_op {
    struct imap_ctx *ctx;   /* NULL once the ctx is gone */
    unsigned gen;
    struct imap_op *prev, *next;
};

struct imap_ctx {
    struct hark_channel *ch;
    const char *name;

    /* Configuration. */
    struct imap_url url;
    char *username;
    struct hark_secret *password;
    struct hark_secret *oauth_token;
    enum imap_after after;
    char folder[256];
    char *ca_file;
    int tls_verify;
    int starttls;
    int64_t poll_ms;
    int64_t idle_restart_ms;
    uint64_t max_size;
    char *attachment_dir;
    char *attachment_url;
    uint64_t attachment_max;
    int ingest_auto;
    char *from_addr;        /* our address (lowercased), from `from` or username */

    /* Loop resources. */
    struct event_base *base;
    struct evdns_base *dns;
    SSL_CTX *ssl_ctx;
    struct bufferevent *bev;
    struct event *timer;    /* reconnect, poll, idle restart, retry */
    unsigned gen;           /* bumped for each connection */
    unsigned attempt;       /* reconnect attempts since the last good round */
    struct imap_op *ops;

    /* Connection. */
    enum imap_state state;
    unsigned tagno;
    char tag[IMAP_TAG_MAX + 1];
    unsigned caps;
    int auth_xoauth2;
    int auth_retried;
    int auth_sent_ir;       /* the SASL response went out already */
    int discard_input;      /* STARTTLS: drop what came with the OK */
    int got_exists;
    uint64_t uidvalidity;
    uint32_t last_uid;      /* checkpoint: every UID up to it is stored */
    char *stored_validity;
    int have_checkpoint;    /* last_uid is valid for this connection */
    int cur_stored;         /* the current message was stored (not quarantined) */

    /* Receive buffer of the response being framed. */
    char *rbuf;
    size_t rlen, rcap, rmax;
    struct imap_framer fr;

    /* Work of this round. */
    struct imap_pending *pending;
    size_t n_pending, pos_pending;
    int truncated;          /* more UIDs than IMAP_PENDING_MAX */
    struct imap_item slice[IMAP_SLICE_MAX];
    size_t n_slice, pos_slice;
    uint32_t done_uids[IMAP_SLICE_MAX];
    size_t n_done;
    int after_step;
};

/* imap_conn.c: connection and protocol state machine. */
void imap_set_state(struct imap_ctx *ctx, enum imap_state st);
int imap_send(struct imap_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int imap_send_raw(struct imap_ctx *ctx, const char *line, int secret);
void imap_fail(struct imap_ctx *ctx, const char *why);
void imap_connect(struct imap_ctx *ctx);
void imap_halt(struct imap_ctx *ctx);
void imap_arm(struct imap_ctx *ctx, int64_t ms);
int imap_tls_init(struct imap_ctx *ctx, char *err, size_t err_len);

/* imap_sync.c: checkpoint, listing, fetching, storing, after_ingest, idle. */
void imap_sync_selected(struct imap_ctx *ctx);
void imap_sync_list(struct imap_ctx *ctx);
int imap_sync_on_tagged(struct imap_ctx *ctx, const struct imap_resp *r);
int imap_sync_on_fetch(struct imap_ctx *ctx, const struct imap_resp *r);
void imap_sync_on_timer(struct imap_ctx *ctx);
void imap_sync_reset(struct imap_ctx *ctx);
void imap_sync_idle(struct imap_ctx *ctx);

/* Async operation handles. */
struct imap_op *imap_op_new(struct imap_ctx *ctx);
/* The ctx when the op is still current; frees the op either way. */
struct imap_ctx *imap_op_take(struct imap_op *op);

/* Pure helper: a readable copy of a message's header section (bounded, UTF-8 safe). */
char *imap_header_text(const char *raw, size_t len, size_t max);

#endif
