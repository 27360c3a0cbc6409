/*
 * hark: the new part of an email reply (quoted history, attribution
 * lines, forwarded blocks and signatures removed). The rules, in order,
 * are written down in docs/email.md; tests/data/replies/ is the corpus
 * that holds them to account.
 *
 * Pure and reentrant: no globals, no I/O.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hark/alloc.h"
#include "mime.h"

#define REPLY_MAX_LINES 20000
#define ATTR_MAX 600            /* an attribution longer than this is prose */

struct line {
    const char *s;
    size_t n;           /* without trailing whitespace */
    unsigned quoted : 1;
    unsigned blank : 1;
    unsigned drop : 1;
};

/* s[0..n) with leading spaces (and, with stars, '*' bold marks) skipped. */
static const char *skip_lead(const char *s, size_t *n, int stars)
{
    while (*n > 0 && (*s == ' ' || *s == '\t' || (stars && *s == '*'))) {
        s++;
        (*n)--;
    }
    return s;
}

/* ASCII case-insensitive prefix test of s[0..n) with the NUL-terminated p. */
static int has_prefix(const char *s, size_t n, const char *p)
{
    size_t k = strlen(p);
    return n >= k && strncasecmp(s, p, k) == 0;
}

static int has_suffix(const char *s, size_t n, const char *p)
{
    size_t k = strlen(p);
    return n >= k && strncasecmp(s + n - k, p, k) == 0;
}

/* 1 when the NUL-terminated p occurs in s[0..n), ASCII case-insensitively. */
static int has_infix(const char *s, size_t n, const char *p)
{
    size_t k = strlen(p), i;

    for (i = 0; i + k <= n; i++) {
        if (strncasecmp(s + i, p, k) == 0) {
            return 1;
        }
    }
    return 0;
}

static int any_prefix(const char *s, size_t n, const char *const *set)
{
    for (; *set != NULL; set++) {
        if (has_prefix(s, n, *set)) {
            return 1;
        }
    }
    return 0;
}

static int any_infix(const char *s, size_t n, const char *const *set)
{
    for (; *set != NULL; set++) {
        if (has_infix(s, n, *set)) {
            return 1;
        }
    }
    return 0;
}

static int has_digit_or_at(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if ((s[i] >= '0' && s[i] <= '9') || s[i] == '@') {
            return 1;
        }
    }
    return 0;
}

/* Verbs that end an attribution line ("... wrote:"), colon stripped. */
static const char *const attr_end[] = {
    "wrote", "writes", "escribió", "escribio", "escreveu", "a écrit", "a ecrit", "schrieb",
    "ha scritto", "scrisse", "schreef", "skrev", "napisał", "napisał(a)", "kirjoitti",
    "написал", "написала", "пишет", "yazdı", NULL,
};

/* Verbs followed by the author ("Am ... schrieb Hans <h@x.de>:"). */
static const char *const attr_mid[] = {
    " schrieb ", " schreef ", " skrev ", " escribió ", " escreveu ", " wrote ", NULL,
};

/* Author first, date after ("Hans <h@x.de> schrieb am 04.03.2024:"). */
static const char *const attr_author_first[] = {
    " schrieb am ", " schreef op ", " skrev den ", " wrote on ", " a écrit le ",
    " escribió el ", " escreveu em ", " ha scritto il ", NULL,
};

/* Openers of the date-first attributions that carry a verb in the middle. */
static const char *const attr_open[] = {
    "am ", "op ", "den ", "el ", "em ", "on ", "le ", "il ", "w dniu ", NULL,
};

/*
 * 1 when s[0..n) (one attribution, maybe joined from wrapped lines) reads
 * like "On <date>, <person> wrote:" in one of the known languages. It
 * must end with a colon and carry a date or an address, so that prose
 * ending in "wrote:" is not taken for one.
 */
static int is_attribution(const char *s, size_t n)
{
    size_t k;
    const char *const *v;

    s = skip_lead(s, &n, 0);
    if (n < 8 || n > ATTR_MAX || s[n - 1] != ':' || !has_digit_or_at(s, n)) {
        return 0;
    }
    k = n - 1;
    while (k > 0 && s[k - 1] == ' ') {
        k--;
    }
    for (v = attr_end; *v != NULL; v++) {
        if (has_suffix(s, k, *v)) {
            return 1;
        }
    }
    if ((any_prefix(s, n, attr_open) && any_infix(s, n, attr_mid)) ||
        any_infix(s, n, attr_author_first)) {
        return 1;
    }
    return 0;
}

/*
 * An attribution without a verb: "2024-03-04 10:12 GMT+01:00 John
 * <john@example.com>:" (older Gmail) or "пн, 4 мар. 2024 г. в 10:12,
 * Name <addr>:" (Gmail in languages it has no verb for). It ends with
 * "address>:" and is only taken as one when quoted lines follow.
 */
static int is_verbless_attribution(const struct line *x)
{
    size_t n = x->n;
    const char *s = skip_lead(x->s, &n, 0);

    size_t i, digits = 0;

    for (i = 0; i < n; i++) {
        digits += s[i] >= '0' && s[i] <= '9';
    }
    return n > 12 && n < 300 && has_suffix(s, n, ">:") && memchr(s, '@', n) != NULL &&
           s[0] != '>' && digits > 0;
}

/*
 * How many lines (1 to 3) starting at i form an attribution, 0 if none.
 * Clients wrap long attributions, so up to three unquoted lines are
 * joined with spaces before testing; a wrapped one must start with an
 * opener ("On", "El", "Am", ...) so that a line of prose above a real
 * attribution is not swallowed with it.
 */
static size_t attribution_span(const struct line *l, size_t i, size_t n)
{
    char joined[ATTR_MAX + 8];
    size_t len = 0, k;
    int opener = 0;

    for (k = 0; k < 3 && i + k < n; k++) {
        const struct line *x = &l[i + k];
        if (x->quoted || x->blank || len + x->n + 1 > ATTR_MAX) {
            return 0;
        }
        if (len > 0 && joined[len - 1] != '<' && x->s[0] != '>') {
            joined[len++] = ' ';
        }
        memcpy(joined + len, x->s, x->n);
        len += x->n;
        if (k == 0) {
            size_t fn = x->n;
            const char *f = skip_lead(x->s, &fn, 0);
            opener = any_prefix(f, fn, attr_open);
        }
        if ((k == 0 || opener) && is_attribution(joined, len)) {
            return k + 1;
        }
        if (joined[len - 1] == ':' || joined[len - 1] == '.') {
            return 0;   /* a complete sentence that was not one */
        }
    }
    return 0;
}

static const char *const from_keys[] = {
    "from", "de", "von", "van", "da", "od", "från", "fra", "от", NULL,
};
static const char *const other_keys[] = {
    "sent", "date", "to", "cc", "subject", "reply-to", "enviado", "enviada", "fecha", "para",
    "asunto", "data", "assunto", "gesendet", "datum", "an", "betreff", "envoyé", "à", "À",
    "objet", "date d'envoi", "inviato", "oggetto", "a", "verzonden", "aan", "onderwerp",
    "skickat", "till", "ämne", "kopie", "cco", "importance", "priorité", NULL,
};

/* 1 for a From-like header line, 2 for another header line, 0 otherwise. */
static int header_kind(const struct line *x)
{
    size_t n = x->n, k = 0;
    const char *s = skip_lead(x->s, &n, 1);
    const char *const *key;

    while (k < n && k < 20 && s[k] != ':') {
        k++;
    }
    if (k == n || s[k] != ':' || k == 0) {
        return 0;
    }
    while (k > 0 && (s[k - 1] == ' ' || s[k - 1] == '*')) {
        k--;
    }
    for (key = from_keys; *key; key++) {
        if (strlen(*key) == k && strncasecmp(s, *key, k) == 0) {
            return 1;
        }
    }
    for (key = other_keys; *key; key++) {
        if (strlen(*key) == k && strncasecmp(s, *key, k) == 0) {
            return 2;
        }
    }
    return 0;
}

/* 1 when a From: line at i opens a block of at least three header lines. */
static int header_block(const struct line *l, size_t i, size_t n)
{
    size_t j, seen = 0, others = 0;

    if (l[i].quoted || header_kind(&l[i]) != 1) {
        return 0;
    }
    for (j = i + 1; j < n && seen < 6; j++) {
        if (l[j].blank) {
            continue;
        }
        seen++;
        if (header_kind(&l[j]) == 2) {
            others++;
        }
    }
    return others >= 2;
}

static const char *const dashed_keys[] = {
    "original message", "forwarded message", "mensaje original", "mensaje reenviado",
    "message d'origine", "message d\xe2\x80\x99origine", "message original",
    "message transféré", "message transfere", "ursprüngliche nachricht",
    "weitergeleitete nachricht", "originalnachricht", "mensagem original",
    "mensagem encaminhada", "messaggio originale", "messaggio inoltrato",
    "oorspronkelijk bericht", "doorgestuurd bericht", "originalmeddelande",
    "vidarebefordrat meddelande", "wiadomość oryginalna", "reply message", NULL,
};
static const char *const forward_openers[] = {
    "begin forwarded message", "inicio del mensaje reenviado", "comienzo del mensaje reenviado",
    "début du message réexpédié", "début du message transféré", "anfang der weitergeleiteten",
    "início da mensagem reencaminhada", "começo da mensagem encaminhada",
    "inizio messaggio inoltrato", "begin doorgestuurd bericht", NULL,
};

/* 1 when line i starts quoted history, a forward or a signature that ends the reply. */
static int is_hard_marker(const struct line *l, size_t i, size_t n)
{
    size_t len = l[i].n, k;
    const char *s = l[i].s;

    if ((len == 2 && strncmp(s, "--", 2) == 0)) {
        return 1;       /* "-- " signature delimiter (trailing space trimmed) */
    }
    s = skip_lead(s, &len, 0);
    for (k = 0; k < len && s[k] == '_'; k++) {
    }
    if (k >= 20 && k == len) {
        return 1;
    }
    for (k = 0; k < len && s[k] == '-'; k++) {
    }
    if (k >= 3 && any_infix(s, len, dashed_keys)) {
        return 1;
    }
    if (any_prefix(s, len, forward_openers)) {
        return 1;
    }
    return header_block(l, i, n);
}

/* Lines that phones and webmails append to every message. */
static const char *const device_prefixes[] = {
    "sent from my ", "sent from mail for windows", "sent from yahoo mail", "sent from outlook",
    "sent from samsung", "sent via ", "sent from the all new aol app", "get outlook for ",
    "enviado desde mi ", "enviado desde yahoo", "enviado desde outlook", "enviado do meu ",
    "enviado do yahoo", "enviado do outlook", "enviado a partir do ", "obtener outlook para ",
    "obtén outlook para ", "obter o outlook para ", "baixe o outlook para ",
    "envoyé de mon ", "envoyé depuis mon ", "envoyé à partir de ", "envoyé de ",
    "télécharger outlook pour ", "obtenir outlook pour ", "gesendet von meinem ",
    "gesendet von ", "outlook für ", "inviato da ", "scarica outlook per ",
    "verzonden vanaf mijn ", "verstuurd vanaf mijn ", "skickat från min ", NULL,
};

static int is_device_line(const struct line *x)
{
    size_t n = x->n;
    const char *s = skip_lead(x->s, &n, 0);

    if (n == 0 || n > 80) {
        return 0;
    }
    if (has_prefix(s, n, "von meinem ") &&
        (has_suffix(s, n, "gesendet") || has_suffix(s, n, "gesendet."))) {
        return 1;
    }
    return any_prefix(s, n, device_prefixes);
}

static const char *const closings[] = {
    "best regards", "kind regards", "regards", "best", "thanks", "thank you", "many thanks",
    "thanks again", "cheers", "sincerely", "best wishes", "warm regards", "all the best",
    "saludos", "un saludo", "saludos cordiales", "atentamente", "gracias", "muchas gracias",
    "un abrazo", "cordialement", "bien cordialement", "merci", "bien à vous",
    "mit freundlichen grüßen", "mit freundlichen grüssen", "viele grüße", "beste grüße",
    "liebe grüße", "freundliche grüße", "mfg", "danke", "gruß", "grüße", "atenciosamente",
    "abraços", "obrigado", "obrigada", "cumprimentos", "att", "cordiali saluti", "saluti",
    "grazie", "met vriendelijke groet", "groeten", NULL,
};

static int is_closing(const struct line *x)
{
    size_t n = x->n;
    const char *s = skip_lead(x->s, &n, 0);
    const char *const *c;

    while (n > 0 && (s[n - 1] == ',' || s[n - 1] == '.' || s[n - 1] == '!')) {
        n--;
    }
    for (c = closings; *c != NULL; c++) {
        if (strlen(*c) == n && strncasecmp(s, *c, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static size_t words(const char *s, size_t n)
{
    size_t i, w = 0;

    for (i = 0; i < n; i++) {
        if (s[i] != ' ' && (i == 0 || s[i - 1] == ' ')) {
            w++;
        }
    }
    return w;
}

/* A contact detail: address, URL, phone number, "a | b" layout. */
static int is_strong_sig(const struct line *x)
{
    size_t i, digits = 0;
    static const char *const keys[] = {
        "@", "http", "www.", " | ", "tel:", "tel.", "phone", "mobile", "móvil", "movil", "fax",
        "tél", "telefon", "telefone", "cel:", "celular", NULL,
    };

    if (any_infix(x->s, x->n, keys)) {
        return 1;
    }
    for (i = 0; i < x->n; i++) {
        digits += x->s[i] >= '0' && x->s[i] <= '9';
    }
    return digits >= 7;
}

/*
 * A signature without "-- ": after the last closing ("Best regards,") and
 * the name below it, a short block of contact lines is dropped. Marks the
 * dropped lines in keep (indexes into the kept line list).
 */
static void drop_contact_block(struct line **kept, size_t nk)
{
    size_t c, name, j, strong = 0, nonblank = 0;

    for (c = nk; c > 0; c--) {
        if (is_closing(kept[c - 1])) {
            break;
        }
    }
    if (c == 0) {
        return;
    }
    for (name = c; name < nk && kept[name]->blank; name++) {
    }
    if (name >= nk || kept[name]->n > 40 || has_digit_or_at(kept[name]->s, kept[name]->n) ||
        words(kept[name]->s, kept[name]->n) > 4) {
        return;
    }
    for (j = name + 1; j < nk; j++) {
        const struct line *x = kept[j];
        if (x->blank) {
            continue;
        }
        nonblank++;
        if (is_strong_sig(x)) {
            strong++;
        } else if (x->n > 50 || words(x->s, x->n) > 6 || x->s[x->n - 1] == '?') {
            return;
        }
    }
    if (strong == 0 || nonblank > 8) {
        return;
    }
    for (j = name + 1; j < nk; j++) {
        kept[j]->drop = 1;
    }
}

/* Split text into lines, trailing whitespace trimmed. Returns the count. */
static size_t split_lines(const char *text, size_t len, struct line *l, size_t max)
{
    size_t i = 0, n = 0;

    while (i <= len && n < max) {
        size_t e = i, k, m;
        while (e < len && text[e] != '\n') {
            e++;
        }
        m = e - i;
        while (m > 0 && (text[i + m - 1] == ' ' || text[i + m - 1] == '\t' ||
                         text[i + m - 1] == '\r')) {
            m--;
        }
        l[n].s = text + i;
        l[n].n = m;
        for (k = 0; k < m && (text[i + k] == ' ' || text[i + k] == '\t'); k++) {
        }
        l[n].blank = k == m;
        l[n].quoted = k < m && text[i + k] == '>';
        l[n].drop = 0;
        n++;
        if (e == len) {
            break;
        }
        i = e + 1;
    }
    return n;
}

/*
 * Find where the reply ends (the first hard marker or an attribution not
 * followed by quoted lines) and drop soft attributions on the way.
 */
static size_t find_cut(struct line *l, size_t n)
{
    size_t i, k, j;

    for (i = 0; i < n; i++) {
        if (l[i].quoted || l[i].blank) {
            continue;
        }
        if (is_hard_marker(l, i, n)) {
            return i;
        }
        if ((k = attribution_span(l, i, n)) > 0 || is_verbless_attribution(&l[i])) {
            int verbless = k == 0;
            k = verbless ? 1 : k;
            for (j = i + k; j < n && l[j].blank; j++) {
            }
            if (j < n && !l[j].quoted) {
                if (verbless) {
                    continue;   /* prose that happens to end in "<addr>:" */
                }
                return i;   /* history follows unquoted: everything after is old */
            }
            for (j = i; j < i + k; j++) {
                l[j].drop = 1;     /* quoted history: keep any answers after it */
            }
            i += k - 1;
        }
    }
    return n;
}

/* Join the kept lines: blank runs collapsed to one, no outer blank lines. */
static char *assemble(struct line **kept, size_t nk)
{
    size_t i, total = 1, w = 0;
    int pending_blank = 0;
    char *out;

    for (i = 0; i < nk; i++) {
        total += kept[i]->n + 2;
    }
    if ((out = hark_malloc(total)) == NULL) {
        return NULL;
    }
    for (i = 0; i < nk; i++) {
        const struct line *x = kept[i];
        if (x->drop) {
            continue;
        }
        if (x->blank) {
            pending_blank = w > 0;
            continue;
        }
        if (w > 0) {
            out[w++] = '\n';
            if (pending_blank) {
                out[w++] = '\n';
            }
        }
        pending_blank = 0;
        memcpy(out + w, x->s, x->n);
        w += x->n;
    }
    out[w] = '\0';
    return out;
}

char *hark_reply_strip(const char *text, size_t len)
{
    struct line *l;
    struct line **kept;
    size_t n, i, cut, nk = 0, cap;
    char *out = NULL;

    if (text == NULL || len == 0) {
        return hark_strdup("");
    }
    cap = 1;
    for (i = 0; i < len; i++) {
        cap += text[i] == '\n';
    }
    if (cap > REPLY_MAX_LINES) {
        cap = REPLY_MAX_LINES;
    }
    l = hark_calloc(cap, sizeof(*l));
    kept = hark_calloc(cap, sizeof(*kept));
    if (l == NULL || kept == NULL) {
        goto out;
    }
    n = split_lines(text, len, l, cap);
    cut = find_cut(l, n);
    for (i = 0; i < cut; i++) {
        if (l[i].quoted || l[i].drop || is_device_line(&l[i])) {
            continue;
        }
        kept[nk++] = &l[i];
    }
    drop_contact_block(kept, nk);
    out = assemble(kept, nk);
out:
    hark_free(l);
    hark_free(kept);
    return out;
}
