/*
 * ctl_conn_posix.c — the control connection on Linux: a Unix stream socket,
 * non-blocking, every wait bounded by poll() and the caller's deadline.
 */
#include "dcbctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dcb_os.h"

struct ctl_conn {
    int cc_fd;
};

const char *ctl_conn_default_endpoint(void)
{
    return "/run/dcb/control.sock";
}

static int errno_to_ctl(int e)
{
    switch (e) {
    case ENOENT:
    case ECONNREFUSED:
    case ENOTDIR:
        return CTL_E_NOBROKER;
    case EACCES:
    case EPERM:
        return CTL_E_ACCESS;
    default:
        return CTL_E_IO;
    }
}

/* Milliseconds left before deadline_ns, for poll(); 0 when it has passed. */
static int ms_left(uint64_t deadline_ns)
{
    uint64_t now = dcb_now_ns();

    if (now >= deadline_ns)
        return 0;
    return (int)((deadline_ns - now + 999999u) / 1000000u);
}

static int wait_fd(int fd, short events, uint64_t deadline_ns)
{
    struct pollfd p = {fd, events, 0};

    for (;;) {
        int left = ms_left(deadline_ns), n;
        if (left == 0)
            return CTL_E_TIMEOUT;
        n = poll(&p, 1, left);
        if (n > 0)
            return 0;
        if (n == 0)
            return CTL_E_TIMEOUT;
        if (errno != EINTR)
            return CTL_E_IO;
    }
}

int ctl_conn_open(const char *endpoint, uint64_t deadline_ns, ctl_conn_t **out, char *err,
                  size_t errlen)
{
    struct sockaddr_un sa;
    ctl_conn_t *c;
    int fd, rc;

    *out = NULL;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(endpoint) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "socket path longer than %zu bytes", sizeof(sa.sun_path) - 1);
        return CTL_E_IO;
    }
    memcpy(sa.sun_path, endpoint, strlen(endpoint));

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return CTL_E_IO;
    }
    /*
     * A Unix socket connects at once or fails, except when the listener's
     * backlog is full (EAGAIN): then retry until the deadline.
     */
    for (;;) {
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == EINPROGRESS) {
            int soerr = 0;
            socklen_t len = sizeof(soerr);
            rc = wait_fd(fd, POLLOUT, deadline_ns);
            if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0)
                break;
            if (rc == 0) {
                errno = soerr;
                goto failed;
            }
            snprintf(err, errlen, "connect: no answer");
            close(fd);
            return rc;
        }
        if (errno == EAGAIN) {
            if (ms_left(deadline_ns) == 0) {
                snprintf(err, errlen, "the broker's backlog stayed full");
                close(fd);
                return CTL_E_TIMEOUT;
            }
            dcb_sleep_ms(10);
            continue;
        }
        goto failed;
    }
    c = malloc(sizeof(*c));
    if (c == NULL) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return CTL_E_NOMEM;
    }
    c->cc_fd = fd;
    *out = c;
    return 0;

failed:
    rc = errno;
    snprintf(err, errlen, "%s", strerror(rc));
    close(fd);
    return errno_to_ctl(rc);
}

int ctl_conn_write(ctl_conn_t *c, const void *buf, size_t n, uint64_t deadline_ns)
{
    const uint8_t *p = buf;

    while (n > 0) {
        /* MSG_NOSIGNAL: a broker gone mid-write is EPIPE, not a fatal SIGPIPE. */
        ssize_t k = send(c->cc_fd, p, n, MSG_NOSIGNAL);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(c->cc_fd, POLLOUT, deadline_ns);
            if (rc != 0)
                return rc;
            continue;
        }
        return (k < 0 && (errno == EPIPE || errno == ECONNRESET)) ? CTL_E_CLOSED : CTL_E_IO;
    }
    return 0;
}

int ctl_conn_read(ctl_conn_t *c, void *buf, size_t n, uint64_t deadline_ns)
{
    uint8_t *p = buf;

    while (n > 0) {
        ssize_t k = recv(c->cc_fd, p, n, 0);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k == 0)
            return CTL_E_CLOSED;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rc = wait_fd(c->cc_fd, POLLIN, deadline_ns);
            if (rc != 0)
                return rc;
            continue;
        }
        return errno == ECONNRESET ? CTL_E_CLOSED : CTL_E_IO;
    }
    return 0;
}

void ctl_conn_close(ctl_conn_t *c)
{
    if (c == NULL)
        return;
    close(c->cc_fd);
    free(c);
}
