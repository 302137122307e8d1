/*
 * broker.h — the supervisor role of dcb-broker: configuration, the broker
 * object, and the small shared pieces (lists, hash table, timer queue,
 * frames over libuv streams) that shimconn.c, chain.c and host.c build on.
 *
 * The process topology in one place:
 *
 *   shim connections (shimconn.c) ──► chain (chain.c) ──► plugin hosts (host.c,
 *   hostproc.c), each a re-executed `dcb-broker --host` (host_main.c)
 *
 * Everything in the supervisor runs on one libuv loop thread; nothing here
 * is thread-safe and nothing needs to be. The supervisor never loads plugin
 * code.
 */
#ifndef DCB_BROKER_H
#define DCB_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "dcb_callout.h"
#include "dcb_hist.h"
#include "dcb_os.h"
#include "dcb_proto.h"

#define BROKER_VERSION "0.1.0"

#ifdef _WIN32
#define BROKER_DEFAULT_PIPE "\\\\.\\pipe\\dcb-broker"
#define BROKER_DEFAULT_CONTROL_PIPE "\\\\.\\pipe\\dcb-control"
#else
#define BROKER_DEFAULT_PIPE "/run/dcb/broker.sock"
#define BROKER_DEFAULT_CONTROL_PIPE "/run/dcb/control.sock"
#endif

#if defined(__MINGW32__)
#define BROKER_PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#elif defined(__GNUC__)
#define BROKER_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BROKER_PRINTF(f, a)
#endif

#define broker_container_of(ptr, type, member)                                                     \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- intrusive doubly-linked list (circular, with a head node) ----------- */

typedef struct blist {
    struct blist *next;
    struct blist *prev;
} blist_t;

static inline void blist_init(blist_t *h)
{
    h->next = h->prev = h;
}

static inline int blist_empty(const blist_t *h)
{
    return h->next == h;
}

static inline void blist_add_tail(blist_t *h, blist_t *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

static inline void blist_del(blist_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

/* ---- hash table keyed by two 64-bit words (htab.c) ----------------------- */

typedef struct htab_node {
    struct htab_node *hn_next;
    uint64_t hn_k1;
    uint64_t hn_k2;
} htab_node_t;

typedef struct htab {
    htab_node_t **ht_buckets;
    size_t ht_mask;
    size_t ht_count;
} htab_t;

int htab_init(htab_t *t, size_t initial);
void htab_free(htab_t *t);
/* The node must not be in the table; grows the table as needed. */
void htab_insert(htab_t *t, htab_node_t *n, uint64_t k1, uint64_t k2);
htab_node_t *htab_find(const htab_t *t, uint64_t k1, uint64_t k2);
void htab_remove(htab_t *t, htab_node_t *n);

/* ---- timer queue (timerq.c): many deadlines, one uv_timer_t ------------ */

typedef struct broker broker_t;
typedef struct btimer btimer_t;
typedef void (*btimer_cb)(btimer_t *t);

struct btimer {
    uint64_t bt_due_ns;
    size_t bt_idx; /* position in the heap; SIZE_MAX when not queued */
    btimer_cb bt_cb;
};

void btimer_init(btimer_t *t, btimer_cb cb);
static inline int btimer_active(const btimer_t *t)
{
    return t->bt_idx != (size_t)-1;
}
/* (Re)arms t to fire at due_ns (dcb_now_ns clock). */
void btimer_start(broker_t *b, btimer_t *t, uint64_t due_ns);
void btimer_stop(broker_t *b, btimer_t *t);
int timerq_init(broker_t *b);
void timerq_close(broker_t *b);

/* ---- frames over libuv streams (wire.c) --------------------------------- */

typedef struct wire_rd {
    uint8_t *wr_buf;
    size_t wr_len;
    size_t wr_cap;
} wire_rd_t;

void wire_rd_free(wire_rd_t *rd);
/* The libuv alloc callback body: room at the end of the buffer. */
void wire_rd_alloc(wire_rd_t *rd, uv_buf_t *buf);
/*
 * After a read: returns 1 and the frame's extent when a whole frame is
 * buffered, 0 when more bytes are needed, or a DCB_E_* error as soon as the
 * header is known to be bad (checked before the payload is buffered).
 */
int wire_rd_next(wire_rd_t *rd, const dcb_limits_t *lim, size_t *frame_len);
void wire_rd_consume(wire_rd_t *rd, size_t n);

/*
 * Writing: one wire_wr_t per stream. wire_send only encodes the frame at
 * the end of the stream's buffer and puts it on the broker's pending list;
 * wire_flush_all, run by the loop once per iteration, writes each pending
 * stream's frames at once (see wire.c).
 */
typedef struct wire_wr wire_wr_t;
/*
 * A flush of w failed with err (a negative libuv error) and its frames are
 * gone. Called from wire_flush_all with w off the pending list; it may close
 * the stream and free w.
 */
typedef void (*wire_wr_err_cb)(wire_wr_t *w, int err);

struct wire_wr {
    uv_stream_t *ww_stream;
    uint8_t *ww_buf; /* encoded frames not yet handed to the stream */
    size_t ww_len;
    size_t ww_cap;
    blist_t ww_link; /* b_wpending, while ww_pending */
    int ww_pending;
    wire_wr_err_cb ww_on_error;
};

/* s must stay open until wire_wr_free. A zeroed wire_wr_t may be freed too. */
void wire_wr_init(wire_wr_t *w, uv_stream_t *s, wire_wr_err_cb on_error);
/*
 * Encodes msg as one frame at the end of w's buffer and marks w pending;
 * no system call. Returns 0, a negative libuv error (UV_ENOMEM; UV_EPIPE
 * after wire_wr_free), or a DCB_E_* encoding error.
 */
int wire_send(broker_t *b, wire_wr_t *w, uint8_t type, const ProtobufCMessage *msg);
/*
 * Writes everything buffered now: uv_try_write, the rest through one
 * uv_write request that owns those bytes until its callback. Takes w off
 * the pending list. Returns 0, or a negative libuv error (what was buffered
 * is then dropped, perhaps after part of it was written).
 */
int wire_wr_flush(wire_wr_t *w);
/* Bytes not yet written: buffered here, plus queued in the stream. */
size_t wire_wr_queued(const wire_wr_t *w);
/* Drops what is buffered and leaves the pending list; before the stream is closed. */
void wire_wr_free(wire_wr_t *w);
/*
 * The flush points: a uv_check_t (right after the I/O poll) and a
 * uv_prepare_t (right before the loop blocks) that both run wire_flush_all.
 * wire_flush_stop closes both, once no host and no shim connection is left;
 * whatever an owner still buffers after that, its wire_wr_free drops.
 */
int wire_flush_start(broker_t *b);
void wire_flush_stop(broker_t *b);
/* Flushes every pending stream; O(1) when none is pending. */
void wire_flush_all(broker_t *b);

/* ---- configuration (config.c) ------------------------------------------- */

typedef enum broker_fail { BROKER_FAIL_OPEN = 0, BROKER_FAIL_CLOSED = 1 } broker_fail_t;

/* The largest crash_loop_limit (failures remembered per plugin). */
#define BROKER_CRASH_LOOP_MAX 64

/* A plugin's resolved policy. */
typedef struct broker_policy {
    uint32_t pol_timeout_ms[DCB_HOOK_COUNT];
    uint8_t pol_fail[DCB_HOOK_COUNT];
    uint32_t pol_memory_mb; /* 0: no cap */
    uint32_t pol_threads;
    uint32_t pol_restart_backoff_ms;
    uint32_t pol_restart_backoff_max_ms;
    uint32_t pol_crash_loop_limit;
    uint32_t pol_crash_loop_window_s;
    uint32_t pol_hang_ms;
    uint32_t pol_breaker_failures; /* 0: no breaker */
    uint32_t pol_breaker_ms;
    uint32_t pol_breaker_max_ms;
} broker_policy_t;

/* Integer keys of a plugin section; per-hook keys follow their base key. */
enum {
    PK_TIMEOUT = 0,
    PK_TIMEOUT_HOOK, /* + hook */
    PK_FAIL = PK_TIMEOUT_HOOK + DCB_HOOK_COUNT,
    PK_FAIL_HOOK, /* + hook */
    PK_MEMORY_MB = PK_FAIL_HOOK + DCB_HOOK_COUNT,
    PK_THREADS,
    PK_RESTART_BACKOFF_MS,
    PK_RESTART_BACKOFF_MAX_MS,
    PK_CRASH_LOOP_LIMIT,
    PK_CRASH_LOOP_WINDOW_S,
    PK_HANG_MS,
    PK_BREAKER_FAILURES,
    PK_BREAKER_MS,
    PK_BREAKER_MAX_MS,
    PK_COUNT
};

typedef struct broker_plugin_conf {
    char *pc_name;        /* section name; NULL for [defaults] */
    char *pc_dll;         /* optional */
    char *pc_group;       /* optional (isolation groups are not implemented yet) */
    char *pc_write_paths; /* Linux: where the plugin may write (Landlock); NULL: anywhere */
    uint32_t pc_val[PK_COUNT];
    uint8_t pc_set[PK_COUNT];
} broker_plugin_conf_t;

typedef struct broker_config {
    char *cfg_path; /* NULL: built-in defaults */
    char *cfg_pipe;
    char *cfg_control_pipe;
    char *cfg_log_file;
    char *cfg_pipe_allow;    /* event pipe clients besides the built-in ones (pipesec.h) */
    char *cfg_control_allow; /* control pipe clients besides the built-in ones */
    char *cfg_host_user;     /* Linux: the user a root broker's hosts run as */
    int cfg_log_level;
    uint32_t cfg_max_packet;
    uint32_t cfg_max_connections;
    uint32_t cfg_reorder_hold_ms;
    uint32_t cfg_packet_idle_s;
    uint32_t cfg_max_outstanding;
    uint32_t cfg_host_stop_ms;
    uint32_t cfg_output_line_max;
    uint32_t cfg_output_lines_per_s;
    uint32_t cfg_drain_ms;     /* how long an old generation may finish its packets */
    uint32_t cfg_busy_poll_us; /* poll instead of sleeping while events come this close; 0: never */
    char **cfg_chain;          /* names or DLL paths, in order */
    size_t cfg_n_chain;
    int cfg_chain_line; /* where chain was set, for errors */
    broker_plugin_conf_t cfg_defaults;
    broker_plugin_conf_t *cfg_plugins;
    size_t cfg_n_plugins;
} broker_config_t;

/* Fills cfg with the documented defaults. */
void config_defaults(broker_config_t *cfg);
/*
 * Parses an INI file into cfg (already holding defaults). On error, returns
 * a negative value and writes "FILE:LINE: message" lines into err.
 */
int config_load(broker_config_t *cfg, const char *path, char *err, size_t errlen);
void config_free(broker_config_t *cfg);
const broker_plugin_conf_t *config_find_plugin(const broker_config_t *cfg, const char *name);
/* Resolves the policy of a plugin (its section, then [defaults], then built-ins). */
void config_policy(const broker_config_t *cfg, const broker_plugin_conf_t *pc,
                   broker_policy_t *pol);
/* The plugin name of a DLL path: its basename without extension. */
void config_plugin_name(const char *path, char *out, size_t outlen);

/* ---- stats (stats.c) ------------------------------------------------------ */

#define BROKER_DR_COUNT 9 /* Dcb__DefaultReason values 0..8 */

typedef struct broker_hook_stats {
    uint64_t hs_calls; /* events handed to the plugin's host */
    uint64_t hs_pass;
    uint64_t hs_drop;
    uint64_t hs_modified;
    uint64_t hs_late; /* results that came after the plugin's timeout */
    uint64_t hs_defaults[BROKER_DR_COUNT];
    dcb_hist_t hs_latency; /* broker send -> result, ns */
} broker_hook_stats_t;

typedef struct broker_plugin_stats {
    broker_hook_stats_t ps_hooks[DCB_HOOK_COUNT];
    uint32_t ps_restarts;
    uint32_t ps_failures;
    uint32_t ps_reloads;
} broker_plugin_stats_t;

/* What one shim instance last reported for one hook: totals since it loaded. */
typedef struct shim_hook_totals {
    uint64_t st_calls;
    uint64_t st_unsubscribed;
    uint64_t st_def_timeout;
    uint64_t st_def_no_broker;
    uint64_t st_def_breaker;
    uint64_t st_def_bad_reply;
    uint64_t st_def_other;
    uint64_t st_queue_full;
    uint64_t st_lost;
    uint64_t st_waited_sum;
    uint64_t st_waited_max;
} shim_hook_totals_t;

/* A histogram in sparse form (the wire's), for baselines. */
typedef struct sparse_hist {
    uint32_t *sp_bucket;
    uint64_t *sp_count;
    size_t sp_n;
} sparse_hist_t;

/*
 * A shim instance's figures. The shim sends running totals; what the
 * broker reports is the last totals minus the baseline taken at the last
 * CC_RESET_STATS (zero until one), so a reset never needs the shim's help.
 */
typedef struct shim_stats {
    int ss_have; /* a ShimStats came */
    shim_hook_totals_t ss_last[DCB_HOOK_COUNT];
    shim_hook_totals_t ss_base[DCB_HOOK_COUNT];
    dcb_hist_t *ss_waited; /* DCB_HOOK_COUNT, as last reported (ns) */
    sparse_hist_t ss_base_waited[DCB_HOOK_COUNT];
} shim_stats_t;

typedef struct broker_plugin broker_plugin_t;
typedef struct shiminst shiminst_t;
void stats_log_plugin(const broker_plugin_t *p);
const char *stats_reason_name(int reason);

/* ---- the broker ------------------------------------------------------------ */

typedef struct chain chain_t;
typedef struct chain_req chain_req_t;
typedef struct chain_ev chain_ev_t;
typedef struct shimconn shimconn_t;

typedef enum broker_server_state {
    BROKER_SERVER_RUNNING = 0,
    BROKER_SERVER_PAUSED,
    BROKER_SERVER_STOPPED
} broker_server_state_t;

/* One shim instance (a loaded dcbshim), across its connections. */
struct shiminst {
    blist_t sh_link;
    uint64_t sh_id;
    uint32_t sh_pid;
    uint32_t sh_conns;
    uint64_t sh_stats_ns; /* when ShimStats last came */
    uint64_t sh_reconnects;
    uint64_t sh_packets_live;
    shim_stats_t sh_stats;
};

struct broker {
    uv_loop_t *b_loop;
    broker_config_t *b_cfg;
    dcb_limits_t b_lim_shim;
    dcb_limits_t b_lim_host;
    dcb_arena_t b_arena; /* decode scratch: every frame is handled before the next */
    void *b_arena_mem;
    dcb_arena_t b_enc_arena; /* re-decoding stored events to forward them to hosts */
    void *b_enc_arena_mem;
    char b_exe[4096];
    int b_stopping;
    int b_shutdown_armed; /* begin_shutdown is done: the last host's exit may end the loop */
    uint64_t b_start_ns;

    /* shimconn.c */
    struct pipesec *b_server; /* the event pipe (pipesec.h) */
    int b_server_open;
    blist_t b_conns;
    uint32_t b_nconns;
    blist_t b_insts;
    uint32_t b_subscribed; /* last pushed set */
    uint64_t b_next_conn_id;

    /* chain.c */
    chain_t *b_chain;
    blist_t b_plugins; /* every live broker_plugin_t, in or out of the chain */
    uint32_t b_nhosts; /* host_t objects not yet freed */
    blist_t b_hosts;   /* all of them */
    htab_t b_packets;
    blist_t b_pkt_lru; /* packets, least recently active first */
    blist_t b_runq;    /* requests to advance (see chain_run) */
    blist_t b_reqs;    /* every request in progress */
    btimer_t b_age_timer;
    broker_server_state_t b_server_state;
    uint64_t b_next_request_id;

    /* timerq.c */
    uv_timer_t b_timer;
    int b_timer_open;
    btimer_t **b_heap;
    size_t b_heap_len;
    size_t b_heap_cap;

    /* wire.c: streams with frames to write, flushed once per loop iteration */
    blist_t b_wpending;
    uv_check_t b_wcheck;
    uv_prepare_t b_wprepare;
    int b_wflush_open;
    /* wire.c: busy polling while events come close together */
    uv_idle_t b_poll;
    int b_polling;
    int b_poll_ok;           /* more than one CPU to run on */
    uint64_t b_poll_last_ns; /* the last loop iteration that wrote anything */
    uint64_t b_poll_gap_ns;  /* moving average of the time between such iterations */

    /* broker_main.c */
    uv_signal_t b_sigint;
    uv_signal_t b_sigterm;
    btimer_t b_shutdown_timer;

    /* control.c */
    struct pipesec *b_ctl_server; /* the control pipe (pipesec.h) */
    int b_ctl_open;
    blist_t b_ctl_conns;
    uint32_t b_nctl;
    double b_ctl_tokens; /* budget of report requests (see control.c) */
    uint64_t b_ctl_tokens_ns;
    uint64_t b_next_ctl_id;

    /* counters (the log at exit, and the control pipe's StatsReport) */
    uint64_t b_stats_epoch_ns; /* when they started: start, or the last reset */
    uint64_t b_ctl_refused;
    uint64_t b_violations;
    uint64_t b_reorder_timeouts;
    uint64_t b_late_events;
    uint64_t b_orphan_events;
    uint64_t b_aged_packets;
    uint64_t b_requests;
};

/* shimconn.c */
int shimconn_listen(broker_t *b);
void shimconn_close_all(broker_t *b);
/* The request a REQUEST connection waits for, and its answer. */
void shimconn_request_begin(shimconn_t *c, chain_ev_t *ev);
void shimconn_answer(shimconn_t *c, uint8_t type, const ProtobufCMessage *msg);
void shimconn_request_done(shimconn_t *c);
/* Pushes Subscription to every NOTIFY connection when the set changed. */
void shimconn_push_subscription(broker_t *b);
void shimconn_free_instances(broker_t *b);

/* stats.c */
void stats_log_all(broker_t *b);
/* A ShimStats frame from one of the instance's connections. */
void stats_shim_update(shiminst_t *si, const Dcb__ShimStats *s);
void stats_shim_release(shiminst_t *si);
/* CC_RESET_STATS: every plugin's counters, the broker's, and the shims' baselines. */
void stats_reset(broker_t *b);
/*
 * CC_STATS: fills r (entries and shim arrays heap-allocated; release with
 * stats_report_free). Histograms are sparse; coarsen_shift > 0 merges
 * 2^shift neighbouring buckets of each power of two (a smaller report, less
 * precise), for when the exact one would not fit in a control frame.
 */
int stats_report(broker_t *b, Dcb__StatsReport *r, int coarsen_shift);
void stats_report_free(Dcb__StatsReport *r);

/* control.c: the control endpoint (dcbctl) */
int control_listen(broker_t *b);
void control_close_all(broker_t *b);
/* A reload a control request waits for has ended (ok, or failed and why). */
void control_reload_done(broker_plugin_t *p, int ok, const char *why);

/* broker_main.c */
void broker_shutdown_check(broker_t *b);

/* host_main.c: the --host role */
int host_main(int argc, char **argv);

#endif /* DCB_BROKER_H */
