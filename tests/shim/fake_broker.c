/*
 * fake_broker.c — see fake_broker.h. One thread accepts connections; each
 * connection has its own thread, which reads frames (in 20 ms slices, so it
 * notices a stop), answers Hello with Welcome, records everything and
 * answers requests as the test asked.
 */
#include "fake_broker.h"

#include "dcb_callout.h"
#include "dcb_os.h"
#include "fake_tp.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONNS 256
#define RBUF (256u * 1024u)

typedef struct fb_conn_ctx {
    fake_broker_t *fb;
    ftp_conn_t *conn;
    dcb_thread_t thread;
} fb_conn_ctx_t;

struct fake_broker {
    ftp_listener_t *listener;
    dcb_thread_t accept_thread;
    _Atomic int stop;
    _Atomic uint32_t welcome_hooks;
    _Atomic int mode;
    _Atomic int late_ms;
    _Atomic int process_it;
    _Atomic int stall;
    _Atomic uint32_t sub_hooks;
    _Atomic int sub_gen; /* bumped by fb_push_subscription */
    _Atomic int hellos[2];
    _Atomic int sub_before_welcome;
    dcb_mutex_t lock;
    int reply_kind;
    uint8_t *reply_pkt;
    size_t reply_len, grow, oversize;
    fb_frame_t *frames;
    int n_frames, cap_frames;
    uint8_t *stats;
    size_t stats_len;
    int n_stats;
    char chain[2048];
    fb_conn_ctx_t *conns[MAX_CONNS];
    int n_conns;
};

static const dcb_limits_t fb_lim = {DCB_MAX_FRAME_EVENT, 65536};

static void record(fake_broker_t *fb, uint8_t type, int role, const uint8_t *buf, size_t len)
{
    fb_frame_t *f;

    dcb_mutex_lock(&fb->lock);
    if (fb->n_frames == fb->cap_frames) {
        fb->cap_frames = fb->cap_frames ? fb->cap_frames * 2 : 256;
        fb->frames = realloc(fb->frames, (size_t)fb->cap_frames * sizeof(*fb->frames));
    }
    f = &fb->frames[fb->n_frames++];
    f->f_type = type;
    f->f_role = role;
    f->f_len = len;
    f->f_buf = malloc(len);
    memcpy(f->f_buf, buf, len);
    if (type == DCB__FRAME_TYPE__FT_SHIM_STATS) {
        free(fb->stats);
        fb->stats = malloc(len);
        memcpy(fb->stats, buf, len);
        fb->stats_len = len;
        fb->n_stats++;
    }
    dcb_mutex_unlock(&fb->lock);
}

static int send_msg(ftp_conn_t *c, uint8_t type, const ProtobufCMessage *m)
{
    uint8_t buf[70000];
    int n = dcb_frame_encode(type, m, buf, sizeof(buf));

    return n > 0 ? ftp_write(c, buf, (size_t)n) : -1;
}

static void sleep_unless_stopped(fake_broker_t *fb, int ms)
{
    for (int i = 0; i < ms && !atomic_load(&fb->stop); i += 5)
        dcb_sleep_ms(5);
}

/* Answers one NewPkt or PktSend. Returns -1 to close the connection. */
static int answer(fake_broker_t *fb, ftp_conn_t *c, uint8_t type, ProtobufCMessage *msg)
{
    Dcb__EventHeader *hdr = dcb_event_header(type, msg);
    ProtobufCBinaryData req = type == DCB__FRAME_TYPE__FT_EV_NEWPKT
                                  ? ((Dcb__NewPktEvent *)msg)->packet
                                  : ((Dcb__PktSendEvent *)msg)->packet;
    Dcb__NewPktDecision nd = DCB__NEW_PKT_DECISION__INIT;
    Dcb__PktSendDecision sd = DCB__PKT_SEND_DECISION__INIT;
    Dcb__Subscription sub = DCB__SUBSCRIPTION__INIT;
    int mode = atomic_load(&fb->mode), has_pkt = 0, rc = 0;
    uint8_t *pkt = NULL, frame[70000];
    size_t len = 0;
    ProtobufCMessage *out;
    uint8_t out_type;
    int n;

    if (mode == FB_SILENT)
        return 0;
    if (mode == FB_GARBAGE) {
        static const char junk[] = "this is not a dcb frame at all!!";
        return ftp_write(c, junk, sizeof(junk) - 1);
    }
    if (mode == FB_WRONG_TYPE) {
        sub.subscribed_hooks = 0xFF;
        return send_msg(c, DCB__FRAME_TYPE__FT_SUBSCRIPTION, &sub.base);
    }
    dcb_mutex_lock(&fb->lock);
    if (mode == FB_OVERSIZED) {
        len = fb->oversize;
        pkt = malloc(len);
        memset(pkt, 0x5A, len);
        has_pkt = 1;
    } else if (fb->reply_kind == FB_REPLY_FIXED) {
        len = fb->reply_len;
        pkt = malloc(len ? len : 1);
        memcpy(pkt, fb->reply_pkt, len);
        has_pkt = 1;
    } else if (fb->reply_kind == FB_REPLY_MANGLE && req.len > 0) {
        len = req.len + fb->grow;
        pkt = malloc(len);
        memcpy(pkt, req.data, req.len);
        pkt[0] ^= 0xFF;
        memset(pkt + req.len, 0xAB, fb->grow);
        has_pkt = 1;
    }
    dcb_mutex_unlock(&fb->lock);
    if (type == DCB__FRAME_TYPE__FT_EV_NEWPKT) {
        nd.request_id = hdr->request_id + (mode == FB_WRONG_ID ? 1000 : 0);
        nd.process_it = atomic_load(&fb->process_it) != 0;
        nd.has_packet = has_pkt;
        nd.packet.data = pkt;
        nd.packet.len = len;
        out = &nd.base;
        out_type = DCB__FRAME_TYPE__FT_NEWPKT_DECISION;
    } else {
        sd.request_id = hdr->request_id + (mode == FB_WRONG_ID ? 1000 : 0);
        sd.has_packet = has_pkt;
        sd.packet.data = pkt;
        sd.packet.len = len;
        out = &sd.base;
        out_type = DCB__FRAME_TYPE__FT_PKTSEND_DECISION;
    }
    n = dcb_frame_encode(out_type, out, frame, sizeof(frame));
    free(pkt);
    if (n <= 0)
        return -1;
    if (mode == FB_LATE)
        sleep_unless_stopped(fb, atomic_load(&fb->late_ms));
    if (mode == FB_TRUNCATED) {
        ftp_write(c, frame, (size_t)n / 2);
        return -1;
    }
    rc = ftp_write(c, frame, (size_t)n);
    if (rc == 0 && mode == FB_DOUBLE)
        rc = ftp_write(c, frame, (size_t)n);
    return rc;
}

static int on_hello(fake_broker_t *fb, ftp_conn_t *c, Dcb__Hello *h)
{
    Dcb__Welcome w = DCB__WELCOME__INIT;
    char chain[2048] = "";

    for (size_t i = 0; i < h->n_chain_dlls; i++) {
        size_t used = strlen(chain);
        snprintf(chain + used, sizeof(chain) - used, "%s%s", i ? "|" : "", h->chain_dlls[i]);
    }
    dcb_mutex_lock(&fb->lock);
    snprintf(fb->chain, sizeof(fb->chain), "%s", chain);
    dcb_mutex_unlock(&fb->lock);
    atomic_fetch_add(&fb->hellos[h->role == DCB__CONN_ROLE__ROLE_NOTIFY], 1);
    if (h->role == DCB__CONN_ROLE__ROLE_NOTIFY && atomic_load(&fb->sub_before_welcome)) {
        Dcb__Subscription s = DCB__SUBSCRIPTION__INIT;
        s.subscribed_hooks = atomic_load(&fb->welcome_hooks);
        if (send_msg(c, DCB__FRAME_TYPE__FT_SUBSCRIPTION, &s.base) != 0)
            return -1;
    }
    w.protocol_version = DCB_PROTO_VERSION;
    w.subscribed_hooks = atomic_load(&fb->welcome_hooks);
    w.broker_version = (char *)"fake";
    return send_msg(c, DCB__FRAME_TYPE__FT_WELCOME, &w.base);
}

static void conn_main(void *arg)
{
    fb_conn_ctx_t *ctx = arg;
    fake_broker_t *fb = ctx->fb;
    ftp_conn_t *c = ctx->conn;
    uint8_t *rbuf = malloc(RBUF);
    size_t asize = dcb_arena_size_for(DCB_MAX_FRAME_EVENT), rlen = 0;
    void *amem = malloc(asize);
    dcb_arena_t arena;
    dcb_frame_hdr_t hdr;
    dcb_msg_t m;
    int role = -1, sub_gen = atomic_load(&fb->sub_gen), n, rc;

    dcb_arena_init(&arena, amem, asize);
    while (!atomic_load(&fb->stop)) {
        if (role == DCB__CONN_ROLE__ROLE_NOTIFY) {
            int gen = atomic_load(&fb->sub_gen);
            if (gen != sub_gen) {
                Dcb__Subscription s = DCB__SUBSCRIPTION__INIT;
                sub_gen = gen;
                s.subscribed_hooks = atomic_load(&fb->sub_hooks);
                if (send_msg(c, DCB__FRAME_TYPE__FT_SUBSCRIPTION, &s.base) != 0)
                    break;
            }
            if (atomic_load(&fb->stall)) {
                dcb_sleep_ms(5);
                continue;
            }
        }
        n = ftp_read(c, rbuf + rlen, RBUF - rlen, 20);
        if (n < 0)
            break;
        rlen += (size_t)n;
        for (;;) {
            rc = dcb_frame_header(rbuf, rlen, &fb_lim, &hdr);
            if (rc == DCB_E_TRUNCATED || (rc == 0 && rlen - DCB_FRAME_HEADER_SIZE < hdr.length))
                break;
            if (rc == 0)
                rc = dcb_frame_decode(rbuf, rlen, &fb_lim, &arena, &m);
            if (rc != 0) {
                fprintf(stderr, "fake broker: bad frame from the shim: %s\n",
                        dcb_proto_strerror(rc));
                goto out;
            }
            if (m.type == DCB__FRAME_TYPE__FT_HELLO) {
                role = ((Dcb__Hello *)m.msg)->role;
                if (on_hello(fb, c, (Dcb__Hello *)m.msg) != 0)
                    goto out;
            } else {
                record(fb, m.type, role, rbuf, m.frame_len);
                if (role == DCB__CONN_ROLE__ROLE_REQUEST &&
                    (m.type == DCB__FRAME_TYPE__FT_EV_NEWPKT ||
                     m.type == DCB__FRAME_TYPE__FT_EV_PKTSEND) &&
                    answer(fb, c, m.type, m.msg) != 0)
                    goto out;
            }
            memmove(rbuf, rbuf + m.frame_len, rlen - m.frame_len);
            rlen -= m.frame_len;
        }
    }
out:
    ftp_close(c);
    free(rbuf);
    free(amem);
}

static void accept_main(void *arg)
{
    fake_broker_t *fb = arg;
    ftp_conn_t *c;

    while (!atomic_load(&fb->stop)) {
        c = ftp_accept(fb->listener, 20);
        if (c == NULL)
            continue;
        if (fb->n_conns == MAX_CONNS) {
            ftp_close(c);
            continue;
        }
        fb_conn_ctx_t *ctx = calloc(1, sizeof(*ctx));
        ctx->fb = fb;
        ctx->conn = c;
        if (dcb_thread_create(&ctx->thread, conn_main, ctx) != 0) {
            ftp_close(c);
            free(ctx);
            continue;
        }
        dcb_mutex_lock(&fb->lock);
        fb->conns[fb->n_conns++] = ctx;
        dcb_mutex_unlock(&fb->lock);
    }
}

fake_broker_t *fb_start(const char *name, uint32_t welcome_hooks)
{
    fake_broker_t *fb = calloc(1, sizeof(*fb));

    dcb_mutex_init(&fb->lock);
    atomic_store(&fb->welcome_hooks, welcome_hooks);
    atomic_store(&fb->process_it, 1);
    atomic_store(&fb->mode, FB_ANSWER);
    fb->listener = ftp_listen(name);
    if (fb->listener == NULL) {
        fprintf(stderr, "fake broker: cannot listen on %s\n", name);
        free(fb);
        return NULL;
    }
    dcb_thread_create(&fb->accept_thread, accept_main, fb);
    return fb;
}

void fb_stop(fake_broker_t *fb)
{
    if (fb == NULL)
        return;
    atomic_store(&fb->stop, 1);
    dcb_thread_join(fb->accept_thread);
    for (int i = 0; i < fb->n_conns; i++) {
        dcb_thread_join(fb->conns[i]->thread);
        free(fb->conns[i]);
    }
    ftp_listener_close(fb->listener);
    for (int i = 0; i < fb->n_frames; i++)
        free(fb->frames[i].f_buf);
    free(fb->frames);
    free(fb->stats);
    free(fb->reply_pkt);
    dcb_mutex_destroy(&fb->lock);
    free(fb);
}

void fb_set_mode(fake_broker_t *fb, fb_mode_t mode)
{
    atomic_store(&fb->mode, (int)mode);
}

void fb_set_late_ms(fake_broker_t *fb, int ms)
{
    atomic_store(&fb->late_ms, ms);
}

void fb_set_process_it(fake_broker_t *fb, int process_it)
{
    atomic_store(&fb->process_it, process_it);
}

void fb_set_reply(fake_broker_t *fb, fb_reply_t kind, const uint8_t *pkt, size_t len, size_t grow)
{
    dcb_mutex_lock(&fb->lock);
    free(fb->reply_pkt);
    fb->reply_pkt = NULL;
    fb->reply_len = 0;
    if (pkt != NULL) {
        fb->reply_pkt = malloc(len ? len : 1);
        memcpy(fb->reply_pkt, pkt, len);
        fb->reply_len = len;
    }
    fb->reply_kind = (int)kind;
    fb->grow = grow;
    dcb_mutex_unlock(&fb->lock);
}

void fb_set_oversize(fake_broker_t *fb, size_t len)
{
    dcb_mutex_lock(&fb->lock);
    fb->oversize = len;
    dcb_mutex_unlock(&fb->lock);
}

void fb_set_stall(fake_broker_t *fb, int stall)
{
    atomic_store(&fb->stall, stall);
}

void fb_set_sub_before_welcome(fake_broker_t *fb, int on)
{
    atomic_store(&fb->sub_before_welcome, on);
}

void fb_push_subscription(fake_broker_t *fb, uint32_t hooks)
{
    atomic_store(&fb->sub_hooks, hooks);
    atomic_store(&fb->welcome_hooks, hooks);
    atomic_fetch_add(&fb->sub_gen, 1);
}

int fb_hellos(fake_broker_t *fb, int role)
{
    return atomic_load(&fb->hellos[role == DCB__CONN_ROLE__ROLE_NOTIFY]);
}

int fb_count(fake_broker_t *fb, uint8_t type)
{
    int n = 0;

    dcb_mutex_lock(&fb->lock);
    for (int i = 0; i < fb->n_frames; i++)
        if (type == 0 || fb->frames[i].f_type == type)
            n++;
    dcb_mutex_unlock(&fb->lock);
    return n;
}

int fb_frame(fake_broker_t *fb, uint8_t type, int nth, fb_frame_t *out)
{
    int rc = -1;

    dcb_mutex_lock(&fb->lock);
    for (int i = 0; i < fb->n_frames; i++) {
        if (type != 0 && fb->frames[i].f_type != type)
            continue;
        if (nth-- > 0)
            continue;
        *out = fb->frames[i];
        out->f_buf = malloc(out->f_len);
        memcpy(out->f_buf, fb->frames[i].f_buf, out->f_len);
        rc = 0;
        break;
    }
    dcb_mutex_unlock(&fb->lock);
    return rc;
}

void fb_frame_free(fb_frame_t *f)
{
    free(f->f_buf);
    f->f_buf = NULL;
}

void fb_chain(fake_broker_t *fb, char *buf, size_t cap)
{
    dcb_mutex_lock(&fb->lock);
    snprintf(buf, cap, "%s", fb->chain);
    dcb_mutex_unlock(&fb->lock);
}

int fb_stats_count(fake_broker_t *fb)
{
    int n;

    dcb_mutex_lock(&fb->lock);
    n = fb->n_stats;
    dcb_mutex_unlock(&fb->lock);
    return n;
}

static Dcb__ShimStats *stats_decode(fake_broker_t *fb, dcb_arena_t *arena)
{
    dcb_msg_t m;

    if (fb->stats == NULL || dcb_frame_decode(fb->stats, fb->stats_len, &fb_lim, arena, &m) != 0)
        return NULL;
    return (Dcb__ShimStats *)m.msg;
}

int fb_stats(fake_broker_t *fb, int hook, fb_hook_stats_t *out)
{
    size_t asize = dcb_arena_size_for(DCB_MAX_FRAME_EVENT);
    void *amem = malloc(asize);
    dcb_arena_t arena;
    Dcb__ShimStats *s;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    dcb_arena_init(&arena, amem, asize);
    dcb_mutex_lock(&fb->lock);
    s = stats_decode(fb, &arena);
    for (size_t i = 0; s != NULL && i < s->n_hooks; i++) {
        Dcb__ShimHookStats *h = s->hooks[i];
        if ((int)h->hook != hook)
            continue;
        out->valid = 1;
        out->calls = h->calls;
        out->unsub = h->unsubscribed;
        out->d_timeout = h->defaults_timeout;
        out->d_no_broker = h->defaults_no_broker;
        out->d_breaker = h->defaults_breaker;
        out->d_bad_reply = h->defaults_bad_reply;
        out->queue_full = h->queue_full;
        out->d_other = h->defaults_other;
        out->lost = h->lost;
        if (h->waited != NULL)
            for (size_t b = 0; b < h->waited->n_count; b++)
                out->waited += h->waited->count[b];
        rc = 0;
    }
    dcb_mutex_unlock(&fb->lock);
    free(amem);
    return rc;
}

uint64_t fb_packets_live(fake_broker_t *fb)
{
    size_t asize = dcb_arena_size_for(DCB_MAX_FRAME_EVENT);
    void *amem = malloc(asize);
    dcb_arena_t arena;
    Dcb__ShimStats *s;
    uint64_t n = UINT64_MAX;

    dcb_arena_init(&arena, amem, asize);
    dcb_mutex_lock(&fb->lock);
    s = stats_decode(fb, &arena);
    if (s != NULL)
        n = s->packets_live;
    dcb_mutex_unlock(&fb->lock);
    free(amem);
    return n;
}
