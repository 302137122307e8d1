/*
 * tb_pipe_posix.c — the fake shim's blocking client on Linux (Unix socket).
 */
#include "tb.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct tb_pipe {
    int fd;
};

void tb_pipe_name(char *out, size_t n, const char *test)
{
    static int counter;

    /* The broker refuses a socket in a shared directory: one of its own, made 0700. */
    snprintf(out, n, "/tmp/dcb-tb-%d-%d/%.20s.sock", (int)getpid(), ++counter, test);
}

void tb_native_path(const char *in, char *out, size_t n)
{
    snprintf(out, n, "%s", in);
}

tb_pipe_t *tb_pipe_connect(const char *name, int timeout_ms)
{
    uint64_t end = dcb_now_ns() + (uint64_t)timeout_ms * 1000000u;
    struct sockaddr_un sa;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", name);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            tb_pipe_t *p = malloc(sizeof(*p));
            p->fd = fd;
            return p;
        }
        if (fd >= 0)
            close(fd);
        if (dcb_now_ns() > end)
            return NULL;
        dcb_sleep_ms(10);
    }
}

int tb_pipe_write(tb_pipe_t *p, const void *buf, size_t n)
{
    const char *c = buf;

    while (n > 0) {
        ssize_t w = send(p->fd, c, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return TB_ERROR;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int tb_pipe_read(tb_pipe_t *p, void *buf, size_t n, int timeout_ms)
{
    struct pollfd pfd = {p->fd, POLLIN, 0};
    int rc;
    ssize_t r;

    do
        rc = poll(&pfd, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return TB_TIMEOUT;
    if (rc < 0)
        return TB_ERROR;
    r = recv(p->fd, buf, n, 0);
    if (r == 0)
        return TB_EOF;
    if (r < 0)
        return errno == ECONNRESET ? TB_EOF : TB_ERROR;
    return (int)r;
}

void tb_pipe_close(tb_pipe_t *p)
{
    if (p == NULL)
        return;
    close(p->fd);
    free(p);
}

void tb_pipe_cleanup(const char *name)
{
    char dir[256];
    char *slash;

    unlink(name);
    snprintf(dir, sizeof(dir), "%s", name);
    slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        rmdir(dir); /* the broker's socket directory, once empty */
    }
}
