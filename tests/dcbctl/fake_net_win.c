/*
 * fake_net_win.c — the fake control server's pipes on Windows: a uniquely
 * named byte-mode pipe, local clients only, with one idle instance always
 * waiting so that a client never finds the name missing between two
 * connections.
 */
#include <windows.h>

#include <sddl.h>

#include "fake_server.h"

#include <stdio.h>
#include <stdlib.h>

struct fnet {
    HANDLE fn_idle; /* the instance the next client connects to */
    WCHAR fn_name[128];
};

struct fconn {
    HANDLE fc_pipe;
};

static HANDLE new_instance(const WCHAR *name, int first, SECURITY_ATTRIBUTES *sa)
{
    return CreateNamedPipeW(name, PIPE_ACCESS_DUPLEX | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
                            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
                                PIPE_REJECT_REMOTE_CLIENTS,
                            PIPE_UNLIMITED_INSTANCES, 65536, 65536, 0, sa);
}

static void unique_name(char *name, size_t n, const char *what)
{
    static LONG counter;

    snprintf(name, n, "\\\\.\\pipe\\dcbctl-test-%s-%lu-%ld", what,
             (unsigned long)GetCurrentProcessId(), (long)InterlockedIncrement(&counter));
}

int fnet_listen(fnet_t **out, char *name, size_t n)
{
    fnet_t *l = calloc(1, sizeof(*l));

    if (l == NULL)
        return -1;
    unique_name(name, n, "ctl");
    MultiByteToWideChar(CP_UTF8, 0, name, -1, l->fn_name, 128);
    l->fn_idle = new_instance(l->fn_name, 1, NULL);
    if (l->fn_idle == INVALID_HANDLE_VALUE) {
        free(l);
        return -1;
    }
    *out = l;
    return 0;
}

fconn_t *fnet_accept(fnet_t *l)
{
    fconn_t *c;
    HANDLE h = l->fn_idle;

    if (!ConnectNamedPipe(h, NULL) && GetLastError() != ERROR_PIPE_CONNECTED)
        return NULL;
    /* The next client needs an instance to find before we serve this one. */
    l->fn_idle = new_instance(l->fn_name, 0, NULL);
    c = malloc(sizeof(*c));
    if (c == NULL) {
        CloseHandle(h);
        return NULL;
    }
    c->fc_pipe = h;
    return c;
}

int fnet_read(fconn_t *c, void *buf, size_t n)
{
    BYTE *p = buf;

    while (n > 0) {
        DWORD got = 0;
        if (!ReadFile(c->fc_pipe, p, (DWORD)n, &got, NULL) || got == 0)
            return -1;
        p += got;
        n -= got;
    }
    return 0;
}

int fnet_write(fconn_t *c, const void *buf, size_t n)
{
    const BYTE *p = buf;

    while (n > 0) {
        DWORD put = 0;
        if (!WriteFile(c->fc_pipe, p, (DWORD)n, &put, NULL) || put == 0)
            return -1;
        p += put;
        n -= put;
    }
    return 0;
}

void fnet_close(fconn_t *c)
{
    FlushFileBuffers(c->fc_pipe);
    DisconnectNamedPipe(c->fc_pipe);
    CloseHandle(c->fc_pipe);
    free(c);
}

void fnet_wake(fnet_t *l, const char *name)
{
    HANDLE h =
        CreateFileW(l->fn_name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);

    (void)name;
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
}

void fnet_free(fnet_t *l, const char *name)
{
    (void)name;
    if (l->fn_idle != INVALID_HANDLE_VALUE)
        CloseHandle(l->fn_idle);
    free(l);
}

int fnet_denied_open(char *name, size_t n, void **handle)
{
    SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, FALSE};
    WCHAR wname[128];
    HANDLE h;

    /* A protected, empty DACL: nobody is granted anything. */
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(L"D:P", SDDL_REVISION_1,
                                                              &sa.lpSecurityDescriptor, NULL))
        return -1;
    unique_name(name, n, "denied");
    MultiByteToWideChar(CP_UTF8, 0, name, -1, wname, 128);
    h = new_instance(wname, 1, &sa);
    LocalFree(sa.lpSecurityDescriptor);
    if (h == INVALID_HANDLE_VALUE)
        return -1;
    *handle = h;
    return 0;
}

void fnet_denied_close(void *handle, const char *name)
{
    (void)name;
    CloseHandle((HANDLE)handle);
}

int fnet_run_unprivileged(int (*fn)(void *), void *arg)
{
    /* A pipe's DACL applies to administrators too: no need to drop anything. */
    return fn(arg);
}

void fnet_unused_name(char *name, size_t n)
{
    unique_name(name, n, "none");
}

int fnet_stale_open(char *name, size_t n)
{
    /* A pipe name disappears with its last instance: there is no stale pipe. */
    (void)name;
    (void)n;
    return -1;
}

void fnet_stale_close(const char *name)
{
    (void)name;
}

int fnet_is_wine(void)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");

    return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
}
