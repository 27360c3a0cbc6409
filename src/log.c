/*
 * Logging: key=value lines on stderr (or a file reopened on SIGHUP).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hark/alloc.h"
#include "hark/log.h"

enum hark_log_level hark_log_threshold = HARK_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static char *log_path;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

int hark_log_level_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            return (int)i;
        }
    }
    if (strcmp(name, "warning") == 0) {
        return HARK_LOG_WARN;
    }
    return -1;
}

void hark_log_write(enum hark_log_level level, const char *comp, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t len;
    int n;
    va_list ap;
    int saved = errno;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=%s ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000, level_names[level], comp);
    len = n > 0 ? (size_t)n : 0;
    va_start(ap, fmt);
    n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
    va_end(ap);
    len = n < 0 ? len : len + (size_t)n;
    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
    }
    /* One line per record: a newline inside would let input forge records. */
    for (size_t i = 0; i < len; i++) {
        if (line[i] == '\n' || line[i] == '\r') {
            line[i] = ' ';
        }
    }
    line[len++] = '\n';
    /* A single write(2) keeps lines from concurrent workers whole. */
    if (write(STDERR_FILENO, line, len) < 0) {
        /* Nowhere left to report it. */
    }
    errno = saved;
}

int hark_log_set_file(const char *path)
{
    int rc = 0;

    pthread_mutex_lock(&log_lock);
    if (hark_strset(&log_path, path) < 0) {
        rc = -1;
    }
    pthread_mutex_unlock(&log_lock);
    if (rc == 0) {
        hark_log_reopen();
    }
    return rc;
}

void hark_log_reopen(void)
{
    int fd;

    pthread_mutex_lock(&log_lock);
    if (log_path != NULL) {
        fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
    }
    pthread_mutex_unlock(&log_lock);
}
