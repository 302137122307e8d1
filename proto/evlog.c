/*
 * evlog.c — the platform-neutral half of dcb_evlog.h: the bounded queue,
 * the rate limit, and the writer thread's loop.
 *
 * Producers (any thread: the DHCP server's in the shim, the loop in the
 * broker) take ev_lock, copy one line into a slot and signal; they never
 * wait for the writer. The writer takes one line at a time out of the
 * queue, writes it with the lock released, and reports what was dropped
 * once the queue is empty again. Memory is shared by two references, the
 * owner's and the writer's; whoever lets go last frees it, so a writer stuck
 * in a hung Event Log can outlive dcb_evlog_close().
 */
#include "dcb_evlog.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct evslot {
    dcb_log_level_t es_level;
    char es_text[DCB_EVLOG_LINE_MAX];
} evslot_t;

struct dcb_evlog {
    dcb_mutex_t ev_lock;
    dcb_cond_t ev_wake; /* the writer waits here for lines or the stop */
    dcb_cond_t ev_gone; /* dcb_evlog_close waits here for the writer */
    const dcb_evlog_backend_t *ev_be;
    char ev_source[64];
    char ev_name[32];
    evslot_t *ev_slots;
    unsigned ev_cap;
    unsigned ev_head;
    unsigned ev_len;
    /* Token bucket: credit in nanoseconds, one line costs ev_period_ns. */
    uint64_t ev_period_ns; /* 0: no rate limit */
    uint64_t ev_credit_ns;
    uint64_t ev_credit_max_ns;
    uint64_t ev_credit_at;
    dcb_evlog_counts_t ev_counts;
    uint64_t ev_unreported_full; /* drops the writer has not reported yet */
    uint64_t ev_unreported_rate;
    unsigned ev_per_minute;
    int ev_stop;
    int ev_done;
    _Atomic int ev_refs;
};

static void evlog_unref(dcb_evlog_t *ev)
{
    if (atomic_fetch_sub(&ev->ev_refs, 1) != 1)
        return;
    dcb_cond_destroy(&ev->ev_wake);
    dcb_cond_destroy(&ev->ev_gone);
    dcb_mutex_destroy(&ev->ev_lock);
    free(ev->ev_slots);
    free(ev);
}

/* Reads the digits at *p; returns how many there were. */
static size_t skip_digits(const char **p)
{
    const char *s = *p;

    while (**p >= '0' && **p <= '9')
        (*p)++;
    return (size_t)(*p - s);
}

void dcb_evlog_text(const char *line, char *out, size_t cap)
{
    static const char *const levels[] = {"debug: ", "info: ", "warn: ", "error: "};
    const char *close, *p;
    size_t tag;

    if (cap == 0)
        return;
    /* "tag[pid] 12.345 level: message" (os_common.c's dcb_vlog). */
    close = strstr(line, "] ");
    if (close != NULL) {
        p = close + 2;
        if (skip_digits(&p) > 0 && *p == '.' && (p++, skip_digits(&p) > 0) && *p == ' ') {
            p++;
            for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
                size_t n = strlen(levels[i]);
                if (strncmp(p, levels[i], n) != 0)
                    continue;
                tag = (size_t)(close + 1 - line);
                snprintf(out, cap, "%.*s: %s", (int)tag, line, p + n);
                return;
            }
        }
    }
    snprintf(out, cap, "%s", line);
}

/* Whether a drop report is due; under ev_lock. */
static int unreported(const dcb_evlog_t *ev)
{
    return ev->ev_unreported_full + ev->ev_unreported_rate > 0;
}

static void evlog_writer(void *arg)
{
    dcb_evlog_t *ev = arg;
    const dcb_evlog_backend_t *be = ev->ev_be;
    void *h = be->eb_open(ev->ev_source);
    char text[DCB_EVLOG_LINE_MAX];
    dcb_log_level_t level;
    int rc;

    dcb_mutex_lock(&ev->ev_lock);
    for (;;) {
        while (ev->ev_len == 0 && !unreported(ev) && !ev->ev_stop)
            dcb_cond_wait(&ev->ev_wake, &ev->ev_lock);
        if (ev->ev_len > 0) {
            evslot_t *s = &ev->ev_slots[ev->ev_head];
            level = s->es_level;
            memcpy(text, s->es_text, sizeof(text));
            ev->ev_head = (ev->ev_head + 1) % ev->ev_cap;
            ev->ev_len--;
        } else if (unreported(ev)) {
            /* Once the queue is empty again: say what the Event Log missed. */
            uint64_t full = ev->ev_unreported_full, rate = ev->ev_unreported_rate;
            level = DCB_LOG_WARN;
            snprintf(text, sizeof(text),
                     "%s[%u]: %llu message(s) were not written to the Event Log (%llu over the "
                     "limit of %u a minute, %llu with the queue full); the log file has them",
                     ev->ev_name, dcb_getpid(), (unsigned long long)(full + rate),
                     (unsigned long long)rate, ev->ev_per_minute, (unsigned long long)full);
            ev->ev_unreported_full = ev->ev_unreported_rate = 0;
        } else {
            break; /* stopping, and everything is written */
        }
        dcb_mutex_unlock(&ev->ev_lock);
        rc = h != NULL ? be->eb_write(h, level, text) : DCB_OS_EIO;
        dcb_mutex_lock(&ev->ev_lock);
        if (rc == 0)
            ev->ev_counts.ec_written++;
        else
            ev->ev_counts.ec_failed++;
    }
    ev->ev_done = 1;
    dcb_cond_broadcast(&ev->ev_gone);
    dcb_mutex_unlock(&ev->ev_lock);
    if (h != NULL)
        be->eb_close(h);
    evlog_unref(ev);
}

int dcb_evlog_open(dcb_evlog_t **out, const dcb_evlog_backend_t *backend, const char *source,
                   const dcb_evlog_opts_t *opts)
{
    dcb_evlog_t *ev;

    *out = NULL;
    if (backend == NULL || source == NULL || opts == NULL)
        return DCB_OS_EINVAL;
    ev = calloc(1, sizeof(*ev));
    if (ev == NULL)
        return DCB_OS_ENOMEM;
    ev->ev_cap = opts->eo_depth > 0 ? opts->eo_depth : 1;
    ev->ev_slots = calloc(ev->ev_cap, sizeof(*ev->ev_slots));
    if (ev->ev_slots == NULL) {
        free(ev);
        return DCB_OS_ENOMEM;
    }
    ev->ev_be = backend;
    snprintf(ev->ev_source, sizeof(ev->ev_source), "%s", source);
    snprintf(ev->ev_name, sizeof(ev->ev_name), "%s", opts->eo_name != NULL ? opts->eo_name : "dcb");
    ev->ev_per_minute = opts->eo_per_minute;
    if (opts->eo_per_minute > 0) {
        ev->ev_period_ns = 60000000000ull / opts->eo_per_minute;
        ev->ev_credit_max_ns = ev->ev_period_ns * (opts->eo_burst > 0 ? opts->eo_burst : 1);
        ev->ev_credit_ns = ev->ev_credit_max_ns;
        ev->ev_credit_at = dcb_now_ns();
    }
    dcb_mutex_init(&ev->ev_lock);
    dcb_cond_init(&ev->ev_wake);
    dcb_cond_init(&ev->ev_gone);
    atomic_store(&ev->ev_refs, 2);
    if (dcb__evlog_spawn(evlog_writer, ev) != 0) {
        atomic_store(&ev->ev_refs, 1);
        evlog_unref(ev);
        return DCB_OS_ENOMEM;
    }
    *out = ev;
    return 0;
}

/* Takes one line's worth of credit; under ev_lock. */
static int rate_take(dcb_evlog_t *ev)
{
    uint64_t now;

    if (ev->ev_period_ns == 0)
        return 1;
    now = dcb_now_ns();
    if (now > ev->ev_credit_at) {
        uint64_t gained = now - ev->ev_credit_at;
        ev->ev_credit_ns = gained >= ev->ev_credit_max_ns - ev->ev_credit_ns
                               ? ev->ev_credit_max_ns
                               : ev->ev_credit_ns + gained;
        ev->ev_credit_at = now;
    }
    if (ev->ev_credit_ns < ev->ev_period_ns)
        return 0;
    ev->ev_credit_ns -= ev->ev_period_ns;
    return 1;
}

int dcb_evlog_post(dcb_evlog_t *ev, dcb_log_level_t level, const char *line)
{
    evslot_t *s;
    int rc = 0;

    if (ev == NULL || line == NULL)
        return 0;
    dcb_mutex_lock(&ev->ev_lock);
    if (ev->ev_stop) {
        rc = DCB_OS_EIO;
    } else if (ev->ev_len == ev->ev_cap) {
        ev->ev_counts.ec_queue_full++;
        ev->ev_unreported_full++;
        rc = DCB_OS_EIO;
    } else if (!rate_take(ev)) {
        ev->ev_counts.ec_rate++;
        ev->ev_unreported_rate++;
        rc = DCB_OS_EIO;
    } else {
        s = &ev->ev_slots[(ev->ev_head + ev->ev_len) % ev->ev_cap];
        s->es_level = level;
        dcb_evlog_text(line, s->es_text, sizeof(s->es_text));
        ev->ev_len++;
        dcb_cond_signal(&ev->ev_wake);
    }
    dcb_mutex_unlock(&ev->ev_lock);
    return rc;
}

void dcb_evlog_counts(dcb_evlog_t *ev, dcb_evlog_counts_t *c)
{
    if (ev == NULL) {
        memset(c, 0, sizeof(*c));
        return;
    }
    dcb_mutex_lock(&ev->ev_lock);
    *c = ev->ev_counts;
    dcb_mutex_unlock(&ev->ev_lock);
}

int dcb_evlog_close(dcb_evlog_t *ev, uint32_t wait_ms, dcb_evlog_counts_t *counts)
{
    uint64_t until;
    int rc;

    if (counts != NULL)
        memset(counts, 0, sizeof(*counts));
    if (ev == NULL)
        return 0;
    until = dcb_now_ns() + (uint64_t)wait_ms * 1000000u;
    dcb_mutex_lock(&ev->ev_lock);
    ev->ev_stop = 1;
    dcb_cond_signal(&ev->ev_wake);
    while (!ev->ev_done) {
        uint64_t now = dcb_now_ns();
        if (now >= until)
            break;
        dcb_cond_timedwait(&ev->ev_gone, &ev->ev_lock, (uint32_t)((until - now) / 1000000u) + 1);
    }
    rc = ev->ev_done ? 0 : DCB_OS_ETIMEDOUT;
    if (counts != NULL) {
        *counts = ev->ev_counts;
        /* Still queued behind a stuck writer: as good as dropped. */
        counts->ec_queue_full += ev->ev_len;
    }
    dcb_mutex_unlock(&ev->ev_lock);
    evlog_unref(ev);
    return rc;
}
