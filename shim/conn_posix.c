/*
 * conn_posix.c — transport.h over Unix domain stream sockets.
 *
 * Sockets are non-blocking; waits are ppoll() with the time left to the
 * deadline, so a wait is as precise as the kernel's timers. send() uses
 * MSG_NOSIGNAL: a broker that went away must never raise SIGPIPE inside the
 * server process.
 */
#include "transport.h"

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct dcb__tp {
    int t_fd;
};

static int wait_fd(int fd, short events, uint64_t deadline_ns)
{
    struct pollfd pfd;
    struct timespec ts;
    uint64_t now, left;
    int rc;

    for (;;) {
        now = dcb_now_ns();
        if (now >= deadline_ns)
            return DCB_OS_ETIMEDOUT;
        left = deadline_ns - now;
        ts.tv_sec = (time_t)(left / 1000000000u);
        ts.tv_nsec = (long)(left % 1000000000u);
        pfd.fd = fd;
        pfd.events = events;
        pfd.revents = 0;
        rc = ppoll(&pfd, 1, &ts, NULL);
        if (rc > 0)
            return 0; /* Readable, writable, or an error the next call reports. */
        if (rc < 0 && errno != EINTR)
            return DCB_OS_EIO;
    }
}

/* Resolves the configured account to a uid; -1 means "the default set". */
static int account_uid(const char *account, uid_t *uid)
{
    char *end;
    unsigned long v;
    struct passwd pw, *res = NULL;
    char buf[1024];

    if (account[0] == '\0')
        return -1;
    v = strtoul(account, &end, 10);
    if (*end == '\0' && end != account) {
        *uid = (uid_t)v;
        return 0;
    }
    if (getpwnam_r(account, &pw, buf, sizeof(buf), &res) == 0 && res != NULL) {
        *uid = res->pw_uid;
        return 0;
    }
    return -2;
}

static int check_peer(int fd, const char *account)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    uid_t want;
    int rc;

    if (strcmp(account, "*") == 0)
        return 0;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        dcb__log(DCB_LOG_ERROR, "cannot read the broker's credentials: %s", strerror(errno));
        return DCB__TP_EPEER;
    }
    rc = account_uid(account, &want);
    if (rc == -1) {
        /* Default: the broker runs as root or as the server's own user. */
        if (cred.uid == 0 || cred.uid == geteuid())
            return 0;
    } else if (rc == 0) {
        if (cred.uid == want)
            return 0;
    } else {
        dcb__log(DCB_LOG_ERROR, "broker account '%s' is not a known user", account);
        return DCB__TP_EPEER;
    }
    dcb__log(DCB_LOG_ERROR, "refusing broker endpoint served by uid %u (pid %d)",
             (unsigned)cred.uid, (int)cred.pid);
    return DCB__TP_EPEER;
}

int dcb__tp_connect(const char *name, const char *account, dcb__tp_t **out)
{
    struct sockaddr_un sa;
    dcb__tp_t *t;
    int fd, rc;

    *out = NULL;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(name) >= sizeof(sa.sun_path))
        return DCB_OS_EINVAL;
    memcpy(sa.sun_path, name, strlen(name));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return DCB_OS_EIO;
    /* A Unix socket connect completes at once or fails (EAGAIN: backlog full). */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        if (e == ENOENT || e == ECONNREFUSED)
            return DCB__TP_ENOENT;
        if (e == EACCES || e == EPERM)
            return DCB__TP_EACCES;
        if (e == EAGAIN || e == EINPROGRESS)
            return DCB__TP_EBUSY;
        return DCB_OS_EIO;
    }
    rc = check_peer(fd, account);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    t = malloc(sizeof(*t));
    if (t == NULL) {
        close(fd);
        return DCB_OS_ENOMEM;
    }
    t->t_fd = fd;
    *out = t;
    return 0;
}

int dcb__tp_write(dcb__tp_t *t, const void *buf, size_t n, uint64_t deadline_ns)
{
    const uint8_t *p = buf;
    ssize_t w;
    int rc;

    while (n > 0) {
        w = send(t->t_fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            rc = wait_fd(t->t_fd, POLLOUT, deadline_ns);
            if (rc != 0)
                return rc;
            continue;
        }
        return (w < 0 && errno == EPIPE) ? DCB__TP_EOF : DCB_OS_EIO;
    }
    return 0;
}

int dcb__tp_read(dcb__tp_t *t, void *buf, size_t cap, uint64_t deadline_ns, int wait_first)
{
    ssize_t r;
    int rc;

    for (;;) {
        if (wait_first) {
            rc = wait_fd(t->t_fd, POLLIN, deadline_ns);
            if (rc != 0)
                return rc;
        }
        r = recv(t->t_fd, buf, cap, MSG_DONTWAIT);
        if (r > 0)
            return (int)r;
        if (r == 0)
            return DCB__TP_EOF;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return errno == ECONNRESET ? DCB__TP_EOF : DCB_OS_EIO;
        if (dcb_now_ns() >= deadline_ns)
            return DCB_OS_ETIMEDOUT;
        wait_first = 1;
    }
}

int dcb__tp_idle_ok(dcb__tp_t *t)
{
    struct pollfd pfd = {t->t_fd, POLLIN, 0};

    /* Idle means: no EOF, no error and no bytes the broker should not have sent. */
    return poll(&pfd, 1, 0) == 0;
}

void dcb__tp_close(dcb__tp_t *t)
{
    if (t == NULL)
        return;
    close(t->t_fd);
    free(t);
}
