/*
 * sec.h — helpers of the security tests (tests/security): the broker as a
 * child process on endpoints the test chooses, and what each platform lets
 * a test look at (a process's memory, a pipe's DACL, other users).
 *
 * The broker runs through tests/broker's tb.h (a tb_broker_t, its log and
 * its fake-shim connections); only the start differs: sec_broker_start
 * names both endpoints and writes the whole configuration.
 */
#ifndef DCB_SEC_H
#define DCB_SEC_H

#include <stddef.h>
#include <stdint.h>

#include "tb.h"

#ifdef _WIN32
#define SEC_WINDOWS 1
#else
#define SEC_WINDOWS 0
#endif
/* Slower start-up under Wine and under the sanitizers. */
#if defined(SEC_SANITIZE) || defined(_WIN32)
#define SEC_SLOW 1
#else
#define SEC_SLOW 0
#endif

/* ---- the broker (sec_util.c) ---------------------------------------------- */

/*
 * Starts dcb-broker with "[broker] pipe = PIPE, control_pipe = CTL", then
 * broker_keys (more "key = value" lines of [broker], or NULL), then sections
 * (more INI text, or NULL), and waits until it accepts on PIPE. 0 or -1.
 */
int sec_broker_start(tb_broker_t *b, const char *test, const char *pipe, const char *ctl,
                     const char *broker_keys, const char *sections);
/* The same, but the broker is expected to refuse to start: its exit status, or -1. */
int sec_broker_run(tb_broker_t *b, const char *test, const char *pipe, const char *ctl,
                   const char *broker_keys, int timeout_ms);
/* Whether the broker process is still running. */
int sec_broker_alive(tb_broker_t *b);
/* Formats into a static ring of buffers (for building config text). */
const char *sec_fmt(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* ---- platform (sec_posix.c / sec_win.c) ------------------------------------ */

/* An endpoint name unique to this process: Linux "/tmp/dcb-sec-PID-N/LEAF", Windows a pipe. */
void sec_endpoint(char *out, size_t n, const char *leaf);
/* An event and a control endpoint side by side (Linux: in one private directory). */
void sec_endpoints(char *pipe, char *ctl, size_t n);
/* Removes what sec_endpoint's directory held (Linux), best effort. */
void sec_endpoint_cleanup(const char *name);
int sec_is_wine(void);
/* Resident memory of a process in bytes (Linux VmRSS; Windows working set), or -1. */
int64_t sec_rss(int pid);
/* Lets this process open many descriptors (the flood test). */
void sec_raise_fd_limit(void);
/*
 * Windows: gives a directory (and what is created in it) a low integrity
 * label, as an administrator would for a plugin's own directory; no-op on
 * Linux. 0 or -1.
 */
int sec_label_low(const char *dir);
/* A path a Windows program under Wine can open (Z:\...), unchanged on Linux. */
void sec_native_path(const char *in, char *out, size_t n);

#endif
