/*
 * Unit tests: X adapter (CRC, signatures, Account Activity parse, send).
 *
 * Official vectors and samples come from ../shared/vectors at run time;
 * the documented-shape payloads live in tests/data/x/.
 */
#include "harness.h"

#include <strings.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/conf.h"
#include "hark/msg.h"

extern const struct hark_adapter hark_adapter_x;

#define DATA_DIR "tests/data/x"
#define US "4337869213"
#define CUST "3001969357"

struct fake_req {
    struct hark_request req;
    const char *names[4];
    const char *values[4];
    size_t n;
};

static const char *fake_header(const struct hark_request *req, const char *name)
{
    const struct fake_req *f = (const struct fake_req *)req;

    for (size_t i = 0; i < f->n; i++) {
        if (strcasecmp(f->names[i], name) == 0) {
            return f->values[i];
        }
    }
    return NULL;
}

static void fake_init(struct fake_req *f, const char *method, const char *query,
                      const char *body, size_t len)
{
    memset(f, 0, sizeof(*f));
    f->req.method = method;
    f->req.path = "/hooks/x-main";
    f->req.query = query;
    f->req.body = (const unsigned char *)body;
    f->req.body_len = len;
    f->req.header = fake_header;
}

struct fixture {
    struct hark_section *sec;
    struct hark_channel ch;
};

static const char *const secret_keys[] = {"consumer_secret", "access_token", NULL};

static int fixture_open(struct fixture *fx, const char *text)
{
    char err[256];

    memset(fx, 0, sizeof(*fx));
    fx->sec = hark_section_from_text("channel.x-main", text, secret_keys);
    if (fx->sec == NULL) {
        return -1;
    }
    fx->ch.name = "x-main";
    fx->ch.adapter = &hark_adapter_x;
    fx->ch.section = fx->sec;
    return hark_adapter_x.init(&fx->ch, err, sizeof(err));
}

static void fixture_close(struct fixture *fx)
{
    hark_adapter_x.destroy(fx->ch.ctx);
    hark_section_free(fx->sec);
}

/* A channel with user_id configured (most tests). */
static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (fx == NULL || fixture_open(fx, "consumer_secret = s3cr3t\n"
                                       "access_token = tok-en.123\n"
                                       "api_url = http://127.0.0.1:9/x/\n"
                                       "user_id = " US "\n") < 0) {
        return -1;
    }
    *state = fx;
    return 0;
}

/* A channel that learns the account from for_user_id. */
static int setup_no_user(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (fx == NULL || fixture_open(fx, "consumer_secret = s3cr3t\n") < 0) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_close(*state);
    free(*state);
    return 0;
}

static int run_parse(struct fixture *fx, const char *body, size_t len, struct hark_batch *b,
                     int *status)
{
    struct fake_req f;
    struct hark_response resp = {0};
    int rc;

    fake_init(&f, "POST", NULL, body, len);
    rc = hark_adapter_x.parse(&fx->ch, &f.req, b, &resp);
    *status = resp.status;
    hark_response_clear(&resp);
    return rc;
}

static void parse_dir_file(struct fixture *fx, const char *dir, const char *name,
                           struct hark_batch *b)
{
    size_t len;
    char *body = harness_read(dir, name, &len);
    int status;

    assert_int_equal(run_parse(fx, body, len, b, &status), 0);
    assert_int_equal(status, 200);
    free(body);
}

static void parse_file(struct fixture *fx, const char *name, struct hark_batch *b)
{
    parse_dir_file(fx, DATA_DIR, name, b);
}

static void parse_shared(struct fixture *fx, const char *name, struct hark_batch *b)
{
    char dir[512];

    snprintf(dir, sizeof(dir), "%s/payloads", harness_vectors_dir());
    parse_dir_file(fx, dir, name, b);
}

static const char *thread_str(const struct hark_msg *m, const char *key)
{
    return json_string_value(json_object_get(m->thread, key));
}

static void test_init_checks(void **state)
{
    struct fixture fx;
    (void)state;

    assert_int_equal(fixture_open(&fx, "consumer_secret = a\nuser_id = @brand\n"), -1);
    fixture_close(&fx);
    assert_int_equal(fixture_open(&fx, "consumer_secret = a\napi_url = api.twitter.com\n"), -1);
    fixture_close(&fx);
    assert_int_equal(fixture_open(&fx, "access_token = a\n"), -1);
    fixture_close(&fx);
    assert_int_equal(fixture_open(&fx, "consumer_secret = a\n"), 0);
    fixture_close(&fx);
}

/* A channel whose consumer_secret is the vector's. */
static void vector_fixture(struct fixture *fx, json_t *vec)
{
    char conf[512];

    snprintf(conf, sizeof(conf), "consumer_secret = %s\n",
             json_string_value(json_object_get(vec, "secret")));
    assert_int_equal(fixture_open(fx, conf), 0);
}

static void test_crc_vector(void **state)
{
    json_t *all = harness_signature_vectors();
    json_t *vec = harness_find_vector(all, "x", "CRC");
    struct fixture fx;
    struct fake_req f;
    struct hark_response resp = {0};
    char query[512], dir[512];
    json_t *got, *want;
    json_error_t jerr;
    char *text;
    size_t len;
    (void)state;

    vector_fixture(&fx, vec);
    snprintf(query, sizeof(query), "crc_token=%s&nonce=1",
             json_string_value(json_object_get(vec, "signed_input")));
    fake_init(&f, "GET", query, "", 0);
    assert_int_equal(hark_adapter_x.verify(&fx.ch, &f.req, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.content_type, "application/json");
    got = json_loadb(resp.body, resp.body_len, 0, &jerr);
    assert_non_null(got);
    assert_string_equal(json_string_value(json_object_get(got, "response_token")),
                        json_string_value(json_object_get(vec, "expected_header_value")));
    /* The documented answer body has the same shape and value. */
    snprintf(dir, sizeof(dir), "%s/payloads", harness_vectors_dir());
    text = harness_read(dir, "x-crc-response.json", &len);
    want = json_loadb(text, len, 0, &jerr);
    free(text);
    assert_true(json_equal(got, want));
    json_decref(want);
    json_decref(got);
    hark_response_clear(&resp);
    fixture_close(&fx);
    json_decref(all);
}

static void test_crc_bad(void **state)
{
    struct fixture *fx = *state;
    struct fake_req f;
    struct hark_response resp = {0};
    char query[400];
    const char *queries[] = {NULL, "", "foo=bar", "crc_token=", "crc_token=%zz", query};

    memcpy(query, "crc_token=", 10);
    memset(query + 10, 'a', 300);
    query[310] = '\0';
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        fake_init(&f, "GET", queries[i], "", 0);
        assert_int_equal(hark_adapter_x.verify(&fx->ch, &f.req, &resp), HARK_ANSWERED);
        assert_int_equal(resp.status, 400);
    }
    /* 256 bytes is still answered. */
    query[10 + 256] = '\0';
    fake_init(&f, "GET", query, "", 0);
    assert_int_equal(hark_adapter_x.verify(&fx->ch, &f.req, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 200);
    hark_response_clear(&resp);
}

static void test_post_signature(void **state)
{
    json_t *all = harness_signature_vectors();
    json_t *vec = harness_find_vector(all, "x", "POST body");
    const char *body = json_string_value(json_object_get(vec, "signed_input"));
    const char *sig = json_string_value(json_object_get(vec, "expected_header_value"));
    struct fixture fx;
    struct fake_req f;
    struct hark_response resp = {0};
    char wrong[128];
    (void)state;

    vector_fixture(&fx, vec);
    fake_init(&f, "POST", NULL, body, strlen(body));
    f.names[0] = "X-Twitter-Webhooks-Signature";
    f.values[0] = sig;
    f.n = 1;
    assert_int_equal(hark_adapter_x.verify(&fx.ch, &f.req, &resp), HARK_VERIFIED);

    /* One flipped character. */
    snprintf(wrong, sizeof(wrong), "%s", sig);
    wrong[10] = wrong[10] == 'A' ? 'B' : 'A';
    f.values[0] = wrong;
    assert_int_equal(hark_adapter_x.verify(&fx.ch, &f.req, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 403);
    /* The digest without its "sha256=" prefix. */
    f.values[0] = sig + 7;
    assert_int_equal(hark_adapter_x.verify(&fx.ch, &f.req, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 403);
    /* The right signature over another body. */
    f.values[0] = sig;
    f.req.body_len = strlen(body) - 1;
    assert_int_equal(hark_adapter_x.verify(&fx.ch, &f.req, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 403);
    /* No header at all. */
    f.req.body_len = strlen(body);
    f.n = 0;
    assert_int_equal(hark_adapter_x.verify(&fx.ch, &f.req, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 403);
    /* Another method. */
    f.req.method = "PUT";
    assert_int_equal(hark_adapter_x.verify(&fx.ch, &f.req, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 405);
    hark_response_clear(&resp);
    fixture_close(&fx);
    json_decref(all);
}

static void test_shared_dm(void **state)
{
    struct fixture *fx = *state;
    struct hark_batch b = {0};
    const struct hark_msg *m;

    parse_shared(fx, "x-dm-event.corrected.composed.json", &b);
    assert_int_equal(b.n, 1);
    m = b.msgs[0];
    assert_int_equal(m->kind, HARK_KIND_MESSAGE);
    assert_string_equal(m->channel, "x_dm");
    assert_string_equal(m->provider, "x");
    assert_string_equal(m->account, "x-main");
    assert_int_equal(m->direction, HARK_DIR_INBOUND);
    assert_string_equal(m->provider_message_id, "954491830116155396");
    assert_string_equal(m->from.id, CUST);
    assert_string_equal(m->from.name, "Jordan Brinks");
    assert_string_equal(m->from.handle, "furiouscamper");
    assert_string_equal(m->to.id, US);
    assert_string_equal(m->text, "Hello World!");
    assert_int_equal(m->sent_at, 1516403560557LL);
    assert_string_equal(m->idents[0].kind, "x");
    assert_string_equal(m->idents[0].value, CUST);
    assert_string_equal(m->thread_key, CUST);
    assert_null(hark_msg_validate(m));

    /* The page's sample nests users inside apps: names are simply unknown. */
    parse_shared(fx, "x-dm-event.json", &b);
    assert_int_equal(b.n, 2);
    assert_string_equal(b.msgs[1]->provider_message_id, "954491830116155396");
    assert_null(b.msgs[1]->from.name);
    hark_batch_clear(&b);
}

static void test_shared_mark_read(void **state)
{
    struct fixture *fx = *state;
    struct hark_batch b = {0};
    const struct hark_msg *m;

    parse_shared(fx, "x-dm-mark-read-event.json", &b);
    assert_int_equal(b.n, 1);
    m = b.msgs[0];
    assert_int_equal(m->kind, HARK_KIND_STATUS);
    assert_string_equal(m->channel, "x_dm");
    assert_string_equal(m->status, "read");
    assert_string_equal(m->provider_message_id, "963085315333238788");
    assert_string_equal(m->idents[0].value, "199566737");
    assert_string_equal(m->from.name, "Le Braat");
    assert_int_equal(m->sent_at, 1518452444662LL);
    assert_string_equal(json_string_value(json_object_get(m->extra, "event_id")),
                        "read:199566737:1518452444662");
    hark_batch_clear(&b);
}

static void test_dm_directions(void **state)
{
    struct fixture *fx = *state;
    struct hark_batch b = {0};
    const struct hark_msg *m;

    parse_file(fx, "dm-inbound.json", &b);
    parse_file(fx, "dm-outbound.json", &b);
    assert_int_equal(b.n, 2);
    m = b.msgs[0];
    assert_int_equal(m->direction, HARK_DIR_INBOUND);
    assert_string_equal(m->text, "My order #123 is late ¿dónde está?");
    assert_string_equal(m->thread_key, CUST);
    m = b.msgs[1];
    assert_int_equal(m->direction, HARK_DIR_OUTBOUND);
    assert_string_equal(m->from.id, US);
    assert_string_equal(m->from.handle, "Harris_0ff");
    assert_string_equal(m->to.id, CUST);
    assert_string_equal(m->idents[0].value, CUST);
    /* Both directions land in one conversation. */
    assert_string_equal(m->thread_key, b.msgs[0]->thread_key);
    assert_string_equal(m->provider_message_id, "1100000000000000002");
    hark_batch_clear(&b);
}

static void test_dm_media(void **state)
{
    struct fixture *fx = *state;
    struct hark_batch b = {0};
    const struct hark_msg *m;

    parse_file(fx, "dm-media.json", &b);
    assert_int_equal(b.n, 1);
    m = b.msgs[0];
    assert_string_equal(m->text, "See the damage");
    assert_int_equal(m->n_attachments, 1);
    assert_string_equal(m->attachments[0].url,
                        "https://ton.twitter.com/1.1/ton/data/dm/1100000000000000003/"
                        "1100000000000000900/abc.png");
    assert_string_equal(m->attachments[0].content_type, "image/png");
    assert_string_equal(m->attachments[0].file_id, "1100000000000000900");
    hark_batch_clear(&b);
}

static void test_mentions(void **state)
{
    struct fixture *fx = *state;
    struct hark_batch b = {0};
    const struct hark_msg *m;

    parse_file(fx, "tweet-mention.json", &b);
    parse_file(fx, "tweet-own-reply.json", &b);
    parse_file(fx, "tweet-reply-to-us.json", &b);
    assert_int_equal(b.n, 3);

    m = b.msgs[0];
    assert_string_equal(m->channel, "x_mention");
    assert_int_equal(m->direction, HARK_DIR_INBOUND);
    assert_string_equal(m->provider_message_id, "1200000000000000001");
    assert_string_equal(m->text, "@Harris_0ff my package never arrived");
    assert_string_equal(m->from.handle, "furiouscamper");
    assert_string_equal(m->to.id, US);
    assert_string_equal(m->idents[0].value, CUST);
    assert_string_equal(m->thread_key, "tweet:1200000000000000001|" CUST);
    assert_string_equal(m->own_ref, "tweet:1200000000000000001");
    assert_int_equal(m->n_thread_refs, 0);
    assert_int_equal(m->sent_at, 1700000000000LL);
    assert_string_equal(thread_str(m, "tweet_id"), "1200000000000000001");

    /* Our reply: outbound, the customer is the one we answer, same key. */
    m = b.msgs[1];
    assert_int_equal(m->direction, HARK_DIR_OUTBOUND);
    assert_string_equal(m->idents[0].value, CUST);
    assert_string_equal(m->from.id, US);
    assert_string_equal(m->to.id, CUST);
    assert_string_equal(m->thread_key, b.msgs[0]->thread_key);
    assert_string_equal(m->thread_refs[0], "tweet:1200000000000000001");

    /* A reply to our tweet without an @mention entity still counts. */
    m = b.msgs[2];
    assert_int_equal(m->direction, HARK_DIR_INBOUND);
    assert_string_equal(m->thread_key, "tweet:1200000000000000002|" CUST);
    assert_int_equal(m->n_thread_refs, 1);
    assert_string_equal(m->thread_refs[0], "tweet:1200000000000000002");
    assert_string_equal(thread_str(m, "in_reply_to_status_id"), "1200000000000000002");
    hark_batch_clear(&b);
}

static void test_extended_video(void **state)
{
    struct fixture *fx = *state;
    struct hark_batch b = {0};
    const struct hark_msg *m;

    parse_file(fx, "tweet-extended-video.json", &b);
    assert_int_equal(b.n, 1);
    m = b.msgs[0];
    assert_non_null(strstr(m->text, "this is a long complaint"));
    assert_null(strstr(m->text, "t.co"));
    assert_int_equal(strlen(m->text), 12 + 6 * 41 - 1);
    assert_int_equal(m->n_attachments, 1);
    assert_string_equal(m->attachments[0].url,
                        "https://video.twimg.com/ext_tw_video/1/pu/vid/1280x720/high.mp4");
    assert_string_equal(m->attachments[0].content_type, "video/mp4");
    /* No timestamp_ms: created_at "Tue Nov 14 22:13:20 +0000 2023". */
    assert_int_equal(m->sent_at, 1700000000000LL);
    hark_batch_clear(&b);
}

static void test_delete_and_multi(void **state)
{
    struct fixture *fx = *state;
    struct hark_batch b = {0};

    parse_file(fx, "tweet-delete.json", &b);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.msgs[0]->kind, HARK_KIND_REMOVE);
    assert_string_equal(b.msgs[0]->channel, "x_mention");
    assert_string_equal(b.msgs[0]->provider_message_id, "1200000000000000001");
    assert_string_equal(b.msgs[0]->idents[0].value, CUST);
    hark_batch_clear(&b);

    parse_file(fx, "multi.json", &b);
    assert_int_equal(b.n, 3);
    assert_string_equal(b.msgs[0]->text, "one");
    assert_string_equal(b.msgs[1]->text, "two");
    assert_string_equal(b.msgs[2]->channel, "x_mention");
    hark_batch_clear(&b);
}

static void test_skipped(void **state)
{
    static const char *const files[] = {
        "tweet-own.json", "tweet-retweet.json", "tweet-unrelated.json", "dm-typing.json",
        "favorite.json", "follow.json", "dm-mark-read-by-us.json", "other-account.json",
    };
    struct fixture *fx = *state;
    struct hark_batch b = {0};

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        parse_file(fx, files[i], &b);
        assert_int_equal(b.n, 0);
    }
}

static void test_redelivery(void **state)
{
    struct fixture *fx = *state;
    struct hark_batch b = {0};
    char id1[HARK_MSG_ID_LEN + 1], id2[HARK_MSG_ID_LEN + 1];

    parse_file(fx, "tweet-mention.json", &b);
    parse_file(fx, "tweet-mention.json", &b);
    assert_int_equal(b.n, 2);
    assert_string_equal(b.msgs[0]->provider_message_id, b.msgs[1]->provider_message_id);
    hark_msg_id(b.msgs[0], id1);
    hark_msg_id(b.msgs[1], id2);
    assert_string_equal(id1, id2);
    hark_batch_clear(&b);
}

static void test_hostile(void **state)
{
    static const char *const bodies[] = {
        "",
        "[]",
        "{}",
        "garbage",
        "{\"for_user_id\":4337869213}",
        "{\"for_user_id\":\"abc\"}",
        "{\"for_user_id\":\"" US "\",\"direct_message_events\":{}}",
        "{\"for_user_id\":\"" US "\",\"direct_message_events\":[1]}",
        "{\"for_user_id\":\"" US "\",\"direct_message_events\":[{}]}",
        "{\"for_user_id\":\"" US "\",\"direct_message_events\":[{\"type\":\"message_create\"}]}",
        "{\"for_user_id\":\"" US "\",\"direct_message_events\":[{\"type\":\"message_create\",\"id\":\"1\",\"message_create\":{\"sender_id\":\"x\",\"target\":{\"recipient_id\":\"2\"},\"message_data\":{}}}]}",
        "{\"for_user_id\":\"" US "\",\"direct_message_events\":[{\"type\":\"message_create\",\"id\":\"1\",\"message_create\":{\"sender_id\":\"3\",\"target\":{\"recipient_id\":\"2\"},\"message_data\":{\"text\":5}}}]}",
        "{\"for_user_id\":\"" US "\",\"direct_message_events\":[{\"type\":\"message_create\",\"id\":\"1\",\"message_create\":{\"sender_id\":\"3\",\"target\":{\"recipient_id\":\"2\"},\"message_data\":{\"text\":\"a\",\"attachment\":{\"media\":7}}}}]}",
        "{\"for_user_id\":\"" US "\",\"direct_message_events\":[{\"type\":\"message_create\",\"id\":\"123456789012345678901\",\"message_create\":{\"sender_id\":\"3\",\"target\":{\"recipient_id\":\"2\"},\"message_data\":{\"text\":\"a\"}}}]}",
        "{\"for_user_id\":\"" US "\",\"tweet_create_events\":[{\"id_str\":\"1\"}]}",
        "{\"for_user_id\":\"" US "\",\"tweet_create_events\":[{\"id_str\":\"1\",\"user\":{\"id_str\":\"2\"},\"entities\":{\"user_mentions\":{}}}]}",
        "{\"for_user_id\":\"" US "\",\"tweet_create_events\":[{\"id_str\":\"1\",\"user\":{\"id_str\":\"2\"},\"in_reply_to_status_id_str\":5}]}",
        "{\"for_user_id\":\"" US "\",\"tweet_create_events\":[{\"id_str\":\"1\",\"user\":{\"id_str\":\"2\",\"name\":[]},\"in_reply_to_user_id_str\":\"" US "\"}]}",
        "{\"for_user_id\":\"" US "\",\"tweet_create_events\":[{\"id_str\":\"1\",\"user\":{\"id_str\":\"2\"},\"in_reply_to_user_id_str\":\"" US "\",\"extended_entities\":{\"media\":[{\"id_str\":\"9\",\"type\":\"video\"}]}}]}",
        "{\"for_user_id\":\"" US "\",\"direct_message_mark_read_events\":[{\"sender_id\":\"2\"}]}",
        "{\"for_user_id\":\"" US "\",\"tweet_delete_events\":[{\"status\":{\"id\":1,\"user_id\":\"2\"}}]}",
        "{\"for_user_id\":\"" US "\",\"for_user_id\":\"1\"}",
        "{\"for_user_id\":\"" US "\",\"direct_message_events\":[{\"type\":\"message_create\",\"id\":\"1\",\"message_create\":{\"sender_id\":\"3\",\"target\":{\"recipient_id\":\"2\"},\"message_data\":{\"text\":\"\xed\xa0\x80\"}}}]}",
        "{\"for_user_id\":\"" US "\",\"direct_message_events\":[{\"type\":\"message_create\",\"id\":\"1\",\"message_create\":{\"sender_id\":\"3\",\"target\":{\"recipient_id\":\"2\"},\"message_data\":{\"text\":\"\\u0000\"}}}]}",
        "{\"for_user_id\":\"" US "\",\"direct_message_events\":[{\"type\":\"message_cre",
    };
    struct fixture *fx = *state;
    struct hark_batch b = {0};
    int status;
    size_t cap = 200000, len;
    char *s;

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        int rc = run_parse(fx, bodies[i], strlen(bodies[i]), &b, &status);
        if (rc != -1 || status != 400 || b.n != 0) {
            fail_msg("hostile body %zu accepted: %s", i, bodies[i]);
        }
    }
    /* Deep nesting. */
    s = malloc(cap);
    len = (size_t)snprintf(s, cap, "{\"for_user_id\":\"" US "\",\"x\":");
    for (int i = 0; i < 100; i++) {
        s[len++] = '[';
    }
    for (int i = 0; i < 100; i++) {
        s[len++] = ']';
    }
    s[len++] = '}';
    assert_int_equal(run_parse(fx, s, len, &b, &status), -1);
    assert_int_equal(status, 400);
    /* Too many events: nothing stored, even the valid ones before the bound. */
    len = (size_t)snprintf(s, cap, "{\"for_user_id\":\"" US "\",\"direct_message_events\":[");
    for (int i = 0; i < 150; i++) {
        len += (size_t)snprintf(s + len, cap - len,
                                "%s{\"type\":\"message_create\",\"id\":\"%d\",\"message_create\":"
                                "{\"sender_id\":\"5\",\"target\":{\"recipient_id\":\"" US "\"},"
                                "\"message_data\":{\"text\":\"hi\"}}}",
                                i ? "," : "", i + 1);
    }
    len += (size_t)snprintf(s + len, cap - len, "]}");
    assert_int_equal(run_parse(fx, s, len, &b, &status), -1);
    assert_int_equal(status, 400);
    assert_int_equal(b.n, 0);
    free(s);
    /* A truncated documented payload. */
    {
        char *body = harness_read(DATA_DIR, "multi.json", &len);
        assert_int_equal(run_parse(fx, body, len - 3, &b, &status), -1);
        assert_int_equal(status, 400);
        free(body);
    }
    assert_int_equal(b.n, 0);
}

static void test_no_user_id(void **state)
{
    struct fixture *fx = *state;
    struct hark_batch b = {0};
    int status;
    const char *body = "{\"direct_message_events\":[]}";

    /* Without user_id, for_user_id names the account; missing it is a 400. */
    assert_int_equal(run_parse(fx, body, strlen(body), &b, &status), -1);
    assert_int_equal(status, 400);
    parse_file(fx, "other-account.json", &b);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.msgs[0]->direction, HARK_DIR_INBOUND);
    assert_string_equal(b.msgs[0]->idents[0].value, "5");
    hark_batch_clear(&b);
    parse_file(fx, "dm-outbound.json", &b);
    assert_int_equal(b.msgs[0]->direction, HARK_DIR_OUTBOUND);
    hark_batch_clear(&b);
}

static size_t json_allocs;

static void *counting_malloc(size_t n)
{
    json_allocs++;
    return hark_malloc(n);
}

/* Allocations jansson's json_loadb makes (see test_telegram.c: not injected). */
static long json_load_allocs(const char *body, size_t len)
{
    json_error_t err;
    json_t *root;

    json_allocs = 0;
    json_set_alloc_funcs(counting_malloc, hark_free);
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    json_decref(root);
    hark_alloc_init_json();
    return (long)json_allocs;
}

static void test_alloc_failures(void **state)
{
    static const char *const files[] = {"multi.json", "dm-media.json",
                                        "tweet-extended-video.json", "tweet-own-reply.json"};
    struct fixture *fx = *state;

    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        size_t len;
        char *body = harness_read(DATA_DIR, files[f], &len);
        long first = json_load_allocs(body, len);
        int succeeded = 0;
        for (long n = first; n < first + 400; n++) {
            struct hark_batch b = {0};
            int status, rc;
            hark_alloc_fail_after(n, 0);
            rc = run_parse(fx, body, len, &b, &status);
            hark_alloc_fail_after(-1, 0);
            if (rc < 0) {
                assert_int_equal(b.n, 0);
                assert_true(status == 400 || status == 500);
            } else {
                assert_true(b.n >= 1);
                for (size_t i = 0; i < b.n; i++) {
                    assert_null(hark_msg_validate(b.msgs[i]));
                }
                succeeded = 1;
            }
            hark_batch_clear(&b);
        }
        assert_true(succeeded);
        free(body);
    }
}

static void test_build_send(void **state)
{
    struct fixture *fx = *state;
    struct hark_outbound ob;
    struct hark_http_call call;
    char err[256], dir[512];
    json_t *body, *want;
    json_error_t jerr;
    char *text;
    size_t len;

    memset(&ob, 0, sizeof(ob));
    ob.channel = "x_dm";
    ob.to = CUST;
    ob.text = "Hello!";
    assert_int_equal(hark_adapter_x.build_send(&fx->ch, &ob, &call, err, sizeof(err)), 0);
    assert_string_equal(call.method, "POST");
    assert_string_equal(call.url, "http://127.0.0.1:9/x/2/dm_conversations/with/" CUST "/messages");
    assert_string_equal(call.bearer, "tok-en.123");
    snprintf(dir, sizeof(dir), "%s/payloads", harness_vectors_dir());
    text = harness_read(dir, "x-dm-send-v2-request.json", &len);
    want = json_loadb(text, len, 0, &jerr);
    free(text);
    body = json_loadb(call.body, call.body_len, 0, &jerr);
    assert_true(json_equal(body, want));
    json_decref(body);
    json_decref(want);
    hark_http_call_clear(&call);

    ob.channel = "x_mention";
    ob.thread_ref = "1200000000000000001";
    ob.text = "@furiouscamper sorry";
    assert_int_equal(hark_adapter_x.build_send(&fx->ch, &ob, &call, err, sizeof(err)), 0);
    assert_string_equal(call.url, "http://127.0.0.1:9/x/2/tweets");
    body = json_loadb(call.body, call.body_len, 0, &jerr);
    assert_string_equal(json_string_value(json_object_get(body, "text")), "@furiouscamper sorry");
    assert_string_equal(json_string_value(json_object_get(json_object_get(body, "reply"),
                                                          "in_reply_to_tweet_id")),
                        "1200000000000000001");
    json_decref(body);
    hark_http_call_clear(&call);

    /* Refusals: no tweet to answer, a recipient that is not an id, empty text. */
    ob.thread_ref = NULL;
    assert_int_equal(hark_adapter_x.build_send(&fx->ch, &ob, &call, err, sizeof(err)), -1);
    ob.channel = "x_dm";
    ob.to = "../../2/tweets";
    assert_int_equal(hark_adapter_x.build_send(&fx->ch, &ob, &call, err, sizeof(err)), -1);
    ob.to = CUST;
    ob.text = "";
    assert_int_equal(hark_adapter_x.build_send(&fx->ch, &ob, &call, err, sizeof(err)), -1);
}

static void test_send_without_token(void **state)
{
    struct fixture *fx = *state;
    struct hark_outbound ob;
    struct hark_http_call call;
    char err[256];

    memset(&ob, 0, sizeof(ob));
    ob.channel = "x_dm";
    ob.to = CUST;
    ob.text = "hi";
    assert_int_equal(hark_adapter_x.build_send(&fx->ch, &ob, &call, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "access_token"));
}

static void test_read_send(void **state)
{
    struct fixture *fx = *state;
    char err[256];
    char *pmid = NULL;
    size_t len;
    char *body;
    const struct hark_adapter *a = &hark_adapter_x;

    body = harness_read(DATA_DIR, "send-dm-ok.json", &len);
    assert_int_equal(a->read_send(&fx->ch, 201, body, len, &pmid, err, sizeof(err)), HARK_SEND_OK);
    assert_string_equal(pmid, "1100000000000000007");
    hark_free(pmid);
    free(body);
    body = harness_read(DATA_DIR, "send-tweet-ok.json", &len);
    assert_int_equal(a->read_send(&fx->ch, 201, body, len, &pmid, err, sizeof(err)), HARK_SEND_OK);
    assert_string_equal(pmid, "1200000000000000030");
    hark_free(pmid);
    free(body);
    body = harness_read(DATA_DIR, "send-429.json", &len);
    assert_int_equal(a->read_send(&fx->ch, 429, body, len, &pmid, err, sizeof(err)),
                     HARK_SEND_RETRY);
    assert_null(pmid);
    free(body);
    body = harness_read(DATA_DIR, "send-403.json", &len);
    assert_int_equal(a->read_send(&fx->ch, 403, body, len, &pmid, err, sizeof(err)),
                     HARK_SEND_FAIL);
    assert_non_null(strstr(err, "not permitted to send"));
    free(body);
    assert_int_equal(a->read_send(&fx->ch, 503, NULL, 0, &pmid, err, sizeof(err)),
                     HARK_SEND_RETRY);
    assert_int_equal(a->read_send(&fx->ch, 200, "{}", 2, &pmid, err, sizeof(err)), HARK_SEND_OK);
    assert_null(pmid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_checks),
        cmocka_unit_test(test_crc_vector),
        cmocka_unit_test_setup_teardown(test_crc_bad, setup, teardown),
        cmocka_unit_test(test_post_signature),
        cmocka_unit_test_setup_teardown(test_shared_dm, setup_no_user, teardown),
        cmocka_unit_test_setup_teardown(test_shared_mark_read, setup_no_user, teardown),
        cmocka_unit_test_setup_teardown(test_dm_directions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dm_media, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mentions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extended_video, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_and_multi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redelivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_user_id, setup_no_user, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_send, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_without_token, setup_no_user, teardown),
        cmocka_unit_test_setup_teardown(test_read_send, setup, teardown),
    };

    hark_alloc_init_json();
    return cmocka_run_group_tests_name("x", tests, NULL, NULL);
}
