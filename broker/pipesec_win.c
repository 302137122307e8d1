/*
 * pipesec_win.c — the broker's named pipes, created secure (pipesec.h).
 *
 * libuv creates its own pipe instances (uv_pipe_bind, and a new one after
 * every accept) with a default security descriptor, and takes none from us.
 * So this file creates every instance itself:
 *
 *   - an explicit, protected DACL: Administrators and the broker's own
 *     account get full access (the broker needs FILE_CREATE_PIPE_INSTANCE
 *     for its later instances); on the event pipe the allowed client
 *     accounts (default NETWORK SERVICE, the DHCP server's account) get read,
 *     write and attribute access but not FILE_CREATE_PIPE_INSTANCE, so no
 *     other service running as NETWORK SERVICE can add an instance of its
 *     own to our pipe and wait for the shim; the control pipe has no client
 *     ACE (administrators only);
 *   - PIPE_REJECT_REMOTE_CLIENTS;
 *   - FILE_FLAG_FIRST_PIPE_INSTANCE on the first instance, so a pipe of that
 *     name created before us (a squatter, or another broker) makes us refuse
 *     to start. Wine does not enforce that flag, so the name is also looked
 *     up before, and our first instance's security descriptor is compared
 *     with ours after (the descriptor belongs to the pipe name, so a
 *     squatter's would show).
 *
 * A thread of ours keeps PIPESEC_SLOTS instances waiting in overlapped
 * ConnectNamedPipe. A connected instance is queued (it stays open, and the
 * other slots' instances stay waiting, so the name never lapses), its slot
 * gets a fresh instance, and the loop is woken with uv_async_send; the loop
 * thread hands it to the caller, whose pipesec_accept wraps it in a
 * uv_pipe_t with uv_pipe_open. From then on it is an ordinary libuv pipe
 * (IOCP, reads, writes, close).
 */
#include "pipesec.h"

#include <windows.h>
#include <aclapi.h>
#include <io.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcb_os.h"

#define PIPESEC_SLOTS 4      /* instances waiting for a client */
#define PIPESEC_READY_MAX 64 /* connected, not yet taken by the loop */
#define PIPESEC_BUF 65536
/*
 * Client access on the event pipe: FILE_GENERIC_READ | FILE_WRITE_DATA |
 * FILE_WRITE_ATTRIBUTES (SetNamedPipeHandleState needs it). Deliberately
 * without FILE_APPEND_DATA, which on a pipe is FILE_CREATE_PIPE_INSTANCE.
 */
#define PIPESEC_CLIENT_ACCESS 0x0012018Bu

typedef struct ps_slot {
    HANDLE sl_pipe;
    OVERLAPPED sl_ov;
    int sl_armed;
} ps_slot_t;

struct pipesec {
    uv_async_t ps_async;
    pipesec_cb ps_cb;
    void *ps_data;
    wchar_t *ps_name;
    wchar_t *ps_sddl;
    PSECURITY_DESCRIPTOR ps_sd;
    SECURITY_ATTRIBUTES ps_sa;
    HANDLE ps_first;
    HANDLE ps_thread;
    HANDLE ps_stop;
    CRITICAL_SECTION ps_lock;
    HANDLE ps_ready[PIPESEC_READY_MAX];
    size_t ps_nready;
    HANDLE ps_current; /* offered to the callback, not yet accepted */
    int ps_closing;
    ps_slot_t ps_slots[PIPESEC_SLOTS];
};

static void drop_instance(HANDLE h)
{
    DisconnectNamedPipe(h);
    CloseHandle(h);
}

/* ---- the security descriptor ---------------------------------------------- */

/* The SID string of our own token's user ("S-1-5-18" for LocalSystem). */
static int own_sid(wchar_t *out, size_t cap)
{
    union {
        TOKEN_USER tu;
        BYTE raw[SECURITY_MAX_SID_SIZE + sizeof(TOKEN_USER)];
    } u;
    HANDLE tok = NULL;
    DWORD len = 0;
    wchar_t *s = NULL;
    int ok = 0;

    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
        return 0;
    if (GetTokenInformation(tok, TokenUser, &u, sizeof(u), &len) &&
        ConvertSidToStringSidW(u.tu.User.Sid, &s)) {
        ok = wcslen(s) < cap;
        if (ok)
            wcscpy(out, s);
        LocalFree(s);
    }
    CloseHandle(tok);
    return ok;
}

/* An account name ("NT AUTHORITY\NETWORK SERVICE") or SID string as a SID string. */
static int account_sid(const char *account, wchar_t *out, size_t cap)
{
    BYTE sid[SECURITY_MAX_SID_SIZE];
    wchar_t dom[256], *w = dcb_utf8_to_wide(account), *s = NULL;
    DWORD sidlen = sizeof(sid), domlen = 256;
    SID_NAME_USE use;
    PSID p = NULL;
    int ok = 0;

    if (w == NULL)
        return 0;
    if ((account[0] == 'S' || account[0] == 's') && account[1] == '-') {
        if (ConvertStringSidToSidW(w, &p)) {
            ok = IsValidSid(p) && ConvertSidToStringSidW(p, &s);
            LocalFree(p);
        }
    } else if (LookupAccountNameW(NULL, w, sid, &sidlen, dom, &domlen, &use)) {
        ok = ConvertSidToStringSidW(sid, &s) ? 1 : 0;
    }
    free(w);
    if (ok) {
        ok = wcslen(s) < cap;
        if (ok)
            wcscpy(out, s);
        LocalFree(s);
    }
    return ok;
}

static int build_sd(pipesec_t *ps, pipesec_kind_t kind, const char *allow, char *err,
                    size_t errlen)
{
    size_t cap = 4096, used;
    wchar_t me[256], sid[256];
    const char *p = allow != NULL && allow[0] != '\0' ? allow : NULL;

    if (!own_sid(me, 256)) {
        snprintf(err, errlen, "cannot read the broker's own account (error %lu)", GetLastError());
        return UV_EPERM;
    }
    ps->ps_sddl = malloc(cap * sizeof(wchar_t));
    if (ps->ps_sddl == NULL)
        return UV_ENOMEM;
    /* P: protected, nothing is inherited. FA: FILE_ALL_ACCESS. */
    used = (size_t)_snwprintf(ps->ps_sddl, cap, L"D:P(A;;FA;;;BA)(A;;FA;;;%ls)", me);
    if (kind == PIPESEC_EVENT && p == NULL)
        p = "S-1-5-20"; /* NETWORK SERVICE: the DHCP server's account */
    while (p != NULL && *p != '\0') {
        char name[256];
        size_t n = 0;

        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        while (*p != '\0' && *p != ',' && n + 1 < sizeof(name))
            name[n++] = *p++;
        while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
            n--;
        name[n] = '\0';
        if (n == 0)
            continue;
        if (!account_sid(name, sid, 256)) {
            snprintf(err, errlen, "allow list: '%s' is not a known account", name);
            return UV_EINVAL;
        }
        if (used + wcslen(sid) + 32 >= cap) {
            snprintf(err, errlen, "allow list too long");
            return UV_EINVAL;
        }
        /* Control pipe clients get what administrators get; event pipe clients less. */
        if (kind == PIPESEC_CONTROL)
            used += (size_t)_snwprintf(ps->ps_sddl + used, cap - used, L"(A;;FA;;;%ls)", sid);
        else
            used += (size_t)_snwprintf(ps->ps_sddl + used, cap - used, L"(A;;0x%08lx;;;%ls)",
                                       (unsigned long)PIPESEC_CLIENT_ACCESS, sid);
    }
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(ps->ps_sddl, SDDL_REVISION_1,
                                                              &ps->ps_sd, NULL)) {
        snprintf(err, errlen, "cannot build the pipe's security descriptor (error %lu)",
                 GetLastError());
        return UV_EINVAL;
    }
    ps->ps_sa.nLength = sizeof(ps->ps_sa);
    ps->ps_sa.lpSecurityDescriptor = ps->ps_sd;
    ps->ps_sa.bInheritHandle = FALSE;
    return 0;
}

/*
 * The DACL of a handle's object (h), or of a descriptor (sd), in SDDL as
 * Windows writes it, so two can be compared as strings. NULL on failure.
 */
static wchar_t *sd_dacl(HANDLE h, PSECURITY_DESCRIPTOR sd)
{
    PSECURITY_DESCRIPTOR got = NULL;
    PACL dacl = NULL;
    wchar_t *s = NULL, *copy = NULL;

    if (h != NULL) {
        if (GetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, &dacl,
                            NULL, &got) != ERROR_SUCCESS)
            return NULL;
        sd = got;
    }
    if (ConvertSecurityDescriptorToStringSecurityDescriptorW(sd, SDDL_REVISION_1,
                                                             DACL_SECURITY_INFORMATION, &s, NULL)) {
        copy = malloc((wcslen(s) + 1) * sizeof(wchar_t));
        if (copy != NULL)
            wcscpy(copy, s);
        LocalFree(s);
    }
    if (got != NULL)
        LocalFree(got);
    return copy;
}

/* ---- instances and the accept thread ---------------------------------------- */

static HANDLE create_instance(pipesec_t *ps, int first)
{
    return CreateNamedPipeW(ps->ps_name,
                            PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED |
                                (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
                            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
                                PIPE_REJECT_REMOTE_CLIENTS,
                            PIPE_UNLIMITED_INSTANCES, PIPESEC_BUF, PIPESEC_BUF, 0, &ps->ps_sa);
}

/* Queues a connected instance for the loop thread. */
static void deliver(pipesec_t *ps, HANDLE h)
{
    int queued = 0;

    EnterCriticalSection(&ps->ps_lock);
    if (ps->ps_nready < PIPESEC_READY_MAX && !ps->ps_closing) {
        ps->ps_ready[ps->ps_nready++] = h;
        queued = 1;
    }
    LeaveCriticalSection(&ps->ps_lock);
    if (!queued) {
        /* The loop is far behind (or stopping): refuse rather than pile up. */
        drop_instance(h);
        return;
    }
    uv_async_send(&ps->ps_async);
}

/*
 * Puts a slot's instance (a fresh one when it has none) into the listening
 * state. Returns 0 when it waits, 1 when a client is already connected, -1
 * when it must be retried later.
 */
static int slot_arm(pipesec_t *ps, ps_slot_t *s)
{
    if (s->sl_pipe == NULL) {
        HANDLE h = create_instance(ps, 0);
        if (h == INVALID_HANDLE_VALUE)
            return -1;
        s->sl_pipe = h;
    }
    ResetEvent(s->sl_ov.hEvent);
    s->sl_ov.Internal = s->sl_ov.InternalHigh = 0;
    s->sl_ov.Offset = s->sl_ov.OffsetHigh = 0;
    if (ConnectNamedPipe(s->sl_pipe, &s->sl_ov))
        return 1;
    switch (GetLastError()) {
    case ERROR_IO_PENDING:
        s->sl_armed = 1;
        return 0;
    case ERROR_PIPE_CONNECTED:
        return 1;
    default:
        /* ERROR_NO_DATA: a client came and went already. Start over. */
        drop_instance(s->sl_pipe);
        s->sl_pipe = NULL;
        return -1;
    }
}

static DWORD WINAPI accept_thread(void *arg)
{
    pipesec_t *ps = arg;
    HANDLE events[PIPESEC_SLOTS + 1];
    int map[PIPESEC_SLOTS + 1];

    ps->ps_slots[0].sl_pipe = ps->ps_first; /* first-instance semantics come from here */
    for (;;) {
        DWORD n = 1, w;
        int retry = 0;

        for (int i = 0; i < PIPESEC_SLOTS; i++) {
            ps_slot_t *s = &ps->ps_slots[i];
            while (!s->sl_armed) {
                int rc = slot_arm(ps, s);
                if (rc < 0) {
                    retry = 1;
                    break;
                }
                if (rc == 1) {
                    HANDLE h = s->sl_pipe;
                    s->sl_pipe = NULL;
                    deliver(ps, h);
                }
            }
        }
        events[0] = ps->ps_stop;
        for (int i = 0; i < PIPESEC_SLOTS; i++) {
            if (ps->ps_slots[i].sl_armed) {
                map[n] = i;
                events[n++] = ps->ps_slots[i].sl_ov.hEvent;
            }
        }
        w = WaitForMultipleObjects(n, events, FALSE, retry ? 250 : INFINITE);
        if (w == WAIT_OBJECT_0 || w == WAIT_FAILED)
            break;
        if (w > WAIT_OBJECT_0 && w < WAIT_OBJECT_0 + n) {
            ps_slot_t *s = &ps->ps_slots[map[w - WAIT_OBJECT_0]];
            DWORD dummy;
            HANDLE h = s->sl_pipe;

            s->sl_armed = 0;
            s->sl_pipe = NULL;
            if (GetOverlappedResult(h, &s->sl_ov, &dummy, FALSE) ||
                GetLastError() == ERROR_PIPE_CONNECTED)
                deliver(ps, h);
            else
                drop_instance(h);
        }
    }
    for (int i = 0; i < PIPESEC_SLOTS; i++) {
        ps_slot_t *s = &ps->ps_slots[i];
        DWORD dummy;
        if (s->sl_pipe == NULL)
            continue;
        if (s->sl_armed) {
            CancelIoEx(s->sl_pipe, &s->sl_ov);
            GetOverlappedResult(s->sl_pipe, &s->sl_ov, &dummy, TRUE);
        }
        drop_instance(s->sl_pipe);
        s->sl_pipe = NULL;
    }
    return 0;
}

/* ---- the loop side ----------------------------------------------------------- */

static void ps_free(pipesec_t *ps)
{
    for (int i = 0; i < PIPESEC_SLOTS; i++)
        if (ps->ps_slots[i].sl_ov.hEvent != NULL)
            CloseHandle(ps->ps_slots[i].sl_ov.hEvent);
    if (ps->ps_stop != NULL)
        CloseHandle(ps->ps_stop);
    if (ps->ps_sd != NULL)
        LocalFree(ps->ps_sd);
    DeleteCriticalSection(&ps->ps_lock);
    free(ps->ps_name);
    free(ps->ps_sddl);
    free(ps);
}

static void async_closed_cb(uv_handle_t *h)
{
    ps_free(h->data);
}

static void async_cb(uv_async_t *a)
{
    pipesec_t *ps = a->data;
    HANDLE batch[PIPESEC_READY_MAX];
    size_t n;

    EnterCriticalSection(&ps->ps_lock);
    n = ps->ps_nready;
    memcpy(batch, ps->ps_ready, n * sizeof(HANDLE));
    ps->ps_nready = 0;
    LeaveCriticalSection(&ps->ps_lock);
    for (size_t i = 0; i < n; i++) {
        if (ps->ps_closing) {
            drop_instance(batch[i]);
            continue;
        }
        ps->ps_current = batch[i];
        ps->ps_cb(ps, ps->ps_data);
        if (ps->ps_current != NULL) {
            /* Not taken: the caller refused it. */
            drop_instance(ps->ps_current);
            ps->ps_current = NULL;
        }
    }
}

int pipesec_listen(uv_loop_t *loop, const char *name, pipesec_kind_t kind, const char *allow,
                   pipesec_cb cb, void *data, pipesec_t **out, char *err, size_t errlen)
{
    pipesec_t *ps;
    wchar_t *dacl, *want;
    DWORD e;
    int events_ok, rc;

    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    ps = calloc(1, sizeof(*ps));
    if (ps == NULL)
        return UV_ENOMEM;
    InitializeCriticalSection(&ps->ps_lock);
    ps->ps_cb = cb;
    ps->ps_data = data;
    ps->ps_name = dcb_utf8_to_wide(name);
    if (ps->ps_name == NULL) {
        ps_free(ps);
        return UV_EINVAL;
    }
    rc = build_sd(ps, kind, allow, err, errlen);
    if (rc != 0) {
        ps_free(ps);
        return rc;
    }
    /*
     * Is the name taken? FILE_FLAG_FIRST_PIPE_INSTANCE answers that
     * atomically on Windows; Wine ignores the flag, so ask first as well.
     */
    if (WaitNamedPipeW(ps->ps_name, 1) || GetLastError() != ERROR_FILE_NOT_FOUND) {
        snprintf(err, errlen,
                 "pipe %s already exists (another broker, or another program squatting on the "
                 "name): refusing to start",
                 name);
        ps_free(ps);
        return UV_EADDRINUSE;
    }
    ps->ps_first = create_instance(ps, 1);
    if (ps->ps_first == INVALID_HANDLE_VALUE) {
        e = GetLastError();
        if (e == ERROR_ACCESS_DENIED || e == ERROR_PIPE_BUSY) {
            snprintf(err, errlen,
                     "pipe %s already exists (another broker, or another program squatting on "
                     "the name): refusing to start",
                     name);
            rc = UV_EADDRINUSE;
        } else {
            snprintf(err, errlen, "cannot create pipe %s (error %lu)", name, e);
            rc = uv_translate_sys_error((int)e);
        }
        ps_free(ps);
        return rc;
    }
    /* The descriptor belongs to the name: one that is not ours means someone was first. */
    want = sd_dacl(NULL, ps->ps_sd);
    dacl = sd_dacl(ps->ps_first, NULL);
    e = dacl != NULL && want != NULL && wcscmp(dacl, want) == 0;
    free(want);
    if (!e) {
        snprintf(err, errlen,
                 "pipe %s carries a security descriptor that is not the broker's (%ls): another "
                 "program created the name first; refusing to start",
                 name, dacl != NULL ? dacl : L"unreadable");
        free(dacl);
        CloseHandle(ps->ps_first);
        ps_free(ps);
        return UV_EADDRINUSE;
    }
    free(dacl);
    ps->ps_stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    events_ok = ps->ps_stop != NULL;
    for (int i = 0; i < PIPESEC_SLOTS; i++) {
        ps->ps_slots[i].sl_ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (ps->ps_slots[i].sl_ov.hEvent == NULL)
            events_ok = 0;
    }
    rc = uv_async_init(loop, &ps->ps_async, async_cb);
    if (rc != 0 || !events_ok) {
        CloseHandle(ps->ps_first);
        if (rc == 0) {
            ps->ps_async.data = ps;
            uv_close((uv_handle_t *)&ps->ps_async, async_closed_cb);
        } else {
            ps_free(ps);
        }
        return rc != 0 ? rc : UV_ENOMEM;
    }
    ps->ps_async.data = ps;
    ps->ps_thread = CreateThread(NULL, 0, accept_thread, ps, 0, NULL);
    if (ps->ps_thread == NULL) {
        snprintf(err, errlen, "cannot start the pipe's accept thread (error %lu)", GetLastError());
        CloseHandle(ps->ps_first);
        uv_close((uv_handle_t *)&ps->ps_async, async_closed_cb);
        return UV_ENOMEM;
    }
    dcb_log(DCB_LOG_DEBUG, "pipe %s: security descriptor %ls, remote clients rejected", name,
            ps->ps_sddl);
    *out = ps;
    return 0;
}

int pipesec_accept(pipesec_t *ps, uv_pipe_t *client, char *peer, size_t peerlen)
{
    HANDLE h = ps->ps_current;
    ULONG pid = 0;
    int fd, rc;

    if (peerlen > 0)
        peer[0] = '\0';
    if (h == NULL)
        return UV_EAGAIN;
    ps->ps_current = NULL;
    if (GetNamedPipeClientProcessId(h, &pid))
        snprintf(peer, peerlen, "pid %lu", (unsigned long)pid);
    /* libuv takes pipes as C runtime descriptors; the descriptor then owns the handle. */
    fd = _open_osfhandle((intptr_t)h, 0);
    if (fd < 0) {
        drop_instance(h);
        return UV_EMFILE;
    }
    rc = uv_pipe_open(client, fd);
    if (rc != 0) {
        _close(fd);
        return rc;
    }
    /* For fds 0-2 libuv works on a duplicate of the handle and leaves the fd to us. */
    if (fd <= 2)
        _close(fd);
    return 0;
}

void pipesec_close(pipesec_t *ps)
{
    if (ps == NULL || ps->ps_closing)
        return;
    EnterCriticalSection(&ps->ps_lock);
    ps->ps_closing = 1;
    LeaveCriticalSection(&ps->ps_lock);
    /* The thread cancels its waits and closes its instances at once. */
    SetEvent(ps->ps_stop);
    WaitForSingleObject(ps->ps_thread, INFINITE);
    CloseHandle(ps->ps_thread);
    EnterCriticalSection(&ps->ps_lock);
    for (size_t i = 0; i < ps->ps_nready; i++)
        drop_instance(ps->ps_ready[i]);
    ps->ps_nready = 0;
    LeaveCriticalSection(&ps->ps_lock);
    uv_close((uv_handle_t *)&ps->ps_async, async_closed_cb);
}
