/*
 * workload.c — the seeded dcb-sim workload, run in this process by
 * dcbsimcore's server engine (receive thread, workers, lease scavenger),
 * through whatever callout table a configuration provides.
 *
 * Every configuration sees the same stream: the traffic depends on the
 * seed alone, and the emulated server's decisions on packet bytes alone, so
 * equal outcome counts (replies, drops, modified replies) across
 * configurations mean the plugins decided the same way.
 *
 * Latency is what the calling thread saw, from the engine's own per-hook
 * histograms. CPU time is ours (the server process, shim threads included)
 * plus that of the other processes of the configuration over the same
 * window. Peak memory is this process's, reset before the run where the OS
 * allows it.
 */
#include "bench.h"

#include "dcb_proto.h"
#include "rawchain.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_MAX 20000u

dcb_hist_t *bench_hist_new(void)
{
    dcb_hist_t *h = malloc(sizeof(*h));

    if (h != NULL)
        dcb_hist_reset(h);
    return h;
}

void bench_lat_from(bench_lat_t *l, const dcb_hist_t *h)
{
    uint64_t n = dcb_hist_count(h);

    memset(l, 0, sizeof(*l));
    l->l_n = n;
    if (n == 0)
        return;
    l->l_p50 = (double)dcb_hist_quantile(h, 0.50) / 1e3;
    l->l_p90 = (double)dcb_hist_quantile(h, 0.90) / 1e3;
    l->l_p99 = (double)dcb_hist_quantile(h, 0.99) / 1e3;
    l->l_p999 = (double)dcb_hist_quantile(h, 0.999) / 1e3;
    l->l_max = (double)dcb_hist_max(h) / 1e3;
    l->l_mean = (double)atomic_load(&h->h_sum) / (double)n / 1e3;
}

void bench_run_init(bench_run_t *r, const char *key, const char *title)
{
    memset(r, 0, sizeof(*r));
    r->r_key = key;
    r->r_title = title;
    r->r_defaults = -1;
    r->r_undelivered = -1;
    r->r_shim_defaults = -1;
}

static void traffic_cfg(const bench_ctx_t *c, sim_scope_t *scope, sim_traffic_cfg_t *tc)
{
    sim_scope_default(scope);
    sim_traffic_cfg_default(tc, scope);
    tc->tc_seed = c->c_opt.o_seed;
    tc->tc_clients = c->c_opt.o_clients;
}

int bench_workload(bench_ctx_t *c, const bench_load_t *wl, bench_run_t *r)
{
    sim_scope_t scope;
    sim_traffic_cfg_t tc;
    sim_config_t cf;
    sim_source_t *src;
    sim_stats_t *st;
    bench_procstat_t self0, self1, ps;
    uint64_t other0[32], other1[32];
    dcb_hist_t *notes;
    int rc;

    traffic_cfg(c, &scope, &tc);
    sim_config_default(&cf, &scope);
    if (c->c_opt.o_workers > 0)
        cf.cf_workers = c->c_opt.o_workers;
    cf.cf_count = wl->wl_count;
    cf.cf_duration_ms = wl->wl_duration_ms;
    cf.cf_rate = wl->wl_rate;
    src = sim_source_traffic(&tc);
    st = sim_stats_new();
    notes = bench_hist_new();
    if (src == NULL || st == NULL || notes == NULL || wl->wl_npids > 32) {
        if (src != NULL)
            src->src_close(src);
        sim_stats_free(st);
        free(notes);
        return -1;
    }
    if (wl->wl_reset_peak)
        r->r_mem.m_sim_is_cumulative = !bench_sys_reset_peak();
    for (size_t i = 0; i < wl->wl_npids; i++)
        other0[i] = bench_sys_procstat(wl->wl_pids[i], &ps) == 0 ? ps.ps_cpu_ns : 0;
    bench_sys_procstat(0, &self0);

    rc = sim_server_run(&cf, wl->wl_tbl, src, st, NULL);

    bench_sys_procstat(0, &self1);
    for (size_t i = 0; i < wl->wl_npids; i++)
        other1[i] = bench_sys_procstat(wl->wl_pids[i], &ps) == 0 ? ps.ps_cpu_ns : other0[i];
    src->src_close(src);
    if (rc != 0) {
        sim_stats_free(st);
        free(notes);
        return -1;
    }

    r->r_cpu_self_s = (double)(self1.ps_cpu_ns - self0.ps_cpu_ns) / 1e9;
    r->r_cpu_other_s = 0;
    for (size_t i = 0; i < wl->wl_npids; i++)
        if (other1[i] >= other0[i])
            r->r_cpu_other_s += (double)(other1[i] - other0[i]) / 1e9;
    r->r_mem.m_sim_kb = self1.ps_peak_kb;

    r->r_packets = st->st_received;
    r->r_events = 0;
    for (int h = 0; h < DCB_HOOK_COUNT; h++) {
        uint64_t calls = atomic_load(&st->st_calls[h]);
        r->r_events += calls;
        if (wl->wl_tally != NULL)
            wl->wl_tally[h] += calls;
        bench_lat_from(&r->r_hook[h], &st->st_lat[h]);
        if (h != DCB_HOOK_NEWPKT && h != DCB_HOOK_PKTSEND && h != DCB_HOOK_CONTROL)
            dcb_hist_merge(notes, &st->st_lat[h]);
    }
    r->r_newpkt = r->r_hook[DCB_HOOK_NEWPKT];
    r->r_pktsend = r->r_hook[DCB_HOOK_PKTSEND];
    bench_lat_from(&r->r_notify, notes);
    r->r_secs = (double)st->st_elapsed_ns / 1e9;
    if (r->r_secs > 0) {
        r->r_pkts_per_s = (double)r->r_packets / r->r_secs;
        r->r_events_per_s = (double)r->r_events / r->r_secs;
    }
    if (r->r_events > 0)
        r->r_cpu_us_per_event = (r->r_cpu_self_s + r->r_cpu_other_s) * 1e6 / (double)r->r_events;
    if (r->r_packets > 0)
        r->r_cpu_us_per_pkt = (r->r_cpu_self_s + r->r_cpu_other_s) * 1e6 / (double)r->r_packets;
    r->r_replies = atomic_load(&st->st_replies);
    r->r_replies_modified = atomic_load(&st->st_replies_modified);
    r->r_plugin_drops = atomic_load(&st->st_plugin_drops);
    r->r_server_drops = 0;
    for (unsigned i = 0; i < SIM_DROP_SLOTS; i++)
        r->r_server_drops += atomic_load(&st->st_drops[i]);
    r->r_violations = sim_stats_violations(st);
    r->r_ok = r->r_packets > 0;
    sim_stats_free(st);
    free(notes);
    return 0;
}

/* ---- the probe: the workload's packet sizes ----------------------------------- */

static _Atomic uint64_t probe_newpkt_bytes, probe_newpkt_n, probe_send_bytes, probe_send_n;

static DWORD WINAPI probe_newpkt(LPBYTE *Packet, DWORD *PacketSize, DWORD IpAddress,
                                 LPVOID Reserved, LPVOID *PktContext, LPBOOL ProcessIt)
{
    (void)Packet;
    (void)IpAddress;
    (void)Reserved;
    (void)PktContext;
    (void)ProcessIt;
    atomic_fetch_add(&probe_newpkt_bytes, *PacketSize);
    atomic_fetch_add(&probe_newpkt_n, 1);
    return ERROR_SUCCESS;
}

static DWORD WINAPI probe_send(LPBYTE *Packet, DWORD *PacketSize, DWORD ControlCode,
                               DWORD IpAddress, LPVOID Reserved, LPVOID PktContext)
{
    (void)Packet;
    (void)ControlCode;
    (void)IpAddress;
    (void)Reserved;
    (void)PktContext;
    atomic_fetch_add(&probe_send_bytes, *PacketSize);
    atomic_fetch_add(&probe_send_n, 1);
    return ERROR_SUCCESS;
}

/* Realistic header values: ids and deadlines of a long-running server, a heap pointer. */
static void fill_header(Dcb__EventHeader *hdr)
{
    hdr->packet_id = 12345678;
    hdr->seq = 0;
    hdr->deadline_us = 89000;
    hdr->has_request_id = 1;
    hdr->request_id = 12345678;
    hdr->has_reserved = 1;
    hdr->reserved = 0x7f3a5c0012a0ull;
}

size_t bench_event_frame_size(int hook, size_t len)
{
    static uint8_t zeros[SIM_MAX_UDP];
    Dcb__EventHeader hdr = DCB__EVENT_HEADER__INIT;

    fill_header(&hdr);
    if (len > sizeof(zeros))
        len = sizeof(zeros);
    if (hook == DCB_HOOK_NEWPKT) {
        Dcb__NewPktEvent ev = DCB__NEW_PKT_EVENT__INIT;
        ev.hdr = &hdr;
        ev.packet.len = len;
        ev.packet.data = zeros;
        ev.ip_address = 0x0100000a;
        return dcb_frame_size(&ev.base);
    } else {
        Dcb__PktSendEvent ev = DCB__PKT_SEND_EVENT__INIT;
        hdr.seq = 4;
        ev.hdr = &hdr;
        ev.packet.len = len;
        ev.packet.data = zeros;
        ev.control_code = DHCP_SEND_PACKET;
        ev.ip_address = 0x0100000a;
        return dcb_frame_size(&ev.base);
    }
}

size_t bench_answer_frame_size(int hook)
{
    if (hook == DCB_HOOK_NEWPKT) {
        Dcb__NewPktDecision d = DCB__NEW_PKT_DECISION__INIT;
        d.request_id = 12345678;
        d.process_it = 1;
        return dcb_frame_size(&d.base);
    } else {
        Dcb__PktSendDecision d = DCB__PKT_SEND_DECISION__INIT;
        d.request_id = 12345678;
        return dcb_frame_size(&d.base);
    }
}

int bench_workload_probe(bench_ctx_t *c)
{
    DHCP_CALLOUT_TABLE tbl;
    bench_load_t wl;
    bench_run_t r;
    uint64_t n;

    memset(&tbl, 0, sizeof(tbl));
    tbl.DhcpNewPktHook = probe_newpkt;
    tbl.DhcpPktSendHook = probe_send;
    memset(&wl, 0, sizeof(wl));
    wl.wl_tbl = &tbl;
    wl.wl_count = c->c_opt.o_count < PROBE_MAX ? c->c_opt.o_count : PROBE_MAX;
    bench_run_init(&r, "probe", "probe");
    atomic_store(&probe_newpkt_bytes, 0);
    atomic_store(&probe_newpkt_n, 0);
    atomic_store(&probe_send_bytes, 0);
    atomic_store(&probe_send_n, 0);
    if (bench_workload(c, &wl, &r) != 0)
        return -1;
    n = atomic_load(&probe_newpkt_n);
    c->c_newpkt_mean = n ? (double)atomic_load(&probe_newpkt_bytes) / (double)n : 300;
    n = atomic_load(&probe_send_n);
    c->c_pktsend_mean = n ? (double)atomic_load(&probe_send_bytes) / (double)n : 300;
    c->c_pkt_len = bench_make_packet(c, c->c_pkt, (size_t)lround(c->c_newpkt_mean));
    c->c_newpkt_frame = bench_event_frame_size(DCB_HOOK_NEWPKT, c->c_pkt_len);
    c->c_newpkt_answer = bench_answer_frame_size(DCB_HOOK_NEWPKT);
    c->c_pktsend_frame =
        bench_event_frame_size(DCB_HOOK_PKTSEND, (size_t)lround(c->c_pktsend_mean));
    c->c_pktsend_answer = bench_answer_frame_size(DCB_HOOK_PKTSEND);
    return 0;
}

/* ---- the configurations ------------------------------------------------------- */

static uint64_t warmup_count(const bench_ctx_t *c)
{
    uint64_t n = c->c_opt.o_count / 10;

    return n < 200 ? 200 : n > 5000 ? 5000 : n;
}

int bench_inprocess(bench_ctx_t *c, const char *const *dlls, size_t n, bench_run_t *r,
                    const char *key, const char *title)
{
    sim_dlllist_t list;
    sim_loader_t ld;
    bench_load_t wl;
    bench_run_t warm;
    int rc = -1;

    bench_run_init(r, key, title);
    sim_dlllist_init(&list);
    for (size_t i = 0; i < n; i++)
        sim_dlllist_add(&list, dlls[i]);
    if (sim_loader_load(&ld, &list) != 0 || ld.ld_loaded != 0) {
        fprintf(stderr, "dcb-bench: %s did not load in-process\n", dlls[0]);
        goto out;
    }
    memset(&wl, 0, sizeof(wl));
    wl.wl_tbl = &ld.ld_table;
    wl.wl_count = warmup_count(c);
    bench_run_init(&warm, key, title);
    if (bench_workload(c, &wl, &warm) != 0)
        goto out;
    wl.wl_count = c->c_opt.o_count;
    wl.wl_reset_peak = 1;
    rc = bench_workload(c, &wl, r);
out:
    sim_loader_free(&ld);
    sim_dlllist_free(&list);
    return rc;
}

int bench_through_dcb(bench_ctx_t *c, bench_session_t *s, bench_run_t *r)
{
    uint32_t pids[32];
    bench_load_t wl;
    bench_run_t warm;

    memset(&wl, 0, sizeof(wl));
    wl.wl_tbl = &s->s_tbl;
    wl.wl_tally = s->s_calls;
    wl.wl_count = warmup_count(c);
    bench_run_init(&warm, r->r_key, r->r_title);
    if (bench_workload(c, &wl, &warm) != 0)
        return -1;
    wl.wl_npids = bench_session_pids(s, pids, 32);
    wl.wl_pids = pids;
    wl.wl_count = c->c_opt.o_count;
    wl.wl_reset_peak = 1;
    if (bench_workload(c, &wl, r) != 0)
        return -1;
    bench_session_mem(s, &r->r_mem);
    return 0;
}

int bench_raw_block(bench_ctx_t *c, bench_raw_t *rw, long n)
{
    rawchain_stats_t st;
    bench_procstat_t a, b;
    int rc;

    if (n <= 0)
        return 0;
    bench_sys_procstat(0, &a);
    rc = rawchain_run(c->c_newpkt_frame, c->c_newpkt_answer, n, rw->rw_newpkt, &st);
    rw->rw_cpu_s += (double)st.rs_cpu_ns / 1e9;
    if (st.rs_peak_kb > rw->rw_peak_kb)
        rw->rw_peak_kb = st.rs_peak_kb;
    if (rc == 0)
        rc = rawchain_run(c->c_pktsend_frame, c->c_pktsend_answer, n, rw->rw_pktsend, &st);
    rw->rw_cpu_s += (double)st.rs_cpu_ns / 1e9;
    if (st.rs_peak_kb > rw->rw_peak_kb)
        rw->rw_peak_kb = st.rs_peak_kb;
    bench_sys_procstat(0, &b);
    rw->rw_cpu_s += (double)(b.ps_cpu_ns - a.ps_cpu_ns) / 1e9;
    rw->rw_n += 2u * (uint64_t)n;
    if (rc != 0)
        fprintf(stderr, "dcb-bench: the raw chain failed (%d)\n", rc);
    return rc;
}

void bench_raw_result(const bench_raw_t *rw, bench_run_t *r)
{
    double busy =
        (double)(atomic_load(&rw->rw_newpkt->h_sum) + atomic_load(&rw->rw_pktsend->h_sum)) / 1e9;

    bench_lat_from(&r->r_newpkt, rw->rw_newpkt);
    bench_lat_from(&r->r_pktsend, rw->rw_pktsend);
    r->r_hook[DCB_HOOK_NEWPKT] = r->r_newpkt;
    r->r_hook[DCB_HOOK_PKTSEND] = r->r_pktsend;
    r->r_events = rw->rw_n;
    r->r_secs = busy;
    if (busy > 0)
        r->r_events_per_s = (double)rw->rw_n / busy;
    if (rw->rw_n > 0)
        r->r_cpu_us_per_event = rw->rw_cpu_s * 1e6 / (double)rw->rw_n;
    r->r_cpu_self_s = rw->rw_cpu_s;
    r->r_mem.m_hosts_kb = rw->rw_peak_kb;
    r->r_mem.m_host_max_kb = rw->rw_peak_kb;
    r->r_ok = r->r_newpkt.l_n > 0 && r->r_pktsend.l_n > 0;
}
