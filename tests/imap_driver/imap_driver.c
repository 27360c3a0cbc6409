/*
 * Test driver: runs the IMAP adapter on its own event loop against a real
 * server, with a fake core that writes what it is given as JSON lines.
 *
 *   imap_driver CONFIG STATE
 *
 * CONFIG holds the "key = value" lines of one [channel.NAME] section (the
 * channel is named "mail"); STATE is a JSON file standing in for the
 * channel's Redis state hash (read at start, rewritten on every set), so
 * that a restarted driver resumes from its checkpoint.
 *
 * Output on stdout, one JSON object per line, flushed:
 *   {"event":"ingest","uid":N,"message_id":...,"subject":...,"msg":{...}}
 *   {"event":"quarantine","reason":...,"record":{...}}
 *   {"event":"state","field":...,"value":...}
 * Environment: DRIVER_RETRY=N answers RETRY to the first N ingests.
 *
 * This is not harkd: the MIME parsing below is a small stand-in for
 * hark_mime_parse (Message-ID, Subject, From, Auto-Submitted), enough to
 * exercise the client; harkd links the real parser.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "hark/alloc.h"
#include "hark/conf.h"
#include "hark/core.h"
#include "hark/log.h"
#include "../../adapters/imap/mime.h"

extern const struct hark_adapter hark_adapter_imap;

static struct event_base *g_base;
static const char *g_state_path;
static json_t *g_state;
static long g_retry;

static void emit(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    if (s != NULL) {
        fprintf(stdout, "%s\n", s);
        fflush(stdout);
        free(s);
    }
    json_decref(obj);
}

/* Deferred callbacks: the core never calls back from inside the call. */
struct later {
    struct later *next;
    struct event *ev;
    hark_done_fn done;
    hark_value_fn value_done;
    void *arg;
    enum hark_store_result res;
    char *value;
};

static struct later *g_laters;

static void later_run(evutil_socket_t fd, short what, void *p)
{
    struct later *l = p;
    (void)fd;
    (void)what;
    for (struct later **pp = &g_laters; *pp; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    event_free(l->ev);
    if (l->done) {
        l->done(l->arg, l->res);
    } else {
        l->value_done(l->arg, l->res, l->value);
    }
    free(l->value);
    free(l);
}

static void defer(hark_done_fn done, hark_value_fn vdone, void *arg, enum hark_store_result res,
                  const char *value)
{
    struct later *l = calloc(1, sizeof(*l));
    struct timeval tv = {0, 1000};
    l->done = done;
    l->value_done = vdone;
    l->arg = arg;
    l->res = res;
    l->value = value ? strdup(value) : NULL;
    l->ev = evtimer_new(g_base, later_run, l);
    l->next = g_laters;
    g_laters = l;
    evtimer_add(l->ev, &tv);
}

void hark_ingest(struct hark_channel *ch, struct hark_batch *batch, hark_done_fn done, void *arg)
{
    (void)ch;
    if (g_retry > 0) {
        g_retry--;
        hark_batch_clear(batch);
        emit(json_pack("{s:s}", "event", "retry"));
        defer(done, NULL, arg, HARK_STORE_RETRY, NULL);
        return;
    }
    for (size_t i = 0; i < batch->n; i++) {
        struct hark_msg *m = batch->msgs[i];
        json_t *j = hark_msg_to_json(m, "x");
        emit(json_pack("{s:s,s:O?,s:s?,s:s?,s:s,s:o}", "event", "ingest", "uid",
                       json_object_get(m->extra, "uid"), "message_id", m->provider_message_id,
                       "subject", m->subject, "account", m->account, "msg",
                       j ? j : json_null()));
    }
    hark_batch_clear(batch);
    defer(done, NULL, arg, HARK_STORE_OK, NULL);
}

void hark_state_get(struct hark_channel *ch, const char *field, hark_value_fn done, void *arg)
{
    (void)ch;
    defer(NULL, done, arg, HARK_STORE_OK, json_string_value(json_object_get(g_state, field)));
}

void hark_state_set(struct hark_channel *ch, const char *field, const char *value,
                    hark_done_fn done, void *arg)
{
    (void)ch;
    json_object_set_new(g_state, field, json_string(value));
    {
        /* Atomically, so that a test reading it never sees half a file. */
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", g_state_path);
        if (json_dump_file(g_state, tmp, JSON_COMPACT) == 0) {
            rename(tmp, g_state_path);
        }
    }
    emit(json_pack("{s:s,s:s,s:s}", "event", "state", "field", field, "value", value));
    defer(done, NULL, arg, HARK_STORE_OK, NULL);
}

void hark_quarantine(struct hark_channel *ch, const char *reason, json_t *record,
                     hark_done_fn done, void *arg)
{
    (void)ch;
    emit(json_pack("{s:s,s:s,s:O}", "event", "quarantine", "reason", reason, "record", record));
    defer(done, NULL, arg, HARK_STORE_OK, NULL);
}

/* The value of header `name` (first line only), copied, or NULL. */
static char *header(const char *raw, size_t len, const char *name)
{
    size_t nl = strlen(name);
    const char *p = raw;
    const char *end = raw + len;

    while (p < end && *p != '\r' && *p != '\n') {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL) {
            eol = end;
        }
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            const char *ve = eol;
            while (v < ve && *v == ' ') {
                v++;
            }
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ')) {
                ve--;
            }
            return hark_strndup(v, (size_t)(ve - v));
        }
        p = eol + 1;
    }
    return NULL;
}

int hark_mime_parse(const char *raw, size_t len, const struct hark_mime_opts *opts,
                    struct hark_mime_result *res, char *why, size_t why_len)
{
    char *from = header(raw, len, "From");
    char *mid = header(raw, len, "Message-ID");
    char *autos = header(raw, len, "Auto-Submitted");
    struct hark_msg *m;

    memset(res, 0, sizeof(*res));
    if (from == NULL || strchr(from, '@') == NULL) {
        snprintf(why, why_len, "no From address");
        hark_free(from);
        hark_free(mid);
        hark_free(autos);
        return -1;
    }
    m = hark_msg_new(HARK_KIND_MESSAGE, "email", "imap", opts->account);
    m->from.id = from;
    m->subject = header(raw, len, "Subject");
    m->provider_message_id = mid ? mid : hark_strdup("no-id");
    m->text = hark_strdup("(stand-in parser)");
    hark_msg_add_ident(m, "email", from);
    m->thread_key = hark_strdup(from);
    /* Always set: src/msg.c leaks a fresh {} when thread is NULL (reported). */
    hark_msg_thread_set(m, "message_id", m->provider_message_id);
    res->msg = m;
    if (autos != NULL && strcasecmp(autos, "no") != 0) {
        res->auto_generated = 1;
        res->auto_reason = "Auto-Submitted";
    }
    hark_free(autos);
    return 0;
}

void hark_mime_result_clear(struct hark_mime_result *res)
{
    hark_msg_free(res->msg);
    res->msg = NULL;
}

int hark_mime_save_attachments(struct hark_mime_result *res, const char *dir,
                               const char *url_base, char *why, size_t why_len)
{
    (void)res, (void)dir, (void)url_base, (void)why, (void)why_len;
    return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    event_base_loopexit(g_base, NULL);
}

int main(int argc, char **argv)
{
    static const char *const secrets[] = {"password", "oauth_token", NULL};
    struct hark_channel ch;
    struct hark_section *sec;
    struct event *sigterm;
    struct event *sigint;
    char err[256];
    json_error_t jerr;
    FILE *f;
    char text[8192];
    size_t n;

    if (argc != 3) {
        fprintf(stderr, "usage: imap_driver CONFIG STATE\n");
        return 2;
    }
    hark_alloc_init_json();
    hark_log_threshold = getenv("DRIVER_DEBUG") ? HARK_LOG_DEBUG : HARK_LOG_INFO;
    g_retry = getenv("DRIVER_RETRY") ? strtol(getenv("DRIVER_RETRY"), NULL, 10) : 0;
    f = fopen(argv[1], "r");
    if (f == NULL) {
        perror(argv[1]);
        return 2;
    }
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    g_state_path = argv[2];
    g_state = json_load_file(g_state_path, 0, &jerr);
    if (g_state == NULL) {
        g_state = json_object();
    }
    sec = hark_section_from_text("channel.mail", text, secrets);
    if (sec == NULL) {
        fprintf(stderr, "bad config\n");
        return 2;
    }
    memset(&ch, 0, sizeof(ch));
    ch.name = "mail";
    ch.adapter = &hark_adapter_imap;
    ch.section = sec;
    if (ch.adapter->init(&ch, err, sizeof(err)) < 0) {
        fprintf(stderr, "init: %s\n", err);
        return 1;
    }
    g_base = event_base_new();
    sigterm = evsignal_new(g_base, SIGTERM, on_signal, NULL);
    sigint = evsignal_new(g_base, SIGINT, on_signal, NULL);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);
    if (ch.adapter->start(&ch, g_base) < 0) {
        return 1;
    }
    event_base_dispatch(g_base);
    ch.adapter->stop(&ch);
    ch.adapter->destroy(ch.ctx);
    /* Callbacks still due run after destroy: the adapter must ignore them. */
    while (g_laters != NULL) {
        later_run(-1, 0, g_laters);
    }
    event_free(sigterm);
    event_free(sigint);
    event_base_free(g_base);
    hark_section_free(sec);
    json_decref(g_state);
    return 0;
}
