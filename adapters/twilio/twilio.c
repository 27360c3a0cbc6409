/*
 * Twilio adapter: ops table, configuration and signature verification.
 *
 * Twilio signs each webhook with X-Twilio-Signature: base64 HMAC-SHA1, keyed
 * with the account's auth token, over the URL it called followed by the
 * POST parameters sorted by name. For JSON bodies the URL carries
 * bodySHA256 and only the URL is signed. We check before parsing anything.
 */
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/codec.h"
#include "hark/crypto.h"
#include "hark/log.h"
#include "hark/text.h"
#include "twilio.h"

const struct hark_conf_key twilio_conf_keys[] = {
    {"auth_token", HARK_CT_SECRET, NULL, 1, 0, 0, "auth token that signs webhooks (and sends)"},
    {"account_sid", HARK_CT_STRING, NULL, 0, 0, 0, "AC... account SID, for replies"},
    {"api_url", HARK_CT_STRING, "https://api.twilio.com", 0, 0, 0, "Twilio REST API base URL"},
    {"from", HARK_CT_STRING, NULL, 0, 0, 0, "sender number for replies (default: our number)"},
    {"messaging_service_sid", HARK_CT_STRING, NULL, 0, 0, 0, "MG... service for replies"},
    {"status_callback", HARK_CT_STRING, NULL, 0, 0, 0, "URL Twilio calls with delivery status"},
    {0},
};

static int twilio_init(struct hark_channel *ch, char *err, size_t err_len)
{
    struct twilio_ctx *ctx = hark_calloc(1, sizeof(*ctx));

    (void)err_len;
    if (ctx == NULL) {
        return -1;
    }
    ctx->auth_token = hark_section_secret(ch->section, "auth_token");
    if (ctx->auth_token == NULL) {
        hark_free(ctx);
        err[0] = '\0';
        return -1;
    }
    ch->ctx = ctx;
    return 0;
}

static void twilio_destroy(void *ctx)
{
    hark_free(ctx);
}

struct sort_pair {
    const char *name;
    const char *value;
};

static int compare_pairs(const void *a, const void *b)
{
    const struct sort_pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

int twilio_signature(const char *token, size_t token_len, const char *url,
                     const struct hark_form *params, char out[TWILIO_SIG_LEN])
{
    static const struct hark_form no_params = {NULL, 0, NULL};
    struct sort_pair *pairs = NULL;
    size_t len = strlen(url), n, pos;
    unsigned char mac[HARK_DIGEST_MAX];
    char *buf;
    int mac_len;

    if (params == NULL) {
        params = &no_params;
    }
    n = params->n;
    if (n > 0 && (pairs = hark_malloc(n * sizeof(*pairs))) == NULL) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        pairs[i].name = params->pairs[i].name;
        pairs[i].value = params->pairs[i].value;
        len += strlen(pairs[i].name) + strlen(pairs[i].value);
    }
    if (n > 1) {
        qsort(pairs, n, sizeof(*pairs), compare_pairs);
    }
    buf = hark_malloc(len + 1);
    if (buf == NULL) {
        hark_free(pairs);
        return -1;
    }
    pos = strlen(url);
    memcpy(buf, url, pos);
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(pairs[i].name), b = strlen(pairs[i].value);
        memcpy(buf + pos, pairs[i].name, a);
        memcpy(buf + pos + a, pairs[i].value, b);
        pos += a + b;
    }
    mac_len = hark_hmac(HARK_SHA1, token, token_len, buf, pos, mac);
    hark_free(buf);
    hark_free(pairs);
    if (mac_len != 20) {
        return -1;
    }
    return hark_base64_encode(mac, 20, out, TWILIO_SIG_LEN) < 0 ? -1 : 0;
}

int twilio_url_port_variant(const char *url, char *out, size_t cap)
{
    const char *scheme_end = strstr(url, "://"), *host, *host_end, *port;
    const char *def;
    size_t prefix;

    if (scheme_end == NULL) {
        return -1;
    }
    if (hark_strncaseeq(url, (size_t)(scheme_end - url), "https")) {
        def = "443";
    } else if (hark_strncaseeq(url, (size_t)(scheme_end - url), "http")) {
        def = "80";
    } else {
        return -1;
    }
    host = scheme_end + 3;
    host_end = host + strcspn(host, "/?#");
    /* Credentials come before '@'; the port is after the last ':' of the host part. */
    {
        const char *at = memchr(host, '@', (size_t)(host_end - host));
        if (at) {
            host = at + 1;
        }
    }
    port = memchr(host, ':', (size_t)(host_end - host));
    if (port != NULL) {
        /* Remove the port only when it is the default one. */
        if ((size_t)(host_end - port - 1) != strlen(def) ||
            strncmp(port + 1, def, strlen(def)) != 0) {
            return -1;
        }
        prefix = (size_t)(port - url);
        if (prefix + strlen(host_end) + 1 > cap) {
            return -1;
        }
        memcpy(out, url, prefix);
        memcpy(out + prefix, host_end, strlen(host_end) + 1);
        return 0;
    }
    prefix = (size_t)(host_end - url);
    if (prefix + 1 + strlen(def) + strlen(host_end) + 1 > cap) {
        return -1;
    }
    memcpy(out, url, prefix);
    out[prefix] = ':';
    memcpy(out + prefix + 1, def, strlen(def));
    memcpy(out + prefix + 1 + strlen(def), host_end, strlen(host_end) + 1);
    return 0;
}

int twilio_signature_matches(const char *token, size_t token_len, const char *url,
                             const struct hark_form *params, const char *given)
{
    char want[TWILIO_SIG_LEN];
    char variant[2048];
    size_t given_len = strlen(given);

    if (twilio_signature(token, token_len, url, params, want) == 0 &&
        hark_ct_equal(want, strlen(want), given, given_len)) {
        return 1;
    }
    if (strlen(url) < sizeof(variant) &&
        twilio_url_port_variant(url, variant, sizeof(variant)) == 0 &&
        twilio_signature(token, token_len, variant, params, want) == 0 &&
        hark_ct_equal(want, strlen(want), given, given_len)) {
        return 1;
    }
    return 0;
}

/* The scratch release of a form kept for parse. */
static void twilio_form_free(void *data)
{
    hark_form_free(data);
    hark_free(data);
}

/* 1 when the request is a JSON body whose URL carries bodySHA256. */
static int body_hash_matches(const struct hark_request *req, const struct hark_form *query)
{
    const char *want = hark_form_get(query, "bodySHA256");
    unsigned char digest[HARK_DIGEST_MAX];
    char hex[65];

    if (want == NULL) {
        return 0;
    }
    hark_digest(HARK_SHA256, req->body, req->body_len, digest);
    hark_hex_encode(digest, 32, hex, sizeof(hex));
    return hark_ct_equal_nocase(hex, 64, want, strlen(want));
}

/*
 * Verify X-Twilio-Signature. Form POSTs sign URL + sorted body params;
 * GETs and JSON bodies sign the URL alone (JSON adds bodySHA256).
 */
static enum hark_verdict twilio_verify(const struct hark_channel *ch,
                                       const struct hark_request *req,
                                       struct hark_response *resp)
{
    const struct twilio_ctx *ctx = ch->ctx;
    const char *given = req->header(req, "X-Twilio-Signature");
    const char *ctype = req->header(req, "Content-Type");
    struct hark_form params = {0}, query = {0};
    const char *why = NULL;
    char token[HARK_SECRET_MAX];
    int token_len, ok = 0, is_post = strcmp(req->method, "POST") == 0;

    if (!is_post && strcmp(req->method, "GET") != 0) {
        hark_response_fail(resp, 405, "Twilio webhooks use POST or GET");
        return HARK_ANSWERED;
    }
    if (given == NULL || given[0] == '\0') {
        hark_response_fail(resp, 403, "missing X-Twilio-Signature");
        return HARK_ANSWERED;
    }
    token_len = hark_secret_read(ctx->auth_token, token, sizeof(token));
    if (token_len < 0) {
        hark_response_fail(resp, 403, "no auth token configured");
        return HARK_ANSWERED;
    }
    if (req->query && hark_form_parse(req->query, strlen(req->query), &query, &why) < 0) {
        hark_form_free(&query);
        explicit_bzero(token, sizeof(token));
        hark_response_fail(resp, 400, "query string: %s", why);
        return HARK_ANSWERED;
    }
    if (is_post && ctype && strncasecmp(ctype, "application/json", 16) == 0) {
        ok = body_hash_matches(req, &query) &&
             twilio_signature_matches(token, (size_t)token_len, req->signed_url, NULL, given);
    } else if (is_post) {
        if (hark_form_parse((const char *)req->body, req->body_len, &params, &why) < 0) {
            hark_form_free(&params);
            hark_form_free(&query);
            explicit_bzero(token, sizeof(token));
            hark_response_fail(resp, 400, "form body: %s", why);
            return HARK_ANSWERED;
        }
        ok = twilio_signature_matches(token, (size_t)token_len, req->signed_url, &params, given);
        if (ok && req->scratch != NULL) {
            /* Hand the decoded form to parse rather than decode it again. */
            struct hark_form *kept = hark_malloc(sizeof(*kept));
            if (kept != NULL) {
                *kept = params;
                memset(&params, 0, sizeof(params));
                req->scratch->data = kept;
                req->scratch->free = twilio_form_free;
            }
        }
    } else {
        ok = twilio_signature_matches(token, (size_t)token_len, req->signed_url, NULL, given);
    }
    explicit_bzero(token, sizeof(token));
    hark_form_free(&params);
    hark_form_free(&query);
    if (!ok) {
        hark_response_fail(resp, 403, "X-Twilio-Signature does not match");
        return HARK_ANSWERED;
    }
    return HARK_VERIFIED;
}

const struct hark_adapter hark_adapter_twilio = {
    .name = "twilio",
    .caps = HARK_CAP_WEBHOOK | HARK_CAP_SENDER,
    .keys = twilio_conf_keys,
    .init = twilio_init,
    .destroy = twilio_destroy,
    .verify = twilio_verify,
    .parse = twilio_parse,
    .build_send = twilio_build_send,
    .read_send = twilio_read_send,
};
