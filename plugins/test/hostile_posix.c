/* hostile_posix.c — the hostile plugin finds and writes its host's channel (Linux). */
#include "hostile.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static int chan = -1;

int hostile_find_channel(void)
{
    /* hostio_posix.c moves the channel to the first free descriptor >= 200. */
    for (int fd = 200; fd < 1024 && chan < 0; fd++) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
            chan = fd;
    }
    return chan >= 0 ? 0 : -1;
}

int hostile_write(const void *buf, size_t n)
{
    const char *p = buf;

    while (n > 0) {
        ssize_t w = write(chan, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void hostile_sleep_forever(void)
{
    for (;;)
        pause();
}
