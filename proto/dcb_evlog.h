/*
 * dcb_evlog.h — log lines to the Windows Event Log without ever waiting for
 * it.
 *
 * ReportEventW is a call into the Event Log service, and that service can be
 * slow, restarting or hung. The shim runs on the DHCP server's threads and
 * the broker's loop answers the shim within its deadline, so neither may
 * make that call itself: dcb_evlog_post() copies the line into a bounded
 * queue under a short lock and returns; one background thread per queue
 * registers the source and writes the events. When the queue is full, or a
 * component logs faster than its rate limit, lines are dropped and counted,
 * and the writer reports how many in one event when it catches up. The log
 * file keeps every line either way; the Event Log gets what an administrator
 * should see.
 *
 * Every event is written with the message ID DCB_EVLOG_MSG_TEXT, whose
 * message is "%1": the line itself is the event's only insertion string.
 * broker/eventmsg.mc (built into dcb-broker.exe) and tools/dcbctl/dcbmsg.mc
 * (dcbmsg.dll) both define it, so the source's EventMessageFile may name
 * either file.
 *
 * The queue logic is platform-neutral (evlog.c) and tested on Linux with a
 * fake backend; evlog_win.c is the Event Log backend and the writer thread's
 * Windows details, evlog_posix.c has no system backend.
 */
#ifndef DCB_EVLOG_H
#define DCB_EVLOG_H

#include <stddef.h>
#include <stdint.h>

#include "dcb_os.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The event source that dcbctl install registers (Application log). */
#define DCB_EVLOG_SOURCE "dcb"
/* The one message ID: "%1". */
#define DCB_EVLOG_MSG_TEXT 1u
/* Longest text of one event, in bytes (dcb_log lines are shorter). */
#define DCB_EVLOG_LINE_MAX 1024u

/*
 * Where events go. open may block (it runs on the writer thread) and
 * returns a handle, or NULL when the source cannot be opened (every line
 * then counts as failed). write may block; it returns 0 or a negative
 * error. close releases the handle.
 */
typedef struct dcb_evlog_backend {
    void *(*eb_open)(const char *source);
    int (*eb_write)(void *handle, dcb_log_level_t level, const char *text);
    void (*eb_close)(void *handle);
} dcb_evlog_backend_t;

/* The system's Event Log (Windows), or NULL where there is none. */
const dcb_evlog_backend_t *dcb_evlog_system(void);

typedef struct dcb_evlog_opts {
    const char *eo_name;    /* who writes ("dcbshim"): names the writer's own events */
    unsigned eo_depth;      /* lines the queue holds (at least 1) */
    unsigned eo_burst;      /* lines accepted at once before the rate limit applies */
    unsigned eo_per_minute; /* lines per minute after the burst (0: no rate limit) */
} dcb_evlog_opts_t;

typedef struct dcb_evlog dcb_evlog_t;

/*
 * Starts a writer for source. Never blocks: the source is opened on the
 * writer thread. Returns 0, DCB_OS_EINVAL without a backend (not Windows),
 * or DCB_OS_ENOMEM.
 */
int dcb_evlog_open(dcb_evlog_t **out, const dcb_evlog_backend_t *backend, const char *source,
                   const dcb_evlog_opts_t *opts);

/*
 * Queues a dcb_log line (or any text) for the Event Log: its "[pid]" tag is
 * kept, the monotonic timestamp and the level word are dropped (the Event
 * Log has its own time and type). Takes a short lock and copies at most
 * DCB_EVLOG_LINE_MAX bytes; never waits for the writer. ev may be NULL
 * (nothing happens). Returns 0, or DCB_OS_EIO when the line was dropped.
 */
int dcb_evlog_post(dcb_evlog_t *ev, dcb_log_level_t level, const char *line);

typedef struct dcb_evlog_counts {
    uint64_t ec_written;    /* events written */
    uint64_t ec_failed;     /* the backend refused them, or the source could not be opened */
    uint64_t ec_queue_full; /* dropped: the queue was full */
    uint64_t ec_rate;       /* dropped: over the rate limit */
} dcb_evlog_counts_t;

void dcb_evlog_counts(dcb_evlog_t *ev, dcb_evlog_counts_t *c);

/*
 * Stops the writer after it has written what is queued, waiting at most
 * wait_ms, and stores the final counts in *counts (may be NULL). A writer
 * still busy then (a hung Event Log) is left to finish on its own and frees
 * everything itself; on Windows it keeps its module loaded until then, so a
 * DLL that calls this before being unloaded is safe. Returns 0, or
 * DCB_OS_ETIMEDOUT when the writer was left behind. ev may be NULL.
 */
int dcb_evlog_close(dcb_evlog_t *ev, uint32_t wait_ms, dcb_evlog_counts_t *counts);

/*
 * The text an event gets for a dcb_log line: "tag[pid] 12.345 warn: msg"
 * becomes "tag[pid]: msg"; any other line is copied as it is. Truncated to
 * cap - 1 bytes. Exposed for tests.
 */
void dcb_evlog_text(const char *line, char *out, size_t cap);

/* ---- platform (evlog_win.c, evlog_posix.c) -------------------------------- */

/*
 * Runs fn(arg) on a new detached thread. On Windows the thread holds a
 * reference on the module that contains this code until fn has returned,
 * so unloading a DLL never pulls the code from under a writer still inside
 * ReportEventW.
 */
int dcb__evlog_spawn(void (*fn)(void *arg), void *arg);

#ifdef __cplusplus
}
#endif
#endif /* DCB_EVLOG_H */
