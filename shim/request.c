/*
 * request.c — NewPkt and PktSend: one round trip on the calling thread.
 *
 * The path is: breaker check (one atomic load while closed), take an idle
 * REQUEST connection, encode the event into its write buffer, write it, wait
 * for the answer until the hook's deadline, decode it into the connection's
 * arena, check it, apply it, put the connection back. No other thread is
 * involved and nothing is allocated, except a replacement buffer when the
 * broker grew the packet.
 *
 * Every failure gives the default decision: fail-open (the packet goes on
 * unmodified) unless FailClosedNewPkt, which drops NewPkt's packet. A
 * connection that failed or timed out is closed, so a late answer can never
 * be read as the answer to the next request (PROTOCOL.md).
 */
#include "shim.h"

#include "transport.h"

#include <string.h>

/*
 * The broker is told a little less than the shim waits, so its answer (due
 * before its deadline) still has time to travel back.
 */
static uint32_t budget_us(uint64_t deadline_ns, uint64_t now)
{
    uint64_t left = deadline_ns > now ? deadline_ns - now : 0, margin = left / 10u;

    if (margin < 200000u)
        margin = 200000u;
    left = left > margin ? left - margin : 0;
    left /= 1000u;
    return left > DCB_MAX_DEADLINE_US ? DCB_MAX_DEADLINE_US : (uint32_t)left;
}

static const char *rt_error(int rc)
{
    switch (rc) {
    case DCB__TP_EOF:
        return "the broker closed the connection";
    case DCB_OS_EIO:
        return "I/O error";
    default:
        return dcb_proto_strerror(rc);
    }
}

/*
 * Writes the frame in c->c_wbuf[0..len), reads and checks the answer.
 * Returns 0 with *out valid (until c is reused), or the default reason;
 * then c has been discarded.
 */
static int roundtrip(int hook, dcb__conn_t *c, size_t len, uint64_t deadline_ns, uint8_t want_type,
                     uint64_t request_id, dcb_msg_t *out)
{
    uint64_t got_id;
    int rc;

    rc = dcb__conn_write(c, len, deadline_ns);
    if (rc == 0)
        rc = dcb__conn_read_frame(c, deadline_ns, 1, out);
    if (rc == DCB_OS_ETIMEDOUT) {
        dcb__log(DCB_LOG_WARN, "%s: no answer from the broker in time; default decision",
                 dcb_hook_name(hook));
        dcb__pool_discard(c);
        return DCB__DEF_TIMEOUT;
    }
    if (rc != 0) {
        dcb__log(DCB_LOG_WARN, "%s: %s; default decision", dcb_hook_name(hook), rt_error(rc));
        dcb__pool_discard(c);
        return DCB__DEF_BAD_REPLY;
    }
    if (out->type != want_type) {
        dcb__log(DCB_LOG_WARN, "%s: the broker answered with frame type %u; default decision",
                 dcb_hook_name(hook), out->type);
        dcb__pool_discard(c);
        return DCB__DEF_BAD_REPLY;
    }
    got_id = want_type == DCB__FRAME_TYPE__FT_NEWPKT_DECISION
                 ? ((Dcb__NewPktDecision *)out->msg)->request_id
                 : ((Dcb__PktSendDecision *)out->msg)->request_id;
    /* One request per connection at a time: anything else is a violation. */
    if (got_id != request_id || c->c_rlen != out->frame_len) {
        dcb__log(DCB_LOG_WARN, "%s: the broker answered another request; default decision",
                 dcb_hook_name(hook));
        dcb__pool_discard(c);
        return DCB__DEF_BAD_REPLY;
    }
    dcb__conn_consume(c, out->frame_len);
    return 0;
}

/*
 * Gives the server the broker's packet. It is copied in place when it fits
 * in the server's buffer as the server sized it; a larger one goes into a
 * buffer the packet's record owns until the packet's last drop. Never writes
 * past *size. Returns 0, or -1 when there is nowhere to keep a larger one.
 */
static int apply_packet(dcb__pkt_t *rec, LPBYTE *packet, DWORD *size,
                        const ProtobufCBinaryData *data)
{
    uint8_t *buf;

    if (data->len <= *size) {
        memcpy(*packet, data->data, data->len);
        *size = (DWORD)data->len;
        return 0;
    }
    buf = rec != NULL ? dcb__pkt_alloc_buf(rec, data->len) : NULL;
    if (buf == NULL)
        return -1;
    memcpy(buf, data->data, data->len);
    *packet = buf;
    *size = (DWORD)data->len;
    return 0;
}

/* The start of every round trip: breaker, then a connection. */
static dcb__conn_t *begin(uint64_t deadline_ns, dcb__br_ticket_t *ticket, int *why)
{
    dcb__def_t reason;
    dcb__conn_t *c;

    *ticket = dcb__breaker_enter();
    if (*ticket == DCB__BR_REJECT) {
        *why = DCB__DEF_BREAKER;
        return NULL;
    }
    c = dcb__pool_get(deadline_ns, &reason);
    if (c != NULL && dcb_now_ns() >= deadline_ns) {
        /* It came too late to be used: keep it for the next caller. */
        dcb__pool_put(c);
        c = NULL;
        reason = DCB__DEF_QUEUE_FULL;
    }
    if (c == NULL) {
        /* A trial that found no broker failed; the breaker stays open longer. */
        if (*ticket == DCB__BR_TRIAL)
            dcb__breaker_done(*ticket, 0);
        *why = (int)reason;
    }
    return c;
}

void dcb__request_newpkt(dcb__pkt_t *rec, LPBYTE *packet, DWORD *size, DWORD ip, LPVOID reserved,
                         LPBOOL process_it, uint64_t t0)
{
    const int hook = DCB_HOOK_NEWPKT;
    uint64_t deadline = t0 + (uint64_t)dcb__cfg.c_newpkt_deadline_ms * 1000000u;
    Dcb__EventHeader hdr = DCB__EVENT_HEADER__INIT;
    Dcb__NewPktEvent ev = DCB__NEW_PKT_EVENT__INIT;
    Dcb__NewPktDecision *d;
    dcb__br_ticket_t ticket;
    dcb__conn_t *c;
    dcb_msg_t m;
    int why, len;

    if (rec == NULL || packet == NULL || *packet == NULL || size == NULL ||
        *size > atomic_load_explicit(&dcb__max_packet, memory_order_relaxed)) {
        why = DCB__DEF_OTHER;
        goto fail;
    }
    /*
     * Without the NOTIFY connection the packet's later hooks, its final drop
     * among them, could not follow it: the broker is better off not seeing it.
     */
    if (!dcb__notify_up()) {
        why = DCB__DEF_NO_BROKER;
        goto fail;
    }
    c = begin(deadline, &ticket, &why);
    if (c == NULL)
        goto fail;
    hdr.packet_id = rec->pk_id;
    hdr.seq = 0;
    hdr.has_request_id = 1;
    hdr.request_id = dcb__next_request_id();
    hdr.has_reserved = 1;
    hdr.reserved = (uint64_t)(uintptr_t)reserved;
    hdr.deadline_us = budget_us(deadline, dcb_now_ns());
    ev.hdr = &hdr;
    ev.packet.len = *size;
    ev.packet.data = *packet;
    ev.ip_address = ip;
    len = dcb_frame_encode(DCB__FRAME_TYPE__FT_EV_NEWPKT, &ev.base, c->c_wbuf, c->c_wcap);
    if (len <= 0) {
        dcb__pool_put(c);
        if (ticket == DCB__BR_TRIAL)
            dcb__breaker_done(ticket, 0);
        why = DCB__DEF_OTHER;
        goto fail;
    }
    /* From here on the broker may have seen the packet: its later hooks go out. */
    rec->pk_flags &= ~DCB__PKT_UNSEEN;
    why = roundtrip(hook, c, (size_t)len, deadline, DCB__FRAME_TYPE__FT_NEWPKT_DECISION,
                    hdr.request_id, &m);
    dcb__breaker_done(ticket, why == 0);
    if (why != 0)
        goto fail;
    d = (Dcb__NewPktDecision *)m.msg;
    if (d->has_packet && apply_packet(rec, packet, size, &d->packet) != 0) {
        dcb__pool_put(c);
        dcb__log(DCB_LOG_ERROR, "NewPkt: no memory for the changed packet; default decision");
        why = DCB__DEF_OTHER;
        goto fail;
    }
    if (process_it != NULL)
        *process_it = d->process_it ? TRUE : FALSE;
    dcb__pool_put(c);
    dcb__stats_waited(hook, dcb_now_ns() - t0);
    return;

fail:
    dcb__stats_default(hook, (dcb__def_t)why);
    if (dcb__cfg.c_fail_closed && process_it != NULL)
        *process_it = FALSE;
    dcb__stats_waited(hook, dcb_now_ns() - t0);
}

void dcb__request_pktsend(dcb__pkt_t *rec, LPBYTE *packet, DWORD *size, DWORD code, DWORD ip,
                          LPVOID reserved, uint64_t t0)
{
    const int hook = DCB_HOOK_PKTSEND;
    uint64_t deadline = t0 + (uint64_t)dcb__cfg.c_pktsend_deadline_ms * 1000000u;
    Dcb__EventHeader hdr = DCB__EVENT_HEADER__INIT;
    Dcb__PktSendEvent ev = DCB__PKT_SEND_EVENT__INIT;
    Dcb__PktSendDecision *d;
    dcb__br_ticket_t ticket;
    dcb__conn_t *c;
    dcb_msg_t m;
    int why, len;

    if (rec != NULL && (rec->pk_flags & DCB__PKT_UNSEEN)) {
        /* The broker never saw this packet's NewPkt, so no plugin may see its reply. */
        why = DCB__DEF_NO_BROKER;
        goto fail;
    }
    if (packet == NULL || *packet == NULL || size == NULL ||
        *size > atomic_load_explicit(&dcb__max_packet, memory_order_relaxed)) {
        why = DCB__DEF_OTHER;
        goto fail;
    }
    c = begin(deadline, &ticket, &why);
    if (c == NULL)
        goto fail;
    hdr.packet_id = rec != NULL ? rec->pk_id : 0;
    hdr.seq = (rec != NULL && rec->pk_id != 0) ? rec->pk_seq + 1 : 0;
    hdr.has_request_id = 1;
    hdr.request_id = dcb__next_request_id();
    hdr.has_reserved = 1;
    hdr.reserved = (uint64_t)(uintptr_t)reserved;
    hdr.deadline_us = budget_us(deadline, dcb_now_ns());
    ev.hdr = &hdr;
    ev.packet.len = *size;
    ev.packet.data = *packet;
    ev.control_code = code;
    ev.ip_address = ip;
    len = dcb_frame_encode(DCB__FRAME_TYPE__FT_EV_PKTSEND, &ev.base, c->c_wbuf, c->c_wcap);
    if (len <= 0) {
        dcb__pool_put(c);
        if (ticket == DCB__BR_TRIAL)
            dcb__breaker_done(ticket, 0);
        why = DCB__DEF_OTHER;
        goto fail;
    }
    /* The number is used once the frame may have reached the broker. */
    if (rec != NULL && rec->pk_id != 0) {
        rec->pk_seq = hdr.seq;
        /* Its predecessors may still be queued: send them now, not after a linger. */
        if (hdr.seq > 1)
            dcb__notify_kick();
    }
    why = roundtrip(hook, c, (size_t)len, deadline, DCB__FRAME_TYPE__FT_PKTSEND_DECISION,
                    hdr.request_id, &m);
    dcb__breaker_done(ticket, why == 0);
    if (why != 0)
        goto fail;
    d = (Dcb__PktSendDecision *)m.msg;
    if (d->has_packet && apply_packet(rec, packet, size, &d->packet) != 0) {
        dcb__pool_put(c);
        dcb__log(DCB_LOG_ERROR, "PktSend: nowhere to keep the larger reply; sent unchanged");
        why = DCB__DEF_OTHER;
        goto fail;
    }
    dcb__pool_put(c);
    dcb__stats_waited(hook, dcb_now_ns() - t0);
    return;

fail:
    /* A reply cannot be vetoed: the default is to send it unchanged. */
    dcb__stats_default(hook, (dcb__def_t)why);
    dcb__stats_waited(hook, dcb_now_ns() - t0);
}
