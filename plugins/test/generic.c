/*
 * generic.c — the hook table of the simple test plugins: every hook is
 * subscribed and reports to testplug_on_call(). Return values do not
 * matter (the server ignores them) and contexts are left alone.
 */
#include "testplug.h"

#include <string.h>

static DWORD WINAPI g_control(DWORD code, LPVOID reserved)
{
    testplug_on_call(DCB_HOOK_CONTROL);
    return ERROR_SUCCESS;
}

static DWORD WINAPI g_newpkt(LPBYTE *packet, DWORD *size, DWORD ip, LPVOID reserved, LPVOID *ctx,
                             LPBOOL process_it)
{
    testplug_on_call(DCB_HOOK_NEWPKT);
    return ERROR_SUCCESS;
}

static DWORD WINAPI g_drop(LPBYTE *packet, DWORD *size, DWORD code, DWORD ip, LPVOID reserved,
                           LPVOID ctx)
{
    testplug_on_call(DCB_HOOK_PKTDROP);
    return ERROR_SUCCESS;
}

static DWORD WINAPI g_send(LPBYTE *packet, DWORD *size, DWORD code, DWORD ip, LPVOID reserved,
                           LPVOID ctx)
{
    testplug_on_call(DCB_HOOK_PKTSEND);
    return ERROR_SUCCESS;
}

static DWORD WINAPI g_address_del(LPBYTE packet, DWORD size, DWORD code, DWORD ip, DWORD alt,
                                  LPVOID reserved, LPVOID ctx)
{
    testplug_on_call(DCB_HOOK_ADDRESSDEL);
    return ERROR_SUCCESS;
}

static DWORD WINAPI g_address_offer(LPBYTE packet, DWORD size, DWORD code, DWORD ip, DWORD alt,
                                    DWORD type, DWORD lease, LPVOID reserved, LPVOID ctx)
{
    testplug_on_call(DCB_HOOK_ADDRESSOFFER);
    return ERROR_SUCCESS;
}

static DWORD WINAPI g_handle_options(LPBYTE packet, DWORD size, LPVOID reserved, LPVOID ctx,
                                     LPDHCP_SERVER_OPTIONS opts)
{
    testplug_on_call(DCB_HOOK_HANDLEOPTIONS);
    return ERROR_SUCCESS;
}

static DWORD WINAPI g_delete_client(DWORD ip, LPBYTE hw, ULONG hwlen, DWORD reserved, DWORD type)
{
    testplug_on_call(DCB_HOOK_DELETECLIENT);
    return ERROR_SUCCESS;
}

DCB_CALLOUT_EXPORT DWORD WINAPI DhcpServerCalloutEntry(LPWSTR ChainDlls, DWORD CalloutVersion,
                                                       LPDHCP_CALLOUT_TABLE CalloutTbl)
{
    if (CalloutVersion != 0)
        return ERROR_NOT_SUPPORTED;
    testplug_read_env();
    DWORD rc = testplug_on_entry();
    if (rc != ERROR_SUCCESS)
        return rc;
    memset(CalloutTbl, 0, sizeof(*CalloutTbl));
    CalloutTbl->DhcpControlHook = g_control;
    CalloutTbl->DhcpNewPktHook = g_newpkt;
    CalloutTbl->DhcpPktDropHook = g_drop;
    CalloutTbl->DhcpPktSendHook = g_send;
    CalloutTbl->DhcpAddressDelHook = g_address_del;
    CalloutTbl->DhcpAddressOfferHook = g_address_offer;
    CalloutTbl->DhcpHandleOptionsHook = g_handle_options;
    CalloutTbl->DhcpDeleteClientHook = g_delete_client;
    return ERROR_SUCCESS;
}
