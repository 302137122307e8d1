/*
 * bench.h — dcb-bench: what dcb costs a DHCP server, measured side by side.
 *
 * One program runs the same seeded dcb-sim workload (dcbsimcore's server
 * engine, in this process) through:
 *
 *   (1)  the noop plugin loaded in-process, as the DHCP server does today;
 *   (1c) the sample chain (macfilter -> auditlog -> optinject) in-process;
 *   (2)  the shim, a dcb-broker child process and one noop host;
 *   (3)  the shim, the broker and the sample chain, one host per plugin;
 *   (4)  the raw two-hop chain (rawchain.h): same frame sizes, no protocol;
 *
 * and adds the issue-4 micro figures (the shim's hooks called directly in a
 * loop), scaling sweeps and a memory soak. The files, one concept each:
 *
 *   main.c      options, the order of the run, the self-check
 *   session.c   a broker child process with a temporary configuration,
 *               and the shim loaded in front of it
 *   workload.c  seeded dcb-sim runs: latency, rates, CPU time, memory
 *   micro.c     direct hook loops: NewPkt, notifications, unsubscribed hooks
 *   scaling.c   threads, chain length, packet size, offered load
 *   soak.c      memory over time at a steady load
 *   report.c    the table for people and the JSON for machines
 *   sys_posix.c / sys_win.c   processes, memory, CPU time, files, env
 *   rawchain_posix.c / rawchain_win.c   the physical limit
 */
#ifndef DCB_BENCH_H
#define DCB_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dcb_callout.h"
#include "dcb_hist.h"
#include "dcb_os.h"
#include "dcbsim.h"

#define BENCH_VERSION "0.1.0"
#define BENCH_PATH_MAX 1024
/* Folders are shorter, so a folder plus a file name always fits a path. */
#define BENCH_DIR_MAX 768
/* Calling threads one NewPkt loop can start (bench_micro_threads). */
#define BENCH_MAX_CALLERS 16

/* ---- options and context (main.c) ---------------------------------------- */

enum {
    BENCH_SEC_COMPARE = 1u << 0, /* the side-by-side table, configurations (1)..(4) */
    BENCH_SEC_MICRO = 1u << 1,   /* the issue-4 micro-figures */
    BENCH_SEC_SCALING = 1u << 2,
    BENCH_SEC_SOAK = 1u << 3,
};

typedef struct bench_opts {
    uint64_t o_seed;
    uint32_t o_clients;
    uint64_t o_count;   /* packets per workload run */
    uint64_t o_micro;   /* round trips per micro figure */
    uint64_t o_unsub;   /* calls of the unsubscribed hook */
    unsigned o_blocks;  /* interleaved raw/dcb blocks in the micro figures */
    unsigned o_workers; /* the emulated server's worker threads (0: CPU count + 1) */
    unsigned o_sections;
    double o_soak_s;
    double o_soak_rate;    /* packets/s offered during the soak */
    double o_soak_every_s; /* memory sample period */
    double o_step_s;       /* seconds per offered-load step */
    int o_busy_poll_us;    /* the brokers' busy_poll_us; -1: not written (their default) */
    int o_json;
    int o_smoke;
    int o_check;
    int o_verbose;
    const char *o_cpus;
} bench_opts_t;

/* Files every part needs, resolved once. */
typedef struct bench_ctx {
    bench_opts_t c_opt;
    int c_wine;                    /* running under Wine: figures not comparable */
    char c_bin[BENCH_DIR_MAX];     /* folder of dcb-bench and its siblings */
    char c_tmp[BENCH_DIR_MAX];     /* private scratch folder, removed at exit */
    char c_broker[BENCH_PATH_MAX]; /* dcb-broker executable */
    char c_shim[BENCH_PATH_MAX];   /* libdcbshim.so / dcbshim.dll */
    char c_noop[BENCH_PATH_MAX];   /* plugins */
    char c_macfilter[BENCH_PATH_MAX];
    char c_auditlog[BENCH_PATH_MAX];
    char c_optinject[BENCH_PATH_MAX];
    char c_machine[256]; /* one line about the machine */
    unsigned c_ncpu;
    unsigned c_nsession; /* sessions started so far (names their files) */
    /* What the first broker said at start about busy polling (-1: nothing yet). */
    int c_poll_us;     /* its busy_poll_us; 0 when it said nothing (it says nothing at 0) */
    int c_poll_onecpu; /* it does not poll: one CPU to run on */
    /* The workload's packet sizes (a probe run), for the raw chain and micro loops. */
    double c_newpkt_mean, c_pktsend_mean;
    size_t c_newpkt_frame, c_newpkt_answer; /* bytes on the wire, header included */
    size_t c_pktsend_frame, c_pktsend_answer;
    uint8_t c_pkt[SIM_SERVER_BUF]; /* a real DISCOVER padded to the mean NewPkt size */
    size_t c_pkt_len;
} bench_ctx_t;

/* Progress lines (stderr; quiet with --json unless -v). */
void bench_note(const bench_ctx_t *c, const char *fmt, ...)
#if defined(__MINGW32__)
    __attribute__((format(gnu_printf, 2, 3)))
#elif defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- figures ------------------------------------------------------------- */

/* A latency summary in microseconds. */
typedef struct bench_lat {
    uint64_t l_n;
    double l_p50, l_p90, l_p99, l_p999, l_max, l_mean;
} bench_lat_t;

void bench_lat_from(bench_lat_t *l, const dcb_hist_t *h);
dcb_hist_t *bench_hist_new(void);

/* Peak resident memory (KiB) of the processes of one configuration; 0: unknown. */
typedef struct bench_mem {
    uint64_t m_sim_kb;    /* the server process (the shim lives in it) */
    uint64_t m_broker_kb; /* dcb-broker */
    uint64_t m_hosts_kb;  /* all host processes together */
    uint64_t m_host_max_kb;
    unsigned m_nhosts;
    int m_sim_is_cumulative; /* the peak could not be reset before this run */
} bench_mem_t;

/* One configuration of the side-by-side table, or one scaling point. */
typedef struct bench_run {
    const char *r_key;
    const char *r_title;
    int r_ok;
    bench_lat_t r_newpkt, r_pktsend, r_notify;
    bench_lat_t r_hook[DCB_HOOK_COUNT];
    uint64_t r_packets, r_events;
    double r_secs, r_pkts_per_s, r_events_per_s;
    double r_cpu_self_s, r_cpu_other_s, r_cpu_us_per_event, r_cpu_us_per_pkt;
    bench_mem_t r_mem;
    /* What the emulated server saw: equal counts mean equal decisions. */
    uint64_t r_replies, r_replies_modified, r_plugin_drops, r_server_drops, r_violations;
    int64_t r_defaults;      /* defaults the broker reported (-1: not known) */
    int64_t r_undelivered;   /* requests that never reached the broker (-1: not known) */
    int64_t r_shim_defaults; /* default decisions the shim logged (-1: not known) */
} bench_run_t;

void bench_run_init(bench_run_t *r, const char *key, const char *title);

/* ---- a broker with the shim in front of it (session.c) ------------------- */

typedef struct bench_child bench_child_t;

typedef struct bench_session {
    const bench_ctx_t *s_ctx;
    char s_tag[32];
    char s_pipe[BENCH_PATH_MAX];
    char s_ini[BENCH_PATH_MAX];
    char s_log[BENCH_PATH_MAX];
    char s_shimlog[BENCH_PATH_MAX];
    char s_shimconf[BENCH_PATH_MAX];
    bench_child_t *s_broker;
    size_t s_nplugins;
    const char *s_plugins[16];
    char *s_first_name; /* the first plugin's name in the broker's stats */
    sim_loader_t s_loader;
    int s_loaded;
    DHCP_CALLOUT_TABLE s_tbl; /* the shim's hooks */
    /* Hook calls made through the shim, to compare with what the broker delivered. */
    uint64_t s_calls[DCB_HOOK_COUNT];
    /* From the broker's log at stop (-1: it did not say). */
    int s_stats_ok;
    int64_t s_defaults;        /* per-plugin defaults, all reasons */
    int64_t s_broker_requests; /* NewPkt + PktSend events the broker received */
    uint64_t s_delivered[DCB_HOOK_COUNT];
    /* The shim's own log: lines about default decisions (it rate-limits them). */
    int64_t s_shim_defaults;
} bench_session_t;

/*
 * Starts dcb-broker with the plugins as its chain, waits until every host
 * is ready, loads the shim the way the server would (the shim first, the
 * plugins after it) and waits until it is connected. Returns 0 or -1.
 */
int bench_session_start(bench_session_t *s, bench_ctx_t *c, const char *tag,
                        const char *const *plugins, size_t n);
/* The broker's pid, then its hosts'. Returns how many. */
size_t bench_session_pids(const bench_session_t *s, uint32_t *pids, size_t max);
/* Peak memory of the broker and its hosts now. */
void bench_session_mem(const bench_session_t *s, bench_mem_t *m);
/* Waits until the shim logged this subscribed set (bit mask test). */
int bench_session_wait_subscribed(bench_session_t *s, uint32_t must_have, uint32_t must_lack,
                                  uint32_t timeout_ms);
/* Unloads the shim (STOP), stops the broker and reads its final stats. */
void bench_session_stop(bench_session_t *s);
/*
 * NewPkt/PktSend calls through the shim that never reached the broker, or -1
 * when the broker did not log its request count.
 */
int64_t bench_session_undelivered(const bench_session_t *s);
/* Copies what the session learnt at stop into a run's figures. */
void bench_session_account(const bench_session_t *s, bench_run_t *r);

/* ---- seeded workload runs (workload.c) ------------------------------------ */

typedef struct bench_load {
    const DHCP_CALLOUT_TABLE *wl_tbl;
    uint64_t wl_count; /* packets (0: until wl_duration_ms) */
    uint64_t wl_duration_ms;
    double wl_rate;          /* packets/s offered; 0: as fast as possible */
    const uint32_t *wl_pids; /* other processes whose CPU time counts */
    size_t wl_npids;
    int wl_reset_peak;  /* reset this process's peak memory first */
    uint64_t *wl_tally; /* adds hook calls here (may be NULL) */
} bench_load_t;

int bench_workload(bench_ctx_t *c, const bench_load_t *wl, bench_run_t *r);
/* A run through our own recording hooks: the workload's packet and reply sizes. */
int bench_workload_probe(bench_ctx_t *c);
/* (1) and (1c): plugins loaded in-process by dcbsimcore's loader. */
int bench_inprocess(bench_ctx_t *c, const char *const *dlls, size_t n, bench_run_t *r,
                    const char *key, const char *title);
/* (2) and (3): through a session; the run includes broker and host figures. */
int bench_through_dcb(bench_ctx_t *c, bench_session_t *s, bench_run_t *r);
/* (4): the raw chain at the workload's NewPkt and PktSend frame sizes. */
typedef struct bench_raw {
    dcb_hist_t *rw_newpkt, *rw_pktsend;
    uint64_t rw_n;
    double rw_secs;      /* time inside the round trips */
    double rw_cpu_s;     /* ours + the relay's + the echo's */
    uint64_t rw_peak_kb; /* the larger of relay and echo */
} bench_raw_t;
int bench_raw_block(bench_ctx_t *c, bench_raw_t *rw, long n);
void bench_raw_result(const bench_raw_t *rw, bench_run_t *r);

/* Frame sizes of a NewPkt/PktSend event carrying len packet bytes, and of its answer. */
size_t bench_event_frame_size(int hook, size_t len);
size_t bench_answer_frame_size(int hook);

/* ---- direct hook loops (micro.c) ------------------------------------------ */

/* NewPkt from several calling threads at once. */
typedef struct bench_agg {
    unsigned a_threads;
    int a_ok;
    double a_per_s;    /* aggregate NewPkt/s */
    bench_lat_t a_lat; /* what each caller saw, merged */
} bench_agg_t;

typedef struct bench_micro {
    int m_ok;
    bench_lat_t m_newpkt, m_raw;
    double m_ratio_p50, m_ratio_p99;
    size_t m_frame_in, m_frame_out;
    bench_lat_t m_notify; /* all notification hooks together */
    bench_lat_t m_note[DCB_HOOK_COUNT];
    double m_unsub_ns, m_unsub_p99_ns; /* per call; p99 over 1000-call blocks */
    uint64_t m_unsub_n;
    int m_unsub_ok;
    /*
     * Aggregate NewPkt/s from 2x and 4x the CPU count of calling threads (at
     * most BENCH_MAX_CALLERS; one measurement when both come to the same). A
     * closed loop of N callers measures N/latency; the capacity is the peak.
     */
    bench_agg_t m_aggs[2];
    size_t m_naggs;         /* measurements attempted */
    unsigned m_agg_threads; /* the peak's calling threads; 0: no measurement ran */
    double m_agg_per_s;     /* the peak: the higher aggregate NewPkt/s */
    bench_lat_t m_agg_lat;  /* the latency each caller saw at the peak */
} bench_micro_t;

/*
 * NewPkt + final drop through the session's shim, one thread, interleaved
 * with raw chain blocks of the same frame sizes. pkt/len: the packet.
 */
int bench_micro_newpkt(bench_ctx_t *c, bench_session_t *s, const uint8_t *pkt, size_t len,
                       uint64_t n, unsigned blocks, bench_lat_t *dcb, bench_lat_t *raw,
                       double *per_s);
/* Notifications on the calling thread (a packet's HandleOptions, AddressOffer, ...). */
int bench_micro_notify(bench_ctx_t *c, bench_session_t *s, uint64_t n, bench_micro_t *m);
/* An unsubscribed hook (the session's chain must not subscribe to AddressDel). */
int bench_micro_unsub(bench_ctx_t *c, bench_session_t *s, uint64_t n, bench_micro_t *m);
/* NewPkt from several threads at once; aggregate NewPkt/s and the merged latency. */
int bench_micro_threads(bench_ctx_t *c, bench_session_t *s, unsigned threads, uint64_t n,
                        double *per_s, bench_lat_t *lat);
/* A real DISCOVER from the seeded traffic, padded with a private option to len bytes. */
size_t bench_make_packet(const bench_ctx_t *c, uint8_t *buf, size_t len);

/* ---- scaling sweeps (scaling.c) -------------------------------------------- */

typedef struct bench_point {
    double p_x;          /* threads, plugins, bytes or offered packets/s */
    double p_per_s;      /* NewPkt/s (packets/s for offered load) */
    bench_lat_t p_lat;   /* NewPkt as the calling thread saw it */
    bench_lat_t p_raw;   /* the raw chain at the same size (size sweep) */
    double p_pkts_per_s; /* full-workload packets/s (chain sweep) */
    bench_lat_t p_pktsend, p_notify;
    int p_ok;
} bench_point_t;

typedef struct bench_scaling {
    bench_point_t sc_threads[8];
    size_t sc_nthreads;
    bench_point_t sc_chain[8];
    size_t sc_nchain;
    bench_point_t sc_size[8];
    size_t sc_nsize;
    bench_point_t sc_load[12];
    size_t sc_nload;
    int sc_knee; /* index of the first offered-load step that bent, or -1 */
    double sc_saturation;
} bench_scaling_t;

/* Threads, packet size and offered load, through a session with one noop plugin. */
int bench_scaling(bench_ctx_t *c, bench_session_t *noop, bench_scaling_t *sc);
/* Chain length: a session of its own per length (call with no session open). */
int bench_scaling_chain(bench_ctx_t *c, bench_scaling_t *sc);

/* ---- soak (soak.c) ------------------------------------------------------------ */

#define BENCH_SOAK_SERIES 3
typedef struct bench_soak {
    int k_ok;
    double k_secs, k_rate, k_pkts_per_s;
    size_t k_n;
    double *k_t;                       /* seconds since start */
    uint64_t *k_kb[BENCH_SOAK_SERIES]; /* resident KiB: sim, broker, hosts */
    double k_slope[BENCH_SOAK_SERIES]; /* KiB per minute after warm-up */
    double k_mean[BENCH_SOAK_SERIES];
    int k_flat[BENCH_SOAK_SERIES];
    int64_t k_shim_defaults; /* default decisions the shim logged */
    int64_t k_undelivered;   /* requests that never reached the broker */
    bench_lat_t k_newpkt;
} bench_soak_t;

int bench_soak(bench_ctx_t *c, bench_soak_t *k);
void bench_soak_free(bench_soak_t *k);

/* ---- output (report.c) ---------------------------------------------------- */

typedef struct bench_results {
    bench_run_t rs_run[5]; /* 1, 1c, 2, 3, 4 */
    size_t rs_nrun;
    bench_micro_t rs_micro;
    int rs_have_scaling;
    bench_scaling_t rs_scaling;
    int rs_have_soak;
    bench_soak_t rs_soak;
    double rs_wall_s;
    double rs_load_start, rs_load_end; /* 1-minute load average; -1: unknown */
    char rs_command[512];
} bench_results_t;

void bench_report_table(FILE *f, const bench_ctx_t *c, const bench_results_t *rs);
/* Returns a malloc'd JSON document, or NULL. */
char *bench_report_json(const bench_ctx_t *c, const bench_results_t *rs);

/* ---- the platform (sys_posix.c, sys_win.c) ---------------------------------- */

/* The folder of the running executable. */
int bench_sys_exe_dir(char *out, size_t cap);
/* Sets (value NULL: removes) an environment variable for us and our children. */
int bench_sys_setenv(const char *name, const char *value);
/* A new private folder for temporary files; bench_sys_rmdir removes it and its files. */
int bench_sys_mkdtemp(char *out, size_t cap);
void bench_sys_rmdir(const char *dir);
/* The event endpoint name for a session (a socket in dir / a named pipe). */
void bench_sys_pipe_name(char *out, size_t cap, const char *dir, const char *tag);
const char *bench_sys_dll_suffix(void);
const char *bench_sys_exe_suffix(void);
const char *bench_sys_shim_name(void);

/* A child process with stdout and stderr appended to log. */
int bench_child_spawn(bench_child_t **out, const char *exe, const char *const *argv,
                      const char *log);
uint32_t bench_child_pid(const bench_child_t *ch);
int bench_child_running(bench_child_t *ch);
/*
 * Asks the child to stop (SIGTERM; Windows: it and its own children are
 * terminated), waits up to timeout_ms, then kills. Returns 1 when it stopped
 * cleanly (and so could log its final figures), 0 otherwise. Frees ch.
 */
int bench_child_stop(bench_child_t *ch, uint32_t timeout_ms);

/*
 * Direct children of a process whose executable is image (a file name such
 * as "dcb-broker.exe"; NULL: any). Returns how many were stored.
 */
size_t bench_sys_children(uint32_t pid, const char *image, uint32_t *out, size_t max);

typedef struct bench_procstat {
    uint64_t ps_cpu_ns; /* user + system */
    uint64_t ps_rss_kb;
    uint64_t ps_peak_kb;
} bench_procstat_t;

/* pid 0: this process. Returns 0 or -1. */
int bench_sys_procstat(uint32_t pid, bench_procstat_t *st);
/* Resets this process's peak memory; returns 1 when that is possible. */
int bench_sys_reset_peak(void);
int bench_sys_is_wine(void);
/* Restricts this process (and so its children) to a CPU list like "0" or "0,1". */
int bench_sys_pin(const char *cpus);
/* A line about the machine: CPU model, count, OS. */
void bench_sys_machine(char *out, size_t cap, unsigned *ncpu);
/* The 1-minute load average, or -1 where the OS has none. */
double bench_sys_loadavg(void);
/* Reads a whole small file into a malloc'd NUL-terminated buffer. */
char *bench_sys_read_file(const char *path, size_t *len);
int bench_sys_write_file(const char *path, const char *text);

#endif /* DCB_BENCH_H */
