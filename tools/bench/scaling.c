/*
 * scaling.c — how dcb's figures move with the load an administrator
 * controls:
 *
 *   calling threads   NewPkt from 1, 2, 4, 8 server threads at once (the real
 *                     server has one receive thread, but PktSend runs on
 *                     CPU count + 1 workers, and several shims may share a
 *                     broker): aggregate NewPkt/s and the p99 each caller saw;
 *   chain length      1..8 noop plugins, each in its own host: NewPkt round
 *                     trip, and full-workload packets/s;
 *   packet size       300..1500 bytes, against the raw chain at the same
 *                     frame sizes in the same run;
 *   offered load      the seeded workload paced at fractions of the
 *                     saturation rate, to show where latency bends.
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

static uint64_t scaled(const bench_ctx_t *c, uint64_t full)
{
    uint64_t n = c->c_opt.o_micro * full / 20000u;

    return n < 100 ? 100 : n;
}

static void sweep_threads(bench_ctx_t *c, bench_session_t *s, bench_scaling_t *sc)
{
    static const unsigned all[] = {1, 2, 4, 8};
    size_t n = c->c_opt.o_smoke ? 2 : 4;

    for (size_t i = 0; i < n; i++) {
        bench_point_t *p = &sc->sc_threads[sc->sc_nthreads++];
        p->p_x = all[i];
        bench_note(c, "scaling: %u calling thread(s)", all[i]);
        p->p_ok = bench_micro_threads(c, s, all[i], scaled(c, 20000), &p->p_per_s, &p->p_lat) == 0;
    }
}

static void sweep_size(bench_ctx_t *c, bench_session_t *s, bench_scaling_t *sc)
{
    static const size_t all[] = {300, 600, 900, 1200, 1500};
    static const size_t smoke[] = {300, 1500};
    const size_t *sizes = c->c_opt.o_smoke ? smoke : all;
    size_t n = c->c_opt.o_smoke ? 2 : 5;
    uint8_t pkt[SIM_SERVER_BUF];

    for (size_t i = 0; i < n; i++) {
        bench_point_t *p = &sc->sc_size[sc->sc_nsize++];
        size_t len = bench_make_packet(c, pkt, sizes[i]);
        p->p_x = (double)len;
        bench_note(c, "scaling: %zu-byte packets", len);
        p->p_ok = bench_micro_newpkt(c, s, pkt, len, scaled(c, 10000), c->c_opt.o_blocks, &p->p_lat,
                                     &p->p_raw, &p->p_per_s) == 0;
    }
}

static void sweep_chain(bench_ctx_t *c, bench_scaling_t *sc)
{
    const char *plugins[8];
    size_t n = c->c_opt.o_smoke ? 2 : 8;

    for (size_t i = 0; i < 8; i++)
        plugins[i] = c->c_noop;
    for (size_t k = 1; k <= n; k++) {
        bench_point_t *p = &sc->sc_chain[sc->sc_nchain++];
        bench_session_t s;
        bench_run_t r;
        bench_load_t wl;
        char tag[16];

        p->p_x = (double)k;
        bench_note(c, "scaling: a chain of %zu noop plugin(s)", k);
        snprintf(tag, sizeof(tag), "chain%zu", k);
        if (bench_session_start(&s, c, tag, plugins, k) != 0)
            continue;
        p->p_ok = bench_micro_newpkt(c, &s, c->c_pkt, c->c_pkt_len, scaled(c, 10000), 1, &p->p_lat,
                                     NULL, &p->p_per_s) == 0;
        memset(&wl, 0, sizeof(wl));
        wl.wl_tbl = &s.s_tbl;
        wl.wl_tally = s.s_calls;
        wl.wl_count = c->c_opt.o_count / 4 < 500 ? 500 : c->c_opt.o_count / 4;
        bench_run_init(&r, "chain", "chain");
        if (bench_workload(c, &wl, &r) == 0) {
            p->p_pkts_per_s = r.r_pkts_per_s;
            p->p_pktsend = r.r_pktsend;
            p->p_notify = r.r_notify;
        } else {
            p->p_ok = 0;
        }
        bench_session_stop(&s);
    }
}

static void sweep_load(bench_ctx_t *c, bench_session_t *s, bench_scaling_t *sc)
{
    static const double all[] = {0.10, 0.25, 0.50, 0.75, 0.90, 1.00, 1.10, 1.25};
    static const double smoke[] = {0.25, 1.00};
    const double *steps = c->c_opt.o_smoke ? smoke : all;
    size_t n = c->c_opt.o_smoke ? 2 : 8;
    double secs = c->c_opt.o_step_s, base_p99 = 0;
    bench_load_t wl;
    bench_run_t r;

    sc->sc_knee = -1;
    memset(&wl, 0, sizeof(wl));
    wl.wl_tbl = &s->s_tbl;
    wl.wl_tally = s->s_calls;
    /* Saturation: as fast as the receive thread can go. */
    wl.wl_count = c->c_opt.o_count / 2 < 500 ? 500 : c->c_opt.o_count / 2;
    bench_run_init(&r, "load", "load");
    bench_note(c, "scaling: offered load (saturation first)");
    if (bench_workload(c, &wl, &r) != 0 || r.r_pkts_per_s <= 0)
        return;
    sc->sc_saturation = r.r_pkts_per_s;
    for (size_t i = 0; i < n; i++) {
        bench_point_t *p = &sc->sc_load[sc->sc_nload++];
        double rate = steps[i] * sc->sc_saturation;
        p->p_x = rate;
        wl.wl_rate = rate;
        wl.wl_count = (uint64_t)(rate * secs) < 200 ? 200 : (uint64_t)(rate * secs);
        bench_note(c, "scaling: offered load %.0f packets/s", rate);
        bench_run_init(&r, "load", "load");
        if (bench_workload(c, &wl, &r) != 0)
            continue;
        p->p_ok = 1;
        p->p_per_s = r.r_pkts_per_s;
        p->p_lat = r.r_newpkt;
        p->p_pktsend = r.r_pktsend;
        p->p_notify = r.r_notify;
        if (i == 0)
            base_p99 = r.r_newpkt.l_p99;
        /* It bends where it stops keeping up, or where the tail grows threefold. */
        if (sc->sc_knee < 0 && i > 0 &&
            (r.r_pkts_per_s < 0.95 * rate || (base_p99 > 0 && r.r_newpkt.l_p99 > 3 * base_p99)))
            sc->sc_knee = (int)i;
    }
}

int bench_scaling(bench_ctx_t *c, bench_session_t *noop, bench_scaling_t *sc)
{
    memset(sc, 0, sizeof(*sc));
    sc->sc_knee = -1;
    sweep_threads(c, noop, sc);
    sweep_size(c, noop, sc);
    sweep_load(c, noop, sc);
    return 0;
}

int bench_scaling_chain(bench_ctx_t *c, bench_scaling_t *sc)
{
    sweep_chain(c, sc);
    return 0;
}
