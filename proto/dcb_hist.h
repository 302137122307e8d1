/*
 * dcb_hist.h — log-linear latency histograms.
 *
 * Values (nanoseconds) fall into buckets of 64 linear steps per power of
 * two, so any recorded value is reported within 1/64 (< 1.6%) of itself.
 * Recording is one relaxed atomic increment: no lock on the event path.
 * Histograms merge by adding buckets, and their memory is fixed.
 */
#ifndef DCB_HIST_H
#define DCB_HIST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define DCB_HIST_SUB_BITS 6
#define DCB_HIST_SUB (1u << DCB_HIST_SUB_BITS)
/* 2^42 ns is over an hour: anything longer is clamped to the last bucket. */
#define DCB_HIST_MAX_POW 42
#define DCB_HIST_BUCKETS ((DCB_HIST_MAX_POW - DCB_HIST_SUB_BITS + 2) * DCB_HIST_SUB)

typedef struct dcb_hist {
    _Atomic uint64_t h_count;
    _Atomic uint64_t h_max;
    _Atomic uint64_t h_sum;
    _Atomic uint64_t h_buckets[DCB_HIST_BUCKETS];
} dcb_hist_t;

void dcb_hist_reset(dcb_hist_t *h);
void dcb_hist_record(dcb_hist_t *h, uint64_t value_ns);
/* dst += src. Safe while src is being recorded into. */
void dcb_hist_merge(dcb_hist_t *dst, const dcb_hist_t *src);
/* The value at quantile q in [0, 1]: the midpoint of the bucket it falls in. */
uint64_t dcb_hist_quantile(const dcb_hist_t *h, double q);
uint64_t dcb_hist_count(const dcb_hist_t *h);
uint64_t dcb_hist_max(const dcb_hist_t *h);

/* Bucket index for a value and the inclusive [lo, hi] range of a bucket. */
uint32_t dcb_hist_bucket(uint64_t value_ns);
void dcb_hist_bucket_range(uint32_t bucket, uint64_t *lo, uint64_t *hi);
/* Adds n samples to one bucket (used when decoding a sparse wire form). */
void dcb_hist_add_bucket(dcb_hist_t *h, uint32_t bucket, uint64_t n);

#endif /* DCB_HIST_H */
