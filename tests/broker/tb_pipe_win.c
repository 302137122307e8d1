/*
 * tb_pipe_win.c — the fake shim's blocking client on Windows (named pipe,
 * overlapped I/O for timed reads).
 */
#include "tb.h"

#include <windows.h>
#include <stdio.h>
#include <stdlib.h>

struct tb_pipe {
    HANDLE h;
    HANDLE ev;
};

void tb_pipe_name(char *out, size_t n, const char *test)
{
    static int counter;

    snprintf(out, n, "\\\\.\\pipe\\dcb-tb-%lu-%d-%.20s", GetCurrentProcessId(), ++counter, test);
}

void tb_native_path(const char *in, char *out, size_t n)
{
    /* Under Wine, a Unix path is on drive Z:. */
    if (in[0] == '/')
        snprintf(out, n, "Z:%s", in);
    else
        snprintf(out, n, "%s", in);
    for (char *c = out; *c != '\0'; c++)
        if (*c == '/')
            *c = '\\';
}

tb_pipe_t *tb_pipe_connect(const char *name, int timeout_ms)
{
    uint64_t end = dcb_now_ns() + (uint64_t)timeout_ms * 1000000u;
    wchar_t wname[256];

    MultiByteToWideChar(CP_UTF8, 0, name, -1, wname, 256);
    for (;;) {
        HANDLE h = CreateFileW(wname, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                               FILE_FLAG_OVERLAPPED, NULL);
        if (h != INVALID_HANDLE_VALUE) {
            tb_pipe_t *p = malloc(sizeof(*p));
            p->h = h;
            p->ev = CreateEventW(NULL, TRUE, FALSE, NULL);
            return p;
        }
        if (GetLastError() == ERROR_PIPE_BUSY)
            WaitNamedPipeW(wname, 50);
        else
            Sleep(10);
        if (dcb_now_ns() > end)
            return NULL;
    }
}

int tb_pipe_write(tb_pipe_t *p, const void *buf, size_t n)
{
    const char *c = buf;

    while (n > 0) {
        OVERLAPPED ov;
        DWORD done = 0;
        memset(&ov, 0, sizeof(ov));
        ov.hEvent = p->ev;
        ResetEvent(p->ev);
        if (!WriteFile(p->h, c, (DWORD)n, &done, &ov)) {
            if (GetLastError() != ERROR_IO_PENDING || !GetOverlappedResult(p->h, &ov, &done, TRUE))
                return TB_ERROR;
        }
        c += done;
        n -= done;
    }
    return 0;
}

int tb_pipe_read(tb_pipe_t *p, void *buf, size_t n, int timeout_ms)
{
    OVERLAPPED ov;
    DWORD got = 0, e;

    memset(&ov, 0, sizeof(ov));
    ov.hEvent = p->ev;
    ResetEvent(p->ev);
    if (!ReadFile(p->h, buf, (DWORD)n, &got, &ov)) {
        e = GetLastError();
        if (e == ERROR_BROKEN_PIPE || e == ERROR_PIPE_NOT_CONNECTED)
            return TB_EOF;
        if (e != ERROR_IO_PENDING)
            return TB_ERROR;
        if (WaitForSingleObject(p->ev, (DWORD)timeout_ms) != WAIT_OBJECT_0) {
            CancelIo(p->h);
            GetOverlappedResult(p->h, &ov, &got, TRUE);
            return got > 0 ? (int)got : TB_TIMEOUT;
        }
        if (!GetOverlappedResult(p->h, &ov, &got, FALSE)) {
            e = GetLastError();
            return e == ERROR_BROKEN_PIPE || e == ERROR_PIPE_NOT_CONNECTED ? TB_EOF : TB_ERROR;
        }
    }
    return got == 0 ? TB_EOF : (int)got;
}

void tb_pipe_close(tb_pipe_t *p)
{
    if (p == NULL)
        return;
    CloseHandle(p->h);
    CloseHandle(p->ev);
    free(p);
}

void tb_pipe_cleanup(const char *name)
{
    (void)name; /* a named pipe goes with its last handle */
}
