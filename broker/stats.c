/*
 * stats.c — per hook × plugin counters and latency histograms, the shims'
 * own figures, and the StatsReport the control endpoint serves.
 *
 * The counters live in each broker_plugin_t, which outlives its host
 * processes, so they are cumulative per plugin across restarts and reloads;
 * only CC_RESET_STATS clears them. Histograms are dcb_hist (log-linear,
 * under 1.6% error, fixed memory). The loop is the only writer, so nothing
 * here needs a lock. The broker also logs a summary when it stops.
 *
 * The shims send running totals since they loaded. The broker keeps each
 * instance's last report, and at a reset takes a baseline of it: what it
 * reports is last minus baseline, summed over every instance it has seen
 * (a restarted DHCP service is a new instance; its predecessor's figures
 * stay in the sum).
 */
#include "chain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *stats_reason_name(int reason)
{
    static const char *const names[BROKER_DR_COUNT] = {"none",      "timeout",    "crash",
                                                       "breaker",   "queue_full", "bad_reply",
                                                       "no_broker", "disabled",   "reorder"};

    return reason >= 0 && reason < BROKER_DR_COUNT ? names[reason] : "?";
}

void stats_log_plugin(const broker_plugin_t *p)
{
    dcb_log(DCB_LOG_INFO, "stats %s: state %s, restarts %u, failures %u, reloads %u%s%s", p->p_name,
            plugin_state_name(p->p_state), p->p_stats.ps_restarts, p->p_stats.ps_failures,
            p->p_stats.ps_reloads, p->p_last_failure[0] ? ", last failure: " : "",
            p->p_last_failure);
    for (int h = 0; h < DCB_HOOK_COUNT; h++) {
        const broker_hook_stats_t *s = &p->p_stats.ps_hooks[h];
        char defaults[256] = "";
        uint64_t ndef = 0;

        for (int r = 1; r < BROKER_DR_COUNT; r++) {
            if (s->hs_defaults[r] == 0)
                continue;
            ndef += s->hs_defaults[r];
            snprintf(defaults + strlen(defaults), sizeof(defaults) - strlen(defaults), " %s=%llu",
                     stats_reason_name(r), (unsigned long long)s->hs_defaults[r]);
        }
        if (s->hs_calls == 0 && ndef == 0)
            continue;
        dcb_log(DCB_LOG_INFO,
                "stats %s %s: calls %llu pass %llu drop %llu modified %llu late %llu; "
                "latency p50 %.1f us p99 %.1f us max %.1f us; defaults%s",
                p->p_name, dcb_hook_name(h), (unsigned long long)s->hs_calls,
                (unsigned long long)s->hs_pass, (unsigned long long)s->hs_drop,
                (unsigned long long)s->hs_modified, (unsigned long long)s->hs_late,
                dcb_hist_quantile(&s->hs_latency, 0.5) / 1e3,
                dcb_hist_quantile(&s->hs_latency, 0.99) / 1e3, dcb_hist_max(&s->hs_latency) / 1e3,
                ndef ? defaults : " none");
    }
}

void stats_log_all(broker_t *b)
{
    for (blist_t *it = b->b_plugins.next; it != &b->b_plugins; it = it->next)
        stats_log_plugin(broker_container_of(it, broker_plugin_t, p_link));
    dcb_log(DCB_LOG_INFO,
            "stats broker: requests %llu, violations %llu, reorder timeouts %llu, late events "
            "%llu, orphan events %llu, aged packets %llu",
            (unsigned long long)b->b_requests, (unsigned long long)b->b_violations,
            (unsigned long long)b->b_reorder_timeouts, (unsigned long long)b->b_late_events,
            (unsigned long long)b->b_orphan_events, (unsigned long long)b->b_aged_packets);
}

/* ---- shims ------------------------------------------------------------------ */

static void sparse_free(sparse_hist_t *sp)
{
    free(sp->sp_bucket);
    free(sp->sp_count);
    memset(sp, 0, sizeof(*sp));
}

void stats_shim_release(shiminst_t *si)
{
    shim_stats_t *ss = &si->sh_stats;

    free(ss->ss_waited);
    ss->ss_waited = NULL;
    for (int h = 0; h < DCB_HOOK_COUNT; h++)
        sparse_free(&ss->ss_base_waited[h]);
}

void stats_shim_update(shiminst_t *si, const Dcb__ShimStats *s)
{
    shim_stats_t *ss = &si->sh_stats;

    if (ss->ss_waited == NULL) {
        ss->ss_waited = malloc(DCB_HOOK_COUNT * sizeof(*ss->ss_waited));
        if (ss->ss_waited == NULL)
            return;
        for (int h = 0; h < DCB_HOOK_COUNT; h++)
            dcb_hist_reset(&ss->ss_waited[h]);
    }
    ss->ss_have = 1;
    si->sh_stats_ns = dcb_now_ns();
    si->sh_reconnects = s->has_reconnects ? s->reconnects : 0;
    si->sh_packets_live = s->has_packets_live ? s->packets_live : 0;
    /* Each report is the shim's running total: it replaces the last one. */
    for (size_t i = 0; i < s->n_hooks; i++) {
        const Dcb__ShimHookStats *hs = s->hooks[i];
        shim_hook_totals_t *t = &ss->ss_last[hs->hook];
        dcb_hist_t *w = &ss->ss_waited[hs->hook];

        t->st_calls = hs->calls;
        t->st_unsubscribed = hs->unsubscribed;
        t->st_def_timeout = hs->defaults_timeout;
        t->st_def_no_broker = hs->defaults_no_broker;
        t->st_def_breaker = hs->defaults_breaker;
        t->st_def_bad_reply = hs->defaults_bad_reply;
        t->st_def_other = hs->defaults_other;
        t->st_queue_full = hs->queue_full;
        t->st_lost = hs->lost;
        dcb_hist_reset(w);
        if (hs->waited != NULL)
            for (size_t j = 0; j < hs->waited->n_bucket; j++)
                dcb_hist_add_bucket(w, hs->waited->bucket[j], hs->waited->count[j]);
        /* The exact figures, when the shim sent them, beat the buckets' estimate. */
        t->st_waited_sum = hs->waited != NULL && hs->waited->has_sum
                               ? hs->waited->sum
                               : atomic_load_explicit(&w->h_sum, memory_order_relaxed);
        t->st_waited_max =
            hs->waited != NULL && hs->waited->has_max ? hs->waited->max : dcb_hist_max(w);
    }
}

static int sparse_take(sparse_hist_t *sp, const dcb_hist_t *h)
{
    size_t n = 0, k = 0;

    sparse_free(sp);
    for (uint32_t b = 0; b < DCB_HIST_BUCKETS; b++)
        n += atomic_load_explicit(&h->h_buckets[b], memory_order_relaxed) != 0;
    if (n == 0)
        return 0;
    sp->sp_bucket = malloc(n * sizeof(*sp->sp_bucket));
    sp->sp_count = malloc(n * sizeof(*sp->sp_count));
    if (sp->sp_bucket == NULL || sp->sp_count == NULL) {
        sparse_free(sp);
        return UV_ENOMEM;
    }
    for (uint32_t b = 0; b < DCB_HIST_BUCKETS && k < n; b++) {
        uint64_t c = atomic_load_explicit(&h->h_buckets[b], memory_order_relaxed);
        if (c == 0)
            continue;
        sp->sp_bucket[k] = b;
        sp->sp_count[k++] = c;
    }
    sp->sp_n = k;
    return 0;
}

static void shim_reset(shiminst_t *si)
{
    shim_stats_t *ss = &si->sh_stats;

    memcpy(ss->ss_base, ss->ss_last, sizeof(ss->ss_base));
    for (int h = 0; h < DCB_HOOK_COUNT; h++) {
        if (ss->ss_waited == NULL || sparse_take(&ss->ss_base_waited[h], &ss->ss_waited[h]) != 0)
            sparse_free(&ss->ss_base_waited[h]);
    }
}

/* ---- reset ------------------------------------------------------------------ */

void stats_reset(broker_t *b)
{
    for (blist_t *it = b->b_plugins.next; it != &b->b_plugins; it = it->next) {
        broker_plugin_t *p = broker_container_of(it, broker_plugin_t, p_link);
        for (int h = 0; h < DCB_HOOK_COUNT; h++) {
            broker_hook_stats_t *hs = &p->p_stats.ps_hooks[h];
            hs->hs_calls = hs->hs_pass = hs->hs_drop = hs->hs_modified = hs->hs_late = 0;
            memset(hs->hs_defaults, 0, sizeof(hs->hs_defaults));
            dcb_hist_reset(&hs->hs_latency);
        }
        p->p_stats.ps_restarts = p->p_stats.ps_failures = p->p_stats.ps_reloads = 0;
    }
    for (blist_t *it = b->b_insts.next; it != &b->b_insts; it = it->next)
        shim_reset(broker_container_of(it, shiminst_t, sh_link));
    b->b_requests = b->b_violations = b->b_reorder_timeouts = b->b_late_events = 0;
    b->b_orphan_events = b->b_aged_packets = b->b_ctl_refused = 0;
    b->b_stats_epoch_ns = dcb_now_ns();
    dcb_log(DCB_LOG_INFO, "statistics reset by an operator");
}

/* ---- the report ------------------------------------------------------------- */

/* The bucket a coarser report files b under: the first of its 2^shift neighbours. */
static uint32_t coarse_bucket(uint32_t b, int shift)
{
    if (b < DCB_HIST_SUB || shift <= 0)
        return b;
    return b & ~((1u << shift) - 1u);
}

/*
 * One histogram in sparse form, minus an optional baseline (counts clamped
 * at zero). Arrays are allocated; the caller frees them.
 */
static int hist_to_wire(const dcb_hist_t *h, const sparse_hist_t *base, int shift, uint64_t sum,
                        uint64_t max, Dcb__Histogram *out)
{
    size_t n = 0, bi = 0, cap = 0;
    uint32_t last = UINT32_MAX;

    for (uint32_t b = 0; b < DCB_HIST_BUCKETS; b++)
        cap += atomic_load_explicit(&h->h_buckets[b], memory_order_relaxed) != 0;
    dcb__histogram__init(out);
    out->has_sum = 1;
    out->sum = sum;
    out->has_max = 1;
    out->max = max;
    if (cap == 0)
        return 0;
    out->bucket = malloc(cap * sizeof(*out->bucket));
    out->count = malloc(cap * sizeof(*out->count));
    if (out->bucket == NULL || out->count == NULL) {
        free(out->bucket);
        free(out->count);
        out->bucket = NULL;
        out->count = NULL;
        return UV_ENOMEM;
    }
    for (uint32_t b = 0; b < DCB_HIST_BUCKETS; b++) {
        uint64_t c = atomic_load_explicit(&h->h_buckets[b], memory_order_relaxed);
        uint32_t cb;

        if (c == 0)
            continue;
        while (base != NULL && bi < base->sp_n && base->sp_bucket[bi] < b)
            bi++;
        if (base != NULL && bi < base->sp_n && base->sp_bucket[bi] == b)
            c = c > base->sp_count[bi] ? c - base->sp_count[bi] : 0;
        if (c == 0)
            continue;
        cb = coarse_bucket(b, shift);
        if (n > 0 && last == cb) {
            out->count[n - 1] += c;
            continue;
        }
        out->bucket[n] = cb;
        out->count[n] = c;
        last = cb;
        n++;
    }
    out->n_bucket = out->n_count = n;
    return 0;
}

static void hist_wire_free(Dcb__Histogram *w)
{
    if (w == NULL)
        return;
    free(w->bucket);
    free(w->count);
}

static uint64_t sub0(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

static int shim_entries(broker_t *b, Dcb__StatsReport *r, int shift)
{
    shim_hook_totals_t sum[DCB_HOOK_COUNT];
    dcb_hist_t *merged = NULL;
    uint64_t maxes[DCB_HOOK_COUNT];
    int have = 0, rc = 0;

    memset(sum, 0, sizeof(sum));
    memset(maxes, 0, sizeof(maxes));
    for (blist_t *it = b->b_insts.next; it != &b->b_insts; it = it->next) {
        const shiminst_t *si = broker_container_of(it, shiminst_t, sh_link);
        const shim_stats_t *ss = &si->sh_stats;

        if (!ss->ss_have || ss->ss_waited == NULL)
            continue;
        if (merged == NULL) {
            merged = malloc(DCB_HOOK_COUNT * sizeof(*merged));
            if (merged == NULL)
                return UV_ENOMEM;
            for (int h = 0; h < DCB_HOOK_COUNT; h++)
                dcb_hist_reset(&merged[h]);
        }
        have = 1;
        for (int h = 0; h < DCB_HOOK_COUNT; h++) {
            const shim_hook_totals_t *l = &ss->ss_last[h], *z = &ss->ss_base[h];
            shim_hook_totals_t *t = &sum[h];
            const sparse_hist_t *base = &ss->ss_base_waited[h];
            uint32_t top = UINT32_MAX;
            size_t bi = 0;

            t->st_calls += sub0(l->st_calls, z->st_calls);
            t->st_unsubscribed += sub0(l->st_unsubscribed, z->st_unsubscribed);
            t->st_def_timeout += sub0(l->st_def_timeout, z->st_def_timeout);
            t->st_def_no_broker += sub0(l->st_def_no_broker, z->st_def_no_broker);
            t->st_def_breaker += sub0(l->st_def_breaker, z->st_def_breaker);
            t->st_def_bad_reply += sub0(l->st_def_bad_reply, z->st_def_bad_reply);
            t->st_def_other += sub0(l->st_def_other, z->st_def_other);
            t->st_queue_full += sub0(l->st_queue_full, z->st_queue_full);
            t->st_lost += sub0(l->st_lost, z->st_lost);
            t->st_waited_sum += sub0(l->st_waited_sum, z->st_waited_sum);
            for (uint32_t k = 0; k < DCB_HIST_BUCKETS; k++) {
                uint64_t c =
                    atomic_load_explicit(&ss->ss_waited[h].h_buckets[k], memory_order_relaxed);
                if (c == 0)
                    continue;
                while (bi < base->sp_n && base->sp_bucket[bi] < k)
                    bi++;
                if (bi < base->sp_n && base->sp_bucket[bi] == k)
                    c = sub0(c, base->sp_count[bi]);
                if (c != 0) {
                    dcb_hist_add_bucket(&merged[h], k, c);
                    top = k;
                }
            }
            if (top != UINT32_MAX) {
                /*
                 * Never reset: the exact maximum. After a reset the largest
                 * value since then is unknown; the top of its bucket bounds it.
                 */
                uint64_t lo, hi, m = l->st_waited_max;
                dcb_hist_bucket_range(top, &lo, &hi);
                if (base->sp_n != 0 && hi < m)
                    m = hi;
                if (m > maxes[h])
                    maxes[h] = m;
            }
        }
    }
    if (!have)
        return 0;
    r->shim = calloc(DCB_HOOK_COUNT, sizeof(*r->shim));
    if (r->shim == NULL) {
        free(merged);
        return UV_ENOMEM;
    }
    for (int h = 0; h < DCB_HOOK_COUNT && rc == 0; h++) {
        Dcb__ShimHookStats *e = calloc(1, sizeof(*e) + sizeof(Dcb__Histogram));
        Dcb__Histogram *w;
        const shim_hook_totals_t *t = &sum[h];

        if (e == NULL) {
            rc = UV_ENOMEM;
            break;
        }
        dcb__shim_hook_stats__init(e);
        w = (Dcb__Histogram *)(e + 1);
        e->hook = (uint32_t)h;
        e->has_calls = e->has_unsubscribed = e->has_defaults_timeout = 1;
        e->has_defaults_no_broker = e->has_defaults_breaker = e->has_defaults_bad_reply = 1;
        e->has_queue_full = e->has_defaults_other = e->has_lost = 1;
        e->calls = t->st_calls;
        e->unsubscribed = t->st_unsubscribed;
        e->defaults_timeout = t->st_def_timeout;
        e->defaults_no_broker = t->st_def_no_broker;
        e->defaults_breaker = t->st_def_breaker;
        e->defaults_bad_reply = t->st_def_bad_reply;
        e->defaults_other = t->st_def_other;
        e->queue_full = t->st_queue_full;
        e->lost = t->st_lost;
        rc = hist_to_wire(&merged[h], NULL, shift, t->st_waited_sum, maxes[h], w);
        e->waited = w;
        r->shim[r->n_shim++] = e;
    }
    free(merged);
    return rc;
}

int stats_report(broker_t *b, Dcb__StatsReport *r, int shift)
{
    chain_t *c = b->b_chain;
    Dcb__BrokerCounters *bc;
    uint64_t now = dcb_now_ns();
    size_t cap = (c != NULL ? c->c_n : 0) * DCB_HOOK_COUNT;
    int rc = 0;

    dcb__stats_report__init(r);
    r->has_uptime_ms = 1;
    r->uptime_ms = (now - b->b_start_ns) / 1000000u;
    r->has_counters_age_ms = 1;
    r->counters_age_ms = (now - b->b_stats_epoch_ns) / 1000000u;
    bc = calloc(1, sizeof(*bc));
    if (bc == NULL)
        return UV_ENOMEM;
    dcb__broker_counters__init(bc);
    bc->has_requests = bc->has_violations = bc->has_reorder_timeouts = 1;
    bc->has_late_events = bc->has_orphan_events = bc->has_aged_packets = 1;
    bc->has_control_refused = 1;
    bc->requests = b->b_requests;
    bc->violations = b->b_violations;
    bc->reorder_timeouts = b->b_reorder_timeouts;
    bc->late_events = b->b_late_events;
    bc->orphan_events = b->b_orphan_events;
    bc->aged_packets = b->b_aged_packets;
    bc->control_refused = b->b_ctl_refused;
    r->broker = bc;
    if (cap > 0) {
        r->entries = calloc(cap, sizeof(*r->entries));
        if (r->entries == NULL)
            return UV_ENOMEM;
    }
    for (size_t i = 0; c != NULL && i < c->c_n && rc == 0; i++) {
        broker_plugin_t *p = c->c_plugins[i];
        int dup = 0;

        /* The same plugin twice in a chain is one set of counters, listed once. */
        for (size_t j = 0; j < i; j++)
            dup |= c->c_plugins[j] == p;
        if (dup)
            continue;
        for (int h = 0; h < DCB_HOOK_COUNT && rc == 0; h++) {
            const broker_hook_stats_t *s = &p->p_stats.ps_hooks[h];
            Dcb__HookPluginStats *e;
            uint64_t ndef = 0;

            for (int d = 1; d < BROKER_DR_COUNT; d++)
                ndef += s->hs_defaults[d];
            /* A hook the plugin never had anything to do with is left out. */
            if (s->hs_calls == 0 && ndef == 0 && dcb_hist_count(&s->hs_latency) == 0 &&
                !(p->p_hooks_known && (p->p_hooks & DCB_HOOK_BIT(h))))
                continue;
            e = calloc(1, sizeof(*e) + sizeof(Dcb__Histogram));
            if (e == NULL) {
                rc = UV_ENOMEM;
                break;
            }
            dcb__hook_plugin_stats__init(e);
            e->hook = (uint32_t)h;
            e->plugin = p->p_name;
            e->has_calls = e->has_pass = e->has_drop = e->has_modified = 1;
            e->calls = s->hs_calls;
            e->pass = s->hs_pass;
            e->drop = s->hs_drop;
            e->modified = s->hs_modified;
            e->has_defaults_timeout = e->has_defaults_crash = e->has_defaults_breaker = 1;
            e->has_defaults_queue_full = e->has_defaults_bad_reply = 1;
            e->has_defaults_disabled = 1;
            e->defaults_timeout = s->hs_defaults[DCB__DEFAULT_REASON__DR_TIMEOUT];
            e->defaults_crash = s->hs_defaults[DCB__DEFAULT_REASON__DR_CRASH];
            e->defaults_breaker = s->hs_defaults[DCB__DEFAULT_REASON__DR_BREAKER];
            e->defaults_queue_full = s->hs_defaults[DCB__DEFAULT_REASON__DR_QUEUE_FULL];
            e->defaults_bad_reply = s->hs_defaults[DCB__DEFAULT_REASON__DR_BAD_REPLY];
            e->defaults_disabled = s->hs_defaults[DCB__DEFAULT_REASON__DR_DISABLED];
            e->latency = (Dcb__Histogram *)(e + 1);
            rc = hist_to_wire(&s->hs_latency, NULL, shift,
                              atomic_load_explicit(&s->hs_latency.h_sum, memory_order_relaxed),
                              dcb_hist_max(&s->hs_latency), e->latency);
            r->entries[r->n_entries++] = e;
        }
    }
    if (rc == 0)
        rc = shim_entries(b, r, shift);
    return rc;
}

void stats_report_free(Dcb__StatsReport *r)
{
    for (size_t i = 0; i < r->n_entries; i++) {
        hist_wire_free(r->entries[i]->latency);
        free(r->entries[i]);
    }
    free(r->entries);
    for (size_t i = 0; i < r->n_shim; i++) {
        hist_wire_free(r->shim[i]->waited);
        free(r->shim[i]);
    }
    free(r->shim);
    free(r->broker);
    dcb__stats_report__init(r);
}
