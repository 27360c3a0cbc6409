/*
 * hark: digests, HMACs and constant-time comparison (OpenSSL underneath).
 */
#ifndef HARK_CRYPTO_H
#define HARK_CRYPTO_H

#include <stddef.h>

enum hark_digest {
    HARK_MD5,
    HARK_SHA1,
    HARK_SHA256,
    HARK_SHA512,
};

#define HARK_DIGEST_MAX 64

/* Digest size in bytes. */
size_t hark_digest_size(enum hark_digest alg);

/* HMAC of msg with key into out (HARK_DIGEST_MAX bytes). Returns the size or -1. */
int hark_hmac(enum hark_digest alg, const void *key, size_t key_len,
              const void *msg, size_t msg_len, unsigned char *out);

/* Plain digest of msg into out (HARK_DIGEST_MAX bytes). Returns the size or -1. */
int hark_digest(enum hark_digest alg, const void *msg, size_t msg_len, unsigned char *out);

/* Digest of the concatenation of parts. Returns the size or -1. */
struct iovec;
int hark_digest_iov(enum hark_digest alg, const struct iovec *parts, size_t n,
                    unsigned char *out);

/*
 * Compare two byte strings in time independent of where they differ.
 * Lengths are compared too (a length mismatch returns 0 early: lengths
 * of signatures are public). Returns 1 when equal.
 */
int hark_ct_equal(const void *a, size_t a_len, const void *b, size_t b_len);

/* As hark_ct_equal, ASCII case-insensitively (for hex digests). */
int hark_ct_equal_nocase(const char *a, size_t a_len, const char *b, size_t b_len);

#endif
