/*
 * pipesec.h — the broker's listening endpoints, created secure.
 *
 * Both endpoints the broker serves (the shim's event pipe and dcbctl's
 * control pipe) are created here, never with a bare uv_pipe_bind, so that
 * nobody but the intended clients can reach them and nobody can squat the
 * name first:
 *
 *   Windows (pipesec_win.c): every pipe instance is created by this file
 *   with an explicit DACL (event pipe: Administrators, the broker's own
 *   account and the allowed client accounts — NETWORK SERVICE by default —
 *   without FILE_CREATE_PIPE_INSTANCE; control pipe: Administrators and the
 *   broker's own account), PIPE_REJECT_REMOTE_CLIENTS, and
 *   FILE_FLAG_FIRST_PIPE_INSTANCE for the first one. libuv cannot take a
 *   security descriptor, so a thread of ours waits for connections
 *   (overlapped ConnectNamedPipe) and hands each connected instance to the
 *   loop, which wraps it with uv_pipe_open.
 *
 *   Linux (pipesec_posix.c): the socket lives in a directory that belongs
 *   to the broker's user and gives others no access (created 0700 when
 *   missing; the broker refuses to start when it is someone else's or too
 *   open, or when a parent directory could let someone replace it); the
 *   socket file is 0600; every connecting peer's SO_PEERCRED uid is checked
 *   against the allowed ones (default: the broker's own uid and root).
 *
 * Use (the loop thread only):
 *
 *   pipesec_listen(loop, name, PIPESEC_CONTROL, cfg->cfg_control_allow, cb, data, &ps, err, n);
 *   ...in cb: uv_pipe_init(loop, &c->pipe, 0);
 *             rc = pipesec_accept(ps, &c->pipe, peer, sizeof(peer));
 *             rc == UV_EACCES: a peer that is not allowed (logged by the caller
 *             with `peer`); any rc != 0: uv_close the pipe.
 *   pipesec_close(ps);
 */
#ifndef DCB_BROKER_PIPESEC_H
#define DCB_BROKER_PIPESEC_H

#include <stddef.h>

#include <uv.h>

typedef struct pipesec pipesec_t;

typedef enum pipesec_kind {
    PIPESEC_EVENT = 0,   /* the shim's event pipe */
    PIPESEC_CONTROL = 1, /* dcbctl's control pipe: administrators only */
} pipesec_kind_t;

/* A connection waits: call pipesec_accept for it now, or it is dropped. */
typedef void (*pipesec_cb)(pipesec_t *ps, void *data);

/*
 * Creates the endpoint and listens. allow: comma-separated accounts that may
 * connect besides the built-in ones (Windows: account names or SID strings;
 * Linux: user names or uids), NULL or "" for the default (event pipe: NETWORK
 * SERVICE on Windows; Linux: nobody more). Returns 0, or a negative error with
 * a sentence for the log in err (UV_EADDRINUSE: the name is taken — another
 * broker or a squatter).
 */
int pipesec_listen(uv_loop_t *loop, const char *name, pipesec_kind_t kind, const char *allow,
                   pipesec_cb cb, void *data, pipesec_t **out, char *err, size_t errlen);
/*
 * Accepts the waiting connection into client (uv_pipe_init'ed, unused).
 * Describes the peer in peer ("uid 1000 pid 4711", "pid 4711"). Returns 0,
 * UV_EACCES for a peer that is not allowed, or another negative error.
 */
int pipesec_accept(pipesec_t *ps, uv_pipe_t *client, char *peer, size_t peerlen);
/* Stops listening; the memory goes once libuv has closed its handles. */
void pipesec_close(pipesec_t *ps);

#endif /* DCB_BROKER_PIPESEC_H */
