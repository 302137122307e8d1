/*
 * fuzz_config.c — the broker's configuration file: broker/config.c over
 * proto/ini.c, the one decoder of untrusted text that is not a frame. The
 * input is the file's bytes. Properties checked on everything:
 *  - config_load returns 0 or an error with at least one "FILE:LINE" line,
 *    and never crashes or leaks (ASan, LeakSanitizer);
 *  - whatever it accepts resolves, for [defaults] and every [plugin], to a
 *    policy inside the documented ranges;
 *  - the chain it accepts has at most 64 entries, none empty.
 * The file is handed over by path, as the broker does: on Linux a memfd
 * (/proc/self/fd/N), elsewhere a file in the working directory.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"

#ifdef __linux__
#include <sys/mman.h>
#include <unistd.h>
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *input_path(const uint8_t *data, size_t size)
{
#ifdef __linux__
    static int fd = -1;
    static char path[64];

    if (fd < 0) {
        fd = memfd_create("dcb-fuzz-config", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    return path;
#else
    static const char path[] = "fuzz-config.ini";
    FILE *f = fopen(path, "wb");

    if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size))
        abort();
    fclose(f);
    return path;
#endif
}

static void check_policy(const broker_policy_t *p)
{
    for (int h = 0; h < DCB_HOOK_COUNT; h++) {
        if (p->pol_timeout_ms[h] < 1 || p->pol_timeout_ms[h] > DCB_MAX_DEADLINE_US / 1000u)
            abort();
        if (p->pol_fail[h] != BROKER_FAIL_OPEN && p->pol_fail[h] != BROKER_FAIL_CLOSED)
            abort();
    }
    if (p->pol_threads < 1 || p->pol_threads > 256 || p->pol_memory_mb > (1u << 20))
        abort();
    if (p->pol_crash_loop_limit < 1 || p->pol_crash_loop_limit > BROKER_CRASH_LOOP_MAX)
        abort();
    if (p->pol_hang_ms < 10 || p->pol_restart_backoff_ms < 1 ||
        p->pol_restart_backoff_max_ms < p->pol_restart_backoff_ms ||
        p->pol_breaker_max_ms < p->pol_breaker_ms)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char err[8192];
    broker_config_t cfg;
    broker_policy_t pol;
    const char *path = input_path(data, size);
    int rc;

    config_defaults(&cfg);
    rc = config_load(&cfg, path, err, sizeof(err));
    if (rc != 0) {
        /* Every refusal says where. */
        if (strstr(err, path) == NULL)
            abort();
    } else {
        config_policy(&cfg, NULL, &pol);
        check_policy(&pol);
        for (size_t i = 0; i < cfg.cfg_n_plugins; i++) {
            const broker_plugin_conf_t *pc = &cfg.cfg_plugins[i];
            if (pc->pc_name == NULL || pc->pc_name[0] == '\0' ||
                config_find_plugin(&cfg, pc->pc_name) == NULL)
                abort();
            config_policy(&cfg, pc, &pol);
            check_policy(&pol);
        }
        if (cfg.cfg_n_chain > 64)
            abort();
        for (size_t i = 0; i < cfg.cfg_n_chain; i++)
            if (cfg.cfg_chain[i] == NULL || cfg.cfg_chain[i][0] == '\0')
                abort();
        if (cfg.cfg_max_packet < 576 || cfg.cfg_max_packet > 60000 ||
            cfg.cfg_max_connections < 1 || cfg.cfg_log_level < 0 || cfg.cfg_log_level > 3)
            abort();
    }
    config_free(&cfg);
    return 0;
}
