/*
 * sys_posix.c — the platform under dcb-bench on Linux: child processes,
 * /proc figures (CPU time, resident and peak memory, children), files and
 * the environment.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

struct bench_child {
    pid_t ch_pid;
    int ch_reaped;
};

int bench_sys_exe_dir(char *out, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", out, cap - 1);
    char *slash;

    if (n <= 0)
        return -1;
    out[n] = '\0';
    slash = strrchr(out, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    return 0;
}

int bench_sys_setenv(const char *name, const char *value)
{
    return value != NULL ? setenv(name, value, 1) : unsetenv(name);
}

int bench_sys_mkdtemp(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    snprintf(out, cap, "%s/dcb-bench-XXXXXX", base);
    return mkdtemp(out) != NULL ? 0 : -1;
}

void bench_sys_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[BENCH_PATH_MAX + 256];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

void bench_sys_pipe_name(char *out, size_t cap, const char *dir, const char *tag)
{
    snprintf(out, cap, "%s/%s.sock", dir, tag);
}

const char *bench_sys_dll_suffix(void)
{
    return ".so";
}

const char *bench_sys_exe_suffix(void)
{
    return "";
}

const char *bench_sys_shim_name(void)
{
    return "libdcbshim.so";
}

int bench_child_spawn(bench_child_t **out, const char *exe, const char *const *argv,
                      const char *log)
{
    bench_child_t *ch = calloc(1, sizeof(*ch));
    int fd;
    pid_t pid;

    *out = NULL;
    if (ch == NULL)
        return -1;
    fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        free(ch);
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        /* If dcb-bench dies, so does the broker (and, through it, its hosts). */
        prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
        if (null >= 0)
            dup2(null, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(fd);
    if (pid < 0) {
        free(ch);
        return -1;
    }
    ch->ch_pid = pid;
    *out = ch;
    return 0;
}

uint32_t bench_child_pid(const bench_child_t *ch)
{
    return ch != NULL ? (uint32_t)ch->ch_pid : 0;
}

int bench_child_running(bench_child_t *ch)
{
    int status;

    if (ch == NULL || ch->ch_reaped)
        return 0;
    if (waitpid(ch->ch_pid, &status, WNOHANG) == ch->ch_pid) {
        ch->ch_reaped = 1;
        return 0;
    }
    return 1;
}

static int wait_for(bench_child_t *ch, uint32_t timeout_ms, int *status)
{
    uint64_t end = dcb_now_ns() + (uint64_t)timeout_ms * 1000000u;

    for (;;) {
        pid_t r = waitpid(ch->ch_pid, status, WNOHANG);
        if (r == ch->ch_pid || (r < 0 && errno == ECHILD)) {
            ch->ch_reaped = 1;
            return 1;
        }
        if (dcb_now_ns() >= end)
            return 0;
        dcb_sleep_ms(5);
    }
}

int bench_child_stop(bench_child_t *ch, uint32_t timeout_ms)
{
    int status = 0, clean = 0;

    if (ch == NULL)
        return 0;
    if (!ch->ch_reaped) {
        kill(ch->ch_pid, SIGTERM);
        if (wait_for(ch, timeout_ms, &status))
            clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        else {
            kill(ch->ch_pid, SIGKILL);
            wait_for(ch, 5000, &status);
        }
    }
    free(ch);
    return clean;
}

size_t bench_sys_children(uint32_t pid, const char *image, uint32_t *out, size_t max)
{
    /* The kernel keeps 15 characters of a command name. */
    size_t cmp = image != NULL ? (strlen(image) < 15 ? strlen(image) : 15) : 0;

    DIR *d = opendir("/proc");
    struct dirent *e;
    size_t n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL && n < max) {
        char path[300], buf[512], *close_paren;
        unsigned long ppid;
        FILE *f;

        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        f = fopen(path, "re");
        if (f == NULL)
            continue;
        if (fgets(buf, sizeof(buf), f) == NULL) {
            fclose(f);
            continue;
        }
        fclose(f);
        /* The command name may hold spaces and parentheses: parse after the last ')'. */
        close_paren = strrchr(buf, ')');
        if (close_paren == NULL || sscanf(close_paren + 2, "%*c %lu", &ppid) != 1)
            continue;
        if (ppid != pid)
            continue;
        if (image != NULL) {
            char *open_paren = strchr(buf, '(');
            if (open_paren == NULL || strncmp(open_paren + 1, image, cmp) != 0)
                continue;
        }
        out[n++] = (uint32_t)strtoul(e->d_name, NULL, 10);
    }
    closedir(d);
    return n;
}

static uint64_t status_kb(const char *text, const char *key)
{
    const char *p = strstr(text, key);

    return p != NULL ? strtoull(p + strlen(key), NULL, 10) : 0;
}

int bench_sys_procstat(uint32_t pid, bench_procstat_t *st)
{
    char path[64], *text, *close_paren;
    unsigned long long utime = 0, stime = 0;
    long tick = sysconf(_SC_CLK_TCK);

    memset(st, 0, sizeof(*st));
    if (pid == 0) {
        struct rusage ru;
        /* Our own CPU time to the microsecond, every thread included. */
        if (getrusage(RUSAGE_SELF, &ru) == 0)
            st->ps_cpu_ns = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
                            (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
        snprintf(path, sizeof(path), "/proc/self/status");
    } else {
        snprintf(path, sizeof(path), "/proc/%u/stat", pid);
        text = bench_sys_read_file(path, NULL);
        if (text == NULL)
            return -1;
        close_paren = strrchr(text, ')');
        /* Fields 14 and 15 (utime, stime) follow the state and 10 more numbers. */
        if (close_paren != NULL &&
            sscanf(close_paren + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                   &stime) == 2 &&
            tick > 0)
            st->ps_cpu_ns = (utime + stime) * (1000000000ull / (unsigned long long)tick);
        free(text);
        snprintf(path, sizeof(path), "/proc/%u/status", pid);
    }
    text = bench_sys_read_file(path, NULL);
    if (text == NULL)
        return -1;
    st->ps_rss_kb = status_kb(text, "VmRSS:");
    st->ps_peak_kb = status_kb(text, "VmHWM:");
    free(text);
    return 0;
}

int bench_sys_reset_peak(void)
{
    /* Linux >= 4.0: writing 5 to clear_refs resets VmHWM to the current RSS. */
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    int ok;

    if (fd < 0)
        return 0;
    ok = write(fd, "5", 1) == 1;
    close(fd);
    return ok;
}

int bench_sys_is_wine(void)
{
    return 0;
}

int bench_sys_pin(const char *cpus)
{
    cpu_set_t set;
    const char *p = cpus;

    CPU_ZERO(&set);
    while (*p != '\0') {
        char *end;
        unsigned long lo = strtoul(p, &end, 10), hi = lo;
        if (end == p)
            return -1;
        if (*end == '-')
            hi = strtoul(end + 1, &end, 10);
        for (unsigned long i = lo; i <= hi && i < CPU_SETSIZE; i++)
            CPU_SET(i, &set);
        p = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0')
            return -1;
    }
    return sched_setaffinity(0, sizeof(set), &set) == 0 ? 0 : -1;
}

void bench_sys_machine(char *out, size_t cap, unsigned *ncpu)
{
    char *info = bench_sys_read_file("/proc/cpuinfo", NULL), model[128] = "unknown CPU";
    struct utsname u;
    const char *virt = "";
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (info != NULL) {
        char *m = strstr(info, "model name");
        if (m != NULL && (m = strchr(m, ':')) != NULL) {
            size_t len = strcspn(m + 2, "\n");
            if (len >= sizeof(model))
                len = sizeof(model) - 1;
            memcpy(model, m + 2, len);
            model[len] = '\0';
        }
        if (strstr(info, " hypervisor") != NULL)
            virt = ", virtual machine";
        free(info);
    }
    if (uname(&u) != 0)
        snprintf(u.release, sizeof(u.release), "?");
    *ncpu = n > 0 ? (unsigned)n : 1;
    snprintf(out, cap, "Linux %s, %s, %u CPUs%s", u.release, model, *ncpu, virt);
}

double bench_sys_loadavg(void)
{
    char *text = bench_sys_read_file("/proc/loadavg", NULL);
    double v = -1;

    if (text != NULL)
        v = strtod(text, NULL);
    free(text);
    return v;
}

char *bench_sys_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t cap = 4096, n = 0;
    char *buf;

    if (fd < 0)
        return NULL;
    buf = malloc(cap + 1);
    while (buf != NULL) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    close(fd);
    if (buf == NULL)
        return NULL;
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

int bench_sys_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    int rc;

    if (f == NULL)
        return -1;
    rc = fputs(text, f) < 0 ? -1 : 0;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}
