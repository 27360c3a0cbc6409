/*
 * hark: IMAP response framing and parsing, command helpers (pure).
 *
 * The grammar followed is RFC 3501 section 9, read liberally where real
 * servers differ (bare LF line ends, lower-case keywords, unknown response
 * codes and FETCH attributes are skipped) and strictly where bounds are
 * concerned: every length comes from the framer, which has already
 * checked each literal against the caller's limit.
 */
#include <stdio.h>
#include <string.h>

#include "hark/codec.h"
#include "imap_proto.h"

/* Does buf[0..n) end a literal announcement "{digits}" or "{digits+}"? */
static int literal_at_end(const char *buf, size_t start, size_t end, uint64_t *n)
{
    size_t i;
    size_t digits = 0;
    uint64_t v = 0;
    uint64_t mul = 1;

    if (end <= start + 2 || buf[end - 1] != '}') {
        return 0;
    }
    i = end - 2;
    if (buf[i] == '+') {
        if (i == start) {
            return 0;
        }
        i--;
    }
    while (i > start && buf[i] >= '0' && buf[i] <= '9') {
        if (digits == 19) {
            return -1;
        }
        v += (uint64_t)(buf[i] - '0') * mul;
        mul *= 10;
        digits++;
        i--;
    }
    if (digits == 0 || buf[i] != '{') {
        return 0;
    }
    *n = v;
    return 1;
}

/*
 * Incremental framer: see imap_proto.h. Each call resumes where the last
 * one stopped, so a 25 MB literal arriving in 16 KB reads is examined
 * once, not once per read.
 */
ssize_t imap_frame(struct imap_framer *f, const char *buf, size_t len, uint64_t max_literal)
{
    while (f->pos < len) {
        const char *nl;
        size_t end;
        size_t q;
        uint64_t n = 0;
        int lit;

        if (f->lit_left > 0) {
            size_t avail = len - f->pos;
            if ((uint64_t)avail < f->lit_left) {
                f->lit_left -= avail;
                f->pos = len;
                return 0;
            }
            f->pos += (size_t)f->lit_left;
            f->lit_left = 0;
            f->line_start = f->pos;
            continue;
        }
        nl = memchr(buf + f->pos, '\n', len - f->pos);
        if (nl == NULL) {
            f->pos = len;
            return len - f->line_start > IMAP_LINE_MAX ? -1 : 0;
        }
        end = (size_t)(nl - buf) + 1;
        if (end - f->line_start > IMAP_LINE_MAX) {
            return -1;
        }
        q = end - 1;
        if (q > f->line_start && buf[q - 1] == '\r') {
            q--;
        }
        lit = literal_at_end(buf, f->line_start, q, &n);
        if (lit < 0) {
            return -1;
        }
        if (lit == 1) {
            if (n > max_literal || ++f->literals > IMAP_LITERALS_MAX) {
                return -1;
            }
            f->lit_left = n;
            f->pos = end;
            f->line_start = end;
            continue;
        }
        f->pos = end;
        return (ssize_t)end;
    }
    return 0;
}

/* A read cursor over one framed response. */
struct cur {
    const char *p;
    const char *end;
    int depth;
};

static int at_eol(const struct cur *c)
{
    return c->p >= c->end || *c->p == '\r' || *c->p == '\n';
}

static int peek(const struct cur *c)
{
    return c->p < c->end ? (unsigned char)*c->p : -1;
}

static void skip_sp(struct cur *c)
{
    while (c->p < c->end && *c->p == ' ') {
        c->p++;
    }
}

/* Characters that end an atom (RFC 3501 atom-specials, plus ']' for codes). */
static int atom_char(int ch)
{
    return ch > 0x20 && ch < 0x7f && ch != '(' && ch != ')' && ch != '{' && ch != '"'
           && ch != ']' && ch != '%' && ch != '*';
}

/* Read an atom; 0 with s and n set, -1 when there is none. */
static int read_atom(struct cur *c, const char **s, size_t *n)
{
    const char *start = c->p;
    while (c->p < c->end && atom_char((unsigned char)*c->p)) {
        c->p++;
    }
    *s = start;
    *n = (size_t)(c->p - start);
    return *n ? 0 : -1;
}

/* Read an unsigned number (at most 2^63). 0 or -1. */
static int read_number(struct cur *c, uint64_t *out)
{
    uint64_t v = 0;
    const char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (v > (UINT64_MAX - 9) / 10 || c->p - start >= 19) {
            return -1;
        }
        v = v * 10 + (uint64_t)(*c->p - '0');
        c->p++;
    }
    *out = v;
    return c->p > start ? 0 : -1;
}

static int eq(const char *s, size_t n, const char *word)
{
    size_t i;
    for (i = 0; i < n; i++) {
        char a = s[i];
        if (word[i] == '\0') {
            return 0;
        }
        if (a >= 'a' && a <= 'z') {
            a = (char)(a - 'a' + 'A');
        }
        if (a != word[i]) {
            return 0;
        }
    }
    return word[n] == '\0';
}

/*
 * Read a string: quoted ("..." with \-escapes kept in the returned span)
 * or literal ({n}CRLF then n bytes). NIL gives *s = NULL. 0 or -1.
 */
static int read_nstring(struct cur *c, const char **s, size_t *n)
{
    int ch = peek(c);

    if (ch == '"') {
        const char *start = ++c->p;
        while (c->p < c->end && *c->p != '"') {
            if (*c->p == '\r' || *c->p == '\n') {
                return -1;
            }
            if (*c->p == '\\') {
                c->p++;
                if (c->p >= c->end) {
                    return -1;
                }
            }
            c->p++;
        }
        if (c->p >= c->end) {
            return -1;
        }
        *s = start;
        *n = (size_t)(c->p - start);
        c->p++;
        return 0;
    }
    if (ch == '{') {
        uint64_t len;
        c->p++;
        if (read_number(c, &len) < 0) {
            return -1;
        }
        if (peek(c) == '+') {
            c->p++;
        }
        if (peek(c) != '}') {
            return -1;
        }
        c->p++;
        if (peek(c) == '\r') {
            c->p++;
        }
        if (peek(c) != '\n') {
            return -1;
        }
        c->p++;
        if ((uint64_t)(c->end - c->p) < len) {
            return -1;
        }
        *s = c->p;
        *n = (size_t)len;
        c->p += len;
        return 0;
    }
    if (c->end - c->p >= 3 && eq(c->p, 3, "NIL")) {
        c->p += 3;
        *s = NULL;
        *n = 0;
        return 0;
    }
    return -1;
}

/* Skip one value of any shape (atom, number, string, list), bounded in depth. */
static int skip_value(struct cur *c)
{
    const char *s;
    size_t n;
    int ch = peek(c);

    if (ch == '(') {
        if (++c->depth > IMAP_DEPTH_MAX) {
            return -1;
        }
        c->p++;
        for (;;) {
            skip_sp(c);
            if (peek(c) == ')') {
                c->p++;
                c->depth--;
                return 0;
            }
            if (at_eol(c) || skip_value(c) < 0) {
                return -1;
            }
        }
    }
    if (ch == '"' || ch == '{') {
        return read_nstring(c, &s, &n);
    }
    /* Atoms, numbers, NIL and flags such as \Seen or \*. */
    if (ch == '\\') {
        c->p++;
        if (peek(c) == '*') {
            c->p++;
            return 0;
        }
    }
    {
        const char *start = c->p;
        while (c->p < c->end
               && (atom_char((unsigned char)*c->p) || *c->p == ']' || *c->p == '%'
                   || *c->p == '*')) {
            c->p++;
        }
        /* Something must be consumed, or a list of junk would never end. */
        return c->p > start || ch == '\\' ? 0 : -1;
    }
}

/* Map one capability word to our bit (0 for the ones we ignore). */
static unsigned cap_bit(const char *s, size_t n)
{
    static const struct {
        const char *name;
        unsigned bit;
    } caps[] = {
        {"IMAP4REV1", IMAP_CAP_IMAP4REV1},     {"IDLE", IMAP_CAP_IDLE},
        {"MOVE", IMAP_CAP_MOVE},               {"UIDPLUS", IMAP_CAP_UIDPLUS},
        {"STARTTLS", IMAP_CAP_STARTTLS},       {"LOGINDISABLED", IMAP_CAP_LOGINDISABLED},
        {"AUTH=PLAIN", IMAP_CAP_AUTH_PLAIN},   {"AUTH=XOAUTH2", IMAP_CAP_AUTH_XOAUTH2},
        {"SASL-IR", IMAP_CAP_SASL_IR},         {"LITERAL+", IMAP_CAP_LITERALPLUS},
    };
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        if (eq(s, n, caps[i].name)) {
            return caps[i].bit;
        }
    }
    return 0;
}

/* Capability words up to the end of line or a ']'. */
static void read_caps(struct cur *c, struct imap_resp *r)
{
    r->has_caps = 1;
    for (;;) {
        const char *s;
        skip_sp(c);
        s = c->p;
        while (c->p < c->end && *c->p != ' ' && *c->p != ']' && *c->p != '\r'
               && *c->p != '\n') {
            c->p++;
        }
        if (c->p == s) {
            return;
        }
        r->caps |= cap_bit(s, (size_t)(c->p - s));
    }
}

/* Copy the human-readable rest of the line, printable ASCII only. */
static void read_text(struct cur *c, struct imap_resp *r)
{
    size_t o = 0;
    skip_sp(c);
    while (!at_eol(c)) {
        unsigned char ch = (unsigned char)*c->p++;
        if (o + 1 < sizeof(r->text)) {
            r->text[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
        }
    }
    r->text[o] = '\0';
}

/* resp-text: optional "[CODE args]" then text. */
static int read_resp_text(struct cur *c, struct imap_resp *r)
{
    const char *s;
    size_t n;

    skip_sp(c);
    if (peek(c) == '[') {
        c->p++;
        if (read_atom(c, &s, &n) < 0) {
            return -1;
        }
        if (eq(s, n, "UIDVALIDITY") || eq(s, n, "UIDNEXT")) {
            r->code = eq(s, n, "UIDNEXT") ? IMAP_C_UIDNEXT : IMAP_C_UIDVALIDITY;
            skip_sp(c);
            if (read_number(c, &r->code_num) < 0) {
                return -1;
            }
        } else if (eq(s, n, "CAPABILITY")) {
            r->code = IMAP_C_CAPABILITY;
            read_caps(c, r);
        } else if (eq(s, n, "ALERT")) {
            r->code = IMAP_C_ALERT;
        } else if (eq(s, n, "TRYCREATE")) {
            r->code = IMAP_C_TRYCREATE;
        } else if (eq(s, n, "AUTHENTICATIONFAILED")) {
            r->code = IMAP_C_AUTHFAILED;
        } else if (eq(s, n, "UNAVAILABLE")) {
            r->code = IMAP_C_UNAVAILABLE;
        } else {
            r->code = IMAP_C_OTHER;
        }
        while (!at_eol(c) && *c->p != ']') {
            c->p++;
        }
        if (peek(c) != ']') {
            return -1;
        }
        c->p++;
    }
    read_text(c, r);
    return 0;
}

/* "(" att SP value *(SP att SP value) ")" of a FETCH response. */
static int read_fetch(struct cur *c, struct imap_resp *r)
{
    skip_sp(c);
    if (peek(c) != '(') {
        return -1;
    }
    c->p++;
    for (;;) {
        const char *name;
        size_t n;
        uint64_t v;

        skip_sp(c);
        if (peek(c) == ')') {
            c->p++;
            return 0;
        }
        name = c->p;
        /* Attribute names may carry a section: BODY[HEADER]<0>. */
        while (c->p < c->end && *c->p != ' ' && *c->p != '(' && *c->p != ')'
               && *c->p != '\r' && *c->p != '\n') {
            if (*c->p == '[') {
                while (c->p < c->end && *c->p != ']' && *c->p != '\n') {
                    c->p++;
                }
                if (peek(c) != ']') {
                    return -1;
                }
            }
            c->p++;
        }
        n = (size_t)(c->p - name);
        if (n == 0) {
            return -1;
        }
        skip_sp(c);
        if (eq(name, n, "UID")) {
            if (read_number(c, &v) < 0 || v == 0 || v > UINT32_MAX) {
                return -1;
            }
            r->uid = (uint32_t)v;
            r->has_uid = 1;
        } else if (eq(name, n, "RFC822.SIZE")) {
            if (read_number(c, &r->size) < 0) {
                return -1;
            }
            r->has_size = 1;
        } else if ((n >= 5 && eq(name, 5, "BODY[")) || eq(name, n, "RFC822")) {
            const char *s;
            size_t len;
            if (read_nstring(c, &s, &len) < 0) {
                return -1;
            }
            if (s != NULL) {
                r->body = s;
                r->body_len = len;
                r->has_body = 1;
            }
        } else if (eq(name, n, "FLAGS")) {
            const char *start = c->p;
            if (skip_value(c) < 0) {
                return -1;
            }
            for (const char *p = start; p + 5 <= c->p; p++) {
                if (eq(p, 5, "\\SEEN")) {
                    r->seen = 1;
                }
            }
        } else if (skip_value(c) < 0) {
            return -1;
        }
    }
}

/* Untagged data: "* <number> WORD ..." or "* WORD ...". */
static int read_untagged(struct cur *c, struct imap_resp *r)
{
    const char *s;
    size_t n;
    uint64_t num;

    if (peek(c) >= '0' && peek(c) <= '9') {
        if (read_number(c, &num) < 0 || num > UINT32_MAX) {
            return -1;
        }
        r->number = (uint32_t)num;
        skip_sp(c);
        if (read_atom(c, &s, &n) < 0) {
            return -1;
        }
        if (eq(s, n, "EXISTS")) {
            r->data = IMAP_D_EXISTS;
        } else if (eq(s, n, "EXPUNGE")) {
            r->data = IMAP_D_EXPUNGE;
        } else if (eq(s, n, "RECENT")) {
            r->data = IMAP_D_RECENT;
        } else if (eq(s, n, "FETCH")) {
            r->data = IMAP_D_FETCH;
            return read_fetch(c, r);
        } else {
            r->data = IMAP_D_OTHER;
        }
        return 0;
    }
    if (read_atom(c, &s, &n) < 0) {
        return -1;
    }
    if (eq(s, n, "OK") || eq(s, n, "NO") || eq(s, n, "BAD") || eq(s, n, "PREAUTH")
        || eq(s, n, "BYE")) {
        r->status = eq(s, n, "OK") ? IMAP_ST_OK
                    : eq(s, n, "NO") ? IMAP_ST_NO
                    : eq(s, n, "BAD") ? IMAP_ST_BAD
                    : eq(s, n, "BYE") ? IMAP_ST_BYE : IMAP_ST_PREAUTH;
        return read_resp_text(c, r);
    }
    if (eq(s, n, "CAPABILITY")) {
        r->data = IMAP_D_CAPABILITY;
        read_caps(c, r);
    } else if (eq(s, n, "FLAGS")) {
        r->data = IMAP_D_FLAGS;
    } else if (eq(s, n, "SEARCH")) {
        r->data = IMAP_D_SEARCH;
    } else {
        r->data = IMAP_D_OTHER;
    }
    return 0;
}

/* See imap_proto.h. */
int imap_parse(const char *buf, size_t len, struct imap_resp *r)
{
    struct cur c = {buf, buf + len, 0};
    const char *s;
    size_t n;

    memset(r, 0, sizeof(*r));
    if (len < 2 || buf[len - 1] != '\n') {
        return -1;
    }
    if (buf[0] == '+') {
        r->type = IMAP_R_CONTINUE;
        c.p++;
        skip_sp(&c);
        r->cont = c.p;
        while (!at_eol(&c)) {
            c.p++;
        }
        r->cont_len = (size_t)(c.p - r->cont);
        return 0;
    }
    if (buf[0] == '*') {
        r->type = IMAP_R_UNTAGGED;
        c.p++;
        if (peek(&c) != ' ') {
            return -1;
        }
        skip_sp(&c);
        return read_untagged(&c, r);
    }
    r->type = IMAP_R_TAGGED;
    if (read_atom(&c, &s, &n) < 0 || n > IMAP_TAG_MAX) {
        return -1;
    }
    memcpy(r->tag, s, n);
    r->tag[n] = '\0';
    skip_sp(&c);
    if (read_atom(&c, &s, &n) < 0) {
        return -1;
    }
    if (eq(s, n, "OK")) {
        r->status = IMAP_ST_OK;
    } else if (eq(s, n, "NO")) {
        r->status = IMAP_ST_NO;
    } else if (eq(s, n, "BAD")) {
        r->status = IMAP_ST_BAD;
    } else {
        return -1;
    }
    return read_resp_text(&c, r);
}

/* See imap_proto.h. */
ssize_t imap_quote(const char *s, char *out, size_t cap, size_t used)
{
    size_t o = used;

    if (o + 1 >= cap) {
        return -1;
    }
    out[o++] = '"';
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\r' || ch == '\n' || ch >= 0x80) {
            return -1;
        }
        if (ch == '"' || ch == '\\') {
            if (o + 1 >= cap) {
                return -1;
            }
            out[o++] = '\\';
        }
        if (o + 1 >= cap) {
            return -1;
        }
        out[o++] = (char)ch;
    }
    if (o + 1 >= cap) {
        return -1;
    }
    out[o++] = '"';
    out[o] = '\0';
    return (ssize_t)o;
}

/* base64 of the concatenation of parts (each NUL-free except where given). */
static ssize_t b64_parts(const char *const *parts, const size_t *lens, size_t n,
                         char *out, size_t cap)
{
    unsigned char raw[2 * 1024 + 4200];
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > sizeof(raw) - o) {
            return -1;
        }
        memcpy(raw + o, parts[i], lens[i]);
        o += lens[i];
    }
    return hark_base64_encode(raw, o, out, cap);
}

/* See imap_proto.h. */
ssize_t imap_xoauth2(const char *user, const char *token, char *out, size_t cap)
{
    const char *parts[] = {"user=", user, "\001auth=Bearer ", token, "\001\001"};
    size_t lens[] = {5, strlen(user), 13, strlen(token), 2};
    return b64_parts(parts, lens, 5, out, cap);
}

/* See imap_proto.h. */
ssize_t imap_sasl_plain(const char *user, const char *pass, char *out, size_t cap)
{
    const char *parts[] = {"", user, "", pass};
    size_t lens[] = {1, strlen(user), 1, strlen(pass)};
    if (memchr(user, '\0', lens[1]) || lens[1] == 0) {
        return -1;
    }
    return b64_parts(parts, lens, 4, out, cap);
}

/* Decode %XX escapes of a URL path segment into out; 0 or -1. */
static int url_decode(const char *s, size_t n, char *out, size_t cap)
{
    ssize_t r = hark_percent_decode(s, n, out, cap, 0);
    return r < 0 ? -1 : 0;
}

/*
 * See imap_proto.h. Accepts imap://host[:port][/mailbox] and imaps://...,
 * host a name, an IPv4 address or [IPv6]; no user info in the URL (the
 * credentials have their own keys, so they never show up in logs).
 */
int imap_url_parse(const char *url, struct imap_url *out, char *why, size_t why_len)
{
    const char *p;
    const char *host;
    const char *host_end;
    const char *path;
    size_t hlen;
    uint64_t port = 0;

    memset(out, 0, sizeof(*out));
    if (strncmp(url, "imaps://", 8) == 0) {
        out->tls = 1;
        p = url + 8;
        out->port = 993;
    } else if (strncmp(url, "imap://", 7) == 0) {
        p = url + 7;
        out->port = 143;
    } else {
        snprintf(why, why_len, "url must start with imaps:// or imap://");
        return -1;
    }
    path = strchr(p, '/');
    if (path == NULL) {
        path = p + strlen(p);
    }
    if (memchr(p, '@', (size_t)(path - p)) != NULL) {
        snprintf(why, why_len, "url must not carry credentials; use username/password");
        return -1;
    }
    host = p;
    if (*p == '[') {
        host_end = memchr(p, ']', (size_t)(path - p));
        if (host_end == NULL) {
            snprintf(why, why_len, "url has an unterminated [IPv6] host");
            return -1;
        }
        host = p + 1;
        p = host_end + 1;
    } else {
        host_end = p;
        while (host_end < path && *host_end != ':') {
            host_end++;
        }
        p = host_end;
    }
    hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen >= sizeof(out->host)) {
        snprintf(why, why_len, "url has no host or too long a host");
        return -1;
    }
    for (size_t i = 0; i < hlen; i++) {
        char ch = host[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
              || ch == '.' || ch == '-' || ch == ':' || ch == '_')) {
            snprintf(why, why_len, "url host has an invalid character");
            return -1;
        }
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    if (*p == ':') {
        struct cur c = {p + 1, path, 0};
        if (read_number(&c, &port) < 0 || c.p != path || port == 0 || port > 65535) {
            snprintf(why, why_len, "url has an invalid port");
            return -1;
        }
        out->port = (uint16_t)port;
    } else if (p != path) {
        snprintf(why, why_len, "url has junk after the host");
        return -1;
    }
    if (*path == '/') {
        path++;
    }
    if (*path == '\0') {
        memcpy(out->mailbox, "INBOX", 6);
    } else if (strchr(path, '?') || strchr(path, ';')
               || url_decode(path, strlen(path), out->mailbox, sizeof(out->mailbox)) < 0
               || !imap_mailbox_ok(out->mailbox)) {
        snprintf(why, why_len, "url names an invalid mailbox (ASCII names only)");
        return -1;
    }
    return 0;
}

/* See imap_proto.h. */
int imap_mailbox_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 200) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '*' || ch == '%') {
            return 0;
        }
    }
    return 1;
}

/* See imap_proto.h. */
int imap_after_parse(const char *text, enum imap_after *out, char *folder, size_t cap)
{
    folder[0] = '\0';
    if (text == NULL || strcmp(text, "keep") == 0) {
        *out = IMAP_AFTER_KEEP;
        return 0;
    }
    if (strcmp(text, "seen") == 0) {
        *out = IMAP_AFTER_SEEN;
        return 0;
    }
    if (strncmp(text, "move:", 5) == 0 && imap_mailbox_ok(text + 5)
        && strlen(text + 5) < cap) {
        *out = IMAP_AFTER_MOVE;
        memcpy(folder, text + 5, strlen(text + 5) + 1);
        return 0;
    }
    return -1;
}

/* See imap_proto.h. */
int64_t imap_backoff_ms(unsigned attempt, uint32_t rnd)
{
    const int64_t cap = 5 * 60 * 1000;
    int64_t d = 1000;

    while (attempt-- > 0 && d < cap) {
        d *= 2;
    }
    if (d > cap) {
        d = cap;
    }
    /* Between d/2 and d. */
    return d / 2 + (int64_t)(rnd % (uint32_t)(d / 2 + 1));
}
