/*
 * hark: what the core offers to pull adapters (IMAP) running on its loop.
 *
 * Every call must be made on the thread of the event base the channel was
 * started on. Every callback runs exactly once, on that same thread, and
 * never from inside the call that registered it.
 */
#ifndef HARK_CORE_H
#define HARK_CORE_H

#include <event2/util.h>
#include <jansson.h>

#include "hark/channel.h"
#include "hark/msg.h"

/* Outcome of a store operation. */
enum hark_store_result {
    HARK_STORE_OK = 0,      /* written (or already there: a duplicate is OK) */
    HARK_STORE_RETRY,       /* Redis unreachable or busy: nothing written, try later */
    HARK_STORE_ERROR,       /* the record was refused (bad message): do not retry */
};

typedef void (*hark_done_fn)(void *arg, enum hark_store_result result);
typedef void (*hark_value_fn)(void *arg, enum hark_store_result result, const char *value);

/*
 * Store every message of batch with the ingest script; takes ownership of
 * the messages (the batch is emptied). done runs once all are acknowledged
 * (OK), or with the first failure.
 */
void hark_ingest(struct hark_channel *ch, struct hark_batch *batch, hark_done_fn done, void *arg);

/*
 * Small durable state of a channel (IMAP checkpoints): a field of the
 * hash <prefix>:state:<channel>. value NULL in the callback: no such field.
 */
void hark_state_get(struct hark_channel *ch, const char *field, hark_value_fn done, void *arg);
void hark_state_set(struct hark_channel *ch, const char *field, const char *value,
                    hark_done_fn done, void *arg);

/*
 * Record something that could not be ingested in <prefix>:quarantine (a
 * stream: channel, reason and the fields of `record`), with an event for
 * operators. Borrows record.
 */
void hark_quarantine(struct hark_channel *ch, const char *reason, json_t *record,
                     hark_done_fn done, void *arg);

/*
 * Run work(arg) (blocking: disk, fsync) on a thread of its own, then
 * done(-1, EV_TIMEOUT, arg) on base's loop. Returns 0, or -1 when no thread
 * could be started (nothing ran: the caller decides). done runs only if
 * the loop still runs; callers guard their state as for any callback.
 */
int hark_run_blocking(struct event_base *base, void (*work)(void *arg),
                      void (*done)(evutil_socket_t fd, short what, void *arg), void *arg);

/* Wait until every started work function has returned (at shutdown). */
void hark_blocking_drain(void);

#endif
