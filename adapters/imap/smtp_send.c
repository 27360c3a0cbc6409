/*
 * Email replies: compose an RFC 5322 message that threads under the
 * customer's mail (In-Reply-To, References, "Re:" subject) and describe
 * the SMTP call that submits it.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hark/alloc.h"
#include "hark/buf.h"
#include "hark/codec.h"
#include "hark/conf.h"
#include "hark/text.h"
#include "smtp_send.h"

#define SMTP_MSG_CAP (4 * 1024 * 1024)
#define SMTP_ADDR_MAX 320

/* 1 when s holds a CR, LF or NUL-free control character that breaks a header. */
static int has_line_break(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") != NULL;
}

static int is_ascii(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s >= 0x80) {
            return 0;
        }
    }
    return 1;
}

/*
 * The bare address of a From value: the text inside <...>, or the value
 * itself. Returns 0 or -1 when it is missing or does not fit.
 */
static int bare_address(const char *from, char *out, size_t cap)
{
    const char *lt = strrchr(from, '<');
    const char *start = from;
    size_t n;

    if (lt != NULL) {
        const char *gt = strchr(lt, '>');
        if (gt == NULL) {
            return -1;
        }
        start = lt + 1;
        n = (size_t)(gt - start);
    } else {
        while (*start == ' ') {
            start++;
        }
        n = strlen(start);
        while (n > 0 && start[n - 1] == ' ') {
            n--;
        }
    }
    if (n == 0 || n >= cap || memchr(start, '@', n) == NULL) {
        return -1;
    }
    memcpy(out, start, n);
    out[n] = '\0';
    return 0;
}

int smtp_message_id(const char *our_id, const char *from, char *out, size_t cap)
{
    char addr[SMTP_ADDR_MAX];
    const char *domain = "hark.invalid";
    int n;

    if (from != NULL && bare_address(from, addr, sizeof(addr)) == 0) {
        domain = strrchr(addr, '@') + 1;
        if (domain[0] == '\0') {
            domain = "hark.invalid";
        }
    }
    n = snprintf(out, cap, "<hark.%s@%s>", our_id, domain);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

char *smtp_reply_subject(const char *subject)
{
    const char *s = subject ? subject : "";

    /* Drop every leading "Re:" (any case, spaces around) so replies never pile them up. */
    for (;;) {
        while (*s == ' ' || *s == '\t') {
            s++;
        }
        if ((s[0] == 'R' || s[0] == 'r') && (s[1] == 'E' || s[1] == 'e')) {
            const char *p = s + 2;
            while (*p == ' ') {
                p++;
            }
            if (*p == ':') {
                s = p + 1;
                continue;
            }
        }
        break;
    }
    return hark_asprintf("Re: %s", s);
}

/* Append the subject as a header, RFC 2047 base64 words when not ASCII. */
static void add_subject(struct hark_buf *b, const char *subject)
{
    char *clean = hark_strdup(subject);
    size_t len, i = 0;

    if (clean == NULL) {
        b->failed = 1;
        return;
    }
    for (char *p = clean; *p; p++) {
        if (*p == '\r' || *p == '\n' || *p == '\t') {
            *p = ' ';
        }
    }
    hark_buf_str(b, "Subject: ");
    len = strlen(clean);
    if (is_ascii(clean) && len <= 900) {
        hark_buf_str(b, clean);
        hark_buf_str(b, "\r\n");
        hark_free(clean);
        return;
    }
    while (i < len) {
        /* At most 45 bytes per word (60 base64 characters), cut on a character boundary. */
        size_t n = len - i < 45 ? len - i : 45;
        char enc[64];
        while (n > 0 && i + n < len && ((unsigned char)clean[i + n] & 0xC0) == 0x80) {
            n--;
        }
        if (n == 0) {
            n = len - i < 45 ? len - i : 45;
        }
        hark_base64_encode((const unsigned char *)clean + i, n, enc, sizeof(enc));
        if (i > 0) {
            hark_buf_str(b, "\r\n ");
        }
        hark_buf_str(b, "=?UTF-8?B?");
        hark_buf_str(b, enc);
        hark_buf_str(b, "?=");
        i += n;
    }
    hark_buf_str(b, "\r\n");
    hark_free(clean);
}

/* Append one Message-ID token in angle brackets. */
static void add_msgid(struct hark_buf *b, const char *id, size_t n)
{
    if (n > 0 && id[0] == '<') {
        hark_buf_add(b, id, n);
        return;
    }
    hark_buf_str(b, "<");
    hark_buf_add(b, id, n);
    hark_buf_str(b, ">");
}

/* True when the id (with or without brackets) is among the space-separated refs. */
static int refs_contain(const char *refs, const char *id)
{
    size_t idn;
    const char *p = refs;

    if (id[0] == '<') {
        id++;
    }
    idn = strcspn(id, ">");
    while (p && *p) {
        size_t n;
        while (*p == ' ') {
            p++;
        }
        n = strcspn(p, " ");
        if (n > 0) {
            const char *t = p;
            size_t tn = n;
            if (t[0] == '<') {
                t++;
                tn--;
            }
            if (tn > 0 && t[tn - 1] == '>') {
                tn--;
            }
            if (tn == idn && memcmp(t, id, idn) == 0) {
                return 1;
            }
        }
        p += n;
    }
    return 0;
}

/*
 * Append References: the first known reference and the newest ones (so
 * the header stays bounded), then the message answered.
 */
static void add_references(struct hark_buf *b, const char *refs, const char *reply_to)
{
    const char *tok[256];
    size_t len[256];
    size_t n = 0, first = 1;
    const char *p = refs ? refs : "";

    while (*p && n < 256) {
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        tok[n] = p;
        len[n] = strcspn(p, " \t");
        p += len[n];
        /* Only Message-IDs (they hold an '@'); anything else is not a reference. */
        if (memchr(tok[n], '@', len[n]) != NULL) {
            n++;
        }
    }
    if (n == 0 && reply_to == NULL) {
        return;
    }
    hark_buf_str(b, "References:");
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && n > SMTP_MAX_REFERENCES && i < n - (SMTP_MAX_REFERENCES - 1)) {
            continue;
        }
        hark_buf_str(b, first ? " " : "\r\n ");
        add_msgid(b, tok[i], len[i]);
        first = 0;
    }
    if (reply_to != NULL && !refs_contain(refs, reply_to)) {
        hark_buf_str(b, first ? " " : "\r\n ");
        add_msgid(b, reply_to, strlen(reply_to));
    }
    hark_buf_str(b, "\r\n");
}

/* RFC 5322 date of now_ms in UTC, independent of the locale. */
static void add_date(struct hark_buf *b, int64_t now_ms)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    char line[64];

    gmtime_r(&t, &tm);
    snprintf(line, sizeof(line), "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
             days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
    hark_buf_str(b, line);
}

/* 1 when text is ASCII with lines of at most 998 octets: sendable as 7bit. */
static int plain_7bit(const char *text)
{
    size_t line = 0;
    for (const char *p = text; *p; p++) {
        if ((unsigned char)*p >= 0x80 || (*p == '\r' && p[1] != '\n')) {
            return 0;
        }
        line = *p == '\n' ? 0 : line + 1;
        if (line > 998) {
            return 0;
        }
    }
    return 1;
}

/* Append text with CRLF line ends. */
static void add_text_7bit(struct hark_buf *b, const char *text)
{
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\r\n");
        hark_buf_add(b, p, n);
        hark_buf_str(b, "\r\n");
        p += n;
        if (*p == '\r' && p[1] == '\n') {
            p += 2;
        } else if (*p) {
            p++;
        }
    }
}

/* Append text quoted-printable (RFC 2045 6.7), lines of at most 76 characters. */
static void add_text_qp(struct hark_buf *b, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;

    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        char enc[4];
        size_t n;
        int line_end = (*p == '\n') || (*p == '\r' && p[1] == '\n');
        if (line_end) {
            if (*p == '\r') {
                p++;
            }
            hark_buf_str(b, "\r\n");
            col = 0;
            continue;
        }
        /* Whitespace before a line end (or the end) must be encoded. */
        int next_end = p[1] == '\0' || p[1] == '\n' || (p[1] == '\r' && p[2] == '\n');
        if ((*p >= 33 && *p <= 126 && *p != '=') || ((*p == ' ' || *p == '\t') && !next_end)) {
            enc[0] = (char)*p;
            n = 1;
        } else {
            enc[0] = '=';
            enc[1] = hex[*p >> 4];
            enc[2] = hex[*p & 15];
            n = 3;
        }
        if (col + n > 75) {
            hark_buf_str(b, "=\r\n");
            col = 0;
        }
        hark_buf_add(b, enc, n);
        col += n;
    }
    if (col > 0) {
        hark_buf_str(b, "\r\n");
    }
}

char *smtp_compose(const struct hark_outbound *ob, const char *from, const char *message_id,
                   int64_t now_ms, size_t *len, char *err, size_t err_len)
{
    struct hark_buf b = {.max = SMTP_MSG_CAP};
    struct hark_buf text = {.max = SMTP_MSG_CAP};
    char *subject = NULL;
    const char *reply_to = ob->reply_to && ob->reply_to[0] ? ob->reply_to : NULL;

    if (from == NULL || has_line_break(from) || ob->to == NULL || has_line_break(ob->to) ||
        has_line_break(message_id) || has_line_break(reply_to) || has_line_break(ob->references)) {
        snprintf(err, err_len, "address or reference contains a line break");
        return NULL;
    }
    if (!hark_utf8_valid(from, strlen(from)) || !hark_utf8_valid(ob->to, strlen(ob->to))) {
        snprintf(err, err_len, "address is not valid UTF-8");
        return NULL;
    }
    hark_buf_str(&text, ob->text ? ob->text : "");
    if (ob->n_attachments > 0) {
        hark_buf_str(&text, "\n\nAttachments:\n");
        for (size_t i = 0; i < ob->n_attachments; i++) {
            hark_buf_str(&text, ob->attachment_urls[i]);
            hark_buf_str(&text, "\n");
        }
    }
    subject = smtp_reply_subject(ob->subject);
    if (subject == NULL || text.failed) {
        goto oom;
    }
    hark_buf_str(&b, "From: ");
    hark_buf_str(&b, from);
    hark_buf_str(&b, "\r\nTo: ");
    hark_buf_str(&b, ob->to);
    hark_buf_str(&b, "\r\n");
    add_subject(&b, subject);
    add_date(&b, now_ms);
    hark_buf_str(&b, "Message-ID: ");
    hark_buf_str(&b, message_id);
    hark_buf_str(&b, "\r\n");
    if (reply_to != NULL) {
        hark_buf_str(&b, "In-Reply-To: ");
        add_msgid(&b, reply_to, strlen(reply_to));
        hark_buf_str(&b, "\r\n");
    }
    add_references(&b, ob->references, reply_to);
    hark_buf_str(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n");
    if (text.s != NULL && !plain_7bit(text.s)) {
        hark_buf_str(&b, "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
        add_text_qp(&b, text.s);
    } else {
        hark_buf_str(&b, "Content-Transfer-Encoding: 7bit\r\n\r\n");
        add_text_7bit(&b, text.s ? text.s : "");
    }
    if (b.failed) {
        goto oom;
    }
    hark_free(subject);
    hark_free(text.s);
    *len = b.len;
    return b.s;
oom:
    snprintf(err, err_len, "message too large or out of memory");
    hark_free(subject);
    hark_free(text.s);
    hark_free(b.s);
    return NULL;
}

int smtp_build_send(const struct hark_channel *ch, const struct hark_outbound *ob,
                    struct hark_http_call *call, char *err, size_t err_len)
{
    const char *url = hark_section_get(ch->section, "smtp_url");
    const char *from = hark_section_get(ch->section, "from");
    const char *user = hark_section_get(ch->section, "username");
    char secret[HARK_SECRET_MAX];
    char addr[SMTP_ADDR_MAX];
    char msgid[512];
    int n;

    memset(call, 0, sizeof(*call));
    if (url == NULL || (strncmp(url, "smtp://", 7) != 0 && strncmp(url, "smtps://", 8) != 0)) {
        snprintf(err, err_len, "channel %s has no smtp_url (smtp:// or smtps://)", ch->name);
        return -1;
    }
    if (from == NULL || from[0] == '\0') {
        from = ob->from;
    }
    if (from == NULL || bare_address(from, addr, sizeof(addr)) < 0) {
        snprintf(err, err_len, "channel %s has no usable from address", ch->name);
        return -1;
    }
    if (ob->to == NULL || strchr(ob->to, '@') == NULL || has_line_break(ob->to) ||
        strpbrk(ob->to, "<> ") != NULL) {
        snprintf(err, err_len, "customer address is not an email address");
        return -1;
    }
    if ((ob->text == NULL || ob->text[0] == '\0') && ob->n_attachments == 0) {
        snprintf(err, err_len, "reply has neither text nor attachments");
        return -1;
    }
    if (smtp_message_id(ob->message_id, from, msgid, sizeof(msgid)) < 0) {
        snprintf(err, err_len, "message id too long");
        return -1;
    }
    call->body = smtp_compose(ob, from, msgid, hark_now_ms(), &call->body_len, err, err_len);
    if (call->body == NULL) {
        return -1;
    }
    call->method = "SMTP";
    call->url = hark_strdup(url);
    /* The mailbox's trust settings apply to its SMTP server too. */
    if (hark_section_get(ch->section, "ca_file") != NULL) {
        call->ca_file = hark_strdup(hark_section_get(ch->section, "ca_file"));
    }
    call->tls_no_verify = !hark_section_bool(ch->section, "tls_verify", 1);
    call->mail_from = hark_asprintf("<%s>", addr);
    call->rcpt_to = hark_asprintf("<%s>", ob->to);
    if (call->url == NULL || call->mail_from == NULL || call->rcpt_to == NULL) {
        goto oom;
    }
    if (user != NULL && user[0] != '\0') {
        n = hark_secret_read(hark_section_secret(ch->section, "oauth_token"), secret, sizeof(secret));
        if (n > 0) {
            call->bearer = hark_strdup(secret);
            if (call->bearer == NULL || (call->userpwd = hark_asprintf("%s:", user)) == NULL) {
                goto oom;
            }
        } else if (hark_secret_read(hark_section_secret(ch->section, "password"), secret,
                                    sizeof(secret)) >= 0) {
            call->userpwd = hark_asprintf("%s:%s", user, secret);
            if (call->userpwd == NULL) {
                goto oom;
            }
        }
    }
    memset(secret, 0, sizeof(secret));
    return 0;
oom:
    memset(secret, 0, sizeof(secret));
    snprintf(err, err_len, "out of memory");
    hark_http_call_clear(call);
    return -1;
}

/* The Message-ID header value of an RFC 5322 message, copied; NULL when absent. */
static char *find_message_id(const char *msg, size_t len)
{
    const char *p = msg;
    const char *end = msg + len;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
        if (n == 0 || (n == 1 && p[0] == '\r')) {
            return NULL;    /* end of the header */
        }
        if (n > 11 && hark_strncaseeq(p, 11, "message-id:")) {
            const char *v = p + 11;
            while (v < p + n && (*v == ' ' || *v == '\t')) {
                v++;
            }
            while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ')) {
                n--;
            }
            return v < p + n ? hark_strndup(v, (size_t)(p + n - v)) : NULL;
        }
        if (eol == NULL) {
            break;
        }
        p = eol + 1;
    }
    return NULL;
}

enum hark_send_outcome smtp_read_send(const struct hark_channel *ch, long smtp_code,
                                      const char *body, size_t body_len,
                                      char **provider_message_id,
                                      char *err, size_t err_len)
{
    (void)ch;
    *provider_message_id = NULL;
    err[0] = '\0';
    if (smtp_code >= 200 && smtp_code <= 299) {
        if (body != NULL) {
            *provider_message_id = find_message_id(body, body_len);
        }
        return HARK_SEND_OK;
    }
    if (smtp_code >= 500 && smtp_code <= 599) {
        snprintf(err, err_len, "SMTP server refused the message (%ld)", smtp_code);
        return HARK_SEND_FAIL;
    }
    snprintf(err, err_len, "SMTP server deferred the message (%ld)", smtp_code);
    return HARK_SEND_RETRY;
}
