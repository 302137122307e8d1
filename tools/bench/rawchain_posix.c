/*
 * rawchain_posix.c — the raw two-hop chain on Linux: socketpairs (Unix
 * stream sockets, like the broker's) between the benchmark, a forked relay
 * and a forked echo process.
 */
#include "rawchain.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dcb_os.h"

static int full_io(int fd, void *buf, size_t len, int writing)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The relay forwards each request and each response whole, like the broker. */
static void relay(int up, int down, size_t req, size_t resp)
{
    uint8_t *buf = malloc(req > resp ? req : resp);

    while (buf != NULL && full_io(up, buf, req, 0) == 0 && full_io(down, buf, req, 1) == 0 &&
           full_io(down, buf, resp, 0) == 0 && full_io(up, buf, resp, 1) == 0)
        ;
    _exit(0);
}

static void echo(int fd, size_t req, size_t resp)
{
    uint8_t *in = malloc(req), *out = calloc(1, resp);

    while (in != NULL && out != NULL && full_io(fd, in, req, 0) == 0 &&
           full_io(fd, out, resp, 1) == 0)
        ;
    _exit(0);
}

/* Reaps a child and adds what it cost. */
static void reap(pid_t pid, rawchain_stats_t *st)
{
    struct rusage ru;
    int status;

    if (pid <= 0)
        return;
    memset(&ru, 0, sizeof(ru));
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
        ;
    if (st == NULL)
        return;
    st->rs_cpu_ns += (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
                     (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
    /* Linux reports ru_maxrss in KiB. */
    if ((uint64_t)ru.ru_maxrss > st->rs_peak_kb)
        st->rs_peak_kb = (uint64_t)ru.ru_maxrss;
}

int rawchain_run(size_t req, size_t resp, long n, dcb_hist_t *h, rawchain_stats_t *st)
{
    int a[2], b[2], rc = 0;
    pid_t relay_pid = -1, echo_pid;
    uint8_t *out, *in;

    if (st != NULL)
        memset(st, 0, sizeof(*st));
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) != 0)
        return -errno;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) != 0) {
        rc = -errno;
        close(a[0]);
        close(a[1]);
        return rc;
    }
    echo_pid = fork();
    if (echo_pid == 0) {
        close(a[0]);
        close(a[1]);
        close(b[0]);
        echo(b[1], req, resp);
    }
    if (echo_pid > 0) {
        relay_pid = fork();
        if (relay_pid == 0) {
            close(a[0]);
            close(b[1]);
            relay(a[1], b[0], req, resp);
        }
    }
    close(a[1]);
    close(b[0]);
    close(b[1]);
    out = calloc(1, req);
    in = malloc(resp);
    if (echo_pid < 0 || relay_pid < 0 || out == NULL || in == NULL) {
        rc = -ENOMEM;
        goto done;
    }
    for (long i = 0; i < n; i++) {
        uint64_t t0 = dcb_now_ns();
        if (full_io(a[0], out, req, 1) != 0 || full_io(a[0], in, resp, 0) != 0) {
            rc = -EIO;
            break;
        }
        dcb_hist_record(h, dcb_now_ns() - t0);
    }
done:
    /* Closing our end ends the relay, whose exit ends the echo. */
    close(a[0]);
    reap(relay_pid, st);
    reap(echo_pid, st);
    free(out);
    free(in);
    return rc;
}

int rawchain_child(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return -1;
}
