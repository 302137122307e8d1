/*
 * os_posix.c — dcb_os.h on Linux.
 */
#include "dcb_os.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t dcb_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void dcb_sleep_ms(uint32_t ms)
{
    struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void dcb_mutex_init(dcb_mutex_t *m)
{
    pthread_mutex_init(m, NULL);
}

void dcb_mutex_destroy(dcb_mutex_t *m)
{
    pthread_mutex_destroy(m);
}

void dcb_mutex_lock(dcb_mutex_t *m)
{
    pthread_mutex_lock(m);
}

void dcb_mutex_unlock(dcb_mutex_t *m)
{
    pthread_mutex_unlock(m);
}

void dcb_rwlock_init(dcb_rwlock_t *l)
{
    pthread_rwlock_init(l, NULL);
}

void dcb_rwlock_destroy(dcb_rwlock_t *l)
{
    pthread_rwlock_destroy(l);
}

void dcb_rwlock_rdlock(dcb_rwlock_t *l)
{
    pthread_rwlock_rdlock(l);
}

void dcb_rwlock_rdunlock(dcb_rwlock_t *l)
{
    pthread_rwlock_unlock(l);
}

void dcb_rwlock_wrlock(dcb_rwlock_t *l)
{
    pthread_rwlock_wrlock(l);
}

void dcb_rwlock_wrunlock(dcb_rwlock_t *l)
{
    pthread_rwlock_unlock(l);
}

void dcb_cond_init(dcb_cond_t *c)
{
    pthread_condattr_t attr;

    /* Timed waits count on the monotonic clock, immune to clock changes. */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
}

void dcb_cond_destroy(dcb_cond_t *c)
{
    pthread_cond_destroy(c);
}

void dcb_cond_signal(dcb_cond_t *c)
{
    pthread_cond_signal(c);
}

void dcb_cond_broadcast(dcb_cond_t *c)
{
    pthread_cond_broadcast(c);
}

void dcb_cond_wait(dcb_cond_t *c, dcb_mutex_t *m)
{
    pthread_cond_wait(c, m);
}

int dcb_cond_timedwait(dcb_cond_t *c, dcb_mutex_t *m, uint32_t timeout_ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000u;
    ts.tv_nsec += (long)(timeout_ms % 1000u) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(c, m, &ts) == ETIMEDOUT ? DCB_OS_ETIMEDOUT : 0;
}

struct thread_start {
    dcb_thread_fn fn;
    void *arg;
};

static void *thread_main(void *p)
{
    struct thread_start start = *(struct thread_start *)p;

    free(p);
    start.fn(start.arg);
    return NULL;
}

int dcb_thread_create(dcb_thread_t *t, dcb_thread_fn fn, void *arg)
{
    struct thread_start *start = malloc(sizeof(*start));

    if (start == NULL)
        return DCB_OS_ENOMEM;
    start->fn = fn;
    start->arg = arg;
    if (pthread_create(t, NULL, thread_main, start) != 0) {
        free(start);
        return DCB_OS_EIO;
    }
    return 0;
}

int dcb_thread_join(dcb_thread_t t)
{
    return pthread_join(t, NULL) == 0 ? 0 : DCB_OS_EIO;
}

dcb_dl_t *dcb_dl_open(const char *path, char *err, size_t errlen)
{
    /*
     * RTLD_LOCAL keeps each plugin's symbols to itself, as separate DLLs are
     * on Windows; RTLD_NOW reports a missing symbol at load, not mid-packet.
     */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);

    if (h == NULL && err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", dlerror());
    return (dcb_dl_t *)h;
}

void *dcb_dl_sym(dcb_dl_t *dl, const char *name)
{
    return dlsym((void *)dl, name);
}

void dcb_dl_close(dcb_dl_t *dl)
{
    if (dl != NULL)
        dlclose((void *)dl);
}

uint32_t dcb_getpid(void)
{
    return (uint32_t)getpid();
}
