/*
 * platform_posix.c — paths, the event socket's file and exit descriptions
 * on Linux.
 */
#include "platform.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int platform_abspath(const char *in, char *out, size_t outlen)
{
    char buf[PATH_MAX];

    if (realpath(in, buf) != NULL) {
        if (strlen(buf) >= outlen)
            return UV_ENAMETOOLONG;
        strcpy(out, buf);
        return 0;
    }
    /* A file that does not exist (yet): make it absolute, the host reports the rest. */
    if (in[0] == '/' || getcwd(buf, sizeof(buf)) == NULL) {
        if (strlen(in) >= outlen)
            return UV_ENAMETOOLONG;
        strcpy(out, in);
        return 0;
    }
    if ((size_t)snprintf(out, outlen, "%s/%s", buf, in) >= outlen)
        return UV_ENAMETOOLONG;
    return 0;
}

int platform_path_equal(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static void make_parent(const char *name)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char *slash;

    if (strlen(name) >= sizeof(dir))
        return;
    strcpy(dir, name);
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return;
    *slash = '\0';
    /* Only the broker's user may enter the socket's directory when we create it. */
    if (mkdir(dir, 0755) != 0 && errno == ENOENT) {
        make_parent(dir);
        mkdir(dir, 0755);
    }
}

int platform_pipe_prepare(const char *name)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd, rc;

    if (strlen(name) >= sizeof(sa.sun_path))
        return UV_ENAMETOOLONG;
    make_parent(name);
    if (lstat(name, &st) != 0)
        return 0;
    if (!S_ISSOCK(st.st_mode))
        return UV_EEXIST;
    /* A socket file: is a broker behind it? */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, name);
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    if (rc == 0)
        return UV_EADDRINUSE;
    if (errno == ECONNREFUSED)
        unlink(name);
    return 0;
}

void platform_describe_exit(int64_t status, int term_signal, char *out, size_t outlen)
{
    if (term_signal != 0) {
        const char *name = strsignal(term_signal);
        snprintf(out, outlen, "signal %d (%s)%s", term_signal, name ? name : "?",
                 term_signal == SIGSYS ? ", from its seccomp sandbox" : "");
    } else {
        snprintf(out, outlen, "exit status %lld", (long long)status);
    }
}

void platform_init_process(void)
{
    /* A shim or host that goes away mid-write is an error code, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    sandbox_supervisor_init();
}
