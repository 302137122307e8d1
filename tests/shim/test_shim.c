/*
 * test_shim.c — the shim, loaded as the DHCP server loads it, against an
 * in-test fake broker.
 *
 * Each test points DCB_PIPE at a fresh endpoint, starts a fake broker there
 * (or none), loads the real dcbshim.dll / libdcbshim.so, calls its hooks
 * and checks what the server would see and what the broker received.
 * Timing bounds are generous (Wine is slower than Linux); what they check
 * is "within the deadline" versus "far below it".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dcb_proto.h"
#include "fake_broker.h"
#include "fake_tp.h"
#include "shim_harness.h"

#define ALL_HOOKS 0xFFu
#define REQ DCB__CONN_ROLE__ROLE_REQUEST
#define NOTE DCB__CONN_ROLE__ROLE_NOTIFY
#define GUARD 64
#define GUARD_BYTE 0xEE

const char *shim_exe_dir = ".";
static char pipe_name[256];
static char log_path[256];
/* What a test started, so teardown can release it when an assertion fails. */
static shim_t cur_shim;
static fake_broker_t *cur_fb;

/* ---- helpers ------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    env_reset();
    ftp_unique_name(pipe_name, sizeof(pipe_name), "shimtest");
    env_set("DCB_PIPE", pipe_name);
    env_set("DCB_STATS_INTERVAL_MS", "30");
    /*
     * Tests that are not about deadlines must not see one expire on a busy
     * machine; those that are set their own.
     */
    env_set("DCB_NEWPKT_DEADLINE_MS", "2000");
    env_set("DCB_PKTSEND_DEADLINE_MS", "2000");
    snprintf(log_path, sizeof(log_path), "shim-test-%u.log", (unsigned)dcb_getpid());
    if (getenv("DCB_TEST_KEEP_LOG") == NULL)
        remove(log_path);
    env_set("DCB_SHIM_LOG", log_path);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (cur_shim.dl != NULL)
        shim_close(&cur_shim);
    if (cur_fb != NULL)
        fb_stop(cur_fb);
    cur_fb = NULL;
    /* DCB_TEST_KEEP_LOG keeps the shim's log for a look after a failure. */
    if (getenv("DCB_TEST_KEEP_LOG") == NULL)
        remove(log_path);
    return 0;
}

static void start_shim(shim_t *s)
{
    static const char *const chain[] = {"C:\\dhcp\\vendorA.dll", "C:\\dhcp\\vendorB.dll"};

    assert_int_equal(shim_open(s), 0);
    cur_shim = *s;
    assert_int_equal(shim_entry(s, chain, 2, 0), ERROR_SUCCESS);
    cur_shim = *s;
    s->t.DhcpControlHook(DHCP_CONTROL_START, NULL);
}

static void close_shim(shim_t *s)
{
    memset(&cur_shim, 0, sizeof(cur_shim));
    shim_close(s);
}

static fake_broker_t *broker_start(uint32_t hooks)
{
    fake_broker_t *fb = fb_start(pipe_name, hooks);

    assert_non_null(fb);
    cur_fb = fb;
    return fb;
}

static void broker_stop(fake_broker_t *fb)
{
    cur_fb = NULL;
    fb_stop(fb);
}

/* Waits until the shim has its NOTIFY connection and a REQUEST connection. */
static void wait_ready(fake_broker_t *fb)
{
    WAIT_FOR(fb_stats_count(fb) >= 1 && fb_hellos(fb, REQ) >= 1, 5000);
    assert_true(fb_stats_count(fb) >= 1);
    assert_true(fb_hellos(fb, REQ) >= 1);
}

/* Figures the shim reported after everything done so far. */
static void stats_now(fake_broker_t *fb, int hook, fb_hook_stats_t *st)
{
    int n = fb_stats_count(fb);

    WAIT_FOR(fb_stats_count(fb) >= n + 2, 3000);
    assert_int_equal(fb_stats(fb, hook, st), 0);
}

/* A BOOTP-shaped packet in a buffer followed by a guard region. */
static uint8_t *packet_new(size_t len, uint8_t seed)
{
    uint8_t *p = malloc(len + GUARD);

    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(seed + i * 7);
    p[0] = 1; /* BOOTREQUEST */
    memset(p + len, GUARD_BYTE, GUARD);
    return p;
}

static void assert_guard(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < GUARD; i++)
        assert_int_equal(p[len + i], GUARD_BYTE);
}

typedef struct pkt_call {
    LPBYTE packet;
    DWORD size;
    LPVOID ctx;
    BOOL process_it;
    double ms;
} pkt_call_t;

static void newpkt(shim_t *s, pkt_call_t *c, uint8_t *buf, DWORD size)
{
    uint64_t t0 = dcb_now_ns();

    c->packet = buf;
    c->size = size;
    c->ctx = NULL;
    c->process_it = TRUE;
    s->t.DhcpNewPktHook(&c->packet, &c->size, 0x0100000a, (LPVOID)0x1234, &c->ctx, &c->process_it);
    c->ms = ms_since(t0);
}

static void drop(shim_t *s, pkt_call_t *c, DWORD code)
{
    s->t.DhcpPktDropHook(&c->packet, &c->size, code, 0x0100000a, (LPVOID)0x1234, c->ctx);
}

/* Decodes a recorded frame; the message lives in *mem (free it). */
static ProtobufCMessage *decode(const fb_frame_t *f, void **mem)
{
    static const dcb_limits_t lim = {DCB_MAX_FRAME_EVENT, 65536};
    size_t asize = dcb_arena_size_for(DCB_MAX_FRAME_EVENT);
    dcb_arena_t arena;
    dcb_msg_t m;

    *mem = malloc(asize);
    dcb_arena_init(&arena, *mem, asize);
    assert_int_equal(dcb_frame_decode(f->f_buf, f->f_len, &lim, &arena, &m), 0);
    return m.msg;
}

static int log_contains(const char *needle)
{
    char line[2048];
    FILE *f = fopen(log_path, "r");
    int found = 0;

    if (f == NULL)
        return 0;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* ---- entry point ---------------------------------------------------------- */

static void test_entry_version(void **state)
{
    shim_t s;
    DHCP_CALLOUT_TABLE zero;

    (void)state;
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(shim_open(&s), 0);
    assert_int_equal(shim_entry(&s, NULL, 0, 1), ERROR_NOT_SUPPORTED);
    assert_memory_equal(&s.t, &zero, sizeof(zero));
    assert_int_equal(shim_entry(&s, NULL, 0, 0x100), ERROR_NOT_SUPPORTED);
    /* No broker anywhere: still success, and every hook is there. */
    assert_int_equal(shim_entry(&s, NULL, 0, 0), ERROR_SUCCESS);
    assert_non_null(s.t.DhcpControlHook);
    assert_non_null(s.t.DhcpNewPktHook);
    assert_non_null(s.t.DhcpPktDropHook);
    assert_non_null(s.t.DhcpPktSendHook);
    assert_non_null(s.t.DhcpAddressDelHook);
    assert_non_null(s.t.DhcpAddressOfferHook);
    assert_non_null(s.t.DhcpHandleOptionsHook);
    assert_non_null(s.t.DhcpDeleteClientHook);
    assert_null(s.t.DhcpExtensionHook);
    assert_null(s.t.DhcpReservedHook);
    close_shim(&s);
}

static void test_bad_config_still_starts(void **state)
{
    fake_broker_t *fb = broker_start(ALL_HOOKS);
    uint8_t *buf = packet_new(300, 1);
    pkt_call_t c;
    shim_t s;

    (void)state;
    env_set("DCB_NEWPKT_DEADLINE_MS", "abc");
    env_set("DCB_QUEUE_SIZE", "5");
    env_set("DCB_FAIL_CLOSED", "yes");
    env_set("DCB_MAX_PACKET", "-1");
    start_shim(&s);
    wait_ready(fb);
    /* The documented default deadline (100 ms) applies instead of "abc". */
    fb_set_mode(fb, FB_SILENT);
    newpkt(&s, &c, buf, 300);
    assert_true(c.ms >= 90 && c.ms < 1000);
    assert_int_equal(c.process_it, TRUE); /* FailClosed "yes" is invalid: fail-open. */
    drop(&s, &c, DHCP_DROP_PROCESSED);
    close_shim(&s);
    broker_stop(fb);
    assert_true(log_contains("DCB_NEWPKT_DEADLINE_MS=\"abc\" is invalid"));
    assert_true(log_contains("DCB_QUEUE_SIZE=\"5\" is invalid"));
    assert_true(log_contains("DCB_FAIL_CLOSED=\"yes\" is invalid"));
    assert_true(log_contains("DCB_MAX_PACKET=\"-1\" is invalid"));
    free(buf);
}

/* ---- no broker ------------------------------------------------------------ */

static void test_no_broker_defaults(void **state)
{
    uint8_t *buf = packet_new(300, 2), *copy = malloc(300);
    pkt_call_t c;
    LPBYTE p;
    DWORD size;
    shim_t s;

    (void)state;
    memcpy(copy, buf, 300);
    start_shim(&s);
    /* Fail-open: the packet goes on unmodified, at once. */
    for (int i = 0; i < 20; i++) {
        newpkt(&s, &c, buf, 300);
        assert_true(c.ms < 100); /* at once, not after the 2 s deadline */
        assert_int_equal(c.process_it, TRUE);
        assert_int_equal(c.size, 300);
        assert_ptr_equal(c.packet, buf);
        assert_non_null(c.ctx); /* The record exists even without a broker. */
        p = c.packet;
        size = c.size;
        s.t.DhcpPktSendHook(&p, &size, DHCP_SEND_PACKET, 0, NULL, c.ctx);
        assert_ptr_equal(p, buf);
        drop(&s, &c, DHCP_DROP_PROCESSED);
    }
    assert_memory_equal(buf, copy, 300);
    assert_guard(buf, 300);
    close_shim(&s);

    /* Fail-closed: the default drops the packet. */
    env_set("DCB_FAIL_CLOSED", "1");
    start_shim(&s);
    newpkt(&s, &c, buf, 300);
    assert_true(c.ms < 100);
    assert_int_equal(c.process_it, FALSE);
    drop(&s, &c, DHCP_DROP_PROCESSED);
    close_shim(&s);
    free(buf);
    free(copy);
}
/* ---- decisions -------------------------------------------------------------- */

static void test_decision_drop_and_order(void **state)
{
    static const uint32_t codes[] = {DHCP_DROP_INVALID, DHCP_DROP_INVALID, 0x0C,
                                     DHCP_DROP_PROCESSED};
    fake_broker_t *fb = broker_start(ALL_HOOKS);
    uint8_t *buf = packet_new(300, 3);
    Dcb__NewPktEvent *ev;
    Dcb__PktDropEvent *de;
    fb_frame_t f;
    pkt_call_t c;
    char chain[512];
    uint64_t id;
    void *mem;
    shim_t s;

    (void)state;
    start_shim(&s);
    wait_ready(fb);
    fb_chain(fb, chain, sizeof(chain));
    assert_string_equal(chain, "C:\\dhcp\\vendorA.dll|C:\\dhcp\\vendorB.dll");
    fb_set_process_it(fb, 0);
    newpkt(&s, &c, buf, 300);
    assert_int_equal(c.process_it, FALSE);
    assert_ptr_equal(c.packet, buf);
    assert_int_equal(c.size, 300);

    /* What the broker got: the packet as it was, an id, seq 0, a deadline. */
    assert_int_equal(fb_frame(fb, DCB__FRAME_TYPE__FT_EV_NEWPKT, 0, &f), 0);
    assert_int_equal(f.f_role, REQ);
    ev = (Dcb__NewPktEvent *)decode(&f, &mem);
    assert_int_equal(ev->packet.len, 300);
    assert_memory_equal(ev->packet.data, buf, 300);
    assert_int_equal(ev->ip_address, 0x0100000a);
    assert_true(ev->hdr->packet_id != 0);
    assert_int_equal(ev->hdr->seq, 0);
    assert_true(ev->hdr->request_id != 0);
    /* The broker is told a little less than the 2 s the shim waits. */
    assert_true(ev->hdr->deadline_us > 1000000 && ev->hdr->deadline_us <= 1800000);
    assert_int_equal(ev->hdr->reserved, 0x1234);
    id = ev->hdr->packet_id;
    free(mem);
    fb_frame_free(&f);

    /* The drops, INVALID twice and an unknown code, then PROCESSED, in order. */
    for (int i = 0; i < 4; i++)
        drop(&s, &c, codes[i]);
    WAIT_FOR(fb_count(fb, DCB__FRAME_TYPE__FT_EV_PKTDROP) >= 4, 3000);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(fb_frame(fb, DCB__FRAME_TYPE__FT_EV_PKTDROP, i, &f), 0);
        assert_int_equal(f.f_role, NOTE);
        de = (Dcb__PktDropEvent *)decode(&f, &mem);
        assert_int_equal(de->hdr->packet_id, id);
        assert_int_equal(de->hdr->seq, (uint32_t)i + 1);
        assert_int_equal(de->control_code, codes[i]);
        assert_int_equal(de->packet.len, 300);
        free(mem);
        fb_frame_free(&f);
    }
    /* The START the server sent went to the broker too. */
    assert_true(fb_count(fb, DCB__FRAME_TYPE__FT_EV_CONTROL) >= 1);
    close_shim(&s);
    broker_stop(fb);
    free(buf);
}

static void test_change_in_place(void **state)
{
    fake_broker_t *fb = broker_start(ALL_HOOKS);
    uint8_t *buf = packet_new(300, 4), reply[300];
    pkt_call_t c;
    LPBYTE p;
    DWORD size;
    shim_t s;

    (void)state;
    memset(reply, 0x42, sizeof(reply));
    start_shim(&s);
    wait_ready(fb);
    /* Shorter: copied into the server's buffer, size updated. */
    fb_set_reply(fb, FB_REPLY_FIXED, reply, 200, 0);
    newpkt(&s, &c, buf, 300);
    assert_ptr_equal(c.packet, buf);
    assert_int_equal(c.size, 200);
    assert_memory_equal(buf, reply, 200);
    assert_guard(buf, 300);
    assert_int_equal(c.process_it, TRUE);
    /* PktSend, same size: in place as well. */
    memset(reply, 0x43, sizeof(reply));
    fb_set_reply(fb, FB_REPLY_FIXED, reply, 300, 0);
    memset(buf, 0, 300);
    p = buf;
    size = 300;
    s.t.DhcpPktSendHook(&p, &size, DHCP_SEND_PACKET, 0, NULL, c.ctx);
    assert_ptr_equal(p, buf);
    assert_int_equal(size, 300);
    assert_memory_equal(buf, reply, 300);
    assert_guard(buf, 300);
    drop(&s, &c, DHCP_DROP_PROCESSED);
    close_shim(&s);
    broker_stop(fb);
    free(buf);
}

static void test_growth_replaces_buffer(void **state)
{
    fake_broker_t *fb = broker_start(ALL_HOOKS);
    uint8_t *buf = packet_new(300, 5), *orig = malloc(300 + GUARD), *reply;
    pkt_call_t c;
    LPBYTE p;
    DWORD size;
    shim_t s;

    (void)state;
    memcpy(orig, buf, 300 + GUARD);
    start_shim(&s);
    wait_ready(fb);
    fb_set_reply(fb, FB_REPLY_MANGLE, NULL, 0, 500);
    newpkt(&s, &c, buf, 300);
    /* The server's buffer is untouched, guard included; a new one replaces it. */
    assert_memory_equal(buf, orig, 300 + GUARD);
    assert_ptr_not_equal(c.packet, buf);
    assert_int_equal(c.size, 800);
    assert_int_equal(c.packet[0], (uint8_t)(orig[0] ^ 0xFF));
    assert_memory_equal(c.packet + 1, orig + 1, 299);
    for (int i = 300; i < 800; i++)
        assert_int_equal(c.packet[i], 0xAB);

    /* PktSend growth: another buffer owned by the same record. */
    reply = packet_new(400, 6);
    p = reply;
    size = 400;
    s.t.DhcpPktSendHook(&p, &size, DHCP_SEND_PACKET, 0, NULL, c.ctx);
    assert_ptr_not_equal(p, reply);
    assert_int_equal(size, 900);
    assert_guard(reply, 400);
    /* Both replaced buffers are still alive (ASan would see a use after free). */
    assert_int_equal(c.packet[799], 0xAB);
    assert_int_equal(p[899], 0xAB);
    /* The final drop frees them (ASan would see a leak otherwise). */
    drop(&s, &c, DHCP_DROP_PROCESSED);
    close_shim(&s);
    broker_stop(fb);
    free(buf);
    free(orig);
    free(reply);
}

/* ---- failures --------------------------------------------------------------- */

static void test_bad_replies(void **state)
{
    static const fb_mode_t bad[] = {FB_GARBAGE, FB_WRONG_ID, FB_OVERSIZED, FB_TRUNCATED,
                                    FB_WRONG_TYPE};
    const int n_bad = (int)(sizeof(bad) / sizeof(bad[0]));
    fake_broker_t *fb = broker_start(ALL_HOOKS);
    uint8_t *buf = packet_new(300, 7);
    fb_hook_stats_t st;
    pkt_call_t c;
    shim_t s;

    (void)state;
    env_set("DCB_BREAKER_THRESHOLD", "1000");
    env_set("DCB_MAX_PACKET", "1024");
    start_shim(&s);
    wait_ready(fb);
    /* The broker says "drop": a bad reply taken for a decision would show. */
    fb_set_process_it(fb, 0);
    fb_set_oversize(fb, 1025);
    for (int i = 0; i < n_bad; i++) {
        fb_set_mode(fb, bad[i]);
        newpkt(&s, &c, buf, 300);
        assert_int_equal(c.process_it, TRUE);
        assert_ptr_equal(c.packet, buf);
        assert_int_equal(c.size, 300);
        assert_true(c.ms < 1000);
        drop(&s, &c, DHCP_DROP_PROCESSED);
        /* The next request, on a fresh connection, works. */
        fb_set_mode(fb, FB_ANSWER);
        newpkt(&s, &c, buf, 300);
        assert_int_equal(c.process_it, FALSE);
        drop(&s, &c, DHCP_DROP_PROCESSED);
    }
    stats_now(fb, DCB_HOOK_NEWPKT, &st);
    assert_int_equal(st.d_bad_reply, (uint64_t)n_bad);
    assert_int_equal(st.d_timeout, 0);
    assert_int_equal(st.calls, (uint64_t)(2 * n_bad));
    assert_int_equal(st.waited, (uint64_t)(2 * n_bad));
    close_shim(&s);
    broker_stop(fb);
    free(buf);
}

static void test_late_answer(void **state)
{
    fake_broker_t *fb = broker_start(ALL_HOOKS);
    uint8_t *buf = packet_new(300, 8);
    fb_hook_stats_t st;
    pkt_call_t c;
    int hellos;
    shim_t s;

    (void)state;
    env_set("DCB_NEWPKT_DEADLINE_MS", "100");
    start_shim(&s);
    wait_ready(fb);
    fb_set_process_it(fb, 0);
    fb_set_mode(fb, FB_LATE);
    fb_set_late_ms(fb, 1500);
    hellos = fb_hellos(fb, REQ);
    newpkt(&s, &c, buf, 300);
    /* The deadline, not the answer 1.5 s later. */
    assert_true(c.ms >= 95 && c.ms < 1000);
    assert_int_equal(c.process_it, TRUE);
    drop(&s, &c, DHCP_DROP_PROCESSED);
    /* The late answer went to a closed connection; a new one serves the next. */
    fb_set_mode(fb, FB_ANSWER);
    newpkt(&s, &c, buf, 300);
    assert_int_equal(c.process_it, FALSE);
    assert_true(fb_hellos(fb, REQ) > hellos);
    drop(&s, &c, DHCP_DROP_PROCESSED);
    stats_now(fb, DCB_HOOK_NEWPKT, &st);
    assert_int_equal(st.d_timeout, 1);
    assert_int_equal(st.d_bad_reply, 0);
    close_shim(&s);
    broker_stop(fb);
    free(buf);
}

static void test_breaker(void **state)
{
    fake_broker_t *fb = broker_start(ALL_HOOKS);
    uint8_t *buf = packet_new(300, 9);
    fb_hook_stats_t st;
    pkt_call_t c;
    int closed = 0;
    shim_t s;

    (void)state;
    env_set("DCB_NEWPKT_DEADLINE_MS", "300");
    env_set("DCB_BREAKER_THRESHOLD", "3");
    env_set("DCB_BREAKER_MIN_MS", "500");
    start_shim(&s);
    wait_ready(fb);
    fb_set_process_it(fb, 0);
    fb_set_mode(fb, FB_SILENT);
    for (int i = 0; i < 3; i++) {
        newpkt(&s, &c, buf, 300);
        assert_true(c.ms >= 295);
        assert_int_equal(c.process_it, TRUE);
        drop(&s, &c, DHCP_DROP_PROCESSED);
    }
    /* Open: defaults far below the deadline. */
    for (int i = 0; i < 20; i++) {
        newpkt(&s, &c, buf, 300);
        assert_true(c.ms < 50);
        assert_int_equal(c.process_it, TRUE);
        drop(&s, &c, DHCP_DROP_PROCESSED);
    }
    stats_now(fb, DCB_HOOK_NEWPKT, &st);
    assert_int_equal(st.d_timeout, 3);
    assert_int_equal(st.d_breaker, 20);
    /* The broker recovers: after the back-off a trial closes the breaker. */
    fb_set_mode(fb, FB_ANSWER);
    for (int i = 0; i < 150 && !closed; i++) {
        newpkt(&s, &c, buf, 300);
        closed = c.process_it == FALSE;
        drop(&s, &c, DHCP_DROP_PROCESSED);
        dcb_sleep_ms(20);
    }
    assert_true(closed);
    for (int i = 0; i < 10; i++) {
        newpkt(&s, &c, buf, 300);
        assert_int_equal(c.process_it, FALSE);
        drop(&s, &c, DHCP_DROP_PROCESSED);
    }
    close_shim(&s);
    broker_stop(fb);
    free(buf);
}

static void check_control(fake_broker_t *fb, int nth, uint32_t code)
{
    Dcb__ControlEvent *ce;
    fb_frame_t f;
    void *mem;

    assert_int_equal(fb_frame(fb, DCB__FRAME_TYPE__FT_EV_CONTROL, nth, &f), 0);
    ce = (Dcb__ControlEvent *)decode(&f, &mem);
    assert_int_equal(ce->control_code, code);
    assert_int_equal(ce->hdr->packet_id, 0);
    free(mem);
    fb_frame_free(&f);
}

static void test_broker_restart(void **state)
{
    fake_broker_t *fb = broker_start(ALL_HOOKS);
    uint8_t *buf = packet_new(300, 10);
    pkt_call_t c;
    int ok = 0;
    shim_t s;

    (void)state;
    env_set("DCB_NEWPKT_DEADLINE_MS", "1000");
    start_shim(&s);
    wait_ready(fb);
    s.t.DhcpControlHook(DHCP_CONTROL_PAUSE, NULL);
    WAIT_FOR(fb_count(fb, DCB__FRAME_TYPE__FT_EV_CONTROL) >= 2, 3000);
    broker_stop(fb);
    /* Broker gone: defaults within the deadline, and soon at once. */
    for (int i = 0; i < 10; i++) {
        newpkt(&s, &c, buf, 300);
        assert_true(c.ms < 500);
        assert_int_equal(c.process_it, TRUE);
        drop(&s, &c, DHCP_DROP_PROCESSED);
    }
    dcb_sleep_ms(200);
    newpkt(&s, &c, buf, 300);
    assert_true(c.ms < 100);
    drop(&s, &c, DHCP_DROP_PROCESSED);
    /* It comes back on the same name: the shim reconnects by itself. */
    fb = broker_start(ALL_HOOKS);
    fb_set_process_it(fb, 0);
    for (int i = 0; i < 300 && !ok; i++) {
        newpkt(&s, &c, buf, 300);
        ok = c.process_it == FALSE;
        drop(&s, &c, DHCP_DROP_PROCESSED);
        if (!ok)
            dcb_sleep_ms(10);
    }
    assert_true(ok);
    /* The new broker learnt the server's state first: START, then PAUSE. */
    WAIT_FOR(fb_count(fb, DCB__FRAME_TYPE__FT_EV_CONTROL) >= 2, 3000);
    check_control(fb, 0, DHCP_CONTROL_START);
    check_control(fb, 1, DHCP_CONTROL_PAUSE);
    close_shim(&s);
    /* STOP reached the broker before the shim let go. */
    WAIT_FOR(fb_count(fb, DCB__FRAME_TYPE__FT_EV_CONTROL) >= 3, 3000);
    check_control(fb, 2, DHCP_CONTROL_STOP);
    broker_stop(fb);
    free(buf);
}

/* ---- notifications ---------------------------------------------------------- */

/* Every AddressDel is either at the broker or counted as dropped. */
static int all_accounted(fake_broker_t *fb, int n)
{
    fb_hook_stats_t st;

    if (fb_stats(fb, DCB_HOOK_ADDRESSDEL, &st) != 0 || st.queue_full == 0)
        return 0;
    return st.queue_full + (uint64_t)fb_count(fb, DCB__FRAME_TYPE__FT_EV_ADDRESSDEL) == (uint64_t)n;
}

static void test_notify_never_blocks(void **state)
{
    const int n = 3000;
    fake_broker_t *fb = broker_start(ALL_HOOKS);
    uint8_t *buf = packet_new(1400, 11);
    fb_hook_stats_t st;
    pkt_call_t c;
    double worst = 0, total;
    uint64_t t0;
    shim_t s;

    (void)state;
    env_set("DCB_QUEUE_SIZE", "16");
    start_shim(&s);
    wait_ready(fb);
    newpkt(&s, &c, buf, 1400);
    fb_set_stall(fb, 1);
    t0 = dcb_now_ns();
    for (int i = 0; i < n; i++) {
        uint64_t t1 = dcb_now_ns();
        s.t.DhcpAddressDelHook(buf, 1400, DHCP_PROB_RELEASE, 0x0100000a, 0, NULL, NULL);
        double ms = ms_since(t1);
        if (ms > worst)
            worst = ms;
    }
    total = ms_since(t0);
    /* The queue is full, yet the packet's final drop is kept (in the reserve). */
    drop(&s, &c, DHCP_DROP_PROCESSED);
    print_message("%d notifications to a stalled broker: %.1f ms, worst call %.3f ms\n", n, total,
                  worst);
    assert_true(worst < 100);
    assert_true(total < 3000);
    /* Well within the sender's write timeout, so nothing queued is lost. */
    dcb_sleep_ms(200);
    fb_set_stall(fb, 0);
    WAIT_FOR(all_accounted(fb, n), 5000);
    stats_now(fb, DCB_HOOK_ADDRESSDEL, &st);
    assert_true(st.queue_full > 0);
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.d_no_broker, 0);
    assert_int_equal(st.calls, (uint64_t)n);
    /* Every notification was either delivered or counted as dropped. */
    assert_int_equal(st.queue_full + (uint64_t)fb_count(fb, DCB__FRAME_TYPE__FT_EV_ADDRESSDEL),
                     (uint64_t)n);
    WAIT_FOR(fb_count(fb, DCB__FRAME_TYPE__FT_EV_PKTDROP) == 1, 3000);
    assert_int_equal(fb_count(fb, DCB__FRAME_TYPE__FT_EV_PKTDROP), 1);
    close_shim(&s);
    broker_stop(fb);
    free(buf);
}

static void test_handleoptions_offsets(void **state)
{
    fake_broker_t *fb = broker_start(ALL_HOOKS);
    uint8_t *buf = packet_new(300, 12);
    char host[] = "host1";
    DHCP_SERVER_OPTIONS o;
    Dcb__HandleOptionsEvent *ev;
    Dcb__ServerOptions *so;
    fb_frame_t f;
    pkt_call_t c;
    void *mem;
    shim_t s;

    (void)state;
    start_shim(&s);
    wait_ready(fb);
    newpkt(&s, &c, buf, 300);
    memset(&o, 0, sizeof(o));
    o.MessageType = buf + 242;
    o.ParameterRequestList = buf + 250;
    o.ParameterRequestListLength = 4;
    o.MachineName = host; /* outside the packet: copied into extra */
    o.MachineNameLength = 5;
    o.ClientHardwareAddressType = 1;
    o.ClientHardwareAddressLength = 6;
    o.ClientHardwareAddress = buf + 260;
    o.VendorClass = buf + 290; /* 20 bytes claimed, 10 left: clamped */
    o.VendorClassLength = 20;
    o.Server = (DHCP_IP_ADDRESS *)(buf + 298); /* 4 bytes, 2 left: not sent */
    o.DNSFlags = 3;
    o.DSDomainNameRequested = 7;
    s.t.DhcpHandleOptionsHook(buf, 300, NULL, c.ctx, &o);
    memset(host, 'X', 5); /* The hook returned: the shim must have copied it. */
    drop(&s, &c, DHCP_DROP_PROCESSED);

    WAIT_FOR(fb_count(fb, DCB__FRAME_TYPE__FT_EV_HANDLEOPTIONS) >= 1, 3000);
    assert_int_equal(fb_frame(fb, DCB__FRAME_TYPE__FT_EV_HANDLEOPTIONS, 0, &f), 0);
    ev = (Dcb__HandleOptionsEvent *)decode(&f, &mem);
    so = ev->options;
    assert_int_equal(ev->hdr->seq, 1);
    assert_int_equal(ev->packet.len, 300);
    assert_memory_equal(ev->packet.data, buf, 300);
    assert_int_equal(so->message_type, 243);
    assert_int_equal(so->subnet_mask, 0);
    assert_int_equal(so->requested_address, 0);
    assert_int_equal(so->parameter_request_list, 251);
    assert_int_equal(so->parameter_request_list_length, 4);
    assert_int_equal(so->machine_name, 301);
    assert_int_equal(so->machine_name_length, 5);
    assert_int_equal(so->client_hardware_address_type, 1);
    assert_int_equal(so->client_hardware_address, 261);
    assert_int_equal(so->client_hardware_address_length, 6);
    assert_int_equal(so->vendor_class, 291);
    assert_int_equal(so->vendor_class_length, 10);
    assert_int_equal(so->server, 0);
    assert_int_equal(so->dns_flags, 3);
    assert_int_equal(so->ds_domain_name_requested, 1);
    assert_true(so->has_extra);
    assert_int_equal(so->extra.len, 5);
    assert_memory_equal(so->extra.data, "host1", 5);
    free(mem);
    fb_frame_free(&f);
    close_shim(&s);
    broker_stop(fb);
    free(buf);
}

static void test_unsubscribed(void **state)
{
    fake_broker_t *fb = broker_start(DCB_HOOK_BIT(DCB_HOOK_NEWPKT));
    uint8_t *buf = packet_new(300, 13), hw[6] = {1, 2, 3, 4, 5, 6};
    DHCP_SERVER_OPTIONS o;
    fb_hook_stats_t st;
    pkt_call_t c;
    LPBYTE p;
    DWORD size;
    shim_t s;

    (void)state;
    memset(&o, 0, sizeof(o));
    /* As the real broker may: a Subscription ahead of the Welcome. */
    fb_set_sub_before_welcome(fb, 1);
    start_shim(&s);
    wait_ready(fb);
    for (int i = 0; i < 50; i++) {
        newpkt(&s, &c, buf, 300);
        s.t.DhcpHandleOptionsHook(buf, 300, NULL, c.ctx, &o);
        s.t.DhcpAddressOfferHook(buf, 300, DHCP_GIVE_ADDRESS_NEW, 1, 2, DHCP_CLIENT_DHCP, 3600,
                                 NULL, c.ctx);
        p = buf;
        size = 300;
        s.t.DhcpPktSendHook(&p, &size, DHCP_SEND_PACKET, 0, NULL, c.ctx);
        drop(&s, &c, DHCP_DROP_INVALID);
        /* Unsubscribed, yet it frees the record (ASan sees a leak otherwise). */
        drop(&s, &c, DHCP_DROP_PROCESSED);
        s.t.DhcpAddressDelHook(buf, 300, DHCP_PROB_DECLINE, 1, 2, NULL, NULL);
        s.t.DhcpDeleteClientHook(1, hw, 6, 0, 0);
    }
    stats_now(fb, DCB_HOOK_PKTDROP, &st);
    assert_int_equal(st.unsub, 100);
    assert_int_equal(st.calls, 100);
    stats_now(fb, DCB_HOOK_DELETECLIENT, &st);
    assert_int_equal(st.unsub, 50);
    assert_int_equal(st.waited, 0);
    assert_int_equal(fb_count(fb, DCB__FRAME_TYPE__FT_EV_NEWPKT), 50);
    assert_int_equal(fb_count(fb, DCB__FRAME_TYPE__FT_EV_PKTDROP), 0);
    assert_int_equal(fb_count(fb, DCB__FRAME_TYPE__FT_EV_PKTSEND), 0);
    assert_int_equal(fb_count(fb, DCB__FRAME_TYPE__FT_EV_HANDLEOPTIONS), 0);
    assert_int_equal(fb_count(fb, DCB__FRAME_TYPE__FT_EV_ADDRESSOFFER), 0);
    assert_int_equal(fb_count(fb, DCB__FRAME_TYPE__FT_EV_ADDRESSDEL), 0);
    assert_int_equal(fb_count(fb, DCB__FRAME_TYPE__FT_EV_DELETECLIENT), 0);
    /* The broker subscribes DeleteClient live: the next call goes out. */
    fb_push_subscription(fb, DCB_HOOK_BIT(DCB_HOOK_NEWPKT) | DCB_HOOK_BIT(DCB_HOOK_DELETECLIENT));
    for (int i = 0; i < 500 && fb_count(fb, DCB__FRAME_TYPE__FT_EV_DELETECLIENT) == 0; i++) {
        s.t.DhcpDeleteClientHook(1, hw, 6, 0, 0);
        dcb_sleep_ms(10);
    }
    assert_true(fb_count(fb, DCB__FRAME_TYPE__FT_EV_DELETECLIENT) > 0);
    assert_int_equal(fb_count(fb, DCB__FRAME_TYPE__FT_EV_ADDRESSDEL), 0);
    close_shim(&s);
    broker_stop(fb);
    free(buf);
}

static void test_unseen_packet_not_sent(void **state)
{
    fake_broker_t *fb;
    uint8_t *buf = packet_new(300, 14);
    DHCP_SERVER_OPTIONS o;
    pkt_call_t early, late;
    shim_t s;

    (void)state;
    memset(&o, 0, sizeof(o));
    start_shim(&s);
    /* No broker at NewPkt: the packet's later hooks must not reach a broker. */
    newpkt(&s, &early, buf, 300);
    fb = broker_start(ALL_HOOKS);
    wait_ready(fb);
    s.t.DhcpHandleOptionsHook(buf, 300, NULL, early.ctx, &o);
    drop(&s, &early, DHCP_DROP_PROCESSED);
    /* A packet that starts now is followed all the way. */
    newpkt(&s, &late, buf, 300);
    s.t.DhcpHandleOptionsHook(buf, 300, NULL, late.ctx, &o);
    drop(&s, &late, DHCP_DROP_PROCESSED);
    WAIT_FOR(fb_count(fb, DCB__FRAME_TYPE__FT_EV_PKTDROP) >= 1, 3000);
    dcb_sleep_ms(100);
    assert_int_equal(fb_count(fb, DCB__FRAME_TYPE__FT_EV_NEWPKT), 1);
    assert_int_equal(fb_count(fb, DCB__FRAME_TYPE__FT_EV_HANDLEOPTIONS), 1);
    assert_int_equal(fb_count(fb, DCB__FRAME_TYPE__FT_EV_PKTDROP), 1);
    close_shim(&s);
    broker_stop(fb);
    free(buf);
}

static void test_null_contexts(void **state)
{
    fake_broker_t *fb = broker_start(ALL_HOOKS);
    uint8_t *buf = packet_new(300, 15);
    LPBYTE p = buf;
    DWORD size = 300;
    BOOL process_it = TRUE;
    shim_t s;

    (void)state;
    start_shim(&s);
    wait_ready(fb);
    /* Hooks of packets the shim has no record for, and odd arguments. */
    s.t.DhcpPktDropHook(&p, &size, DHCP_DROP_PROCESSED, 0, NULL, NULL);
    s.t.DhcpPktDropHook(NULL, NULL, DHCP_DROP_INVALID, 0, NULL, NULL);
    s.t.DhcpPktSendHook(&p, &size, DHCP_SEND_PACKET, 0, NULL, NULL);
    s.t.DhcpHandleOptionsHook(buf, 300, NULL, NULL, NULL);
    s.t.DhcpAddressOfferHook(NULL, 0, DHCP_GIVE_ADDRESS_OLD, 0, 0, DHCP_CLIENT_BOOTP, 0, NULL,
                             NULL);
    s.t.DhcpDeleteClientHook(1, NULL, 0, 0, 0);
    s.t.DhcpNewPktHook(&p, &size, 0, NULL, NULL, &process_it);
    s.t.DhcpControlHook(77, NULL);
    assert_int_equal(process_it, TRUE);
    WAIT_FOR(fb_count(fb, DCB__FRAME_TYPE__FT_EV_DELETECLIENT) >= 1, 3000);
    assert_int_equal(fb_count(fb, DCB__FRAME_TYPE__FT_EV_PKTDROP), 2);
    assert_int_equal(fb_count(fb, DCB__FRAME_TYPE__FT_EV_PKTSEND), 1);
    assert_int_equal(fb_count(fb, DCB__FRAME_TYPE__FT_EV_HANDLEOPTIONS), 1);
    assert_int_equal(fb_count(fb, DCB__FRAME_TYPE__FT_EV_ADDRESSOFFER), 1);
    close_shim(&s);
    broker_stop(fb);
    free(buf);
}

/* ---- concurrency and STOP ---------------------------------------------------- */

#define THREADS 8
#define ITERS 150

typedef struct worker {
    shim_t *s;
    int applied, failed;
    dcb_thread_t t;
} worker_t;

static void worker_main(void *arg)
{
    worker_t *w = arg;
    uint8_t *buf = packet_new(400, (uint8_t)(uintptr_t)w), first = 0;
    uint8_t *reply = packet_new(300, 99);
    DHCP_SERVER_OPTIONS o;
    pkt_call_t c;
    LPBYTE p;
    DWORD size;

    memset(&o, 0, sizeof(o));
    o.MessageType = buf + 242;
    for (int i = 0; i < ITERS; i++) {
        first = buf[0];
        newpkt(w->s, &c, buf, 400);
        if (c.packet != buf && c.size == 464 && (c.packet[0] ^ first) == 0xFF)
            w->applied++;
        else
            w->failed++;
        w->s->t.DhcpHandleOptionsHook(c.packet, c.size, NULL, c.ctx, &o);
        p = reply;
        size = 300;
        w->s->t.DhcpPktSendHook(&p, &size, DHCP_SEND_PACKET, 0, NULL, c.ctx);
        if (size != 364)
            w->failed++;
        drop(w->s, &c, DHCP_DROP_PROCESSED);
        assert_guard(buf, 400);
    }
    free(buf);
    free(reply);
}

static void test_concurrent_threads(void **state)
{
    fake_broker_t *fb = broker_start(ALL_HOOKS);
    worker_t w[THREADS];
    shim_t s;
    int applied = 0, failed = 0, packets;
    uint32_t *next_seq;
    uint64_t base;
    void *mem;

    (void)state;
    env_set("DCB_NEWPKT_DEADLINE_MS", "2000");
    env_set("DCB_PKTSEND_DEADLINE_MS", "2000");
    start_shim(&s);
    wait_ready(fb);
    fb_set_reply(fb, FB_REPLY_MANGLE, NULL, 0, 64);
    for (int i = 0; i < THREADS; i++) {
        w[i].s = &s;
        w[i].applied = w[i].failed = 0;
        assert_int_equal(dcb_thread_create(&w[i].t, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        dcb_thread_join(w[i].t);
        applied += w[i].applied;
        failed += w[i].failed;
    }
    assert_int_equal(failed, 0);
    assert_int_equal(applied, THREADS * ITERS);
    packets = THREADS * ITERS;
    WAIT_FOR(fb_count(fb, DCB__FRAME_TYPE__FT_EV_PKTDROP) >= packets, 5000);
    assert_int_equal(fb_count(fb, DCB__FRAME_TYPE__FT_EV_PKTDROP), packets);

    /*
     * Per packet, the broker saw seq 0 (NewPkt), 1, 2, 3 in this order of
     * hooks. Packet ids are consecutive from the first one this shim gave.
     */
    next_seq = calloc((size_t)packets + 1, sizeof(*next_seq));
    base = UINT64_MAX;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0;; i++) {
            fb_frame_t f;
            Dcb__EventHeader *h;
            int hook;
            if (fb_frame(fb, 0, i, &f) != 0)
                break;
            hook = dcb_frame_event_hook(f.f_type);
            if (hook <= DCB_HOOK_CONTROL || hook == DCB_HOOK_DELETECLIENT) {
                fb_frame_free(&f);
                continue;
            }
            h = dcb_event_header(f.f_type, decode(&f, &mem));
            if (pass == 0) {
                if (h->packet_id < base)
                    base = h->packet_id;
            } else {
                assert_true(h->packet_id >= base && h->packet_id < base + (uint64_t)packets);
                switch (hook) {
                case DCB_HOOK_NEWPKT:
                    assert_int_equal(h->seq, 0);
                    break;
                case DCB_HOOK_HANDLEOPTIONS:
                    assert_int_equal(h->seq, 1);
                    break;
                case DCB_HOOK_PKTSEND:
                    assert_int_equal(h->seq, 2);
                    break;
                default:
                    assert_int_equal(h->seq, 3);
                }
                next_seq[h->packet_id - base] |= 1u << h->seq;
            }
            free(mem);
            fb_frame_free(&f);
        }
    }
    for (int i = 0; i < packets; i++)
        assert_int_equal(next_seq[i], 0xF);
    free(next_seq);
    close_shim(&s);
    broker_stop(fb);
}

static void test_stop_frees_everything(void **state)
{
    fake_broker_t *fb = broker_start(ALL_HOOKS);
    uint8_t *buf = packet_new(300, 16);
    /* Hidden from the leak checker, so only the shim's own freeing counts. */
    uintptr_t hidden[10];
    pkt_call_t c;
    shim_t s;

    (void)state;
    start_shim(&s);
    wait_ready(fb);
    fb_set_reply(fb, FB_REPLY_MANGLE, NULL, 0, 10000);
    for (int i = 0; i < 10; i++) {
        newpkt(&s, &c, buf, 300);
        assert_int_equal(c.size, 10300);
        hidden[i] = (uintptr_t)c.ctx ^ (uintptr_t)0x5a5a5a5a5a5a5a5aull;
        memset(&c, 0, sizeof(c));
    }
    (void)hidden;
    /* The server stops with packets in flight: no drops for them, ever. */
    s.t.DhcpControlHook(DHCP_CONTROL_STOP, NULL);
    /* After STOP every hook is inert, whatever it is handed. */
    newpkt(&s, &c, buf, 300);
    assert_null(c.ctx);
    s.t.DhcpAddressDelHook(buf, 300, DHCP_PROB_DECLINE, 1, 2, NULL, NULL);
    s.t.DhcpControlHook(DHCP_CONTROL_STOP, NULL);
    memset(&cur_shim, 0, sizeof(cur_shim));
    dcb_dl_close(s.dl);
    /* The final stats went out before the records were freed. */
    assert_int_equal(fb_packets_live(fb), 10);
    broker_stop(fb);
    free(buf);
}

/* ---- configuration source -------------------------------------------------- */

#ifdef _WIN32
#define PARAMS_KEY L"SYSTEM\\CurrentControlSet\\Services\\dcb\\Parameters"

static int config_source_write(const char *pipe, DWORD deadline_ms)
{
    wchar_t wpipe[256];
    HKEY key;
    LSTATUS rc;

    MultiByteToWideChar(CP_UTF8, 0, pipe, -1, wpipe, 256);
    rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, PARAMS_KEY, 0, NULL, 0, KEY_SET_VALUE, NULL, &key,
                         NULL);
    if (rc != ERROR_SUCCESS)
        return -1;
    RegSetValueExW(key, L"PipeName", 0, REG_SZ, (const BYTE *)wpipe,
                   (DWORD)((wcslen(wpipe) + 1) * sizeof(wchar_t)));
    RegSetValueExW(key, L"NewPktDeadlineMs", 0, REG_DWORD, (const BYTE *)&deadline_ms,
                   sizeof(deadline_ms));
    RegCloseKey(key);
    return 0;
}

static void config_source_remove(void)
{
    HKEY key;

    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, PARAMS_KEY, 0, KEY_SET_VALUE, &key) != ERROR_SUCCESS)
        return;
    RegDeleteValueW(key, L"PipeName");
    RegDeleteValueW(key, L"NewPktDeadlineMs");
    RegCloseKey(key);
    /* The keys go too when nothing else lives in them. */
    RegDeleteKeyW(HKEY_LOCAL_MACHINE, PARAMS_KEY);
    RegDeleteKeyW(HKEY_LOCAL_MACHINE, L"SYSTEM\\CurrentControlSet\\Services\\dcb");
}
#else
static char cfg_file[256];

static int config_source_write(const char *pipe, unsigned deadline_ms)
{
    FILE *f;

    snprintf(cfg_file, sizeof(cfg_file), "shim-test-%u.conf", (unsigned)dcb_getpid());
    f = fopen(cfg_file, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "# the shim's settings\n  PipeName = %s\nnewpktdeadlinems=%u\nBogus=1\n", pipe,
            deadline_ms);
    fclose(f);
    env_set("DCB_SHIM_CONFIG", cfg_file);
    return 0;
}

static void config_source_remove(void)
{
    if (cfg_file[0] != '\0')
        remove(cfg_file);
    cfg_file[0] = '\0';
}
#endif

static int teardown_config(void **state)
{
    config_source_remove();
    return teardown(state);
}

static void test_config_source(void **state)
{
    fake_broker_t *fb = broker_start(ALL_HOOKS);
    uint8_t *buf = packet_new(300, 18);
    pkt_call_t c;
    shim_t s;

    (void)state;
    if (config_source_write(pipe_name, 400) != 0) {
        print_message("cannot write the configuration source (no rights?); skipped\n");
        broker_stop(fb);
        free(buf);
        skip();
        return;
    }
    /* No environment: the endpoint and the deadline come from the source. */
    env_set("DCB_PIPE", NULL);
    env_set("DCB_NEWPKT_DEADLINE_MS", NULL);
    start_shim(&s);
    wait_ready(fb);
    fb_set_mode(fb, FB_SILENT);
    newpkt(&s, &c, buf, 300);
    /* 400 ms: neither the default (100) nor the environment's 2000 of the other tests. */
    assert_true(c.ms >= 395 && c.ms < 1500);
    drop(&s, &c, DHCP_DROP_PROCESSED);
    close_shim(&s);
    broker_stop(fb);
    free(buf);
}

static void test_peer_identity(void **state)
{
    fake_broker_t *fb = broker_start(ALL_HOOKS);
    uint8_t *buf = packet_new(300, 17);
    pkt_call_t c;
    shim_t s;

    (void)state;
    /* An account that is surely not the one serving the endpoint. */
#ifdef _WIN32
    env_set("DCB_BROKER_ACCOUNT", "S-1-5-32-546"); /* BUILTIN\Guests */
#else
    env_set("DCB_BROKER_ACCOUNT", "4242");
#endif
    start_shim(&s);
    dcb_sleep_ms(300);
    assert_int_equal(fb_hellos(fb, REQ) + fb_hellos(fb, NOTE), 0);
    newpkt(&s, &c, buf, 300);
    assert_true(c.ms < 100);
    assert_int_equal(c.process_it, TRUE);
    drop(&s, &c, DHCP_DROP_PROCESSED);
    close_shim(&s);
    assert_true(log_contains("refusing broker"));

    /* "*" turns the check off; the default accepts our own account. */
    env_set("DCB_BROKER_ACCOUNT", "*");
    start_shim(&s);
    wait_ready(fb);
    close_shim(&s);
    broker_stop(fb);
    free(buf);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_entry_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config_still_starts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_broker_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decision_drop_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_growth_replaces_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_never_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handleoptions_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsubscribed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unseen_packet_not_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_contexts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_frees_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_source, setup, teardown_config),
    };

    if (argc > 0)
        shim_exe_dir = shim_argv0_dir(argv[0]);
    /* One test by name: test_shim NAME (cmocka's own filter). */
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
