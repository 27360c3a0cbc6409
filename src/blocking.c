/*
 * Blocking work off the event loops: each job runs on a short-lived
 * thread, and its completion is scheduled back onto the caller's loop with
 * event_base_once (thread-safe: every base is created after
 * evthread_use_pthreads). Jobs are rare and heavy (attachment files written
 * with fsync), so a thread per job costs nothing that matters.
 */
#include <pthread.h>

#include <event2/event.h>

#include "hark/alloc.h"
#include "hark/core.h"

struct job {
    struct event_base *base;
    void (*work)(void *arg);
    void (*done)(evutil_socket_t fd, short what, void *arg);
    void *arg;
};

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_idle = PTHREAD_COND_INITIALIZER;
static unsigned jobs_running;

static void *job_main(void *p)
{
    struct job *j = p;
    const struct timeval now = {0, 0};

    j->work(j->arg);
    event_base_once(j->base, -1, EV_TIMEOUT, j->done, j->arg, &now);
    hark_free(j);
    pthread_mutex_lock(&jobs_lock);
    if (--jobs_running == 0) {
        pthread_cond_broadcast(&jobs_idle);
    }
    pthread_mutex_unlock(&jobs_lock);
    return NULL;
}

int hark_run_blocking(struct event_base *base, void (*work)(void *arg),
                      void (*done)(evutil_socket_t fd, short what, void *arg), void *arg)
{
    struct job *j = hark_malloc(sizeof(*j));
    pthread_attr_t attr;
    pthread_t tid;
    int rc;

    if (j == NULL) {
        return -1;
    }
    j->base = base;
    j->work = work;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&jobs_lock);
    jobs_running++;
    pthread_mutex_unlock(&jobs_lock);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&tid, &attr, job_main, j);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_lock(&jobs_lock);
        jobs_running--;
        pthread_mutex_unlock(&jobs_lock);
        hark_free(j);
        return -1;
    }
    return 0;
}

void hark_blocking_drain(void)
{
    pthread_mutex_lock(&jobs_lock);
    while (jobs_running > 0) {
        pthread_cond_wait(&jobs_idle, &jobs_lock);
    }
    pthread_mutex_unlock(&jobs_lock);
}
