/*
 * stats.c — per hook × plugin counters and latency histograms.
 *
 * The counters live in each broker_plugin_t, which outlives its host
 * processes, so they are cumulative per plugin across restarts. Until the
 * control pipe serves them (dcbctl stats), the broker logs a summary when
 * it stops.
 */
#include "chain.h"

#include <stdio.h>
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
    dcb_log(DCB_LOG_INFO, "stats %s: state %s, restarts %u, failures %u%s%s", p->p_name,
            plugin_state_name(p->p_state), p->p_stats.ps_restarts, p->p_stats.ps_failures,
            p->p_last_failure[0] ? ", last failure: " : "", p->p_last_failure);
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
