/*
 * Unit tests: encodings, form parsing, phone numbers, digests, messages.
 */
#include "harness.h"

#include "hark/alloc.h"
#include "hark/codec.h"
#include "hark/crypto.h"
#include "hark/msg.h"
#include "hark/text.h"

static void test_base64_roundtrip(void **state)
{
    char enc[64];
    unsigned char dec[64];
    (void)state;

    assert_int_equal(hark_base64_encode((const unsigned char *)"", 0, enc, sizeof(enc)), 0);
    assert_int_equal(hark_base64_encode((const unsigned char *)"f", 1, enc, sizeof(enc)), 4);
    assert_string_equal(enc, "Zg==");
    assert_int_equal(hark_base64_encode((const unsigned char *)"foobar", 6, enc, sizeof(enc)), 8);
    assert_string_equal(enc, "Zm9vYmFy");
    assert_int_equal(hark_base64_encode((const unsigned char *)"fooba", 5, enc, sizeof(enc)), 8);
    assert_string_equal(enc, "Zm9vYmE=");
    assert_int_equal(hark_base64_decode("Zm9vYmE=", 8, dec, sizeof(dec)), 5);
    assert_memory_equal(dec, "fooba", 5);
    assert_int_equal(hark_base64_decode("Zm9vYmE", 7, dec, sizeof(dec)), 5);
    assert_int_equal(hark_base64_decode("Zm9v!mE=", 8, dec, sizeof(dec)), -1);
    assert_int_equal(hark_base64_decode("Z", 1, dec, sizeof(dec)), -1);
    /* Output that does not fit is refused, not truncated. */
    assert_int_equal(hark_base64_encode((const unsigned char *)"foobar", 6, enc, 8), -1);
    assert_int_equal(hark_base64_decode("Zm9vYmFy", 8, dec, 5), -1);
}

static void test_percent_decode(void **state)
{
    char out[32];
    (void)state;

    assert_int_equal(hark_percent_decode("a%20b+c", 7, out, sizeof(out), 1), 5);
    assert_string_equal(out, "a b c");
    assert_int_equal(hark_percent_decode("a+c", 3, out, sizeof(out), 0), 3);
    assert_string_equal(out, "a+c");
    assert_int_equal(hark_percent_decode("%C2%BF", 6, out, sizeof(out), 1), 2);
    assert_string_equal(out, "\xc2\xbf");
    assert_int_equal(hark_percent_decode("%4", 2, out, sizeof(out), 1), -1);
    assert_int_equal(hark_percent_decode("%", 1, out, sizeof(out), 1), -1);
    assert_int_equal(hark_percent_decode("%zz", 3, out, sizeof(out), 1), -1);
    assert_int_equal(hark_percent_decode("a%00b", 5, out, sizeof(out), 1), -1);
}

static void test_form_parse(void **state)
{
    struct hark_form form;
    const char *why = NULL;
    const char *body = "From=%2B34612345678&Body=Hola+mundo&&Empty=&Flag&Body=second";
    (void)state;

    assert_int_equal(hark_form_parse(body, strlen(body), &form, &why), 0);
    assert_int_equal(form.n, 5);
    assert_string_equal(hark_form_get(&form, "From"), "+34612345678");
    assert_string_equal(hark_form_get(&form, "Body"), "Hola mundo");
    assert_string_equal(hark_form_get(&form, "Empty"), "");
    assert_string_equal(hark_form_get(&form, "Flag"), "");
    assert_null(hark_form_get(&form, "Missing"));
    hark_form_free(&form);

    assert_int_equal(hark_form_parse("a=%G1", 5, &form, &why), -1);
    assert_string_equal(why, "malformed percent-encoding");
    hark_form_free(&form);
}

static void test_form_too_many_pairs(void **state)
{
    struct hark_form form;
    const char *why = NULL;
    size_t n = (HARK_FORM_MAX_PAIRS + 1) * 4;
    char *body = malloc(n + 1);
    (void)state;

    for (size_t i = 0; i < HARK_FORM_MAX_PAIRS + 1; i++) {
        memcpy(body + i * 4, "a=b&", 4);
    }
    body[n] = '\0';
    assert_int_equal(hark_form_parse(body, n, &form, &why), -1);
    assert_string_equal(why, "too many form fields");
    hark_form_free(&form);
    free(body);
}

static void test_form_alloc_failure(void **state)
{
    const char *body = "a=1&b=2&c=3&d=4&e=5";
    (void)state;

    /* Every allocation point fails once: no crash, no leak (ASan checks). */
    for (long k = 0; k < 20; k++) {
        struct hark_form form;
        const char *why = NULL;
        hark_alloc_fail_after(k, 0);
        if (hark_form_parse(body, strlen(body), &form, &why) < 0) {
            assert_string_equal(why, "out of memory");
        }
        hark_form_free(&form);
    }
    hark_alloc_fail_after(-1, 0);
}

static void test_phone_e164(void **state)
{
    char out[20];
    (void)state;

    assert_int_equal(hark_phone_e164("+34612345678", out, sizeof(out)), 0);
    assert_string_equal(out, "+34612345678");
    assert_int_equal(hark_phone_e164("whatsapp:+34612345678", out, sizeof(out)), 0);
    assert_string_equal(out, "+34612345678");
    assert_int_equal(hark_phone_e164("34612345678", out, sizeof(out)), 0);
    assert_string_equal(out, "+34612345678");
    assert_int_equal(hark_phone_e164("+1 (555) 765-4321", out, sizeof(out)), 0);
    assert_string_equal(out, "+15557654321");
    assert_int_equal(hark_phone_e164("0034 612 345 678", out, sizeof(out)), 0);
    assert_string_equal(out, "+34612345678");
    assert_int_equal(hark_phone_e164("tel:+447700900123", out, sizeof(out)), 0);
    assert_string_equal(out, "+447700900123");
    /* Short codes, alphanumeric senders and overlong numbers are not E.164. */
    assert_int_equal(hark_phone_e164("12345", out, sizeof(out)), -1);
    assert_int_equal(hark_phone_e164("ACME", out, sizeof(out)), -1);
    assert_int_equal(hark_phone_e164("+1234567890123456", out, sizeof(out)), -1);
    assert_int_equal(hark_phone_e164("", out, sizeof(out)), -1);
    assert_int_equal(hark_phone_e164("+0612345678", out, sizeof(out)), -1);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(hark_utf8_valid("caf\xc3\xa9", 5));
    assert_true(hark_utf8_valid("\xf0\x9f\x98\x80", 4));
    assert_false(hark_utf8_valid("\xc3", 1));
    assert_false(hark_utf8_valid("\xc0\xaf", 2));           /* overlong */
    assert_false(hark_utf8_valid("\xed\xa0\x80", 3));       /* surrogate */
    assert_false(hark_utf8_valid("\xf4\x90\x80\x80", 4));   /* > U+10FFFF */
}

static void test_json_parse_bounds(void **state)
{
    const char *why = NULL;
    char deep[200];
    json_t *j;
    (void)state;

    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    assert_null(hark_json_parse(deep, sizeof(deep), &why));
    assert_string_equal(why, "JSON nested too deeply");
    assert_null(hark_json_parse("{\"a\":\"\xff\"}", 9, &why));
    assert_string_equal(why, "body is not valid UTF-8");
    assert_null(hark_json_parse("{\"a\":", 5, &why));
    assert_string_equal(why, "malformed JSON");
    j = hark_json_parse("{\"a\":\"[[[[\",\"n\":\"42\"}", 21, &why);
    assert_non_null(j);
    assert_string_equal(hark_json_str(j, "a"), "[[[[");
    assert_int_equal(hark_json_int(j, "n", -1), 42);
    assert_int_equal(hark_json_int(j, "a", -1), -1);
    assert_null(hark_json_str(j, "n2"));
    json_decref(j);
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_true(hark_ct_equal("abc", 3, "abc", 3));
    assert_false(hark_ct_equal("abc", 3, "abd", 3));
    assert_false(hark_ct_equal("abc", 3, "abcd", 4));
    assert_true(hark_ct_equal_nocase("ABCdef09", 8, "abcDEF09", 8));
    assert_false(hark_ct_equal_nocase("abc@", 4, "abc`", 4));
}

/* Every HMAC vector in signatures.json recomputed through hark_hmac. */
static void test_hmac_vectors(void **state)
{
    json_t *all = harness_signature_vectors();
    size_t i, checked = 0;
    json_t *v;
    (void)state;

    json_array_foreach(all, i, v) {
        const char *alg = json_string_value(json_object_get(v, "algorithm"));
        const char *secret = json_string_value(json_object_get(v, "secret"));
        const char *input = json_string_value(json_object_get(v, "signed_input"));
        const char *want = json_string_value(json_object_get(v, "expected_header_value"));
        enum hark_digest d;
        unsigned char mac[HARK_DIGEST_MAX];
        char text[256];
        int n;

        if (strncmp(alg, "hmac-", 5) != 0) {
            continue;
        }
        if (strncmp(want, "sha256=", 7) == 0) {
            want += 7;
        }
        d = strstr(alg, "sha512") ? HARK_SHA512 : strstr(alg, "sha256") ? HARK_SHA256
            : strstr(alg, "sha1") ? HARK_SHA1 : HARK_MD5;
        n = hark_hmac(d, secret ? secret : "", secret ? strlen(secret) : 0, input,
                      strlen(input), mac);
        assert_true(n > 0);
        if (strstr(alg, "base64")) {
            hark_base64_encode(mac, (size_t)n, text, sizeof(text));
            assert_string_equal(text, want);
        } else {
            hark_hex_encode(mac, (size_t)n, text, sizeof(text));
            assert_true(hark_ct_equal_nocase(text, strlen(text), want, strlen(want)));
        }
        checked++;
    }
    assert_true(checked >= 20);
    json_decref(all);
}

static void test_msg_id_and_json(void **state)
{
    struct hark_msg *m = hark_msg_new(HARK_KIND_MESSAGE, "sms", "twilio", "sms-main");
    char id[HARK_MSG_ID_LEN + 1], id2[HARK_MSG_ID_LEN + 1];
    json_t *j;
    (void)state;

    assert_non_null(m);
    assert_string_equal(hark_msg_validate(m), "message has no provider message id");
    assert_int_equal(hark_strset(&m->provider_message_id, "SM1"), 0);
    assert_string_equal(hark_msg_validate(m), "message has no sender identity");
    assert_int_equal(hark_msg_add_ident(m, "phone", "+34612345678"), 0);
    assert_string_equal(hark_msg_validate(m), "message has no conversation key");
    assert_int_equal(hark_strset(&m->thread_key, "+34612345678|+15557654321"), 0);
    assert_null(hark_msg_validate(m));
    assert_int_equal(hark_strset(&m->text, "bad \xff"), 0);
    assert_string_equal(hark_msg_validate(m), "message text is not valid UTF-8");
    assert_int_equal(hark_strset(&m->text, "hola"), 0);

    hark_msg_id(m, id);
    assert_int_equal(strlen(id), HARK_MSG_ID_LEN);
    hark_derive_id("sms", "sms-main", "SM1", id2);
    assert_string_equal(id, id2);
    hark_derive_id("sms", "sms-mai", "nSM1", id2);
    assert_string_not_equal(id, id2);

    assert_int_equal(hark_msg_add_attachment(m, "https://x/1", "image/jpeg", NULL, -1, NULL), 0);
    j = hark_msg_to_json(m, id);
    assert_non_null(j);
    assert_string_equal(hark_json_str(j, "channel"), "sms");
    assert_string_equal(hark_json_str(j, "reply_text"), "hola");
    assert_int_equal(json_integer_value(json_object_get(j, "v")), 1);
    assert_true(json_is_null(json_object_get(json_array_get(json_object_get(j, "attachments"), 0), "size")));
    json_decref(j);
    hark_msg_free(m);
}

/* The direct JSON writer gives exactly jansson's compact output. */
static void test_msg_json_text_matches_jansson(void **state)
{
    char tricky[160];
    size_t n = 0;
    (void)state;

    for (int c = 1; c < 0x20; c++) {
        tricky[n++] = (char)c;
    }
    snprintf(tricky + n, sizeof(tricky) - n, "%s",
             "\"\\/\x7f caf\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80 end");
    for (int variant = 0; variant < 4; variant++) {
        struct hark_msg *m = hark_msg_new(HARK_KIND_MESSAGE, "sms", "twilio", "acct \"1\"");
        char *direct, *via_tree;
        json_t *tree;

        assert_non_null(m);
        m->received_at = 1764400000123;
        if (variant & 1) {
            m->sent_at = 1764400000000;
            m->direction = HARK_DIR_OUTBOUND;
            assert_int_equal(hark_strset(&m->subject, tricky), 0);
            assert_int_equal(hark_strset(&m->reply_text, "short"), 0);
            assert_int_equal(hark_strset(&m->from.name, "Ana \"la\" Garc\xc3\xad" "a"), 0);
            assert_int_equal(hark_strset(&m->from.handle, "@ana"), 0);
            assert_int_equal(hark_msg_add_attachment(m, "https://x/1?a=b&c", "image/png", "f\\n.png",
                                                     1234, "file-1"), 0);
            assert_int_equal(hark_msg_add_attachment(m, NULL, NULL, NULL, -1, NULL), 0);
            assert_int_equal(hark_msg_thread_set(m, "message_id", "<a@b>"), 0);
            assert_int_equal(hark_msg_extra_set(m, "n", json_integer(7)), 0);
            assert_int_equal(hark_msg_extra_set(m, "list", json_pack("[s,i,b]", tricky, 3, 1)), 0);
            m->status = "failed";
            assert_int_equal(hark_strset(&m->error, "Twilio error \"30003\""), 0);
        }
        if (variant & 2) {
            assert_int_equal(hark_strset(&m->text, tricky), 0);
            assert_int_equal(hark_strset(&m->from.id, "+34612345678"), 0);
            assert_int_equal(hark_strset(&m->to.id, "+15557654321"), 0);
            assert_int_equal(hark_strset(&m->provider_message_id, "SM\t1"), 0);
        }
        direct = hark_msg_json_text(m, "0123456789abcdef0123456789abcdef");
        tree = hark_msg_to_json(m, "0123456789abcdef0123456789abcdef");
        via_tree = json_dumps(tree, JSON_COMPACT);
        assert_non_null(direct);
        assert_non_null(via_tree);
        assert_string_equal(direct, via_tree);
        free(via_tree);
        hark_free(direct);
        json_decref(tree);
        hark_msg_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_roundtrip),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_form_parse),
        cmocka_unit_test(test_form_too_many_pairs),
        cmocka_unit_test(test_form_alloc_failure),
        cmocka_unit_test(test_phone_e164),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_json_parse_bounds),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_hmac_vectors),
        cmocka_unit_test(test_msg_id_and_json),
        cmocka_unit_test(test_msg_json_text_matches_jansson),
    };
    hark_alloc_init_json();
    return cmocka_run_group_tests_name("codec", tests, NULL, NULL);
}
