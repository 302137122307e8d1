/*
 * fake_net_posix.c — the fake control server's sockets on Linux: a Unix
 * stream socket in a private temporary folder.
 */
#include "fake_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

struct fnet {
    int fn_fd;
    char fn_dir[128];
};

struct fconn {
    int fc_fd;
};

static int bind_path(const char *path, int do_listen)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || (do_listen && listen(fd, 16) != 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

int fnet_listen(fnet_t **out, char *name, size_t n)
{
    fnet_t *l = calloc(1, sizeof(*l));

    if (l == NULL)
        return -1;
    snprintf(l->fn_dir, sizeof(l->fn_dir), "/tmp/dcbctl-test-XXXXXX");
    if (mkdtemp(l->fn_dir) == NULL) {
        free(l);
        return -1;
    }
    snprintf(name, n, "%s/control.sock", l->fn_dir);
    l->fn_fd = bind_path(name, 1);
    if (l->fn_fd < 0) {
        rmdir(l->fn_dir);
        free(l);
        return -1;
    }
    *out = l;
    return 0;
}

fconn_t *fnet_accept(fnet_t *l)
{
    fconn_t *c;
    int fd;

    do
        fd = accept(l->fn_fd, NULL, NULL);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return NULL;
    c = malloc(sizeof(*c));
    if (c == NULL) {
        close(fd);
        return NULL;
    }
    c->fc_fd = fd;
    return c;
}

int fnet_read(fconn_t *c, void *buf, size_t n)
{
    uint8_t *p = buf;

    while (n > 0) {
        ssize_t k = recv(c->fc_fd, p, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int fnet_write(fconn_t *c, const void *buf, size_t n)
{
    const uint8_t *p = buf;

    while (n > 0) {
        ssize_t k = send(c->fc_fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

void fnet_close(fconn_t *c)
{
    close(c->fc_fd);
    free(c);
}

void fnet_wake(fnet_t *l, const char *name)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    (void)l;
    if (fd < 0)
        return;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", name);
    connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
}

void fnet_free(fnet_t *l, const char *name)
{
    close(l->fn_fd);
    unlink(name);
    rmdir(l->fn_dir);
    free(l);
}

/* A listening socket nobody but root may open (mode 0). */
typedef struct denied {
    int d_fd;
    char d_dir[128];
} denied_t;

int fnet_denied_open(char *name, size_t n, void **handle)
{
    denied_t *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return -1;
    snprintf(d->d_dir, sizeof(d->d_dir), "/tmp/dcbctl-denied-XXXXXX");
    if (mkdtemp(d->d_dir) == NULL) {
        free(d);
        return -1;
    }
    /* The folder stays searchable; the socket grants nobody anything (root aside). */
    chmod(d->d_dir, 0755);
    snprintf(name, n, "%s/control.sock", d->d_dir);
    d->d_fd = bind_path(name, 1);
    if (d->d_fd < 0 || chmod(name, 0) != 0) {
        if (d->d_fd >= 0)
            close(d->d_fd);
        rmdir(d->d_dir);
        free(d);
        return -1;
    }
    *handle = d;
    return 0;
}

void fnet_denied_close(void *handle, const char *name)
{
    denied_t *d = handle;

    close(d->d_fd);
    unlink(name);
    rmdir(d->d_dir);
    free(d);
}

void fnet_unused_name(char *name, size_t n)
{
    snprintf(name, n, "/tmp/dcbctl-test-none-%ld/control.sock", (long)getpid());
}

int fnet_stale_open(char *name, size_t n)
{
    int fd;

    snprintf(name, n, "/tmp/dcbctl-test-stale-%ld.sock", (long)getpid());
    unlink(name);
    /* Bound, never listening, then closed: the file stays, nobody answers. */
    fd = bind_path(name, 0);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

void fnet_stale_close(const char *name)
{
    unlink(name);
}

int fnet_run_unprivileged(int (*fn)(void *), void *arg)
{
    pid_t pid;
    int status;

    if (geteuid() != 0)
        return fn(arg);
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int rc;
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(99);
        rc = fn(arg);
        fflush(NULL);
        _exit(rc);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 99)
        return -1;
    return WEXITSTATUS(status);
}

int fnet_is_wine(void)
{
    return 0;
}
