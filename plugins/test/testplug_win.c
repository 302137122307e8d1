/* testplug_win.c — platform pieces of the test plugins, Windows side. */
#include "testplug.h"

#include <io.h>
#include <stdio.h>
#include <windows.h>

void testplug_crash(void)
{
    /* A store to an address no process maps: STATUS_ACCESS_VIOLATION. */
    volatile uintptr_t addr = 16;
    *(volatile int *)addr = 0x0bad;
}

void testplug_hang(void)
{
    for (;;)
        Sleep(INFINITE);
}

void testplug_close_stdio(void)
{
    fflush(stdout);
    fflush(stderr);
    _close(1);
    _close(2);
}

int testplug_replace_file(const char *tmp, const char *path)
{
    return MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING) ? 0 : -1;
}
