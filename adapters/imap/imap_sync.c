/*
 * hark: what the IMAP client does with a selected mailbox.
 *
 * A round: read the checkpoint (uidvalidity and last_uid of the mailbox),
 * list the UIDs above last_uid with their sizes (UID FETCH n:* (UID
 * RFC822.SIZE): one short line per message, no SEARCH result line to
 * bound), fetch them in slices of at most IMAP_SLICE_MAX messages and
 * IMAP_SLICE_BYTES bytes, store each message in UID order and advance the
 * checkpoint only once it is stored, apply after_ingest to the slice, and
 * go on until nothing is left; then IDLE (or poll) until new mail.
 *
 * Every message ends in exactly one of: stored (hark_ingest OK), or
 * quarantined (too large, unparseable, auto-generated, refused by the
 * store). A RETRY from the store keeps the checkpoint where it is and
 * starts the round again after a backoff delay: nothing is ever skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>

#include "hark/alloc.h"
#include "hark/log.h"
#include "imap_int.h"
#include "mime.h"

static void sync_next_slice(struct imap_ctx *ctx);
static void sync_process_next(struct imap_ctx *ctx);

/* See imap_int.h. NULL when out of memory. */
struct imap_op *imap_op_new(struct imap_ctx *ctx)
{
    struct imap_op *op = hark_calloc(1, sizeof(*op));
    if (op == NULL) {
        return NULL;
    }
    op->ctx = ctx;
    op->gen = ctx->gen;
    op->next = ctx->ops;
    if (ctx->ops != NULL) {
        ctx->ops->prev = op;
    }
    ctx->ops = op;
    return op;
}

/* See imap_int.h. */
struct imap_ctx *imap_op_take(struct imap_op *op)
{
    struct imap_ctx *ctx = op->ctx;
    unsigned gen = op->gen;

    if (ctx != NULL) {
        if (op->prev != NULL) {
            op->prev->next = op->next;
        } else {
            ctx->ops = op->next;
        }
        if (op->next != NULL) {
            op->next->prev = op->prev;
        }
    }
    hark_free(op);
    return ctx != NULL && ctx->gen == gen && ctx->state != IMAP_S_STOPPED ? ctx : NULL;
}

/* Checkpoint field names: one pair per mailbox in the channel's state hash. */
static void field(const struct imap_ctx *ctx, const char *what, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%s", what, ctx->url.mailbox);
}

/* Forget the work of this round (connection lost, retry, stop). */
void imap_sync_reset(struct imap_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_slice; i++) {
        hark_free(ctx->slice[i].raw);
    }
    memset(ctx->slice, 0, sizeof(ctx->slice));
    ctx->n_slice = 0;
    ctx->pos_slice = 0;
    ctx->n_done = 0;
    hark_free(ctx->pending);
    ctx->pending = NULL;
    ctx->n_pending = 0;
    ctx->pos_pending = 0;
    ctx->truncated = 0;
    ctx->got_exists = 0;
}

/* The store cannot take it now: keep the checkpoint, come back later. */
static void sync_retry(struct imap_ctx *ctx, const char *why)
{
    uint32_t rnd = (uint32_t)rand();
    int64_t ms = imap_backoff_ms(ctx->attempt, rnd);

    if (ctx->attempt < 32) {
        ctx->attempt++;
    }
    log_warn("imap", "channel=%s %s; retrying from uid %u in %lld ms", ctx->name, why,
             ctx->last_uid + 1, (long long)ms);
    imap_sync_reset(ctx);
    imap_set_state(ctx, IMAP_S_RETRY);
    imap_arm(ctx, ms);
}

/* Async op or, when memory is short, fail the connection. */
static struct imap_op *op_or_fail(struct imap_ctx *ctx)
{
    struct imap_op *op = imap_op_new(ctx);
    if (op == NULL) {
        imap_fail(ctx, "out of memory");
    }
    return op;
}

static void sync_on_validity_written(void *arg, enum hark_store_result res)
{
    struct imap_ctx *ctx = imap_op_take(arg);
    if (ctx == NULL) {
        return;
    }
    if (res != HARK_STORE_OK) {
        sync_retry(ctx, "cannot write the checkpoint");
        return;
    }
    ctx->have_checkpoint = 1;
    imap_sync_list(ctx);
}

static void sync_on_reset_written(void *arg, enum hark_store_result res)
{
    struct imap_ctx *ctx = imap_op_take(arg);
    char f[300];
    char v[24];
    struct imap_op *op;

    if (ctx == NULL) {
        return;
    }
    if (res != HARK_STORE_OK) {
        sync_retry(ctx, "cannot write the checkpoint");
        return;
    }
    /* last_uid is 0 now; only then may the new UIDVALIDITY be recorded. */
    field(ctx, "uidvalidity", f, sizeof(f));
    snprintf(v, sizeof(v), "%llu", (unsigned long long)ctx->uidvalidity);
    if ((op = op_or_fail(ctx)) != NULL) {
        hark_state_set(ctx->ch, f, v, sync_on_validity_written, op);
    }
}

static void sync_on_last_uid(void *arg, enum hark_store_result res, const char *value)
{
    struct imap_ctx *ctx = imap_op_take(arg);
    char cur[24];
    char f[300];
    struct imap_op *op;

    if (ctx == NULL) {
        return;
    }
    if (res != HARK_STORE_OK) {
        sync_retry(ctx, "cannot read the checkpoint");
        return;
    }
    snprintf(cur, sizeof(cur), "%llu", (unsigned long long)ctx->uidvalidity);
    if (ctx->stored_validity != NULL && strcmp(ctx->stored_validity, cur) == 0) {
        char *end = NULL;
        unsigned long long n = value ? strtoull(value, &end, 10) : 0;
        ctx->last_uid = (value && end != value && *end == '\0' && n <= UINT32_MAX)
                            ? (uint32_t)n : 0;
        log_info("imap", "channel=%s mailbox=%s uidvalidity=%s resuming after uid %u",
                 ctx->name, ctx->url.mailbox, cur, ctx->last_uid);
        ctx->have_checkpoint = 1;
        imap_sync_list(ctx);
        return;
    }
    if (ctx->stored_validity != NULL) {
        log_warn("imap", "channel=%s mailbox=%s UIDVALIDITY changed from %s to %s: rescanning "
                 "from uid 1 (stored messages are deduplicated)", ctx->name,
                 ctx->url.mailbox, ctx->stored_validity, cur);
    } else {
        log_info("imap", "channel=%s mailbox=%s first sync uidvalidity=%s", ctx->name,
                 ctx->url.mailbox, cur);
    }
    ctx->last_uid = 0;
    field(ctx, "last_uid", f, sizeof(f));
    if ((op = op_or_fail(ctx)) != NULL) {
        hark_state_set(ctx->ch, f, "0", sync_on_reset_written, op);
    }
}

static void sync_on_validity(void *arg, enum hark_store_result res, const char *value)
{
    struct imap_ctx *ctx = imap_op_take(arg);
    char f[300];
    struct imap_op *op;

    if (ctx == NULL) {
        return;
    }
    if (res != HARK_STORE_OK) {
        sync_retry(ctx, "cannot read the checkpoint");
        return;
    }
    hark_free(ctx->stored_validity);
    ctx->stored_validity = value ? hark_strdup(value) : NULL;
    if (value != NULL && ctx->stored_validity == NULL) {
        imap_fail(ctx, "out of memory");
        return;
    }
    field(ctx, "last_uid", f, sizeof(f));
    if ((op = op_or_fail(ctx)) != NULL) {
        hark_state_get(ctx->ch, f, sync_on_last_uid, op);
    }
}

/* The mailbox is selected: read the checkpoint, then list. */
void imap_sync_selected(struct imap_ctx *ctx)
{
    char f[300];
    struct imap_op *op;

    imap_set_state(ctx, IMAP_S_CHECKPOINT);
    field(ctx, "uidvalidity", f, sizeof(f));
    if ((op = op_or_fail(ctx)) != NULL) {
        hark_state_get(ctx->ch, f, sync_on_validity, op);
    }
}

/* List the UIDs above the checkpoint. */
void imap_sync_list(struct imap_ctx *ctx)
{
    imap_sync_reset(ctx);
    imap_set_state(ctx, IMAP_S_LIST);
    if (imap_send(ctx, "UID FETCH %u:* (UID RFC822.SIZE)", ctx->last_uid + 1) < 0) {
        imap_fail(ctx, "cannot send UID FETCH");
    }
}

/* Nothing left to fetch: IDLE when the server can, else poll. */
void imap_sync_idle(struct imap_ctx *ctx)
{
    /*
     * An EXISTS that came while we were busy fetching or storing is not
     * announced again once we IDLE: list again instead of waiting for mail
     * that is already there.
     */
    if (ctx->got_exists) {
        imap_sync_list(ctx);
        return;
    }
    if (ctx->caps & IMAP_CAP_IDLE) {
        imap_set_state(ctx, IMAP_S_IDLE_START);
        if (imap_send(ctx, "IDLE") < 0) {
            imap_fail(ctx, "cannot send IDLE");
        }
        return;
    }
    imap_set_state(ctx, IMAP_S_POLL);
    imap_arm(ctx, ctx->poll_ms);
}

/* The channel timer fired: reconnect, restart IDLE, poll, or retry. */
void imap_sync_on_timer(struct imap_ctx *ctx)
{
    switch (ctx->state) {
    case IMAP_S_WAIT:
        imap_connect(ctx);
        break;
    case IMAP_S_IDLE:
        /* RFC 2177: re-issue IDLE before the server's 30 min autologout. */
        imap_set_state(ctx, IMAP_S_IDLE_DONE);
        if (bufferevent_write(ctx->bev, "DONE\r\n", 6) < 0) {
            imap_fail(ctx, "cannot send DONE");
        }
        break;
    case IMAP_S_POLL:
        imap_set_state(ctx, IMAP_S_NOOP);
        if (imap_send(ctx, "NOOP") < 0) {
            imap_fail(ctx, "cannot send NOOP");
        }
        break;
    case IMAP_S_RETRY:
        if (ctx->have_checkpoint) {
            imap_sync_list(ctx);
        } else {
            imap_sync_selected(ctx);
        }
        break;
    default:
        break;
    }
}

/* A FETCH line: a listed UID, or a message of the slice. */
int imap_sync_on_fetch(struct imap_ctx *ctx, const struct imap_resp *r)
{
    if (!r->has_uid) {
        return 0;
    }
    if (ctx->state == IMAP_S_LIST) {
        struct imap_pending *p;
        /* "n:*" also returns the last message when it is below n. */
        if (r->uid <= ctx->last_uid) {
            return 0;
        }
        if (ctx->n_pending >= IMAP_PENDING_MAX) {
            ctx->truncated = 1;
            return 0;
        }
        p = hark_realloc(ctx->pending, (ctx->n_pending + 1) * sizeof(*p));
        if (p == NULL) {
            return -1;
        }
        ctx->pending = p;
        p[ctx->n_pending].uid = r->uid;
        p[ctx->n_pending].size = r->has_size ? r->size : 0;
        ctx->n_pending++;
        return 0;
    }
    if (ctx->state == IMAP_S_FETCH && r->has_body) {
        for (size_t i = 0; i < ctx->n_slice; i++) {
            struct imap_item *it = &ctx->slice[i];
            if (it->uid == r->uid) {
                char *copy = hark_malloc(r->body_len + 1);
                if (copy == NULL) {
                    return -1;
                }
                memcpy(copy, r->body, r->body_len);
                copy[r->body_len] = '\0';
                hark_free(it->raw);
                it->raw = copy;
                it->len = r->body_len;
                if (r->has_size) {
                    it->size = r->size;
                }
                return 0;
            }
        }
    }
    return 0;
}

static int cmp_pending(const void *a, const void *b)
{
    const struct imap_pending *x = a;
    const struct imap_pending *y = b;
    return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* Append "uid,uid,..." of the given UIDs to out. 0 or -1. */
static int uid_set(const uint32_t *uids, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(out + o, cap - o, "%s%u", i ? "," : "", uids[i]);
        if (w < 0 || (size_t)w >= cap - o) {
            return -1;
        }
        o += (size_t)w;
    }
    return 0;
}

/* Fetch the next slice, or list again when this round is done. */
static void sync_next_slice(struct imap_ctx *ctx)
{
    uint32_t uids[IMAP_SLICE_MAX];
    char set[IMAP_SLICE_MAX * 12];
    uint64_t bytes = 0;
    int rc;

    for (size_t i = 0; i < ctx->n_slice; i++) {
        hark_free(ctx->slice[i].raw);
    }
    memset(ctx->slice, 0, sizeof(ctx->slice));
    ctx->n_slice = 0;
    ctx->pos_slice = 0;
    ctx->n_done = 0;
    if (ctx->pos_pending >= ctx->n_pending) {
        /* Anything that arrived meanwhile is picked up by the next listing. */
        imap_sync_list(ctx);
        return;
    }
    while (ctx->pos_pending < ctx->n_pending && ctx->n_slice < IMAP_SLICE_MAX) {
        const struct imap_pending *p = &ctx->pending[ctx->pos_pending];
        int big = p->size > ctx->max_size;
        if (ctx->n_slice > 0 && (big || ctx->slice[0].too_large
                                 || bytes + p->size > IMAP_SLICE_BYTES)) {
            break;
        }
        ctx->slice[ctx->n_slice].uid = p->uid;
        ctx->slice[ctx->n_slice].size = p->size;
        ctx->slice[ctx->n_slice].too_large = big;
        uids[ctx->n_slice] = p->uid;
        ctx->n_slice++;
        ctx->pos_pending++;
        bytes += p->size;
        if (big) {
            break;
        }
    }
    if (uid_set(uids, ctx->n_slice, set, sizeof(set)) < 0) {
        imap_fail(ctx, "UID set too long");
        return;
    }
    imap_set_state(ctx, IMAP_S_FETCH);
    if (ctx->slice[0].too_large) {
        rc = imap_send(ctx, "UID FETCH %s (UID RFC822.SIZE BODY.PEEK[HEADER]<0.%d>)", set,
                       IMAP_HEADER_PEEK);
    } else {
        rc = imap_send(ctx, "UID FETCH %s (UID RFC822.SIZE BODY.PEEK[])", set);
    }
    if (rc < 0) {
        imap_fail(ctx, "cannot send UID FETCH");
    }
}

/* after_ingest for the messages of the slice that were stored. */
static void sync_after(struct imap_ctx *ctx)
{
    char set[IMAP_SLICE_MAX * 12];
    char line[IMAP_SLICE_MAX * 12 + 300];
    int rc = 0;
    size_t o;

    if (ctx->after == IMAP_AFTER_KEEP || ctx->n_done == 0
        || uid_set(ctx->done_uids, ctx->n_done, set, sizeof(set)) < 0) {
        sync_next_slice(ctx);
        return;
    }
    imap_set_state(ctx, IMAP_S_AFTER);
    if (ctx->after == IMAP_AFTER_SEEN) {
        ctx->after_step = 9;
        rc = imap_send(ctx, "UID STORE %s +FLAGS.SILENT (\\Seen)", set);
    } else if (ctx->after_step == 0) {
        o = (size_t)snprintf(line, sizeof(line), "UID %s %s ",
                             (ctx->caps & IMAP_CAP_MOVE) ? "MOVE" : "COPY", set);
        ctx->after_step = (ctx->caps & IMAP_CAP_MOVE) ? 9 : 1;
        rc = imap_quote(ctx->folder, line, sizeof(line), o) < 0 ? -1
             : imap_send_raw(ctx, line, 0);
    } else if (ctx->after_step == 1) {
        ctx->after_step = 2;
        rc = imap_send(ctx, "UID STORE %s +FLAGS.SILENT (\\Deleted)", set);
    } else {
        ctx->after_step = 9;
        rc = (ctx->caps & IMAP_CAP_UIDPLUS) ? imap_send(ctx, "UID EXPUNGE %s", set)
                                            : imap_send(ctx, "EXPUNGE");
    }
    if (rc < 0) {
        imap_fail(ctx, "cannot send the after_ingest command");
    }
}

/* The checkpoint moved past the current message: go to the next one. */
static void sync_on_checkpoint(void *arg, enum hark_store_result res)
{
    struct imap_ctx *ctx = imap_op_take(arg);
    struct imap_item *it;

    if (ctx == NULL) {
        return;
    }
    if (res != HARK_STORE_OK) {
        sync_retry(ctx, "cannot write the checkpoint");
        return;
    }
    it = &ctx->slice[ctx->pos_slice];
    ctx->last_uid = it->uid;
    if (ctx->cur_stored && ctx->n_done < IMAP_SLICE_MAX) {
        ctx->done_uids[ctx->n_done++] = it->uid;
    }
    ctx->pos_slice++;
    sync_process_next(ctx);
}

/* Record that every UID up to the current one is handled. */
static void sync_checkpoint(struct imap_ctx *ctx, int stored)
{
    char f[300];
    char v[16];
    struct imap_op *op;

    /* Only stored messages get the after_ingest action. */
    ctx->cur_stored = stored;
    field(ctx, "last_uid", f, sizeof(f));
    snprintf(v, sizeof(v), "%u", ctx->slice[ctx->pos_slice].uid);
    if ((op = op_or_fail(ctx)) != NULL) {
        hark_state_set(ctx->ch, f, v, sync_on_checkpoint, op);
    }
}

static void sync_on_quarantined(void *arg, enum hark_store_result res)
{
    struct imap_ctx *ctx = imap_op_take(arg);
    if (ctx == NULL) {
        return;
    }
    if (res == HARK_STORE_RETRY) {
        sync_retry(ctx, "quarantine unavailable");
        return;
    }
    if (res != HARK_STORE_OK) {
        log_error("imap", "channel=%s uid=%u the quarantine refused the record", ctx->name,
                  ctx->slice[ctx->pos_slice].uid);
    }
    sync_checkpoint(ctx, 0);
}

/* Quarantine the current message with a reason and a detail sentence. */
static void sync_quarantine(struct imap_ctx *ctx, const char *reason, const char *detail)
{
    const struct imap_item *it = &ctx->slice[ctx->pos_slice];
    json_t *rec = json_object();
    char *headers = it->raw ? imap_header_text(it->raw, it->len, 8192) : NULL;
    struct imap_op *op;

    log_warn("imap", "channel=%s mailbox=%s uid=%u quarantined: %s (%s)", ctx->name,
             ctx->url.mailbox, it->uid, reason, detail ? detail : "");
    if (rec == NULL) {
        hark_free(headers);
        imap_fail(ctx, "out of memory");
        return;
    }
    json_object_set_new(rec, "mailbox", json_string(ctx->url.mailbox));
    json_object_set_new(rec, "uid", json_integer(it->uid));
    json_object_set_new(rec, "uidvalidity", json_integer((json_int_t)ctx->uidvalidity));
    json_object_set_new(rec, "size", json_integer((json_int_t)it->size));
    if (detail != NULL) {
        json_object_set_new(rec, "detail", json_string(detail));
    }
    if (headers != NULL) {
        json_object_set_new(rec, "headers", json_string(headers));
        hark_free(headers);
    }
    if ((op = op_or_fail(ctx)) != NULL) {
        hark_quarantine(ctx->ch, reason, rec, sync_on_quarantined, op);
    }
    json_decref(rec);
}

static void sync_on_ingested(void *arg, enum hark_store_result res)
{
    struct imap_ctx *ctx = imap_op_take(arg);
    if (ctx == NULL) {
        return;
    }
    if (res == HARK_STORE_OK) {
        sync_checkpoint(ctx, 1);
    } else if (res == HARK_STORE_RETRY) {
        sync_retry(ctx, "store unavailable");
    } else {
        sync_quarantine(ctx, "store refused", "the store refused the message");
    }
}

static void sync_ingest(struct imap_ctx *ctx, struct hark_mime_result *res, uint32_t uid);

/* Attachment files written off the loop (they are fsynced). */
struct save_job {
    struct imap_op *op;
    struct hark_mime_result res;
    uint32_t uid;
    char *dir;
    char *url;
    int rc;
    char why[256];
};

static void save_job_free(struct save_job *job)
{
    hark_mime_result_clear(&job->res);
    hark_free(job->dir);
    hark_free(job->url);
    hark_free(job);
}

/* On the blocking thread: only the job's own data is touched. */
static void save_work(void *arg)
{
    struct save_job *job = arg;

    job->rc = hark_mime_save_attachments(&job->res, job->dir, job->url, job->why,
                                         sizeof(job->why));
}

/* Back on the loop: file the message, or retry later if the files failed. */
static void save_done(evutil_socket_t fd, short what, void *arg)
{
    struct save_job *job = arg;
    struct imap_ctx *ctx = imap_op_take(job->op);

    (void)fd;
    (void)what;
    if (ctx != NULL) {
        if (job->rc < 0) {
            log_warn("imap", "channel=%s msg=\"cannot save attachments\" error=\"%s\"", ctx->name,
                     job->why);
            sync_retry(ctx, "cannot save attachments");
        } else {
            sync_ingest(ctx, &job->res, job->uid);
        }
    }
    save_job_free(job);
}

/* Write the attachments on a blocking thread, then ingest. */
static void sync_save_then_ingest(struct imap_ctx *ctx, struct hark_mime_result *res,
                                  uint32_t uid)
{
    struct save_job *job = hark_calloc(1, sizeof(*job));

    if (job == NULL || (job->op = op_or_fail(ctx)) == NULL) {
        hark_free(job);
        hark_mime_result_clear(res);
        if (job == NULL) {
            imap_fail(ctx, "out of memory");
        }
        return;
    }
    job->res = *res;
    memset(res, 0, sizeof(*res));
    job->uid = uid;
    job->dir = hark_strdup(ctx->attachment_dir);
    job->url = hark_strdup(ctx->attachment_url ? ctx->attachment_url : "");
    if (job->dir == NULL || job->url == NULL ||
        hark_run_blocking(ctx->base, save_work, save_done, job) < 0) {
        /* No thread to be had: write here rather than lose the mail. */
        save_work(job);
        save_done(-1, EV_TIMEOUT, job);
    }
}

/* Parse and store the current message (or quarantine it). */
static void sync_store(struct imap_ctx *ctx, struct imap_item *it)
{
    struct hark_mime_opts opts;
    struct hark_mime_result res;
    char why[256];

    memset(&opts, 0, sizeof(opts));
    memset(&res, 0, sizeof(res));
    opts.account = ctx->name;
    opts.mailbox_address = ctx->from_addr;
    opts.max_attachment_size = (size_t)ctx->attachment_max;
    why[0] = '\0';
    if (hark_mime_parse(it->raw, it->len, &opts, &res, why, sizeof(why)) < 0) {
        sync_quarantine(ctx, "unparseable", why);
        return;
    }
    if (res.auto_generated && !ctx->ingest_auto) {
        sync_quarantine(ctx, "auto-generated", res.auto_reason);
        hark_mime_result_clear(&res);
        return;
    }
    if (ctx->attachment_dir != NULL && res.n_blobs > 0) {
        sync_save_then_ingest(ctx, &res, it->uid);
        return;
    }
    sync_ingest(ctx, &res, it->uid);
}

/* File the parsed message (ownership of res's contents taken). */
static void sync_ingest(struct imap_ctx *ctx, struct hark_mime_result *res_in, uint32_t uid)
{
    struct hark_mime_result res = *res_in;
    struct hark_batch batch;
    struct hark_msg *msg;
    struct imap_op *op;

    memset(res_in, 0, sizeof(*res_in));
    memset(&batch, 0, sizeof(batch));
    msg = res.msg;
    res.msg = NULL;
    hark_mime_result_clear(&res);
    msg->account = ctx->name;
    if (hark_msg_extra_set(msg, "mailbox", json_string(ctx->url.mailbox)) < 0
        || hark_msg_extra_set(msg, "uid", json_integer(uid)) < 0
        || hark_msg_extra_set(msg, "uidvalidity", json_integer((json_int_t)ctx->uidvalidity))
               < 0
        || hark_batch_push(&batch, msg) < 0) {
        hark_batch_clear(&batch);
        imap_fail(ctx, "out of memory");
        return;
    }
    if ((op = op_or_fail(ctx)) == NULL) {
        hark_batch_clear(&batch);
        return;
    }
    hark_ingest(ctx->ch, &batch, sync_on_ingested, op);
    hark_batch_clear(&batch);
}

/* Handle the next message of the slice, or finish the slice. */
static void sync_process_next(struct imap_ctx *ctx)
{
    struct imap_item *it;

    if (ctx->pos_slice >= ctx->n_slice) {
        ctx->after_step = 0;
        sync_after(ctx);
        return;
    }
    imap_set_state(ctx, IMAP_S_PROCESS);
    it = &ctx->slice[ctx->pos_slice];
    if (it->raw == NULL) {
        /* Expunged by someone else between listing and fetching. */
        log_info("imap", "channel=%s uid=%u vanished before it was fetched", ctx->name,
                 it->uid);
        sync_checkpoint(ctx, 0);
    } else if (it->too_large) {
        char detail[96];
        snprintf(detail, sizeof(detail), "%llu bytes, max_message_size %llu",
                 (unsigned long long)it->size, (unsigned long long)ctx->max_size);
        sync_quarantine(ctx, "too large", detail);
    } else {
        sync_store(ctx, it);
    }
}

/* Tagged answers once the mailbox is selected. 0, 1 (closed) or -1. */
int imap_sync_on_tagged(struct imap_ctx *ctx, const struct imap_resp *r)
{
    int ok = r->status == IMAP_ST_OK;

    switch (ctx->state) {
    case IMAP_S_LIST:
        if (!ok) {
            return -1;
        }
        ctx->attempt = 0;
        if (ctx->n_pending == 0) {
            imap_sync_idle(ctx);
            return 0;
        }
        qsort(ctx->pending, ctx->n_pending, sizeof(*ctx->pending), cmp_pending);
        log_info("imap", "channel=%s mailbox=%s %zu new message(s)%s", ctx->name,
                 ctx->url.mailbox, ctx->n_pending, ctx->truncated ? " (first batch)" : "");
        sync_next_slice(ctx);
        return 0;
    case IMAP_S_FETCH:
        if (!ok) {
            return -1;
        }
        sync_process_next(ctx);
        return 0;
    case IMAP_S_AFTER:
        if (!ok) {
            log_warn("imap", "channel=%s after_ingest command failed: %s", ctx->name, r->text);
            ctx->after_step = 9;
        }
        if (ctx->after_step == 9) {
            sync_next_slice(ctx);
        } else {
            sync_after(ctx);
        }
        return 0;
    case IMAP_S_IDLE_START:
        /* A tagged answer instead of "+": the server will not IDLE here. */
        ctx->caps &= ~IMAP_CAP_IDLE;
        imap_sync_idle(ctx);
        return 0;
    case IMAP_S_IDLE_DONE:
    case IMAP_S_NOOP:
        if (!ok) {
            return -1;
        }
        imap_sync_list(ctx);
        return 0;
    default:
        return -1;
    }
}

/* See imap_int.h: the header section, ASCII-printable, at most max bytes. */
char *imap_header_text(const char *raw, size_t len, size_t max)
{
    size_t end = len;
    size_t o = 0;
    char *out;

    for (size_t i = 0; i + 1 < len; i++) {
        if (raw[i] == '\n' && (raw[i + 1] == '\n'
                               || (raw[i + 1] == '\r' && i + 2 < len && raw[i + 2] == '\n'))) {
            end = i + 1;
            break;
        }
    }
    if (end > max) {
        end = max;
    }
    out = hark_malloc(end + 1);
    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < end; i++) {
        unsigned char ch = (unsigned char)raw[i];
        if (ch == '\r') {
            continue;
        }
        out[o++] = (ch == '\n' || ch == '\t' || (ch >= 0x20 && ch < 0x7f)) ? (char)ch : '?';
    }
    out[o] = '\0';
    return out;
}
