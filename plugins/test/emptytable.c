/*
 * emptytable — DhcpServerCalloutEntry succeeds and fills no hook: the
 * server then calls nothing at all (not even Control).
 */
#include "testplug.h"

#include <string.h>

DCB_CALLOUT_EXPORT DWORD WINAPI DhcpServerCalloutEntry(LPWSTR ChainDlls, DWORD CalloutVersion,
                                                       LPDHCP_CALLOUT_TABLE CalloutTbl)
{
    char chain[4096];
    if (CalloutVersion != 0)
        return ERROR_NOT_SUPPORTED;
    testplug_read_env();
    testplug_chain_str(ChainDlls, chain, sizeof(chain));
    testplug_log("emptytable entry version=%lu chain=%s", (unsigned long)CalloutVersion, chain);
    memset(CalloutTbl, 0, sizeof(*CalloutTbl));
    return ERROR_SUCCESS;
}
