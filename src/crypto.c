/*
 * Digests, HMACs and constant-time comparison on top of OpenSSL.
 */
#include <limits.h>
#include <pthread.h>
#include <sys/uio.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "hark/crypto.h"

/*
 * OpenSSL 3 looks an algorithm up by name (under a lock) every time a
 * legacy EVP_sha256()-style handle is used, and the one-shot HMAC() and
 * EVP_Digest() allocate and free their contexts on each call. A webhook
 * costs several digests, so the algorithms are fetched once per process
 * and each thread keeps one context per algorithm, freed when it exits.
 */
#define N_ALGS 4

static const char *const alg_names[N_ALGS] = {"MD5", "SHA1", "SHA256", "SHA512"};
static EVP_MD *fetched_md[N_ALGS];
static EVP_MAC *fetched_hmac;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static pthread_key_t ctx_key;

struct thread_ctx {
    EVP_MD_CTX *md;
    EVP_MAC_CTX *mac[N_ALGS];
};

static void thread_ctx_free(void *p)
{
    struct thread_ctx *t = p;

    EVP_MD_CTX_free(t->md);
    for (int i = 0; i < N_ALGS; i++) {
        EVP_MAC_CTX_free(t->mac[i]);
    }
    OPENSSL_free(t);
}

static void fetch_algorithms(void)
{
    for (int i = 0; i < N_ALGS; i++) {
        fetched_md[i] = EVP_MD_fetch(NULL, alg_names[i], NULL);
    }
    fetched_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    pthread_key_create(&ctx_key, thread_ctx_free);
}

static const EVP_MD *digest_md(enum hark_digest alg)
{
    pthread_once(&fetch_once, fetch_algorithms);
    return (unsigned)alg < N_ALGS ? fetched_md[alg] : NULL;
}

static struct thread_ctx *thread_ctx(void)
{
    struct thread_ctx *t;

    pthread_once(&fetch_once, fetch_algorithms);
    t = pthread_getspecific(ctx_key);
    if (t == NULL) {
        t = OPENSSL_zalloc(sizeof(*t));
        if (t == NULL || (t->md = EVP_MD_CTX_new()) == NULL ||
            pthread_setspecific(ctx_key, t) != 0) {
            if (t != NULL) {
                thread_ctx_free(t);
            }
            return NULL;
        }
    }
    return t;
}

/* This thread's HMAC context for alg, its digest set once. */
static EVP_MAC_CTX *hmac_ctx(enum hark_digest alg)
{
    struct thread_ctx *t = thread_ctx();

    if (t == NULL || (unsigned)alg >= N_ALGS || fetched_hmac == NULL) {
        return NULL;
    }
    if (t->mac[alg] == NULL) {
        OSSL_PARAM params[2];
        EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(fetched_hmac);
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                     (char *)alg_names[alg], 0);
        params[1] = OSSL_PARAM_construct_end();
        if (ctx == NULL || EVP_MAC_CTX_set_params(ctx, params) != 1) {
            EVP_MAC_CTX_free(ctx);
            return NULL;
        }
        t->mac[alg] = ctx;
    }
    return t->mac[alg];
}

size_t hark_digest_size(enum hark_digest alg)
{
    const EVP_MD *md = digest_md(alg);
    return md ? (size_t)EVP_MD_get_size(md) : 0;
}

int hark_hmac(enum hark_digest alg, const void *key, size_t key_len,
              const void *msg, size_t msg_len, unsigned char *out)
{
    static const unsigned char empty_key[1];
    EVP_MAC_CTX *ctx = hmac_ctx(alg);
    size_t out_len = 0;

    if (ctx == NULL) {
        return -1;
    }
    /* A NULL key would mean "keep the previous one": never pass it. */
    if (EVP_MAC_init(ctx, key_len ? key : empty_key, key_len, NULL) != 1 ||
        EVP_MAC_update(ctx, msg, msg_len) != 1 ||
        EVP_MAC_final(ctx, out, &out_len, HARK_DIGEST_MAX) != 1) {
        return -1;
    }
    return (int)out_len;
}

int hark_digest(enum hark_digest alg, const void *msg, size_t msg_len, unsigned char *out)
{
    struct iovec part = {(void *)msg, msg_len};

    return hark_digest_iov(alg, &part, 1, out);
}

int hark_digest_iov(enum hark_digest alg, const struct iovec *parts, size_t n,
                    unsigned char *out)
{
    struct thread_ctx *t = thread_ctx();
    const EVP_MD *md = digest_md(alg);
    unsigned int out_len = 0;
    int ok;

    if (t == NULL || md == NULL) {
        return -1;
    }
    ok = EVP_DigestInit_ex2(t->md, md, NULL) == 1;
    for (size_t i = 0; ok && i < n; i++) {
        ok = EVP_DigestUpdate(t->md, parts[i].iov_base, parts[i].iov_len) == 1;
    }
    ok = ok && EVP_DigestFinal_ex(t->md, out, &out_len) == 1;
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
