/*
 * e2e.h — helpers for the end-to-end tests: the real dcb-broker and dcb-sim
 * (with the real shim and plugins) as child processes, and what they leave
 * behind (the broker's log, dcb-sim's report and record, the plugins' own
 * files, and `dcbctl stats --json` when the broker serves its control pipe).
 *
 * Everything a child is given (paths, pipe names) is in the child's native
 * form: under Wine a Unix path becomes "Z:\...", so that the shim's ChainDlls
 * and the broker's configured chain name the same files.
 */
#ifndef E2E_H
#define E2E_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "simtest.h"

#ifdef _WIN32
#define E2E_WINDOWS 1
#else
#define E2E_WINDOWS 0
#endif

/* Set when the test binary was built with the sanitizers (CMake defines it). */
#ifdef E2E_SANITIZE
#define E2E_SANITIZED 1
#else
#define E2E_SANITIZED 0
#endif

/* ---- small things ----------------------------------------------------------- */

uint64_t e2e_now_ms(void);
void e2e_sleep_ms(unsigned ms);
/* The native form of a path, in a rotating static buffer (use it at once). */
const char *e2e_native(const char *path);
/* printf into a fresh heap string. */
char *e2e_fmt(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/*
 * The same, kept until e2e_keep_free: for names a test holds on to. Every
 * test ends with e2e_keep_free (its teardown, which runs also when an
 * assertion failed), and that also stops and frees every broker and every
 * dcb-sim the test started and frees every report and plugin setting it got:
 * a failed test leaves no process behind.
 */
const char *e2e_keep(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
void e2e_keep_free(void);
/* Prints a line that stands out in the test output ("e2e: ..."). */
void e2e_note(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Occurrences of needle in text (0 for NULL text). */
int e2e_count(const char *text, const char *needle);
/* Lines of text that contain both a and b (b may be NULL). */
int e2e_count_lines(const char *text, const char *a, const char *b);
/* Copies a file (plugins are copied to load one DLL twice under two names). */
int e2e_copy_file(const char *from, const char *to);

/* A growable NULL-terminated list of strings (arguments, environment). */
typedef struct e2e_list {
    char **l_items;
    size_t l_n;
    size_t l_cap;
} e2e_list_t;

void e2e_list_add(e2e_list_t *l, const char *s);
void e2e_list_addf(e2e_list_t *l, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
const char *const *e2e_list_argv(e2e_list_t *l);
void e2e_list_free(e2e_list_t *l);

/* ---- child processes ------------------------------------------------------- */

typedef struct e2e_proc {
    uv_loop_t p_loop;
    uv_process_t p_proc;
    int p_started;
    int p_exited;
    int64_t p_status;
    int p_signal;
    int p_pid;
    char p_out[1024]; /* where stdout went */
    char p_err[1024]; /* where stderr went */
} e2e_proc_t;

/*
 * Starts exe with args (NULL-terminated, without argv[0]) and the current
 * environment plus env ("KEY=VALUE", may be NULL); stdout and stderr go to
 * the files named. Returns 0 or -1.
 */
int e2e_spawn(e2e_proc_t *p, const char *exe, const char *const *args, const char *const *env,
              const char *out_path, const char *err_path);
/* Whether it has exited (runs its loop once). */
int e2e_exited(e2e_proc_t *p);
/* Waits up to timeout_ms for it to exit; returns 1 when it did. */
int e2e_wait(e2e_proc_t *p, int timeout_ms);
/* SIGTERM / SIGKILL (TerminateProcess on Windows). */
void e2e_signal(e2e_proc_t *p, int signum);
/* Kills it if it still runs, waits, and releases the handles. */
void e2e_release(e2e_proc_t *p);

/* ---- the broker ----------------------------------------------------------------- */

typedef struct e2e_broker {
    e2e_proc_t b_proc;
    char b_dir[1024];
    char b_pipe[256];
    char b_ctl[256];
    char b_sockdir[128]; /* POSIX: the private folder of both sockets */
    char b_cfg[1200];
    char b_log[1200];
    cJSON *b_stats; /* dcbctl stats --json, when e2e_broker_snapshot got it */
    char *b_final_log;
    int b_gen;
} e2e_broker_t;

/*
 * Writes the broker's configuration in dir ([broker] with a fresh pipe and
 * control pipe, chain = the plugin paths, then extra_ini verbatim), starts
 * dcb-broker with env added to its environment (the hosts inherit it: that
 * is how the plugins get their settings) and waits until it listens and
 * every plugin of the chain reports ready. Returns the broker, or NULL
 * (with the log printed). It lives until e2e_keep_free.
 */
e2e_broker_t *e2e_broker_start(const char *dir, const char *const *chain, const char *extra_ini,
                               const char *const *env);
/* Starts it again, same configuration and pipe (after e2e_broker_kill). */
int e2e_broker_restart(e2e_broker_t *b, const char *const *chain, const char *const *env);
/*
 * Graceful stop (SIGTERM), and its exit status (0: clean). On Windows, where
 * there is no SIGTERM, TerminateProcess; 0 if it was still running.
 */
int e2e_broker_stop(e2e_broker_t *b);
/* SIGKILL / TerminateProcess: the broker dies without any cleanup. */
void e2e_broker_kill(e2e_broker_t *b);
int e2e_broker_running(e2e_broker_t *b);
/* The log so far (heap string; free it). */
char *e2e_broker_log(e2e_broker_t *b);
/* Waits until the log holds needle at least n times; returns 1, or 0 on timeout. */
int e2e_broker_wait_log(e2e_broker_t *b, const char *needle, int n, int timeout_ms);
/* Host pids the log names for a plugin ("plugin NAME: host pid N started"), in order. */
int e2e_broker_host_pids(e2e_broker_t *b, const char *plugin, int *pids, int max);
void e2e_broker_dump_log(e2e_broker_t *b);

/*
 * Takes `dcbctl stats --json` from the broker's control pipe into b_stats.
 * Returns 0, or -1 when there is no dcbctl or the broker does not answer.
 */
int e2e_broker_snapshot(e2e_broker_t *b);

/*
 * A per plugin × hook counter: "calls", "pass", "drop", "modified", or
 * "defaults.timeout", "defaults.crash", "defaults.breaker", ... and
 * "defaults" for their sum. From the snapshot when there is one, else from
 * the summary the broker logs when it stops. -1 when neither has it.
 */
double e2e_plugin_counter(e2e_broker_t *b, const char *plugin, const char *hook, const char *key);
/* The shim's counters as the broker received them (snapshot only); -1 if unknown. */
double e2e_shim_counter(e2e_broker_t *b, const char *hook, const char *key);

/* ---- dcb-sim ------------------------------------------------------------------- */

/* The settings for plugins that most tests share: files in dir, and env entries. */
typedef struct e2e_plugins {
    char pl_macfilter_ini[1024];
    char pl_optinject_ini[1024];
    char pl_auditlog_ini[1024];
    char pl_audit_file[1024];
    e2e_list_t pl_env; /* DCB_MACFILTER_CONFIG=... etc. */
} e2e_plugins_t;

/*
 * Writes macfilter's deny list, optinject's rules and auditlog's settings
 * (the log in dir/audit_name) into dir. Lives until e2e_keep_free.
 */
e2e_plugins_t *e2e_plugins_setup(const char *dir, const char *audit_name);

/* The native path of a built plugin ("macfilter" -> ".../bin/macfilter.so"). */
const char *e2e_plugin(const char *name);
const char *e2e_shim(void);

/*
 * Runs dcb-sim to completion (its output and the shim's log go to dir).
 * dlls: plugin paths in CalloutDlls order; with broker != NULL the shim is
 * listed first and talks to that broker, with deadline_ms for NewPkt and
 * PktSend. extra: more dcb-sim arguments. The JSON report is parsed into
 * *json (NULL when stdout is not JSON; kept until e2e_keep_free).
 */
int e2e_sim_run(const char *dir, const char *const *dlls, e2e_broker_t *broker,
                unsigned deadline_ms, const char *const *extra, const char *const *env,
                int timeout_ms, st_result_t *r, cJSON **json);
/* The same, started in the background (NULL if it could not be); e2e_sim_finish waits. */
e2e_proc_t *e2e_sim_start(const char *dir, const char *const *dlls, e2e_broker_t *broker,
                          unsigned deadline_ms, const char *const *extra, const char *const *env);
/* Waits (killing it after timeout_ms), parses, and frees p. */
int e2e_sim_finish(e2e_proc_t *p, int timeout_ms, st_result_t *r, cJSON **json);

/* Calls of a hook that waited at least min_ns (dcb-sim's "buckets"). */
double e2e_sim_calls_over(const cJSON *json, const char *hook, double min_ns);

/* ---- records ------------------------------------------------------------------- */

typedef struct e2e_recdiff {
    long d_n;           /* entries in each (-1: unreadable or different counts) */
    long d_diffs;       /* entries that differ */
    long d_first;       /* first differing entry, -1 if none */
    long d_last;        /* last differing entry, -1 if none */
    long d_only_undrop; /* differing entries that are "plugin-drop" in a and not in b */
} e2e_recdiff_t;

/* Compares two --record files entry by entry; prints the first differences. */
void e2e_record_diff(const char *a, const char *b, e2e_recdiff_t *d);
/* Entries of a record with this outcome in [from, to). */
long e2e_record_count(const char *path, const char *outcome, long from, long to);

#endif /* E2E_H */
