/*
 * dcbctl.h — the operator's command-line tool: internal interfaces.
 *
 * dcbctl talks to the broker's control endpoint (one ControlRequest, one
 * ControlResponse, see proto/PROTOCOL.md) and, on Windows, installs and
 * removes dcb (CalloutDlls, the broker service, the Event Log source).
 *
 * Everything but main.c lives in the dcbctlcore library so that tests can
 * run ctl_main() in process, with their own output streams. Platform code
 * sits in ctl_conn_{posix,win}.c, plat_{posix,win}.c and install_{posix,win}.c;
 * the rest is platform-neutral.
 */
#ifndef DCBCTL_H
#define DCBCTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dcb_hist.h"
#include "dcb_proto.h"

#define DCBCTL_VERSION "0.1.0"

/*
 * Exit codes: a script can rely on these (also in `dcbctl --help` and
 * tools/package/ADMIN-GUIDE.md, tools/dcbctl/README.md). Keep them in step.
 */
enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_USAGE = 1,          /* bad command line; a Windows-only command elsewhere */
    CTL_EXIT_NO_BROKER = 2,      /* no such pipe/socket, or connection refused */
    CTL_EXIT_ACCESS = 3,         /* the control endpoint refused us */
    CTL_EXIT_UNKNOWN_PLUGIN = 4, /* CS_UNKNOWN_PLUGIN */
    CTL_EXIT_BROKER_FAILED = 5,  /* CS_BAD_REQUEST, CS_BUSY, CS_FAILED */
    CTL_EXIT_PROTOCOL = 6,       /* bad or missing answer, or timeout */
    CTL_EXIT_NOT_ELEVATED = 10,  /* install/uninstall: not an elevated administrator */
    CTL_EXIT_MISSING_FILE = 11,  /* install: shim, broker, config or message file missing */
    CTL_EXIT_ALREADY_INSTALLED = 12,
    CTL_EXIT_NOT_INSTALLED = 13,
    CTL_EXIT_NO_DHCP = 14, /* DHCP Server not installed, or CalloutDlls unreadable */
    CTL_EXIT_SYSTEM = 15,  /* a registry or service call failed (changes rolled back) */
};

/* ---- command line (cli.c) ------------------------------------------------ */

typedef enum ctl_cmd {
    CTL_CMD_NONE,
    CTL_CMD_HELP,
    CTL_CMD_VERSION,
    CTL_CMD_STATUS,
    CTL_CMD_STATS,
    CTL_CMD_TOP,
    CTL_CMD_RELOAD,
    CTL_CMD_ENABLE,
    CTL_CMD_DISABLE,
    CTL_CMD_SET,
    CTL_CMD_RESET_STATS,
    CTL_CMD_INSTALL,
    CTL_CMD_UNINSTALL,
} ctl_cmd_t;

typedef enum ctl_format { CTL_FMT_TEXT, CTL_FMT_JSON, CTL_FMT_PROMETHEUS } ctl_format_t;

typedef struct ctl_args {
    ctl_cmd_t a_cmd;
    const char *a_control; /* --control, else DCB_CONTROL, else the default */
    uint32_t a_timeout_ms; /* --timeout */
    ctl_format_t a_format;
    const char *a_plugin;
    uint32_t a_set_timeout_ms; /* set PLUGIN timeout MS */
    int a_has_hook;
    uint32_t a_hook;   /* --hook, a dcb_hook_t */
    long a_iterations; /* top: 0 = until interrupted */
    uint32_t a_interval_ms;
    const char *a_shim; /* install */
    const char *a_broker;
    const char *a_config;
    const char *a_account;
} ctl_args_t;

/* The service's account: the default, or what --account named; NULL if unknown. */
#define CTL_ACCOUNT_LOCALSERVICE "NT AUTHORITY\\LocalService"
#define CTL_ACCOUNT_VIRTUAL "NT SERVICE\\dcb-broker"
const char *ctl_account_name(const char *arg);

/* Parses argv; on error writes one line to err and returns CTL_EXIT_USAGE. */
int ctl_args_parse(int argc, char **argv, ctl_args_t *a, FILE *err);
void ctl_usage(FILE *f);
/* A hook by name ("NewPkt", case-insensitive) or number; -1 if neither. */
int ctl_hook_parse(const char *s);

/* The one entry point: what `dcbctl` does with argv, writing to out/err. */
int ctl_main(int argc, char **argv, FILE *out, FILE *err);

/* ---- control connection (ctl_conn_{posix,win}.c) ------------------------- */

/* Transport errors; ctl_exit_for() maps them to exit codes. */
#define CTL_E_NOBROKER (-2) /* no such endpoint, or nobody listening */
#define CTL_E_ACCESS (-3)   /* the endpoint exists but refused us */
#define CTL_E_TIMEOUT (-6)
#define CTL_E_CLOSED (-7) /* the peer closed the connection */
#define CTL_E_IO (-8)
#define CTL_E_PROTO (-9) /* the peer sent something that is not an answer */
#define CTL_E_NOMEM (-10)

typedef struct ctl_conn ctl_conn_t;

/* The platform's default control endpoint. */
const char *ctl_conn_default_endpoint(void);
/*
 * Connects to endpoint within deadline_ns (dcb_now_ns clock). On failure
 * returns a CTL_E_* and writes the reason (the OS's words) into err.
 */
int ctl_conn_open(const char *endpoint, uint64_t deadline_ns, ctl_conn_t **out, char *err,
                  size_t errlen);
/* Writes or reads exactly n bytes before deadline_ns. */
int ctl_conn_write(ctl_conn_t *c, const void *buf, size_t n, uint64_t deadline_ns);
int ctl_conn_read(ctl_conn_t *c, void *buf, size_t n, uint64_t deadline_ns);
void ctl_conn_close(ctl_conn_t *c);

/* ---- request/response (client.c) ----------------------------------------- */

typedef struct ctl_client {
    const char *cl_endpoint;
    uint32_t cl_timeout_ms;
    ctl_conn_t *cl_conn; /* kept open between calls (top) */
    uint8_t *cl_buf;     /* the response frame */
    uint8_t *cl_arena_mem;
    dcb_arena_t cl_arena;
    size_t cl_arena_cap;
    char cl_err[512]; /* why the last call failed, one line */
} ctl_client_t;

void ctl_client_init(ctl_client_t *cl, const char *endpoint, uint32_t timeout_ms);
void ctl_client_free(ctl_client_t *cl);
/*
 * Sends req and waits for the ControlResponse. Returns 0 with *resp valid
 * until the next call, or a CTL_E_* with cl_err set. The response's own
 * status is the caller's to judge (ctl_exit_for_status).
 */
int ctl_client_call(ctl_client_t *cl, const Dcb__ControlRequest *req, Dcb__ControlResponse **resp);

int ctl_exit_for(int err);
int ctl_exit_for_status(Dcb__ControlStatus st);
const char *ctl_status_name(Dcb__ControlStatus st);

/* ---- formatting helpers (fmt.c) ------------------------------------------ */

/* Quantiles of one wire histogram, in nanoseconds. */
typedef struct ctl_latency {
    uint64_t l_count;
    uint64_t l_p50, l_p90, l_p99, l_p999, l_max;
    uint64_t l_sum;
} ctl_latency_t;

/* Rebuilds a dcb_hist from the sparse form (scratch is caller's, reset here). */
void ctl_latency_from_wire(const Dcb__Histogram *h, dcb_hist_t *scratch, ctl_latency_t *out);
/* "850ns", "12.3µs", "4.56ms", "1.20s"; "-" when count is 0. */
void ctl_fmt_duration(uint64_t ns, char *buf, size_t n);
/* "2h03m", "45s", "3d04h". */
void ctl_fmt_uptime(uint64_t ms, char *buf, size_t n);
/* Copies s, replacing control bytes, so a peer's string cannot drive the terminal. */
void ctl_fmt_sanitize(const char *s, char *buf, size_t n);
const char *ctl_plugin_state_name(Dcb__PluginState st);

/* A text table: cells are copied; columns sized to their widest cell. */
#define CTL_TABLE_MAX_COLS 16
typedef struct ctl_table {
    int t_cols;
    int t_rows;
    int t_cap;
    char **t_cells;                  /* t_rows * t_cols strings */
    int t_right[CTL_TABLE_MAX_COLS]; /* right-align this column */
} ctl_table_t;

void ctl_table_init(ctl_table_t *t, int cols, const char *const *header, const int *right);
#if defined(__MINGW32__)
__attribute__((format(gnu_printf, 3, 4)))
#elif defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void ctl_table_cell(ctl_table_t *t, int col, const char *fmt, ...);
void ctl_table_print(const ctl_table_t *t, FILE *out);
void ctl_table_free(ctl_table_t *t);

/* ---- output (out_*.c) ---------------------------------------------------- */

void ctl_out_status_text(const Dcb__StatusReport *r, FILE *out);
int ctl_out_status_json(const Dcb__StatusReport *r, FILE *out);

/*
 * The stats table. prev and interval_ms, when prev is not NULL, add a
 * calls-per-second column (top).
 */
void ctl_out_stats_text(const Dcb__StatsReport *r, const Dcb__StatsReport *prev,
                        uint32_t interval_ms, FILE *out);
int ctl_out_stats_json(const Dcb__StatsReport *r, FILE *out);
void ctl_out_stats_prometheus(const Dcb__StatsReport *r, FILE *out);

/* `top` (top.c). */
int ctl_top(const ctl_args_t *a, const char *endpoint, FILE *out, FILE *err);

/* ---- install (install_{posix,win}.c) ------------------------------------- */

int ctl_install(const ctl_args_t *a, FILE *out, FILE *err);
int ctl_uninstall(const ctl_args_t *a, FILE *out, FILE *err);

/*
 * Whether the caller is an elevated administrator. A pointer so that tests
 * can replace it: Wine always runs its tests as an administrator.
 */
extern int (*ctl_is_elevated)(void);

/* ---- platform (plat_{posix,win}.c) --------------------------------------- */

/* Prepares the console: UTF-8 output, ANSI sequences (Windows 10+). */
void ctl_plat_console_init(FILE *out);
/*
 * Replaces argv by the UTF-8 form of the real command line (Windows);
 * nothing elsewhere. The strings live until exit.
 */
void ctl_plat_utf8_args(int *argc, char ***argv);

#endif /* DCBCTL_H */
