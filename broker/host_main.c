/*
 * host_main.c — the host role: `dcb-broker --host`.
 *
 * The supervisor re-executes its own binary for each plugin host, with the
 * channel on stdio slot 3 and stdout/stderr on pipes it logs. The host
 * hardens itself, waits for HostLoad, loads the one DLL, calls its entry
 * point as the DHCP server would (empty chain L"\0", version 0), reports
 * the hooks it filled, and then calls them for every event it is sent.
 *
 * Threads: the plugin expects concurrent calls, and the event path should
 * not pay a thread hand-off. One worker at a time holds the reader role: it
 * alone reads the channel and takes frames off the read buffer (a frame a
 * server thread waits for goes before packet notifications buffered ahead
 * of it: pick_frame). What it does with a frame depends on what the
 * plugin's calls have cost lately (a moving average) against what waking
 * another thread costs (HOST_HANDOFF_NS):
 *
 *  - cheap calls, little waiting: the reader calls the hook itself and
 *    keeps the role, so frames that arrived together are served by one
 *    thread with no wake-up at all, and their results leave in one write
 *    (an answer a server thread waits for at once, unless another such
 *    frame is next; nothing waits longer than HOST_OUT_DELAY_NS);
 *  - a dear call, or a backlog that would cost more than a wake-up to
 *    serve alone: the reader passes the role to a follower before it calls
 *    the hook, so the next frame is read while the plugin works.
 *
 * A cheap plugin can still block now and then (a lock, a slow disk): one
 * follower, the watcher, wakes every HOST_WATCH_MS while events flow and
 * takes the reader role over from a reader that has spent longer than that
 * inside one call, so other events (and Ping) keep moving. The watcher
 * sleeps for good after HOST_WATCH_IDLE_NS without events.
 *
 * Nothing from the plugin reaches the channel except through the results
 * encoded here; packets are copied into buffers of at least 2000 bytes (what
 * the server allocates) with a guard area behind them, so an in-place edit
 * within the buffer works, a write past it is caught (when it stays within
 * the guard), and a replaced buffer is copied out and bounded by
 * max_packet.
 */
#include "broker.h"
#include "platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST_MAX_FRAME DCB_MAX_FRAME_EVENT
#define HOST_PKT_MIN 2000u /* the server's own receive buffers */
#define HOST_GUARD 256u
#define HOST_GUARD_BYTE 0xA5
#define HOST_HANDOFF_NS 20000u /* about what waking a follower costs */
#define HOST_WATCH_MS 1u /* the watcher's period and patience (Windows: a timer tick, ~16 ms) */
#define HOST_WATCH_IDLE_NS 100000000u /* the watcher sleeps after 100 ms without events */
#define HOST_OUT_FLUSH 32768u         /* results held back at most (bytes) */
#define HOST_OUT_DELAY_NS 50000u
#define HOST_PASS_MAX 8u /* times a notification at the head may be passed over */
#define HOST_STOP_WAIT_MS                                                                          \
    1000u /* at the end, how long STOP waits for calls in progress */ /* ... and for at most this  \
                                                                         long */

typedef struct host_worker {
    dcb_thread_t w_thread;
    uint8_t *w_frame;
    dcb_arena_t w_arena;
    void *w_arena_mem;
    uint8_t *w_pkt; /* HOST_PKT_MIN.. + guard */
    size_t w_pkt_cap;
    uint8_t *w_out;
    size_t w_out_cap;
} host_worker_t;

static struct {
    /* The reader role and the watcher (lock). */
    dcb_mutex_t lock;
    dcb_cond_t follow;      /* followers wait here */
    host_worker_t *reader;  /* holds the reader role, or NULL: free to take */
    host_worker_t *watcher; /* the follower watching the reader, or NULL */
    int in_call;            /* the reader is inside the plugin, keeping the role */
    uint64_t call_start_ns;
    uint64_t last_event_ns;
    uint64_t avg_call_ns; /* moving average of a hook call (1/8 weight) */
    int eof;
    /* The read buffer: touched by the reader only. */
    uint8_t *rbuf;
    size_t rpos; /* first unconsumed byte */
    size_t rlen; /* bytes in rbuf */
    size_t rcap;
    unsigned head_passed; /* frames taken before the one at rpos */
    unsigned nactive;     /* workers still in worker_main (lock) */
    dcb_cond_t done;      /* signalled when one leaves */
    /* Encoded results not yet written (wlock). */
    dcb_mutex_t wlock;
    uint8_t *obuf;
    size_t olen;
    size_t ocap;
    uint64_t ofirst_ns; /* when the oldest of them was queued */
    dcb_mutex_t state_lock;
    dcb_limits_t lim;
    DHCP_CALLOUT_TABLE table;
    char plugin[128];
    int started; /* the plugin has had START and no STOP since (under state_lock) */
} g;

static void out_flush(void);

static void fatal_protocol(const char *what, int rc)
{
    dcb_log(DCB_LOG_ERROR, "protocol violation from the broker: %s (%s); exiting", what,
            dcb_proto_strerror(rc));
    out_flush(); /* the results of the frames before it */
    hostio_exit(3);
}

/* Whether queued results have waited long enough. */
static int out_overdue(void)
{
    int due;

    dcb_mutex_lock(&g.wlock);
    due = g.olen > 0 && dcb_now_ns() - g.ofirst_ns >= HOST_OUT_DELAY_NS;
    dcb_mutex_unlock(&g.wlock);
    return due;
}

/* Writes every queued result. Called without g.lock. */
static void out_flush(void)
{
    int rc = 0;

    dcb_mutex_lock(&g.wlock);
    if (g.olen > 0) {
        rc = hostio_write_all(g.obuf, g.olen);
        g.olen = 0;
    }
    dcb_mutex_unlock(&g.wlock);
    if (rc != 0)
        hostio_exit(0); /* The broker is gone: nothing left to do. */
}

/*
 * Encodes msg and queues it behind the other results; writes them all when
 * now is set or enough has gathered. Called without g.lock.
 */
static int send_msg(host_worker_t *w, uint8_t type, const ProtobufCMessage *msg, int now)
{
    size_t need = dcb_frame_size(msg);
    int n;

    if (need > w->w_out_cap) {
        uint8_t *nb = realloc(w->w_out, need);
        if (nb == NULL)
            return DCB_OS_ENOMEM;
        w->w_out = nb;
        w->w_out_cap = need;
    }
    n = dcb_frame_encode(type, msg, w->w_out, w->w_out_cap);
    if (n < 0)
        return n;
    dcb_mutex_lock(&g.wlock);
    if (g.olen + (size_t)n > g.ocap) {
        /* Full (or too small for this frame): what is queued goes first. */
        if (g.olen > 0 && hostio_write_all(g.obuf, g.olen) != 0)
            hostio_exit(0);
        g.olen = 0;
        if ((size_t)n > g.ocap) {
            if (hostio_write_all(w->w_out, (size_t)n) != 0)
                hostio_exit(0);
            n = 0;
        }
    }
    if (g.olen == 0)
        g.ofirst_ns = dcb_now_ns();
    memcpy(g.obuf + g.olen, w->w_out, (size_t)n);
    g.olen += (size_t)n;
    dcb_mutex_unlock(&g.wlock);
    if (now)
        out_flush();
    return 0;
}

/*
 * The length of the whole frame at g.rbuf + pos (and its type), or 0 when it
 * is not all there.
 */
static size_t frame_at(size_t pos, uint8_t *type)
{
    dcb_frame_hdr_t hdr;
    size_t have = g.rlen - pos;
    int rc = have > 0 ? dcb_frame_header(g.rbuf + pos, have, &g.lim, &hdr) : DCB_E_TRUNCATED;

    if (rc == DCB_E_TRUNCATED)
        return 0;
    if (rc != 0 && pos != g.rpos)
        return 0; /* looking ahead: the frames before it are served first */
    if (rc != 0)
        fatal_protocol("bad frame header", rc);
    if (have < DCB_FRAME_HEADER_SIZE + (size_t)hdr.length)
        return 0;
    if (type != NULL)
        *type = hdr.type;
    return DCB_FRAME_HEADER_SIZE + (size_t)hdr.length;
}

/* A server thread waits for these (and Ping is cheap and urgent). */
static int frame_urgent(uint8_t type)
{
    return type == DCB__FRAME_TYPE__FT_EV_NEWPKT || type == DCB__FRAME_TYPE__FT_EV_PKTSEND ||
           type == DCB__FRAME_TYPE__FT_PING;
}

/* A notification about one packet (no thread waits for it). */
static int frame_packet_note(uint8_t type)
{
    return type == DCB__FRAME_TYPE__FT_EV_PKTDROP || type == DCB__FRAME_TYPE__FT_EV_ADDRESSDEL ||
           type == DCB__FRAME_TYPE__FT_EV_ADDRESSOFFER ||
           type == DCB__FRAME_TYPE__FT_EV_HANDLEOPTIONS;
}

/*
 * The next frame to serve: the first one buffered, unless it starts a run
 * of packet notifications with a frame a server thread waits for right
 * behind it — that one goes first. Safe, because the broker never has two
 * hooks of one packet at one plugin at a time (PROTOCOL.md), so frames
 * buffered together belong to different packets; nothing is taken before
 * any other kind of frame ahead of it (a control code is taken before the
 * packets sent after it; with several threads their calls may still
 * overlap, as the server's would). A notification at the head is passed
 * over at most HOST_PASS_MAX times, so a stream of requests cannot starve
 * it (and with it its packet's next hook).
 */
static size_t pick_frame(size_t *at)
{
    size_t pos = g.rpos, first, len;
    uint8_t type;

    first = frame_at(pos, &type);
    *at = pos;
    if (first == 0 || !frame_packet_note(type) || g.head_passed >= HOST_PASS_MAX)
        return first;
    pos += first;
    for (unsigned n = 0; n < 64 && (len = frame_at(pos, &type)) > 0; n++, pos += len) {
        if (frame_urgent(type)) {
            *at = pos;
            return len;
        }
        if (!frame_packet_note(type))
            break;
    }
    return first;
}

/* Whether the frame pick_frame would take next is one a server thread waits for. */
static int urgent_next(void)
{
    size_t at;
    uint8_t type = 0;

    return pick_frame(&at) > 0 && frame_at(at, &type) > 0 && frame_urgent(type);
}

/* Whole frames buffered behind the read position, counted up to max. */
static unsigned frames_waiting(unsigned max)
{
    unsigned n = 0;
    size_t pos = g.rpos, len;

    while (n < max && (len = frame_at(pos, NULL)) > 0) {
        pos += len;
        n++;
    }
    return n;
}

/*
 * The reader (under g.lock) takes one whole frame into w->w_frame, reading
 * the channel, with g.lock released, when none is buffered; queued results
 * are written before it blocks. Returns the frame's length, or 0 at the end
 * of the channel.
 */
static size_t take_frame(host_worker_t *w)
{
    for (;;) {
        size_t at, len = pick_frame(&at);
        int n;

        if (len > 0) {
            memcpy(w->w_frame, g.rbuf + at, len);
            g.head_passed = at == g.rpos ? 0 : g.head_passed + 1;
            /* Close the gap: what was ahead of it moves up behind it. */
            memmove(g.rbuf + g.rpos + len, g.rbuf + g.rpos, at - g.rpos);
            g.rpos += len;
            if (g.rpos == g.rlen)
                g.rpos = g.rlen = 0;
            return len;
        }
        if (g.eof)
            return 0;
        /* Keep room for a whole frame of the limit behind what is buffered. */
        if (g.rpos > 0 && g.rcap - g.rlen < DCB_FRAME_HEADER_SIZE + HOST_MAX_FRAME) {
            memmove(g.rbuf, g.rbuf + g.rpos, g.rlen - g.rpos);
            g.rlen -= g.rpos;
            g.rpos = 0;
        }
        dcb_mutex_unlock(&g.lock);
        out_flush();
        n = hostio_read(g.rbuf + g.rlen, g.rcap - g.rlen);
        dcb_mutex_lock(&g.lock);
        if (n <= 0) {
            g.eof = 1;
            dcb_cond_broadcast(&g.follow);
            return 0;
        }
        g.rlen += (size_t)n;
    }
}

/* A copy of the packet in a buffer of at least HOST_PKT_MIN bytes, guard behind. */
static uint8_t *pkt_copy(host_worker_t *w, const ProtobufCBinaryData *p, const uint8_t *extra,
                         size_t extra_len, size_t *cap_out)
{
    size_t cap = p->len + extra_len;

    if (cap < HOST_PKT_MIN)
        cap = HOST_PKT_MIN;
    if (cap + HOST_GUARD > w->w_pkt_cap) {
        uint8_t *nb = realloc(w->w_pkt, cap + HOST_GUARD);
        if (nb == NULL)
            return NULL;
        w->w_pkt = nb;
        w->w_pkt_cap = cap + HOST_GUARD;
    }
    if (p->len > 0)
        memcpy(w->w_pkt, p->data, p->len);
    if (extra_len > 0)
        memcpy(w->w_pkt + p->len, extra, extra_len);
    memset(w->w_pkt + p->len + extra_len, 0, cap - p->len - extra_len);
    memset(w->w_pkt + cap, HOST_GUARD_BYTE, HOST_GUARD);
    *cap_out = cap;
    return w->w_pkt;
}

static uint8_t guard_pattern[HOST_GUARD]; /* HOST_GUARD_BYTE, set before any call */

static int guard_intact(const uint8_t *buf, size_t cap)
{
    return memcmp(buf + cap, guard_pattern, HOST_GUARD) == 0;
}

/*
 * After NewPkt/PktSend: what the plugin left in (p, size). Sets res->packet
 * when it changed, or res->error when the result cannot be used.
 */
static void collect_packet(Dcb__HostResult *res, const ProtobufCBinaryData *orig, uint8_t *buf,
                           size_t cap, LPBYTE p, DWORD size, char *err, size_t errlen)
{
    if (!guard_intact(buf, cap)) {
        snprintf(err, errlen, "the plugin wrote past the end of the %zu-byte packet buffer", cap);
        res->error = err;
        return;
    }
    if (p == NULL || size == 0) {
        snprintf(err, errlen, "the plugin left no packet (pointer %p, size %u)", (void *)p,
                 (unsigned)size);
        res->error = err;
        return;
    }
    if (size > g.lim.max_packet) {
        snprintf(err, errlen, "the plugin's packet of %u bytes exceeds max_packet (%u)",
                 (unsigned)size, g.lim.max_packet);
        res->error = err;
        return;
    }
    if (p == buf) {
        if (size > cap) {
            snprintf(err, errlen, "the plugin grew the packet in place past its buffer (%u > %zu)",
                     (unsigned)size, cap);
            res->error = err;
            return;
        }
        if (size == orig->len && memcmp(buf, orig->data, size) == 0)
            return;
    }
    /* Changed in place, or a new buffer (the plugin keeps it until PROCESSED). */
    res->has_packet = 1;
    res->packet.data = p;
    res->packet.len = size;
}

#define OPT_PTR(o, f, base) ((o)->has_##f && (o)->f != 0 ? (void *)((base) + (o)->f - 1) : NULL)

static void build_options(const Dcb__ServerOptions *o, uint8_t *base, DHCP_SERVER_OPTIONS *so)
{
    memset(so, 0, sizeof(*so));
    so->MessageType = OPT_PTR(o, message_type, base);
    so->SubnetMask = OPT_PTR(o, subnet_mask, base);
    so->RequestedAddress = OPT_PTR(o, requested_address, base);
    so->RequestLeaseTime = OPT_PTR(o, request_lease_time, base);
    so->OverlayFields = OPT_PTR(o, overlay_fields, base);
    so->RouterAddress = OPT_PTR(o, router_address, base);
    so->Server = OPT_PTR(o, server, base);
    so->ParameterRequestList = OPT_PTR(o, parameter_request_list, base);
    so->ParameterRequestListLength = o->parameter_request_list_length;
    so->MachineName = OPT_PTR(o, machine_name, base);
    so->MachineNameLength = o->machine_name_length;
    so->ClientHardwareAddressType = (BYTE)o->client_hardware_address_type;
    so->ClientHardwareAddressLength = (BYTE)o->client_hardware_address_length;
    so->ClientHardwareAddress = OPT_PTR(o, client_hardware_address, base);
    so->ClassIdentifier = OPT_PTR(o, class_identifier, base);
    so->ClassIdentifierLength = o->class_identifier_length;
    so->VendorClass = OPT_PTR(o, vendor_class, base);
    so->VendorClassLength = o->vendor_class_length;
    so->DNSFlags = o->dns_flags;
    so->DNSNameLength = o->dns_name_length;
    so->DNSName = OPT_PTR(o, dns_name, base);
    so->DSDomainNameRequested = (BOOLEAN)o->ds_domain_name_requested;
    so->DSDomainName = OPT_PTR(o, ds_domain_name, base);
    so->DSDomainNameLen = o->ds_domain_name_len;
    so->ScopeId = OPT_PTR(o, scope_id, base);
}

static void handle_event(host_worker_t *w, uint8_t type, ProtobufCMessage *m, int now)
{
    Dcb__EventHeader *hdr = dcb_event_header(type, m);
    int hook = dcb_frame_event_hook(type);
    Dcb__HostResult res = DCB__HOST_RESULT__INIT;
    LPVOID reserved = (LPVOID)(uintptr_t)hdr->reserved;
    LPVOID ctx = (LPVOID)(uintptr_t)hdr->plugin_ctx;
    char err[160];
    uint64_t t0;
    size_t cap = 0;
    uint8_t *buf;

    res.request_id = hdr->request_id;
    res.hook = (uint32_t)hook;
    t0 = dcb_now_ns();
    switch (hook) {
    case DCB_HOOK_CONTROL: {
        Dcb__ControlEvent *e = (Dcb__ControlEvent *)m;
        if (g.table.DhcpControlHook != NULL)
            g.table.DhcpControlHook(e->control_code, reserved);
        dcb_mutex_lock(&g.state_lock);
        if (e->control_code == DHCP_CONTROL_START)
            g.started = 1;
        else if (e->control_code == DHCP_CONTROL_STOP)
            g.started = 0;
        dcb_mutex_unlock(&g.state_lock);
        break;
    }
    case DCB_HOOK_NEWPKT: {
        Dcb__NewPktEvent *e = (Dcb__NewPktEvent *)m;
        LPBYTE p;
        DWORD size = (DWORD)e->packet.len;
        BOOL process = TRUE;
        LPVOID new_ctx = ctx;

        buf = pkt_copy(w, &e->packet, NULL, 0, &cap);
        if (buf == NULL) {
            res.error = "out of memory";
            break;
        }
        p = buf;
        if (g.table.DhcpNewPktHook != NULL)
            g.table.DhcpNewPktHook(&p, &size, e->ip_address, reserved, &new_ctx, &process);
        res.has_process_it = 1;
        res.process_it = process != FALSE;
        res.has_plugin_ctx = 1;
        res.plugin_ctx = (uint64_t)(uintptr_t)new_ctx;
        collect_packet(&res, &e->packet, buf, cap, p, size, err, sizeof(err));
        break;
    }
    case DCB_HOOK_PKTSEND:
    case DCB_HOOK_PKTDROP: {
        /* Same message layout: hdr, packet, control_code, ip_address. */
        Dcb__PktSendEvent *e = (Dcb__PktSendEvent *)m;
        LPDHCP_DROP_SEND fn =
            hook == DCB_HOOK_PKTSEND ? g.table.DhcpPktSendHook : g.table.DhcpPktDropHook;
        LPBYTE p;
        DWORD size = (DWORD)e->packet.len;

        buf = pkt_copy(w, &e->packet, NULL, 0, &cap);
        if (buf == NULL) {
            res.error = "out of memory";
            break;
        }
        p = buf;
        if (fn != NULL)
            fn(&p, &size, e->control_code, e->ip_address, reserved, ctx);
        if (hook == DCB_HOOK_PKTSEND)
            collect_packet(&res, &e->packet, buf, cap, p, size, err, sizeof(err));
        break;
    }
    case DCB_HOOK_ADDRESSDEL: {
        Dcb__AddressDelEvent *e = (Dcb__AddressDelEvent *)m;
        buf = pkt_copy(w, &e->packet, NULL, 0, &cap);
        if (buf != NULL && g.table.DhcpAddressDelHook != NULL)
            g.table.DhcpAddressDelHook(buf, (DWORD)e->packet.len, e->control_code, e->ip_address,
                                       e->alt_address, reserved, ctx);
        break;
    }
    case DCB_HOOK_ADDRESSOFFER: {
        Dcb__AddressOfferEvent *e = (Dcb__AddressOfferEvent *)m;
        buf = pkt_copy(w, &e->packet, NULL, 0, &cap);
        if (buf != NULL && g.table.DhcpAddressOfferHook != NULL)
            g.table.DhcpAddressOfferHook(buf, (DWORD)e->packet.len, e->control_code, e->ip_address,
                                         e->alt_address, e->addr_type, e->lease_time, reserved,
                                         ctx);
        break;
    }
    case DCB_HOOK_HANDLEOPTIONS: {
        Dcb__HandleOptionsEvent *e = (Dcb__HandleOptionsEvent *)m;
        const Dcb__ServerOptions *o = e->options;
        DHCP_SERVER_OPTIONS so;

        /* Offsets point into packet || extra (validated by proto/validate.c). */
        buf = pkt_copy(w, &e->packet, o->has_extra ? o->extra.data : NULL,
                       o->has_extra ? o->extra.len : 0, &cap);
        if (buf == NULL)
            break;
        build_options(o, buf, &so);
        if (g.table.DhcpHandleOptionsHook != NULL)
            g.table.DhcpHandleOptionsHook(buf, (DWORD)e->packet.len, reserved, ctx, &so);
        break;
    }
    case DCB_HOOK_DELETECLIENT: {
        Dcb__DeleteClientEvent *e = (Dcb__DeleteClientEvent *)m;
        uint8_t hw[256];
        if (e->has_hw_address)
            memcpy(hw, e->hw_address.data, e->hw_address.len);
        if (g.table.DhcpDeleteClientHook != NULL)
            g.table.DhcpDeleteClientHook(e->ip_address, e->has_hw_address ? hw : NULL,
                                         e->has_hw_address ? (ULONG)e->hw_address.len : 0,
                                         (DWORD)hdr->reserved, e->client_type);
        break;
    }
    default:
        break;
    }
    res.has_elapsed_us = 1;
    {
        uint64_t us = (dcb_now_ns() - t0) / 1000u;
        res.elapsed_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    }
    send_msg(w, DCB__FRAME_TYPE__FT_HOST_RESULT, &res.base, now);
}

/* Decodes and serves one frame. Returns 1 when it was an event (a hook call). */
static int serve(host_worker_t *w, size_t len, int now)
{
    dcb_msg_t msg;
    int rc = dcb_frame_decode(w->w_frame, len, &g.lim, &w->w_arena, &msg);

    if (rc != 0)
        fatal_protocol("bad frame", rc);
    if (msg.type == DCB__FRAME_TYPE__FT_PING) {
        Dcb__Ping pong = *(Dcb__Ping *)msg.msg;
        pong.base.descriptor = &dcb__ping__descriptor;
        send_msg(w, DCB__FRAME_TYPE__FT_PONG, &pong.base, now);
        return 0;
    }
    if (msg.type == DCB__FRAME_TYPE__FT_PONG)
        return 0;
    if (dcb_frame_event_hook(msg.type) < 0 || dcb_event_header(msg.type, msg.msg)->request_id == 0)
        fatal_protocol("unexpected frame type", DCB_E_TYPE);
    handle_event(w, msg.type, msg.msg, now);
    return 1;
}

/*
 * A follower's wait (under g.lock, while another worker is the reader).
 * Returns when the reader role may have become free, or was taken over.
 */
static void follow(host_worker_t *w)
{
    uint64_t now;

    if (g.watcher == NULL && (g.in_call || dcb_now_ns() - g.last_event_ns < HOST_WATCH_IDLE_NS))
        g.watcher = w;
    if (g.watcher != w) {
        dcb_cond_wait(&g.follow, &g.lock);
        return;
    }
    dcb_cond_timedwait(&g.follow, &g.lock, HOST_WATCH_MS);
    now = dcb_now_ns();
    if (g.eof || g.reader == NULL) {
        g.watcher = NULL; /* the caller takes the free role, or leaves */
        return;
    }
    if (g.reader != w && g.in_call && now - g.call_start_ns >= HOST_WATCH_MS * 1000000u) {
        /* The reader is stuck in the plugin: carry on without it. */
        g.reader = w;
        g.in_call = 0;
        g.watcher = NULL;
        return;
    }
    if (!g.in_call && now - g.last_event_ns >= HOST_WATCH_IDLE_NS)
        g.watcher = NULL; /* nothing flows: sleep until a reader calls for a watcher */
}

/* One frame, before the pool runs or after it is done. */
static size_t read_alone(host_worker_t *w)
{
    size_t len;

    dcb_mutex_lock(&g.lock);
    g.reader = w;
    len = take_frame(w);
    g.reader = NULL;
    dcb_mutex_unlock(&g.lock);
    return len;
}

static void worker_main(void *arg)
{
    host_worker_t *w = arg;

    dcb_mutex_lock(&g.lock);
    for (;;) {
        size_t len;
        uint64_t t0, dt;
        int keep, event, urgent;
        dcb_frame_hdr_t hdr;

        while (!g.eof && g.reader != NULL && g.reader != w)
            follow(w);
        if (g.eof)
            break;
        g.reader = w;
        len = take_frame(w);
        if (len == 0)
            break;
        urgent = dcb_frame_header(w->w_frame, len, &g.lim, &hdr) == 0 && frame_urgent(hdr.type);
        /*
         * Keep the role unless this call, or the frames already waiting
         * behind it, would cost more than waking a follower to read on.
         */
        keep = g.avg_call_ns < HOST_HANDOFF_NS;
        if (keep && g.avg_call_ns > 0) {
            /* Serving `limit` more frames alone would cost more than a wake-up. */
            unsigned limit = (unsigned)((HOST_HANDOFF_NS + g.avg_call_ns - 1) / g.avg_call_ns);
            keep = frames_waiting(limit) < limit;
        }
        t0 = dcb_now_ns();
        g.last_event_ns = t0;
        if (keep) {
            g.in_call = 1;
            g.call_start_ns = t0;
            if (g.watcher == NULL)
                dcb_cond_signal(&g.follow); /* someone watch over this call */
        } else {
            g.reader = NULL;
            dcb_cond_signal(&g.follow);
        }
        dcb_mutex_unlock(&g.lock);
        /* A result waits for the others only while this thread reads on. */
        event = serve(w, len, !keep);
        dt = dcb_now_ns() - t0;
        dcb_mutex_lock(&g.lock);
        if (event)
            g.avg_call_ns = dt > g.avg_call_ns ? g.avg_call_ns + (dt - g.avg_call_ns) / 8u
                                               : g.avg_call_ns - (g.avg_call_ns - dt) / 8u;
        if (g.reader == w) {
            g.in_call = 0;
            /*
             * Results wait for the frames read with them, but a server
             * thread's answer only for another one, and none for long.
             */
            if ((urgent && !urgent_next()) || out_overdue()) {
                dcb_mutex_unlock(&g.lock);
                out_flush();
                dcb_mutex_lock(&g.lock);
            }
        } else if (keep) {
            /* Taken over while inside the plugin: what we hold goes now. */
            dcb_mutex_unlock(&g.lock);
            out_flush();
            dcb_mutex_lock(&g.lock);
        }
    }
    g.nactive--;
    dcb_cond_broadcast(&g.done);
    dcb_mutex_unlock(&g.lock);
}

static int worker_init(host_worker_t *w)
{
    memset(w, 0, sizeof(*w));
    w->w_frame = malloc(DCB_FRAME_HEADER_SIZE + HOST_MAX_FRAME);
    w->w_arena_mem = malloc(dcb_arena_size_for(HOST_MAX_FRAME));
    w->w_out_cap = 4096;
    w->w_out = malloc(w->w_out_cap);
    if (w->w_frame == NULL || w->w_arena_mem == NULL || w->w_out == NULL)
        return DCB_OS_ENOMEM;
    dcb_arena_init(&w->w_arena, w->w_arena_mem, dcb_arena_size_for(HOST_MAX_FRAME));
    return 0;
}

static uint32_t table_hooks(const DHCP_CALLOUT_TABLE *t)
{
    uint32_t hooks = 0;

    if (t->DhcpControlHook != NULL)
        hooks |= DCB_HOOK_BIT(DCB_HOOK_CONTROL);
    if (t->DhcpNewPktHook != NULL)
        hooks |= DCB_HOOK_BIT(DCB_HOOK_NEWPKT);
    if (t->DhcpPktDropHook != NULL)
        hooks |= DCB_HOOK_BIT(DCB_HOOK_PKTDROP);
    if (t->DhcpPktSendHook != NULL)
        hooks |= DCB_HOOK_BIT(DCB_HOOK_PKTSEND);
    if (t->DhcpAddressDelHook != NULL)
        hooks |= DCB_HOOK_BIT(DCB_HOOK_ADDRESSDEL);
    if (t->DhcpAddressOfferHook != NULL)
        hooks |= DCB_HOOK_BIT(DCB_HOOK_ADDRESSOFFER);
    if (t->DhcpHandleOptionsHook != NULL)
        hooks |= DCB_HOOK_BIT(DCB_HOOK_HANDLEOPTIONS);
    if (t->DhcpDeleteClientHook != NULL)
        hooks |= DCB_HOOK_BIT(DCB_HOOK_DELETECLIENT);
    return hooks;
}

int host_main(int argc, char **argv)
{
    static WCHAR empty_chain[1] = {0};
    Dcb__HostLoaded loaded = DCB__HOST_LOADED__INIT;
    host_worker_t first;
    host_worker_t *workers = NULL;
    Dcb__HostLoad *load;
    LPDHCP_ENTRY_POINT_FUNC entry;
    dcb_msg_t msg;
    uint32_t memory_mb = 0, threads, broker_pid = 0;
    sandbox_opts_t sbx = {0, 0, NULL, NULL};
    char err[512] = "", sbx_err[400];
    dcb_dl_t *dl;
    size_t len;
    int rc;

    dcb_log_set_tag("dcb-host");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--memory-mb") == 0 && i + 1 < argc)
            memory_mb = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--host-user") == 0 && i + 1 < argc)
            sbx.so_user = argv[++i];
        else if (strcmp(argv[i], "--write-paths") == 0 && i + 1 < argc)
            sbx.so_write_paths = argv[++i];
        else if (strcmp(argv[i], "--broker-pid") == 0 && i + 1 < argc)
            broker_pid = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--plugin-name") == 0 && i + 1 < argc)
            snprintf(g.plugin, sizeof(g.plugin), "%s", argv[++i]);
    }
    sandbox_host_early();
    sandbox_host_tie(broker_pid);
    rc = hostio_adopt();
    if (rc != 0) {
        dcb_log(DCB_LOG_ERROR, "no channel on stdio slot 3 (%d): --host is for the broker only",
                rc);
        return 2;
    }
    dcb_mutex_init(&g.lock);
    dcb_cond_init(&g.follow);
    dcb_cond_init(&g.done);
    dcb_mutex_init(&g.wlock);
    dcb_mutex_init(&g.state_lock);
    memset(guard_pattern, HOST_GUARD_BYTE, sizeof(guard_pattern));
    g.lim.max_frame = HOST_MAX_FRAME;
    g.lim.max_packet = DCB_MAX_FRAME_EVENT - 1024u;
    g.rcap = 2 * (DCB_FRAME_HEADER_SIZE + HOST_MAX_FRAME);
    g.rbuf = malloc(g.rcap);
    g.ocap = HOST_OUT_FLUSH;
    g.obuf = malloc(g.ocap);
    if (g.rbuf == NULL || g.obuf == NULL || worker_init(&first) != 0) {
        dcb_log(DCB_LOG_ERROR, "out of memory");
        return 2;
    }

    /* 1. HostLoad. */
    len = read_alone(&first);
    if (len == 0)
        return 0;
    rc = dcb_frame_decode(first.w_frame, len, &g.lim, &first.w_arena, &msg);
    if (rc != 0 || msg.type != DCB__FRAME_TYPE__FT_HOST_LOAD)
        fatal_protocol("expected HostLoad", rc != 0 ? rc : DCB_E_TYPE);
    load = (Dcb__HostLoad *)msg.msg;
    if (load->has_max_packet_size && load->max_packet_size >= 576 &&
        load->max_packet_size < g.lim.max_packet)
        g.lim.max_packet = load->max_packet_size;
    threads = load->has_threads ? load->threads : 4;
    dcb_log_set_tag(g.plugin[0] ? g.plugin : load->plugin);

    /* 2. Limits, then the plugin's code. */
    sbx.so_memory_mb = memory_mb;
    sbx.so_threads = threads;
    loaded.pid = dcb_getpid();
    loaded.has_pid = 1;
    /* No sandbox, no plugin: a host that cannot confine itself reports and loads nothing. */
    if (sandbox_host_limits(&sbx, sbx_err, sizeof(sbx_err)) != 0) {
        dcb_log(DCB_LOG_ERROR, "sandbox: %s; not loading the plugin", sbx_err);
        snprintf(err, sizeof(err), "sandbox: %s", sbx_err);
        loaded.error = err;
        dl = NULL;
    } else {
        dl = dcb_dl_open(load->dll_path, err, sizeof(err));
    }
    if (loaded.error != NULL) {
        /* Reported below. */
    } else if (dl == NULL) {
        loaded.error = err;
    } else {
        entry = (LPDHCP_ENTRY_POINT_FUNC)dcb_dl_sym(dl, DHCP_CALLOUT_ENTRY_POINT);
        if (entry == NULL) {
            snprintf(err, sizeof(err), "%s: no %s export", load->dll_path,
                     DHCP_CALLOUT_ENTRY_POINT);
            loaded.error = err;
        } else {
            DWORD status;
            memset(&g.table, 0, sizeof(g.table));
            status = entry(empty_chain, 0, &g.table);
            loaded.has_entry_status = 1;
            loaded.entry_status = status;
            if (status != ERROR_SUCCESS) {
                snprintf(err, sizeof(err), "%s returned %u", DHCP_CALLOUT_ENTRY_POINT,
                         (unsigned)status);
                loaded.error = err;
            } else {
                loaded.ok = 1;
                loaded.hooks = table_hooks(&g.table);
            }
        }
    }
    /* As the server does: START right after a successful entry point. */
    if (loaded.ok && load->has_send_start && load->send_start && g.table.DhcpControlHook != NULL) {
        g.table.DhcpControlHook(DHCP_CONTROL_START, NULL);
        g.started = 1;
    }
    send_msg(&first, DCB__FRAME_TYPE__FT_HOST_LOADED, &loaded.base, 1);
    if (!loaded.ok) {
        /* Reported; the broker decides what comes next. Wait for it to close. */
        while (read_alone(&first) != 0)
            ;
        hostio_exit(0);
    }

    /* 3. The calling pool: threads - 1 more workers, and this thread. */
    if (threads > 1) {
        workers = calloc(threads - 1, sizeof(*workers));
        if (workers == NULL)
            threads = 1;
    }
    g.nactive = 1; /* this thread */
    for (uint32_t i = 0; i + 1 < threads; i++) {
        dcb_mutex_lock(&g.lock);
        g.nactive++;
        dcb_mutex_unlock(&g.lock);
        if (worker_init(&workers[i]) != 0 ||
            dcb_thread_create(&workers[i].w_thread, worker_main, &workers[i]) != 0) {
            dcb_mutex_lock(&g.lock);
            g.nactive--;
            dcb_mutex_unlock(&g.lock);
            dcb_log(DCB_LOG_WARN, "could start only %u of %u threads", i + 1, threads);
            break;
        }
    }
    worker_main(&first);
    /* Calls still in progress finish first (a stuck one is not waited for long). */
    {
        uint64_t end = dcb_now_ns() + HOST_STOP_WAIT_MS * 1000000ull;
        dcb_mutex_lock(&g.lock);
        while (g.nactive > 0 && dcb_now_ns() < end)
            dcb_cond_timedwait(&g.done, &g.lock, 10);
        dcb_mutex_unlock(&g.lock);
    }

    /* 4. The channel closed (worker_main returns only then): stop the plugin as the server would,
     * and go. */
    dcb_mutex_lock(&g.state_lock);
    rc = g.started;
    dcb_mutex_unlock(&g.state_lock);
    if (rc && g.table.DhcpControlHook != NULL)
        g.table.DhcpControlHook(DHCP_CONTROL_STOP, NULL);
    hostio_exit(0);
    return 0;
}
