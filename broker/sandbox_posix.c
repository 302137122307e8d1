/*
 * sandbox_posix.c — host limits on Linux: no-new-privs, parent-death
 * signal, no core files, and a data-segment cap; and the resident memory of
 * a host as the supervisor polls it. Deeper confinement (seccomp, a separate
 * uid) is the hardening issue's.
 */
#include "platform.h"

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <signal.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif

void *sandbox_job_attach(uv_process_t *proc, uint32_t memory_mb, char *err, size_t errlen)
{
    (void)proc;
    (void)memory_mb;
    if (errlen > 0)
        err[0] = '\0';
    return NULL;
}

void sandbox_job_close(void *job)
{
    (void)job;
}

int sandbox_job_memory_hit(void *job, uint32_t memory_mb)
{
    (void)job;
    (void)memory_mb;
    return 0;
}

int sandbox_proc_memory(uint32_t pid, uint64_t *bytes)
{
    char path[64];
    unsigned long long size, resident;
    FILE *f;
    int n;

    snprintf(path, sizeof(path), "/proc/%u/statm", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return UV_ENOENT;
    n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (n != 2)
        return UV_EIO;
    *bytes = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
    return 0;
}

void sandbox_host_early(void)
{
    struct rlimit core = {0, 0};

    /* Never gain privileges through exec (setuid binaries, file caps). */
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    /* A host must not outlive its broker. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() == 1)
        _exit(1); /* The broker died before the line above. */
    /* Crashing plugins are expected; their core files are not wanted. */
    setrlimit(RLIMIT_CORE, &core);
}

void sandbox_host_limits(uint32_t memory_mb, char *note, size_t notelen)
{
    struct rlimit files = {256, 256};

    if (notelen > 0)
        note[0] = '\0';
    setrlimit(RLIMIT_NOFILE, &files);
    if (memory_mb == 0)
        return;
#ifdef SANDBOX_ASAN
    /* ASan's shadow memory counts as data: a cap would break every allocation. */
    snprintf(note, notelen, "memory rlimit skipped under AddressSanitizer");
#else
    {
        /*
         * RLIMIT_DATA (private writable mappings, Linux >= 4.7) is the closest
         * to "the plugin's heap". It sits a little above the cap the broker
         * polls for, so the broker's kill is what normally acts and the
         * rlimit is the backstop between two polls.
         */
        rlim_t cap = ((rlim_t)memory_mb + 64u) * 1024u * 1024u;
        struct rlimit data = {cap, cap};
        if (setrlimit(RLIMIT_DATA, &data) != 0)
            snprintf(note, notelen, "setrlimit(RLIMIT_DATA) failed");
    }
#endif
}
