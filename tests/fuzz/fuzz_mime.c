/*
 * libFuzzer target: raw bytes as an email (hark_mime_parse), and the same
 * bytes as a reply body (hark_reply_strip) and as HTML
 * (hark_html_to_text). Every result must be valid UTF-8 and pass
 * hark_msg_validate; every failure must leave nothing allocated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/msg.h"
#include "hark/text.h"
#include "../../adapters/imap/mime.h"

static void check_utf8(const char *s)
{
    if (s != NULL && !hark_utf8_valid(s, strlen(s))) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hark_mime_opts opts = {
        .account = "fuzz",
        .mailbox_address = "support@hark.example",
        .max_attachment_size = 1024,
        .max_parts = 64,
        .max_depth = 8,
    };
    struct hark_mime_result res;
    char why[256];
    char *s;

    if (hark_mime_parse((const char *)data, size, &opts, &res, why, sizeof(why)) == 0) {
        if (hark_msg_validate(res.msg) != NULL) {
            abort();
        }
        check_utf8(res.msg->text);
        check_utf8(res.msg->reply_text);
        hark_mime_result_clear(&res);
    } else if (res.msg != NULL || res.n_blobs != 0 || why[0] == '\0') {
        abort();
    }
    s = hark_reply_strip((const char *)data, size);
    hark_free(s);
    s = hark_html_to_text((const char *)data, size);
    check_utf8(s);
    hark_free(s);
    return 0;
}
