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
 * not pay a thread hand-off. So every worker runs the same loop
 * (leader/followers): take the read lock, take one frame off the channel,
 * release the lock, call the hook, write the result under the write lock.
 * The thread that read an event calls the hook and answers it; while it is
 * inside the plugin, another worker reads. Ping/Pong keeps working as long
 * as one worker is not stuck inside the plugin.
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
    dcb_mutex_t rlock;
    dcb_mutex_t wlock;
    dcb_mutex_t state_lock;
    dcb_cond_t state_cond;
    int eof;
    uint8_t *rbuf;
    size_t rlen;
    size_t rcap;
    dcb_limits_t lim;
    DHCP_CALLOUT_TABLE table;
    char plugin[128];
    int started; /* the plugin has had START and no STOP since (under state_lock) */
} g;

static void fatal_protocol(const char *what, int rc)
{
    dcb_log(DCB_LOG_ERROR, "protocol violation from the broker: %s (%s); exiting", what,
            dcb_proto_strerror(rc));
    hostio_exit(3);
}

/*
 * Takes one whole frame off the channel into out (HOST_MAX_FRAME + header).
 * Returns its length, or 0 at end of channel.
 */
static size_t read_frame(uint8_t *out)
{
    size_t len = 0;

    dcb_mutex_lock(&g.rlock);
    while (!g.eof) {
        dcb_frame_hdr_t hdr;
        int rc = g.rlen > 0 ? dcb_frame_header(g.rbuf, g.rlen, &g.lim, &hdr) : DCB_E_TRUNCATED;

        if (rc == 0 && g.rlen >= DCB_FRAME_HEADER_SIZE + (size_t)hdr.length) {
            len = DCB_FRAME_HEADER_SIZE + (size_t)hdr.length;
            memcpy(out, g.rbuf, len);
            memmove(g.rbuf, g.rbuf + len, g.rlen - len);
            g.rlen -= len;
            break;
        }
        if (rc != 0 && rc != DCB_E_TRUNCATED)
            fatal_protocol("bad frame header", rc);
        rc = hostio_read(g.rbuf + g.rlen, g.rcap - g.rlen);
        if (rc <= 0) {
            dcb_mutex_lock(&g.state_lock);
            g.eof = 1;
            dcb_cond_broadcast(&g.state_cond);
            dcb_mutex_unlock(&g.state_lock);
            break;
        }
        g.rlen += (size_t)rc;
    }
    dcb_mutex_unlock(&g.rlock);
    return len;
}

static int send_msg(host_worker_t *w, uint8_t type, const ProtobufCMessage *msg)
{
    size_t need = dcb_frame_size(msg);
    int n, rc;

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
    rc = hostio_write_all(w->w_out, (size_t)n);
    dcb_mutex_unlock(&g.wlock);
    if (rc != 0) {
        /* The broker is gone: nothing left to do. */
        hostio_exit(0);
    }
    return 0;
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

static int guard_intact(const uint8_t *buf, size_t cap)
{
    for (size_t i = 0; i < HOST_GUARD; i++)
        if (buf[cap + i] != HOST_GUARD_BYTE)
            return 0;
    return 1;
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

static void handle_event(host_worker_t *w, uint8_t type, ProtobufCMessage *m)
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
    send_msg(w, DCB__FRAME_TYPE__FT_HOST_RESULT, &res.base);
}

static void worker_main(void *arg)
{
    host_worker_t *w = arg;

    for (;;) {
        size_t len = read_frame(w->w_frame);
        dcb_msg_t msg;
        int rc;

        if (len == 0)
            return;
        rc = dcb_frame_decode(w->w_frame, len, &g.lim, &w->w_arena, &msg);
        if (rc != 0)
            fatal_protocol("bad frame", rc);
        if (msg.type == DCB__FRAME_TYPE__FT_PING) {
            Dcb__Ping pong = *(Dcb__Ping *)msg.msg;
            pong.base.descriptor = &dcb__ping__descriptor;
            send_msg(w, DCB__FRAME_TYPE__FT_PONG, &pong.base);
            continue;
        }
        if (msg.type == DCB__FRAME_TYPE__FT_PONG)
            continue;
        if (dcb_frame_event_hook(msg.type) < 0 ||
            dcb_event_header(msg.type, msg.msg)->request_id == 0)
            fatal_protocol("unexpected frame type", DCB_E_TYPE);
        handle_event(w, msg.type, msg.msg);
    }
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
    uint32_t memory_mb = 0, threads;
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
        else if (strcmp(argv[i], "--plugin-name") == 0 && i + 1 < argc)
            snprintf(g.plugin, sizeof(g.plugin), "%s", argv[++i]);
    }
    sandbox_host_early();
    rc = hostio_adopt();
    if (rc != 0) {
        dcb_log(DCB_LOG_ERROR, "no channel on stdio slot 3 (%d): --host is for the broker only",
                rc);
        return 2;
    }
    dcb_mutex_init(&g.rlock);
    dcb_mutex_init(&g.wlock);
    dcb_mutex_init(&g.state_lock);
    dcb_cond_init(&g.state_cond);
    g.lim.max_frame = HOST_MAX_FRAME;
    g.lim.max_packet = DCB_MAX_FRAME_EVENT - 1024u;
    g.rcap = 2 * (DCB_FRAME_HEADER_SIZE + HOST_MAX_FRAME);
    g.rbuf = malloc(g.rcap);
    if (g.rbuf == NULL || worker_init(&first) != 0) {
        dcb_log(DCB_LOG_ERROR, "out of memory");
        return 2;
    }

    /* 1. HostLoad. */
    len = read_frame(first.w_frame);
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
    send_msg(&first, DCB__FRAME_TYPE__FT_HOST_LOADED, &loaded.base);
    if (!loaded.ok) {
        /* Reported; the broker decides what comes next. Wait for it to close. */
        while (read_frame(first.w_frame) != 0)
            ;
        hostio_exit(0);
    }

    /* 3. The calling pool: threads - 1 more workers, and this thread. */
    if (threads > 1) {
        workers = calloc(threads - 1, sizeof(*workers));
        if (workers == NULL)
            threads = 1;
    }
    for (uint32_t i = 0; i + 1 < threads; i++) {
        if (worker_init(&workers[i]) != 0 ||
            dcb_thread_create(&workers[i].w_thread, worker_main, &workers[i]) != 0) {
            dcb_log(DCB_LOG_WARN, "could start only %u of %u threads", i + 1, threads);
            break;
        }
    }
    worker_main(&first);

    /* 4. The channel closed: stop the plugin as the server would, and go. */
    dcb_mutex_lock(&g.state_lock);
    while (!g.eof)
        dcb_cond_wait(&g.state_cond, &g.state_lock);
    rc = g.started;
    dcb_mutex_unlock(&g.state_lock);
    if (rc && g.table.DhcpControlHook != NULL)
        g.table.DhcpControlHook(DHCP_CONTROL_STOP, NULL);
    hostio_exit(0);
    return 0;
}
