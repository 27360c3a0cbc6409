/*
 * Unit tests: the MIME parser against the corpus in tests/data/email
 * (NN-name.eml with NN-name.expected.json listing the fields that
 * matter), hostile messages, attachment saving and allocation failures.
 */
#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#include "hark/alloc.h"
#include "hark/codec.h"
#include "hark/crypto.h"
#include "hark/msg.h"
#include "hark/text.h"
#include "../../adapters/imap/mime.h"

#define EMAIL_DIR "tests/data/email"

static const struct hark_mime_opts opts = {
    .account = "mail-main",
    .mailbox_address = "support@hark.example",
    .max_attachment_size = 4096,
};

/* Compare a string field of the message with expected[key] when listed. */
static void check_str(const char *file, const json_t *exp, const char *key, const char *got)
{
    json_t *v = json_object_get(exp, key);

    if (v == NULL) {
        return;
    }
    if (json_is_null(v)) {
        if (got != NULL) {
            fail_msg("%s: %s: expected null, got \"%s\"", file, key, got);
        }
        return;
    }
    if (got == NULL || strcmp(got, json_string_value(v)) != 0) {
        fail_msg("%s: %s:\nexpected \"%s\"\n     got \"%s\"", file, key, json_string_value(v),
                 got ? got : "(null)");
    }
}

static void check_attachments(const char *file, const json_t *exp, const struct hark_mime_result *res)
{
    const json_t *arr = json_object_get(exp, "attachments");
    const struct hark_msg *m = res->msg;
    size_t i, b;
    json_t *a;

    if (arr == NULL) {
        return;
    }
    if (json_array_size(arr) != m->n_attachments) {
        fail_msg("%s: %zu attachments, expected %zu", file, m->n_attachments, json_array_size(arr));
    }
    json_array_foreach(arr, i, a) {
        const struct hark_attachment *at = &m->attachments[i];
        int has_blob = 0;
        check_str(file, a, "content_type", at->content_type);
        check_str(file, a, "filename", at->filename);
        if (json_object_get(a, "size") != NULL) {
            assert_int_equal(at->size, json_integer_value(json_object_get(a, "size")));
        }
        for (b = 0; b < res->n_blobs; b++) {
            if (res->blobs[b].attachment_index == i) {
                has_blob = 1;
                assert_int_equal(res->blobs[b].len, (size_t)at->size);
            }
        }
        if (json_object_get(a, "blob") != NULL) {
            assert_int_equal(has_blob, json_is_true(json_object_get(a, "blob")));
        }
    }
}

/* Check one parsed message against its expectations. */
static void check_message(const char *file, const json_t *exp, const struct hark_mime_result *res)
{
    const struct hark_msg *m = res->msg;
    json_t *v;
    size_t i;

    assert_null(hark_msg_validate(m));
    assert_string_equal(m->channel, "email");
    assert_string_equal(m->provider, "imap");
    assert_string_equal(m->account, "mail-main");
    assert_true(hark_utf8_valid(m->text, strlen(m->text)));
    check_str(file, exp, "from_id", m->from.id);
    check_str(file, exp, "from_name", m->from.name);
    check_str(file, exp, "to_id", m->to.id);
    check_str(file, exp, "subject", m->subject);
    check_str(file, exp, "text", m->text);
    check_str(file, exp, "reply_text", m->reply_text ? m->reply_text : m->text);
    check_str(file, exp, "provider_message_id", m->provider_message_id);
    check_str(file, exp, "thread_key", m->thread_key);
    check_str(file, exp, "auto_reason", res->auto_reason);
    if ((v = json_object_get(exp, "direction")) != NULL) {
        assert_string_equal(json_string_value(v),
                            m->direction == HARK_DIR_OUTBOUND ? "outbound" : "inbound");
    }
    if ((v = json_object_get(exp, "sent_at")) != NULL) {
        assert_int_equal(m->sent_at, json_integer_value(v));
    }
    if ((v = json_object_get(exp, "auto_generated")) != NULL) {
        assert_int_equal(res->auto_generated, json_is_true(v));
    }
    if ((v = json_object_get(exp, "thread_refs")) != NULL) {
        assert_int_equal(m->n_thread_refs, json_array_size(v));
        for (i = 0; i < m->n_thread_refs; i++) {
            assert_string_equal(m->thread_refs[i], json_string_value(json_array_get(v, i)));
        }
    }
    if ((v = json_object_get(exp, "idents")) != NULL) {
        assert_int_equal(m->n_idents, json_array_size(v));
        for (i = 0; i < m->n_idents; i++) {
            char both[512];
            snprintf(both, sizeof(both), "%s:%s", m->idents[i].kind, m->idents[i].value);
            assert_string_equal(both, json_string_value(json_array_get(v, i)));
        }
    }
    if ((v = json_object_get(exp, "thread")) != NULL) {
        assert_true(json_equal(v, m->thread));
    }
    if ((v = json_object_get(exp, "extra")) != NULL) {
        const char *k;
        json_t *ev;
        json_object_foreach(v, k, ev) {
            assert_true(json_equal(ev, json_object_get(m->extra, k)));
        }
    }
    check_attachments(file, exp, res);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_email_corpus(void **state)
{
    char *names[256];
    size_t n = 0, i;
    struct dirent *de;
    DIR *d = opendir(EMAIL_DIR);
    (void)state;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL && n < 256) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".eml") == 0) {
            names[n++] = strdup(de->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), by_name);
    assert_true(n >= 30);
    for (i = 0; i < n; i++) {
        struct hark_mime_result res;
        char why[256] = "", exp_name[300];
        size_t len, elen;
        char *raw = harness_read(EMAIL_DIR, names[i], &len);
        char *etext;
        json_error_t err;
        json_t *exp;

        snprintf(exp_name, sizeof(exp_name), "%.*s.expected.json",
                 (int)(strlen(names[i]) - 4), names[i]);
        etext = harness_read(EMAIL_DIR, exp_name, &elen);
        exp = json_loadb(etext, elen, 0, &err);
        if (exp == NULL) {
            fail_msg("%s: %s", exp_name, err.text);
        }
        if (hark_mime_parse(raw, len, &opts, &res, why, sizeof(why)) != 0) {
            fail_msg("%s: parse failed: %s", names[i], why);
        }
        check_message(names[i], exp, &res);
        hark_mime_result_clear(&res);
        json_decref(exp);
        free(etext);
        free(raw);
        free(names[i]);
    }
    printf("email corpus: %zu messages\n", n);
}

/* A parse that must fail; why must contain `part`. */
static void expect_reject(const char *raw, size_t len, const char *part)
{
    struct hark_mime_result res;
    char why[256] = "";

    assert_int_equal(hark_mime_parse(raw, len, &opts, &res, why, sizeof(why)), -1);
    assert_null(res.msg);
    assert_int_equal(res.n_blobs, 0);
    if (strstr(why, part) == NULL) {
        fail_msg("why \"%s\" does not mention \"%s\"", why, part);
    }
}

static char *repeat_build(const char *head, const char *unit, size_t n, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail), i;
    char *s = malloc(hl + ul * n + tl + 1), *p = s;

    memcpy(p, head, hl);
    p += hl;
    for (i = 0; i < n; i++) {
        memcpy(p, unit, ul);
        p += ul;
    }
    memcpy(p, tail, tl + 1);
    return s;
}

static void test_hostile(void **state)
{
    char *s;
    (void)state;

    expect_reject("", 0, "empty");
    expect_reject("no headers at all, just words\n", 30, "message");
    expect_reject("Subject: hi\r\n\r\nbody\r\n", 21, "From");
    /* Too many parts: rejected before GMime builds the tree. */
    s = repeat_build("From: a@b.example\nContent-Type: multipart/mixed; boundary=b\n\n",
                     "--b\nContent-Type: text/plain\n\nx\n", 600, "--b--\n");
    expect_reject(s, strlen(s), "too many MIME parts");
    free(s);
    /* Nesting deeper than max_depth (16). */
    s = repeat_build("From: a@b.example\n", "Content-Type: message/rfc822\n\n", 40,
                     "Content-Type: text/plain\n\nhi\n");
    expect_reject(s, strlen(s), "nesting");
    free(s);
    s = repeat_build("From: a@b.example\n", "X-Junk: 1\n", 1500, "\nbody\n");
    expect_reject(s, strlen(s), "header fields");
    free(s);
}

/* Messages that parse despite damage; the output stays valid UTF-8. */
static void test_damaged_but_readable(void **state)
{
    static const char raw[] =
        "From: =?utf-8?B?/w==?= \xff\xfe <x@y.example>\n"
        "Subject: bad \xc3\x28 bytes =?x-unknown?Q?=FF?=\n"
        "Message-ID: <\xff@y>\n"
        "Content-Type: multipart/mixed; boundary=zz\n\n"
        "--zz\nContent-Type: text/plain; charset=utf-8\n\nnul\0byte and \xc3\x28 bad\n"
        "--zz\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n!!!notbase64";
    struct hark_mime_result res;
    char why[256];
    (void)state;

    assert_int_equal(hark_mime_parse(raw, sizeof(raw) - 1, &opts, &res, why, sizeof(why)), 0);
    assert_null(hark_msg_validate(res.msg));
    assert_non_null(strstr(res.msg->text, "byte and"));
    assert_null(strchr(res.msg->text, '\xff'));
    assert_int_equal(res.msg->n_attachments, 1);
    hark_mime_result_clear(&res);
}

static void test_save_attachments(void **state)
{
    char dir[] = "/tmp/hark-mime-XXXXXX", why[256], path[512], hex[65];
    unsigned char d[HARK_DIGEST_MAX];
    struct hark_mime_result res;
    size_t len, i;
    char *raw = harness_read(EMAIL_DIR, "16-attachments.eml", &len);
    struct stat st;
    (void)state;

    assert_non_null(mkdtemp(dir));
    assert_int_equal(hark_mime_parse(raw, len, &opts, &res, why, sizeof(why)), 0);
    assert_int_equal(hark_mime_save_attachments(&res, dir, "https://files.example/a", why,
                                                sizeof(why)), 0);
    /* The PDF: sha256 of its bytes + ".pdf". */
    for (i = 0; i < res.n_blobs; i++) {
        if (res.blobs[i].attachment_index == 1) {
            hark_digest(HARK_SHA256, res.blobs[i].data, res.blobs[i].len, d);
        }
    }
    hark_hex_encode(d, 32, hex, sizeof(hex));
    snprintf(path, sizeof(path), "https://files.example/a/%s.pdf", hex);
    assert_string_equal(res.msg->attachments[1].url, path);
    snprintf(path, sizeof(path), "%s/%s.pdf", dir, hex);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, res.msg->attachments[1].size);
    unlink(path);
    /* Listed without a blob: no url. */
    assert_null(res.msg->attachments[3].url);
    for (i = 0; i < res.msg->n_attachments; i++) {
        const char *u = res.msg->attachments[i].url;
        if (u != NULL) {
            snprintf(path, sizeof(path), "%s/%s", dir, strrchr(u, '/') + 1);
            unlink(path);
        }
    }
    assert_int_equal(rmdir(dir), 0);
    /* A directory that does not exist is an error with a reason. */
    assert_int_equal(hark_mime_save_attachments(&res, "/nonexistent/dir", "u", why, sizeof(why)), -1);
    assert_non_null(strstr(why, "cannot write"));
    hark_mime_result_clear(&res);
    free(raw);
}

/* Every allocation failing in turn: -1 with nothing left, or a valid result. */
static void test_alloc_failures(void **state)
{
    size_t len;
    char *raw = harness_read(EMAIL_DIR, "16-attachments.eml", &len);
    long n;
    int ok = 0;
    (void)state;

    for (n = 0; n < 400 && !ok; n++) {
        struct hark_mime_result res;
        char why[256];
        int rc;
        hark_alloc_fail_after(n, 0);
        rc = hark_mime_parse(raw, len, &opts, &res, why, sizeof(why));
        hark_alloc_fail_after(-1, 0);
        if (rc == 0) {
            assert_null(hark_msg_validate(res.msg));
            ok = n > 20;    /* past the point where failures still hit us */
            hark_mime_result_clear(&res);
        } else {
            assert_null(res.msg);
        }
    }
    free(raw);
}

/* One thread's share of the concurrency test: parse a message many times. */
static void *parse_loop(void *arg)
{
    const char *raw = arg;
    size_t i;

    for (i = 0; i < 50; i++) {
        struct hark_mime_result res;
        char why[256];
        if (hark_mime_parse(raw, strlen(raw), &opts, &res, why, sizeof(why)) != 0 ||
            strcmp(res.msg->reply_text ? res.msg->reply_text : res.msg->text,
                   "Thanks, received!") != 0) {
            return (void *)1;
        }
        hark_mime_result_clear(&res);
    }
    return NULL;
}

/* Parsers in several threads at once agree (no shared GMime or libxml2 state). */
static void test_threads(void **state)
{
    size_t len;
    char *raw = harness_read(EMAIL_DIR, "23-reply-html-gmail.eml", &len);
    pthread_t t[4];
    void *ret;
    size_t i;
    (void)state;

    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, parse_loop, raw), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], &ret), 0);
        assert_null(ret);
    }
    free(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email_corpus),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_damaged_but_readable),
        cmocka_unit_test(test_save_attachments),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_threads),
    };
    hark_alloc_init_json();
    return cmocka_run_group_tests_name("mime", tests, NULL, NULL);
}
