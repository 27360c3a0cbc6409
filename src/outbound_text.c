/*
 * The text of a reply on channels that carry no files: the agent's text,
 * then each attachment URL on its own line, so every attachment stays
 * reachable in one message.
 */
#include <string.h>

#include "hark/buf.h"
#include "hark/channel.h"

char *hark_outbound_text(const struct hark_outbound *ob, size_t max)
{
    struct hark_buf b = {.max = max};

    hark_buf_str(&b, ob->text ? ob->text : "");
    for (size_t i = 0; i < ob->n_attachments; i++) {
        if (ob->attachment_urls[i] == NULL) {
            continue;
        }
        if (b.len > 0) {
            hark_buf_add(&b, "\n", 1);
        }
        hark_buf_str(&b, ob->attachment_urls[i]);
    }
    return hark_buf_take(&b);
}
