/*
 * pool.c — the REQUEST connections and the thread that keeps them ready.
 *
 * A server thread takes an idle connection from a mutex-protected free list,
 * uses it for one round trip and puts it back. It never connects itself:
 * the maintenance thread connects (with back-off while the broker is away),
 * keeps c_pool_spare idle connections warm, grows the pool when callers
 * find none free (up to c_pool_max), and closes idle connections the broker
 * has closed, so a caller rarely picks a dead one.
 */
#include "shim.h"

#include "transport.h"

#define BACKOFF_MIN_MS 20u
#define BACKOFF_MAX_MS 1000u
#define CHECK_PERIOD_NS 100000000u

static struct {
    dcb_mutex_t p_lock;
    dcb_cond_t p_wake;  /* the maintenance thread sleeps here */
    dcb_cond_t p_ready; /* callers wait here for an idle connection */
    dcb__conn_t *p_idle;
    uint32_t p_n_idle;
    uint32_t p_total; /* idle + in use + being opened */
    uint32_t p_waiters;
    uint32_t p_lost; /* connections lost since the last reconnect */
    int p_started;
    _Atomic int p_stop;
    dcb_thread_t p_thread;
} pool;

static uint32_t ms_until(uint64_t deadline_ns)
{
    uint64_t now = dcb_now_ns();

    if (now >= deadline_ns)
        return 0;
    return (uint32_t)((deadline_ns - now + 999999u) / 1000000u);
}

dcb__conn_t *dcb__pool_get(uint64_t deadline_ns, dcb__def_t *why)
{
    dcb__conn_t *c = NULL;
    uint32_t ms;

    dcb_mutex_lock(&pool.p_lock);
    if (pool.p_idle == NULL && pool.p_total > 0) {
        /* All busy: ask for another connection and wait, within the deadline. */
        pool.p_waiters++;
        dcb_cond_signal(&pool.p_wake);
        while (pool.p_idle == NULL && pool.p_total > 0 && !atomic_load(&pool.p_stop)) {
            ms = ms_until(deadline_ns);
            if (ms == 0)
                break;
            dcb_cond_timedwait(&pool.p_ready, &pool.p_lock, ms);
        }
        pool.p_waiters--;
    }
    if (pool.p_idle != NULL) {
        c = pool.p_idle;
        pool.p_idle = c->c_next;
        pool.p_n_idle--;
        if (pool.p_n_idle < dcb__cfg.c_pool_spare)
            dcb_cond_signal(&pool.p_wake);
    } else {
        *why = pool.p_total == 0 ? DCB__DEF_NO_BROKER : DCB__DEF_QUEUE_FULL;
    }
    dcb_mutex_unlock(&pool.p_lock);
    return c;
}

void dcb__pool_put(dcb__conn_t *c)
{
    dcb_mutex_lock(&pool.p_lock);
    c->c_next = pool.p_idle;
    pool.p_idle = c;
    pool.p_n_idle++;
    if (pool.p_waiters > 0)
        dcb_cond_signal(&pool.p_ready);
    dcb_mutex_unlock(&pool.p_lock);
}

void dcb__pool_discard(dcb__conn_t *c)
{
    dcb_mutex_lock(&pool.p_lock);
    pool.p_total--;
    pool.p_lost++;
    dcb_cond_signal(&pool.p_wake);
    if (pool.p_total == 0)
        dcb_cond_broadcast(&pool.p_ready);
    dcb_mutex_unlock(&pool.p_lock);
    dcb__conn_close(c);
}

/* Removes idle connections the broker closed (or wrote to unasked). Lock held. */
static dcb__conn_t *collect_dead(void)
{
    dcb__conn_t **pp = &pool.p_idle, *dead = NULL, *c;

    while ((c = *pp) != NULL) {
        if (dcb__tp_idle_ok(c->c_tp)) {
            pp = &c->c_next;
            continue;
        }
        *pp = c->c_next;
        c->c_next = dead;
        dead = c;
        pool.p_n_idle--;
        pool.p_total--;
        pool.p_lost++;
    }
    return dead;
}

static void pool_main(void *arg)
{
    uint64_t next_try = 0, next_check = 0, now;
    uint32_t backoff = BACKOFF_MIN_MS, hooks = 0, wait_ms;
    dcb__conn_t *c, *dead;
    int want;

    (void)arg;
    dcb_mutex_lock(&pool.p_lock);
    while (!atomic_load(&pool.p_stop)) {
        now = dcb_now_ns();
        want = (pool.p_n_idle < dcb__cfg.c_pool_spare || pool.p_waiters > 0) &&
               pool.p_total < dcb__cfg.c_pool_max;
        if (want && now >= next_try) {
            pool.p_total++; /* Reserved, so callers wait for it rather than give up. */
            dcb_mutex_unlock(&pool.p_lock);
            c = dcb__conn_open(DCB__CONN_ROLE__ROLE_REQUEST,
                               now + (uint64_t)dcb__cfg.c_connect_timeout_ms * 1000000u,
                               &pool.p_stop, &hooks);
            dcb_mutex_lock(&pool.p_lock);
            if (c != NULL) {
                dcb__subscribe_from(DCB__CONN_ROLE__ROLE_REQUEST, hooks);
                if (pool.p_lost > 0) {
                    pool.p_lost = 0;
                    atomic_fetch_add(&dcb__reconnects, 1);
                }
                c->c_next = pool.p_idle;
                pool.p_idle = c;
                pool.p_n_idle++;
                dcb_cond_signal(&pool.p_ready);
                backoff = BACKOFF_MIN_MS;
                next_try = 0;
            } else {
                pool.p_total--;
                if (pool.p_total == 0)
                    dcb_cond_broadcast(&pool.p_ready);
                next_try = dcb_now_ns() + (uint64_t)backoff * 1000000u;
                backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            }
            continue;
        }
        if (now >= next_check) {
            dead = collect_dead();
            next_check = now + CHECK_PERIOD_NS;
            if (dead != NULL) {
                if (pool.p_total == 0)
                    dcb_cond_broadcast(&pool.p_ready);
                dcb_mutex_unlock(&pool.p_lock);
                while ((c = dead) != NULL) {
                    dead = c->c_next;
                    dcb__conn_close(c);
                }
                dcb_mutex_lock(&pool.p_lock);
                continue;
            }
        }
        wait_ms = (uint32_t)(CHECK_PERIOD_NS / 1000000u);
        if (want && next_try > now && (next_try - now) / 1000000u + 1 < wait_ms)
            wait_ms = (uint32_t)((next_try - now) / 1000000u) + 1;
        dcb_cond_timedwait(&pool.p_wake, &pool.p_lock, wait_ms);
    }
    dcb_mutex_unlock(&pool.p_lock);
}

int dcb__pool_ready(void)
{
    int ready;

    dcb_mutex_lock(&pool.p_lock);
    ready = pool.p_idle != NULL;
    dcb_mutex_unlock(&pool.p_lock);
    return ready;
}

int dcb__pool_start(void)
{
    int rc;

    dcb_mutex_init(&pool.p_lock);
    dcb_cond_init(&pool.p_wake);
    dcb_cond_init(&pool.p_ready);
    pool.p_idle = NULL;
    pool.p_n_idle = pool.p_total = pool.p_waiters = pool.p_lost = 0;
    atomic_store(&pool.p_stop, 0);
    rc = dcb_thread_create(&pool.p_thread, pool_main, NULL);
    pool.p_started = rc == 0;
    if (rc != 0)
        dcb__log(DCB_LOG_ERROR, "cannot start the connection thread; using default decisions");
    return rc;
}

void dcb__pool_stop(void)
{
    dcb__conn_t *c;

    if (pool.p_started) {
        dcb_mutex_lock(&pool.p_lock);
        atomic_store(&pool.p_stop, 1);
        dcb_cond_broadcast(&pool.p_wake);
        dcb_cond_broadcast(&pool.p_ready);
        dcb_mutex_unlock(&pool.p_lock);
        dcb_thread_join(pool.p_thread);
        pool.p_started = 0;
    }
    /* STOP comes when no hook runs: every connection is idle now. */
    while ((c = pool.p_idle) != NULL) {
        pool.p_idle = c->c_next;
        dcb__conn_close(c);
    }
    pool.p_n_idle = pool.p_total = 0;
    dcb_cond_destroy(&pool.p_ready);
    dcb_cond_destroy(&pool.p_wake);
    dcb_mutex_destroy(&pool.p_lock);
}
