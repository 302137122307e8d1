/*
 * bench_shim.c — what the shim costs the DHCP server's threads.
 *
 *   bench_shim            full run (about 10 s); prints the figures
 *   bench_shim --smoke    tiny counts, for ctest: it runs, it does not judge
 *
 * Measures, in one run, against the in-test fake broker:
 *   1. an unsubscribed hook (ns/call; target <= 50 ns),
 *   2. a notification on the calling thread (p50/p99; target p99 <= 2 us),
 *   3. NewPkt round trip through the shim (p50/p99),
 *   4. a raw ping-pong over the same transport with the same message sizes
 *      (the physical limit for one hop), for comparison with 3; run first,
 *      before the shim's threads exist.
 * The machine should be otherwise idle: figures from a busy 2-core box are
 * dominated by scheduling.
 */
#include "dcb_hist.h"
#include "dcb_proto.h"
#include "fake_broker.h"
#include "fake_tp.h"
#include "shim_harness.h"

#include <stdatomic.h>

#define PKT_LEN 548 /* a typical DHCPDISCOVER with options */

const char *shim_exe_dir = ".";
static dcb_hist_t hist, raw, newpkt;

static void print_hist(const char *what, const dcb_hist_t *h)
{
    printf("  %-40s p50 %8.2f us   p99 %8.2f us   max %9.2f us   (n=%llu)\n", what,
           (double)dcb_hist_quantile(h, 0.50) / 1e3, (double)dcb_hist_quantile(h, 0.99) / 1e3,
           (double)dcb_hist_max(h) / 1e3, (unsigned long long)dcb_hist_count(h));
}

/* ---- raw ping-pong ------------------------------------------------------------ */

typedef struct pong {
    const char *name;
    ftp_listener_t *l;
    size_t in, out;
    int n;
} pong_t;

static void pong_main(void *arg)
{
    pong_t *p = arg;
    uint8_t buf[4096] = {0};
    ftp_conn_t *c = NULL;

    for (int i = 0; i < 500 && c == NULL; i++)
        c = ftp_accept(p->l, 10);
    if (c == NULL)
        return;
    for (int i = 0; i < p->n; i++) {
        if (ftp_read_full(c, buf, p->in, 5000) != 0 || ftp_write(c, buf, p->out) != 0)
            break;
    }
    ftp_close(c);
}

static int raw_pingpong(size_t in, size_t out, int n)
{
    char name[256];
    pong_t p;
    dcb_thread_t t;
    uint8_t buf[4096];
    ftp_conn_t *c = NULL;

    ftp_unique_name(name, sizeof(name), "bench-raw");
    p.name = name;
    p.l = ftp_listen(name);
    p.in = in;
    p.out = out;
    p.n = n;
    if (p.l == NULL || dcb_thread_create(&t, pong_main, &p) != 0)
        return -1;
    for (int i = 0; i < 100 && c == NULL; i++) {
        c = ftp_connect(name);
        if (c == NULL)
            dcb_sleep_ms(10);
    }
    if (c == NULL)
        return -1;
    memset(buf, 0x11, sizeof(buf));
    dcb_hist_reset(&hist);
    for (int i = 0; i < n; i++) {
        uint64_t t0 = dcb_now_ns();
        if (ftp_write(c, buf, in) != 0 || ftp_read_full(c, buf, out, 5000) != 0)
            break;
        dcb_hist_record(&hist, dcb_now_ns() - t0);
    }
    ftp_close(c);
    dcb_thread_join(t);
    ftp_listener_close(p.l);
    return 0;
}

/* The frame sizes a NewPkt round trip moves, from the codec itself. */
static void frame_sizes(size_t *in, size_t *out)
{
    static uint8_t pkt[PKT_LEN];
    Dcb__EventHeader hdr = DCB__EVENT_HEADER__INIT;
    Dcb__NewPktEvent ev = DCB__NEW_PKT_EVENT__INIT;
    Dcb__NewPktDecision d = DCB__NEW_PKT_DECISION__INIT;

    hdr.packet_id = 1000;
    hdr.deadline_us = 89000;
    hdr.has_request_id = 1;
    hdr.request_id = 1000;
    hdr.has_reserved = 1;
    hdr.reserved = 0x7ff612345678ull;
    ev.hdr = &hdr;
    ev.packet.len = PKT_LEN;
    ev.packet.data = pkt;
    ev.ip_address = 0x0100000a;
    d.request_id = 1000;
    d.process_it = 1;
    *in = dcb_frame_size(&ev.base);
    *out = dcb_frame_size(&d.base);
}

int main(int argc, char **argv)
{
    int smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
    const int n_unsub = smoke ? 10000 : 20000000;
    const int n_note = smoke ? 2000 : 200000;
    const int n_rt = smoke ? 300 : 30000;
    static uint8_t pkt[PKT_LEN];
    char name[256];
    fake_broker_t *fb;
    fb_hook_stats_t st;
    DHCP_SERVER_OPTIONS o;
    size_t in, out;
    uint64_t t0;
    double ns;
    shim_t s;
    char what[80];
    int answered = 0;

    if (argc > 0)
        shim_exe_dir = shim_argv0_dir(argv[0]);
    for (int i = 0; i < PKT_LEN; i++)
        pkt[i] = (uint8_t)i;
    env_reset();
    ftp_unique_name(name, sizeof(name), "bench");
    env_set("DCB_PIPE", name);
    env_set("DCB_QUEUE_SIZE", "16384");
    env_set("DCB_STATS_INTERVAL_MS", "100");
    /* Measured, not judged: a busy machine must not turn a round trip into a default. */
    env_set("DCB_NEWPKT_DEADLINE_MS", "5000");
    /* 4. first: the same sizes over a bare connection, before any shim thread exists. */
    frame_sizes(&in, &out);
    if (raw_pingpong(in, out, n_rt) != 0) {
        fprintf(stderr, "bench: raw ping-pong failed\n");
        return 1;
    }
    raw = hist;
    fb = fb_start(name, 0);
    if (fb == NULL || shim_open(&s) != 0 || shim_entry(&s, NULL, 0, 0) != ERROR_SUCCESS) {
        fprintf(stderr, "bench: cannot start\n");
        return 1;
    }
    s.t.DhcpControlHook(DHCP_CONTROL_START, NULL);
    WAIT_FOR(fb_stats_count(fb) >= 1 && fb_hellos(fb, DCB__CONN_ROLE__ROLE_REQUEST) >= 1, 5000);
    printf("dcb shim benchmark (%s, %s)\n", smoke ? "smoke" : "full",
#ifdef _WIN32
           "named pipes"
#else
           "Unix sockets"
#endif
    );

    /* 1. Nothing subscribed: the hook is one atomic load and a counter. */
    t0 = dcb_now_ns();
    for (int i = 0; i < n_unsub; i++)
        s.t.DhcpAddressDelHook(pkt, PKT_LEN, DHCP_PROB_RELEASE, 1, 2, NULL, NULL);
    ns = (double)(dcb_now_ns() - t0) / n_unsub;
    printf("  %-40s %8.1f ns/call   (n=%d; target <= 50 ns)\n", "unsubscribed hook (AddressDel)",
           ns, n_unsub);

    /* 2. Subscribed notifications, in bursts the sender can drain. */
    fb_push_subscription(fb, 0xFF);
    for (int i = 0; i < 500 && fb_count(fb, DCB__FRAME_TYPE__FT_EV_ADDRESSDEL) == 0; i++) {
        s.t.DhcpAddressDelHook(pkt, PKT_LEN, DHCP_PROB_RELEASE, 1, 2, NULL, NULL);
        dcb_sleep_ms(5);
    }
    dcb_hist_reset(&hist);
    for (int i = 0; i < n_note; i++) {
        uint64_t t1 = dcb_now_ns();
        s.t.DhcpAddressDelHook(pkt, PKT_LEN, DHCP_PROB_RELEASE, 1, 2, NULL, NULL);
        dcb_hist_record(&hist, dcb_now_ns() - t1);
        if (i % 100 == 99)
            dcb_sleep_ms(1); /* about 100k notifications a second */
    }
    print_hist("notification (AddressDel, 548 B)", &hist);
    memset(&o, 0, sizeof(o));
    o.MessageType = pkt + 242;
    o.ParameterRequestList = pkt + 250;
    o.ParameterRequestListLength = 12;
    o.ClientHardwareAddress = pkt + 270;
    o.ClientHardwareAddressLength = 6;
    dcb_hist_reset(&hist);
    for (int i = 0; i < n_note; i++) {
        uint64_t t1 = dcb_now_ns();
        s.t.DhcpHandleOptionsHook(pkt, PKT_LEN, NULL, NULL, &o);
        dcb_hist_record(&hist, dcb_now_ns() - t1);
        if (i % 100 == 99)
            dcb_sleep_ms(1); /* about 100k notifications a second */
    }
    print_hist("notification (HandleOptions, 548 B)", &hist);

    /*
     * 3. NewPkt through the shim, the broker answering at once: first with
     * only NewPkt subscribed (as the raw ping-pong: two threads), then with
     * the packet's PROCESSED drop as a notification too (four threads then
     * share the cores: caller, broker, shim sender, broker reader).
     */
    for (int pass = 0; pass < 2; pass++) {
        fb_push_subscription(fb, pass == 0 ? DCB_HOOK_BIT(DCB_HOOK_NEWPKT) : 0xFFu);
        dcb_sleep_ms(200); /* the sender takes the Subscription within 50 ms */
        dcb_hist_reset(&hist);
        for (int i = 0; i < n_rt; i++) {
            LPBYTE p = pkt;
            DWORD size = PKT_LEN;
            LPVOID ctx = NULL;
            BOOL process_it = TRUE;
            uint64_t t1 = dcb_now_ns();
            s.t.DhcpNewPktHook(&p, &size, 0x0100000a, NULL, &ctx, &process_it);
            dcb_hist_record(&hist, dcb_now_ns() - t1);
            s.t.DhcpPktDropHook(&p, &size, DHCP_DROP_PROCESSED, 0x0100000a, NULL, ctx);
        }
        if (pass == 0) {
            print_hist("NewPkt round trip through the shim", &hist);
            newpkt = hist;
        } else {
            print_hist("  + the PROCESSED drop, queued", &hist);
        }
    }
    printf("  (the fake broker decodes, records and encodes; a real one adds its hop to a host)\n");
    WAIT_FOR(fb_stats(fb, DCB_HOOK_NEWPKT, &st) == 0 && st.calls >= (uint64_t)(2 * n_rt), 3000);
    answered = st.valid && st.calls >= (uint64_t)(2 * n_rt) &&
               st.d_timeout + st.d_no_broker + st.d_bad_reply + st.d_breaker + st.queue_full +
                       st.d_other ==
                   0;
    fb_stats(fb, DCB_HOOK_ADDRESSDEL, &st);
    printf("  (AddressDel queue-full drops: %llu)\n", (unsigned long long)st.queue_full);
    shim_close(&s);
    fb_stop(fb);
    snprintf(what, sizeof(what), "raw ping-pong (%zu B in, %zu B out)", in, out);
    print_hist(what, &raw);
    printf("  NewPkt / raw:  p50 %.2fx   p99 %.2fx\n",
           (double)dcb_hist_quantile(&newpkt, 0.5) / (double)dcb_hist_quantile(&raw, 0.5),
           (double)dcb_hist_quantile(&newpkt, 0.99) / (double)dcb_hist_quantile(&raw, 0.99));
    if (!answered) {
        fprintf(stderr, "bench: some NewPkt calls were defaulted\n");
        return 1;
    }
    return 0;
}
