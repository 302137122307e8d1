/*
 * report.c — a run's figures: a table for people, JSON (cJSON) for
 * machines. Both carry the same numbers.
 */
#include "dcbsim.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t ld(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static const char *fmt_ns(uint64_t ns, char *buf, size_t cap)
{
    if (ns < 1000)
        snprintf(buf, cap, "%" PRIu64 "ns", ns);
    else if (ns < 1000000)
        snprintf(buf, cap, "%.2fus", (double)ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buf, cap, "%.2fms", (double)ns / 1e6);
    else
        snprintf(buf, cap, "%.2fs", (double)ns / 1e9);
    return buf;
}

static uint64_t server_drops(const sim_stats_t *st)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < SIM_DROP_SLOTS; i++)
        n += ld(&st->st_drops[i]);
    return n;
}

void sim_report_table(FILE *f, const sim_run_info_t *ri, const sim_stats_t *st)
{
    double secs = (double)st->st_elapsed_ns / 1e9;
    fprintf(f, "dcb-sim: %" PRIu64 " packets (%s", st->st_received, ri->ri_source);
    if (ri->ri_seed != 0)
        fprintf(f, ", seed %" PRIu64, ri->ri_seed);
    fprintf(f, ") in %.3f s = %.0f pkt/s, %u workers\n", secs,
            secs > 0 ? (double)st->st_received / secs : 0.0, ri->ri_config->cf_workers);

    const sim_loader_t *ld_ = ri->ri_loader;
    if (ld_ == NULL || ld_->ld_count == 0)
        fprintf(f, "callouts: none configured\n");
    for (size_t i = 0; ld_ != NULL && i < ld_->ld_count; i++) {
        const sim_load_attempt_t *a = &ld_->ld_attempts[i];
        fprintf(f, "%s %s: %s", i == 0 ? "callouts:" : "         ", a->la_path,
                sim_load_result_name(a->la_result));
        if (a->la_result == SIM_LOAD_OK)
            fprintf(f, " (%zu more in its chain)", ld_->ld_count - i - 1);
        else if (a->la_reason[0] != '\0')
            fprintf(f, " (%s)", a->la_reason);
        fputc('\n', f);
    }
    if (ld_ != NULL && ld_->ld_count > 0 && ld_->ld_loaded == ld_->ld_count)
        fprintf(f, "          no callout DLL loaded: running without callouts\n");

    fprintf(f, "\n%-26s %12" PRIu64 "\n", "packets in", ld(&st->st_in));
    fprintf(f, "%-26s %12" PRIu64 "\n", "oversized (discarded)", ld(&st->st_oversized));
    fprintf(f, "%-26s %12" PRIu64 "\n", "dropped by plugin", ld(&st->st_plugin_drops));
    fprintf(f, "%-26s %12" PRIu64 "\n", "changed by NewPkt", ld(&st->st_pkts_modified));
    fprintf(f, "%-26s %12" PRIu64 "\n", "dropped by server", server_drops(st));
    for (unsigned i = 0; i < SIM_DROP_SLOTS; i++)
        if (ld(&st->st_drops[i]) > 0)
            fprintf(f, "  %-24s %12" PRIu64 "\n", sim_drop_slot_name(i), ld(&st->st_drops[i]));
    fprintf(f, "%-26s %12" PRIu64 "\n", "replies sent", ld(&st->st_replies));
    fprintf(f, "%-26s %12" PRIu64 "\n", "  modified by PktSend", ld(&st->st_replies_modified));
    fprintf(f, "%-26s %12" PRIu64 "\n", "  unsendable after PktSend", ld(&st->st_replies_unsent));
    fprintf(f, "%-26s %12" PRIu64 "\n", "no reply (release, ...)", ld(&st->st_no_reply));
    fprintf(f, "%-26s %12" PRIu64 "\n", "abandoned at stop", ld(&st->st_abandoned));
    fprintf(f, "%-26s %12" PRIu64 "\n", "PROCESSED drops", ld(&st->st_processed));
    fprintf(f, "%-26s %12" PRIu64 "\n", "leases scavenged", ld(&st->st_deleted_clients));
    fprintf(f, "%-26s %12" PRIu64 "\n", "contract violations", sim_stats_violations(st));
    for (unsigned v = 0; v < SIM_V_COUNT; v++)
        if (ld(&st->st_violations[v]) > 0)
            fprintf(f, "  %-30s %8" PRIu64 "\n", sim_violation_name((sim_violation_t)v),
                    ld(&st->st_violations[v]));

    fprintf(f, "\n%-14s %10s %9s %9s %9s %9s %9s\n", "hook", "calls", "p50", "p90", "p99", "p99.9",
            "max");
    for (unsigned h = 0; h < DCB_HOOK_COUNT; h++) {
        const dcb_hist_t *hist = &st->st_lat[h];
        char b[5][24];
        if (ld(&st->st_calls[h]) == 0)
            continue;
        fprintf(f, "%-14s %10" PRIu64 " %9s %9s %9s %9s %9s\n", sim_hook_name((dcb_hook_t)h),
                ld(&st->st_calls[h]), fmt_ns(dcb_hist_quantile(hist, 0.50), b[0], 24),
                fmt_ns(dcb_hist_quantile(hist, 0.90), b[1], 24),
                fmt_ns(dcb_hist_quantile(hist, 0.99), b[2], 24),
                fmt_ns(dcb_hist_quantile(hist, 0.999), b[3], 24),
                fmt_ns(dcb_hist_max(hist), b[4], 24));
    }
}

static void num(cJSON *o, const char *k, uint64_t v)
{
    cJSON_AddNumberToObject(o, k, (double)v);
}

char *sim_report_json(const sim_run_info_t *ri, const sim_stats_t *st)
{
    cJSON *root = cJSON_CreateObject();
    if (root == NULL)
        return NULL;
    double secs = (double)st->st_elapsed_ns / 1e9;
    num(root, "version", 1);
    num(root, "seed", ri->ri_seed);
    cJSON_AddStringToObject(root, "source", ri->ri_source);
    num(root, "workers", ri->ri_config->cf_workers);
    cJSON_AddNumberToObject(root, "elapsed_s", secs);
    cJSON_AddNumberToObject(root, "rate_pps", secs > 0 ? (double)st->st_received / secs : 0.0);

    cJSON *callouts = cJSON_AddArrayToObject(root, "callouts");
    const sim_loader_t *lo = ri->ri_loader;
    const char *loaded = NULL;
    for (size_t i = 0; lo != NULL && i < lo->ld_count; i++) {
        const sim_load_attempt_t *a = &lo->ld_attempts[i];
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "path", a->la_path);
        cJSON_AddStringToObject(c, "result", sim_load_result_name(a->la_result));
        num(c, "code", a->la_code);
        cJSON_AddStringToObject(c, "reason", a->la_reason);
        cJSON_AddItemToArray(callouts, c);
        if (a->la_result == SIM_LOAD_OK)
            loaded = a->la_path;
    }
    if (loaded != NULL)
        cJSON_AddStringToObject(root, "loaded", loaded);
    else
        cJSON_AddNullToObject(root, "loaded");

    cJSON *pk = cJSON_AddObjectToObject(root, "packets");
    num(pk, "received", st->st_received);
    num(pk, "in", ld(&st->st_in));
    num(pk, "oversized", ld(&st->st_oversized));
    num(pk, "plugin_drops", ld(&st->st_plugin_drops));
    num(pk, "changed_by_newpkt", ld(&st->st_pkts_modified));
    num(pk, "server_drops", server_drops(st));
    num(pk, "replies", ld(&st->st_replies));
    num(pk, "replies_modified", ld(&st->st_replies_modified));
    num(pk, "replies_unsent", ld(&st->st_replies_unsent));
    num(pk, "no_reply", ld(&st->st_no_reply));
    num(pk, "abandoned", ld(&st->st_abandoned));
    num(pk, "processed", ld(&st->st_processed));
    num(pk, "deleted_clients", ld(&st->st_deleted_clients));

    cJSON *dr = cJSON_AddObjectToObject(root, "server_drops");
    for (unsigned i = 1; i < SIM_DROP_SLOTS - 1; i++)
        num(dr, sim_drop_slot_name(i), ld(&st->st_drops[i]));

    cJSON *kinds = cJSON_AddObjectToObject(root, "kinds");
    for (unsigned k = 0; k < SIM_KIND_COUNT; k++)
        num(kinds, sim_pkt_kind_name((sim_pkt_kind_t)k), ld(&st->st_kinds[k]));

    cJSON *vi = cJSON_AddObjectToObject(root, "violations");
    num(vi, "total", sim_stats_violations(st));
    for (unsigned v = 0; v < SIM_V_COUNT; v++)
        num(vi, sim_violation_name((sim_violation_t)v), ld(&st->st_violations[v]));

    cJSON *hooks = cJSON_AddObjectToObject(root, "hooks");
    for (unsigned h = 0; h < DCB_HOOK_COUNT; h++) {
        const dcb_hist_t *hist = &st->st_lat[h];
        cJSON *o = cJSON_AddObjectToObject(hooks, sim_hook_name((dcb_hook_t)h));
        uint64_t n = ld(&st->st_calls[h]);
        num(o, "calls", n);
        num(o, "p50_ns", dcb_hist_quantile(hist, 0.50));
        num(o, "p90_ns", dcb_hist_quantile(hist, 0.90));
        num(o, "p99_ns", dcb_hist_quantile(hist, 0.99));
        num(o, "p999_ns", dcb_hist_quantile(hist, 0.999));
        num(o, "max_ns", dcb_hist_max(hist));
        /*
         * The whole distribution, sparse: [lowest ns of a bucket, calls], so a
         * test can count the calls that waited at least so long.
         */
        cJSON *buckets = cJSON_AddArrayToObject(o, "buckets");
        for (uint32_t b = 0; n > 0 && b < DCB_HIST_BUCKETS; b++) {
            uint64_t c = ld(&hist->h_buckets[b]), b_lo, b_hi;
            if (c == 0)
                continue;
            dcb_hist_bucket_range(b, &b_lo, &b_hi);
            cJSON *pair = cJSON_CreateArray();
            cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)b_lo));
            cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)c));
            cJSON_AddItemToArray(buckets, pair);
        }
    }
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    return out;
}
