/*
 * control.c — the control endpoint: dcbctl's way in (status, stats,
 * reload, enable, disable, set timeout, reset stats).
 *
 * A separate pipe server from the shims', created and secured by pipesec.h
 * as PIPESEC_CONTROL (Windows: Administrators and the broker's own account,
 * no remote clients; Linux: a 0600 socket in a private directory, peers
 * checked by uid; control_allow names more accounts). The client speaks
 * first: one ControlRequest, one ControlResponse, several in turn on one
 * connection. Requests are small (CONTROL_MAX_REQUEST); a frame header that
 * is not a control request, or announces more, closes the connection before
 * anything is buffered. A request that is framed well but does not decode or
 * validate gets CS_BAD_REQUEST, and the connection goes on.
 *
 * The event path comes first. Control connections are capped
 * (CONTROL_MAX_CONNS; more are accepted and closed at once, and counted),
 * idle ones are closed, a client that does not read its answers is cut
 * off, and the requests that cost the loop real work (STATUS, STATS) draw
 * from a budget refilled CONTROL_REPORTS_PER_S times a second: beyond it a
 * connection waits its turn rather than taking time from the shims.
 *
 * CC_RELOAD is answered when the new generation has taken over, or has
 * failed to load; meanwhile that connection reads nothing else (its bytes
 * stay buffered, within a bound), and every other connection is served.
 */
#include "chain.h"
#include "pipesec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTROL_MAX_CONNS 16
#define CONTROL_MAX_REQUEST 4096u
#define CONTROL_MAX_BUFFERED (4u * CONTROL_MAX_REQUEST)
#define CONTROL_IDLE_NS 60000000000ull
/* Answers not yet taken by the client: two of the largest, then it is cut off. */
#define CONTROL_MAX_QUEUED (2u * (DCB_MAX_FRAME_CONTROL + DCB_FRAME_HEADER_SIZE))
#define CONTROL_REPORTS_PER_S 20.0
#define CONTROL_REPORTS_BURST 20.0
#define CONTROL_MAX_TIMEOUT_MS 60000u

typedef struct ctlconn {
    blist_t cc_link; /* b_ctl_conns */
    broker_t *cc_broker;
    uv_pipe_t cc_pipe;
    uint64_t cc_id;
    int cc_closing;
    int cc_deferred; /* waits for the report budget */
    wire_rd_t cc_rd;
    broker_plugin_t *cc_wait; /* the reload this connection waits for (ref) */
    btimer_t cc_idle_timer;
    btimer_t cc_kick_timer; /* goes on with buffered requests, outside other callbacks */
} ctlconn_t;

typedef struct ctl_wreq {
    uv_write_t cw_req;
    uint8_t cw_data[];
} ctl_wreq_t;

static const dcb_limits_t control_limits = {CONTROL_MAX_REQUEST, DCB_MAX_PACKET_DEFAULT};

static void ctl_process(ctlconn_t *c);

/* ---- connections ------------------------------------------------------------- */

static void ctl_closed_cb(uv_handle_t *handle)
{
    ctlconn_t *c = handle->data;

    wire_rd_free(&c->cc_rd);
    free(c);
}

BROKER_PRINTF(3, 4)
static void ctl_close(ctlconn_t *c, dcb_log_level_t level, const char *fmt, ...)
{
    broker_t *b = c->cc_broker;
    char msg[200];
    va_list ap;

    if (c->cc_closing)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dcb_log(level, "control connection %llu: %s; closed", (unsigned long long)c->cc_id, msg);
    c->cc_closing = 1;
    btimer_stop(b, &c->cc_idle_timer);
    btimer_stop(b, &c->cc_kick_timer);
    if (c->cc_wait != NULL) {
        /* The reload goes on; only its answer has nowhere to go. */
        plugin_unref(c->cc_wait);
        c->cc_wait = NULL;
    }
    blist_del(&c->cc_link);
    b->b_nctl--;
    uv_close((uv_handle_t *)&c->cc_pipe, ctl_closed_cb);
}

static void ctl_write_cb(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows up on the read side */
    free(broker_container_of(req, ctl_wreq_t, cw_req));
}

/* Encodes and writes one frame: what the kernel does not take at once is queued. */
static int ctl_write(ctlconn_t *c, const ProtobufCMessage *msg)
{
    size_t size = dcb_frame_size(msg);
    ctl_wreq_t *w;
    uv_buf_t buf;
    int n, rc;

    if (size > DCB_MAX_FRAME_CONTROL + DCB_FRAME_HEADER_SIZE)
        return DCB_E_TOOBIG;
    w = malloc(sizeof(*w) + size);
    if (w == NULL)
        return UV_ENOMEM;
    n = dcb_frame_encode(DCB__FRAME_TYPE__FT_CTL_RESPONSE, msg, w->cw_data, size);
    if (n < 0) {
        free(w);
        return n;
    }
    buf = uv_buf_init((char *)w->cw_data, (unsigned)n);
    rc = uv_try_write((uv_stream_t *)&c->cc_pipe, &buf, 1);
    if (rc == n) {
        free(w);
        return 0;
    }
    if (rc < 0)
        rc = 0; /* EAGAIN, or no try_write for this handle: queue it all */
    buf = uv_buf_init((char *)w->cw_data + rc, (unsigned)(n - rc));
    rc = uv_write(&w->cw_req, (uv_stream_t *)&c->cc_pipe, &buf, 1, ctl_write_cb);
    if (rc != 0)
        free(w);
    return rc;
}

static void ctl_answer(ctlconn_t *c, Dcb__ControlResponse *resp)
{
    int rc;

    if (c->cc_closing)
        return;
    rc = ctl_write(c, &resp->base);
    if (rc != 0)
        ctl_close(c, DCB_LOG_WARN, "cannot answer: %s",
                  rc <= DCB_E_TRUNCATED && rc >= DCB_E_NOMEM ? dcb_proto_strerror(rc)
                                                             : uv_strerror(rc));
}

static void ctl_answer_status(ctlconn_t *c, int status, const char *error)
{
    Dcb__ControlResponse resp = DCB__CONTROL_RESPONSE__INIT;

    resp.status = (Dcb__ControlStatus)status;
    if (error != NULL && error[0] != '\0')
        resp.error = (char *)error;
    ctl_answer(c, &resp);
}

/* ---- the report budget ---------------------------------------------------------- */

/* Takes one report from the budget: 0, or the nanoseconds until there is one. */
static uint64_t budget_take(broker_t *b)
{
    uint64_t now = dcb_now_ns();

    b->b_ctl_tokens += (double)(now - b->b_ctl_tokens_ns) * CONTROL_REPORTS_PER_S / 1e9;
    if (b->b_ctl_tokens > CONTROL_REPORTS_BURST)
        b->b_ctl_tokens = CONTROL_REPORTS_BURST;
    b->b_ctl_tokens_ns = now;
    if (b->b_ctl_tokens >= 1.0) {
        b->b_ctl_tokens -= 1.0;
        return 0;
    }
    return (uint64_t)((1.0 - b->b_ctl_tokens) * 1e9 / CONTROL_REPORTS_PER_S) + 1;
}

/* ---- commands ------------------------------------------------------------------- */

static Dcb__PluginState status_state(const broker_plugin_t *p)
{
    if (p->p_reloading)
        return DCB__PLUGIN_STATE__PS_RELOADING;
    switch (p->p_state) {
    case PLUGIN_STARTING:
        return DCB__PLUGIN_STATE__PS_STARTING;
    case PLUGIN_RUNNING:
        return DCB__PLUGIN_STATE__PS_RUNNING;
    case PLUGIN_RESTARTING:
        return DCB__PLUGIN_STATE__PS_RESTARTING;
    case PLUGIN_DISABLED:
        return DCB__PLUGIN_STATE__PS_DISABLED;
    }
    return DCB__PLUGIN_STATE__PS_STARTING;
}

static void cmd_status(ctlconn_t *c)
{
    broker_t *b = c->cc_broker;
    chain_t *ch = b->b_chain;
    Dcb__ControlResponse resp = DCB__CONTROL_RESPONSE__INIT;
    Dcb__StatusReport sr = DCB__STATUS_REPORT__INIT;
    Dcb__PluginStatus *ps = NULL, **list = NULL;
    uint64_t now = dcb_now_ns();
    size_t n = ch != NULL ? ch->c_n : 0;
    uint32_t shims = 0;

    if (n > 0) {
        ps = calloc(n, sizeof(*ps));
        list = calloc(n, sizeof(*list));
        if (ps == NULL || list == NULL) {
            free(ps);
            free(list);
            ctl_answer_status(c, DCB__CONTROL_STATUS__CS_FAILED, "out of memory");
            return;
        }
    }
    for (blist_t *it = b->b_insts.next; it != &b->b_insts; it = it->next)
        shims += broker_container_of(it, shiminst_t, sh_link)->sh_conns > 0;
    sr.broker_pid = dcb_getpid();
    sr.uptime_ms = (now - b->b_start_ns) / 1000000u;
    sr.has_shims_connected = 1;
    sr.shims_connected = shims;
    sr.broker_version = BROKER_VERSION;
    for (size_t i = 0; i < n; i++) {
        broker_plugin_t *p = ch->c_plugins[i];
        Dcb__PluginStatus *s = &ps[i];
        const host_t *h = p->p_cur != NULL ? p->p_cur : p->p_starting;

        dcb__plugin_status__init(s);
        s->name = p->p_name;
        s->state = status_state(p);
        s->has_pid = 1;
        s->pid = h != NULL ? h->h_pid : 0;
        if (host_ready(p->p_cur)) {
            s->has_uptime_ms = 1;
            s->uptime_ms = (now - p->p_cur->h_ready_ns) / 1000000u;
        }
        s->has_restarts = 1;
        s->restarts = p->p_stats.ps_restarts;
        if (p->p_last_failure[0] != '\0') {
            s->last_failure = p->p_last_failure;
            s->has_last_failure_age_ms = 1;
            s->last_failure_age_ms = (now - p->p_last_failure_ns) / 1000000u;
        }
        s->dll_path = p->p_dll;
        if (p->p_hooks_known) {
            s->has_hooks = 1;
            s->hooks = p->p_hooks;
        }
        s->has_generation = 1;
        s->generation = p->p_cur != NULL ? p->p_cur->h_generation : p->p_generation;
        s->has_reloads = 1;
        s->reloads = p->p_stats.ps_reloads;
        s->has_draining = 1;
        s->draining = p->p_draining;
        list[i] = s;
    }
    sr.n_plugins = n;
    sr.plugins = list;
    resp.status = DCB__CONTROL_STATUS__CS_OK;
    resp.status_report = &sr;
    ctl_answer(c, &resp);
    free(list);
    free(ps);
}

static void cmd_stats(ctlconn_t *c)
{
    broker_t *b = c->cc_broker;
    Dcb__ControlResponse resp = DCB__CONTROL_RESPONSE__INIT;
    Dcb__StatsReport sr;

    /*
     * Exact histograms when they fit in a control frame; otherwise
     * neighbouring buckets are merged, as few as it takes (a histogram
     * whose buckets all hold something is 2368 buckets; merged 64 to 1 it
     * is 37, and every report of 64 plugins fits).
     */
    for (int shift = 0; shift <= DCB_HIST_SUB_BITS; shift++) {
        int rc = stats_report(b, &sr, shift);
        if (rc != 0) {
            stats_report_free(&sr);
            ctl_answer_status(c, DCB__CONTROL_STATUS__CS_FAILED, "out of memory");
            return;
        }
        resp.status = DCB__CONTROL_STATUS__CS_OK;
        resp.stats_report = &sr;
        if (dcb_frame_size(&resp.base) <= DCB_MAX_FRAME_CONTROL + DCB_FRAME_HEADER_SIZE) {
            if (shift > 0)
                dcb_log(DCB_LOG_WARN,
                        "control: statistics too large for one answer; histograms sent with "
                        "%d buckets merged into one",
                        1 << shift);
            ctl_answer(c, &resp);
            stats_report_free(&sr);
            return;
        }
        stats_report_free(&sr);
    }
    ctl_answer_status(c, DCB__CONTROL_STATUS__CS_FAILED, "statistics too large to send");
}

static void cmd_reload(ctlconn_t *c, broker_plugin_t *p)
{
    char why[200] = "";
    int rc;

    /* Wait first: a reload can end before plugin_reload returns (a spawn that fails). */
    plugin_ref(p);
    c->cc_wait = p;
    rc = plugin_reload(p, why, sizeof(why));
    if (rc != 0 && c->cc_wait == p) {
        c->cc_wait = NULL;
        plugin_unref(p);
        ctl_answer_status(c, rc, why);
    }
}

static void cmd_set_timeout(ctlconn_t *c, const Dcb__ControlRequest *req, broker_plugin_t *p)
{
    if (!req->has_timeout_ms || req->timeout_ms < 1 || req->timeout_ms > CONTROL_MAX_TIMEOUT_MS) {
        ctl_answer_status(c, DCB__CONTROL_STATUS__CS_BAD_REQUEST,
                          "timeout_ms must be between 1 and 60000");
        return;
    }
    for (int h = 0; h < DCB_HOOK_COUNT; h++)
        if (!req->has_hook || req->hook == (uint32_t)h)
            p->p_pol.pol_timeout_ms[h] = req->timeout_ms;
    /* Events already under way keep the deadline they were given. */
    dcb_log(DCB_LOG_INFO, "plugin %s: timeout %u ms for %s (set by an operator)", p->p_name,
            req->timeout_ms, req->has_hook ? dcb_hook_name((int)req->hook) : "every hook");
    ctl_answer_status(c, DCB__CONTROL_STATUS__CS_OK, NULL);
}

static int is_report(int command)
{
    return command == DCB__CONTROL_COMMAND__CC_STATUS || command == DCB__CONTROL_COMMAND__CC_STATS;
}

static void ctl_request(ctlconn_t *c, const Dcb__ControlRequest *req)
{
    broker_t *b = c->cc_broker;
    broker_plugin_t *p;
    char why[200] = "";
    int rc;

    switch (req->command) {
    case DCB__CONTROL_COMMAND__CC_STATUS:
        cmd_status(c);
        return;
    case DCB__CONTROL_COMMAND__CC_STATS:
        cmd_stats(c);
        return;
    case DCB__CONTROL_COMMAND__CC_RESET_STATS:
        stats_reset(b);
        ctl_answer_status(c, DCB__CONTROL_STATUS__CS_OK, NULL);
        return;
    case DCB__CONTROL_COMMAND__CC_RELOAD:
    case DCB__CONTROL_COMMAND__CC_ENABLE:
    case DCB__CONTROL_COMMAND__CC_DISABLE:
    case DCB__CONTROL_COMMAND__CC_SET_TIMEOUT:
        break;
    default:
        ctl_answer_status(c, DCB__CONTROL_STATUS__CS_BAD_REQUEST, "unknown command");
        return;
    }
    if (req->plugin == NULL || req->plugin[0] == '\0') {
        ctl_answer_status(c, DCB__CONTROL_STATUS__CS_BAD_REQUEST, "this command needs a plugin");
        return;
    }
    p = plugin_find(b, req->plugin);
    if (p == NULL) {
        ctl_answer_status(c, DCB__CONTROL_STATUS__CS_UNKNOWN_PLUGIN,
                          "no plugin of that name in the chain");
        return;
    }
    switch (req->command) {
    case DCB__CONTROL_COMMAND__CC_RELOAD:
        cmd_reload(c, p);
        return;
    case DCB__CONTROL_COMMAND__CC_ENABLE:
        rc = plugin_enable(p, why, sizeof(why));
        break;
    case DCB__CONTROL_COMMAND__CC_DISABLE:
        rc = plugin_disable(p, why, sizeof(why));
        break;
    default:
        cmd_set_timeout(c, req, p);
        return;
    }
    ctl_answer_status(c, rc, why);
}

/* ---- reading --------------------------------------------------------------------- */

/* Handles the requests buffered on c, one after the other, until one has to wait. */
static void ctl_process(ctlconn_t *c)
{
    broker_t *b = c->cc_broker;

    while (!c->cc_closing && c->cc_wait == NULL && !c->cc_deferred) {
        dcb_msg_t m;
        size_t len;
        uint64_t wait_ns;
        int rc = wire_rd_next(&c->cc_rd, &control_limits, &len);

        if (rc == 0)
            break;
        if (rc < 0) {
            b->b_violations++;
            ctl_close(c, DCB_LOG_WARN, "bad frame: %s", dcb_proto_strerror(rc));
            break;
        }
        /* The header is sound; its type says whether this is a control request at all. */
        if (c->cc_rd.wr_buf[3] != DCB__FRAME_TYPE__FT_CTL_REQUEST) {
            ctl_close(c, DCB_LOG_WARN, "frame type %u is not a control request",
                      c->cc_rd.wr_buf[3]);
            break;
        }
        if (c->cc_pipe.write_queue_size > CONTROL_MAX_QUEUED) {
            ctl_close(c, DCB_LOG_WARN, "the client does not read its answers");
            break;
        }
        rc = dcb_frame_decode(c->cc_rd.wr_buf, len, &control_limits, &b->b_arena, &m);
        if (rc != 0) {
            char why[96];
            snprintf(why, sizeof(why), "the request does not decode: %s", dcb_proto_strerror(rc));
            wire_rd_consume(&c->cc_rd, len);
            ctl_answer_status(c, DCB__CONTROL_STATUS__CS_BAD_REQUEST, why);
            continue;
        }
        if (is_report(((const Dcb__ControlRequest *)m.msg)->command) &&
            (wait_ns = budget_take(b)) != 0) {
            /* Over the budget: this connection waits its turn (the frame stays buffered). */
            c->cc_deferred = 1;
            btimer_start(b, &c->cc_kick_timer, dcb_now_ns() + wait_ns);
            break;
        }
        wire_rd_consume(&c->cc_rd, len);
        btimer_start(b, &c->cc_idle_timer, dcb_now_ns() + CONTROL_IDLE_NS);
        ctl_request(c, (const Dcb__ControlRequest *)m.msg);
    }
}

static void ctl_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    ctlconn_t *c = handle->data;

    (void)suggested;
    wire_rd_alloc(&c->cc_rd, buf);
}

static void ctl_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    ctlconn_t *c = s->data;
    broker_t *b = c->cc_broker;

    (void)buf;
    if (nread == 0 || c->cc_closing)
        return;
    if (nread < 0) {
        ctl_close(c, nread == UV_EOF ? DCB_LOG_DEBUG : DCB_LOG_INFO, "%s",
                  nread == UV_EOF ? "the client hung up" : uv_strerror((int)nread));
        return;
    }
    c->cc_rd.wr_len += (size_t)nread;
    /* Also while a request waits (a reload, the budget): what is sent ahead is bounded. */
    if (c->cc_rd.wr_len > CONTROL_MAX_BUFFERED) {
        ctl_close(c, DCB_LOG_WARN, "more than %u bytes sent ahead", CONTROL_MAX_BUFFERED);
        return;
    }
    ctl_process(c);
    chain_run(b);
}

static void ctl_idle_cb(btimer_t *t)
{
    ctlconn_t *c = broker_container_of(t, ctlconn_t, cc_idle_timer);

    /* A connection that waits for a reload is not idle. */
    if (c->cc_wait != NULL) {
        btimer_start(c->cc_broker, t, dcb_now_ns() + CONTROL_IDLE_NS);
        return;
    }
    ctl_close(c, DCB_LOG_INFO, "idle for %llu s", CONTROL_IDLE_NS / 1000000000ull);
}

static void ctl_kick_cb(btimer_t *t)
{
    ctlconn_t *c = broker_container_of(t, ctlconn_t, cc_kick_timer);
    broker_t *b = c->cc_broker;

    c->cc_deferred = 0;
    ctl_process(c);
    chain_run(b);
}

void control_reload_done(broker_plugin_t *p, int ok, const char *why)
{
    broker_t *b = p->p_broker;
    char msg[220];

    if (!ok)
        snprintf(msg, sizeof(msg),
                 "the new generation did not load (%s); the plugin goes on as "
                 "before",
                 why != NULL ? why : "no reason given");
    for (blist_t *it = b->b_ctl_conns.next, *next; it != &b->b_ctl_conns; it = next) {
        ctlconn_t *c = broker_container_of(it, ctlconn_t, cc_link);

        next = it->next; /* answering may close c */
        if (c->cc_wait != p)
            continue;
        c->cc_wait = NULL;
        plugin_unref(p);
        ctl_answer_status(c, ok ? DCB__CONTROL_STATUS__CS_OK : DCB__CONTROL_STATUS__CS_FAILED,
                          ok ? NULL : msg);
        /*
         * Requests it sent meanwhile are taken up from the timer queue, not
         * from here: this runs deep inside the host code.
         */
        btimer_start(b, &c->cc_kick_timer, dcb_now_ns());
    }
}

/* ---- the server ----------------------------------------------------------------- */

static void ctl_on_connection(pipesec_t *ps, void *data)
{
    broker_t *b = data;
    ctlconn_t *c;
    char peer[64] = "";
    int rc;

    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->cc_broker = b;
    c->cc_id = ++b->b_next_ctl_id;
    uv_pipe_init(b->b_loop, &c->cc_pipe, 0);
    c->cc_pipe.data = c;
    btimer_init(&c->cc_idle_timer, ctl_idle_cb);
    btimer_init(&c->cc_kick_timer, ctl_kick_cb);
    blist_add_tail(&b->b_ctl_conns, &c->cc_link);
    b->b_nctl++;
    /* pipesec: the peer's account is checked here (Linux) or by the pipe's DACL (Windows). */
    rc = pipesec_accept(ps, &c->cc_pipe, peer, sizeof(peer));
    if (rc == UV_EACCES) {
        b->b_ctl_refused++;
        ctl_close(c, DCB_LOG_WARN, "refused: %s may not connect (control_allow)", peer);
        return;
    }
    if (rc != 0) {
        ctl_close(c, DCB_LOG_WARN, "accept: %s", uv_strerror(rc));
        return;
    }
    if (b->b_nctl > CONTROL_MAX_CONNS) {
        /* Said once per burst: a flood must not flood the log as well. */
        b->b_ctl_refused++;
        ctl_close(c,
                  (b->b_ctl_refused & (b->b_ctl_refused - 1)) == 0 ? DCB_LOG_WARN : DCB_LOG_DEBUG,
                  "too many control connections (%u at once; %llu refused so far)",
                  CONTROL_MAX_CONNS, (unsigned long long)b->b_ctl_refused);
        return;
    }
    btimer_start(b, &c->cc_idle_timer, dcb_now_ns() + CONTROL_IDLE_NS);
    rc = uv_read_start((uv_stream_t *)&c->cc_pipe, ctl_alloc, ctl_read);
    if (rc != 0)
        ctl_close(c, DCB_LOG_WARN, "read: %s", uv_strerror(rc));
}

int control_listen(broker_t *b)
{
    char err[512] = "";
    int rc;

    b->b_ctl_tokens = CONTROL_REPORTS_BURST;
    b->b_ctl_tokens_ns = dcb_now_ns();
    /* Directory, DACL, first instance, peer checks: see pipesec.h. */
    rc = pipesec_listen(b->b_loop, b->b_cfg->cfg_control_pipe, PIPESEC_CONTROL,
                        b->b_cfg->cfg_control_allow, ctl_on_connection, b, &b->b_ctl_server, err,
                        sizeof(err));
    if (rc != 0) {
        if (err[0] != '\0')
            dcb_log(DCB_LOG_ERROR, "control endpoint: %s", err);
        return rc;
    }
    b->b_ctl_open = 1;
    return 0;
}

void control_close_all(broker_t *b)
{
    if (b->b_ctl_open) {
        b->b_ctl_open = 0;
        pipesec_close(b->b_ctl_server);
        b->b_ctl_server = NULL;
    }
    while (!blist_empty(&b->b_ctl_conns))
        ctl_close(broker_container_of(b->b_ctl_conns.next, ctlconn_t, cc_link), DCB_LOG_DEBUG,
                  "the broker is stopping");
}
