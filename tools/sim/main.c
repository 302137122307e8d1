/*
 * main.c — dcb-sim's command line. Loads callout DLLs the way Microsoft
 * DHCP Server does, drives seeded DHCP traffic (or a pcap capture) through
 * them with the server's threads and locks, and reports what happened.
 *
 * Exit status: 0 for a completed run, 1 when the run could not be carried
 * out, 2 for bad usage or bad input (a malformed list file, say).
 */
#include "dcbsim.h"
#include "dcb_os.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_RUN_FAILED 1
#define EXIT_USAGE 2

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dcb-sim [options]\n"
            "\n"
            "Callout DLLs (walked in order, like CalloutDlls):\n"
            "  --dll PATH          a callout DLL; repeat for a list\n"
            "  --dlls-file FILE    the list from a file: one path per line, '#' comments\n"
            "  --registry          the list from HKLM\\System\\CurrentControlSet\\Services\\\n"
            "                      DHCPServer\\Parameters (CalloutDlls, CalloutEnabled); Windows\n"
            "  --set-registry      store the --dll/--dlls-file list there with\n"
            "                      CalloutEnabled=1, then exit; Windows\n"
            "  --clear-registry    remove CalloutDlls and CalloutEnabled, then exit; Windows\n"
            "\n"
            "Traffic:\n"
            "  --seed N            seed of the generated traffic (default 1)\n"
            "  --clients N         simulated clients (default 1000)\n"
            "  --count N           packets to receive (default 10000; 0 = no limit)\n"
            "  --duration SECS     stop after this long; packets still queued are\n"
            "                      freed at STOP without callbacks, as the server does\n"
            "  --rate PPS          packets per second (default 0: as fast as possible)\n"
            "  --pcap FILE         replay the DHCP requests of a pcap file instead%s\n"
            "\n"
            "Server:\n"
            "  --workers N         worker threads (default: CPU count + 1)\n"
            "  --queue N           packet queue capacity (default 1024)\n"
            "  --lease-ms N        lease lifetime on the emulator's clock, for the\n"
            "                      scavenger and DeleteClient (default 2000)\n"
            "\n"
            "Output:\n"
            "  --record FILE       every packet's outcome, one line each, by packet number\n"
            "  --json              the report as JSON instead of a table\n"
            "  --quiet             log only warnings and errors\n"
            "  -h, --help          this text\n",
            sim_source_pcap_supported() ? "" : " (Linux builds only)");
}

static int parse_u64(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (s == NULL || *s == '\0' || *s == '-') {
        fprintf(stderr, "dcb-sim: %s needs a non-negative number\n", opt);
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        fprintf(stderr, "dcb-sim: %s: '%s' is not a number\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = s != NULL ? strtod(s, &end) : -1;
    if (s == NULL || errno != 0 || *end != '\0' || v < 0) {
        fprintf(stderr, "dcb-sim: %s needs a non-negative number\n", opt);
        return -1;
    }
    *out = v;
    return 0;
}

typedef struct options {
    sim_dlllist_t o_dlls;
    int o_have_list;
    int o_registry, o_set_registry, o_clear_registry;
    uint64_t o_seed, o_clients, o_count, o_workers, o_queue, o_lease_ms;
    double o_rate, o_duration;
    int o_count_set;
    const char *o_pcap;
    const char *o_record;
    int o_json, o_quiet;
} options_t;

static int parse_args(options_t *o, int argc, char **argv)
{
    char err[512];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE()                                                                               \
    do {                                                                                           \
        if (v == NULL) {                                                                           \
            fprintf(stderr, "dcb-sim: %s needs a value\n", a);                                     \
            return -1;                                                                             \
        }                                                                                          \
        i++;                                                                                       \
    } while (0)
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--dll") == 0) {
            NEED_VALUE();
            if (sim_dlllist_add(&o->o_dlls, v) != 0)
                return -1;
            o->o_have_list = 1;
        } else if (strcmp(a, "--dlls-file") == 0) {
            NEED_VALUE();
            if (sim_dlllist_read_file(&o->o_dlls, v, err, sizeof(err)) != 0) {
                fprintf(stderr, "dcb-sim: %s\n", err);
                return -1;
            }
            o->o_have_list = 1;
        } else if (strcmp(a, "--registry") == 0) {
            o->o_registry = 1;
        } else if (strcmp(a, "--set-registry") == 0) {
            o->o_set_registry = 1;
        } else if (strcmp(a, "--clear-registry") == 0) {
            o->o_clear_registry = 1;
        } else if (strcmp(a, "--seed") == 0) {
            NEED_VALUE();
            if (parse_u64(a, v, &o->o_seed) != 0)
                return -1;
        } else if (strcmp(a, "--clients") == 0) {
            NEED_VALUE();
            if (parse_u64(a, v, &o->o_clients) != 0)
                return -1;
            if (o->o_clients == 0 || o->o_clients > 10000000) {
                fprintf(stderr, "dcb-sim: --clients must be 1..10000000\n");
                return -1;
            }
        } else if (strcmp(a, "--count") == 0) {
            NEED_VALUE();
            if (parse_u64(a, v, &o->o_count) != 0)
                return -1;
            o->o_count_set = 1;
        } else if (strcmp(a, "--duration") == 0) {
            NEED_VALUE();
            if (parse_double(a, v, &o->o_duration) != 0)
                return -1;
        } else if (strcmp(a, "--rate") == 0) {
            NEED_VALUE();
            if (parse_double(a, v, &o->o_rate) != 0)
                return -1;
        } else if (strcmp(a, "--workers") == 0) {
            NEED_VALUE();
            if (parse_u64(a, v, &o->o_workers) != 0)
                return -1;
            if (o->o_workers == 0 || o->o_workers > 256) {
                fprintf(stderr, "dcb-sim: --workers must be 1..256\n");
                return -1;
            }
        } else if (strcmp(a, "--queue") == 0) {
            NEED_VALUE();
            if (parse_u64(a, v, &o->o_queue) != 0)
                return -1;
            if (o->o_queue == 0 || o->o_queue > 1000000) {
                fprintf(stderr, "dcb-sim: --queue must be 1..1000000\n");
                return -1;
            }
        } else if (strcmp(a, "--lease-ms") == 0) {
            NEED_VALUE();
            if (parse_u64(a, v, &o->o_lease_ms) != 0)
                return -1;
            if (o->o_lease_ms == 0 || o->o_lease_ms > 86400000) {
                fprintf(stderr, "dcb-sim: --lease-ms must be 1..86400000\n");
                return -1;
            }
        } else if (strcmp(a, "--pcap") == 0) {
            NEED_VALUE();
            o->o_pcap = v;
        } else if (strcmp(a, "--record") == 0) {
            NEED_VALUE();
            o->o_record = v;
        } else if (strcmp(a, "--json") == 0) {
            o->o_json = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            o->o_quiet = 1;
        } else {
            fprintf(stderr, "dcb-sim: unknown option '%s' (try --help)\n", a);
            return -1;
        }
#undef NEED_VALUE
    }
    if (o->o_registry && o->o_have_list) {
        fprintf(stderr, "dcb-sim: --registry and --dll/--dlls-file exclude each other\n");
        return -1;
    }
    if ((o->o_registry || o->o_set_registry || o->o_clear_registry) && !sim_registry_supported()) {
        fprintf(stderr, "dcb-sim: the registry options need Windows; use --dll or "
                        "--dlls-file\n");
        return -1;
    }
    if (o->o_set_registry && o->o_clear_registry) {
        fprintf(stderr, "dcb-sim: --set-registry and --clear-registry exclude each other\n");
        return -1;
    }
    if (o->o_pcap != NULL && !sim_source_pcap_supported()) {
        fprintf(stderr, "dcb-sim: --pcap needs a Linux build with libpcap\n");
        return -1;
    }
    return 0;
}

static int registry_command(options_t *o)
{
    char err[512] = "";
    int rc = o->o_set_registry ? sim_registry_write(&o->o_dlls, 1, err, sizeof(err))
                               : sim_registry_clear(err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "dcb-sim: %s\n", err);
        return EXIT_RUN_FAILED;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options_t o;
    memset(&o, 0, sizeof(o));
    sim_dlllist_init(&o.o_dlls);
    o.o_seed = 1;
    o.o_clients = 1000;
    o.o_count = 10000;
    o.o_queue = 1024;
    o.o_lease_ms = 2000;
    dcb_log_set_tag("dcb-sim");
    if (parse_args(&o, argc, argv) != 0) {
        sim_dlllist_free(&o.o_dlls);
        return EXIT_USAGE;
    }
    if (o.o_quiet)
        dcb_log_set_level(DCB_LOG_WARN);
    if (o.o_set_registry || o.o_clear_registry) {
        int rc = registry_command(&o);
        sim_dlllist_free(&o.o_dlls);
        return rc;
    }
    if (o.o_registry) {
        char err[512] = "";
        int enabled = 0;
        if (sim_registry_read(&o.o_dlls, &enabled, err, sizeof(err)) != 0) {
            fprintf(stderr, "dcb-sim: %s\n", err);
            sim_dlllist_free(&o.o_dlls);
            return EXIT_USAGE;
        }
        if (!enabled && o.o_dlls.dl_count > 0) {
            dcb_log(DCB_LOG_INFO, "CalloutEnabled is not 1: the server loads no callouts");
            sim_dlllist_free(&o.o_dlls);
        }
    }

    sim_scope_t scope;
    sim_scope_default(&scope);
    sim_config_t cf;
    sim_config_default(&cf, &scope);
    if (o.o_workers > 0)
        cf.cf_workers = (unsigned)o.o_workers;
    cf.cf_queue = (unsigned)o.o_queue;
    cf.cf_rate = o.o_rate;
    cf.cf_lease_ms = (uint32_t)o.o_lease_ms;
    cf.cf_duration_ms = (uint64_t)(o.o_duration * 1000.0);
    /* With a duration and no count, the duration alone ends the run. */
    cf.cf_count = (o.o_duration > 0 && !o.o_count_set) ? 0 : o.o_count;
    cf.cf_abandon_at_stop = cf.cf_duration_ms > 0;

    char err[512] = "";
    sim_source_t *src;
    sim_traffic_cfg_t tc;
    sim_traffic_cfg_default(&tc, &scope);
    tc.tc_seed = o.o_seed;
    tc.tc_clients = (uint32_t)o.o_clients;
    if (o.o_pcap != NULL)
        src = sim_source_pcap(o.o_pcap, err, sizeof(err));
    else
        src = sim_source_traffic(&tc);
    if (src == NULL) {
        fprintf(stderr, "dcb-sim: %s\n", err[0] ? err : "cannot set up the traffic source");
        sim_dlllist_free(&o.o_dlls);
        return err[0] ? EXIT_USAGE : EXIT_RUN_FAILED;
    }
    FILE *recf = NULL;
    if (o.o_record != NULL) {
        /* Opened before the run, so a bad path fails fast. */
        recf = fopen(o.o_record, "wb");
        if (recf == NULL) {
            fprintf(stderr, "dcb-sim: cannot write %s: %s\n", o.o_record, strerror(errno));
            src->src_close(src);
            sim_dlllist_free(&o.o_dlls);
            return EXIT_USAGE;
        }
    }

    sim_stats_t *st = sim_stats_new();
    sim_record_t *rec = o.o_record != NULL ? sim_record_new() : NULL;
    sim_loader_t loader;
    int rc = EXIT_RUN_FAILED;
    if (st == NULL || (o.o_record != NULL && rec == NULL))
        goto out;
    if (sim_loader_load(&loader, &o.o_dlls) != 0) {
        fprintf(stderr, "dcb-sim: out of memory while loading callouts\n");
        goto out;
    }
    int run_rc = sim_server_run(&cf, &loader.ld_table, src, st, rec);
    /* Service stop: STOP, then FreeLibrary. */
    sim_loader_unload(&loader);
    if (run_rc != 0) {
        fprintf(stderr, "dcb-sim: the run failed\n");
        sim_loader_free(&loader);
        goto out;
    }

    if (recf != NULL) {
        if (sim_record_write(rec, recf, st->st_received) != 0 || fclose(recf) != 0)
            fprintf(stderr, "dcb-sim: writing %s failed\n", o.o_record);
        recf = NULL;
    }
    sim_run_info_t ri = {&loader, &cf, o.o_pcap != NULL ? 0 : o.o_seed,
                         o.o_pcap != NULL ? o.o_pcap : "generated"};
    if (o.o_json) {
        char *json = sim_report_json(&ri, st);
        if (json != NULL) {
            fputs(json, stdout);
            fputc('\n', stdout);
            free(json);
        }
    } else {
        sim_report_table(stdout, &ri, st);
    }
    fflush(stdout);
    sim_loader_free(&loader);
    rc = 0;
out:
    if (recf != NULL)
        fclose(recf);
    sim_record_free(rec);
    sim_stats_free(st);
    src->src_close(src);
    sim_dlllist_free(&o.o_dlls);
    return rc;
}
