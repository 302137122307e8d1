/*
 * test_dcbctl.c — dcbctl's control client against a fake control server:
 * the request every command sends, every output format, and every exit code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cJSON.h>

#include "capture.h"
#include "dcb_callout.h"
#include "dcb_os.h"
#include "dcbctl.h"
#include "fake_server.h"

/* ---- canned reports ------------------------------------------------------ */

/* A wire histogram (sparse buckets) of known samples; freed by hist_free. */
typedef struct sample {
    uint64_t ns;
    uint32_t n;
} sample_t;

static Dcb__Histogram *hist_of(const sample_t *s, size_t ns, int with_max)
{
    Dcb__Histogram *h = calloc(1, sizeof(*h));
    dcb_hist_t *tmp = calloc(1, sizeof(*tmp));
    uint64_t max = 0, sum = 0;

    assert_non_null(h);
    assert_non_null(tmp);
    dcb__histogram__init(h);
    for (size_t i = 0; i < ns; i++) {
        for (uint32_t k = 0; k < s[i].n; k++)
            dcb_hist_record(tmp, s[i].ns);
        if (s[i].ns > max)
            max = s[i].ns;
        sum += s[i].ns * s[i].n;
    }
    h->bucket = calloc(DCB_HIST_BUCKETS, sizeof(uint32_t));
    h->count = calloc(DCB_HIST_BUCKETS, sizeof(uint64_t));
    for (uint32_t b = 0; b < DCB_HIST_BUCKETS; b++) {
        uint64_t c = atomic_load(&tmp->h_buckets[b]);
        if (c == 0)
            continue;
        h->bucket[h->n_bucket++] = b;
        h->count[h->n_count++] = c;
    }
    if (with_max) {
        h->has_max = 1;
        h->max = max;
    }
    h->has_sum = 1;
    h->sum = sum;
    free(tmp);
    return h;
}

static void hist_free(Dcb__Histogram *h)
{
    if (h == NULL)
        return;
    free(h->bucket);
    free(h->count);
    free(h);
}

/*
 * macfilter's NewPkt latencies: 1000 calls. With the rank rule of
 * dcb_hist_quantile (the sample at index floor(q * n) in sorted order):
 * p50 = 20 µs, p90 = 150 µs, p99 = 2 ms, p99.9 = max = 40.000123 ms.
 */
static const sample_t mac_lat[] = {
    {8000, 500}, {20000, 400}, {150000, 90}, {2000000, 9}, {40000123, 1}};
/* The shim's NewPkt waits: p50 = 30 µs, p90 = 50 µs, p99 = p99.9 = max = 5 ms. */
static const sample_t shim_wait[] = {{30000, 800}, {50000, 190}, {5000000, 10}};

typedef struct stats_fixture {
    Dcb__ControlResponse resp;
    Dcb__StatsReport report;
    Dcb__HookPluginStats e[3];
    Dcb__HookPluginStats *ep[3];
    Dcb__ShimHookStats s[2];
    Dcb__ShimHookStats *sp[2];
} stats_fixture_t;

static void stats_build(stats_fixture_t *f, const char *third_plugin)
{
    memset(f, 0, sizeof(*f));
    dcb__control_response__init(&f->resp);
    dcb__stats_report__init(&f->report);
    for (int i = 0; i < 3; i++) {
        dcb__hook_plugin_stats__init(&f->e[i]);
        f->ep[i] = &f->e[i];
    }
    for (int i = 0; i < 2; i++) {
        dcb__shim_hook_stats__init(&f->s[i]);
        f->sp[i] = &f->s[i];
    }
    /* Listed out of hook order on purpose: the table sorts by hook. */
    f->e[0].hook = DCB_HOOK_PKTSEND;
    f->e[0].plugin = "optinject";
    f->e[0].has_calls = f->e[0].has_modified = f->e[0].has_pass = 1;
    f->e[0].calls = 500;
    f->e[0].pass = 0;
    f->e[0].modified = 500;

    f->e[1].hook = DCB_HOOK_NEWPKT;
    f->e[1].plugin = "macfilter";
    f->e[1].has_calls = f->e[1].has_pass = f->e[1].has_drop = f->e[1].has_modified = 1;
    f->e[1].calls = 1000;
    f->e[1].pass = 990;
    f->e[1].drop = 10;
    f->e[1].modified = 0;
    f->e[1].has_defaults_timeout = f->e[1].has_defaults_crash = 1;
    f->e[1].defaults_timeout = 3;
    f->e[1].defaults_crash = 1;
    f->e[1].latency = hist_of(mac_lat, 5, 1);

    f->e[2].hook = DCB_HOOK_NEWPKT;
    f->e[2].plugin = (char *)third_plugin;
    f->e[2].has_calls = 1;
    f->e[2].calls = 7;

    f->s[0].hook = DCB_HOOK_NEWPKT;
    f->s[0].has_calls = f->s[0].has_defaults_timeout = f->s[0].has_defaults_no_broker = 1;
    f->s[0].calls = 1000;
    f->s[0].defaults_timeout = 2;
    f->s[0].defaults_no_broker = 5;
    f->s[0].waited = hist_of(shim_wait, 3, 1);
    f->s[1].hook = DCB_HOOK_PKTDROP;
    f->s[1].has_calls = f->s[1].has_unsubscribed = f->s[1].has_queue_full = 1;
    f->s[1].calls = 2000;
    f->s[1].unsubscribed = 2000;
    f->s[1].queue_full = 7;

    f->report.n_entries = 3;
    f->report.entries = f->ep;
    f->report.n_shim = 2;
    f->report.shim = f->sp;
    f->report.has_uptime_ms = 1;
    f->report.uptime_ms = 7380000; /* 2h03m */
    f->resp.status = DCB__CONTROL_STATUS__CS_OK;
    f->resp.stats_report = &f->report;
}

static void stats_free(stats_fixture_t *f)
{
    hist_free(f->e[1].latency);
    hist_free(f->s[0].waited);
}

typedef struct status_fixture {
    Dcb__ControlResponse resp;
    Dcb__StatusReport report;
    Dcb__PluginStatus p[3];
    Dcb__PluginStatus *pp[3];
} status_fixture_t;

static void status_build(status_fixture_t *f)
{
    memset(f, 0, sizeof(*f));
    dcb__control_response__init(&f->resp);
    dcb__status_report__init(&f->report);
    for (int i = 0; i < 3; i++) {
        dcb__plugin_status__init(&f->p[i]);
        f->pp[i] = &f->p[i];
    }
    f->p[0].name = "macfilter";
    f->p[0].state = DCB__PLUGIN_STATE__PS_RUNNING;
    f->p[0].has_pid = f->p[0].has_uptime_ms = f->p[0].has_restarts = 1;
    f->p[0].pid = 5001;
    f->p[0].uptime_ms = 3600000;
    f->p[0].restarts = 0;
    f->p[0].dll_path = "C:\\dcb\\plugins\\macfilter.dll";
    f->p[0].has_hooks = 1;
    f->p[0].hooks = (1u << DCB_HOOK_NEWPKT) | (1u << DCB_HOOK_PKTDROP);
    f->p[0].has_generation = 1;
    f->p[0].generation = 2;

    f->p[1].name = "vendorB";
    f->p[1].state = DCB__PLUGIN_STATE__PS_RESTARTING;
    f->p[1].has_restarts = 1;
    f->p[1].restarts = 3;
    f->p[1].last_failure = "crashed (exception 0xC0000005)";
    f->p[1].has_last_failure_age_ms = 1;
    f->p[1].last_failure_age_ms = 12000;

    /* A name with a terminal escape in it must not reach the terminal raw. */
    f->p[2].name = "evil\x1b[2J";
    f->p[2].state = DCB__PLUGIN_STATE__PS_DISABLED;

    f->report.broker_pid = 4242;
    f->report.uptime_ms = 7380000;
    f->report.has_shims_connected = 1;
    f->report.shims_connected = 1;
    f->report.broker_version = "0.1.0";
    f->report.n_plugins = 3;
    f->report.plugins = f->pp;
    f->resp.status = DCB__CONTROL_STATUS__CS_OK;
    f->resp.status_report = &f->report;
}

/* ---- helpers -------------------------------------------------------------- */

static fake_server_t *server(void)
{
    fake_server_t *fs = fake_start();

    assert_non_null(fs);
    return fs;
}

/* The line of text that contains both a and b (NULL if none); caller frees. */
static char *line_with(const char *text, const char *a, const char *b)
{
    const char *p = text;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '\n');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        char *line = malloc(n + 1);
        assert_non_null(line);
        memcpy(line, p, n);
        line[n] = '\0';
        if (strstr(line, a) != NULL && (b == NULL || strstr(line, b) != NULL))
            return line;
        free(line);
        p = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

/* Splits a line into whitespace-separated tokens (in place). */
static int tokens(char *line, char **tok, int max)
{
    int n = 0;

    for (char *t = strtok(line, " "); t != NULL && n < max; t = strtok(NULL, " "))
        tok[n++] = t;
    return n;
}

/* "20.1µs" → ns. */
static double parse_duration(const char *s)
{
    char *end;
    double v = strtod(s, &end);

    if (strcmp(end, "ns") == 0)
        return v;
    if (strcmp(end, "\xc2\xb5s") == 0)
        return v * 1e3;
    if (strcmp(end, "ms") == 0)
        return v * 1e6;
    if (strcmp(end, "s") == 0)
        return v * 1e9;
    fail_msg("not a duration: '%s'", s);
    return 0;
}

/* Within 2%: the histogram's bound (1/128) plus three-digit rounding. */
static void assert_near(double got, double want)
{
    if (!(got >= want * 0.98 && got <= want * 1.02))
        fail_msg("got %.1f, expected %.1f (within 2%%)", got, want);
}

static void free2(char *a, char *b)
{
    free(a);
    free(b);
}

/* ---- usage ---------------------------------------------------------------- */

static void test_usage_errors(void **state)
{
    static const struct {
        const char *args[8];
        const char *says;
    } bad[] = {
        {{NULL}, "no command"},
        {{"bogus"}, "unknown command 'bogus'"},
        {{"--bogus", "status"}, "unknown option '--bogus'"},
        {{"reload"}, "usage: dcbctl reload PLUGIN"},
        {{"enable", "a", "b"}, "usage: dcbctl enable PLUGIN"},
        {{"disable"}, "usage: dcbctl disable PLUGIN"},
        {{"set", "p", "timeout"}, "usage: dcbctl set"},
        {{"set", "p", "latency", "5"}, "usage: dcbctl set"},
        {{"set", "p", "timeout", "0"}, "expected milliseconds"},
        {{"set", "p", "timeout", "60001"}, "expected milliseconds"},
        {{"set", "p", "timeout", "12x"}, "expected milliseconds"},
        {{"set", "p", "timeout", "5", "--hook", "Nope"}, "--hook 'Nope'"},
        {{"set", "p", "timeout", "5", "--hook", "8"}, "--hook '8'"},
        {{"status", "--hook", "NewPkt"}, "--hook applies to 'set' only"},
        {{"stats", "--json", "--prometheus"}, "choose one"},
        {{"status", "--prometheus"}, "--prometheus applies to 'stats' only"},
        {{"reload", "x", "--json"}, "--json applies"},
        {{"--timeout", "soon", "status"}, "--timeout 'soon'"},
        {{"--timeout", "0", "status"}, "--timeout '0'"},
        {{"status", "--control"}, "--control needs a value"},
        {{"--control=", "status"}, "--control needs a pipe"},
        {{"stats", "--iterations", "2"}, "apply to 'top' only"},
        {{"top", "--iterations", "0"}, "--iterations '0'"},
        {{"status", "--shim", "x.dll"}, "apply to 'install' only"},
        {{"install", "--account", "LocalSystem"}, "--account 'LocalSystem'"},
        {{"status", "extra"}, "unexpected argument 'extra'"},
        {{"reset-stats", "macfilter"}, "unexpected argument"},
    };
    char *out, *err;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int argc = 0;
        while (bad[i].args[argc] != NULL)
            argc++;
        assert_int_equal(capture_runv(&out, &err, argc, bad[i].args), CTL_EXIT_USAGE);
        if (strstr(err, bad[i].says) == NULL)
            fail_msg("case %zu: stderr lacks '%s': %s", i, bad[i].says, err);
        /* One line, starting with the program's name. */
        assert_true(strncmp(err, "dcbctl: ", 8) == 0);
        assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1);
        assert_string_equal(out, "");
        free2(out, err);
    }

    assert_int_equal(capture_run(&out, &err, "--help", NULL), 0);
    assert_non_null(strstr(out, "usage: dcbctl"));
    assert_non_null(strstr(out, "6 protocol error or timeout"));
    free2(out, err);
    assert_int_equal(capture_run(&out, &err, "status", "-h", NULL), 0);
    free2(out, err);
    assert_int_equal(capture_run(&out, &err, "--version", NULL), 0);
    assert_non_null(strstr(out, "dcbctl 0.1.0"));
    free2(out, err);
}

static void test_hook_names(void **state)
{
    assert_int_equal(ctl_hook_parse("NewPkt"), DCB_HOOK_NEWPKT);
    assert_int_equal(ctl_hook_parse("pktsend"), DCB_HOOK_PKTSEND);
    assert_int_equal(ctl_hook_parse("DELETECLIENT"), DCB_HOOK_DELETECLIENT);
    assert_int_equal(ctl_hook_parse("0"), DCB_HOOK_CONTROL);
    assert_int_equal(ctl_hook_parse("7"), 7);
    assert_int_equal(ctl_hook_parse("8"), -1);
    assert_int_equal(ctl_hook_parse("NewPk"), -1);
    assert_int_equal(ctl_hook_parse("NewPktX"), -1);
    assert_int_equal(ctl_hook_parse(""), -1);
}

static void test_duration_format(void **state)
{
    static const struct {
        uint64_t ns;
        const char *s;
    } cases[] = {
        {0, "0ns"},
        {999, "999ns"},
        {1000, "1.00\xc2\xb5s"},
        {12345, "12.3\xc2\xb5s"},
        {999499, "999\xc2\xb5s"},
        {999500, "1.00ms"},
        {4560000, "4.56ms"},
        {150000000, "150ms"},
        {1200000000, "1.20s"},
    };
    char buf[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ctl_fmt_duration(cases[i].ns, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].s);
    }
    ctl_fmt_uptime(7380000, buf, sizeof(buf));
    assert_string_equal(buf, "2h03m");
    ctl_fmt_uptime(45000, buf, sizeof(buf));
    assert_string_equal(buf, "45s");
    ctl_fmt_uptime(90061000, buf, sizeof(buf));
    assert_string_equal(buf, "1d01h");
}

/* ---- requests -------------------------------------------------------------- */

static void test_request_encoding(void **state)
{
    static const struct {
        const char *args[8];
        int command;
        const char *plugin; /* NULL: absent */
        int has_timeout;
        uint32_t timeout_ms;
        int has_hook;
        uint32_t hook;
        const char *prints;
    } cases[] = {
        {{"status"}, DCB__CONTROL_COMMAND__CC_STATUS, NULL, 0, 0, 0, 0, NULL},
        {{"stats"}, DCB__CONTROL_COMMAND__CC_STATS, NULL, 0, 0, 0, 0, NULL},
        {{"reload", "macfilter"},
         DCB__CONTROL_COMMAND__CC_RELOAD,
         "macfilter",
         0,
         0,
         0,
         0,
         "macfilter: reloaded\n"},
        {{"enable", "auditlog"},
         DCB__CONTROL_COMMAND__CC_ENABLE,
         "auditlog",
         0,
         0,
         0,
         0,
         "auditlog: enabled\n"},
        {{"disable", "auditlog"},
         DCB__CONTROL_COMMAND__CC_DISABLE,
         "auditlog",
         0,
         0,
         0,
         0,
         "auditlog: disabled\n"},
        {{"set", "macfilter", "timeout", "250"},
         DCB__CONTROL_COMMAND__CC_SET_TIMEOUT,
         "macfilter",
         1,
         250,
         0,
         0,
         "macfilter: timeout 250 ms for every hook\n"},
        {{"set", "macfilter", "timeout", "40", "--hook", "pktsend"},
         DCB__CONTROL_COMMAND__CC_SET_TIMEOUT,
         "macfilter",
         1,
         40,
         1,
         DCB_HOOK_PKTSEND,
         "macfilter: timeout 40 ms for PktSend\n"},
        {{"--hook=1", "set", "vendor b", "timeout", "60000"},
         DCB__CONTROL_COMMAND__CC_SET_TIMEOUT,
         "vendor b",
         1,
         60000,
         1,
         DCB_HOOK_NEWPKT,
         "vendor b: timeout 60000 ms for NewPkt\n"},
        {{"reset-stats"},
         DCB__CONTROL_COMMAND__CC_RESET_STATS,
         NULL,
         0,
         0,
         0,
         0,
         "statistics reset\n"},
        {{"reload", "--", "--odd-name"},
         DCB__CONTROL_COMMAND__CC_RELOAD,
         "--odd-name",
         0,
         0,
         0,
         0,
         "--odd-name: reloaded\n"},
    };
    stats_fixture_t sf;
    status_fixture_t tf;
    fake_server_t *fs = server();
    char *out, *err;

    stats_build(&sf, "vendorB");
    status_build(&tf);
    fake_set_response(fs, DCB__CONTROL_COMMAND__CC_STATS, &sf.resp);
    fake_set_response(fs, DCB__CONTROL_COMMAND__CC_STATUS, &tf.resp);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *argv[12] = {"--control", fake_endpoint(fs)};
        fake_req_t reqs[64];
        int argc = 2, n;

        for (int k = 0; cases[i].args[k] != NULL; k++)
            argv[argc++] = cases[i].args[k];
        assert_int_equal(capture_runv(&out, &err, argc, argv), 0);
        assert_string_equal(err, "");
        if (cases[i].prints != NULL)
            assert_string_equal(out, cases[i].prints);
        free2(out, err);

        n = fake_requests(fs, reqs, 64);
        assert_int_equal(n, (int)i + 1);
        assert_int_equal(reqs[i].fr_command, cases[i].command);
        assert_int_equal(reqs[i].fr_has_plugin, cases[i].plugin != NULL);
        if (cases[i].plugin != NULL)
            assert_string_equal(reqs[i].fr_plugin, cases[i].plugin);
        assert_int_equal(reqs[i].fr_has_timeout, cases[i].has_timeout);
        assert_int_equal(reqs[i].fr_timeout_ms, cases[i].timeout_ms);
        assert_int_equal(reqs[i].fr_has_hook, cases[i].has_hook);
        assert_int_equal(reqs[i].fr_hook, cases[i].hook);
    }
    /* One command, one connection. */
    assert_int_equal(fake_connections(fs), (int)(sizeof(cases) / sizeof(cases[0])));
    fake_stop(fs);
    stats_free(&sf);
}

static void test_endpoint_from_environment(void **state)
{
    fake_server_t *fs = server();
    fake_req_t req;
    char *out, *err;

    capture_setenv("DCB_CONTROL", fake_endpoint(fs));
    assert_int_equal(capture_run(&out, &err, "reset-stats", NULL), 0);
    free2(out, err);
    assert_int_equal(fake_requests(fs, &req, 1), 1);
    assert_int_equal(req.fr_command, DCB__CONTROL_COMMAND__CC_RESET_STATS);

    /* --control wins over the environment. */
    {
        char none[256];
        fnet_unused_name(none, sizeof(none));
        assert_int_equal(capture_run(&out, &err, "--control", none, "reset-stats", NULL),
                         CTL_EXIT_NO_BROKER);
        free2(out, err);
    }
    capture_setenv("DCB_CONTROL", NULL);
    assert_int_equal(fake_requests(fs, &req, 1), 1);
    fake_stop(fs);
}

/* ---- outputs ---------------------------------------------------------------- */

static void test_status_text(void **state)
{
    status_fixture_t f;
    fake_server_t *fs = server();
    char *out, *err, *line;

    status_build(&f);
    fake_set_response(fs, DCB__CONTROL_COMMAND__CC_STATUS, &f.resp);
    assert_int_equal(capture_run(&out, &err, "--control", fake_endpoint(fs), "status", NULL), 0);
    assert_string_equal(err, "");
    assert_non_null(strstr(out, "broker: running, pid 4242, up 2h03m, version 0.1.0\n"));
    assert_non_null(strstr(out, "shims connected: 1\n"));

    line = line_with(out, "macfilter", NULL);
    assert_non_null(line);
    {
        char *tok[16];
        int n = tokens(line, tok, 16);
        assert_int_equal(n, 7);
        assert_string_equal(tok[1], "running");
        assert_string_equal(tok[2], "5001");
        assert_string_equal(tok[3], "1h00m");
        assert_string_equal(tok[4], "0");
        assert_string_equal(tok[5], "2");
        assert_string_equal(tok[6], "-");
    }
    free(line);
    line = line_with(out, "vendorB", NULL);
    assert_non_null(line);
    assert_non_null(strstr(line, "restarting"));
    assert_non_null(strstr(line, "crashed (exception 0xC0000005) (12s ago)"));
    {
        char *tok[16];
        assert_true(tokens(line, tok, 16) >= 6);
        assert_string_equal(tok[2], "-"); /* no pid while restarting */
        assert_string_equal(tok[4], "3");
    }
    free(line);
    /* The escape byte became '?'. */
    assert_null(strchr(out, '\x1b'));
    line = line_with(out, "evil?[2J", "disabled");
    assert_non_null(line);
    free(line);
    free2(out, err);

    /* A broker with no shim yet says why that may be. */
    f.report.shims_connected = 0;
    f.report.n_plugins = 0;
    fake_set_response(fs, DCB__CONTROL_COMMAND__CC_STATUS, &f.resp);
    assert_int_equal(capture_run(&out, &err, "--control", fake_endpoint(fs), "status", NULL), 0);
    assert_non_null(strstr(out, "shims connected: 0 (the DHCP server has not loaded"));
    assert_non_null(strstr(out, "plugins: none configured"));
    free2(out, err);
    fake_stop(fs);
}

static void test_status_json(void **state)
{
    status_fixture_t f;
    fake_server_t *fs = server();
    char *out, *err;
    cJSON *root, *broker, *plugins, *p, *hooks;

    status_build(&f);
    fake_set_response(fs, DCB__CONTROL_COMMAND__CC_STATUS, &f.resp);
    assert_int_equal(
        capture_run(&out, &err, "--control", fake_endpoint(fs), "status", "--json", NULL), 0);
    root = cJSON_Parse(out);
    assert_non_null(root);
    broker = cJSON_GetObjectItemCaseSensitive(root, "broker");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(broker, "pid")->valuedouble, 4242);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(broker, "uptime_ms")->valuedouble, 7380000);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(broker, "shims_connected")->valuedouble, 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(broker, "version")->valuestring, "0.1.0");
    plugins = cJSON_GetObjectItemCaseSensitive(root, "plugins");
    assert_int_equal(cJSON_GetArraySize(plugins), 3);
    p = cJSON_GetArrayItem(plugins, 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "name")->valuestring, "macfilter");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "state")->valuestring, "running");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(p, "pid")->valuedouble, 5001);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "dll_path")->valuestring,
                        "C:\\dcb\\plugins\\macfilter.dll");
    hooks = cJSON_GetObjectItemCaseSensitive(p, "hooks");
    assert_int_equal(cJSON_GetArraySize(hooks), 2);
    assert_string_equal(cJSON_GetArrayItem(hooks, 0)->valuestring, "NewPkt");
    assert_string_equal(cJSON_GetArrayItem(hooks, 1)->valuestring, "PktDrop");
    p = cJSON_GetArrayItem(plugins, 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "state")->valuestring, "restarting");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(p, "restarts")->valuedouble, 3);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "last_failure")->valuestring,
                        "crashed (exception 0xC0000005)");
    /* JSON keeps the name as sent (escaped by the encoder, not altered). */
    p = cJSON_GetArrayItem(plugins, 2);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "name")->valuestring, "evil\x1b[2J");
    cJSON_Delete(root);
    free2(out, err);
    fake_stop(fs);
}

static void test_stats_text(void **state)
{
    stats_fixture_t f;
    fake_server_t *fs = server();
    char *out, *err, *line, *tok[20];
    int n;

    stats_build(&f, "vendorB");
    fake_set_response(fs, DCB__CONTROL_COMMAND__CC_STATS, &f.resp);
    assert_int_equal(capture_run(&out, &err, "--control", fake_endpoint(fs), "stats", NULL), 0);
    assert_string_equal(err, "");
    assert_non_null(strstr(out, "broker up 2h03m"));
    line = line_with(out, "HOOK", "PLUGIN");
    assert_non_null(line);
    {
        static const char *const cols[] = {"HOOK", "PLUGIN", "CALLS", "PASS",  "DROP", "MODIFIED",
                                           "P50",  "P90",    "P99",   "P99.9", "MAX",  "DEFAULTS"};
        assert_int_equal(tokens(line, tok, 20), 12);
        for (int i = 0; i < 12; i++)
            assert_string_equal(tok[i], cols[i]);
    }
    free(line);
    /* Numbers are right-aligned under their heading. */
    assert_non_null(strstr(out, "CALLS  PASS  DROP  MODIFIED"));
    assert_non_null(strstr(out, " 1000   990    10         0"));

    /* HOOK PLUGIN CALLS PASS DROP MODIFIED P50 P90 P99 P99.9 MAX DEFAULTS... */
    line = line_with(out, "NewPkt", "macfilter");
    assert_non_null(line);
    n = tokens(line, tok, 20);
    assert_int_equal(n, 13);
    assert_string_equal(tok[2], "1000");
    assert_string_equal(tok[3], "990");
    assert_string_equal(tok[4], "10");
    assert_string_equal(tok[5], "0");
    assert_near(parse_duration(tok[6]), 20000);
    assert_near(parse_duration(tok[7]), 150000);
    assert_near(parse_duration(tok[8]), 2000000);
    assert_near(parse_duration(tok[9]), 40000123);
    assert_string_equal(tok[10], "40.0ms"); /* the exact maximum, not a bucket's */
    assert_string_equal(tok[11], "timeout=3");
    assert_string_equal(tok[12], "crash=1");
    free(line);

    /* No latency recorded: dashes, not zeros. */
    line = line_with(out, "PktSend", "optinject");
    assert_non_null(line);
    n = tokens(line, tok, 20);
    assert_int_equal(n, 12);
    assert_string_equal(tok[2], "500");
    assert_string_equal(tok[5], "500");
    for (int i = 6; i < 12; i++)
        assert_string_equal(tok[i], "-");
    free(line);

    /* Sorted by hook: both NewPkt rows come before PktSend. */
    assert_true(strstr(out, "vendorB") < strstr(out, "optinject"));
    assert_true(strstr(out, "macfilter") < strstr(out, "vendorB"));

    /* The shim's section. */
    assert_non_null(strstr(out, "Shim (end to end: what the DHCP server's threads waited)"));
    line = line_with(strstr(out, "Shim ("), "NewPkt", NULL);
    assert_non_null(line);
    n = tokens(line, tok, 20);
    assert_int_equal(n, 10);
    assert_string_equal(tok[1], "1000");
    assert_string_equal(tok[2], "0");
    assert_near(parse_duration(tok[3]), 30000);
    assert_near(parse_duration(tok[4]), 50000);
    assert_near(parse_duration(tok[5]), 5000000);
    assert_string_equal(tok[7], "5.00ms");
    assert_string_equal(tok[8], "timeout=2");
    assert_string_equal(tok[9], "no_broker=5");
    free(line);
    line = line_with(strstr(out, "Shim ("), "PktDrop", NULL);
    assert_non_null(line);
    n = tokens(line, tok, 20);
    assert_string_equal(tok[1], "2000");
    assert_string_equal(tok[2], "2000");
    assert_string_equal(tok[n - 1], "queue_full=7");
    free(line);
    free2(out, err);
    fake_stop(fs);
    stats_free(&f);
}

static double json_num(cJSON *o, const char *a, const char *b)
{
    cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);

    if (b != NULL)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    if (!cJSON_IsNumber(x))
        fail_msg("no number at %s%s%s", a, b ? "." : "", b ? b : "");
    return x->valuedouble;
}

static void test_stats_json(void **state)
{
    stats_fixture_t f;
    fake_server_t *fs = server();
    char *out, *err;
    cJSON *root, *arr, *e = NULL;

    stats_build(&f, "vendorB");
    fake_set_response(fs, DCB__CONTROL_COMMAND__CC_STATS, &f.resp);
    assert_int_equal(
        capture_run(&out, &err, "--control", fake_endpoint(fs), "stats", "--json", NULL), 0);
    root = cJSON_Parse(out);
    assert_non_null(root);
    assert_int_equal(json_num(root, "uptime_ms", NULL), 7380000);
    arr = cJSON_GetObjectItemCaseSensitive(root, "plugins");
    assert_int_equal(cJSON_GetArraySize(arr), 3);
    for (int i = 0; i < 3; i++) {
        cJSON *x = cJSON_GetArrayItem(arr, i);
        if (strcmp(cJSON_GetObjectItemCaseSensitive(x, "plugin")->valuestring, "macfilter") == 0)
            e = x;
    }
    assert_non_null(e);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "hook")->valuestring, "NewPkt");
    assert_int_equal(json_num(e, "calls", NULL), 1000);
    assert_int_equal(json_num(e, "pass", NULL), 990);
    assert_int_equal(json_num(e, "drop", NULL), 10);
    assert_int_equal(json_num(e, "modified", NULL), 0);
    assert_int_equal(json_num(e, "defaults", "timeout"), 3);
    assert_int_equal(json_num(e, "defaults", "crash"), 1);
    assert_int_equal(json_num(e, "defaults", "breaker"), 0);
    assert_int_equal(json_num(e, "defaults", "queue_full"), 0);
    assert_int_equal(json_num(e, "defaults", "bad_reply"), 0);
    assert_int_equal(json_num(e, "defaults", "disabled"), 0);
    assert_int_equal(json_num(e, "latency_ns", "count"), 1000);
    assert_near(json_num(e, "latency_ns", "p50"), 20000);
    assert_near(json_num(e, "latency_ns", "p90"), 150000);
    assert_near(json_num(e, "latency_ns", "p99"), 2000000);
    assert_near(json_num(e, "latency_ns", "p99_9"), 40000123);
    assert_int_equal(json_num(e, "latency_ns", "max"), 40000123);
    assert_int_equal(json_num(e, "latency_ns", "sum"),
                     500 * 8000 + 400 * 20000 + 90 * 150000 + 9 * 2000000 + 40000123);

    arr = cJSON_GetObjectItemCaseSensitive(root, "shim");
    assert_int_equal(cJSON_GetArraySize(arr), 2);
    e = cJSON_GetArrayItem(arr, 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "hook")->valuestring, "NewPkt");
    assert_int_equal(json_num(e, "calls", NULL), 1000);
    assert_int_equal(json_num(e, "defaults", "timeout"), 2);
    assert_int_equal(json_num(e, "defaults", "no_broker"), 5);
    assert_int_equal(json_num(e, "queue_full", NULL), 0);
    assert_near(json_num(e, "waited_ns", "p90"), 50000);
    assert_int_equal(json_num(e, "waited_ns", "max"), 5000000);
    e = cJSON_GetArrayItem(arr, 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "hook")->valuestring, "PktDrop");
    assert_int_equal(json_num(e, "unsubscribed", NULL), 2000);
    assert_int_equal(json_num(e, "queue_full", NULL), 7);
    assert_int_equal(json_num(e, "waited_ns", "count"), 0);
    cJSON_Delete(root);
    free2(out, err);
    fake_stop(fs);
    stats_free(&f);
}

/* ---- Prometheus ------------------------------------------------------------- */

static int is_name_char(char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/*
 * Checks one sample line against the text format: name, optional {labels}
 * with escaped quoted values, one space, a float. Returns the metric name
 * (into name) or fails the test.
 */
static void check_sample(const char *line, char *name, size_t n)
{
    const char *p = line;
    size_t i = 0;
    char *end;

    assert_true(is_name_char(*p, 1));
    while (is_name_char(*p, 0)) {
        if (i + 1 < n)
            name[i++] = *p;
        p++;
    }
    name[i] = '\0';
    if (*p == '{') {
        p++;
        while (*p != '}') {
            if (!is_name_char(*p, 1))
                fail_msg("bad label name in: %s", line);
            while (is_name_char(*p, 0))
                p++;
            if (p[0] != '=' || p[1] != '"')
                fail_msg("bad label in: %s", line);
            p += 2;
            while (*p != '"') {
                if (*p == '\0' || *p == '\n')
                    fail_msg("unterminated label value in: %s", line);
                if (*p == '\\') {
                    if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                        fail_msg("bad escape in: %s", line);
                    p++;
                }
                p++;
            }
            p++;
            if (*p == ',')
                p++;
            else if (*p != '}')
                fail_msg("bad label list in: %s", line);
        }
        p++;
    }
    if (*p != ' ')
        fail_msg("no space before the value in: %s", line);
    p++;
    if (strcmp(p, "NaN") == 0 || strcmp(p, "+Inf") == 0 || strcmp(p, "-Inf") == 0)
        return;
    strtod(p, &end);
    if (end == p || *end != '\0')
        fail_msg("bad value in: %s", line);
}

/* The value of the sample whose text before the value is exactly prefix. */
static double prom_value(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);

    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    fail_msg("no sample %s", prefix);
    return 0;
}

static void test_stats_prometheus(void **state)
{
    stats_fixture_t f;
    fake_server_t *fs = server();
    char *out, *err, *copy;
    char typed[64][128];
    int ntyped = 0, lines = 0;
    char current[128] = "";

    stats_build(&f, "we\"ird\\name");
    fake_set_response(fs, DCB__CONTROL_COMMAND__CC_STATS, &f.resp);
    assert_int_equal(
        capture_run(&out, &err, "--control", fake_endpoint(fs), "stats", "--prometheus", NULL), 0);
    assert_string_equal(err, "");
    assert_true(strlen(out) > 0 && out[strlen(out) - 1] == '\n');

    /*
     * Every line is a HELP, a TYPE or a sample; each family's TYPE comes
     * once, before its samples, and its samples are contiguous.
     */
    copy = strdup(out);
    assert_non_null(copy);
    for (char *line = copy, *next; line != NULL && *line != '\0'; line = next) {
        char name[128], base[128];
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        lines++;
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char type[32];
            assert_int_equal(sscanf(line + 7, "%127s %31s", name, type), 2);
            assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                        strcmp(type, "summary") == 0);
            for (int i = 0; i < ntyped; i++)
                if (strcmp(typed[i], name) == 0)
                    fail_msg("TYPE %s twice", name);
            assert_true(ntyped < 64);
            snprintf(typed[ntyped++], sizeof(typed[0]), "%s", name);
            snprintf(current, sizeof(current), "%s", name);
            continue;
        }
        assert_true(line[0] != '#');
        check_sample(line, name, sizeof(name));
        /* A summary's _sum and _count belong to its family. */
        snprintf(base, sizeof(base), "%s", name);
        if (strcmp(base, current) != 0) {
            size_t bl = strlen(base);
            if (bl > 4 && strcmp(base + bl - 4, "_sum") == 0)
                base[bl - 4] = '\0';
            else if (bl > 6 && strcmp(base + bl - 6, "_count") == 0)
                base[bl - 6] = '\0';
        }
        if (strcmp(base, current) != 0)
            fail_msg("sample %s outside its family (current family %s)", name, current);
    }
    free(copy);
    assert_true(lines > 40);
    /* Counters end in _total. */
    assert_non_null(strstr(out, "# TYPE dcb_hook_calls_total counter\n"));
    assert_non_null(strstr(out, "# TYPE dcb_hook_latency_seconds summary\n"));

    assert_int_equal(prom_value(out, "dcb_broker_uptime_seconds"), 7380);
    assert_int_equal(prom_value(out, "dcb_hook_calls_total{hook=\"NewPkt\",plugin=\"macfilter\"}"),
                     1000);
    assert_int_equal(prom_value(out,
                                "dcb_hook_decisions_total{hook=\"NewPkt\",plugin=\"macfilter\","
                                "decision=\"drop\"}"),
                     10);
    assert_int_equal(prom_value(out,
                                "dcb_hook_decisions_total{hook=\"PktSend\",plugin=\"optinject\","
                                "decision=\"modified\"}"),
                     500);
    assert_int_equal(prom_value(out, "dcb_hook_defaults_total{hook=\"NewPkt\",plugin=\"macfilter\","
                                     "reason=\"timeout\"}"),
                     3);
    assert_int_equal(prom_value(out, "dcb_hook_defaults_total{hook=\"NewPkt\",plugin=\"macfilter\","
                                     "reason=\"crash\"}"),
                     1);
    assert_int_equal(prom_value(out, "dcb_hook_defaults_total{hook=\"NewPkt\",plugin=\"macfilter\","
                                     "reason=\"breaker\"}"),
                     0);
    assert_near(prom_value(out, "dcb_hook_latency_seconds{hook=\"NewPkt\",plugin=\"macfilter\","
                                "quantile=\"0.5\"}") *
                    1e9,
                20000);
    assert_near(prom_value(out, "dcb_hook_latency_seconds{hook=\"NewPkt\",plugin=\"macfilter\","
                                "quantile=\"0.99\"}") *
                    1e9,
                2000000);
    assert_near(prom_value(out, "dcb_hook_latency_seconds{hook=\"NewPkt\",plugin=\"macfilter\","
                                "quantile=\"0.999\"}") *
                    1e9,
                40000123);
    assert_int_equal(
        prom_value(out, "dcb_hook_latency_seconds_count{hook=\"NewPkt\",plugin=\"macfilter\"}"),
        1000);
    assert_near(
        prom_value(out, "dcb_hook_latency_seconds_sum{hook=\"NewPkt\",plugin=\"macfilter\"}") * 1e9,
        500 * 8000.0 + 400 * 20000.0 + 90 * 150000.0 + 9 * 2000000.0 + 40000123.0);
    assert_near(
        prom_value(out, "dcb_hook_latency_max_seconds{hook=\"NewPkt\",plugin=\"macfilter\"}") * 1e9,
        40000123);
    /* An empty summary: NaN quantiles, zero count. */
    assert_non_null(strstr(out, "dcb_hook_latency_seconds{hook=\"PktSend\",plugin=\"optinject\","
                                "quantile=\"0.5\"} NaN\n"));
    assert_int_equal(
        prom_value(out, "dcb_hook_latency_seconds_count{hook=\"PktSend\",plugin=\"optinject\"}"),
        0);
    /* The odd plugin name, escaped. */
    assert_int_equal(
        prom_value(out, "dcb_hook_calls_total{hook=\"NewPkt\",plugin=\"we\\\"ird\\\\name\"}"), 7);

    assert_int_equal(prom_value(out, "dcb_shim_calls_total{hook=\"NewPkt\"}"), 1000);
    assert_int_equal(
        prom_value(out, "dcb_shim_defaults_total{hook=\"NewPkt\",reason=\"no_broker\"}"), 5);
    assert_int_equal(prom_value(out, "dcb_shim_defaults_total{hook=\"NewPkt\",reason=\"timeout\"}"),
                     2);
    assert_int_equal(prom_value(out, "dcb_shim_queue_full_total{hook=\"PktDrop\"}"), 7);
    assert_int_equal(prom_value(out, "dcb_shim_unsubscribed_total{hook=\"PktDrop\"}"), 2000);
    assert_near(prom_value(out, "dcb_shim_wait_seconds{hook=\"NewPkt\",quantile=\"0.9\"}") * 1e9,
                50000);
    free2(out, err);
    fake_stop(fs);
    stats_free(&f);
}

static void test_top(void **state)
{
    stats_fixture_t f;
    fake_server_t *fs = server();
    fake_req_t reqs[8];
    char *out, *err;
    int screens = 0;

    stats_build(&f, "vendorB");
    fake_set_response(fs, DCB__CONTROL_COMMAND__CC_STATS, &f.resp);
    assert_int_equal(capture_run(&out, &err, "--control", fake_endpoint(fs), "top", "--iterations",
                                 "3", "--interval", "50ms", NULL),
                     0);
    for (const char *p = out; (p = strstr(p, "\033[H\033[2J")) != NULL; p++)
        screens++;
    assert_int_equal(screens, 3);
    assert_non_null(strstr(out, "dcbctl top: "));
    /* From the second screen on there is a rate. */
    assert_non_null(strstr(out, "CALLS/S"));
    assert_int_equal(fake_requests(fs, reqs, 8), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(reqs[i].fr_command, DCB__CONTROL_COMMAND__CC_STATS);
    /* Every refresh went over the one connection. */
    assert_int_equal(fake_connections(fs), 1);
    free2(out, err);

    /* A broker that goes away: top says so on screen and keeps trying. */
    fake_set_mode(fs, FAKE_CLOSE, 0);
    assert_int_equal(capture_run(&out, &err, "--control", fake_endpoint(fs), "top", "--iterations",
                                 "2", "--interval", "10ms", NULL),
                     CTL_EXIT_PROTOCOL);
    assert_non_null(strstr(out, "(retrying)"));
    free2(out, err);
    fake_stop(fs);
    stats_free(&f);
}

/* ---- exit codes --------------------------------------------------------- */

static void test_exit_no_broker(void **state)
{
    char name[256], *out, *err;

    fnet_unused_name(name, sizeof(name));
    assert_int_equal(capture_run(&out, &err, "--control", name, "status", NULL),
                     CTL_EXIT_NO_BROKER);
    assert_non_null(strstr(err, "dcbctl: broker not running ("));
    assert_string_equal(out, "");
    free2(out, err);
    assert_int_equal(capture_run(&out, &err, "--control", name, "reload", "macfilter", NULL),
                     CTL_EXIT_NO_BROKER);
    free2(out, err);

    if (fnet_stale_open(name, sizeof(name)) == 0) {
        /* A socket file nobody listens on (a broker that died): refused. */
        assert_int_equal(capture_run(&out, &err, "--control", name, "status", NULL),
                         CTL_EXIT_NO_BROKER);
        assert_non_null(strstr(err, "broker not running"));
        free2(out, err);
        fnet_stale_close(name);
    } else {
        printf("NOTE: named pipes leave no stale endpoint behind; the 'connection refused' "
               "case exists on Linux only\n");
    }
}

typedef struct denied_run {
    const char *name;
} denied_run_t;

static int run_denied(void *arg)
{
    denied_run_t *d = arg;
    char *out, *err;
    int rc = capture_run(&out, &err, "--control", d->name, "--timeout", "500ms", "status", NULL);

    if (rc == CTL_EXIT_ACCESS && strstr(err, "access denied") == NULL)
        rc = 100;
    free2(out, err);
    return rc;
}

static void test_exit_access_denied(void **state)
{
    denied_run_t d;
    char name[256];
    void *h;
    int rc;

    assert_int_equal(ctl_exit_for(CTL_E_ACCESS), CTL_EXIT_ACCESS);
    if (fnet_denied_open(name, sizeof(name), &h) != 0) {
        printf("NOTE: cannot make an endpoint that refuses us here: exit 3 checked through the "
               "error mapping only\n");
        return;
    }
    d.name = name;
    rc = fnet_run_unprivileged(run_denied, &d);
    fnet_denied_close(h, name);
    if (rc == -1) {
        printf("NOTE: cannot run as an unprivileged user here: exit 3 checked through the error "
               "mapping only\n");
        return;
    }
    if (rc != CTL_EXIT_ACCESS && fnet_is_wine()) {
        /* Wine does not check a pipe's DACL when a client opens it. */
        printf("NOTE (Wine): the pipe's DACL was not enforced (dcbctl exit %d): exit 3 checked "
               "through the error mapping only; Windows refuses with ERROR_ACCESS_DENIED\n",
               rc);
        return;
    }
    assert_int_equal(rc, CTL_EXIT_ACCESS);
}

static void test_exit_unknown_plugin_and_refusals(void **state)
{
    static const struct {
        Dcb__ControlStatus status;
        const char *error;
        int exit_code;
        const char *says;
    } cases[] = {
        {DCB__CONTROL_STATUS__CS_UNKNOWN_PLUGIN, "no [plugin nope] in dcb.ini", 4,
         "dcbctl: unknown plugin 'nope': no [plugin nope] in dcb.ini\n"},
        {DCB__CONTROL_STATUS__CS_UNKNOWN_PLUGIN, NULL, 4, "dcbctl: unknown plugin 'nope'\n"},
        {DCB__CONTROL_STATUS__CS_BUSY, "a reload of nope is in progress", 5,
         "dcbctl: the broker refused: busy: a reload of nope is in progress\n"},
        {DCB__CONTROL_STATUS__CS_FAILED, "nope.dll: entry point returned 87", 5,
         "dcbctl: the broker refused: failed: nope.dll: entry point returned 87\n"},
        {DCB__CONTROL_STATUS__CS_BAD_REQUEST, NULL, 5, "dcbctl: the broker refused: bad request\n"},
    };
    static const int commands[] = {DCB__CONTROL_COMMAND__CC_RELOAD, DCB__CONTROL_COMMAND__CC_ENABLE,
                                   DCB__CONTROL_COMMAND__CC_DISABLE,
                                   DCB__CONTROL_COMMAND__CC_SET_TIMEOUT};
    static const char *const args[][6] = {{"reload", "nope"},
                                          {"enable", "nope"},
                                          {"disable", "nope"},
                                          {"set", "nope", "timeout", "10"}};
    fake_server_t *fs = server();
    char *out, *err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Dcb__ControlResponse r = DCB__CONTROL_RESPONSE__INIT;
        r.status = cases[i].status;
        r.error = (char *)cases[i].error;
        for (int c = 0; c < 4; c++) {
            const char *argv[8] = {"--control", fake_endpoint(fs)};
            int argc = 2;
            for (int k = 0; k < 6 && args[c][k] != NULL; k++)
                argv[argc++] = args[c][k];
            fake_set_response(fs, commands[c], &r);
            assert_int_equal(capture_runv(&out, &err, argc, argv), cases[i].exit_code);
            assert_string_equal(err, cases[i].says);
            assert_string_equal(out, "");
            free2(out, err);
        }
    }
    /* status and stats report a refusal the same way. */
    {
        Dcb__ControlResponse r = DCB__CONTROL_RESPONSE__INIT;
        r.status = DCB__CONTROL_STATUS__CS_FAILED;
        r.error = "shutting down";
        fake_set_response(fs, DCB__CONTROL_COMMAND__CC_STATS, &r);
        assert_int_equal(capture_run(&out, &err, "--control", fake_endpoint(fs), "stats", NULL),
                         CTL_EXIT_BROKER_FAILED);
        assert_string_equal(err, "dcbctl: the broker refused: failed: shutting down\n");
        free2(out, err);
    }
    fake_stop(fs);
}

static void test_exit_protocol_errors(void **state)
{
    static const struct {
        fake_mode_t mode;
        const char *says;
    } cases[] = {
        {FAKE_GARBAGE, "bad answer: not a dcb frame (bad magic)"},
        {FAKE_TOOBIG, "bad answer: frame larger than allowed"},
        {FAKE_WRONG_TYPE, "bad answer: frame type 34 where a control response (41) belongs"},
        {FAKE_CLOSE, "the broker closed the connection without an answer"},
        {FAKE_TRUNCATED, "the broker closed the connection without an answer"},
        {FAKE_BAD_PAYLOAD, "bad answer: malformed message"},
    };
    fake_server_t *fs = server();
    char *out, *err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_set_mode(fs, cases[i].mode, 0);
        assert_int_equal(capture_run(&out, &err, "--control", fake_endpoint(fs), "status", NULL),
                         CTL_EXIT_PROTOCOL);
        if (strstr(err, cases[i].says) == NULL)
            fail_msg("mode %d: stderr lacks '%s': %s", (int)cases[i].mode, cases[i].says, err);
        assert_string_equal(out, "");
        free2(out, err);
    }

    /* A well-formed CS_OK that lacks the report asked for. */
    fake_set_mode(fs, FAKE_NORMAL, 0);
    assert_int_equal(capture_run(&out, &err, "--control", fake_endpoint(fs), "status", NULL),
                     CTL_EXIT_PROTOCOL);
    assert_string_equal(err, "dcbctl: bad answer: no status report in the broker's response\n");
    free2(out, err);
    assert_int_equal(
        capture_run(&out, &err, "--control", fake_endpoint(fs), "stats", "--json", NULL),
        CTL_EXIT_PROTOCOL);
    assert_string_equal(err, "dcbctl: bad answer: no statistics in the broker's response\n");
    free2(out, err);
    fake_stop(fs);
}

static void test_exit_timeout(void **state)
{
    stats_fixture_t f;
    fake_server_t *fs = server();
    char *out, *err;
    uint64_t t0, ms;

    stats_build(&f, "vendorB");
    fake_set_response(fs, DCB__CONTROL_COMMAND__CC_STATS, &f.resp);
    fake_set_mode(fs, FAKE_SLOW, 1500);
    t0 = dcb_now_ns();
    assert_int_equal(capture_run(&out, &err, "--control", fake_endpoint(fs), "--timeout", "300ms",
                                 "stats", NULL),
                     CTL_EXIT_PROTOCOL);
    ms = (dcb_now_ns() - t0) / 1000000u;
    printf("timed out after %llu ms (limit 300 ms)\n", (unsigned long long)ms);
    assert_true(ms >= 290 && ms < 1400);
    assert_non_null(strstr(err, ": no answer in time"));
    free2(out, err);

    /* The same slow broker within a longer timeout: the answer arrives. */
    fake_set_mode(fs, FAKE_SLOW, 200);
    assert_int_equal(
        capture_run(&out, &err, "--control", fake_endpoint(fs), "--timeout", "3", "stats", NULL),
        0);
    assert_non_null(strstr(out, "macfilter"));
    free2(out, err);
    fake_stop(fs);
    stats_free(&f);
}

static void test_install_elsewhere(void **state)
{
#ifdef _WIN32
    skip(); /* test-dcbctl-install covers Windows */
#else
    char *out, *err;

    assert_int_equal(capture_run(&out, &err, "install", NULL), CTL_EXIT_USAGE);
    assert_non_null(strstr(err, "dcbctl: install is Windows-only"));
    free2(out, err);
    assert_int_equal(capture_run(&out, &err, "install", "--shim", "/x/dcbshim.so", NULL),
                     CTL_EXIT_USAGE);
    assert_non_null(strstr(err, "Windows-only"));
    free2(out, err);
    assert_int_equal(capture_run(&out, &err, "uninstall", NULL), CTL_EXIT_USAGE);
    assert_non_null(strstr(err, "dcbctl: uninstall is Windows-only"));
    free2(out, err);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_hook_names),
        cmocka_unit_test(test_duration_format),
        cmocka_unit_test(test_request_encoding),
        cmocka_unit_test(test_endpoint_from_environment),
        cmocka_unit_test(test_status_text),
        cmocka_unit_test(test_status_json),
        cmocka_unit_test(test_stats_text),
        cmocka_unit_test(test_stats_json),
        cmocka_unit_test(test_stats_prometheus),
        cmocka_unit_test(test_top),
        cmocka_unit_test(test_exit_no_broker),
        cmocka_unit_test(test_exit_access_denied),
        cmocka_unit_test(test_exit_unknown_plugin_and_refusals),
        cmocka_unit_test(test_exit_protocol_errors),
        cmocka_unit_test(test_exit_timeout),
        cmocka_unit_test(test_install_elsewhere),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
