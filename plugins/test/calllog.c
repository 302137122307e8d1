/*
 * calllog — records every call it gets, one line each, in
 * $DCB_CALLLOG_OUT, for tests to read back:
 *
 *   calllog entry version=0 chain=<n> <path>|<path>...
 *   control code=<n>
 *   newpkt id=<id> size=<n> ip=<a.b.c.d>
 *   pktdrop id=<id> code=0x<hex> ip=<a.b.c.d>
 *   pktsend id=<id> size=<n> ip=<a.b.c.d>
 *   addressdel id=<id> code=0x<hex> ip=<a.b.c.d> alt=<a.b.c.d>
 *   addressoffer id=<id> code=0x<hex> ip=<a.b.c.d> alt=<a.b.c.d> type=0x<hex> lease=<n>
 *   handleoptions id=<id> options=ok | options=bad:<field>
 *   deleteclient ip=<a.b.c.d> hwlen=<n> type=0x<hex>
 *
 * PktContext holds the packet's id (1, 2, ... in NewPkt order). Addresses
 * are printed in the byte order callout-api.md gives each hook, so a server
 * that passes the wrong order shows up as reversed addresses.
 * HandleOptions re-derives DHCP_SERVER_OPTIONS from the packet with its own
 * parser and reports the first field that does not match.
 * With DCB_CALLLOG_DROP_EVERY=k, every k-th NewPkt sets ProcessIt = FALSE.
 */
#include "testplug.h"
#include "dcb_plugin.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static _Atomic uint64_t next_id = 1;
static uint32_t drop_every;

static unsigned long long id_of(LPVOID ctx)
{
    return (unsigned long long)(uintptr_t)ctx;
}

static DWORD WINAPI cl_control(DWORD code, LPVOID reserved)
{
    testplug_log("control code=%lu", (unsigned long)code);
    return ERROR_SUCCESS;
}

static DWORD WINAPI cl_newpkt(LPBYTE *packet, DWORD *size, DWORD ip, LPVOID reserved, LPVOID *ctx,
                              LPBOOL process_it)
{
    char a[20];
    uint64_t id = atomic_fetch_add(&next_id, 1);
    *ctx = (LPVOID)(uintptr_t)id;
    dcb_format_ip_net(ip, a, sizeof(a));
    if (drop_every > 0 && id % drop_every == 0)
        *process_it = FALSE;
    testplug_log("newpkt id=%llu size=%lu ip=%s%s", (unsigned long long)id, (unsigned long)*size, a,
                 (drop_every > 0 && id % drop_every == 0) ? " drop" : "");
    return ERROR_SUCCESS;
}

static DWORD WINAPI cl_drop(LPBYTE *packet, DWORD *size, DWORD code, DWORD ip, LPVOID reserved,
                            LPVOID ctx)
{
    char a[20];
    dcb_format_ip_net(ip, a, sizeof(a));
    testplug_log("pktdrop id=%llu code=0x%lx ip=%s", id_of(ctx), (unsigned long)code, a);
    return ERROR_SUCCESS;
}

static DWORD WINAPI cl_send(LPBYTE *packet, DWORD *size, DWORD code, DWORD ip, LPVOID reserved,
                            LPVOID ctx)
{
    char a[20];
    dcb_format_ip_net(ip, a, sizeof(a));
    testplug_log("pktsend id=%llu size=%lu ip=%s code=0x%lx", id_of(ctx), (unsigned long)*size, a,
                 (unsigned long)code);
    return ERROR_SUCCESS;
}

static DWORD WINAPI cl_address_del(LPBYTE packet, DWORD size, DWORD code, DWORD ip, DWORD alt,
                                   LPVOID reserved, LPVOID ctx)
{
    char a[20], b[20];
    dcb_format_ip_net(ip, a, sizeof(a));
    dcb_format_ip_host(alt, b, sizeof(b));
    testplug_log("addressdel id=%llu code=0x%lx ip=%s alt=%s", id_of(ctx), (unsigned long)code, a,
                 b);
    return ERROR_SUCCESS;
}

static DWORD WINAPI cl_address_offer(LPBYTE packet, DWORD size, DWORD code, DWORD ip, DWORD alt,
                                     DWORD type, DWORD lease, LPVOID reserved, LPVOID ctx)
{
    char a[20], b[20];
    dcb_format_ip_host(ip, a, sizeof(a));
    dcb_format_ip_host(alt, b, sizeof(b));
    testplug_log("addressoffer id=%llu code=0x%lx ip=%s alt=%s type=0x%lx lease=%lu", id_of(ctx),
                 (unsigned long)code, a, b, (unsigned long)type, (unsigned long)lease);
    return ERROR_SUCCESS;
}

/* Expected pointer for an option that must be at least min bytes long. */
static const uint8_t *opt(const uint8_t *pkt, size_t len, uint8_t code, size_t min, uint8_t *ol)
{
    const uint8_t *v = dcb_dhcp_find_option(pkt, len, code, ol);
    if (v == NULL || *ol < min) {
        *ol = 0;
        return NULL;
    }
    return v;
}

static const char *verify_options(const uint8_t *pkt, size_t len, const DHCP_SERVER_OPTIONS *so)
{
    uint8_t ol;
    const uint8_t *v;
    uintptr_t lo = (uintptr_t)pkt, hi = lo + len;
    const void *all[] = {so->MessageType,      so->SubnetMask,
                         so->RequestedAddress, so->RequestLeaseTime,
                         so->OverlayFields,    so->RouterAddress,
                         so->Server,           so->ParameterRequestList,
                         so->MachineName,      so->ClientHardwareAddress,
                         so->ClassIdentifier,  so->VendorClass,
                         so->DNSName,          so->DSDomainName};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (all[i] != NULL && ((uintptr_t)all[i] < lo || (uintptr_t)all[i] >= hi))
            return "pointer-outside-packet";
    if ((const uint8_t *)so->MessageType != opt(pkt, len, 53, 1, &ol))
        return "MessageType";
    if ((const uint8_t *)so->SubnetMask != opt(pkt, len, 1, 4, &ol))
        return "SubnetMask";
    if ((const uint8_t *)so->RouterAddress != opt(pkt, len, 3, 4, &ol))
        return "RouterAddress";
    if ((const uint8_t *)so->RequestedAddress != opt(pkt, len, 50, 4, &ol))
        return "RequestedAddress";
    if ((const uint8_t *)so->RequestLeaseTime != opt(pkt, len, 51, 4, &ol))
        return "RequestLeaseTime";
    if ((const uint8_t *)so->OverlayFields != opt(pkt, len, 52, 0, &ol))
        return "OverlayFields";
    if ((const uint8_t *)so->Server != opt(pkt, len, 54, 4, &ol))
        return "Server";
    v = opt(pkt, len, 55, 0, &ol);
    if (so->ParameterRequestList != v || so->ParameterRequestListLength != (v ? ol : 0u))
        return "ParameterRequestList";
    v = opt(pkt, len, 12, 0, &ol);
    if ((const uint8_t *)so->MachineName != v || so->MachineNameLength != (v ? ol : 0u))
        return "MachineName";
    v = opt(pkt, len, 61, 1, &ol);
    if (v == NULL ? so->ClientHardwareAddress != NULL
                  : (so->ClientHardwareAddress != v + 1 || so->ClientHardwareAddressType != v[0] ||
                     so->ClientHardwareAddressLength != ol - 1))
        return "ClientHardwareAddress";
    v = opt(pkt, len, 77, 0, &ol);
    if ((const uint8_t *)so->ClassIdentifier != v || so->ClassIdentifierLength != (v ? ol : 0u))
        return "ClassIdentifier";
    v = opt(pkt, len, 60, 0, &ol);
    if (so->VendorClass != v || so->VendorClassLength != (v ? ol : 0u))
        return "VendorClass";
    v = opt(pkt, len, 81, 3, &ol);
    if (v == NULL ? (so->DNSFlags != 3 || so->DNSName != NULL)
                  : (so->DNSFlags != v[0] || so->DNSNameLength != ol - 3u ||
                     (ol > 3 && so->DNSName != v + 3)))
        return "DNS";
    if (so->ScopeId != NULL)
        return "ScopeId";
    return NULL;
}

static DWORD WINAPI cl_handle_options(LPBYTE packet, DWORD size, LPVOID reserved, LPVOID ctx,
                                      LPDHCP_SERVER_OPTIONS so)
{
    const char *bad = verify_options(packet, size, so);
    char extra[96] = "";
    if (bad == NULL && so->ClientHardwareAddress != NULL)
        snprintf(extra, sizeof(extra), " cid_type=%u cid_len=%u",
                 (unsigned)so->ClientHardwareAddressType,
                 (unsigned)so->ClientHardwareAddressLength);
    testplug_log("handleoptions id=%llu options=%s%s%s%s", id_of(ctx), bad ? "bad:" : "ok",
                 bad ? bad : "", so->MachineName ? " name" : "", extra);
    return ERROR_SUCCESS;
}

static DWORD WINAPI cl_delete_client(DWORD ip, LPBYTE hw, ULONG hwlen, DWORD reserved, DWORD type)
{
    char a[20];
    dcb_format_ip_host(ip, a, sizeof(a));
    testplug_log("deleteclient ip=%s hwlen=%lu type=0x%lx", a, (unsigned long)hwlen,
                 (unsigned long)type);
    return ERROR_SUCCESS;
}

DCB_CALLOUT_EXPORT DWORD WINAPI DhcpServerCalloutEntry(LPWSTR ChainDlls, DWORD CalloutVersion,
                                                       LPDHCP_CALLOUT_TABLE CalloutTbl)
{
    char chain[4096];
    testplug_read_env();
    testplug_chain_str(ChainDlls, chain, sizeof(chain));
    testplug_log("calllog entry version=%lu chain=%s", (unsigned long)CalloutVersion, chain);
    if (CalloutVersion != 0)
        return ERROR_NOT_SUPPORTED;
    drop_every = testplug_env_u32("DCB_CALLLOG_DROP_EVERY", 0);
    memset(CalloutTbl, 0, sizeof(*CalloutTbl));
    CalloutTbl->DhcpControlHook = cl_control;
    CalloutTbl->DhcpNewPktHook = cl_newpkt;
    CalloutTbl->DhcpPktDropHook = cl_drop;
    CalloutTbl->DhcpPktSendHook = cl_send;
    CalloutTbl->DhcpAddressDelHook = cl_address_del;
    CalloutTbl->DhcpAddressOfferHook = cl_address_offer;
    CalloutTbl->DhcpHandleOptionsHook = cl_handle_options;
    CalloutTbl->DhcpDeleteClientHook = cl_delete_client;
    return ERROR_SUCCESS;
}
