/*
 * main.c — dcb-bench: options, the order of the run, and the self-check.
 *
 * The order is chosen so that configurations do not disturb each other:
 * each dcb configuration gets a broker of its own, started for it and
 * stopped after it (so its peak memory and final statistics are its own),
 * and the raw chain runs in blocks spread over the whole run (between the
 * configurations, never while a broker runs), because on a shared or
 * virtual machine where the scheduler places three processes changes a
 * round trip by several times; spreading the samples lets the raw figure
 * see the same mix of placements the dcb figures saw.
 */
#include "bench.h"

#include "rawchain.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2
#define RAW_BLOCKS 4

static int quiet_notes;

void bench_note(const bench_ctx_t *c, const char *fmt, ...)
{
    va_list ap;

    if (quiet_notes && !c->c_opt.o_verbose)
        return;
    va_start(ap, fmt);
    fprintf(stderr, "dcb-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: dcb-bench [options]\n"
               "\n"
               "Runs one seeded dcb-sim workload through (1) the noop plugin in-process, (1c) the\n"
               "sample chain in-process, (2) dcb with one noop plugin, (3) dcb with macfilter ->\n"
               "auditlog -> optinject, and (4) a raw two-hop socket chain with the same frame\n"
               "sizes; then the issue-4 micro-figures. Prints them side by side.\n"
               "\n"
               "  --count N         packets per configuration (default 20000)\n"
               "  --micro N         round trips per micro figure (default 20000)\n"
               "  --unsub N         calls of the unsubscribed hook (default 10000000)\n"
               "  --blocks N        raw/dcb interleaving blocks in the micro figures (default 10)\n"
               "  --seed N          traffic seed (default 1)\n"
               "  --clients N       simulated clients (default 1000)\n"
               "  --workers N       the emulated server's worker threads (default CPUs + 1)\n"
               "  --scaling         also sweep calling threads, chain length, packet size and\n"
               "                    offered load\n"
               "  --step-seconds S  seconds per offered-load step (default 2)\n"
               "  --soak SECONDS    also run a memory soak at a steady load\n"
               "  --soak-rate R     packets/s offered during the soak (default 2000)\n"
               "  --soak-every S    memory sample period (default 5 s; a tenth of a short soak)\n"
               "  --only LIST       run only these sections: compare, micro, scaling, soak\n"
               "  --cpus LIST       pin everything (us, the broker, hosts, raw chain) to CPUs,\n"
               "                    e.g. 0 or 0-1\n"
               "  --busy-poll US    busy_poll_us for every broker started (0..1000): while\n"
               "                    events arrive closer together than US microseconds the\n"
               "                    broker's loop polls instead of sleeping; 0: never (default:\n"
               "                    not set, the broker's own default, 50)\n"
               "  --json            print JSON instead of the table\n"
               "  --smoke           tiny counts and a self-check (for ctest; not for figures)\n"
               "  --check           exit 1 unless every figure is present and sane\n"
               "  --keep            keep the temporary folder (configs, logs)\n"
               "  -v                progress, and the shim's and broker's logs\n"
               "  --version, --help\n"
               "\n"
               "Exit status: 0, 1 when a run failed (or --check found a bad figure), 2 for bad\n"
               "usage. See tools/bench/README.md.\n");
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    v = strtoull(s, &end, 10);
    if (*end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_secs(const char *s, double min, double max, double *out)
{
    char *end;
    double v;

    if (s == NULL)
        return -1;
    v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= min && v <= max))
        return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, bench_opts_t *o, int *keep)
{
    int only = 0;

    memset(o, 0, sizeof(*o));
    o->o_seed = 1;
    o->o_clients = 1000;
    o->o_count = 20000;
    o->o_micro = 20000;
    o->o_unsub = 10000000;
    o->o_blocks = 10;
    o->o_sections = BENCH_SEC_COMPARE | BENCH_SEC_MICRO;
    o->o_soak_rate = 2000;
    o->o_step_s = 2;
    o->o_busy_poll_us = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        int bad = 0;

        if (strcmp(a, "--count") == 0) {
            bad = parse_u64(v, 100, 100000000, &o->o_count);
            i++;
        } else if (strcmp(a, "--micro") == 0) {
            bad = parse_u64(v, 100, 100000000, &o->o_micro);
            i++;
        } else if (strcmp(a, "--unsub") == 0) {
            bad = parse_u64(v, 1000, 10000000000ull, &o->o_unsub);
            i++;
        } else if (strcmp(a, "--blocks") == 0) {
            bad = parse_u64(v, 1, 1000, &n);
            o->o_blocks = (unsigned)n;
            i++;
        } else if (strcmp(a, "--seed") == 0) {
            bad = parse_u64(v, 0, UINT64_MAX, &o->o_seed);
            i++;
        } else if (strcmp(a, "--clients") == 0) {
            bad = parse_u64(v, 1, 10000000, &n);
            o->o_clients = (uint32_t)n;
            i++;
        } else if (strcmp(a, "--workers") == 0) {
            bad = parse_u64(v, 1, 256, &n);
            o->o_workers = (unsigned)n;
            i++;
        } else if (strcmp(a, "--scaling") == 0) {
            o->o_sections |= BENCH_SEC_SCALING;
        } else if (strcmp(a, "--step-seconds") == 0) {
            bad = parse_secs(v, 0.05, 3600, &o->o_step_s);
            i++;
        } else if (strcmp(a, "--soak") == 0) {
            bad = parse_secs(v, 1, 7 * 86400, &o->o_soak_s);
            o->o_sections |= BENCH_SEC_SOAK;
            i++;
        } else if (strcmp(a, "--soak-rate") == 0) {
            bad = parse_secs(v, 1, 10000000, &o->o_soak_rate);
            i++;
        } else if (strcmp(a, "--soak-every") == 0) {
            bad = parse_secs(v, 0.1, 3600, &o->o_soak_every_s);
            i++;
        } else if (strcmp(a, "--only") == 0 && v != NULL) {
            char list[128], *tok, *save = NULL;
            snprintf(list, sizeof(list), "%s", v);
            for (tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
                if (strcmp(tok, "compare") == 0)
                    only |= BENCH_SEC_COMPARE;
                else if (strcmp(tok, "micro") == 0)
                    only |= BENCH_SEC_MICRO;
                else if (strcmp(tok, "scaling") == 0)
                    only |= BENCH_SEC_SCALING;
                else if (strcmp(tok, "soak") == 0)
                    only |= BENCH_SEC_SOAK;
                else
                    bad = 1;
            }
            i++;
        } else if (strcmp(a, "--cpus") == 0 && v != NULL) {
            o->o_cpus = v;
            i++;
        } else if (strcmp(a, "--busy-poll") == 0) {
            bad = parse_u64(v, 0, 1000, &n);
            o->o_busy_poll_us = (int)n;
            i++;
        } else if (strcmp(a, "--json") == 0) {
            o->o_json = 1;
        } else if (strcmp(a, "--smoke") == 0) {
            o->o_smoke = 1;
            o->o_check = 1;
        } else if (strcmp(a, "--check") == 0) {
            o->o_check = 1;
        } else if (strcmp(a, "--keep") == 0) {
            *keep = 1;
        } else if (strcmp(a, "-v") == 0) {
            o->o_verbose = 1;
        } else if (strcmp(a, "--version") == 0) {
            printf("dcb-bench %s\n", BENCH_VERSION);
            exit(0);
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else {
            fprintf(stderr, "dcb-bench: unknown option '%s'\n", a);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "dcb-bench: bad value for %s\n", a);
            return -1;
        }
    }
    if (only != 0) {
        if ((only & BENCH_SEC_SOAK) && o->o_soak_s <= 0) {
            fprintf(stderr, "dcb-bench: --only soak needs --soak SECONDS\n");
            return -1;
        }
        o->o_sections = only;
    }
    if (o->o_soak_every_s <= 0)
        o->o_soak_every_s = o->o_soak_s >= 50 ? 5 : fmax(0.5, o->o_soak_s / 10);
    return 0;
}

/* The plugins' own configuration files, read through their environment variables. */
static int plugin_configs(const bench_ctx_t *c)
{
    char path[BENCH_PATH_MAX + 32];
    int rc = 0;

    snprintf(path, sizeof(path), "%s/clients.list", c->c_tmp);
    /* Raspberry Pi clients are denied: about one client in eight, a realistic filter. */
    rc |= bench_sys_write_file(path, "b8:27:eb:*\n");
    snprintf(path, sizeof(path), "%s/macfilter.ini", c->c_tmp);
    rc |= bench_sys_write_file(path, "[macfilter]\nmode = deny\nlist = clients.list\n");
    rc |= bench_sys_setenv("DCB_MACFILTER_CONFIG", path);
    snprintf(path, sizeof(path), "%s/auditlog.ini", c->c_tmp);
    /* Rotation keeps a long soak's disk use bounded. */
    rc |= bench_sys_write_file(path, "[auditlog]\nfile = audit.jsonl\nmax_size = 8388608\n"
                                     "keep = 1\nhooks = all\n");
    rc |= bench_sys_setenv("DCB_AUDITLOG_CONFIG", path);
    snprintf(path, sizeof(path), "%s/optinject.ini", c->c_tmp);
    /* VoIP phones get a TFTP server (option 150) in their offers and acks. */
    rc |= bench_sys_write_file(path, "[rule phones]\nmac = 00:04:f2, 00:0b:82\noption = 150\n"
                                     "ip = 10.0.0.5\nmessages = offer, ack\n");
    rc |= bench_sys_setenv("DCB_OPTINJECT_CONFIG", path);
    return rc;
}

static int setup(bench_ctx_t *c, int argc, char **argv, bench_results_t *rs)
{
    char *paths[] = {c->c_broker,    c->c_shim,     c->c_noop,
                     c->c_macfilter, c->c_auditlog, c->c_optinject};
    size_t used = 0;

    c->c_wine = bench_sys_is_wine();
    /* Everything dcb-bench starts or loads is its sibling in the build's bin folder. */
    if (bench_sys_exe_dir(c->c_bin, sizeof(c->c_bin)) != 0) {
        fprintf(stderr, "dcb-bench: cannot find my own folder\n");
        return -1;
    }
#define SIBLING(field, name, suffix)                                                               \
    snprintf(c->field, sizeof(c->field), "%s/%s%s", c->c_bin, name, suffix)
    SIBLING(c_broker, "dcb-broker", bench_sys_exe_suffix());
    SIBLING(c_shim, bench_sys_shim_name(), "");
    SIBLING(c_noop, "noop", bench_sys_dll_suffix());
    SIBLING(c_macfilter, "macfilter", bench_sys_dll_suffix());
    SIBLING(c_auditlog, "auditlog", bench_sys_dll_suffix());
    SIBLING(c_optinject, "optinject", bench_sys_dll_suffix());
#undef SIBLING
#ifdef _WIN32
    /*
     * The broker compares the shim's ChainDlls with its own chain as full
     * native paths: they must be spelt the same way.
     */
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        for (char *p = paths[i]; *p != '\0'; p++)
            if (*p == '/')
                *p = '\\';
#else
    (void)paths;
#endif
    bench_sys_machine(c->c_machine, sizeof(c->c_machine), &c->c_ncpu);
    if (bench_sys_mkdtemp(c->c_tmp, sizeof(c->c_tmp)) != 0) {
        fprintf(stderr, "dcb-bench: cannot create a temporary folder\n");
        return -1;
    }
    if (plugin_configs(c) != 0) {
        fprintf(stderr, "dcb-bench: cannot write the plugin configurations in %s\n", c->c_tmp);
        bench_sys_rmdir(c->c_tmp);
        return -1;
    }
    for (int i = 0; i < argc && used + 2 < sizeof(rs->rs_command); i++)
        used += (size_t)snprintf(rs->rs_command + used, sizeof(rs->rs_command) - used, "%s%s",
                                 i ? " " : "", i == 0 ? "dcb-bench" : argv[i]);
    return 0;
}

/* Small counts: --smoke always, and every run under Wine (a functional check there). */
static void adjust_counts(bench_ctx_t *c)
{
    bench_opts_t *o = &c->c_opt;

    if (o->o_smoke) {
        o->o_count = o->o_count > 600 ? 600 : o->o_count;
        o->o_micro = o->o_micro > 600 ? 600 : o->o_micro;
        o->o_unsub = o->o_unsub > 200000 ? 200000 : o->o_unsub;
        o->o_blocks = o->o_blocks > 3 ? 3 : o->o_blocks;
        o->o_step_s = o->o_step_s > 0.3 ? 0.3 : o->o_step_s;
    }
    if (c->c_wine) {
        o->o_count = o->o_count > 300 ? 300 : o->o_count;
        o->o_micro = o->o_micro > 300 ? 300 : o->o_micro;
        o->o_unsub = o->o_unsub > 100000 ? 100000 : o->o_unsub;
        o->o_blocks = o->o_blocks > 2 ? 2 : o->o_blocks;
        o->o_step_s = o->o_step_s > 0.5 ? 0.5 : o->o_step_s;
        o->o_smoke = 1; /* the short sweeps */
    }
}

/* ---- the self-check: every figure present and sane (never a timing judgement) ---- */

static int check_lat(const char *what, const bench_lat_t *l)
{
    if (l->l_n == 0 || !(l->l_p50 > 0) || !(l->l_p99 >= l->l_p50) || !(l->l_max >= l->l_p99) ||
        !isfinite(l->l_max)) {
        fprintf(stderr, "dcb-bench: check: %s latency missing or not sane\n", what);
        return 1;
    }
    return 0;
}

static int check_results(const bench_ctx_t *c, const bench_results_t *rs)
{
    int bad = 0;

    for (size_t i = 0; i < rs->rs_nrun; i++) {
        const bench_run_t *r = &rs->rs_run[i];
        int is_raw = strcmp(r->r_key, "raw") == 0, is_dcb = strncmp(r->r_key, "dcb", 3) == 0;
        char what[96];
        if (!r->r_ok) {
            fprintf(stderr, "dcb-bench: check: %s did not run\n", r->r_title);
            bad++;
            continue;
        }
        snprintf(what, sizeof(what), "%s NewPkt", r->r_key);
        bad += check_lat(what, &r->r_newpkt);
        snprintf(what, sizeof(what), "%s PktSend", r->r_key);
        bad += check_lat(what, &r->r_pktsend);
        if (!is_raw) {
            snprintf(what, sizeof(what), "%s notification", r->r_key);
            bad += check_lat(what, &r->r_notify);
            if (!(r->r_pkts_per_s > 0) || r->r_packets == 0 || r->r_violations != 0 ||
                r->r_mem.m_sim_kb == 0) {
                fprintf(stderr, "dcb-bench: check: %s: packets/s, memory or contract not sane\n",
                        r->r_key);
                bad++;
            }
        }
        /* CPU clocks tick every 10-16 ms: a shorter run may honestly show none. */
        if (!(r->r_events_per_s > 0) || !(r->r_cpu_us_per_event >= 0) ||
            (r->r_secs > 0.2 && !(r->r_cpu_us_per_event > 0))) {
            fprintf(stderr, "dcb-bench: check: %s: events/s or CPU per event missing\n", r->r_key);
            bad++;
        }
        if (is_dcb && (r->r_mem.m_broker_kb == 0 || r->r_mem.m_hosts_kb == 0 ||
                       !(r->r_cpu_other_s > 0) || r->r_mem.m_nhosts == 0)) {
            fprintf(stderr, "dcb-bench: check: %s: broker/host memory or CPU missing\n", r->r_key);
            bad++;
        }
        if (is_dcb && (r->r_defaults > 0 || r->r_undelivered > 0 || r->r_shim_defaults > 0))
            fprintf(stderr,
                    "dcb-bench: note: %s: defaults were taken (broker %lld, shim %lld, requests "
                    "not delivered %lld): its latency figures include them\n",
                    r->r_key, (long long)r->r_defaults, (long long)r->r_shim_defaults,
                    (long long)r->r_undelivered);
    }
    if (c->c_opt.o_sections & BENCH_SEC_MICRO) {
        const bench_micro_t *m = &rs->rs_micro;
        if (!m->m_ok) {
            fprintf(stderr, "dcb-bench: check: the micro-figures did not run\n");
            bad++;
        } else {
            bad += check_lat("micro NewPkt", &m->m_newpkt);
            bad += check_lat("micro raw", &m->m_raw);
            bad += check_lat("micro notification", &m->m_notify);
            if (!m->m_unsub_ok || !(m->m_unsub_ns > 0) || !isfinite(m->m_unsub_ns)) {
                fprintf(stderr, "dcb-bench: check: unsubscribed hook figure missing\n");
                bad++;
            }
            if (m->m_naggs == 0) {
                fprintf(stderr, "dcb-bench: check: aggregate NewPkt/s not measured\n");
                bad++;
            }
            for (size_t i = 0; i < m->m_naggs; i++) {
                const bench_agg_t *a = &m->m_aggs[i];
                char what[64];
                if (!a->a_ok || a->a_threads == 0 || !(a->a_per_s > 0) || !isfinite(a->a_per_s)) {
                    fprintf(stderr, "dcb-bench: check: aggregate NewPkt/s (%u threads) missing\n",
                            a->a_threads);
                    bad++;
                    continue;
                }
                snprintf(what, sizeof(what), "aggregate NewPkt (%u threads)", a->a_threads);
                bad += check_lat(what, &a->a_lat);
            }
            if (m->m_agg_threads == 0 || !(m->m_agg_per_s > 0)) {
                fprintf(stderr, "dcb-bench: check: peak aggregate NewPkt/s missing\n");
                bad++;
            }
        }
    }
    if (rs->rs_have_scaling) {
        const bench_scaling_t *sc = &rs->rs_scaling;
        const bench_point_t *sets[] = {sc->sc_threads, sc->sc_chain, sc->sc_size, sc->sc_load};
        size_t ns[] = {sc->sc_nthreads, sc->sc_nchain, sc->sc_nsize, sc->sc_nload};
        for (size_t s = 0; s < 4; s++) {
            if (ns[s] == 0) {
                fprintf(stderr, "dcb-bench: check: a scaling sweep has no points\n");
                bad++;
            }
            for (size_t i = 0; i < ns[s]; i++)
                if (!sets[s][i].p_ok || !(sets[s][i].p_per_s > 0) || sets[s][i].p_lat.l_n == 0) {
                    fprintf(stderr, "dcb-bench: check: scaling point %zu/%zu failed\n", s, i);
                    bad++;
                }
        }
    }
    if (rs->rs_have_soak) {
        const bench_soak_t *k = &rs->rs_soak;
        if (!k->k_ok || k->k_n < 2 || k->k_kb[0][0] == 0 || k->k_kb[1][0] == 0 ||
            k->k_kb[2][0] == 0) {
            fprintf(stderr, "dcb-bench: check: the soak has no usable samples\n");
            bad++;
        }
    }
    return bad;
}

/* ---- the run ---------------------------------------------------------------------- */

static void raw_block(bench_ctx_t *c, bench_raw_t *rw, long n)
{
    bench_note(c, "raw two-hop chain: %ld round trips of each size", n);
    bench_raw_block(c, rw, n);
}

static unsigned callers(unsigned ncpu, unsigned per_cpu)
{
    unsigned n = (ncpu > 0 ? ncpu : 1) * per_cpu;

    return n > BENCH_MAX_CALLERS ? BENCH_MAX_CALLERS : n;
}

/*
 * Aggregate NewPkt/s from 2x and then 4x the CPU count of calling threads.
 * Each caller waits for its answer before the next call (a closed loop), so
 * N callers measure N/latency; the capacity is where adding callers stops
 * adding throughput, so the target is judged on the higher of the two.
 */
static void run_micro_aggregate(bench_ctx_t *c, bench_session_t *s, bench_micro_t *m)
{
    const unsigned want[2] = {callers(c->c_ncpu, 2), callers(c->c_ncpu, 4)};

    m->m_naggs = 0;
    m->m_agg_threads = 0;
    m->m_agg_per_s = 0;
    for (size_t i = 0; i < 2; i++) {
        bench_agg_t *a;
        if (i > 0 && want[i] == want[0])
            break; /* both capped at the same count: one measurement */
        a = &m->m_aggs[m->m_naggs++];
        memset(a, 0, sizeof(*a));
        a->a_threads = want[i];
        bench_note(c, "micro: NewPkt from %u calling threads", a->a_threads);
        a->a_ok =
            bench_micro_threads(c, s, a->a_threads, c->c_opt.o_micro, &a->a_per_s, &a->a_lat) == 0;
        if (a->a_ok && a->a_per_s > m->m_agg_per_s) {
            m->m_agg_threads = a->a_threads;
            m->m_agg_per_s = a->a_per_s;
            m->m_agg_lat = a->a_lat;
        }
    }
}

/* The issue-4 micro-figures that need a session with one noop host. */
static int run_micro_noop(bench_ctx_t *c, bench_session_t *s, bench_micro_t *m)
{
    bench_note(c, "micro: NewPkt, %llu round trips interleaved with the raw chain",
               (unsigned long long)c->c_opt.o_micro);
    m->m_frame_in = bench_event_frame_size(DCB_HOOK_NEWPKT, c->c_pkt_len);
    m->m_frame_out = bench_answer_frame_size(DCB_HOOK_NEWPKT);
    m->m_ok = bench_micro_newpkt(c, s, c->c_pkt, c->c_pkt_len, c->c_opt.o_micro, c->c_opt.o_blocks,
                                 &m->m_newpkt, &m->m_raw, NULL) == 0;
    bench_note(c, "micro: notifications on the calling thread");
    m->m_ok &= bench_micro_notify(c, s, c->c_opt.o_micro / 2, m) == 0;
    run_micro_aggregate(c, s, m);
    return m->m_ok ? 0 : -1;
}

/* An unsubscribed hook: a broker whose only plugin (macfilter) wants NewPkt alone. */
static int run_micro_unsub(bench_ctx_t *c, bench_micro_t *m)
{
    const char *newpkt_only[] = {c->c_macfilter};
    bench_session_t s;
    int rc;

    bench_note(c, "micro: an unsubscribed hook, %llu calls", (unsigned long long)c->c_opt.o_unsub);
    if (bench_session_start(&s, c, "newpktonly", newpkt_only, 1) != 0)
        return -1;
    rc = bench_micro_unsub(c, &s, c->c_opt.o_unsub, m);
    bench_session_stop(&s);
    return rc;
}

/*
 * The whole run: configurations (1)..(4) when the compare section is on;
 * the micro-figures and the in-session sweeps share the broker of (2) (one
 * noop host), or get one of their own when (2) is not run.
 */
static int run_all(bench_ctx_t *c, bench_results_t *rs)
{
    const unsigned sec = c->c_opt.o_sections;
    const int table = (sec & BENCH_SEC_COMPARE) != 0, micro = (sec & BENCH_SEC_MICRO) != 0;
    const int scaling = (sec & BENCH_SEC_SCALING) != 0;
    const char *noop[] = {c->c_noop};
    const char *chain[] = {c->c_macfilter, c->c_auditlog, c->c_optinject};
    bench_run_t *r1 = &rs->rs_run[0], *r1c = &rs->rs_run[1], *r2 = &rs->rs_run[2],
                *r3 = &rs->rs_run[3], *r4 = &rs->rs_run[4];
    bench_raw_t rw;
    bench_session_t s;
    long raw_n = (long)(c->c_opt.o_micro / RAW_BLOCKS);
    int failed = 0;

    memset(&rw, 0, sizeof(rw));
    rw.rw_newpkt = bench_hist_new();
    rw.rw_pktsend = bench_hist_new();
    if (rw.rw_newpkt == NULL || rw.rw_pktsend == NULL)
        return -1;
    if (table) {
        rs->rs_nrun = 5;
        bench_run_init(r1, "inprocess_noop", "(1) in-proc");
        bench_run_init(r1c, "inprocess_chain", "(1c) in-chain");
        bench_run_init(r2, "dcb_noop", "(2) dcb noop");
        bench_run_init(r3, "dcb_chain", "(3) dcb chain");
        bench_run_init(r4, "raw", "(4) raw 2-hop");
        raw_block(c, &rw, raw_n);
        bench_note(c, "(1) noop in-process: %llu packets", (unsigned long long)c->c_opt.o_count);
        failed |= bench_inprocess(c, noop, 1, r1, "inprocess_noop", "(1) in-proc") != 0;
        bench_note(c, "(1c) macfilter -> auditlog -> optinject in-process");
        failed |= bench_inprocess(c, chain, 3, r1c, "inprocess_chain", "(1c) in-chain") != 0;
        raw_block(c, &rw, raw_n);
    }
    if (table || micro || scaling) {
        if (table)
            bench_note(c, "(2) through dcb: shim -> broker -> one noop host");
        if (bench_session_start(&s, c, "noop", noop, 1) != 0) {
            failed = 1;
        } else {
            if (table)
                failed |= bench_through_dcb(c, &s, r2) != 0;
            if (micro)
                failed |= run_micro_noop(c, &s, &rs->rs_micro) != 0;
            if (scaling) {
                rs->rs_have_scaling = 1;
                bench_scaling(c, &s, &rs->rs_scaling);
            }
            bench_session_stop(&s);
            if (table)
                bench_session_account(&s, r2);
        }
    }
    if (table) {
        raw_block(c, &rw, raw_n);
        bench_note(c, "(3) through dcb: macfilter -> auditlog -> optinject, one host each");
        if (bench_session_start(&s, c, "chain", chain, 3) != 0) {
            failed = 1;
        } else {
            failed |= bench_through_dcb(c, &s, r3) != 0;
            bench_session_stop(&s);
            bench_session_account(&s, r3);
        }
        raw_block(c, &rw, (long)(c->c_opt.o_micro - 3 * (uint64_t)raw_n));
        bench_raw_result(&rw, r4);
    }
    if (micro)
        failed |= run_micro_unsub(c, &rs->rs_micro) != 0;
    if (scaling)
        bench_scaling_chain(c, &rs->rs_scaling);
    free(rw.rw_newpkt);
    free(rw.rw_pktsend);
    return failed ? -1 : 0;
}

int main(int argc, char **argv)
{
    static bench_ctx_t ctx;
    static bench_results_t rs;
    bench_ctx_t *c = &ctx;
    uint64_t t0 = dcb_now_ns();
    int keep = 0, failed = 0, rc;

    rc = rawchain_child(argc, argv);
    if (rc >= 0)
        return rc;
    c->c_poll_us = -1;
    if (parse_args(argc, argv, &c->c_opt, &keep) != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    quiet_notes = c->c_opt.o_json;
    /* dcbsimcore's own log lines (DLL loading) are noise here. */
    dcb_log_set_level(c->c_opt.o_verbose ? DCB_LOG_INFO : DCB_LOG_WARN);
    if (setup(c, argc, argv, &rs) != 0)
        return 1;
    adjust_counts(c);
    if (c->c_wine)
        fprintf(stderr, "dcb-bench: running under Wine: a functional check with small counts; "
                        "its figures are not comparable\n");
    if (c->c_opt.o_cpus != NULL && bench_sys_pin(c->c_opt.o_cpus) != 0) {
        fprintf(stderr, "dcb-bench: cannot pin to CPUs %s\n", c->c_opt.o_cpus);
        bench_sys_rmdir(c->c_tmp);
        return EXIT_USAGE;
    }
    bench_note(c, "%s; temporary files in %s", c->c_machine, c->c_tmp);
    rs.rs_load_start = bench_sys_loadavg();
    if (rs.rs_load_start > c->c_ncpu)
        fprintf(stderr,
                "dcb-bench: warning: the machine is busy (load average %.2f on %u CPUs): "
                "figures will be disturbed\n",
                rs.rs_load_start, c->c_ncpu);
    if (bench_workload_probe(c) != 0) {
        fprintf(stderr, "dcb-bench: the workload probe failed\n");
        failed = 1;
        goto out;
    }
    failed |= run_all(c, &rs) != 0;
    if (c->c_opt.o_sections & BENCH_SEC_SOAK) {
        rs.rs_have_soak = 1;
        failed |= bench_soak(c, &rs.rs_soak) != 0;
    }
    rs.rs_wall_s = (double)(dcb_now_ns() - t0) / 1e9;
    rs.rs_load_end = bench_sys_loadavg();

    if (c->c_opt.o_json) {
        char *text = bench_report_json(c, &rs);
        if (text == NULL) {
            failed = 1;
        } else {
            printf("%s\n", text);
            free(text);
        }
    } else {
        bench_report_table(stdout, c, &rs);
    }
    fflush(stdout);
    if (c->c_opt.o_check) {
        int bad = check_results(c, &rs);
        if (bad > 0)
            fprintf(stderr, "dcb-bench: check: %d problem(s)\n", bad);
        else
            fprintf(stderr, "dcb-bench: check: every figure present and sane\n");
        failed |= bad > 0;
    }
    if (rs.rs_have_soak)
        bench_soak_free(&rs.rs_soak);
out:
    if (keep)
        fprintf(stderr, "dcb-bench: kept %s\n", c->c_tmp);
    else
        bench_sys_rmdir(c->c_tmp);
    return failed ? 1 : 0;
}
