/*
 * libFuzzer target: the meta adapter's parse step (Messenger, Instagram,
 * Page feed, WhatsApp Cloud) over arbitrary bodies, on a fixed channel
 * built with hark_section_from_text. A successful parse must only yield
 * messages that pass hark_msg_validate; a failed one must yield nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/conf.h"
#include "hark/msg.h"

extern const struct hark_adapter hark_adapter_meta;

static struct hark_channel fuzz_channel;

/* Build the channel once; abort when the fixed configuration is refused. */
static void fuzz_setup(void)
{
    static const char *const secrets[] = {"app_secret", "verify_token", "access_token", NULL};
    struct hark_section *sec;
    char err[128];

    hark_alloc_init_json();
    sec = hark_section_from_text("channel.fuzz",
                                 "app_secret = fuzz-secret\nverify_token = fuzz-token\n"
                                 "access_token = fuzz-access\npage_id = 104567890123456\n",
                                 secrets);
    if (sec == NULL) {
        abort();
    }
    fuzz_channel.name = "fuzz";
    fuzz_channel.adapter = &hark_adapter_meta;
    fuzz_channel.section = sec;
    if (hark_adapter_meta.init(&fuzz_channel, err, sizeof(err)) < 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hark_request req = {0};
    struct hark_response resp = {0};
    struct hark_batch batch = {0};
    char *body;
    int rc;

    if (fuzz_channel.ctx == NULL) {
        fuzz_setup();
    }
    body = malloc(size + 1);
    if (body == NULL) {
        return 0;
    }
    memcpy(body, data, size);
    body[size] = '\0';
    req.method = "POST";
    req.path = "/hooks/fuzz";
    req.body = (const unsigned char *)body;
    req.body_len = size;
    rc = hark_adapter_meta.parse(&fuzz_channel, &req, &batch, &resp);
    if (rc == 0) {
        if (resp.status != 200) {
            abort();
        }
        for (size_t i = 0; i < batch.n; i++) {
            if (hark_msg_validate(batch.msgs[i]) != NULL) {
                abort();
            }
        }
    } else if (batch.n != 0 || resp.status < 400) {
        abort();
    }
    hark_batch_clear(&batch);
    hark_response_clear(&resp);
    free(body);
    return 0;
}
