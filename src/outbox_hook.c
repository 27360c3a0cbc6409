/*
 * The outbound half is not wired yet: nothing to start or stop.
 */
#include "outbox_hook.h"

void hark_outbox_hook_start(struct hark_worker *w)
{
    (void)w;
}

void hark_outbox_hook_stop(struct hark_worker *w)
{
    (void)w;
}
