/*
 * stats.c — the shim's own view: per hook calls, unsubscribed calls,
 * defaults by reason, queue-full drops and what the server's threads waited.
 *
 * Counters are relaxed atomics, each hook's hot ones on their own cache
 * lines; the sender thread reads them about once a second and sends them
 * as ShimStats, cumulative since the shim was loaded, so a lost frame loses
 * nothing and the broker keeps the latest figures per hook.
 */
#include "shim.h"

#include <string.h>

dcb__hook_stats_t dcb__stats[DCB_HOOK_COUNT];
_Atomic uint64_t dcb__reconnects;

void dcb__stats_reset(void)
{
    for (int h = 0; h < DCB_HOOK_COUNT; h++) {
        dcb__hook_stats_t *s = &dcb__stats[h];
        atomic_store(&s->hs_unsub, 0);
        atomic_store(&s->hs_calls, 0);
        for (int d = 0; d < DCB__DEF_COUNT; d++)
            atomic_store(&s->hs_def[d], 0);
        atomic_store(&s->hs_lost, 0);
        dcb_hist_reset(&s->hs_waited);
    }
    atomic_store(&dcb__reconnects, 0);
}

static uint64_t ld(_Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* Sparse form of one histogram; bucket/count point at caller scratch. */
static void hist_sparse(dcb_hist_t *h, Dcb__Histogram *out, uint32_t *bucket, uint64_t *count)
{
    size_t n = 0;

    for (uint32_t b = 0; b < DCB_HIST_BUCKETS; b++) {
        uint64_t c = ld(&h->h_buckets[b]);
        if (c == 0)
            continue;
        bucket[n] = b;
        count[n] = c;
        n++;
    }
    out->n_bucket = n;
    out->bucket = bucket;
    out->n_count = n;
    out->count = count;
    out->has_max = 1;
    out->max = ld(&h->h_max);
    out->has_sum = 1;
    out->sum = ld(&h->h_sum);
}

static void hook_fill(int hook, Dcb__ShimHookStats *hs, Dcb__Histogram *hist, uint32_t *bucket,
                      uint64_t *count)
{
    dcb__hook_stats_t *s = &dcb__stats[hook];
    uint64_t unsub = ld(&s->hs_unsub);

    dcb__shim_hook_stats__init(hs);
    dcb__histogram__init(hist);
    hs->hook = (uint32_t)hook;
    hs->has_calls = 1;
    hs->calls = ld(&s->hs_calls) + unsub;
    hs->has_unsubscribed = 1;
    hs->unsubscribed = unsub;
    hs->has_defaults_timeout = 1;
    hs->defaults_timeout = ld(&s->hs_def[DCB__DEF_TIMEOUT]);
    hs->has_defaults_no_broker = 1;
    hs->defaults_no_broker = ld(&s->hs_def[DCB__DEF_NO_BROKER]);
    hs->has_defaults_breaker = 1;
    hs->defaults_breaker = ld(&s->hs_def[DCB__DEF_BREAKER]);
    hs->has_defaults_bad_reply = 1;
    hs->defaults_bad_reply = ld(&s->hs_def[DCB__DEF_BAD_REPLY]);
    hs->has_queue_full = 1;
    hs->queue_full = ld(&s->hs_def[DCB__DEF_QUEUE_FULL]);
    hs->has_defaults_other = 1;
    hs->defaults_other = ld(&s->hs_def[DCB__DEF_OTHER]);
    hs->has_lost = 1;
    hs->lost = ld(&s->hs_lost);
    hist_sparse(&s->hs_waited, hist, bucket, count);
    hs->waited = hist;
}

size_t dcb__stats_encode(uint8_t *buf, size_t cap)
{
    /* Scratch for the sparse histograms; only the sender thread calls this. */
    static uint32_t bucket[DCB_HOOK_COUNT][DCB_HIST_BUCKETS];
    static uint64_t count[DCB_HOOK_COUNT][DCB_HIST_BUCKETS];
    Dcb__ShimHookStats hs[DCB_HOOK_COUNT];
    Dcb__ShimHookStats *ptrs[DCB_HOOK_COUNT];
    Dcb__Histogram hist[DCB_HOOK_COUNT];
    Dcb__ShimStats st = DCB__SHIM_STATS__INIT;
    size_t used = 0;
    int rc;

    for (int h = 0; h < DCB_HOOK_COUNT; h++) {
        hook_fill(h, &hs[h], &hist[h], bucket[h], count[h]);
        ptrs[h] = &hs[h];
    }
    st.has_reconnects = 1;
    st.reconnects = ld(&dcb__reconnects);
    st.has_packets_live = 1;
    st.packets_live = dcb__pkt_live();
    st.n_hooks = DCB_HOOK_COUNT;
    st.hooks = ptrs;
    if (dcb_frame_size(&st.base) <= DCB_MAX_FRAME_EVENT) {
        rc = dcb_frame_encode(DCB__FRAME_TYPE__FT_SHIM_STATS, &st.base, buf, cap);
        return rc > 0 ? (size_t)rc : 0;
    }
    /*
     * Wide histograms may not fit one frame: send one frame per hook then
     * (each replaces that hook's figures at the broker).
     */
    for (int h = 0; h < DCB_HOOK_COUNT; h++) {
        st.n_hooks = 1;
        st.hooks = &ptrs[h];
        if (dcb_frame_size(&st.base) > DCB_MAX_FRAME_EVENT)
            hs[h].waited = NULL;
        rc = dcb_frame_encode(DCB__FRAME_TYPE__FT_SHIM_STATS, &st.base, buf + used, cap - used);
        if (rc <= 0)
            break;
        used += (size_t)rc;
    }
    return used;
}
