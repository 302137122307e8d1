/*
 * shimconn.c — the shim-facing pipe server (a Unix socket on Linux, a
 * named pipe on Windows; libuv gives both one API).
 *
 * Every connection starts with Hello and gets Welcome. REQUEST connections
 * carry NewPkt/PktSend, one at a time, each answered on the same
 * connection; the NOTIFY connection carries every other event and
 * ShimStats, and gets Subscription whenever the subscribed set changes.
 *
 * Anything else is a protocol violation: the connection is logged and
 * closed, and nothing else is affected. Frames are checked header first
 * (wire.c), decoded into one scratch arena, validated (proto/validate.c),
 * and copied out before the next frame is looked at.
 */
#include "chain.h"
#include "pipesec.h"
#include "platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHIMCONN_HELLO_TIMEOUT_NS 10000000000ull
/*
 * A frame the shim began must be complete within this (it writes each frame
 * whole and gives up on a write within its deadline, milliseconds): a peer
 * that trickles or stops mid-frame does not keep a connection and its
 * buffer forever.
 */
#define SHIMCONN_FRAME_TIMEOUT_NS 5000000000ull
#define SHIMCONN_MAX_QUEUED (1u << 20)
#define SHIMCONN_MAX_INSTANCES 64

struct shimconn {
    blist_t c_link;
    broker_t *c_broker;
    uv_pipe_t c_pipe;
    uint64_t c_id;
    int c_hello;
    int c_role;
    int c_closing;
    shiminst_t *c_inst;
    wire_rd_t c_rd;
    wire_wr_t c_wr;        /* frames to the shim, written once per loop iteration */
    chain_ev_t *c_pending; /* the request awaiting its answer (ref) */
    btimer_t c_hello_timer;
    btimer_t c_frame_timer; /* armed while a begun frame is incomplete */
};

static const char *role_name(const shimconn_t *c)
{
    if (!c->c_hello)
        return "new";
    return c->c_role == DCB__CONN_ROLE__ROLE_NOTIFY ? "notify" : "request";
}

static void conn_closed_cb(uv_handle_t *handle)
{
    shimconn_t *c = handle->data;

    wire_rd_free(&c->c_rd);
    free(c);
}

static void conn_close(shimconn_t *c, dcb_log_level_t level, const char *fmt, ...)
    BROKER_PRINTF(3, 4);

static void conn_close(shimconn_t *c, dcb_log_level_t level, const char *fmt, ...)
{
    broker_t *b = c->c_broker;
    char msg[256];
    va_list ap;

    if (c->c_closing)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dcb_log(level, "shim connection %llu (%s, pid %u): %s; closed", (unsigned long long)c->c_id,
            role_name(c), c->c_inst ? c->c_inst->sh_pid : 0, msg);
    c->c_closing = 1;
    btimer_stop(b, &c->c_hello_timer);
    btimer_stop(b, &c->c_frame_timer);
    if (c->c_pending != NULL) {
        chain_conn_gone(c->c_pending);
        chain_ev_unref(c->c_pending);
        c->c_pending = NULL;
    }
    if (c->c_inst != NULL)
        c->c_inst->sh_conns--;
    blist_del(&c->c_link);
    b->b_nconns--;
    /*
     * What is still buffered (a Welcome before a version mismatch close, say)
     * gets the one try an unbuffered write had; the close cancels the rest.
     */
    wire_wr_flush(&c->c_wr);
    wire_wr_free(&c->c_wr);
    uv_close((uv_handle_t *)&c->c_pipe, conn_closed_cb);
}

static void violation(shimconn_t *c, const char *what, int rc)
{
    c->c_broker->b_violations++;
    conn_close(c, DCB_LOG_WARN, "protocol violation: %s%s%s", what, rc ? ": " : "",
               rc ? dcb_proto_strerror(rc) : "");
}

static void send_frame(shimconn_t *c, uint8_t type, const ProtobufCMessage *msg)
{
    int rc;

    if (c->c_closing)
        return;
    rc = wire_send(c->c_broker, &c->c_wr, type, msg);
    if (rc != 0) {
        conn_close(c, DCB_LOG_WARN, "write failed: %s", uv_strerror(rc));
        return;
    }
    if (wire_wr_queued(&c->c_wr) > SHIMCONN_MAX_QUEUED)
        conn_close(c, DCB_LOG_WARN, "the shim does not read (%zu bytes queued)",
                   wire_wr_queued(&c->c_wr));
}

/* The loop's flush of c_wr failed (wire_wr_err_cb). */
static void conn_write_failed(wire_wr_t *w, int err)
{
    shimconn_t *c = broker_container_of(w, shimconn_t, c_wr);
    broker_t *b = c->c_broker;

    conn_close(c, DCB_LOG_WARN, "write failed: %s", uv_strerror(err));
    chain_run(b);
}

void shimconn_request_begin(shimconn_t *c, chain_ev_t *ev)
{
    ev->ev_refs++;
    c->c_pending = ev;
}

void shimconn_answer(shimconn_t *c, uint8_t type, const ProtobufCMessage *msg)
{
    send_frame(c, type, msg);
}

void shimconn_request_done(shimconn_t *c)
{
    if (c->c_pending != NULL) {
        chain_ev_unref(c->c_pending);
        c->c_pending = NULL;
    }
}

static void send_welcome(shimconn_t *c, uint32_t subscribed)
{
    Dcb__Welcome w = DCB__WELCOME__INIT;

    w.protocol_version = DCB_PROTO_VERSION;
    w.subscribed_hooks = subscribed;
    w.has_capabilities = 1;
    w.capabilities = DCB__CAPABILITY__CAP_SHIM_STATS;
    w.broker_version = BROKER_VERSION;
    w.has_max_packet_size = 1;
    w.max_packet_size = c->c_broker->b_cfg->cfg_max_packet;
    send_frame(c, DCB__FRAME_TYPE__FT_WELCOME, &w.base);
}

static void hook_list(uint32_t bits, char *out, size_t outlen)
{
    out[0] = '\0';
    for (int h = 0; h < DCB_HOOK_COUNT; h++)
        if (bits & DCB_HOOK_BIT(h))
            snprintf(out + strlen(out), outlen - strlen(out), "%s%s", out[0] ? "," : "",
                     dcb_hook_name(h));
    if (out[0] == '\0')
        snprintf(out, outlen, "(none)");
}

void shimconn_push_subscription(broker_t *b)
{
    uint32_t bits = chain_subscribed(b);
    Dcb__Subscription s = DCB__SUBSCRIPTION__INIT;
    char names[128];

    if (bits == b->b_subscribed)
        return;
    b->b_subscribed = bits;
    hook_list(bits, names, sizeof(names));
    dcb_log(DCB_LOG_INFO, "subscribed hooks: %s", names);
    s.subscribed_hooks = bits;
    for (blist_t *it = b->b_conns.next; it != &b->b_conns;) {
        shimconn_t *c = broker_container_of(it, shimconn_t, c_link);
        it = it->next; /* send_frame may close c */
        if (c->c_hello && c->c_role == DCB__CONN_ROLE__ROLE_NOTIFY)
            send_frame(c, DCB__FRAME_TYPE__FT_SUBSCRIPTION, &s.base);
    }
}

static shiminst_t *instance_get(broker_t *b, uint64_t id, uint32_t pid)
{
    shiminst_t *si, *oldest_idle = NULL;
    uint32_t count = 0;

    for (blist_t *it = b->b_insts.next; it != &b->b_insts; it = it->next) {
        si = broker_container_of(it, shiminst_t, sh_link);
        if (si->sh_id == id)
            return si;
        if (si->sh_conns == 0 && oldest_idle == NULL)
            oldest_idle = si;
        count++;
    }
    if (count >= SHIMCONN_MAX_INSTANCES && oldest_idle != NULL) {
        blist_del(&oldest_idle->sh_link);
        stats_shim_release(oldest_idle);
        free(oldest_idle);
    }
    si = calloc(1, sizeof(*si));
    if (si == NULL)
        return NULL;
    si->sh_id = id;
    si->sh_pid = pid;
    blist_add_tail(&b->b_insts, &si->sh_link);
    return si;
}

void shimconn_free_instances(broker_t *b)
{
    while (!blist_empty(&b->b_insts)) {
        shiminst_t *si = broker_container_of(b->b_insts.next, shiminst_t, sh_link);
        blist_del(&si->sh_link);
        stats_shim_release(si);
        free(si);
    }
}

static void on_hello(shimconn_t *c, const Dcb__Hello *h)
{
    broker_t *b = c->c_broker;

    if (h->protocol_version != DCB_PROTO_VERSION) {
        send_welcome(c, 0);
        conn_close(c, DCB_LOG_WARN, "shim speaks protocol version %u, the broker %u",
                   h->protocol_version, DCB_PROTO_VERSION);
        return;
    }
    c->c_inst = instance_get(b, h->has_instance_id ? h->instance_id : 0, h->has_pid ? h->pid : 0);
    if (c->c_inst == NULL) {
        conn_close(c, DCB_LOG_ERROR, "out of memory");
        return;
    }
    c->c_inst->sh_conns++;
    if (h->has_pid)
        c->c_inst->sh_pid = h->pid;
    c->c_role = h->role;
    c->c_hello = 1;
    btimer_stop(b, &c->c_hello_timer);
    dcb_log(DCB_LOG_INFO,
            "shim connection %llu: %s, pid %u, instance %llx, shim %s, %zu chained DLLs",
            (unsigned long long)c->c_id, role_name(c), c->c_inst->sh_pid,
            (unsigned long long)c->c_inst->sh_id, h->shim_version ? h->shim_version : "?",
            h->n_chain_dlls);
    /*
     * The server's CalloutDlls after the shim define the chain. A Hello
     * without any leaves the configured chain alone.
     */
    if (h->n_chain_dlls > 0 && !chain_matches(b, h->chain_dlls, h->n_chain_dlls)) {
        dcb_log(DCB_LOG_INFO, "shim instance %llx names a different chain; rebuilding it",
                (unsigned long long)c->c_inst->sh_id);
        if (chain_set(b, h->chain_dlls, h->n_chain_dlls) != 0) {
            conn_close(c, DCB_LOG_ERROR, "could not build the chain (out of memory)");
            return;
        }
    }
    /*
     * Welcome first: PROTOCOL.md promises it as the answer to Hello, and a
     * chain rebuilt above may change the set the other shims must hear of.
     */
    send_welcome(c, b->b_subscribed);
    shimconn_push_subscription(b);
}

static void on_frame(shimconn_t *c, const dcb_msg_t *m, const uint8_t *frame)
{
    broker_t *b = c->c_broker;
    int hook = dcb_frame_event_hook(m->type);
    Dcb__EventHeader *hdr;

    if (!c->c_hello) {
        if (m->type != DCB__FRAME_TYPE__FT_HELLO) {
            violation(c, "first frame is not Hello", 0);
            return;
        }
        on_hello(c, (const Dcb__Hello *)m->msg);
        return;
    }
    if (m->type == DCB__FRAME_TYPE__FT_SHIM_STATS && c->c_role == DCB__CONN_ROLE__ROLE_NOTIFY) {
        stats_shim_update(c->c_inst, (const Dcb__ShimStats *)m->msg);
        return;
    }
    if (hook < 0) {
        violation(c, "unexpected frame type", 0);
        return;
    }
    hdr = dcb_event_header(m->type, m->msg);
    if (c->c_role == DCB__CONN_ROLE__ROLE_REQUEST) {
        if (hook != DCB_HOOK_NEWPKT && hook != DCB_HOOK_PKTSEND) {
            violation(c, "notification on a REQUEST connection", 0);
            return;
        }
        if (!hdr->has_request_id || hdr->request_id == 0) {
            violation(c, "request without a request_id", 0);
            return;
        }
        if (c->c_pending != NULL) {
            violation(c, "a second request before the answer to the first", 0);
            return;
        }
    } else {
        if (hook == DCB_HOOK_NEWPKT || hook == DCB_HOOK_PKTSEND) {
            violation(c, "request on the NOTIFY connection", 0);
            return;
        }
        if (hdr->has_request_id && hdr->request_id != 0) {
            violation(c, "notification with a request_id", 0);
            return;
        }
    }
    if (chain_on_event(b, c, c->c_inst->sh_id, m->type, m->msg, frame, m->frame_len) != 0)
        violation(c, "packet hook without a packet id", 0);
}

static void conn_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    shimconn_t *c = handle->data;

    (void)suggested;
    wire_rd_alloc(&c->c_rd, buf);
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    shimconn_t *c = s->data;
    broker_t *b = c->c_broker;
    int progress;

    (void)buf;
    if (nread == 0 || c->c_closing)
        return;
    if (nread < 0) {
        conn_close(c, nread == UV_EOF ? DCB_LOG_INFO : DCB_LOG_WARN, "%s",
                   nread == UV_EOF ? "the shim hung up" : uv_strerror((int)nread));
        chain_run(b);
        return;
    }
    c->c_rd.wr_len += (size_t)nread;
    /* Progress (a whole frame) or nothing buffered stops the clock; a begun frame starts it. */
    progress = 0;
    while (!c->c_closing) {
        dcb_msg_t m;
        size_t len;
        int rc = wire_rd_next(&c->c_rd, &b->b_lim_shim, &len);

        if (rc == 0)
            break;
        if (rc == DCB_E_VERSION && !c->c_hello) {
            /* A shim of another protocol version: tell it ours, as PROTOCOL.md says. */
            send_welcome(c, 0);
            conn_close(c, DCB_LOG_WARN, "the shim's frames are of another protocol version");
            break;
        }
        if (rc < 0) {
            violation(c, "bad frame", rc);
            break;
        }
        rc = dcb_frame_decode(c->c_rd.wr_buf, len, &b->b_lim_shim, &b->b_arena, &m);
        if (rc != 0) {
            violation(c, "bad frame", rc);
            break;
        }
        on_frame(c, &m, c->c_rd.wr_buf);
        if (!c->c_closing)
            wire_rd_consume(&c->c_rd, len);
        progress = 1;
    }
    if (!c->c_closing) {
        if (progress || c->c_rd.wr_len == 0)
            btimer_stop(b, &c->c_frame_timer);
        if (c->c_rd.wr_len > 0 && !btimer_active(&c->c_frame_timer))
            btimer_start(b, &c->c_frame_timer, dcb_now_ns() + SHIMCONN_FRAME_TIMEOUT_NS);
    }
    chain_run(b);
}

static void hello_timeout_cb(btimer_t *t)
{
    shimconn_t *c = broker_container_of(t, shimconn_t, c_hello_timer);

    violation(c, "no Hello within 10 s", 0);
}

static void frame_timeout_cb(btimer_t *t)
{
    shimconn_t *c = broker_container_of(t, shimconn_t, c_frame_timer);

    violation(c, "a frame begun 5 s ago is still incomplete", 0);
    chain_run(c->c_broker);
}

static void on_connection(pipesec_t *ps, void *data)
{
    broker_t *b = data;
    shimconn_t *c;
    char peer[64];
    int rc;

    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->c_broker = b;
    c->c_id = ++b->b_next_conn_id;
    uv_pipe_init(b->b_loop, &c->c_pipe, 0);
    c->c_pipe.data = c;
    wire_wr_init(&c->c_wr, (uv_stream_t *)&c->c_pipe, conn_write_failed);
    btimer_init(&c->c_hello_timer, hello_timeout_cb);
    btimer_init(&c->c_frame_timer, frame_timeout_cb);
    blist_add_tail(&b->b_conns, &c->c_link);
    b->b_nconns++;
    /* pipesec: the peer's account is checked here (Linux) or by the pipe's DACL (Windows). */
    rc = pipesec_accept(ps, &c->c_pipe, peer, sizeof(peer));
    if (rc == UV_EACCES) {
        b->b_violations++;
        conn_close(c, DCB_LOG_WARN, "refused: %s may not connect (pipe_allow)", peer);
        return;
    }
    if (rc != 0) {
        conn_close(c, DCB_LOG_WARN, "accept: %s", uv_strerror(rc));
        return;
    }
    if (b->b_nconns > b->b_cfg->cfg_max_connections) {
        conn_close(c, DCB_LOG_WARN, "too many connections (max_connections %u)",
                   b->b_cfg->cfg_max_connections);
        return;
    }
    btimer_start(b, &c->c_hello_timer, dcb_now_ns() + SHIMCONN_HELLO_TIMEOUT_NS);
    rc = uv_read_start((uv_stream_t *)&c->c_pipe, conn_alloc, conn_read);
    if (rc != 0)
        conn_close(c, DCB_LOG_WARN, "read: %s", uv_strerror(rc));
}

int shimconn_listen(broker_t *b)
{
    const char *name = b->b_cfg->cfg_pipe;
    char err[512];
    int rc;

    blist_init(&b->b_conns);
    blist_init(&b->b_insts);
    /* Directory, DACL, first instance, peer checks: see pipesec.h. */
    rc = pipesec_listen(b->b_loop, name, PIPESEC_EVENT, b->b_cfg->cfg_pipe_allow, on_connection, b,
                        &b->b_server, err, sizeof(err));
    if (rc != 0) {
        if (err[0] != '\0')
            dcb_log(DCB_LOG_ERROR, "event pipe: %s", err);
        return rc;
    }
    b->b_server_open = 1;
    return 0;
}

void shimconn_close_all(broker_t *b)
{
    if (b->b_server_open) {
        b->b_server_open = 0;
        pipesec_close(b->b_server);
        b->b_server = NULL;
    }
    while (!blist_empty(&b->b_conns))
        conn_close(broker_container_of(b->b_conns.next, shimconn_t, c_link), DCB_LOG_INFO,
                   "the broker is stopping");
}
