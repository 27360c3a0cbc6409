/*
 * libFuzzer target: the web adapter's verify and parse steps on arbitrary
 * bodies (the timestamp header is fixed inside the replay window, the
 * signature is usually wrong, parse runs regardless).
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

#include "../../adapters/web/web.h"

static const char *fz_header(const struct hark_request *req, const char *name)
{
    (void)req;
    if (strcasecmp(name, "X-Hark-Timestamp") == 0) {
        return "1700000000";
    }
    if (strcasecmp(name, "X-Hark-Signature") == 0) {
        return "sha256=543f8cc0e6b1c0a09dfdd5247745ca8243063bdd2a6d496c2d88c47e265a3191";
    }
    return NULL;
}

static struct hark_channel *fz_channel(void)
{
    static struct hark_channel ch;
    static int ready;
    static const char *const secrets[] = {"secret", NULL};
    char err[128];

    if (!ready) {
        ch.name = "fuzz";
        ch.section = hark_section_from_text("channel.fuzz", "secret = whsec_test_123\n", secrets);
        if (ch.section == NULL || hark_adapter_web.init(&ch, err, sizeof(err)) < 0) {
            abort();
        }
        hark_alloc_init_json();
        ready = 1;
    }
    return &ch;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hark_channel *ch = fz_channel();
    struct hark_response resp = {0};
    struct hark_batch batch = {0};
    struct hark_request req;
    char *body = malloc(size + 1);

    memcpy(body, data, size);
    body[size] = '\0';
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.path = "/hooks/fuzz";
    req.body = (const unsigned char *)body;
    req.body_len = size;
    req.now_ms = 1700000000000LL;
    req.header = fz_header;

    hark_adapter_web.verify(ch, &req, &resp);
    hark_response_clear(&resp);
    if (hark_adapter_web.parse(ch, &req, &batch, &resp) < 0 && batch.n != 0) {
        abort();
    }
    if (batch.n == 1 && hark_msg_validate(batch.msgs[0]) != NULL) {
        abort();
    }
    hark_batch_clear(&batch);
    hark_response_clear(&resp);
    free(body);
    return 0;
}
