/* hostile_win.c — the hostile plugin finds and writes its host's channel (Windows). */
#include "hostile.h"

#include <windows.h>
#include <stdint.h>
#include <string.h>

static HANDLE chan = NULL;

int hostile_find_channel(void)
{
    HANDLE in = GetStdHandle(STD_INPUT_HANDLE), out = GetStdHandle(STD_OUTPUT_HANDLE),
           err = GetStdHandle(STD_ERROR_HANDLE);

    /* The channel is the one pipe handle that is none of the standard ones. */
    for (uintptr_t v = 4; v < 0x10000 && chan == NULL; v += 4) {
        HANDLE h = (HANDLE)v;
        DWORD flags = 0;
        if (h == in || h == out || h == err)
            continue;
        if (GetFileType(h) == FILE_TYPE_PIPE && GetNamedPipeInfo(h, &flags, NULL, NULL, NULL))
            chan = h;
    }
    return chan != NULL ? 0 : -1;
}

int hostile_write(const void *buf, size_t n)
{
    const char *p = buf;
    OVERLAPPED ov;
    HANDLE ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    int rc = 0;

    while (n > 0 && rc == 0) {
        DWORD done = 0;
        memset(&ov, 0, sizeof(ov));
        ov.hEvent = ev;
        ResetEvent(ev);
        if (!WriteFile(chan, p, (DWORD)n, &done, &ov) &&
            (GetLastError() != ERROR_IO_PENDING || !GetOverlappedResult(chan, &ov, &done, TRUE)))
            rc = -1;
        else if (done == 0)
            rc = -1;
        p += done;
        n -= done;
    }
    CloseHandle(ev);
    return rc;
}

void hostile_sleep_forever(void)
{
    for (;;)
        Sleep(INFINITE);
}
