/*
 * Unit tests: the signed web form / chat widget adapter (signature scheme,
 * replay window, submission fields, hostile bodies).
 */
#include "harness.h"

#include <strings.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/codec.h"
#include "hark/conf.h"
#include "hark/crypto.h"
#include "hark/msg.h"
#include "hark/text.h"

#include "../../adapters/web/web.h"

#define TW_SECRET "whsec_test_123"
#define TW_TS "1700000000"
#define TW_NOW 1700000000000LL

/* Pass as sig to send no X-Hark-Signature header at all. */
static const char tw_no_sig[] = "(none)";

struct tw_chan {
    struct hark_channel ch;
    struct hark_section *sec;
};

struct tw_req {
    struct hark_request r;
    const char *ts;
    const char *sig;
};

struct tw_result {
    enum hark_verdict verdict;
    int rc;
    struct hark_response resp;
    struct hark_batch batch;
};

static const char *tw_header(const struct hark_request *req, const char *name)
{
    const struct tw_req *t = (const struct tw_req *)req;

    if (strcasecmp(name, "X-Hark-Timestamp") == 0) {
        return t->ts;
    }
    if (strcasecmp(name, "X-Hark-Signature") == 0) {
        return t->sig;
    }
    return NULL;
}

static int tw_open_text(struct tw_chan *c, const char *text)
{
    static const char *const secrets[] = {"secret", NULL};
    char err[256];

    memset(c, 0, sizeof(*c));
    c->sec = hark_section_from_text("channel.site", text, secrets);
    assert_non_null(c->sec);
    c->ch.name = "site";
    c->ch.section = c->sec;
    return hark_adapter_web.init(&c->ch, err, sizeof(err));
}

static void tw_open(struct tw_chan *c)
{
    assert_int_equal(tw_open_text(c, "secret = " TW_SECRET "\n"), 0);
}

static void tw_close(struct tw_chan *c)
{
    hark_adapter_web.destroy(c->ch.ctx);
    hark_section_free(c->sec);
}

/* The test's own signature: "sha256=" + hex HMAC-SHA256(secret, ts "." body). */
static void tw_sign(const char *secret, const char *ts, const char *body, size_t len,
                    char out[80])
{
    unsigned char d[HARK_DIGEST_MAX];
    size_t tl = strlen(ts);
    char *input = malloc(tl + 1 + len + 1);

    memcpy(input, ts, tl);
    input[tl] = '.';
    memcpy(input + tl + 1, body, len);
    assert_int_equal(hark_hmac(HARK_SHA256, secret, strlen(secret), input, tl + 1 + len, d), 32);
    memcpy(out, "sha256=", 7);
    hark_hex_encode(d, 32, out + 7, 65);
    free(input);
}

/* Run verify then parse; sig NULL: sign correctly with the test secret. */
static void tw_run(struct tw_chan *c, const char *method, const char *body, size_t len,
                   const char *ts, const char *sig, int64_t now, struct tw_result *r)
{
    struct tw_req t;
    char good[80];

    memset(r, 0, sizeof(*r));
    memset(&t, 0, sizeof(t));
    if (sig == NULL && ts != NULL) {
        tw_sign(TW_SECRET, ts, body, len, good);
        sig = good;
    }
    t.r.method = method;
    t.r.path = "/hooks/site";
    t.r.body = (const unsigned char *)body;
    t.r.body_len = len;
    t.r.now_ms = now;
    t.r.header = tw_header;
    t.ts = ts;
    t.sig = sig == tw_no_sig ? NULL : sig;
    r->verdict = hark_adapter_web.verify(&c->ch, &t.r, &r->resp);
    r->rc = -1;
    if (r->verdict == HARK_VERIFIED) {
        r->rc = hark_adapter_web.parse(&c->ch, &t.r, &r->batch, &r->resp);
    }
}

static void tw_clear(struct tw_result *r)
{
    hark_batch_clear(&r->batch);
    hark_response_clear(&r->resp);
}

/* Expect verify to answer status with a reason containing want. */
static void tw_expect_verify(struct tw_chan *c, const char *method, const char *body,
                             const char *ts, const char *sig, int64_t now, int status,
                             const char *want)
{
    struct tw_result r;

    tw_run(c, method, body, strlen(body), ts, sig, now, &r);
    assert_int_equal(r.verdict, HARK_ANSWERED);
    assert_int_equal(r.resp.status, status);
    if (strstr(r.resp.reason, want) == NULL) {
        fail_msg("reason \"%s\" lacks \"%s\"", r.resp.reason, want);
    }
    assert_int_equal(r.batch.n, 0);
    tw_clear(&r);
}

/* Expect a correctly signed body to be refused by parse with 400 and want. */
static void tw_expect_400(struct tw_chan *c, const char *body, size_t len, const char *want)
{
    struct tw_result r;

    tw_run(c, "POST", body, len, TW_TS, NULL, TW_NOW, &r);
    assert_int_equal(r.verdict, HARK_VERIFIED);
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.batch.n, 0);
    assert_int_equal(r.resp.status, 400);
    if (strstr(r.resp.reason, want) == NULL) {
        fail_msg("reason \"%s\" lacks \"%s\" for %.80s", r.resp.reason, want, body);
    }
    tw_clear(&r);
}

/* The example of docs/adapters/web.md, computed there with openssl. */
static void test_doc_vector(void **state)
{
    struct tw_chan c;
    struct tw_result r;
    size_t len;
    char *body = harness_read("tests/data/web", "doc-example.json", &len);
    (void)state;

    tw_open(&c);
    tw_run(&c, "POST", body, len, TW_TS,
           "sha256=543f8cc0e6b1c0a09dfdd5247745ca8243063bdd2a6d496c2d88c47e265a3191", TW_NOW,
           &r);
    assert_int_equal(r.verdict, HARK_VERIFIED);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.resp.status, 200);
    assert_string_equal(r.resp.content_type, "application/json");
    assert_string_equal(r.resp.body, "{\"ok\":true}");
    tw_clear(&r);
    /* Uppercase hex is the same signature. */
    tw_run(&c, "POST", body, len, TW_TS,
           "sha256=543F8CC0E6B1C0A09DFDD5247745CA8243063BDD2A6D496C2D88C47E265A3191", TW_NOW,
           &r);
    assert_int_equal(r.rc, 0);
    tw_clear(&r);
    free(body);
    tw_close(&c);
}

/* Every way a signature can be wrong or missing: 403 (405 for GET). */
static void test_verify_bad(void **state)
{
    struct tw_chan c;
    char other[80], tampered[80];
    const char *body = "{\"id\":\"c1\",\"email\":\"ana@example.com\",\"text\":\"Hola\"}";
    (void)state;

    tw_open(&c);
    tw_sign("another-secret", TW_TS, body, strlen(body), other);
    tw_sign(TW_SECRET, "1700000001", body, strlen(body), tampered);
    tw_expect_verify(&c, "GET", body, TW_TS, NULL, TW_NOW, 405, "POST");
    tw_expect_verify(&c, "POST", body, NULL, NULL, TW_NOW, 403, "missing");
    tw_expect_verify(&c, "POST", body, TW_TS, tw_no_sig, TW_NOW, 403, "missing");
    tw_expect_verify(&c, "POST", body, TW_TS, other, TW_NOW, 403, "mismatch");
    /* Signed for another timestamp than the one sent. */
    tw_expect_verify(&c, "POST", body, TW_TS, tampered, TW_NOW, 403, "mismatch");
    tw_expect_verify(&c, "POST", body, TW_TS, other + 7, TW_NOW, 403, "malformed");
    tw_expect_verify(&c, "POST", body, TW_TS, "sha1=abcdef", TW_NOW, 403, "malformed");
    tw_expect_verify(&c, "POST", body, TW_TS, "sha256=", TW_NOW, 403, "malformed");
    tw_expect_verify(&c, "POST", body, "17e8", other, TW_NOW, 403, "malformed");
    tw_expect_verify(&c, "POST", body, "", other, TW_NOW, 403, "malformed");
    tw_expect_verify(&c, "POST", body, "-1700000000", other, TW_NOW, 403, "malformed");
    /* Stale and future (replay window 5 minutes). */
    tw_expect_verify(&c, "POST", body, TW_TS, NULL, TW_NOW + 301000, 403, "max_skew");
    tw_expect_verify(&c, "POST", body, TW_TS, NULL, TW_NOW - 301000, 403, "max_skew");
    tw_close(&c);
}

/* A body changed after signing is refused; the window edges are accepted. */
static void test_verify_tamper_and_window(void **state)
{
    struct tw_chan c;
    struct tw_result r;
    char sig[80];
    const char *body = "{\"id\":\"c1\",\"email\":\"ana@example.com\",\"text\":\"Hola\"}";
    const char *evil = "{\"id\":\"c1\",\"email\":\"eve@example.com\",\"text\":\"Hola\"}";
    (void)state;

    tw_open(&c);
    tw_sign(TW_SECRET, TW_TS, body, strlen(body), sig);
    tw_expect_verify(&c, "POST", evil, TW_TS, sig, TW_NOW, 403, "mismatch");
    tw_run(&c, "POST", body, strlen(body) - 1, TW_TS, sig, TW_NOW, &r);
    assert_int_equal(r.resp.status, 403);
    tw_clear(&r);
    tw_run(&c, "POST", body, strlen(body), TW_TS, NULL, TW_NOW + 299000, &r);
    assert_int_equal(r.rc, 0);
    tw_clear(&r);
    tw_run(&c, "POST", body, strlen(body), TW_TS, NULL, TW_NOW - 299000, &r);
    assert_int_equal(r.rc, 0);
    tw_clear(&r);
    tw_close(&c);

    /* A shorter configured window applies. */
    assert_int_equal(tw_open_text(&c, "secret = " TW_SECRET "\nmax_skew = 30s\n"), 0);
    tw_expect_verify(&c, "POST", body, TW_TS, NULL, TW_NOW + 31000, 403, "max_skew");
    tw_close(&c);
}

/* The full submission: every documented field lands where documented. */
static void test_parse_full(void **state)
{
    struct tw_chan c;
    struct tw_result r;
    const struct hark_msg *m;
    size_t len;
    char *body = harness_read("tests/data/web", "submission.json", &len);
    (void)state;

    tw_open(&c);
    tw_run(&c, "POST", body, len, TW_TS, NULL, TW_NOW, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.batch.n, 1);
    m = r.batch.msgs[0];
    assert_int_equal(m->kind, HARK_KIND_MESSAGE);
    assert_int_equal(m->direction, HARK_DIR_INBOUND);
    assert_string_equal(m->channel, "web");
    assert_string_equal(m->provider, "generic");
    assert_string_equal(m->account, "site");
    assert_string_equal(m->provider_message_id, "f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d");
    assert_int_equal(m->n_idents, 2);
    assert_string_equal(m->idents[0].kind, "email");
    assert_string_equal(m->idents[0].value, "ana.garcia@example.com");
    assert_string_equal(m->idents[1].kind, "phone");
    assert_string_equal(m->idents[1].value, "+34612345678");
    assert_string_equal(m->from.id, "ana.garcia@example.com");
    assert_string_equal(m->from.name, "Ana Garc\xc3\xad" "a");
    assert_string_equal(m->subject, "Order #1234 has not arrived");
    assert_string_equal(m->text, "Hello, my order #1234 has not arrived yet. Can you check?");
    assert_string_equal(m->thread_key, "widget-7f3a9c");
    assert_string_equal(hark_json_str(m->thread, "conversation"), "widget-7f3a9c");
    assert_string_equal(hark_json_str(m->extra, "page_url"),
                        "https://shop.example.com/orders/1234");
    assert_int_equal(m->sent_at, TW_NOW);
    assert_int_equal(m->n_attachments, 2);
    assert_string_equal(m->attachments[0].url, "https://uploads.example.com/u/9f8e7d/receipt.pdf");
    assert_string_equal(m->attachments[0].content_type, "application/pdf");
    assert_string_equal(m->attachments[0].filename, "receipt.pdf");
    assert_int_equal(m->attachments[0].size, 48213);
    assert_null(m->attachments[1].content_type);
    assert_int_equal(m->attachments[1].size, -1);
    assert_null(hark_msg_validate(m));
    tw_clear(&r);
    free(body);
    tw_close(&c);
}

/* Phone only: the phone routes and names the conversation. */
static void test_parse_phone_only(void **state)
{
    struct tw_chan c;
    struct tw_result r;
    size_t len;
    char *body = harness_read("tests/data/web", "phone-only.json", &len);
    (void)state;

    tw_open(&c);
    tw_run(&c, "POST", body, len, TW_TS, NULL, TW_NOW, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.batch.msgs[0]->n_idents, 1);
    assert_string_equal(r.batch.msgs[0]->idents[0].kind, "phone");
    assert_string_equal(r.batch.msgs[0]->idents[0].value, "+34612345678");
    assert_string_equal(r.batch.msgs[0]->thread_key, "+34612345678");
    assert_null(r.batch.msgs[0]->subject);
    tw_clear(&r);
    free(body);
    tw_close(&c);
}

/* Wrong types, missing fields, bad identities, hostile shapes: 400, nothing produced. */
static void test_parse_hostile(void **state)
{
    static const struct {
        const char *body;
        const char *want;
    } cases[] = {
        {"{\"id\":\"1\",\"text\":\"hi\"}", "email or phone is required"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"email\":null,\"phone\":null}", "email or phone"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"email\":\"not-an-address\"}", "email is not"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"email\":\"a@b@c\"}", "email is not"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"email\":\"@example.com\"}", "email is not"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"email\":\"a b@example.com\"}", "email must not"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"phone\":\"call me\"}", "phone is not"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"phone\":\"12345\"}", "phone is not"},
        {"{\"text\":\"hi\",\"email\":\"a@b.c\"}", "id is required"},
        {"{\"id\":\"\",\"text\":\"hi\",\"email\":\"a@b.c\"}", "id must not be empty"},
        {"{\"id\":\"a b\",\"text\":\"hi\",\"email\":\"a@b.c\"}", "id must not contain"},
        {"{\"id\":42,\"text\":\"hi\",\"email\":\"a@b.c\"}", "id must be a string"},
        {"{\"id\":\"1\",\"email\":\"a@b.c\"}", "text is required"},
        {"{\"id\":\"1\",\"text\":\"\",\"email\":\"a@b.c\"}", "text must not be empty"},
        {"{\"id\":\"1\",\"text\":[\"hi\"],\"email\":\"a@b.c\"}", "text must be a string"},
        {"{\"id\":\"1\",\"text\":{\"a\":1},\"email\":\"a@b.c\"}", "text must be a string"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"email\":true}", "email must be a string"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"email\":\"a@b.c\",\"name\":7}", "name must be"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"email\":\"a@b.c\",\"conversation\":1}", "conversation"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"email\":\"a@b.c\",\"attachments\":{}}", "array"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"email\":\"a@b.c\",\"attachments\":[1]}", "objects"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"email\":\"a@b.c\",\"attachments\":[{}]}",
         "url is required"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"email\":\"a@b.c\",\"attachments\":[{\"url\":5}]}",
         "url must be"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"email\":\"a@b.c\",\"attachments\":"
         "[{\"url\":\"javascript:alert(1)\"}]}", "http(s)"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"email\":\"a@b.c\",\"attachments\":"
         "[{\"url\":\"https://x/y\",\"size\":\"12\"}]}", "size must be"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"email\":\"a@b.c\",\"attachments\":"
         "[{\"url\":\"https://x/y\",\"size\":-1}]}", "size must be"},
        {"[{\"id\":\"1\",\"text\":\"hi\",\"email\":\"a@b.c\"}]", "JSON object"},
        {"\"just a string\"", "JSON"},
        {"{\"id\":\"1\",\"text\":\"hi\",\"email\":\"a@b.c\"", "malformed"},
        {"{\"id\":\"1\",\"text\":\"h\xff\",\"email\":\"a@b.c\"}", "UTF-8"},
        {"{\"id\":\"1\",\"text\":\"h\\u0000i\",\"email\":\"a@b.c\"}", "malformed"},
        {"{\"id\":\"1\",\"id\":\"2\",\"text\":\"hi\",\"email\":\"a@b.c\"}", "malformed"},
        {"", "empty"},
    };
    struct tw_chan c;
    char *big;
    size_t at;
    (void)state;

    tw_open(&c);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tw_expect_400(&c, cases[i].body, strlen(cases[i].body), cases[i].want);
    }
    /* A huge attachments array. */
    big = malloc(64 * 1024);
    at = (size_t)snprintf(big, 64 * 1024, "{\"id\":\"1\",\"text\":\"hi\",\"email\":\"a@b.c\","
                                          "\"attachments\":[");
    for (int i = 0; i < 1000; i++) {
        at += (size_t)snprintf(big + at, 64 * 1024 - at, "%s{\"url\":\"https://x/%d\"}",
                               i ? "," : "", i);
    }
    snprintf(big + at, 64 * 1024 - at, "]}");
    tw_expect_400(&c, big, strlen(big), "too many");
    /* Deep nesting. */
    at = (size_t)snprintf(big, 64 * 1024, "{\"id\":\"1\",\"text\":\"hi\",\"email\":\"a@b.c\","
                                          "\"x\":");
    for (int i = 0; i < 5000; i++) {
        big[at++] = '[';
    }
    for (int i = 0; i < 5000; i++) {
        big[at++] = ']';
    }
    big[at++] = '}';
    tw_expect_400(&c, big, at, "deep");
    /* Overlong text and id. */
    at = (size_t)snprintf(big, 64 * 1024, "{\"id\":\"");
    memset(big + at, 'a', WEB_MAX_ID + 1);
    at += WEB_MAX_ID + 1;
    at += (size_t)snprintf(big + at, 64 * 1024 - at, "\",\"text\":\"hi\",\"email\":\"a@b.c\"}");
    tw_expect_400(&c, big, at, "id is too long");
    free(big);
    big = malloc(WEB_MAX_TEXT + 256);
    at = (size_t)snprintf(big, 256, "{\"id\":\"1\",\"email\":\"a@b.c\",\"text\":\"");
    memset(big + at, 'a', WEB_MAX_TEXT + 1);
    at += WEB_MAX_TEXT + 1;
    at += (size_t)snprintf(big + at, 16, "\"}");
    tw_expect_400(&c, big, at, "text is too long");
    free(big);
    tw_close(&c);
}

/* Allocation failures in parse: 503 (or 400 when JSON parsing fails), nothing produced. */
static void test_parse_alloc_failure(void **state)
{
    struct tw_chan c;
    size_t len;
    char *body = harness_read("tests/data/web", "submission.json", &len);
    int done = 0;
    (void)state;

    tw_open(&c);
    for (long k = 0; k < 500 && !done; k++) {
        struct tw_result r;
        hark_alloc_fail_after(k, 0);
        tw_run(&c, "POST", body, len, TW_TS, NULL, TW_NOW, &r);
        hark_alloc_fail_after(-1, 0);
        if (r.rc == 0) {
            assert_int_equal(r.batch.n, 1);
            done = 1;
        } else {
            assert_int_equal(r.batch.n, 0);
            assert_true(r.resp.status == 503 || r.resp.status == 400);
        }
        tw_clear(&r);
    }
    assert_true(done);
    free(body);
    tw_close(&c);
}

static void test_init_config(void **state)
{
    struct tw_chan c;
    (void)state;

    assert_int_equal(tw_open_text(&c, "max_skew = 5m\n"), -1);
    hark_section_free(c.sec);
    assert_int_equal(tw_open_text(&c, "secret = x\nmax_skew = 1m\n"), 0);
    assert_int_equal(((const struct web_ctx *)c.ch.ctx)->max_skew_ms, 60000);
    tw_close(&c);
    assert_null(hark_adapter_web.build_send);
    assert_int_equal(hark_adapter_web.caps & HARK_CAP_SENDER, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doc_vector),
        cmocka_unit_test(test_verify_bad),
        cmocka_unit_test(test_verify_tamper_and_window),
        cmocka_unit_test(test_parse_full),
        cmocka_unit_test(test_parse_phone_only),
        cmocka_unit_test(test_parse_hostile),
        cmocka_unit_test(test_parse_alloc_failure),
        cmocka_unit_test(test_init_config),
    };
    hark_alloc_init_json();
    return cmocka_run_group_tests_name("web", tests, NULL, NULL);
}
