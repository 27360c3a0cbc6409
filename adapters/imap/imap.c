/*
 * hark: the IMAP pull adapter (type = imap).
 *
 * Ops table, configuration schema, ctx create/destroy, start/stop on the
 * core's event base. The connection state machine is in imap_conn.c, the
 * mailbox sync in imap_sync.c, the pure protocol code in imap_proto.c and
 * the message parsing behind mime.h.
 */
#include <stdio.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "hark/alloc.h"
#include "hark/log.h"
#include "imap_int.h"
#include "smtp_send.h"

static const struct hark_conf_key imap_keys[] = {
    {"url", HARK_CT_STRING, NULL, 1, 0, 0,
     "imaps://host:993/INBOX, or imap://host:143/INBOX (STARTTLS unless starttls = no)"},
    {"username", HARK_CT_STRING, NULL, 1, 0, 0, "login name"},
    {"password", HARK_CT_SECRET, NULL, 0, 0, 0, "password (LOGIN or AUTHENTICATE PLAIN)"},
    {"oauth_token", HARK_CT_SECRET, NULL, 0, 0, 0,
     "OAuth 2.0 access token for SASL XOAUTH2 (re-read on failure and on SIGHUP)"},
    {"after_ingest", HARK_CT_STRING, "keep", 0, 0, 0,
     "keep, seen (set \\Seen) or move:FOLDER once a message is stored"},
    {"ca_file", HARK_CT_STRING, NULL, 0, 0, 0, "PEM file of a private CA to trust"},
    {"tls_verify", HARK_CT_BOOL, "yes", 0, 0, 0, "verify the server certificate and name"},
    {"starttls", HARK_CT_BOOL, "yes", 0, 0, 0, "for imap:// URLs: upgrade with STARTTLS"},
    {"poll_interval", HARK_CT_DURATION, "60s", 0, 1000, 86400000,
     "how often to look for mail when the server lacks IDLE"},
    {"idle_restart", HARK_CT_DURATION, "25m", 0, 1000, 29 * 60000 - 1,
     "re-issue IDLE this often (below the 29 min of RFC 2177)"},
    {"max_message_size", HARK_CT_SIZE, "25m", 0, 1024, 1024LL * 1024 * 1024,
     "larger messages are quarantined with their headers"},
    {"attachment_dir", HARK_CT_STRING, NULL, 0, 0, 0, "directory where attachments are saved"},
    {"attachment_url", HARK_CT_STRING, NULL, 0, 0, 0, "base URL of attachment_dir"},
    {"attachment_max", HARK_CT_SIZE, "10m", 0, 0, 1024LL * 1024 * 1024,
     "larger attachments are listed but not saved"},
    {"ingest_auto", HARK_CT_BOOL, "no", 0, 0, 0,
     "store auto-generated mail (auto-replies, bounces, lists) as messages"},
    {"smtp_url", HARK_CT_STRING, NULL, 0, 0, 0, "smtps://host:465 or smtp://host:587 for replies"},
    {"from", HARK_CT_STRING, NULL, 0, 0, 0, "our address: replies come from it"},
    {NULL, 0, NULL, 0, 0, 0, NULL},
};

/* Copy a string setting or leave NULL. 0, or -1 when out of memory. */
static int dup_opt(const struct hark_section *sec, const char *key, char **out)
{
    const char *v = hark_section_get(sec, key);
    *out = NULL;
    if (v == NULL || *v == '\0') {
        return 0;
    }
    *out = hark_strdup(v);
    return *out ? 0 : -1;
}

static void imap_destroy(void *arg);

/*
 * Read [channel.NAME] into a new ctx; cross-field checks (exactly one of
 * password and oauth_token, a valid URL and after_ingest) happen here.
 * Returns 0, or -1 with a sentence in err.
 */
static int imap_init(struct hark_channel *ch, char *err, size_t err_len)
{
    const struct hark_section *sec = ch->section;
    struct imap_ctx *ctx = hark_calloc(1, sizeof(*ctx));
    const char *v;

    if (ctx == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    ctx->ch = ch;
    ctx->name = ch->name;
    ch->ctx = ctx;
    v = hark_section_get(sec, "url");
    if (v == NULL || imap_url_parse(v, &ctx->url, err, err_len) < 0) {
        if (v == NULL) {
            snprintf(err, err_len, "url is required");
        }
        goto fail;
    }
    v = hark_section_get(sec, "username");
    if (v == NULL || *v == '\0' || strpbrk(v, "\r\n") != NULL) {
        snprintf(err, err_len, "username is required (one line)");
        goto fail;
    }
    ctx->username = hark_strdup(v);
    ctx->password = hark_section_secret(sec, "password");
    ctx->oauth_token = hark_section_secret(sec, "oauth_token");
    if ((ctx->password == NULL) == (ctx->oauth_token == NULL)) {
        snprintf(err, err_len, "set exactly one of password and oauth_token");
        goto fail;
    }
    if (imap_after_parse(hark_section_get(sec, "after_ingest"), &ctx->after, ctx->folder,
                         sizeof(ctx->folder)) < 0) {
        snprintf(err, err_len, "after_ingest must be keep, seen or move:FOLDER (ASCII)");
        goto fail;
    }
    ctx->tls_verify = hark_section_bool(sec, "tls_verify", 1);
    ctx->starttls = hark_section_bool(sec, "starttls", 1);
    ctx->poll_ms = hark_section_duration_ms(sec, "poll_interval", 60000);
    ctx->idle_restart_ms = hark_section_duration_ms(sec, "idle_restart", 25 * 60000);
    ctx->max_size = (uint64_t)hark_section_size(sec, "max_message_size", 25LL << 20);
    ctx->attachment_max = (uint64_t)hark_section_size(sec, "attachment_max", 10LL << 20);
    ctx->ingest_auto = hark_section_bool(sec, "ingest_auto", 0);
    if (ctx->poll_ms < 1000 || ctx->idle_restart_ms < 1000 || ctx->idle_restart_ms >= 29 * 60000
        || ctx->max_size < 1024) {
        snprintf(err, err_len, "poll_interval, idle_restart (< 29m) or max_message_size out of range");
        goto fail;
    }
    if (dup_opt(sec, "ca_file", &ctx->ca_file) < 0
        || dup_opt(sec, "attachment_dir", &ctx->attachment_dir) < 0
        || dup_opt(sec, "attachment_url", &ctx->attachment_url) < 0
        || dup_opt(sec, "from", &ctx->from_addr) < 0 || ctx->username == NULL) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    if (ctx->from_addr == NULL && strchr(ctx->username, '@') != NULL) {
        ctx->from_addr = hark_strdup(ctx->username);
    }
    for (char *p = ctx->from_addr; p && *p; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            *p = (char)(*p - 'A' + 'a');
        }
    }
    if (!ctx->url.tls && !ctx->starttls) {
        log_warn("imap", "channel=%s url is imap:// with starttls = no: credentials and mail "
                 "travel in clear text", ctx->name);
    }
    /* Response buffer: the largest literal plus room for the lines around it. */
    ctx->rmax = (size_t)ctx->max_size + IMAP_HEADER_PEEK
                + (size_t)(IMAP_LITERALS_MAX + 2) * IMAP_LINE_MAX;
    if (imap_tls_init(ctx, err, err_len) < 0) {
        goto fail;
    }
    return 0;
fail:
    imap_destroy(ctx);
    ch->ctx = NULL;
    return -1;
}

static void imap_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    imap_sync_on_timer(arg);
}

/* Begin on the core's loop: a resolver, a timer, the first connection. 0 or -1. */
static int imap_start(struct hark_channel *ch, struct event_base *base)
{
    struct imap_ctx *ctx = ch->ctx;

    ctx->base = base;
    ctx->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (ctx->dns == NULL) {
        /* No resolv.conf: numeric addresses and /etc/hosts still work. */
        ctx->dns = evdns_base_new(base, 0);
        if (ctx->dns != NULL) {
            evdns_base_load_hosts(ctx->dns, NULL);
        }
    }
    ctx->timer = evtimer_new(base, imap_on_timer, ctx);
    if (ctx->dns == NULL || ctx->timer == NULL) {
        log_error("imap", "channel=%s cannot create the resolver or timer", ctx->name);
        return -1;
    }
    log_info("imap", "channel=%s starting host=%s port=%u mailbox=%s after_ingest=%s",
             ctx->name, ctx->url.host, ctx->url.port, ctx->url.mailbox,
             ctx->after == IMAP_AFTER_KEEP ? "keep" : ctx->after == IMAP_AFTER_SEEN ? "seen"
                                                                                  : "move");
    imap_connect(ctx);
    return 0;
}

/* Stop: close the connection, drop timers and the resolver. */
static void ctx_stop(struct imap_ctx *ctx)
{
    if (ctx == NULL) {
        return;
    }
    imap_halt(ctx);
    if (ctx->timer != NULL) {
        event_free(ctx->timer);
        ctx->timer = NULL;
    }
    if (ctx->dns != NULL) {
        evdns_base_free(ctx->dns, 0);
        ctx->dns = NULL;
    }
}

static void imap_stop(struct hark_channel *ch)
{
    ctx_stop(ch->ctx);
}

/* Free the ctx (half-built ones too); pending core callbacks become no-ops. */
static void imap_destroy(void *arg)
{
    struct imap_ctx *ctx = arg;

    if (ctx == NULL) {
        return;
    }
    ctx_stop(ctx);
    for (struct imap_op *op = ctx->ops; op != NULL; op = op->next) {
        op->ctx = NULL;
    }
    if (ctx->ssl_ctx != NULL) {
        SSL_CTX_free(ctx->ssl_ctx);
    }
    hark_free(ctx->rbuf);
    hark_free(ctx->pending);
    hark_free(ctx->stored_validity);
    hark_free(ctx->username);
    hark_free(ctx->ca_file);
    hark_free(ctx->attachment_dir);
    hark_free(ctx->attachment_url);
    hark_free(ctx->from_addr);
    hark_free(ctx);
}

const struct hark_adapter hark_adapter_imap = {
    .name = "imap",
    .caps = HARK_CAP_POLLER | HARK_CAP_SENDER,
    .keys = imap_keys,
    .init = imap_init,
    .destroy = imap_destroy,
    .start = imap_start,
    .stop = imap_stop,
    .build_send = smtp_build_send,
    .read_send = smtp_read_send,
};
