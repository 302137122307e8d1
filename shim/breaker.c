/*
 * breaker.c — stops every packet from waiting a full deadline while the
 * broker is failing.
 *
 * Closed: requests pass; a success resets the failure count. After
 * c_breaker_threshold consecutive failures (timeouts, bad replies, broken
 * connections) it opens for c_breaker_min_ms: requests get the default at
 * once. When the period is over, one request is let through as a trial: its
 * success closes the breaker, its failure reopens it for twice as long (up
 * to c_breaker_max_ms). While closed, a request costs one atomic load here.
 */
#include "shim.h"

static struct {
    _Atomic int b_open;
    _Atomic uint32_t b_fails;
    dcb_mutex_t b_lock;
    uint64_t b_until;
    uint32_t b_backoff_ms;
    int b_trial; /* a trial request is out */
    uint32_t b_threshold, b_min_ms, b_max_ms;
} br;

void dcb__breaker_init(const dcb__cfg_t *cfg)
{
    dcb_mutex_init(&br.b_lock);
    atomic_store(&br.b_open, 0);
    atomic_store(&br.b_fails, 0);
    br.b_until = 0;
    br.b_trial = 0;
    br.b_threshold = cfg->c_breaker_threshold;
    br.b_min_ms = cfg->c_breaker_min_ms;
    br.b_max_ms = cfg->c_breaker_max_ms;
    br.b_backoff_ms = br.b_min_ms;
}

dcb__br_ticket_t dcb__breaker_enter(void)
{
    dcb__br_ticket_t t = DCB__BR_REJECT;

    if (!atomic_load_explicit(&br.b_open, memory_order_relaxed))
        return DCB__BR_PASS;
    dcb_mutex_lock(&br.b_lock);
    if (!atomic_load(&br.b_open)) {
        t = DCB__BR_PASS;
    } else if (!br.b_trial && dcb_now_ns() >= br.b_until) {
        br.b_trial = 1;
        t = DCB__BR_TRIAL;
    }
    dcb_mutex_unlock(&br.b_lock);
    return t;
}

static void open_locked(uint32_t ms)
{
    br.b_until = dcb_now_ns() + (uint64_t)ms * 1000000u;
    atomic_store(&br.b_open, 1);
}

void dcb__breaker_done(dcb__br_ticket_t ticket, int ok)
{
    uint32_t n;

    if (ticket == DCB__BR_TRIAL) {
        dcb_mutex_lock(&br.b_lock);
        br.b_trial = 0;
        if (ok) {
            atomic_store(&br.b_fails, 0);
            atomic_store(&br.b_open, 0);
            br.b_backoff_ms = br.b_min_ms;
            dcb_mutex_unlock(&br.b_lock);
            dcb__log(DCB_LOG_INFO, "circuit breaker closed: the broker answers again");
            return;
        }
        br.b_backoff_ms = br.b_backoff_ms > br.b_max_ms / 2 ? br.b_max_ms : br.b_backoff_ms * 2;
        open_locked(br.b_backoff_ms);
        dcb_mutex_unlock(&br.b_lock);
        return;
    }
    if (ok) {
        /* Read first: the common case writes nothing, so no cache line bounces. */
        if (atomic_load_explicit(&br.b_fails, memory_order_relaxed) != 0)
            atomic_store_explicit(&br.b_fails, 0, memory_order_relaxed);
        return;
    }
    n = atomic_fetch_add(&br.b_fails, 1) + 1;
    if (n < br.b_threshold || atomic_load(&br.b_open))
        return;
    dcb_mutex_lock(&br.b_lock);
    if (!atomic_load(&br.b_open)) {
        br.b_backoff_ms = br.b_min_ms;
        open_locked(br.b_backoff_ms);
        dcb_mutex_unlock(&br.b_lock);
        dcb__log(DCB_LOG_WARN,
                 "circuit breaker open after %u consecutive failures: default decisions "
                 "for %u ms",
                 n, br.b_min_ms);
        return;
    }
    dcb_mutex_unlock(&br.b_lock);
}
