/*
 * platform_posix.c — paths and exit descriptions on Linux.
 */
#include "platform.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
