/*
 * Unit tests: IMAP framing and response parsing, command helpers, the
 * XOAUTH2 vectors of Google and Microsoft, URL and option parsing.
 */
#include "harness.h"

#include "hark/codec.h"
#include "../../adapters/imap/imap_proto.h"

/* Frame s fed in pieces of `step` bytes; returns the framed length or -1/0. */
static ssize_t frame_in_steps(const char *s, size_t len, size_t step, uint64_t max)
{
    struct imap_framer f;
    ssize_t r = 0;
    memset(&f, 0, sizeof(f));
    for (size_t have = step < len ? step : len;; have += step) {
        if (have > len) {
            have = len;
        }
        r = imap_frame(&f, s, have, max);
        if (r != 0 || have == len) {
            return r;
        }
    }
}

static void test_frame_lines_and_literals(void **state)
{
    const char *two = "* OK ready\r\n* 1 EXISTS\r\n";
    const char *lit = "* 1 FETCH (UID 7 BODY[] {11}\r\nHello\r\nBye! RFC822.SIZE 11)\r\nA1 OK\r\n";
    struct imap_framer f;
    (void)state;

    memset(&f, 0, sizeof(f));
    assert_int_equal(imap_frame(&f, two, strlen(two), 100), 12);
    /* A literal is skipped whole, even when it contains CRLF. */
    assert_int_equal(frame_in_steps(lit, strlen(lit), 1000, 100), strlen(lit) - 7);
    /* Split across reads at every possible size gives the same frame. */
    for (size_t step = 1; step < 20; step++) {
        assert_int_equal(frame_in_steps(lit, strlen(lit), step, 100), strlen(lit) - 7);
    }
    /* Not complete yet. */
    memset(&f, 0, sizeof(f));
    assert_int_equal(imap_frame(&f, lit, 35, 100), 0);
    /* The literal exceeds the bound. */
    assert_int_equal(frame_in_steps(lit, strlen(lit), 1000, 10), -1);
    /* "{x}" that is not a number is text, not a literal. */
    memset(&f, 0, sizeof(f));
    assert_int_equal(imap_frame(&f, "* OK {abc}\r\n", 12, 100), 12);
    /* Non-synchronizing literal marker and bare LF. */
    memset(&f, 0, sizeof(f));
    assert_int_equal(imap_frame(&f, "* X {2+}\nab\n", 12, 100), 12);
}

static void test_frame_bounds(void **state)
{
    size_t n = IMAP_LINE_MAX + 10;
    char *big = malloc(n);
    struct imap_framer f;
    char many[2048];
    size_t o = 0;
    (void)state;

    memset(big, 'a', n);
    memset(&f, 0, sizeof(f));
    assert_int_equal(imap_frame(&f, big, n, 100), -1);
    free(big);
    /* Absurd literal length. */
    memset(&f, 0, sizeof(f));
    assert_int_equal(imap_frame(&f, "* X {99999999999999999999}\r\n", 28, UINT64_MAX), -1);
    /* Too many literals in one response. */
    o += (size_t)snprintf(many + o, sizeof(many) - o, "* 1 FETCH (");
    for (int i = 0; i < IMAP_LITERALS_MAX + 1; i++) {
        o += (size_t)snprintf(many + o, sizeof(many) - o, "X {1}\r\nx ");
    }
    o += (size_t)snprintf(many + o, sizeof(many) - o, ")\r\n");
    memset(&f, 0, sizeof(f));
    assert_int_equal(imap_frame(&f, many, o, 100), -1);
}

static int parse(const char *s, struct imap_resp *r)
{
    return imap_parse(s, strlen(s), r);
}

static void test_parse_greetings(void **state)
{
    struct imap_resp r;
    (void)state;

    assert_int_equal(parse("* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE "
                           "LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.\r\n", &r), 0);
    assert_int_equal(r.type, IMAP_R_UNTAGGED);
    assert_int_equal(r.status, IMAP_ST_OK);
    assert_int_equal(r.code, IMAP_C_CAPABILITY);
    assert_true(r.has_caps);
    assert_int_equal(r.caps, IMAP_CAP_IMAP4REV1 | IMAP_CAP_SASL_IR | IMAP_CAP_IDLE
                                 | IMAP_CAP_LITERALPLUS | IMAP_CAP_STARTTLS
                                 | IMAP_CAP_AUTH_PLAIN);
    assert_string_equal(r.text, "Dovecot ready.");

    assert_int_equal(parse("* PREAUTH IMAP4rev1 server logged in as Smith\r\n", &r), 0);
    assert_int_equal(r.status, IMAP_ST_PREAUTH);
    assert_int_equal(parse("* BYE Autologout; idle for too long\r\n", &r), 0);
    assert_int_equal(r.status, IMAP_ST_BYE);
    assert_int_equal(parse("* ok lower case works\n", &r), 0);
    assert_int_equal(r.status, IMAP_ST_OK);
}

static void test_parse_capability_and_tagged(void **state)
{
    struct imap_resp r;
    (void)state;

    assert_int_equal(parse("* CAPABILITY IMAP4rev1 IDLE MOVE UIDPLUS AUTH=XOAUTH2 "
                           "LOGINDISABLED X-UNKNOWN\r\n", &r), 0);
    assert_int_equal(r.data, IMAP_D_CAPABILITY);
    assert_int_equal(r.caps, IMAP_CAP_IMAP4REV1 | IMAP_CAP_IDLE | IMAP_CAP_MOVE
                                 | IMAP_CAP_UIDPLUS | IMAP_CAP_AUTH_XOAUTH2
                                 | IMAP_CAP_LOGINDISABLED);

    assert_int_equal(parse("A0003 OK [READ-WRITE] SELECT completed\r\n", &r), 0);
    assert_int_equal(r.type, IMAP_R_TAGGED);
    assert_string_equal(r.tag, "A0003");
    assert_int_equal(r.status, IMAP_ST_OK);
    assert_int_equal(r.code, IMAP_C_OTHER);
    assert_string_equal(r.text, "SELECT completed");

    assert_int_equal(parse("A2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", &r), 0);
    assert_int_equal(r.status, IMAP_ST_NO);
    assert_int_equal(r.code, IMAP_C_AUTHFAILED);
    assert_int_equal(parse("A3 BAD junk\r\n", &r), 0);
    assert_int_equal(r.status, IMAP_ST_BAD);
    assert_int_equal(parse("A9 NO [TRYCREATE] no such mailbox\r\n", &r), 0);
    assert_int_equal(r.code, IMAP_C_TRYCREATE);

    /* Malformed. */
    assert_int_equal(parse("A3 MAYBE\r\n", &r), -1);
    assert_int_equal(parse("A0000000000000000000000000 OK\r\n", &r), -1);
    assert_int_equal(parse("*OK\r\n", &r), -1);
    assert_int_equal(parse("A1 OK [UIDNEXT\r\n", &r), -1);
    assert_int_equal(parse("A1 OK", &r), -1);
    assert_int_equal(parse("", &r), -1);
}

static void test_parse_select(void **state)
{
    struct imap_resp r;
    (void)state;

    assert_int_equal(parse("* 172 EXISTS\r\n", &r), 0);
    assert_int_equal(r.data, IMAP_D_EXISTS);
    assert_int_equal(r.number, 172);
    assert_int_equal(parse("* 1 RECENT\r\n", &r), 0);
    assert_int_equal(r.data, IMAP_D_RECENT);
    assert_int_equal(parse("* 3 EXPUNGE\r\n", &r), 0);
    assert_int_equal(r.data, IMAP_D_EXPUNGE);
    assert_int_equal(parse("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n", &r), 0);
    assert_int_equal(r.code, IMAP_C_UIDVALIDITY);
    assert_int_equal(r.code_num, 3857529045ull);
    assert_int_equal(parse("* OK [UIDNEXT 4392] Predicted next UID\r\n", &r), 0);
    assert_int_equal(r.code, IMAP_C_UIDNEXT);
    assert_int_equal(r.code_num, 4392);
    assert_int_equal(parse("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n", &r), 0);
    assert_int_equal(r.data, IMAP_D_FLAGS);
    assert_int_equal(parse("* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n", &r), 0);
    assert_int_equal(r.code, IMAP_C_OTHER);
    assert_int_equal(parse("* 99999999999 EXISTS\r\n", &r), -1);
    assert_int_equal(parse("* OK [UIDVALIDITY x] bad\r\n", &r), -1);
}

static void test_parse_fetch(void **state)
{
    struct imap_resp r;
    const char *f1 = "* 12 FETCH (UID 4827 RFC822.SIZE 44 FLAGS (\\Seen) "
                     "INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" BODY[] {11}\r\n"
                     "Hello\r\nBye!)\r\n";
    (void)state;

    assert_int_equal(parse(f1, &r), 0);
    assert_int_equal(r.data, IMAP_D_FETCH);
    assert_int_equal(r.number, 12);
    assert_true(r.has_uid);
    assert_int_equal(r.uid, 4827);
    assert_true(r.has_size);
    assert_int_equal(r.size, 44);
    assert_true(r.seen);
    assert_true(r.has_body);
    assert_int_equal(r.body_len, 11);
    assert_memory_equal(r.body, "Hello\r\nBye!", 11);

    assert_int_equal(parse("* 1 FETCH (BODY[HEADER]<0> {3}\r\nab\n UID 9)\r\n", &r), 0);
    assert_int_equal(r.uid, 9);
    assert_int_equal(r.body_len, 3);
    assert_false(r.seen);
    assert_int_equal(parse("* 1 FETCH (UID 5 BODY[] NIL)\r\n", &r), 0);
    assert_false(r.has_body);
    assert_int_equal(parse("* 1 FETCH (UID 5 ENVELOPE (\"d\" \"s\" ((NIL NIL \"a\" \"b\")) NIL))\r\n",
                           &r), 0);
    assert_int_equal(r.uid, 5);

    /* Malformed or out of bounds. */
    assert_int_equal(parse("* 1 FETCH (UID 0)\r\n", &r), -1);
    assert_int_equal(parse("* 1 FETCH (UID 4294967296)\r\n", &r), -1);
    assert_int_equal(parse("* 1 FETCH (BODY[] {30}\r\nshort)\r\n", &r), -1);
    assert_int_equal(parse("* 1 FETCH (X ((((((((((1))))))))))\r\n", &r), -1);
    assert_int_equal(parse("* 1 FETCH (BODY[ {1}\r\nx)\r\n", &r), -1);
    assert_int_equal(parse("* 1 FETCH UID 5\r\n", &r), -1);
    assert_int_equal(parse("* 1 FETCH (UID 5\r\n", &r), -1);
}

static void test_parse_continuation(void **state)
{
    struct imap_resp r;
    (void)state;

    assert_int_equal(parse("+ eyJzdGF0dXMiOiI0MDEifQ==\r\n", &r), 0);
    assert_int_equal(r.type, IMAP_R_CONTINUE);
    assert_int_equal(r.cont_len, 24);
    assert_memory_equal(r.cont, "eyJzdGF0dXMiOiI0MDEifQ==", 24);
    assert_int_equal(parse("+\r\n", &r), 0);
    assert_int_equal(r.cont_len, 0);
}

/* The official XOAUTH2 initial responses of Google and Microsoft, computed from their parts. */
static void check_xoauth2_vector(json_t *all, const char *provider)
{
    json_t *v = harness_find_vector(all, provider, "XOAUTH2 initial");
    const char *input = json_string_value(json_object_get(v, "signed_input"));
    const char *expected = json_string_value(json_object_get(v, "expected_header_value"));
    char user[256];
    char token[512];
    char out[2048];
    const char *u;
    const char *a;
    const char *end;

    assert_non_null(input);
    assert_non_null(expected);
    /* signed_input is "user=U\001auth=Bearer T\001\001": take U and T apart. */
    assert_int_equal(strncmp(input, "user=", 5), 0);
    u = input + 5;
    a = strchr(u, '\001');
    assert_non_null(a);
    snprintf(user, sizeof(user), "%.*s", (int)(a - u), u);
    assert_int_equal(strncmp(a, "\001auth=Bearer ", 13), 0);
    end = strchr(a + 13, '\001');
    assert_non_null(end);
    snprintf(token, sizeof(token), "%.*s", (int)(end - (a + 13)), a + 13);

    assert_int_equal(imap_xoauth2(user, token, out, sizeof(out)), strlen(expected));
    assert_string_equal(out, expected);
    assert_int_equal(imap_xoauth2(user, token, out, 10), -1);
}

static void test_xoauth2_vectors(void **state)
{
    json_t *all = harness_signature_vectors();
    json_t *v;
    const char *b64;
    const char *plain;
    unsigned char dec[512];
    ssize_t n;
    struct imap_resp r;
    char line[512];
    (void)state;

    check_xoauth2_vector(all, "gmail");
    check_xoauth2_vector(all, "microsoft");

    /* The error challenge arrives as a continuation whose text decodes to JSON. */
    v = harness_find_vector(all, "gmail", "XOAUTH2 error challenge");
    b64 = json_string_value(json_object_get(v, "expected_header_value"));
    plain = json_string_value(json_object_get(v, "signed_input"));
    snprintf(line, sizeof(line), "+ %s\r\n", b64);
    assert_int_equal(parse(line, &r), 0);
    assert_int_equal(r.type, IMAP_R_CONTINUE);
    n = hark_base64_decode(r.cont, r.cont_len, dec, sizeof(dec));
    assert_int_equal(n, strlen(plain));
    assert_memory_equal(dec, plain, (size_t)n);
    json_decref(all);
}

static void test_sasl_plain_and_quote(void **state)
{
    char out[256];
    (void)state;

    assert_int_equal(imap_sasl_plain("tim", "tanstaaftanstaaf", out, sizeof(out)), 28);
    /* RFC 4616 example "\0tim\0tanstaaftanstaaf". */
    assert_string_equal(out, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    assert_int_equal(imap_sasl_plain("", "x", out, sizeof(out)), -1);

    assert_int_equal(imap_quote("a\"b\\c", out, sizeof(out), 0), 9);
    assert_string_equal(out, "\"a\\\"b\\\\c\"");
    memcpy(out, "LOGIN ", 6);
    assert_int_equal(imap_quote("u", out, sizeof(out), 6), 9);
    assert_string_equal(out, "LOGIN \"u\"");
    assert_int_equal(imap_quote("a\r\nb", out, sizeof(out), 0), -1);
    assert_int_equal(imap_quote("caf\xc3\xa9", out, sizeof(out), 0), -1);
    assert_int_equal(imap_quote("abcdef", out, 5, 0), -1);
}

static void test_url(void **state)
{
    struct imap_url u;
    char why[128];
    (void)state;

    assert_int_equal(imap_url_parse("imaps://mail.example.com/INBOX", &u, why, sizeof(why)), 0);
    assert_true(u.tls);
    assert_int_equal(u.port, 993);
    assert_string_equal(u.host, "mail.example.com");
    assert_string_equal(u.mailbox, "INBOX");
    assert_int_equal(imap_url_parse("imap://127.0.0.1:10143", &u, why, sizeof(why)), 0);
    assert_false(u.tls);
    assert_int_equal(u.port, 10143);
    assert_string_equal(u.mailbox, "INBOX");
    assert_int_equal(imap_url_parse("imaps://[::1]:993/Support%20Mail", &u, why, sizeof(why)), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.mailbox, "Support Mail");

    assert_int_equal(imap_url_parse("http://x/", &u, why, sizeof(why)), -1);
    assert_int_equal(imap_url_parse("imaps://user:pw@x/", &u, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "credentials"));
    assert_int_equal(imap_url_parse("imaps://x:0/", &u, why, sizeof(why)), -1);
    assert_int_equal(imap_url_parse("imaps://x:99999/", &u, why, sizeof(why)), -1);
    assert_int_equal(imap_url_parse("imaps://x:12a/", &u, why, sizeof(why)), -1);
    assert_int_equal(imap_url_parse("imaps:///INBOX", &u, why, sizeof(why)), -1);
    assert_int_equal(imap_url_parse("imaps://[::1/INBOX", &u, why, sizeof(why)), -1);
    assert_int_equal(imap_url_parse("imaps://x/IN%0D%0ABOX", &u, why, sizeof(why)), -1);
    assert_int_equal(imap_url_parse("imaps://x/a*", &u, why, sizeof(why)), -1);
    assert_int_equal(imap_url_parse("imaps://x y/", &u, why, sizeof(why)), -1);
}

static void test_after_and_backoff(void **state)
{
    enum imap_after a;
    char folder[64];
    (void)state;

    assert_int_equal(imap_after_parse("keep", &a, folder, sizeof(folder)), 0);
    assert_int_equal(a, IMAP_AFTER_KEEP);
    assert_int_equal(imap_after_parse(NULL, &a, folder, sizeof(folder)), 0);
    assert_int_equal(imap_after_parse("seen", &a, folder, sizeof(folder)), 0);
    assert_int_equal(a, IMAP_AFTER_SEEN);
    assert_int_equal(imap_after_parse("move:Archive/hark", &a, folder, sizeof(folder)), 0);
    assert_int_equal(a, IMAP_AFTER_MOVE);
    assert_string_equal(folder, "Archive/hark");
    assert_int_equal(imap_after_parse("move:", &a, folder, sizeof(folder)), -1);
    assert_int_equal(imap_after_parse("delete", &a, folder, sizeof(folder)), -1);

    /* 1 s doubling to 5 min, jittered into [d/2, d]. */
    assert_int_equal(imap_backoff_ms(0, 0), 500);
    assert_int_equal(imap_backoff_ms(0, 500), 1000);
    assert_int_equal(imap_backoff_ms(1, 0), 1000);
    assert_int_equal(imap_backoff_ms(3, 4000), 8000);
    assert_int_equal(imap_backoff_ms(30, 0), 150000);
    assert_int_equal(imap_backoff_ms(1000, 150000), 300000);
    for (uint32_t rnd = 0; rnd < 100000; rnd += 7919) {
        int64_t d = imap_backoff_ms(5, rnd);
        assert_true(d >= 16000 && d <= 32000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_lines_and_literals),
        cmocka_unit_test(test_frame_bounds),
        cmocka_unit_test(test_parse_greetings),
        cmocka_unit_test(test_parse_capability_and_tagged),
        cmocka_unit_test(test_parse_select),
        cmocka_unit_test(test_parse_fetch),
        cmocka_unit_test(test_parse_continuation),
        cmocka_unit_test(test_xoauth2_vectors),
        cmocka_unit_test(test_sasl_plain_and_quote),
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_after_and_backoff),
    };
    return cmocka_run_group_tests_name("imap_proto", tests, NULL, NULL);
}
