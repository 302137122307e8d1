/*
 * ops.h — helpers for the operations tests: a real dcb-broker with its
 * control endpoint (tests/broker's tb.h starts it and plays the shim), a
 * control client built on the codec, the real dcbctl and dcb-sim (with the
 * real shim) as child processes, and the files they leave behind.
 */
#ifndef DCB_OPS_H
#define DCB_OPS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dcb_hist.h"

#include "tb.h"

#ifdef _WIN32
#define OPS_WINE 1
#define OPS_EXE ".exe"
#define OPS_DLL ".dll"
#else
#define OPS_WINE 0
#define OPS_EXE ""
#define OPS_DLL ".so"
#endif

/* A NULL-terminated list of strings, written in place. */
#define OPS_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- files --------------------------------------------------------------------- */

/* A fresh folder for one test (absolute, in the test's working directory). */
const char *ops_scratch(const char *test);
/* dir/name, in a rotating static buffer. */
const char *ops_path(const char *dir, const char *name);
/* The form a child process needs (Z:\... under Wine). */
const char *ops_native(const char *path);
int ops_write_file(const char *path, const char *text);
/*
 * Puts a copy of src at dst the way an administrator replaces a DLL that
 * is loaded: the file in use is renamed aside (it stays mapped where it is
 * loaded), the new one is copied in under the old name.
 */
int ops_replace_file(const char *dst, const char *src);
/* The names in dir that start with prefix (a NULL-terminated list to free with ops_free_list). */
char **ops_list_dir(const char *dir, const char *prefix);
void ops_free_list(char **list);
void ops_setenv(const char *name, const char *value);

/* ---- child processes ----------------------------------------------------------- */

typedef struct ops_proc {
    uv_loop_t pr_loop;
    uv_process_t pr_proc;
    int pr_started;
    int pr_exited;
    int64_t pr_status;
    int pr_signal;
    char pr_out[1024];
    char pr_err[1024];
} ops_proc_t;

/* Starts exe (args without argv[0]) with this process's environment; output to files. */
int ops_spawn(ops_proc_t *p, const char *exe, const char *const *args, const char *out_path,
              const char *err_path);
/* The same as another user (uid >= 0, its gid the same number; POSIX, as root only). */
int ops_spawn_as(ops_proc_t *p, const char *exe, const char *const *args, const char *out_path,
                 const char *err_path, int uid);
int ops_proc_wait(ops_proc_t *p, int timeout_ms); /* 1 when it exited */
void ops_proc_release(ops_proc_t *p);             /* kills it if it still runs */

/* ---- the broker ------------------------------------------------------------------ */

typedef struct ops_broker {
    tb_broker_t ob_tb;
    char ob_ctl[256]; /* its control endpoint */
} ops_broker_t;

/* tb_broker_start with a fresh control endpoint (--control). */
int ops_broker_start(ops_broker_t *b, const char *test, const char *config);
/* Stops it; on Linux checks a clean exit. Returns its exit status. */
int ops_broker_stop(ops_broker_t *b);
/* SIGKILL (TerminateProcess): the broker dies without any cleanup. */
void ops_broker_kill(ops_broker_t *b);
/*
 * Starts a new broker on the same event pipe, control endpoint and
 * configuration (after ops_broker_kill; the old one's handles are
 * released). Its log is a new file. Returns 0 or -1.
 */
int ops_broker_restart(ops_broker_t *b);
/* Waits until the log says text; fails the test with the log otherwise. */
void ops_wait_log(ops_broker_t *b, const char *text, int timeout_ms);

/* ---- the control protocol, spoken directly ------------------------------------------ */

typedef struct ops_ctl ops_ctl_t;

/* Retries until the endpoint answers or timeout_ms passes; NULL on failure. */
ops_ctl_t *ops_ctl_connect(const char *endpoint, int timeout_ms);
void ops_ctl_close(ops_ctl_t *c);
int ops_ctl_send_raw(ops_ctl_t *c, const void *buf, size_t n);
/*
 * Reads one response (valid until the next call on c): 0, TB_EOF,
 * TB_TIMEOUT, or a DCB_E_* for a frame that is not a good response.
 */
int ops_ctl_recv(ops_ctl_t *c, int timeout_ms, Dcb__ControlResponse **resp);
int ops_ctl_call(ops_ctl_t *c, const Dcb__ControlRequest *req, int timeout_ms,
                 Dcb__ControlResponse **resp);
/*
 * One request on a connection of its own to b; fails the test when no
 * response comes. The response lives until the next ops_cmd call.
 */
Dcb__ControlResponse *ops_cmd(ops_broker_t *b, int command, const char *plugin);
Dcb__ControlResponse *ops_cmd_timeout(ops_broker_t *b, const char *plugin, int has_hook,
                                      uint32_t hook, uint32_t timeout_ms);

/* ---- reading reports -------------------------------------------------------------- */

const Dcb__PluginStatus *ops_plugin_status(const Dcb__StatusReport *r, const char *plugin);
/* The entry of (plugin, hook), or NULL. */
const Dcb__HookPluginStats *ops_stats_entry(const Dcb__StatsReport *r, const char *plugin,
                                            int hook);
const Dcb__ShimHookStats *ops_shim_entry(const Dcb__StatsReport *r, int hook);
/* Every default an entry counts, whatever the reason. */
uint64_t ops_entry_defaults(const Dcb__HookPluginStats *e);
uint64_t ops_shim_defaults(const Dcb__ShimHookStats *e);
/* A quantile of a wire histogram (ns), as dcbctl computes it. */
uint64_t ops_quantile(const Dcb__Histogram *h, double q);
uint64_t ops_hist_count(const Dcb__Histogram *h);

/* ---- dcbctl ------------------------------------------------------------------------- */

/* Whether bin/ holds dcbctl (its tests are skipped, and said so, when not). */
int ops_have_dcbctl(void);
/*
 * Runs dcbctl with args against endpoint (NULL: none given); returns its
 * exit code (-1 when it could not run), its stdout and stderr in *out and
 * *err (free them; NULL to ignore).
 */
int ops_dcbctl(const char *endpoint, const char *const *args, char **out, char **err);
int ops_dcbctl_as(int uid, const char *endpoint, const char *const *args, char **out, char **err);

/* ---- dcb-sim with the shim ------------------------------------------------------------ */

/*
 * Starts dcb-sim with the shim first, then dlls (native paths), talking to
 * b's event pipe; extra are more dcb-sim arguments. The shim's settings
 * come from the environment (set them with ops_setenv before). Output goes
 * to dir.
 */
int ops_sim_start(ops_proc_t *p, const char *dir, ops_broker_t *b, const char *const *dlls,
                  const char *const *extra);
/* Waits for it; returns its JSON report (free with cJSON_Delete) or NULL. */
cJSON *ops_sim_finish(ops_proc_t *p, int timeout_ms);
double ops_jnum(const cJSON *root, const char *path);
const char *ops_shim_path(void);

/* A plugin's native path in bin/. */
const char *ops_plugin(const char *name);

#endif
