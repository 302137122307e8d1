/*
 * hooks.c — the callout hooks the DHCP server calls.
 *
 * Every hook starts with one relaxed load of dcb__state (subscribed set and
 * run state). A hook no plugin subscribes to stops there, after bumping its
 * "unsubscribed" counter; the one exception is the final
 * PktDrop(PROCESSED) of a packet that has a record, which must free it
 * whether or not anybody listens. A hook that does work registers itself as
 * in flight, so STOP never frees memory a running hook still uses.
 *
 * NewPkt and PktSend are requests (request.c); all other hooks are queued
 * notifications (notify.c). Return values are ignored by the server; the
 * hooks return ERROR_SUCCESS.
 */
#include "shim.h"

#include <string.h>

_Atomic uint32_t dcb__inflight;

static inline uint32_t state_load(void)
{
    return atomic_load_explicit(&dcb__state, memory_order_relaxed);
}

/*
 * Registers a call as in flight, unless the shim stopped. Sequentially
 * consistent on both sides: STOP clears DCB__RUNNING and then waits for the
 * count to drop, a hook counts itself and then checks DCB__RUNNING, so one
 * of the two always sees the other.
 */
static int enter(void)
{
    atomic_fetch_add(&dcb__inflight, 1);
    if (atomic_load(&dcb__state) & DCB__RUNNING)
        return 1;
    atomic_fetch_sub(&dcb__inflight, 1);
    return 0;
}

static void leave(void)
{
    atomic_fetch_sub(&dcb__inflight, 1);
}

/* Queues one notification and accounts for it. */
static void notify(int hook, dcb__pkt_t *rec, const dcb__note_t *n)
{
    uint64_t t0 = dcb_now_ns();
    int why;

    dcb__stats_call(hook);
    if (rec != NULL && (rec->pk_flags & DCB__PKT_UNSEEN))
        why = DCB__DEF_NO_BROKER; /* The broker never saw this packet's NewPkt. */
    else
        why = dcb__notify_post(rec, n);
    if (why != 0)
        dcb__stats_default(hook, (dcb__def_t)why);
    dcb__stats_waited(hook, dcb_now_ns() - t0);
}

static DWORD WINAPI hook_control(DWORD code, LPVOID reserved)
{
    (void)reserved;
    /*
     * Control events always go to the broker, subscribed or not: it needs
     * the server's state to start plugin hosts the way the server would.
     */
    if (code == DHCP_CONTROL_STOP) {
        dcb__shim_stop();
        return ERROR_SUCCESS;
    }
    if (!enter()) {
        if (code == DHCP_CONTROL_START)
            dcb__log(DCB_LOG_WARN, "START after STOP ignored; reload the shim to restart it");
        return ERROR_SUCCESS;
    }
    dcb__stats_call(DCB_HOOK_CONTROL);
    if (dcb__notify_control(code) != 0)
        dcb__stats_default(DCB_HOOK_CONTROL, DCB__DEF_OTHER);
    leave();
    return ERROR_SUCCESS;
}

/* NewPkt when nobody subscribes to it: a record only if PktSend may need one. */
static void newpkt_unsubscribed(uint32_t m, LPVOID *ctx)
{
    dcb__stats_unsub(DCB_HOOK_NEWPKT);
    if (!(m & DCB_HOOK_BIT(DCB_HOOK_PKTSEND)) || ctx == NULL || !enter())
        return;
    /* Anonymous: its hooks go out without a packet id, as the broker never sees NewPkt. */
    *ctx = dcb__pkt_new(1);
    leave();
}

static DWORD WINAPI hook_newpkt(LPBYTE *Packet, DWORD *PacketSize, DWORD IpAddress, LPVOID Reserved,
                                LPVOID *PktContext, LPBOOL ProcessIt)
{
    uint32_t m = state_load();
    dcb__pkt_t *rec;
    uint64_t t0;

    if ((m & (DCB__RUNNING | DCB_HOOK_BIT(DCB_HOOK_NEWPKT))) !=
        (DCB__RUNNING | DCB_HOOK_BIT(DCB_HOOK_NEWPKT))) {
        if (m & DCB__RUNNING)
            newpkt_unsubscribed(m, PktContext);
        return ERROR_SUCCESS;
    }
    if (!enter())
        return ERROR_SUCCESS;
    t0 = dcb_now_ns();
    dcb__stats_call(DCB_HOOK_NEWPKT);
    rec = PktContext != NULL ? dcb__pkt_new(0) : NULL;
    if (rec != NULL)
        *PktContext = rec;
    dcb__request_newpkt(rec, Packet, PacketSize, IpAddress, Reserved, ProcessIt, t0);
    leave();
    return ERROR_SUCCESS;
}

static void pktdrop_slow(uint32_t m, LPBYTE *Packet, DWORD *PacketSize, DWORD ControlCode,
                         DWORD IpAddress, LPVOID Reserved, LPVOID PktContext)
{
    dcb__pkt_t *rec;
    dcb__note_t n;

    if (!enter())
        return;
    rec = dcb__pkt_from(PktContext);
    if (m & DCB_HOOK_BIT(DCB_HOOK_PKTDROP)) {
        memset(&n, 0, sizeof(n));
        n.n_hook = DCB_HOOK_PKTDROP;
        n.n_code = ControlCode;
        n.n_ip = IpAddress;
        n.n_reserved = (uint64_t)(uintptr_t)Reserved;
        if (Packet != NULL && PacketSize != NULL) {
            n.n_data = *Packet;
            n.n_data_len = *PacketSize;
        }
        notify(DCB_HOOK_PKTDROP, rec, &n);
    } else {
        dcb__stats_unsub(DCB_HOOK_PKTDROP);
    }
    /* The packet's last hook: its record and every buffer it owns go now. */
    if (ControlCode == DHCP_DROP_PROCESSED && rec != NULL)
        dcb__pkt_free(rec);
    leave();
}

static DWORD WINAPI hook_pktdrop(LPBYTE *Packet, DWORD *PacketSize, DWORD ControlCode,
                                 DWORD IpAddress, LPVOID Reserved, LPVOID PktContext)
{
    uint32_t m = state_load();

    if (!(m & DCB__RUNNING))
        return ERROR_SUCCESS;
    if (!(m & DCB_HOOK_BIT(DCB_HOOK_PKTDROP)) &&
        (PktContext == NULL || ControlCode != DHCP_DROP_PROCESSED)) {
        dcb__stats_unsub(DCB_HOOK_PKTDROP);
        return ERROR_SUCCESS;
    }
    pktdrop_slow(m, Packet, PacketSize, ControlCode, IpAddress, Reserved, PktContext);
    return ERROR_SUCCESS;
}

static DWORD WINAPI hook_pktsend(LPBYTE *Packet, DWORD *PacketSize, DWORD ControlCode,
                                 DWORD IpAddress, LPVOID Reserved, LPVOID PktContext)
{
    uint32_t m = state_load();
    uint64_t t0;

    if ((m & (DCB__RUNNING | DCB_HOOK_BIT(DCB_HOOK_PKTSEND))) !=
        (DCB__RUNNING | DCB_HOOK_BIT(DCB_HOOK_PKTSEND))) {
        if (m & DCB__RUNNING)
            dcb__stats_unsub(DCB_HOOK_PKTSEND);
        return ERROR_SUCCESS;
    }
    if (!enter())
        return ERROR_SUCCESS;
    t0 = dcb_now_ns();
    dcb__stats_call(DCB_HOOK_PKTSEND);
    dcb__request_pktsend(dcb__pkt_from(PktContext), Packet, PacketSize, ControlCode, IpAddress,
                         Reserved, t0);
    leave();
    return ERROR_SUCCESS;
}

/* The common start of the pure notification hooks. */
static int note_begin(int hook)
{
    uint32_t m = state_load();

    if ((m & (DCB__RUNNING | DCB_HOOK_BIT(hook))) == (DCB__RUNNING | DCB_HOOK_BIT(hook)))
        return enter();
    if (m & DCB__RUNNING)
        dcb__stats_unsub(hook);
    return 0;
}

static DWORD WINAPI hook_addressdel(LPBYTE Packet, DWORD PacketSize, DWORD ControlCode,
                                    DWORD IpAddress, DWORD AltAddress, LPVOID Reserved,
                                    LPVOID PktContext)
{
    dcb__note_t n;

    if (!note_begin(DCB_HOOK_ADDRESSDEL))
        return ERROR_SUCCESS;
    memset(&n, 0, sizeof(n));
    n.n_hook = DCB_HOOK_ADDRESSDEL;
    n.n_code = ControlCode;
    n.n_ip = IpAddress;
    n.n_alt = AltAddress;
    n.n_reserved = (uint64_t)(uintptr_t)Reserved;
    n.n_data = Packet;
    n.n_data_len = PacketSize;
    notify(DCB_HOOK_ADDRESSDEL, dcb__pkt_from(PktContext), &n);
    leave();
    return ERROR_SUCCESS;
}

static DWORD WINAPI hook_addressoffer(LPBYTE Packet, DWORD PacketSize, DWORD ControlCode,
                                      DWORD IpAddress, DWORD AltAddress, DWORD AddrType,
                                      DWORD LeaseTime, LPVOID Reserved, LPVOID PktContext)
{
    dcb__note_t n;

    if (!note_begin(DCB_HOOK_ADDRESSOFFER))
        return ERROR_SUCCESS;
    memset(&n, 0, sizeof(n));
    n.n_hook = DCB_HOOK_ADDRESSOFFER;
    n.n_code = ControlCode;
    n.n_ip = IpAddress;
    n.n_alt = AltAddress;
    n.n_addr_type = AddrType;
    n.n_lease = LeaseTime;
    n.n_reserved = (uint64_t)(uintptr_t)Reserved;
    n.n_data = Packet;
    n.n_data_len = PacketSize;
    notify(DCB_HOOK_ADDRESSOFFER, dcb__pkt_from(PktContext), &n);
    leave();
    return ERROR_SUCCESS;
}

static DWORD WINAPI hook_handleoptions(LPBYTE Packet, DWORD PacketSize, LPVOID Reserved,
                                       LPVOID PktContext, LPDHCP_SERVER_OPTIONS ServerOptions)
{
    dcb__note_t n;

    if (!note_begin(DCB_HOOK_HANDLEOPTIONS))
        return ERROR_SUCCESS;
    memset(&n, 0, sizeof(n));
    n.n_hook = DCB_HOOK_HANDLEOPTIONS;
    n.n_reserved = (uint64_t)(uintptr_t)Reserved;
    n.n_data = Packet;
    n.n_data_len = PacketSize;
    n.n_options = ServerOptions;
    if (ServerOptions == NULL) {
        /* Nothing to pass on: the event still tells the broker the hook ran. */
        static const DHCP_SERVER_OPTIONS none;
        n.n_options = &none;
    }
    notify(DCB_HOOK_HANDLEOPTIONS, dcb__pkt_from(PktContext), &n);
    leave();
    return ERROR_SUCCESS;
}

static DWORD WINAPI hook_deleteclient(DWORD IpAddress, LPBYTE HwAddress, ULONG HwAddressLength,
                                      DWORD Reserved, DWORD ClientType)
{
    dcb__note_t n;

    if (!note_begin(DCB_HOOK_DELETECLIENT))
        return ERROR_SUCCESS;
    memset(&n, 0, sizeof(n));
    n.n_hook = DCB_HOOK_DELETECLIENT;
    n.n_ip = IpAddress;
    n.n_reserved = Reserved;
    n.n_client_type = ClientType;
    n.n_has_data = HwAddress != NULL;
    n.n_data = HwAddress;
    /* DHCP's own cap on a hardware address; the API's ULONG is not trusted. */
    n.n_data_len = HwAddress == NULL ? 0 : (HwAddressLength > 255 ? 255 : HwAddressLength);
    notify(DCB_HOOK_DELETECLIENT, NULL, &n);
    leave();
    return ERROR_SUCCESS;
}

void dcb__hooks_fill(DHCP_CALLOUT_TABLE *tbl)
{
    memset(tbl, 0, sizeof(*tbl));
    tbl->DhcpControlHook = hook_control;
    tbl->DhcpNewPktHook = hook_newpkt;
    tbl->DhcpPktDropHook = hook_pktdrop;
    tbl->DhcpPktSendHook = hook_pktsend;
    tbl->DhcpAddressDelHook = hook_addressdel;
    tbl->DhcpAddressOfferHook = hook_addressoffer;
    tbl->DhcpHandleOptionsHook = hook_handleoptions;
    tbl->DhcpDeleteClientHook = hook_deleteclient;
}
