/*
 * libFuzzer target: form decoding + Twilio normalization + JSON form.
 */
#include <stdint.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/channel.h"
#include "hark/codec.h"
#include "../../adapters/twilio/twilio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct hark_channel ch;
    static struct hark_section *sec;
    struct hark_request req = {0};
    struct hark_response resp = {0};
    struct hark_batch batch = {0};
    static const char *const secrets[] = {"auth_token", NULL};

    if (sec == NULL) {
        hark_alloc_init_json();
        sec = hark_section_from_text("channel.fuzz", "auth_token = t\n", secrets);
        ch.name = "fuzz";
        ch.section = sec;
        ch.adapter = NULL;
    }
    req.method = "POST";
    req.body = data;
    req.body_len = size;
    if (twilio_parse(&ch, &req, &batch, &resp) == 0) {
        for (size_t i = 0; i < batch.n; i++) {
            char id[HARK_MSG_ID_LEN + 1];
            json_t *j;
            if (hark_msg_validate(batch.msgs[i]) != NULL) {
                continue;
            }
            hark_msg_id(batch.msgs[i], id);
            j = hark_msg_to_json(batch.msgs[i], id);
            if (j != NULL) {
                char *text = json_dumps(j, JSON_COMPACT);
                hark_free(text);
                json_decref(j);
            }
        }
    }
    hark_batch_clear(&batch);
    hark_response_clear(&resp);
    return 0;
}
