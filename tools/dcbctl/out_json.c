/*
 * out_json.c — `dcbctl stats --json`: the same numbers as the table, for
 * programs. Latencies are in nanoseconds; every counter is present (0 when
 * the broker left it out), so a consumer never has to guess.
 *
 * {
 *   "uptime_ms": 7380000,
 *   "plugins": [ { "hook": "NewPkt", "plugin": "macfilter", "calls": 1000,
 *                  "pass": 990, "drop": 10, "modified": 0,
 *                  "defaults": { "timeout": 0, "crash": 0, "breaker": 0,
 *                                "queue_full": 0, "bad_reply": 0, "disabled": 0 },
 *                  "latency_ns": { "count": 1000, "p50": ..., "p90": ..., "p99": ...,
 *                                  "p99_9": ..., "max": ..., "sum": ... } } ],
 *   "shim": [ { "hook": "NewPkt", "calls": ..., "unsubscribed": ...,
 *               "defaults": { "timeout", "no_broker", "breaker", "bad_reply", "other" },
 *               "queue_full": ..., "lost": ..., "waited_ns": { ... } } ]
 * }
 */
#include "dcbctl.h"

#include <stdlib.h>

#include <cJSON.h>

static void add_u64(cJSON *o, const char *name, uint64_t v)
{
    /* JSON numbers are doubles: exact up to 2^53, far beyond any counter here. */
    cJSON_AddNumberToObject(o, name, (double)v);
}

static cJSON *latency_object(const Dcb__Histogram *h, dcb_hist_t *scratch)
{
    cJSON *o = cJSON_CreateObject();
    ctl_latency_t l;

    ctl_latency_from_wire(h, scratch, &l);
    add_u64(o, "count", l.l_count);
    add_u64(o, "p50", l.l_p50);
    add_u64(o, "p90", l.l_p90);
    add_u64(o, "p99", l.l_p99);
    add_u64(o, "p99_9", l.l_p999);
    add_u64(o, "max", l.l_max);
    add_u64(o, "sum", l.l_sum);
    return o;
}

int ctl_out_stats_json(const Dcb__StatsReport *r, FILE *out)
{
    dcb_hist_t *scratch = malloc(sizeof(*scratch));
    cJSON *root = cJSON_CreateObject(), *plugins, *shim;
    char *text;

    if (root == NULL || scratch == NULL) {
        cJSON_Delete(root);
        free(scratch);
        return -1;
    }
    if (r->has_uptime_ms)
        add_u64(root, "uptime_ms", r->uptime_ms);
    plugins = cJSON_AddArrayToObject(root, "plugins");
    for (size_t i = 0; i < r->n_entries; i++) {
        const Dcb__HookPluginStats *e = r->entries[i];
        cJSON *o = cJSON_CreateObject(), *d;

        cJSON_AddItemToArray(plugins, o);
        cJSON_AddStringToObject(o, "hook", dcb_hook_name((int)e->hook));
        cJSON_AddStringToObject(o, "plugin", e->plugin);
        add_u64(o, "calls", e->calls);
        add_u64(o, "pass", e->pass);
        add_u64(o, "drop", e->drop);
        add_u64(o, "modified", e->modified);
        d = cJSON_AddObjectToObject(o, "defaults");
        add_u64(d, "timeout", e->defaults_timeout);
        add_u64(d, "crash", e->defaults_crash);
        add_u64(d, "breaker", e->defaults_breaker);
        add_u64(d, "queue_full", e->defaults_queue_full);
        add_u64(d, "bad_reply", e->defaults_bad_reply);
        add_u64(d, "disabled", e->defaults_disabled);
        cJSON_AddItemToObject(o, "latency_ns", latency_object(e->latency, scratch));
    }
    shim = cJSON_AddArrayToObject(root, "shim");
    for (size_t i = 0; i < r->n_shim; i++) {
        const Dcb__ShimHookStats *s = r->shim[i];
        cJSON *o = cJSON_CreateObject(), *d;

        cJSON_AddItemToArray(shim, o);
        cJSON_AddStringToObject(o, "hook", dcb_hook_name((int)s->hook));
        add_u64(o, "calls", s->calls);
        add_u64(o, "unsubscribed", s->unsubscribed);
        d = cJSON_AddObjectToObject(o, "defaults");
        add_u64(d, "timeout", s->defaults_timeout);
        add_u64(d, "no_broker", s->defaults_no_broker);
        add_u64(d, "breaker", s->defaults_breaker);
        add_u64(d, "bad_reply", s->defaults_bad_reply);
        add_u64(d, "other", s->defaults_other);
        add_u64(o, "queue_full", s->queue_full);
        add_u64(o, "lost", s->lost);
        cJSON_AddItemToObject(o, "waited_ns", latency_object(s->waited, scratch));
    }
    free(scratch);
    text = cJSON_Print(root);
    cJSON_Delete(root);
    if (text == NULL)
        return -1;
    fprintf(out, "%s\n", text);
    cJSON_free(text);
    return 0;
}
