/*
 * Settings: the core schema, the second-pass checks, channel creation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hark/alloc.h"
#include "hark/log.h"
#include "registry.h"
#include "outbox.h"
#include "settings.h"

static const struct hark_conf_key server_keys[] = {
    {"listen", HARK_CT_STRING, "127.0.0.1:8080", 0, 0, 0,
     "comma-separated host:port or unix:/path addresses"},
    {"public_url", HARK_CT_STRING, NULL, 0, 0, 0,
     "base URL the providers call, used to rebuild signed URLs (default http://<first listen>)"},
    {"workers", HARK_CT_INT, "0", 0, 0, 256, "worker threads; 0: one per CPU"},
    {"max_body", HARK_CT_SIZE, "1m", 0, 1024, 64 * 1048576, "largest request body accepted"},
    {"max_headers", HARK_CT_SIZE, "16k", 0, 1024, 1048576, "largest request header block"},
    {"request_timeout", HARK_CT_DURATION, "30s", 0, 1000, 3600000, "idle/read timeout of a client"},
    {"drain_timeout", HARK_CT_DURATION, "10s", 0, 0, 600000,
     "how long SIGTERM waits for in-flight requests"},
    {"unanswered_after", HARK_CT_DURATION, "1h", 0, 0, 0,
     "emit conversation.unanswered when a customer waits this long (0: never)"},
    {"rate_limit", HARK_CT_INT, "0", 0, 0, 1000000,
     "requests per second accepted from one client address, per worker (0: no limit)"},
    {"rate_burst", HARK_CT_INT, "100", 0, 1, 1000000, "requests one address may send at once"},
    {"sweep_interval", HARK_CT_DURATION, "5s", 0, 100, 3600000,
     "how often unanswered conversations and overdue SMS parts are looked for"},
    {0},
};

static const struct hark_conf_key redis_keys[] = {
    {"url", HARK_CT_STRING, "redis://127.0.0.1:6379/0", 0, 0, 0,
     "redis://[:password@]host:port/db or unix:/path/redis.sock[?db=N]"},
    {"password", HARK_CT_SECRET, NULL, 0, 0, 0, "AUTH password (use ${ENV} or file:PATH)"},
    {"prefix", HARK_CT_STRING, "hark", 0, 0, 0, "first part of every key"},
    {"partitions", HARK_CT_INT, "1", 0, 1, 1024, "number of {P} partitions"},
    {"events_maxlen", HARK_CT_INT, "1000000", 0, 1000, 1000000000,
     "approximate MAXLEN of each events stream"},
    {"batch", HARK_CT_INT, "64", 0, 1, 512, "most messages per ingest script call"},
    {"pipeline", HARK_CT_INT, "4", 0, 1, 64, "ingest calls in flight per partition and worker"},
    {"concat_ttl", HARK_CT_DURATION, "10m", 0, 1000, 86400000,
     "how long parts of a concatenated SMS wait before it is filed incomplete"},
    {0},
};

static const struct hark_conf_key log_keys[] = {
    {"level", HARK_CT_STRING, "info", 0, 0, 0, "error, warn, info or debug"},
    {"file", HARK_CT_STRING, NULL, 0, 0, 0, "log to this file instead of stderr (reopened on SIGHUP)"},
    {0},
};

static const struct hark_conf_key channel_keys[] = {
    {"type", HARK_CT_STRING, NULL, 1, 0, 0, "adapter: twilio, vonage, meta, telegram, x, web, imap"},
    {"path", HARK_CT_STRING, NULL, 0, 0, 0, "webhook route (default /hooks/NAME)"},
    {0},
};

/* The default of a key in a schema table (NULL when none). */
static const char *key_default(const struct hark_conf_key *keys, const char *name)
{
    for (; keys->name; keys++) {
        if (strcmp(keys->name, name) == 0) {
            return keys->def;
        }
    }
    return NULL;
}

/* The value of key in sec, or the schema default. */
static const char *value_or_default(const struct hark_section *sec,
                                    const struct hark_conf_key *keys, const char *key)
{
    const char *v = sec ? hark_section_get(sec, key) : NULL;
    return v ? v : key_default(keys, key);
}

static int64_t typed_or_default(const struct hark_section *sec, const struct hark_conf_key *keys,
                                const char *key)
{
    const char *v = value_or_default(sec, keys, key);
    int64_t n = 0;

    for (; keys->name; keys++) {
        if (strcmp(keys->name, key) == 0) {
            break;
        }
    }
    if (v == NULL) {
        return 0;
    }
    switch (keys->type) {
    case HARK_CT_DURATION:
        hark_parse_duration_ms(v, &n);
        return n;
    case HARK_CT_SIZE:
        hark_parse_size(v, &n);
        return n;
    default:
        return strtoll(v, NULL, 10);
    }
}

/* Split "a, b,c" into trimmed parts. */
static int split_listen(const char *text, struct hark_settings *s)
{
    const char *p = text;

    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *start = p;
        char **grown;

        while (len && (*start == ' ' || *start == '\t')) {
            start++;
            len--;
        }
        while (len && (start[len - 1] == ' ' || start[len - 1] == '\t')) {
            len--;
        }
        if (len) {
            grown = hark_realloc(s->listen, (s->n_listen + 1) * sizeof(*grown));
            if (grown == NULL) {
                return -1;
            }
            s->listen = grown;
            if ((grown[s->n_listen] = hark_strndup(start, len)) == NULL) {
                return -1;
            }
            s->n_listen++;
        }
        p = comma ? comma + 1 : p + strlen(p);
    }
    return 0;
}

/* Check that a listen address has a port (or is a unix path). */
static int listen_ok(const char *addr)
{
    const char *colon;

    if (strncmp(addr, "unix:/", 6) == 0) {
        return 1;
    }
    colon = strrchr(addr, ':');
    return colon && colon != addr && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1);
}

static void server_settings(struct hark_settings *s, const struct hark_section *sec,
                            struct hark_conf_errors *errs)
{
    const char *listen = value_or_default(sec, server_keys, "listen");
    const char *url = sec ? hark_section_get(sec, "public_url") : NULL;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    const char *where = sec ? sec->file : "(defaults)";

    if (split_listen(listen, s) < 0 || s->n_listen == 0) {
        hark_conf_error(errs, "%s: [server] listen: no address", where);
    }
    for (size_t i = 0; i < s->n_listen; i++) {
        if (!listen_ok(s->listen[i])) {
            hark_conf_error(errs, "%s: [server] listen = \"%s\": expected host:port or unix:/path",
                            where, s->listen[i]);
        }
    }
    if (url == NULL && s->n_listen > 0 && strncmp(s->listen[0], "unix:", 5) != 0) {
        s->public_url = hark_asprintf("http://%s", s->listen[0]);
    } else if (url != NULL) {
        char why[128];
        s->public_url = hark_section_base_url(sec, "public_url", NULL, why, sizeof(why));
        if (s->public_url == NULL) {
            hark_conf_error(errs, "%s: [server] public_url = \"%s\": %s", where, url, why);
        }
    } else {
        s->public_url = hark_strdup("http://localhost");
    }
    s->workers = (int)typed_or_default(sec, server_keys, "workers");
    if (s->workers == 0) {
        s->workers = cpus > 0 ? (int)cpus : 1;
    }
    s->max_body = typed_or_default(sec, server_keys, "max_body");
    s->max_headers = typed_or_default(sec, server_keys, "max_headers");
    s->request_timeout_ms = typed_or_default(sec, server_keys, "request_timeout");
    s->drain_timeout_ms = typed_or_default(sec, server_keys, "drain_timeout");
    s->unanswered_after_ms = typed_or_default(sec, server_keys, "unanswered_after");
    s->sweep_interval_ms = typed_or_default(sec, server_keys, "sweep_interval");
    s->rate_limit = typed_or_default(sec, server_keys, "rate_limit");
    s->rate_burst = typed_or_default(sec, server_keys, "rate_burst");
}

static void redis_settings(struct hark_settings *s, const struct hark_section *sec,
                           struct hark_conf_errors *errs)
{
    const char *url = value_or_default(sec, redis_keys, "url");
    char why[256];

    if (hark_redis_opts_parse(url, &s->redis, why, sizeof(why)) < 0) {
        hark_conf_error(errs, "%s: [redis] url: %s", sec ? sec->file : "(defaults)", why);
    }
    s->redis.password = sec ? hark_section_secret(sec, "password") : NULL;
    s->prefix = value_or_default(sec, redis_keys, "prefix");
    s->partitions = (int)typed_or_default(sec, redis_keys, "partitions");
    s->events_maxlen = typed_or_default(sec, redis_keys, "events_maxlen");
    s->batch = (int)typed_or_default(sec, redis_keys, "batch");
    s->pipeline = (int)typed_or_default(sec, redis_keys, "pipeline");
    s->concat_ttl_ms = typed_or_default(sec, redis_keys, "concat_ttl");
    if (strpbrk(s->prefix, "{} \t") != NULL || s->prefix[0] == '\0') {
        hark_conf_error(errs, "%s: [redis] prefix = \"%s\": no braces or spaces allowed",
                        sec ? sec->file : "(defaults)", s->prefix);
    }
}

static void log_settings(struct hark_settings *s, const struct hark_section *sec,
                         struct hark_conf_errors *errs)
{
    const char *level = value_or_default(sec, log_keys, "level");

    s->log_level = hark_log_level_parse(level);
    if (s->log_level < 0) {
        hark_conf_error(errs, "%s: [log] level = \"%s\": expected error, warn, info or debug",
                        sec ? sec->file : "(defaults)", level);
        s->log_level = HARK_LOG_INFO;
    }
    s->log_file = sec ? hark_section_get(sec, "file") : NULL;
}

/* Create the channel of a [channel.NAME] section; errors go to errs. */
static void channel_create(struct hark_settings *s, struct hark_section *sec,
                           struct hark_conf_errors *errs)
{
    const char *name = sec->name + strlen("channel.");
    const struct hark_conf_entry *type_entry = NULL;
    const struct hark_adapter *adapter;
    struct hark_channel *ch, **grown;
    const struct hark_conf_key *schemas[3] = {channel_keys, NULL, NULL};
    char err[256] = "";

    for (size_t i = 0; i < sec->n; i++) {
        if (strcmp(sec->entries[i].key, "type") == 0) {
            type_entry = &sec->entries[i];
        }
    }
    if (type_entry == NULL) {
        hark_conf_error(errs, "%s:%d: [%s] missing required key \"type\" (one of: %s)", sec->file,
                        sec->line, sec->name, hark_registry_names());
        return;
    }
    adapter = hark_registry_find(type_entry->raw);
    if (adapter == NULL) {
        hark_conf_error(errs, "%s:%d: [%s] type = \"%s\": unknown channel type (known: %s)",
                        sec->file, type_entry->line, sec->name, type_entry->raw,
                        hark_registry_names());
        return;
    }
    schemas[1] = adapter->keys;
    if (hark_section_expand(sec, schemas, errs) < 0) {
        return;
    }
    ch = hark_calloc(1, sizeof(*ch));
    if (ch == NULL) {
        hark_conf_error(errs, "%s: out of memory", sec->file);
        return;
    }
    ch->name = hark_strdup(name);
    ch->adapter = adapter;
    ch->section = sec;
    ch->path = hark_section_get(sec, "path") ? hark_strdup(hark_section_get(sec, "path"))
                                             : hark_asprintf("/hooks/%s", name);
    grown = hark_realloc(s->channels, (s->n_channels + 1) * sizeof(*grown));
    if (ch->name == NULL || ch->path == NULL || grown == NULL) {
        hark_free(ch->name);
        hark_free(ch->path);
        hark_free(ch);
        hark_conf_error(errs, "%s: out of memory", sec->file);
        return;
    }
    s->channels = grown;
    s->channels[s->n_channels++] = ch;
    if (ch->path[0] != '/') {
        hark_conf_error(errs, "%s:%d: [%s] path = \"%s\": must start with /", sec->file, sec->line,
                        sec->name, ch->path);
    }
    for (size_t i = 0; i + 1 < s->n_channels; i++) {
        if ((adapter->caps & HARK_CAP_WEBHOOK) && (s->channels[i]->adapter->caps & HARK_CAP_WEBHOOK) &&
            strcmp(s->channels[i]->path, ch->path) == 0) {
            hark_conf_error(errs, "%s:%d: [%s] path \"%s\" is already used by [channel.%s]",
                            sec->file, sec->line, sec->name, ch->path, s->channels[i]->name);
        }
    }
    if (adapter->init && adapter->init(ch, err, sizeof(err)) < 0) {
        hark_conf_error(errs, "%s:%d: [%s] %s", sec->file, sec->line, sec->name,
                        err[0] ? err : "channel could not be initialised");
    }
}

int hark_settings_load(const char *path, struct hark_settings *s, struct hark_conf_errors *errs)
{
    struct hark_section *server, *redis, *logsec;
    size_t before = errs->n;

    memset(s, 0, sizeof(*s));
    if (hark_conf_load(path, &s->conf, errs) < 0) {
        return -1;
    }
    server = hark_conf_section(&s->conf, "server");
    redis = hark_conf_section(&s->conf, "redis");
    logsec = hark_conf_section(&s->conf, "log");
    for (size_t i = 0; i < s->conf.n; i++) {
        struct hark_section *sec = s->conf.sections[i];
        const struct hark_conf_key *schemas[2] = {NULL, NULL};
        if (sec == server) {
            schemas[0] = server_keys;
        } else if (sec == redis) {
            schemas[0] = redis_keys;
        } else if (sec == logsec) {
            schemas[0] = log_keys;
        } else if (strcmp(sec->name, "outbox") == 0) {
            schemas[0] = hark_outbox_conf_keys;
            s->outbox = sec;
        } else if (strncmp(sec->name, "channel.", 8) == 0 && sec->name[8] != '\0') {
            channel_create(s, sec, errs);
            continue;
        } else {
            hark_conf_error(errs, "%s:%d: unknown section [%s] (allowed: server, redis, log, "
                            "outbox, channel.NAME)", sec->file, sec->line, sec->name);
            continue;
        }
        hark_section_expand(sec, schemas, errs);
    }
    if (errs->n != before) {
        return -1;
    }
    server_settings(s, server, errs);
    redis_settings(s, redis, errs);
    log_settings(s, logsec, errs);
    return errs->n == before ? 0 : -1;
}

void hark_settings_free(struct hark_settings *s)
{
    for (size_t i = 0; i < s->n_channels; i++) {
        struct hark_channel *ch = s->channels[i];
        if (ch->adapter->destroy && ch->ctx) {
            ch->adapter->destroy(ch->ctx);
        }
        hark_free(ch->name);
        hark_free(ch->path);
        hark_free(ch);
    }
    hark_free(s->channels);
    for (size_t i = 0; i < s->n_listen; i++) {
        hark_free(s->listen[i]);
    }
    hark_free(s->listen);
    hark_free(s->public_url);
    hark_redis_opts_clear(&s->redis);
    hark_conf_free(&s->conf);
    memset(s, 0, sizeof(*s));
}

const struct hark_channel *hark_settings_route(const struct hark_settings *s, const char *path)
{
    for (size_t i = 0; i < s->n_channels; i++) {
        const struct hark_channel *ch = s->channels[i];
        if ((ch->adapter->caps & HARK_CAP_WEBHOOK) && strcmp(ch->path, path) == 0) {
            return ch;
        }
    }
    return NULL;
}

static void print_table(const char *heading, const struct hark_conf_key *keys)
{
    static const char *const types[] = {"string", "secret", "integer", "boolean", "duration", "size"};

    printf("%s\n", heading);
    for (; keys && keys->name; keys++) {
        printf("  %-18s %-8s %-10s %s%s\n", keys->name, types[keys->type],
               keys->def ? keys->def : "-", keys->required ? "(required) " : "", keys->desc);
    }
}

void hark_settings_print_keys(void)
{
    const struct hark_adapter *const *all = hark_registry_all();
    char title[64];

    print_table("[server]", server_keys);
    print_table("[redis]", redis_keys);
    print_table("[log]", log_keys);
    print_table("[outbox]", hark_outbox_conf_keys);
    print_table("[channel.NAME]", channel_keys);
    for (size_t i = 0; all[i]; i++) {
        snprintf(title, sizeof(title), "[channel.NAME] with type = %s", all[i]->name);
        print_table(title, all[i]->keys);
    }
}
