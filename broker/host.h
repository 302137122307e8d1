/*
 * host.h — plugins and their host processes, as the supervisor sees them.
 *
 * A broker_plugin_t is one entry of the chain with its policy, its state
 * (running, restarting, disabled) and its cumulative stats; it outlives
 * its hosts. A host_t is one host process (one generation of one plugin):
 * spawned, loaded, ready, then dead. Packets remember the host_t that saw
 * their NewPkt, so a restarted or reloaded plugin never gets later hooks of
 * a packet its new process did not see, and an old generation can finish
 * the packets it started.
 */
#ifndef DCB_HOST_H
#define DCB_HOST_H

#include "broker.h"

typedef enum plugin_state {
    PLUGIN_STARTING = 0, /* values match Dcb__PluginState */
    PLUGIN_RUNNING = 1,
    PLUGIN_RESTARTING = 2,
    PLUGIN_DISABLED = 3,
} plugin_state_t;

#define PLUGIN_FAIL_RING BROKER_CRASH_LOOP_MAX

struct broker_plugin {
    blist_t p_link; /* b_plugins */
    int p_refs;
    broker_t *p_broker;
    char *p_name;
    char *p_dll;
    broker_policy_t p_pol;
    plugin_state_t p_state;
    int p_removed;           /* no longer in the chain: never restarted */
    int p_admin_disabled;    /* DISABLED by an operator (not by a crash loop) */
    int p_reloading;         /* p_starting is a reload: p_cur serves until it is ready */
    int p_renewing;          /* the reload is the fresh load after STOP, not an operator's */
    uint32_t p_draining;     /* older generations finishing their packets */
    struct host *p_cur;      /* the ready generation new packets go to (ref), or NULL */
    struct host *p_starting; /* a generation being started (ref), or NULL */
    uint32_t p_generation;   /* of the last host started */
    uint32_t p_hooks;        /* bit per hook, from the last HostLoaded */
    int p_hooks_known;

    /* restart and crash loop */
    btimer_t p_restart_timer;
    uint32_t p_backoff_ms;
    uint64_t p_fail_ns[PLUGIN_FAIL_RING];
    uint32_t p_fail_next;

    /* breaker: after repeated timeouts, default at once for a while */
    uint32_t p_consec_timeouts;
    uint32_t p_breaker_ms;
    uint64_t p_breaker_until_ns;

    char p_last_failure[160];
    uint64_t p_last_failure_ns;
    broker_plugin_stats_t p_stats;
};

typedef enum host_state {
    HOST_SPAWNED = 0, /* process started, HostLoad sent */
    HOST_READY,       /* HostLoaded ok */
    HOST_STOPPING,    /* channel closed on purpose; waiting for exit */
    HOST_DEAD,
} host_state_t;

/* Why a host was taken down (for the log and the default reason). */
typedef enum host_fail {
    HOST_FAIL_NONE = 0,
    HOST_FAIL_EXIT,     /* exited or crashed */
    HOST_FAIL_EOF,      /* closed its channel */
    HOST_FAIL_HANG,     /* an event outstanding past hang_ms */
    HOST_FAIL_PING,     /* no pong within hang_ms */
    HOST_FAIL_MEMORY,   /* over its memory cap */
    HOST_FAIL_PROTOCOL, /* sent a bad frame */
    HOST_FAIL_LOAD,     /* could not load the DLL or its entry point failed */
    HOST_FAIL_SPAWN,    /* could not be started */
    HOST_FAIL_STALL,    /* does not read its channel */
} host_fail_t;

typedef struct host_call host_call_t;
/* Called exactly once per call: with the result, or with r == NULL and a reason. */
typedef void (*host_call_cb)(host_call_t *c, const Dcb__HostResult *r, int reason);

struct host_call {
    htab_node_t hc_node;
    blist_t hc_link; /* the host's calls, oldest first */
    struct host *hc_host;
    uint64_t hc_sent_ns;
    uint8_t hc_hook;
    host_call_cb hc_cb;
};

/* Output of one of the host's stdout/stderr pipes, logged line by line. */
typedef struct host_out {
    uv_pipe_t ho_pipe;
    struct host *ho_host;
    const char *ho_name; /* "out" or "err" */
    char *ho_line;
    size_t ho_len;
    char ho_buf[2048];
    int ho_truncated;
    int ho_open;
} host_out_t;

typedef struct host {
    blist_t h_link; /* b_hosts */
    int h_refs;
    broker_plugin_t *h_plugin; /* ref */
    broker_t *h_broker;
    uint32_t h_generation;
    host_state_t h_state;
    host_fail_t h_fail;
    uint32_t h_pid;
    uint64_t h_spawn_ns;
    uint64_t h_ready_ns;
    int h_started;    /* the plugin has had DhcpControlHook(START) */
    uint32_t h_hooks; /* what this generation's DLL filled in */
    int h_stalled;    /* stopped reading its channel: the watchdog takes it down */

    /*
     * Reload and drain. A reload host is started beside the current one and
     * takes over new packets once ready; the old one then drains: it keeps
     * serving the packets whose NewPkt it saw (h_npackets) and is stopped
     * when they are done, or after drain_ms.
     */
    int h_reload;
    int h_draining;      /* holds a reference until the drain ends */
    uint32_t h_npackets; /* packets whose NewPkt this host saw, still alive */
    uint64_t h_drain_deadline_ns;
    btimer_t h_drain_timer;

    uv_process_t h_proc;
    int h_proc_open;
    int h_exited;
    uv_pipe_t h_chan;
    int h_chan_open;
    wire_rd_t h_rd;
    wire_wr_t h_wr; /* frames to the host, written once per loop iteration */
    host_out_t h_out[2];
    int h_handles; /* open libuv handles; the host is freed when 0 and unreferenced */
    void *h_job;   /* Windows job object */

    htab_t h_calls;
    blist_t h_call_list;
    uint32_t h_outstanding;

    /* Control events reach a plugin one at a time, in order. */
    blist_t h_ctl_queue;
    int h_ctl_busy;

    btimer_t h_watchdog;
    btimer_t h_stop_timer;
    btimer_t h_out_timer; /* closes the output pipes a while after exit */
    uint64_t h_ping_nonce;
    uint64_t h_ping_sent_ns; /* 0: no ping outstanding */
    uint64_t h_last_ping_ns;
    uint64_t h_last_mem_ns;
    int h_mem_warned;

    /* output rate limit: a token bucket of lines */
    double h_out_tokens;
    uint64_t h_out_tokens_ns;
    uint64_t h_out_suppressed;
} host_t;

/* ---- plugins (host.c) ---------------------------------------------------- */

broker_plugin_t *plugin_create(broker_t *b, const char *name, const char *dll,
                               const broker_policy_t *pol);
void plugin_ref(broker_plugin_t *p);
void plugin_unref(broker_plugin_t *p);
/* Starts the first host, or re-enables a disabled plugin. */
void plugin_start(broker_plugin_t *p);
/*
 * Operator commands. Each returns 0 (Dcb__ControlStatus CS_OK) or another
 * CS_* value with a short reason in why. plugin_reload returning 0 means
 * the reload has begun: its end is reported by control_reload_done(), which
 * may be called before plugin_reload returns.
 */
int plugin_reload(broker_plugin_t *p, char *why, size_t whylen);
/* Loads a fresh generation as reload does, after the server's STOP. */
int plugin_renew(broker_plugin_t *p, char *why, size_t whylen);
int plugin_enable(broker_plugin_t *p, char *why, size_t whylen);
int plugin_disable(broker_plugin_t *p, char *why, size_t whylen);
/* The chain's plugin of that name (exact, else case-insensitive), or NULL. */
broker_plugin_t *plugin_find(broker_t *b, const char *name);
/* Takes the plugin out of service: its host stops, it is never restarted. */
void plugin_remove(broker_plugin_t *p);
/*
 * Whether an event for hook may go to the plugin now. Returns 0 and the
 * ready host, or the DR_* reason the plugin's default applies for.
 */
int plugin_available(broker_plugin_t *p, int hook, host_t **out);
/* Feeds the breaker with the outcome of one request step. */
void plugin_note_timeout(broker_plugin_t *p);
void plugin_note_success(broker_plugin_t *p);
/* The hooks the plugin may need: known ones, or all while unknown. */
uint32_t plugin_hooks(const broker_plugin_t *p);
const char *plugin_state_name(plugin_state_t s);

/* ---- hosts (host.c) ------------------------------------------------------- */

void host_ref(host_t *h);
void host_unref(host_t *h);
static inline int host_ready(const host_t *h)
{
    return h != NULL && h->h_state == HOST_READY;
}
/*
 * Sends one event to a ready host. hdr fields are patched into the frame
 * (request_id, plugin_ctx, deadline). Returns 0, or a DR_* reason when it
 * could not be sent (the callback is then not called).
 */
int host_send_event(host_t *h, host_call_t *c, const uint8_t *frame, size_t frame_len,
                    uint64_t plugin_ctx, const uint8_t *pkt, uint32_t pkt_len,
                    uint32_t deadline_us);
/* Takes a host down, fails its calls, and schedules the plugin's restart. */
void host_fail(host_t *h, host_fail_t why, const char *fmt, ...) BROKER_PRINTF(3, 4);
/* Graceful stop (channel closed; killed after host_stop_ms). */
void host_stop(host_t *h);
void host_stop_all(broker_t *b);
/* Whether every host process has exited and every handle is closed. */
int host_all_gone(broker_t *b);
/* A packet this host saw is gone, or its last call returned: a draining host may be done. */
void host_drain_poke(host_t *h);
/* Packet hooks the draining hosts still need from the shim. */
uint32_t host_draining_hooks(broker_t *b);

/* ---- processes (hostproc.c) ---------------------------------------------- */

int hostproc_spawn(host_t *h);
void hostproc_kill(host_t *h);
/* After the process exited (or never ran): close its handles, output after a grace period. */
void hostproc_release(host_t *h);
void hostproc_out_timer_cb(btimer_t *t);
void hostproc_close_handle(host_t *h, uv_handle_t *handle);
/* Starts reading the host's stdout/stderr. */
void hostproc_start_output(host_t *h);
/* Called four times a second: polls memory; returns 1 when the host was killed. */
int hostproc_check_memory(host_t *h);

/* host.c, called by hostproc.c */
void host_on_exit(host_t *h, int64_t status, int term_signal);
void host_handle_closed(host_t *h);
int host_send_load(host_t *h);
void host_chan_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
void host_chan_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
/* h_wr's flush failed: the channel is broken (wire_wr_err_cb). */
void host_chan_write_failed(wire_wr_t *w, int err);

#endif /* DCB_HOST_H */
