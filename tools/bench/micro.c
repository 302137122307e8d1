/*
 * micro.c — the shim's hooks called directly in a loop, as the DHCP
 * server's threads would call them, against a real broker and host:
 *
 *   NewPkt          a round trip (the final PROCESSED drop follows, untimed),
 *                   interleaved block by block with the raw chain at the same
 *                   frame sizes, so both see the same machine state;
 *   notifications   HandleOptions, AddressOffer, AddressDel and the final
 *                   drop of a packet, each timed on the calling thread;
 *   unsubscribed    a hook no plugin wants: timed over blocks of 1000 calls
 *                   (a clock read costs more than the hook itself);
 *   threads         NewPkt from several calling threads at once.
 *
 * Every call through the shim is tallied in the session, so the run can
 * tell whether the broker delivered all of them.
 */
#include "bench.h"

#include "rawchain.h"

#include <stdlib.h>
#include <string.h>

#define UNSUB_BLOCK 1000u
#define SERVER_IP_HOST 0x0a000001u /* 10.0.0.1, the emulated server's address */

static DWORD ip_net(void)
{
    uint8_t be[4];
    DWORD v;

    sim_put_be32(be, SERVER_IP_HOST);
    memcpy(&v, be, 4);
    return v;
}

size_t bench_make_packet(const bench_ctx_t *c, uint8_t *buf, size_t len)
{
    sim_scope_t scope;
    sim_traffic_cfg_t tc;
    sim_traffic_t *t;
    uint8_t tmp[SIM_SERVER_BUF];
    size_t best = 0, pos, n;

    if (len > SIM_SERVER_BUF)
        len = SIM_SERVER_BUF;
    sim_scope_default(&scope);
    sim_traffic_cfg_default(&tc, &scope);
    tc.tc_seed = c->c_opt.o_seed;
    tc.tc_clients = c->c_opt.o_clients;
    t = sim_traffic_new(&tc);
    memset(buf, 0, len);
    /* The largest DISCOVER of the first few hundred that fits. */
    for (int i = 0; t != NULL && i < 500; i++) {
        sim_pkt_kind_t kind;
        n = sim_traffic_next(t, tmp, sizeof(tmp), &kind);
        if (kind == SIM_KIND_DISCOVER && n <= len && n > best) {
            memcpy(buf, tmp, n);
            best = n;
        }
    }
    sim_traffic_free(t);
    if (best < SIM_DHCP_OPT_OFF + 1)
        return len;
    /* Find END, then grow the options area with a private option (224) up to len. */
    pos = SIM_DHCP_OPT_OFF;
    while (pos < best && buf[pos] != 255)
        pos += buf[pos] == 0 ? 1 : (size_t)2 + (pos + 1 < best ? buf[pos + 1] : 0);
    if (pos >= best)
        return len;
    while (len >= pos + 4) {
        size_t l = len - pos - 3;
        if (l > 255)
            l = 255;
        buf[pos] = 224;
        buf[pos + 1] = (uint8_t)l;
        memset(buf + pos + 2, 0x5a, l);
        pos += 2 + l;
    }
    buf[pos++] = 255;
    memset(buf + pos, 0, len > pos ? len - pos : 0);
    return len;
}

/* One packet's NewPkt (timed) and final drop. Returns the NewPkt time in ns. */
static uint64_t newpkt_once(const DHCP_CALLOUT_TABLE *t, uint8_t *buf, size_t len,
                            uint8_t *reserved)
{
    LPBYTE p = buf;
    DWORD size = (DWORD)len;
    LPVOID ctx = NULL;
    BOOL process = TRUE;
    uint64_t t0 = dcb_now_ns(), dt;

    t->DhcpNewPktHook(&p, &size, ip_net(), reserved, &ctx, &process);
    dt = dcb_now_ns() - t0;
    t->DhcpPktDropHook(&p, &size, DHCP_DROP_PROCESSED, ip_net(), reserved, ctx);
    return dt;
}

int bench_micro_newpkt(bench_ctx_t *c, bench_session_t *s, const uint8_t *pkt, size_t len,
                       uint64_t n, unsigned blocks, bench_lat_t *dcb, bench_lat_t *raw,
                       double *per_s)
{
    dcb_hist_t *hd = bench_hist_new(), *hr = bench_hist_new();
    size_t in = bench_event_frame_size(DCB_HOOK_NEWPKT, len);
    size_t out = bench_answer_frame_size(DCB_HOOK_NEWPKT);
    uint8_t *buf = malloc(SIM_SERVER_BUF), reserved[64];
    uint64_t per_block, busy = 0, done = 0, warm = n / 10 < 200 ? 200 : n / 10;
    int rc = 0;

    (void)c;
    if (hd == NULL || hr == NULL || buf == NULL) {
        rc = -1;
        goto out;
    }
    if (blocks == 0)
        blocks = 1;
    per_block = (n + blocks - 1) / blocks;
    memset(reserved, 0x5a, sizeof(reserved));
    memcpy(buf, pkt, len);
    for (uint64_t i = 0; i < warm; i++)
        newpkt_once(&s->s_tbl, buf, len, reserved);
    s->s_calls[DCB_HOOK_NEWPKT] += warm;
    s->s_calls[DCB_HOOK_PKTDROP] += warm;
    for (unsigned b = 0; b < blocks && done < n; b++) {
        uint64_t k = n - done < per_block ? n - done : per_block, t0;
        if (raw != NULL && rawchain_run(in, out, (long)k, hr, NULL) != 0) {
            fprintf(stderr, "dcb-bench: the raw chain failed\n");
            rc = -1;
            break;
        }
        t0 = dcb_now_ns();
        for (uint64_t i = 0; i < k; i++)
            dcb_hist_record(hd, newpkt_once(&s->s_tbl, buf, len, reserved));
        busy += dcb_now_ns() - t0;
        done += k;
        s->s_calls[DCB_HOOK_NEWPKT] += k;
        s->s_calls[DCB_HOOK_PKTDROP] += k;
    }
    bench_lat_from(dcb, hd);
    if (raw != NULL)
        bench_lat_from(raw, hr);
    if (per_s != NULL)
        *per_s = busy > 0 ? (double)done * 1e9 / (double)busy : 0;
out:
    free(hd);
    free(hr);
    free(buf);
    return rc;
}

int bench_micro_notify(bench_ctx_t *c, bench_session_t *s, uint64_t n, bench_micro_t *m)
{
    static const int hooks[] = {DCB_HOOK_HANDLEOPTIONS, DCB_HOOK_ADDRESSOFFER, DCB_HOOK_ADDRESSDEL,
                                DCB_HOOK_PKTDROP};
    const DHCP_CALLOUT_TABLE *t = &s->s_tbl;
    dcb_hist_t *h[DCB_HOOK_COUNT] = {0}, *all = bench_hist_new();
    uint8_t buf[SIM_SERVER_BUF], reserved[64];
    size_t len = c->c_pkt_len;
    DHCP_SERVER_OPTIONS so;
    sim_dhcp_msg_t msg;
    int rc = 0;

    for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++)
        if ((h[hooks[i]] = bench_hist_new()) == NULL)
            rc = -1;
    if (all == NULL || rc != 0)
        goto out;
    memcpy(buf, c->c_pkt, len);
    memset(reserved, 0x5a, sizeof(reserved));
    sim_dhcp_parse(&msg, buf, len);
    for (uint64_t i = 0; i < n; i++) {
        LPBYTE p = buf;
        DWORD size = (DWORD)len;
        LPVOID ctx = NULL;
        BOOL process = TRUE;
        uint64_t t0, dt;

        t->DhcpNewPktHook(&p, &size, ip_net(), reserved, &ctx, &process);
        /* The server's stack copy: pointers into the packet. */
        sim_dhcp_server_options(&msg, &so);
        t0 = dcb_now_ns();
        t->DhcpHandleOptionsHook(buf, size, reserved, ctx, &so);
        dt = dcb_now_ns() - t0;
        dcb_hist_record(h[DCB_HOOK_HANDLEOPTIONS], dt);
        t0 = dcb_now_ns();
        t->DhcpAddressOfferHook(buf, size, DHCP_GIVE_ADDRESS_NEW, SERVER_IP_HOST, 0x0a000064u,
                                DHCP_CLIENT_DHCP, 86400, reserved, ctx);
        dt = dcb_now_ns() - t0;
        dcb_hist_record(h[DCB_HOOK_ADDRESSOFFER], dt);
        t0 = dcb_now_ns();
        t->DhcpAddressDelHook(buf, size, DHCP_PROB_CONFLICT, ip_net(), 0x0a000063u, reserved, ctx);
        dt = dcb_now_ns() - t0;
        dcb_hist_record(h[DCB_HOOK_ADDRESSDEL], dt);
        t0 = dcb_now_ns();
        t->DhcpPktDropHook(&p, &size, DHCP_DROP_PROCESSED, ip_net(), reserved, ctx);
        dt = dcb_now_ns() - t0;
        dcb_hist_record(h[DCB_HOOK_PKTDROP], dt);
    }
    s->s_calls[DCB_HOOK_NEWPKT] += n;
    for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
        s->s_calls[hooks[i]] += n;
        dcb_hist_merge(all, h[hooks[i]]);
        bench_lat_from(&m->m_note[hooks[i]], h[hooks[i]]);
    }
    bench_lat_from(&m->m_notify, all);
out:
    for (int i = 0; i < DCB_HOOK_COUNT; i++)
        free(h[i]);
    free(all);
    return rc;
}

int bench_micro_unsub(bench_ctx_t *c, bench_session_t *s, uint64_t n, bench_micro_t *m)
{
    const DHCP_CALLOUT_TABLE *t = &s->s_tbl;
    dcb_hist_t *h = bench_hist_new();
    uint8_t *buf = c->c_pkt, reserved[64];
    DWORD size = (DWORD)c->c_pkt_len, ip = ip_net();
    uint64_t blocks = (n + UNSUB_BLOCK - 1) / UNSUB_BLOCK, total = 0;

    if (h == NULL)
        return -1;
    memset(reserved, 0x5a, sizeof(reserved));
    /* Only meaningful once the shim knows nobody wants AddressDel. */
    if (bench_session_wait_subscribed(s, DCB_HOOK_BIT(DCB_HOOK_NEWPKT),
                                      DCB_HOOK_BIT(DCB_HOOK_ADDRESSDEL),
                                      c->c_wine ? 60000 : 10000) != 0) {
        fprintf(stderr, "dcb-bench: the shim never learned that AddressDel is unsubscribed\n");
        free(h);
        return -1;
    }
    for (uint64_t i = 0; i < 10 * UNSUB_BLOCK; i++)
        t->DhcpAddressDelHook(buf, size, DHCP_PROB_RELEASE, ip, 0x0a000063u, reserved, NULL);
    for (uint64_t b = 0; b < blocks; b++) {
        uint64_t t0 = dcb_now_ns(), dt;
        for (unsigned i = 0; i < UNSUB_BLOCK; i++)
            t->DhcpAddressDelHook(buf, size, DHCP_PROB_RELEASE, ip, 0x0a000063u, reserved, NULL);
        dt = dcb_now_ns() - t0;
        total += dt;
        dcb_hist_record(h, dt);
    }
    s->s_calls[DCB_HOOK_ADDRESSDEL] += (blocks + 10) * UNSUB_BLOCK;
    m->m_unsub_n = blocks * UNSUB_BLOCK;
    m->m_unsub_ns = blocks > 0 ? (double)total / (double)(blocks * UNSUB_BLOCK) : 0;
    m->m_unsub_p99_ns = (double)dcb_hist_quantile(h, 0.99) / UNSUB_BLOCK;
    m->m_unsub_ok = blocks > 0;
    free(h);
    return 0;
}

/* ---- several calling threads ---------------------------------------------------- */

typedef struct caller {
    bench_session_t *cl_s;
    const bench_ctx_t *cl_c;
    dcb_thread_t cl_thread;
    dcb_hist_t *cl_hist;
    uint64_t cl_n, cl_warm;
    _Atomic int *cl_ready;
    _Atomic int *cl_go;
    uint64_t cl_end_ns;
} caller_t;

static void caller_main(void *arg)
{
    caller_t *cl = arg;
    uint8_t buf[SIM_SERVER_BUF], reserved[64];
    size_t len = cl->cl_c->c_pkt_len;

    memcpy(buf, cl->cl_c->c_pkt, len);
    memset(reserved, 0x5a, sizeof(reserved));
    for (uint64_t i = 0; i < cl->cl_warm; i++)
        newpkt_once(&cl->cl_s->s_tbl, buf, len, reserved);
    atomic_fetch_add(cl->cl_ready, 1);
    while (!atomic_load(cl->cl_go))
        dcb_sleep_ms(1);
    for (uint64_t i = 0; i < cl->cl_n; i++)
        dcb_hist_record(cl->cl_hist, newpkt_once(&cl->cl_s->s_tbl, buf, len, reserved));
    cl->cl_end_ns = dcb_now_ns();
}

int bench_micro_threads(bench_ctx_t *c, bench_session_t *s, unsigned threads, uint64_t n,
                        double *per_s, bench_lat_t *lat)
{
    caller_t cl[BENCH_MAX_CALLERS];
    _Atomic int ready = 0, go = 0;
    dcb_hist_t *all = bench_hist_new();
    uint64_t start, end = 0, per = threads > 0 ? n / threads : 0;
    unsigned started = 0;
    int rc = 0;

    if (all == NULL || threads == 0 || threads > BENCH_MAX_CALLERS || per == 0) {
        free(all);
        return -1;
    }
    memset(cl, 0, sizeof(cl));
    for (; started < threads; started++) {
        caller_t *x = &cl[started];
        x->cl_s = s;
        x->cl_c = c;
        x->cl_hist = bench_hist_new();
        x->cl_n = per;
        x->cl_warm = per / 10 < 100 ? 100 : per / 10;
        x->cl_ready = &ready;
        x->cl_go = &go;
        if (x->cl_hist == NULL || dcb_thread_create(&x->cl_thread, caller_main, x) != 0) {
            free(x->cl_hist);
            rc = -1;
            break;
        }
    }
    /* Every caller warmed up (so the shim's pool has grown): then all start at once. */
    while (atomic_load(&ready) < (int)started)
        dcb_sleep_ms(1);
    start = dcb_now_ns();
    atomic_store(&go, 1);
    for (unsigned i = 0; i < started; i++) {
        dcb_thread_join(cl[i].cl_thread);
        if (cl[i].cl_end_ns > end)
            end = cl[i].cl_end_ns;
        dcb_hist_merge(all, cl[i].cl_hist);
        s->s_calls[DCB_HOOK_NEWPKT] += cl[i].cl_n + cl[i].cl_warm;
        s->s_calls[DCB_HOOK_PKTDROP] += cl[i].cl_n + cl[i].cl_warm;
        free(cl[i].cl_hist);
    }
    if (rc == 0) {
        *per_s = end > start ? (double)per * started * 1e9 / (double)(end - start) : 0;
        bench_lat_from(lat, all);
    }
    free(all);
    return rc;
}
