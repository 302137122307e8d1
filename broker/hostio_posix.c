/*
 * hostio_posix.c — the host's channel on Linux: a socket inherited as fd 3.
 *
 * The channel is moved to a high descriptor with close-on-exec and fd 3 is
 * closed, so a plugin that closes or writes to "fd 3" (or to stdout and
 * stderr, which are separate pipes) cannot disturb it.
 */
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#define HOSTIO_FD_FLOOR 200

static int chan_fd = -1;

int hostio_adopt(void)
{
    int fd = fcntl(3, F_DUPFD_CLOEXEC, HOSTIO_FD_FLOOR);
    int flags;

    if (fd < 0)
        return -errno;
    close(3);
    /* libuv hands the child a blocking descriptor; make sure of it. */
    flags = fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK))
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    chan_fd = fd;
    return 0;
}

int hostio_read(void *buf, size_t n)
{
    for (;;) {
        ssize_t r = read(chan_fd, buf, n);
        if (r >= 0)
            return (int)r;
        if (errno != EINTR)
            return -errno;
    }
}

int hostio_write_all(const void *buf, size_t n)
{
    const char *p = buf;

    while (n > 0) {
        ssize_t w = write(chan_fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void hostio_exit(int code)
{
    _exit(code);
}
