/*
 * The outbox: replies a CRM asks for on <prefix>:outbox, delivered on the
 * customer's own channel (docs/outbox.md).
 *
 * main calls hark_outbox_start() once per process (on one loop) after the
 * channels are initialised, and hark_outbox_stop() before freeing them.
 */
#ifndef HARK_OUTBOX_H
#define HARK_OUTBOX_H

#include <stddef.h>

#include "hark/channel.h"
#include "hark/conf.h"
#include "redis_conn.h"

struct event_base;
struct hark_outbox;

/* Schema of the [outbox] section (rows end with {0}). */
extern const struct hark_conf_key hark_outbox_conf_keys[];

/*
 * Start consuming <prefix>:outbox with the consumer group "harkd" on base:
 * two Redis connections of its own (one blocks in XREADGROUP), a curl
 * multi engine, a claim timer. channels (borrowed, must outlive the
 * outbox) are looked up by the conversation's account. conf is the
 * [outbox] section or NULL (defaults). Returns NULL when disabled
 * (enabled = no) or on failure (logged).
 */
struct hark_outbox *hark_outbox_start(struct event_base *base, const struct hark_redis_opts *redis,
                                      const char *prefix, int partitions,
                                      struct hark_channel *const *channels, size_t n_channels,
                                      const struct hark_section *conf);

/*
 * Stop: no more reads, in-flight sends are abandoned, nothing unrecorded is
 * acknowledged (those entries stay pending and are claimed again later).
 * NULL is a no-op.
 */
void hark_outbox_stop(struct hark_outbox *ob);

#endif
