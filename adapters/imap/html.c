/*
 * hark: readable text from HTML mail (libxml2's HTML parser, recovering,
 * no network). Block elements become line breaks, lists "- " items,
 * blockquotes "> " quoted lines (so that reply stripping sees the quoted
 * history), links "text <url>".
 *
 * libxml2 is initialized once through pthread_once; after that
 * hark_html_to_text may run in several threads (one parser per call).
 */
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "hark/alloc.h"
#include "hark/text.h"
#include "mime.h"

#define HTML_MAX_DEPTH 200
#define HTML_MAX_INPUT (16u * 1024u * 1024u)

static pthread_once_t html_once = PTHREAD_ONCE_INIT;

static void html_init_once(void)
{
    xmlInitParser();
}

/* The text being built, with the state of the current output line. */
struct out {
    char *p;
    size_t n, cap;
    int oom;
    int at_line_start;  /* nothing but the prefix written on this line */
    int pending_space;  /* a collapsed space waits for the next word */
    int quote;          /* blockquote depth */
    int list;           /* list nesting */
    int pre;            /* inside <pre> */
};

static void out_raw(struct out *o, const char *s, size_t n)
{
    if (o->oom) {
        return;
    }
    if (o->n + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        char *g;
        while (cap < o->n + n + 1) {
            cap *= 2;
        }
        g = hark_realloc(o->p, cap);
        if (g == NULL) {
            o->oom = 1;
            return;
        }
        o->p = g;
        o->cap = cap;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
    o->p[o->n] = '\0';
}

/* End the current line (a no-op at the start of an empty output). */
static void out_newline(struct out *o)
{
    if (o->n > 0) {
        out_raw(o, "\n", 1);
    }
    o->at_line_start = 1;
    o->pending_space = 0;
}

/* Make sure the next text starts a new line, after `blank` empty lines. */
static void out_break(struct out *o, int blank)
{
    size_t nl = 0;

    if (o->n == 0) {
        return;
    }
    while (nl < o->n && o->p[o->n - 1 - nl] == '\n') {
        nl++;
    }
    while (nl < (size_t)(1 + blank)) {
        out_raw(o, "\n", 1);
        nl++;
    }
    o->at_line_start = 1;
    o->pending_space = 0;
}

/* Start a line with its quote prefix when needed. */
static void out_prefix(struct out *o)
{
    int i;

    if (!o->at_line_start) {
        return;
    }
    for (i = 0; i < o->quote; i++) {
        out_raw(o, "> ", 2);
    }
    o->at_line_start = 0;
}

/* Text content: whitespace collapsed unless inside <pre>. */
static void out_text(struct out *o, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;

    while (*u) {
        if (o->pre) {
            if (*u == '\n') {
                out_newline(o);
            } else if (*u != '\r') {
                out_prefix(o);
                out_raw(o, (const char *)u, 1);
            }
            u++;
            continue;
        }
        if (*u == ' ' || *u == '\t' || *u == '\n' || *u == '\r' || *u == '\f') {
            o->pending_space = 1;
            u++;
        } else if (u[0] == 0xc2 && u[1] == 0xa0) {     /* &nbsp; */
            o->pending_space = 1;
            u += 2;
        } else {
            if (o->pending_space && !o->at_line_start) {
                out_raw(o, " ", 1);
            }
            o->pending_space = 0;
            out_prefix(o);
            out_raw(o, (const char *)u, 1);
            u++;
        }
    }
}

static int name_in(const char *name, const char *const *set)
{
    size_t i;

    for (i = 0; set[i] != NULL; i++) {
        if (strcasecmp(name, set[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static const char *const skip_tags[] = {
    "script", "style", "head", "title", "template", "noscript", "object", "iframe", "svg",
    "select", "button", NULL,
};
static const char *const para_tags[] = {
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "pre", "ul", "ol", "dl", NULL,
};
static const char *const line_tags[] = {
    "div", "tr", "section", "article", "header", "footer", "nav", "address", "dt", "dd",
    "form", "fieldset", "center", "figure", "figcaption", "main", "aside", "hr", "caption",
    "tbody", "thead", "tfoot", "body", "html", NULL,
};

static void walk(struct out *o, xmlNode *node, int depth);

/* The text of a subtree without rendering (to compare a link with its URL). */
static int link_text_is(xmlNode *a, const char *url)
{
    xmlChar *t = xmlNodeGetContent(a);
    int same = 0;

    if (t != NULL) {
        const char *s = (const char *)t, *e;
        while (*s == ' ' || *s == '\n' || *s == '\t') {
            s++;
        }
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\t')) {
            e--;
        }
        same = (size_t)(e - s) == strlen(url) && strncasecmp(s, url, (size_t)(e - s)) == 0;
        xmlFree(t);
    }
    return same;
}

/* <a href>: children, then " <url>" unless the text already is the URL. */
static void walk_link(struct out *o, xmlNode *a, int depth)
{
    xmlChar *href = xmlGetProp(a, (const xmlChar *)"href");
    const char *h = (const char *)href;

    walk(o, a->children, depth + 1);
    if (h != NULL && (strncasecmp(h, "http://", 7) == 0 || strncasecmp(h, "https://", 8) == 0 ||
                      strncasecmp(h, "mailto:", 7) == 0)) {
        const char *shown = strncasecmp(h, "mailto:", 7) == 0 ? h + 7 : h;
        if (!link_text_is(a, h) && !link_text_is(a, shown)) {
            out_text(o, " <");
            o->pending_space = 0;
            out_text(o, shown);
            out_text(o, ">");
        }
    }
    xmlFree(href);
}

/* One element: its rendering rule, then its children. */
static void walk_element(struct out *o, xmlNode *n, int depth)
{
    const char *name = (const char *)n->name;

    if (name_in(name, skip_tags)) {
        return;
    }
    if (strcasecmp(name, "br") == 0) {
        if (o->at_line_start) {
            out_prefix(o);
        }
        out_newline(o);
        return;
    }
    if (strcasecmp(name, "a") == 0) {
        walk_link(o, n, depth);
        return;
    }
    if (strcasecmp(name, "td") == 0 || strcasecmp(name, "th") == 0) {
        o->pending_space = 1;
        walk(o, n->children, depth + 1);
        o->pending_space = 1;
        return;
    }
    if (strcasecmp(name, "li") == 0) {
        int i;
        out_break(o, 0);
        out_prefix(o);
        for (i = 1; i < o->list; i++) {
            out_raw(o, "  ", 2);
        }
        out_raw(o, "- ", 2);
        walk(o, n->children, depth + 1);
        out_break(o, 0);
        return;
    }
    if (strcasecmp(name, "blockquote") == 0) {
        out_break(o, 0);
        o->quote++;
        walk(o, n->children, depth + 1);
        out_break(o, 0);
        o->quote--;
        return;
    }
    if (name_in(name, para_tags)) {
        int list = strcasecmp(name, "ul") == 0 || strcasecmp(name, "ol") == 0;
        int pre = strcasecmp(name, "pre") == 0;
        out_break(o, o->list > 0 && list ? 0 : 1);
        o->list += list;
        o->pre += pre;
        walk(o, n->children, depth + 1);
        o->list -= list;
        o->pre -= pre;
        out_break(o, o->list > 0 ? 0 : 1);
        return;
    }
    if (name_in(name, line_tags)) {
        out_break(o, 0);
        walk(o, n->children, depth + 1);
        out_break(o, 0);
        return;
    }
    walk(o, n->children, depth + 1);
}

static void walk(struct out *o, xmlNode *node, int depth)
{
    xmlNode *n;

    if (depth > HTML_MAX_DEPTH) {
        return;
    }
    for (n = node; n != NULL && !o->oom; n = n->next) {
        if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
            if (n->content != NULL) {
                out_text(o, (const char *)n->content);
            }
        } else if (n->type == XML_ELEMENT_NODE) {
            walk_element(o, n, depth);
        }
    }
}

/* Trailing spaces off every line, at most one blank line in a row, no outer blanks. */
static char *tidy(const char *s)
{
    size_t n = strlen(s), i = 0, w = 0, blanks = 0;
    char *out = hark_malloc(n + 1);

    if (out == NULL) {
        return NULL;
    }
    while (i < n) {
        size_t e = i, len;
        while (e < n && s[e] != '\n') {
            e++;
        }
        len = e - i;
        while (len > 0 && (s[i + len - 1] == ' ' || s[i + len - 1] == '\t')) {
            len--;
        }
        if (len == 0) {
            blanks++;
        } else {
            if (w > 0) {
                out[w++] = '\n';
                if (blanks > 0) {
                    out[w++] = '\n';
                }
            }
            memcpy(out + w, s + i, len);
            w += len;
            blanks = 0;
        }
        i = e + 1;
    }
    out[w] = '\0';
    return out;
}

char *hark_html_to_text(const char *html, size_t len)
{
    struct out o;
    htmlDocPtr doc;
    char *text;

    memset(&o, 0, sizeof(o));
    o.at_line_start = 1;
    if (html == NULL || len == 0 || len > HTML_MAX_INPUT) {
        return hark_strdup("");
    }
    pthread_once(&html_once, html_init_once);
    doc = htmlReadMemory(html, (int)len, NULL, "UTF-8",
                         HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                         HTML_PARSE_NONET | HTML_PARSE_IGNORE_ENC);
    if (doc == NULL) {
        return hark_strdup("");
    }
    walk(&o, xmlDocGetRootElement(doc) ? doc->children : NULL, 0);
    xmlFreeDoc(doc);
    if (o.oom) {
        hark_free(o.p);
        return NULL;
    }
    text = tidy(o.p ? o.p : "");
    hark_free(o.p);
    if (text != NULL && !hark_utf8_valid(text, strlen(text))) {
        /* libxml2 output is UTF-8; keep the promise even if it were not. */
        text[0] = '\0';
    }
    return text;
}
