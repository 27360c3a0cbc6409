/*
 * Unit tests: Twilio reply requests and the classification of answers.
 */
#include "harness.h"

#include "hark/alloc.h"
#include "hark/codec.h"
#include "hark/conf.h"
#include "../../adapters/twilio/twilio_send.h"

static const char *const secret_keys[] = {"auth_token", NULL};

static struct hark_section *section(const char *text)
{
    struct hark_section *sec = hark_section_from_text("channel.sms-main", text, secret_keys);
    assert_non_null(sec);
    return sec;
}

static struct hark_outbound outbound(const char *channel, const char *text)
{
    struct hark_outbound ob = {
        .message_id = "0123456789abcdef0123456789abcdef",
        .conversation_id = "c1",
        .channel = channel,
        .to = "+34612345678",
        .from = "+14155550100",
        .text = text,
    };
    return ob;
}

/* Decode the form body of a call. */
static void form_of(const struct hark_http_call *call, struct hark_form *form)
{
    const char *why = NULL;
    assert_int_equal(hark_form_parse(call->body, call->body_len, form, &why), 0);
}

static void test_sms_request(void **state)
{
    struct hark_section *sec = section("account_sid = ACabc\nauth_token = tok123\n"
                                       "api_url = http://127.0.0.1:9999/\n"
                                       "status_callback = https://hooks.example.com/hooks/sms-main\n");
    struct hark_channel ch = {.name = "sms-main", .section = sec};
    struct hark_outbound ob = outbound("sms", "Hola & adiós = 100%");
    struct hark_http_call call;
    struct hark_form form;
    char err[256];
    (void)state;

    assert_int_equal(twilio_build_send(&ch, &ob, &call, err, sizeof(err)), 0);
    assert_string_equal(call.method, "POST");
    assert_string_equal(call.url, "http://127.0.0.1:9999/2010-04-01/Accounts/ACabc/Messages.json");
    assert_string_equal(call.userpwd, "ACabc:tok123");
    assert_int_equal(call.n_headers, 2);
    assert_string_equal(call.headers[0], "Content-Type: application/x-www-form-urlencoded");
    form_of(&call, &form);
    assert_string_equal(hark_form_get(&form, "To"), "+34612345678");
    assert_string_equal(hark_form_get(&form, "From"), "+14155550100");
    assert_string_equal(hark_form_get(&form, "Body"), "Hola & adiós = 100%");
    assert_string_equal(hark_form_get(&form, "StatusCallback"),
                        "https://hooks.example.com/hooks/sms-main");
    assert_null(hark_form_get(&form, "MediaUrl"));
    assert_null(hark_form_get(&form, "MessagingServiceSid"));
    /* Spaces as '+', reserved characters escaped. */
    assert_non_null(strstr(call.body, "Body=Hola+%26+adi%C3%B3s+%3D+100%25"));
    hark_form_free(&form);
    hark_http_call_clear(&call);
    hark_section_free(sec);
}

static void test_whatsapp_media_and_service(void **state)
{
    struct hark_section *sec = section("account_sid = ACabc\nauth_token = t\n"
                                       "messaging_service_sid = MG123\n");
    struct hark_channel ch = {.name = "wa", .section = sec};
    const char *urls[] = {"https://cdn.example.com/a.jpg", "https://cdn.example.com/b.pdf?x=1&y=2"};
    struct hark_outbound ob = outbound("whatsapp", "");
    struct hark_http_call call;
    struct hark_form form;
    char err[256];
    size_t media = 0;
    (void)state;

    ob.attachment_urls = urls;
    ob.n_attachments = 2;
    assert_int_equal(twilio_build_send(&ch, &ob, &call, err, sizeof(err)), 0);
    assert_string_equal(call.url, "https://api.twilio.com/2010-04-01/Accounts/ACabc/Messages.json");
    form_of(&call, &form);
    assert_string_equal(hark_form_get(&form, "To"), "whatsapp:+34612345678");
    assert_string_equal(hark_form_get(&form, "MessagingServiceSid"), "MG123");
    assert_null(hark_form_get(&form, "From"));
    assert_null(hark_form_get(&form, "Body"));
    for (size_t i = 0; i < form.n; i++) {
        if (strcmp(form.pairs[i].name, "MediaUrl") == 0) {
            assert_string_equal(form.pairs[i].value, urls[media]);
            media++;
        }
    }
    assert_int_equal(media, 2);
    hark_form_free(&form);
    hark_http_call_clear(&call);

    /* Stored ids that already carry the prefix keep exactly one. */
    ob.to = "whatsapp:+34612345678";
    ob.text = "hi";
    ob.n_attachments = 0;
    assert_int_equal(twilio_build_send(&ch, &ob, &call, err, sizeof(err)), 0);
    form_of(&call, &form);
    assert_string_equal(hark_form_get(&form, "To"), "whatsapp:+34612345678");
    hark_form_free(&form);
    hark_http_call_clear(&call);
    hark_section_free(sec);
}

static void test_whatsapp_from_prefixed(void **state)
{
    struct hark_section *sec = section("account_sid = ACabc\nauth_token = t\n");
    struct hark_channel ch = {.name = "wa", .section = sec};
    struct hark_outbound ob = outbound("whatsapp", "hi");
    struct hark_http_call call;
    struct hark_form form;
    char err[256];
    (void)state;

    assert_int_equal(twilio_build_send(&ch, &ob, &call, err, sizeof(err)), 0);
    form_of(&call, &form);
    assert_string_equal(hark_form_get(&form, "From"), "whatsapp:+14155550100");
    hark_form_free(&form);
    hark_http_call_clear(&call);
    hark_section_free(sec);
}

static void test_refused_requests(void **state)
{
    struct hark_section *sec = section("account_sid = ACabc\nauth_token = t\n");
    struct hark_section *nosid = section("auth_token = t\n");
    struct hark_channel ch = {.name = "sms", .section = sec};
    struct hark_channel ch2 = {.name = "sms", .section = nosid};
    struct hark_outbound ob = outbound("sms", "");
    struct hark_http_call call;
    char err[256];
    char *longtext = malloc(TWILIO_BODY_MAX_CHARS * 2 + 3);
    const char *urls[TWILIO_MEDIA_MAX + 1];
    (void)state;

    /* Nothing to send. */
    assert_int_equal(twilio_build_send(&ch, &ob, &call, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "neither text nor attachments"));
    assert_null(call.url);
    /* No account. */
    ob.text = "x";
    assert_int_equal(twilio_build_send(&ch2, &ob, &call, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "account_sid"));
    /* No customer, no sender. */
    ob.to = "";
    assert_int_equal(twilio_build_send(&ch, &ob, &call, err, sizeof(err)), -1);
    ob.to = "+34612345678";
    ob.from = NULL;
    assert_int_equal(twilio_build_send(&ch, &ob, &call, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no sender"));
    ob.from = "+14155550100";
    /* 1601 two-byte characters are too many; 1600 are fine. */
    for (size_t i = 0; i < TWILIO_BODY_MAX_CHARS + 1; i++) {
        longtext[2 * i] = '\xc3';
        longtext[2 * i + 1] = '\xa9';
    }
    longtext[2 * (TWILIO_BODY_MAX_CHARS + 1)] = '\0';
    ob.text = longtext;
    assert_int_equal(twilio_build_send(&ch, &ob, &call, err, sizeof(err)), -1);
    longtext[2 * TWILIO_BODY_MAX_CHARS] = '\0';
    assert_int_equal(twilio_build_send(&ch, &ob, &call, err, sizeof(err)), 0);
    hark_http_call_clear(&call);
    /* Too many media. */
    for (size_t i = 0; i <= TWILIO_MEDIA_MAX; i++) {
        urls[i] = "https://x/y";
    }
    ob.text = "x";
    ob.attachment_urls = urls;
    ob.n_attachments = TWILIO_MEDIA_MAX + 1;
    assert_int_equal(twilio_build_send(&ch, &ob, &call, err, sizeof(err)), -1);
    free(longtext);
    hark_section_free(sec);
    hark_section_free(nosid);
}

static void test_alloc_failures(void **state)
{
    struct hark_section *sec = section("account_sid = ACabc\nauth_token = t\n");
    struct hark_channel ch = {.name = "sms", .section = sec};
    struct hark_outbound ob = outbound("sms", "hello there");
    struct hark_http_call call;
    char err[256];
    int ok = 0;
    (void)state;

    for (long n = 0; n < 50 && !ok; n++) {
        hark_alloc_fail_after(n, 0);
        int rc = twilio_build_send(&ch, &ob, &call, err, sizeof(err));
        hark_alloc_fail_after(-1, 0);
        if (rc == 0) {
            ok = 1;
            assert_non_null(call.url);
        } else {
            assert_null(call.url);
            assert_null(call.body);
        }
        hark_http_call_clear(&call);
    }
    assert_true(ok);
    hark_section_free(sec);
}

static void test_read_send(void **state)
{
    struct hark_channel ch = {.name = "sms"};
    char *pmid = NULL;
    char err[256];
    const char *created = "{\"sid\":\"SM1234567890abcdef1234567890abcdef\",\"status\":\"queued\","
                          "\"to\":\"+34612345678\",\"error_code\":null}";
    const char *bad_to = "{\"code\":21211,\"message\":\"The 'To' number is not valid.\","
                         "\"more_info\":\"https://www.twilio.com/docs/errors/21211\",\"status\":400}";
    const char *failed = "{\"sid\":\"SM1\",\"status\":\"failed\",\"error_code\":30007}";
    const char *limit = "{\"code\":20429,\"message\":\"Too Many Requests\",\"status\":429}";
    (void)state;

    assert_int_equal(twilio_read_send(&ch, 201, created, strlen(created), &pmid, err, sizeof(err)),
                     HARK_SEND_OK);
    assert_string_equal(pmid, "SM1234567890abcdef1234567890abcdef");
    hark_free(pmid);
    assert_int_equal(twilio_read_send(&ch, 400, bad_to, strlen(bad_to), &pmid, err, sizeof(err)),
                     HARK_SEND_FAIL);
    assert_null(pmid);
    assert_non_null(strstr(err, "21211"));
    assert_int_equal(twilio_read_send(&ch, 429, limit, strlen(limit), &pmid, err, sizeof(err)),
                     HARK_SEND_RETRY);
    assert_int_equal(twilio_read_send(&ch, 503, "<html>", 6, &pmid, err, sizeof(err)),
                     HARK_SEND_RETRY);
    assert_int_equal(twilio_read_send(&ch, 500, NULL, 0, &pmid, err, sizeof(err)), HARK_SEND_RETRY);
    assert_int_equal(twilio_read_send(&ch, 401, "", 0, &pmid, err, sizeof(err)), HARK_SEND_FAIL);
    /* Accepted but malformed: not resent (it would duplicate), no id. */
    assert_int_equal(twilio_read_send(&ch, 201, "{\"sid\":", 7, &pmid, err, sizeof(err)),
                     HARK_SEND_OK);
    assert_null(pmid);
    assert_int_equal(twilio_read_send(&ch, 201, "[1,2]", 5, &pmid, err, sizeof(err)), HARK_SEND_OK);
    assert_null(pmid);
    assert_int_equal(twilio_read_send(&ch, 201, "{\"sid\":5}", 9, &pmid, err, sizeof(err)),
                     HARK_SEND_OK);
    assert_null(pmid);
    /* Accepted as failed right away. */
    assert_int_equal(twilio_read_send(&ch, 201, failed, strlen(failed), &pmid, err, sizeof(err)),
                     HARK_SEND_FAIL);
    assert_non_null(strstr(err, "30007"));
    assert_null(pmid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sms_request),
        cmocka_unit_test(test_whatsapp_media_and_service),
        cmocka_unit_test(test_whatsapp_from_prefixed),
        cmocka_unit_test(test_refused_requests),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_read_send),
    };
    hark_alloc_init_json();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
