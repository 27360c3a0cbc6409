/*
 * hark: RFC 5322 message to normalized message (headers, threading,
 * auto-generated detection). The MIME tree walk is in mime_body.c and the
 * attachment writer in mime_save.c.
 *
 * Thread safety: GMime is initialized once per process through
 * pthread_once (g_mime_init is not safe to call concurrently). After that,
 * hark_mime_parse may run in several threads at once: every call builds
 * its own parser, options and streams and shares no GMime object.
 */
#include <pthread.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/codec.h"
#include "hark/crypto.h"
#include "hark/text.h"
#include "mime_priv.h"

static pthread_once_t mime_once = PTHREAD_ONCE_INIT;

static void mime_init_once(void)
{
    g_mime_init();
}

/* Copy a sentence into why. */
static void set_why(char *why, size_t why_len, const char *text)
{
    if (why != NULL && why_len > 0) {
        snprintf(why, why_len, "%s", text);
    }
}

char *mime_bracket_id(const char *id)
{
    size_t n;

    while (*id == ' ' || *id == '\t' || *id == '<') {
        id++;
    }
    n = strlen(id);
    while (n > 0 && (id[n - 1] == ' ' || id[n - 1] == '\t' || id[n - 1] == '>')) {
        n--;
    }
    if (n == 0) {
        return NULL;
    }
    return hark_asprintf("<%.*s>", (int)n, id);
}

/* A lowercased copy of an address, or NULL (empty or no memory). */
static char *lower_addr(const char *addr)
{
    char *copy, *p;

    if (addr == NULL || addr[0] == '\0') {
        return NULL;
    }
    copy = mime_clean_line(addr);
    if (copy == NULL || copy[0] == '\0') {
        hark_free(copy);
        return NULL;
    }
    for (p = copy; *p; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            *p = (char)(*p - 'A' + 'a');
        }
    }
    return copy;
}

/* The first mailbox of a list, looking into groups. NULL when none. */
static InternetAddressMailbox *first_mailbox(InternetAddressList *list)
{
    int i, n = list ? internet_address_list_length(list) : 0;

    for (i = 0; i < n; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            const char *a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
            if (a != NULL && a[0] != '\0') {
                return INTERNET_ADDRESS_MAILBOX(ia);
            }
        } else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
            InternetAddressList *m = internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia));
            InternetAddressMailbox *mb = first_mailbox(m);
            if (mb != NULL) {
                return mb;
            }
        }
    }
    return NULL;
}

/* Every mailbox address of list appended (lowercased) to arr. 0 or -1. */
static int list_addresses(InternetAddressList *list, json_t *arr, int depth)
{
    int i, n = list ? internet_address_list_length(list) : 0;

    for (i = 0; i < n && json_array_size(arr) < 100; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            char *a = lower_addr(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
            if (a != NULL) {
                int rc = json_array_append_new(arr, json_string(a));
                hark_free(a);
                if (rc < 0) {
                    return -1;
                }
            }
        } else if (INTERNET_ADDRESS_IS_GROUP(ia) && depth == 0) {
            InternetAddressList *m = internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia));
            if (list_addresses(m, arr, 1) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/*
 * Sender, recipient, Cc and Reply-To. The customer is the sender, unless
 * the sender is our own mailbox: then the message is outbound (a copy of
 * what we sent) and the customer is the first To address.
 */
static int fill_parties(GMimeMessage *m, const struct hark_mime_opts *opts,
                        struct hark_msg *msg, char *why, size_t why_len)
{
    InternetAddressMailbox *from = first_mailbox(g_mime_message_get_from(m));
    InternetAddressMailbox *to = first_mailbox(g_mime_message_get_to(m));
    InternetAddressMailbox *reply = first_mailbox(g_mime_message_get_reply_to(m));
    const char *customer;
    json_t *cc;

    if (from == NULL) {
        from = first_mailbox(g_mime_message_get_sender(m));
    }
    if (from == NULL) {
        set_why(why, why_len, "message has no From address");
        return -1;
    }
    msg->from.id = lower_addr(internet_address_mailbox_get_addr(from));
    if (msg->from.id == NULL) {
        goto nomem;
    }
    if (internet_address_get_name(INTERNET_ADDRESS(from)) != NULL) {
        msg->from.name = mime_clean_line(internet_address_get_name(INTERNET_ADDRESS(from)));
        if (msg->from.name != NULL && msg->from.name[0] == '\0') {
            hark_free(msg->from.name);
            msg->from.name = NULL;
        }
    }
    if (to != NULL && (msg->to.id = lower_addr(internet_address_mailbox_get_addr(to))) == NULL) {
        goto nomem;
    }
    customer = msg->from.id;
    if (opts->mailbox_address != NULL && strcasecmp(msg->from.id, opts->mailbox_address) == 0 &&
        msg->to.id != NULL) {
        msg->direction = HARK_DIR_OUTBOUND;
        customer = msg->to.id;
    }
    if (hark_msg_add_ident(msg, "email", customer) < 0) {
        goto nomem;
    }
    cc = json_array();
    if (cc == NULL || list_addresses(g_mime_message_get_cc(m), cc, 0) < 0) {
        json_decref(cc);
        goto nomem;
    }
    if (json_array_size(cc) == 0) {
        json_decref(cc);
    } else if (hark_msg_extra_set(msg, "cc", cc) < 0) {
        goto nomem;
    }
    if (reply != NULL) {
        char *r = lower_addr(internet_address_mailbox_get_addr(reply));
        int rc = r ? hark_msg_extra_set(msg, "reply_to", json_string(r)) : -1;
        hark_free(r);
        if (rc < 0) {
            goto nomem;
        }
    }
    return 0;
nomem:
    set_why(why, why_len, "out of memory reading addresses");
    return -1;
}

/* The message ids of a References-like header, in header order. */
static GMimeReferences *parse_refs(GMimeObject *obj, const char *name, GMimeParserOptions *po)
{
    const char *v = g_mime_object_get_header(obj, name);

    if (v == NULL) {
        return NULL;
    }
    return g_mime_references_parse(po, v);
}

/* Add ref (bracketed) to msg->thread_refs unless already present. 0 or -1. */
static int add_ref_unique(struct hark_msg *msg, const char *raw)
{
    char *ref = mime_bracket_id(raw);
    size_t i;
    int rc = 0;

    if (ref == NULL) {
        return 0;
    }
    for (i = 0; i < msg->n_thread_refs; i++) {
        if (strcmp(msg->thread_refs[i], ref) == 0) {
            hark_free(ref);
            return 0;
        }
    }
    if (hark_utf8_valid(ref, strlen(ref))) {
        rc = hark_msg_add_thread_ref(msg, ref);
    }
    hark_free(ref);
    return rc;
}

/*
 * Message-ID, In-Reply-To and References: the thread object, thread_refs
 * (In-Reply-To, then References newest first), own_ref, the provider
 * message id and the thread key "mid:<root>". Returns 0 or -1 (no memory).
 */
static int fill_thread(GMimeMessage *m, GMimeParserOptions *po, const char *raw, size_t len,
                       struct hark_msg *msg)
{
    GMimeObject *obj = GMIME_OBJECT(m);
    GMimeReferences *irt = parse_refs(obj, "In-Reply-To", po);
    GMimeReferences *refs = parse_refs(obj, "References", po);
    const char *mid = g_mime_message_get_message_id(m);
    const char *root = NULL;
    json_t *arr = NULL;
    char *own = NULL, *tmp;
    int i, n, rc = -1;

    if (mid != NULL && (own = mime_bracket_id(mid)) != NULL && !hark_utf8_valid(own, strlen(own))) {
        hark_free(own);
        own = NULL;
    }
    if (own != NULL) {
        if ((msg->own_ref = hark_strdup(own)) == NULL ||
            (msg->provider_message_id = hark_strdup(own)) == NULL ||
            hark_msg_thread_set(msg, "message_id", own) < 0) {
            goto out;
        }
    } else {
        unsigned char d[HARK_DIGEST_MAX];
        char hex[2 * 32 + 1];
        hark_digest(HARK_SHA256, raw, len, d);
        hark_hex_encode(d, 32, hex, sizeof(hex));
        if ((msg->provider_message_id = hark_asprintf("sha256:%s", hex)) == NULL) {
            goto out;
        }
    }
    if (irt != NULL && g_mime_references_length(irt) > 0) {
        root = g_mime_references_get_message_id(irt, 0);
        tmp = mime_bracket_id(root);
        if (tmp != NULL && hark_utf8_valid(tmp, strlen(tmp)) &&
            hark_msg_thread_set(msg, "in_reply_to", tmp) < 0) {
            hark_free(tmp);
            goto out;
        }
        hark_free(tmp);
        if (add_ref_unique(msg, root) < 0) {
            goto out;
        }
    }
    n = refs ? g_mime_references_length(refs) : 0;
    if ((arr = json_array()) == NULL) {
        goto out;
    }
    for (i = 0; i < n && i < HARK_MAX_THREAD_REFS; i++) {
        tmp = mime_bracket_id(g_mime_references_get_message_id(refs, i));
        if (tmp != NULL && hark_utf8_valid(tmp, strlen(tmp)) &&
            json_array_append_new(arr, json_string(tmp)) < 0) {
            hark_free(tmp);
            goto out;
        }
        hark_free(tmp);
    }
    for (i = n - 1; i >= 0; i--) {
        if (add_ref_unique(msg, g_mime_references_get_message_id(refs, i)) < 0) {
            goto out;
        }
    }
    if (n > 0) {
        root = g_mime_references_get_message_id(refs, 0);
        if (msg->thread == NULL && (msg->thread = json_object()) == NULL) {
            goto out;
        }
        if (json_object_set(msg->thread, "references", arr) < 0) {
            goto out;
        }
    }
    tmp = root ? mime_bracket_id(root) : NULL;
    if (tmp == NULL || !hark_utf8_valid(tmp, strlen(tmp))) {
        hark_free(tmp);
        tmp = own ? hark_strdup(own) : hark_strdup(msg->provider_message_id);
        if (tmp == NULL) {
            goto out;
        }
    }
    msg->thread_key = hark_asprintf("mid:%s", tmp);
    hark_free(tmp);
    rc = msg->thread_key ? 0 : -1;
out:
    json_decref(arr);
    hark_free(own);
    if (irt != NULL) {
        g_mime_references_free(irt);
    }
    if (refs != NULL) {
        g_mime_references_free(refs);
    }
    return rc;
}

/* 1 when header value v (may be NULL) starts with word, ignoring case and space. */
static int value_is(const char *v, const char *word)
{
    size_t n = strlen(word);

    if (v == NULL) {
        return 0;
    }
    while (*v == ' ' || *v == '\t') {
        v++;
    }
    return strncasecmp(v, word, n) == 0 &&
           (v[n] == '\0' || v[n] == ';' || v[n] == ' ' || v[n] == '\t' || v[n] == '\r' ||
            v[n] == '\n');
}

/* 1 when the subject reads like an out-of-office or automatic reply. */
static int vacation_subject(const char *s)
{
    static const char *const pats[] = {
        "out of office", "out of the office", "automatic reply", "auto reply", "autoreply",
        "auto-reply", "away from", "on vacation", "on holiday", "abwesenheit",
        "automatische antwort", "respuesta autom", "fuera de la oficina", "ausente",
        "réponse automatique", "absent", "resposta autom", "fora do escrit", "ausência",
        "risposta automatica", "fuori ufficio", NULL,
    };
    size_t i;

    if (s == NULL) {
        return 0;
    }
    for (i = 0; pats[i] != NULL; i++) {
        if (strcasestr(s, pats[i]) != NULL) {
            return 1;
        }
    }
    return 0;
}

/*
 * Auto-generated mail: the rules of docs/email.md, strongest first.
 * Returns a static reason or NULL for mail a person wrote.
 */
static const char *auto_reason(GMimeMessage *m)
{
    GMimeObject *o = GMIME_OBJECT(m);
    GMimeObject *top = g_mime_message_get_mime_part(m);
    GMimeContentType *ct = top ? g_mime_object_get_content_type(top) : NULL;
    const char *as = g_mime_object_get_header(o, "Auto-Submitted");
    const char *prec = g_mime_object_get_header(o, "Precedence");
    const char *rp = g_mime_object_get_header(o, "Return-Path");
    const char *subject = g_mime_message_get_subject(m);
    InternetAddressMailbox *from = first_mailbox(g_mime_message_get_from(m));
    const char *faddr = from ? internet_address_mailbox_get_addr(from) : NULL;

    if (as != NULL && !value_is(as, "no")) {
        return "Auto-Submitted header";
    }
    if (ct != NULL && g_mime_content_type_is_type(ct, "multipart", "report")) {
        const char *rt = g_mime_content_type_get_parameter(ct, "report-type");
        if (rt != NULL && strcasecmp(rt, "disposition-notification") == 0) {
            return "read receipt (multipart/report)";
        }
        return "delivery status report (multipart/report)";
    }
    if (rp != NULL) {
        const char *p = rp;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (strncmp(p, "<>", 2) == 0) {
            return "bounce (empty Return-Path)";
        }
    }
    if (faddr != NULL && (strncasecmp(faddr, "mailer-daemon@", 14) == 0 ||
                          strncasecmp(faddr, "postmaster@", 11) == 0)) {
        return "bounce (MAILER-DAEMON sender)";
    }
    if (value_is(prec, "bulk")) {
        return "Precedence: bulk";
    }
    if (value_is(prec, "list")) {
        return "Precedence: list";
    }
    if (value_is(prec, "junk")) {
        return "Precedence: junk";
    }
    if (g_mime_object_get_header(o, "X-Autoreply") != NULL ||
        g_mime_object_get_header(o, "X-Autorespond") != NULL ||
        g_mime_object_get_header(o, "X-Autoresponder") != NULL) {
        return "X-Autoreply header";
    }
    if (g_mime_object_get_header(o, "List-Id") != NULL) {
        return "mailing list (List-Id)";
    }
    if (g_mime_object_get_header(o, "List-Unsubscribe") != NULL) {
        return "mailing list (List-Unsubscribe)";
    }
    if (vacation_subject(subject) &&
        (g_mime_object_get_header(o, "X-Auto-Response-Suppress") != NULL ||
         g_mime_object_get_header(o, "X-Autogenerated") != NULL ||
         value_is(g_mime_object_get_header(o, "X-Mailer"), "vacation"))) {
        return "vacation subject with automatic-reply headers";
    }
    return NULL;
}

/* Count Content-Type header lines: a cheap bound on what GMime will build. */
static size_t count_entities(const char *raw, size_t len)
{
    static const char key[] = "content-type:";
    size_t i, n = 0;

    for (i = 0; i + sizeof(key) - 1 <= len; i++) {
        if ((i == 0 || raw[i - 1] == '\n') && strncasecmp(raw + i, key, sizeof(key) - 1) == 0) {
            n++;
        }
    }
    return n;
}

/* Subject, date and the body walk. 0 or -1 with why. */
static int fill_content(GMimeMessage *m, struct mime_walk *w, struct hark_msg *msg)
{
    GDateTime *date = g_mime_message_get_date(m);
    GMimeObject *body = g_mime_message_get_mime_part(m);
    const char *subject = g_mime_message_get_subject(m);

    if (subject != NULL && (msg->subject = mime_clean_line(subject)) == NULL) {
        set_why(w->why, w->why_len, "out of memory reading the subject");
        return -1;
    }
    if (date != NULL) {
        msg->sent_at = (int64_t)g_date_time_to_unix(date) * 1000 +
                       g_date_time_get_microsecond(date) / 1000;
        if (msg->sent_at < 0) {
            msg->sent_at = 0;
        }
    }
    if (body != NULL && mime_walk_object(w, body, 0, 1) < 0) {
        return -1;
    }
    if (w->plain != NULL && w->plain[0] != '\0') {
        msg->text = w->plain;
        w->plain = NULL;
    } else if (w->html != NULL) {
        msg->text = hark_html_to_text(w->html, strlen(w->html));
    } else {
        msg->text = hark_strdup("");
    }
    if (msg->text == NULL) {
        set_why(w->why, w->why_len, "out of memory converting the body");
        return -1;
    }
    msg->reply_text = hark_reply_strip(msg->text, strlen(msg->text));
    if (msg->reply_text == NULL) {
        set_why(w->why, w->why_len, "out of memory stripping the reply");
        return -1;
    }
    if (msg->reply_text[0] == '\0' && msg->text[0] != '\0') {
        /* Nothing new (a bare forward, a quote only): show the whole text. */
        hark_free(msg->reply_text);
        msg->reply_text = NULL;
    }
    if (w->truncated && hark_msg_extra_set(msg, "attachments_truncated", json_true()) < 0) {
        set_why(w->why, w->why_len, "out of memory");
        return -1;
    }
    return 0;
}

/*
 * Parse one raw message; see mime.h. GMime objects live only inside this
 * call; everything in res is hark_malloc'd. On failure res is cleared.
 */
int hark_mime_parse(const char *raw, size_t len, const struct hark_mime_opts *opts,
                    struct hark_mime_result *res, char *why, size_t why_len)
{
    struct mime_walk w;
    GMimeParserOptions *po = NULL;
    GMimeStream *stream = NULL;
    GMimeParser *parser = NULL;
    GMimeMessage *m = NULL;
    static const char *fallback[] = {"utf-8", "windows-1252", NULL};
    const char *reason;
    int rc = -1;

    memset(res, 0, sizeof(*res));
    memset(&w, 0, sizeof(w));
    if (raw == NULL || len == 0) {
        set_why(why, why_len, "empty message");
        return -1;
    }
    if (len > MIME_MAX_RAW) {
        set_why(why, why_len, "message larger than 64 MiB");
        return -1;
    }
    w.opts = opts;
    w.res = res;
    w.why = why;
    w.why_len = why_len;
    w.max_parts = opts->max_parts ? opts->max_parts : MIME_DEFAULT_MAX_PARTS;
    w.max_depth = opts->max_depth ? opts->max_depth : MIME_DEFAULT_MAX_DEPTH;
    w.max_attachment = opts->max_attachment_size ? opts->max_attachment_size
                                                 : MIME_DEFAULT_MAX_ATTACHMENT;
    if (count_entities(raw, len) > 2 * w.max_parts + 2) {
        set_why(why, why_len, "too many MIME parts");
        return -1;
    }
    pthread_once(&mime_once, mime_init_once);
    po = g_mime_parser_options_new();
    g_mime_parser_options_set_rfc2047_compliance_mode(po, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_address_compliance_mode(po, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(po, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_fallback_charsets(po, fallback);
    stream = g_mime_stream_mem_new_with_buffer(raw, len);
    parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    m = g_mime_parser_construct_message(parser, po);
    if (m == NULL) {
        set_why(why, why_len, "not an RFC 5322 message");
        goto out;
    }
    if (g_mime_header_list_get_count(g_mime_object_get_header_list(GMIME_OBJECT(m))) >
        MIME_MAX_HEADERS) {
        set_why(why, why_len, "too many header fields");
        goto out;
    }
    res->msg = hark_msg_new(HARK_KIND_MESSAGE, "email", "imap", opts->account);
    if (res->msg == NULL) {
        set_why(why, why_len, "out of memory");
        goto out;
    }
    if (fill_parties(m, opts, res->msg, why, why_len) < 0) {
        goto out;
    }
    if (fill_thread(m, po, raw, len, res->msg) < 0) {
        set_why(why, why_len, "out of memory reading message ids");
        goto out;
    }
    if (fill_content(m, &w, res->msg) < 0) {
        goto out;
    }
    reason = auto_reason(m);
    if (reason != NULL) {
        res->auto_generated = 1;
        res->auto_reason = reason;
        if (hark_msg_extra_set(res->msg, "auto_generated", json_string(reason)) < 0) {
            set_why(why, why_len, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    hark_free(w.plain);
    hark_free(w.html);
    if (rc < 0) {
        hark_mime_result_clear(res);
    }
    if (m != NULL) {
        g_object_unref(m);
    }
    if (parser != NULL) {
        g_object_unref(parser);
    }
    if (stream != NULL) {
        g_object_unref(stream);
    }
    g_mime_parser_options_free(po);
    return rc;
}

void hark_mime_result_clear(struct hark_mime_result *res)
{
    size_t i;

    if (res == NULL) {
        return;
    }
    hark_msg_free(res->msg);
    for (i = 0; i < res->n_blobs; i++) {
        hark_free(res->blobs[i].data);
    }
    hark_free(res->blobs);
    memset(res, 0, sizeof(*res));
}
