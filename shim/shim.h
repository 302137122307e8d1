/*
 * shim.h — the shim's internal interface.
 *
 * The shim is one DLL loaded into the DHCP server. Its files share this
 * header; each owns one concept:
 *
 *   entry.c    DhcpServerCalloutEntry, start/stop, the subscribed mask
 *   config.c   settings: defaults, registry/file, environment, validation
 *   log.c      a rate-limited log that never blocks the server for long
 *   hooks.c    the callout hooks the server calls
 *   pkt.c      the per-packet record (the shim's PktContext)
 *   request.c  NewPkt/PktSend: one round trip on the calling thread
 *   pool.c     REQUEST connections and the thread that keeps them ready
 *   conn.c     framing over a transport: Hello/Welcome, read/write frames
 *   notify.c   the notification queue and its sender thread
 *   breaker.c  the circuit breaker in front of the broker
 *   stats.c    counters, histograms, ShimStats
 *
 * and two small platform pairs implement the rest: conn_posix.c/conn_win.c
 * (transport.h) and plat_posix.c/plat_win.c (configuration sources, log
 * output). Nothing here ever aborts, exits or blocks without a deadline:
 * every failure becomes a default decision, a counter and a log line.
 */
#ifndef DCB_SHIM_H
#define DCB_SHIM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dcb_callout.h"
#include "dcb_hist.h"
#include "dcb_os.h"
#include "dcb_proto.h"

#define DCB_SHIM_VERSION "0.1.0"

/* ---- configuration (config.c) ------------------------------------------ */

typedef struct dcb__cfg {
    char c_pipe[512];               /* event endpoint of the broker */
    uint32_t c_newpkt_deadline_ms;  /* what NewPkt may wait, in total */
    uint32_t c_pktsend_deadline_ms; /* what PktSend may wait, in total */
    uint32_t c_notify_deadline_ms;  /* deadline_us sent with notifications */
    int c_fail_closed;              /* NewPkt default: 0 process, 1 drop */
    uint32_t c_queue_size;          /* notifications the queue holds */
    uint32_t c_max_packet;          /* largest packet sent or accepted */
    uint32_t c_pool_max;            /* REQUEST connections at most */
    uint32_t c_pool_spare;          /* idle REQUEST connections kept ready */
    uint32_t c_breaker_threshold;   /* consecutive failures that open it */
    uint32_t c_breaker_min_ms;      /* first open period */
    uint32_t c_breaker_max_ms;      /* longest open period */
    uint32_t c_stats_interval_ms;   /* ShimStats period */
    uint32_t c_connect_timeout_ms;  /* Hello -> Welcome on a new connection */
    uint32_t c_startup_wait_ms;     /* the entry point waits this long for the broker */
    /*
     * Who may serve the pipe: empty for the default (Windows: LocalSystem,
     * Administrators or the server's own account; Linux: root or our own
     * uid), "*" for anyone, else an account name or SID (Windows) or a user
     * name or uid (Linux).
     */
    char c_broker_account[256];
    char c_log_path[512]; /* empty: stderr (Linux) / OutputDebugString (Windows) */
} dcb__cfg_t;

void dcb__cfg_defaults(dcb__cfg_t *cfg);
/* Fills cfg from the platform source and the environment; logs bad values. */
void dcb__cfg_load(dcb__cfg_t *cfg);

/*
 * Platform configuration sources (plat_*.c). Each copies a value as UTF-8
 * text into out (a REG_DWORD becomes decimal) and returns 1 when set, 0 when
 * not. Names are the registry value names ("PipeName").
 */
int dcb__plat_cfg_get(const char *name, char *out, size_t cap);
int dcb__plat_env_get(const char *name, char *out, size_t cap);
/* Where a log line goes when no log file is configured. */
void dcb__plat_log_default(const char *line);
/* Opens a log file for appending (UTF-8 path). */
FILE *dcb__plat_fopen_append(const char *path);
/* A value unlikely to repeat across shim instances (pid, time, address). */
uint64_t dcb__plat_random64(void);

/* ---- logging (log.c) ----------------------------------------------------- */

void dcb__log_open(const char *path);
void dcb__log_close(void);
/* mingw's stdio is the ANSI one (__USE_MINGW_ANSI_STDIO): check as GNU printf. */
#if defined(__MINGW32__)
__attribute__((format(gnu_printf, 2, 3)))
#elif defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void dcb__log(dcb_log_level_t level, const char *fmt, ...);
/* An info line that also goes to the Event Log (start, stop). */
#if defined(__MINGW32__)
__attribute__((format(gnu_printf, 1, 2)))
#elif defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
void dcb__log_note(const char *fmt, ...);

/* ---- global state (entry.c) ---------------------------------------------- */

/*
 * The subscribed set and the run state share one atomic word, so every hook
 * learns both from a single load: bit (1 << hook) is set while some plugin
 * subscribes to the hook; DCB__RUNNING while the shim is started.
 */
#define DCB__RUNNING (1u << 31)
#define DCB__HOOKS_ALL ((1u << DCB_HOOK_COUNT) - 1u)
/* Hooks that belong to one packet and so need the per-packet record. */
#define DCB__PKT_HOOKS                                                                             \
    (DCB_HOOK_BIT(DCB_HOOK_NEWPKT) | DCB_HOOK_BIT(DCB_HOOK_PKTDROP) |                              \
     DCB_HOOK_BIT(DCB_HOOK_PKTSEND) | DCB_HOOK_BIT(DCB_HOOK_ADDRESSDEL) |                          \
     DCB_HOOK_BIT(DCB_HOOK_ADDRESSOFFER) | DCB_HOOK_BIT(DCB_HOOK_HANDLEOPTIONS))

extern _Atomic uint32_t dcb__state;
extern dcb__cfg_t dcb__cfg;
/* Identifies this loaded shim to the broker across connections. */
extern uint64_t dcb__instance_id;
/* Largest packet the broker accepts (Welcome.max_packet_size), capped by ours. */
extern _Atomic uint32_t dcb__max_packet;

/*
 * Takes a subscribed set from the broker (Welcome or Subscription). The
 * NOTIFY connection's word is authoritative; a REQUEST connection's Welcome
 * counts only while no NOTIFY connection is up.
 */
void dcb__subscribe_from(int role, uint32_t hooks);
/* Stops everything and frees all memory (DHCP_CONTROL_STOP). */
void dcb__shim_stop(void);
/* ChainDlls as given to the entry point, for Hello. */
void dcb__chain_get(char ***items, size_t *n);
/* Process-wide unique non-zero ids. */
uint64_t dcb__next_request_id(void);

/* ---- statistics (stats.c) ---------------------------------------------- */

/* Why a hook got the default decision; 0 means it did not. */
typedef enum dcb__def {
    DCB__DEF_NONE,
    DCB__DEF_TIMEOUT,    /* the broker did not answer in time */
    DCB__DEF_NO_BROKER,  /* nothing connected (or the broker never saw the packet) */
    DCB__DEF_BREAKER,    /* the circuit breaker is open */
    DCB__DEF_BAD_REPLY,  /* the answer broke the protocol or the connection failed */
    DCB__DEF_QUEUE_FULL, /* notification queue full / no free REQUEST connection */
    DCB__DEF_OTHER,      /* out of memory, packet over the size limit, no packet */
    DCB__DEF_COUNT
} dcb__def_t;

typedef struct dcb__hook_stats {
    _Alignas(64) _Atomic uint64_t hs_unsub; /* calls that took the unsubscribed path */
    _Alignas(64) _Atomic uint64_t hs_calls; /* calls that did some work */
    _Atomic uint64_t hs_def[DCB__DEF_COUNT];
    _Atomic uint64_t hs_lost; /* queued, then lost with a broken NOTIFY connection */
    dcb_hist_t hs_waited;     /* what the calling thread spent in the hook, ns */
} dcb__hook_stats_t;

extern dcb__hook_stats_t dcb__stats[DCB_HOOK_COUNT];
extern _Atomic uint64_t dcb__reconnects;

void dcb__stats_reset(void);
static inline void dcb__stats_unsub(int hook)
{
    atomic_fetch_add_explicit(&dcb__stats[hook].hs_unsub, 1, memory_order_relaxed);
}
static inline void dcb__stats_call(int hook)
{
    atomic_fetch_add_explicit(&dcb__stats[hook].hs_calls, 1, memory_order_relaxed);
}
static inline void dcb__stats_default(int hook, dcb__def_t why)
{
    atomic_fetch_add_explicit(&dcb__stats[hook].hs_def[why], 1, memory_order_relaxed);
}
static inline void dcb__stats_waited(int hook, uint64_t ns)
{
    dcb_hist_record(&dcb__stats[hook].hs_waited, ns);
}
/*
 * Encodes the ShimStats frame(s) into buf. Returns the bytes written, 0 when
 * nothing fits. Histograms travel in sparse form, cumulative since load.
 */
size_t dcb__stats_encode(uint8_t *buf, size_t cap);

/* ---- per-packet records (pkt.c) ----------------------------------------- */

typedef struct dcb__pktbuf dcb__pktbuf_t;

typedef struct dcb__pkt {
    uint32_t pk_magic;
    uint32_t pk_flags;
    uint64_t pk_id;                     /* 0: the broker is not told about this packet */
    uint32_t pk_seq;                    /* the last seq number used */
    dcb__pktbuf_t *pk_bufs;             /* replaced packet buffers, freed with the record */
    struct dcb__pkt *pk_prev, *pk_next; /* the live list, for STOP */
} dcb__pkt_t;

#define DCB__PKT_MAGIC 0x50434244u /* "DBCP" */
/* NewPkt never reached the broker: later hooks of the packet are not sent. */
#define DCB__PKT_UNSEEN 0x1u

/* A new record (NULL when out of memory); id 0 makes it anonymous. */
dcb__pkt_t *dcb__pkt_new(int anonymous);
/* The record behind a PktContext value, or NULL if it is not one of ours. */
static inline dcb__pkt_t *dcb__pkt_from(void *ctx)
{
    dcb__pkt_t *p = ctx;
    return (p != NULL && p->pk_magic == DCB__PKT_MAGIC) ? p : NULL;
}
/* A buffer of len bytes that lives until the record is freed. */
uint8_t *dcb__pkt_alloc_buf(dcb__pkt_t *p, size_t len);
void dcb__pkt_free(dcb__pkt_t *p);
/* Frees every live record (at STOP: the server frees its packets silently). */
void dcb__pkt_free_all(void);
uint64_t dcb__pkt_live(void);
void dcb__pkt_init(void);

/* ---- circuit breaker (breaker.c) ----------------------------------------- */

typedef enum dcb__br_ticket { DCB__BR_PASS, DCB__BR_TRIAL, DCB__BR_REJECT } dcb__br_ticket_t;

void dcb__breaker_init(const dcb__cfg_t *cfg);
dcb__br_ticket_t dcb__breaker_enter(void);
void dcb__breaker_done(dcb__br_ticket_t ticket, int ok);

/* ---- connections (conn.c) -------------------------------------------------- */

typedef struct dcb__tp dcb__tp_t;

typedef struct dcb__conn {
    dcb__tp_t *c_tp;
    int c_role; /* Dcb__ConnRole */
    uint8_t *c_wbuf;
    size_t c_wcap;
    uint8_t *c_rbuf;
    size_t c_rcap;
    size_t c_rlen;            /* bytes in c_rbuf not yet consumed */
    dcb_limits_t c_lim;       /* what this connection accepts */
    dcb_arena_t c_arena;      /* decoded replies live here */
    struct dcb__conn *c_next; /* pool free list */
} dcb__conn_t;

/*
 * Connects, checks the peer's identity, sends Hello and waits for Welcome
 * until deadline (or until *cancel becomes non-zero). Returns the connection
 * and the subscribed set from Welcome, or NULL with a log line.
 */
dcb__conn_t *dcb__conn_open(int role, uint64_t deadline_ns, const _Atomic int *cancel,
                            uint32_t *hooks);
void dcb__conn_close(dcb__conn_t *c);
/* Writes c_wbuf[0..n). Returns 0 or a negative error. */
int dcb__conn_write(dcb__conn_t *c, size_t n, uint64_t deadline_ns);
/*
 * Reads until one whole frame is buffered and decodes it into the arena.
 * Returns 0 with *out set, DCB_OS_ETIMEDOUT, or another negative error
 * (EOF, transport failure, or a DCB_E_* protocol error).
 */
int dcb__conn_read_frame(dcb__conn_t *c, uint64_t deadline_ns, int wait_first, dcb_msg_t *out);
/* Drops the frame just decoded from the read buffer. */
void dcb__conn_consume(dcb__conn_t *c, size_t n);

/* ---- REQUEST pool (pool.c) ----------------------------------------------- */

int dcb__pool_start(void);
void dcb__pool_stop(void);
/* Non-zero when a REQUEST connection is idle and ready. */
int dcb__pool_ready(void);
/*
 * A ready REQUEST connection, or NULL with *why set (DCB__DEF_NO_BROKER when
 * none is connected, DCB__DEF_QUEUE_FULL when all stayed busy until deadline).
 */
dcb__conn_t *dcb__pool_get(uint64_t deadline_ns, dcb__def_t *why);
void dcb__pool_put(dcb__conn_t *c);
/* Closes a connection that failed; the maintenance thread replaces it. */
void dcb__pool_discard(dcb__conn_t *c);

/* ---- request path (request.c) ------------------------------------------- */

void dcb__request_newpkt(dcb__pkt_t *rec, LPBYTE *packet, DWORD *size, DWORD ip, LPVOID reserved,
                         LPBOOL process_it, uint64_t t0);
void dcb__request_pktsend(dcb__pkt_t *rec, LPBYTE *packet, DWORD *size, DWORD code, DWORD ip,
                          LPVOID reserved, uint64_t t0);

/* ---- notifications (notify.c) ----------------------------------------------- */

typedef struct dcb__note {
    int n_hook;
    uint32_t n_code;
    uint32_t n_ip, n_alt, n_addr_type, n_lease, n_client_type;
    uint64_t n_reserved;
    const uint8_t *n_data; /* the packet, or DeleteClient's hardware address */
    size_t n_data_len;
    int n_has_data;                       /* DeleteClient: hw address present */
    const DHCP_SERVER_OPTIONS *n_options; /* HandleOptions only */
} dcb__note_t;

int dcb__notify_start(void);
/* 1 while the NOTIFY connection is established. */
int dcb__notify_up(void);
/* Flushes what is queued (bounded by flush_ms) and stops the sender. */
void dcb__notify_stop(uint32_t flush_ms);
/*
 * Copies a notification into the queue. rec may be NULL (no packet record).
 * Returns 0 when queued, else the reason it was not (DCB__DEF_*).
 */
int dcb__notify_post(dcb__pkt_t *rec, const dcb__note_t *note);
/*
 * Wakes the sender if anything is queued: a request whose packet has queued
 * notifications calls it, so the broker never holds the request long for
 * its predecessors.
 */
void dcb__notify_kick(void);
/* Records the server's control state and queues the Control event. */
int dcb__notify_control(uint32_t code);

/* ---- hooks (hooks.c) ----------------------------------------------------- */

void dcb__hooks_fill(DHCP_CALLOUT_TABLE *tbl);

#endif /* DCB_SHIM_H */
