/*
 * escape — a plugin that tries to get out of its host's sandbox, and says
 * how each attempt ended, one line each on stdout (which the broker logs as
 * "[escape:out] escape: WHAT: blocked (WHY)" or "... ALLOWED (...)"):
 *
 *   fork, exec      (Linux) a new process; replace the host's image
 *   socket          (Linux) open any socket
 *   connect-broker  reach the broker's event pipe ($DCB_ESCAPE_PIPE)
 *   write-outside   create $DCB_ESCAPE_OUTSIDE (outside its write_paths)
 *   write-inside    create $DCB_ESCAPE_INSIDE (inside them: must work)
 *   signal-broker   (Linux) signal the broker (signal 0: harmless if allowed)
 *   ptrace-broker   (Linux) attach to the broker (detached at once if allowed)
 *   broker-memory   (Linux) open the broker's /proc/PID/mem for writing
 *   open-broker     (Windows) open the broker's process to terminate or write it
 *   token           (Windows) the integrity level and privileges it runs with
 *   thread          start a thread (must work: plugins use threads)
 *   spawn           start another program (last: on Linux it ends the host)
 * All of it happens in the entry point, so the host is fully sandboxed
 * then (sandbox_host_limits runs before the DLL is loaded). Then it behaves
 * like noop. tests/security/test_escape.c checks the lines per platform.
 */
#include "escape.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void escape_report(const char *what, int allowed, const char *fmt, ...)
{
    char detail[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    printf("escape: %s: %s (%s)\n", what, allowed ? "ALLOWED" : "blocked", detail);
    fflush(stdout);
}

const char *escape_env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static DWORD WINAPI e_newpkt(LPBYTE *packet, DWORD *size, DWORD ip, LPVOID reserved, LPVOID *ctx,
                             LPBOOL process_it)
{
    return ERROR_SUCCESS;
}

DCB_CALLOUT_EXPORT DWORD WINAPI DhcpServerCalloutEntry(LPWSTR ChainDlls, DWORD CalloutVersion,
                                                       LPDHCP_CALLOUT_TABLE CalloutTbl)
{
    if (CalloutVersion != 0)
        return ERROR_NOT_SUPPORTED;
    printf("escape: start\n");
    fflush(stdout);
    escape_try_all();
    printf("escape: done\n");
    fflush(stdout);
    memset(CalloutTbl, 0, sizeof(*CalloutTbl));
    CalloutTbl->DhcpNewPktHook = e_newpkt;
    return ERROR_SUCCESS;
}
