/*
 * Digests, HMACs and constant-time comparison on top of OpenSSL.
 */
#include <limits.h>
#include <sys/uio.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "hark/crypto.h"

static const EVP_MD *digest_md(enum hark_digest alg)
{
    switch (alg) {
    case HARK_MD5:
        return EVP_md5();
    case HARK_SHA1:
        return EVP_sha1();
    case HARK_SHA256:
        return EVP_sha256();
    case HARK_SHA512:
        return EVP_sha512();
    }
    return NULL;
}

size_t hark_digest_size(enum hark_digest alg)
{
    const EVP_MD *md = digest_md(alg);
    return md ? (size_t)EVP_MD_get_size(md) : 0;
}

int hark_hmac(enum hark_digest alg, const void *key, size_t key_len,
              const void *msg, size_t msg_len, unsigned char *out)
{
    unsigned int out_len = 0;
    static const unsigned char empty_key[1];

    if (key_len > (size_t)INT_MAX) {
        return -1;
    }
    /* OpenSSL treats a NULL key as "reuse the previous one": never pass it. */
    if (HMAC(digest_md(alg), key_len ? key : empty_key, (int)key_len, msg, msg_len,
             out, &out_len) == NULL) {
        return -1;
    }
    return (int)out_len;
}

int hark_digest(enum hark_digest alg, const void *msg, size_t msg_len, unsigned char *out)
{
    unsigned int out_len = 0;

    if (EVP_Digest(msg, msg_len, out, &out_len, digest_md(alg), NULL) != 1) {
        return -1;
    }
    return (int)out_len;
}

int hark_digest_iov(enum hark_digest alg, const struct iovec *parts, size_t n,
                    unsigned char *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int out_len = 0;
    int ok;

    if (ctx == NULL) {
        return -1;
    }
    ok = EVP_DigestInit_ex(ctx, digest_md(alg), NULL) == 1;
    for (size_t i = 0; ok && i < n; i++) {
        ok = EVP_DigestUpdate(ctx, parts[i].iov_base, parts[i].iov_len) == 1;
    }
    ok = ok && EVP_DigestFinal_ex(ctx, out, &out_len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? (int)out_len : -1;
}

int hark_ct_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
    const unsigned char *x = a, *y = b;
    unsigned char diff = 0;
    size_t i;

    if (a_len != b_len) {
        return 0;
    }
    for (i = 0; i < a_len; i++) {
        diff |= x[i] ^ y[i];
    }
    return diff == 0;
}

int hark_ct_equal_nocase(const char *a, size_t a_len, const char *b, size_t b_len)
{
    unsigned char diff = 0;
    size_t i;

    if (a_len != b_len) {
        return 0;
    }
    for (i = 0; i < a_len; i++) {
        /* Fold ASCII letters without branching on the data. */
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        unsigned char xl = (unsigned char)(x | (((unsigned)(x - 'A') < 26u) << 5));
        unsigned char yl = (unsigned char)(y | (((unsigned)(y - 'A') < 26u) << 5));
        diff |= xl ^ yl;
    }
    return diff == 0;
}
