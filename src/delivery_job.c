/*
 * One outbox entry from request to acknowledgement.
 *
 * Steps (each idempotent, so any of them can be retried after a Redis
 * failure or replayed by another instance that claims the entry):
 *   LOOKUP   find the conversation hash in one of the partitions
 *   IDEM     SET <prefix>:idem:<key> <entry id> NX (GET the owner if taken)
 *   PREPARE  outbound.lua prepare: file the queued message (or read it)
 *   SEND     the adapter builds the call, the delivery engine makes it;
 *            retryable failures wait (backoff, Retry-After) and send again
 *   SENT / FAILED  outbound.lua records the outcome and the event
 *   REJECT   a bad request: message.failed only
 *   DEAD     copy the entry to <prefix>:outbox:dead with the reason
 *   ACK      XACK; then the job is freed
 * Nothing is acknowledged before its outcome is recorded.
 */
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "hark/alloc.h"
#include "hark/log.h"
#include "hark/msg.h"
#include "hark/text.h"
#include "delivery_job.h"
#include "outbox_entry.h"

enum job_step {
    J_LOOKUP, J_IDEM, J_IDEM_OWNER, J_PREPARE, J_SEND, J_SENDING,
    J_SENT, J_FAILED, J_REJECT, J_DEAD, J_ACK,
};

struct ob_job {
    struct hark_outbox *o;
    struct ob_job *next, *prev;
    enum job_step step;
    int pending;                /* Redis callbacks outstanding */
    int lookup_found;
    int lookup_seen;
    int lookup_failed;
    struct event *timer;
    char *entry_id;
    struct ob_entry in;         /* the CRM's request */
    int partition;
    json_t *conv;               /* the conversation hash as an object */
    const struct hark_channel *ch;
    char msg_id[HARK_MSG_ID_LEN + 1];
    json_t *msg;
    int replay;
    int attempts;
    char *pmid;
    char reason[320];
    /* Arguments of the script call in flight: redis_conn resends them on NOSCRIPT. */
    char *sargv[16];
    size_t slens[16];
    int sargc;
};

static void job_run(struct ob_job *j);
static void job_script_clear(struct ob_job *j);

static const char *conv_get(const struct ob_job *j, const char *name)
{
    return j->conv ? hark_json_str(j->conv, name) : NULL;
}

static void job_free(struct ob_job *j)
{
    struct hark_outbox *o = j->o;

    if (j->prev) {
        j->prev->next = j->next;
    } else {
        o->jobs = j->next;
    }
    if (j->next) {
        j->next->prev = j->prev;
    }
    o->n_jobs--;
    job_script_clear(j);
    if (j->timer) {
        event_free(j->timer);
    }
    ob_entry_clear(&j->in);
    hark_free(j->entry_id);
    json_decref(j->conv);
    json_decref(j->msg);
    hark_free(j->pmid);
    hark_free(j);
}

static void job_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    job_run(arg);
}

/* Run the current step again after ms (Redis down, backoff). */
static void job_later(struct ob_job *j, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(j->timer, &tv);
}

/* Send argv on the command connection; when it cannot be queued, retry the step later. */
static void job_command(struct ob_job *j, redisCallbackFn *fn, int argc, const char **argv,
                        const size_t *lens)
{
    if (hark_redis_command(j->o->cmd, fn, j, argc, argv, lens) < 0) {
        job_later(j, 1000);
        return;
    }
    j->pending++;
}

static void job_script_clear(struct ob_job *j)
{
    for (int i = 0; i < j->sargc; i++) {
        hark_free(j->sargv[i]);
    }
    j->sargc = 0;
}

/*
 * Run the outbound script with copies of argv that the job keeps until the
 * answer (the connection sends them again as EVAL when the server lacks
 * the script).
 */
static void job_script(struct ob_job *j, redisCallbackFn *fn, int argc, const char **argv)
{
    job_script_clear(j);
    for (int i = 0; i < argc && i < 16; i++) {
        j->sargv[i] = hark_strdup(argv[i]);
        j->slens[i] = strlen(argv[i]);
        j->sargc++;
        if (j->sargv[i] == NULL) {
            job_script_clear(j);
            job_later(j, 1000);
            return;
        }
    }
    if (hark_redis_script(j->o->cmd, &j->o->script, fn, j, j->sargc, (const char **)j->sargv,
                          j->slens) < 0) {
        job_script_clear(j);
        job_later(j, 1000);
        return;
    }
    j->pending++;
}

/*
 * Common prologue of every Redis callback: 1 when the job should go on
 * with reply, 0 when it is stopping or the reply is missing (then the
 * step is retried later).
 */
static int job_reply_ok(struct ob_job *j, const redisReply *r)
{
    j->pending--;
    job_script_clear(j);
    if (j->o->stopping) {
        return 0;
    }
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        log_warn("outbox", "msg=\"redis step failed, retrying\" entry=%s step=%d error=\"%s\"",
                 j->entry_id, (int)j->step, r ? r->str : "disconnected");
        if (j->pending == 0) {
            job_later(j, 1000);
        }
        return 0;
    }
    return 1;
}

static void job_end(struct ob_job *j)
{
    struct hark_outbox *o = j->o;
    job_free(j);
    outbox_job_done(o);
}

/* ---- LOOKUP ---- */

static void job_on_lookup(redisAsyncContext *c, void *reply, void *arg)
{
    struct ob_job *j = arg;
    redisReply *r = reply;
    int p = j->lookup_seen++;   /* replies come in the order sent */

    (void)c;
    j->pending--;
    if (j->o->stopping) {
        return;
    }
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        j->lookup_failed = 1;
    } else if (r->elements >= 2 && j->conv == NULL) {
        j->conv = json_object();
        for (size_t i = 0; j->conv && i + 1 < r->elements; i += 2) {
            if (ob_reply_is_str(r->element[i]) && ob_reply_is_str(r->element[i + 1])) {
                json_object_set_new(j->conv, r->element[i]->str,
                                    json_stringn(r->element[i + 1]->str, r->element[i + 1]->len));
            }
        }
        j->partition = p;
        j->lookup_found = 1;
    }
    if (j->pending > 0) {
        return;
    }
    if (j->lookup_failed && !j->lookup_found) {
        j->lookup_failed = 0;
        job_later(j, 1000);
        return;
    }
    if (!j->lookup_found) {
        snprintf(j->reason, sizeof(j->reason), "unknown conversation %s", j->in.conv_id);
        j->partition = 0;
        j->step = J_REJECT;
    } else if (j->reason[0]) {
        j->step = J_REJECT;     /* a bad request, now with its partition */
    } else {
        j->step = J_IDEM;
        for (size_t i = 0; i < j->o->n_channels; i++) {
            const char *acct = conv_get(j, "account");
            if (acct && strcmp(j->o->channels[i]->name, acct) == 0) {
                j->ch = j->o->channels[i];
            }
        }
        if (j->ch == NULL || j->ch->adapter->build_send == NULL || j->ch->adapter->read_send == NULL) {
            snprintf(j->reason, sizeof(j->reason), "channel %s cannot send replies",
                     conv_get(j, "account") ? conv_get(j, "account") : "(none)");
            j->step = J_REJECT;
        } else {
            hark_derive_id("outbound", j->ch->name, j->in.idem_key ? j->in.idem_key : j->entry_id,
                           j->msg_id);
        }
    }
    job_run(j);
}

static void job_lookup(struct ob_job *j)
{
    j->lookup_failed = 0;
    j->lookup_seen = 0;
    for (int p = 0; p < j->o->partitions; p++) {
        char key[600];
        const char *argv[2] = {"HGETALL", key};
        snprintf(key, sizeof(key), "%s:{%d}:conv:%s", j->o->prefix, p, j->in.conv_id);
        if (hark_redis_command(j->o->cmd, job_on_lookup, j, 2, argv, NULL) < 0) {
            break;
        }
        j->pending++;
    }
    if (j->pending < j->o->partitions) {
        /* Not all were queued: let the queued ones finish, then retry. */
        j->lookup_failed = 1;
        if (j->pending == 0) {
            job_later(j, 1000);
        }
    }
}

/* ---- IDEM ---- */

static void job_on_idem(redisAsyncContext *c, void *reply, void *arg)
{
    struct ob_job *j = arg;
    redisReply *r = reply;

    (void)c;
    if (!job_reply_ok(j, r)) {
        return;
    }
    if (j->step == J_IDEM) {
        /* OK: the key is ours; nil: someone holds it, ask who. */
        j->step = r->type == REDIS_REPLY_NIL ? J_IDEM_OWNER : J_PREPARE;
        j->replay = 0;
    } else if (r->type == REDIS_REPLY_NIL) {
        j->step = J_IDEM;     /* expired meanwhile: take it */
    } else {
        j->replay = !(ob_reply_is_str(r) && strcmp(r->str, j->entry_id) == 0);
        j->step = J_PREPARE;
    }
    job_run(j);
}

static void job_idem(struct ob_job *j)
{
    char key[600], ttl[32];
    const char *k = j->in.idem_key ? j->in.idem_key : j->entry_id;
    const char *set[6] = {"SET", key, j->entry_id, "NX", "PX", ttl};
    const char *get[2] = {"GET", key};

    snprintf(key, sizeof(key), "%s:idem:%s", j->o->prefix, k);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)j->o->cfg.idem_ttl_ms);
    if (j->step == J_IDEM) {
        job_command(j, job_on_idem, 6, set, NULL);
    } else {
        job_command(j, job_on_idem, 2, get, NULL);
    }
}

/* ---- PREPARE ---- */

/* The queued outbound message as JSON (contract v1 + conversation and contact ids). */
static json_t *job_queued_json(struct ob_job *j)
{
    const char *channel = conv_get(j, "channel");
    struct hark_msg *m = hark_msg_new(HARK_KIND_MESSAGE, channel ? channel : "unknown",
                                      j->ch->adapter->name, j->ch->name);
    json_t *o = NULL;
    json_t *extra = json_object();
    size_t i;
    json_t *u;

    if (m == NULL || extra == NULL) {
        goto done;
    }
    m->direction = HARK_DIR_OUTBOUND;
    m->status = "queued";
    /* An explicit thread object: hark_msg_to_json would leak the empty one it makes. */
    if ((m->thread = json_object()) == NULL) {
        goto done;
    }
    m->received_at = hark_now_ms();
    if (hark_strset(&m->from.id, conv_get(j, "our_id")) < 0 ||
        hark_strset(&m->to.id, conv_get(j, "customer_id")) < 0 ||
        hark_strset(&m->text, j->in.text ? j->in.text : "") < 0) {
        goto done;
    }
    json_array_foreach(j->in.attachments, i, u) {
        if (hark_msg_add_attachment(m, json_string_value(u), NULL, NULL, -1, NULL) < 0) {
            goto done;
        }
    }
    json_object_set_new(extra, "outbox_entry", json_string(j->entry_id));
    if (j->in.idem_key) {
        json_object_set_new(extra, "idempotency_key", json_string(j->in.idem_key));
    }
    m->extra = extra;
    extra = NULL;
    o = hark_msg_to_json(m, j->msg_id);
    if (o != NULL && (json_object_set_new(o, "conversation_id", json_string(j->in.conv_id)) < 0 ||
                      json_object_set_new(o, "contact_id",
                                          conv_get(j, "contact_id")
                                              ? json_string(conv_get(j, "contact_id"))
                                              : json_null()) < 0)) {
        json_decref(o);
        o = NULL;
    }
done:
    json_decref(extra);
    hark_msg_free(m);
    return o;
}

static void job_on_prepare(redisAsyncContext *c, void *reply, void *arg)
{
    struct ob_job *j = arg;
    redisReply *r = reply;
    const char *state;
    const char *why = NULL;

    (void)c;
    if (!job_reply_ok(j, r)) {
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !ob_reply_is_str(r->element[0]) ||
        !ob_reply_is_str(r->element[1])) {
        log_warn("outbox", "msg=\"unexpected answer of the prepare step\" entry=%s", j->entry_id);
        job_later(j, 1000);
        return;
    }
    state = r->element[0]->str;
    if (strcmp(state, "noconv") == 0) {
        snprintf(j->reason, sizeof(j->reason), "unknown conversation %s", j->in.conv_id);
        j->step = J_REJECT;
    } else if (strcmp(state, "send") == 0 || (strcmp(state, "queued") == 0 && !j->replay)) {
        json_decref(j->msg);
        j->msg = hark_json_parse(r->element[1]->str, r->element[1]->len, &why);
        if (!json_is_object(j->msg)) {
            snprintf(j->reason, sizeof(j->reason), "stored message is not JSON");
            j->step = J_DEAD;
        } else {
            json_object_set_new(j->msg, "status", json_string("queued"));
            /* Keep the key where it is: status and error close the JSON. */
            json_object_set_new(j->msg, "error", json_null());
            j->step = J_SEND;
        }
    } else if (strcmp(state, "failed") == 0 && !j->replay) {
        snprintf(j->reason, sizeof(j->reason), "message %s already failed", j->msg_id);
        j->step = J_DEAD;
    } else {
        log_info("outbox", "msg=\"duplicate request acknowledged without sending\" entry=%s "
                 "message=%s status=%s", j->entry_id, j->msg_id, state);
        j->step = J_ACK;
    }
    job_run(j);
}

/* Key "<prefix>:{P}:<kind>:<id>" into buf. */
static void part_key(const struct ob_job *j, char *buf, size_t cap, const char *kind, const char *id)
{
    snprintf(buf, cap, "%s:{%d}:%s%s%s", j->o->prefix, j->partition, kind, id ? ":" : "",
             id ? id : "");
}

static void job_prepare(struct ob_job *j)
{
    char conv[600], msg[600], list[620], now[32];
    json_t *o = job_queued_json(j);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    const char *argv[9] = {"3", conv, msg, list, "prepare", j->msg_id, text, j->replay ? "1" : "0", now};

    json_decref(o);
    if (text == NULL) {
        job_later(j, 1000);
        return;
    }
    part_key(j, conv, sizeof(conv), "conv", j->in.conv_id);
    part_key(j, msg, sizeof(msg), "msg", j->msg_id);
    snprintf(list, sizeof(list), "%s:messages", conv);
    snprintf(now, sizeof(now), "%lld", (long long)hark_now_ms());
    job_script(j, job_on_prepare, 9, argv);
    hark_free(text);
}

/* ---- SEND ---- */

static void job_on_delivered(void *arg, const struct hark_delivery_result *res)
{
    struct ob_job *j = arg;
    enum hark_send_outcome out;
    char err[256] = "";
    char *pmid = NULL;

    if (res->aborted || j->o->stopping) {
        return;
    }
    if (res->transport_error) {
        out = HARK_SEND_RETRY;
        snprintf(err, sizeof(err), "network: %s", res->error);
    } else {
        out = j->ch->adapter->read_send(j->ch, res->status, res->body, res->body_len, &pmid, err,
                                        sizeof(err));
    }
    if (out == HARK_SEND_OK) {
        if (err[0]) {
            log_warn("outbox", "msg=\"sent with a warning\" entry=%s reason=\"%s\"", j->entry_id, err);
        }
        j->pmid = pmid;
        j->step = J_SENT;
        job_run(j);
        return;
    }
    hark_free(pmid);
    if (out == HARK_SEND_RETRY && j->attempts < j->o->cfg.max_attempts) {
        int64_t delay = hark_retry_delay_ms(j->attempts, j->o->cfg.backoff_base_ms,
                                            j->o->cfg.backoff_max_ms, res->retry_after_ms,
                                            outbox_random(j->o));
        log_info("outbox", "msg=\"send failed, will retry\" entry=%s attempt=%d delay_ms=%lld "
                 "reason=\"%s\"", j->entry_id, j->attempts, (long long)delay, err);
        j->step = J_SEND;
        job_later(j, delay);
        return;
    }
    if (out == HARK_SEND_RETRY) {
        snprintf(j->reason, sizeof(j->reason), "gave up after %d attempts: %.200s", j->attempts,
                 err);
    } else {
        snprintf(j->reason, sizeof(j->reason), "%s", err[0] ? err : "provider refused the message");
    }
    j->step = J_FAILED;
    job_run(j);
}

/*
 * What a public thread's reply answers: the conversation's thread_ref when
 * set, else the customer's last comment or tweet. Conversations of public
 * threads have keys "post:", "mention:" or "tweet:"; a direct message has
 * none, and gets NULL, so that it is sent as a message, not a comment.
 */
static const char *job_thread_ref(struct ob_job *j, const char *last_inbound)
{
    static const char *const public_prefixes[] = {"post:", "mention:", "tweet:"};
    const char *key = conv_get(j, "thread_key");

    if (conv_get(j, "thread_ref") != NULL) {
        return conv_get(j, "thread_ref");
    }
    for (size_t i = 0; key != NULL && i < sizeof(public_prefixes) / sizeof(public_prefixes[0]); i++) {
        if (strncmp(key, public_prefixes[i], strlen(public_prefixes[i])) == 0) {
            return last_inbound;
        }
    }
    return NULL;
}

static void job_send(struct ob_job *j)
{
    const char *urls[HARK_MAX_ATTACHMENTS];
    struct hark_outbound ob;
    struct hark_http_call call;
    char err[256] = "";
    const char *lia = conv_get(j, "last_inbound_at");
    size_t i;
    json_t *u;

    memset(&ob, 0, sizeof(ob));
    json_array_foreach(j->in.attachments, i, u) {
        urls[i] = json_string_value(u);
    }
    ob.message_id = j->msg_id;
    ob.conversation_id = j->in.conv_id;
    ob.channel = conv_get(j, "channel");
    ob.to = conv_get(j, "customer_id");
    ob.from = conv_get(j, "our_id");
    ob.text = j->in.text ? j->in.text : "";
    ob.attachment_urls = urls;
    ob.n_attachments = json_array_size(j->in.attachments);
    ob.reply_to = conv_get(j, "last_inbound_pmid");
    ob.subject = conv_get(j, "subject");
    ob.references = conv_get(j, "references");
    ob.thread_ref = job_thread_ref(j, ob.reply_to);
    ob.template_name = conv_get(j, "template_name");
    ob.last_inbound_at = lia ? strtoll(lia, NULL, 10) : 0;
    if (j->ch->adapter->build_send(j->ch, &ob, &call, err, sizeof(err)) < 0) {
        snprintf(j->reason, sizeof(j->reason), "%s", err[0] ? err : "request cannot be built");
        j->step = J_FAILED;
        job_run(j);
        return;
    }
    j->attempts++;
    j->step = J_SENDING;
    if (hark_delivery_submit(j->o->dl, j->ch->adapter->name, &call, job_on_delivered, j) < 0) {
        j->step = J_SEND;
        job_later(j, 1000);
    }
}

/* ---- SENT, FAILED, REJECT ---- */

/* Move on to `next` once a recording script answered. */
static void job_on_recorded(redisAsyncContext *c, void *reply, void *arg)
{
    struct ob_job *j = arg;

    (void)c;
    if (!job_reply_ok(j, reply)) {
        return;
    }
    if (j->step == J_SENT) {
        log_info("outbox", "msg=\"reply sent\" entry=%s message=%s channel=%s", j->entry_id,
                 j->msg_id, j->ch->name);
        j->step = J_ACK;
    } else {
        log_warn("outbox", "msg=\"reply failed\" entry=%s message=%s reason=\"%s\"", j->entry_id,
                 j->msg_id[0] ? j->msg_id : "-", j->reason);
        j->step = J_DEAD;
    }
    job_run(j);
}

/*
 * The Message-ID index key, as the ingest script reads it:
 * <prefix>:{P}:ref:<hark_derive_id("ref", "", bracketed Message-ID)>.
 */
static void ref_key(const struct ob_job *j, const char *msgid, char *buf, size_t cap)
{
    char id[HARK_MSG_ID_LEN + 1];

    hark_derive_id("ref", "", msgid, id);
    part_key(j, buf, cap, "ref", id);
}

static void job_record(struct ob_job *j)
{
    char conv[600], msg[600], events[600], pmid[600], ref[600], now[32], maxlen[32];
    char pid[HARK_MSG_ID_LEN + 1];
    const char *channel = conv_get(j, "channel");
    const char *argv[13];
    char *text = NULL;
    int k = 0, nkeys;
    int64_t t = hark_now_ms();

    part_key(j, conv, sizeof(conv), "conv", j->in.conv_id);
    part_key(j, msg, sizeof(msg), "msg", j->msg_id);
    part_key(j, events, sizeof(events), "events", NULL);
    snprintf(now, sizeof(now), "%lld", (long long)t);
    snprintf(maxlen, sizeof(maxlen), "%lld", j->o->cfg.events_maxlen);
    if (j->step == J_REJECT) {
        json_t *d = json_pack("{s:s, s:s, s:s?, s:s?}", "reason", j->reason, "outbox_entry",
                              j->entry_id, "conversation_id", j->in.conv_id, "idempotency_key",
                              j->in.idem_key);
        text = d ? json_dumps(d, JSON_COMPACT) : NULL;
        json_decref(d);
        if (j->msg_id[0] == '\0') {
            hark_derive_id("outbound", "", j->in.idem_key ? j->in.idem_key : j->entry_id, j->msg_id);
        }
        argv[k++] = "1";
        argv[k++] = events;
        argv[k++] = "reject";
    } else {
        if (j->step == J_SENT) {
            json_object_set_new(j->msg, "status", json_string("sent"));
            json_object_set_new(j->msg, "sent_at", json_integer(t));
            json_object_set_new(j->msg, "provider_message_id", j->pmid ? json_string(j->pmid) : json_null());
        } else {
            json_object_set_new(j->msg, "status", json_string("failed"));
            json_object_set_new(j->msg, "error", json_string(j->reason));
        }
        text = json_dumps(j->msg, JSON_COMPACT);
        nkeys = 3;
        if (j->step == J_SENT && j->pmid != NULL) {
            hark_derive_id(channel ? channel : "unknown", j->ch->name, j->pmid, pid);
            part_key(j, pmid, sizeof(pmid), "pmid", pid);
            nkeys = 4;
            if (channel != NULL && strcmp(channel, "email") == 0) {
                ref_key(j, j->pmid, ref, sizeof(ref));
                nkeys = 5;
            }
        }
        argv[k++] = nkeys == 3 ? "3" : nkeys == 4 ? "4" : "5";
        argv[k++] = conv;
        argv[k++] = msg;
        argv[k++] = events;
        if (nkeys >= 4) {
            argv[k++] = pmid;
        }
        if (nkeys == 5) {
            argv[k++] = ref;
        }
        argv[k++] = j->step == J_SENT ? "sent" : "failed";
    }
    if (text == NULL) {
        job_later(j, 1000);
        return;
    }
    argv[k++] = j->msg_id;
    argv[k++] = text;
    argv[k++] = now;
    argv[k++] = maxlen;
    argv[k++] = j->in.conv_id ? j->in.conv_id : "";
    job_script(j, job_on_recorded, k, argv);
    hark_free(text);
}

/* ---- DEAD, ACK ---- */

static void job_on_dead(redisAsyncContext *c, void *reply, void *arg)
{
    struct ob_job *j = arg;

    (void)c;
    if (!job_reply_ok(j, reply)) {
        return;
    }
    j->step = J_ACK;
    job_run(j);
}

static void job_dead(struct ob_job *j)
{
    const char *argv[OB_FIELDS_MAX + 10];
    char now[32];
    int k = 0;

    snprintf(now, sizeof(now), "%lld", (long long)hark_now_ms());
    argv[k++] = "XADD";
    argv[k++] = j->o->dead_key;
    argv[k++] = "*";
    for (size_t i = 0; i + 1 < j->in.n_fields; i += 2) {
        if (strcmp(j->in.fields[i], "reason") && strcmp(j->in.fields[i], "outbox_entry") &&
            strcmp(j->in.fields[i], "failed_at")) {
            argv[k++] = j->in.fields[i];
            argv[k++] = j->in.fields[i + 1];
        }
    }
    argv[k++] = "reason";
    argv[k++] = j->reason;
    argv[k++] = "outbox_entry";
    argv[k++] = j->entry_id;
    argv[k++] = "failed_at";
    argv[k++] = now;
    job_command(j, job_on_dead, k, argv, NULL);
}

static void job_on_ack(redisAsyncContext *c, void *reply, void *arg)
{
    struct ob_job *j = arg;

    (void)c;
    if (!job_reply_ok(j, reply)) {
        return;
    }
    job_end(j);
}

static void job_ack(struct ob_job *j)
{
    const char *argv[4] = {"XACK", j->o->stream_key, "harkd", j->entry_id};
    job_command(j, job_on_ack, 4, argv, NULL);
}

/* Issue the current step. */
static void job_run(struct ob_job *j)
{
    if (j->o->stopping) {
        return;
    }
    switch (j->step) {
    case J_LOOKUP:
        job_lookup(j);
        break;
    case J_IDEM:
    case J_IDEM_OWNER:
        job_idem(j);
        break;
    case J_PREPARE:
        job_prepare(j);
        break;
    case J_SEND:
        job_send(j);
        break;
    case J_SENDING:
        break;
    case J_SENT:
    case J_FAILED:
    case J_REJECT:
        job_record(j);
        break;
    case J_DEAD:
        job_dead(j);
        break;
    case J_ACK:
        job_ack(j);
        break;
    }
}

void ob_job_start(struct hark_outbox *o, const char *entry_id, const redisReply *fields)
{
    struct ob_job *j = hark_calloc(1, sizeof(*j));

    if (j == NULL || (j->entry_id = hark_strdup(entry_id)) == NULL ||
        (j->timer = evtimer_new(o->base, job_on_timer, j)) == NULL) {
        if (j) {
            hark_free(j->entry_id);
            hark_free(j);
        }
        log_error("outbox", "msg=\"out of memory; entry stays pending\" entry=%s", entry_id);
        return;
    }
    j->o = o;
    j->next = o->jobs;
    if (o->jobs) {
        o->jobs->prev = j;
    }
    o->jobs = j;
    o->n_jobs++;
    if (ob_entry_read(&j->in, fields, j->reason, sizeof(j->reason)) < 0) {
        log_error("outbox", "msg=\"out of memory; entry stays pending\" entry=%s", entry_id);
        job_free(j);
        return;
    }
    if (ob_entry_validate(&j->in, j->reason, sizeof(j->reason)) < 0) {
        log_warn("outbox", "msg=\"bad reply request\" entry=%s reason=\"%s\"", entry_id, j->reason);
        /* Find the partition anyway when there is a conversation id, for the event. */
        j->step = j->in.conv_id && j->in.conv_id[0] && strlen(j->in.conv_id) <= OB_KEY_MAX ? J_LOOKUP : J_REJECT;
    } else {
        j->step = J_LOOKUP;
    }
    job_run(j);
}

struct ob_job *ob_job_find(struct hark_outbox *o, const char *entry_id)
{
    for (struct ob_job *j = o->jobs; j != NULL; j = j->next) {
        if (strcmp(j->entry_id, entry_id) == 0) {
            return j;
        }
    }
    return NULL;
}

size_t ob_job_ids(struct hark_outbox *o, const char **ids, size_t cap)
{
    size_t n = 0;
    for (struct ob_job *j = o->jobs; j != NULL && n < cap; j = j->next) {
        ids[n++] = j->entry_id;
    }
    return n;
}

void ob_job_free_all(struct hark_outbox *o)
{
    while (o->jobs != NULL) {
        job_free(o->jobs);
    }
}
