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

#include "../../adapters/imap/imap_proto.h"

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
