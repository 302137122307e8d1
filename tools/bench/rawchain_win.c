/*
 * rawchain_win.c — the raw two-hop chain on Windows: byte-mode named pipes
 * (what the shim and the broker use) between the benchmark and two copies
 * of itself, re-executed as the relay and the echo. Synchronous I/O, no
 * protocol.
 *
 * The benchmark creates both pipes and connects both ends itself, then
 * hands each child exactly the handles it needs: only those handles are
 * inheritable while that child is created.
 *
 *   bench [a_srv] <== pipe a ==> [a_cli] relay [b_srv] <== pipe b ==> [b_cli] echo
 */
#include "rawchain.h"

#include <windows.h>
#include <psapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcb_os.h"

#define RAW_PIPE_BUF 65536u

static int full_io(HANDLE h, void *buf, size_t len, int writing)
{
    uint8_t *p = buf;

    while (len > 0) {
        DWORD n = 0;
        BOOL ok =
            writing ? WriteFile(h, p, (DWORD)len, &n, NULL) : ReadFile(h, p, (DWORD)len, &n, NULL);
        if (!ok || n == 0)
            return -1;
        p += n;
        len -= n;
    }
    return 0;
}

static HANDLE arg_handle(const char *s)
{
    return (HANDLE)(uintptr_t)_strtoui64(s, NULL, 10);
}

int rawchain_child(int argc, char **argv)
{
    size_t req, resp;

    if (argc < 2 || strncmp(argv[1], "--rawchain-", 11) != 0)
        return -1;
    if (strcmp(argv[1], "--rawchain-relay") == 0 && argc == 6) {
        HANDLE up = arg_handle(argv[2]), down = arg_handle(argv[3]);
        uint8_t *buf;
        req = (size_t)_strtoui64(argv[4], NULL, 10);
        resp = (size_t)_strtoui64(argv[5], NULL, 10);
        buf = malloc(req > resp ? req : resp);
        /* The relay forwards each request and each response whole, like the broker. */
        while (buf != NULL && full_io(up, buf, req, 0) == 0 && full_io(down, buf, req, 1) == 0 &&
               full_io(down, buf, resp, 0) == 0 && full_io(up, buf, resp, 1) == 0)
            ;
        return 0;
    }
    if (strcmp(argv[1], "--rawchain-echo") == 0 && argc == 5) {
        HANDLE h = arg_handle(argv[2]);
        uint8_t *in, *out;
        req = (size_t)_strtoui64(argv[3], NULL, 10);
        resp = (size_t)_strtoui64(argv[4], NULL, 10);
        in = malloc(req);
        out = calloc(1, resp);
        while (in != NULL && out != NULL && full_io(h, in, req, 0) == 0 &&
               full_io(h, out, resp, 1) == 0)
            ;
        return 0;
    }
    fprintf(stderr, "rawchain: bad role arguments\n");
    return 2;
}

/* A connected pipe: the server end and the client end, neither inheritable yet. */
static int pipe_pair(const wchar_t *name, HANDLE *srv, HANDLE *cli)
{
    *srv = CreateNamedPipeW(name, PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
                            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
                                PIPE_REJECT_REMOTE_CLIENTS,
                            1, RAW_PIPE_BUF, RAW_PIPE_BUF, 0, NULL);
    if (*srv == INVALID_HANDLE_VALUE)
        return -1;
    *cli = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (*cli == INVALID_HANDLE_VALUE) {
        CloseHandle(*srv);
        return -1;
    }
    if (!ConnectNamedPipe(*srv, NULL) && GetLastError() != ERROR_PIPE_CONNECTED) {
        CloseHandle(*srv);
        CloseHandle(*cli);
        return -1;
    }
    return 0;
}

/* Starts this program in a role, with exactly the given handles inheritable. */
static HANDLE spawn_role(const wchar_t *cmd, HANDLE *inherit, int n)
{
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    wchar_t line[1024];
    BOOL ok;

    for (int i = 0; i < n; i++)
        SetHandleInformation(inherit[i], HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    wcsncpy(line, cmd, 1023);
    line[1023] = 0;
    ok = CreateProcessW(NULL, line, NULL, NULL, TRUE, CREATE_NO_WINDOW, NULL, NULL, &si, &pi);
    for (int i = 0; i < n; i++)
        SetHandleInformation(inherit[i], HANDLE_FLAG_INHERIT, 0);
    if (!ok)
        return NULL;
    CloseHandle(pi.hThread);
    return pi.hProcess;
}

static void reap(HANDLE proc, rawchain_stats_t *st)
{
    FILETIME c, e, k, u;
    PROCESS_MEMORY_COUNTERS pmc;

    if (proc == NULL)
        return;
    WaitForSingleObject(proc, 10000);
    if (st != NULL && GetProcessTimes(proc, &c, &e, &k, &u)) {
        ULARGE_INTEGER kk, uu;
        kk.LowPart = k.dwLowDateTime;
        kk.HighPart = k.dwHighDateTime;
        uu.LowPart = u.dwLowDateTime;
        uu.HighPart = u.dwHighDateTime;
        st->rs_cpu_ns += (kk.QuadPart + uu.QuadPart) * 100u;
    }
    memset(&pmc, 0, sizeof(pmc));
    if (st != NULL && GetProcessMemoryInfo(proc, &pmc, sizeof(pmc)) &&
        pmc.PeakWorkingSetSize / 1024u > st->rs_peak_kb)
        st->rs_peak_kb = pmc.PeakWorkingSetSize / 1024u;
    TerminateProcess(proc, 1); /* only if it did not exit in time */
    CloseHandle(proc);
}

int rawchain_run(size_t req, size_t resp, long n, dcb_hist_t *h, rawchain_stats_t *st)
{
    static LONG counter;
    wchar_t exe[MAX_PATH], name_a[128], name_b[128], cmd[1024];
    HANDLE a_srv = NULL, a_cli = NULL, b_srv = NULL, b_cli = NULL, relay = NULL, echo = NULL;
    HANDLE pass[2];
    uint8_t *out = NULL, *in = NULL;
    LONG id = InterlockedIncrement(&counter);
    int rc = 0;

    if (st != NULL)
        memset(st, 0, sizeof(*st));
    if (GetModuleFileNameW(NULL, exe, MAX_PATH) == 0)
        return -1;
    _snwprintf(name_a, 128, L"\\\\.\\pipe\\dcb-rawchain-%lu-%ld-a", GetCurrentProcessId(), id);
    _snwprintf(name_b, 128, L"\\\\.\\pipe\\dcb-rawchain-%lu-%ld-b", GetCurrentProcessId(), id);
    if (pipe_pair(name_a, &a_srv, &a_cli) != 0)
        return -1;
    if (pipe_pair(name_b, &b_srv, &b_cli) != 0) {
        CloseHandle(a_srv);
        CloseHandle(a_cli);
        return -1;
    }
    _snwprintf(cmd, 1024, L"\"%ls\" --rawchain-echo %llu %llu %llu", exe,
               (unsigned long long)(uintptr_t)b_cli, (unsigned long long)req,
               (unsigned long long)resp);
    echo = spawn_role(cmd, &b_cli, 1);
    _snwprintf(cmd, 1024, L"\"%ls\" --rawchain-relay %llu %llu %llu %llu", exe,
               (unsigned long long)(uintptr_t)a_cli, (unsigned long long)(uintptr_t)b_srv,
               (unsigned long long)req, (unsigned long long)resp);
    pass[0] = a_cli;
    pass[1] = b_srv;
    relay = echo != NULL ? spawn_role(cmd, pass, 2) : NULL;
    /* The children hold their ends now; ours would keep the pipes open after them. */
    CloseHandle(a_cli);
    CloseHandle(b_srv);
    CloseHandle(b_cli);
    out = calloc(1, req);
    in = malloc(resp);
    if (echo == NULL || relay == NULL || out == NULL || in == NULL) {
        rc = -1;
        goto done;
    }
    for (long i = 0; i < n; i++) {
        uint64_t t0 = dcb_now_ns();
        if (full_io(a_srv, out, req, 1) != 0 || full_io(a_srv, in, resp, 0) != 0) {
            rc = -5;
            break;
        }
        dcb_hist_record(h, dcb_now_ns() - t0);
    }
done:
    /* Closing our end ends the relay, whose exit ends the echo. */
    CloseHandle(a_srv);
    reap(relay, st);
    reap(echo, st);
    free(out);
    free(in);
    return rc;
}
