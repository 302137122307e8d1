/*
 * test_flood.c — the broker's endpoints under a flood: more shim connections
 * than max_connections, slowloris (frames announced and never finished, and
 * connections that never say Hello), garbage from a shim, and a flood of
 * control connections. Throughout, a shim connection opened before the
 * attack keeps sending NewPkt: every one must be answered, well within its
 * deadline, and the broker's memory must stay within what max_connections
 * frames can cost.
 */
#include "test_security.h"

#define DEADLINE_US (SEC_SLOW ? 3000000u : 1000000u)
#define N_FLOOD (SEC_WINDOWS ? 300 : 600)
#define N_SLOW 200
#define N_CTL 64

typedef struct lat {
    uint64_t l_max_us;
    uint64_t l_sum_us;
    unsigned l_n;
} lat_t;

static void round_trip(tb_conn_t *req, uint64_t *pid, lat_t *l)
{
    static tb_decision_t d;

    tb_newpkt(req, (*pid)++, "legit packet", DEADLINE_US, &d);
    assert_int_equal(d.td_rc, 0);
    assert_int_equal(d.td_reason, 0);
    assert_true(d.td_elapsed_us < DEADLINE_US);
    if (d.td_elapsed_us > l->l_max_us)
        l->l_max_us = d.td_elapsed_us;
    l->l_sum_us += d.td_elapsed_us;
    l->l_n++;
}

/* Whether the broker closed a raw connection (EOF) within a moment. */
static int closed_by_broker(tb_pipe_t *p)
{
    char c;
    int rc = tb_pipe_read(p, &c, 1, 1);

    return rc == TB_EOF || rc == TB_ERROR;
}

static void test_flood(void **state)
{
    static tb_pipe_t *flood[N_FLOOD], *ctls[N_CTL];
    static uint8_t junk[4096];
    Dcb__Hello h = DCB__HELLO__INIT;
    uint8_t hello[256], partial[8 + 1000];
    char pipe[256], ctl[256], dll[1024];
    uint64_t pid = 1;
    lat_t base = {0, 0, 0}, attack = {0, 0, 0};
    int64_t rss0, rss_peak, rss_after;
    int n_hello, opened = 0, refused = 0, slow = 0, ctl_opened = 0;
    static tb_broker_t b;
    tb_conn_t *req, *bad;

    (void)state;
    sec_raise_fd_limit();
    sec_endpoints(pipe, ctl, sizeof(pipe));
    tb_plugin("noop", dll, sizeof(dll));
    SEC_START(&b, "flood", pipe, ctl, "chain = noop\nmax_connections = 256",
              sec_fmt("[plugin noop]\ndll = %s\n", dll));
    req = tb_connect(&b);
    assert_non_null(req);
    assert_non_null(tb_hello(req, DCB__CONN_ROLE__ROLE_REQUEST, NULL, 0));
    assert_true(tb_log_wait(&b, "plugin noop ready", SEC_SLOW ? 30000 : 10000));
    for (int i = 0; i < 50; i++)
        round_trip(req, &pid, &base);
    rss0 = sec_rss(b.tb_proc.pid);
    rss_peak = rss0;

    /* 1. More connections than max_connections, none of which says anything. */
    for (int i = 0; i < N_FLOOD; i++) {
        flood[i] = tb_pipe_connect(pipe, 3000);
        if (flood[i] != NULL)
            opened++;
        if (i % 50 == 49)
            round_trip(req, &pid, &attack);
    }
    for (int i = 0; i < N_FLOOD; i++)
        if (flood[i] != NULL && closed_by_broker(flood[i])) {
            tb_pipe_close(flood[i]);
            flood[i] = NULL;
            refused++;
        }
    assert_true(tb_log_wait(&b, "too many connections (max_connections 256)", 5000));
    round_trip(req, &pid, &attack);

    /* 2. Slowloris: Hello, then a 60000-byte frame of which 1000 bytes come, never the rest. */
    h.protocol_version = DCB_PROTO_VERSION;
    h.role = DCB__CONN_ROLE__ROLE_REQUEST;
    n_hello = dcb_frame_encode(DCB__FRAME_TYPE__FT_HELLO, &h.base, hello, sizeof(hello));
    assert_true(n_hello > 0);
    memset(partial, 0x08, sizeof(partial));
    memcpy(partial, (const uint8_t[8]){'D', 'C', DCB_PROTO_VERSION, DCB__FRAME_TYPE__FT_EV_NEWPKT,
                                       0x60, 0xEA, 0, 0},
           8);
    for (int i = 0; i < N_FLOOD && slow < N_SLOW; i++) {
        if (flood[i] == NULL)
            continue;
        if (tb_pipe_write(flood[i], hello, (size_t)n_hello) == 0 &&
            tb_pipe_write(flood[i], partial, sizeof(partial)) == 0)
            slow++;
        if (slow % 50 == 49)
            round_trip(req, &pid, &attack);
    }
    /* The rest: 3 bytes of a header, and nothing more (the Hello timeout closes them). */
    for (int i = 0; i < N_FLOOD; i++)
        if (flood[i] != NULL && i >= N_SLOW)
            tb_pipe_write(flood[i], "DC\x01", 3);
    for (int i = 0; i < 20; i++) {
        int64_t rss = sec_rss(b.tb_proc.pid);
        if (rss > rss_peak)
            rss_peak = rss;
        round_trip(req, &pid, &attack);
        tb_sleep_ms(20);
    }

    /* 3. Garbage from one more shim connection: it alone is closed. */
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 131u + 7u);
    bad = tb_connect(&b);
    if (bad != NULL) {
        tb_send_raw(bad, junk, sizeof(junk));
        tb_disconnect(bad);
    }
    round_trip(req, &pid, &attack);

    /* 4. The control endpoint, flooded too (administrators only, but a flood still). */
    for (int i = 0; i < N_CTL; i++) {
        ctls[i] = tb_pipe_connect(ctl, 1000);
        if (ctls[i] != NULL) {
            ctl_opened++;
            tb_pipe_write(ctls[i], junk, i % 2 ? 5 : 3000);
        }
        if (i % 16 == 15)
            round_trip(req, &pid, &attack);
    }
    for (int i = 0; i < 20; i++) {
        int64_t rss = sec_rss(b.tb_proc.pid);
        if (rss > rss_peak)
            rss_peak = rss;
        round_trip(req, &pid, &attack);
    }

    /* 5. All gone again. */
    for (int i = 0; i < N_FLOOD; i++)
        tb_pipe_close(flood[i]);
    for (int i = 0; i < N_CTL; i++)
        tb_pipe_close(ctls[i]);
    tb_sleep_ms(500);
    for (int i = 0; i < 20; i++)
        round_trip(req, &pid, &attack);
    rss_after = sec_rss(b.tb_proc.pid);
    assert_true(sec_broker_alive(&b));
    sec_note("flood: %d shim connections opened, %d closed at once by max_connections; "
             "%d slowloris frames pending; %d control connections",
             opened, refused, slow, ctl_opened);
    sec_note("flood: NewPkt round trip before: mean %llu us, max %llu us; during the attack: "
             "mean %llu us, max %llu us over %u (deadline %u us)",
             (unsigned long long)(base.l_sum_us / base.l_n), (unsigned long long)base.l_max_us,
             (unsigned long long)(attack.l_sum_us / attack.l_n),
             (unsigned long long)attack.l_max_us, attack.l_n, DEADLINE_US);
    sec_note("flood: broker memory %lld KB before, %lld KB at the peak, %lld KB after",
             (long long)(rss0 / 1024), (long long)(rss_peak / 1024),
             (long long)(rss_after / 1024));
    assert_true(opened > 256);
    assert_true(refused > 0);
    /* max_connections frames of at most 64 KB each, plus slack; more under ASan and Wine. */
    assert_true(rss0 > 0 && rss_peak - rss0 < (SEC_SLOW ? 256 : 64) * 1024 * 1024);
    /* The event path kept its pace: no round trip near the deadline. */
    assert_true(attack.l_max_us < DEADLINE_US / 4);
    SEC_STOP(&b);
}

const struct CMUnitTest sec_flood_tests[] = {
    cmocka_unit_test_teardown(test_flood, sec_teardown),
};
const size_t sec_n_flood_tests = sizeof(sec_flood_tests) / sizeof(sec_flood_tests[0]);
