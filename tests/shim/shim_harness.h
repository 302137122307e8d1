/*
 * shim_harness.h — loading the real shim the way the DHCP server does
 * (dcb_dl_open + DhcpServerCalloutEntry), the environment it reads, and
 * small waiting helpers. Shared by the tests and the benchmark.
 */
#ifndef DCB_TEST_SHIM_HARNESS_H
#define DCB_TEST_SHIM_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcb_callout.h"
#include "dcb_os.h"

#ifdef _WIN32
#define SHIM_FILE "\\dcbshim.dll"
#else
#define SHIM_FILE "/libdcbshim.so"
#endif

typedef struct shim {
    dcb_dl_t *dl;
    LPDHCP_ENTRY_POINT_FUNC entry;
    DHCP_CALLOUT_TABLE t;
} shim_t;

/* Every variable the shim reads; cleared before each test. */
static const char *const shim_env_vars[] = {"DCB_PIPE",
                                            "DCB_NEWPKT_DEADLINE_MS",
                                            "DCB_PKTSEND_DEADLINE_MS",
                                            "DCB_NOTIFY_DEADLINE_MS",
                                            "DCB_FAIL_CLOSED",
                                            "DCB_QUEUE_SIZE",
                                            "DCB_MAX_PACKET",
                                            "DCB_POOL_MAX",
                                            "DCB_POOL_SPARE",
                                            "DCB_BREAKER_THRESHOLD",
                                            "DCB_BREAKER_MIN_MS",
                                            "DCB_BREAKER_MAX_MS",
                                            "DCB_STATS_INTERVAL_MS",
                                            "DCB_CONNECT_TIMEOUT_MS",
                                            "DCB_BROKER_ACCOUNT",
                                            "DCB_SHIM_LOG",
                                            "DCB_SHIM_CONFIG",
                                            NULL};

static inline void env_set(const char *name, const char *value)
{
#ifdef _WIN32
    SetEnvironmentVariableA(name, value);
#else
    if (value == NULL)
        unsetenv(name);
    else
        setenv(name, value, 1);
#endif
}

static inline void env_reset(void)
{
    for (int i = 0; shim_env_vars[i] != NULL; i++)
        env_set(shim_env_vars[i], NULL);
    /* Never read a machine-wide configuration file in tests. */
    env_set("DCB_SHIM_CONFIG", "/nonexistent/dcb-shim.conf");
}

static inline void env_set_u(const char *name, unsigned v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%u", v);
    env_set(name, buf);
}

static inline const char *shim_argv0_dir(const char *argv0)
{
    static char dir[1024];
    const char *slash = strrchr(argv0, '/');
#ifdef _WIN32
    const char *bs = strrchr(argv0, '\\');
    if (bs != NULL && (slash == NULL || bs > slash))
        slash = bs;
#endif
    if (slash == NULL)
        return ".";
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - argv0), argv0);
    return dir;
}

/* Where the shim is: DCB_BIN_DIR, else beside the test program. */
extern const char *shim_exe_dir;

static inline int shim_open(shim_t *s)
{
    const char *dirs[2] = {getenv("DCB_BIN_DIR"), shim_exe_dir};
    char path[1200], err[512] = "";

    memset(s, 0, sizeof(*s));
    for (int i = 0; i < 2 && s->dl == NULL; i++) {
        if (dirs[i] == NULL)
            continue;
        snprintf(path, sizeof(path), "%s%s", dirs[i], SHIM_FILE);
        s->dl = dcb_dl_open(path, err, sizeof(err));
    }
    if (s->dl == NULL) {
        fprintf(stderr, "cannot load the shim: %s\n", err);
        return -1;
    }
    s->entry = (LPDHCP_ENTRY_POINT_FUNC)dcb_dl_sym(s->dl, DHCP_CALLOUT_ENTRY_POINT);
    return s->entry != NULL ? 0 : -1;
}

/* Calls the entry point with these chained DLLs and version. */
static inline DWORD shim_entry(shim_t *s, const char *const *chain, size_t n, DWORD version)
{
    uint16_t *msz;
    DWORD rc;

    if (s->entry == NULL)
        return ERROR_INVALID_PARAMETER;
    msz = dcb_multisz_from_utf8(chain, n);
    rc = s->entry((LPWSTR)msz, version, &s->t);
    free(msz);
    return rc;
}

static inline void shim_close(shim_t *s)
{
    if (s->t.DhcpControlHook != NULL)
        s->t.DhcpControlHook(DHCP_CONTROL_STOP, NULL);
    dcb_dl_close(s->dl);
    memset(s, 0, sizeof(*s));
}

#define WAIT_FOR(expr, ms)                                                                         \
    do {                                                                                           \
        uint64_t wait_end_ = dcb_now_ns() + (uint64_t)(ms)*1000000u;                               \
        while (!(expr) && dcb_now_ns() < wait_end_)                                                \
            dcb_sleep_ms(2);                                                                       \
    } while (0)

static inline double ms_since(uint64_t t0)
{
    return (double)(dcb_now_ns() - t0) / 1e6;
}

#endif
