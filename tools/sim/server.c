/*
 * server.c — the emulated DHCP server: its threads, its locks, and every
 * hook call, as callout-api.md describes the real one.
 *
 *   receive thread (the caller of sim_server_run)
 *       takes a datagram into a 2000-byte server buffer and calls NewPkt
 *       with no lock held. ProcessIt = FALSE: the final PROCESSED drop, in
 *       the packet-queue critical section, and nothing else. Otherwise the
 *       packet is queued for the workers.
 *   worker threads (CPU count + 1)
 *       take a packet and, under the configuration read lock, run
 *       HandleOptions (twice for a DISCOVER: again after the conflict-
 *       detection ping), AddressDel, AddressOffer, in-processing drops and
 *       PktSend. Then the final PROCESSED drop inside the packet-queue
 *       critical section.
 *   lease scavenger
 *       under the lease database lock, deletes expired leases and calls
 *       DeleteClient for each.
 *
 * The contract as the server keeps it: PktContext from NewPkt is passed
 * back on every later hook of that packet, and Reserved is the same
 * per-packet value on all of them; a buffer a hook replaced is used for all
 * later processing and sent, and never freed here; replies are padded to
 * 300 bytes; every packet ends with exactly one PROCESSED drop; return
 * values are ignored; packets still queued at STOP are freed without any
 * callback. Whatever a hook does that breaks the contract and can be seen
 * without crashing is counted (sim_violation_t).
 *
 * Every decision the server makes depends only on the packet's bytes (as
 * the plugins left them), never on thread timing, so the record of a run
 * is reproducible from its seed.
 */
#include "dcbsim.h"
#include "dcb_os.h"

#include <stdlib.h>
#include <string.h>

#define GUARD_BYTE 0xA5
#define RESERVED_BYTE 0x5A
#define RESERVED_LEN 32
#define DUP_WINDOW 64
#define MADCAP_UNKNOWN_DROP 0x0C /* the unnamed code the real server uses on one path */

typedef struct sim_pkt {
    struct sim_pkt *p_next;
    uint64_t p_seq;
    uint8_t *p_buf;  /* the server's own receive buffer */
    uint8_t *p_data; /* the packet as the hooks left it */
    DWORD p_size;
    LPVOID p_ctx;
    int p_duplicate;
    int p_unusable; /* NewPkt left a buffer the server cannot use */
    uint8_t p_reserved[RESERVED_LEN];
} sim_pkt_t;

typedef struct dup_entry {
    uint64_t d_hash;
    uint32_t d_len;
} dup_entry_t;

typedef struct server {
    const sim_config_t *sv_cf;
    DHCP_CALLOUT_TABLE sv_tbl;
    sim_stats_t *sv_st;
    sim_record_t *sv_rec;
    DWORD sv_ip_net;  /* the receiving socket's address, network order */
    DWORD sv_ip_host; /* the same, host order */

    /* The packet queue and its critical section. */
    dcb_mutex_t sv_qlock;
    dcb_cond_t sv_qnonempty;
    dcb_cond_t sv_qnonfull;
    sim_pkt_t *sv_qhead, *sv_qtail;
    unsigned sv_qlen;
    int sv_qclosed;
    int sv_qabandon;

    dcb_rwlock_t sv_cfglock; /* configuration read lock */
    dcb_mutex_t sv_dblock;   /* lease database lock */
    sim_leases_t *sv_leases;

    dcb_mutex_t sv_scav_lock;
    dcb_cond_t sv_scav_cond;
    int sv_scav_stop;

    /* Receive-thread only: recently queued packets, for duplicates. */
    dup_entry_t sv_dups[DUP_WINDOW];
    unsigned sv_dup_next;
} server_t;

typedef struct worker {
    server_t *w_sv;
    dcb_thread_t w_thread;
    uint8_t *w_scratch; /* a copy of the packet, to see what a hook changed */
} worker_t;

/* What the unused tail of a server buffer holds while a hook runs. */
static uint8_t guard_bytes[SIM_SERVER_BUF];

void sim_config_default(sim_config_t *cf, const sim_scope_t *scope)
{
    memset(cf, 0, sizeof(*cf));
    cf->cf_workers = sim_cpu_count() + 1;
    cf->cf_queue = 1024;
    cf->cf_rate = 0;
    cf->cf_count = 10000;
    cf->cf_lease_ms = 2000;
    cf->cf_scope = scope;
}

static DWORD net_order(uint32_t host)
{
    uint8_t be[4];
    DWORD v;
    sim_put_be32(be, host);
    memcpy(&v, be, 4);
    return v;
}

static void count(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static void violation(server_t *sv, sim_violation_t v)
{
    count(&sv->sv_st->st_violations[v]);
}

static void hook_done(server_t *sv, dcb_hook_t h, uint64_t t0)
{
    uint64_t dt = dcb_now_ns() - t0;
    count(&sv->sv_st->st_calls[h]);
    dcb_hist_record(&sv->sv_st->st_lat[h], dt);
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ------------------------------------------------------------------ */
/* Checks around hooks that may change or replace a buffer             */
/* ------------------------------------------------------------------ */

static void guard_fill(uint8_t *buf, size_t from)
{
    if (from < SIM_SERVER_BUF)
        memset(buf + from, GUARD_BYTE, SIM_SERVER_BUF - from);
}

static int guard_intact(const uint8_t *buf, size_t from)
{
    if (from >= SIM_SERVER_BUF)
        return 1;
    return memcmp(buf + from, guard_bytes, SIM_SERVER_BUF - from) == 0;
}

/*
 * After NewPkt or PktSend: *data and *size may point at the server's buffer
 * (edited in place) or at the plugin's own. Returns 0 when the server can
 * use the result, -1 when it cannot (and must not touch it).
 */
static int check_modifiable(server_t *sv, uint8_t *server_buf, DWORD orig_size, uint8_t **data,
                            DWORD *size)
{
    if (*data == server_buf) {
        if (*size > orig_size)
            violation(sv, SIM_V_GREW_IN_PLACE);
        if (*size > SIM_SERVER_BUF) {
            violation(sv, SIM_V_SIZE_PAST_BUFFER);
            *size = SIM_SERVER_BUF;
        }
        size_t from = *size > orig_size ? *size : orig_size;
        if (!guard_intact(server_buf, from)) {
            violation(sv, SIM_V_WROTE_PAST_SIZE);
            guard_fill(server_buf, from);
        }
        return 0;
    }
    if (*data == NULL || *size == 0) {
        violation(sv, SIM_V_REPLACED_EMPTY);
        return -1;
    }
    if (*size > SIM_MAX_UDP) {
        violation(sv, SIM_V_REPLACED_TOO_BIG);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Hook calls                                                          */
/* ------------------------------------------------------------------ */

static void call_drop(server_t *sv, sim_pkt_t *p, DWORD code)
{
    LPDHCP_DROP_SEND fn = sv->sv_tbl.DhcpPktDropHook;
    if (fn == NULL)
        return;
    uint8_t *data = p->p_data;
    DWORD size = p->p_size;
    uint64_t t0 = dcb_now_ns();
    fn(&data, &size, code, sv->sv_ip_net, p->p_reserved, p->p_ctx);
    hook_done(sv, DCB_HOOK_PKTDROP, t0);
    if (data != p->p_data || size != p->p_size)
        violation(sv, SIM_V_DROP_CHANGED_PKT); /* the server ignores it */
}

/* Snapshot the packet so a notification hook's writes can be seen. */
static size_t snap(worker_t *w, const sim_pkt_t *p)
{
    if (p->p_unusable)
        return 0;
    size_t n = p->p_size <= SIM_MAX_UDP ? p->p_size : SIM_MAX_UDP;
    memcpy(w->w_scratch, p->p_data, n);
    return n;
}

static void check_snap(worker_t *w, const sim_pkt_t *p, size_t n)
{
    if (n > 0 && memcmp(w->w_scratch, p->p_data, n) != 0) {
        violation(w->w_sv, SIM_V_READONLY_MODIFIED);
        /* The server would go on with what the plugin left: so do we. */
    }
}

static void call_handle_options(worker_t *w, sim_pkt_t *p, const sim_dhcp_msg_t *m)
{
    server_t *sv = w->w_sv;
    LPDHCP_HANDLE_OPTIONS fn = sv->sv_tbl.DhcpHandleOptionsHook;
    if (fn == NULL)
        return;
    DHCP_SERVER_OPTIONS so, orig;
    sim_dhcp_server_options(m, &so);
    orig = so;
    size_t n = snap(w, p);
    uint64_t t0 = dcb_now_ns();
    fn(p->p_data, p->p_size, p->p_reserved, p->p_ctx, &so);
    hook_done(sv, DCB_HOOK_HANDLEOPTIONS, t0);
    check_snap(w, p, n);
    if (memcmp(&so, &orig, sizeof(so)) != 0) {
        /*
         * In process the server reads the struct back. Pointers it then
         * follows must still point into the packet.
         */
        uintptr_t lo = (uintptr_t)p->p_data, hi = lo + p->p_size;
        const void *ptrs[] = {so.MessageType,      so.SubnetMask,
                              so.RequestedAddress, so.RequestLeaseTime,
                              so.OverlayFields,    so.RouterAddress,
                              so.Server,           so.ParameterRequestList,
                              so.MachineName,      so.ClientHardwareAddress,
                              so.ClassIdentifier,  so.VendorClass,
                              so.DNSName,          so.DSDomainName};
        for (size_t i = 0; i < sizeof(ptrs) / sizeof(ptrs[0]); i++) {
            uintptr_t a = (uintptr_t)ptrs[i];
            if (ptrs[i] != NULL && (a < lo || a >= hi)) {
                violation(sv, SIM_V_OPTIONS_OUTSIDE);
                break;
            }
        }
    }
}

static void call_address_del(worker_t *w, sim_pkt_t *p, DWORD code, uint32_t alt)
{
    server_t *sv = w->w_sv;
    LPDHCP_PROB fn = sv->sv_tbl.DhcpAddressDelHook;
    if (fn == NULL)
        return;
    size_t n = snap(w, p);
    uint64_t t0 = dcb_now_ns();
    fn(p->p_data, p->p_size, code, sv->sv_ip_net, alt, p->p_reserved, p->p_ctx);
    hook_done(sv, DCB_HOOK_ADDRESSDEL, t0);
    check_snap(w, p, n);
}

static void call_address_offer(worker_t *w, sim_pkt_t *p, DWORD code, uint32_t addr, DWORD type,
                               DWORD lease)
{
    server_t *sv = w->w_sv;
    LPDHCP_GIVE_ADDRESS fn = sv->sv_tbl.DhcpAddressOfferHook;
    if (fn == NULL)
        return;
    size_t n = snap(w, p);
    uint64_t t0 = dcb_now_ns();
    /* IpAddress in host order here, unlike the packet hooks. */
    fn(p->p_data, p->p_size, code, sv->sv_ip_host, addr, type, lease, p->p_reserved, p->p_ctx);
    hook_done(sv, DCB_HOOK_ADDRESSOFFER, t0);
    check_snap(w, p, n);
}

/* ------------------------------------------------------------------ */
/* Processing on a worker                                              */
/* ------------------------------------------------------------------ */

static void server_drop(worker_t *w, sim_pkt_t *p, DWORD code, int *recorded)
{
    server_t *sv = w->w_sv;
    count(&sv->sv_st->st_drops[sim_drop_slot(code)]);
    call_drop(sv, p, code);
    if (!*recorded && sv->sv_rec != NULL)
        sim_record_set(sv->sv_rec, p->p_seq, SIM_OUT_SERVER_DROP, code, NULL, 0);
    *recorded = 1;
}

/* Sends a reply through PktSend; reply is a server buffer of SIM_SERVER_BUF bytes. */
static void send_reply(worker_t *w, sim_pkt_t *p, uint8_t *reply, size_t len, int *recorded)
{
    server_t *sv = w->w_sv;
    if (len < SIM_MIN_REPLY) {
        memset(reply + len, 0, SIM_MIN_REPLY - len);
        len = SIM_MIN_REPLY;
    }
    uint8_t *data = reply;
    DWORD size = (DWORD)len;
    int modified = 0;
    LPDHCP_DROP_SEND fn = sv->sv_tbl.DhcpPktSendHook;
    if (fn != NULL) {
        guard_fill(reply, len);
        memcpy(w->w_scratch, reply, len);
        uint64_t t0 = dcb_now_ns();
        fn(&data, &size, DHCP_SEND_PACKET, sv->sv_ip_net, p->p_reserved, p->p_ctx);
        hook_done(sv, DCB_HOOK_PKTSEND, t0);
        if (check_modifiable(sv, reply, (DWORD)len, &data, &size) != 0) {
            count(&sv->sv_st->st_replies_unsent);
            if (sv->sv_rec != NULL)
                sim_record_set(sv->sv_rec, p->p_seq, SIM_OUT_UNSENT, 0, NULL, size);
            *recorded = 1;
            return;
        }
        modified = data != reply || size != len || memcmp(w->w_scratch, data, len) != 0;
    }
    /* "Sending" is counting and recording the bytes that would go out. */
    count(&sv->sv_st->st_replies);
    if (modified)
        count(&sv->sv_st->st_replies_modified);
    if (sv->sv_rec != NULL)
        sim_record_set(sv->sv_rec, p->p_seq, SIM_OUT_REPLY, 0, data, size);
    *recorded = 1;
}

static void put_common(sim_dhcp_buf_t *b, const server_t *sv, const sim_subnet_t *sub,
                       const sim_dhcp_msg_t *m)
{
    const sim_scope_t *sc = sv->sv_cf->cf_scope;
    sim_dhcp_put_opt_u32(b, 1, sub->s_mask);
    sim_dhcp_put_opt_u32(b, 3, sub->s_router);
    uint8_t dns[8];
    sim_put_be32(dns, sc->sc_dns[0]);
    sim_put_be32(dns + 4, sc->sc_dns[1]);
    sim_dhcp_put_opt(b, 6, dns, 8);
    const uint8_t *prl = m->m_opt[55];
    for (unsigned i = 0; prl != NULL && i < m->m_optlen[55]; i++)
        if (prl[i] == 15)
            sim_dhcp_put_opt(b, 15, sc->sc_domain, strlen(sc->sc_domain));
}

/* Builds a DHCP reply into a server buffer; returns its length before padding. */
static size_t build_reply(const server_t *sv, const sim_dhcp_msg_t *m, const sim_subnet_t *sub,
                          uint8_t type, uint32_t yiaddr, uint8_t *out)
{
    const sim_scope_t *sc = sv->sv_cf->cf_scope;
    sim_dhcp_buf_t b;
    sim_dhcp_buf_init(&b, out, SIM_SERVER_BUF);
    uint32_t ciaddr = (type == SIM_DHCPACK || type == 0) ? m->m_ciaddr : 0;
    sim_dhcp_put_header(&b, SIM_BOOTREPLY, m->m_chaddr, m->m_hlen, m->m_xid, m->m_flags, ciaddr,
                        yiaddr, 0, m->m_giaddr);
    out[1] = m->m_htype;
    if (type != 0) {
        sim_dhcp_put_opt_u8(&b, 53, type);
        sim_dhcp_put_opt_u32(&b, 54, sc->sc_server);
    }
    if (type == SIM_DHCPNAK) {
        static const char msg[] = "requested address not available";
        sim_dhcp_put_opt(&b, 56, msg, sizeof(msg) - 1);
    } else {
        if (type == SIM_DHCPOFFER || (type == SIM_DHCPACK && yiaddr != 0)) {
            sim_dhcp_put_opt_u32(&b, 51, sc->sc_lease_secs);
            sim_dhcp_put_opt_u32(&b, 58, sc->sc_lease_secs / 2);
            sim_dhcp_put_opt_u32(&b, 59, sc->sc_lease_secs / 8 * 7);
        }
        put_common(&b, sv, sub, m);
    }
    if (m->m_opt[82] != NULL) /* RFC 3046: echo relay agent information */
        sim_dhcp_put_opt(&b, 82, m->m_opt[82], m->m_optlen[82]);
    size_t n = sim_dhcp_finish(&b, 0);
    return n;
}

static void bind_lease(server_t *sv, const uint8_t *key, size_t klen, uint32_t addr,
                       const sim_dhcp_msg_t *m, uint32_t client_type)
{
    uint64_t expiry = dcb_now_ns() + (uint64_t)sv->sv_cf->cf_lease_ms * 1000000ull;
    dcb_mutex_lock(&sv->sv_dblock);
    sim_leases_bind(sv->sv_leases, key, klen, addr, m->m_chaddr, m->m_hlen, client_type, expiry);
    dcb_mutex_unlock(&sv->sv_dblock);
}

static void unbind_lease(server_t *sv, const uint8_t *key, size_t klen)
{
    dcb_mutex_lock(&sv->sv_dblock);
    sim_leases_remove(sv->sv_leases, key, klen);
    dcb_mutex_unlock(&sv->sv_dblock);
}

static void process_madcap(worker_t *w, sim_pkt_t *p, uint8_t *reply, int *recorded)
{
    uint8_t type = 0;
    uint32_t xid = 0;
    sim_madcap_probe(p->p_data, p->p_size, &type, &xid);
    if (type != 3 && type != 8) { /* only REQUEST and INFORM are answered */
        server_drop(w, p, MADCAP_UNKNOWN_DROP, recorded);
        return;
    }
    const sim_scope_t *sc = w->w_sv->sv_cf->cf_scope;
    reply[0] = 1;
    reply[1] = 5; /* ACK */
    sim_put_be16(reply + 2, 1);
    sim_put_be32(reply + 4, xid);
    sim_put_be16(reply + 8, 1); /* lease time */
    sim_put_be16(reply + 10, 4);
    sim_put_be32(reply + 12, 3600);
    sim_put_be16(reply + 16, 2); /* server identifier: family, address */
    sim_put_be16(reply + 18, 6);
    sim_put_be16(reply + 20, 1);
    sim_put_be32(reply + 22, sc->sc_server);
    sim_put_be16(reply + 26, 0); /* end */
    sim_put_be16(reply + 28, 0);
    send_reply(w, p, reply, 30, recorded);
}

static void process_dhcp(worker_t *w, sim_pkt_t *p, uint8_t *reply, int *recorded)
{
    server_t *sv = w->w_sv;
    const sim_scope_t *sc = sv->sv_cf->cf_scope;
    sim_dhcp_msg_t m;
    uint8_t key[64];

    int rc = sim_dhcp_parse(&m, p->p_data, p->p_size);
    if (rc != SIM_DHCP_OK) {
        server_drop(w, p, DHCP_DROP_INVALID, recorded);
        if (rc == SIM_DHCP_EOPTLEN) /* the real server reports INVALID more than once */
            server_drop(w, p, DHCP_DROP_INVALID, recorded);
        return;
    }
    if (m.m_op != SIM_BOOTREQUEST ||
        (m.m_msgtype != 0 && m.m_msgtype != SIM_DHCPDISCOVER && m.m_msgtype != SIM_DHCPREQUEST &&
         m.m_msgtype != SIM_DHCPDECLINE && m.m_msgtype != SIM_DHCPRELEASE &&
         m.m_msgtype != SIM_DHCPINFORM)) {
        server_drop(w, p, DHCP_DROP_INVALID, recorded);
        return;
    }
    const sim_subnet_t *sub = sim_scope_subnet(sc, m.m_giaddr);
    if (sub == NULL) {
        server_drop(w, p, DHCP_DROP_NO_SUBNETS, recorded);
        return;
    }
    call_handle_options(w, p, &m);
    size_t klen = sim_dhcp_client_key(&m, key, sizeof(key));
    uint32_t server_id = sim_dhcp_opt_addr(&m, 54);
    uint32_t addr;
    size_t n;

    switch (m.m_msgtype) {
    case 0: /* BOOTP */
        if (sub->s_full) {
            server_drop(w, p, DHCP_DROP_NOADDRESS, recorded);
            return;
        }
        addr = sim_scope_address(sub, key, klen, NULL);
        call_address_offer(w, p, DHCP_GIVE_ADDRESS_NEW, addr, DHCP_CLIENT_BOOTP, 0xffffffffu);
        bind_lease(sv, key, klen, addr, &m, DHCP_CLIENT_BOOTP);
        n = build_reply(sv, &m, sub, 0, addr, reply);
        send_reply(w, p, reply, n, recorded);
        return;
    case SIM_DHCPDISCOVER: {
        if (sub->s_full) {
            server_drop(w, p, DHCP_DROP_NOADDRESS, recorded);
            return;
        }
        /* Conflict detection: ping each candidate; a reply means "in use". */
        for (unsigned attempt = 0; attempt < 8; attempt++) {
            addr = sim_scope_candidate(sub, key, klen, attempt);
            if (!sim_scope_in_use(addr))
                break;
            call_address_del(w, p, DHCP_PROB_CONFLICT, addr);
        }
        addr = sim_scope_address(sub, key, klen, NULL);
        /* After the ping the server evaluates the options again. */
        call_handle_options(w, p, &m);
        n = build_reply(sv, &m, sub, SIM_DHCPOFFER, addr, reply);
        send_reply(w, p, reply, n, recorded);
        return;
    }
    case SIM_DHCPREQUEST: {
        if (server_id != 0 && server_id != sc->sc_server) {
            server_drop(w, p, DHCP_DROP_WRONG_SERVER, recorded);
            return;
        }
        uint32_t requested = sim_dhcp_opt_addr(&m, 50);
        if (requested == 0)
            requested = m.m_ciaddr;
        uint32_t expected = sub->s_full ? 0 : sim_scope_address(sub, key, klen, NULL);
        if (expected != 0 && requested == expected) {
            /* A client in SELECTING names the server; a renewal does not. */
            DWORD code = server_id != 0 ? DHCP_GIVE_ADDRESS_NEW : DHCP_GIVE_ADDRESS_OLD;
            call_address_offer(w, p, code, expected, DHCP_CLIENT_DHCP, sc->sc_lease_secs);
            bind_lease(sv, key, klen, expected, &m, DHCP_CLIENT_DHCP);
            n = build_reply(sv, &m, sub, SIM_DHCPACK, expected, reply);
        } else {
            call_address_del(w, p, DHCP_PROB_NACKED, requested);
            n = build_reply(sv, &m, sub, SIM_DHCPNAK, 0, reply);
        }
        send_reply(w, p, reply, n, recorded);
        return;
    }
    case SIM_DHCPDECLINE:
        call_address_del(w, p, DHCP_PROB_DECLINE, sim_dhcp_opt_addr(&m, 50));
        unbind_lease(sv, key, klen);
        break;
    case SIM_DHCPRELEASE:
        call_address_del(w, p, DHCP_PROB_RELEASE, m.m_ciaddr);
        unbind_lease(sv, key, klen);
        break;
    case SIM_DHCPINFORM:
        n = build_reply(sv, &m, sub, SIM_DHCPACK, 0, reply);
        send_reply(w, p, reply, n, recorded);
        return;
    default:
        break;
    }
    count(&sv->sv_st->st_no_reply);
    if (sv->sv_rec != NULL)
        sim_record_set(sv->sv_rec, p->p_seq, SIM_OUT_NO_REPLY, 0, NULL, 0);
    *recorded = 1;
}

/* The end of every packet: PROCESSED in the queue's critical section. */
static void finish_packet(server_t *sv, sim_pkt_t *p)
{
    dcb_mutex_lock(&sv->sv_qlock);
    call_drop(sv, p, DHCP_DROP_PROCESSED);
    dcb_mutex_unlock(&sv->sv_qlock);
    count(&sv->sv_st->st_processed);
    for (size_t i = 0; i < RESERVED_LEN; i++)
        if (p->p_reserved[i] != RESERVED_BYTE) {
            violation(sv, SIM_V_RESERVED_WRITTEN);
            break;
        }
    /* Only the server's own buffer is freed: a replacement is the plugin's. */
    if (p->p_data == p->p_buf && !guard_intact(p->p_buf, p->p_size))
        violation(sv, SIM_V_WROTE_PAST_SIZE);
    free(p->p_buf);
    free(p);
}

static void process(worker_t *w, sim_pkt_t *p, uint8_t *reply)
{
    server_t *sv = w->w_sv;
    int recorded = 0;
    dcb_rwlock_rdlock(&sv->sv_cfglock);
    if (p->p_unusable)
        server_drop(w, p, DHCP_DROP_INVALID, &recorded);
    else if (p->p_duplicate)
        server_drop(w, p, DHCP_DROP_DUPLICATE, &recorded);
    else if (sim_madcap_probe(p->p_data, p->p_size, NULL, NULL))
        process_madcap(w, p, reply, &recorded);
    else
        process_dhcp(w, p, reply, &recorded);
    dcb_rwlock_rdunlock(&sv->sv_cfglock);
    finish_packet(sv, p);
}

static void worker_main(void *arg)
{
    worker_t *w = arg;
    server_t *sv = w->w_sv;
    uint8_t *reply = malloc(SIM_SERVER_BUF);
    if (reply == NULL)
        return;
    for (;;) {
        dcb_mutex_lock(&sv->sv_qlock);
        while (sv->sv_qhead == NULL && !sv->sv_qclosed && !sv->sv_qabandon)
            dcb_cond_wait(&sv->sv_qnonempty, &sv->sv_qlock);
        if (sv->sv_qabandon || sv->sv_qhead == NULL) {
            dcb_mutex_unlock(&sv->sv_qlock);
            break;
        }
        sim_pkt_t *p = sv->sv_qhead;
        sv->sv_qhead = p->p_next;
        if (sv->sv_qhead == NULL)
            sv->sv_qtail = NULL;
        sv->sv_qlen--;
        dcb_cond_signal(&sv->sv_qnonfull);
        dcb_mutex_unlock(&sv->sv_qlock);
        process(w, p, reply);
    }
    free(reply);
}

/* ------------------------------------------------------------------ */
/* The lease scavenger                                                 */
/* ------------------------------------------------------------------ */

static void delete_client(void *ctx, uint32_t addr, const uint8_t *hw, uint8_t hwlen,
                          uint32_t client_type)
{
    server_t *sv = ctx;
    count(&sv->sv_st->st_deleted_clients);
    LPDHCP_DELETE_CLIENT fn = sv->sv_tbl.DhcpDeleteClientHook;
    if (fn == NULL)
        return;
    uint8_t copy[16], orig[16];
    memcpy(copy, hw, hwlen);
    memcpy(orig, hw, hwlen);
    uint64_t t0 = dcb_now_ns();
    fn(addr, hwlen > 0 ? copy : NULL, hwlen, 0, client_type);
    hook_done(sv, DCB_HOOK_DELETECLIENT, t0);
    if (memcmp(copy, orig, hwlen) != 0)
        violation(sv, SIM_V_HWADDR_MODIFIED);
}

static void scavenger_main(void *arg)
{
    server_t *sv = arg;
    uint32_t period = sv->sv_cf->cf_lease_ms / 4;
    if (period < 1)
        period = 1;
    if (period > 250)
        period = 250;
    dcb_mutex_lock(&sv->sv_scav_lock);
    while (!sv->sv_scav_stop) {
        dcb_cond_timedwait(&sv->sv_scav_cond, &sv->sv_scav_lock, period);
        if (sv->sv_scav_stop)
            break;
        dcb_mutex_unlock(&sv->sv_scav_lock);
        dcb_mutex_lock(&sv->sv_dblock);
        sim_leases_expire(sv->sv_leases, dcb_now_ns(), delete_client, sv);
        dcb_mutex_unlock(&sv->sv_dblock);
        dcb_mutex_lock(&sv->sv_scav_lock);
    }
    dcb_mutex_unlock(&sv->sv_scav_lock);
}

/* ------------------------------------------------------------------ */
/* The receive thread                                                  */
/* ------------------------------------------------------------------ */

/* Whether this packet repeats one queued recently (a retransmission). */
static int is_duplicate(server_t *sv, const sim_pkt_t *p)
{
    if (p->p_size < SIM_DHCP_HDR_LEN)
        return 0;
    uint64_t h = fnv1a(p->p_data, p->p_size);
    for (unsigned i = 0; i < DUP_WINDOW; i++)
        if (sv->sv_dups[i].d_len == p->p_size && sv->sv_dups[i].d_hash == h)
            return 1;
    sv->sv_dups[sv->sv_dup_next].d_hash = h;
    sv->sv_dups[sv->sv_dup_next].d_len = p->p_size;
    sv->sv_dup_next = (sv->sv_dup_next + 1) % DUP_WINDOW;
    return 0;
}

static void enqueue(server_t *sv, sim_pkt_t *p)
{
    dcb_mutex_lock(&sv->sv_qlock);
    while (sv->sv_qlen >= sv->sv_cf->cf_queue)
        dcb_cond_wait(&sv->sv_qnonfull, &sv->sv_qlock);
    p->p_next = NULL;
    if (sv->sv_qtail != NULL)
        sv->sv_qtail->p_next = p;
    else
        sv->sv_qhead = p;
    sv->sv_qtail = p;
    sv->sv_qlen++;
    dcb_cond_signal(&sv->sv_qnonempty);
    dcb_mutex_unlock(&sv->sv_qlock);
}

/* One received datagram: NewPkt on this thread, no lock held. */
static void receive(server_t *sv, sim_pkt_t *p)
{
    BOOL process_it = TRUE;
    DWORD orig_size = p->p_size;
    LPDHCP_NEWPKT fn = sv->sv_tbl.DhcpNewPktHook;
    count(&sv->sv_st->st_in);
    guard_fill(p->p_buf, orig_size);
    if (fn != NULL) {
        uint8_t *data = p->p_data;
        DWORD size = p->p_size;
        uint64_t h = fnv1a(p->p_buf, orig_size);
        uint64_t t0 = dcb_now_ns();
        fn(&data, &size, sv->sv_ip_net, p->p_reserved, &p->p_ctx, &process_it);
        hook_done(sv, DCB_HOOK_NEWPKT, t0);
        if (check_modifiable(sv, p->p_buf, orig_size, &data, &size) != 0)
            p->p_unusable = 1;
        if (data != p->p_buf || size != orig_size || fnv1a(p->p_buf, orig_size) != h)
            count(&sv->sv_st->st_pkts_modified);
        p->p_data = data;
        p->p_size = size;
    }
    if (!process_it) {
        count(&sv->sv_st->st_plugin_drops);
        if (sv->sv_rec != NULL)
            sim_record_set(sv->sv_rec, p->p_seq, SIM_OUT_PLUGIN_DROP, 0, NULL, 0);
        finish_packet(sv, p);
        return;
    }
    if (!p->p_unusable)
        p->p_duplicate = is_duplicate(sv, p);
    enqueue(sv, p);
}

/* Waits so that packet number seq goes out no earlier than its slot. */
static void pace(const sim_config_t *cf, uint64_t start, uint64_t seq)
{
    if (cf->cf_rate <= 0)
        return;
    uint64_t due = start + (uint64_t)((double)seq * 1e9 / cf->cf_rate);
    uint64_t now = dcb_now_ns();
    /* Sleep only when a millisecond or more ahead: short bursts, no spinning. */
    if (due > now + 1000000ull)
        dcb_sleep_ms((uint32_t)((due - now) / 1000000ull));
}

int sim_server_run(const sim_config_t *cf, const DHCP_CALLOUT_TABLE *table, sim_source_t *src,
                   sim_stats_t *st, sim_record_t *rec)
{
    memset(guard_bytes, GUARD_BYTE, sizeof(guard_bytes));
    server_t *sv = calloc(1, sizeof(*sv));
    if (sv == NULL)
        return -1;
    sv->sv_cf = cf;
    if (table != NULL)
        sv->sv_tbl = *table;
    sv->sv_st = st;
    sv->sv_rec = rec;
    sv->sv_ip_host = cf->cf_scope->sc_server;
    sv->sv_ip_net = net_order(cf->cf_scope->sc_server);
    sv->sv_leases = sim_leases_new();
    unsigned nworkers = cf->cf_workers > 0 ? cf->cf_workers : sim_cpu_count() + 1;
    worker_t *workers = calloc(nworkers, sizeof(*workers));
    if (sv->sv_leases == NULL || workers == NULL) {
        sim_leases_free(sv->sv_leases);
        free(workers);
        free(sv);
        return -1;
    }
    dcb_mutex_init(&sv->sv_qlock);
    dcb_cond_init(&sv->sv_qnonempty);
    dcb_cond_init(&sv->sv_qnonfull);
    dcb_rwlock_init(&sv->sv_cfglock);
    dcb_mutex_init(&sv->sv_dblock);
    dcb_mutex_init(&sv->sv_scav_lock);
    dcb_cond_init(&sv->sv_scav_cond);

    int rc = 0;
    unsigned started = 0;
    for (; started < nworkers; started++) {
        workers[started].w_sv = sv;
        workers[started].w_scratch = malloc(SIM_MAX_UDP + 1);
        if (workers[started].w_scratch == NULL ||
            dcb_thread_create(&workers[started].w_thread, worker_main, &workers[started]) != 0) {
            free(workers[started].w_scratch);
            rc = -1;
            break;
        }
    }
    dcb_thread_t scavenger;
    int scav_ok = rc == 0 && dcb_thread_create(&scavenger, scavenger_main, sv) == 0;
    if (!scav_ok)
        rc = -1;

    uint64_t start = dcb_now_ns();
    uint64_t seq = 0;
    int abandon = 0;
    int warned = 0;
    while (rc == 0) {
        if (cf->cf_count > 0 && seq >= cf->cf_count)
            break;
        if (cf->cf_duration_ms > 0 && dcb_now_ns() - start >= cf->cf_duration_ms * 1000000ull) {
            abandon = cf->cf_abandon_at_stop;
            break;
        }
        pace(cf, start, seq);
        sim_pkt_t *p = calloc(1, sizeof(*p));
        uint8_t *buf = malloc(SIM_SERVER_BUF);
        if (p == NULL || buf == NULL) {
            free(p);
            free(buf);
            rc = -1;
            break;
        }
        size_t len = 0;
        int kind = -1;
        int got = src->src_next(src, buf, SIM_SERVER_BUF, &len, &kind);
        if (got != SIM_SOURCE_PACKET) {
            free(p);
            free(buf);
            if (got < 0)
                rc = -1;
            break;
        }
        p->p_seq = seq++;
        if (kind >= 0 && kind < SIM_KIND_COUNT)
            count(&st->st_kinds[kind]);
        if (len > SIM_SERVER_BUF) {
            /* recvfrom into the server's buffer fails: no hook ever sees it. */
            if (!warned++)
                dcb_log(DCB_LOG_WARN,
                        "packet %llu: %zu bytes do not fit the server's %u-byte receive "
                        "buffer; discarded, as the server would",
                        (unsigned long long)p->p_seq, len, SIM_SERVER_BUF);
            count(&st->st_oversized);
            if (rec != NULL)
                sim_record_set(rec, p->p_seq, SIM_OUT_OVERSIZED, 0, NULL, 0);
            free(p);
            free(buf);
            continue;
        }
        p->p_buf = p->p_data = buf;
        p->p_size = (DWORD)len;
        memset(p->p_reserved, RESERVED_BYTE, RESERVED_LEN);
        receive(sv, p);
    }
    if (warned > 1)
        dcb_log(DCB_LOG_WARN, "%d oversized packets discarded in all", warned);

    /* STOP: no more input; workers finish what they hold. */
    dcb_mutex_lock(&sv->sv_qlock);
    sv->sv_qclosed = 1;
    sv->sv_qabandon = abandon;
    dcb_cond_broadcast(&sv->sv_qnonempty);
    dcb_mutex_unlock(&sv->sv_qlock);
    for (unsigned i = 0; i < started; i++) {
        dcb_thread_join(workers[i].w_thread);
        free(workers[i].w_scratch);
    }
    /* Packets still queued are freed without drop callbacks, as the server does. */
    while (sv->sv_qhead != NULL) {
        sim_pkt_t *p = sv->sv_qhead;
        sv->sv_qhead = p->p_next;
        count(&st->st_abandoned);
        if (rec != NULL)
            sim_record_set(rec, p->p_seq, SIM_OUT_ABANDONED, 0, NULL, 0);
        free(p->p_buf);
        free(p);
    }
    if (scav_ok) {
        dcb_mutex_lock(&sv->sv_scav_lock);
        sv->sv_scav_stop = 1;
        dcb_cond_signal(&sv->sv_scav_cond);
        dcb_mutex_unlock(&sv->sv_scav_lock);
        dcb_thread_join(scavenger);
    }
    st->st_elapsed_ns = dcb_now_ns() - start;
    st->st_received = seq;

    sim_leases_free(sv->sv_leases);
    dcb_cond_destroy(&sv->sv_scav_cond);
    dcb_mutex_destroy(&sv->sv_scav_lock);
    dcb_mutex_destroy(&sv->sv_dblock);
    dcb_rwlock_destroy(&sv->sv_cfglock);
    dcb_cond_destroy(&sv->sv_qnonfull);
    dcb_cond_destroy(&sv->sv_qnonempty);
    dcb_mutex_destroy(&sv->sv_qlock);
    free(workers);
    free(sv);
    return rc;
}
