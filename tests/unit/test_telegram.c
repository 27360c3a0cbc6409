/*
 * Unit tests: Telegram adapter (verify, parse, send).
 *
 * Payloads: the shared documented sample (../shared/vectors/payloads) and
 * the Bot API shapes in tests/data/telegram/, read at run time.
 */
#include "harness.h"

#include <strings.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/conf.h"
#include "hark/msg.h"

extern const struct hark_adapter hark_adapter_telegram;

#define DATA_DIR "tests/data/telegram"
#define SECRET "abc_DEF-123"

/* A request with a few headers. */
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

static void fake_init(struct fake_req *f, const char *method, const char *body, size_t len)
{
    memset(f, 0, sizeof(*f));
    f->req.method = method;
    f->req.path = "/hooks/tg-main";
    f->req.body = (const unsigned char *)body;
    f->req.body_len = len;
    f->req.header = fake_header;
}

static void fake_add(struct fake_req *f, const char *name, const char *value)
{
    f->names[f->n] = name;
    f->values[f->n] = value;
    f->n++;
}

/* A configured channel (ctx from the adapter's init). */
struct fixture {
    struct hark_section *sec;
    struct hark_channel ch;
};

static const char *const secret_keys[] = {"secret_token", "bot_token", NULL};

static int fixture_open(struct fixture *fx, const char *text)
{
    char err[256];

    memset(fx, 0, sizeof(*fx));
    fx->sec = hark_section_from_text("channel.tg-main", text, secret_keys);
    if (fx->sec == NULL) {
        return -1;
    }
    fx->ch.name = "tg-main";
    fx->ch.adapter = &hark_adapter_telegram;
    fx->ch.section = fx->sec;
    return hark_adapter_telegram.init(&fx->ch, err, sizeof(err));
}

static void fixture_close(struct fixture *fx)
{
    hark_adapter_telegram.destroy(fx->ch.ctx);
    hark_section_free(fx->sec);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (fx == NULL || fixture_open(fx, "secret_token = " SECRET "\n"
                                       "bot_token = 123456:AAH-abc_def\n"
                                       "api_url = http://127.0.0.1:9/tg/\n") < 0) {
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

/* Parse body; returns the parse result, resp status in *status. */
static int run_parse(struct fixture *fx, const char *body, size_t len, struct hark_batch *b,
                     int *status)
{
    struct fake_req f;
    struct hark_response resp = {0};
    int rc;

    fake_init(&f, "POST", body, len);
    rc = hark_adapter_telegram.parse(&fx->ch, &f.req, b, &resp);
    *status = resp.status;
    hark_response_clear(&resp);
    return rc;
}

/* Parse a file of tests/data/telegram expecting success. */
static void parse_file(struct fixture *fx, const char *name, struct hark_batch *b)
{
    size_t len;
    char *body = harness_read(DATA_DIR, name, &len);
    int status;

    assert_int_equal(run_parse(fx, body, len, b, &status), 0);
    assert_int_equal(status, 200);
    free(body);
}

static const char *extra_str(const struct hark_msg *m, const char *key)
{
    return json_string_value(json_object_get(m->extra, key));
}

static const char *thread_str(const struct hark_msg *m, const char *key)
{
    return json_string_value(json_object_get(m->thread, key));
}

static void test_init_checks(void **state)
{
    struct fixture fx;
    (void)state;

    assert_int_equal(fixture_open(&fx, "secret_token = has space\n"), -1);
    fixture_close(&fx);
    assert_int_equal(fixture_open(&fx, "secret_token = ok\napi_url = ftp://x\n"), -1);
    fixture_close(&fx);
    assert_int_equal(fixture_open(&fx, "secret_token = ok\n"), 0);
    fixture_close(&fx);
}

static void test_verify(void **state)
{
    struct fixture *fx = *state;
    struct fake_req f;
    struct hark_response resp = {0};
    const struct hark_adapter *a = &hark_adapter_telegram;

    fake_init(&f, "GET", "", 0);
    assert_int_equal(a->verify(&fx->ch, &f.req, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 405);

    fake_init(&f, "POST", "{}", 2);
    assert_int_equal(a->verify(&fx->ch, &f.req, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 403);

    fake_add(&f, "X-Telegram-Bot-Api-Secret-Token", "abc_DEF-124");
    assert_int_equal(a->verify(&fx->ch, &f.req, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 403);

    f.values[0] = SECRET "x";
    assert_int_equal(a->verify(&fx->ch, &f.req, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 403);

    f.values[0] = "";
    assert_int_equal(a->verify(&fx->ch, &f.req, &resp), HARK_ANSWERED);
    assert_int_equal(resp.status, 403);

    /* Header names are case-insensitive in HTTP. */
    f.names[0] = "x-telegram-bot-api-secret-token";
    f.values[0] = SECRET;
    assert_int_equal(a->verify(&fx->ch, &f.req, &resp), HARK_VERIFIED);
    hark_response_clear(&resp);
}

static void test_shared_sample(void **state)
{
    struct fixture *fx = *state;
    struct hark_batch b = {0};
    char dir[512];
    size_t len;
    char *body;
    int status;
    const struct hark_msg *m;

    snprintf(dir, sizeof(dir), "%s/payloads", harness_vectors_dir());
    body = harness_read(dir, "telegram-update.json", &len);
    assert_int_equal(run_parse(fx, body, len, &b, &status), 0);
    free(body);
    assert_int_equal(b.n, 1);
    m = b.msgs[0];
    assert_int_equal(m->kind, HARK_KIND_MESSAGE);
    assert_string_equal(m->channel, "telegram");
    assert_string_equal(m->provider, "telegram");
    assert_string_equal(m->account, "tg-main");
    assert_int_equal(m->direction, HARK_DIR_INBOUND);
    assert_string_equal(m->provider_message_id, "1111111:1365");
    assert_string_equal(m->from.id, "1111111");
    assert_string_equal(m->from.name, "Test Test Lastname");
    assert_string_equal(m->from.handle, "Test");
    assert_string_equal(m->text, "/start");
    assert_string_equal(m->thread_key, "1111111");
    assert_int_equal(m->sent_at, 1441645532000LL);
    assert_int_equal(m->n_idents, 1);
    assert_string_equal(m->idents[0].kind, "telegram");
    assert_string_equal(m->idents[0].value, "1111111");
    assert_string_equal(extra_str(m, "event_id"), "10000");
    assert_string_equal(thread_str(m, "chat_id"), "1111111");
    assert_string_equal(thread_str(m, "message_id"), "1365");
    assert_null(hark_msg_validate(m));
    hark_batch_clear(&b);
}

static void test_text_and_redelivery(void **state)
{
    struct fixture *fx = *state;
    struct hark_batch b = {0};
    char id1[HARK_MSG_ID_LEN + 1], id2[HARK_MSG_ID_LEN + 1];

    parse_file(fx, "message-text.json", &b);
    parse_file(fx, "message-text.json", &b);
    assert_int_equal(b.n, 2);
    assert_string_equal(b.msgs[0]->text, "Hola, mi pedido no llegó 📦");
    assert_string_equal(b.msgs[0]->from.name, "Ana García");
    assert_string_equal(b.msgs[0]->provider_message_id, "111222333:42");
    assert_string_equal(b.msgs[1]->provider_message_id, b.msgs[0]->provider_message_id);
    hark_msg_id(b.msgs[0], id1);
    hark_msg_id(b.msgs[1], id2);
    assert_string_equal(id1, id2);
    assert_int_equal(b.msgs[0]->n_attachments, 0);
    assert_string_equal(extra_str(b.msgs[0], "chat_type"), "private");
    hark_batch_clear(&b);
}

static void test_group_reply(void **state)
{
    struct fixture *fx = *state;
    struct hark_batch b = {0};
    const struct hark_msg *m;

    parse_file(fx, "message-group-reply.json", &b);
    assert_int_equal(b.n, 1);
    m = b.msgs[0];
    assert_string_equal(m->provider_message_id, "-1001234567890:99");
    assert_string_equal(m->thread_key, "-1001234567890");
    assert_string_equal(m->idents[0].value, "111222333");
    assert_string_equal(m->from.id, "111222333");
    assert_string_equal(thread_str(m, "reply_to"), "-1001234567890:40");
    assert_string_equal(thread_str(m, "message_thread_id"), "7");
    assert_string_equal(extra_str(m, "chat_title"), "Support group");
    assert_string_equal(extra_str(m, "chat_type"), "supergroup");
    hark_batch_clear(&b);
}

static void test_media(void **state)
{
    static const struct {
        const char *file;
        const char *text;
        const char *url;
        const char *ctype;
        const char *filename;
        int64_t size;
        const char *file_id;
        const char *kind;
        const char *unique_id;
    } cases[] = {
        {"message-photo.json", "Broken on arrival", NULL, "image/jpeg", NULL, 98000, "AgAD-large",
         "photo", "AQADl"},
        {"message-document.json", NULL, NULL, "application/pdf", "invoice.pdf", 51234, "BQAD-doc",
         "document", "AgADdoc"},
        {"message-voice.json", NULL, NULL, "audio/ogg", NULL, 8123, "AwAD-voice", "voice",
         "AgADvoice"},
        {"message-audio.json", NULL, NULL, "audio/mpeg", "song.mp3", 3000000, "CQAD-audio",
         "audio", "AgADaudio"},
        {"message-video.json", NULL, NULL, "video/mp4", "unboxing.mp4", 2500000, "BAAD-video",
         "video", "AgADvideo"},
        {"message-video-note.json", NULL, NULL, "video/mp4", NULL, 400000, "DQAD-note",
         "video_note", "AgADnote"},
        {"message-sticker.json", NULL, NULL, "application/x-tgsticker", NULL, 30000,
         "CAAD-sticker", "sticker", "AgADsticker"},
        {"message-animation.json", NULL, NULL, "video/mp4", "fail.gif.mp4", 90000, "CgAD-anim",
         "animation", "AgADanim"},
        {"message-location.json", NULL, "geo:40.416775,-3.703790", "location", NULL, -1, NULL,
         "location", NULL},
        {"message-venue.json", NULL, "geo:41.388790,2.158990", "location", "Store Barcelona", -1,
         NULL, "location", NULL},
        {"message-contact.json", NULL, "tel:+34612345678", "contact", "Luis Pérez", -1, NULL,
         "contact", NULL},
    };
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hark_batch b = {0};
        const struct hark_msg *m;
        const struct hark_attachment *a;
        const json_t *meta;

        parse_file(fx, cases[i].file, &b);
        assert_int_equal(b.n, 1);
        m = b.msgs[0];
        /* Exactly one attachment: the animation's duplicate document is dropped. */
        assert_int_equal(m->n_attachments, 1);
        a = &m->attachments[0];
        if (cases[i].text) {
            assert_string_equal(m->text, cases[i].text);
        } else {
            assert_null(m->text);
        }
        if (cases[i].url) {
            assert_string_equal(a->url, cases[i].url);
        } else {
            assert_null(a->url);
        }
        assert_string_equal(a->content_type, cases[i].ctype);
        if (cases[i].filename) {
            assert_string_equal(a->filename, cases[i].filename);
        } else {
            assert_null(a->filename);
        }
        assert_int_equal(a->size, cases[i].size);
        if (cases[i].file_id) {
            assert_string_equal(a->file_id, cases[i].file_id);
        } else {
            assert_null(a->file_id);
        }
        meta = json_array_get(json_object_get(m->extra, "media"), 0);
        assert_string_equal(json_string_value(json_object_get(meta, "kind")), cases[i].kind);
        if (cases[i].unique_id) {
            assert_string_equal(json_string_value(json_object_get(meta, "file_unique_id")),
                                cases[i].unique_id);
        }
        assert_null(hark_msg_validate(m));
        hark_batch_clear(&b);
    }
}

static void test_edit(void **state)
{
    struct fixture *fx = *state;
    struct hark_batch b = {0};
    const struct hark_msg *m;

    parse_file(fx, "message-text.json", &b);
    parse_file(fx, "edited-message.json", &b);
    assert_int_equal(b.n, 2);
    m = b.msgs[1];
    assert_int_equal(m->kind, HARK_KIND_EDIT);
    assert_string_equal(m->channel, b.msgs[0]->channel);
    /* The edit names the stored message; its own delivery id is the update. */
    assert_string_equal(m->provider_message_id, b.msgs[0]->provider_message_id);
    assert_string_equal(extra_str(m, "event_id"), "900014");
    assert_string_not_equal(extra_str(m, "event_id"), extra_str(b.msgs[0], "event_id"));
    assert_string_equal(m->text, "Hola, mi pedido #123 no llegó");
    assert_int_equal(m->sent_at, 1700000300000LL);
    assert_string_equal(m->idents[0].value, "111222333");
    hark_batch_clear(&b);
}

static void test_callback(void **state)
{
    struct fixture *fx = *state;
    struct hark_batch b = {0};
    const struct hark_msg *m;

    parse_file(fx, "callback-query.json", &b);
    assert_int_equal(b.n, 1);
    m = b.msgs[0];
    assert_int_equal(m->kind, HARK_KIND_MESSAGE);
    assert_string_equal(m->provider_message_id, "cb:4382bfdwdsb323b2d9");
    assert_string_equal(m->text, "helpful:yes");
    assert_string_equal(m->from.id, "111222333");
    assert_string_equal(m->idents[0].kind, "telegram");
    assert_string_equal(m->thread_key, "111222333");
    assert_string_equal(thread_str(m, "reply_to"), "111222333:60");
    assert_string_equal(extra_str(m, "callback_query_id"), "4382bfdwdsb323b2d9");
    assert_string_equal(extra_str(m, "event_id"), "900015");
    hark_batch_clear(&b);
}

static void test_skipped(void **state)
{
    static const char *const files[] = {"channel-post.json", "service-message.json",
                                        "my-chat-member.json"};
    struct fixture *fx = *state;
    struct hark_batch b = {0};
    int status;
    const char *other = "{\"update_id\":5,\"inline_query\":{\"id\":\"1\"}}";
    const char *live = "{\"update_id\":6,\"edited_message\":{\"message_id\":51,\"date\":1,"
                       "\"edit_date\":2,\"chat\":{\"id\":5,\"type\":\"private\"},"
                       "\"from\":{\"id\":5,\"first_name\":\"A\"},"
                       "\"location\":{\"latitude\":1.5,\"longitude\":2.5,\"live_period\":60}}}";

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        parse_file(fx, files[i], &b);
        assert_int_equal(b.n, 0);
    }
    assert_int_equal(run_parse(fx, other, strlen(other), &b, &status), 0);
    assert_int_equal(status, 200);
    assert_int_equal(b.n, 0);
    /* A live location update is an edit without text: not a text change. */
    assert_int_equal(run_parse(fx, live, strlen(live), &b, &status), 0);
    assert_int_equal(status, 200);
    assert_int_equal(b.n, 0);
}

/* A body nested n levels deep inside the message. */
static char *deep_body(size_t n)
{
    size_t cap = 64 + 2 * n;
    char *s = malloc(cap);
    size_t len = (size_t)snprintf(s, cap, "{\"update_id\":1,\"message\":");

    for (size_t i = 0; i < n; i++) {
        s[len++] = '[';
    }
    for (size_t i = 0; i < n; i++) {
        s[len++] = ']';
    }
    s[len++] = '}';
    s[len] = '\0';
    return s;
}

static void test_hostile(void **state)
{
    static const char *const bodies[] = {
        "",
        "[]",
        "{}",
        "not json",
        "null",
        "{\"update_id\":\"1\",\"message\":{}}",
        "{\"update_id\":-4}",
        "{\"update_id\":1.5}",
        "{\"update_id\":1,\"message\":\"hi\"}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"text\":\"x\"}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":\"5\"},\"text\":\"x\"}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1.5,\"chat\":{\"id\":5},\"text\":\"x\"}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"text\":7}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"from\":\"me\",\"text\":\"x\"}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"from\":{\"id\":5,\"first_name\":[]},\"text\":\"x\"}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"photo\":{}}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"photo\":[]}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"photo\":[1]}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"document\":{\"file_name\":\"a\"}}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"document\":{\"file_id\":\"a\",\"file_size\":\"9\"}}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"voice\":{\"file_id\":\"\"}}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"location\":{\"latitude\":\"1\",\"longitude\":2}}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"location\":{\"latitude\":91,\"longitude\":2}}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"contact\":{\"first_name\":\"a\"}}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"text\":\"x\",\"reply_to_message\":{}}}",
        "{\"update_id\":1,\"edited_message\":{\"message_id\":1,\"chat\":[]}}",
        "{\"update_id\":1,\"callback_query\":{\"from\":{\"id\":5},\"data\":\"x\"}}",
        "{\"update_id\":1,\"callback_query\":{\"id\":\"q\",\"data\":\"x\"}}",
        "{\"update_id\":1,\"callback_query\":{\"id\":\"q\",\"from\":{\"id\":5},\"message\":{\"message_id\":3}}}",
        "{\"update_id\":1,\"callback_query\":{\"id\":\"q\",\"from\":{\"id\":5},\"data\":9}}",
        "{\"update_id\":1,\"update_id\":2}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"text\":\"\\u0000\"}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"text\":\"\\ud800\"}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"text\":\"\xff\xfe\"}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"text\":\"\xc0\xaf\"}}",
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},\"text\":\"trunc",
    };
    struct fixture *fx = *state;
    struct hark_batch b = {0};
    int status;
    char *s;

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        assert_int_equal(run_parse(fx, bodies[i], strlen(bodies[i]), &b, &status), -1);
        assert_int_equal(status, 400);
        assert_int_equal(b.n, 0);
    }
    /* Deep nesting. */
    s = deep_body(200);
    assert_int_equal(run_parse(fx, s, strlen(s), &b, &status), -1);
    assert_int_equal(status, 400);
    free(s);
    /* A photo with too many sizes. */
    {
        size_t cap = 64 * 100 + 128, len;
        s = malloc(cap);
        len = (size_t)snprintf(s, cap, "{\"update_id\":1,\"message\":{\"message_id\":1,"
                                       "\"chat\":{\"id\":5},\"photo\":[");
        for (int i = 0; i < 100; i++) {
            len += (size_t)snprintf(s + len, cap - len, "%s{\"file_id\":\"f%d\"}", i ? "," : "", i);
        }
        len += (size_t)snprintf(s + len, cap - len, "]}}");
        assert_int_equal(run_parse(fx, s, len, &b, &status), -1);
        assert_int_equal(status, 400);
        free(s);
    }
    /* A truncated documented payload. */
    {
        size_t len;
        char *body = harness_read(DATA_DIR, "message-photo.json", &len);
        assert_int_equal(run_parse(fx, body, len / 2, &b, &status), -1);
        assert_int_equal(status, 400);
        free(body);
    }
    assert_int_equal(b.n, 0);
}

static size_t json_allocs;

static void *counting_malloc(size_t n)
{
    json_allocs++;
    return hark_malloc(n);
}

/*
 * How many allocations jansson's json_loadb makes for body. Failures are
 * injected only after those: jansson 2.14 itself crashes when some of its
 * allocations inside json_loadb fail (reproduced without hark code, e.g.
 * on {"text":"Hola, mi pedido no llegó 📦"}).
 */
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

/* Every allocation failure gives 400/500 and nothing, or a full result. */
static void test_alloc_failures(void **state)
{
    static const char *const files[] = {"message-photo.json", "callback-query.json",
                                        "message-contact.json", "message-group-reply.json",
                                        "edited-message.json"};
    struct fixture *fx = *state;

    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        size_t len;
        char *body = harness_read(DATA_DIR, files[f], &len);
        long first = json_load_allocs(body, len);
        int succeeded = 0;
        for (long n = first; n < first + 300; n++) {
            struct hark_batch b = {0};
            int status, rc;
            hark_alloc_fail_after(n, 0);
            rc = run_parse(fx, body, len, &b, &status);
            hark_alloc_fail_after(-1, 0);
            if (rc < 0) {
                assert_int_equal(b.n, 0);
                assert_true(status == 400 || status == 500);
            } else {
                assert_int_equal(b.n, 1);
                assert_null(hark_msg_validate(b.msgs[0]));
                succeeded = 1;
            }
            hark_batch_clear(&b);
        }
        assert_true(succeeded);
        free(body);
    }
}

static void outbound_init(struct hark_outbound *ob)
{
    memset(ob, 0, sizeof(*ob));
    ob->message_id = "m1";
    ob->channel = "telegram";
    ob->to = "1111111";
    ob->text = "Thanks, we received your message.";
}

static void test_build_send(void **state)
{
    struct fixture *fx = *state;
    struct hark_outbound ob;
    struct hark_http_call call;
    char err[256], dir[512];
    json_t *body, *want;
    json_error_t jerr;
    size_t len;
    char *text;
    const char *urls[] = {"https://cdn.example.com/a.pdf"};

    /* The documented request: chat_id, text, reply_parameters.message_id. */
    outbound_init(&ob);
    ob.reply_to = "1111111:1365";
    assert_int_equal(hark_adapter_telegram.build_send(&fx->ch, &ob, &call, err, sizeof(err)), 0);
    assert_string_equal(call.method, "POST");
    assert_string_equal(call.url, "http://127.0.0.1:9/tg/bot123456:AAH-abc_def/sendMessage");
    assert_string_equal(call.headers[0], "Content-Type: application/json");
    body = json_loadb(call.body, call.body_len, 0, &jerr);
    assert_non_null(body);
    snprintf(dir, sizeof(dir), "%s/payloads", harness_vectors_dir());
    text = harness_read(dir, "telegram-sendmessage-request.json", &len);
    want = json_loadb(text, len, 0, &jerr);
    free(text);
    assert_non_null(want);
    assert_true(json_equal(json_object_get(body, "chat_id"), json_object_get(want, "chat_id")));
    assert_true(json_equal(json_object_get(body, "text"), json_object_get(want, "text")));
    assert_true(json_equal(json_object_get(json_object_get(body, "reply_parameters"), "message_id"),
                           json_object_get(json_object_get(want, "reply_parameters"), "message_id")));
    json_decref(want);
    json_decref(body);
    hark_http_call_clear(&call);

    /* A group chat: the chat comes from reply_to, not from the user id. */
    outbound_init(&ob);
    ob.to = "111222333";
    ob.reply_to = "-1001234567890:99";
    ob.attachment_urls = urls;
    ob.n_attachments = 1;
    assert_int_equal(hark_adapter_telegram.build_send(&fx->ch, &ob, &call, err, sizeof(err)), 0);
    body = json_loadb(call.body, call.body_len, 0, &jerr);
    assert_int_equal(json_integer_value(json_object_get(body, "chat_id")), -1001234567890LL);
    assert_string_equal(json_string_value(json_object_get(body, "text")),
                        "Thanks, we received your message.\nhttps://cdn.example.com/a.pdf");
    json_decref(body);
    hark_http_call_clear(&call);

    /* No reply_to: the private chat of the user, no reply_parameters. */
    outbound_init(&ob);
    assert_int_equal(hark_adapter_telegram.build_send(&fx->ch, &ob, &call, err, sizeof(err)), 0);
    body = json_loadb(call.body, call.body_len, 0, &jerr);
    assert_int_equal(json_integer_value(json_object_get(body, "chat_id")), 1111111);
    assert_null(json_object_get(body, "reply_parameters"));
    json_decref(body);
    hark_http_call_clear(&call);

    /* Refusals. */
    outbound_init(&ob);
    ob.to = "@someone";
    assert_int_equal(hark_adapter_telegram.build_send(&fx->ch, &ob, &call, err, sizeof(err)), -1);
    outbound_init(&ob);
    ob.text = "";
    assert_int_equal(hark_adapter_telegram.build_send(&fx->ch, &ob, &call, err, sizeof(err)), -1);
    {
        char *big = malloc(4098);
        memset(big, 'a', 4097);
        big[4097] = '\0';
        outbound_init(&ob);
        ob.text = big;
        assert_int_equal(hark_adapter_telegram.build_send(&fx->ch, &ob, &call, err, sizeof(err)),
                         -1);
        big[4096] = '\0';
        assert_int_equal(hark_adapter_telegram.build_send(&fx->ch, &ob, &call, err, sizeof(err)),
                         0);
        hark_http_call_clear(&call);
        free(big);
    }
}

static void test_send_without_token(void **state)
{
    struct fixture fx;
    struct hark_outbound ob;
    struct hark_http_call call;
    char err[256];
    (void)state;

    assert_int_equal(fixture_open(&fx, "secret_token = ok\n"), 0);
    outbound_init(&ob);
    assert_int_equal(hark_adapter_telegram.build_send(&fx.ch, &ob, &call, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "bot_token"));
    fixture_close(&fx);
    assert_int_equal(fixture_open(&fx, "secret_token = ok\nbot_token = abc/../x\n"), 0);
    assert_int_equal(hark_adapter_telegram.build_send(&fx.ch, &ob, &call, err, sizeof(err)), -1);
    fixture_close(&fx);
}

static void test_read_send(void **state)
{
    struct fixture *fx = *state;
    char err[256] = "";
    char *pmid = NULL;
    size_t len;
    char *body;
    const struct hark_adapter *a = &hark_adapter_telegram;

    body = harness_read(DATA_DIR, "send-ok.json", &len);
    assert_int_equal(a->read_send(&fx->ch, 200, body, len, &pmid, err, sizeof(err)), HARK_SEND_OK);
    assert_string_equal(pmid, "1111111:1366");
    hark_free(pmid);
    free(body);

    body = harness_read(DATA_DIR, "send-429.json", &len);
    assert_int_equal(a->read_send(&fx->ch, 429, body, len, &pmid, err, sizeof(err)),
                     HARK_SEND_RETRY);
    assert_null(pmid);
    assert_non_null(strstr(err, "retry after 17 s"));
    free(body);

    body = harness_read(DATA_DIR, "send-403.json", &len);
    assert_int_equal(a->read_send(&fx->ch, 403, body, len, &pmid, err, sizeof(err)),
                     HARK_SEND_FAIL);
    assert_non_null(strstr(err, "bot was blocked by the user"));
    free(body);

    assert_int_equal(a->read_send(&fx->ch, 502, "<html>", 6, &pmid, err, sizeof(err)),
                     HARK_SEND_RETRY);
    assert_int_equal(a->read_send(&fx->ch, 400, NULL, 0, &pmid, err, sizeof(err)),
                     HARK_SEND_FAIL);
    assert_int_equal(a->read_send(&fx->ch, 200, "garbage", 7, &pmid, err, sizeof(err)),
                     HARK_SEND_OK);
    assert_null(pmid);
    assert_int_equal(a->read_send(&fx->ch, 200, "{\"ok\":false}", 12, &pmid, err, sizeof(err)),
                     HARK_SEND_FAIL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_checks),
        cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_sample, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_and_redelivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_media, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_send, setup, teardown),
        cmocka_unit_test(test_send_without_token),
        cmocka_unit_test_setup_teardown(test_read_send, setup, teardown),
    };

    hark_alloc_init_json();
    return cmocka_run_group_tests_name("telegram", tests, NULL, NULL);
}
