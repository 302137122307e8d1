/*
 * fake_tp_win.c — fake_tp.h over overlapped named pipes.
 *
 * One instance is always waiting for a client (ConnectNamedPipe pending),
 * so a client finds the name as soon as the listener exists. Reads and
 * writes use separate OVERLAPPED structures, so one thread may read while
 * another writes on the same connection.
 */
#include "fake_tp.h"

#include <windows.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ftp_listener {
    wchar_t l_name[256];
    HANDLE l_pending;
    OVERLAPPED l_ov;
    int l_first;
};

struct ftp_conn {
    HANDLE c_h;
    OVERLAPPED c_rov, c_wov;
};

void ftp_unique_name(char *buf, size_t cap, const char *tag)
{
    static int seq;

    snprintf(buf, cap, "\\\\.\\pipe\\dcb-%s-%lu-%d", tag, (unsigned long)GetCurrentProcessId(),
             ++seq);
}

static int new_instance(ftp_listener_t *l)
{
    DWORD flags = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED;

    if (l->l_first)
        flags |= FILE_FLAG_FIRST_PIPE_INSTANCE;
    l->l_pending = CreateNamedPipeW(l->l_name, flags,
                                    PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
                                        PIPE_REJECT_REMOTE_CLIENTS,
                                    PIPE_UNLIMITED_INSTANCES, 65536, 65536, 0, NULL);
    if (l->l_pending == INVALID_HANDLE_VALUE) {
        l->l_pending = NULL;
        return -1;
    }
    l->l_first = 0;
    memset(&l->l_ov, 0, sizeof(l->l_ov));
    l->l_ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!ConnectNamedPipe(l->l_pending, &l->l_ov)) {
        DWORD e = GetLastError();
        if (e == ERROR_PIPE_CONNECTED)
            SetEvent(l->l_ov.hEvent);
        else if (e != ERROR_IO_PENDING) {
            CloseHandle(l->l_ov.hEvent);
            CloseHandle(l->l_pending);
            l->l_pending = NULL;
            return -1;
        }
    }
    return 0;
}

ftp_listener_t *ftp_listen(const char *name)
{
    ftp_listener_t *l = calloc(1, sizeof(*l));

    MultiByteToWideChar(CP_UTF8, 0, name, -1, l->l_name, 256);
    l->l_first = 1;
    if (new_instance(l) != 0) {
        free(l);
        return NULL;
    }
    return l;
}

static ftp_conn_t *conn_new(HANDLE h)
{
    ftp_conn_t *c = calloc(1, sizeof(*c));

    c->c_h = h;
    c->c_rov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    c->c_wov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    return c;
}

ftp_conn_t *ftp_accept(ftp_listener_t *l, int timeout_ms)
{
    DWORD n;
    HANDLE h;

    if (l->l_pending == NULL && new_instance(l) != 0)
        return NULL;
    if (WaitForSingleObject(l->l_ov.hEvent, (DWORD)timeout_ms) != WAIT_OBJECT_0)
        return NULL;
    h = l->l_pending;
    GetOverlappedResult(h, &l->l_ov, &n, FALSE);
    CloseHandle(l->l_ov.hEvent);
    l->l_pending = NULL;
    new_instance(l); /* The next client finds an instance at once. */
    return conn_new(h);
}

void ftp_listener_close(ftp_listener_t *l)
{
    if (l == NULL)
        return;
    if (l->l_pending != NULL) {
        CancelIoEx(l->l_pending, &l->l_ov);
        CloseHandle(l->l_pending);
        CloseHandle(l->l_ov.hEvent);
    }
    free(l);
}

ftp_conn_t *ftp_connect(const char *name)
{
    wchar_t w[256];
    HANDLE h;

    MultiByteToWideChar(CP_UTF8, 0, name, -1, w, 256);
    h = CreateFileW(w, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, FILE_FLAG_OVERLAPPED,
                    NULL);
    if (h == INVALID_HANDLE_VALUE)
        return NULL;
    return conn_new(h);
}

int ftp_read(ftp_conn_t *c, void *buf, size_t cap, int timeout_ms)
{
    DWORD n = 0;

    ResetEvent(c->c_rov.hEvent);
    if (!ReadFile(c->c_h, buf, (DWORD)cap, NULL, &c->c_rov)) {
        if (GetLastError() != ERROR_IO_PENDING)
            return -1;
        if (WaitForSingleObject(c->c_rov.hEvent, (DWORD)timeout_ms) != WAIT_OBJECT_0) {
            CancelIoEx(c->c_h, &c->c_rov);
            if (GetOverlappedResult(c->c_h, &c->c_rov, &n, TRUE) && n > 0)
                return (int)n;
            return GetLastError() == ERROR_OPERATION_ABORTED ? 0 : -1;
        }
    }
    if (!GetOverlappedResult(c->c_h, &c->c_rov, &n, FALSE) || n == 0)
        return -1;
    return (int)n;
}

int ftp_read_full(ftp_conn_t *c, void *buf, size_t n, int timeout_ms)
{
    uint8_t *p = buf;
    int r;

    while (n > 0) {
        r = ftp_read(c, p, n, timeout_ms);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int ftp_write(ftp_conn_t *c, const void *buf, size_t n)
{
    DWORD done = 0;

    while (n > 0) {
        ResetEvent(c->c_wov.hEvent);
        if (!WriteFile(c->c_h, buf, (DWORD)n, NULL, &c->c_wov) &&
            GetLastError() != ERROR_IO_PENDING)
            return -1;
        if (!GetOverlappedResult(c->c_h, &c->c_wov, &done, TRUE) || done == 0)
            return -1;
        buf = (const uint8_t *)buf + done;
        n -= done;
    }
    return 0;
}

void ftp_close(ftp_conn_t *c)
{
    if (c == NULL)
        return;
    CloseHandle(c->c_h);
    CloseHandle(c->c_rov.hEvent);
    CloseHandle(c->c_wov.hEvent);
    free(c);
}
