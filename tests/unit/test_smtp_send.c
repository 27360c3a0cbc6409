/*
 * Unit tests: email replies (threading headers, encodings, SMTP call,
 * classification of the SMTP outcome).
 */
#include "harness.h"

#include "hark/alloc.h"
#include "hark/codec.h"
#include "hark/conf.h"
#include "../../adapters/imap/smtp_send.h"

static const char *const secret_keys[] = {"password", "oauth_token", NULL};

/* 2025-07-01T10:00:00Z, a Tuesday. */
#define NOW_MS 1751364000000LL

static struct hark_outbound outbound(void)
{
    struct hark_outbound ob = {
        .message_id = "0123456789abcdef0123456789abcdef",
        .conversation_id = "c1",
        .channel = "email",
        .to = "ana@example.org",
        .from = "support@shop.example",
        .text = "Hello Ana,\nyour order ships today.\n",
        .reply_to = "<CAF1@mail.example.org>",
        .subject = "Re: RE: Order 42",
        .references = "<root@mail.example.org> <CAF0@shop.example>",
    };
    return ob;
}

/* The value of header name in msg (first occurrence, unfolded), copied into out. */
static const char *header(const char *msg, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *p = msg;
    size_t o = 0;

    while (*p && !(p[0] == '\r' && p[1] == '\n')) {
        if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            p += nlen + 1;
            while (*p == ' ') {
                p++;
            }
            while (*p && o + 1 < cap) {
                if (p[0] == '\r' && p[1] == '\n') {
                    if (p[2] != ' ' && p[2] != '\t') {
                        break;
                    }
                    p += 2;
                    continue;
                }
                out[o++] = *p++;
            }
            out[o] = '\0';
            return out;
        }
        p = strstr(p, "\r\n");
        assert_non_null(p);
        p += 2;
    }
    return NULL;
}

static void test_threading_headers(void **state)
{
    struct hark_outbound ob = outbound();
    char err[256], v[1024];
    size_t len;
    char *msg;
    (void)state;

    msg = smtp_compose(&ob, "Shop Support <support@shop.example>",
                       "<hark.0123@shop.example>", NOW_MS, &len, err, sizeof(err));
    assert_non_null(msg);
    assert_int_equal(strlen(msg), len);
    assert_string_equal(header(msg, "From", v, sizeof(v)), "Shop Support <support@shop.example>");
    assert_string_equal(header(msg, "To", v, sizeof(v)), "ana@example.org");
    assert_string_equal(header(msg, "Subject", v, sizeof(v)), "Re: Order 42");
    assert_string_equal(header(msg, "Date", v, sizeof(v)), "Tue, 01 Jul 2025 10:00:00 +0000");
    assert_string_equal(header(msg, "Message-ID", v, sizeof(v)), "<hark.0123@shop.example>");
    assert_string_equal(header(msg, "In-Reply-To", v, sizeof(v)), "<CAF1@mail.example.org>");
    assert_string_equal(header(msg, "References", v, sizeof(v)),
                        "<root@mail.example.org> <CAF0@shop.example> <CAF1@mail.example.org>");
    assert_string_equal(header(msg, "MIME-Version", v, sizeof(v)), "1.0");
    assert_string_equal(header(msg, "Content-Type", v, sizeof(v)), "text/plain; charset=utf-8");
    assert_string_equal(header(msg, "Content-Transfer-Encoding", v, sizeof(v)), "7bit");
    assert_non_null(strstr(msg, "\r\n\r\nHello Ana,\r\nyour order ships today.\r\n"));
    /* Every line ends in CRLF. */
    for (const char *p = msg; (p = strchr(p, '\n')) != NULL; p++) {
        assert_int_equal(p[-1], '\r');
    }
    free(msg);

    /* Bare ids get brackets; an id already in References is not repeated. */
    ob.reply_to = "CAF0@shop.example";
    ob.references = "root@mail.example.org CAF0@shop.example";
    msg = smtp_compose(&ob, "support@shop.example", "<m@x>", NOW_MS, &len, err, sizeof(err));
    assert_string_equal(header(msg, "In-Reply-To", v, sizeof(v)), "<CAF0@shop.example>");
    assert_string_equal(header(msg, "References", v, sizeof(v)),
                        "<root@mail.example.org> <CAF0@shop.example>");
    free(msg);

    /* Tokens that are not Message-IDs (no '@', e.g. hashes) are left out. */
    ob.reply_to = "<CAF1@mail.example.org>";
    ob.references = "0123456789abcdef0123456789abcdef <root@mail.example.org>";
    msg = smtp_compose(&ob, "support@shop.example", "<m@x>", NOW_MS, &len, err, sizeof(err));
    assert_string_equal(header(msg, "References", v, sizeof(v)),
                        "<root@mail.example.org> <CAF1@mail.example.org>");
    free(msg);

    /* No references at all: neither header. */
    ob.reply_to = NULL;
    ob.references = NULL;
    msg = smtp_compose(&ob, "support@shop.example", "<m@x>", NOW_MS, &len, err, sizeof(err));
    assert_null(header(msg, "In-Reply-To", v, sizeof(v)));
    assert_null(header(msg, "References", v, sizeof(v)));
    free(msg);
}

static void test_references_bounded(void **state)
{
    struct hark_outbound ob = outbound();
    char refs[8192], err[256], v[8192];
    size_t len, o = 0, count = 0;
    char *msg;
    (void)state;

    for (int i = 0; i < 100; i++) {
        o += (size_t)snprintf(refs + o, sizeof(refs) - o, "%s<r%d@x>", i ? " " : "", i);
    }
    ob.references = refs;
    ob.reply_to = "<last@x>";
    msg = smtp_compose(&ob, "a@b", "<m@x>", NOW_MS, &len, err, sizeof(err));
    assert_non_null(header(msg, "References", v, sizeof(v)));
    for (const char *p = v; (p = strchr(p, '<')) != NULL; p++) {
        count++;
    }
    assert_int_equal(count, SMTP_MAX_REFERENCES + 1);
    assert_true(strncmp(v, "<r0@x> <r61@x>", 14) == 0);   /* the root, then the newest */
    assert_non_null(strstr(v, "<r99@x> <last@x>"));
    free(msg);
}

static void test_subject(void **state)
{
    char *s;
    (void)state;
    s = smtp_reply_subject("Order 42");
    assert_string_equal(s, "Re: Order 42");
    hark_free(s);
    s = smtp_reply_subject("re: RE : Re:Order 42");
    assert_string_equal(s, "Re: Order 42");
    hark_free(s);
    s = smtp_reply_subject("Reorder");
    assert_string_equal(s, "Re: Reorder");
    hark_free(s);
    s = smtp_reply_subject(NULL);
    assert_string_equal(s, "Re: ");
    hark_free(s);
}

static void test_non_ascii(void **state)
{
    struct hark_outbound ob = outbound();
    char err[256], v[2048];
    size_t len;
    char *msg, *body;
    (void)state;

    ob.subject = "Pedido nº 42: ¿dónde está? Ünïcödé characters repeated for a long subject line";
    ob.text = "Olá, açúcar = 2 €   \nline two\t\n";
    msg = smtp_compose(&ob, "support@shop.example", "<m@x>", NOW_MS, &len, err, sizeof(err));
    assert_non_null(msg);
    assert_non_null(header(msg, "Subject", v, sizeof(v)));
    assert_true(strncmp(v, "=?UTF-8?B?", 10) == 0);
    /* Encoded words stay within 75 characters and decode back to the subject. */
    {
        char joined[512] = "";
        size_t jl = 0;
        const char *p = v;
        while ((p = strstr(p, "=?UTF-8?B?")) != NULL) {
            const char *e = strstr(p + 10, "?=");
            unsigned char dec[128];
            ssize_t n;
            assert_non_null(e);
            assert_true(e + 2 - p <= 75);
            n = hark_base64_decode(p + 10, (size_t)(e - p - 10), dec, sizeof(dec));
            assert_true(n > 0);
            /* Each word holds whole characters. */
            assert_true((dec[0] & 0xC0) != 0x80);
            memcpy(joined + jl, dec, (size_t)n);
            jl += (size_t)n;
            p = e + 2;
        }
        joined[jl] = '\0';
        assert_string_equal(joined, "Re: Pedido nº 42: ¿dónde está? Ünïcödé characters repeated "
                                    "for a long subject line");
    }
    assert_string_equal(header(msg, "Content-Transfer-Encoding", v, sizeof(v)), "quoted-printable");
    body = strstr(msg, "\r\n\r\n");
    assert_non_null(body);
    assert_string_equal(body + 4, "Ol=C3=A1, a=C3=A7=C3=BAcar =3D 2 =E2=82=AC  =20\r\nline two=09\r\n");
    free(msg);
}

static void test_long_lines_soft_breaks(void **state)
{
    struct hark_outbound ob = outbound();
    char err[256];
    char text[2100];
    size_t len;
    char *msg, *body;
    (void)state;

    memset(text, 'a', 2000);
    text[2000] = '\0';
    ob.text = text;
    msg = smtp_compose(&ob, "a@b", "<m@x>", NOW_MS, &len, err, sizeof(err));
    body = strstr(msg, "\r\n\r\n") + 4;
    for (const char *p = body; *p;) {
        const char *eol = strstr(p, "\r\n");
        assert_non_null(eol);
        assert_true(eol - p <= 76);
        p = eol + 2;
    }
    free(msg);
}

static void test_header_injection_refused(void **state)
{
    struct hark_outbound ob = outbound();
    char err[256], v[256];
    size_t len;
    char *msg;
    (void)state;

    ob.to = "ana@example.org\r\nBcc: all@example.org";
    assert_null(smtp_compose(&ob, "a@b", "<m@x>", NOW_MS, &len, err, sizeof(err)));
    ob = outbound();
    ob.reply_to = "<x@y>\r\nBcc: z@y";
    assert_null(smtp_compose(&ob, "a@b", "<m@x>", NOW_MS, &len, err, sizeof(err)));
    /* A subject from the customer is flattened, not refused. */
    ob = outbound();
    ob.subject = "Hi\r\nBcc: all@example.org";
    msg = smtp_compose(&ob, "a@b", "<m@x>", NOW_MS, &len, err, sizeof(err));
    assert_non_null(msg);
    assert_null(header(msg, "Bcc", v, sizeof(v)));
    assert_string_equal(header(msg, "Subject", v, sizeof(v)), "Re: Hi  Bcc: all@example.org");
    free(msg);
}

static void test_build_send(void **state)
{
    struct hark_section *sec = hark_section_from_text(
        "channel.mail", "smtp_url = smtp://127.0.0.1:2525\nfrom = Shop <support@shop.example>\n"
        "username = support\npassword = pw\n", secret_keys);
    struct hark_channel ch = {.name = "mail", .section = sec};
    struct hark_outbound ob = outbound();
    struct hark_http_call call;
    char err[256], *pmid = NULL;
    const char *urls[] = {"https://cdn.example.com/invoice.pdf"};
    (void)state;

    ob.attachment_urls = urls;
    ob.n_attachments = 1;
    assert_int_equal(smtp_build_send(&ch, &ob, &call, err, sizeof(err)), 0);
    assert_string_equal(call.url, "smtp://127.0.0.1:2525");
    assert_string_equal(call.mail_from, "<support@shop.example>");
    assert_string_equal(call.rcpt_to, "<ana@example.org>");
    assert_string_equal(call.userpwd, "support:pw");
    assert_non_null(strstr(call.body, "Message-ID: <hark.0123456789abcdef0123456789abcdef@shop.example>\r\n"));
    assert_non_null(strstr(call.body, "https://cdn.example.com/invoice.pdf\r\n"));
    /* The provider id of a reply is its Message-ID. */
    assert_int_equal(smtp_read_send(&ch, 250, call.body, call.body_len, &pmid, err, sizeof(err)),
                     HARK_SEND_OK);
    assert_string_equal(pmid, "<hark.0123456789abcdef0123456789abcdef@shop.example>");
    hark_free(pmid);
    hark_http_call_clear(&call);

    ob.to = "not an address";
    assert_int_equal(smtp_build_send(&ch, &ob, &call, err, sizeof(err)), -1);
    ob.to = "ana@example.org>\r\nX: y";
    assert_int_equal(smtp_build_send(&ch, &ob, &call, err, sizeof(err)), -1);
    hark_section_free(sec);

    sec = hark_section_from_text("channel.mail", "from = a@b\n", secret_keys);
    ch.section = sec;
    ob = outbound();
    assert_int_equal(smtp_build_send(&ch, &ob, &call, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "smtp_url"));
    hark_section_free(sec);
}

static void test_read_send_codes(void **state)
{
    struct hark_channel ch = {.name = "mail"};
    char err[128], *pmid = NULL;
    (void)state;
    assert_int_equal(smtp_read_send(&ch, 550, "", 0, &pmid, err, sizeof(err)), HARK_SEND_FAIL);
    assert_int_equal(smtp_read_send(&ch, 451, "", 0, &pmid, err, sizeof(err)), HARK_SEND_RETRY);
    assert_int_equal(smtp_read_send(&ch, 421, "", 0, &pmid, err, sizeof(err)), HARK_SEND_RETRY);
    assert_int_equal(smtp_read_send(&ch, 0, "", 0, &pmid, err, sizeof(err)), HARK_SEND_RETRY);
    /* A header without Message-ID gives no id; the body is not searched. */
    assert_int_equal(smtp_read_send(&ch, 250, "From: a\r\n\r\nMessage-ID: <x>\r\n", 29, &pmid, err,
                                    sizeof(err)), HARK_SEND_OK);
    assert_null(pmid);
}

static void test_alloc_failures(void **state)
{
    struct hark_outbound ob = outbound();
    char err[256];
    size_t len;
    int ok = 0;
    (void)state;

    ob.text = "Olá\n";
    for (long n = 0; n < 100 && !ok; n++) {
        char *msg;
        hark_alloc_fail_after(n, 0);
        msg = smtp_compose(&ob, "a@b", "<m@x>", NOW_MS, &len, err, sizeof(err));
        hark_alloc_fail_after(-1, 0);
        ok = msg != NULL;
        hark_free(msg);
    }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threading_headers),
        cmocka_unit_test(test_references_bounded),
        cmocka_unit_test(test_subject),
        cmocka_unit_test(test_non_ascii),
        cmocka_unit_test(test_long_lines_soft_breaks),
        cmocka_unit_test(test_header_injection_refused),
        cmocka_unit_test(test_build_send),
        cmocka_unit_test(test_read_send_codes),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
