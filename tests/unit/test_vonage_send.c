/*
 * Unit tests: the Vonage SMS adapter's sender (request shapes and the
 * reading of SMS API answers from tests/data/vonage/send-*.json).
 */
#include "harness.h"

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/conf.h"

#include "../../adapters/vonage/vonage.h"

struct ts_chan {
    struct hark_channel ch;
    struct hark_section *sec;
};

static void ts_open(struct ts_chan *c, const char *text)
{
    static const char *const secrets[] = {"signature_secret", "api_secret", NULL};
    char err[256];

    memset(c, 0, sizeof(*c));
    c->sec = hark_section_from_text("channel.sms-vonage", text, secrets);
    assert_non_null(c->sec);
    c->ch.name = "sms-vonage";
    c->ch.section = c->sec;
    assert_int_equal(hark_adapter_vonage.init(&c->ch, err, sizeof(err)), 0);
}

static void ts_close(struct ts_chan *c)
{
    hark_adapter_vonage.destroy(c->ch.ctx);
    hark_section_free(c->sec);
}

#define TS_CONF "signature_secret = s\napi_key = abcd1234\napi_secret = sekrit\n" \
                "api_url = http://127.0.0.1:9/\n"

/* A reply with non-ASCII text: JSON body with every documented field. */
static void test_build_unicode(void **state)
{
    struct ts_chan c;
    struct hark_http_call call;
    struct hark_outbound ob = {0};
    const char *urls[] = {"https://example.com/a.pdf"};
    char err[128];
    json_error_t jerr;
    json_t *body;
    (void)state;

    ts_open(&c, TS_CONF);
    ob.message_id = "0123456789abcdef0123456789abcdef";
    ob.to = "+447700900001";
    ob.from = "+44 7700 900000";
    ob.text = "Ya est\xc3\xa1 en camino";
    ob.attachment_urls = urls;
    ob.n_attachments = 1;
    assert_int_equal(hark_adapter_vonage.build_send(&c.ch, &ob, &call, err, sizeof(err)), 0);
    assert_string_equal(call.method, "POST");
    assert_string_equal(call.url, "http://127.0.0.1:9/sms/json");
    assert_int_equal(call.n_headers, 2);
    assert_string_equal(call.headers[0], "Content-Type: application/json");
    body = json_loadb(call.body, call.body_len, 0, &jerr);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "api_key")), "abcd1234");
    assert_string_equal(json_string_value(json_object_get(body, "api_secret")), "sekrit");
    assert_string_equal(json_string_value(json_object_get(body, "to")), "447700900001");
    assert_string_equal(json_string_value(json_object_get(body, "from")), "447700900000");
    assert_string_equal(json_string_value(json_object_get(body, "text")),
                        "Ya est\xc3\xa1 en camino\nhttps://example.com/a.pdf");
    assert_string_equal(json_string_value(json_object_get(body, "type")), "unicode");
    assert_string_equal(json_string_value(json_object_get(body, "client-ref")), ob.message_id);
    json_decref(body);
    hark_http_call_clear(&call);
    ts_close(&c);
}

/* ASCII text has no type; alphanumeric senders pass; bad addresses do not. */
static void test_build_shapes(void **state)
{
    struct ts_chan c;
    struct hark_http_call call;
    struct hark_outbound ob = {0};
    char err[128];
    json_error_t jerr;
    json_t *body;
    (void)state;

    ts_open(&c, TS_CONF);
    ob.message_id = "m1";
    ob.to = "447700900001";
    ob.from = "AcmeInc";
    ob.text = "On its way";
    assert_int_equal(hark_adapter_vonage.build_send(&c.ch, &ob, &call, err, sizeof(err)), 0);
    body = json_loadb(call.body, call.body_len, 0, &jerr);
    assert_null(json_object_get(body, "type"));
    assert_string_equal(json_string_value(json_object_get(body, "from")), "AcmeInc");
    json_decref(body);
    hark_http_call_clear(&call);

    ob.to = "AcmeInc";
    assert_int_equal(hark_adapter_vonage.build_send(&c.ch, &ob, &call, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "recipient"));
    assert_null(call.url);
    ob.to = "447700900001";
    ob.from = "Acme Incorporated Ltd";
    assert_int_equal(hark_adapter_vonage.build_send(&c.ch, &ob, &call, err, sizeof(err)), -1);
    ob.from = "AcmeInc";
    ob.text = "";
    assert_int_equal(hark_adapter_vonage.build_send(&c.ch, &ob, &call, err, sizeof(err)), -1);
    ob.text = "bad \xff utf-8";
    assert_int_equal(hark_adapter_vonage.build_send(&c.ch, &ob, &call, err, sizeof(err)), -1);
    assert_null(call.body);
    ts_close(&c);

    /* Without credentials there is nothing to send with. */
    ts_open(&c, "signature_secret = s\n");
    ob.text = "hi";
    assert_int_equal(hark_adapter_vonage.build_send(&c.ch, &ob, &call, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "api_key"));
    ts_close(&c);
}

/* Allocation failures while building: -1 and nothing left allocated. */
static void test_build_alloc_failure(void **state)
{
    struct ts_chan c;
    struct hark_outbound ob = {.message_id = "m1", .to = "+447700900001", .from = "AcmeInc",
                               .text = "hello"};
    int done = 0;
    (void)state;

    ts_open(&c, TS_CONF);
    for (long k = 0; k < 200 && !done; k++) {
        struct hark_http_call call;
        char err[128];
        int rc;
        hark_alloc_fail_after(k, 0);
        rc = hark_adapter_vonage.build_send(&c.ch, &ob, &call, err, sizeof(err));
        hark_alloc_fail_after(-1, 0);
        if (rc == 0) {
            done = 1;
        } else {
            assert_null(call.url);
            assert_null(call.body);
        }
        hark_http_call_clear(&call);
    }
    assert_true(done);
    ts_close(&c);
}

/* One answer file read with an HTTP status; returns the outcome. */
static enum hark_send_outcome ts_read(const char *file, long http, char **id, char *err,
                                      size_t err_len)
{
    size_t len;
    char *body = harness_read("tests/data/vonage", file, &len);
    enum hark_send_outcome out;

    out = hark_adapter_vonage.read_send(NULL, http, body, len, id, err, err_len);
    free(body);
    return out;
}

static void test_read_send(void **state)
{
    char *id = NULL;
    char err[256];
    (void)state;

    assert_int_equal(ts_read("send-ok.json", 200, &id, err, sizeof(err)), HARK_SEND_OK);
    assert_string_equal(id, "0A0000000123ABCD1");
    hark_free(id);
    assert_int_equal(ts_read("send-multipart-ok.json", 200, &id, err, sizeof(err)),
                     HARK_SEND_OK);
    assert_string_equal(id, "0A0000000123ABCD5");
    hark_free(id);
    assert_int_equal(ts_read("send-multipart-partfail.json", 200, &id, err, sizeof(err)),
                     HARK_SEND_FAIL);
    assert_non_null(strstr(err, "Message too long"));
    hark_free(id);
    assert_int_equal(ts_read("send-throttled.json", 200, &id, err, sizeof(err)),
                     HARK_SEND_RETRY);
    assert_null(id);
    assert_int_equal(ts_read("send-bad-credentials.json", 200, &id, err, sizeof(err)),
                     HARK_SEND_FAIL);
    assert_string_equal(err, "vonage: status 4: Bad Credentials");
    assert_null(id);
    assert_int_equal(ts_read("send-invalid-sender.json", 200, &id, err, sizeof(err)),
                     HARK_SEND_FAIL);
    assert_non_null(strstr(err, "status 15: Illegal Sender Address"));
    /* HTTP-level outcomes win over the body. */
    assert_int_equal(ts_read("send-ok.json", 429, &id, err, sizeof(err)), HARK_SEND_RETRY);
    assert_null(id);
    assert_int_equal(ts_read("send-ok.json", 503, &id, err, sizeof(err)), HARK_SEND_RETRY);
    assert_int_equal(ts_read("send-ok.json", 401, &id, err, sizeof(err)), HARK_SEND_FAIL);
    assert_string_equal(err, "vonage: HTTP 401");
    /* Unreadable answers. */
    assert_int_equal(hark_adapter_vonage.read_send(NULL, 200, "<html>", 6, &id, err,
                                                   sizeof(err)), HARK_SEND_FAIL);
    assert_int_equal(hark_adapter_vonage.read_send(NULL, 200, "{\"messages\":[]}", 15, &id,
                                                   err, sizeof(err)), HARK_SEND_FAIL);
    assert_int_equal(hark_adapter_vonage.read_send(NULL, 200, "{\"messages\":{}}", 15, &id,
                                                   err, sizeof(err)), HARK_SEND_FAIL);
    assert_int_equal(hark_adapter_vonage.read_send(NULL, 200, "{\"messages\":[{\"status\":"
                                                   "\"0\"}]}", 27, &id, err, sizeof(err)),
                     HARK_SEND_FAIL);
    assert_int_equal(hark_adapter_vonage.read_send(NULL, 200, NULL, 0, &id, err, sizeof(err)),
                     HARK_SEND_FAIL);
    assert_null(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_unicode),
        cmocka_unit_test(test_build_shapes),
        cmocka_unit_test(test_build_alloc_failure),
        cmocka_unit_test(test_read_send),
    };
    hark_alloc_init_json();
    return cmocka_run_group_tests_name("vonage_send", tests, NULL, NULL);
}
