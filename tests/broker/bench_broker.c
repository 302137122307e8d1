/*
 * bench_broker.c — NewPkt round trip through the broker: fake shim →
 * dcb-broker → one host running a no-op plugin (tb_a with no orders) → back.
 * Prints p50/p90/p99/p99.9/max; not a pass/fail test.
 *
 *   DCB_BIN_DIR=build/native/bin build/native/bin/bench_broker [events] [bytes] [threads] [drops]
 *
 * threads: the host's pool (default 4); drops: 1 (default) also sends each
 * packet's PROCESSED drop on the NOTIFY connection, as a shim would.
 */
#include "dcb_hist.h"
#include "tb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    int events = argc > 1 ? atoi(argv[1]) : 20000;
    size_t size = argc > 2 ? (size_t)atoi(argv[2]) : 300;
    int threads = argc > 3 ? atoi(argv[3]) : 4;
    int drops = argc > 4 ? atoi(argv[4]) : 1;
    static dcb_hist_t hist;
    static char cfg[4096];
    char plugin[1024];
    uint8_t *pkt = malloc(size);
    tb_decision_t *d = malloc(sizeof(*d));
    tb_broker_t b;
    tb_conn_t *req, *ntf;
    uint64_t t_all;

    tb_plugin("tb_a", plugin, sizeof(plugin));
    snprintf(cfg, sizeof(cfg),
             "[broker]\nchain = tb_a\nlog_level = warn\n[plugin tb_a]\ndll = %s\nthreads = %d\n",
             plugin, threads);
    if (tb_broker_start(&b, "bench", cfg, NULL) != 0)
        return 1;
    req = tb_connect(&b);
    ntf = tb_connect(&b);
    if (req == NULL || ntf == NULL ||
        tb_hello(req, DCB__CONN_ROLE__ROLE_REQUEST, NULL, 0) == NULL ||
        tb_hello(ntf, DCB__CONN_ROLE__ROLE_NOTIFY, NULL, 0) == NULL) {
        fprintf(stderr, "bench: no connection\n");
        return 1;
    }
    memset(pkt, 0x42, size);
    /* Warm up until the host answers (it starts with the broker). */
    for (int i = 0; i < 200000; i++) {
        tb_send_request(req, DCB_HOOK_NEWPKT, 1u << 30 | (uint64_t)i, 0, pkt, size, 1000000);
        tb_wait_decision(req, 2000, d);
        if (d->td_rc == 0 && d->td_reason == 0 && i > 1000)
            break;
        if (d->td_rc != 0) {
            fprintf(stderr, "bench: no decision (%d)\n", d->td_rc);
            return 1;
        }
        if (d->td_reason != 0)
            tb_sleep_ms(1);
    }
    dcb_hist_reset(&hist);
    t_all = dcb_now_ns();
    for (int i = 1; i <= events; i++) {
        uint64_t t0 = dcb_now_ns();
        tb_send_request(req, DCB_HOOK_NEWPKT, (uint64_t)i, 0, pkt, size, 1000000);
        tb_wait_decision(req, 2000, d);
        dcb_hist_record(&hist, dcb_now_ns() - t0);
        if (d->td_rc != 0 || d->td_reason != 0) {
            fprintf(stderr, "bench: event %d: rc %d reason %d\n", i, d->td_rc, d->td_reason);
            return 1;
        }
        /* The packet's end, as the server reports it (not timed: the shim queues it). */
        if (drops)
            tb_pktdrop(ntf, (uint64_t)i, 1, "x", DHCP_DROP_PROCESSED);
    }
    t_all = dcb_now_ns() - t_all;
    printf("broker NewPkt round trip, %d events of %zu bytes, 1 no-op plugin host (%d threads%s):\n"
           "  p50 %.1f us  p90 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us  (%.0f events/s)\n",
           events, size, threads, drops ? ", PROCESSED drops" : "",
           dcb_hist_quantile(&hist, 0.5) / 1e3, dcb_hist_quantile(&hist, 0.9) / 1e3,
           dcb_hist_quantile(&hist, 0.99) / 1e3, dcb_hist_quantile(&hist, 0.999) / 1e3,
           dcb_hist_max(&hist) / 1e3, events / (t_all / 1e9));
    tb_disconnect(req);
    tb_disconnect(ntf);
    tb_broker_stop(&b);
    free(pkt);
    free(d);
    return 0;
}
