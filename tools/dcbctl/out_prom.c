/*
 * out_prom.c — `dcbctl stats --prometheus`: Prometheus text exposition
 * format 0.0.4, for a textfile collector or a scrape wrapper.
 *
 * Each metric family appears once, its HELP and TYPE lines first, then all
 * its samples. Latencies are summaries in seconds (quantile 0.5, 0.9, 0.99,
 * 0.999, plus _sum and _count) with the exact maximum as a separate gauge;
 * an empty summary reports NaN quantiles, as the Go client does.
 */
#include "dcbctl.h"

#include <stdlib.h>
#include <string.h>

/* A label value with \, " and newline escaped as the format requires. */
static void label_escape(const char *s, char *buf, size_t n)
{
    size_t i = 0;

    for (; s != NULL && *s != '\0' && i + 2 < n; s++) {
        if (*s == '\\' || *s == '"') {
            buf[i++] = '\\';
            buf[i++] = *s;
        } else if (*s == '\n') {
            buf[i++] = '\\';
            buf[i++] = 'n';
        } else {
            buf[i++] = *s;
        }
    }
    buf[i] = '\0';
}

static void family(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The label set of a hook × plugin entry (plugin NULL: a shim entry). */
static void labels(char *buf, size_t n, uint32_t hook, const char *plugin)
{
    char esc[512];

    if (plugin == NULL) {
        snprintf(buf, n, "hook=\"%s\"", dcb_hook_name((int)hook));
        return;
    }
    label_escape(plugin, esc, sizeof(esc));
    snprintf(buf, n, "hook=\"%s\",plugin=\"%s\"", dcb_hook_name((int)hook), esc);
}

static void seconds(FILE *out, uint64_t ns)
{
    fprintf(out, "%.9g\n", (double)ns / 1e9);
}

static void summary_samples(FILE *out, const char *name, const char *lbl, const Dcb__Histogram *h,
                            dcb_hist_t *scratch)
{
    static const char *const q[] = {"0.5", "0.9", "0.99", "0.999"};
    ctl_latency_t l;
    uint64_t v[4];

    ctl_latency_from_wire(h, scratch, &l);
    v[0] = l.l_p50;
    v[1] = l.l_p90;
    v[2] = l.l_p99;
    v[3] = l.l_p999;
    for (int i = 0; i < 4; i++) {
        fprintf(out, "%s{%s,quantile=\"%s\"} ", name, lbl, q[i]);
        if (l.l_count == 0)
            fputs("NaN\n", out);
        else
            seconds(out, v[i]);
    }
    fprintf(out, "%s_sum{%s} ", name, lbl);
    seconds(out, l.l_sum);
    fprintf(out, "%s_count{%s} %llu\n", name, lbl, (unsigned long long)l.l_count);
}

static void max_sample(FILE *out, const char *name, const char *lbl, const Dcb__Histogram *h,
                       dcb_hist_t *scratch)
{
    ctl_latency_t l;

    ctl_latency_from_wire(h, scratch, &l);
    if (l.l_count == 0)
        return;
    fprintf(out, "%s{%s} ", name, lbl);
    seconds(out, l.l_max);
}

#define U64(v) ((unsigned long long)(v))

void ctl_out_stats_prometheus(const Dcb__StatsReport *r, FILE *out)
{
    static const char *const decisions[] = {"pass", "drop", "modified"};
    static const char *const plugin_reasons[] = {"timeout",    "crash",     "breaker",
                                                 "queue_full", "bad_reply", "disabled"};
    static const char *const shim_reasons[] = {"timeout", "no_broker", "breaker", "bad_reply",
                                               "other"};
    dcb_hist_t *scratch = malloc(sizeof(*scratch));
    char lbl[600];

    if (scratch == NULL)
        return;
    if (r->has_uptime_ms) {
        family(out, "dcb_broker_uptime_seconds", "gauge", "Time since the broker started.");
        fprintf(out, "dcb_broker_uptime_seconds %.3f\n", (double)r->uptime_ms / 1e3);
    }

    if (r->n_entries > 0) {
        family(out, "dcb_hook_calls_total", "counter", "Hook calls the broker made to a plugin.");
        for (size_t i = 0; i < r->n_entries; i++) {
            labels(lbl, sizeof(lbl), r->entries[i]->hook, r->entries[i]->plugin);
            fprintf(out, "dcb_hook_calls_total{%s} %llu\n", lbl, U64(r->entries[i]->calls));
        }
        family(out, "dcb_hook_decisions_total", "counter",
               "What a plugin decided: pass, drop or modified the packet.");
        for (size_t i = 0; i < r->n_entries; i++) {
            const Dcb__HookPluginStats *e = r->entries[i];
            const uint64_t v[] = {e->pass, e->drop, e->modified};
            labels(lbl, sizeof(lbl), e->hook, e->plugin);
            for (int d = 0; d < 3; d++)
                fprintf(out, "dcb_hook_decisions_total{%s,decision=\"%s\"} %llu\n", lbl,
                        decisions[d], U64(v[d]));
        }
        family(out, "dcb_hook_defaults_total", "counter",
               "Default decisions taken instead of the plugin's, by reason.");
        for (size_t i = 0; i < r->n_entries; i++) {
            const Dcb__HookPluginStats *e = r->entries[i];
            const uint64_t v[] = {e->defaults_timeout,   e->defaults_crash,
                                  e->defaults_breaker,   e->defaults_queue_full,
                                  e->defaults_bad_reply, e->defaults_disabled};
            labels(lbl, sizeof(lbl), e->hook, e->plugin);
            for (int d = 0; d < 6; d++)
                fprintf(out, "dcb_hook_defaults_total{%s,reason=\"%s\"} %llu\n", lbl,
                        plugin_reasons[d], U64(v[d]));
        }
        family(out, "dcb_hook_latency_seconds", "summary",
               "Latency of a plugin's hook calls as the broker timed them.");
        for (size_t i = 0; i < r->n_entries; i++) {
            labels(lbl, sizeof(lbl), r->entries[i]->hook, r->entries[i]->plugin);
            summary_samples(out, "dcb_hook_latency_seconds", lbl, r->entries[i]->latency, scratch);
        }
        family(out, "dcb_hook_latency_max_seconds", "gauge",
               "Longest hook call of a plugin since the counters were reset.");
        for (size_t i = 0; i < r->n_entries; i++) {
            labels(lbl, sizeof(lbl), r->entries[i]->hook, r->entries[i]->plugin);
            max_sample(out, "dcb_hook_latency_max_seconds", lbl, r->entries[i]->latency, scratch);
        }
    }

    if (r->n_shim > 0) {
        family(out, "dcb_shim_calls_total", "counter",
               "Hook calls the DHCP server made to the shim.");
        for (size_t i = 0; i < r->n_shim; i++) {
            labels(lbl, sizeof(lbl), r->shim[i]->hook, NULL);
            fprintf(out, "dcb_shim_calls_total{%s} %llu\n", lbl, U64(r->shim[i]->calls));
        }
        family(out, "dcb_shim_unsubscribed_total", "counter",
               "Shim calls no plugin subscribed to (answered without I/O).");
        for (size_t i = 0; i < r->n_shim; i++) {
            labels(lbl, sizeof(lbl), r->shim[i]->hook, NULL);
            fprintf(out, "dcb_shim_unsubscribed_total{%s} %llu\n", lbl,
                    U64(r->shim[i]->unsubscribed));
        }
        family(out, "dcb_shim_defaults_total", "counter",
               "Default decisions the shim took itself, by reason.");
        for (size_t i = 0; i < r->n_shim; i++) {
            const Dcb__ShimHookStats *s = r->shim[i];
            const uint64_t v[] = {s->defaults_timeout, s->defaults_no_broker, s->defaults_breaker,
                                  s->defaults_bad_reply, s->defaults_other};
            labels(lbl, sizeof(lbl), s->hook, NULL);
            for (int d = 0; d < 5; d++)
                fprintf(out, "dcb_shim_defaults_total{%s,reason=\"%s\"} %llu\n", lbl,
                        shim_reasons[d], U64(v[d]));
        }
        family(out, "dcb_shim_queue_full_total", "counter",
               "Notifications dropped because the shim's queue was full.");
        for (size_t i = 0; i < r->n_shim; i++) {
            labels(lbl, sizeof(lbl), r->shim[i]->hook, NULL);
            fprintf(out, "dcb_shim_queue_full_total{%s} %llu\n", lbl, U64(r->shim[i]->queue_full));
        }
        family(out, "dcb_shim_lost_total", "counter",
               "Queued notifications lost when the connection to the broker broke.");
        for (size_t i = 0; i < r->n_shim; i++) {
            labels(lbl, sizeof(lbl), r->shim[i]->hook, NULL);
            fprintf(out, "dcb_shim_lost_total{%s} %llu\n", lbl, U64(r->shim[i]->lost));
        }
        family(out, "dcb_shim_wait_seconds", "summary",
               "What the DHCP server's thread waited in the shim, end to end.");
        for (size_t i = 0; i < r->n_shim; i++) {
            labels(lbl, sizeof(lbl), r->shim[i]->hook, NULL);
            summary_samples(out, "dcb_shim_wait_seconds", lbl, r->shim[i]->waited, scratch);
        }
        family(out, "dcb_shim_wait_max_seconds", "gauge",
               "Longest wait of the DHCP server's thread in the shim.");
        for (size_t i = 0; i < r->n_shim; i++) {
            labels(lbl, sizeof(lbl), r->shim[i]->hook, NULL);
            max_sample(out, "dcb_shim_wait_max_seconds", lbl, r->shim[i]->waited, scratch);
        }
    }
    free(scratch);
}
