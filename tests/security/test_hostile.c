/*
 * test_hostile.c — a plugin host is untrusted. plugins/test/hostile.c
 * writes to its own host's channel what a compromised plugin could: no
 * frame at all, a 2 GB header, a payload that is no message, half a frame
 * and then silence, results for requests never sent, a second HostLoaded, a
 * frame only the broker sends, an oversized packet, 20 MB of unsolicited
 * Pongs. For each, the broker must
 *   - answer the fake shim's NewPkt before its deadline (with the plugin's
 *     default when the host failed),
 *   - log why it took the host down, and restart it,
 *   - stay up, with bounded memory.
 * And text from a peer (here a shim's version string) cannot forge lines
 * in the broker's log.
 */
#include "test_security.h"

#define DEADLINE_US (SEC_SLOW ? 4000000u : 1500000u)

typedef struct attack {
    const char *a_mode;
    const char *a_log; /* what the broker says; NULL: no failure expected */
} attack_t;

static const attack_t attacks[] = {
    {"garbage", "failed: bad frame: not a dcb frame (bad magic)"},
    {"oversized", "failed: bad frame: frame larger than allowed"},
    {"badpayload", "failed: bad frame: malformed message"},
    {"unknown-request", "failed: result for unknown request"},
    {"loaded-twice", "failed: HostLoaded twice"},
    {"wrong-type", "failed: unexpected frame type 20"},
    {"bigpacket", "failed: bad frame: field out of range"},
    {"truncated", "failed: hang:"},
    {"flood", NULL},
};

static int ready_count(tb_broker_t *b)
{
    return tb_log_count(b, "plugin hostile ready");
}

/* NewPkt until one is answered by a ready host without a default (the host is back). */
static void wait_served(tb_conn_t *req, uint64_t *pid, tb_decision_t *d)
{
    uint64_t end = dcb_now_ns() + (SEC_SLOW ? 30000u : 10000u) * 1000000ull;

    for (;;) {
        tb_newpkt(req, (*pid)++, "plain packet", DEADLINE_US, d);
        assert_int_equal(d->td_rc, 0);
        if (d->td_reason == 0)
            return;
        assert_true(dcb_now_ns() < end);
        tb_sleep_ms(50);
    }
}

static void test_hostile_host(void **state)
{
    static tb_decision_t d;
    char pipe[256], ctl[256], dll[1024];
    uint64_t pid = 1;
    int64_t rss0, rss_max = 0;
    static tb_broker_t b;
    tb_conn_t *req;

    (void)state;
    sec_endpoints(pipe, ctl, sizeof(pipe));
    tb_plugin("hostile", dll, sizeof(dll));
    SEC_START(&b, "hostile", pipe, ctl, "chain = hostile",
              sec_fmt("[plugin hostile]\ndll = %s\nthreads = 1\ntimeout_ms = %u\nhang_ms = %u\n"
                      "restart_backoff_ms = 10\nrestart_backoff_max_ms = 50\n"
                      "crash_loop_limit = 64\ncrash_loop_window_s = 1\n",
                      dll, SEC_SLOW ? 1500u : 400u, SEC_SLOW ? 3000u : 1000u));
    req = tb_connect(&b);
    assert_non_null(req);
    assert_non_null(tb_hello(req, DCB__CONN_ROLE__ROLE_REQUEST, NULL, 0));
    assert_true(tb_log_wait(&b, "plugin hostile ready", SEC_SLOW ? 30000 : 10000));
    wait_served(req, &pid, &d);
    rss0 = sec_rss(b.tb_proc.pid);
    for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
        const attack_t *a = &attacks[i];
        int ready = ready_count(&b), reason;
        uint64_t elapsed;
        int64_t rss;

        tb_newpkt(req, pid++, sec_fmt("HOSTILE:%s", a->a_mode), DEADLINE_US, &d);
        if (d.td_rc != 0)
            tb_log_dump(&b);
        assert_int_equal(d.td_rc, 0);
        assert_true(d.td_elapsed_us < DEADLINE_US);
        elapsed = d.td_elapsed_us;
        reason = d.td_reason;
        if (a->a_log != NULL) {
            /* The host failed: its event got the plugin's default. */
            assert_int_not_equal(d.td_reason, 0);
            if (!tb_log_wait(&b, a->a_log, 10000)) {
                tb_log_dump(&b);
                fail_msg("attack %s: the broker did not log \"%s\"", a->a_mode, a->a_log);
            }
            /* Restarted; serves again. */
            wait_served(req, &pid, &d);
            assert_true(ready_count(&b) > ready);
        } else {
            wait_served(req, &pid, &d);
            assert_int_equal(ready_count(&b), ready);
        }
        assert_true(sec_broker_alive(&b));
        rss = sec_rss(b.tb_proc.pid);
        if (rss > rss_max)
            rss_max = rss;
        sec_note("hostile host: %-16s -> answered in %6llu us (default reason %d), %s", a->a_mode,
                 (unsigned long long)elapsed, reason,
                 a->a_log != NULL ? "host killed and restarted" : "ignored, host kept");
    }
    sec_note("broker memory: %lld KB before, %lld KB at most during the attacks",
             (long long)(rss0 / 1024), (long long)(rss_max / 1024));
    /* Bounded: one frame per host channel, never the 2 GB asked for nor the 20 MB flood. */
    assert_true(rss0 > 0 && rss_max - rss0 < (SEC_SLOW ? 256 : 64) * 1024 * 1024);
    SEC_STOP(&b);
}

/* Text a peer sends ends up in the log: it must not forge log lines. */
static void test_log_forgery(void **state)
{
    static const char forged[] = "dcb-broker[1] 0.000 error: FORGED by a peer";
    Dcb__Hello h = DCB__HELLO__INIT;
    char pipe[256], ctl[256], version[128];
    static tb_broker_t b;
    tb_conn_t *c;
    dcb_msg_t m;

    (void)state;
    sec_endpoints(pipe, ctl, sizeof(pipe));
    SEC_START(&b, "forgery", pipe, ctl, NULL, NULL);
    c = tb_connect(&b);
    assert_non_null(c);
    snprintf(version, sizeof(version), "1.0\n%s\x1b[2J", forged);
    h.protocol_version = DCB_PROTO_VERSION;
    h.role = DCB__CONN_ROLE__ROLE_NOTIFY;
    h.shim_version = version;
    assert_int_equal(tb_send_msg(c, DCB__FRAME_TYPE__FT_HELLO, &h.base), 0);
    assert_int_equal(tb_recv_msg(c, 10000, &m), 0);
    assert_true(tb_log_wait(&b, "FORGED by a peer", 5000));
    assert_true(tb_log_contains(&b, "shim 1.0?dcb-broker[1] 0.000 error: FORGED by a peer?[2J"));
    assert_false(tb_log_contains(&b, "\ndcb-broker[1] 0.000 error: FORGED"));
    sec_note("a shim version with a newline and an escape sequence was logged as one line");
    SEC_STOP(&b);
}

const struct CMUnitTest sec_hostile_tests[] = {
    cmocka_unit_test_teardown(test_hostile_host, sec_teardown),
    cmocka_unit_test_teardown(test_log_forgery, sec_teardown),
};
const size_t sec_n_hostile_tests = sizeof(sec_hostile_tests) / sizeof(sec_hostile_tests[0]);
