/*
 * fake_server.h — a stand-in for the broker's control endpoint, for
 * testing dcbctl before (and independently of) the real control server.
 *
 * A thread listens on a fresh temporary endpoint (a Unix socket in a temp
 * folder, or a uniquely named pipe), reads ControlRequest frames with the
 * codec, records them, and answers each with the canned ControlResponse set
 * for its command, or misbehaves as told (garbage, silence, a hang-up...).
 * The platform part, fake_net_{posix,win}.c, only listens, accepts, reads
 * and writes bytes.
 */
#ifndef DCBCTL_FAKE_SERVER_H
#define DCBCTL_FAKE_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "dcb_proto.h"

typedef enum fake_mode {
    FAKE_NORMAL,     /* the canned response for the command */
    FAKE_GARBAGE,    /* bytes that are not a frame */
    FAKE_SLOW,       /* the canned response, after fake_set_mode's delay */
    FAKE_CLOSE,      /* hang up without answering */
    FAKE_TOOBIG,     /* a header announcing more than DCB_MAX_FRAME_CONTROL */
    FAKE_WRONG_TYPE, /* a valid frame, but a Pong */
    FAKE_TRUNCATED,  /* a header announcing 100 bytes, 10 of them, then hang up */
    FAKE_BAD_PAYLOAD /* a response header with a payload that does not decode */
} fake_mode_t;

typedef struct fake_req {
    int fr_command;
    int fr_has_plugin;
    char fr_plugin[128];
    int fr_has_timeout;
    uint32_t fr_timeout_ms;
    int fr_has_hook;
    uint32_t fr_hook;
} fake_req_t;

typedef struct fake_server fake_server_t;

fake_server_t *fake_start(void);
const char *fake_endpoint(const fake_server_t *fs);
void fake_set_mode(fake_server_t *fs, fake_mode_t mode, uint32_t delay_ms);
/* The answer to every later request with this command (a copy is kept). */
void fake_set_response(fake_server_t *fs, int command, const Dcb__ControlResponse *resp);
/* Copies up to max recorded requests into out; returns how many there were. */
int fake_requests(fake_server_t *fs, fake_req_t *out, int max);
int fake_connections(fake_server_t *fs);
void fake_stop(fake_server_t *fs);

/* ---- platform part (fake_net_{posix,win}.c) ------------------------------ */

typedef struct fnet fnet_t;
typedef struct fconn fconn_t;

/* Listens on a new endpoint; its name goes into name. */
int fnet_listen(fnet_t **out, char *name, size_t n);
/* Blocks for the next client; NULL on error. */
fconn_t *fnet_accept(fnet_t *l);
/* Exactly n bytes; -1 on end of stream or error. */
int fnet_read(fconn_t *c, void *buf, size_t n);
int fnet_write(fconn_t *c, const void *buf, size_t n);
void fnet_close(fconn_t *c);
/* Unblocks a pending fnet_accept (by connecting to it). */
void fnet_wake(fnet_t *l, const char *name);
void fnet_free(fnet_t *l, const char *name);

/*
 * An endpoint that exists but refuses everyone (a DACL with no access on
 * Windows; a socket only root may open on Linux). Returns 0, or -1 when the
 * platform cannot make one. fnet_denied_close removes it.
 */
int fnet_denied_open(char *name, size_t n, void **handle);
void fnet_denied_close(void *handle, const char *name);

/*
 * Runs fn(arg) where fnet_denied_open's endpoint refuses it: on Linux as
 * root that means in a child process that has dropped to "nobody" (root
 * may open any socket); elsewhere in this process. Returns fn's result, or
 * -1 when that cannot be arranged.
 */
int fnet_run_unprivileged(int (*fn)(void *), void *arg);

/* Whether this runs under Wine (whose pipes ignore their DACL). */
int fnet_is_wine(void);

/*
 * An endpoint name nobody listens on, and (POSIX) a stale socket file that
 * refuses connections. fnet_stale_open returns -1 where there is no such thing.
 */
void fnet_unused_name(char *name, size_t n);
int fnet_stale_open(char *name, size_t n);
void fnet_stale_close(const char *name);

#endif
