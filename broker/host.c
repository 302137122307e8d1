/*
 * host.c — supervision: plugin state, host generations, the host channel,
 * the watchdog, restart back-off and crash-loop disabling.
 *
 * State of a plugin:
 *
 *   STARTING ──ready──► RUNNING ──failure──► RESTARTING ──ready──► RUNNING
 *                                   │  (back-off doubles per failure)
 *                                   └──N failures within T s──► DISABLED
 *
 * A failure is anything that ends a host other than our own stop: exit or
 * crash, EOF on its channel, a protocol violation, an event outstanding past
 * hang_ms, no pong within hang_ms, memory over the cap, a failed load. Its
 * in-flight events get their defaults at once; the chain module decides
 * what each default means.
 *
 * Generations. A reload (dcbctl reload) starts a new host beside the one
 * that serves (p_cur) and leaves p_cur alone until the new one is ready;
 * then the new one takes new packets and the old one drains: packets keep
 * the host that saw their NewPkt, so the old one gets their later hooks and
 * PROCESSED drops, and it is stopped once none is left (or after drain_ms).
 * A reload that fails to load changes nothing but last_failure. An
 * operator's disable drains the current host the same way.
 */
#include "chain.h"
#include "host.h"
#include "platform.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST_LOAD_TIMEOUT_MS 15000u
#define HOST_PING_INTERVAL_MS 1000u
#define HOST_MEM_INTERVAL_MS 250u

/* Why a host is started: it decides what the plugin's state and counters say. */
enum { START_RESTART = 0, START_RELOAD, START_ENABLE };

static void host_start(broker_plugin_t *p, int why);
static void watchdog_cb(btimer_t *t);
static void stop_timer_cb(btimer_t *t);
static void drain_timer_cb(btimer_t *t);

const char *plugin_state_name(plugin_state_t s)
{
    switch (s) {
    case PLUGIN_STARTING:
        return "starting";
    case PLUGIN_RUNNING:
        return "running";
    case PLUGIN_RESTARTING:
        return "restarting";
    case PLUGIN_DISABLED:
        return "disabled";
    }
    return "?";
}

/* ---- plugins ---------------------------------------------------------------- */

static void restart_cb(btimer_t *t)
{
    broker_plugin_t *p = broker_container_of(t, broker_plugin_t, p_restart_timer);

    if (p->p_removed || p->p_broker->b_stopping || p->p_state == PLUGIN_DISABLED)
        return;
    /* A reload started meanwhile takes over when it is ready. */
    if (p->p_starting != NULL || p->p_cur != NULL)
        return;
    host_start(p, START_RESTART);
    chain_run(p->p_broker);
}

broker_plugin_t *plugin_create(broker_t *b, const char *name, const char *dll,
                               const broker_policy_t *pol)
{
    broker_plugin_t *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->p_name = malloc(strlen(name) + 1);
    p->p_dll = malloc(strlen(dll) + 1);
    if (p->p_name == NULL || p->p_dll == NULL) {
        free(p->p_name);
        free(p->p_dll);
        free(p);
        return NULL;
    }
    strcpy(p->p_name, name);
    strcpy(p->p_dll, dll);
    p->p_refs = 1;
    p->p_broker = b;
    p->p_pol = *pol;
    p->p_state = PLUGIN_STARTING;
    p->p_backoff_ms = pol->pol_restart_backoff_ms;
    p->p_breaker_ms = pol->pol_breaker_ms;
    btimer_init(&p->p_restart_timer, restart_cb);
    for (int h = 0; h < DCB_HOOK_COUNT; h++)
        dcb_hist_reset(&p->p_stats.ps_hooks[h].hs_latency);
    blist_add_tail(&b->b_plugins, &p->p_link);
    return p;
}

void plugin_ref(broker_plugin_t *p)
{
    p->p_refs++;
}

void plugin_unref(broker_plugin_t *p)
{
    if (--p->p_refs > 0)
        return;
    btimer_stop(p->p_broker, &p->p_restart_timer);
    blist_del(&p->p_link);
    free(p->p_name);
    free(p->p_dll);
    free(p);
}

void plugin_start(broker_plugin_t *p)
{
    int why = START_RESTART;

    if (p->p_cur != NULL || p->p_starting != NULL)
        return;
    if (p->p_state == PLUGIN_DISABLED) {
        why = START_ENABLE;
        /* An operator's enable: forget the crash loop. */
        memset(p->p_fail_ns, 0, sizeof(p->p_fail_ns));
        p->p_backoff_ms = p->p_pol.pol_restart_backoff_ms;
        p->p_state = PLUGIN_RESTARTING;
    }
    btimer_stop(p->p_broker, &p->p_restart_timer);
    host_start(p, why);
}

void plugin_remove(broker_plugin_t *p)
{
    p->p_removed = 1;
    btimer_stop(p->p_broker, &p->p_restart_timer);
    if (p->p_starting != NULL)
        host_stop(p->p_starting);
    if (p->p_cur != NULL)
        host_stop(p->p_cur);
}

uint32_t plugin_hooks(const broker_plugin_t *p)
{
    return p->p_hooks_known ? p->p_hooks : (1u << DCB_HOOK_COUNT) - 1;
}

int plugin_available(broker_plugin_t *p, int hook, host_t **out)
{
    broker_t *b = p->p_broker;

    (void)hook;
    *out = NULL;
    if (p->p_state == PLUGIN_DISABLED)
        return DCB__DEFAULT_REASON__DR_DISABLED;
    if (!host_ready(p->p_cur))
        return DCB__DEFAULT_REASON__DR_CRASH;
    if (p->p_breaker_until_ns != 0) {
        if (dcb_now_ns() < p->p_breaker_until_ns)
            return DCB__DEFAULT_REASON__DR_BREAKER;
        p->p_breaker_until_ns = 0; /* half open: the next event tries */
        dcb_log(DCB_LOG_INFO, "plugin %s: breaker half open, trying again", p->p_name);
    }
    if (p->p_cur->h_outstanding >= b->b_cfg->cfg_max_outstanding)
        return DCB__DEFAULT_REASON__DR_QUEUE_FULL;
    *out = p->p_cur;
    return 0;
}

void plugin_note_timeout(broker_plugin_t *p)
{
    uint32_t limit = p->p_pol.pol_breaker_failures;

    p->p_consec_timeouts++;
    if (limit == 0 || p->p_consec_timeouts < limit || p->p_breaker_until_ns != 0)
        return;
    p->p_breaker_until_ns = dcb_now_ns() + (uint64_t)p->p_breaker_ms * 1000000u;
    dcb_log(DCB_LOG_WARN,
            "plugin %s: breaker open for %u ms after %u timeouts in a row: its events get "
            "their default at once",
            p->p_name, p->p_breaker_ms, p->p_consec_timeouts);
    /* The next opening, if the plugin is still failing when it half-opens, lasts longer. */
    p->p_breaker_ms = p->p_breaker_ms * 2 > p->p_pol.pol_breaker_max_ms
                          ? p->p_pol.pol_breaker_max_ms
                          : p->p_breaker_ms * 2;
}

void plugin_note_success(broker_plugin_t *p)
{
    p->p_consec_timeouts = 0;
    p->p_breaker_ms = p->p_pol.pol_breaker_ms;
}

static void plugin_failed(broker_plugin_t *p, host_t *h, const char *why)
{
    broker_t *b = p->p_broker;
    uint64_t now = dcb_now_ns(), window = (uint64_t)p->p_pol.pol_crash_loop_window_s * 1000000000u;
    uint32_t recent = 0, delay;

    snprintf(p->p_last_failure, sizeof(p->p_last_failure), "%s", why);
    p->p_last_failure_ns = now;
    p->p_stats.ps_failures++;
    p->p_fail_ns[p->p_fail_next] = now;
    p->p_fail_next = (p->p_fail_next + 1) % PLUGIN_FAIL_RING;
    for (size_t i = 0; i < PLUGIN_FAIL_RING; i++)
        if (p->p_fail_ns[i] != 0 && now - p->p_fail_ns[i] <= window)
            recent++;
    if (recent >= p->p_pol.pol_crash_loop_limit) {
        p->p_state = PLUGIN_DISABLED;
        p->p_admin_disabled = 0;
        dcb_log(DCB_LOG_ERROR,
                "plugin %s DISABLED: %u failures within %u s (crash loop); its events get its "
                "default decision until an operator enables it (or the broker restarts)",
                p->p_name, recent, p->p_pol.pol_crash_loop_window_s);
        /* A reload under way would bring it back: it ends here. */
        if (p->p_starting != NULL)
            host_stop(p->p_starting);
        return;
    }
    if (p->p_starting != NULL) {
        /* A reload is under way: its host takes over when ready, no restart needed. */
        p->p_state = PLUGIN_RESTARTING;
        dcb_log(DCB_LOG_WARN,
                "plugin %s: the reload under way takes over (failure %u of %u "
                "allowed within %u s)",
                p->p_name, recent, p->p_pol.pol_crash_loop_limit, p->p_pol.pol_crash_loop_window_s);
        return;
    }
    /* A host that ran well for a while starts the back-off over. */
    if (h != NULL && h->h_ready_ns != 0 &&
        now - h->h_ready_ns > (uint64_t)p->p_pol.pol_restart_backoff_max_ms * 1000000u)
        p->p_backoff_ms = p->p_pol.pol_restart_backoff_ms;
    delay = p->p_backoff_ms;
    p->p_backoff_ms = p->p_backoff_ms * 2 > p->p_pol.pol_restart_backoff_max_ms
                          ? p->p_pol.pol_restart_backoff_max_ms
                          : p->p_backoff_ms * 2;
    p->p_state = PLUGIN_RESTARTING;
    dcb_log(DCB_LOG_WARN, "plugin %s: restarting in %u ms (failure %u of %u allowed within %u s)",
            p->p_name, delay, recent, p->p_pol.pol_crash_loop_limit,
            p->p_pol.pol_crash_loop_window_s);
    btimer_start(b, &p->p_restart_timer, now + (uint64_t)delay * 1000000u);
}

/* ---- hosts ------------------------------------------------------------------- */

void host_ref(host_t *h)
{
    h->h_refs++;
}

static void host_free_if_done(host_t *h)
{
    broker_t *b = h->h_broker;

    if (h->h_refs > 0 || h->h_handles > 0)
        return;
    btimer_stop(b, &h->h_watchdog);
    btimer_stop(b, &h->h_stop_timer);
    btimer_stop(b, &h->h_out_timer);
    btimer_stop(b, &h->h_drain_timer);
    sandbox_job_close(h->h_job);
    wire_rd_free(&h->h_rd);
    wire_wr_free(&h->h_wr);
    htab_free(&h->h_calls);
    for (int i = 0; i < 2; i++)
        free(h->h_out[i].ho_line);
    plugin_unref(h->h_plugin);
    blist_del(&h->h_link);
    free(h);
    b->b_nhosts--;
    broker_shutdown_check(b);
}

void host_unref(host_t *h)
{
    h->h_refs--;
    host_free_if_done(h);
}

void host_handle_closed(host_t *h)
{
    h->h_handles--;
    host_free_if_done(h);
}

static void host_start(broker_plugin_t *p, int why)
{
    broker_t *b = p->p_broker;
    host_t *h = calloc(1, sizeof(*h));
    int rc;

    if (h == NULL || htab_init(&h->h_calls, 64) != 0) {
        free(h);
        plugin_failed(p, NULL, "out of memory starting a host");
        return;
    }
    b->b_nhosts++;
    blist_add_tail(&b->b_hosts, &h->h_link);
    plugin_ref(p);
    h->h_plugin = p;
    h->h_broker = b;
    h->h_refs = 1; /* p_starting */
    h->h_generation = ++p->p_generation;
    h->h_state = HOST_SPAWNED;
    h->h_spawn_ns = dcb_now_ns();
    blist_init(&h->h_call_list);
    blist_init(&h->h_ctl_queue);
    btimer_init(&h->h_watchdog, watchdog_cb);
    btimer_init(&h->h_stop_timer, stop_timer_cb);
    btimer_init(&h->h_out_timer, hostproc_out_timer_cb);
    btimer_init(&h->h_drain_timer, drain_timer_cb);
    h->h_out_tokens = (double)b->b_cfg->cfg_output_lines_per_s * 2;
    h->h_out_tokens_ns = h->h_spawn_ns;
    h->h_reload = why == START_RELOAD;
    p->p_starting = h;
    if (h->h_reload) {
        /* The serving generation (if any) keeps its state until this one is ready. */
        p->p_reloading = 1;
    } else {
        if (p->p_state != PLUGIN_STARTING)
            p->p_state = PLUGIN_RESTARTING;
        if (why == START_RESTART && p->p_generation > 1)
            p->p_stats.ps_restarts++;
    }
    rc = hostproc_spawn(h);
    if (rc != 0) {
        if (h->h_pid == 0)
            h->h_exited = 1; /* never ran */
        host_fail(h, HOST_FAIL_SPAWN, "could not start the host process: %s", uv_strerror(rc));
        return;
    }
    btimer_start(b, &h->h_watchdog, dcb_now_ns() + 10000000u);
}

static int host_write(host_t *h, uint8_t type, const ProtobufCMessage *msg)
{
    int rc;

    if (!h->h_chan_open)
        return UV_EPIPE;
    /*
     * A host that stops reading its channel cannot hold the broker's memory:
     * refuse more, and let the watchdog take it down (never from here, which
     * runs in the middle of the chain's work).
     */
    if (wire_wr_queued(&h->h_wr) > 4u * 1024u * 1024u) {
        h->h_stalled = 1;
        return UV_ENOBUFS;
    }
    /* Buffered: wire_flush_all writes it before the loop turns again. */
    rc = wire_send(h->h_broker, &h->h_wr, type, msg);
    return rc;
}

/* Sends HostLoad (called by hostproc.c once the process runs). */
int host_send_load(host_t *h)
{
    broker_t *b = h->h_broker;
    broker_plugin_t *p = h->h_plugin;
    Dcb__HostLoad load = DCB__HOST_LOAD__INIT;

    load.plugin = p->p_name;
    load.dll_path = p->p_dll;
    load.generation = h->h_generation;
    load.has_threads = 1;
    load.threads = p->p_pol.pol_threads;
    load.has_max_packet_size = 1;
    load.max_packet_size = b->b_cfg->cfg_max_packet;
    /*
     * START at load unless the server is stopped: the server calls START
     * right after a successful entry point, and a host that is (re)started
     * while the server runs must see the same. A paused server gets PAUSE
     * right after (chain_host_ready).
     */
    load.has_send_start = 1;
    load.send_start = b->b_server_state != BROKER_SERVER_STOPPED;
    h->h_started = load.send_start;
    return host_write(h, DCB__FRAME_TYPE__FT_HOST_LOAD, &load.base);
}

int host_send_event(host_t *h, host_call_t *c, const uint8_t *frame, size_t frame_len,
                    uint64_t plugin_ctx, const uint8_t *pkt, uint32_t pkt_len, uint32_t deadline_us)
{
    broker_t *b = h->h_broker;
    Dcb__EventHeader *hdr;
    dcb_msg_t msg;
    uint64_t rid;
    int rc;

    if (!host_ready(h))
        return DCB__DEFAULT_REASON__DR_CRASH;
    /* Stored events were validated when they came in; this cannot fail but for memory. */
    rc = dcb_frame_decode(frame, frame_len, &b->b_lim_shim, &b->b_enc_arena, &msg);
    if (rc != 0)
        return DCB__DEFAULT_REASON__DR_QUEUE_FULL;
    hdr = dcb_event_header(msg.type, msg.msg);
    rid = ++b->b_next_request_id;
    hdr->has_request_id = 1;
    hdr->request_id = rid;
    hdr->has_plugin_ctx = 1;
    hdr->plugin_ctx = plugin_ctx;
    hdr->deadline_us = deadline_us;
    if (pkt != NULL) {
        ProtobufCBinaryData *pd = msg.type == DCB__FRAME_TYPE__FT_EV_NEWPKT
                                      ? &((Dcb__NewPktEvent *)msg.msg)->packet
                                      : &((Dcb__PktSendEvent *)msg.msg)->packet;
        pd->data = (uint8_t *)pkt;
        pd->len = pkt_len;
    }
    c->hc_host = h;
    c->hc_hook = (uint8_t)dcb_frame_event_hook(msg.type);
    c->hc_sent_ns = dcb_now_ns();
    rc = host_write(h, msg.type, msg.msg);
    if (rc == UV_ENOBUFS)
        return DCB__DEFAULT_REASON__DR_QUEUE_FULL;
    if (rc != 0)
        return DCB__DEFAULT_REASON__DR_CRASH;
    htab_insert(&h->h_calls, &c->hc_node, rid, 0);
    blist_add_tail(&h->h_call_list, &c->hc_link);
    h->h_outstanding++;
    return 0;
}

/* Fails every call in flight; callbacks may free the calls. */
static void fail_calls(host_t *h, int reason)
{
    while (!blist_empty(&h->h_call_list)) {
        host_call_t *c = broker_container_of(h->h_call_list.next, host_call_t, hc_link);
        blist_del(&c->hc_link);
        htab_remove(&h->h_calls, &c->hc_node);
        h->h_outstanding--;
        c->hc_cb(c, NULL, reason);
    }
}

static void close_channel(host_t *h)
{
    if (h->h_chan_open) {
        h->h_chan_open = 0;
        /*
         * What is still buffered gets the one try an unbuffered write had;
         * the close cancels whatever the kernel did not take.
         */
        wire_wr_flush(&h->h_wr);
        wire_wr_free(&h->h_wr);
        hostproc_close_handle(h, (uv_handle_t *)&h->h_chan);
    }
}

/* The end of a reload: the control request waiting for it gets its answer. */
static void reload_finish(broker_plugin_t *p, int ok, const char *why)
{
    if (!p->p_reloading)
        return;
    p->p_reloading = 0;
    if (ok && !p->p_renewing)
        p->p_stats.ps_reloads++;
    p->p_renewing = 0;
    control_reload_done(p, ok, why);
}

static void detach_from_plugin(host_t *h)
{
    broker_plugin_t *p = h->h_plugin;

    if (p->p_cur == h) {
        p->p_cur = NULL;
        host_unref(h);
    } else if (p->p_starting == h) {
        p->p_starting = NULL;
        host_unref(h);
    } else if (h->h_draining) {
        h->h_draining = 0;
        p->p_draining--;
        btimer_stop(h->h_broker, &h->h_drain_timer);
        host_unref(h);
    }
}

static void note_failure(broker_plugin_t *p, const char *prefix, const char *msg)
{
    size_t n = strlen(prefix);

    if (n >= sizeof(p->p_last_failure))
        n = sizeof(p->p_last_failure) - 1;
    memcpy(p->p_last_failure, prefix, n);
    p->p_last_failure[n] = '\0';
    /* The text is cut where it must be: a prefix and a message of up to 160 bytes each. */
    for (size_t i = 0; msg[i] != '\0' && n + 1 < sizeof(p->p_last_failure); i++)
        p->p_last_failure[n++] = msg[i];
    p->p_last_failure[n] = '\0';
    p->p_last_failure_ns = dcb_now_ns();
}

void host_fail(host_t *h, host_fail_t why, const char *fmt, ...)
{
    broker_t *b = h->h_broker;
    broker_plugin_t *p = h->h_plugin;
    host_state_t prev = h->h_state;
    char msg[160];
    va_list ap;
    int reason, current, reload_failed;

    if (prev == HOST_DEAD)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    h->h_state = HOST_DEAD;
    h->h_fail = why;
    host_ref(h); /* callbacks below may drop the last other reference */
    if (prev == HOST_STOPPING)
        dcb_log(DCB_LOG_INFO, "plugin %s host pid %u (generation %u) gone while stopping: %s",
                p->p_name, h->h_pid, h->h_generation, msg);
    else
        dcb_log(DCB_LOG_ERROR, "plugin %s host pid %u (generation %u) failed: %s", p->p_name,
                h->h_pid, h->h_generation, msg);
    hostproc_kill(h);
    close_channel(h);
    if (h->h_exited)
        hostproc_release(h);
    btimer_stop(b, &h->h_watchdog);
    btimer_stop(b, &h->h_stop_timer);
    reason = why == HOST_FAIL_HANG || why == HOST_FAIL_PING ? DCB__DEFAULT_REASON__DR_TIMEOUT
             : why == HOST_FAIL_PROTOCOL                    ? DCB__DEFAULT_REASON__DR_BAD_REPLY
                                                            : DCB__DEFAULT_REASON__DR_CRASH;
    fail_calls(h, reason);
    chain_host_dead(h);
    current = p->p_cur == h || p->p_starting == h;
    reload_failed = h->h_reload && p->p_starting == h;
    detach_from_plugin(h);
    if (reload_failed)
        reload_finish(p, 0, msg);
    if (prev != HOST_STOPPING && !b->b_stopping && !p->p_removed) {
        if (reload_failed && p->p_cur != NULL) {
            /* The generation that serves goes on as if nothing had happened. */
            note_failure(p, "reload failed: ", msg);
            dcb_log(DCB_LOG_WARN, "plugin %s: reload failed; generation %u keeps serving",
                    p->p_name, p->p_cur->h_generation);
        } else if (current) {
            plugin_failed(p, h, msg);
        } else {
            /* A draining generation: its packets get their defaults, nothing restarts. */
            p->p_stats.ps_failures++;
            note_failure(p, "", msg);
        }
        shimconn_push_subscription(b);
    }
    host_unref(h);
}

static void stop_timer_cb(btimer_t *t)
{
    host_t *h = broker_container_of(t, host_t, h_stop_timer);

    if (!h->h_exited) {
        dcb_log(DCB_LOG_WARN, "plugin %s host pid %u did not exit within %u ms; killing it",
                h->h_plugin->p_name, h->h_pid, h->h_broker->b_cfg->cfg_host_stop_ms);
        hostproc_kill(h);
    }
}

void host_stop(host_t *h)
{
    broker_t *b = h->h_broker;

    if (h->h_state == HOST_DEAD || h->h_state == HOST_STOPPING)
        return;
    h->h_state = HOST_STOPPING;
    host_ref(h);
    btimer_stop(b, &h->h_watchdog);
    /* EOF on its channel makes the host call STOP and exit. */
    close_channel(h);
    fail_calls(h, DCB__DEFAULT_REASON__DR_CRASH);
    chain_host_dead(h);
    if (h->h_reload && h->h_plugin->p_starting == h)
        reload_finish(h->h_plugin, 0,
                      b->b_stopping ? "the broker is stopping" : "stopped before it was ready");
    detach_from_plugin(h);
    if (!h->h_exited)
        btimer_start(b, &h->h_stop_timer,
                     dcb_now_ns() + (uint64_t)b->b_cfg->cfg_host_stop_ms * 1000000u);
    host_unref(h);
}

void host_stop_all(broker_t *b)
{
    blist_t *it = b->b_plugins.next;

    while (it != &b->b_plugins) {
        broker_plugin_t *p = broker_container_of(it, broker_plugin_t, p_link);
        it = it->next;
        plugin_ref(p);
        plugin_remove(p);
        plugin_unref(p);
    }
    /* Generations still draining belong to no plugin slot: stop them too. */
    it = b->b_hosts.next;
    while (it != &b->b_hosts) {
        host_t *h = broker_container_of(it, host_t, h_link);
        host_ref(h);
        host_stop(h);
        it = it->next;
        host_unref(h);
    }
}

int host_all_gone(broker_t *b)
{
    return b->b_nhosts == 0;
}

void host_on_exit(host_t *h, int64_t status, int term_signal)
{
    broker_plugin_t *p = h->h_plugin;
    char desc[96];

    h->h_exited = 1;
    platform_describe_exit(status, term_signal, desc, sizeof(desc));
    host_ref(h);
    if (sandbox_job_memory_hit(h->h_job, p->p_pol.pol_memory_mb))
        dcb_log(DCB_LOG_WARN, "plugin %s host pid %u reached its job object memory limit (%u MB)",
                p->p_name, h->h_pid, p->p_pol.pol_memory_mb);
    if (h->h_state == HOST_DEAD || h->h_state == HOST_STOPPING) {
        dcb_log(h->h_state == HOST_STOPPING && status == 0 && term_signal == 0 ? DCB_LOG_INFO
                                                                               : DCB_LOG_WARN,
                "plugin %s host pid %u exited: %s", p->p_name, h->h_pid, desc);
        if (h->h_state == HOST_STOPPING)
            h->h_state = HOST_DEAD;
    } else {
        host_fail(h, HOST_FAIL_EXIT, "exited: %s", desc);
    }
    btimer_stop(h->h_broker, &h->h_stop_timer);
    hostproc_release(h);
    host_unref(h);
    chain_run(h->h_broker);
}

/* ---- drain ------------------------------------------------------------------ */

static int host_drained(const host_t *h)
{
    return h->h_npackets == 0 && h->h_outstanding == 0 && blist_empty(&h->h_ctl_queue);
}

/*
 * Takes h out of p_cur (by whom its caller has already replaced it, or
 * nobody for a disable): it keeps serving the packets it saw, and no others.
 * The caller's reference becomes the drain's.
 */
static void host_drain(host_t *h, host_t *successor)
{
    broker_t *b = h->h_broker;
    broker_plugin_t *p = h->h_plugin;
    uint64_t now = dcb_now_ns();

    h->h_draining = 1;
    p->p_draining++;
    h->h_drain_deadline_ns = now + (uint64_t)b->b_cfg->cfg_drain_ms * 1000000u;
    if (successor != NULL)
        dcb_log(DCB_LOG_INFO,
                "plugin %s: generation %u takes new packets; generation %u (pid %u) finishes "
                "its %u packets in flight",
                p->p_name, successor->h_generation, h->h_generation, h->h_pid, h->h_npackets);
    else
        dcb_log(DCB_LOG_INFO, "plugin %s: generation %u (pid %u) finishes its %u packets in flight",
                p->p_name, h->h_generation, h->h_pid, h->h_npackets);
    btimer_start(b, &h->h_drain_timer, now);
}

void host_drain_poke(host_t *h)
{
    if (h->h_draining && host_drained(h))
        btimer_start(h->h_broker, &h->h_drain_timer, dcb_now_ns());
}

static void drain_timer_cb(btimer_t *t)
{
    host_t *h = broker_container_of(t, host_t, h_drain_timer);
    broker_t *b = h->h_broker;
    broker_plugin_t *p = h->h_plugin;
    uint64_t now = dcb_now_ns();

    if (!h->h_draining)
        return;
    if (!host_drained(h) && now < h->h_drain_deadline_ns) {
        btimer_start(b, &h->h_drain_timer, h->h_drain_deadline_ns);
        return;
    }
    host_ref(h);
    if (host_drained(h))
        dcb_log(DCB_LOG_INFO,
                "plugin %s: generation %u (pid %u) is done with its packets; "
                "stopping it",
                p->p_name, h->h_generation, h->h_pid);
    else
        dcb_log(DCB_LOG_WARN,
                "plugin %s: generation %u (pid %u) still has %u packets after drain_ms (%u); "
                "stopping it (their later hooks get the plugin's default)",
                p->p_name, h->h_generation, h->h_pid, h->h_npackets, b->b_cfg->cfg_drain_ms);
    host_stop(h);
    shimconn_push_subscription(b);
    host_unref(h);
    chain_run(b);
}

uint32_t host_draining_hooks(broker_t *b)
{
    uint32_t bits = 0;

    for (blist_t *it = b->b_hosts.next; it != &b->b_hosts; it = it->next) {
        const host_t *h = broker_container_of(it, host_t, h_link);
        if (h->h_draining && host_ready(h))
            bits |= h->h_hooks;
    }
    return bits;
}

/* ---- operator commands ------------------------------------------------------- */

static int name_eq_nocase(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char ca = *a, cb = *b;
        if (ca >= 'A' && ca <= 'Z')
            ca = (char)(ca - 'A' + 'a');
        if (cb >= 'A' && cb <= 'Z')
            cb = (char)(cb - 'A' + 'a');
        if (ca != cb)
            return 0;
    }
    return *a == *b;
}

broker_plugin_t *plugin_find(broker_t *b, const char *name)
{
    chain_t *c = b->b_chain;
    broker_plugin_t *loose = NULL;

    if (c == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < c->c_n; i++) {
        broker_plugin_t *p = c->c_plugins[i];
        if (strcmp(p->p_name, name) == 0)
            return p;
        if (loose == NULL && name_eq_nocase(p->p_name, name))
            loose = p;
    }
    return loose;
}

int plugin_reload(broker_plugin_t *p, char *why, size_t whylen)
{
    broker_t *b = p->p_broker;

    if (b->b_stopping || p->p_removed) {
        snprintf(why, whylen, "the broker is stopping");
        return DCB__CONTROL_STATUS__CS_FAILED;
    }
    if (p->p_state == PLUGIN_DISABLED) {
        snprintf(why, whylen,
                 "the plugin is disabled; enable it (that loads the DLL as it is on "
                 "disk now)");
        return DCB__CONTROL_STATUS__CS_FAILED;
    }
    if (p->p_starting != NULL) {
        snprintf(why, whylen,
                 p->p_reloading ? "a reload is already under way"
                                : "a host is starting; try again when it is ready");
        return DCB__CONTROL_STATUS__CS_BUSY;
    }
    dcb_log(DCB_LOG_INFO, "plugin %s: reload requested; loading %s", p->p_name, p->p_dll);
    /* A restart waiting for its back-off is replaced by the reload. */
    btimer_stop(b, &p->p_restart_timer);
    host_start(p, START_RELOAD);
    return 0;
}

int plugin_renew(broker_plugin_t *p, char *why, size_t whylen)
{
    int rc = plugin_reload(p, why, whylen);

    if (rc == 0)
        p->p_renewing = 1;
    return rc;
}

int plugin_enable(broker_plugin_t *p, char *why, size_t whylen)
{
    if (p->p_broker->b_stopping || p->p_removed) {
        snprintf(why, whylen, "the broker is stopping");
        return DCB__CONTROL_STATUS__CS_FAILED;
    }
    if (p->p_state != PLUGIN_DISABLED)
        return 0; /* nothing to do: it runs, or is on its way */
    dcb_log(DCB_LOG_INFO, "plugin %s enabled by an operator; loading %s", p->p_name, p->p_dll);
    p->p_admin_disabled = 0;
    plugin_start(p);
    shimconn_push_subscription(p->p_broker);
    return 0;
}

int plugin_disable(broker_plugin_t *p, char *why, size_t whylen)
{
    broker_t *b = p->p_broker;

    if (b->b_stopping || p->p_removed) {
        snprintf(why, whylen, "the broker is stopping");
        return DCB__CONTROL_STATUS__CS_FAILED;
    }
    if (p->p_reloading) {
        snprintf(why, whylen, "a reload is under way");
        return DCB__CONTROL_STATUS__CS_BUSY;
    }
    if (p->p_state == PLUGIN_DISABLED) {
        p->p_admin_disabled = 1;
        return 0;
    }
    dcb_log(DCB_LOG_WARN, "plugin %s DISABLED by an operator: new packets get its default decision",
            p->p_name);
    p->p_state = PLUGIN_DISABLED;
    p->p_admin_disabled = 1;
    btimer_stop(b, &p->p_restart_timer);
    if (p->p_starting != NULL)
        host_stop(p->p_starting);
    if (p->p_cur != NULL) {
        host_t *h = p->p_cur;
        p->p_cur = NULL;
        host_drain(h, NULL);
    }
    shimconn_push_subscription(b);
    return 0;
}

/* ---- the channel ----------------------------------------------------------- */

static void host_loaded(host_t *h, const Dcb__HostLoaded *l)
{
    broker_t *b = h->h_broker;
    broker_plugin_t *p = h->h_plugin;
    char hooks[128] = "";

    if (!l->ok) {
        host_fail(h, HOST_FAIL_LOAD, "load failed: %s", l->error ? l->error : "no reason given");
        return;
    }
    for (int i = 0; i < DCB_HOOK_COUNT; i++) {
        if (!(l->hooks & DCB_HOOK_BIT(i)))
            continue;
        if (hooks[0] != '\0')
            strncat(hooks, ",", sizeof(hooks) - strlen(hooks) - 1);
        strncat(hooks, dcb_hook_name(i), sizeof(hooks) - strlen(hooks) - 1);
    }
    h->h_state = HOST_READY;
    h->h_hooks = l->hooks;
    h->h_ready_ns = dcb_now_ns();
    if (p->p_starting == h) {
        host_t *old = p->p_cur;

        p->p_starting = NULL;
        p->p_cur = h; /* the reference moves */
        if (old != NULL) {
            /*
             * A newer generation takes over new packets from here on; the
             * old one finishes the packets it started (p_cur's reference
             * becomes the drain's).
             */
            host_drain(old, h);
        }
    }
    p->p_hooks = l->hooks;
    p->p_hooks_known = 1;
    p->p_state = PLUGIN_RUNNING;
    p->p_consec_timeouts = 0;
    p->p_breaker_until_ns = 0;
    p->p_breaker_ms = p->p_pol.pol_breaker_ms;
    dcb_log(DCB_LOG_INFO, "plugin %s ready: host pid %u, generation %u, hooks %s", p->p_name,
            h->h_pid, h->h_generation, hooks[0] ? hooks : "(none)");
    chain_host_ready(h);
    shimconn_push_subscription(b);
    if (h->h_reload && p->p_cur == h)
        reload_finish(p, 1, NULL);
}

static void host_result(host_t *h, const Dcb__HostResult *r)
{
    htab_node_t *n = htab_find(&h->h_calls, r->request_id, 0);
    host_call_t *c;

    if (n == NULL) {
        host_fail(h, HOST_FAIL_PROTOCOL, "result for unknown request %llu",
                  (unsigned long long)r->request_id);
        return;
    }
    c = broker_container_of(n, host_call_t, hc_node);
    if (c->hc_hook != r->hook) {
        host_fail(h, HOST_FAIL_PROTOCOL, "result for hook %u answers a %s event", r->hook,
                  dcb_hook_name(c->hc_hook));
        return;
    }
    htab_remove(&h->h_calls, n);
    blist_del(&c->hc_link);
    h->h_outstanding--;
    c->hc_cb(c, r, 0);
    if (h->h_draining && h->h_outstanding == 0)
        host_drain_poke(h);
}

static void host_frame(host_t *h, const dcb_msg_t *m)
{
    switch (m->type) {
    case DCB__FRAME_TYPE__FT_HOST_LOADED:
        if (h->h_state != HOST_SPAWNED) {
            host_fail(h, HOST_FAIL_PROTOCOL, "HostLoaded twice");
            return;
        }
        host_loaded(h, (const Dcb__HostLoaded *)m->msg);
        return;
    case DCB__FRAME_TYPE__FT_HOST_RESULT:
        if (h->h_state != HOST_READY) {
            host_fail(h, HOST_FAIL_PROTOCOL, "HostResult before HostLoaded");
            return;
        }
        host_result(h, (const Dcb__HostResult *)m->msg);
        return;
    case DCB__FRAME_TYPE__FT_PING: {
        Dcb__Ping pong = *(const Dcb__Ping *)m->msg;
        host_write(h, DCB__FRAME_TYPE__FT_PONG, &pong.base);
        return;
    }
    case DCB__FRAME_TYPE__FT_PONG:
        if (((const Dcb__Ping *)m->msg)->nonce == h->h_ping_nonce)
            h->h_ping_sent_ns = 0;
        return;
    default:
        host_fail(h, HOST_FAIL_PROTOCOL, "unexpected frame type %u", m->type);
        return;
    }
}

void host_chan_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    host_t *h = handle->data;

    (void)suggested;
    wire_rd_alloc(&h->h_rd, buf);
}

void host_chan_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    host_t *h = s->data;
    broker_t *b = h->h_broker;

    (void)buf;
    if (nread == 0)
        return;
    host_ref(h);
    if (nread < 0) {
        host_fail(h, HOST_FAIL_EOF, "closed its channel (%s)", uv_strerror((int)nread));
        goto out;
    }
    h->h_rd.wr_len += (size_t)nread;
    while (h->h_state != HOST_DEAD && h->h_chan_open) {
        dcb_msg_t m;
        size_t len;
        int rc = wire_rd_next(&h->h_rd, &b->b_lim_host, &len);

        if (rc == 0)
            break;
        if (rc < 0) {
            host_fail(h, HOST_FAIL_PROTOCOL, "bad frame: %s", dcb_proto_strerror(rc));
            break;
        }
        rc = dcb_frame_decode(h->h_rd.wr_buf, len, &b->b_lim_host, &b->b_arena, &m);
        if (rc != 0) {
            host_fail(h, HOST_FAIL_PROTOCOL, "bad frame: %s", dcb_proto_strerror(rc));
            break;
        }
        host_frame(h, &m);
        wire_rd_consume(&h->h_rd, len);
    }
out:
    host_unref(h);
    chain_run(b);
}

void host_chan_write_failed(wire_wr_t *w, int err)
{
    host_t *h = broker_container_of(w, host_t, h_wr);
    broker_t *b = h->h_broker;

    /* Frames are lost, perhaps half of one: the channel cannot be trusted any more. */
    host_ref(h);
    host_fail(h, HOST_FAIL_EOF, "cannot write its channel (%s)", uv_strerror(err));
    host_unref(h);
    chain_run(b);
}

/* ---- watchdog ---------------------------------------------------------------- */

static void watchdog_cb(btimer_t *t)
{
    host_t *h = broker_container_of(t, host_t, h_watchdog);
    broker_t *b = h->h_broker;
    broker_plugin_t *p = h->h_plugin;
    uint64_t now = dcb_now_ns(), hang = (uint64_t)p->p_pol.pol_hang_ms * 1000000u;
    uint64_t tick = hang / 4;
    /* Ping every second, or twice per hang_ms when that is shorter. */
    uint64_t ping_every = hang / 2 < (uint64_t)HOST_PING_INTERVAL_MS * 1000000u
                              ? hang / 2
                              : (uint64_t)HOST_PING_INTERVAL_MS * 1000000u;

    host_ref(h);
    if (h->h_state == HOST_SPAWNED) {
        uint64_t limit = hang * 2 > (uint64_t)HOST_LOAD_TIMEOUT_MS * 1000000u
                             ? hang * 2
                             : (uint64_t)HOST_LOAD_TIMEOUT_MS * 1000000u;
        if (now - h->h_spawn_ns > limit) {
            host_fail(h, HOST_FAIL_HANG, "did not load within %llu ms",
                      (unsigned long long)(limit / 1000000u));
            goto out;
        }
    } else if (h->h_state == HOST_READY) {
        if (h->h_stalled) {
            host_fail(h, HOST_FAIL_STALL, "does not read its channel (%zu bytes queued)",
                      wire_wr_queued(&h->h_wr));
            goto out;
        }
        if (!blist_empty(&h->h_call_list)) {
            host_call_t *c = broker_container_of(h->h_call_list.next, host_call_t, hc_link);
            if (now - c->hc_sent_ns > hang) {
                host_fail(h, HOST_FAIL_HANG,
                          "hang: a %s event outstanding for %llu ms (hang_ms %u); killed",
                          dcb_hook_name(c->hc_hook),
                          (unsigned long long)((now - c->hc_sent_ns) / 1000000u),
                          p->p_pol.pol_hang_ms);
                goto out;
            }
        }
        if (h->h_ping_sent_ns != 0 && now - h->h_ping_sent_ns > hang) {
            host_fail(h, HOST_FAIL_PING, "hang: no pong for %llu ms (hang_ms %u); killed",
                      (unsigned long long)((now - h->h_ping_sent_ns) / 1000000u),
                      p->p_pol.pol_hang_ms);
            goto out;
        }
        if (h->h_ping_sent_ns == 0 && now - h->h_last_ping_ns >= ping_every) {
            Dcb__Ping ping = DCB__PING__INIT;
            ping.nonce = ++h->h_ping_nonce;
            h->h_ping_sent_ns = now;
            h->h_last_ping_ns = now;
            host_write(h, DCB__FRAME_TYPE__FT_PING, &ping.base);
        }
    }
    if (h->h_state != HOST_DEAD && now - h->h_last_mem_ns >= HOST_MEM_INTERVAL_MS * 1000000ull) {
        h->h_last_mem_ns = now;
        if (hostproc_check_memory(h))
            goto out;
    }
    if (h->h_state == HOST_SPAWNED || h->h_state == HOST_READY) {
        if (tick > 250000000u)
            tick = 250000000u;
        if (tick < 5000000u)
            tick = 5000000u;
        btimer_start(b, &h->h_watchdog, now + tick);
    }
out:
    host_unref(h);
    chain_run(b);
}
