/*
 * Unit tests of the meta adapter, part 1: configuration, the subscription
 * handshake, X-Hub-Signature-256 (official vectors from ../shared/vectors),
 * Messenger, Page feed and Instagram payloads from tests/data/meta/ and the
 * documented samples in ../shared/vectors/payloads/.
 * WhatsApp, hostile bodies and replies are in test_meta_wa.c.
 */
#include "harness.h"

#include <strings.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/codec.h"
#include "hark/conf.h"
#include "hark/crypto.h"
#include "hark/msg.h"

extern const struct hark_adapter hark_adapter_meta;

#define PAGE "104567890123456"
#define PSID "6543210987654321"
#define IG "17841400008460056"
#define IGSID "1234567890123456"

static const char *const secret_keys[] = {"app_secret", "verify_token", "access_token", NULL};

struct chan {
    struct hark_section *sec;
    struct hark_channel ch;
};

/* A configured meta channel "fb-main"; conf NULL: the default test config. */
static struct chan *chan_new(const char *conf)
{
    struct chan *c = calloc(1, sizeof(*c));
    char err[128] = "";

    assert_non_null(c);
    c->sec = hark_section_from_text("channel.fb-main",
                                    conf ? conf : "app_secret = s3cret\nverify_token = tok-123\n",
                                    secret_keys);
    assert_non_null(c->sec);
    c->ch.name = "fb-main";
    c->ch.adapter = &hark_adapter_meta;
    c->ch.section = c->sec;
    assert_int_equal(hark_adapter_meta.init(&c->ch, err, sizeof(err)), 0);
    return c;
}

static void chan_free(struct chan *c)
{
    hark_adapter_meta.destroy(c->ch.ctx);
    hark_section_free(c->sec);
    free(c);
}

static const char *req_header(const struct hark_request *req, const char *name)
{
    return strcasecmp(name, "X-Hub-Signature-256") == 0 ? req->impl : NULL;
}

/* "sha256=" + hex HMAC-SHA256 of body with secret. */
static void sign(const char *secret, const void *body, size_t n, char out[80])
{
    unsigned char mac[HARK_DIGEST_MAX];

    assert_int_equal(hark_hmac(HARK_SHA256, secret, strlen(secret), body, n, mac), 32);
    memcpy(out, "sha256=", 7);
    assert_int_equal(hark_hex_encode(mac, 32, out + 7, 73), 64);
}

static struct hark_request make_req(const char *method, const char *query,
                                    const char *body, size_t len, const char *sig)
{
    struct hark_request r = {0};

    r.method = method;
    r.path = "/hooks/fb-main";
    r.query = query;
    r.body = (const unsigned char *)body;
    r.body_len = len;
    r.header = req_header;
    r.impl = sig;
    return r;
}

static int verify(struct chan *c, const char *method, const char *query, const char *body,
                  size_t len, const char *sig, struct hark_response *resp)
{
    struct hark_request r = make_req(method, query, body, len, sig);
    return (int)hark_adapter_meta.verify(&c->ch, &r, resp);
}

/* Parse body; returns the status (200 on success) and fills batch. */
static int parse_body(struct chan *c, const char *body, size_t len, struct hark_batch *b)
{
    struct hark_request r = make_req("POST", NULL, body, len, NULL);
    struct hark_response resp = {0};
    int rc = hark_adapter_meta.parse(&c->ch, &r, b, &resp), status = resp.status;

    if (rc == 0) {
        assert_int_equal(status, 200);
        assert_string_equal(resp.content_type, "text/plain");
        assert_string_equal(resp.body, "EVENT_RECEIVED");
    } else {
        assert_int_equal(rc, -1);
        assert_int_equal(b->n, 0);
        assert_true(status >= 400);
    }
    hark_response_clear(&resp);
    return status;
}

/* Parse tests/data/meta/NAME, expecting success and n records. */
static void parse_data(struct chan *c, const char *name, struct hark_batch *b, size_t n)
{
    size_t len;
    char *body = harness_read("tests/data/meta", name, &len);

    assert_int_equal(parse_body(c, body, len, b), 200);
    free(body);
    if (b->n != n) {
        fail_msg("%s: %zu records, expected %zu", name, b->n, n);
    }
    for (size_t i = 0; i < b->n; i++) {
        assert_null(hark_msg_validate(b->msgs[i]));
        assert_string_equal(b->msgs[i]->provider, "meta");
        assert_string_equal(b->msgs[i]->account, "fb-main");
    }
}

static const char *extra_s(const struct hark_msg *m, const char *key)
{
    return json_string_value(json_object_get(m->extra, key));
}

static const char *thread_s(const struct hark_msg *m, const char *key)
{
    return json_string_value(json_object_get(m->thread, key));
}

static void test_config(void **state)
{
    struct chan *c = chan_new("app_secret = a\nverify_token = b\napi_url = http://127.0.0.1:9/v19.0/\n");
    struct hark_section *sec;
    struct hark_channel ch = {0};
    char err[128] = "";
    const struct hark_conf_key *k;
    int n = 0;
    (void)state;

    chan_free(c);
    for (k = hark_adapter_meta.keys; k->name; k++) {
        n++;
        if (strcmp(k->name, "app_secret") == 0 || strcmp(k->name, "verify_token") == 0) {
            assert_int_equal(k->type, HARK_CT_SECRET);
            assert_true(k->required);
        }
    }
    assert_int_equal(n, 5);
    assert_string_equal(hark_adapter_meta.name, "meta");
    /* Without verify_token init refuses. */
    sec = hark_section_from_text("channel.x", "app_secret = a\n", secret_keys);
    ch.name = "x";
    ch.section = sec;
    assert_int_equal(hark_adapter_meta.init(&ch, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "verify_token"));
    hark_section_free(sec);
    sec = hark_section_from_text("channel.x", "app_secret = a\nverify_token = b\napi_url = ftp://x\n",
                                 secret_keys);
    ch.section = sec;
    assert_int_equal(hark_adapter_meta.init(&ch, err, sizeof(err)), -1);
    hark_section_free(sec);
}

static void test_handshake_good(void **state)
{
    struct chan *c = chan_new(NULL);
    struct hark_response resp = {0};
    (void)state;

    assert_int_equal(verify(c, "GET", "hub.mode=subscribe&hub.challenge=1158201444&"
                            "hub.verify_token=tok-123", NULL, 0, NULL, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.content_type, "text/plain");
    assert_string_equal(resp.body, "1158201444");
    hark_response_clear(&resp);
    chan_free(c);
}

static void test_handshake_bad(void **state)
{
    static const char *const queries[] = {
        "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=tok-124",
        "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=tok-12",
        "hub.mode=subscribe&hub.challenge=1158201444",
        "hub.challenge=1158201444&hub.verify_token=tok-123",
        "hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=tok-123",
        "hub.mode=subscribe&hub.verify_token=tok-123",
        "hub.mode=subscribe&hub.challenge=&hub.verify_token=tok-123",
        "hub.mode=subscribe&hub.challenge=a+b&hub.verify_token=tok-123",
        "hub.mode=subscribe&hub.challenge=%3Cscript%3E%0A&hub.verify_token=tok-123",
        "hub.mode=subscribe&hub.challenge=%zz&hub.verify_token=tok-123",
        "",
        NULL,
    };
    struct chan *c = chan_new(NULL);
    struct hark_response resp = {0};
    char longq[600];
    (void)state;

    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        assert_int_equal(verify(c, "GET", queries[i], NULL, 0, NULL, &resp), HARK_ANSWERED);
        if (resp.status != 403) {
            fail_msg("query %zu answered %d", i, resp.status);
        }
        hark_response_clear(&resp);
    }
    snprintf(longq, sizeof(longq), "hub.mode=subscribe&hub.verify_token=tok-123&hub.challenge=%0300d", 7);
    assert_int_equal(verify(c, "GET", longq, NULL, 0, NULL, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 403);
    hark_response_clear(&resp);
    assert_int_equal(verify(c, "PUT", NULL, "{}", 2, NULL, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 405);
    hark_response_clear(&resp);
    assert_int_equal(verify(c, "DELETE", NULL, NULL, 0, NULL, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 405);
    hark_response_clear(&resp);
    chan_free(c);
}

/* Every official meta vector verifies; hashing re-serialised JSON must not. */
static void test_signature_vectors(void **state)
{
    json_t *all = harness_signature_vectors(), *v;
    size_t i;
    int seen = 0;
    (void)state;

    json_array_foreach(all, i, v) {
        const char *prov = json_string_value(json_object_get(v, "provider"));
        const char *secret = json_string_value(json_object_get(v, "secret"));
        const char *input = json_string_value(json_object_get(v, "signed_input"));
        const char *expect = json_string_value(json_object_get(v, "expected_header_value"));
        struct hark_response resp = {0};
        char conf[256], upper[80], mine[80];
        struct chan *c;

        if (prov == NULL || strcmp(prov, "meta") != 0) {
            continue;
        }
        seen++;
        snprintf(conf, sizeof(conf), "app_secret = %s\nverify_token = t\n", secret);
        c = chan_new(conf);
        sign(secret, input, strlen(input), mine);
        assert_string_equal(mine, expect);
        assert_int_equal(verify(c, "POST", NULL, input, strlen(input), expect, &resp),
                         HARK_VERIFIED);
        /* Hex compares case-insensitively. */
        snprintf(upper, sizeof(upper), "%s", expect);
        for (char *p = upper + 7; *p; p++) {
            *p = (char)((*p >= 'a' && *p <= 'f') ? *p - 32 : *p);
        }
        assert_int_equal(verify(c, "POST", NULL, input, strlen(input), upper, &resp),
                         HARK_VERIFIED);
        if (strstr(input, "\\u00e4") != NULL) {
            /* The decoded (re-serialised) body must not match the signature. */
            json_t *doc = json_loads(input, 0, NULL);
            char *decoded = json_dumps(doc, JSON_COMPACT);
            const char *note = json_string_value(json_object_get(v, "note"));
            assert_non_null(decoded);
            assert_int_equal(verify(c, "POST", NULL, decoded, strlen(decoded), expect, &resp),
                             HARK_ANSWERED);
            assert_int_equal(resp.status, 403);
            sign(secret, decoded, strlen(decoded), mine);
            assert_non_null(note);
            assert_non_null(strstr(note, mine));
            hark_response_clear(&resp);
            free(decoded);
            json_decref(doc);
        }
        hark_response_clear(&resp);
        chan_free(c);
    }
    assert_true(seen >= 2);
    json_decref(all);
}

static void test_signature_bad(void **state)
{
    const char *body = "{\"object\":\"page\",\"entry\":[]}";
    struct chan *c = chan_new(NULL);
    struct hark_response resp = {0};
    char good[80], bad[96];
    const char *sigs[8];
    (void)state;

    sign("s3cret", body, strlen(body), good);
    assert_int_equal(verify(c, "POST", NULL, body, strlen(body), good, &resp), HARK_VERIFIED);
    sigs[0] = NULL;                                     /* missing */
    sigs[1] = "";                                       /* empty */
    sigs[2] = good + 7;                                 /* no prefix */
    snprintf(bad, sizeof(bad), "sha1=%s", good + 7);
    sigs[3] = bad;                                      /* wrong algorithm */
    sigs[4] = "sha256=0c61947b610d4f45e65f3d680e26027121ec2413e77598bcb6cfc6e0d988822";
    sigs[5] = "sha256=zc61947b610d4f45e65f3d680e26027121ec2413e77598bcb6cfc6e0d9888221";
    sigs[6] = "sha256=0c61947b610d4f45e65f3d680e26027121ec2413e77598bcb6cfc6e0d9888221";
    for (int i = 0; i < 7; i++) {
        assert_int_equal(verify(c, "POST", NULL, body, strlen(body), sigs[i], &resp),
                         HARK_ANSWERED);
        assert_int_equal(resp.status, 403);
        hark_response_clear(&resp);
    }
    /* A tampered body, and a signature made with another secret. */
    assert_int_equal(verify(c, "POST", NULL, "{\"object\":\"page\",\"entry\":[ ]}",
                            strlen(body) + 1, good, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 403);
    hark_response_clear(&resp);
    sign("s3cre7", body, strlen(body), bad);
    assert_int_equal(verify(c, "POST", NULL, body, strlen(body), bad, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 403);
    hark_response_clear(&resp);
    /* A trailing character after a valid signature. */
    snprintf(bad, sizeof(bad), "%s0", good);
    assert_int_equal(verify(c, "POST", NULL, body, strlen(body), bad, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 403);
    hark_response_clear(&resp);
    chan_free(c);
}

static void test_messenger_text_and_reply(void **state)
{
    struct chan *c = chan_new(NULL);
    struct hark_batch b = {0};
    struct hark_msg *m;
    (void)state;

    parse_data(c, "messenger-text.json", &b, 1);
    m = b.msgs[0];
    assert_int_equal(m->kind, HARK_KIND_MESSAGE);
    assert_string_equal(m->channel, "messenger");
    assert_int_equal(m->direction, HARK_DIR_INBOUND);
    assert_string_equal(m->from.id, PSID);
    assert_string_equal(m->to.id, PAGE);
    assert_string_equal(m->idents[0].kind, "messenger:" PAGE);
    assert_string_equal(m->idents[0].value, PSID);
    assert_string_equal(m->thread_key, PSID "|" PAGE);
    assert_string_equal(m->provider_message_id, "mid.1457764197618:41d102a3e1ae206a38");
    assert_string_equal(m->text, "hello, world!");
    assert_string_equal(extra_s(m, "quick_reply_payload"), "SIZE_M");
    assert_int_equal(m->sent_at, 1458692752478LL);
    assert_string_equal(m->status, "received");
    hark_batch_clear(&b);

    parse_data(c, "messenger-reply.json", &b, 1);
    assert_string_equal(thread_s(b.msgs[0], "reply_to"), "m_1fTq8oLumEyIp3Q2MR-aY7IfLZDamVrALniheU");
    hark_batch_clear(&b);
    chan_free(c);
}

static void test_messenger_attachments(void **state)
{
    struct chan *c = chan_new(NULL);
    struct hark_batch b = {0};
    struct hark_msg *m;
    (void)state;

    parse_data(c, "messenger-attachments.json", &b, 4);
    m = b.msgs[0];
    assert_null(m->text);
    assert_int_equal(m->n_attachments, 5);
    assert_string_equal(m->attachments[0].content_type, "image");
    assert_string_equal(m->attachments[0].url, "https://scontent.xx.fbcdn.net/v/t1/img.jpg");
    assert_string_equal(m->attachments[1].content_type, "video");
    assert_string_equal(m->attachments[2].content_type, "audio");
    assert_string_equal(m->attachments[3].content_type, "file");
    assert_string_equal(m->attachments[3].url, "https://cdn.fbsbx.com/v/t59/invoice.pdf");
    assert_string_equal(m->attachments[4].content_type, "reel");
    assert_int_equal(m->attachments[0].size, -1);
    m = b.msgs[1];
    assert_int_equal(m->n_attachments, 2);
    assert_string_equal(m->attachments[1].content_type, "sticker");
    assert_string_equal(m->attachments[1].file_id, "369239263222822");
    m = b.msgs[2];
    assert_string_equal(m->attachments[0].content_type, "location");
    assert_string_equal(m->attachments[0].url, "geo:48.208490,16.372080");
    assert_string_equal(m->attachments[0].filename, "Pinned Location");
    m = b.msgs[3];
    assert_string_equal(m->text, "look https://example.com/p/1");
    assert_string_equal(m->attachments[0].content_type, "fallback");
    assert_string_equal(m->attachments[0].url, "https://example.com/p/1");
    assert_string_equal(m->attachments[0].filename, "Example product");
    hark_batch_clear(&b);
    chan_free(c);
}

static void test_messenger_echo_postback_referral(void **state)
{
    struct chan *c = chan_new(NULL);
    struct hark_batch b = {0};
    struct hark_msg *m;
    (void)state;

    parse_data(c, "messenger-echo.json", &b, 1);
    m = b.msgs[0];
    assert_int_equal(m->direction, HARK_DIR_OUTBOUND);
    assert_string_equal(m->status, "sent");
    assert_string_equal(m->idents[0].value, PSID);      /* the customer is the recipient */
    assert_string_equal(m->from.id, PAGE);
    assert_string_equal(m->to.id, PSID);
    assert_string_equal(m->thread_key, PSID "|" PAGE);
    assert_string_equal(extra_s(m, "app_id"), "1517776481860111");
    assert_string_equal(extra_s(m, "metadata"), "crm:42");
    assert_string_equal(m->text, "Pick a size");
    assert_string_equal(m->attachments[0].content_type, "template");
    assert_string_equal(json_string_value(json_object_get(json_object_get(m->extra, "template"),
                                                          "template_type")), "button");
    hark_batch_clear(&b);

    parse_data(c, "messenger-postback.json", &b, 2);
    m = b.msgs[0];
    assert_string_equal(m->text, "Talk to an agent");
    assert_string_equal(extra_s(m, "postback_payload"), "AGENT");
    assert_true(strncmp(m->provider_message_id, "m_AG5Hz2Uq7", 11) == 0);
    assert_int_equal(m->sent_at, 1527459824000LL);     /* seconds are scaled */
    m = b.msgs[1];
    assert_null(m->text);
    assert_string_equal(m->provider_message_id, "referral:" PSID ":1527459900000");
    assert_string_equal(json_string_value(json_object_get(json_object_get(m->extra, "referral"),
                                                          "ref")), "summer-sale");
    hark_batch_clear(&b);
    chan_free(c);
}

static void test_messenger_delivery_read_edit(void **state)
{
    struct chan *c = chan_new(NULL);
    struct hark_batch b = {0};
    struct hark_msg *m;
    (void)state;

    parse_data(c, "messenger-delivery.json", &b, 2);
    for (size_t i = 0; i < 2; i++) {
        m = b.msgs[i];
        assert_int_equal(m->kind, HARK_KIND_STATUS);
        assert_string_equal(m->status, "delivered");
        assert_string_equal(m->channel, "messenger");
        assert_string_equal(m->idents[0].value, PSID);
        assert_int_equal(json_integer_value(json_object_get(m->extra, "watermark")),
                         1458668856253LL);
    }
    assert_string_equal(b.msgs[0]->provider_message_id, "mid.1458668856218:ed81099e15d3f4f233");
    assert_string_equal(b.msgs[1]->provider_message_id, "mid.1458668856219:ed81099e15d3f4f234");
    hark_batch_clear(&b);

    parse_data(c, "messenger-read.json", &b, 1);
    m = b.msgs[0];
    assert_int_equal(m->kind, HARK_KIND_STATUS);
    assert_string_equal(m->status, "read");
    assert_string_equal(m->provider_message_id, "read:1458668856253");
    assert_int_equal(json_integer_value(json_object_get(m->extra, "watermark")), 1458668856253LL);
    hark_batch_clear(&b);

    parse_data(c, "messenger-edit.json", &b, 1);
    m = b.msgs[0];
    assert_int_equal(m->kind, HARK_KIND_EDIT);
    assert_string_equal(m->provider_message_id, "m_b1");
    assert_string_equal(m->text, "first (fixed)");
    assert_string_equal(extra_s(m, "event_id"), "m_b1:edit:1");
    hark_batch_clear(&b);
    chan_free(c);
}

static void test_messenger_batch(void **state)
{
    struct chan *c = chan_new(NULL);
    struct hark_batch b = {0};
    (void)state;

    parse_data(c, "messenger-batch.json", &b, 4);   /* optin and reaction skipped */
    assert_string_equal(b.msgs[0]->text, "first");
    assert_string_equal(b.msgs[1]->idents[0].value, "7777");
    assert_string_equal(b.msgs[1]->thread_key, "7777|" PAGE);
    assert_string_equal(b.msgs[2]->idents[0].kind, "messenger:2222");
    assert_string_equal(b.msgs[2]->thread_key, PSID "|2222");
    assert_string_equal(b.msgs[3]->text, "in standby");
    assert_true(json_is_true(json_object_get(b.msgs[3]->extra, "standby")));
    assert_null(json_object_get(b.msgs[0]->extra, "standby"));
    hark_batch_clear(&b);
    chan_free(c);
}

static void test_feed(void **state)
{
    struct chan *c = chan_new(NULL);
    struct hark_batch b = {0};
    struct hark_msg *m;
    (void)state;

    parse_data(c, "feed-comment.json", &b, 1);
    m = b.msgs[0];
    assert_int_equal(m->kind, HARK_KIND_MESSAGE);
    assert_string_equal(m->channel, "facebook_comment");
    assert_string_equal(m->provider_message_id, "200_300");
    assert_string_equal(m->idents[0].kind, "facebook:" PAGE);
    assert_string_equal(m->idents[0].value, "5566778899");
    assert_string_equal(m->from.name, "Cinderella Hoover");
    assert_string_equal(m->thread_key, "post:" PAGE "_200|5566778899");
    assert_string_equal(m->text, "Does this come in blue?");
    assert_string_equal(thread_s(m, "post_id"), PAGE "_200");
    assert_string_equal(thread_s(m, "comment_id"), "200_300");
    assert_string_equal(m->own_ref, "200_300");
    assert_int_equal(m->n_thread_refs, 0);
    assert_int_equal(m->sent_at, 1520544814000LL);
    hark_batch_clear(&b);

    parse_data(c, "feed-comment-reply.json", &b, 1);
    m = b.msgs[0];
    /* A reply stays in its author's conversation: the parent is a ref, not a thread ref. */
    assert_int_equal(m->n_thread_refs, 0);
    assert_string_equal(thread_s(m, "parent_id"), "200_299");
    assert_string_equal(m->thread_key, "post:" PAGE "_200|5566778899");
    assert_string_equal(m->attachments[0].content_type, "photo");
    hark_batch_clear(&b);

    parse_data(c, "feed-comment-edited.json", &b, 1);
    m = b.msgs[0];
    assert_int_equal(m->kind, HARK_KIND_EDIT);
    assert_string_equal(m->provider_message_id, "200_300");
    assert_string_equal(m->channel, "facebook_comment");
    assert_string_equal(m->text, "Does this come in green?");
    assert_string_equal(extra_s(m, "event_id"), "200_300:edited:1520545000");
    hark_batch_clear(&b);

    parse_data(c, "feed-comment-remove.json", &b, 1);
    assert_int_equal(b.msgs[0]->kind, HARK_KIND_REMOVE);
    assert_string_equal(b.msgs[0]->provider_message_id, "200_300");
    hark_batch_clear(&b);

    parse_data(c, "feed-post.json", &b, 1);
    m = b.msgs[0];
    assert_string_equal(m->provider_message_id, PAGE "_400");
    assert_string_equal(m->thread_key, "post:" PAGE "_400|5566778899");
    assert_int_equal(m->n_attachments, 2);
    hark_batch_clear(&b);

    parse_data(c, "feed-page-own.json", &b, 0);     /* own post, own reply, reaction */
    chan_free(c);
}

static void test_instagram(void **state)
{
    struct chan *c = chan_new(NULL);
    struct hark_batch b = {0};
    struct hark_msg *m;
    (void)state;

    parse_data(c, "instagram-text.json", &b, 1);
    m = b.msgs[0];
    assert_string_equal(m->channel, "instagram");
    assert_string_equal(m->idents[0].kind, "instagram:" IG);
    assert_string_equal(m->idents[0].value, IGSID);
    assert_string_equal(m->thread_key, IGSID "|" IG);
    assert_string_equal(m->text, "Hi, is the blue one in stock?");
    hark_batch_clear(&b);

    parse_data(c, "instagram-attachments.json", &b, 1);
    m = b.msgs[0];
    assert_int_equal(m->n_attachments, 3);
    assert_string_equal(m->attachments[1].content_type, "story_mention");
    assert_string_equal(thread_s(m, "story_id"), "17900000000000001");
    assert_string_equal(extra_s(m, "story_url"), "https://lookaside.fbsbx.com/story/1");
    hark_batch_clear(&b);

    parse_data(c, "instagram-echo.json", &b, 1);
    assert_int_equal(b.msgs[0]->direction, HARK_DIR_OUTBOUND);
    assert_string_equal(b.msgs[0]->idents[0].value, IGSID);
    hark_batch_clear(&b);

    parse_data(c, "instagram-read.json", &b, 1);
    assert_int_equal(b.msgs[0]->kind, HARK_KIND_STATUS);
    assert_string_equal(b.msgs[0]->status, "read");
    assert_string_equal(b.msgs[0]->provider_message_id, "ig_m_echo");
    hark_batch_clear(&b);

    parse_data(c, "instagram-deleted.json", &b, 1);
    assert_int_equal(b.msgs[0]->kind, HARK_KIND_REMOVE);
    assert_string_equal(b.msgs[0]->provider_message_id, "ig_m_att");
    hark_batch_clear(&b);

    parse_data(c, "instagram-comment.json", &b, 1);
    m = b.msgs[0];
    assert_string_equal(m->channel, "instagram");
    assert_string_equal(m->provider_message_id, "17865799348089039");
    assert_string_equal(m->from.handle, "cinder.hoover");
    assert_string_equal(m->thread_key, "post:17912345678901234|" IGSID);
    assert_string_equal(m->idents[0].kind, "instagram:" IG);
    assert_string_equal(m->text, "Love it! Price?");
    assert_int_equal(m->n_thread_refs, 0);
    assert_string_equal(thread_s(m, "parent_id"), "17865799348089000");
    assert_string_equal(m->own_ref, "17865799348089039");
    hark_batch_clear(&b);

    parse_data(c, "instagram-mention.json", &b, 1);
    m = b.msgs[0];
    assert_string_equal(m->provider_message_id, "17894227972186120");
    assert_string_equal(m->thread_key, "mention:17918195224117851");
    assert_string_equal(m->idents[0].kind, "instagram-mention:" IG);
    hark_batch_clear(&b);
    chan_free(c);
}

/* The documented samples in ../shared/vectors/payloads parse as expected. */
static void test_shared_samples(void **state)
{
    static const struct {
        const char *file;
        size_t n;
        const char *channel;
        int kind;
    } cases[] = {
        {"meta-messenger-envelope.composed.json", 1, "messenger", HARK_KIND_MESSAGE},
        {"instagram-message-text.composed.json", 1, "instagram", HARK_KIND_MESSAGE},
        {"facebook-page-feed-comment.composed.json", 1, "facebook_comment", HARK_KIND_MESSAGE},
        {"facebook-page-feed-post.json", 1, "facebook_comment", HARK_KIND_MESSAGE},
        {"whatsapp-text.json", 1, "whatsapp", HARK_KIND_MESSAGE},
        {"whatsapp-image.json", 1, "whatsapp", HARK_KIND_MESSAGE},
        {"whatsapp-status-sent.json", 1, "whatsapp", HARK_KIND_STATUS},
        {"whatsapp-status-failed.json", 1, "whatsapp", HARK_KIND_STATUS},
    };
    struct chan *c = chan_new(NULL);
    char dir[512];
    (void)state;

    snprintf(dir, sizeof(dir), "%s/payloads", harness_vectors_dir());
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hark_batch b = {0};
        size_t len;
        char *body = harness_read(dir, cases[i].file, &len);
        assert_int_equal(parse_body(c, body, len, &b), 200);
        if (b.n != cases[i].n) {
            fail_msg("%s: %zu records", cases[i].file, b.n);
        }
        assert_string_equal(b.msgs[0]->channel, cases[i].channel);
        assert_int_equal(b.msgs[0]->kind, cases[i].kind);
        assert_null(hark_msg_validate(b.msgs[0]));
        hark_batch_clear(&b);
        free(body);
    }
    chan_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_handshake_good),
        cmocka_unit_test(test_handshake_bad),
        cmocka_unit_test(test_signature_vectors),
        cmocka_unit_test(test_signature_bad),
        cmocka_unit_test(test_messenger_text_and_reply),
        cmocka_unit_test(test_messenger_attachments),
        cmocka_unit_test(test_messenger_echo_postback_referral),
        cmocka_unit_test(test_messenger_delivery_read_edit),
        cmocka_unit_test(test_messenger_batch),
        cmocka_unit_test(test_feed),
        cmocka_unit_test(test_instagram),
        cmocka_unit_test(test_shared_samples),
    };
    hark_alloc_init_json();
    return cmocka_run_group_tests_name("meta", tests, NULL, NULL);
}
