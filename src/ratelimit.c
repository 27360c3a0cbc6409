/*
 * Token buckets per client address.
 */
#include <string.h>

#include "hark/alloc.h"
#include "ratelimit.h"

#define RL_SLOTS 4096
#define RL_ADDR_MAX 48

struct bucket {
    char addr[RL_ADDR_MAX];
    double tokens;
    int64_t at_ms;
};

struct hark_ratelimit {
    double rate;        /* tokens per millisecond */
    double burst;
    struct bucket slots[RL_SLOTS];
};

struct hark_ratelimit *hark_ratelimit_new(double rate, double burst)
{
    struct hark_ratelimit *rl;

    if (rate <= 0) {
        return NULL;
    }
    rl = hark_calloc(1, sizeof(*rl));
    if (rl != NULL) {
        rl->rate = rate / 1000.0;
        rl->burst = burst >= 1 ? burst : 1;
    }
    return rl;
}

void hark_ratelimit_free(struct hark_ratelimit *rl)
{
    hark_free(rl);
}

static uint32_t addr_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h;
}

int hark_ratelimit_allow(struct hark_ratelimit *rl, const char *addr, int64_t now_ms)
{
    struct bucket *b;

    if (rl == NULL || addr == NULL) {
        return 1;
    }
    b = &rl->slots[addr_hash(addr) % RL_SLOTS];
    if (strncmp(b->addr, addr, sizeof(b->addr)) != 0) {
        /* A new address (or a collision): it starts with a full bucket. */
        size_t n = strlen(addr);
        n = n < sizeof(b->addr) - 1 ? n : sizeof(b->addr) - 1;
        memcpy(b->addr, addr, n);
        b->addr[n] = '\0';
        b->tokens = rl->burst;
        b->at_ms = now_ms;
    }
    if (now_ms > b->at_ms) {
        b->tokens += (double)(now_ms - b->at_ms) * rl->rate;
        if (b->tokens > rl->burst) {
            b->tokens = rl->burst;
        }
        b->at_ms = now_ms;
    }
    if (b->tokens < 1.0) {
        return 0;
    }
    b->tokens -= 1.0;
    return 1;
}
