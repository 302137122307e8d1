/*
 * broker_main.c — dcb-broker: command line, configuration, the loop, and a
 * clean shutdown.
 *
 * One binary, two roles: without --host it is the supervisor (this file and
 * everything it starts); with --host it is a plugin host (host_main.c), run
 * only by the supervisor itself.
 *
 * Shutdown (SIGINT, SIGTERM, Ctrl-C, or the service control manager's STOP
 * under --service: service.h): stop listening, close the shim
 * connections, stop every host (EOF on its channel, then a kill after
 * host_stop_ms), and return from uv_run once the last handle is closed, so
 * uv_loop_close() succeeds. A second signal kills the hosts at once.
 */
#include "chain.h"
#include "platform.h"
#include "service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2

static FILE *log_file;

static void log_sink(dcb_log_level_t level, const char *line, void *ctx)
{
    (void)level;
    (void)ctx;
    fprintf(stderr, "%s\n", line);
    if (log_file != NULL) {
        fprintf(log_file, "%s\n", line);
        fflush(log_file);
    }
    eventlog_line(level, line);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dcb-broker [--config FILE] [--pipe NAME] [--control NAME] [--plugin DLL]...\n"
            "                  [--log-file FILE] [--log-level debug|info|warn|error] [-v]\n"
            "                  [--check-config] [--version] [--help]\n"
            "\n"
            "  --config FILE    INI configuration (see broker/README.md); without it the\n"
            "                   documented defaults apply\n"
            "  --pipe NAME      the event pipe (default %s)\n"
            "  --control NAME   the control endpoint for dcbctl (default %s)\n"
            "  --plugin DLL     start this plugin at once (repeat, in chain order); replaces\n"
            "                   the config file's chain\n"
            "  --check-config   parse the configuration, report, and exit\n",
            BROKER_DEFAULT_PIPE, BROKER_DEFAULT_CONTROL_PIPE);
    fputs("  --service        run under the Windows service control manager (as dcbctl\n"
          "                   install registers it); implies --event-log\n"
          "  --event-log      also write warnings, errors, start and stop to the Windows\n"
          "                   Event Log (source dcb)\n",
          f);
}

/* A chain entry is a DLL path, or the name of a [plugin NAME] section with a dll. */
static int resolve_chain(broker_config_t *cfg, char **in, size_t n, int from_file, char ***out)
{
    char **list = calloc(n ? n : 1, sizeof(*list));

    if (list == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *path = in[i];
        char abs[4096];

        if (strpbrk(path, "/\\") == NULL && strchr(path, '.') == NULL) {
            const broker_plugin_conf_t *pc = config_find_plugin(cfg, path);
            if (pc == NULL || pc->pc_dll == NULL) {
                if (from_file)
                    fprintf(stderr, "dcb-broker: configuration error:\n%s:%d: [broker] chain: ",
                            cfg->cfg_path, cfg->cfg_chain_line);
                else
                    fprintf(stderr, "dcb-broker: --plugin: ");
                fprintf(stderr,
                        "chain entry '%s' is neither a DLL path nor a [plugin %s] section with "
                        "a dll key\n",
                        path, path);
                dcb_strlist_free(list, i);
                return -1;
            }
            path = pc->pc_dll;
        }
        if (platform_abspath(path, abs, sizeof(abs)) != 0) {
            fprintf(stderr, "dcb-broker: %s: path too long\n", path);
            dcb_strlist_free(list, i);
            return -1;
        }
        list[i] = malloc(strlen(abs) + 1);
        if (list[i] == NULL) {
            dcb_strlist_free(list, i);
            return -1;
        }
        strcpy(list[i], abs);
    }
    *out = list;
    return 0;
}

static void kill_all_hosts(broker_t *b)
{
    for (blist_t *it = b->b_hosts.next; it != &b->b_hosts; it = it->next) {
        host_t *h = broker_container_of(it, host_t, h_link);
        hostproc_kill(h);
    }
}

static void signal_closed(uv_handle_t *h)
{
    (void)h;
}

void broker_shutdown_check(broker_t *b)
{
    if (!b->b_shutdown_armed || !host_all_gone(b))
        return;
    btimer_stop(b, &b->b_shutdown_timer);
    if (!uv_is_closing((uv_handle_t *)&b->b_sigint)) {
        uv_close((uv_handle_t *)&b->b_sigint, signal_closed);
        uv_close((uv_handle_t *)&b->b_sigterm, signal_closed);
    }
    service_detach();
    wire_flush_stop(b);
    timerq_close(b);
}

static void shutdown_timer_cb(btimer_t *t)
{
    broker_t *b = broker_container_of(t, broker_t, b_shutdown_timer);

    dcb_log(DCB_LOG_WARN, "hosts still running at shutdown; killing them");
    kill_all_hosts(b);
}

static void begin_shutdown(broker_t *b, const char *why)
{
    if (b->b_stopping) {
        dcb_log(DCB_LOG_WARN, "%s again: killing the hosts now", why);
        kill_all_hosts(b);
        return;
    }
    eventlog_note(DCB_LOG_INFO, "%s: shutting down", why);
    b->b_stopping = 1;
    /* The summary now, while every plugin is still there to report. */
    stats_log_all(b);
    control_close_all(b);
    shimconn_close_all(b);
    chain_shutdown(b);
    btimer_init(&b->b_shutdown_timer, shutdown_timer_cb);
    btimer_start(b, &b->b_shutdown_timer,
                 dcb_now_ns() + ((uint64_t)b->b_cfg->cfg_host_stop_ms + 1000u) * 1000000u);
    b->b_shutdown_armed = 1;
    broker_shutdown_check(b);
}

static void on_signal(uv_signal_t *s, int signum)
{
    begin_shutdown(s->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* A stop request from the service control manager, on the loop thread. */
static void on_service_stop(void *arg, const char *why)
{
    begin_shutdown(arg, why);
}

static int broker_run(int argc, char **argv)
{
    static broker_config_t cfg;
    static broker_t broker;
    broker_t *b = &broker;
    uv_loop_t loop;
    const char *config_path = NULL, *pipe = NULL, *control = NULL, *log_path = NULL, *level = NULL;
    char **plugins = NULL, **chain = NULL;
    size_t n_plugins = 0, n_chain = 0, exe_len;
    int check_only = 0, verbose = 0, rc;
    char err[8192];
    int event_log = 0;

    platform_init_process();
    dcb_log_set_tag("dcb-broker");
    plugins = calloc((size_t)argc, sizeof(*plugins));
    if (plugins == NULL)
        return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;

        if (strcmp(a, "--config") == 0 && has_value)
            config_path = argv[++i];
        else if (strcmp(a, "--pipe") == 0 && has_value)
            pipe = argv[++i];
        else if (strcmp(a, "--control") == 0 && has_value)
            control = argv[++i];
        else if (strcmp(a, "--plugin") == 0 && has_value)
            plugins[n_plugins++] = argv[++i];
        else if (strcmp(a, "--log-file") == 0 && has_value)
            log_path = argv[++i];
        else if (strcmp(a, "--log-level") == 0 && has_value)
            level = argv[++i];
        else if (strcmp(a, "-v") == 0)
            verbose = 1;
        else if (strcmp(a, "--event-log") == 0) {
            if (!eventlog_available()) {
                fprintf(stderr, "dcb-broker: --event-log: this system has no Windows Event Log\n");
                free(plugins);
                return EXIT_USAGE;
            }
            event_log = 1;
        } else if (strcmp(a, "--check-config") == 0)
            check_only = 1;
        else if (strcmp(a, "--version") == 0) {
            printf("dcb-broker %s (protocol %d)\n", BROKER_VERSION, DCB_PROTO_VERSION);
            free(plugins);
            return 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            free(plugins);
            return 0;
        } else {
            fprintf(stderr, "dcb-broker: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            free(plugins);
            return EXIT_USAGE;
        }
    }

    config_defaults(&cfg);
    if (config_path != NULL && config_load(&cfg, config_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "dcb-broker: configuration error:\n%s", err);
        config_free(&cfg);
        free(plugins);
        return EXIT_USAGE;
    }
    if (pipe != NULL) {
        free(cfg.cfg_pipe);
        cfg.cfg_pipe = strdup(pipe);
    }
    if (cfg.cfg_pipe == NULL)
        cfg.cfg_pipe = strdup(BROKER_DEFAULT_PIPE);
    if (control != NULL) {
        free(cfg.cfg_control_pipe);
        cfg.cfg_control_pipe = strdup(control);
    }
    if (cfg.cfg_control_pipe == NULL)
        cfg.cfg_control_pipe = strdup(BROKER_DEFAULT_CONTROL_PIPE);
    if (log_path != NULL) {
        free(cfg.cfg_log_file);
        cfg.cfg_log_file = strdup(log_path);
    }
    if (level != NULL) {
        static const char *const lv[] = {"debug", "info", "warn", "error"};
        int l = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(level, lv[i]) == 0)
                l = i;
        if (l < 0) {
            fprintf(stderr, "dcb-broker: --log-level %s: not one of debug, info, warn, error\n",
                    level);
            config_free(&cfg);
            free(plugins);
            return EXIT_USAGE;
        }
        cfg.cfg_log_level = l;
    }
    if (verbose)
        cfg.cfg_log_level = DCB_LOG_DEBUG;
    rc = n_plugins > 0 ? resolve_chain(&cfg, plugins, n_plugins, 0, &chain)
                       : resolve_chain(&cfg, cfg.cfg_chain, cfg.cfg_n_chain, 1, &chain);
    n_chain = n_plugins > 0 ? n_plugins : cfg.cfg_n_chain;
    free(plugins);
    if (rc != 0) {
        config_free(&cfg);
        return EXIT_USAGE;
    }
    if (check_only) {
        printf("%s: configuration OK (%zu plugin sections, %zu in the chain)\n",
               config_path ? config_path : "(defaults)", cfg.cfg_n_plugins, n_chain);
        dcb_strlist_free(chain, n_chain);
        config_free(&cfg);
        return 0;
    }

    dcb_log_set_level((dcb_log_level_t)cfg.cfg_log_level);
    if (cfg.cfg_log_file != NULL) {
        log_file = fopen(cfg.cfg_log_file, "a");
        if (log_file == NULL) {
            fprintf(stderr, "dcb-broker: cannot open log file %s\n", cfg.cfg_log_file);
            dcb_strlist_free(chain, n_chain);
            config_free(&cfg);
            return 1;
        }
    }
    dcb_log_set_sink(log_sink, NULL);
    if (event_log)
        eventlog_start();

    memset(b, 0, sizeof(*b));
    b->b_loop = &loop;
    b->b_cfg = &cfg;
    b->b_start_ns = dcb_now_ns();
    b->b_stats_epoch_ns = b->b_start_ns;
    b->b_lim_shim.max_frame = DCB_MAX_FRAME_EVENT;
    b->b_lim_shim.max_packet = cfg.cfg_max_packet;
    b->b_lim_host = b->b_lim_shim;
    b->b_arena_mem = malloc(dcb_arena_size_for(DCB_MAX_FRAME_EVENT));
    b->b_enc_arena_mem = malloc(dcb_arena_size_for(DCB_MAX_FRAME_EVENT));
    blist_init(&b->b_hosts);
    blist_init(&b->b_ctl_conns);
    exe_len = sizeof(b->b_exe);
    if (b->b_arena_mem == NULL || b->b_enc_arena_mem == NULL ||
        uv_exepath(b->b_exe, &exe_len) != 0 || uv_loop_init(&loop) != 0) {
        dcb_log(DCB_LOG_ERROR, "cannot initialise (memory, executable path or event loop)");
        return 1;
    }
    dcb_arena_init(&b->b_arena, b->b_arena_mem, dcb_arena_size_for(DCB_MAX_FRAME_EVENT));
    dcb_arena_init(&b->b_enc_arena, b->b_enc_arena_mem, dcb_arena_size_for(DCB_MAX_FRAME_EVENT));
    if (wire_flush_start(b) != 0 || timerq_init(b) != 0 || chain_init(b) != 0) {
        dcb_log(DCB_LOG_ERROR, "cannot initialise the broker");
        return 1;
    }
    uv_signal_init(&loop, &b->b_sigint);
    uv_signal_init(&loop, &b->b_sigterm);
    b->b_sigint.data = b->b_sigterm.data = b;
    uv_signal_start(&b->b_sigint, on_signal, SIGINT);
    uv_signal_start(&b->b_sigterm, on_signal, SIGTERM); /* never fires on Windows */
    service_attach(&loop, on_service_stop, b, cfg.cfg_host_stop_ms + 3000u);

    rc = shimconn_listen(b);
    if (rc != 0) {
        dcb_log(DCB_LOG_ERROR, "cannot listen on %s: %s", cfg.cfg_pipe,
                rc == UV_EADDRINUSE ? "another broker is listening there" : uv_strerror(rc));
        begin_shutdown(b, "startup failed");
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        eventlog_stop();
        return 1;
    }
    /* Without its control endpoint the broker still serves DHCP: say so, and go on. */
    rc = control_listen(b);
    if (rc != 0)
        dcb_log(DCB_LOG_ERROR,
                "cannot listen on the control endpoint %s (%s): dcbctl cannot reach this broker",
                cfg.cfg_control_pipe,
                rc == UV_EADDRINUSE ? "another broker is listening there" : uv_strerror(rc));
    else
        dcb_log(DCB_LOG_INFO, "control endpoint on %s", cfg.cfg_control_pipe);
    eventlog_note(DCB_LOG_INFO, "dcb-broker %s listening on %s (protocol %d, config %s)",
                  BROKER_VERSION, cfg.cfg_pipe, DCB_PROTO_VERSION,
                  config_path ? config_path : "built-in defaults");
    service_running();
    if (n_chain > 0)
        chain_set(b, chain, n_chain);
    dcb_strlist_free(chain, n_chain);

    uv_run(&loop, UV_RUN_DEFAULT);

    shimconn_free_instances(b);
    rc = uv_loop_close(&loop);
    if (rc != 0)
        dcb_log(DCB_LOG_ERROR, "event loop closed with handles still open (%s)", uv_strerror(rc));
    else
        eventlog_note(DCB_LOG_INFO, "stopped");
    while (!blist_empty(&b->b_plugins)) {
        /* Nothing should be left; say so rather than hide it. */
        broker_plugin_t *p = broker_container_of(b->b_plugins.next, broker_plugin_t, p_link);
        dcb_log(DCB_LOG_WARN, "plugin %s still referenced at exit (%d)", p->p_name, p->p_refs);
        p->p_refs = 1;
        plugin_unref(p);
    }
    free(b->b_arena_mem);
    free(b->b_enc_arena_mem);
    eventlog_stop();
    dcb_log_set_sink(NULL, NULL);
    if (log_file != NULL)
        fclose(log_file);
    config_free(&cfg);
    return rc == 0 ? 0 : 1;
}

/* The host role, the service, or the broker in the foreground (the default). */
int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--host") == 0)
        return host_main(argc, argv);
    if (service_wanted(argc, argv))
        return service_dispatch(argc, argv, broker_run);
    return broker_run(argc, argv);
}
