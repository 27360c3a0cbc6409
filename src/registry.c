/*
 * The adapter registry: a NULL-terminated static table.
 */
#include <string.h>

#include "registry.h"

extern const struct hark_adapter hark_adapter_twilio;
extern const struct hark_adapter hark_adapter_vonage;
extern const struct hark_adapter hark_adapter_web;
extern const struct hark_adapter hark_adapter_meta;
extern const struct hark_adapter hark_adapter_telegram;
extern const struct hark_adapter hark_adapter_x;
extern const struct hark_adapter hark_adapter_imap;

static const struct hark_adapter *const adapters[] = {
    &hark_adapter_twilio,
    &hark_adapter_vonage,
    &hark_adapter_web,
    &hark_adapter_meta,
    &hark_adapter_telegram,
    &hark_adapter_x,
    &hark_adapter_imap,
    NULL,
};

const struct hark_adapter *const *hark_registry_all(void)
{
    return adapters;
}

const struct hark_adapter *hark_registry_find(const char *name)
{
    for (size_t i = 0; adapters[i]; i++) {
        if (strcmp(adapters[i]->name, name) == 0) {
            return adapters[i];
        }
    }
    return NULL;
}

const char *hark_registry_names(void)
{
    static char names[256];

    if (names[0] == '\0') {
        size_t len = 0;
        for (size_t i = 0; adapters[i] && len < sizeof(names); i++) {
            size_t n = strlen(adapters[i]->name);
            if (len + n + 3 >= sizeof(names)) {
                break;
            }
            if (len) {
                memcpy(names + len, ", ", 2);
                len += 2;
            }
            memcpy(names + len, adapters[i]->name, n);
            len += n;
        }
        names[len] = '\0';
    }
    return names;
}

int hark_registry_check(void)
{
    for (size_t i = 0; adapters[i]; i++) {
        for (size_t j = i + 1; adapters[j]; j++) {
            if (strcmp(adapters[i]->name, adapters[j]->name) == 0) {
                return -1;
            }
        }
    }
    return 0;
}
