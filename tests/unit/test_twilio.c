/*
 * Unit tests: Twilio signatures (official vectors), port variants, parsing.
 */
#include "harness.h"

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/codec.h"
#include "../../adapters/twilio/twilio.h"

/*
 * A form from the vector's params object (values may be arrays: repeated
 * keys). The strings are borrowed from the JSON; release with free(pairs).
 */
static void form_from_json(json_t *params, struct hark_form *form)
{
    const char *key;
    json_t *value;
    size_t cap = 64;

    form->pairs = calloc(cap, sizeof(*form->pairs));
    form->n = 0;
    form->text = NULL;
    json_object_foreach(params, key, value) {
        if (json_is_array(value)) {
            size_t i;
            json_t *v;
            json_array_foreach(value, i, v) {
                form->pairs[form->n].name = (char *)key;
                form->pairs[form->n++].value = (char *)json_string_value(v);
            }
        } else {
            form->pairs[form->n].name = (char *)key;
            form->pairs[form->n++].value = (char *)json_string_value(value);
        }
    }
}

/* Every official X-Twilio-Signature vector over URL + params verifies. */
static void test_signature_vectors(void **state)
{
    json_t *all = harness_signature_vectors();
    size_t i, checked = 0;
    json_t *v;
    (void)state;

    json_array_foreach(all, i, v) {
        const char *provider = json_string_value(json_object_get(v, "provider"));
        const char *alg = json_string_value(json_object_get(v, "algorithm"));
        const char *secret = json_string_value(json_object_get(v, "secret"));
        const char *url = json_string_value(json_object_get(v, "url"));
        const char *want = json_string_value(json_object_get(v, "expected_header_value"));
        json_t *params = json_object_get(v, "params");
        struct hark_form form = {0};
        char got[TWILIO_SIG_LEN];

        if (strcmp(provider, "twilio") != 0 || strcmp(alg, "hmac-sha1-base64") != 0) {
            continue;
        }
        if (json_is_object(params)) {
            form_from_json(params, &form);
        }
        /* Twilio may have signed the URL with or without the default port. */
        assert_int_equal(twilio_signature(secret, strlen(secret), url, &form, got), 0);
        assert_true(twilio_signature_matches(secret, strlen(secret), url, &form, want));
        /* Any other signature, or the right one for other params, fails. */
        assert_false(twilio_signature_matches(secret, strlen(secret), url, &form, "x"));
        assert_false(twilio_signature_matches("other", 5, url, &form, want));
        free(form.pairs);
        checked++;
    }
    assert_true(checked >= 15);
    json_decref(all);
}

static void test_port_variants(void **state)
{
    char out[256];
    (void)state;

    assert_int_equal(twilio_url_port_variant("https://example.com/hooks/a?x=1", out, sizeof(out)), 0);
    assert_string_equal(out, "https://example.com:443/hooks/a?x=1");
    assert_int_equal(twilio_url_port_variant("https://example.com:443/hooks", out, sizeof(out)), 0);
    assert_string_equal(out, "https://example.com/hooks");
    assert_int_equal(twilio_url_port_variant("http://user:pw@Example.com/x", out, sizeof(out)), 0);
    assert_string_equal(out, "http://user:pw@Example.com:80/x");
    assert_int_equal(twilio_url_port_variant("https://example.com:1234/x", out, sizeof(out)), -1);
    assert_int_equal(twilio_url_port_variant("ftp://example.com/x", out, sizeof(out)), -1);
    assert_int_equal(twilio_url_port_variant("https://example.com", out, 10), -1);
}

static struct hark_section *section(void)
{
    static const char *const secrets[] = {"auth_token", NULL};
    return hark_section_from_text("channel.sms", "auth_token = t\n", secrets);
}

static int parse_text(const char *body, struct hark_batch *batch, struct hark_response *resp)
{
    struct hark_channel ch = {.name = "sms"};
    struct hark_request req = {0};
    struct hark_section *sec = section();
    int rc;

    ch.section = sec;
    req.method = "POST";
    req.body = (const unsigned char *)body;
    req.body_len = strlen(body);
    rc = twilio_parse(&ch, &req, batch, resp);
    hark_section_free(sec);
    return rc;
}

static void test_parse_documented_whatsapp(void **state)
{
    size_t len;
    char *body = harness_read(harness_vectors_dir(), "payloads/twilio-inbound-whatsapp.assembled.form", &len);
    struct hark_batch batch = {0};
    struct hark_response resp = {0};
    struct hark_msg *m;
    (void)state;

    assert_int_equal(parse_text(body, &batch, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.content_type, "text/xml");
    assert_int_equal(batch.n, 1);
    m = batch.msgs[0];
    assert_string_equal(m->channel, "whatsapp");
    assert_string_equal(m->from.id, "+14017122661");
    assert_string_equal(m->from.name, "Perspective Coffee");
    assert_string_equal(m->to.id, "+15558675310");
    assert_string_equal(m->text, "Ahoy! Let's build something amazing.");
    assert_string_equal(m->idents[0].kind, "phone");
    assert_string_equal(m->idents[0].value, "+14017122661");
    assert_string_equal(m->thread_key, "whatsapp|+14017122661|+15558675310");
    assert_null(hark_msg_validate(m));
    hark_batch_clear(&batch);
    hark_response_clear(&resp);
    free(body);
}

static void test_parse_documented_mms(void **state)
{
    size_t len;
    char *body = harness_read(harness_vectors_dir(), "payloads/twilio-inbound-mms.assembled.form", &len);
    struct hark_batch batch = {0};
    struct hark_response resp = {0};
    (void)state;

    assert_int_equal(parse_text(body, &batch, &resp), 0);
    assert_int_equal(batch.n, 1);
    assert_string_equal(batch.msgs[0]->channel, "mms");
    assert_int_equal(batch.msgs[0]->n_attachments, 1);
    assert_string_equal(batch.msgs[0]->attachments[0].content_type, "image/jpeg");
    assert_non_null(strstr(batch.msgs[0]->attachments[0].url, "/Media/ME"));
    hark_batch_clear(&batch);
    hark_response_clear(&resp);
    free(body);
}

static void test_parse_status_callback(void **state)
{
    struct hark_batch batch = {0};
    struct hark_response resp = {0};
    (void)state;

    assert_int_equal(parse_text("MessageSid=SM1&MessageStatus=undelivered&To=%2B34612345678"
                                "&From=%2B15557654321&ErrorCode=30003", &batch, &resp), 0);
    assert_int_equal(batch.n, 1);
    assert_int_equal(batch.msgs[0]->kind, HARK_KIND_STATUS);
    assert_string_equal(batch.msgs[0]->status, "failed");
    assert_string_equal(batch.msgs[0]->error, "Twilio error 30003");
    assert_string_equal(batch.msgs[0]->idents[0].value, "+34612345678");
    hark_batch_clear(&batch);
    hark_response_clear(&resp);
}

static void test_parse_rejects_bad_input(void **state)
{
    static const char *const bad[] = {
        "", "MessageSid=&From=a&To=b", "From=%2B1&To=%2B2", "MessageSid=SM1&To=%2B2",
        "MessageSid=SM1&From=%2B34612345678&To=%2B2&NumMedia=1",
        "MessageSid=SM1&From=%2B34612345678&To=%2B2&NumMedia=11",
        "MessageSid=SM1&From=%2B34612345678&To=%2B2&NumMedia=x",
        "MessageSid=SM1&From=%ZZ", "MessageSid=SM1&MessageStatus=bogus&To=%2B1",
    };
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct hark_batch batch = {0};
        struct hark_response resp = {0};
        assert_int_equal(parse_text(bad[i], &batch, &resp), -1);
        assert_int_equal(resp.status, 400);
        assert_int_equal(batch.n, 0);
        hark_response_clear(&resp);
    }
}

static void test_parse_survives_allocation_failures(void **state)
{
    const char *body = "MessageSid=SM1&From=%2B34612345678&To=%2B15557654321&Body=hi&NumMedia=1"
                       "&MediaUrl0=https%3A%2F%2Fx&MediaContentType0=image%2Fpng&WaId=1";
    (void)state;

    for (long k = 0; k < 60; k++) {
        struct hark_batch batch = {0};
        struct hark_response resp = {0};
        struct hark_section *sec = section();
        struct hark_channel ch = {.name = "sms", .section = sec};
        struct hark_request req = {.method = "POST", .body = (const unsigned char *)body,
                                   .body_len = strlen(body)};
        hark_alloc_fail_after(k, 0);
        if (twilio_parse(&ch, &req, &batch, &resp) < 0) {
            assert_int_equal(batch.n, 0);
        }
        hark_alloc_fail_after(-1, 0);
        hark_batch_clear(&batch);
        hark_response_clear(&resp);
        hark_section_free(sec);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_vectors),
        cmocka_unit_test(test_port_variants),
        cmocka_unit_test(test_parse_documented_whatsapp),
        cmocka_unit_test(test_parse_documented_mms),
        cmocka_unit_test(test_parse_status_callback),
        cmocka_unit_test(test_parse_rejects_bad_input),
        cmocka_unit_test(test_parse_survives_allocation_failures),
    };
    hark_alloc_init_json();
    return cmocka_run_group_tests_name("twilio", tests, NULL, NULL);
}
