/*
 * Unit tests of the meta adapter, part 2: WhatsApp Cloud payloads, hostile
 * bodies, allocation failures, reply requests and reading Meta's answers.
 */
#include "harness.h"

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/conf.h"
#include "hark/msg.h"
#include "hark/text.h"

extern const struct hark_adapter hark_adapter_meta;

#define PNID "106540352242922"

static const char *const secret_keys[] = {"app_secret", "verify_token", "access_token", NULL};

struct chan {
    struct hark_section *sec;
    struct hark_channel ch;
};

static struct chan *chan_new(const char *conf)
{
    struct chan *c = calloc(1, sizeof(*c));
    char err[128] = "";

    assert_non_null(c);
    c->sec = hark_section_from_text("channel.wa-main", conf, secret_keys);
    assert_non_null(c->sec);
    c->ch.name = "wa-main";
    c->ch.adapter = &hark_adapter_meta;
    c->ch.section = c->sec;
    assert_int_equal(hark_adapter_meta.init(&c->ch, err, sizeof(err)), 0);
    return c;
}

static struct chan *chan_default(void)
{
    return chan_new("app_secret = s3cret\nverify_token = tok\naccess_token = EAAtoken\n"
                    "api_url = http://127.0.0.1:9/v19.0/\n");
}

static void chan_free(struct chan *c)
{
    hark_adapter_meta.destroy(c->ch.ctx);
    hark_section_free(c->sec);
    free(c);
}

/* Parse body: the status (200 on success); on failure the batch stays empty. */
static int parse_body(struct chan *c, const char *body, size_t len, struct hark_batch *b)
{
    struct hark_request r = {0};
    struct hark_response resp = {0};
    int rc, status;

    r.method = "POST";
    r.body = (const unsigned char *)body;
    r.body_len = len;
    rc = hark_adapter_meta.parse(&c->ch, &r, b, &resp);
    status = resp.status;
    if (rc == 0) {
        assert_int_equal(status, 200);
        assert_string_equal(resp.body, "EVENT_RECEIVED");
    } else {
        assert_int_equal(rc, -1);
        assert_int_equal(b->n, 0);
        assert_true(status >= 400);
        assert_true(resp.reason[0] != '\0');
    }
    hark_response_clear(&resp);
    return status;
}

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
        assert_string_equal(b->msgs[i]->channel, "whatsapp");
        assert_string_equal(b->msgs[i]->account, "wa-main");
    }
}

static const char *extra_s(const struct hark_msg *m, const char *key)
{
    return json_string_value(json_object_get(m->extra, key));
}

static void test_wa_text_profile(void **state)
{
    struct chan *c = chan_default();
    struct hark_batch b = {0};
    struct hark_msg *m;
    (void)state;

    parse_data(c, "whatsapp-text.json", &b, 1);
    m = b.msgs[0];
    assert_int_equal(m->kind, HARK_KIND_MESSAGE);
    assert_int_equal(m->direction, HARK_DIR_INBOUND);
    assert_string_equal(m->idents[0].kind, "phone");
    assert_string_equal(m->idents[0].value, "+16505551234");
    assert_string_equal(m->from.id, "+16505551234");
    assert_string_equal(m->from.name, "Sheena Nelson");
    assert_string_equal(m->to.id, PNID);
    assert_string_equal(m->to.handle, "+15550783881");
    assert_string_equal(m->thread_key, "+16505551234|" PNID);
    assert_string_equal(m->provider_message_id, "wamid.TEXT1");
    assert_string_equal(m->text, "Does it come in another color?");
    assert_int_equal(m->sent_at, 1749416383000LL);
    hark_batch_clear(&b);
    chan_free(c);
}

static void test_wa_media(void **state)
{
    struct chan *c = chan_default();
    struct hark_batch b = {0};
    struct hark_msg *m;
    (void)state;

    parse_data(c, "whatsapp-media.json", &b, 5);
    m = b.msgs[0];
    assert_string_equal(m->text, "Taj Mahal");
    assert_string_equal(m->attachments[0].content_type, "image/jpeg");
    assert_string_equal(m->attachments[0].file_id, "1003383421387256");
    assert_non_null(strstr(m->attachments[0].url, "lookaside.fbsbx.com"));
    assert_string_equal(extra_s(m, "sha256"), "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=");
    assert_string_equal(extra_s(m, "type"), "image");
    m = b.msgs[1];
    assert_null(m->text);
    assert_string_equal(m->attachments[0].content_type, "audio/ogg; codecs=opus");
    assert_null(m->attachments[0].url);
    assert_true(json_is_true(json_object_get(m->extra, "voice")));
    assert_string_equal(b.msgs[2]->attachments[0].content_type, "video/mp4");
    assert_string_equal(b.msgs[2]->text, "unboxing");
    m = b.msgs[3];
    assert_string_equal(m->attachments[0].filename, "invoice-42.pdf");
    assert_string_equal(m->attachments[0].content_type, "application/pdf");
    assert_string_equal(m->text, "my invoice");
    assert_string_equal(b.msgs[4]->attachments[0].content_type, "image/webp");
    assert_string_equal(b.msgs[4]->attachments[0].file_id, "5003383421387256");
    hark_batch_clear(&b);
    chan_free(c);
}

static void test_wa_location_contacts(void **state)
{
    struct chan *c = chan_default();
    struct hark_batch b = {0};
    struct hark_msg *m;
    (void)state;

    parse_data(c, "whatsapp-location.json", &b, 1);
    m = b.msgs[0];
    assert_string_equal(m->attachments[0].url, "geo:37.483307,-122.148981");
    assert_string_equal(m->attachments[0].content_type, "location");
    assert_string_equal(m->attachments[0].filename, "Meta Headquarters");
    assert_string_equal(json_string_value(json_object_get(json_object_get(m->extra, "location"),
                                                          "address")),
                        "1 Hacker Way, Menlo Park, CA 94025");
    hark_batch_clear(&b);

    parse_data(c, "whatsapp-contacts.json", &b, 1);
    m = b.msgs[0];
    assert_string_equal(m->text, "Barbara J. Johnson: +1 (940) 555-1234, +1 (650) 555-1234");
    assert_true(json_is_array(json_object_get(m->extra, "contacts")));
    hark_batch_clear(&b);
    chan_free(c);
}

static void test_wa_interactive_button_reaction(void **state)
{
    struct chan *c = chan_default();
    struct hark_batch b = {0};
    struct hark_msg *m;
    (void)state;

    parse_data(c, "whatsapp-interactive.json", &b, 2);
    m = b.msgs[0];
    assert_string_equal(m->text, "Change");
    assert_string_equal(extra_s(m, "interactive_id"), "change-button");
    assert_string_equal(extra_s(m, "interactive_type"), "button_reply");
    assert_string_equal(json_string_value(json_object_get(m->thread, "reply_to")), "wamid.ORIG1");
    m = b.msgs[1];
    assert_string_equal(m->text, "Express Shipping");
    assert_string_equal(extra_s(m, "interactive_id"), "priority_express");
    assert_string_equal(extra_s(m, "interactive_description"), "Next Day to 2 Days");
    hark_batch_clear(&b);

    parse_data(c, "whatsapp-button.json", &b, 1);
    assert_string_equal(b.msgs[0]->text, "Unsubscribe from Promos");
    assert_string_equal(extra_s(b.msgs[0], "button_payload"), "Unsubscribe from Promos");
    hark_batch_clear(&b);

    parse_data(c, "whatsapp-reaction.json", &b, 1);
    m = b.msgs[0];
    assert_string_equal(m->text, "\xf0\x9f\x91\x8d");
    assert_string_equal(extra_s(m, "reaction_to"), "wamid.ORIG3");
    assert_string_equal(extra_s(m, "type"), "reaction");
    hark_batch_clear(&b);
    chan_free(c);
}

static void test_wa_order_system_unsupported(void **state)
{
    struct chan *c = chan_default();
    struct hark_batch b = {0};
    struct hark_msg *m;
    (void)state;

    parse_data(c, "whatsapp-order.json", &b, 1);
    assert_string_equal(b.msgs[0]->text, "Please deliver before Friday");
    assert_true(json_is_object(json_object_get(b.msgs[0]->extra, "order")));
    hark_batch_clear(&b);

    parse_data(c, "whatsapp-system.json", &b, 1);
    m = b.msgs[0];
    assert_string_equal(m->text, "User A changed from 16505551234 to 16505559999");
    assert_null(m->from.name);          /* no contacts[] in a system message */
    hark_batch_clear(&b);

    parse_data(c, "whatsapp-unsupported.json", &b, 1);
    m = b.msgs[0];
    assert_null(m->text);
    assert_true(json_is_true(json_object_get(m->extra, "unsupported")));
    assert_true(json_is_array(json_object_get(m->extra, "errors")));
    hark_batch_clear(&b);
    chan_free(c);
}

static void test_wa_statuses(void **state)
{
    static const char *const expect[] = {"sent", "delivered", "read", "failed"};
    struct chan *c = chan_default();
    struct hark_batch b = {0};
    struct hark_msg *m;
    (void)state;

    parse_data(c, "whatsapp-statuses.json", &b, 4);     /* "deleted" skipped */
    for (size_t i = 0; i < 4; i++) {
        m = b.msgs[i];
        assert_int_equal(m->kind, HARK_KIND_STATUS);
        assert_string_equal(m->status, expect[i]);
        assert_string_equal(m->idents[0].value, "+16505551234");
        assert_string_equal(m->thread_key, "+16505551234|" PNID);
        assert_int_equal(m->direction, HARK_DIR_OUTBOUND);
    }
    assert_string_equal(b.msgs[0]->provider_message_id, "wamid.OUT1");
    assert_string_equal(extra_s(b.msgs[0], "conversation_id"), "72b14d6bd5407799e66f64d1b338e567");
    assert_string_equal(extra_s(b.msgs[0], "pricing_category"), "service");
    assert_int_equal(b.msgs[2]->sent_at, 1750030075000LL);
    m = b.msgs[3];
    assert_string_equal(m->provider_message_id, "wamid.OUT2");
    assert_non_null(m->error);
    assert_non_null(strstr(m->error, "healthy ecosystem engagement"));
    assert_non_null(strstr(m->error, "131049"));
    hark_batch_clear(&b);
    chan_free(c);
}

/* value.errors (no message attached) is reported as a note the core logs. */
static void test_wa_account_errors_are_noted(void **state)
{
    struct chan *c = chan_default();
    struct hark_request r = {0};
    struct hark_response resp = {0};
    struct hark_batch b = {0};
    const char *body =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\","
        "\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
        "\"metadata\":{\"display_phone_number\":\"15550783881\",\"phone_number_id\":"
        "\"106540352242922\"},\"errors\":[{\"code\":131050,\"title\":\"Unable to deliver\","
        "\"message\":\"Unable to deliver\",\"error_data\":{\"details\":\"user stopped "
        "marketing messages\"}}]}}]}]}";
    (void)state;

    r.method = "POST";
    r.body = (const unsigned char *)body;
    r.body_len = strlen(body);
    assert_int_equal(hark_adapter_meta.parse(&c->ch, &r, &b, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(b.n, 0);
    assert_non_null(strstr(resp.note, "131050"));
    assert_non_null(strstr(resp.note, "user stopped marketing messages"));
    hark_response_clear(&resp);
    hark_batch_clear(&b);
    chan_free(c);
}

static void test_wa_echo_and_batch(void **state)
{
    struct chan *c = chan_default();
    struct hark_batch b = {0};
    struct hark_msg *m;
    (void)state;

    parse_data(c, "whatsapp-echo.json", &b, 1);
    m = b.msgs[0];
    assert_int_equal(m->direction, HARK_DIR_OUTBOUND);
    assert_string_equal(m->idents[0].value, "+16505551234");
    assert_string_equal(m->to.id, "+16505551234");
    assert_string_equal(m->from.id, PNID);
    assert_string_equal(m->text, "Sent from the Business app");
    hark_batch_clear(&b);

    parse_data(c, "whatsapp-batch.json", &b, 3);
    assert_string_equal(b.msgs[0]->from.name, "Sheena Nelson");
    assert_string_equal(b.msgs[1]->from.name, "Kofi Mensah");
    assert_string_equal(b.msgs[1]->idents[0].value, "+233241234567");
    m = b.msgs[2];
    assert_int_equal(m->kind, HARK_KIND_STATUS);
    assert_string_equal(m->thread_key, "+447700900456|206540352242922");
    hark_batch_clear(&b);
    chan_free(c);
}

/* Hostile and malformed bodies: a 4xx and nothing produced. */
static void test_hostile_bodies(void **state)
{
    static const char *const bodies[] = {
        "", "{", "[]", "null", "42", "\"page\"", "{}",
        "{\"object\":\"page\"}",
        "{\"object\":\"page\",\"entry\":{}}",
        "{\"object\":7,\"entry\":[]}",
        "{\"object\":\"user\",\"entry\":[]}",
        "{\"object\":\"page\",\"entry\":[1]}",
        "{\"object\":\"page\",\"entry\":[{\"time\":1,\"messaging\":[]}]}",
        "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"messaging\":{}}]}",
        "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"messaging\":[7]}]}",
        "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"messaging\":[{\"sender\":{\"id\":\"2\"},"
        "\"message\":{\"text\":\"no mid\"}}]}]}",
        "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"messaging\":[{\"message\":"
        "{\"mid\":\"m\",\"text\":\"no sender\"}}]}]}",
        "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"messaging\":[{\"sender\":{\"id\":\"2\"},"
        "\"message\":{\"mid\":\"m\",\"text\":5}}]}]}",
        "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"messaging\":[{\"sender\":{\"id\":\"2\"},"
        "\"message\":{\"mid\":\"m\",\"attachments\":{}}}]}]}",
        "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"messaging\":[{\"sender\":{\"id\":\"2\"},"
        "\"message\":{\"mid\":\"m\",\"attachments\":[{\"payload\":{}}]}}]}]}",
        "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"messaging\":[{\"sender\":{\"id\":\"a|b\"},"
        "\"message\":{\"mid\":\"m\",\"text\":\"pipe in id\"}}]}]}",
        "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"messaging\":[{\"sender\":{\"id\":\"2\"},"
        "\"delivery\":{\"mids\":[3]}}]}]}",
        "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"changes\":[{\"field\":\"feed\","
        "\"value\":{\"item\":\"comment\",\"verb\":\"add\"}}]}]}",
        "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"changes\":[{\"value\":{}}]}]}",
        "{\"object\":\"instagram\",\"entry\":[{\"id\":\"1\",\"changes\":[{\"field\":\"comments\","
        "\"value\":{\"id\":\"c\",\"text\":\"no author\",\"media\":{\"id\":\"m\"}}}]}]}",
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":7}]}",
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":\"messages\","
        "\"value\":{\"metadata\":{\"phone_number_id\":\"1\"},\"messages\":{}}}]}]}",
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":\"messages\","
        "\"value\":{\"messages\":[{\"from\":\"16505551234\",\"id\":\"w\",\"type\":\"text\","
        "\"text\":{\"body\":\"no metadata\"}}]}}]}]}",
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":\"messages\","
        "\"value\":{\"metadata\":{\"phone_number_id\":\"1\"},\"messages\":[{\"id\":\"w\","
        "\"type\":\"text\",\"text\":{\"body\":\"no from\"}}]}}]}]}",
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":\"messages\","
        "\"value\":{\"metadata\":{\"phone_number_id\":\"1\"},\"messages\":[{\"from\":\"1650555\","
        "\"id\":\"w\",\"type\":\"text\",\"text\":{\"body\":[]}}]}}]}]}",
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":\"messages\","
        "\"value\":{\"metadata\":{\"phone_number_id\":\"1\"},\"messages\":[{\"from\":\"1650555\","
        "\"id\":\"w\",\"type\":\"image\"}]}}]}]}",
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":\"messages\","
        "\"value\":{\"metadata\":{\"phone_number_id\":\"1\"},\"statuses\":[{\"status\":\"read\"}]}}]}]}",
        /* A valid message followed by a broken one: nothing at all is produced. */
        "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"messaging\":[{\"sender\":{\"id\":\"2\"},"
        "\"message\":{\"mid\":\"m1\",\"text\":\"ok\"}},{\"sender\":{\"id\":\"2\"},\"message\":7}]}]}",
        "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"messaging\":[{\"sender\":{\"id\":\"2\"},"
        "\"message\":{\"mid\":\"m\",\"text\":\"\\u0000\"}}]}]}",
        "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"messaging\":[{\"sender\":{\"id\":\"2\"},"
        "\"message\":{\"mid\":\"m\",\"text\":\"\\ud800\"}}]}]}",
        "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"messaging\":[{\"sender\":{\"id\":\"2\"},"
        "\"message\":{\"mid\":\"m\",\"text\":\"\xc3\x28\"}}]}]}",
    };
    struct chan *c = chan_default();
    struct hark_batch b = {0};
    char *deep, *big, *trunc;
    size_t len, n, i;
    (void)state;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        int st = parse_body(c, bodies[i], strlen(bodies[i]), &b);
        if (st < 400 || st >= 500) {
            fail_msg("body %zu answered %d", i, st);
        }
    }
    /* A NUL byte inside the body. */
    assert_int_equal(parse_body(c, "{\"object\":\"page\",\0\"entry\":[]}", 29, &b), 400);
    /* Deep nesting. */
    deep = malloc(4001);
    memset(deep, '[', 2000);
    memset(deep + 2000, ']', 2000);
    deep[4000] = '\0';
    assert_int_equal(parse_body(c, deep, 4000, &b), 400);
    free(deep);
    /* A truncated body. */
    trunc = harness_read("tests/data/meta", "whatsapp-text.json", &len);
    assert_int_equal(parse_body(c, trunc, len / 2, &b), 400);
    free(trunc);
    /* More messages than a batch holds. */
    n = HARK_BATCH_MAX + 1;
    big = malloc(n * 80 + 200);
    len = (size_t)snprintf(big, 200, "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"messaging\":[");
    for (i = 0; i < n; i++) {
        len += (size_t)snprintf(big + len, 80, "%s{\"sender\":{\"id\":\"2\"},\"message\":"
                                "{\"mid\":\"m%zu\"}}", i ? "," : "", i);
    }
    len += (size_t)snprintf(big + len, 10, "]}]}");
    assert_int_equal(parse_body(c, big, len, &b), 413);
    /* Many skipped events are bounded too. */
    len = (size_t)snprintf(big, 200, "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"messaging\":[");
    for (i = 0; i < n * 4 + 10 && len + 10 < n * 80; i++) {
        len += (size_t)snprintf(big + len, 8, "%s{}", i ? "," : "");
    }
    len += (size_t)snprintf(big + len, 10, "]}]}");
    assert_int_equal(parse_body(c, big, len, &b), 413);
    free(big);
    /* A batch limit set by the caller is honoured. */
    b.max = 2;
    trunc = harness_read("tests/data/meta", "whatsapp-statuses.json", &len);
    assert_int_equal(parse_body(c, trunc, len, &b), 413);
    free(trunc);
    hark_batch_clear(&b);
    chan_free(c);
}

/* Every allocation failure gives a clean error (or success) and no leak. */
static void test_alloc_failures(void **state)
{
    static const char *const files[] = {"whatsapp-media.json", "whatsapp-contacts.json",
                                        "whatsapp-statuses.json", "feed-comment-reply.json"};
    struct chan *c = chan_default();
    (void)state;

    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        size_t len;
        char *body = harness_read("tests/data/meta", files[f], &len);
        int ok = 0;
        for (long k = 0; k < 2000 && !ok; k++) {
            struct hark_batch b = {0};
            struct hark_request r = {0};
            struct hark_response resp = {0};
            int rc;
            r.method = "POST";
            r.body = (const unsigned char *)body;
            r.body_len = len;
            hark_alloc_fail_after(k, 0);
            rc = hark_adapter_meta.parse(&c->ch, &r, &b, &resp);
            hark_alloc_fail_after(-1, 0);
            if (rc == 0) {
                ok = 1;
                assert_true(b.n > 0);
            } else {
                assert_int_equal(b.n, 0);
                assert_true(resp.status == 400 || resp.status == 503);
            }
            hark_batch_clear(&b);
            hark_response_clear(&resp);
        }
        assert_true(ok);
        free(body);
    }
    chan_free(c);
}

static void test_send_messenger_instagram(void **state)
{
    struct chan *c = chan_default();
    struct hark_http_call call;
    struct hark_outbound ob = {0};
    const char *urls[] = {"https://cdn.example.com/a.pdf"};
    char err[256] = "";
    json_t *body;
    (void)state;

    ob.channel = "messenger";
    ob.to = "6543210987654321";
    ob.text = "Hello from support";
    assert_int_equal(hark_adapter_meta.build_send(&c->ch, &ob, &call, err, sizeof(err)), 0);
    assert_string_equal(call.method, "POST");
    assert_string_equal(call.url, "http://127.0.0.1:9/v19.0/me/messages");
    assert_string_equal(call.bearer, "EAAtoken");
    assert_string_equal(call.headers[0], "Content-Type: application/json");
    body = json_loadb(call.body, call.body_len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(body, "recipient"), "id")),
                        "6543210987654321");
    assert_string_equal(json_string_value(json_object_get(body, "messaging_type")), "RESPONSE");
    assert_string_equal(json_string_value(json_object_get(json_object_get(body, "message"), "text")),
                        "Hello from support");
    json_decref(body);
    hark_http_call_clear(&call);

    /* Attachment only: sent as a file attachment by URL; page id from ob->from. */
    ob.text = NULL;
    ob.attachment_urls = urls;
    ob.n_attachments = 1;
    ob.from = "104567890123456";
    assert_int_equal(hark_adapter_meta.build_send(&c->ch, &ob, &call, err, sizeof(err)), 0);
    assert_string_equal(call.url, "http://127.0.0.1:9/v19.0/104567890123456/messages");
    assert_non_null(strstr(call.body, "\"url\":\"https://cdn.example.com/a.pdf\""));
    hark_http_call_clear(&call);

    /* Instagram DM: no messaging_type; a comment reply with thread_ref. */
    ob.channel = "instagram";
    ob.text = "Yes!";
    ob.n_attachments = 0;
    ob.from = NULL;
    assert_int_equal(hark_adapter_meta.build_send(&c->ch, &ob, &call, err, sizeof(err)), 0);
    assert_string_equal(call.url, "http://127.0.0.1:9/v19.0/me/messages");
    assert_null(strstr(call.body, "messaging_type"));
    hark_http_call_clear(&call);
    ob.thread_ref = "17865799348089039";
    assert_int_equal(hark_adapter_meta.build_send(&c->ch, &ob, &call, err, sizeof(err)), 0);
    assert_string_equal(call.url, "http://127.0.0.1:9/v19.0/17865799348089039/replies");
    assert_string_equal(call.body, "{\"message\":\"Yes!\"}");
    hark_http_call_clear(&call);

    /* Facebook comments. */
    ob.channel = "facebook_comment";
    ob.thread_ref = "200_300";
    assert_int_equal(hark_adapter_meta.build_send(&c->ch, &ob, &call, err, sizeof(err)), 0);
    assert_string_equal(call.url, "http://127.0.0.1:9/v19.0/200_300/comments");
    assert_string_equal(call.body, "{\"message\":\"Yes!\"}");
    hark_http_call_clear(&call);
    ob.thread_ref = "../../me/feed";
    assert_int_equal(hark_adapter_meta.build_send(&c->ch, &ob, &call, err, sizeof(err)), -1);
    assert_null(call.url);
    ob.thread_ref = NULL;
    assert_int_equal(hark_adapter_meta.build_send(&c->ch, &ob, &call, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "comment id"));

    /* Unknown channel, nothing to send. */
    ob.channel = "sms";
    ob.thread_ref = NULL;
    assert_int_equal(hark_adapter_meta.build_send(&c->ch, &ob, &call, err, sizeof(err)), -1);
    ob.channel = "messenger";
    ob.text = "";
    assert_int_equal(hark_adapter_meta.build_send(&c->ch, &ob, &call, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nothing to send"));
    chan_free(c);

    /* Without access_token no reply can be built. */
    c = chan_new("app_secret = s\nverify_token = t\n");
    ob.text = "hi";
    assert_int_equal(hark_adapter_meta.build_send(&c->ch, &ob, &call, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "access_token"));
    chan_free(c);
}

static void test_send_whatsapp(void **state)
{
    struct chan *c = chan_default();
    struct hark_http_call call;
    struct hark_outbound ob = {0};
    char err[256] = "";
    json_t *body;
    (void)state;

    ob.channel = "whatsapp";
    ob.to = "+16505551234";
    ob.from = PNID;
    ob.text = "Your order shipped";
    ob.reply_to = "wamid.TEXT1";
    ob.last_inbound_at = hark_now_ms() - 3600 * 1000;
    assert_int_equal(hark_adapter_meta.build_send(&c->ch, &ob, &call, err, sizeof(err)), 0);
    assert_string_equal(call.url, "http://127.0.0.1:9/v19.0/" PNID "/messages");
    body = json_loadb(call.body, call.body_len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(body, "messaging_product")), "whatsapp");
    assert_string_equal(json_string_value(json_object_get(body, "to")), "16505551234");
    assert_string_equal(json_string_value(json_object_get(body, "type")), "text");
    assert_string_equal(json_string_value(json_object_get(json_object_get(body, "text"), "body")),
                        "Your order shipped");
    assert_string_equal(json_string_value(json_object_get(json_object_get(body, "context"),
                                                          "message_id")), "wamid.TEXT1");
    json_decref(body);
    hark_http_call_clear(&call);

    /* Outside the 24-hour window: refused without a template. */
    ob.last_inbound_at = hark_now_ms() - 25LL * 3600 * 1000;
    assert_int_equal(hark_adapter_meta.build_send(&c->ch, &ob, &call, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "24-hour"));
    ob.last_inbound_at = 0;
    assert_int_equal(hark_adapter_meta.build_send(&c->ch, &ob, &call, err, sizeof(err)), -1);
    ob.template_name = "order_update:es";
    assert_int_equal(hark_adapter_meta.build_send(&c->ch, &ob, &call, err, sizeof(err)), 0);
    body = json_loadb(call.body, call.body_len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(body, "type")), "template");
    assert_string_equal(json_string_value(json_object_get(json_object_get(body, "template"),
                                                          "name")), "order_update");
    assert_string_equal(json_string_value(json_object_get(json_object_get(
                            json_object_get(body, "template"), "language"), "code")), "es");
    json_decref(body);
    hark_http_call_clear(&call);

    /* No phone_number_id, or a recipient that is no number. */
    ob.from = NULL;
    assert_int_equal(hark_adapter_meta.build_send(&c->ch, &ob, &call, err, sizeof(err)), -1);
    ob.from = PNID;
    ob.to = "not-a-number";
    assert_int_equal(hark_adapter_meta.build_send(&c->ch, &ob, &call, err, sizeof(err)), -1);
    chan_free(c);
}

static void test_read_send(void **state)
{
    static const struct {
        long status;
        const char *body;
        enum hark_send_outcome out;
        const char *id;
        const char *err_part;
    } cases[] = {
        {200, "{\"recipient_id\":\"6543\",\"message_id\":\"m_AG5Hz2\"}", HARK_SEND_OK, "m_AG5Hz2", NULL},
        {200, "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"16505551234\","
              "\"wa_id\":\"16505551234\"}],\"messages\":[{\"id\":\"wamid.HBgL\"}]}",
         HARK_SEND_OK, "wamid.HBgL", NULL},
        {200, "{\"id\":\"200_301\"}", HARK_SEND_OK, "200_301", NULL},
        {201, "", HARK_SEND_OK, NULL, NULL},
        {429, "{\"error\":{\"message\":\"slow down\"}}", HARK_SEND_RETRY, NULL, "slow down"},
        {500, "oops", HARK_SEND_RETRY, NULL, "500"},
        {503, NULL, HARK_SEND_RETRY, NULL, NULL},
        {0, NULL, HARK_SEND_RETRY, NULL, NULL},
        {400, "{\"error\":{\"message\":\"(#100) Invalid parameter\",\"type\":\"OAuthException\","
              "\"code\":100}}", HARK_SEND_FAIL, NULL, "Invalid parameter"},
        {400, "{\"error\":{\"message\":\"(#4) Application request limit reached\",\"code\":4}}",
         HARK_SEND_RETRY, NULL, "limit"},
        {400, "{\"error\":{\"message\":\"temporary\",\"code\":2,\"is_transient\":true}}",
         HARK_SEND_RETRY, NULL, NULL},
        {400, "{\"error\":{\"message\":\"Re-engagement message\",\"code\":131047}}",
         HARK_SEND_FAIL, NULL, "Re-engagement"},
        {403, "<html>forbidden</html>", HARK_SEND_FAIL, NULL, "403"},
    };
    struct chan *c = chan_default();
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "", *id = (char *)"sentinel";
        const char *b = cases[i].body;
        enum hark_send_outcome out = hark_adapter_meta.read_send(&c->ch, cases[i].status, b,
                                                                 b ? strlen(b) : 0, &id,
                                                                 err, sizeof(err));
        if (out != cases[i].out) {
            fail_msg("case %zu: outcome %d", i, (int)out);
        }
        if (cases[i].id) {
            assert_non_null(id);
            assert_string_equal(id, cases[i].id);
        } else {
            assert_null(id);
        }
        if (cases[i].err_part && strstr(err, cases[i].err_part) == NULL) {
            fail_msg("case %zu: err \"%s\"", i, err);
        }
        hark_free(id);
    }
    chan_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wa_text_profile),
        cmocka_unit_test(test_wa_media),
        cmocka_unit_test(test_wa_location_contacts),
        cmocka_unit_test(test_wa_interactive_button_reaction),
        cmocka_unit_test(test_wa_order_system_unsupported),
        cmocka_unit_test(test_wa_statuses),
        cmocka_unit_test(test_wa_echo_and_batch),
        cmocka_unit_test(test_wa_account_errors_are_noted),
        cmocka_unit_test(test_hostile_bodies),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_send_messenger_instagram),
        cmocka_unit_test(test_send_whatsapp),
        cmocka_unit_test(test_read_send),
    };
    hark_alloc_init_json();
    return cmocka_run_group_tests_name("meta_wa", tests, NULL, NULL);
}
