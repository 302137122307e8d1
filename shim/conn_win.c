/*
 * conn_win.c — transport.h over byte-mode named pipes.
 *
 * Handles are opened for overlapped I/O: every read and write is started,
 * waited for with WaitForSingleObject up to the deadline, and cancelled with
 * CancelIoEx when the deadline passes. The client opens the pipe with
 * identification-only impersonation (SECURITY_SQOS_PRESENT |
 * SECURITY_IDENTIFICATION), so a squatting server cannot act as the DHCP
 * service, and refuses a pipe whose server is not the expected account.
 */
#include "transport.h"

#include <aclapi.h>
#include <sddl.h>
#include <stdlib.h>
#include <string.h>

struct dcb__tp {
    HANDLE t_h;
    HANDLE t_ev;
    OVERLAPPED t_ov;
};

/* The one place Windows errors become ours. */
static int map_error(DWORD err)
{
    switch (err) {
    case ERROR_BROKEN_PIPE:
    case ERROR_PIPE_NOT_CONNECTED:
    case ERROR_NO_DATA:
        return DCB__TP_EOF;
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
        return DCB__TP_ENOENT;
    case ERROR_PIPE_BUSY:
        return DCB__TP_EBUSY;
    case ERROR_ACCESS_DENIED:
        return DCB__TP_EACCES;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return DCB_OS_ENOMEM;
    default:
        return DCB_OS_EIO;
    }
}

static DWORD ms_left(uint64_t deadline_ns)
{
    uint64_t now = dcb_now_ns(), ms;

    if (now >= deadline_ns)
        return 0;
    /* Round up: a wait must never end before the deadline. */
    ms = (deadline_ns - now + 999999u) / 1000000u;
    return ms >= INFINITE ? INFINITE - 1 : (DWORD)ms;
}

/* Completes an overlapped ReadFile/WriteFile started with `ok` as its result. */
static int io_finish(dcb__tp_t *t, BOOL ok, uint64_t deadline_ns, DWORD *done)
{
    DWORD w;

    *done = 0;
    if (!ok && GetLastError() != ERROR_IO_PENDING)
        return map_error(GetLastError());
    if (!ok) {
        w = WaitForSingleObject(t->t_ev, ms_left(deadline_ns));
        if (w != WAIT_OBJECT_0) {
            CancelIoEx(t->t_h, &t->t_ov);
            /* The operation may have completed before the cancel: take it then. */
            if (GetOverlappedResult(t->t_h, &t->t_ov, done, TRUE) && *done > 0)
                return 0;
            return DCB_OS_ETIMEDOUT;
        }
    }
    if (!GetOverlappedResult(t->t_h, &t->t_ov, done, FALSE))
        return map_error(GetLastError());
    return 0;
}

/* ---- who serves the pipe ------------------------------------------------ */

static int sid_well_known(WELL_KNOWN_SID_TYPE type, PSID buf, DWORD cap)
{
    return CreateWellKnownSid(type, NULL, buf, &cap) ? 1 : 0;
}

/* The user SID of a process's token, copied into buf. */
static int process_user(HANDLE proc, PSID buf, DWORD cap)
{
    HANDLE tok = NULL;
    union {
        TOKEN_USER tu;
        BYTE raw[SECURITY_MAX_SID_SIZE + sizeof(TOKEN_USER)];
    } u;
    DWORD len = 0;
    int ok = 0;

    if (!OpenProcessToken(proc, TOKEN_QUERY, &tok))
        return 0;
    if (GetTokenInformation(tok, TokenUser, &u, sizeof(u), &len) &&
        GetLengthSid(u.tu.User.Sid) <= cap)
        ok = CopySid(cap, buf, u.tu.User.Sid) ? 1 : 0;
    CloseHandle(tok);
    return ok;
}

/*
 * The account serving the pipe: the server process's token user when we may
 * read it, else the pipe object's owner (the server's token owner when it
 * created the instance). Returns 1 with the SID in buf.
 */
static int pipe_server_sid(HANDLE h, PSID buf, DWORD cap, const char **how)
{
    ULONG pid = 0;
    PSID owner = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    int ok = 0;

    if (GetNamedPipeServerProcessId(h, &pid) && pid != 0) {
        HANDLE proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
        if (proc != NULL) {
            ok = process_user(proc, buf, cap);
            CloseHandle(proc);
            if (ok) {
                *how = "server process token";
                return 1;
            }
        }
    }
    if (GetSecurityInfo(h, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION, &owner, NULL, NULL, NULL,
                        &sd) == ERROR_SUCCESS &&
        owner != NULL && IsValidSid(owner) && GetLengthSid(owner) <= cap)
        ok = CopySid(cap, buf, owner) ? 1 : 0;
    if (sd != NULL)
        LocalFree(sd);
    *how = "pipe owner";
    return ok;
}

/* Resolves the configured account ("S-1-..." or a name) to a SID in buf. */
static int account_sid(const char *account, PSID buf, DWORD cap)
{
    wchar_t *w = dcb_utf8_to_wide(account);
    wchar_t dom[256];
    DWORD domlen = 256, len = cap;
    SID_NAME_USE use;
    PSID sid = NULL;
    int ok = 0;

    if (w == NULL)
        return 0;
    if ((account[0] == 'S' || account[0] == 's') && account[1] == '-') {
        if (ConvertStringSidToSidW(w, &sid)) {
            if (GetLengthSid(sid) <= cap)
                ok = CopySid(cap, buf, sid) ? 1 : 0;
            LocalFree(sid);
        }
    } else {
        ok = LookupAccountNameW(NULL, w, buf, &len, dom, &domlen, &use) ? 1 : 0;
    }
    free(w);
    return ok;
}

static int check_peer(HANDLE h, const char *account)
{
    BYTE server[SECURITY_MAX_SID_SIZE], want[SECURITY_MAX_SID_SIZE];
    const char *how = "";
    int ok = 0;

    if (strcmp(account, "*") == 0)
        return 0;
    if (!pipe_server_sid(h, server, sizeof(server), &how)) {
        dcb__log(DCB_LOG_ERROR, "cannot tell which account serves the broker pipe; refusing it");
        return DCB__TP_EPEER;
    }
    if (account[0] != '\0') {
        if (!account_sid(account, want, sizeof(want))) {
            dcb__log(DCB_LOG_ERROR, "broker account '%s' is not a known account", account);
            return DCB__TP_EPEER;
        }
        ok = EqualSid(server, want);
    } else {
        /* Default: LocalSystem, Administrators, or the DHCP service's own account. */
        if (sid_well_known(WinLocalSystemSid, want, sizeof(want)) && EqualSid(server, want))
            ok = 1;
        else if (sid_well_known(WinBuiltinAdministratorsSid, want, sizeof(want)) &&
                 EqualSid(server, want))
            ok = 1;
        else if (process_user(GetCurrentProcess(), want, sizeof(want)) && EqualSid(server, want))
            ok = 1;
    }
    if (!ok) {
        wchar_t *str = NULL;
        char text[192] = "?";
        if (ConvertSidToStringSidW(server, &str)) {
            WideCharToMultiByte(CP_UTF8, 0, str, -1, text, sizeof(text), NULL, NULL);
            LocalFree(str);
        }
        dcb__log(DCB_LOG_ERROR, "refusing broker pipe served by %s (by %s)", text, how);
        return DCB__TP_EPEER;
    }
    return 0;
}

int dcb__tp_connect(const char *name, const char *account, dcb__tp_t **out)
{
    wchar_t *wname;
    HANDLE h;
    DWORD mode = PIPE_READMODE_BYTE;
    dcb__tp_t *t;
    int rc;

    *out = NULL;
    wname = dcb_utf8_to_wide(name);
    if (wname == NULL)
        return DCB_OS_EINVAL;
    /*
     * Opening a pipe instance never waits: it is free or ERROR_PIPE_BUSY.
     * The pool's maintenance thread retries; no caller waits on it.
     */
    /*
     * Exactly what the broker's DACL grants the DHCP service's account
     * (broker/pipesec_win.c): GENERIC_WRITE would include FILE_APPEND_DATA,
     * which on a pipe is FILE_CREATE_PIPE_INSTANCE, and be refused.
     */
    h = CreateFileW(wname, FILE_GENERIC_READ | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES, 0, NULL,
                    OPEN_EXISTING,
                    FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    free(wname);
    if (h == INVALID_HANDLE_VALUE)
        return map_error(GetLastError());
    SetNamedPipeHandleState(h, &mode, NULL, NULL);
    rc = check_peer(h, account);
    if (rc != 0) {
        CloseHandle(h);
        return rc;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        CloseHandle(h);
        return DCB_OS_ENOMEM;
    }
    t->t_h = h;
    t->t_ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (t->t_ev == NULL) {
        CloseHandle(h);
        free(t);
        return DCB_OS_EIO;
    }
    *out = t;
    return 0;
}

int dcb__tp_write(dcb__tp_t *t, const void *buf, size_t n, uint64_t deadline_ns)
{
    const uint8_t *p = buf;
    DWORD done, chunk;
    BOOL ok;
    int rc;

    while (n > 0) {
        chunk = n > 0x40000000u ? 0x40000000u : (DWORD)n;
        memset(&t->t_ov, 0, sizeof(t->t_ov));
        t->t_ov.hEvent = t->t_ev;
        ok = WriteFile(t->t_h, p, chunk, NULL, &t->t_ov);
        rc = io_finish(t, ok, deadline_ns, &done);
        if (rc != 0)
            return rc;
        if (done == 0)
            return DCB_OS_EIO;
        p += done;
        n -= done;
    }
    return 0;
}

int dcb__tp_read(dcb__tp_t *t, void *buf, size_t cap, uint64_t deadline_ns, int wait_first)
{
    DWORD done = 0, avail = 0, chunk;
    BOOL ok;
    int rc;

    (void)wait_first; /* An overlapped read waits by itself. */
    chunk = cap > 0x40000000u ? 0x40000000u : (DWORD)cap;
    if (dcb_now_ns() >= deadline_ns) {
        /* A poll: read only what is already there, so nothing is left pending. */
        if (!PeekNamedPipe(t->t_h, NULL, 0, NULL, &avail, NULL))
            return map_error(GetLastError());
        if (avail == 0)
            return DCB_OS_ETIMEDOUT;
        if (avail < chunk)
            chunk = avail;
        deadline_ns = dcb_now_ns() + 1000000000u;
    }
    memset(&t->t_ov, 0, sizeof(t->t_ov));
    t->t_ov.hEvent = t->t_ev;
    ok = ReadFile(t->t_h, buf, chunk, NULL, &t->t_ov);
    rc = io_finish(t, ok, deadline_ns, &done);
    if (rc != 0)
        return rc;
    return done == 0 ? DCB__TP_EOF : (int)done;
}

int dcb__tp_idle_ok(dcb__tp_t *t)
{
    DWORD avail = 0;

    if (!PeekNamedPipe(t->t_h, NULL, 0, NULL, &avail, NULL))
        return 0;
    return avail == 0;
}

void dcb__tp_close(dcb__tp_t *t)
{
    if (t == NULL)
        return;
    CloseHandle(t->t_h);
    CloseHandle(t->t_ev);
    free(t);
}
