/*
 * badentry — DhcpServerCalloutEntry fails (ERROR_INVALID_PARAMETER, or
 * DCB_TEST_ENTRY_RC): the server must unload it and try the next DLL.
 * It notes the ChainDlls it was given in $DCB_CALLLOG_OUT.
 */
#include "testplug.h"

DCB_CALLOUT_EXPORT DWORD WINAPI DhcpServerCalloutEntry(LPWSTR ChainDlls, DWORD CalloutVersion,
                                                       LPDHCP_CALLOUT_TABLE CalloutTbl)
{
    char chain[4096];
    testplug_read_env();
    testplug_chain_str(ChainDlls, chain, sizeof(chain));
    testplug_log("badentry entry version=%lu chain=%s", (unsigned long)CalloutVersion, chain);
    return testplug_env_u32("DCB_TEST_ENTRY_RC", ERROR_INVALID_PARAMETER);
}
