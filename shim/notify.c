/*
 * notify.c — notifications: a bounded queue and the thread that sends it.
 *
 * A server thread copies a notification into the queue under a short mutex
 * and returns; it never waits on I/O. The queue is a byte ring of
 * variable-size records (a packet is copied whole, however large it is up to
 * the packet limit) bounded both in records (c_queue_size) and in bytes, so
 * its memory is fixed when the shim starts. Full: the notification is
 * dropped and counted. HandleOptions is flattened on the calling thread,
 * since the server's DHCP_SERVER_OPTIONS pointers die when the hook returns.
 *
 * One sender thread owns the NOTIFY connection: it connects (with back-off),
 * tells a new broker the server's control state, encodes queued records
 * into frames and writes them in batches, reads Subscription frames, and
 * sends ShimStats every c_stats_interval_ms. While no NOTIFY connection is
 * up, notifications are not queued (the broker could not place them: it
 * never saw their packet's NewPkt) and count as "no broker".
 */
#include "shim.h"

#include "transport.h"

#include <stdlib.h>
#include <string.h>

#define REC_PAD 0xFFu
#define REC_ALIGN 8u
/* Bytes per queued record the byte ring is sized for, on average. */
#define AVG_RECORD 1024u
/* The sender looks for Subscription frames this often while idle. */
#define READ_PERIOD_NS 50000000u
#define WRITE_TIMEOUT_NS 1000000000u
/*
 * After the queue drains, the sender lingers this long in a light sleep
 * that producers do not interrupt: while notifications keep coming, no
 * server thread pays for waking it. Only after a quiet LINGER does it sleep
 * deeply, and the next producer wakes it.
 */
#define LINGER_NS 1000000u
#define BACKOFF_MIN_MS 20u
#define BACKOFF_MAX_MS 1000u
/* Outside-the-packet option values are copied, each at most this long. */
#define OPT_VALUE_MAX 255u

/* ServerOptions fields 1..25 in field-number order, as offsets+1, lengths, scalars. */
enum {
    O_MESSAGE_TYPE,
    O_SUBNET_MASK,
    O_REQUESTED_ADDRESS,
    O_REQUEST_LEASE_TIME,
    O_OVERLAY_FIELDS,
    O_ROUTER_ADDRESS,
    O_SERVER,
    O_PARAMETER_REQUEST_LIST,
    O_PARAMETER_REQUEST_LIST_LENGTH,
    O_MACHINE_NAME,
    O_MACHINE_NAME_LENGTH,
    O_CLIENT_HARDWARE_ADDRESS_TYPE,
    O_CLIENT_HARDWARE_ADDRESS_LENGTH,
    O_CLIENT_HARDWARE_ADDRESS,
    O_CLASS_IDENTIFIER,
    O_CLASS_IDENTIFIER_LENGTH,
    O_VENDOR_CLASS,
    O_VENDOR_CLASS_LENGTH,
    O_DNS_FLAGS,
    O_DNS_NAME_LENGTH,
    O_DNS_NAME,
    O_DS_DOMAIN_NAME_REQUESTED,
    O_DS_DOMAIN_NAME,
    O_DS_DOMAIN_NAME_LEN,
    O_SCOPE_ID,
    O_COUNT
};

/*
 * One queued notification: this header, then (HandleOptions) the options
 * array, then the packet or hardware address, then the options' extra bytes.
 */
typedef struct rec {
    uint32_t r_size; /* whole record, multiple of REC_ALIGN */
    uint8_t r_hook;  /* dcb_hook_t, or REC_PAD (skip to the ring's start) */
    uint8_t r_has_data;
    uint16_t r_unused;
    uint32_t r_seq;
    uint32_t r_code;
    uint64_t r_packet_id;
    uint64_t r_reserved;
    uint32_t r_ip, r_alt, r_addr_type, r_lease, r_client_type;
    uint32_t r_data_len;
    uint32_t r_extra_len;
    uint32_t r_unused2;
} rec_t;

#define OPTS_SIZE (((O_COUNT * sizeof(uint32_t)) + REC_ALIGN - 1) & ~(size_t)(REC_ALIGN - 1))

static struct {
    dcb_mutex_t q_lock;
    dcb_cond_t q_cond;
    uint8_t *q_buf;
    size_t q_cap;
    size_t q_head, q_tail, q_used;
    uint32_t q_items, q_max_items;
    uint32_t q_reserve;    /* extra records only final drops may use */
    int q_sleeping;        /* the sender sleeps deeply: the next producer wakes it */
    _Atomic int q_pending; /* records are queued (a hint, read without the lock) */
    _Atomic int q_stop;    /* STOP: flush, then exit */
    uint64_t q_flush_deadline;
    _Atomic int q_up; /* the NOTIFY connection is established */
    int q_started;    /* the server said START (or CONTINUE) */
    int q_paused;
    int q_thread_ok;
    dcb_thread_t q_thread;
} nq;

int dcb__notify_up(void)
{
    return atomic_load_explicit(&nq.q_up, memory_order_relaxed);
}

static size_t align_up(size_t n)
{
    return (n + REC_ALIGN - 1) & ~(size_t)(REC_ALIGN - 1);
}

/* Room for one record of need bytes, or NULL when full. Lock held. */
static uint8_t *ring_reserve(size_t need, uint32_t max_items)
{
    size_t at;

    if (nq.q_items >= max_items)
        return NULL;
    if (nq.q_used == 0)
        nq.q_head = nq.q_tail = 0; /* Empty: start over for the most contiguous room. */
    if (nq.q_tail > nq.q_head || nq.q_used == 0) {
        if (nq.q_cap - nq.q_tail >= need) {
            at = nq.q_tail;
        } else if (nq.q_head >= need) {
            /* Skip the end: a pad record tells the sender to go back to 0. */
            rec_t *pad = (rec_t *)(nq.q_buf + nq.q_tail);
            if (nq.q_cap > nq.q_tail) {
                pad->r_size = (uint32_t)(nq.q_cap - nq.q_tail);
                pad->r_hook = REC_PAD;
                nq.q_used += nq.q_cap - nq.q_tail;
            }
            at = 0;
        } else {
            return NULL;
        }
    } else if (nq.q_tail < nq.q_head && nq.q_head - nq.q_tail >= need) {
        at = nq.q_tail;
    } else {
        return NULL;
    }
    nq.q_tail = at + need;
    if (nq.q_tail == nq.q_cap)
        nq.q_tail = 0;
    nq.q_used += need;
    nq.q_items++;
    return nq.q_buf + at;
}

/* ---- flattening DHCP_SERVER_OPTIONS --------------------------------------- */

typedef struct extra {
    const uint8_t *e_src[O_COUNT];
    uint32_t e_len[O_COUNT];
    int e_n;
    uint32_t e_total;
} extra_t;

/*
 * A pointer becomes offset+1 into packet||extra, 0 for NULL. A pointer into
 * the packet is used as it is (its length clamped so nothing past the
 * packet is ever read); any other pointer's bytes are copied into extra.
 * A fixed-size value that does not fit in the packet becomes NULL.
 */
static uint32_t opt_ptr(const uint8_t *pkt, size_t pkt_len, const void *ptr, uint32_t *len,
                        int fixed, extra_t *ex)
{
    uintptr_t p = (uintptr_t)ptr, base = (uintptr_t)pkt;
    uint32_t off;

    if (ptr == NULL)
        return 0;
    if (pkt != NULL && p >= base && p < base + pkt_len) {
        size_t room = pkt_len - (p - base);
        if (*len > room) {
            if (fixed)
                return 0;
            *len = (uint32_t)room;
        }
        return (uint32_t)(p - base) + 1;
    }
    if (*len > OPT_VALUE_MAX)
        *len = OPT_VALUE_MAX;
    off = (uint32_t)pkt_len + ex->e_total;
    ex->e_src[ex->e_n] = ptr;
    ex->e_len[ex->e_n] = *len;
    ex->e_n++;
    ex->e_total += *len;
    return off + 1;
}

static void flatten_options(const DHCP_SERVER_OPTIONS *o, const uint8_t *pkt, size_t pkt_len,
                            uint32_t *v, extra_t *ex)
{
    uint32_t len;

    memset(v, 0, O_COUNT * sizeof(*v));
    memset(ex, 0, sizeof(*ex));
#define FIXED(idx, field, n)                                                                       \
    do {                                                                                           \
        len = (n);                                                                                 \
        v[idx] = opt_ptr(pkt, pkt_len, (const void *)o->field, &len, 1, ex);                       \
    } while (0)
#define VAR(idx, field, idx_len, field_len)                                                        \
    do {                                                                                           \
        len = (uint32_t)o->field_len;                                                              \
        v[idx] = opt_ptr(pkt, pkt_len, (const void *)o->field, &len, 0, ex);                       \
        v[idx_len] = o->field == NULL ? (uint32_t)o->field_len : len;                              \
    } while (0)
    FIXED(O_MESSAGE_TYPE, MessageType, 1);
    FIXED(O_SUBNET_MASK, SubnetMask, 4);
    FIXED(O_REQUESTED_ADDRESS, RequestedAddress, 4);
    FIXED(O_REQUEST_LEASE_TIME, RequestLeaseTime, 4);
    FIXED(O_OVERLAY_FIELDS, OverlayFields, 1);
    FIXED(O_ROUTER_ADDRESS, RouterAddress, 4);
    FIXED(O_SERVER, Server, 4);
    VAR(O_PARAMETER_REQUEST_LIST, ParameterRequestList, O_PARAMETER_REQUEST_LIST_LENGTH,
        ParameterRequestListLength);
    VAR(O_MACHINE_NAME, MachineName, O_MACHINE_NAME_LENGTH, MachineNameLength);
    v[O_CLIENT_HARDWARE_ADDRESS_TYPE] = o->ClientHardwareAddressType;
    VAR(O_CLIENT_HARDWARE_ADDRESS, ClientHardwareAddress, O_CLIENT_HARDWARE_ADDRESS_LENGTH,
        ClientHardwareAddressLength);
    VAR(O_CLASS_IDENTIFIER, ClassIdentifier, O_CLASS_IDENTIFIER_LENGTH, ClassIdentifierLength);
    VAR(O_VENDOR_CLASS, VendorClass, O_VENDOR_CLASS_LENGTH, VendorClassLength);
    v[O_DNS_FLAGS] = o->DNSFlags;
    VAR(O_DNS_NAME, DNSName, O_DNS_NAME_LENGTH, DNSNameLength);
    v[O_DS_DOMAIN_NAME_REQUESTED] = o->DSDomainNameRequested ? 1u : 0u;
    VAR(O_DS_DOMAIN_NAME, DSDomainName, O_DS_DOMAIN_NAME_LEN, DSDomainNameLen);
    FIXED(O_SCOPE_ID, ScopeId, 4);
#undef FIXED
#undef VAR
}

/* ---- producers (server threads) --------------------------------------------- */

static void wake_sender(int sleeping)
{
    if (sleeping)
        dcb_cond_signal(&nq.q_cond);
}

int dcb__notify_post(dcb__pkt_t *rec, const dcb__note_t *n)
{
    uint32_t opts[O_COUNT];
    extra_t ex;
    size_t data_len = n->n_data_len, need;
    const uint8_t *data = n->n_data;
    int has_opts = n->n_hook == DCB_HOOK_HANDLEOPTIONS && n->n_options != NULL;
    /*
     * A packet's final drop is what lets every plugin that saw the packet
     * free its state: when the queue is full it may use a reserve, without
     * the packet's bytes if need be.
     */
    int final = n->n_hook == DCB_HOOK_PKTDROP && n->n_code == DHCP_DROP_PROCESSED && rec != NULL &&
                rec->pk_id != 0;
    uint8_t *p;
    rec_t *r;
    int sleeping;

    if (!atomic_load_explicit(&nq.q_up, memory_order_relaxed))
        return DCB__DEF_NO_BROKER;
    if (data == NULL)
        data_len = 0;
    if (data_len > atomic_load_explicit(&dcb__max_packet, memory_order_relaxed)) {
        /* A packet's end must still reach the broker; its bytes need not. */
        if (n->n_hook != DCB_HOOK_PKTDROP)
            return DCB__DEF_OTHER;
        data_len = 0;
    }
    if (has_opts)
        flatten_options(n->n_options, data, data_len, opts, &ex);
    else
        ex.e_total = 0;
    need = align_up(sizeof(rec_t) + (has_opts ? OPTS_SIZE : 0) + data_len + ex.e_total);

    dcb_mutex_lock(&nq.q_lock);
    p = NULL;
    if (atomic_load_explicit(&nq.q_up, memory_order_relaxed)) {
        p = ring_reserve(need, nq.q_max_items);
        if (p == NULL && final) {
            data_len = 0;
            need = align_up(sizeof(rec_t));
            p = ring_reserve(need, nq.q_max_items + nq.q_reserve);
        }
    }
    if (p == NULL) {
        int up = atomic_load_explicit(&nq.q_up, memory_order_relaxed);
        dcb_mutex_unlock(&nq.q_lock);
        return up ? DCB__DEF_QUEUE_FULL : DCB__DEF_NO_BROKER;
    }
    r = (rec_t *)p;
    r->r_size = (uint32_t)need;
    r->r_hook = (uint8_t)n->n_hook;
    r->r_has_data = (uint8_t)(n->n_has_data != 0);
    r->r_code = n->n_code;
    r->r_packet_id = rec != NULL ? rec->pk_id : 0;
    /* The seq is taken only now that the notification is surely queued. */
    r->r_seq = (rec != NULL && rec->pk_id != 0) ? ++rec->pk_seq : 0;
    r->r_reserved = n->n_reserved;
    r->r_ip = n->n_ip;
    r->r_alt = n->n_alt;
    r->r_addr_type = n->n_addr_type;
    r->r_lease = n->n_lease;
    r->r_client_type = n->n_client_type;
    r->r_data_len = (uint32_t)data_len;
    r->r_extra_len = ex.e_total;
    p += sizeof(rec_t);
    if (has_opts) {
        memcpy(p, opts, sizeof(opts));
        p += OPTS_SIZE;
    }
    if (data_len > 0)
        memcpy(p, data, data_len);
    p += data_len;
    for (int i = 0; i < (has_opts ? ex.e_n : 0); i++) {
        memcpy(p, ex.e_src[i], ex.e_len[i]);
        p += ex.e_len[i];
    }
    atomic_store_explicit(&nq.q_pending, 1, memory_order_relaxed);
    /* Deep asleep, or the queue is filling up faster than the sender lingers. */
    sleeping = nq.q_sleeping || nq.q_items == nq.q_max_items / 2;
    nq.q_sleeping = 0;
    dcb_mutex_unlock(&nq.q_lock);
    wake_sender(sleeping);
    return 0;
}

void dcb__notify_kick(void)
{
    if (atomic_load_explicit(&nq.q_pending, memory_order_relaxed))
        dcb_cond_signal(&nq.q_cond);
}

/* Queues a Control event. Lock held. */
static int post_control_locked(uint32_t code)
{
    rec_t *r = (rec_t *)ring_reserve(align_up(sizeof(rec_t)), nq.q_max_items);

    if (r == NULL)
        return DCB__DEF_QUEUE_FULL;
    memset(r, 0, sizeof(*r));
    r->r_size = (uint32_t)align_up(sizeof(rec_t));
    r->r_hook = DCB_HOOK_CONTROL;
    r->r_code = code;
    return 0;
}

int dcb__notify_control(uint32_t code)
{
    int rc = 0, sleeping;

    dcb_mutex_lock(&nq.q_lock);
    switch (code) {
    case DHCP_CONTROL_START:
        nq.q_started = 1;
        nq.q_paused = 0;
        break;
    case DHCP_CONTROL_STOP:
        nq.q_started = 0;
        nq.q_paused = 0;
        break;
    case DHCP_CONTROL_PAUSE:
        nq.q_paused = 1;
        break;
    case DHCP_CONTROL_CONTINUE:
        nq.q_paused = 0;
        break;
    default:
        dcb_mutex_unlock(&nq.q_lock);
        return DCB__DEF_OTHER;
    }
    /* Not connected: the state is told to the broker when it connects. */
    if (atomic_load(&nq.q_up) && (rc = post_control_locked(code)) == 0)
        atomic_store(&nq.q_pending, 1);
    sleeping = nq.q_sleeping;
    nq.q_sleeping = 0;
    dcb_mutex_unlock(&nq.q_lock);
    wake_sender(sleeping);
    return rc;
}

/* ---- the sender thread ------------------------------------------------------ */

static void fill_options(Dcb__ServerOptions *so, const uint32_t *v, const uint8_t *extra,
                         uint32_t extra_len)
{
#define SET(field, idx)                                                                            \
    do {                                                                                           \
        so->has_##field = 1;                                                                       \
        so->field = v[idx];                                                                        \
    } while (0)
    SET(message_type, O_MESSAGE_TYPE);
    SET(subnet_mask, O_SUBNET_MASK);
    SET(requested_address, O_REQUESTED_ADDRESS);
    SET(request_lease_time, O_REQUEST_LEASE_TIME);
    SET(overlay_fields, O_OVERLAY_FIELDS);
    SET(router_address, O_ROUTER_ADDRESS);
    SET(server, O_SERVER);
    SET(parameter_request_list, O_PARAMETER_REQUEST_LIST);
    SET(parameter_request_list_length, O_PARAMETER_REQUEST_LIST_LENGTH);
    SET(machine_name, O_MACHINE_NAME);
    SET(machine_name_length, O_MACHINE_NAME_LENGTH);
    SET(client_hardware_address_type, O_CLIENT_HARDWARE_ADDRESS_TYPE);
    SET(client_hardware_address_length, O_CLIENT_HARDWARE_ADDRESS_LENGTH);
    SET(client_hardware_address, O_CLIENT_HARDWARE_ADDRESS);
    SET(class_identifier, O_CLASS_IDENTIFIER);
    SET(class_identifier_length, O_CLASS_IDENTIFIER_LENGTH);
    SET(vendor_class, O_VENDOR_CLASS);
    SET(vendor_class_length, O_VENDOR_CLASS_LENGTH);
    SET(dns_flags, O_DNS_FLAGS);
    SET(dns_name_length, O_DNS_NAME_LENGTH);
    SET(dns_name, O_DNS_NAME);
    SET(ds_domain_name_requested, O_DS_DOMAIN_NAME_REQUESTED);
    SET(ds_domain_name, O_DS_DOMAIN_NAME);
    SET(ds_domain_name_len, O_DS_DOMAIN_NAME_LEN);
    SET(scope_id, O_SCOPE_ID);
#undef SET
    if (extra_len > 0) {
        so->has_extra = 1;
        so->extra.len = extra_len;
        so->extra.data = (uint8_t *)extra;
    }
}

/*
 * Encodes one record as a frame into out. Returns its length, DCB_E_NOSPC
 * when it does not fit there, or another DCB_E_* when it cannot be sent.
 */
static int rec_encode(const rec_t *r, uint8_t *out, size_t cap)
{
    union {
        Dcb__ControlEvent control;
        Dcb__PktDropEvent drop;
        Dcb__AddressDelEvent del;
        Dcb__AddressOfferEvent offer;
        Dcb__HandleOptionsEvent opts;
        Dcb__DeleteClientEvent client;
    } m;
    Dcb__EventHeader hdr = DCB__EVENT_HEADER__INIT;
    Dcb__ServerOptions so = DCB__SERVER_OPTIONS__INIT;
    const uint8_t *body = (const uint8_t *)(r + 1);
    const uint32_t *optv = NULL;
    ProtobufCBinaryData pkt;
    ProtobufCMessage *msg;

    if (r->r_hook == DCB_HOOK_HANDLEOPTIONS) {
        optv = (const uint32_t *)body;
        body += OPTS_SIZE;
    }
    pkt.len = r->r_data_len;
    pkt.data = (uint8_t *)body;
    hdr.packet_id = r->r_packet_id;
    hdr.seq = r->r_seq;
    /* No thread waits on a notification: this is what the broker may take for it. */
    hdr.deadline_us = dcb__cfg.c_notify_deadline_ms * 1000u;
    hdr.has_reserved = 1;
    hdr.reserved = r->r_reserved;
    switch (r->r_hook) {
    case DCB_HOOK_CONTROL:
        dcb__control_event__init(&m.control);
        m.control.hdr = &hdr;
        m.control.control_code = r->r_code;
        hdr.has_reserved = 0;
        msg = &m.control.base;
        break;
    case DCB_HOOK_PKTDROP:
        dcb__pkt_drop_event__init(&m.drop);
        m.drop.hdr = &hdr;
        m.drop.packet = pkt;
        m.drop.control_code = r->r_code;
        m.drop.ip_address = r->r_ip;
        msg = &m.drop.base;
        break;
    case DCB_HOOK_ADDRESSDEL:
        dcb__address_del_event__init(&m.del);
        m.del.hdr = &hdr;
        m.del.packet = pkt;
        m.del.control_code = r->r_code;
        m.del.ip_address = r->r_ip;
        m.del.alt_address = r->r_alt;
        msg = &m.del.base;
        break;
    case DCB_HOOK_ADDRESSOFFER:
        dcb__address_offer_event__init(&m.offer);
        m.offer.hdr = &hdr;
        m.offer.packet = pkt;
        m.offer.control_code = r->r_code;
        m.offer.ip_address = r->r_ip;
        m.offer.alt_address = r->r_alt;
        m.offer.addr_type = r->r_addr_type;
        m.offer.lease_time = r->r_lease;
        msg = &m.offer.base;
        break;
    case DCB_HOOK_HANDLEOPTIONS:
        dcb__handle_options_event__init(&m.opts);
        m.opts.hdr = &hdr;
        m.opts.packet = pkt;
        fill_options(&so, optv, body + r->r_data_len, r->r_extra_len);
        m.opts.options = &so;
        msg = &m.opts.base;
        break;
    case DCB_HOOK_DELETECLIENT:
        dcb__delete_client_event__init(&m.client);
        m.client.hdr = &hdr;
        m.client.ip_address = r->r_ip;
        m.client.client_type = r->r_client_type;
        if (r->r_has_data) {
            m.client.has_hw_address = 1;
            m.client.hw_address = pkt;
        }
        msg = &m.client.base;
        break;
    default:
        return DCB_E_TYPE;
    }
    if (dcb_frame_size(msg) > DCB_FRAME_HEADER_SIZE + DCB_MAX_FRAME_EVENT)
        return DCB_E_TOOBIG;
    return dcb_frame_encode(DCB_FT_EVENT(r->r_hook), msg, out, cap);
}

typedef struct sender {
    dcb__conn_t *s_conn;
    uint64_t s_next_connect;
    uint64_t s_next_read;
    uint64_t s_next_stats;
    uint64_t s_last_busy; /* when records were last sent */
    uint32_t s_backoff_ms;
    int s_had_conn;
    size_t s_wlen; /* encoded bytes in s_conn->c_wbuf not yet written */
} sender_t;

static void sender_drop_conn(sender_t *s, const char *why)
{
    dcb__log(DCB_LOG_WARN, "NOTIFY connection lost: %s", why);
    atomic_store(&nq.q_up, 0);
    dcb__conn_close(s->s_conn);
    s->s_conn = NULL;
    s->s_wlen = 0;
    s->s_next_connect = dcb_now_ns() + (uint64_t)s->s_backoff_ms * 1000000u;
}

static int sender_flush(sender_t *s)
{
    uint64_t deadline = dcb_now_ns() + WRITE_TIMEOUT_NS;
    int rc;

    if (s->s_conn == NULL || s->s_wlen == 0)
        return 0;
    if (atomic_load(&nq.q_stop) && nq.q_flush_deadline < deadline)
        deadline = nq.q_flush_deadline;
    rc = dcb__conn_write(s->s_conn, s->s_wlen, deadline);
    s->s_wlen = 0;
    if (rc != 0)
        sender_drop_conn(s, rc == DCB_OS_ETIMEDOUT ? "the broker stopped reading" : "write failed");
    return rc;
}

/*
 * Sends (or, with no connection, discards) n records starting at head.
 * Returns the ring bytes they used. Runs without the lock: producers never
 * touch records between q_head and q_tail.
 */
static size_t send_records(sender_t *s, size_t head, uint32_t n)
{
    size_t used = 0;
    /* Records encoded into the unflushed batch, counted lost if it fails. */
    uint32_t batch_hooks[DCB_HOOK_COUNT] = {0};
    int rc;

    while (n > 0) {
        rec_t *r = (rec_t *)(nq.q_buf + head);
        if (r->r_hook == REC_PAD) {
            used += r->r_size;
            head = 0;
            continue;
        }
        if (s->s_conn == NULL) {
            atomic_fetch_add_explicit(&dcb__stats[r->r_hook].hs_lost, 1, memory_order_relaxed);
        } else {
            rc = rec_encode(r, s->s_conn->c_wbuf + s->s_wlen, s->s_conn->c_wcap - s->s_wlen);
            if (rc == DCB_E_NOSPC && s->s_wlen > 0) {
                if (sender_flush(s) != 0) {
                    for (int h = 0; h < DCB_HOOK_COUNT; h++)
                        atomic_fetch_add(&dcb__stats[h].hs_lost, batch_hooks[h]);
                    continue; /* Redo this record: it is counted lost now. */
                }
                memset(batch_hooks, 0, sizeof(batch_hooks));
                continue;
            }
            if (rc > 0) {
                s->s_wlen += (size_t)rc;
                batch_hooks[r->r_hook]++;
            } else {
                dcb__stats_default(r->r_hook, DCB__DEF_OTHER);
            }
        }
        used += r->r_size;
        head += r->r_size;
        if (head == nq.q_cap)
            head = 0;
        n--;
    }
    if (sender_flush(s) != 0)
        for (int h = 0; h < DCB_HOOK_COUNT; h++)
            atomic_fetch_add(&dcb__stats[h].hs_lost, batch_hooks[h]);
    return used;
}

static void sender_connect(sender_t *s)
{
    uint32_t hooks = 0;
    uint64_t now = dcb_now_ns();
    dcb__conn_t *c;

    c = dcb__conn_open(DCB__CONN_ROLE__ROLE_NOTIFY,
                       now + (uint64_t)dcb__cfg.c_connect_timeout_ms * 1000000u, &nq.q_stop,
                       &hooks);
    if (c == NULL) {
        s->s_next_connect = dcb_now_ns() + (uint64_t)s->s_backoff_ms * 1000000u;
        s->s_backoff_ms =
            s->s_backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->s_backoff_ms * 2;
        return;
    }
    s->s_conn = c;
    s->s_wlen = 0;
    s->s_backoff_ms = BACKOFF_MIN_MS;
    if (s->s_had_conn)
        atomic_fetch_add(&dcb__reconnects, 1);
    s->s_had_conn = 1;
    dcb__subscribe_from(DCB__CONN_ROLE__ROLE_NOTIFY, hooks);
    /*
     * A new broker learns the server's state first; under the lock, so a
     * concurrent Control hook is either replayed here or queued after.
     */
    dcb_mutex_lock(&nq.q_lock);
    atomic_store(&nq.q_up, 1);
    if (nq.q_started) {
        post_control_locked(DHCP_CONTROL_START);
        if (nq.q_paused)
            post_control_locked(DHCP_CONTROL_PAUSE);
    }
    dcb_mutex_unlock(&nq.q_lock);
    s->s_next_stats = 0;
    dcb__log(DCB_LOG_INFO, "connected to the broker at %s", dcb__cfg.c_pipe);
}

/* Takes Subscription frames the broker sent, without waiting. */
static void sender_read(sender_t *s)
{
    dcb_msg_t m;
    int rc;

    while (s->s_conn != NULL) {
        rc = dcb__conn_read_frame(s->s_conn, 0, 0, &m);
        if (rc == DCB_OS_ETIMEDOUT)
            return;
        if (rc != 0) {
            sender_drop_conn(s, rc == DCB__TP_EOF ? "the broker closed it"
                                                  : "bad frame from the broker");
            return;
        }
        if (m.type == DCB__FRAME_TYPE__FT_SUBSCRIPTION) {
            dcb__subscribe_from(DCB__CONN_ROLE__ROLE_NOTIFY,
                                ((Dcb__Subscription *)m.msg)->subscribed_hooks);
        } else if (m.type == DCB__FRAME_TYPE__FT_WELCOME) {
            dcb__subscribe_from(DCB__CONN_ROLE__ROLE_NOTIFY,
                                ((Dcb__Welcome *)m.msg)->subscribed_hooks);
        } else {
            sender_drop_conn(s, "unexpected frame type from the broker");
            return;
        }
        dcb__conn_consume(s->s_conn, m.frame_len);
    }
}

static void sender_stats(sender_t *s, uint64_t deadline)
{
    size_t n;
    int rc;

    if (s->s_conn == NULL)
        return;
    n = dcb__stats_encode(s->s_conn->c_wbuf, s->s_conn->c_wcap);
    if (n == 0)
        return;
    rc = dcb__conn_write(s->s_conn, n, deadline);
    if (rc != 0)
        sender_drop_conn(s, "stats write failed");
}

static void notify_main(void *arg)
{
    sender_t s;
    uint64_t now, wake;
    uint32_t n;
    size_t head, used;
    int stopping;

    (void)arg;
    memset(&s, 0, sizeof(s));
    s.s_backoff_ms = BACKOFF_MIN_MS;
    for (;;) {
        now = dcb_now_ns();
        dcb_mutex_lock(&nq.q_lock);
        stopping = atomic_load(&nq.q_stop);
        if (stopping && (nq.q_items == 0 || s.s_conn == NULL || now >= nq.q_flush_deadline)) {
            dcb_mutex_unlock(&nq.q_lock);
            break;
        }
        if (s.s_conn == NULL && !stopping && now >= s.s_next_connect && nq.q_items == 0) {
            dcb_mutex_unlock(&nq.q_lock);
            sender_connect(&s);
            continue;
        }
        if (nq.q_items == 0 && !stopping) {
            wake = s.s_conn != NULL
                       ? (s.s_next_read < s.s_next_stats ? s.s_next_read : s.s_next_stats)
                       : s.s_next_connect;
            if (now < s.s_last_busy + LINGER_NS && wake > now) {
                /* Light sleep: a producer does not wake us, a request may kick. */
                dcb_cond_timedwait(
                    &nq.q_cond, &nq.q_lock,
                    (uint32_t)((s.s_last_busy + LINGER_NS - now + 999999u) / 1000000u));
            } else if (wake > now) {
                uint64_t ms = (wake - now + 999999u) / 1000000u;
                nq.q_sleeping = 1;
                dcb_cond_timedwait(&nq.q_cond, &nq.q_lock, ms > 1000 ? 1000u : (uint32_t)ms);
                nq.q_sleeping = 0;
            }
        }
        n = nq.q_items;
        head = nq.q_head;
        dcb_mutex_unlock(&nq.q_lock);

        if (n > 0) {
            used = send_records(&s, head, n);
            dcb_mutex_lock(&nq.q_lock);
            nq.q_head = (head + used) % nq.q_cap;
            nq.q_used -= used;
            nq.q_items -= n;
            if (nq.q_items == 0)
                atomic_store(&nq.q_pending, 0);
            dcb_mutex_unlock(&nq.q_lock);
            s.s_last_busy = dcb_now_ns();
        }
        now = dcb_now_ns();
        if (s.s_conn != NULL && now >= s.s_next_read) {
            sender_read(&s);
            s.s_next_read = now + READ_PERIOD_NS;
        }
        if (s.s_conn != NULL && now >= s.s_next_stats) {
            sender_stats(&s, now + WRITE_TIMEOUT_NS);
            s.s_next_stats = now + (uint64_t)dcb__cfg.c_stats_interval_ms * 1000000u;
        }
    }
    /* A last ShimStats, so the broker has the final figures. */
    if (s.s_conn != NULL) {
        now = dcb_now_ns();
        sender_stats(&s, now + 100000000u < nq.q_flush_deadline ? now + 100000000u
                                                                : nq.q_flush_deadline);
    }
    atomic_store(&nq.q_up, 0);
    dcb__conn_close(s.s_conn);
}

int dcb__notify_start(void)
{
    uint32_t max_packet = dcb__cfg.c_max_packet;
    int rc;

    dcb_mutex_init(&nq.q_lock);
    dcb_cond_init(&nq.q_cond);
    nq.q_max_items = dcb__cfg.c_queue_size;
    nq.q_reserve = nq.q_max_items / 4 > 16 ? nq.q_max_items / 4 : 16;
    /*
     * Room for the average record times the count, always for one of the
     * largest, and for the reserve of bare final drops.
     */
    nq.q_cap =
        align_up((size_t)nq.q_max_items * AVG_RECORD + sizeof(rec_t) + OPTS_SIZE + max_packet +
                 O_COUNT * OPT_VALUE_MAX + (size_t)nq.q_reserve * align_up(sizeof(rec_t)));
    nq.q_buf = malloc(nq.q_cap);
    nq.q_head = nq.q_tail = nq.q_used = 0;
    nq.q_items = 0;
    nq.q_sleeping = 0;
    atomic_store(&nq.q_pending, 0);
    nq.q_started = nq.q_paused = 0;
    atomic_store(&nq.q_up, 0);
    atomic_store(&nq.q_stop, 0);
    if (nq.q_buf == NULL) {
        nq.q_cap = 0;
        nq.q_thread_ok = 0;
        dcb__log(DCB_LOG_ERROR, "no memory for the notification queue; notifications are off");
        return DCB_OS_ENOMEM;
    }
    rc = dcb_thread_create(&nq.q_thread, notify_main, NULL);
    nq.q_thread_ok = rc == 0;
    if (rc != 0)
        dcb__log(DCB_LOG_ERROR, "cannot start the notification thread; notifications are off");
    return rc;
}

void dcb__notify_stop(uint32_t flush_ms)
{
    if (nq.q_thread_ok) {
        dcb_mutex_lock(&nq.q_lock);
        nq.q_flush_deadline = dcb_now_ns() + (uint64_t)flush_ms * 1000000u;
        atomic_store(&nq.q_stop, 1);
        dcb_cond_signal(&nq.q_cond);
        dcb_mutex_unlock(&nq.q_lock);
        dcb_thread_join(nq.q_thread);
        nq.q_thread_ok = 0;
    }
    atomic_store(&nq.q_up, 0);
    free(nq.q_buf);
    nq.q_buf = NULL;
    nq.q_cap = 0;
    dcb_cond_destroy(&nq.q_cond);
    dcb_mutex_destroy(&nq.q_lock);
}
