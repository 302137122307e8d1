/* sec_posix.c — the security tests' platform pieces on Linux. */
#include "sec.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

void sec_endpoint(char *out, size_t n, const char *leaf)
{
    static int counter;

    /* A directory of its own: the broker creates it 0700 (and refuses shared ones). */
    snprintf(out, n, "/tmp/dcb-sec-%d-%d/%s", (int)getpid(), ++counter, leaf);
}

void sec_endpoints(char *pipe, char *ctl, size_t n)
{
    char *slash;

    sec_endpoint(pipe, n, "event.sock");
    snprintf(ctl, n, "%.200s", pipe);
    slash = strrchr(ctl, '/');
    snprintf(slash + 1, n - (size_t)(slash + 1 - ctl), "control.sock");
}

void sec_endpoint_cleanup(const char *name)
{
    char dir[256];
    char *slash;

    unlink(name);
    snprintf(dir, sizeof(dir), "%s", name);
    slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        rmdir(dir);
    }
}

int sec_is_wine(void)
{
    return 0;
}

int64_t sec_rss(int pid)
{
    char path[64], line[256];
    long long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : (int64_t)kb * 1024;
}

void sec_raise_fd_limit(void)
{
    struct rlimit r;

    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max > 8192 ? 8192 : r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

void sec_native_path(const char *in, char *out, size_t n)
{
    snprintf(out, n, "%s", in);
}

int sec_label_low(const char *dir)
{
    (void)dir;
    return 0;
}
