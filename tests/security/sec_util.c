/*
 * sec_util.c — the broker as a child process for the security tests.
 */
#include "sec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sec_fmt(const char *fmt, ...)
{
    static char ring[8][4096];
    static int next;
    char *out = ring[next++ % 8];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out, sizeof(ring[0]), fmt, ap);
    va_end(ap);
    return out;
}

static int spawn(tb_broker_t *b, const char *test, const char *pipe, const char *ctl,
                 const char *broker_keys, const char *sections)
{
    char exe[1024], cfg_native[1024];
    const char *argv[4];
    FILE *f;

    memset(b, 0, sizeof(*b));
    snprintf(b->tb_pipe, sizeof(b->tb_pipe), "%s", pipe);
    snprintf(b->tb_log, sizeof(b->tb_log), "sec-%s-%u.log", test, dcb_getpid());
    snprintf(b->tb_cfg, sizeof(b->tb_cfg), "sec-%s-%u.ini", test, dcb_getpid());
    f = fopen(b->tb_cfg, "wb");
    if (f == NULL)
        return -1;
    fprintf(f, "[broker]\npipe = %s\ncontrol_pipe = %s\n%s\n%s\n", pipe, ctl,
            broker_keys != NULL ? broker_keys : "", sections != NULL ? sections : "");
    fclose(f);
    tb_bin("dcb-broker", exe, sizeof(exe));
    snprintf(cfg_native, sizeof(cfg_native), "%s", b->tb_cfg);
    argv[0] = exe;
    argv[1] = "--config";
    argv[2] = cfg_native;
    argv[3] = NULL;
    return tb_spawn_logged(b, argv);
}

int sec_broker_alive(tb_broker_t *b)
{
    uv_run(&b->tb_loop, UV_RUN_NOWAIT);
    return b->tb_running && !b->tb_exited;
}

int sec_broker_start(tb_broker_t *b, const char *test, const char *pipe, const char *ctl,
                     const char *broker_keys, const char *sections)
{
    uint64_t end;

    if (spawn(b, test, pipe, ctl, broker_keys, sections) != 0)
        return -1;
    end = dcb_now_ns() + (SEC_SLOW ? 40000u : 15000u) * 1000000ull;
    while (dcb_now_ns() < end && sec_broker_alive(b)) {
        tb_pipe_t *p = tb_pipe_connect(pipe, 100);
        if (p != NULL) {
            tb_pipe_close(p);
            return 0;
        }
    }
    fprintf(stderr, "sec: the broker does not listen on %s\n", pipe);
    tb_log_dump(b);
    return -1;
}

int sec_broker_run(tb_broker_t *b, const char *test, const char *pipe, const char *ctl,
                   const char *broker_keys, int timeout_ms)
{
    uint64_t end = dcb_now_ns() + (uint64_t)timeout_ms * 1000000u;
    int status;

    if (spawn(b, test, pipe, ctl, broker_keys, NULL) != 0)
        return -1;
    while (!b->tb_exited && dcb_now_ns() < end) {
        uv_run(&b->tb_loop, UV_RUN_NOWAIT);
        if (!b->tb_exited)
            tb_sleep_ms(10);
    }
    if (!b->tb_exited) {
        uv_process_kill(&b->tb_proc, SIGKILL);
        while (!b->tb_exited)
            uv_run(&b->tb_loop, UV_RUN_ONCE);
        status = -1;
    } else {
        status = b->tb_signal != 0 ? 128 + b->tb_signal : (int)b->tb_status;
    }
    tb_broker_release(b);
    return status;
}
