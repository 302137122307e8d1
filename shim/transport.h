/*
 * transport.h — the byte stream between the shim and the broker.
 *
 * conn_posix.c (Unix domain sockets) and conn_win.c (byte-mode named pipes,
 * overlapped I/O) each implement all of it; conn.c builds frames on top.
 * Deadlines are absolute dcb_now_ns() values. Nothing here blocks past a
 * deadline, and nothing raises a signal (no SIGPIPE).
 */
#ifndef DCB_SHIM_TRANSPORT_H
#define DCB_SHIM_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "shim.h"

/* Errors besides DCB_OS_ETIMEDOUT / DCB_OS_EIO / DCB_OS_ENOMEM. */
#define DCB__TP_ENOENT (-2)   /* no broker listens on that name */
#define DCB__TP_EBUSY (-16)   /* the broker is there but has no free instance */
#define DCB__TP_EOF (-32)     /* the broker closed the connection */
#define DCB__TP_EPEER (-1013) /* the server is not the expected account */
#define DCB__TP_EACCES (-13)  /* the endpoint's permissions keep us out */

/*
 * One connection attempt that does not wait: it succeeds or fails at once
 * (a Unix socket connect to a listener completes immediately; a pipe is
 * either free or busy). Then checks who serves the endpoint against the
 * configured account (see dcb__cfg_t.c_broker_account).
 */
int dcb__tp_connect(const char *name, const char *account, dcb__tp_t **out);
/* Writes all n bytes. A timeout leaves the stream unusable: close it. */
int dcb__tp_write(dcb__tp_t *t, const void *buf, size_t n, uint64_t deadline_ns);
/*
 * Reads at least one byte, at most cap. Returns the count, DCB__TP_EOF,
 * DCB_OS_ETIMEDOUT or DCB_OS_EIO. A deadline in the past makes it a poll.
 * wait_first says an answer cannot be there yet, so the first read attempt
 * is skipped in favour of waiting.
 */
int dcb__tp_read(dcb__tp_t *t, void *buf, size_t cap, uint64_t deadline_ns, int wait_first);
/* 1 when an idle connection is still open and has nothing unread, else 0. */
int dcb__tp_idle_ok(dcb__tp_t *t);
void dcb__tp_close(dcb__tp_t *t);

#endif /* DCB_SHIM_TRANSPORT_H */
