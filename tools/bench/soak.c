/*
 * soak.c — memory at a steady load over time: the server process (with the
 * shim in it), the broker and its hosts, through the sample chain
 * (macfilter -> auditlog -> optinject, which modifies replies and drops
 * some clients, so every path of the broker is exercised).
 *
 * A sampler thread reads resident memory every few seconds while the
 * seeded workload runs paced at a fixed rate. The first quarter of the run
 * is warm-up (pools, caches, lease table filling); a least-squares line
 * through the rest gives the slope. A series is "flat" when that line
 * grows by less than max(1 MiB, 5% of its mean) over the measured window.
 */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct sampler {
    bench_soak_t *sp_k;
    bench_session_t *sp_s;
    size_t sp_cap;
    uint64_t sp_start;
    uint32_t sp_every_ms;
    _Atomic int sp_stop;
    dcb_mutex_t sp_lock;
    dcb_cond_t sp_cond;
} sampler_t;

static void sample(sampler_t *sp)
{
    bench_soak_t *k = sp->sp_k;
    uint32_t pids[32];
    size_t n = bench_session_pids(sp->sp_s, pids, 32);
    bench_procstat_t ps;
    uint64_t kb[BENCH_SOAK_SERIES] = {0};

    if (k->k_n >= sp->sp_cap)
        return;
    if (bench_sys_procstat(0, &ps) == 0)
        kb[0] = ps.ps_rss_kb;
    for (size_t i = 0; i < n; i++)
        if (bench_sys_procstat(pids[i], &ps) == 0)
            kb[i == 0 ? 1 : 2] += ps.ps_rss_kb;
    k->k_t[k->k_n] = (double)(dcb_now_ns() - sp->sp_start) / 1e9;
    for (int j = 0; j < BENCH_SOAK_SERIES; j++)
        k->k_kb[j][k->k_n] = kb[j];
    k->k_n++;
}

static void sampler_main(void *arg)
{
    sampler_t *sp = arg;

    dcb_mutex_lock(&sp->sp_lock);
    while (!atomic_load(&sp->sp_stop)) {
        dcb_mutex_unlock(&sp->sp_lock);
        sample(sp);
        dcb_mutex_lock(&sp->sp_lock);
        if (!atomic_load(&sp->sp_stop))
            dcb_cond_timedwait(&sp->sp_cond, &sp->sp_lock, sp->sp_every_ms);
    }
    dcb_mutex_unlock(&sp->sp_lock);
    sample(sp); /* the end of the run */
}

static void fit(bench_soak_t *k, int j)
{
    double from = k->k_secs / 4, sx = 0, sy = 0, sxx = 0, sxy = 0, m = 0, growth;

    for (size_t i = 0; i < k->k_n; i++) {
        double x, y;
        if (k->k_t[i] < from)
            continue;
        x = k->k_t[i];
        y = (double)k->k_kb[j][i];
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
        m++;
    }
    k->k_mean[j] = m > 0 ? sy / m : 0;
    if (m < 2 || m * sxx - sx * sx <= 0) {
        k->k_slope[j] = 0;
        k->k_flat[j] = m >= 1;
        return;
    }
    k->k_slope[j] = (m * sxy - sx * sy) / (m * sxx - sx * sx) * 60.0; /* KiB per minute */
    growth = k->k_slope[j] * (k->k_secs - from) / 60.0;
    k->k_flat[j] = growth < fmax(1024.0, 0.05 * k->k_mean[j]);
}

int bench_soak(bench_ctx_t *c, bench_soak_t *k)
{
    const char *chain[3] = {c->c_macfilter, c->c_auditlog, c->c_optinject};
    bench_session_t s;
    sampler_t sp;
    dcb_thread_t th;
    bench_load_t wl;
    bench_run_t r;
    int rc = -1;

    memset(k, 0, sizeof(*k));
    k->k_shim_defaults = k->k_undelivered = -1;
    k->k_secs = c->c_opt.o_soak_s;
    k->k_rate = c->c_opt.o_soak_rate;
    memset(&sp, 0, sizeof(sp));
    sp.sp_every_ms = (uint32_t)(c->c_opt.o_soak_every_s * 1000);
    if (sp.sp_every_ms < 100)
        sp.sp_every_ms = 100;
    sp.sp_cap = (size_t)(k->k_secs * 1000 / sp.sp_every_ms) + 16;
    k->k_t = calloc(sp.sp_cap, sizeof(*k->k_t));
    for (int j = 0; j < BENCH_SOAK_SERIES; j++)
        k->k_kb[j] = calloc(sp.sp_cap, sizeof(uint64_t));
    if (k->k_t == NULL || k->k_kb[0] == NULL || k->k_kb[1] == NULL || k->k_kb[2] == NULL)
        return -1;
    if (bench_session_start(&s, c, "soak", chain, 3) != 0)
        return -1;
    bench_note(c,
               "soak: %.0f s at %.0f packets/s through macfilter -> auditlog -> optinject, "
               "memory every %.1f s",
               k->k_secs, k->k_rate, sp.sp_every_ms / 1000.0);
    sp.sp_k = k;
    sp.sp_s = &s;
    dcb_mutex_init(&sp.sp_lock);
    dcb_cond_init(&sp.sp_cond);
    sp.sp_start = dcb_now_ns();
    if (dcb_thread_create(&th, sampler_main, &sp) != 0)
        goto out;
    memset(&wl, 0, sizeof(wl));
    wl.wl_tbl = &s.s_tbl;
    wl.wl_tally = s.s_calls;
    wl.wl_duration_ms = (uint64_t)(k->k_secs * 1000);
    wl.wl_rate = k->k_rate;
    bench_run_init(&r, "soak", "soak");
    rc = bench_workload(c, &wl, &r);
    dcb_mutex_lock(&sp.sp_lock);
    atomic_store(&sp.sp_stop, 1);
    dcb_cond_signal(&sp.sp_cond);
    dcb_mutex_unlock(&sp.sp_lock);
    dcb_thread_join(th);
    k->k_secs = (double)(dcb_now_ns() - sp.sp_start) / 1e9;
    k->k_pkts_per_s = r.r_pkts_per_s;
    k->k_newpkt = r.r_newpkt;
    for (int j = 0; j < BENCH_SOAK_SERIES; j++)
        fit(k, j);
    k->k_ok = rc == 0 && k->k_n >= 2;
out:
    bench_session_stop(&s);
    k->k_shim_defaults = s.s_shim_defaults;
    k->k_undelivered = bench_session_undelivered(&s);
    dcb_cond_destroy(&sp.sp_cond);
    dcb_mutex_destroy(&sp.sp_lock);
    return rc;
}

void bench_soak_free(bench_soak_t *k)
{
    free(k->k_t);
    for (int j = 0; j < BENCH_SOAK_SERIES; j++)
        free(k->k_kb[j]);
    memset(k, 0, sizeof(*k));
}
