/*
 * log.c — the shim's log: one line per event, to a file (DCB_SHIM_LOG /
 * LogFile) or to the platform default (stderr on Linux, OutputDebugString
 * on Windows); never stdout, which belongs to the server.
 *
 * A server thread may log on a failure path, so logging is bounded: at most
 * LOG_BURST lines per second are written, the rest are counted and reported
 * as one line when the next second starts. A line costs one short
 * mutex-protected write.
 *
 * Warnings, errors, and the start and stop notes (dcb__log_note) also go to
 * the Windows Event Log, source "dcb". ReportEventW can wait on the Event
 * Log service, so a server thread never calls it: the line is copied into a
 * bounded queue that a background thread writes (proto/dcb_evlog.h); a full
 * queue drops the line for the Event Log and counts it, and the Event Log
 * has its own, stricter rate limit. Nothing of this exists on Linux.
 */
#include "shim.h"

#include "dcb_evlog.h"

#include <stdarg.h>
#include <stdio.h>

#define LOG_BURST 50u
/* The Event Log's share: a queue of 64 lines, 20 at once, then 10 a minute. */
#define EVLOG_DEPTH 64u
#define EVLOG_BURST 20u
#define EVLOG_PER_MINUTE 10u
/* What STOP gives the writer to empty the queue (the stop note among it). */
#define EVLOG_STOP_WAIT_MS 250u

static struct {
    dcb_mutex_t g_lock;
    int g_inited;
    FILE *g_file;
    uint64_t g_window;
    uint32_t g_in_window;
    uint64_t g_suppressed;
    dcb_evlog_t *g_evlog; /* NULL: no Event Log (Linux, or not opened) */
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
    if (level >= DCB_LOG_WARN)
        dcb_evlog_post(lg.g_evlog, level, line);
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
    if (lg.g_evlog == NULL && dcb_evlog_system() != NULL) {
        static const dcb_evlog_opts_t opts = {.eo_name = "dcbshim",
                                              .eo_depth = EVLOG_DEPTH,
                                              .eo_burst = EVLOG_BURST,
                                              .eo_per_minute = EVLOG_PER_MINUTE};
        /* Never blocks: the writer thread opens the source. */
        dcb_evlog_open(&lg.g_evlog, dcb_evlog_system(), DCB_EVLOG_SOURCE, &opts);
    }
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
    dcb_evlog_t *ev;

    if (!lg.g_inited)
        return;
    dcb_mutex_lock(&lg.g_lock);
    if (lg.g_file != NULL)
        fclose(lg.g_file);
    lg.g_file = NULL;
    ev = lg.g_evlog;
    lg.g_evlog = NULL;
    dcb_mutex_unlock(&lg.g_lock);
    /*
     * Bounded, and safe before FreeLibrary: a writer stuck in the Event Log
     * keeps this DLL loaded until it returns, then frees itself.
     */
    dcb_evlog_close(ev, EVLOG_STOP_WAIT_MS, NULL);
}

void dcb__log_note(const char *fmt, ...)
{
    char text[DCB_EVLOG_LINE_MAX - 32], line[DCB_EVLOG_LINE_MAX];
    va_list ap;

    if (!lg.g_inited)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    dcb__log(DCB_LOG_INFO, "%s", text);
    snprintf(line, sizeof(line), "dcbshim[%u]: %s", dcb_getpid(), text);
    dcb_mutex_lock(&lg.g_lock);
    dcb_evlog_post(lg.g_evlog, DCB_LOG_INFO, line);
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
