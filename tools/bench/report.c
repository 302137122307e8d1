/*
 * report.c — the results as a table for people and as JSON for machines.
 *
 * Latencies are microseconds as the calling thread saw them; a ratio is
 * dcb's figure over the reference's, so 1.00x means "no cost at all".
 * A figure that could not be measured is "-" (null in JSON).
 */
#include "bench.h"

#include "dcb_proto.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#define COLW 15

/* Targets from issues 4 and 7 (Linux rig). */
#define TARGET_P50_RATIO 1.3
#define TARGET_P99_RATIO 2.0
#define TARGET_NOTIFY_P99_US 2.0
#define TARGET_UNSUB_NS 50.0
#define TARGET_AGG_PER_S 50000.0

static const bench_run_t *find_run(const bench_results_t *rs, const char *key)
{
    for (size_t i = 0; i < rs->rs_nrun; i++)
        if (strcmp(rs->rs_run[i].r_key, key) == 0 && rs->rs_run[i].r_ok)
            return &rs->rs_run[i];
    return NULL;
}

static double ratio(double a, double b)
{
    return a > 0 && b > 0 ? a / b : NAN;
}

static void cell(FILE *f, double v, int decimals)
{
    char buf[32];

    if (isnan(v) || v < 0) {
        fprintf(f, "%*s", COLW, "-");
        return;
    }
    snprintf(buf, sizeof(buf), "%.*f", decimals, v);
    fprintf(f, "%*s", COLW, buf);
}

/* Decimals for a latency: enough for both 0.05 us and 900 us. */
static int us_decimals(double v)
{
    return v < 10 ? 2 : v < 100 ? 1 : 0;
}

typedef double (*field_fn)(const bench_run_t *r);

/* decimals < 0: a latency, formatted by its size. */
static void row(FILE *f, const bench_results_t *rs, const char *label, field_fn fn, int decimals)
{
    fprintf(f, "  %-30s", label);
    for (size_t i = 0; i < rs->rs_nrun; i++) {
        const bench_run_t *r = &rs->rs_run[i];
        double v = r->r_ok ? fn(r) : NAN;
        cell(f, v, decimals >= 0 ? decimals : us_decimals(v));
    }
    fputc('\n', f);
}

#define LATF(name, lat, q)                                                                         \
    static double name(const bench_run_t *r)                                                       \
    {                                                                                              \
        return r->lat.l_n > 0 ? r->lat.q : NAN;                                                    \
    }
LATF(np50, r_newpkt, l_p50)
LATF(np90, r_newpkt, l_p90)
LATF(np99, r_newpkt, l_p99)
LATF(np999, r_newpkt, l_p999)
LATF(npmax, r_newpkt, l_max)
LATF(ps50, r_pktsend, l_p50)
LATF(ps90, r_pktsend, l_p90)
LATF(ps99, r_pktsend, l_p99)
LATF(ps999, r_pktsend, l_p999)
LATF(psmax, r_pktsend, l_max)
LATF(nt50, r_notify, l_p50)
LATF(nt90, r_notify, l_p90)
LATF(nt99, r_notify, l_p99)
LATF(nt999, r_notify, l_p999)
LATF(ntmax, r_notify, l_max)

static double f_pkts(const bench_run_t *r)
{
    return r->r_pkts_per_s > 0 ? r->r_pkts_per_s : NAN;
}
static double f_events(const bench_run_t *r)
{
    return r->r_events_per_s > 0 ? r->r_events_per_s : NAN;
}
static double f_cpu_event(const bench_run_t *r)
{
    return r->r_cpu_us_per_event > 0 ? r->r_cpu_us_per_event : NAN;
}
static double f_cpu_pkt(const bench_run_t *r)
{
    return r->r_cpu_us_per_pkt > 0 ? r->r_cpu_us_per_pkt : NAN;
}
static double f_mem_sim(const bench_run_t *r)
{
    return r->r_mem.m_sim_kb > 0 ? (double)r->r_mem.m_sim_kb / 1024 : NAN;
}
static double f_mem_broker(const bench_run_t *r)
{
    return r->r_mem.m_broker_kb > 0 ? (double)r->r_mem.m_broker_kb / 1024 : NAN;
}
static double f_mem_hosts(const bench_run_t *r)
{
    return r->r_mem.m_hosts_kb > 0 ? (double)r->r_mem.m_hosts_kb / 1024 : NAN;
}
static double f_nhosts(const bench_run_t *r)
{
    return r->r_mem.m_nhosts > 0 ? (double)r->r_mem.m_nhosts : NAN;
}
static double f_defaults(const bench_run_t *r)
{
    return r->r_defaults >= 0 ? (double)r->r_defaults : NAN;
}
static double f_undelivered(const bench_run_t *r)
{
    return r->r_undelivered >= 0 ? (double)r->r_undelivered : NAN;
}
static double f_shim_defaults(const bench_run_t *r)
{
    return r->r_shim_defaults >= 0 ? (double)r->r_shim_defaults : NAN;
}
static double f_replies(const bench_run_t *r)
{
    return r->r_packets > 0 ? (double)r->r_replies : NAN;
}
static double f_modified(const bench_run_t *r)
{
    return r->r_packets > 0 ? (double)r->r_replies_modified : NAN;
}
static double f_pdrops(const bench_run_t *r)
{
    return r->r_packets > 0 ? (double)r->r_plugin_drops : NAN;
}
static double f_violations(const bench_run_t *r)
{
    return r->r_packets > 0 ? (double)r->r_violations : NAN;
}

static const char *met(int ok)
{
    return ok ? "met" : "NOT met";
}

static void print_lat(FILE *f, const char *label, const bench_lat_t *l)
{
    if (l->l_n == 0) {
        fprintf(f, "  %-34s -\n", label);
        return;
    }
    fprintf(f, "  %-34s p50 %7.2f  p90 %7.2f  p99 %7.2f  p99.9 %8.2f  max %9.2f us  (n=%llu)\n",
            label, l->l_p50, l->l_p90, l->l_p99, l->l_p999, l->l_max, (unsigned long long)l->l_n);
}

static void print_compare(FILE *f, const bench_ctx_t *c, const bench_results_t *rs)
{
    const bench_run_t *in = find_run(rs, "inprocess_noop"), *raw = find_run(rs, "raw");
    const bench_run_t *dn = find_run(rs, "dcb_noop"), *dc = find_run(rs, "dcb_chain");
    const bench_run_t *ic = find_run(rs, "inprocess_chain");

    fprintf(f, "\n  %-30s", "");
    for (size_t i = 0; i < rs->rs_nrun; i++)
        fprintf(f, "%*s", COLW, rs->rs_run[i].r_title);
    fprintf(f, "\n");
    row(f, rs, "NewPkt p50 (us)", np50, -1);
    row(f, rs, "NewPkt p90", np90, -1);
    row(f, rs, "NewPkt p99", np99, -1);
    row(f, rs, "NewPkt p99.9", np999, -1);
    row(f, rs, "NewPkt max", npmax, -1);
    row(f, rs, "PktSend p50 (us)", ps50, -1);
    row(f, rs, "PktSend p90", ps90, -1);
    row(f, rs, "PktSend p99", ps99, -1);
    row(f, rs, "PktSend p99.9", ps999, -1);
    row(f, rs, "PktSend max", psmax, -1);
    row(f, rs, "notification p50 (us)", nt50, -1);
    row(f, rs, "notification p90", nt90, -1);
    row(f, rs, "notification p99", nt99, -1);
    row(f, rs, "notification p99.9", nt999, -1);
    row(f, rs, "notification max", ntmax, -1);
    row(f, rs, "packets/s (sustained)", f_pkts, 0);
    row(f, rs, "hook events/s", f_events, 0);
    row(f, rs, "CPU per event (us)", f_cpu_event, 2);
    row(f, rs, "CPU per packet (us)", f_cpu_pkt, 1);
    row(f, rs, "peak MiB: server (shim)", f_mem_sim, 1);
    row(f, rs, "peak MiB: broker", f_mem_broker, 1);
    row(f, rs, "peak MiB: hosts (sum)", f_mem_hosts, 1);
    row(f, rs, "hosts", f_nhosts, 0);
    row(f, rs, "defaults taken (broker)", f_defaults, 0);
    row(f, rs, "defaults logged (shim)", f_shim_defaults, 0);
    row(f, rs, "requests not at the broker", f_undelivered, 0);
    row(f, rs, "replies sent", f_replies, 0);
    row(f, rs, "replies modified", f_modified, 0);
    row(f, rs, "packets dropped by plugins", f_pdrops, 0);
    row(f, rs, "contract violations", f_violations, 0);
    fprintf(f,
            "  (latency: what the server's calling thread waited; notifications: PktDrop,\n"
            "   AddressDel, AddressOffer, HandleOptions, DeleteClient together; CPU: the server\n"
            "   process + broker + hosts (raw: client + relay + echo) over the run; raw's\n"
            "   \"hosts\" memory is the larger of relay and echo)\n");
    if (rs->rs_run[0].r_mem.m_sim_is_cumulative)
        fprintf(
            f,
            "  (the server's peak memory cannot be reset here: it is cumulative over the run)\n");

    fprintf(f, "\nratios\n");
    if (dn != NULL && raw != NULL)
        fprintf(f,
                "  (2)/(4) dcb noop vs raw 2-hop:      NewPkt p50 %.2fx  p90 %.2fx  p99 %.2fx  "
                "p99.9 %.2fx;  PktSend p50 %.2fx  p99 %.2fx\n",
                ratio(dn->r_newpkt.l_p50, raw->r_newpkt.l_p50),
                ratio(dn->r_newpkt.l_p90, raw->r_newpkt.l_p90),
                ratio(dn->r_newpkt.l_p99, raw->r_newpkt.l_p99),
                ratio(dn->r_newpkt.l_p999, raw->r_newpkt.l_p999),
                ratio(dn->r_pktsend.l_p50, raw->r_pktsend.l_p50),
                ratio(dn->r_pktsend.l_p99, raw->r_pktsend.l_p99));
    if (dn != NULL && in != NULL)
        fprintf(f,
                "  (2)/(1) dcb noop vs in-process:     NewPkt p50 %.0fx  p99 %.0fx;  packets/s "
                "%.2fx;  CPU per packet %.2fx\n",
                ratio(dn->r_newpkt.l_p50, in->r_newpkt.l_p50),
                ratio(dn->r_newpkt.l_p99, in->r_newpkt.l_p99),
                ratio(dn->r_pkts_per_s, in->r_pkts_per_s),
                ratio(dn->r_cpu_us_per_pkt, in->r_cpu_us_per_pkt));
    if (dc != NULL && ic != NULL)
        fprintf(f,
                "  (3)/(1c) dcb chain vs in-process:   NewPkt p50 %.0fx  p99 %.0fx;  packets/s "
                "%.2fx;  CPU per packet %.2fx\n",
                ratio(dc->r_newpkt.l_p50, ic->r_newpkt.l_p50),
                ratio(dc->r_newpkt.l_p99, ic->r_newpkt.l_p99),
                ratio(dc->r_pkts_per_s, ic->r_pkts_per_s),
                ratio(dc->r_cpu_us_per_pkt, ic->r_cpu_us_per_pkt));
    if (dn != NULL && in != NULL)
        fprintf(f, "  same decisions (1) vs (2): %s;  (1c) vs (3): %s\n",
                dn->r_replies == in->r_replies && dn->r_plugin_drops == in->r_plugin_drops &&
                        dn->r_replies_modified == in->r_replies_modified
                    ? "yes"
                    : "NO",
                dc == NULL || ic == NULL ? "-"
                : dc->r_replies == ic->r_replies && dc->r_plugin_drops == ic->r_plugin_drops &&
                        dc->r_replies_modified == ic->r_replies_modified
                    ? "yes"
                    : "NO");
    (void)c;
}

/*
 * The broker's busy_poll_us in every session (as the broker said), and where
 * it came from; -1 when no broker ran and none was asked for.
 */
static int busy_poll_us(const bench_ctx_t *c)
{
    return c->c_poll_us >= 0 ? c->c_poll_us : c->c_opt.o_busy_poll_us;
}

static const char *busy_poll_source(const bench_ctx_t *c)
{
    return c->c_opt.o_busy_poll_us >= 0 ? "--busy-poll" : "default";
}

/* Which aggregate measurement the peak came from, e.g. "8 calling threads, the peak of 4 and 8". */
static void agg_source(char *out, size_t cap, const bench_micro_t *m)
{
    size_t used = (size_t)snprintf(out, cap, "%u calling threads", m->m_agg_threads);

    if (m->m_naggs < 2 || used >= cap)
        return;
    used += (size_t)snprintf(out + used, cap - used, ", the peak of");
    for (size_t i = 0; i < m->m_naggs && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s %u%s", i == 0 ? "" : " and",
                                 m->m_aggs[i].a_threads, m->m_aggs[i].a_ok ? "" : " (failed)");
}

static void print_micro(FILE *f, const bench_ctx_t *c, const bench_results_t *rs)
{
    const bench_micro_t *m = &rs->rs_micro;
    double r50 = ratio(m->m_newpkt.l_p50, m->m_raw.l_p50),
           r99 = ratio(m->m_newpkt.l_p99, m->m_raw.l_p99);
    static const int hooks[] = {DCB_HOOK_HANDLEOPTIONS, DCB_HOOK_ADDRESSOFFER, DCB_HOOK_ADDRESSDEL,
                                DCB_HOOK_PKTDROP};
    char label[64], source[128];

    agg_source(source, sizeof(source), m);
    fprintf(f,
            "\nmicro-figures (issue 4): the shim's hooks called directly, one thread, shim -> "
            "broker -> noop host\n  NewPkt frame %zu B, decision %zu B; %u blocks interleaved "
            "with the raw chain\n",
            m->m_frame_in, m->m_frame_out, c->c_opt.o_blocks);
    print_lat(f, "NewPkt via dcb", &m->m_newpkt);
    print_lat(f, "raw 2-hop chain, same sizes", &m->m_raw);
    print_lat(f, "notification, calling thread", &m->m_notify);
    for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
        snprintf(label, sizeof(label), "  %s", dcb_hook_name(hooks[i]));
        print_lat(f, label, &m->m_note[hooks[i]]);
    }
    if (m->m_unsub_ok)
        fprintf(f, "  %-34s %.1f ns per call (p99 of 1000-call blocks %.1f ns; n=%llu)\n",
                "unsubscribed hook (AddressDel)", m->m_unsub_ns, m->m_unsub_p99_ns,
                (unsigned long long)m->m_unsub_n);
    if (m->m_naggs > 0)
        fprintf(f,
                "  aggregate NewPkt/s: N threads calling at once, each waiting for its answer\n");
    for (size_t i = 0; i < m->m_naggs; i++) {
        const bench_agg_t *a = &m->m_aggs[i];
        snprintf(label, sizeof(label), "  %u calling threads", a->a_threads);
        if (!a->a_ok) {
            fprintf(f, "  %-34s failed\n", label);
            continue;
        }
        fprintf(f, "  %-34s %8.0f NewPkt/s  p50 %7.1f  p99 %7.1f us%s\n", label, a->a_per_s,
                a->a_lat.l_p50, a->a_lat.l_p99,
                m->m_naggs > 1 && a->a_threads == m->m_agg_threads ? "  (peak)" : "");
    }
    fprintf(f, "\ntargets (Linux rig)%s\n",
            c->c_wine ? "  -- under Wine these are NOT comparable; shown for completeness" : "");
    fprintf(f, "  %-40s %8.2fx   %s\n", "NewPkt p50 <= 1.3x raw two-hop", r50,
            met(r50 <= TARGET_P50_RATIO));
    fprintf(f, "  %-40s %8.2fx   %s\n", "NewPkt p99 <= 2x raw two-hop", r99,
            met(r99 <= TARGET_P99_RATIO));
    fprintf(f, "  %-40s %8.2f us %s\n", "notification p99 <= 2 us (calling thread)",
            m->m_notify.l_p99,
            met(m->m_notify.l_n > 0 && m->m_notify.l_p99 <= TARGET_NOTIFY_P99_US));
    fprintf(f, "  %-40s %8.1f ns %s\n", "unsubscribed hook <= 50 ns", m->m_unsub_ns,
            met(m->m_unsub_ok && m->m_unsub_ns <= TARGET_UNSUB_NS));
    if (m->m_agg_threads > 0)
        fprintf(f, "  %-40s %8.0f/s  %s (%s)\n", ">= 50k NewPkt/s aggregate", m->m_agg_per_s,
                met(m->m_agg_per_s >= TARGET_AGG_PER_S), source);
}

static void print_scaling(FILE *f, const bench_results_t *rs)
{
    const bench_scaling_t *sc = &rs->rs_scaling;

    fprintf(f, "\nscaling: calling threads (NewPkt + final drop in a loop, noop plugin)\n");
    fprintf(f, "  %8s %14s %10s %10s %10s\n", "threads", "NewPkt/s", "p50 us", "p99 us",
            "p99.9 us");
    for (size_t i = 0; i < sc->sc_nthreads; i++) {
        const bench_point_t *p = &sc->sc_threads[i];
        if (!p->p_ok) {
            fprintf(f, "  %8.0f %14s\n", p->p_x, "failed");
            continue;
        }
        fprintf(f, "  %8.0f %14.0f %10.1f %10.1f %10.1f\n", p->p_x, p->p_per_s, p->p_lat.l_p50,
                p->p_lat.l_p99, p->p_lat.l_p999);
    }
    fprintf(f, "\nscaling: plugins in the chain (noop, one host each)\n");
    fprintf(f, "  %8s %14s %10s %10s %16s %12s\n", "plugins", "NewPkt/s", "p50 us", "p99 us",
            "workload pkts/s", "PktSend p99");
    for (size_t i = 0; i < sc->sc_nchain; i++) {
        const bench_point_t *p = &sc->sc_chain[i];
        if (!p->p_ok) {
            fprintf(f, "  %8.0f %14s\n", p->p_x, "failed");
            continue;
        }
        fprintf(f, "  %8.0f %14.0f %10.1f %10.1f %16.0f %12.1f\n", p->p_x, p->p_per_s,
                p->p_lat.l_p50, p->p_lat.l_p99, p->p_pkts_per_s, p->p_pktsend.l_p99);
    }
    fprintf(f, "\nscaling: packet size (NewPkt, one thread, raw chain at the same frame sizes)\n");
    fprintf(f, "  %8s %12s %10s %10s %10s %10s %9s %9s\n", "bytes", "NewPkt/s", "p50 us", "p99 us",
            "raw p50", "raw p99", "p50 x", "p99 x");
    for (size_t i = 0; i < sc->sc_nsize; i++) {
        const bench_point_t *p = &sc->sc_size[i];
        if (!p->p_ok) {
            fprintf(f, "  %8.0f %12s\n", p->p_x, "failed");
            continue;
        }
        fprintf(f, "  %8.0f %12.0f %10.1f %10.1f %10.1f %10.1f %8.2fx %8.2fx\n", p->p_x, p->p_per_s,
                p->p_lat.l_p50, p->p_lat.l_p99, p->p_raw.l_p50, p->p_raw.l_p99,
                ratio(p->p_lat.l_p50, p->p_raw.l_p50), ratio(p->p_lat.l_p99, p->p_raw.l_p99));
    }
    fprintf(f,
            "\nscaling: offered load (seeded workload, noop plugin; saturation %.0f packets/s)\n",
            sc->sc_saturation);
    fprintf(f, "  %10s %10s %10s %10s %10s %12s %12s\n", "offered/s", "achieved/s", "NewPkt p50",
            "p99", "p99.9", "PktSend p99", "notify p99");
    for (size_t i = 0; i < sc->sc_nload; i++) {
        const bench_point_t *p = &sc->sc_load[i];
        if (!p->p_ok) {
            fprintf(f, "  %10.0f %10s\n", p->p_x, "failed");
            continue;
        }
        fprintf(f, "  %10.0f %10.0f %10.1f %10.1f %10.1f %12.1f %12.2f%s\n", p->p_x, p->p_per_s,
                p->p_lat.l_p50, p->p_lat.l_p99, p->p_lat.l_p999, p->p_pktsend.l_p99,
                p->p_notify.l_p99, (int)i == sc->sc_knee ? "   <- bends here" : "");
    }
    if (sc->sc_nload > 0 && sc->sc_knee < 0)
        fprintf(f, "  (no bend below saturation: it keeps up and the tail stays within 3x)\n");
}

static void print_soak(FILE *f, const bench_results_t *rs)
{
    static const char *const names[BENCH_SOAK_SERIES] = {"server (shim)", "broker", "hosts"};
    const bench_soak_t *k = &rs->rs_soak;

    fprintf(f,
            "\nsoak: %.0f s at %.0f packets/s offered (%.0f achieved), macfilter -> auditlog -> "
            "optinject; %zu samples\n",
            k->k_secs, k->k_rate, k->k_pkts_per_s, k->k_n);
    if (!k->k_ok) {
        fprintf(f, "  failed\n");
        return;
    }
    fprintf(f, "  %-16s %10s %10s %10s %14s %8s\n", "resident MiB", "first", "last", "mean",
            "KiB/min", "");
    for (int j = 0; j < BENCH_SOAK_SERIES; j++)
        fprintf(f, "  %-16s %10.1f %10.1f %10.1f %14.1f %8s\n", names[j],
                (double)k->k_kb[j][0] / 1024, (double)k->k_kb[j][k->k_n - 1] / 1024,
                k->k_mean[j] / 1024, k->k_slope[j], k->k_flat[j] ? "flat" : "GROWING");
    fprintf(f,
            "  (slope after the first quarter; flat = grows < max(1 MiB, 5%% of mean) over the "
            "run)\n  NewPkt p50 %.1f us, p99 %.1f us; defaults logged by the shim %lld; requests "
            "not at the broker %lld\n",
            k->k_newpkt.l_p50, k->k_newpkt.l_p99, (long long)k->k_shim_defaults,
            (long long)k->k_undelivered);
}

void bench_report_table(FILE *f, const bench_ctx_t *c, const bench_results_t *rs)
{
    fprintf(f, "dcb-bench %s: the cost of isolation, measured side by side\n", BENCH_VERSION);
    if (c->c_wine)
        fprintf(f, "*** Wine: a functional check with small counts. These figures are NOT "
                   "comparable\n*** with Windows or with the Linux rig. ***\n");
    fprintf(f, "  machine   %s\n", c->c_machine);
    if (rs->rs_load_start >= 0)
        fprintf(f, "  load      1-minute average %.2f at the start, %.2f at the end%s\n",
                rs->rs_load_start, rs->rs_load_end,
                rs->rs_load_start > c->c_ncpu ? " (busy: figures disturbed)" : "");
    fprintf(f, "  command   %s\n", rs->rs_command);
    if (busy_poll_us(c) >= 0)
        fprintf(f, "  broker    busy_poll_us %d (%s)%s\n", busy_poll_us(c), busy_poll_source(c),
                c->c_poll_onecpu ? ", not polling: one CPU to run on" : "");
    if (rs->rs_nrun > 0)
        fprintf(f,
                "  workload  seed %llu, %u clients, %llu packets per configuration (full DHCP "
                "exchanges), dcb-sim engine in-process\n",
                (unsigned long long)c->c_opt.o_seed, c->c_opt.o_clients,
                (unsigned long long)c->c_opt.o_count);
    else
        fprintf(f,
                "  workload  seed %llu, %u clients (full DHCP exchanges), dcb-sim engine "
                "in-process\n",
                (unsigned long long)c->c_opt.o_seed, c->c_opt.o_clients);
    fprintf(f,
            "  frames    NewPkt %zu B -> %zu B, PktSend %zu B -> %zu B (mean packet %.0f B, mean "
            "reply %.0f B)\n",
            c->c_newpkt_frame, c->c_newpkt_answer, c->c_pktsend_frame, c->c_pktsend_answer,
            c->c_newpkt_mean, c->c_pktsend_mean);
    if (rs->rs_nrun > 0)
        print_compare(f, c, rs);
    if (rs->rs_micro.m_ok)
        print_micro(f, c, rs);
    if (rs->rs_have_scaling)
        print_scaling(f, rs);
    if (rs->rs_have_soak)
        print_soak(f, rs);
    fprintf(f, "\n(%.0f s in all)\n", rs->rs_wall_s);
}

/* ---- JSON -------------------------------------------------------------------------- */

static void num(cJSON *o, const char *name, double v)
{
    if (isnan(v) || isinf(v))
        cJSON_AddNullToObject(o, name);
    else
        cJSON_AddNumberToObject(o, name, v);
}

static cJSON *lat_json(const bench_lat_t *l)
{
    cJSON *o = cJSON_CreateObject();

    if (l->l_n == 0) {
        cJSON_Delete(o);
        return cJSON_CreateNull();
    }
    num(o, "n", (double)l->l_n);
    num(o, "p50_us", l->l_p50);
    num(o, "p90_us", l->l_p90);
    num(o, "p99_us", l->l_p99);
    num(o, "p999_us", l->l_p999);
    num(o, "max_us", l->l_max);
    num(o, "mean_us", l->l_mean);
    return o;
}

static cJSON *run_json(const bench_run_t *r)
{
    cJSON *o = cJSON_CreateObject(), *hooks = cJSON_CreateObject(), *mem = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "title", r->r_title);
    cJSON_AddBoolToObject(o, "ok", r->r_ok);
    cJSON_AddItemToObject(o, "newpkt", lat_json(&r->r_newpkt));
    cJSON_AddItemToObject(o, "pktsend", lat_json(&r->r_pktsend));
    cJSON_AddItemToObject(o, "notification", lat_json(&r->r_notify));
    for (int h = 0; h < DCB_HOOK_COUNT; h++)
        if (r->r_hook[h].l_n > 0)
            cJSON_AddItemToObject(hooks, dcb_hook_name(h), lat_json(&r->r_hook[h]));
    cJSON_AddItemToObject(o, "hooks", hooks);
    num(o, "packets", (double)r->r_packets);
    num(o, "events", (double)r->r_events);
    num(o, "seconds", r->r_secs);
    num(o, "packets_per_s", r->r_pkts_per_s > 0 ? r->r_pkts_per_s : NAN);
    num(o, "events_per_s", r->r_events_per_s > 0 ? r->r_events_per_s : NAN);
    num(o, "cpu_self_s", r->r_cpu_self_s);
    num(o, "cpu_other_s", r->r_cpu_other_s);
    num(o, "cpu_us_per_event", r->r_cpu_us_per_event > 0 ? r->r_cpu_us_per_event : NAN);
    num(o, "cpu_us_per_packet", r->r_cpu_us_per_pkt > 0 ? r->r_cpu_us_per_pkt : NAN);
    num(mem, "server_kib", r->r_mem.m_sim_kb > 0 ? (double)r->r_mem.m_sim_kb : NAN);
    num(mem, "broker_kib", r->r_mem.m_broker_kb > 0 ? (double)r->r_mem.m_broker_kb : NAN);
    num(mem, "hosts_kib", r->r_mem.m_hosts_kb > 0 ? (double)r->r_mem.m_hosts_kb : NAN);
    num(mem, "host_max_kib", r->r_mem.m_host_max_kb > 0 ? (double)r->r_mem.m_host_max_kb : NAN);
    num(mem, "hosts", (double)r->r_mem.m_nhosts);
    cJSON_AddBoolToObject(mem, "server_peak_cumulative", r->r_mem.m_sim_is_cumulative);
    cJSON_AddItemToObject(o, "peak_memory", mem);
    num(o, "broker_defaults", r->r_defaults >= 0 ? (double)r->r_defaults : NAN);
    num(o, "requests_not_at_broker", r->r_undelivered >= 0 ? (double)r->r_undelivered : NAN);
    num(o, "shim_defaults_logged", r->r_shim_defaults >= 0 ? (double)r->r_shim_defaults : NAN);
    num(o, "replies", (double)r->r_replies);
    num(o, "replies_modified", (double)r->r_replies_modified);
    num(o, "plugin_drops", (double)r->r_plugin_drops);
    num(o, "server_drops", (double)r->r_server_drops);
    num(o, "violations", (double)r->r_violations);
    return o;
}

static cJSON *points_json(const bench_point_t *p, size_t n, const char *x)
{
    cJSON *a = cJSON_CreateArray();

    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        num(o, x, p[i].p_x);
        cJSON_AddBoolToObject(o, "ok", p[i].p_ok);
        num(o, "per_s", p[i].p_per_s);
        cJSON_AddItemToObject(o, "newpkt", lat_json(&p[i].p_lat));
        if (p[i].p_raw.l_n > 0)
            cJSON_AddItemToObject(o, "raw", lat_json(&p[i].p_raw));
        if (p[i].p_pkts_per_s > 0)
            num(o, "workload_packets_per_s", p[i].p_pkts_per_s);
        if (p[i].p_pktsend.l_n > 0)
            cJSON_AddItemToObject(o, "pktsend", lat_json(&p[i].p_pktsend));
        if (p[i].p_notify.l_n > 0)
            cJSON_AddItemToObject(o, "notification", lat_json(&p[i].p_notify));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static cJSON *target(cJSON *parent, const char *name, double value, double limit, int lower_ok)
{
    cJSON *o = cJSON_CreateObject();

    num(o, "value", value);
    num(o, "target", limit);
    cJSON_AddBoolToObject(o, "met", !isnan(value) && (lower_ok ? value <= limit : value >= limit));
    cJSON_AddItemToObject(parent, name, o);
    return o;
}

char *bench_report_json(const bench_ctx_t *c, const bench_results_t *rs)
{
    cJSON *root = cJSON_CreateObject(), *runs = cJSON_CreateObject(), *o, *t, *aggs;
    const bench_run_t *in = find_run(rs, "inprocess_noop"), *raw = find_run(rs, "raw");
    const bench_run_t *dn = find_run(rs, "dcb_noop");
    const bench_micro_t *m = &rs->rs_micro;
    char *text;

    cJSON_AddStringToObject(root, "tool", "dcb-bench");
    cJSON_AddStringToObject(root, "version", BENCH_VERSION);
    cJSON_AddStringToObject(root, "machine", c->c_machine);
    num(root, "cpus", c->c_ncpu);
    cJSON_AddBoolToObject(root, "wine", c->c_wine);
    cJSON_AddBoolToObject(root, "comparable", !c->c_wine);
    cJSON_AddStringToObject(root, "command", rs->rs_command);
    num(root, "load_start", rs->rs_load_start >= 0 ? rs->rs_load_start : NAN);
    num(root, "load_end", rs->rs_load_end >= 0 ? rs->rs_load_end : NAN);
    o = cJSON_AddObjectToObject(root, "broker");
    num(o, "busy_poll_us", busy_poll_us(c) >= 0 ? busy_poll_us(c) : NAN);
    cJSON_AddStringToObject(o, "busy_poll_us_source", busy_poll_source(c));
    cJSON_AddBoolToObject(o, "busy_poll_one_cpu", c->c_poll_onecpu != 0);
    o = cJSON_AddObjectToObject(root, "workload");
    num(o, "seed", (double)c->c_opt.o_seed);
    num(o, "clients", c->c_opt.o_clients);
    num(o, "packets", (double)c->c_opt.o_count);
    num(o, "newpkt_mean_bytes", c->c_newpkt_mean);
    num(o, "pktsend_mean_bytes", c->c_pktsend_mean);
    num(o, "newpkt_frame_bytes", (double)c->c_newpkt_frame);
    num(o, "newpkt_decision_bytes", (double)c->c_newpkt_answer);
    num(o, "pktsend_frame_bytes", (double)c->c_pktsend_frame);
    num(o, "pktsend_decision_bytes", (double)c->c_pktsend_answer);
    for (size_t i = 0; i < rs->rs_nrun; i++)
        cJSON_AddItemToObject(runs, rs->rs_run[i].r_key, run_json(&rs->rs_run[i]));
    cJSON_AddItemToObject(root, "configurations", runs);
    o = cJSON_AddObjectToObject(root, "ratios");
    if (dn != NULL && raw != NULL) {
        num(o, "dcb_vs_raw_newpkt_p50", ratio(dn->r_newpkt.l_p50, raw->r_newpkt.l_p50));
        num(o, "dcb_vs_raw_newpkt_p99", ratio(dn->r_newpkt.l_p99, raw->r_newpkt.l_p99));
        num(o, "dcb_vs_raw_pktsend_p50", ratio(dn->r_pktsend.l_p50, raw->r_pktsend.l_p50));
        num(o, "dcb_vs_raw_pktsend_p99", ratio(dn->r_pktsend.l_p99, raw->r_pktsend.l_p99));
    }
    if (dn != NULL && in != NULL) {
        num(o, "dcb_vs_inprocess_newpkt_p50", ratio(dn->r_newpkt.l_p50, in->r_newpkt.l_p50));
        num(o, "dcb_vs_inprocess_newpkt_p99", ratio(dn->r_newpkt.l_p99, in->r_newpkt.l_p99));
        num(o, "dcb_vs_inprocess_packets_per_s", ratio(dn->r_pkts_per_s, in->r_pkts_per_s));
        num(o, "dcb_vs_inprocess_cpu_per_packet",
            ratio(dn->r_cpu_us_per_pkt, in->r_cpu_us_per_pkt));
    }
    if (m->m_ok) {
        o = cJSON_AddObjectToObject(root, "micro");
        cJSON_AddItemToObject(o, "newpkt", lat_json(&m->m_newpkt));
        cJSON_AddItemToObject(o, "raw", lat_json(&m->m_raw));
        num(o, "frame_bytes", (double)m->m_frame_in);
        num(o, "decision_bytes", (double)m->m_frame_out);
        cJSON_AddItemToObject(o, "notification", lat_json(&m->m_notify));
        for (int h = 0; h < DCB_HOOK_COUNT; h++)
            if (m->m_note[h].l_n > 0)
                cJSON_AddItemToObject(o, dcb_hook_name(h), lat_json(&m->m_note[h]));
        num(o, "unsubscribed_ns", m->m_unsub_ok ? m->m_unsub_ns : NAN);
        num(o, "unsubscribed_block_p99_ns", m->m_unsub_ok ? m->m_unsub_p99_ns : NAN);
        /* The peak of the measurements below: the capacity. */
        num(o, "aggregate_threads", m->m_agg_threads);
        num(o, "aggregate_newpkt_per_s", m->m_agg_threads ? m->m_agg_per_s : NAN);
        cJSON_AddItemToObject(o, "aggregate", lat_json(&m->m_agg_lat));
        aggs = cJSON_AddArrayToObject(o, "aggregate_runs");
        for (size_t i = 0; i < m->m_naggs; i++) {
            const bench_agg_t *a = &m->m_aggs[i];
            cJSON *ao = cJSON_CreateObject();
            num(ao, "threads", a->a_threads);
            cJSON_AddBoolToObject(ao, "ok", a->a_ok);
            num(ao, "newpkt_per_s", a->a_ok ? a->a_per_s : NAN);
            cJSON_AddItemToObject(ao, "newpkt", lat_json(&a->a_lat));
            cJSON_AddBoolToObject(ao, "peak", a->a_ok && a->a_threads == m->m_agg_threads);
            cJSON_AddItemToArray(aggs, ao);
        }
        t = cJSON_AddObjectToObject(root, "targets");
        target(t, "newpkt_p50_vs_raw", ratio(m->m_newpkt.l_p50, m->m_raw.l_p50), TARGET_P50_RATIO,
               1);
        target(t, "newpkt_p99_vs_raw", ratio(m->m_newpkt.l_p99, m->m_raw.l_p99), TARGET_P99_RATIO,
               1);
        target(t, "notification_p99_us", m->m_notify.l_n ? m->m_notify.l_p99 : NAN,
               TARGET_NOTIFY_P99_US, 1);
        target(t, "unsubscribed_ns", m->m_unsub_ok ? m->m_unsub_ns : NAN, TARGET_UNSUB_NS, 1);
        o = target(t, "aggregate_newpkt_per_s", m->m_agg_threads ? m->m_agg_per_s : NAN,
                   TARGET_AGG_PER_S, 0);
        num(o, "threads", m->m_agg_threads);
    }
    if (rs->rs_have_scaling) {
        const bench_scaling_t *sc = &rs->rs_scaling;
        o = cJSON_AddObjectToObject(root, "scaling");
        cJSON_AddItemToObject(o, "threads",
                              points_json(sc->sc_threads, sc->sc_nthreads, "threads"));
        cJSON_AddItemToObject(o, "chain", points_json(sc->sc_chain, sc->sc_nchain, "plugins"));
        cJSON_AddItemToObject(o, "packet_size", points_json(sc->sc_size, sc->sc_nsize, "bytes"));
        cJSON_AddItemToObject(o, "offered_load",
                              points_json(sc->sc_load, sc->sc_nload, "offered_per_s"));
        num(o, "saturation_packets_per_s", sc->sc_saturation);
        if (sc->sc_knee >= 0)
            num(o, "bends_at_offered_per_s", sc->sc_load[sc->sc_knee].p_x);
        else
            cJSON_AddNullToObject(o, "bends_at_offered_per_s");
    }
    if (rs->rs_have_soak) {
        static const char *const names[BENCH_SOAK_SERIES] = {"server", "broker", "hosts"};
        const bench_soak_t *k = &rs->rs_soak;
        cJSON *samples = cJSON_CreateArray();
        o = cJSON_AddObjectToObject(root, "soak");
        cJSON_AddBoolToObject(o, "ok", k->k_ok);
        num(o, "seconds", k->k_secs);
        num(o, "offered_per_s", k->k_rate);
        num(o, "achieved_per_s", k->k_pkts_per_s);
        num(o, "shim_defaults_logged", k->k_shim_defaults >= 0 ? (double)k->k_shim_defaults : NAN);
        num(o, "requests_not_at_broker", k->k_undelivered >= 0 ? (double)k->k_undelivered : NAN);
        cJSON_AddItemToObject(o, "newpkt", lat_json(&k->k_newpkt));
        for (int j = 0; j < BENCH_SOAK_SERIES; j++) {
            cJSON *s = cJSON_AddObjectToObject(o, names[j]);
            num(s, "slope_kib_per_min", k->k_slope[j]);
            num(s, "mean_kib", k->k_mean[j]);
            cJSON_AddBoolToObject(s, "flat", k->k_flat[j]);
        }
        for (size_t i = 0; i < k->k_n; i++) {
            cJSON *sm = cJSON_CreateObject();
            num(sm, "t_s", k->k_t[i]);
            for (int j = 0; j < BENCH_SOAK_SERIES; j++)
                num(sm, names[j], (double)k->k_kb[j][i]);
            cJSON_AddItemToArray(samples, sm);
        }
        cJSON_AddItemToObject(o, "samples_rss_kib", samples);
    }
    num(root, "wall_s", rs->rs_wall_s);
    text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}
