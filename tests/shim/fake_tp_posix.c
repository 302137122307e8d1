/*
 * fake_tp_posix.c — fake_tp.h over Unix domain sockets.
 */
#include "fake_tp.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct ftp_listener {
    int l_fd;
    char l_path[108];
};

struct ftp_conn {
    int c_fd;
};

void ftp_unique_name(char *buf, size_t cap, const char *tag)
{
    static int seq;
    const char *dir = getenv("TMPDIR");

    if (dir == NULL || strlen(dir) > 40)
        dir = "/tmp";
    snprintf(buf, cap, "%s/dcb-%s-%d-%d.sock", dir, tag, (int)getpid(), ++seq);
}

ftp_listener_t *ftp_listen(const char *name)
{
    struct sockaddr_un sa;
    ftp_listener_t *l;
    int fd;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(name) >= sizeof(sa.sun_path))
        return NULL;
    strcpy(sa.sun_path, name);
    unlink(name);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0) {
        close(fd);
        return NULL;
    }
    l = calloc(1, sizeof(*l));
    l->l_fd = fd;
    snprintf(l->l_path, sizeof(l->l_path), "%s", name);
    return l;
}

ftp_conn_t *ftp_accept(ftp_listener_t *l, int timeout_ms)
{
    struct pollfd pfd = {l->l_fd, POLLIN, 0};
    ftp_conn_t *c;
    int fd;

    if (poll(&pfd, 1, timeout_ms) <= 0)
        return NULL;
    fd = accept4(l->l_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return NULL;
    c = calloc(1, sizeof(*c));
    c->c_fd = fd;
    return c;
}

void ftp_listener_close(ftp_listener_t *l)
{
    if (l == NULL)
        return;
    close(l->l_fd);
    unlink(l->l_path);
    free(l);
}

ftp_conn_t *ftp_connect(const char *name)
{
    struct sockaddr_un sa;
    ftp_conn_t *c;
    int fd;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", name);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    c->c_fd = fd;
    return c;
}

int ftp_read(ftp_conn_t *c, void *buf, size_t cap, int timeout_ms)
{
    struct pollfd pfd = {c->c_fd, POLLIN, 0};
    ssize_t n;
    int rc;

    rc = poll(&pfd, 1, timeout_ms);
    if (rc == 0)
        return 0;
    if (rc < 0)
        return errno == EINTR ? 0 : -1;
    n = recv(c->c_fd, buf, cap, 0);
    return n > 0 ? (int)n : -1;
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
    const uint8_t *p = buf;
    ssize_t w;

    while (n > 0) {
        w = send(c->c_fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void ftp_close(ftp_conn_t *c)
{
    if (c == NULL)
        return;
    close(c->c_fd);
    free(c);
}
