/*
 * tb.h — helpers for the broker tests: run the real dcb-broker as a child
 * process with a temporary config, and talk to it as a fake shim would
 * (blocking client, frames from proto/'s codec).
 */
#ifndef DCB_TB_H
#define DCB_TB_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "dcb_callout.h"
#include "dcb_os.h"
#include "dcb_proto.h"

#define TB_TIMEOUT (-1)
#define TB_EOF (-2)
#define TB_ERROR (-3)

/* ---- the platform client (tb_pipe_posix.c / tb_pipe_win.c) ---------------- */

typedef struct tb_pipe tb_pipe_t;
/* Retries until the broker listens or timeout_ms passes; NULL on failure. */
tb_pipe_t *tb_pipe_connect(const char *name, int timeout_ms);
int tb_pipe_write(tb_pipe_t *p, const void *buf, size_t n);
/* > 0 bytes, TB_EOF, TB_TIMEOUT or TB_ERROR. */
int tb_pipe_read(tb_pipe_t *p, void *buf, size_t n, int timeout_ms);
void tb_pipe_close(tb_pipe_t *p);
/* Removes what a broker that did not stop cleanly left behind (Linux: its socket file). */
void tb_pipe_cleanup(const char *name);
/* A pipe name unique to this process and counter. */
void tb_pipe_name(char *out, size_t n, const char *test);
/* A path the broker (a Windows program under Wine, too) can open. */
void tb_native_path(const char *in, char *out, size_t n);

/* ---- the broker as a child process (tb_util.c) ------------------------------ */

typedef struct tb_broker {
    uv_loop_t tb_loop;
    uv_process_t tb_proc;
    int tb_running;
    int tb_exited;
    int64_t tb_status;
    int tb_signal;
    char tb_pipe[256];
    char tb_cfg[512];
    char tb_log[512];
} tb_broker_t;

/* The path of a file in DCB_BIN_DIR (plugins get their platform suffix). */
void tb_bin(const char *name, char *out, size_t n);
void tb_plugin(const char *name, char *out, size_t n);
/*
 * Starts dcb-broker with this config text (a "[broker]" section with the
 * pipe is added in front; NULL for none) and extra arguments; waits until
 * it accepts connections. Returns 0 or -1.
 */
int tb_broker_start(tb_broker_t *b, const char *test, const char *config, const char *const *args);
/*
 * Starts argv[0] (argv NULL-terminated, argv[0] the executable) as b's
 * process, on a fresh b->tb_loop: stdin ignored, stdout and stderr both into
 * b->tb_log (truncated first), no console window. Sets tb_running (also when
 * the spawn fails, so tb_broker_release closes the handle), and tb_exited,
 * tb_status and tb_signal when it exits (at once when it could not start).
 * Returns 0, or -1 with one line on stderr.
 */
int tb_spawn_logged(tb_broker_t *b, const char *const *argv);
/* Closes b's process handle and loop (once it exited or was killed); no-op when not running. */
void tb_broker_release(tb_broker_t *b);
/* Opens path for writing, created (0644) or truncated: an fd, or a negative libuv error. */
int tb_open_trunc(const char *path);
/* Closes an fd from tb_open_trunc; a negative one is ignored. */
void tb_close_fd(int fd);
/* Runs the broker to completion (for --check-config); returns its exit status. */
int tb_broker_run(tb_broker_t *b, const char *test, const char *config_file,
                  const char *const *args, int timeout_ms);
/* SIGTERM (TerminateProcess on Windows), then waits; returns the exit status or -1. */
int tb_broker_stop(tb_broker_t *b);
/* Whether the broker's log contains text; tb_log_wait polls for it. */
int tb_log_contains(tb_broker_t *b, const char *text);
int tb_log_wait(tb_broker_t *b, const char *text, int timeout_ms);
/* Number of occurrences of text in the log. */
int tb_log_count(tb_broker_t *b, const char *text);
/* Position of the first occurrence (-1 when absent), for order checks. */
long tb_log_find(tb_broker_t *b, const char *text);
void tb_log_dump(tb_broker_t *b);
void tb_write_file(const char *path, const char *text);
/* The whole file, NUL-terminated (malloc'd), or NULL. */
char *tb_read_file(const char *path);

/* ---- a fake shim connection ------------------------------------------------- */

typedef struct tb_conn {
    tb_pipe_t *c_pipe;
    uint8_t *c_buf;
    size_t c_len;
    dcb_arena_t c_arena;
    void *c_arena_mem;
    dcb_limits_t c_lim;
} tb_conn_t;

tb_conn_t *tb_connect(tb_broker_t *b);
void tb_disconnect(tb_conn_t *c);
void tb_disconnect_all(void);
int tb_send_msg(tb_conn_t *c, uint8_t type, const ProtobufCMessage *msg);
int tb_send_raw(tb_conn_t *c, const void *buf, size_t n);
/* Receives one frame (valid until the next call); 0, TB_TIMEOUT, TB_EOF or a DCB_E_*. */
int tb_recv_msg(tb_conn_t *c, int timeout_ms, dcb_msg_t *out);
/* Sends Hello and waits for Welcome; returns the Welcome or NULL. */
Dcb__Welcome *tb_hello(tb_conn_t *c, int role, const char *const *dlls, size_t n);

typedef struct tb_decision {
    int td_rc; /* 0, or TB_TIMEOUT / TB_EOF / DCB_E_* */
    int td_process_it;
    int td_reason;
    int td_has_packet;
    uint8_t td_packet[70000];
    size_t td_len;
    uint64_t td_elapsed_us; /* send -> decision */
} tb_decision_t;

/* NewPkt / PktSend on a REQUEST connection, waiting for the decision. */
void tb_newpkt(tb_conn_t *c, uint64_t packet_id, const char *packet, uint32_t deadline_us,
               tb_decision_t *d);
void tb_pktsend(tb_conn_t *c, uint64_t packet_id, uint32_t seq, const char *packet,
                uint32_t deadline_us, tb_decision_t *d);
/* Sends without waiting; tb_wait_decision gets the answer. */
int tb_send_request(tb_conn_t *c, int hook, uint64_t packet_id, uint32_t seq, const uint8_t *pkt,
                    size_t len, uint32_t deadline_us);
void tb_wait_decision(tb_conn_t *c, int timeout_ms, tb_decision_t *d);
/* Notifications on the NOTIFY connection. */
int tb_pktdrop(tb_conn_t *c, uint64_t packet_id, uint32_t seq, const char *packet, uint32_t code);
int tb_handleoptions(tb_conn_t *c, uint64_t packet_id, uint32_t seq, const char *packet);
int tb_control(tb_conn_t *c, uint32_t code);

void tb_sleep_ms(int ms);

#endif
