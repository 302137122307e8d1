/*
 * service.h — dcb-broker under the system's service manager, and what it
 * writes to the Windows Event Log.
 *
 *   service_{win,posix}.c  `dcb-broker --service`: the Windows service
 *                          control manager (SCM); refused elsewhere
 *   eventlog.c             the Event Log (source "dcb") through dcb_evlog's
 *                          queue: warnings, errors, start and stop
 *
 * How a service run goes (Windows):
 *
 *   main ──--service──► service_dispatch ── StartServiceCtrlDispatcherW
 *                                              │ (the SCM's thread)
 *                          service main ◄──────┘
 *                            START_PENDING; `dcb-broker --check-config ...`
 *                            (a bad configuration: STOPPED with its text
 *                            in an error event, run() is not called)
 *                            run(argv without --service, plus --event-log)
 *                              ├─ service_attach(loop, stop_cb)   uv_async_t
 *                              ├─ service_running()   listening: RUNNING
 *                              │     STOP/SHUTDOWN ─► handler thread:
 *                              │     STOP_PENDING, uv_async_send ─► stop_cb
 *                              │     on the loop thread (a clean shutdown)
 *                              └─ service_detach()    the loop is closing
 *                            STOPPED with run's exit status
 *
 * In the foreground (the default, for debugging and for systemd on Linux)
 * the service_ hooks do nothing.
 */
#ifndef DCB_BROKER_SERVICE_H
#define DCB_BROKER_SERVICE_H

#include <stdint.h>
#include <string.h>

#include <uv.h>

#include "dcb_os.h"

typedef int (*service_run_fn)(int argc, char **argv);
typedef void (*service_stop_fn)(void *arg, const char *why);

/* Whether the command line asks for --service. */
static inline int service_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--service") == 0)
            return 1;
    return 0;
}

/*
 * Runs run() as the service: with the command line minus --service, plus
 * --event-log. Returns the process's exit status: run's, or 2 when this is
 * not a service start (started from a console; any system but Windows).
 */
int service_dispatch(int argc, char **argv, service_run_fn run);

/*
 * Called by run() on the loop thread once the loop exists: a stop request
 * from the SCM then calls stop(arg, why) on the loop thread. stop_hint_ms
 * is how long a clean shutdown may take (the SCM's wait hint). Returns 0 or
 * a libuv error.
 */
int service_attach(uv_loop_t *loop, service_stop_fn stop, void *arg, uint32_t stop_hint_ms);
/* The event pipe listens: SERVICE_RUNNING, accepting STOP and SHUTDOWN. */
void service_running(void);
/* The loop is shutting down: closes the handle service_attach made (idempotent). */
void service_detach(void);

/* ---- Event Log (eventlog.c) ------------------------------------------------ */

/* Whether this system has an Event Log (Windows). */
int eventlog_available(void);
/*
 * Opens the source "dcb". Never blocks. Returns 0, or DCB_OS_EINVAL where
 * there is no Event Log (not Windows).
 */
int eventlog_start(void);
/* From the log sink: warnings and errors go to the Event Log, nothing else. */
void eventlog_line(dcb_log_level_t level, const char *line);
/*
 * Logs a line as dcb_log does and, whatever its level, writes it to the
 * Event Log: the broker's start and stop.
 */
#if defined(__MINGW32__)
__attribute__((format(gnu_printf, 2, 3)))
#elif defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void eventlog_note(dcb_log_level_t level, const char *fmt, ...);
/* Writes what is queued (at most 2 s), logs the counts, closes. */
void eventlog_stop(void);

#endif /* DCB_BROKER_SERVICE_H */
