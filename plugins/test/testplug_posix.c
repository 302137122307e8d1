/* testplug_posix.c — platform pieces of the test plugins, POSIX side. */
#include "testplug.h"

#include <stdio.h>
#include <unistd.h>

void testplug_crash(void)
{
    /* A store to an address no process maps; volatile so it really happens. */
    volatile uintptr_t addr = 16;
    *(volatile int *)addr = 0x0bad;
}

void testplug_hang(void)
{
    for (;;)
        pause();
}

void testplug_close_stdio(void)
{
    fflush(stdout);
    fflush(stderr);
    close(1);
    close(2);
}

int testplug_replace_file(const char *tmp, const char *path)
{
    return rename(tmp, path) == 0 ? 0 : -1;
}
