/*
 * log.c — the shim's log: one line per event, to a file (DCB_SHIM_LOG /
 * LogFile) or to the platform default (stderr on Linux, OutputDebugString
 * on Windows); never stdout, which belongs to the server.
 *
 * A server thread may log on a failure path, so logging is bounded: at most
 * LOG_BURST lines per second are written, the rest are counted and reported
 * as one line when the next second starts. A line costs one short
 * mutex-protected write.
 */
#include "shim.h"

#include <stdio.h>

#define LOG_BURST 50u

static struct {
    dcb_mutex_t g_lock;
    int g_inited;
    FILE *g_file;
    uint64_t g_window;
    uint32_t g_in_window;
    uint64_t g_suppressed;
} lg;

static void log_sink(dcb_log_level_t level, const char *line, void *ctx)
{
    (void)level;
    (void)ctx;
    dcb_mutex_lock(&lg.g_lock);
    if (lg.g_file != NULL) {
        fprintf(lg.g_file, "%s\n", line);
        fflush(lg.g_file);
    } else {
        dcb__plat_log_default(line);
    }
    dcb_mutex_unlock(&lg.g_lock);
}

void dcb__log_open(const char *path)
{
    if (!lg.g_inited) {
        dcb_mutex_init(&lg.g_lock);
        lg.g_inited = 1;
    }
    dcb_log_set_tag("dcbshim");
    dcb_log_set_sink(log_sink, NULL);
    dcb_mutex_lock(&lg.g_lock);
    if (lg.g_file != NULL)
        fclose(lg.g_file);
    lg.g_file = NULL;
    lg.g_window = 0;
    lg.g_in_window = 0;
    lg.g_suppressed = 0;
    if (path != NULL && path[0] != '\0')
        lg.g_file = dcb__plat_fopen_append(path);
    dcb_mutex_unlock(&lg.g_lock);
    if (path != NULL && path[0] != '\0' && lg.g_file == NULL)
        dcb__log(DCB_LOG_ERROR, "cannot open log file %s; logging to the default", path);
}

void dcb__log_close(void)
{
    if (!lg.g_inited)
        return;
    dcb_mutex_lock(&lg.g_lock);
    if (lg.g_file != NULL)
        fclose(lg.g_file);
    lg.g_file = NULL;
    dcb_mutex_unlock(&lg.g_lock);
}

void dcb__log(dcb_log_level_t level, const char *fmt, ...)
{
    uint64_t now = dcb_now_ns(), suppressed = 0;
    va_list ap;

    if (!lg.g_inited)
        return;
    dcb_mutex_lock(&lg.g_lock);
    if (now - lg.g_window >= 1000000000u) {
        suppressed = lg.g_suppressed;
        lg.g_suppressed = 0;
        lg.g_window = now;
        lg.g_in_window = 0;
    }
    if (lg.g_in_window >= LOG_BURST) {
        lg.g_suppressed++;
        dcb_mutex_unlock(&lg.g_lock);
        return;
    }
    lg.g_in_window++;
    dcb_mutex_unlock(&lg.g_lock);
    if (suppressed > 0)
        dcb_log(DCB_LOG_WARN, "%llu log lines suppressed", (unsigned long long)suppressed);
    va_start(ap, fmt);
    dcb_vlog(level, fmt, ap);
    va_end(ap);
}
