/*
 * out_stats.c — `dcbctl stats` as a table: per hook × plugin, then the
 * shim's end-to-end view. Also the body of each `dcbctl top` screen.
 */
#include "dcbctl.h"

#include <stdlib.h>
#include <string.h>

#include "dcb_callout.h"

/* Appends " name=value" to buf for a non-zero counter. */
static void add_count(char *buf, size_t n, const char *name, int has, uint64_t v)
{
    size_t used = strlen(buf);

    if (!has || v == 0 || used >= n)
        return;
    snprintf(buf + used, n - used, "%s%s=%llu", used ? " " : "", name, (unsigned long long)v);
}

static void latency_cells(ctl_table_t *t, int col, const ctl_latency_t *l)
{
    const uint64_t v[5] = {l->l_p50, l->l_p90, l->l_p99, l->l_p999, l->l_max};
    char buf[32];

    for (int i = 0; i < 5; i++) {
        if (l->l_count == 0)
            snprintf(buf, sizeof(buf), "-");
        else
            ctl_fmt_duration(v[i], buf, sizeof(buf));
        ctl_table_cell(t, col + i, "%s", buf);
    }
}

/* Entries in hook order, each hook's plugins in the order the broker sent them. */
static size_t *sorted_entries(const Dcb__StatsReport *r)
{
    size_t *idx = malloc((r->n_entries + 1) * sizeof(*idx));

    if (idx == NULL)
        return NULL;
    for (size_t i = 0; i < r->n_entries; i++) {
        size_t j = i;
        while (j > 0 && r->entries[idx[j - 1]]->hook > r->entries[i]->hook) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    return idx;
}

static const Dcb__HookPluginStats *find_prev(const Dcb__StatsReport *prev,
                                             const Dcb__HookPluginStats *e)
{
    for (size_t i = 0; prev != NULL && i < prev->n_entries; i++)
        if (prev->entries[i]->hook == e->hook && strcmp(prev->entries[i]->plugin, e->plugin) == 0)
            return prev->entries[i];
    return NULL;
}

static void plugin_table(const Dcb__StatsReport *r, const Dcb__StatsReport *prev,
                         uint32_t interval_ms, dcb_hist_t *scratch, FILE *out)
{
    static const char *const header[] = {"HOOK",  "PLUGIN",   "CALLS",   "CALLS/S", "PASS",
                                         "DROP",  "MODIFIED", "P50",     "P90",     "P99",
                                         "P99.9", "MAX",      "DEFAULTS"};
    static const int right[] = {0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
    const char *hdr[13];
    int rt[13], cols = 0, rate = prev != NULL && interval_ms > 0;
    size_t *idx = sorted_entries(r);
    ctl_table_t t;

    if (idx == NULL)
        return;
    for (int c = 0; c < 13; c++) {
        if (c == 3 && !rate)
            continue;
        hdr[cols] = header[c];
        rt[cols++] = right[c];
    }
    ctl_table_init(&t, cols, hdr, rt);
    for (size_t k = 0; k < r->n_entries; k++) {
        const Dcb__HookPluginStats *e = r->entries[idx[k]];
        const Dcb__HookPluginStats *p = rate ? find_prev(prev, e) : NULL;
        char name[128], defaults[256] = "";
        ctl_latency_t lat;
        int c = 0;

        ctl_fmt_sanitize(e->plugin, name, sizeof(name));
        ctl_latency_from_wire(e->latency, scratch, &lat);
        ctl_table_cell(&t, c++, "%s", dcb_hook_name((int)e->hook));
        ctl_table_cell(&t, c++, "%s", name);
        ctl_table_cell(&t, c++, "%llu", (unsigned long long)e->calls);
        if (rate) {
            if (p != NULL && p->calls <= e->calls)
                ctl_table_cell(&t, c, "%.0f",
                               (double)(e->calls - p->calls) * 1000.0 / (double)interval_ms);
            else
                ctl_table_cell(&t, c, "-");
            c++;
        }
        ctl_table_cell(&t, c++, "%llu", (unsigned long long)e->pass);
        ctl_table_cell(&t, c++, "%llu", (unsigned long long)e->drop);
        ctl_table_cell(&t, c++, "%llu", (unsigned long long)e->modified);
        latency_cells(&t, c, &lat);
        c += 5;
        add_count(defaults, sizeof(defaults), "timeout", e->has_defaults_timeout,
                  e->defaults_timeout);
        add_count(defaults, sizeof(defaults), "crash", e->has_defaults_crash, e->defaults_crash);
        add_count(defaults, sizeof(defaults), "breaker", e->has_defaults_breaker,
                  e->defaults_breaker);
        add_count(defaults, sizeof(defaults), "queue_full", e->has_defaults_queue_full,
                  e->defaults_queue_full);
        add_count(defaults, sizeof(defaults), "bad_reply", e->has_defaults_bad_reply,
                  e->defaults_bad_reply);
        add_count(defaults, sizeof(defaults), "disabled", e->has_defaults_disabled,
                  e->defaults_disabled);
        ctl_table_cell(&t, c, "%s", defaults[0] ? defaults : "-");
    }
    ctl_table_print(&t, out);
    ctl_table_free(&t);
    free(idx);
}

static void shim_table(const Dcb__StatsReport *r, dcb_hist_t *scratch, FILE *out)
{
    static const char *const header[] = {"HOOK", "CALLS", "UNSUBSCRIBED", "P50",     "P90",
                                         "P99",  "P99.9", "MAX",          "DEFAULTS"};
    static const int right[] = {0, 1, 1, 1, 1, 1, 1, 1, 0};
    ctl_table_t t;

    ctl_table_init(&t, 9, header, right);
    for (int hook = 0; hook < DCB_HOOK_COUNT; hook++) {
        for (size_t i = 0; i < r->n_shim; i++) {
            const Dcb__ShimHookStats *s = r->shim[i];
            char defaults[256] = "";
            ctl_latency_t lat;

            if (s->hook != (uint32_t)hook)
                continue;
            ctl_latency_from_wire(s->waited, scratch, &lat);
            ctl_table_cell(&t, 0, "%s", dcb_hook_name((int)s->hook));
            ctl_table_cell(&t, 1, "%llu", (unsigned long long)s->calls);
            ctl_table_cell(&t, 2, "%llu", (unsigned long long)s->unsubscribed);
            latency_cells(&t, 3, &lat);
            add_count(defaults, sizeof(defaults), "timeout", s->has_defaults_timeout,
                      s->defaults_timeout);
            add_count(defaults, sizeof(defaults), "no_broker", s->has_defaults_no_broker,
                      s->defaults_no_broker);
            add_count(defaults, sizeof(defaults), "breaker", s->has_defaults_breaker,
                      s->defaults_breaker);
            add_count(defaults, sizeof(defaults), "bad_reply", s->has_defaults_bad_reply,
                      s->defaults_bad_reply);
            add_count(defaults, sizeof(defaults), "other", s->has_defaults_other,
                      s->defaults_other);
            add_count(defaults, sizeof(defaults), "queue_full", s->has_queue_full, s->queue_full);
            add_count(defaults, sizeof(defaults), "lost", s->has_lost, s->lost);
            ctl_table_cell(&t, 8, "%s", defaults[0] ? defaults : "-");
        }
    }
    ctl_table_print(&t, out);
    ctl_table_free(&t);
}

void ctl_out_stats_text(const Dcb__StatsReport *r, const Dcb__StatsReport *prev,
                        uint32_t interval_ms, FILE *out)
{
    dcb_hist_t *scratch = malloc(sizeof(*scratch));
    char up[32];

    if (scratch == NULL) {
        fprintf(out, "(out of memory)\n");
        return;
    }
    if (r->has_uptime_ms) {
        ctl_fmt_uptime(r->uptime_ms, up, sizeof(up));
        fprintf(out, "broker up %s\n\n", up);
    }
    fprintf(out, "Plugins (latency: each call as the broker timed it)\n");
    if (r->n_entries == 0)
        fprintf(out, "  no calls recorded\n");
    else
        plugin_table(r, prev, interval_ms, scratch, out);
    fprintf(out, "\nShim (end to end: what the DHCP server's threads waited)\n");
    if (r->n_shim == 0)
        fprintf(out, "  no shim connected yet\n");
    else
        shim_table(r, scratch, out);
    free(scratch);
}
