/*
 * Attach the outbox (consumer and delivery) to the worker that runs
 * background work.
 */
#include "outbox.h"
#include "outbox_hook.h"
#include "worker.h"

void hark_outbox_hook_start(struct hark_worker *w)
{
    const struct hark_settings *s = w->settings;

    w->outbox = hark_outbox_start(w->base, &s->redis, s->prefix, s->partitions,
                                  s->channels, s->n_channels, s->outbox);
}

void hark_outbox_hook_stop(struct hark_worker *w)
{
    hark_outbox_stop(w->outbox);
    w->outbox = NULL;
}
