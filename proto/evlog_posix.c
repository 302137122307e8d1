/*
 * evlog_posix.c — dcb_evlog.h where there is no Event Log: no system
 * backend (dcb_evlog_open refuses it), and a detached writer thread for the
 * backends tests bring.
 */
#include "dcb_evlog.h"

#include <pthread.h>
#include <stdlib.h>

const dcb_evlog_backend_t *dcb_evlog_system(void)
{
    /* Linux runs the broker under systemd, which keeps its stderr. */
    return NULL;
}

typedef struct spawn {
    void (*sp_fn)(void *arg);
    void *sp_arg;
} spawn_t;

static void *spawn_main(void *p)
{
    spawn_t sp = *(spawn_t *)p;

    free(p);
    sp.sp_fn(sp.sp_arg);
    return NULL;
}

int dcb__evlog_spawn(void (*fn)(void *arg), void *arg)
{
    spawn_t *sp = malloc(sizeof(*sp));
    pthread_t t;

    if (sp == NULL)
        return DCB_OS_ENOMEM;
    sp->sp_fn = fn;
    sp->sp_arg = arg;
    if (pthread_create(&t, NULL, spawn_main, sp) != 0) {
        free(sp);
        return DCB_OS_ENOMEM;
    }
    pthread_detach(t);
    return 0;
}
