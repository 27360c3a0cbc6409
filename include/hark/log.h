/*
 * hark: logging.
 *
 * One line per event on stderr (journald adds the timestamp when run by
 * systemd): `level=info comp=http msg="..." key=value ...`. The macros test
 * the level before any argument is evaluated. Never pass a secret or a
 * message body at info level.
 */
#ifndef HARK_LOG_H
#define HARK_LOG_H

enum hark_log_level {
    HARK_LOG_ERROR = 0,
    HARK_LOG_WARN,
    HARK_LOG_INFO,
    HARK_LOG_DEBUG,
};

extern enum hark_log_level hark_log_threshold;

/* Parse "error", "warn", "info", "debug"; -1 when unknown. */
int hark_log_level_parse(const char *name);

/* Write one line; `fmt` is the rest of the line after level and comp. */
void hark_log_write(enum hark_log_level level, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reopen stderr's target (SIGHUP); a no-op unless logging to a file. */
void hark_log_reopen(void);

/* Use a log file instead of stderr (NULL: stderr). 0 or -1. */
int hark_log_set_file(const char *path);

#define hark_log(level, comp, ...)                                  \
    do {                                                            \
        if ((level) <= hark_log_threshold) {                        \
            hark_log_write((level), (comp), __VA_ARGS__);           \
        }                                                           \
    } while (0)

#define log_error(comp, ...) hark_log(HARK_LOG_ERROR, comp, __VA_ARGS__)
#define log_warn(comp, ...) hark_log(HARK_LOG_WARN, comp, __VA_ARGS__)
#define log_info(comp, ...) hark_log(HARK_LOG_INFO, comp, __VA_ARGS__)
#define log_debug(comp, ...) hark_log(HARK_LOG_DEBUG, comp, __VA_ARGS__)

#endif
