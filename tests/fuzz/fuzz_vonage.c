/*
 * libFuzzer target: the Vonage adapter's verify and parse steps.
 *
 * Input layout: the first byte picks the request shape (GET with the rest
 * as query string; POST form; POST JSON; POST with an odd content type);
 * the rest is the query or body. Parse runs whatever verify says, since a
 * parser must never trust that verify ran first.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/conf.h"
#include "hark/msg.h"

#include "../../adapters/vonage/vonage.h"

struct fz_req {
    struct hark_request r;
    const char *ctype;
};

static const char *fz_header(const struct hark_request *req, const char *name)
{
    const struct fz_req *t = (const struct fz_req *)req;
    return strcasecmp(name, "Content-Type") == 0 ? t->ctype : NULL;
}

static struct hark_channel *fz_channel(void)
{
    static struct hark_channel ch;
    static int ready;
    static const char *const secrets[] = {"signature_secret", NULL};
    char err[128];

    if (!ready) {
        ch.name = "fuzz";
        ch.section = hark_section_from_text("channel.fuzz",
                                            "signature_secret = fuzz-secret\n"
                                            "signature_method = md5hash\n", secrets);
        if (ch.section == NULL || hark_adapter_vonage.init(&ch, err, sizeof(err)) < 0) {
            abort();
        }
        hark_alloc_init_json();
        ready = 1;
    }
    return &ch;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const ctypes[] = {NULL, "application/x-www-form-urlencoded",
                                         "application/json", "text/plain"};
    struct hark_channel *ch = fz_channel();
    struct hark_response resp = {0};
    struct hark_batch batch = {0};
    struct fz_req t;
    char *text;
    unsigned mode;

    if (size == 0) {
        return 0;
    }
    mode = data[0] % 4;
    text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    memset(&t, 0, sizeof(t));
    t.r.method = mode == 0 ? "GET" : "POST";
    t.r.path = "/hooks/fuzz";
    t.r.query = mode == 0 ? text : NULL;
    t.r.body = (const unsigned char *)(mode == 0 ? "" : text);
    t.r.body_len = mode == 0 ? 0 : size - 1;
    t.r.now_ms = 1577880001000LL;
    t.r.header = fz_header;
    t.ctype = ctypes[mode];

    hark_adapter_vonage.verify(ch, &t.r, &resp);
    hark_response_clear(&resp);
    if (hark_adapter_vonage.parse(ch, &t.r, &batch, &resp) < 0 && batch.n != 0) {
        abort();    /* a failed parse must produce nothing */
    }
    if (batch.n == 1 && hark_msg_validate(batch.msgs[0]) != NULL) {
        abort();
    }
    hark_batch_clear(&batch);
    hark_response_clear(&resp);
    free(text);
    return 0;
}
