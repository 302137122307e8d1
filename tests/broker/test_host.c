/*
 * test_host.c — `dcb-broker --host` driven directly, as the supervisor
 * drives it: spawned through libuv with hostproc.c's stdio layout (0 none,
 * 1 and 2 pipes, 3 the channel), HostLoad first, then event frames built
 * the way host_send_event builds them. Loads the calllog test plugin, which
 * writes one line per call to $DCB_CALLLOG_OUT, so the order in which the
 * plugin saw the calls can be read back.
 *
 * What only a direct driver can pin down:
 *   - the order among frames that arrive in one write (a frame a server
 *     thread waits for goes before the packet notifications buffered ahead
 *     of it; nothing moves past a control code);
 *   - one HostResult per request, with its request id and hook, and
 *     nothing else on the channel (batches, one thread or four);
 *   - a protocol violation from the broker's side: exit status 3, and the
 *     plugin never sees the frame;
 *   - Ping answered by a Pong with the same nonce while the host is idle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tb.h"

#ifdef _WIN32
#define TH_WINE 1
#else
#define TH_WINE 0
#endif
#ifdef TB_SANITIZE
#define TH_SLOW 1
#else
#define TH_SLOW TH_WINE
#endif
#define READY_MS (TH_SLOW ? 30000 : 10000)
#define REPLY_MS (TH_SLOW ? 30000 : 10000)
#define EXIT_MS (TH_SLOW ? 30000 : 10000)
/* After the Ping fence: how long anything else may still turn up. */
#define QUIET_MS 150

#define TH_MAX_SENT 512
#define TH_MAX_RECS 1024
#define TH_OUT_MAX 32768
#define TH_PKT_LEN 300u
#define TH_DEADLINE_US 100000u /* the default timeout_ms (100) as the broker sends it */
#define TH_ALL_HOOKS ((1u << DCB_HOOK_COUNT) - 1u)

/* A request sent (an event, or a Ping), and how often it was answered. */
typedef struct th_sent {
    uint64_t s_id; /* request id, or the Ping's nonce */
    int s_hook;    /* -1 for a Ping */
    int s_answers;
} th_sent_t;

/* A frame received from the host (the fields the checks need). */
typedef struct th_rec {
    uint8_t r_type;
    uint64_t r_id; /* HostResult: request id; Pong: nonce */
    uint32_t r_hook;
    int r_error;
    int r_has_process_it;
    int r_process_it;
    int r_has_ctx;
    uint64_t r_ctx;
    int r_has_packet;
} th_rec_t;

typedef struct th_host {
    uv_loop_t h_loop;
    uv_process_t h_proc;
    uv_pipe_t h_chan;
    uv_pipe_t h_out[2];
    uv_timer_t h_timer;
    int h_proc_open, h_chan_open, h_out_open[2], h_timer_open;
    int h_exited;
    int64_t h_status;
    int h_signal;
    int h_chan_eof, h_out_eof[2];
    int h_timed_out;
    int h_writes, h_write_rc;
    /* The channel from the host. */
    uint8_t *h_rbuf;
    size_t h_rlen, h_rcap;
    dcb_limits_t h_lim;
    dcb_arena_t h_arena;
    void *h_arena_mem;
    int h_bad_frame;
    th_rec_t h_recs[TH_MAX_RECS];
    size_t h_nrecs;
    int h_loaded_ok;
    uint32_t h_loaded_hooks;
    char h_loaded_error[256];
    /* Its stdout and stderr, for the checks and for diagnostics. */
    char h_text[2][TH_OUT_MAX + 1];
    size_t h_text_len[2];
    /* What was sent. */
    th_sent_t h_sent[TH_MAX_SENT];
    size_t h_nsent;
    uint64_t h_next_id;
    char h_calllog[256];
} th_host_t;

/* The host of the running test, cleaned up by teardown when an assertion ends it early. */
static th_host_t *current;

/* ---- the loop ----------------------------------------------------------------- */

static void timer_cb(uv_timer_t *t)
{
    th_host_t *h = t->data;

    h->h_timed_out = 1;
}

/* Runs the loop until done(h, arg) holds or ms pass; returns done(h, arg). */
static int run_until(th_host_t *h, int (*done)(th_host_t *, const void *), const void *arg, int ms)
{
    h->h_timed_out = 0;
    uv_timer_start(&h->h_timer, timer_cb, (uint64_t)ms, 0);
    while (!done(h, arg) && !h->h_timed_out)
        uv_run(&h->h_loop, UV_RUN_ONCE);
    uv_timer_stop(&h->h_timer);
    return done(h, arg);
}

static int never(th_host_t *h, const void *arg)
{
    (void)h;
    (void)arg;
    return 0;
}

/* Keeps the loop turning for ms, collecting whatever arrives. */
static void run_for(th_host_t *h, int ms)
{
    run_until(h, never, NULL, ms);
}

/* ---- the host's output -------------------------------------------------------- */

static void dump(th_host_t *h)
{
    for (int i = 0; i < 2; i++)
        fprintf(stderr, "---- host %s ----\n%s---- end ----\n", i == 0 ? "stdout" : "stderr",
                h->h_text[i]);
}

static void out_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    static char chunk[4096];

    (void)handle;
    (void)suggested;
    buf->base = chunk;
    buf->len = sizeof(chunk);
}

static void out_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    th_host_t *h = s->data;
    int i = s == (uv_stream_t *)&h->h_out[0] ? 0 : 1;
    size_t n;

    if (nread < 0) {
        h->h_out_eof[i] = 1;
        uv_read_stop(s);
        return;
    }
    n = (size_t)nread;
    if (n > TH_OUT_MAX - h->h_text_len[i])
        n = TH_OUT_MAX - h->h_text_len[i];
    memcpy(h->h_text[i] + h->h_text_len[i], buf->base, n);
    h->h_text_len[i] += n;
    h->h_text[i][h->h_text_len[i]] = '\0';
}

/* ---- the channel -------------------------------------------------------------- */

static void chan_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    th_host_t *h = handle->data;

    (void)suggested;
    if (h->h_rcap - h->h_rlen < 65536) {
        size_t cap = h->h_rcap * 2 + 65536;
        uint8_t *nb = realloc(h->h_rbuf, cap);
        if (nb == NULL) {
            buf->base = NULL;
            buf->len = 0;
            return;
        }
        h->h_rbuf = nb;
        h->h_rcap = cap;
    }
    buf->base = (char *)h->h_rbuf + h->h_rlen;
    buf->len = h->h_rcap - h->h_rlen;
}

static void record(th_host_t *h, const dcb_msg_t *m)
{
    th_rec_t *r;

    if (h->h_nrecs == TH_MAX_RECS) {
        h->h_bad_frame = 1;
        return;
    }
    r = &h->h_recs[h->h_nrecs++];
    memset(r, 0, sizeof(*r));
    r->r_type = m->type;
    switch (m->type) {
    case DCB__FRAME_TYPE__FT_HOST_LOADED: {
        const Dcb__HostLoaded *l = (const Dcb__HostLoaded *)m->msg;
        h->h_loaded_ok = l->ok;
        h->h_loaded_hooks = l->hooks;
        snprintf(h->h_loaded_error, sizeof(h->h_loaded_error), "%s", l->error ? l->error : "");
        break;
    }
    case DCB__FRAME_TYPE__FT_HOST_RESULT: {
        const Dcb__HostResult *x = (const Dcb__HostResult *)m->msg;
        r->r_id = x->request_id;
        r->r_hook = x->hook;
        r->r_error = x->error != NULL;
        r->r_has_process_it = x->has_process_it;
        r->r_process_it = x->process_it;
        r->r_has_ctx = x->has_plugin_ctx;
        r->r_ctx = x->plugin_ctx;
        r->r_has_packet = x->has_packet;
        break;
    }
    case DCB__FRAME_TYPE__FT_PING:
    case DCB__FRAME_TYPE__FT_PONG:
        r->r_id = ((const Dcb__Ping *)m->msg)->nonce;
        break;
    default:
        break;
    }
}

static void chan_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    th_host_t *h = s->data;
    size_t pos = 0;

    (void)buf;
    if (nread < 0) {
        h->h_chan_eof = 1;
        uv_read_stop(s);
        return;
    }
    h->h_rlen += (size_t)nread;
    while (!h->h_bad_frame) {
        dcb_frame_hdr_t hdr;
        dcb_msg_t m;
        size_t len;
        int rc = dcb_frame_header(h->h_rbuf + pos, h->h_rlen - pos, &h->h_lim, &hdr);

        if (rc == DCB_E_TRUNCATED)
            break;
        if (rc != 0) {
            h->h_bad_frame = 1;
            break;
        }
        len = DCB_FRAME_HEADER_SIZE + (size_t)hdr.length;
        if (h->h_rlen - pos < len)
            break;
        if (dcb_frame_decode(h->h_rbuf + pos, len, &h->h_lim, &h->h_arena, &m) != 0) {
            h->h_bad_frame = 1;
            break;
        }
        record(h, &m);
        pos += len;
    }
    memmove(h->h_rbuf, h->h_rbuf + pos, h->h_rlen - pos);
    h->h_rlen -= pos;
}

/* Frames for one write. */
typedef struct th_batch {
    uint8_t *b_buf;
    size_t b_len, b_cap;
} th_batch_t;

static void batch_add(th_batch_t *b, uint8_t type, const ProtobufCMessage *msg)
{
    size_t need = dcb_frame_size(msg);
    int n;

    if (b->b_cap - b->b_len < need) {
        size_t cap = (b->b_cap + need) * 2;
        uint8_t *nb = realloc(b->b_buf, cap);
        assert_non_null(nb);
        b->b_buf = nb;
        b->b_cap = cap;
    }
    n = dcb_frame_encode(type, msg, b->b_buf + b->b_len, b->b_cap - b->b_len);
    assert_true(n > 0);
    b->b_len += (size_t)n;
}

typedef struct th_write {
    uv_write_t w_req;
    th_host_t *w_host;
    uint8_t w_data[];
} th_write_t;

static void write_cb(uv_write_t *req, int status)
{
    th_write_t *w = (th_write_t *)req;

    w->w_host->h_writes--;
    if (status != 0)
        w->w_host->h_write_rc = status;
    free(w);
}

static int writes_done(th_host_t *h, const void *arg)
{
    (void)arg;
    return h->h_writes == 0;
}

/* Sends the batch in one uv_write, waits until it is written, and empties it. */
static void send_batch(th_host_t *h, th_batch_t *b)
{
    th_write_t *w = malloc(sizeof(*w) + b->b_len);
    uv_buf_t buf;
    int rc;

    assert_non_null(w);
    w->w_host = h;
    memcpy(w->w_data, b->b_buf, b->b_len);
    buf = uv_buf_init((char *)w->w_data, (unsigned)b->b_len);
    rc = uv_write(&w->w_req, (uv_stream_t *)&h->h_chan, &buf, 1, write_cb);
    if (rc != 0) {
        free(w);
        fail_msg("uv_write: %s", uv_strerror(rc));
    }
    h->h_writes++;
    b->b_len = 0;
    if (!run_until(h, writes_done, NULL, REPLY_MS))
        fail_msg("the host did not take the frames written to it");
    assert_int_equal(h->h_write_rc, 0);
}

static void batch_free(th_batch_t *b)
{
    free(b->b_buf);
    memset(b, 0, sizeof(*b));
}

/* ---- events, as host_send_event sends them ------------------------------------ */

static uint64_t note_sent(th_host_t *h, int hook)
{
    th_sent_t *s;

    assert_true(h->h_nsent < TH_MAX_SENT);
    s = &h->h_sent[h->h_nsent++];
    s->s_id = ++h->h_next_id;
    s->s_hook = hook;
    s->s_answers = 0;
    return s->s_id;
}

/* Packet n's client address, 10.0.x.y, in network order (as the shim passes it). */
static uint32_t pkt_ip(uint32_t n)
{
    uint8_t b[4] = {10, 0, (uint8_t)(n >> 8), (uint8_t)n};
    uint32_t ip;

    memcpy(&ip, b, 4);
    return ip;
}

/* A DHCPDISCOVER from a client of its own (xid and chaddr carry n). */
static void pkt_fill(uint8_t *p, uint32_t n)
{
    memset(p, 0, TH_PKT_LEN);
    p[0] = 1; /* BOOTREQUEST */
    p[1] = 1; /* Ethernet */
    p[2] = 6;
    p[4] = (uint8_t)(n >> 24);
    p[5] = (uint8_t)(n >> 16);
    p[6] = (uint8_t)(n >> 8);
    p[7] = (uint8_t)n;
    p[28] = 0x02;
    p[32] = (uint8_t)(n >> 8);
    p[33] = (uint8_t)n;
    p[236] = 0x63;
    p[237] = 0x82;
    p[238] = 0x53;
    p[239] = 0x63;
    p[240] = 53; /* message type: DISCOVER */
    p[241] = 1;
    p[242] = 1;
    p[243] = 255;
}

static void header(Dcb__EventHeader *hdr, uint64_t packet, uint32_t seq, uint64_t rid, uint64_t ctx)
{
    hdr->packet_id = packet;
    hdr->seq = seq;
    hdr->deadline_us = TH_DEADLINE_US;
    hdr->has_request_id = 1;
    hdr->request_id = rid;
    hdr->has_plugin_ctx = 1;
    hdr->plugin_ctx = ctx;
    if (packet != 0) {
        hdr->has_reserved = 1;
        hdr->reserved = 0xABCD0000u + packet;
    }
}

/*
 * NewPkt of packet n (request id returned). The broker's first call of a
 * packet carries plugin_ctx 0.
 */
static uint64_t add_newpkt(th_host_t *h, th_batch_t *b, uint32_t n)
{
    Dcb__EventHeader hdr = DCB__EVENT_HEADER__INIT;
    Dcb__NewPktEvent e = DCB__NEW_PKT_EVENT__INIT;
    uint8_t pkt[TH_PKT_LEN];
    uint64_t rid = note_sent(h, DCB_HOOK_NEWPKT);

    pkt_fill(pkt, n);
    header(&hdr, n, 0, rid, 0);
    e.hdr = &hdr;
    e.packet.data = pkt;
    e.packet.len = sizeof(pkt);
    e.ip_address = pkt_ip(n);
    batch_add(b, DCB__FRAME_TYPE__FT_EV_NEWPKT, &e.base);
    return rid;
}

/* The PROCESSED drop that ends packet n; its PktContext (what calllog logs as id) is ctx. */
static uint64_t add_pktdrop(th_host_t *h, th_batch_t *b, uint32_t n, uint64_t ctx)
{
    Dcb__EventHeader hdr = DCB__EVENT_HEADER__INIT;
    Dcb__PktDropEvent e = DCB__PKT_DROP_EVENT__INIT;
    uint8_t pkt[TH_PKT_LEN];
    uint64_t rid = note_sent(h, DCB_HOOK_PKTDROP);

    pkt_fill(pkt, n);
    header(&hdr, n, 1, rid, ctx);
    e.hdr = &hdr;
    e.packet.data = pkt;
    e.packet.len = sizeof(pkt);
    e.control_code = DHCP_DROP_PROCESSED;
    e.ip_address = pkt_ip(n);
    batch_add(b, DCB__FRAME_TYPE__FT_EV_PKTDROP, &e.base);
    return rid;
}

static uint64_t add_control(th_host_t *h, th_batch_t *b, uint32_t code)
{
    Dcb__EventHeader hdr = DCB__EVENT_HEADER__INIT;
    Dcb__ControlEvent e = DCB__CONTROL_EVENT__INIT;
    uint64_t rid = note_sent(h, DCB_HOOK_CONTROL);

    header(&hdr, 0, 0, rid, 0);
    e.hdr = &hdr;
    e.control_code = code;
    batch_add(b, DCB__FRAME_TYPE__FT_EV_CONTROL, &e.base);
    return rid;
}

static void add_ping(th_host_t *h, th_batch_t *b, uint64_t nonce)
{
    Dcb__Ping ping = DCB__PING__INIT;
    th_sent_t *s;

    assert_true(h->h_nsent < TH_MAX_SENT);
    s = &h->h_sent[h->h_nsent++];
    s->s_id = nonce;
    s->s_hook = -1;
    s->s_answers = 0;
    ping.nonce = nonce;
    batch_add(b, DCB__FRAME_TYPE__FT_PING, &ping.base);
}

/* ---- what came back ----------------------------------------------------------- */

static size_t count_type(th_host_t *h, uint8_t type)
{
    size_t n = 0;

    for (size_t i = 0; i < h->h_nrecs; i++)
        n += h->h_recs[i].r_type == type;
    return n;
}

static int results_at_least(th_host_t *h, const void *arg)
{
    return h->h_bad_frame || h->h_chan_eof ||
           count_type(h, DCB__FRAME_TYPE__FT_HOST_RESULT) >= *(const size_t *)arg;
}

static int pong_seen(th_host_t *h, const void *arg)
{
    uint64_t nonce = *(const uint64_t *)arg;

    if (h->h_bad_frame || h->h_chan_eof)
        return 1;
    for (size_t i = 0; i < h->h_nrecs; i++)
        if (h->h_recs[i].r_type == DCB__FRAME_TYPE__FT_PONG && h->h_recs[i].r_id == nonce)
            return 1;
    return 0;
}

static size_t requests_sent(th_host_t *h)
{
    size_t n = 0;

    for (size_t i = 0; i < h->h_nsent; i++)
        n += h->h_sent[i].s_hook >= 0;
    return n;
}

/* Waits until there is a HostResult for every event sent so far. */
static void wait_results(th_host_t *h)
{
    size_t want = requests_sent(h);

    if (!run_until(h, results_at_least, &want, REPLY_MS) || h->h_bad_frame || h->h_chan_eof) {
        dump(h);
        fail_msg("%u of %u results (bad frame %d, channel closed %d)",
                 (unsigned)count_type(h, DCB__FRAME_TYPE__FT_HOST_RESULT), (unsigned)want,
                 h->h_bad_frame, h->h_chan_eof);
    }
}

/* Pings and waits for the Pong: whatever the host wrote before it has arrived. */
static void fence(th_host_t *h, uint64_t nonce)
{
    th_batch_t b = {0};

    add_ping(h, &b, nonce);
    send_batch(h, &b);
    batch_free(&b);
    if (!run_until(h, pong_seen, &nonce, REPLY_MS) || h->h_bad_frame || h->h_chan_eof) {
        dump(h);
        fail_msg("no Pong for nonce %llx", (unsigned long long)nonce);
    }
}

static th_sent_t *find_sent(th_host_t *h, uint64_t id, int ping)
{
    for (size_t i = 0; i < h->h_nsent; i++)
        if (h->h_sent[i].s_id == id && (h->h_sent[i].s_hook < 0) == ping)
            return &h->h_sent[i];
    return NULL;
}

/*
 * Every event sent got exactly one HostResult with its request id and its
 * hook, every Ping exactly one Pong with its nonce, and nothing else came:
 * one HostLoaded first, no other frame type, nothing that failed to decode.
 * NewPkt results carry calllog's answer: process it, and the PktContext
 * calllog numbers its NewPkt calls with (1, 2, ...).
 */
static void check_answers(th_host_t *h)
{
    size_t newpkts = 0;

    for (size_t i = 0; i < h->h_nsent; i++)
        newpkts += h->h_sent[i].s_hook == DCB_HOOK_NEWPKT;
    assert_false(h->h_bad_frame);
    assert_true(h->h_nrecs > 0);
    assert_int_equal(h->h_recs[0].r_type, DCB__FRAME_TYPE__FT_HOST_LOADED);
    for (size_t i = 1; i < h->h_nrecs; i++) {
        const th_rec_t *r = &h->h_recs[i];
        th_sent_t *s;

        if (r->r_type == DCB__FRAME_TYPE__FT_PONG) {
            s = find_sent(h, r->r_id, 1);
            if (s == NULL)
                fail_msg("a Pong for nonce %llx, never sent", (unsigned long long)r->r_id);
            s->s_answers++;
            continue;
        }
        if (r->r_type != DCB__FRAME_TYPE__FT_HOST_RESULT)
            fail_msg("frame %u from the host has type %u", (unsigned)i, r->r_type);
        s = find_sent(h, r->r_id, 0);
        if (s == NULL)
            fail_msg("a result for request %llu, never sent", (unsigned long long)r->r_id);
        s->s_answers++;
        if (r->r_hook != (uint32_t)s->s_hook)
            fail_msg("request %llu: result for hook %u, sent %s", (unsigned long long)r->r_id,
                     r->r_hook, dcb_hook_name(s->s_hook));
        if (r->r_error)
            fail_msg("request %llu: the result carries an error", (unsigned long long)r->r_id);
        assert_false(r->r_has_packet);
        if (s->s_hook == DCB_HOOK_NEWPKT) {
            assert_true(r->r_has_process_it && r->r_process_it);
            assert_true(r->r_has_ctx);
            assert_in_range(r->r_ctx, 1, newpkts);
        } else {
            assert_false(r->r_has_process_it);
        }
    }
    for (size_t i = 0; i < h->h_nsent; i++)
        if (h->h_sent[i].s_answers != 1)
            fail_msg("%s %llu answered %d times",
                     h->h_sent[i].s_hook < 0 ? "Ping" : dcb_hook_name(h->h_sent[i].s_hook),
                     (unsigned long long)h->h_sent[i].s_id, h->h_sent[i].s_answers);
}

/* The fence, a quiet while for stragglers, then the exact check. */
static void check_all_answered(th_host_t *h, uint64_t nonce)
{
    fence(h, nonce);
    run_for(h, QUIET_MS);
    check_answers(h);
}

/* ---- calllog ------------------------------------------------------------------- */

#define PREAMBLE_ENTRY "calllog entry version=0 chain=0\n"
#define PREAMBLE_START "control code=1\n"

/*
 * The calls after the entry point and START (which the host makes at load),
 * freed by the caller.
 */
static char *calls(th_host_t *h)
{
    char *text = tb_read_file(h->h_calllog);
    size_t skip = strlen(PREAMBLE_ENTRY PREAMBLE_START);

    if (text == NULL)
        fail_msg("no %s", h->h_calllog);
    if (strncmp(text, PREAMBLE_ENTRY PREAMBLE_START, skip) != 0) {
        fprintf(stderr, "---- %s ----\n%s---- end ----\n", h->h_calllog, text);
        free(text);
        fail_msg("calllog does not start with the entry point and START");
    }
    memmove(text, text + skip, strlen(text + skip) + 1);
    return text;
}

/* The plugin saw exactly these calls, in this order. */
static void expect_calls(th_host_t *h, const char *want)
{
    char *got = calls(h);

    if (strcmp(got, want) != 0) {
        fprintf(stderr, "---- calls expected ----\n%s---- calls seen ----\n%s---- end ----\n", want,
                got);
        free(got);
        fail_msg("the plugin saw other calls, or another order");
    }
    free(got);
}

/* Occurrences of line (with its newline) in text. */
static int count_line(const char *text, const char *line)
{
    size_t len = strlen(line);
    int n = 0;

    for (const char *at = text; (at = strstr(at, line)) != NULL; at += len)
        if (at == text || at[-1] == '\n')
            n++;
    return n;
}

static int count_lines(const char *text)
{
    int n = 0;

    for (; *text != '\0'; text++)
        n += *text == '\n';
    return n;
}

/* ---- the host process ---------------------------------------------------------- */

static void exit_cb(uv_process_t *proc, int64_t status, int sig)
{
    th_host_t *h = proc->data;

    h->h_exited = 1;
    h->h_status = status;
    h->h_signal = sig;
}

static int name_is(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char x = *a >= 'a' && *a <= 'z' ? (char)(*a - 32) : *a;
        char y = *b >= 'a' && *b <= 'z' ? (char)(*b - 32) : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

static char *dup_pair(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 2;
    char *s = malloc(n);

    if (s != NULL)
        snprintf(s, n, "%s=%s", name, value);
    return s;
}

/*
 * This process's environment (PATH, SystemRoot and the rest, which a
 * Windows program needs) with DCB_CALLLOG_OUT set to the test's file and
 * the calllog settings that would change its answers removed.
 */
static char **host_env(const char *calllog)
{
    uv_env_item_t *items = NULL;
    int count = 0, k = 0;
    char **env;

    if (uv_os_environ(&items, &count) != 0)
        return NULL;
    env = calloc((size_t)count + 2, sizeof(*env));
    if (env != NULL) {
        for (int i = 0; i < count; i++) {
            if (name_is(items[i].name, "DCB_CALLLOG_OUT") ||
                name_is(items[i].name, "DCB_CALLLOG_DROP_EVERY"))
                continue;
            env[k++] = dup_pair(items[i].name, items[i].value);
        }
        env[k++] = dup_pair("DCB_CALLLOG_OUT", calllog);
    }
    uv_os_free_environ(items, count);
    return env;
}

static void env_free(char **env)
{
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        free(env[i]);
    free(env);
}

static int loaded(th_host_t *h, const void *arg)
{
    (void)arg;
    return h->h_nrecs > 0 || h->h_bad_frame || h->h_chan_eof || h->h_exited;
}

/*
 * Spawns `dcb-broker --host` as hostproc_spawn does, sends HostLoad for
 * calllog (threads as given, START at load) and waits for HostLoaded.
 */
/* --broker-pid for the next host started, or NULL. */
static const char *next_broker_pid;

/* Starts the host with its channel and output pipes; nothing sent yet. */
static void spawn_host(th_host_t *h, const char *test)
{
    uv_process_options_t opt;
    uv_stdio_container_t stdio[4];
    char exe[1024];
    char *args[10];
    char **env;
    int rc;

    memset(h, 0, sizeof(*h));
    current = h;
    h->h_next_id = 1000; /* request ids of their own, never calllog's PktContext values */
    h->h_lim.max_frame = DCB_MAX_FRAME_EVENT;
    h->h_lim.max_packet = DCB_MAX_FRAME_EVENT - 1024u;
    h->h_arena_mem = malloc(dcb_arena_size_for(DCB_MAX_FRAME_EVENT));
    assert_non_null(h->h_arena_mem);
    dcb_arena_init(&h->h_arena, h->h_arena_mem, dcb_arena_size_for(DCB_MAX_FRAME_EVENT));
    snprintf(h->h_calllog, sizeof(h->h_calllog), "th-%s-%u.calllog", test, dcb_getpid());
    remove(h->h_calllog);
    tb_bin("dcb-broker", exe, sizeof(exe));

    assert_int_equal(uv_loop_init(&h->h_loop), 0);
    uv_timer_init(&h->h_loop, &h->h_timer);
    h->h_timer.data = h;
    h->h_timer_open = 1;
    uv_pipe_init(&h->h_loop, &h->h_chan, 0);
    h->h_chan.data = h;
    h->h_chan_open = 1;
    for (int i = 0; i < 2; i++) {
        uv_pipe_init(&h->h_loop, &h->h_out[i], 0);
        h->h_out[i].data = h;
        h->h_out_open[i] = 1;
    }

    args[0] = exe;
    args[1] = "--host";
    args[2] = "--plugin-name";
    args[3] = "calllog";
    args[4] = "--memory-mb";
    args[5] = "256";
    args[6] = NULL;
    if (next_broker_pid != NULL) {
        args[6] = "--broker-pid";
        args[7] = (char *)(uintptr_t)next_broker_pid;
        args[8] = NULL;
    }
    env = host_env(h->h_calllog);
    assert_non_null(env);
    memset(&opt, 0, sizeof(opt));
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&h->h_out[0];
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&h->h_out[1];
    stdio[3].flags = UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE | UV_OVERLAPPED_PIPE;
    stdio[3].data.stream = (uv_stream_t *)&h->h_chan;
    opt.exit_cb = exit_cb;
    opt.file = exe;
    opt.args = args;
    opt.env = env;
    opt.stdio = stdio;
    opt.stdio_count = 4;
    opt.flags = UV_PROCESS_WINDOWS_HIDE;
    h->h_proc.data = h;
    rc = uv_spawn(&h->h_loop, &h->h_proc, &opt);
    env_free(env);
    h->h_proc_open = 1; /* closed even when the spawn failed */
    if (rc != 0) {
        h->h_exited = 1;
        fail_msg("cannot start %s: %s", exe, uv_strerror(rc));
    }
    for (int i = 0; i < 2; i++)
        uv_read_start((uv_stream_t *)&h->h_out[i], out_alloc, out_read);
    uv_read_start((uv_stream_t *)&h->h_chan, chan_alloc, chan_read);
}

/* HostLoad for calllog; waits for a good HostLoaded. */
static void load_host(th_host_t *h, uint32_t threads)
{
    Dcb__HostLoad load = DCB__HOST_LOAD__INIT;
    th_batch_t b = {0};
    char dll[1024];

    tb_plugin("calllog", dll, sizeof(dll));
    load.plugin = "calllog";
    load.dll_path = dll;
    load.generation = 1;
    load.has_threads = 1;
    load.threads = threads;
    load.has_max_packet_size = 1;
    load.max_packet_size = DCB_MAX_PACKET_DEFAULT;
    load.has_send_start = 1;
    load.send_start = 1;
    batch_add(&b, DCB__FRAME_TYPE__FT_HOST_LOAD, &load.base);
    send_batch(h, &b);
    batch_free(&b);
    if (!run_until(h, loaded, NULL, READY_MS) || h->h_nrecs == 0) {
        dump(h);
        fail_msg("no HostLoaded (exited %d, status %lld)", h->h_exited, (long long)h->h_status);
    }
    assert_int_equal(h->h_recs[0].r_type, DCB__FRAME_TYPE__FT_HOST_LOADED);
    if (!h->h_loaded_ok) {
        dump(h);
        fail_msg("load failed: %s", h->h_loaded_error);
    }
    assert_int_equal(h->h_loaded_hooks, TH_ALL_HOOKS);
}

static void start(th_host_t *h, const char *test, uint32_t threads)
{
    spawn_host(h, test);
    load_host(h, threads);
}

static int gone(th_host_t *h, const void *arg)
{
    (void)arg;
    return h->h_exited && (h->h_chan_eof || !h->h_chan_open) && h->h_out_eof[0] && h->h_out_eof[1];
}

static void close_handle(uv_handle_t *handle, int *open)
{
    if (*open && !uv_is_closing(handle))
        uv_close(handle, NULL);
    *open = 0;
}

/* Kills a host that is still running, closes every handle and the loop. */
static void cleanup(th_host_t *h)
{
    if (h->h_proc_open && !h->h_exited) {
        uv_process_kill(&h->h_proc, SIGKILL);
        run_until(h, gone, NULL, EXIT_MS);
    }
    close_handle((uv_handle_t *)&h->h_proc, &h->h_proc_open);
    close_handle((uv_handle_t *)&h->h_chan, &h->h_chan_open);
    for (int i = 0; i < 2; i++)
        close_handle((uv_handle_t *)&h->h_out[i], &h->h_out_open[i]);
    close_handle((uv_handle_t *)&h->h_timer, &h->h_timer_open);
    uv_run(&h->h_loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&h->h_loop) != 0)
        fprintf(stderr, "th: the loop still has handles\n");
    free(h->h_rbuf);
    free(h->h_arena_mem);
    h->h_rbuf = NULL;
    h->h_arena_mem = NULL;
    if (current == h)
        current = NULL;
}

/* Waits for the host to exit on its own; returns its exit status. */
static int64_t wait_exit(th_host_t *h)
{
    if (!run_until(h, gone, NULL, EXIT_MS)) {
        dump(h);
        fail_msg("the host did not exit (exited %d, channel closed %d)", h->h_exited,
                 h->h_chan_eof);
    }
    if (h->h_signal != 0) {
        dump(h);
        fail_msg("the host died of signal %d", h->h_signal);
    }
    return h->h_status;
}

/*
 * The end of a test that went well: the broker closes the channel, the host
 * stops the plugin (STOP is its last call) and exits 0.
 */
static void finish(th_host_t *h)
{
    char *got;
    const char *tail = "control code=2\n";
    size_t len;
    int64_t status;

    close_handle((uv_handle_t *)&h->h_chan, &h->h_chan_open);
    status = wait_exit(h);
    if (status != 0) {
        dump(h);
        fail_msg("the host exited with status %lld", (long long)status);
    }
    got = calls(h);
    len = strlen(got);
    if (len < strlen(tail) || strcmp(got + len - strlen(tail), tail) != 0) {
        fprintf(stderr, "---- calls ----\n%s---- end ----\n", got);
        free(got);
        fail_msg("STOP was not the last call");
    }
    free(got);
    remove(h->h_calllog);
    cleanup(h);
}

static int teardown(void **state)
{
    (void)state;
    if (current != NULL)
        cleanup(current);
    return 0;
}

/* ---- the tests ------------------------------------------------------------------ */

/*
 * One thread, three frames in one write: the NewPkt a server thread waits
 * for goes before the PktDrop notifications buffered ahead of it (they are
 * other packets), which then keep their own order.
 */
static void test_order_newpkt_first(void **state)
{
    static th_host_t h;
    th_batch_t b = {0};

    (void)state;
    start(&h, "newpktfirst", 1);
    add_pktdrop(&h, &b, 1, 101);
    add_pktdrop(&h, &b, 2, 102);
    add_newpkt(&h, &b, 3);
    send_batch(&h, &b);
    batch_free(&b);
    wait_results(&h);
    expect_calls(&h, "newpkt id=1 size=300 ip=10.0.0.3\n"
                     "pktdrop id=101 code=0xb ip=10.0.0.1\n"
                     "pktdrop id=102 code=0xb ip=10.0.0.2\n");
    check_all_answered(&h, 0xF00D0001u);
    finish(&h);
}

/*
 * One thread, [PktDrop, Control(PAUSE), NewPkt] in one write: nothing moves
 * past a control code, so the plugin sees them as they were sent.
 */
static void test_order_control_barrier(void **state)
{
    static th_host_t h;
    th_batch_t b = {0};

    (void)state;
    start(&h, "ctlbarrier", 1);
    add_pktdrop(&h, &b, 4, 104);
    add_control(&h, &b, DHCP_CONTROL_PAUSE);
    add_newpkt(&h, &b, 5);
    send_batch(&h, &b);
    batch_free(&b);
    wait_results(&h);
    expect_calls(&h, "pktdrop id=104 code=0xb ip=10.0.0.4\n"
                     "control code=3\n"
                     "newpkt id=1 size=300 ip=10.0.0.5\n");
    check_all_answered(&h, 0xF00D0002u);
    finish(&h);
}

#define BATCH 200u

/* BATCH PktDrops of BATCH packets in one write: one result each, one call each. */
static void batch(const char *test, uint32_t threads)
{
    static th_host_t h;
    th_batch_t b = {0};
    char line[96], *got;
    int lines;

    start(&h, test, threads);
    for (uint32_t n = 1; n <= BATCH; n++)
        add_pktdrop(&h, &b, n, 1000u + n);
    send_batch(&h, &b);
    batch_free(&b);
    wait_results(&h);
    check_all_answered(&h, 0xF00D0100u + threads);
    assert_int_equal(count_type(&h, DCB__FRAME_TYPE__FT_HOST_RESULT), BATCH);
    got = calls(&h);
    lines = count_lines(got);
    if (lines != (int)BATCH) {
        free(got);
        fail_msg("%d calls for %u PktDrops", lines, BATCH);
    }
    for (uint32_t n = 1; n <= BATCH; n++) {
        int seen;
        snprintf(line, sizeof(line), "pktdrop id=%u code=0xb ip=10.0.%u.%u\n", 1000u + n, n >> 8,
                 n & 255u);
        seen = count_line(got, line);
        if (seen != 1) {
            free(got);
            fail_msg("packet %u: %d calls", n, seen);
        }
    }
    free(got);
    finish(&h);
}

static void test_batch_one_thread(void **state)
{
    (void)state;
    batch("batch1", 1);
}

static void test_batch_four_threads(void **state)
{
    (void)state;
    batch("batch4", 4);
}

/*
 * After a good event, a frame that is not a dcb frame (bad magic, else a
 * valid NewPkt): the host exits with status 3 without calling the plugin
 * for it, and no result comes back for it.
 */
static void test_bad_magic_exits(void **state)
{
    static th_host_t h;
    th_batch_t b = {0};
    uint64_t bad;
    int64_t status;

    (void)state;
    start(&h, "badmagic", 4);
    add_pktdrop(&h, &b, 9, 109);
    send_batch(&h, &b);
    wait_results(&h);

    bad = add_newpkt(&h, &b, 10);
    b.b_buf[0] = 'X'; /* "XC" */
    send_batch(&h, &b);
    batch_free(&b);
    status = wait_exit(&h);
    if (status != 3) {
        dump(&h);
        fail_msg("exit status %lld, not 3", (long long)status);
    }
    if (strstr(h.h_text[1], "protocol violation from the broker") == NULL) {
        dump(&h);
        fail_msg("the host did not say why it exited");
    }
    expect_calls(&h, "pktdrop id=109 code=0xb ip=10.0.0.9\n");
    assert_false(h.h_bad_frame);
    assert_int_equal(h.h_nrecs, 2); /* HostLoaded, and the PktDrop's result */
    assert_int_equal(h.h_recs[1].r_type, DCB__FRAME_TYPE__FT_HOST_RESULT);
    assert_int_equal(h.h_recs[1].r_id, h.h_sent[0].s_id);
    assert_true(h.h_recs[1].r_id != bad);
    remove(h.h_calllog);
    cleanup(&h);
}

/*
 * Ping while idle: a Pong with the same nonce, at once and again after the
 * host's watcher has gone to sleep (100 ms without events). The plugin is
 * not called.
 */
/*
 * A notification at the head is passed over by requests read with it, but
 * only so often (HOST_PASS_MAX, 8): a stream of requests cannot starve it.
 */
static void test_notification_not_starved(void **state)
{
    static th_host_t h;
    th_batch_t b = {0};
    char want[4096];
    size_t used = 0;

    (void)state;
    start(&h, "nostarve", 1);
    add_pktdrop(&h, &b, 1, 101);
    for (uint32_t n = 2; n <= 20; n++)
        add_newpkt(&h, &b, n);
    send_batch(&h, &b);
    batch_free(&b);
    wait_results(&h);
    for (uint32_t k = 1; k <= 19; k++) {
        if (k == 9)
            used += (size_t)snprintf(want + used, sizeof(want) - used,
                                     "pktdrop id=101 code=0xb ip=10.0.0.1\n");
        used += (size_t)snprintf(want + used, sizeof(want) - used,
                                 "newpkt id=%u size=300 ip=10.0.0.%u\n", k, k + 1);
    }
    expect_calls(&h, want);
    check_all_answered(&h, 0xF00D0007u);
    finish(&h);
}

/* A bad frame read together with good ones ahead of it: those are served and answered first. */
static void test_bad_frame_after_good(void **state)
{
    static th_host_t h;
    th_batch_t b = {0};
    uint64_t good, bad;
    size_t at;
    int64_t status;

    (void)state;
    start(&h, "badafter", 1);
    good = add_newpkt(&h, &b, 11);
    at = b.b_len;
    bad = add_newpkt(&h, &b, 12);
    b.b_buf[at] = 'X'; /* the second frame's magic: "XC" */
    send_batch(&h, &b);
    batch_free(&b);
    status = wait_exit(&h);
    if (status != 3) {
        dump(&h);
        fail_msg("exit status %lld, not 3", (long long)status);
    }
    expect_calls(&h, "newpkt id=1 size=300 ip=10.0.0.11\n");
    assert_int_equal(h.h_nrecs, 2); /* HostLoaded, and the good NewPkt's result */
    assert_int_equal(h.h_recs[1].r_type, DCB__FRAME_TYPE__FT_HOST_RESULT);
    assert_true(h.h_recs[1].r_id == good && good != bad);
    remove(h.h_calllog);
    cleanup(&h);
}

static void test_ping_pong_idle(void **state)
{
    static th_host_t h;

    (void)state;
    start(&h, "pingpong", 4);
    fence(&h, 0x0123456789ABCDEFu);
    run_for(&h, 300);
    fence(&h, 0xFEDCBA9876543210u);
    run_for(&h, QUIET_MS);
    check_answers(&h);
    assert_int_equal(h.h_nrecs, 3); /* HostLoaded, two Pongs */
    assert_int_equal(h.h_recs[1].r_id, 0x0123456789ABCDEFu);
    assert_int_equal(h.h_recs[2].r_id, 0xFEDCBA9876543210u);
    expect_calls(&h, "");
    finish(&h);
}

static void sleeper_exit(uv_process_t *proc, int64_t status, int sig)
{
    (void)status;
    (void)sig;
    uv_close((uv_handle_t *)proc, NULL);
}

/*
 * A host whose broker is gone ends itself, though its channel stays open
 * (here the test holds the other end): Linux, when the given broker is not
 * its parent; Windows, when the broker's process ends (Wine does not always
 * end a job's processes with their owner).
 */
static void test_host_ends_with_broker(void **state)
{
    static th_host_t h;
    uv_loop_t sl;
    uv_process_t sp;
    uv_process_options_t opt;
    char self[1024], pid[16];
    size_t len = sizeof(self);
    char *args[3];
    int64_t status;

    (void)state;
    assert_int_equal(uv_exepath(self, &len), 0);
    args[0] = self;
    args[1] = "--sleeper";
    args[2] = NULL;
    memset(&opt, 0, sizeof(opt));
    opt.file = self;
    opt.args = args;
    opt.exit_cb = sleeper_exit;
    opt.flags = UV_PROCESS_WINDOWS_HIDE;
    assert_int_equal(uv_loop_init(&sl), 0);
    assert_int_equal(uv_spawn(&sl, &sp, &opt), 0);
    snprintf(pid, sizeof(pid), "%d", sp.pid);
    next_broker_pid = pid;
    spawn_host(&h, "tie");
    next_broker_pid = NULL;
#ifdef _WIN32
    /* The "broker" is alive: the host loads and serves. */
    load_host(&h, 1);
    uv_process_kill(&sp, SIGKILL);
#endif
    status = wait_exit(&h);
    if (status != 1) {
        dump(&h);
        fail_msg("exit status %lld, not 1", (long long)status);
    }
    print_message("the host ended itself (exit 1) while the test still held its channel\n");
#ifndef _WIN32
    uv_process_kill(&sp, SIGKILL);
#endif
    uv_run(&sl, UV_RUN_DEFAULT);
    uv_loop_close(&sl);
    remove(h.h_calllog);
    cleanup(&h);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_order_newpkt_first, teardown),
        cmocka_unit_test_teardown(test_order_control_barrier, teardown),
        cmocka_unit_test_teardown(test_batch_one_thread, teardown),
        cmocka_unit_test_teardown(test_batch_four_threads, teardown),
        cmocka_unit_test_teardown(test_bad_magic_exits, teardown),
        cmocka_unit_test_teardown(test_ping_pong_idle, teardown),
        cmocka_unit_test_teardown(test_notification_not_starved, teardown),
        cmocka_unit_test_teardown(test_bad_frame_after_good, teardown),
        cmocka_unit_test_teardown(test_host_ends_with_broker, teardown),
    };

    if (argc > 1 && strcmp(argv[1], "--sleeper") == 0) {
        dcb_sleep_ms(60000); /* a stand-in broker for test_host_ends_with_broker */
        return 0;
    }
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("broker_host", tests, NULL, NULL) == 0 ? 0 : 1;
}
