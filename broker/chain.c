/*
 * chain.c — per-packet state, ordering, chain execution, deadlines and
 * default decisions.
 *
 * Admission. Each packet (shim instance, packet id) has a next expected
 * seq. An event with that seq is admitted at once; a later one is held
 * until its predecessors arrive or its hold time runs out (then the broker
 * goes on without them and counts DR_REORDER); an earlier one (a duplicate,
 * or one given up on) is dropped and counted.
 *
 * Delivery. Admitting an event puts a slot into the queue of every plugin
 * of the packet that may want it. A queue sends only its head, and only one
 * slot at a time, so each plugin sees a packet's hooks in server order and
 * never two at once. The head is delivered when the plugin's host that saw
 * the packet's NewPkt (pp_host) is alive and hooks the event; otherwise it
 * is skipped. So a plugin that saw NewPkt gets the PROCESSED drop even when
 * other plugins failed, and a restarted host never gets hooks of packets it
 * did not see.
 *
 * Requests. NewPkt and PktSend run through the chain in order, each plugin
 * with min(its timeout, the budget left) and the packet as the plugins
 * before it left it. Their slots are created at admission in state WAIT,
 * which holds back that plugin's later slots of the packet until the chain
 * reaches it. A plugin that misses its time, or cannot be asked (disabled,
 * restarting, breaker open, too many events outstanding), gets its default
 * decision for this one event: fail-open skips it, fail-closed drops the
 * packet (NewPkt; a reply cannot be vetoed, so for PktSend both skip). The
 * first ProcessIt=FALSE ends the chain: later plugins never see the packet.
 * The answer goes out at deadline - max(1 ms, 10%) at the latest.
 *
 * Requests advance only from chain_run(), which every libuv callback calls
 * before it returns: code deep inside a host callback never re-enters a
 * request that is being advanced.
 */
#include "chain.h"
#include "platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { STEP_NONE = 0, STEP_PENDING, STEP_DONE };

#define PACKET_HOOKS                                                                               \
    (DCB_HOOK_BIT(DCB_HOOK_NEWPKT) | DCB_HOOK_BIT(DCB_HOOK_PKTDROP) |                              \
     DCB_HOOK_BIT(DCB_HOOK_PKTSEND) | DCB_HOOK_BIT(DCB_HOOK_ADDRESSDEL) |                          \
     DCB_HOOK_BIT(DCB_HOOK_ADDRESSOFFER) | DCB_HOOK_BIT(DCB_HOOK_HANDLEOPTIONS))
#define AGE_CHECK_NS 5000000000ull

static void pump(chain_pkt_t *k, size_t i);
static void ctl_pump(host_t *h);
static void req_kick(chain_req_t *r);
static void slot_call_cb(host_call_t *c, const Dcb__HostResult *res, int reason);

/* ---- chains ------------------------------------------------------------------ */

static chain_t *chain_new(size_t n)
{
    chain_t *c = calloc(1, sizeof(*c) + n * sizeof(c->c_plugins[0]));

    if (c != NULL) {
        c->c_refs = 1;
        c->c_n = n;
    }
    return c;
}

static void chain_unref(chain_t *c)
{
    if (--c->c_refs > 0)
        return;
    for (size_t i = 0; i < c->c_n; i++)
        if (c->c_plugins[i] != NULL)
            plugin_unref(c->c_plugins[i]);
    free(c);
}

/* ---- events ------------------------------------------------------------------- */

static chain_ev_t *ev_new(uint8_t type, const uint8_t *frame, size_t len)
{
    chain_ev_t *ev = malloc(sizeof(*ev) + len);

    if (ev == NULL)
        return NULL;
    memset(ev, 0, sizeof(*ev));
    ev->ev_refs = 1;
    ev->ev_type = type;
    ev->ev_hook = (uint8_t)dcb_frame_event_hook(type);
    ev->ev_len = len;
    ev->ev_read_ns = dcb_now_ns();
    blist_init(&ev->ev_held);
    memcpy(ev->ev_frame, frame, len);
    return ev;
}

static chain_ev_t *ev_ref(chain_ev_t *ev)
{
    ev->ev_refs++;
    return ev;
}

void chain_ev_unref(chain_ev_t *ev)
{
    if (--ev->ev_refs == 0)
        free(ev);
}

void chain_conn_gone(chain_ev_t *ev)
{
    ev->ev_conn = NULL;
}

static int is_request(int hook)
{
    return hook == DCB_HOOK_NEWPKT || hook == DCB_HOOK_PKTSEND;
}

/* Answers a request with the decision so far (or the plain default). */
static void answer(broker_t *b, chain_ev_t *ev, int process_it, const uint8_t *pkt, uint32_t len,
                   int reason)
{
    struct shimconn *conn = ev->ev_conn;

    if (conn == NULL)
        return;
    if (ev->ev_hook == DCB_HOOK_NEWPKT) {
        Dcb__NewPktDecision d = DCB__NEW_PKT_DECISION__INIT;
        d.request_id = ev->ev_request_id;
        d.process_it = process_it;
        if (pkt != NULL) {
            d.has_packet = 1;
            d.packet.data = (uint8_t *)pkt;
            d.packet.len = len;
        }
        if (reason != 0) {
            d.has_default_reason = 1;
            d.default_reason = reason;
        }
        shimconn_answer(conn, DCB__FRAME_TYPE__FT_NEWPKT_DECISION, &d.base);
    } else {
        Dcb__PktSendDecision d = DCB__PKT_SEND_DECISION__INIT;
        d.request_id = ev->ev_request_id;
        if (pkt != NULL) {
            d.has_packet = 1;
            d.packet.data = (uint8_t *)pkt;
            d.packet.len = len;
        }
        if (reason != 0) {
            d.has_default_reason = 1;
            d.default_reason = reason;
        }
        shimconn_answer(conn, DCB__FRAME_TYPE__FT_PKTSEND_DECISION, &d.base);
    }
    (void)b;
    ev->ev_conn = NULL;
    shimconn_request_done(conn);
}

/* ---- packets ------------------------------------------------------------------ */

static void hold_timer_cb(btimer_t *t);

static chain_pkt_t *pkt_create(broker_t *b, uint64_t inst, uint64_t id)
{
    chain_t *c = b->b_chain;
    chain_pkt_t *k = calloc(1, sizeof(*k) + c->c_n * sizeof(k->k_pp[0]));

    if (k == NULL)
        return NULL;
    k->k_inst = inst;
    k->k_id = id;
    k->k_chain = c;
    c->c_refs++;
    k->k_n = c->c_n;
    blist_init(&k->k_held);
    for (size_t i = 0; i < k->k_n; i++)
        blist_init(&k->k_pp[i].pp_queue);
    k->k_broker = b;
    btimer_init(&k->k_hold_timer, hold_timer_cb);
    htab_insert(&b->b_packets, &k->k_node, inst, id);
    k->k_in_table = 1;
    k->k_last_ns = dcb_now_ns();
    blist_add_tail(&b->b_pkt_lru, &k->k_lru);
    return k;
}

/* The plugin's host that saw the packet's NewPkt: later hooks go to it, and only to it. */
static void pp_set_host(chain_pp_t *pp, host_t *h)
{
    pp->pp_host = h;
    h->h_npackets++;
    host_ref(h);
}

/* The hooks a plugin may get for this packet: those of the host that saw it. */
static uint32_t pp_hooks(const chain_pp_t *pp, const broker_plugin_t *p)
{
    return pp->pp_host != NULL ? pp->pp_host->h_hooks : plugin_hooks(p);
}

static void pkt_free(broker_t *b, chain_pkt_t *k)
{
    if (k->k_in_table)
        htab_remove(&b->b_packets, &k->k_node);
    blist_del(&k->k_lru);
    btimer_stop(b, &k->k_hold_timer);
    for (size_t i = 0; i < k->k_n; i++) {
        host_t *h = k->k_pp[i].pp_host;
        if (h == NULL)
            continue;
        h->h_npackets--;
        host_drain_poke(h);
        if (!blist_empty(&h->h_ctl_queue))
            ctl_pump(h); /* a STOP may have waited for this packet */
        host_unref(h);
    }
    chain_unref(k->k_chain);
    free(k);
}

static void pkt_maybe_free(broker_t *b, chain_pkt_t *k)
{
    if (k->k_done && k->k_nslots == 0 && k->k_nreqs == 0 && blist_empty(&k->k_held))
        pkt_free(b, k);
}

/* ---- slots ----------------------------------------------------------------------- */

static chain_slot_t *slot_new(chain_pkt_t *k, size_t i, chain_ev_t *ev, chain_req_t *r,
                              slot_state_t st)
{
    chain_slot_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->s_ev = ev_ref(ev);
    s->s_req = r;
    s->s_pkt = k;
    s->s_idx = i;
    s->s_state = st;
    s->s_call.hc_cb = slot_call_cb;
    if (k != NULL) {
        blist_add_tail(&k->k_pp[i].pp_queue, &s->s_link);
        k->k_nslots++;
    } else {
        blist_init(&s->s_link);
    }
    return s;
}

static void slot_free(chain_slot_t *s)
{
    blist_del(&s->s_link);
    if (s->s_pkt != NULL)
        s->s_pkt->k_nslots--;
    if (s->s_target != NULL)
        host_unref(s->s_target);
    chain_ev_unref(s->s_ev);
    free(s);
}

/* ---- requests ---------------------------------------------------------------- */

static void apply_default(chain_req_t *r, size_t i, int reason)
{
    broker_plugin_t *p = r->r_pkt->k_chain->c_plugins[i];
    int hook = r->r_ev->ev_hook;

    p->p_stats.ps_hooks[hook].hs_defaults[reason]++;
    if (r->r_default_reason == 0)
        r->r_default_reason = reason;
    if (hook == DCB_HOOK_NEWPKT && p->p_pol.pol_fail[hook] == BROKER_FAIL_CLOSED)
        r->r_process_it = 0;
}

/* A request step's slot could not be delivered (from pump). */
static void req_step_skipped(chain_req_t *r, size_t i, int reason)
{
    if (r->r_pos != i || r->r_step != STEP_PENDING)
        return;
    r->r_slots[i] = NULL;
    if (reason != 0)
        apply_default(r, i, reason);
    r->r_step = STEP_DONE;
    req_kick(r);
}

static int copy_packet(chain_req_t *r, const uint8_t *data, size_t len)
{
    if (len > r->r_cap) {
        uint8_t *nb = realloc(r->r_data, len);
        if (nb == NULL)
            return -1;
        r->r_data = nb;
        r->r_cap = (uint32_t)len;
    }
    memcpy(r->r_data, data, len);
    r->r_len = (uint32_t)len;
    return 0;
}

static void req_step_result(chain_req_t *r, size_t i, const Dcb__HostResult *res, int reason)
{
    broker_plugin_t *p = r->r_pkt->k_chain->c_plugins[i];
    broker_hook_stats_t *st = &p->p_stats.ps_hooks[r->r_ev->ev_hook];

    r->r_slots[i] = NULL;
    if (r->r_pos != i || r->r_step != STEP_PENDING)
        return;
    r->r_step = STEP_DONE;
    req_kick(r);
    if (res == NULL) {
        apply_default(r, i, reason);
        return;
    }
    if (res->error != NULL) {
        dcb_log(DCB_LOG_WARN, "plugin %s: unusable %s result: %s", p->p_name,
                dcb_hook_name(r->r_ev->ev_hook), res->error);
        apply_default(r, i, DCB__DEFAULT_REASON__DR_BAD_REPLY);
        return;
    }
    plugin_note_success(p);
    if (res->has_packet && copy_packet(r, res->packet.data, res->packet.len) == 0) {
        r->r_modified = 1;
        st->hs_modified++;
    }
    if (r->r_ev->ev_hook == DCB_HOOK_NEWPKT && res->has_process_it && !res->process_it) {
        r->r_process_it = 0;
        st->hs_drop++;
    } else {
        st->hs_pass++;
    }
}

static void req_timer_cb(btimer_t *t)
{
    chain_req_t *r = broker_container_of(t, chain_req_t, r_timer);
    chain_pkt_t *k = r->r_pkt;
    size_t i = r->r_pos;

    if (r->r_finished)
        return;
    if (r->r_step == STEP_PENDING && dcb_now_ns() + 1000000u < r->r_answer_ns) {
        /* This plugin's own time is up (the budget is not). */
        broker_plugin_t *p = k->k_chain->c_plugins[i];
        chain_slot_t *s = r->r_slots[i];

        if (s != NULL) {
            if (s->s_state == SLOT_SENT) {
                s->s_req = NULL; /* its late result only updates PktContext */
            } else {
                slot_free(s);
                pump(k, i);
            }
            r->r_slots[i] = NULL;
        }
        plugin_note_timeout(p);
        apply_default(r, i, DCB__DEFAULT_REASON__DR_TIMEOUT);
        r->r_step = STEP_DONE;
    }
    req_kick(r);
    chain_run(r->r_broker);
}

static void req_kick(chain_req_t *r)
{
    if (!r->r_queued && !r->r_finished) {
        r->r_queued = 1;
        blist_add_tail(&r->r_broker->b_runq, &r->r_runq);
    }
}

/* Drops the request's hold on plugin i's queue (a WAIT slot), or lets a sent one go. */
static void req_release_slot(chain_req_t *r, size_t i)
{
    chain_slot_t *s = r->r_slots[i];

    if (s == NULL)
        return;
    r->r_slots[i] = NULL;
    if (s->s_state == SLOT_SENT) {
        s->s_req = NULL;
        return;
    }
    slot_free(s);
    pump(r->r_pkt, i);
}

/* A plugin the chain passes without asking it: whether it saw NewPkt. */
static void mark_seen_passive(chain_req_t *r, size_t i)
{
    chain_pkt_t *k = r->r_pkt;
    broker_plugin_t *p = k->k_chain->c_plugins[i];

    if (r->r_ev->ev_hook == DCB_HOOK_NEWPKT && r->r_process_it && k->k_pp[i].pp_host == NULL &&
        p->p_state != PLUGIN_DISABLED && host_ready(p->p_cur))
        pp_set_host(&k->k_pp[i], p->p_cur);
}

static void req_finish(chain_req_t *r)
{
    broker_t *b = r->r_broker;
    chain_pkt_t *k = r->r_pkt;
    int hook = r->r_ev->ev_hook;
    size_t n = k->k_n;

    r->r_finished = 1;
    btimer_stop(b, &r->r_timer);
    if (r->r_queued) {
        blist_del(&r->r_runq);
        r->r_queued = 0;
    }
    /* Out of budget with plugins left: each gets its default, in order. */
    if (r->r_pos < n && r->r_process_it) {
        for (size_t i = r->r_pos; i < n; i++) {
            broker_plugin_t *p = k->k_chain->c_plugins[i];
            int asked = i == r->r_pos && r->r_step == STEP_PENDING;

            if (!r->r_process_it)
                break;
            if (hook == DCB_HOOK_NEWPKT && !asked && p->p_hooks_known &&
                !(p->p_hooks & DCB_HOOK_BIT(hook))) {
                mark_seen_passive(r, i);
                continue;
            }
            if (hook == DCB_HOOK_PKTSEND && r->r_slots[i] == NULL)
                continue;
            if (asked)
                plugin_note_timeout(p);
            apply_default(r, i, DCB__DEFAULT_REASON__DR_TIMEOUT);
        }
    }
    for (size_t i = 0; i < n; i++)
        req_release_slot(r, i);
    answer(b, r->r_ev, r->r_process_it, r->r_modified ? r->r_data : NULL, r->r_len,
           r->r_default_reason);
    blist_del(&r->r_link);
    k->k_nreqs--;
    chain_ev_unref(r->r_ev);
    free(r->r_data);
    free(r->r_slots);
    free(r);
    pkt_maybe_free(b, k);
}

/* Moves a request forward until it waits for a plugin or is answered. */
static void req_continue(chain_req_t *r)
{
    chain_pkt_t *k = r->r_pkt;
    int hook = r->r_ev->ev_hook;

    for (;;) {
        uint64_t now = dcb_now_ns(), due;
        broker_plugin_t *p;
        chain_slot_t *s;
        host_t *h;
        size_t i;
        int reason;

        if (r->r_step == STEP_PENDING) {
            if (now + 1000000u >= r->r_answer_ns)
                req_finish(r);
            return;
        }
        if (r->r_step == STEP_DONE) {
            r->r_pos++;
            r->r_step = STEP_NONE;
        }
        if (!r->r_process_it || r->r_pos >= k->k_n || now + 1000000u >= r->r_answer_ns) {
            req_finish(r);
            return;
        }
        i = r->r_pos;
        p = k->k_chain->c_plugins[i];
        s = r->r_slots[i];
        if (hook == DCB_HOOK_NEWPKT) {
            if (p->p_hooks_known && !(p->p_hooks & DCB_HOOK_BIT(hook))) {
                mark_seen_passive(r, i);
                req_release_slot(r, i);
                r->r_step = STEP_DONE;
                continue;
            }
            reason = plugin_available(p, hook, &h);
            if (reason != 0) {
                apply_default(r, i, reason);
                req_release_slot(r, i);
                r->r_step = STEP_DONE;
                continue;
            }
            pp_set_host(&k->k_pp[i], h);
        } else {
            if (s == NULL) {
                r->r_step = STEP_DONE;
                continue;
            }
            /*
             * Disabled: its default, unless the host that saw the packet
             * still runs (it is draining): a packet it started, it finishes.
             */
            reason = p->p_state == PLUGIN_DISABLED && !host_ready(k->k_pp[i].pp_host)
                         ? DCB__DEFAULT_REASON__DR_DISABLED
                         : 0;
            if (reason == 0 && p->p_breaker_until_ns != 0 && now < p->p_breaker_until_ns)
                reason = DCB__DEFAULT_REASON__DR_BREAKER;
            if (reason != 0 && k->k_pp[i].pp_host != NULL) {
                apply_default(r, i, reason);
                req_release_slot(r, i);
                r->r_step = STEP_DONE;
                continue;
            }
        }
        if (s == NULL) {
            /* No slot (out of memory at admission): nothing to ask. */
            r->r_step = STEP_DONE;
            continue;
        }
        s->s_state = SLOT_READY;
        r->r_step = STEP_PENDING;
        due = now + (uint64_t)p->p_pol.pol_timeout_ms[hook] * 1000000u;
        if (due > r->r_answer_ns)
            due = r->r_answer_ns;
        btimer_start(r->r_broker, &r->r_timer, due);
        pump(k, i);
        /* pump may have settled the step already (skipped); loop to see. */
    }
}

void chain_run(broker_t *b)
{
    while (!blist_empty(&b->b_runq)) {
        chain_req_t *r = broker_container_of(b->b_runq.next, chain_req_t, r_runq);
        blist_del(&r->r_runq);
        r->r_queued = 0;
        req_continue(r);
    }
}

static void req_start(broker_t *b, chain_pkt_t *k, chain_ev_t *ev)
{
    chain_req_t *r = calloc(1, sizeof(*r));
    uint64_t budget = (uint64_t)ev->ev_deadline_us * 1000u, margin = budget / 10;
    int hook = ev->ev_hook;
    dcb_msg_t m;

    if (margin < 1000000u)
        margin = 1000000u;
    if (r == NULL || (k->k_n > 0 && (r->r_slots = calloc(k->k_n, sizeof(*r->r_slots))) == NULL) ||
        dcb_frame_decode(ev->ev_frame, ev->ev_len, &b->b_lim_shim, &b->b_enc_arena, &m) != 0) {
        if (r != NULL)
            free(r->r_slots);
        free(r);
        answer(b, ev, 1, NULL, 0, DCB__DEFAULT_REASON__DR_QUEUE_FULL);
        return;
    }
    {
        const ProtobufCBinaryData *pd = hook == DCB_HOOK_NEWPKT
                                            ? &((Dcb__NewPktEvent *)m.msg)->packet
                                            : &((Dcb__PktSendEvent *)m.msg)->packet;
        if (copy_packet(r, pd->data, pd->len) != 0) {
            free(r->r_slots);
            free(r);
            answer(b, ev, 1, NULL, 0, DCB__DEFAULT_REASON__DR_QUEUE_FULL);
            return;
        }
    }
    r->r_broker = b;
    r->r_ev = ev_ref(ev);
    r->r_pkt = k;
    r->r_process_it = 1;
    r->r_answer_ns = budget > margin ? ev->ev_read_ns + budget - margin : ev->ev_read_ns;
    btimer_init(&r->r_timer, req_timer_cb);
    k->k_nreqs++;
    blist_add_tail(&b->b_reqs, &r->r_link);
    b->b_requests++;
    for (size_t i = 0; i < k->k_n; i++) {
        broker_plugin_t *p = k->k_chain->c_plugins[i];
        chain_pp_t *pp = &k->k_pp[i];
        /*
         * NewPkt: a barrier at every plugin until the chain decides whether
         * it sees the packet. PktSend: a slot where the plugin may see it.
         */
        if (hook == DCB_HOOK_NEWPKT || ((pp_hooks(pp, p) & DCB_HOOK_BIT(hook)) &&
                                        (pp->pp_host != NULL || !blist_empty(&pp->pp_queue))))
            r->r_slots[i] = slot_new(k, i, ev, r, SLOT_WAIT);
    }
    btimer_start(b, &r->r_timer, r->r_answer_ns);
    req_kick(r);
}

/* ---- delivery ----------------------------------------------------------------- */

static uint32_t event_deadline_us(const broker_plugin_t *p, chain_slot_t *s)
{
    chain_req_t *r = s->s_req;
    uint64_t now = dcb_now_ns();

    if (r != NULL && btimer_active(&r->r_timer) && r->r_timer.bt_due_ns > now)
        return (uint32_t)((r->r_timer.bt_due_ns - now) / 1000u);
    return p->p_pol.pol_timeout_ms[s->s_ev->ev_hook] * 1000u;
}

static void pump(chain_pkt_t *k, size_t i)
{
    chain_pp_t *pp = &k->k_pp[i];
    broker_plugin_t *p = k->k_chain->c_plugins[i];

    while (!pp->pp_busy && !blist_empty(&pp->pp_queue)) {
        chain_slot_t *s = broker_container_of(pp->pp_queue.next, chain_slot_t, s_link);
        int hook = s->s_ev->ev_hook, reason;
        host_t *h = pp->pp_host;
        chain_req_t *r = s->s_req;

        if (s->s_state == SLOT_WAIT)
            return;
        if (h == NULL || !(h->h_hooks & DCB_HOOK_BIT(hook)) || !host_ready(h)) {
            /* Not seen, not hooked: skip quietly. Seen by a host that is gone: its default. */
            reason = h == NULL || (host_ready(h) && !(h->h_hooks & DCB_HOOK_BIT(hook)))
                         ? 0
                         : DCB__DEFAULT_REASON__DR_CRASH;
            slot_free(s);
            if (r != NULL)
                req_step_skipped(r, i, reason);
            continue;
        }
        reason = host_send_event(h, &s->s_call, s->s_ev->ev_frame, s->s_ev->ev_len, pp->pp_ctx,
                                 r != NULL ? r->r_data : NULL, r != NULL ? r->r_len : 0,
                                 event_deadline_us(p, s));
        if (reason != 0) {
            slot_free(s);
            if (r != NULL)
                req_step_skipped(r, i, reason);
            else
                p->p_stats.ps_hooks[hook].hs_defaults[reason]++;
            continue;
        }
        s->s_state = SLOT_SENT;
        pp->pp_busy = 1;
        p->p_stats.ps_hooks[hook].hs_calls++;
    }
}

static void slot_call_cb(host_call_t *c, const Dcb__HostResult *res, int reason)
{
    chain_slot_t *s = broker_container_of(c, chain_slot_t, s_call);
    chain_pkt_t *k = s->s_pkt;
    broker_plugin_t *p = c->hc_host->h_plugin;
    broker_hook_stats_t *st = &p->p_stats.ps_hooks[c->hc_hook];
    int hook = c->hc_hook;

    if (res != NULL)
        dcb_hist_record(&st->hs_latency, dcb_now_ns() - c->hc_sent_ns);
    if (k == NULL) {
        /* Control or DeleteClient. */
        host_t *h = s->s_target;
        int queued = !blist_empty(&s->s_link);
        host_ref(h);
        slot_free(s);
        if (queued) {
            h->h_ctl_busy = 0;
            ctl_pump(h);
        }
        host_unref(h);
        return;
    }
    {
        broker_t *b = p->p_broker;
        size_t i = s->s_idx;
        chain_pp_t *pp = &k->k_pp[i];
        chain_req_t *r = s->s_req;

        if (res != NULL && hook == DCB_HOOK_NEWPKT && res->has_plugin_ctx)
            pp->pp_ctx = res->plugin_ctx;
        if (r != NULL)
            req_step_result(r, i, res, reason);
        else if (res != NULL && is_request(hook))
            st->hs_late++;
        pp->pp_busy = 0;
        slot_free(s);
        pump(k, i);
        if (pp->pp_host != NULL && !blist_empty(&pp->pp_host->h_ctl_queue))
            ctl_pump(pp->pp_host); /* a STOP may have waited for this event */
        pkt_maybe_free(b, k);
    }
}

/* ---- admission ------------------------------------------------------------------ */

static void admit(broker_t *b, chain_pkt_t *k, chain_ev_t *ev)
{
    int hook = ev->ev_hook;

    k->k_next_seq = ev->ev_seq + 1;
    /* Counted once each, whether it came in order or waited for its predecessors first. */
    if (k->k_orphan)
        b->b_orphan_events++;
    if (is_request(hook)) {
        req_start(b, k, ev);
        return;
    }
    for (size_t i = 0; i < k->k_n; i++) {
        chain_pp_t *pp = &k->k_pp[i];
        broker_plugin_t *p = k->k_chain->c_plugins[i];

        if (!(pp_hooks(pp, p) & DCB_HOOK_BIT(hook)))
            continue;
        /* Nothing queued and not seen: this plugin will never see the packet. */
        if (pp->pp_host == NULL && blist_empty(&pp->pp_queue))
            continue;
        if (slot_new(k, i, ev, NULL, SLOT_READY) != NULL)
            pump(k, i);
    }
    if (hook == DCB_HOOK_PKTDROP && ev->ev_code == DHCP_DROP_PROCESSED)
        k->k_done = 1;
}

static uint64_t hold_ns(broker_t *b, const chain_ev_t *ev)
{
    uint64_t hold = (uint64_t)b->b_cfg->cfg_reorder_hold_ms * 1000000u;

    /* A request keeps at least half its budget for the chain. */
    if (is_request(ev->ev_hook) && (uint64_t)ev->ev_deadline_us * 500u < hold)
        hold = (uint64_t)ev->ev_deadline_us * 500u;
    return hold;
}

static void admit_held(broker_t *b, chain_pkt_t *k)
{
    while (!blist_empty(&k->k_held)) {
        chain_ev_t *ev = broker_container_of(k->k_held.next, chain_ev_t, ev_held);
        if (ev->ev_seq != k->k_next_seq)
            break;
        blist_del(&ev->ev_held);
        admit(b, k, ev);
        chain_ev_unref(ev);
    }
}

static void hold_arm(broker_t *b, chain_pkt_t *k)
{
    uint64_t due = UINT64_MAX;

    for (blist_t *it = k->k_held.next; it != &k->k_held; it = it->next) {
        chain_ev_t *ev = broker_container_of(it, chain_ev_t, ev_held);
        uint64_t d = ev->ev_read_ns + hold_ns(b, ev);
        if (d < due)
            due = d;
    }
    if (due == UINT64_MAX)
        btimer_stop(b, &k->k_hold_timer);
    else
        btimer_start(b, &k->k_hold_timer, due);
}

static void hold_timer_cb(btimer_t *t)
{
    chain_pkt_t *k = broker_container_of(t, chain_pkt_t, k_hold_timer);
    broker_t *b = k->k_broker;
    uint64_t now = dcb_now_ns();

    for (;;) {
        chain_ev_t *first;
        int expired = 0;

        for (blist_t *it = k->k_held.next; it != &k->k_held; it = it->next) {
            chain_ev_t *ev = broker_container_of(it, chain_ev_t, ev_held);
            if (ev->ev_read_ns + hold_ns(b, ev) <= now + 1000000u)
                expired = 1;
        }
        if (!expired)
            break;
        /* Go on without the missing predecessors of the first held event. */
        first = broker_container_of(k->k_held.next, chain_ev_t, ev_held);
        b->b_reorder_timeouts++;
        dcb_log(DCB_LOG_DEBUG, "packet %llx: seq %u..%u never came; going on",
                (unsigned long long)k->k_id, k->k_next_seq, first->ev_seq - 1);
        if (k->k_next_seq == 0)
            k->k_orphan = 1; /* its NewPkt never came: nobody sees the packet */
        k->k_next_seq = first->ev_seq;
        admit_held(b, k);
    }
    hold_arm(b, k);
    pkt_maybe_free(b, k);
    chain_run(b);
}

static void discard(broker_t *b, chain_ev_t *ev, int reason)
{
    if (is_request(ev->ev_hook))
        answer(b, ev, 1, NULL, 0, reason);
    chain_ev_unref(ev);
}

/* Whether h still has hooks of that shim instance's packets to get (or getting them). */
static int host_has_packet_events(host_t *h, uint64_t inst)
{
    broker_t *b = h->h_broker;

    for (blist_t *it = b->b_pkt_lru.next; it != &b->b_pkt_lru; it = it->next) {
        const chain_pkt_t *k = broker_container_of(it, chain_pkt_t, k_lru);
        if (k->k_inst != inst || k->k_nslots == 0)
            continue;
        for (size_t i = 0; i < k->k_n; i++)
            if (k->k_pp[i].pp_host == h &&
                (k->k_pp[i].pp_busy || !blist_empty(&k->k_pp[i].pp_queue)))
                return 1;
    }
    return 0;
}

/* Control and DeleteClient: no packet, no chain order (but STOP comes after the packets). */
static void ctl_pump(host_t *h)
{
    while (!h->h_ctl_busy && !blist_empty(&h->h_ctl_queue)) {
        chain_slot_t *s = broker_container_of(h->h_ctl_queue.next, chain_slot_t, s_link);
        broker_plugin_t *p = h->h_plugin;
        int reason;

        /* Waits: every packet event of the instance's that reaches h completes or goes. */
        if (s->s_barrier && host_ready(h) && host_has_packet_events(h, s->s_inst))
            return;
        reason = host_send_event(h, &s->s_call, s->s_ev->ev_frame, s->s_ev->ev_len, 0, NULL, 0,
                                 p->p_pol.pol_timeout_ms[s->s_ev->ev_hook] * 1000u);
        if (reason != 0) {
            p->p_stats.ps_hooks[s->s_ev->ev_hook].hs_defaults[reason]++;
            slot_free(s);
            continue;
        }
        s->s_state = SLOT_SENT;
        h->h_ctl_busy = 1;
        p->p_stats.ps_hooks[s->s_ev->ev_hook].hs_calls++;
    }
}

static void ctl_send(host_t *h, chain_ev_t *ev, int ordered, uint64_t inst)
{
    chain_slot_t *s = slot_new(NULL, 0, ev, NULL, SLOT_READY);
    broker_plugin_t *p = h->h_plugin;
    int reason;

    if (s == NULL)
        return;
    s->s_target = h;
    host_ref(h);
    if (ev->ev_hook == DCB_HOOK_CONTROL && ev->ev_code == DHCP_CONTROL_STOP) {
        s->s_barrier = 1;
        s->s_inst = inst;
    }
    if (ordered) {
        blist_add_tail(&h->h_ctl_queue, &s->s_link);
        ctl_pump(h);
        return;
    }
    reason = host_send_event(h, &s->s_call, ev->ev_frame, ev->ev_len, 0, NULL, 0,
                             p->p_pol.pol_timeout_ms[ev->ev_hook] * 1000u);
    if (reason != 0) {
        p->p_stats.ps_hooks[ev->ev_hook].hs_defaults[reason]++;
        slot_free(s);
        return;
    }
    s->s_state = SLOT_SENT;
    p->p_stats.ps_hooks[ev->ev_hook].hs_calls++;
}

void chain_host_dead(host_t *h)
{
    /* Sent ones were failed by the host already; queued ones go. */
    while (!blist_empty(&h->h_ctl_queue)) {
        chain_slot_t *s = broker_container_of(h->h_ctl_queue.next, chain_slot_t, s_link);
        if (s->s_state == SLOT_SENT) {
            blist_del(&s->s_link);
            continue;
        }
        slot_free(s);
    }
    h->h_ctl_busy = 0;
}

static void global_event(broker_t *b, uint64_t inst, chain_ev_t *ev)
{
    chain_t *c = b->b_chain;

    if (ev->ev_hook == DCB_HOOK_CONTROL) {
        switch (ev->ev_code) {
        case DHCP_CONTROL_START:
        case DHCP_CONTROL_CONTINUE:
            b->b_server_state = BROKER_SERVER_RUNNING;
            break;
        case DHCP_CONTROL_PAUSE:
            b->b_server_state = BROKER_SERVER_PAUSED;
            break;
        case DHCP_CONTROL_STOP:
            b->b_server_state = BROKER_SERVER_STOPPED;
            break;
        }
        dcb_log(DCB_LOG_INFO, "server control %s",
                ev->ev_code == DHCP_CONTROL_START   ? "START"
                : ev->ev_code == DHCP_CONTROL_STOP  ? "STOP"
                : ev->ev_code == DHCP_CONTROL_PAUSE ? "PAUSE"
                                                    : "CONTINUE");
    }
    for (size_t i = 0; i < c->c_n; i++) {
        host_t *h = c->c_plugins[i]->p_cur;
        int renew = 0;

        if (!host_ready(h))
            continue;
        if (ev->ev_hook == DCB_HOOK_CONTROL) {
            /*
             * The host STARTs its plugin at load; START and STOP alternate
             * from there. After STOP the server unloads a callout DLL, and a
             * later START belongs to a fresh load: a DLL that freed its state
             * at STOP must never see another START in the same instance.
             * So STOP also loads a new generation (not started, the server
             * being stopped), which is ready and gets the next START.
             */
            if (ev->ev_code == DHCP_CONTROL_START) {
                if (h->h_started)
                    continue;
                h->h_started = 1;
            } else if (ev->ev_code == DHCP_CONTROL_STOP) {
                if (!h->h_started)
                    continue;
                h->h_started = 0;
                renew = 1;
            }
        }
        if (h->h_hooks & DCB_HOOK_BIT(ev->ev_hook))
            ctl_send(h, ev, ev->ev_hook == DCB_HOOK_CONTROL, inst);
        if (renew) {
            char why[128];
            if (plugin_renew(c->c_plugins[i], why, sizeof(why)) != 0)
                dcb_log(DCB_LOG_WARN, "plugin %s: cannot load it afresh after STOP: %s",
                        c->c_plugins[i]->p_name, why);
        }
    }
    if (ev->ev_hook == DCB_HOOK_CONTROL && ev->ev_code == DHCP_CONTROL_STOP) {
        /* The server frees its queued packets at STOP without drop callbacks: so do we. */
        blist_t *it = b->b_pkt_lru.next;
        while (it != &b->b_pkt_lru) {
            chain_pkt_t *k = broker_container_of(it, chain_pkt_t, k_lru);
            it = it->next;
            if (k->k_inst != inst)
                continue;
            k->k_done = 1;
            pkt_maybe_free(b, k);
        }
    }
}

void chain_host_ready(host_t *h)
{
    broker_t *b = h->h_broker;
    Dcb__ControlEvent ce = DCB__CONTROL_EVENT__INIT;
    Dcb__EventHeader hdr = DCB__EVENT_HEADER__INIT;
    chain_ev_t *ev;
    uint8_t frame[64];
    int n;

    if (b->b_server_state != BROKER_SERVER_PAUSED || !(h->h_hooks & DCB_HOOK_BIT(DCB_HOOK_CONTROL)))
        return;
    ce.hdr = &hdr;
    ce.control_code = DHCP_CONTROL_PAUSE;
    n = dcb_frame_encode(DCB__FRAME_TYPE__FT_EV_CONTROL, &ce.base, frame, sizeof(frame));
    if (n < 0 || (ev = ev_new(DCB__FRAME_TYPE__FT_EV_CONTROL, frame, (size_t)n)) == NULL)
        return;
    ev->ev_code = DHCP_CONTROL_PAUSE;
    ctl_send(h, ev, 1, 0);
    chain_ev_unref(ev);
}

int chain_on_event(broker_t *b, struct shimconn *conn, uint64_t inst, uint8_t type,
                   ProtobufCMessage *msg, const uint8_t *frame, size_t frame_len)
{
    Dcb__EventHeader *hdr = dcb_event_header(type, msg);
    chain_ev_t *ev = ev_new(type, frame, frame_len);
    htab_node_t *n;
    chain_pkt_t *k;

    if (ev == NULL)
        return UV_ENOMEM;
    ev->ev_seq = hdr->seq;
    ev->ev_deadline_us = hdr->deadline_us;
    ev->ev_packet_id = hdr->packet_id;
    ev->ev_request_id = hdr->has_request_id ? hdr->request_id : 0;
    ev->ev_conn = is_request(ev->ev_hook) ? conn : NULL;
    if (ev->ev_conn != NULL)
        shimconn_request_begin(conn, ev);
    if (type == DCB__FRAME_TYPE__FT_EV_CONTROL)
        ev->ev_code = ((Dcb__ControlEvent *)msg)->control_code;
    else if (type == DCB__FRAME_TYPE__FT_EV_PKTDROP)
        ev->ev_code = ((Dcb__PktDropEvent *)msg)->control_code;
    /* From here on msg is not used: sending to hosts reuses the decode arena. */

    if (ev->ev_hook == DCB_HOOK_CONTROL || ev->ev_hook == DCB_HOOK_DELETECLIENT) {
        global_event(b, inst, ev);
        chain_ev_unref(ev);
        return 0;
    }
    if (ev->ev_packet_id == 0) {
        chain_ev_unref(ev);
        return DCB_E_INVALID;
    }
    n = htab_find(&b->b_packets, inst, ev->ev_packet_id);
    k = n != NULL ? broker_container_of(n, chain_pkt_t, k_node) : NULL;
    if (k == NULL) {
        k = pkt_create(b, inst, ev->ev_packet_id);
        if (k == NULL) {
            discard(b, ev, DCB__DEFAULT_REASON__DR_QUEUE_FULL);
            return 0;
        }
    }
    k->k_last_ns = ev->ev_read_ns;
    blist_del(&k->k_lru);
    blist_add_tail(&b->b_pkt_lru, &k->k_lru);
    if (k->k_done || ev->ev_seq < k->k_next_seq) {
        /* After PROCESSED, a duplicate, or one given up on: it can no longer be in order. */
        b->b_late_events++;
        discard(b, ev, DCB__DEFAULT_REASON__DR_REORDER);
    } else if (ev->ev_seq > k->k_next_seq) {
        blist_t *it = k->k_held.prev;
        /* Sorted by seq; a duplicate seq is dropped. */
        while (it != &k->k_held &&
               broker_container_of(it, chain_ev_t, ev_held)->ev_seq > ev->ev_seq)
            it = it->prev;
        if (it != &k->k_held &&
            broker_container_of(it, chain_ev_t, ev_held)->ev_seq == ev->ev_seq) {
            b->b_late_events++;
            discard(b, ev, DCB__DEFAULT_REASON__DR_REORDER);
        } else {
            ev->ev_held.prev = it;
            ev->ev_held.next = it->next;
            it->next->prev = &ev->ev_held;
            it->next = &ev->ev_held;
            hold_arm(b, k);
        }
    } else {
        admit(b, k, ev);
        chain_ev_unref(ev);
        admit_held(b, k);
        hold_arm(b, k);
    }
    pkt_maybe_free(b, k);
    return 0;
}

/* ---- ageing ------------------------------------------------------------------- */

static void age_cb(btimer_t *t)
{
    broker_t *b = broker_container_of(t, broker_t, b_age_timer);
    uint64_t now = dcb_now_ns(), idle = (uint64_t)b->b_cfg->cfg_packet_idle_s * 1000000000u;
    blist_t *it = b->b_pkt_lru.next;

    while (it != &b->b_pkt_lru) {
        chain_pkt_t *k = broker_container_of(it, chain_pkt_t, k_lru);
        it = it->next;
        if (now - k->k_last_ns < idle)
            break; /* the rest are younger */
        if (k->k_nslots != 0 || k->k_nreqs != 0 || !blist_empty(&k->k_held))
            continue;
        /* Its PROCESSED drop never came (the shim's queue was full, or it went away). */
        b->b_aged_packets++;
        k->k_done = 1;
        pkt_maybe_free(b, k);
    }
    btimer_start(b, &b->b_age_timer, now + AGE_CHECK_NS);
    chain_run(b);
}

/* ---- the chain itself ---------------------------------------------------------- */

int chain_init(broker_t *b)
{
    int rc = htab_init(&b->b_packets, 1024);

    if (rc != 0)
        return rc;
    blist_init(&b->b_pkt_lru);
    blist_init(&b->b_runq);
    blist_init(&b->b_reqs);
    blist_init(&b->b_plugins);
    b->b_chain = chain_new(0);
    if (b->b_chain == NULL)
        return UV_ENOMEM;
    btimer_init(&b->b_age_timer, age_cb);
    btimer_start(b, &b->b_age_timer, dcb_now_ns() + AGE_CHECK_NS);
    return 0;
}

int chain_matches(broker_t *b, char **dlls, size_t n)
{
    chain_t *c = b->b_chain;

    if (c->c_n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!platform_path_equal(c->c_plugins[i]->p_dll, dlls[i]))
            return 0;
    return 1;
}

int chain_set(broker_t *b, char **dlls, size_t n)
{
    chain_t *old = b->b_chain, *c = chain_new(n);
    char names[1024] = "";

    if (c == NULL)
        return UV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        broker_plugin_t *p = NULL;
        char name[128];

        config_plugin_name(dlls[i], name, sizeof(name));
        for (size_t j = 0; j < old->c_n; j++) {
            broker_plugin_t *q = old->c_plugins[j];
            int taken = 0;
            for (size_t x = 0; x < i; x++)
                taken |= c->c_plugins[x] == q;
            if (!taken && platform_path_equal(q->p_dll, dlls[i])) {
                p = q;
                plugin_ref(p);
                break;
            }
        }
        if (p == NULL) {
            const broker_plugin_conf_t *pc = config_find_plugin(b->b_cfg, name);
            broker_policy_t pol;
            /* The same DLL twice gets a distinct name for its stats and logs. */
            for (size_t x = 0; x < i; x++) {
                if (strcmp(c->c_plugins[x]->p_name, name) == 0) {
                    char tmp[sizeof(name)];
                    snprintf(tmp, sizeof(tmp), "%.100s#%zu", name, i + 1);
                    strcpy(name, tmp);
                    break;
                }
            }
            config_policy(b->b_cfg, pc, &pol);
            if (pc != NULL && pc->pc_group != NULL)
                dcb_log(DCB_LOG_WARN,
                        "plugin %s: isolation groups are not implemented yet; it gets a host "
                        "of its own",
                        name);
            p = plugin_create(b, name, dlls[i], &pol);
            if (p == NULL) {
                chain_unref(c);
                return UV_ENOMEM;
            }
            plugin_start(p);
        }
        c->c_plugins[i] = p;
        snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? ", " : "",
                 p->p_name);
    }
    for (size_t j = 0; j < old->c_n; j++) {
        int kept = 0;
        for (size_t i = 0; i < n; i++)
            kept |= c->c_plugins[i] == old->c_plugins[j];
        if (!kept) {
            dcb_log(DCB_LOG_INFO, "plugin %s leaves the chain", old->c_plugins[j]->p_name);
            plugin_remove(old->c_plugins[j]);
        }
    }
    b->b_chain = c;
    chain_unref(old);
    dcb_log(DCB_LOG_INFO, "chain: %s", n ? names : "(empty)");
    shimconn_push_subscription(b);
    return 0;
}

uint32_t chain_subscribed(broker_t *b)
{
    chain_t *c = b->b_chain;
    uint32_t bits = 0;

    for (size_t i = 0; i < c->c_n; i++) {
        broker_plugin_t *p = c->c_plugins[i];
        if (p->p_state == PLUGIN_DISABLED) {
            /* Its events only matter where its default drops the packet. */
            if (p->p_pol.pol_fail[DCB_HOOK_NEWPKT] == BROKER_FAIL_CLOSED)
                bits |= DCB_HOOK_BIT(DCB_HOOK_NEWPKT);
            continue;
        }
        bits |= plugin_hooks(p);
    }
    /* Generations still finishing their packets need those packets' hooks. */
    bits |= host_draining_hooks(b) & PACKET_HOOKS;
    /*
     * A packet exists for the broker from its NewPkt to its PROCESSED drop:
     * whoever wants any packet hook needs both to arrive.
     */
    if (bits & PACKET_HOOKS)
        bits |= DCB_HOOK_BIT(DCB_HOOK_NEWPKT) | DCB_HOOK_BIT(DCB_HOOK_PKTDROP);
    return bits;
}

void chain_shutdown(broker_t *b)
{
    /* Requests first (their answers have nowhere to go now), then hosts, then packets. */
    while (!blist_empty(&b->b_reqs)) {
        chain_req_t *r = broker_container_of(b->b_reqs.next, chain_req_t, r_link);
        r->r_ev->ev_conn = NULL;
        req_finish(r);
    }
    host_stop_all(b);
    chain_run(b);
    while (!blist_empty(&b->b_pkt_lru)) {
        chain_pkt_t *k = broker_container_of(b->b_pkt_lru.next, chain_pkt_t, k_lru);
        for (size_t i = 0; i < k->k_n; i++)
            while (!blist_empty(&k->k_pp[i].pp_queue))
                slot_free(broker_container_of(k->k_pp[i].pp_queue.next, chain_slot_t, s_link));
        while (!blist_empty(&k->k_held)) {
            chain_ev_t *ev = broker_container_of(k->k_held.next, chain_ev_t, ev_held);
            blist_del(&ev->ev_held);
            chain_ev_unref(ev);
        }
        pkt_free(b, k);
    }
    btimer_stop(b, &b->b_age_timer);
    chain_unref(b->b_chain);
    b->b_chain = NULL;
    htab_free(&b->b_packets);
}
