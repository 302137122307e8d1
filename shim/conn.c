/*
 * conn.c — frames over a transport: opening a connection (Hello/Welcome),
 * writing a frame, reading and decoding one.
 *
 * Each connection owns its buffers and its decode arena, allocated once
 * when it opens, so the request path allocates nothing: a NewPkt is encoded
 * into c_wbuf, its answer read into c_rbuf and decoded into c_arena.
 */
#include "transport.h"

#include <stdlib.h>
#include <string.h>

/* A NewPkt/PktSend event or decision is the packet plus at most this much. */
#define FRAME_OVERHEAD 256u
/* NOTIFY connections write several notifications per write call. */
#define NOTIFY_WBUF (128u * 1024u)
/* The broker sends only Welcome and Subscription on a NOTIFY connection. */
#define NOTIFY_MAX_FRAME 1024u
/* Room beyond one frame, so bytes that follow an answer are noticed. */
#define READ_SLACK 512u
/* Handshakes wait in slices this long, to notice a cancel (STOP). */
#define SLICE_NS 20000000u

static dcb__conn_t *conn_alloc(int role)
{
    uint32_t max_packet = dcb__cfg.c_max_packet;
    dcb_limits_t lim;
    size_t wcap, rcap, acap, total;
    dcb__conn_t *c;
    uint8_t *p;

    if (role == DCB__CONN_ROLE__ROLE_REQUEST) {
        lim.max_frame = max_packet + FRAME_OVERHEAD;
        lim.max_packet = max_packet;
        wcap = (size_t)max_packet + FRAME_OVERHEAD;
    } else {
        lim.max_frame = NOTIFY_MAX_FRAME;
        lim.max_packet = 0;
        wcap = NOTIFY_WBUF;
    }
    rcap = DCB_FRAME_HEADER_SIZE + (size_t)lim.max_frame + READ_SLACK;
    acap = dcb_arena_size_for(lim.max_frame);
    total = sizeof(*c) + wcap + rcap + acap + 32;
    c = calloc(1, total);
    if (c == NULL)
        return NULL;
    p = (uint8_t *)(c + 1);
    c->c_role = role;
    c->c_lim = lim;
    c->c_wbuf = p;
    c->c_wcap = wcap;
    p += wcap;
    c->c_rbuf = p;
    c->c_rcap = rcap;
    p += rcap;
    /* The arena hands out 16-byte aligned blocks relative to its base. */
    p = (uint8_t *)(((uintptr_t)p + 15u) & ~(uintptr_t)15u);
    dcb_arena_init(&c->c_arena, p, acap);
    return c;
}

void dcb__conn_close(dcb__conn_t *c)
{
    if (c == NULL)
        return;
    dcb__tp_close(c->c_tp);
    free(c);
}

int dcb__conn_write(dcb__conn_t *c, size_t n, uint64_t deadline_ns)
{
    return dcb__tp_write(c->c_tp, c->c_wbuf, n, deadline_ns);
}

int dcb__conn_read_frame(dcb__conn_t *c, uint64_t deadline_ns, int wait_first, dcb_msg_t *out)
{
    dcb_frame_hdr_t hdr;
    int rc, n;

    out->msg = NULL;
    for (;;) {
        if (c->c_rlen > 0) {
            /* The header is checked against our limits before waiting for the rest. */
            rc = dcb_frame_header(c->c_rbuf, c->c_rlen, &c->c_lim, &hdr);
            if (rc == 0 && c->c_rlen - DCB_FRAME_HEADER_SIZE >= hdr.length)
                return dcb_frame_decode(c->c_rbuf, c->c_rlen, &c->c_lim, &c->c_arena, out);
            if (rc != 0 && rc != DCB_E_TRUNCATED)
                return rc;
        }
        n = dcb__tp_read(c->c_tp, c->c_rbuf + c->c_rlen, c->c_rcap - c->c_rlen, deadline_ns,
                         wait_first);
        if (n < 0)
            return n;
        c->c_rlen += (size_t)n;
        wait_first = 0;
    }
}

void dcb__conn_consume(dcb__conn_t *c, size_t n)
{
    if (n >= c->c_rlen) {
        c->c_rlen = 0;
        return;
    }
    memmove(c->c_rbuf, c->c_rbuf + n, c->c_rlen - n);
    c->c_rlen -= n;
}

static int send_hello(dcb__conn_t *c, uint64_t deadline_ns)
{
    Dcb__Hello hello = DCB__HELLO__INIT;
    char **chain;
    size_t n_chain, len;
    uint8_t *buf;
    int rc;

    dcb__chain_get(&chain, &n_chain);
    hello.protocol_version = DCB_PROTO_VERSION;
    hello.role = (Dcb__ConnRole)c->c_role;
    hello.has_capabilities = 1;
    hello.capabilities = DCB__CAPABILITY__CAP_SHIM_STATS;
    hello.has_pid = 1;
    hello.pid = dcb_getpid();
    hello.shim_version = (char *)DCB_SHIM_VERSION;
    hello.n_chain_dlls = n_chain;
    hello.chain_dlls = chain;
    hello.has_instance_id = 1;
    hello.instance_id = dcb__instance_id;
    /* Hello is the one frame whose size the packet limit does not bound. */
    len = dcb_frame_size(&hello.base);
    buf = len <= c->c_wcap ? c->c_wbuf : malloc(len);
    if (buf == NULL)
        return DCB_OS_ENOMEM;
    rc = dcb_frame_encode(DCB__FRAME_TYPE__FT_HELLO, &hello.base, buf, len);
    if (rc > 0)
        rc = dcb__tp_write(c->c_tp, buf, (size_t)rc, deadline_ns);
    if (buf != c->c_wbuf)
        free(buf);
    return rc;
}

static int wait_welcome(dcb__conn_t *c, uint64_t deadline_ns, const _Atomic int *cancel,
                        uint32_t *hooks)
{
    static _Atomic int version_logged;
    dcb_msg_t m;
    Dcb__Welcome *w;
    uint64_t slice;
    int rc;

    for (;;) {
        if (cancel != NULL && atomic_load(cancel))
            return DCB_OS_ETIMEDOUT;
        slice = dcb_now_ns() + SLICE_NS;
        rc = dcb__conn_read_frame(c, slice < deadline_ns ? slice : deadline_ns, 1, &m);
        /*
         * A Subscription may overtake the Welcome on a NOTIFY connection; the
         * Welcome that follows carries the same set, so it is only skipped.
         */
        if (rc == 0 && m.type == DCB__FRAME_TYPE__FT_SUBSCRIPTION &&
            c->c_role == DCB__CONN_ROLE__ROLE_NOTIFY) {
            dcb__conn_consume(c, m.frame_len);
            continue;
        }
        if (rc != DCB_OS_ETIMEDOUT || dcb_now_ns() >= deadline_ns)
            break;
    }
    if (rc == DCB_E_VERSION) {
        if (!atomic_exchange(&version_logged, 1))
            dcb__log(DCB_LOG_ERROR,
                     "the broker speaks another protocol version (we speak %d); "
                     "using default decisions",
                     DCB_PROTO_VERSION);
        return rc;
    }
    if (rc != 0)
        return rc;
    if (m.type != DCB__FRAME_TYPE__FT_WELCOME) {
        dcb__log(DCB_LOG_ERROR, "the broker answered Hello with frame type %u", m.type);
        return DCB_E_TYPE;
    }
    w = (Dcb__Welcome *)m.msg;
    if (w->protocol_version != DCB_PROTO_VERSION) {
        if (!atomic_exchange(&version_logged, 1))
            dcb__log(DCB_LOG_ERROR,
                     "the broker speaks protocol %u, we speak %d; "
                     "using default decisions",
                     w->protocol_version, DCB_PROTO_VERSION);
        return DCB_E_VERSION;
    }
    *hooks = w->subscribed_hooks;
    if (w->has_max_packet_size && w->max_packet_size > 0) {
        uint32_t ours = dcb__cfg.c_max_packet;
        atomic_store(&dcb__max_packet, w->max_packet_size < ours ? w->max_packet_size : ours);
    }
    dcb__conn_consume(c, m.frame_len);
    return 0;
}

static const char *errtext(int rc)
{
    switch (rc) {
    case DCB__TP_ENOENT:
        return "no broker listening";
    case DCB__TP_EBUSY:
        return "broker busy";
    case DCB__TP_EOF:
        return "broker closed the connection";
    case DCB__TP_EPEER:
        return "broker endpoint served by an unexpected account";
    case DCB__TP_EACCES:
        return "access to the broker endpoint denied";
    case DCB_OS_ETIMEDOUT:
        return "timed out";
    case DCB_OS_ENOMEM:
        return "out of memory";
    case DCB_OS_EINVAL:
        return "invalid endpoint name";
    case DCB_OS_EIO:
        return "I/O error";
    default:
        return dcb_proto_strerror(rc);
    }
}

dcb__conn_t *dcb__conn_open(int role, uint64_t deadline_ns, const _Atomic int *cancel,
                            uint32_t *hooks)
{
    static _Atomic int last_err;
    dcb__conn_t *c;
    int rc;

    c = conn_alloc(role);
    if (c == NULL) {
        rc = DCB_OS_ENOMEM;
        goto fail;
    }
    rc = dcb__tp_connect(dcb__cfg.c_pipe, dcb__cfg.c_broker_account, &c->c_tp);
    if (rc != 0)
        goto fail;
    rc = send_hello(c, deadline_ns);
    if (rc < 0)
        goto fail;
    rc = wait_welcome(c, deadline_ns, cancel, hooks);
    if (rc != 0)
        goto fail;
    atomic_store(&last_err, 0);
    return c;

fail:
    /* One line per change of reason: a broker that stays down is not a log flood. */
    if (atomic_exchange(&last_err, rc) != rc)
        dcb__log(rc == DCB__TP_ENOENT ? DCB_LOG_WARN : DCB_LOG_ERROR, "cannot connect to %s: %s",
                 dcb__cfg.c_pipe, errtext(rc));
    dcb__conn_close(c);
    return NULL;
}
