/*
 * The adapter registry: every adapter type compiled into harkd.
 */
#ifndef HARK_REGISTRY_H
#define HARK_REGISTRY_H

#include "hark/channel.h"

/* The adapter registered under name, or NULL. */
const struct hark_adapter *hark_registry_find(const char *name);

/* "twilio, meta, ..." for error messages. */
const char *hark_registry_names(void);

/* NULL-terminated list of all adapters. */
const struct hark_adapter *const *hark_registry_all(void);

/* 0, or -1 when two adapters share a name (checked at startup). */
int hark_registry_check(void);

#endif
