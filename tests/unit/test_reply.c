/*
 * Unit tests: focused cases of hark_reply_strip() (the corpus test covers
 * whole replies; these pin one rule each) and allocation failures.
 */
#include "harness.h"

#include "hark/alloc.h"
#include "hark/text.h"
#include "../../adapters/imap/mime.h"

/* Strip s and compare with want. */
static void strip_is(const char *s, const char *want)
{
    char *got = hark_reply_strip(s, strlen(s));

    assert_non_null(got);
    if (strcmp(got, want) != 0) {
        fail_msg("input:\n%s\nexpected:\n%s\ngot:\n%s", s, want, got);
    }
    hark_free(got);
}

static void test_empty_and_plain(void **state)
{
    (void)state;
    strip_is("", "");
    strip_is("\n\n  \n", "");
    strip_is("Just one line", "Just one line");
    strip_is("trailing spaces   \nand tabs\t\t\n\n\n", "trailing spaces\nand tabs");
    strip_is("a\n\n\n\nb", "a\n\nb");
}

static void test_attributions(void **state)
{
    (void)state;
    strip_is("ok\nOn Mon, 4 Mar 2024, Bob <b@x.example> wrote:\n> q", "ok");
    strip_is("ok\nOn Mon, 4 Mar 2024, Bob <b@x.example>\nwrote:\n> q", "ok");
    strip_is("ok\nEl 4 mar 2024, Bob escribió:\n> q", "ok");
    strip_is("ok\nEm 4 de mar. de 2024, Bob escreveu:\n> q", "ok");
    strip_is("ok\nLe 4 mars 2024, Bob a écrit :\n> q", "ok");
    strip_is("ok\nAm 04.03.2024 um 10:12 schrieb Bob <b@x.example>:\n> q", "ok");
    strip_is("ok\nBob <b@x.example> schrieb am 04.03.2024:\n> q", "ok");
    /* Unquoted history after the attribution: all of it goes. */
    strip_is("ok\nOn 4 Mar 2024 Bob <b@x.example> wrote:\nold text\nmore", "ok");
}

static void test_wrote_in_prose(void **state)
{
    (void)state;
    /* No date or address: not an attribution. */
    strip_is("As Bob wrote:\nthe fix works.", "As Bob wrote:\nthe fix works.");
    /* Not at the end of the line. */
    strip_is("On Monday Bob wrote: call me.", "On Monday Bob wrote: call me.");
    /* Three joined lines that end in a sentence are not one. */
    strip_is("On Monday we spoke.\nI wrote to 3 people:\nnobody answered",
             "On Monday we spoke.\nI wrote to 3 people:\nnobody answered");
}

static void test_inline_and_quotes(void **state)
{
    (void)state;
    strip_is("> q1\na1\n> q2\na2", "a1\na2");
    strip_is("  > indented quote\nanswer", "answer");
    strip_is("On 4 Mar 2024 Bob <b@x.example> wrote:\n> q1\n\na1\n\n> q2\n\na2\n-- \nsig",
             "a1\n\na2");
}

static void test_outlook_blocks(void **state)
{
    (void)state;
    strip_is("ok\n-----Original Message-----\nFrom: x", "ok");
    strip_is("ok\n-----Mensaje original-----\nDe: x", "ok");
    strip_is("ok\n-----Message d'origine-----\nDe : x", "ok");
    strip_is("ok\n-----Ursprüngliche Nachricht-----\nVon: x", "ok");
    strip_is("ok\n*From:* A\n*Sent:* B\n*To:* C\n*Subject:* D\nold", "ok");
    strip_is("ok\nDe : A\nEnvoyé : B\nÀ : C\nObjet : D\nold", "ok");
    strip_is("ok\nVon: A\nGesendet: B\nAn: C\nBetreff: D\nold", "ok");
    strip_is("ok\nDe: A\nEnviado: B\nPara: C\nAsunto: D\nold", "ok");
    /* One header-like line alone is prose. */
    strip_is("From: my side, all good.\nBye", "From: my side, all good.\nBye");
    strip_is("ok\n________________________________\nanything", "ok");
    strip_is("ok\n__________\nshort rule stays", "ok\n__________\nshort rule stays");
}

static void test_signatures(void **state)
{
    (void)state;
    strip_is("ok\n-- \nJohn\n555", "ok");
    strip_is("ok\n\nSent from my iPhone", "ok");
    strip_is("ok\n\nEnviado desde mi Samsung Galaxy", "ok");
    strip_is("ok\n\nEnvoyé de mon iPhone", "ok");
    strip_is("ok\n\nVon meinem iPhone gesendet", "ok");
    strip_is("ok\n\nEnviado do meu iPhone", "ok");
    strip_is("ok\n\nGet Outlook for iOS<https://aka.ms/o0ukef>", "ok");
    /* German prose starting like the device line stays. */
    strip_is("Von meinem Kollegen weiß ich, dass es geht.", "Von meinem Kollegen weiß ich, dass es geht.");
    /* A contact block after the closing and the name goes; the closing stays. */
    strip_is("Hi\n\nThanks,\nAmy\nSales | Acme\n+1 555 000 1111", "Hi\n\nThanks,\nAmy");
    /* ... but a real paragraph after the closing stays. */
    strip_is("Thanks,\nAmy\n\nP.S. could you also check the second invoice from last week please?",
             "Thanks,\nAmy\n\nP.S. could you also check the second invoice from last week please?");
}

static void test_crlf_and_invalid(void **state)
{
    char *got;
    static const char bad[] = "ok \xff\xfe\r\n> q\r\n";
    (void)state;

    strip_is("a\r\nb\r\n> c\r\n", "a\nb");
    got = hark_reply_strip(bad, sizeof(bad) - 1);
    assert_non_null(got);
    assert_string_equal(got, "ok \xff\xfe");    /* bytes pass through; the parser cleans first */
    hark_free(got);
    got = hark_reply_strip(NULL, 0);
    assert_string_equal(got, "");
    hark_free(got);
}

static void test_many_lines(void **state)
{
    size_t n = 50000, i;
    char *s = malloc(n * 2 + 1), *got;
    (void)state;

    for (i = 0; i < n; i++) {
        s[2 * i] = 'a';
        s[2 * i + 1] = '\n';
    }
    s[2 * n] = '\0';
    got = hark_reply_strip(s, 2 * n);
    assert_non_null(got);
    assert_true(strlen(got) > 0);
    hark_free(got);
    free(s);
}

static void test_alloc_failure(void **state)
{
    static const char *text = "Hi\nOn 4 Mar 2024 Bob <b@x.example> wrote:\n> q";
    char *got;
    (void)state;

    hark_alloc_fail_after(0, 0);
    assert_null(hark_reply_strip(text, strlen(text)));
    hark_alloc_fail_after(1, 0);
    assert_null(hark_reply_strip(text, strlen(text)));
    hark_alloc_fail_after(2, 0);
    assert_null(hark_reply_strip(text, strlen(text)));
    hark_alloc_fail_after(-1, 0);
    got = hark_reply_strip(text, strlen(text));
    assert_string_equal(got, "Hi");
    hark_free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_plain),
        cmocka_unit_test(test_attributions),
        cmocka_unit_test(test_wrote_in_prose),
        cmocka_unit_test(test_inline_and_quotes),
        cmocka_unit_test(test_outlook_blocks),
        cmocka_unit_test(test_signatures),
        cmocka_unit_test(test_crlf_and_invalid),
        cmocka_unit_test(test_many_lines),
        cmocka_unit_test(test_alloc_failure),
    };
    hark_alloc_init_json();
    return cmocka_run_group_tests_name("reply", tests, NULL, NULL);
}
