/*
 * Where the outbound half (outbox consumer and delivery) attaches to the
 * worker that runs background work. Until the outbox lands these are no-ops.
 */
#ifndef HARK_OUTBOX_HOOK_H
#define HARK_OUTBOX_HOOK_H

struct hark_worker;

void hark_outbox_hook_start(struct hark_worker *w);
void hark_outbox_hook_stop(struct hark_worker *w);

#endif
