/*
 * hostio_win.c — the host's channel on Windows.
 *
 * libuv hands stdio slot 3 to the child through the C runtime's inherited
 * handle table (STARTUPINFO.lpReserved2), so it appears as CRT fd 3. The
 * host duplicates the underlying pipe handle and closes fd 3: a plugin that
 * calls _close(3) or writes to it cannot touch the channel.
 *
 * The broker creates the pipe with UV_OVERLAPPED_PIPE, so reads and writes
 * here are overlapped and one reader thread and one writer thread proceed
 * independently (on a synchronous handle they would serialise).
 */
#include "platform.h"

#include <windows.h>
#include <io.h>

static HANDLE chan = INVALID_HANDLE_VALUE;

int hostio_adopt(void)
{
    HANDLE h = (HANDLE)_get_osfhandle(3);
    HANDLE dup;

    if (h == INVALID_HANDLE_VALUE || h == NULL)
        return UV_EBADF;
    if (!DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &dup, 0, FALSE,
                         DUPLICATE_SAME_ACCESS))
        return UV_EIO;
    _close(3);
    chan = dup;
    return 0;
}

static int wait_io(BOOL ok, OVERLAPPED *ov, DWORD *done)
{
    if (!ok) {
        DWORD e = GetLastError();
        if (e != ERROR_IO_PENDING)
            return e == ERROR_BROKEN_PIPE || e == ERROR_PIPE_NOT_CONNECTED ? 1 : -1;
        if (!GetOverlappedResult(chan, ov, done, TRUE)) {
            e = GetLastError();
            return e == ERROR_BROKEN_PIPE || e == ERROR_PIPE_NOT_CONNECTED ? 1 : -1;
        }
    }
    return 0;
}

int hostio_read(void *buf, size_t n)
{
    OVERLAPPED ov;
    DWORD got = 0;
    int rc;

    memset(&ov, 0, sizeof(ov));
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (ov.hEvent == NULL)
        return UV_ENOMEM;
    rc = wait_io(ReadFile(chan, buf, (DWORD)(n > 0x40000000u ? 0x40000000u : n), &got, &ov), &ov,
                 &got);
    CloseHandle(ov.hEvent);
    if (rc == 1)
        return 0; /* The broker closed its end. */
    if (rc < 0)
        return UV_EIO;
    return (int)got;
}

int hostio_write_all(const void *buf, size_t n)
{
    const char *p = buf;
    OVERLAPPED ov;
    int rc = 0;

    memset(&ov, 0, sizeof(ov));
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (ov.hEvent == NULL)
        return UV_ENOMEM;
    while (n > 0) {
        DWORD done = 0;
        ResetEvent(ov.hEvent);
        if (wait_io(WriteFile(chan, p, (DWORD)n, &done, &ov), &ov, &done) != 0 || done == 0) {
            rc = UV_EPIPE;
            break;
        }
        p += done;
        n -= done;
    }
    CloseHandle(ov.hEvent);
    return rc;
}

void hostio_exit(int code)
{
    TerminateProcess(GetCurrentProcess(), (UINT)code);
}
