/*
 * eventlog.c — what dcb-broker writes to the Windows Event Log: every
 * warning and error the log sink sees, and the start and stop notes.
 *
 * The broker's loop answers the shim within its deadline, so it never calls
 * the Event Log itself: lines go through dcb_evlog's bounded queue to a
 * writer thread (proto/dcb_evlog.h). A burst of 50 events, then 30 a
 * minute; the log file keeps every line regardless. Debug and info lines
 * stay in the log file.
 */
#include "service.h"

#include "dcb_evlog.h"

#include <stdarg.h>
#include <stdio.h>

/* How long eventlog_stop waits for the queue to be written. */
#define EVENTLOG_STOP_WAIT_MS 2000u

static dcb_evlog_t *evlog;
/* Set while eventlog_note's own line passes through the sink: posted once. */
static _Thread_local int in_note;

int eventlog_available(void)
{
    return dcb_evlog_system() != NULL;
}

int eventlog_start(void)
{
    static const dcb_evlog_opts_t opts = {
        .eo_name = "dcb-broker", .eo_depth = 256, .eo_burst = 50, .eo_per_minute = 30};

    if (evlog != NULL)
        return 0;
    return dcb_evlog_open(&evlog, dcb_evlog_system(), DCB_EVLOG_SOURCE, &opts);
}

void eventlog_line(dcb_log_level_t level, const char *line)
{
    if (evlog != NULL && level >= DCB_LOG_WARN && !in_note)
        dcb_evlog_post(evlog, level, line);
}

void eventlog_note(dcb_log_level_t level, const char *fmt, ...)
{
    char text[DCB_EVLOG_LINE_MAX - 32], line[DCB_EVLOG_LINE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    in_note = 1;
    dcb_log(level, "%s", text);
    in_note = 0;
    if (evlog != NULL) {
        snprintf(line, sizeof(line), "dcb-broker[%u]: %s", dcb_getpid(), text);
        dcb_evlog_post(evlog, level, line);
    }
}

void eventlog_stop(void)
{
    dcb_evlog_counts_t c;
    dcb_evlog_t *ev = evlog;
    int rc;

    if (ev == NULL)
        return;
    evlog = NULL;
    rc = dcb_evlog_close(ev, EVENTLOG_STOP_WAIT_MS, &c);
    dcb_log(rc == 0 && c.ec_failed == 0 ? DCB_LOG_INFO : DCB_LOG_WARN,
            "Event Log (source %s): %llu event(s) written, %llu failed, %llu dropped (%llu over "
            "the rate limit)%s",
            DCB_EVLOG_SOURCE, (unsigned long long)c.ec_written, (unsigned long long)c.ec_failed,
            (unsigned long long)(c.ec_queue_full + c.ec_rate), (unsigned long long)c.ec_rate,
            rc == 0 ? "" : "; the Event Log did not take the rest in time");
}
