/*
 * libFuzzer target: the x adapter's parse step (and its read_send,
 * which parses provider answers) on arbitrary bytes. Every input must give
 * either 200 with valid messages or a 4xx with nothing, and never crash
 * or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/conf.h"
#include "hark/msg.h"

extern const struct hark_adapter hark_adapter_x;

static struct hark_channel fuzz_ch;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const keys[] = {"consumer_secret", "access_token", NULL};
    char err[256];

    (void)argc;
    (void)argv;
    hark_alloc_init_json();
    fuzz_ch.name = "fuzz";
    fuzz_ch.adapter = &hark_adapter_x;
    fuzz_ch.section = hark_section_from_text("channel.fuzz",
                                             "consumer_secret = fuzz\n"
                                             "user_id = 4337869213\n", keys);
    if (fuzz_ch.section == NULL || hark_adapter_x.init(&fuzz_ch, err, sizeof(err)) < 0) {
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hark_request req;
    struct hark_response resp;
    struct hark_batch batch = {0};
    char *body = malloc(size + 1);
    char *pmid = NULL;
    char err[256];
    int rc;

    if (body == NULL) {
        return 0;
    }
    memcpy(body, data, size);
    body[size] = '\0';
    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    req.method = "POST";
    req.path = "/hooks/fuzz";
    req.body = (const unsigned char *)body;
    req.body_len = size;
    rc = hark_adapter_x.parse(&fuzz_ch, &req, &batch, &resp);
    if (rc == 0) {
        if (resp.status != 200) {
            abort();
        }
        for (size_t i = 0; i < batch.n; i++) {
            if (hark_msg_validate(batch.msgs[i]) != NULL) {
                abort();
            }
        }
    } else if (batch.n != 0 || resp.status < 400 || resp.status > 499) {
        abort();
    }
    hark_batch_clear(&batch);
    hark_response_clear(&resp);
    hark_adapter_x.read_send(&fuzz_ch, 200, body, size, &pmid, err, sizeof(err));
    hark_free(pmid);
    free(body);
    return 0;
}
