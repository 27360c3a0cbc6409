/*
 * libFuzzer target: the IMAP response framer and parser.
 *
 * The input is a byte stream as a server would send it; it is framed in
 * reads of a size taken from the first byte (to exercise resumption), and
 * every framed response is parsed. Checks: the framer never returns a
 * length beyond the input, and the parser's pointers stay inside it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hark/core.h"
#include "../../adapters/imap/imap_proto.h"
#include "../../adapters/imap/mime.h"

/*
 * The fuzzer links every library source, the IMAP client included; until
 * the core and the MIME parser are in the same tree these weak stand-ins
 * satisfy the linker (a real definition, when present, wins). Never called.
 */
#define WEAK __attribute__((weak))
WEAK void hark_ingest(struct hark_channel *ch, struct hark_batch *b, hark_done_fn done, void *arg)
{
    (void)ch, (void)b, (void)done, (void)arg;
    abort();
}
WEAK void hark_state_get(struct hark_channel *ch, const char *f, hark_value_fn done, void *arg)
{
    (void)ch, (void)f, (void)done, (void)arg;
    abort();
}
WEAK void hark_state_set(struct hark_channel *ch, const char *f, const char *v, hark_done_fn done,
                         void *arg)
{
    (void)ch, (void)f, (void)v, (void)done, (void)arg;
    abort();
}
WEAK void hark_quarantine(struct hark_channel *ch, const char *reason, json_t *rec,
                          hark_done_fn done, void *arg)
{
    (void)ch, (void)reason, (void)rec, (void)done, (void)arg;
    abort();
}
WEAK int hark_mime_parse(const char *raw, size_t len, const struct hark_mime_opts *opts,
                         struct hark_mime_result *res, char *why, size_t why_len)
{
    (void)raw, (void)len, (void)opts, (void)res, (void)why, (void)why_len;
    abort();
}
WEAK void hark_mime_result_clear(struct hark_mime_result *res)
{
    (void)res;
    abort();
}
WEAK int hark_mime_save_attachments(struct hark_mime_result *res, const char *dir,
                                    const char *url_base, char *why, size_t why_len)
{
    (void)res, (void)dir, (void)url_base, (void)why, (void)why_len;
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t step;
    size_t off = 0;

    if (size < 1) {
        return 0;
    }
    step = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    while (off < size) {
        struct imap_framer f;
        const char *buf = (const char *)data + off;
        size_t left = size - off;
        ssize_t n = 0;
        size_t have = 0;

        memset(&f, 0, sizeof(f));
        while (n == 0 && have < left) {
            have = have + step > left ? left : have + step;
            n = imap_frame(&f, buf, have, 4096);
        }
        if (n <= 0) {
            return 0;
        }
        if ((size_t)n > left) {
            abort();
        }
        /* Parse a private copy so that reads past the frame are caught. */
        char *copy = malloc((size_t)n);
        if (copy == NULL) {
            return 0;
        }
        memcpy(copy, buf, (size_t)n);
        struct imap_resp r;
        if (imap_parse(copy, (size_t)n, &r) == 0) {
            if (r.has_body && (r.body < copy || r.body + r.body_len > copy + n)) {
                abort();
            }
            if (r.cont && (r.cont < copy || r.cont + r.cont_len > copy + n)) {
                abort();
            }
        }
        free(copy);
        off += (size_t)n;
    }
    return 0;
}
