/*
 * fake_tp.h — the server side of the shim's transport, for the in-test
 * fake broker and the benchmark: Unix sockets on Linux, overlapped named
 * pipes on Windows. Timeouts are in milliseconds; no call blocks past one.
 */
#ifndef DCB_TEST_FAKE_TP_H
#define DCB_TEST_FAKE_TP_H

#include <stddef.h>

typedef struct ftp_listener ftp_listener_t;
typedef struct ftp_conn ftp_conn_t;

/* A fresh endpoint name, unique per process and call. */
void ftp_unique_name(char *buf, size_t cap, const char *tag);

ftp_listener_t *ftp_listen(const char *name);
/* A connected client, or NULL when none came within timeout_ms. */
ftp_conn_t *ftp_accept(ftp_listener_t *l, int timeout_ms);
void ftp_listener_close(ftp_listener_t *l);

/* The client side (benchmark ping-pong, identity tests). */
ftp_conn_t *ftp_connect(const char *name);

/* Bytes read (> 0), 0 on timeout, -1 on EOF or error. */
int ftp_read(ftp_conn_t *c, void *buf, size_t cap, int timeout_ms);
/* Reads exactly n bytes; 0, or -1 on EOF, error or timeout. */
int ftp_read_full(ftp_conn_t *c, void *buf, size_t n, int timeout_ms);
/* Writes all n bytes; 0 or -1. */
int ftp_write(ftp_conn_t *c, const void *buf, size_t n);
void ftp_close(ftp_conn_t *c);

#endif
