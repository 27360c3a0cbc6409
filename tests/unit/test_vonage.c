/*
 * Unit tests: the Vonage SMS adapter (signature vectors, verify, parse of
 * inbound SMS / concatenated parts / delivery receipts, hostile input).
 * The sender has its own file, test_vonage_send.c.
 */
#include "harness.h"

#include <ctype.h>
#include <strings.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/codec.h"
#include "hark/conf.h"
#include "hark/crypto.h"
#include "hark/msg.h"
#include "hark/text.h"

#include "../../adapters/vonage/vonage.h"

/* ---- helpers: channels, signed fixtures, requests ---- */

#define TV_SECRET "test-signature-secret"
/* One second after the fixtures' timestamp 1577880000 (2020-01-01 12:00:00 UTC). */
#define TV_NOW 1577880001000LL

struct tv_chan {
    struct hark_channel ch;
    struct hark_section *sec;
};

struct tv_req {
    struct hark_request r;
    const char *ctype;
};

struct tv_result {
    enum hark_verdict verdict;
    int rc;
    struct hark_response resp;
    struct hark_batch batch;
};

static const char *tv_header(const struct hark_request *req, const char *name)
{
    const struct tv_req *t = (const struct tv_req *)req;
    return strcasecmp(name, "Content-Type") == 0 ? t->ctype : NULL;
}

static int tv_open_text(struct tv_chan *c, const char *text)
{
    static const char *const secrets[] = {"signature_secret", "api_secret", NULL};
    char err[256];

    memset(c, 0, sizeof(*c));
    c->sec = hark_section_from_text("channel.sms-vonage", text, secrets);
    assert_non_null(c->sec);
    c->ch.name = "sms-vonage";
    c->ch.adapter = &hark_adapter_vonage;
    c->ch.section = c->sec;
    return hark_adapter_vonage.init(&c->ch, err, sizeof(err));
}

static void tv_chan_close(struct tv_chan *c)
{
    hark_adapter_vonage.destroy(c->ch.ctx);
    hark_section_free(c->sec);
}

static void tv_chan_open_secret(struct tv_chan *c, const char *secret, const char *method)
{
    char text[512];
    snprintf(text, sizeof(text), "signature_secret = %s\nsignature_method = %s\n", secret,
             method);
    assert_int_equal(tv_open_text(c, text), 0);
}

static void tv_chan_open(struct tv_chan *c, const char *method)
{
    tv_chan_open_secret(c, TV_SECRET, method);
}

static int tv_try_init(const char *text)
{
    struct tv_chan c;
    int rc = tv_open_text(&c, text);
    if (rc == 0) {
        tv_chan_close(&c);
    } else {
        hark_section_free(c.sec);
    }
    return rc;
}

static char *tv_data_text(const char *name)
{
    return harness_read("tests/data/vonage", name, NULL);
}

static char *tv_concat(const char *a, const char *b)
{
    char *out = malloc(strlen(a) + strlen(b) + 1);
    assert_non_null(out);
    memcpy(out, a, strlen(a));
    memcpy(out + strlen(a), b, strlen(b) + 1);
    return out;
}

static char *tv_replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    char *out;
    size_t head;

    assert_non_null(at);
    head = (size_t)(at - s);
    out = malloc(strlen(s) - strlen(from) + strlen(to) + 1);
    assert_non_null(out);
    memcpy(out, s, head);
    memcpy(out + head, to, strlen(to));
    memcpy(out + head + strlen(to), at + strlen(from), strlen(at + strlen(from)) + 1);
    return out;
}

static char *tv_truncate(const char *s, size_t n)
{
    char *out = strdup(s);
    out[strlen(out) - n] = '\0';
    return out;
}

/* Percent-encode for a query string (unreserved characters kept). */
static void tv_encode(const char *in, char *out, size_t cap)
{
    size_t at = 0;
    for (const unsigned char *c = (const unsigned char *)in; *c && at + 4 < cap; c++) {
        if (isalnum(*c) || *c == '-' || *c == '_' || *c == '.' || *c == '~') {
            out[at++] = (char)*c;
        } else {
            at += (size_t)snprintf(out + at, cap - at, "%%%02X", *c);
        }
    }
    out[at] = '\0';
}

/* Order "name=value" strings by name alone ("concat" before "concat-part"). */
static int tv_cmp(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    size_t xn = strcspn(x, "="), yn = strcspn(y, "=");
    int c = memcmp(x, y, xn < yn ? xn : yn);
    return c != 0 ? c : (xn > yn) - (xn < yn);
}

/*
 * The test's own signer, written apart from the adapter: sort "name=value"
 * strings, join as "&name=value" with '&'/'=' in values made '_', then
 * MD5(input + secret) or HMAC; md5hash in lowercase hex, HMACs in
 * uppercase (as the Ruby SDK emits them).
 */
static void tv_sign(char **pairs, size_t n, const char *secret, const char *method,
                    char *sig_out)
{
    char input[16384];
    unsigned char d[HARK_DIGEST_MAX];
    size_t at = 0;
    int size;

    qsort(pairs, n, sizeof(pairs[0]), tv_cmp);
    for (size_t i = 0; i < n; i++) {
        char *eq = strchr(pairs[i], '=');
        input[at++] = '&';
        memcpy(input + at, pairs[i], (size_t)(eq - pairs[i]) + 1);
        at += (size_t)(eq - pairs[i]) + 1;
        for (char *c = eq + 1; *c; c++) {
            input[at++] = (*c == '&' || *c == '=') ? '_' : *c;
        }
    }
    input[at] = '\0';
    if (strcmp(method, "md5hash") == 0) {
        char *both = tv_concat(input, secret);
        size = hark_digest(HARK_MD5, both, strlen(both), d);
        free(both);
    } else {
        enum hark_digest alg = strcmp(method, "md5") == 0 ? HARK_MD5
                             : strcmp(method, "sha1") == 0 ? HARK_SHA1
                             : strcmp(method, "sha256") == 0 ? HARK_SHA256 : HARK_SHA512;
        size = hark_hmac(alg, secret, strlen(secret), input, at, d);
    }
    assert_true(size > 0);
    hark_hex_encode(d, (size_t)size, sig_out, 2 * HARK_DIGEST_MAX + 1);
    if (strcmp(method, "md5hash") != 0) {
        for (char *c = sig_out; *c; c++) {
            *c = (char)toupper((unsigned char)*c);
        }
    }
}

/* form text + "&sig=..." signed over its decoded pairs (an existing sig is ignored). */
static char *tv_signed_text(const char *form_text, const char *secret, const char *method)
{
    struct hark_form form;
    const char *why;
    char *pairs[128], sig[2 * HARK_DIGEST_MAX + 1], tail[160];
    size_t n = 0;

    assert_int_equal(hark_form_parse(form_text, strlen(form_text), &form, &why), 0);
    for (size_t i = 0; i < form.n; i++) {
        if (strcmp(form.pairs[i].name, "sig") != 0) {
            size_t len = strlen(form.pairs[i].name) + strlen(form.pairs[i].value) + 2;
            pairs[n] = malloc(len);
            snprintf(pairs[n], len, "%s=%s", form.pairs[i].name, form.pairs[i].value);
            n++;
        }
    }
    tv_sign(pairs, n, secret, method, sig);
    for (size_t i = 0; i < n; i++) {
        free(pairs[i]);
    }
    hark_form_free(&form);
    snprintf(tail, sizeof(tail), "&sig=%s", sig);
    return tv_concat(form_text, tail);
}

/* A form fixture signed (optionally without parameter `omit`). */
static char *tv_signed_query(const char *file, const char *secret, const char *method,
                             const char *omit)
{
    char *text = tv_data_text(file), *out;

    if (omit != NULL) {
        char needle[64], *start, *end;
        snprintf(needle, sizeof(needle), "&%s=", omit);
        start = strstr(text, needle);
        assert_non_null(start);
        start++;
        end = strchr(start, '&');
        memmove(start - 1, end ? end : start + strlen(start), strlen(end ? end : "") + 1);
    }
    out = tv_signed_text(text, secret, method);
    free(text);
    return out;
}

/* A JSON fixture with a "sig" member added, dumped indented in order. */
static char *tv_signed_json(const char *file, const char *secret, const char *method)
{
    char *text = tv_data_text(file), *pairs[128], sig[2 * HARK_DIGEST_MAX + 1], *out, *dump;
    json_error_t err;
    json_t *root = json_loads(text, 0, &err), *v;
    const char *key;
    size_t n = 0;

    assert_non_null(root);
    json_object_del(root, "sig");
    json_object_foreach(root, key, v) {
        char val[1024];
        if (json_is_integer(v)) {
            snprintf(val, sizeof(val), "%lld", (long long)json_integer_value(v));
        } else {
            snprintf(val, sizeof(val), "%s", json_string_value(v));
        }
        pairs[n] = malloc(strlen(key) + strlen(val) + 2);
        snprintf(pairs[n], strlen(key) + strlen(val) + 2, "%s=%s", key, val);
        n++;
    }
    tv_sign(pairs, n, secret, method, sig);
    for (size_t i = 0; i < n; i++) {
        free(pairs[i]);
    }
    json_object_set_new(root, "sig", json_string(sig));
    dump = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    out = strdup(dump);
    hark_free(dump);
    json_decref(root);
    free(text);
    return out;
}

static void tv_request(struct tv_req *t, const char *method, const char *query,
                       const char *body, const char *ctype, int64_t now)
{
    memset(t, 0, sizeof(*t));
    t->r.method = method;
    t->r.path = "/hooks/sms-vonage";
    t->r.query = query;
    t->r.body = (const unsigned char *)(body ? body : "");
    t->r.body_len = body ? strlen(body) : 0;
    t->r.now_ms = now;
    t->r.header = tv_header;
    t->ctype = ctype;
}

static enum hark_verdict tv_verify(struct tv_chan *c, const char *method, const char *query,
                                   const char *body, const char *ctype, int64_t now)
{
    struct tv_req t;
    struct hark_response resp = {0};
    enum hark_verdict v;

    tv_request(&t, method, query, body, ctype, now);
    v = hark_adapter_vonage.verify(&c->ch, &t.r, &resp);
    if (v == HARK_VERIFIED) {
        assert_int_equal(resp.status, 0);
    }
    hark_response_clear(&resp);
    return v;
}

/* Verify text (GET: query; POST: body); expect status and a reason containing want. Frees text. */
static void tv_expect_verify(struct tv_chan *c, const char *method, char *text,
                             const char *ctype, int64_t now, int status, const char *want)
{
    struct tv_req t;
    struct hark_response resp = {0};
    int get = strcmp(method, "POST") != 0;

    tv_request(&t, method, get ? text : NULL, get ? NULL : text, ctype, now);
    if (hark_adapter_vonage.verify(&c->ch, &t.r, &resp) != HARK_ANSWERED) {
        fail_msg("verified unexpectedly: %s %s", method, text);
    }
    assert_int_equal(resp.status, status);
    if (strstr(resp.reason, want) == NULL) {
        fail_msg("reason \"%s\" lacks \"%s\"", resp.reason, want);
    }
    hark_response_clear(&resp);
    free(text);
}

static void tv_run_parse_only(struct tv_chan *c, const char *method, const char *query,
                              const char *body, const char *ctype, struct tv_result *r)
{
    struct tv_req t;

    memset(r, 0, sizeof(*r));
    tv_request(&t, method, query, body, ctype, TV_NOW);
    r->rc = hark_adapter_vonage.parse(&c->ch, &t.r, &r->batch, &r->resp);
}

/* verify, then parse when verified. */
static void tv_run(struct tv_chan *c, const char *method, const char *query, const char *body,
                   const char *ctype, int64_t now, struct tv_result *r)
{
    struct tv_req t;

    memset(r, 0, sizeof(*r));
    tv_request(&t, method, query, body, ctype, now);
    r->verdict = hark_adapter_vonage.verify(&c->ch, &t.r, &r->resp);
    r->rc = -1;
    if (r->verdict == HARK_VERIFIED) {
        r->rc = hark_adapter_vonage.parse(&c->ch, &t.r, &r->batch, &r->resp);
    }
}

static void tv_result_clear(struct tv_result *r)
{
    hark_batch_clear(&r->batch);
    hark_response_clear(&r->resp);
}

/* Parse only; expect a failure status with nothing produced. Frees query and body. */
static void tv_expect_parse(struct tv_chan *c, const char *method, char *query, char *body,
                            const char *ctype, int status, const char *want)
{
    struct tv_result r;

    tv_run_parse_only(c, method, query, body, ctype, &r);
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.batch.n, 0);
    assert_int_equal(r.resp.status, status);
    if (strstr(r.resp.reason, want) == NULL) {
        fail_msg("reason \"%s\" lacks \"%s\"", r.resp.reason, want);
    }
    tv_result_clear(&r);
    free(query);
    free(body);
}

/* A vector sent for real: GET query, POST form and POST JSON all verify. */
static void tv_verify_vector(const struct vonage_params *ps, const char *secret,
                             const char *method, const char *sig)
{
    struct tv_chan c;
    char query[4096], enc[1024];
    size_t at = 0;
    int64_t ts;
    json_t *obj = json_object();
    char *dump;

    for (size_t i = 0; i < ps->n; i++) {
        tv_encode(ps->v[i].name, enc, sizeof(enc));
        at += (size_t)snprintf(query + at, sizeof(query) - at, "%s=", enc);
        tv_encode(ps->v[i].value, enc, sizeof(enc));
        at += (size_t)snprintf(query + at, sizeof(query) - at, "%s&", enc);
        json_object_set_new(obj, ps->v[i].name, json_string(ps->v[i].value));
    }
    snprintf(query + at, sizeof(query) - at, "sig=%s", sig);
    json_object_set_new(obj, "sig", json_string(sig));
    dump = json_dumps(obj, 0);
    assert_int_equal(vonage_parse_unix(vonage_params_get(ps, "timestamp"), &ts), 0);

    tv_chan_open_secret(&c, secret, method);
    assert_int_equal(tv_verify(&c, "GET", query, NULL, NULL, ts * 1000), HARK_VERIFIED);
    assert_int_equal(tv_verify(&c, "POST", NULL, query, "application/x-www-form-urlencoded",
                               ts * 1000), HARK_VERIFIED);
    assert_int_equal(tv_verify(&c, "POST", NULL, dump, "application/json", ts * 1000),
                     HARK_VERIFIED);
    /* The same request a day later is a replay. */
    assert_int_equal(tv_verify(&c, "GET", query, NULL, NULL, ts * 1000 + 86400000),
                     HARK_ANSWERED);
    tv_chan_close(&c);
    hark_free(dump);
    json_decref(obj);
}

/* ---- signature vectors (../shared/vectors/signatures.json) ---- */

/* Fill ps from a vector's params object (strings, integers as decimal). */
static void params_from_json(json_t *obj, struct vonage_params *ps)
{
    const char *key;
    json_t *v;

    ps->n = 0;
    json_object_foreach(obj, key, v) {
        char num[32];
        const char *val = json_string_value(v);
        if (json_is_integer(v)) {
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
            val = num;
        }
        assert_non_null(val);
        ps->v[ps->n].name = hark_strdup(key);
        ps->v[ps->n].value = hark_strdup(val);
        ps->n++;
    }
}

static const char *method_of(const char *algorithm)
{
    if (strcmp(algorithm, "md5-concat-hex") == 0) {
        return "md5hash";
    }
    if (strcmp(algorithm, "hmac-md5-hex") == 0) {
        return "md5";
    }
    if (strcmp(algorithm, "hmac-sha1-hex") == 0) {
        return "sha1";
    }
    if (strcmp(algorithm, "hmac-sha256-hex") == 0) {
        return "sha256";
    }
    assert_string_equal(algorithm, "hmac-sha512-hex");
    return "sha512";
}

/*
 * Every Vonage vector: the signed input is byte-exact, the expected sig
 * verifies in upper and lower case, a one-character change does not, and
 * (when the vector carries a timestamp) the whole verify step accepts the
 * vector sent as GET query, POST form and POST JSON.
 */
static void test_signature_vectors(void **state)
{
    json_t *all = harness_signature_vectors();
    size_t i, count = 0;
    json_t *v;
    (void)state;

    json_array_foreach(all, i, v) {
        const char *provider = json_string_value(json_object_get(v, "provider"));
        const char *secret, *expected, *method_name;
        enum vonage_sig_method method;
        struct vonage_params ps;
        char *input, *lower, *bad;

        if (provider == NULL || strcmp(provider, "vonage") != 0) {
            continue;
        }
        count++;
        secret = json_string_value(json_object_get(v, "secret"));
        expected = json_string_value(json_object_get(v, "expected_header_value"));
        method_name = method_of(json_string_value(json_object_get(v, "algorithm")));
        assert_int_equal(vonage_sig_method_parse(method_name, &method), 0);
        params_from_json(json_object_get(v, "params"), &ps);

        input = vonage_signed_input(&ps);
        assert_string_equal(input, json_string_value(json_object_get(v, "signed_input")));
        hark_free(input);

        assert_int_equal(vonage_sig_check(&ps, method, secret, strlen(secret), expected), 1);
        lower = strdup(expected);
        for (char *c = lower; *c; c++) {
            *c = (char)tolower((unsigned char)*c);
        }
        assert_int_equal(vonage_sig_check(&ps, method, secret, strlen(secret), lower), 1);
        bad = strdup(expected);
        bad[3] = bad[3] == '0' ? '1' : '0';
        assert_int_equal(vonage_sig_check(&ps, method, secret, strlen(secret), bad), 0);
        /* Another method with the same secret does not verify. */
        assert_int_equal(vonage_sig_check(&ps, method == VONAGE_SIG_MD5HASH
                                                   ? VONAGE_SIG_HMAC_MD5 : VONAGE_SIG_MD5HASH,
                                          secret, strlen(secret), expected), 0);
        /* Truncated signatures do not verify either. */
        lower[strlen(lower) - 2] = '\0';
        assert_int_equal(vonage_sig_check(&ps, method, secret, strlen(secret), lower), 0);
        free(lower);
        free(bad);

        if (vonage_params_get(&ps, "timestamp") != NULL) {
            tv_verify_vector(&ps, secret, method_name, expected);
        }
        vonage_params_free(&ps);
    }
    assert_true(count >= 10);
    json_decref(all);
}

/* '&', '=' and '_' in a value sign the same (the vector's note). */
static void test_signature_replaced_chars(void **state)
{
    json_t *all = harness_signature_vectors();
    json_t *v = harness_find_vector(all, "vonage", "replaced by");
    const char *secret = json_string_value(json_object_get(v, "secret"));
    const char *expected = json_string_value(json_object_get(v, "expected_header_value"));
    static const char *const values[] = {"&", "=", "_"};
    (void)state;

    for (size_t i = 0; i < 3; i++) {
        struct vonage_params ps = {.n = 1};
        ps.v[0].name = hark_strdup("k");
        ps.v[0].value = hark_strdup(values[i]);
        assert_int_equal(vonage_sig_check(&ps, VONAGE_SIG_MD5HASH, secret, strlen(secret),
                                          expected), 1);
        vonage_params_free(&ps);
    }
    json_decref(all);
}

/* ---- verify ---- */

/* A signed GET of the inbound fixture verifies; each tampering is a 403. */
static void test_verify_bad_signatures(void **state)
{
    struct tv_chan c;
    char *query, *plain;
    (void)state;

    tv_chan_open(&c, "md5hash");
    query = tv_signed_query("inbound-sms.form", TV_SECRET, "md5hash", NULL);
    assert_int_equal(tv_verify(&c, "GET", query, NULL, NULL, TV_NOW), HARK_VERIFIED);

    /* No sig at all. */
    tv_expect_verify(&c, "GET", tv_data_text("inbound-sms.form"), NULL, TV_NOW, 403,
                     "unsigned");
    /* Wrong secret. */
    tv_expect_verify(&c, "GET", tv_signed_query("inbound-sms.form", "other-secret", "md5hash",
                                                NULL), NULL, TV_NOW, 403, "mismatch");
    /* Right secret, other method (the dashboard setting matters). */
    tv_expect_verify(&c, "GET", tv_signed_query("inbound-sms.form", TV_SECRET, "sha256", NULL),
                     NULL, TV_NOW, 403, "mismatch");
    /* A parameter changed after signing. */
    tv_expect_verify(&c, "GET", tv_replace(query, "Hello+world", "Hello+World"), NULL, TV_NOW,
                     403, "mismatch");
    /* A parameter added after signing. */
    tv_expect_verify(&c, "GET", tv_concat(query, "&extra=1"), NULL, TV_NOW, 403, "mismatch");
    /* Empty sig, truncated sig, non-hex sig. */
    plain = tv_data_text("inbound-sms.form");
    tv_expect_verify(&c, "GET", tv_concat(plain, "&sig="), NULL, TV_NOW, 403, "unsigned");
    tv_expect_verify(&c, "GET", tv_truncate(query, 4), NULL, TV_NOW, 403, "mismatch");
    tv_expect_verify(&c, "GET", tv_concat(plain, "&sig=zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"),
                     NULL, TV_NOW, 403, "mismatch");
    free(plain);
    /* Stale and future timestamps (max_skew 5m), signed correctly. */
    tv_expect_verify(&c, "GET", strdup(query), NULL, TV_NOW + 6 * 60 * 1000, 403, "max_skew");
    tv_expect_verify(&c, "GET", strdup(query), NULL, TV_NOW - 6 * 60 * 1000, 403, "max_skew");
    /* Within the window both ways. */
    assert_int_equal(tv_verify(&c, "GET", query, NULL, NULL, TV_NOW + 4 * 60 * 1000),
                     HARK_VERIFIED);
    assert_int_equal(tv_verify(&c, "GET", query, NULL, NULL, TV_NOW - 4 * 60 * 1000),
                     HARK_VERIFIED);
    /* Signed but without timestamp, or with a malformed one. */
    tv_expect_verify(&c, "GET", tv_signed_query("inbound-sms.form", TV_SECRET, "md5hash",
                                                "timestamp"), NULL, TV_NOW, 403, "timestamp");
    tv_expect_verify(&c, "GET", tv_signed_text("msisdn=447700900001&timestamp=-1577880000",
                                               TV_SECRET, "md5hash"),
                     NULL, TV_NOW, 403, "timestamp");
    /* Other methods, content types, duplicates. */
    tv_expect_verify(&c, "PUT", strdup(query), NULL, TV_NOW, 405, "GET and POST");
    tv_expect_verify(&c, "POST", strdup("<sms/>"), "text/xml", TV_NOW, 415, "content type");
    tv_expect_verify(&c, "GET", tv_concat(query, "&msisdn=1"), NULL, TV_NOW, 400, "duplicate");
    tv_expect_verify(&c, "GET", strdup("a=%ZZ"), NULL, TV_NOW, 400, "percent");
    free(query);
    tv_chan_close(&c);
}

/* Every signature method verifies a request signed with it. */
static void test_verify_methods(void **state)
{
    static const char *const methods[] = {"md5hash", "md5", "sha1", "sha256", "sha512"};
    (void)state;

    for (size_t i = 0; i < 5; i++) {
        struct tv_chan c;
        char *query;
        tv_chan_open(&c, methods[i]);
        query = tv_signed_query("inbound-sms.form", TV_SECRET, methods[i], NULL);
        assert_int_equal(tv_verify(&c, "GET", query, NULL, NULL, TV_NOW), HARK_VERIFIED);
        free(query);
        tv_chan_close(&c);
    }
}

/* ---- parse ---- */

/* The inbound fixture as GET, POST form and POST JSON: the same message. */
static void test_parse_inbound_three_ways(void **state)
{
    static const char *const ctypes[] = {NULL, "application/x-www-form-urlencoded",
                                         "application/json; charset=utf-8"};
    (void)state;

    for (int way = 0; way < 3; way++) {
        struct tv_chan c;
        struct tv_result r;
        const struct hark_msg *m;

        tv_chan_open(&c, "sha256");
        if (way == 0) {
            char *q = tv_signed_query("inbound-sms.form", TV_SECRET, "sha256", NULL);
            tv_run(&c, "GET", q, NULL, NULL, TV_NOW, &r);
            free(q);
        } else if (way == 1) {
            char *b = tv_signed_query("inbound-sms.form", TV_SECRET, "sha256", NULL);
            tv_run(&c, "POST", NULL, b, ctypes[1], TV_NOW, &r);
            free(b);
        } else {
            char *b = tv_signed_json("inbound-sms.json", TV_SECRET, "sha256");
            tv_run(&c, "POST", NULL, b, ctypes[2], TV_NOW, &r);
            free(b);
        }
        assert_int_equal(r.verdict, HARK_VERIFIED);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.resp.status, 200);
        assert_int_equal(r.resp.body_len, 0);
        assert_int_equal(r.batch.n, 1);
        m = r.batch.msgs[0];
        assert_int_equal(m->kind, HARK_KIND_MESSAGE);
        assert_int_equal(m->direction, HARK_DIR_INBOUND);
        assert_string_equal(m->channel, "sms");
        assert_string_equal(m->provider, "vonage");
        assert_string_equal(m->account, "sms-vonage");
        assert_string_equal(m->from.id, "+447700900001");
        assert_string_equal(m->to.id, "+447700900000");
        assert_string_equal(m->provider_message_id, "0A0000000123ABCD1");
        assert_string_equal(m->text, "Hello world");
        assert_int_equal(m->n_idents, 1);
        assert_string_equal(m->idents[0].kind, "phone");
        assert_string_equal(m->idents[0].value, "+447700900001");
        assert_string_equal(m->thread_key, "+447700900001|+447700900000");
        assert_int_equal(m->sent_at, 1577880000000LL);
        assert_string_equal(hark_json_str(m->extra, "keyword"), "HELLO");
        assert_string_equal(hark_json_str(m->extra, "type"), "text");
        assert_null(m->concat_ref);
        assert_int_equal(m->concat_total, 0);
        assert_null(hark_msg_validate(m));
        tv_result_clear(&r);
        tv_chan_close(&c);
    }
}

/* Unicode text with '&' and '=' (signed as '_'), an integer timestamp, a leap day. */
static void test_parse_unicode_json(void **state)
{
    struct tv_chan c;
    struct tv_result r;
    char *b;
    (void)state;

    tv_chan_open(&c, "sha512");
    b = tv_signed_json("inbound-unicode.json", TV_SECRET, "sha512");
    tv_run(&c, "POST", NULL, b, "application/json", 1583020799000LL, &r);
    free(b);
    assert_int_equal(r.verdict, HARK_VERIFIED);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.batch.n, 1);
    assert_string_equal(r.batch.msgs[0]->text,
                        "\xc2\xbf" "D\xc3\xb3nde est\xc3\xa1 mi pedido? \xf0\x9f\x93\xa6 a&b=c");
    assert_string_equal(r.batch.msgs[0]->idents[0].value, "+34612345678");
    assert_int_equal(r.batch.msgs[0]->sent_at, 1583020799000LL);
    tv_result_clear(&r);
    tv_chan_close(&c);
}

/* A concatenated part: its own provider id plus the concat fields. */
static void test_parse_concat_part(void **state)
{
    struct tv_chan c;
    struct tv_result r;
    const struct hark_msg *m;
    char *b;
    (void)state;

    tv_chan_open(&c, "md5hash");
    b = tv_signed_json("inbound-concat-part.json", TV_SECRET, "md5hash");
    tv_run(&c, "POST", NULL, b, "application/json", TV_NOW, &r);
    if (r.rc != 0) {
        fail_msg("concat: %s", r.resp.reason);
    }
    assert_int_equal(r.batch.n, 1);
    m = r.batch.msgs[0];
    assert_string_equal(m->provider_message_id, "0A0000000123ABCD2");
    assert_string_equal(m->concat_ref, "447700900001:1");
    assert_int_equal(m->concat_total, 3);
    assert_int_equal(m->concat_part, 2);
    assert_string_equal(hark_json_str(m->extra, "concat_message_id"), "concat:447700900001:1");
    tv_result_clear(&r);

    /* Malformed concat fields are refused. */
    tv_expect_parse(&c, "POST", NULL, tv_replace(b, "\"concat-part\": \"2\"",
                                                 "\"concat-part\": \"4\""),
                    "application/json", 400, "concat");
    tv_expect_parse(&c, "POST", NULL, tv_replace(b, "\"concat-total\": \"3\"",
                                                 "\"concat-total\": \"0\""),
                    "application/json", 400, "concat");
    tv_expect_parse(&c, "POST", NULL, tv_replace(b, "\"concat-ref\": \"1\"",
                                                 "\"concat-ref\": \"\""),
                    "application/json", 400, "concat");
    tv_expect_parse(&c, "POST", NULL, tv_replace(b, "\"concat-part\": \"2\"",
                                                 "\"concat-part\": \"x\""),
                    "application/json", 400, "concat");
    free(b);
    tv_chan_close(&c);
}

/* A binary SMS keeps its hex data and UDH in extra, without text. */
static void test_parse_binary(void **state)
{
    struct tv_chan c;
    struct tv_result r;
    char *q;
    (void)state;

    tv_chan_open(&c, "md5hash");
    q = tv_signed_query("inbound-binary.form", TV_SECRET, "md5hash", NULL);
    tv_run(&c, "GET", q, NULL, NULL, TV_NOW, &r);
    assert_int_equal(r.rc, 0);
    assert_null(r.batch.msgs[0]->text);
    assert_string_equal(hark_json_str(r.batch.msgs[0]->extra, "data"), "0102AABBCC");
    assert_string_equal(hark_json_str(r.batch.msgs[0]->extra, "udh"), "050003CC0201");
    tv_result_clear(&r);
    tv_expect_parse(&c, "GET", tv_replace(q, "data=0102AABBCC", "data=nothex"), NULL, NULL, 400,
                    "binary");
    free(q);
    tv_chan_close(&c);
}

/* Delivery receipts become status records for our message. */
static void test_parse_dlr(void **state)
{
    struct tv_chan c;
    struct tv_result r;
    const struct hark_msg *m;
    char *b;
    (void)state;

    tv_chan_open(&c, "sha256");
    b = tv_signed_json("dlr-delivered.json", TV_SECRET, "sha256");
    tv_run(&c, "POST", NULL, b, "application/json", TV_NOW, &r);
    assert_int_equal(r.verdict, HARK_VERIFIED);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.resp.status, 200);
    m = r.batch.msgs[0];
    assert_int_equal(m->kind, HARK_KIND_STATUS);
    assert_string_equal(m->channel, "sms");
    assert_string_equal(m->status, "delivered");
    assert_null(m->error);
    assert_string_equal(m->provider_message_id, "0A0000001234567B");
    assert_string_equal(m->idents[0].value, "+447700900000");
    assert_string_equal(m->to.id, "+447700900000");
    assert_string_equal(m->from.id, "AcmeInc");
    assert_string_equal(hark_json_str(m->extra, "client-ref"), "my-personal-reference");
    assert_string_equal(hark_json_str(m->extra, "vonage_status"), "delivered");
    tv_result_clear(&r);

    /* An unknown status is refused rather than guessed. */
    tv_expect_parse(&c, "POST", NULL, tv_replace(b, "\"delivered\"", "\"teleported\""),
                    "application/json", 400, "status");
    free(b);

    b = tv_signed_query("dlr-failed.form", TV_SECRET, "sha256", NULL);
    tv_run(&c, "POST", NULL, b, "application/x-www-form-urlencoded", TV_NOW, &r);
    assert_int_equal(r.rc, 0);
    m = r.batch.msgs[0];
    assert_string_equal(m->status, "failed");
    assert_string_equal(m->error, "failed: Anti-Spam Rejection (err-code 6)");
    assert_string_equal(m->from.id, "Nexmo CLI");
    tv_result_clear(&r);
    tv_expect_parse(&c, "GET", tv_replace(b, "err-code=6", "err-code=six"), NULL, NULL, 400,
                    "err-code");
    free(b);

    b = tv_signed_query("dlr-buffered.form", TV_SECRET, "sha256", NULL);
    tv_run(&c, "GET", b, NULL, NULL, TV_NOW, &r);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.batch.msgs[0]->status, "sent");
    tv_result_clear(&r);
    free(b);
    tv_chan_close(&c);
}

/* Hostile and malformed requests: a 4xx and nothing produced. */
static void test_parse_hostile(void **state)
{
    struct tv_chan c;
    char *big, *deep;
    size_t at = 0;
    (void)state;

    tv_chan_open(&c, "md5hash");
    tv_expect_parse(&c, "GET", strdup("to=447700900000&messageId=1&text=x"), NULL, NULL, 400,
                    "msisdn");
    tv_expect_parse(&c, "GET", strdup("msisdn=ACME&to=447700900000&messageId=1&text=x"), NULL,
                    NULL, 400, "msisdn");
    tv_expect_parse(&c, "GET", strdup("msisdn=447700900001&to=447700900000&text=x"), NULL,
                    NULL, 400, "messageId");
    tv_expect_parse(&c, "GET", strdup("msisdn=447700900001&messageId=1&text=x"), NULL, NULL,
                    400, "to");
    tv_expect_parse(&c, "GET", strdup("msisdn=447700900001&to=447700900000&messageId=1"),
                    NULL, NULL, 400, "text");
    tv_expect_parse(&c, "GET", strdup("msisdn=447700900001&to=447700900000&messageId=1&text=x"
                                      "&message-timestamp=2020-02-30+12%3A00%3A00"),
                    NULL, NULL, 400, "message-timestamp");
    tv_expect_parse(&c, "GET", strdup("msisdn=447700900001&to=447700900000&messageId=a+b&text=x"),
                    NULL, NULL, 400, "messageId");
    tv_expect_parse(&c, "GET", strdup("msisdn=447700900001&to=%0A&messageId=1&text=x"), NULL,
                    NULL, 400, "to");
    /* Invalid UTF-8 and NUL bytes after decoding. */
    tv_expect_parse(&c, "GET", strdup("msisdn=447700900001&to=447700900000&messageId=1&text=%FF"),
                    NULL, NULL, 400, "UTF-8");
    tv_expect_parse(&c, "GET", strdup("msisdn=447700900001&to=447700900000&messageId=1&text=%00"),
                    NULL, NULL, 400, "");
    /* Nothing at all. */
    tv_expect_parse(&c, "POST", NULL, strdup(""), NULL, 400, "");
    /* JSON of the wrong shapes and types. */
    tv_expect_parse(&c, "POST", NULL, strdup("[1,2,3]"), "application/json", 400, "object");
    tv_expect_parse(&c, "POST", NULL, strdup("{\"msisdn\":[\"447700900001\"]}"),
                    "application/json", 400, "string or an integer");
    tv_expect_parse(&c, "POST", NULL, strdup("{\"msisdn\":{\"a\":1}}"), "application/json", 400,
                    "string or an integer");
    tv_expect_parse(&c, "POST", NULL, strdup("{\"text\":true}"), "application/json", 400,
                    "string or an integer");
    tv_expect_parse(&c, "POST", NULL, strdup("{\"text\":1.5}"), "application/json", 400,
                    "string or an integer");
    tv_expect_parse(&c, "POST", NULL, strdup("{\"text\":null}"), "application/json", 400,
                    "string or an integer");
    tv_expect_parse(&c, "POST", NULL, strdup("{\"msisdn\":\"4477"), "application/json", 400,
                    "JSON");
    tv_expect_parse(&c, "POST", NULL, strdup("{\"text\":\"\xff\"}"), "application/json", 400,
                    "UTF-8");
    tv_expect_parse(&c, "POST", NULL, strdup("{\"a\":1,\"a\":2}"), "application/json", 400,
                    "JSON");
    /* Deep nesting. */
    deep = calloc(1, 4096);
    for (int i = 0; i < 200; i++) {
        deep[at++] = '[';
    }
    tv_expect_parse(&c, "POST", NULL, deep, "application/json", 400, "deep");
    /* Too many parameters, and a huge value. */
    big = calloc(1, 64 * 1024);
    at = 0;
    for (int i = 0; i < VONAGE_MAX_PARAMS + 1; i++) {
        at += (size_t)snprintf(big + at, 64 * 1024 - at, "p%d=1&", i);
    }
    tv_expect_parse(&c, "POST", NULL, big, NULL, 400, "too many");
    big = calloc(1, VONAGE_MAX_VALUE + 64);
    memcpy(big, "text=", 5);
    memset(big + 5, 'a', VONAGE_MAX_VALUE + 1);
    tv_expect_parse(&c, "POST", NULL, big, NULL, 400, "too long");
    tv_chan_close(&c);
}

/* Every allocation failing in turn: never a crash, a leak or a half batch. */
static void test_parse_alloc_failure(void **state)
{
    static const char *const files[] = {"inbound-concat-part.json", "dlr-delivered.json"};
    (void)state;

    for (size_t f = 0; f < 2; f++) {
        struct tv_chan c;
        char *b;
        int done = 0;

        tv_chan_open(&c, "md5hash");
        b = tv_signed_json(files[f], TV_SECRET, "md5hash");
        for (long k = 0; k < 400 && !done; k++) {
            struct tv_result r;
            hark_alloc_fail_after(k, 0);
            tv_run_parse_only(&c, "POST", NULL, b, "application/json", &r);
            hark_alloc_fail_after(-1, 0);
            if (r.rc == 0) {
                assert_int_equal(r.batch.n, 1);
                done = 1;
            } else {
                assert_int_equal(r.batch.n, 0);
                assert_true(r.resp.status == 503 || r.resp.status == 400);
            }
            tv_result_clear(&r);
        }
        assert_true(done);
        free(b);
        tv_chan_close(&c);
    }
}

/* Configuration: what init accepts and refuses. */
static void test_init_config(void **state)
{
    static const char *const bad[] = {
        "signature_method = md5hash\n",
        "signature_secret = s\nsignature_method = sha3\n",
        "signature_secret = s\napi_key = k\n",
        "signature_secret = s\napi_url = ftp://example.com\n",
    };
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(tv_try_init(bad[i]), -1);
    }
    assert_int_equal(tv_try_init("signature_secret = s\n"), 0);
    assert_int_equal(tv_try_init("signature_secret = s\nsignature_method = sha512\n"
                                 "api_key = k\napi_secret = t\nmax_skew = 30s\n"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_vectors),
        cmocka_unit_test(test_signature_replaced_chars),
        cmocka_unit_test(test_verify_bad_signatures),
        cmocka_unit_test(test_verify_methods),
        cmocka_unit_test(test_parse_inbound_three_ways),
        cmocka_unit_test(test_parse_unicode_json),
        cmocka_unit_test(test_parse_concat_part),
        cmocka_unit_test(test_parse_binary),
        cmocka_unit_test(test_parse_dlr),
        cmocka_unit_test(test_parse_hostile),
        cmocka_unit_test(test_parse_alloc_failure),
        cmocka_unit_test(test_init_config),
    };
    hark_alloc_init_json();
    return cmocka_run_group_tests_name("vonage", tests, NULL, NULL);
}
