/*
 * session.c — dcb as a DHCP server would run it: dcb-broker as a child
 * process with a temporary configuration (its chain = the plugins under
 * test), and the shim loaded in front of the same list by dcbsimcore's
 * loader, exactly as the server loads CalloutDlls.
 *
 * Readiness is read from the logs: the broker logs "plugin X ready" once a
 * host has loaded its DLL, and the shim logs "connected to the broker" once
 * its NOTIFY connection is up. The broker logs its per-plugin statistics
 * when it stops (SIGTERM); they tell how many events each plugin got and
 * how many defaults were taken, so a run whose figures include defaulted
 * events can say so.
 */
#include "bench.h"

#include "dcb_proto.h"

#include <stdlib.h>
#include <string.h>

#define READY_TEXT "ready: host pid"
#define SHIM_CONNECTED_TEXT "connected to the broker"

static uint32_t startup_ms(const bench_ctx_t *c)
{
    return c->c_wine ? 120000u : 30000u;
}

static size_t count_text(const char *text, const char *what)
{
    size_t n = 0;

    for (const char *p = text; p != NULL && (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

static void log_tail(const char *path)
{
    size_t len = 0;
    char *text = bench_sys_read_file(path, &len);

    if (text == NULL)
        return;
    fprintf(stderr, "---- %s (last lines) ----\n%s\n----\n", path,
            len > 3000 ? text + len - 3000 : text);
    free(text);
}

/* Polls a log file until it holds `want` occurrences of text. */
static int wait_log(const char *path, const char *text, size_t want, uint32_t timeout_ms,
                    bench_child_t *alive)
{
    uint64_t end = dcb_now_ns() + (uint64_t)timeout_ms * 1000000u;

    for (;;) {
        char *log = bench_sys_read_file(path, NULL);
        size_t n = count_text(log, text);
        free(log);
        if (n >= want)
            return 0;
        if (alive != NULL && !bench_child_running(alive))
            return -1;
        if (dcb_now_ns() >= end)
            return -1;
        dcb_sleep_ms(10);
    }
}

/* The name the broker gives a plugin: the DLL's base name without its extension. */
static char *plugin_name(const char *path)
{
    const char *base = path, *dot;
    size_t n;
    char *out;

    for (const char *p = path; *p != '\0'; p++)
        if (*p == '/' || *p == '\\' || *p == ':')
            base = p + 1;
    dot = strrchr(base, '.');
    n = dot != NULL && dot != base ? (size_t)(dot - base) : strlen(base);
    out = malloc(n + 1);
    if (out != NULL) {
        memcpy(out, base, n);
        out[n] = '\0';
    }
    return out;
}

static int write_config(bench_session_t *s, const bench_ctx_t *c)
{
    char text[8192], tag[64], ctl[BENCH_PATH_MAX];
    size_t used;

    snprintf(tag, sizeof(tag), "%s-ctl", s->s_tag);
    bench_sys_pipe_name(ctl, sizeof(ctl), c->c_tmp, tag);
    used = (size_t)snprintf(text, sizeof(text),
                            "# written by dcb-bench for one measurement\n"
                            "[broker]\n"
                            "pipe = %s\n"
                            "control_pipe = %s\n"
                            "log_level = info\n",
                            s->s_pipe, ctl);
    /* Not set: the broker's own default applies (the broker says which at start). */
    if (c->c_opt.o_busy_poll_us >= 0 && used < sizeof(text))
        used += (size_t)snprintf(text + used, sizeof(text) - used, "busy_poll_us = %d\n",
                                 c->c_opt.o_busy_poll_us);
    if (used < sizeof(text))
        used += (size_t)snprintf(text + used, sizeof(text) - used, "chain = ");
    for (size_t i = 0; i < s->s_nplugins && used < sizeof(text); i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%s", i ? ", " : "",
                                 s->s_plugins[i]);
    if (used + 2 >= sizeof(text))
        return -1;
    strcat(text, "\n");
    return bench_sys_write_file(s->s_ini, text);
}

int bench_session_start(bench_session_t *s, bench_ctx_t *c, const char *tag,
                        const char *const *plugins, size_t n)
{
    const char *argv[4];
    sim_dlllist_t list;
    unsigned id = ++c->c_nsession;

    memset(s, 0, sizeof(*s));
    s->s_ctx = c;
    s->s_defaults = -1;
    s->s_broker_requests = -1;
    s->s_shim_defaults = -1;
    if (n == 0 || n > sizeof(s->s_plugins) / sizeof(s->s_plugins[0]))
        return -1;
    snprintf(s->s_tag, sizeof(s->s_tag), "s%u-%s", id, tag);
    for (size_t i = 0; i < n; i++)
        s->s_plugins[i] = plugins[i];
    s->s_nplugins = n;
    s->s_first_name = plugin_name(plugins[0]);
    bench_sys_pipe_name(s->s_pipe, sizeof(s->s_pipe), c->c_tmp, s->s_tag);
    snprintf(s->s_ini, sizeof(s->s_ini), "%s/%s.ini", c->c_tmp, s->s_tag);
    snprintf(s->s_log, sizeof(s->s_log), "%s/%s-broker.log", c->c_tmp, s->s_tag);
    snprintf(s->s_shimlog, sizeof(s->s_shimlog), "%s/%s-shim.log", c->c_tmp, s->s_tag);
    snprintf(s->s_shimconf, sizeof(s->s_shimconf), "%s/%s-shim.conf", c->c_tmp, s->s_tag);
    if (s->s_first_name == NULL || write_config(s, c) != 0 ||
        bench_sys_write_file(s->s_shimconf, "# defaults only\n") != 0) {
        fprintf(stderr, "dcb-bench: cannot write the session files in %s\n", c->c_tmp);
        return -1;
    }

    argv[0] = c->c_broker;
    argv[1] = "--config";
    argv[2] = s->s_ini;
    argv[3] = NULL;
    if (bench_child_spawn(&s->s_broker, c->c_broker, argv, s->s_log) != 0) {
        fprintf(stderr, "dcb-bench: cannot start %s\n", c->c_broker);
        return -1;
    }
    /* Every host has loaded its plugin: the shim's first Welcome carries the real set. */
    if (wait_log(s->s_log, READY_TEXT, n, startup_ms(c), s->s_broker) != 0) {
        fprintf(stderr, "dcb-bench: the broker's hosts did not get ready\n");
        log_tail(s->s_log);
        bench_child_stop(s->s_broker, 5000);
        s->s_broker = NULL;
        return -1;
    }

    if (c->c_poll_us < 0) {
        /* "busy polling ... (busy_poll_us N, ...)", or nothing when it is 0. */
        char *log = bench_sys_read_file(s->s_log, NULL);
        const char *at = log != NULL ? strstr(log, "busy polling ") : NULL;
        const char *us = at != NULL ? strstr(at, "(busy_poll_us ") : NULL;
        c->c_poll_us = us != NULL ? atoi(us + strlen("(busy_poll_us ")) : 0;
        c->c_poll_onecpu = at != NULL && strncmp(at, "busy polling off: one CPU", 25) == 0;
        free(log);
    }

    /* The shim reads its settings when it starts: from here. */
    bench_sys_setenv("DCB_PIPE", s->s_pipe);
    bench_sys_setenv("DCB_SHIM_LOG", s->s_shimlog);
    bench_sys_setenv("DCB_SHIM_CONFIG", s->s_shimconf);
    sim_dlllist_init(&list);
    sim_dlllist_add(&list, c->c_shim);
    for (size_t i = 0; i < n; i++)
        sim_dlllist_add(&list, plugins[i]);
    if (sim_loader_load(&s->s_loader, &list) != 0 || s->s_loader.ld_loaded != 0) {
        fprintf(stderr, "dcb-bench: the shim %s did not load\n", c->c_shim);
        sim_dlllist_free(&list);
        sim_loader_free(&s->s_loader);
        bench_child_stop(s->s_broker, 5000);
        s->s_broker = NULL;
        return -1;
    }
    sim_dlllist_free(&list);
    s->s_loaded = 1;
    s->s_tbl = s->s_loader.ld_table;
    if (wait_log(s->s_shimlog, SHIM_CONNECTED_TEXT, 1, startup_ms(c), NULL) != 0) {
        fprintf(stderr, "dcb-bench: the shim did not connect to the broker\n");
        log_tail(s->s_shimlog);
        log_tail(s->s_log);
        bench_session_stop(s);
        return -1;
    }
    /* Let the REQUEST pool finish connecting its spare connections. */
    dcb_sleep_ms(c->c_wine ? 500 : 50);
    return 0;
}

size_t bench_session_pids(const bench_session_t *s, uint32_t *pids, size_t max)
{
    uint32_t broker = bench_child_pid(s->s_broker);
    const char *image = s->s_ctx->c_broker, *p;

    if (broker == 0 || max == 0)
        return 0;
    /* Hosts are the broker re-executed: children with the broker's own file name. */
    for (p = image; *p != '\0'; p++)
        if (*p == '/' || *p == '\\')
            image = p + 1;
    pids[0] = broker;
    return 1 + bench_sys_children(broker, image, pids + 1, max - 1);
}

void bench_session_mem(const bench_session_t *s, bench_mem_t *m)
{
    uint32_t pids[32];
    size_t n = bench_session_pids(s, pids, 32);
    bench_procstat_t ps;

    m->m_broker_kb = m->m_hosts_kb = m->m_host_max_kb = 0;
    m->m_nhosts = 0;
    for (size_t i = 0; i < n; i++) {
        if (bench_sys_procstat(pids[i], &ps) != 0)
            continue;
        if (i == 0) {
            m->m_broker_kb = ps.ps_peak_kb;
            continue;
        }
        m->m_hosts_kb += ps.ps_peak_kb;
        if (ps.ps_peak_kb > m->m_host_max_kb)
            m->m_host_max_kb = ps.ps_peak_kb;
        m->m_nhosts++;
    }
}

int bench_session_wait_subscribed(bench_session_t *s, uint32_t must_have, uint32_t must_lack,
                                  uint32_t timeout_ms)
{
    uint64_t end = dcb_now_ns() + (uint64_t)timeout_ms * 1000000u;

    for (;;) {
        char *log = bench_sys_read_file(s->s_shimlog, NULL);
        const char *p = log, *last = NULL;
        while (p != NULL && (p = strstr(p, "subscribed hooks: 0x")) != NULL) {
            last = p;
            p++;
        }
        if (last != NULL) {
            uint32_t bits = (uint32_t)strtoul(last + strlen("subscribed hooks: "), NULL, 16);
            if ((bits & must_have) == must_have && (bits & must_lack) == 0) {
                free(log);
                return 0;
            }
        }
        free(log);
        if (dcb_now_ns() >= end)
            return -1;
        dcb_sleep_ms(10);
    }
}

/*
 * Reads the final statistics: "stats broker: requests N, ..." and, per
 * plugin and hook, "stats NAME HOOK: calls N ... defaults none|reason=N ...".
 */
static void parse_stats(bench_session_t *s, const char *log)
{
    char prefix[160];
    const char *p;
    int plugin_lines = 0;

    s->s_defaults = 0;
    for (p = log; (p = strstr(p, "info: stats ")) != NULL; p++) {
        const char *line_end = strchr(p, '\n'), *d = strstr(p, "; defaults");
        if (line_end == NULL)
            line_end = p + strlen(p);
        if (d == NULL || d > line_end)
            continue;
        plugin_lines++;
        d += strlen("; defaults");
        while (d < line_end) {
            const char *eq = memchr(d, '=', (size_t)(line_end - d));
            if (eq == NULL)
                break;
            s->s_defaults += strtoll(eq + 1, NULL, 10);
            d = eq + 1;
        }
    }
    if (plugin_lines == 0)
        s->s_defaults = -1;
    for (int h = 0; h < DCB_HOOK_COUNT; h++) {
        snprintf(prefix, sizeof(prefix), "info: stats %s %s: calls ", s->s_first_name,
                 dcb_hook_name(h));
        p = strstr(log, prefix);
        if (p != NULL)
            s->s_delivered[h] = strtoull(p + strlen(prefix), NULL, 10);
    }
    p = strstr(log, "stats broker: requests ");
    s->s_stats_ok = p != NULL;
    if (p != NULL)
        s->s_broker_requests = strtoll(p + strlen("stats broker: requests "), NULL, 10);
}

/*
 * Waits (bounded) until every host the broker started has reported ready:
 * a broker may start a fresh generation of hosts after the server's STOP,
 * and stopping it in the middle of that leaves nothing to measure but
 * noise (and, where the broker is terminated, a host to clean up).
 */
static void wait_hosts_settled(const bench_session_t *s, uint32_t timeout_ms)
{
    uint64_t end = dcb_now_ns() + (uint64_t)timeout_ms * 1000000u;
    size_t last = (size_t)-1;

    dcb_sleep_ms(20);
    while (dcb_now_ns() < end) {
        char *log = bench_sys_read_file(s->s_log, NULL);
        size_t started = count_text(log, "started (generation"),
               ready = count_text(log, READY_TEXT);
        free(log);
        if (started <= ready && started == last)
            return;
        last = started <= ready ? started : (size_t)-1;
        dcb_sleep_ms(50);
    }
}

void bench_session_stop(bench_session_t *s)
{
    int clean;

    if (s->s_loaded) {
        char *log;
        /* DHCP_CONTROL_STOP: the shim flushes its queue and closes its connections. */
        sim_loader_free(&s->s_loader);
        s->s_loaded = 0;
        log = bench_sys_read_file(s->s_shimlog, NULL);
        if (log != NULL)
            s->s_shim_defaults = (int64_t)count_text(log, "default decision");
        free(log);
    }
    if (s->s_broker != NULL) {
        wait_hosts_settled(s, s->s_ctx->c_wine ? 20000 : 5000);
        clean = bench_child_stop(s->s_broker, 15000);
        s->s_broker = NULL;
        if (clean) {
            char *log = bench_sys_read_file(s->s_log, NULL);
            if (log != NULL)
                parse_stats(s, log);
            free(log);
        }
    }
    if (s->s_ctx->c_opt.o_verbose) {
        log_tail(s->s_shimlog);
        log_tail(s->s_log);
    }
    free(s->s_first_name);
    s->s_first_name = NULL;
}

int64_t bench_session_undelivered(const bench_session_t *s)
{
    int64_t asked = (int64_t)(s->s_calls[DCB_HOOK_NEWPKT] + s->s_calls[DCB_HOOK_PKTSEND]);

    if (!s->s_stats_ok || s->s_broker_requests < 0)
        return -1;
    return asked > s->s_broker_requests ? asked - s->s_broker_requests : 0;
}

void bench_session_account(const bench_session_t *s, bench_run_t *r)
{
    r->r_defaults = s->s_defaults;
    r->r_undelivered = bench_session_undelivered(s);
    r->r_shim_defaults = s->s_shim_defaults;
}
