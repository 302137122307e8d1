/*
 * hist.c — log-linear histograms (see dcb_hist.h).
 *
 * Bucket b < 64 holds exactly the value b. Above that, each power of two
 * [2^p, 2^(p+1)) is split into 64 equal steps, so a bucket's width is at
 * most 1/64 of its lower bound and its midpoint is within 1/128 of any value
 * in it.
 */
#include "dcb_hist.h"

#include <string.h>

static int log2_floor(uint64_t v)
{
    return 63 - __builtin_clzll(v);
}

uint32_t dcb_hist_bucket(uint64_t v)
{
    int p;

    if (v < DCB_HIST_SUB)
        return (uint32_t)v;
    if (v >> (DCB_HIST_MAX_POW + 1))
        v = (UINT64_C(1) << (DCB_HIST_MAX_POW + 1)) - 1;
    p = log2_floor(v);
    return (uint32_t)(p - DCB_HIST_SUB_BITS + 1) * DCB_HIST_SUB +
           (uint32_t)((v >> (p - DCB_HIST_SUB_BITS)) - DCB_HIST_SUB);
}

void dcb_hist_bucket_range(uint32_t b, uint64_t *lo, uint64_t *hi)
{
    uint32_t group = b / DCB_HIST_SUB, step = b % DCB_HIST_SUB;
    int shift;

    if (group == 0) {
        *lo = *hi = b;
        return;
    }
    shift = (int)group - 1;
    *lo = (uint64_t)(DCB_HIST_SUB + step) << shift;
    *hi = *lo + (UINT64_C(1) << shift) - 1;
}

void dcb_hist_reset(dcb_hist_t *h)
{
    atomic_store_explicit(&h->h_count, 0, memory_order_relaxed);
    atomic_store_explicit(&h->h_max, 0, memory_order_relaxed);
    atomic_store_explicit(&h->h_sum, 0, memory_order_relaxed);
    for (size_t i = 0; i < DCB_HIST_BUCKETS; i++)
        atomic_store_explicit(&h->h_buckets[i], 0, memory_order_relaxed);
}

void dcb_hist_record(dcb_hist_t *h, uint64_t v)
{
    uint64_t max = atomic_load_explicit(&h->h_max, memory_order_relaxed);

    atomic_fetch_add_explicit(&h->h_buckets[dcb_hist_bucket(v)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->h_count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->h_sum, v, memory_order_relaxed);
    while (v > max &&
           !atomic_compare_exchange_weak_explicit(&h->h_max, &max, v, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

void dcb_hist_add_bucket(dcb_hist_t *h, uint32_t b, uint64_t n)
{
    uint64_t lo, hi, max;

    if (b >= DCB_HIST_BUCKETS || n == 0)
        return;
    atomic_fetch_add_explicit(&h->h_buckets[b], n, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->h_count, n, memory_order_relaxed);
    dcb_hist_bucket_range(b, &lo, &hi);
    atomic_fetch_add_explicit(&h->h_sum, n * (lo + (hi - lo) / 2), memory_order_relaxed);
    /* The exact maximum is not on the wire: the bucket's top bounds it. */
    max = atomic_load_explicit(&h->h_max, memory_order_relaxed);
    while (hi > max &&
           !atomic_compare_exchange_weak_explicit(&h->h_max, &max, hi, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

void dcb_hist_merge(dcb_hist_t *dst, const dcb_hist_t *src)
{
    uint64_t smax = atomic_load_explicit(&src->h_max, memory_order_relaxed);
    uint64_t dmax = atomic_load_explicit(&dst->h_max, memory_order_relaxed);

    for (size_t i = 0; i < DCB_HIST_BUCKETS; i++) {
        uint64_t n = atomic_load_explicit(&src->h_buckets[i], memory_order_relaxed);
        if (n != 0)
            atomic_fetch_add_explicit(&dst->h_buckets[i], n, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&dst->h_count,
                              atomic_load_explicit(&src->h_count, memory_order_relaxed),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&dst->h_sum,
                              atomic_load_explicit(&src->h_sum, memory_order_relaxed),
                              memory_order_relaxed);
    while (smax > dmax &&
           !atomic_compare_exchange_weak_explicit(&dst->h_max, &dmax, smax, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

uint64_t dcb_hist_count(const dcb_hist_t *h)
{
    return atomic_load_explicit(&h->h_count, memory_order_relaxed);
}

uint64_t dcb_hist_max(const dcb_hist_t *h)
{
    return atomic_load_explicit(&h->h_max, memory_order_relaxed);
}

uint64_t dcb_hist_quantile(const dcb_hist_t *h, double q)
{
    uint64_t total = 0, rank, seen = 0, lo, hi;

    /* Sum the buckets rather than trusting h_count, which a concurrent
     * recorder may have bumped before its bucket. */
    for (size_t i = 0; i < DCB_HIST_BUCKETS; i++)
        total += atomic_load_explicit(&h->h_buckets[i], memory_order_relaxed);
    if (total == 0)
        return 0;
    if (q <= 0)
        q = 0;
    if (q >= 1)
        return dcb_hist_max(h);
    rank = (uint64_t)(q * (double)total);
    if (rank >= total)
        rank = total - 1;
    for (uint32_t i = 0; i < DCB_HIST_BUCKETS; i++) {
        seen += atomic_load_explicit(&h->h_buckets[i], memory_order_relaxed);
        if (seen > rank) {
            uint64_t max = dcb_hist_max(h);
            dcb_hist_bucket_range(i, &lo, &hi);
            lo += (hi - lo) / 2;
            /* Never report more than the largest value actually seen. */
            return (max != 0 && lo > max) ? max : lo;
        }
    }
    return dcb_hist_max(h);
}
