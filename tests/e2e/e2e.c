/*
 * e2e.c — see e2e.h. Children are started with libuv (uv_spawn), so the same
 * code runs natively and, as a Windows program, under Wine.
 */
#include "e2e.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef DCB_EXE_SUFFIX
#define DCB_EXE_SUFFIX ""
#endif
#ifndef DCB_MODULE_SUFFIX
#define DCB_MODULE_SUFFIX ".so"
#endif

#define BROKER_START_MS 30000
#define BROKER_STOP_MS 15000

/* ---- small things ----------------------------------------------------------- */

uint64_t e2e_now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

void e2e_sleep_ms(unsigned ms)
{
    uv_sleep(ms);
}

const char *e2e_native(const char *path)
{
    static char bufs[8][2048];
    static unsigned next;
    char *b = bufs[next++ % 8];

#ifdef _WIN32
    /* Under Wine the Unix file system is drive Z:. */
    snprintf(b, 2048, "%s%.2000s", path[0] == '/' ? "Z:" : "", path);
    for (char *c = b; *c != '\0'; c++)
        if (*c == '/')
            *c = '\\';
#else
    snprintf(b, 2048, "%.2000s", path);
#endif
    return b;
}

#if defined(__GNUC__)
__attribute__((format(printf, 1, 0)))
#endif
static char *
vfmt(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *s = malloc((size_t)n + 1);
    if (s != NULL)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

char *e2e_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vfmt(fmt, ap);
    va_end(ap);
    return s;
}

/* What a test holds until its teardown (e2e_keep_free). */
enum { KEEP_STR, KEEP_JSON, KEEP_PLUGINS, KEEP_PROC, KEEP_BROKER };

static struct {
    int k_kind;
    void *k_ptr;
} kept[256];
static size_t n_kept;

static void *keep(int kind, void *ptr)
{
    if (ptr != NULL && n_kept < sizeof(kept) / sizeof(kept[0])) {
        kept[n_kept].k_kind = kind;
        kept[n_kept++].k_ptr = ptr;
    }
    return ptr;
}

static void unkeep(void *ptr)
{
    for (size_t i = 0; i < n_kept; i++)
        if (kept[i].k_ptr == ptr)
            kept[i].k_ptr = NULL;
}

const char *e2e_keep(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vfmt(fmt, ap);
    va_end(ap);
    return keep(KEEP_STR, s);
}

static void broker_free(e2e_broker_t *b);
static void plugins_free(e2e_plugins_t *pl);

void e2e_keep_free(void)
{
    /* Processes first (newest first), then what they used. */
    for (size_t i = n_kept; i-- > 0;) {
        void *p = kept[i].k_ptr;
        if (p == NULL)
            continue;
        if (kept[i].k_kind == KEEP_PROC) {
            e2e_release(p);
            free(p);
            kept[i].k_ptr = NULL;
        } else if (kept[i].k_kind == KEEP_BROKER) {
            broker_free(p);
            kept[i].k_ptr = NULL;
        }
    }
    for (size_t i = 0; i < n_kept; i++) {
        void *p = kept[i].k_ptr;
        if (p == NULL)
            continue;
        if (kept[i].k_kind == KEEP_STR)
            free(p);
        else if (kept[i].k_kind == KEEP_JSON)
            cJSON_Delete(p);
        else if (kept[i].k_kind == KEEP_PLUGINS)
            plugins_free(p);
    }
    n_kept = 0;
}

void e2e_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vfmt(fmt, ap);
    va_end(ap);
    printf("e2e: %s\n", s != NULL ? s : "?");
    fflush(stdout);
    free(s);
}

int e2e_count(const char *text, const char *needle)
{
    int n = 0;
    size_t len = strlen(needle);
    for (const char *p = text; p != NULL && (p = strstr(p, needle)) != NULL; p += len)
        n++;
    return n;
}

int e2e_count_lines(const char *text, const char *a, const char *b)
{
    int n = 0;
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n');
        size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
        char *copy = malloc(len + 1);
        memcpy(copy, line, len);
        copy[len] = '\0';
        n += strstr(copy, a) != NULL && (b == NULL || strstr(copy, b) != NULL);
        free(copy);
        line = nl != NULL ? nl + 1 : NULL;
    }
    return n;
}

int e2e_copy_file(const char *from, const char *to)
{
    size_t len;
    char *data = st_read_file(from, &len);
    if (data == NULL)
        return -1;
    int rc = st_write_file(to, data, len);
    free(data);
    return rc;
}

void e2e_list_add(e2e_list_t *l, const char *s)
{
    if (l->l_n + 2 > l->l_cap) {
        l->l_cap = l->l_cap ? l->l_cap * 2 : 16;
        l->l_items = realloc(l->l_items, l->l_cap * sizeof(char *));
    }
    size_t n = strlen(s) + 1;
    l->l_items[l->l_n] = malloc(n);
    memcpy(l->l_items[l->l_n++], s, n);
    l->l_items[l->l_n] = NULL;
}

void e2e_list_addf(e2e_list_t *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vfmt(fmt, ap);
    va_end(ap);
    e2e_list_add(l, s);
    free(s);
}

const char *const *e2e_list_argv(e2e_list_t *l)
{
    if (l->l_items == NULL) {
        l->l_cap = 16;
        l->l_items = calloc(l->l_cap, sizeof(char *));
    }
    return (const char *const *)l->l_items;
}

void e2e_list_free(e2e_list_t *l)
{
    for (size_t i = 0; i < l->l_n; i++)
        free(l->l_items[i]);
    free(l->l_items);
    memset(l, 0, sizeof(*l));
}

/* ---- child processes ------------------------------------------------------- */

static void on_exit_cb(uv_process_t *proc, int64_t status, int sig)
{
    e2e_proc_t *p = proc->data;
    p->p_exited = 1;
    p->p_status = status;
    p->p_signal = sig;
}

int e2e_spawn(e2e_proc_t *p, const char *exe, const char *const *args, const char *const *env,
              const char *out_path, const char *err_path)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->p_out, sizeof(p->p_out), "%s", out_path);
    snprintf(p->p_err, sizeof(p->p_err), "%s", err_path);
    size_t na = 0;
    while (args != NULL && args[na] != NULL)
        na++;
    char **argv = calloc(na + 2, sizeof(char *));
    argv[0] = (char *)(uintptr_t)exe;
    for (size_t i = 0; i < na; i++)
        argv[i + 1] = (char *)(uintptr_t)args[i];
    char **envp = st_make_env(env);
    int ofd = st_open_out(out_path), efd = st_open_out(err_path);
    uv_stdio_container_t stdio[3];
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = ofd;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = efd;
    uv_process_options_t opt;
    memset(&opt, 0, sizeof(opt));
    opt.file = exe;
    opt.args = argv;
    opt.env = envp;
    opt.stdio = stdio;
    opt.stdio_count = 3;
    opt.exit_cb = on_exit_cb;
    opt.flags = UV_PROCESS_WINDOWS_HIDE;
    uv_loop_init(&p->p_loop);
    p->p_proc.data = p;
    int rc = ofd < 0 || efd < 0 ? UV_EIO : uv_spawn(&p->p_loop, &p->p_proc, &opt);
    st_close_fd(ofd);
    st_close_fd(efd);
    st_free_env(envp);
    free(argv);
    if (rc != 0) {
        fprintf(stderr, "e2e: cannot start %s: %s\n", exe, uv_strerror(rc));
        uv_loop_close(&p->p_loop);
        return -1;
    }
    p->p_started = 1;
    p->p_pid = p->p_proc.pid;
    return 0;
}

int e2e_exited(e2e_proc_t *p)
{
    if (p->p_started && !p->p_exited)
        uv_run(&p->p_loop, UV_RUN_NOWAIT);
    return !p->p_started || p->p_exited;
}

int e2e_wait(e2e_proc_t *p, int timeout_ms)
{
    uint64_t end = e2e_now_ms() + (uint64_t)timeout_ms;
    while (!e2e_exited(p)) {
        if (e2e_now_ms() >= end)
            return 0;
        e2e_sleep_ms(5);
    }
    return 1;
}

void e2e_signal(e2e_proc_t *p, int signum)
{
    if (p->p_started && !p->p_exited)
        uv_process_kill(&p->p_proc, signum);
}

void e2e_release(e2e_proc_t *p)
{
    if (!p->p_started)
        return;
    if (!e2e_exited(p)) {
        e2e_signal(p, SIGKILL);
        e2e_wait(p, 10000);
    }
    uv_close((uv_handle_t *)&p->p_proc, NULL);
    uv_run(&p->p_loop, UV_RUN_DEFAULT);
    uv_loop_close(&p->p_loop);
    p->p_started = 0;
}

/* ---- the broker ----------------------------------------------------------------- */

/* "…/bin/macfilter.so" -> "macfilter": the broker's plugin name. */
static void plugin_name(const char *path, char *out, size_t cap)
{
    const char *base = path;
    for (const char *c = path; *c != '\0'; c++)
        if (*c == '/' || *c == '\\')
            base = c + 1;
    const char *dot = strrchr(base, '.');
    size_t n = dot != NULL ? (size_t)(dot - base) : strlen(base);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, base, n);
    out[n] = '\0';
}

static int broker_spawn(e2e_broker_t *b, const char *const *chain, const char *const *env)
{
    char out[1100], exe[1024];
    b->b_gen++;
    snprintf(b->b_log, sizeof(b->b_log), "%.1100s/broker-%d.log", b->b_dir, b->b_gen);
    snprintf(out, sizeof(out), "%s/broker-%d.out", b->b_dir, b->b_gen);
    snprintf(exe, sizeof(exe), "%s", st_exe("dcb-broker"));
    if (e2e_spawn(&b->b_proc, exe, ST_ARGS("--config", e2e_native(b->b_cfg)), env, out, b->b_log) !=
        0)
        return -1;
    /* Ready: listening, and every plugin of the chain loaded in its host. */
    uint64_t end = e2e_now_ms() + BROKER_START_MS;
    for (;;) {
        char *log = st_read_file(b->b_log, NULL);
        int ready = log != NULL && strstr(log, "listening on") != NULL;
        for (size_t i = 0; ready && chain != NULL && chain[i] != NULL; i++) {
            char name[256], needle[300];
            plugin_name(chain[i], name, sizeof(name));
            snprintf(needle, sizeof(needle), "plugin %s ready", name);
            ready = strstr(log, needle) != NULL;
        }
        free(log);
        if (ready)
            return 0;
        if (e2e_exited(&b->b_proc) || e2e_now_ms() >= end) {
            fprintf(stderr, "e2e: the broker did not get ready (%s)\n",
                    b->b_proc.p_exited ? "it exited" : "timed out");
            e2e_broker_dump_log(b);
            return -1;
        }
        e2e_sleep_ms(10);
    }
}

e2e_broker_t *e2e_broker_start(const char *dir, const char *const *chain, const char *extra_ini,
                               const char *const *env)
{
    static int counter;
    e2e_broker_t *b = keep(KEEP_BROKER, calloc(1, sizeof(*b)));
    snprintf(b->b_dir, sizeof(b->b_dir), "%s", dir);
    counter++;
#ifdef _WIN32
    snprintf(b->b_pipe, sizeof(b->b_pipe), "\\\\.\\pipe\\dcb-e2e-%d-%d", (int)uv_os_getpid(),
             counter);
    snprintf(b->b_ctl, sizeof(b->b_ctl), "\\\\.\\pipe\\dcb-e2e-%d-%d-ctl", (int)uv_os_getpid(),
             counter);
#else
    /*
     * A short path (a socket's name is limited to 107 bytes), in a folder
     * only we may enter: the broker refuses a socket directory others can.
     */
    uv_fs_t req;
    snprintf(b->b_sockdir, sizeof(b->b_sockdir), "/tmp/dcb-e2e-%d-%d", (int)uv_os_getpid(),
             counter);
    uv_fs_mkdir(NULL, &req, b->b_sockdir, 0700, NULL);
    uv_fs_req_cleanup(&req);
    uv_fs_chmod(NULL, &req, b->b_sockdir, 0700, NULL);
    uv_fs_req_cleanup(&req);
    snprintf(b->b_pipe, sizeof(b->b_pipe), "%s/broker.sock", b->b_sockdir);
    snprintf(b->b_ctl, sizeof(b->b_ctl), "%s/control.sock", b->b_sockdir);
#endif
    snprintf(b->b_cfg, sizeof(b->b_cfg), "%.1100s/broker.ini", dir);
    FILE *f = fopen(b->b_cfg, "wb");
    if (f == NULL)
        return NULL;
    fprintf(f, "; written by the end-to-end test\n[broker]\npipe = %s\ncontrol_pipe = %s\n",
            b->b_pipe, b->b_ctl);
    fprintf(f, "chain = ");
    for (size_t i = 0; chain != NULL && chain[i] != NULL; i++)
        fprintf(f, "%s%s", i ? ", " : "", chain[i]);
    fprintf(f, "\n%s\n", extra_ini != NULL ? extra_ini : "");
    fclose(f);
    return broker_spawn(b, chain, env) == 0 ? b : NULL;
}

int e2e_broker_restart(e2e_broker_t *b, const char *const *chain, const char *const *env)
{
    e2e_release(&b->b_proc);
    return broker_spawn(b, chain, env);
}

int e2e_broker_running(e2e_broker_t *b)
{
    return b->b_proc.p_started && !e2e_exited(&b->b_proc);
}

int e2e_broker_stop(e2e_broker_t *b)
{
    int status = -1;
    if (!b->b_proc.p_started)
        return -1;
    if (!e2e_exited(&b->b_proc)) {
        e2e_signal(&b->b_proc, SIGTERM);
        if (!e2e_wait(&b->b_proc, BROKER_STOP_MS)) {
            fprintf(stderr, "e2e: the broker did not stop within %d ms; killing it\n",
                    BROKER_STOP_MS);
            e2e_signal(&b->b_proc, SIGKILL);
            e2e_wait(&b->b_proc, 5000);
        } else {
            status = b->b_proc.p_signal != 0 ? 128 + b->b_proc.p_signal : (int)b->b_proc.p_status;
#ifdef _WIN32
            /*
             * There is no SIGTERM to catch on Windows: libuv ends the
             * process with TerminateProcess, and the job object takes its
             * hosts with it. What can be checked is that it was still
             * running until then.
             */
            if (b->b_proc.p_signal == SIGTERM)
                status = 0;
#endif
        }
    }
    e2e_release(&b->b_proc);
    free(b->b_final_log);
    b->b_final_log = e2e_broker_log(b);
    return status;
}

void e2e_broker_kill(e2e_broker_t *b)
{
    e2e_signal(&b->b_proc, SIGKILL);
    e2e_wait(&b->b_proc, 10000);
}

char *e2e_broker_log(e2e_broker_t *b)
{
    /* Every broker of the test, in order: host pids and restarts span them. */
    size_t cap = 1, len = 0;
    char *all = calloc(1, 1);
    for (int g = 1; g <= b->b_gen; g++) {
        char path[1100];
        size_t n;
        snprintf(path, sizeof(path), "%s/broker-%d.log", b->b_dir, g);
        char *one = st_read_file(path, &n);
        if (one == NULL)
            continue;
        cap = len + n + 1;
        char *grown = realloc(all, cap);
        if (grown == NULL) {
            free(one);
            break;
        }
        all = grown;
        memcpy(all + len, one, n + 1);
        len += n;
        free(one);
    }
    return all;
}

int e2e_broker_wait_log(e2e_broker_t *b, const char *needle, int n, int timeout_ms)
{
    uint64_t end = e2e_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        char *log = e2e_broker_log(b);
        int have = e2e_count(log, needle);
        free(log);
        if (have >= n)
            return 1;
        if (e2e_now_ms() >= end)
            return 0;
        e2e_sleep_ms(10);
    }
}

int e2e_broker_host_pids(e2e_broker_t *b, const char *plugin, int *pids, int max)
{
    char needle[300];
    int n = 0;
    char *log = e2e_broker_log(b);
    snprintf(needle, sizeof(needle), "plugin %s: host pid ", plugin);
    for (const char *p = log; n < max && (p = strstr(p, needle)) != NULL;) {
        p += strlen(needle);
        pids[n++] = atoi(p);
    }
    free(log);
    return n;
}

void e2e_broker_dump_log(e2e_broker_t *b)
{
    char *log = e2e_broker_log(b);
    size_t len = log != NULL ? strlen(log) : 0;
    /* The end says the most; keep the output readable. */
    const char *from = len > 12000 ? log + len - 12000 : log;
    fprintf(stderr, "---- broker log (%s, last %zu bytes) ----\n%s\n---- end ----\n", b->b_log,
            len > 12000 ? (size_t)12000 : len, from != NULL ? from : "");
    free(log);
}

static void broker_free(e2e_broker_t *b)
{
    e2e_release(&b->b_proc);
    if (b->b_sockdir[0] != '\0') {
        /* A killed broker leaves its sockets behind. */
        uv_fs_t req;
        uv_fs_unlink(NULL, &req, b->b_pipe, NULL);
        uv_fs_req_cleanup(&req);
        uv_fs_unlink(NULL, &req, b->b_ctl, NULL);
        uv_fs_req_cleanup(&req);
        uv_fs_rmdir(NULL, &req, b->b_sockdir, NULL);
        uv_fs_req_cleanup(&req);
    }
    cJSON_Delete(b->b_stats);
    free(b->b_final_log);
    free(b);
}

int e2e_broker_snapshot(e2e_broker_t *b)
{
    char exe[1024], out[1100], err[1100];
    e2e_proc_t p;
    snprintf(exe, sizeof(exe), "%s", st_exe("dcbctl"));
    if (!st_file_exists(exe)) {
        e2e_note("no dcbctl (%s): broker counters only from its log", exe);
        return -1;
    }
    snprintf(out, sizeof(out), "%s/dcbctl-stats.json", b->b_dir);
    snprintf(err, sizeof(err), "%s/dcbctl-stats.err", b->b_dir);
    if (e2e_spawn(&p, exe, ST_ARGS("--control", b->b_ctl, "--timeout", "5s", "stats", "--json"),
                  NULL, out, err) != 0)
        return -1;
    int done = e2e_wait(&p, 20000);
    int64_t status = p.p_status;
    e2e_release(&p);
    char *text = st_read_file(out, NULL);
    cJSON *j = done && status == 0 && text != NULL ? cJSON_Parse(text) : NULL;
    free(text);
    if (j == NULL) {
        char *why = st_read_file(err, NULL);
        e2e_note("dcbctl stats gave nothing (exit %lld): %s", (long long)status,
                 why != NULL ? why : "");
        free(why);
        return -1;
    }
    cJSON_Delete(b->b_stats);
    b->b_stats = j;
    return 0;
}

static double sum_children(const cJSON *o)
{
    double s = 0;
    const cJSON *c;
    if (!cJSON_IsObject(o))
        return -1;
    cJSON_ArrayForEach(c, o) if (cJSON_IsNumber(c)) s += c->valuedouble;
    return s;
}

/* A key of one entry: a dotted path, or "defaults" for the sum of that object. */
static double entry_value(const cJSON *e, const char *key)
{
    if (strcmp(key, "defaults") == 0)
        return sum_children(cJSON_GetObjectItemCaseSensitive(e, "defaults"));
    return st_jnum(e, key);
}

/* "stats NAME HOOK: calls 1 pass 2 drop 3 modified 4 late 5; latency ...; defaults x=1 y=2" */
static double log_counter(const char *log, const char *plugin, const char *hook, const char *key)
{
    char needle[300];
    snprintf(needle, sizeof(needle), "stats %s %s: ", plugin, hook);
    const char *line = log != NULL ? strstr(log, needle) : NULL;
    if (line == NULL)
        return -1;
    const char *eol = strchr(line, '\n');
    size_t n = eol != NULL ? (size_t)(eol - line) : strlen(line);
    char buf[1024];
    if (n >= sizeof(buf))
        n = sizeof(buf) - 1;
    memcpy(buf, line, n);
    buf[n] = '\0';
    const char *defs = strstr(buf, "; defaults");
    if (strncmp(key, "defaults", 8) == 0) {
        if (defs == NULL)
            return -1;
        double sum = 0;
        const char *want = key[8] == '.' ? key + 9 : NULL;
        for (const char *p = defs + 10; *p != '\0';) {
            while (*p == ' ')
                p++;
            const char *eq = strchr(p, '=');
            if (eq == NULL)
                break;
            double v = strtod(eq + 1, NULL);
            if (want == NULL || ((size_t)(eq - p) == strlen(want) && strncmp(p, want, eq - p) == 0))
                sum += v;
            p = strchr(eq, ' ');
            if (p == NULL)
                break;
        }
        return sum;
    }
    char k[64];
    snprintf(k, sizeof(k), " %s ", key);
    const char *at = strstr(buf, k);
    return at != NULL ? strtod(at + strlen(k), NULL) : -1;
}

double e2e_plugin_counter(e2e_broker_t *b, const char *plugin, const char *hook, const char *key)
{
    const cJSON *e;
    const cJSON *plugins =
        b->b_stats != NULL ? cJSON_GetObjectItemCaseSensitive(b->b_stats, "plugins") : NULL;
    if (plugins != NULL) {
        cJSON_ArrayForEach(e, plugins)
        {
            const char *p = st_jstr(e, "plugin"), *h = st_jstr(e, "hook");
            if (p != NULL && h != NULL && strcmp(p, plugin) == 0 && strcmp(h, hook) == 0)
                return entry_value(e, key);
        }
        /* The broker lists only what was used: an unused hook has zeros. */
        return 0;
    }
    if (b->b_final_log != NULL) {
        /* The summary has a line per plugin, then one per hook it used. */
        char head[300];
        snprintf(head, sizeof(head), "stats %s: state ", plugin);
        if (strstr(b->b_final_log, head) == NULL)
            return -1;
        double v = log_counter(b->b_final_log, plugin, hook, key);
        return v < 0 ? 0 : v;
    }
    return -1;
}

double e2e_shim_counter(e2e_broker_t *b, const char *hook, const char *key)
{
    const cJSON *e;
    const cJSON *shim =
        b->b_stats != NULL ? cJSON_GetObjectItemCaseSensitive(b->b_stats, "shim") : NULL;
    if (shim == NULL)
        return -1;
    cJSON_ArrayForEach(e, shim)
    {
        const char *h = st_jstr(e, "hook");
        if (h != NULL && strcmp(h, hook) == 0)
            return entry_value(e, key);
    }
    return -1;
}

/* ---- plugins and dcb-sim --------------------------------------------------------- */

const char *e2e_plugin(const char *name)
{
    return e2e_native(st_plugin(name));
}

const char *e2e_shim(void)
{
#ifdef _WIN32
    return e2e_native(st_plugin("dcbshim"));
#else
    return e2e_native(st_plugin("libdcbshim"));
#endif
}

static void write_text(const char *path, const char *text)
{
    st_write_file(path, text, strlen(text));
}

e2e_plugins_t *e2e_plugins_setup(const char *dir, const char *audit_name)
{
    char list[1100], text[2048];
    e2e_plugins_t *pl = keep(KEEP_PLUGINS, calloc(1, sizeof(*pl)));
    /* macfilter: every VMware and Raspberry Pi client is denied (~1 in 4 packets). */
    snprintf(list, sizeof(list), "%s/clients.list", dir);
    write_text(list, "# denied by the end-to-end test\n00:50:56:*\nb8-27-eb-*\n");
    snprintf(pl->pl_macfilter_ini, sizeof(pl->pl_macfilter_ini), "%s/macfilter.ini", dir);
    snprintf(text, sizeof(text), "[macfilter]\nmode = deny\nlist = %s\n", e2e_native(list));
    write_text(pl->pl_macfilter_ini, text);
    /*
     * optinject: phones get option 150 (small: edited in place when it fits),
     * Apple clients a long option 224 (a new buffer every time).
     */
    snprintf(pl->pl_optinject_ini, sizeof(pl->pl_optinject_ini), "%s/optinject.ini", dir);
    write_text(pl->pl_optinject_ini,
               "[rule phones]\nmac = 00:04:f2, 00-0b-82-*\noption = 150\nip = 10.0.0.5, 10.0.0.6\n"
               "\n[rule apple]\nmac = 3c:22:fb\noption = 224\nmessages = offer, ack\n"
               "text = dcb end-to-end test: a value long enough that the reply no longer fits "
               "the server's buffer as the server sized it, so optinject must replace it with "
               "a buffer of its own and free that at the packet's PROCESSED drop.\n");
    snprintf(pl->pl_audit_file, sizeof(pl->pl_audit_file), "%s/%s", dir,
             audit_name != NULL ? audit_name : "audit.jsonl");
    snprintf(pl->pl_auditlog_ini, sizeof(pl->pl_auditlog_ini), "%s/auditlog-%s.ini", dir,
             audit_name != NULL ? audit_name : "audit.jsonl");
    snprintf(text, sizeof(text), "[auditlog]\nfile = %s\nmax_size = 0\nhooks = all\n",
             e2e_native(pl->pl_audit_file));
    write_text(pl->pl_auditlog_ini, text);
    e2e_list_addf(&pl->pl_env, "DCB_MACFILTER_CONFIG=%s", e2e_native(pl->pl_macfilter_ini));
    e2e_list_addf(&pl->pl_env, "DCB_OPTINJECT_CONFIG=%s", e2e_native(pl->pl_optinject_ini));
    e2e_list_addf(&pl->pl_env, "DCB_AUDITLOG_CONFIG=%s", e2e_native(pl->pl_auditlog_ini));
    return pl;
}

static void plugins_free(e2e_plugins_t *pl)
{
    e2e_list_free(&pl->pl_env);
    free(pl);
}

e2e_proc_t *e2e_sim_start(const char *dir, const char *const *dlls, e2e_broker_t *broker,
                          unsigned deadline_ms, const char *const *extra, const char *const *env)
{
    e2e_proc_t *p = keep(KEEP_PROC, calloc(1, sizeof(*p)));
    static int seq;
    e2e_list_t args = {0}, envl = {0};
    char out[1100], err[1100], exe[1024];
    seq++;
    if (broker != NULL) {
        e2e_list_add(&args, "--dll");
        e2e_list_add(&args, e2e_shim());
        e2e_list_addf(&envl, "DCB_PIPE=%s", broker->b_pipe);
        e2e_list_addf(&envl, "DCB_NEWPKT_DEADLINE_MS=%u", deadline_ms);
        e2e_list_addf(&envl, "DCB_PKTSEND_DEADLINE_MS=%u", deadline_ms);
        e2e_list_addf(&envl, "DCB_SHIM_LOG=%s", e2e_native(st_path(dir, "shim.log")));
    }
    for (size_t i = 0; dlls != NULL && dlls[i] != NULL; i++) {
        e2e_list_add(&args, "--dll");
        e2e_list_add(&args, dlls[i]);
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        e2e_list_add(&args, extra[i]);
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        e2e_list_add(&envl, env[i]);
    snprintf(out, sizeof(out), "%s/sim-%d.out", dir, seq);
    snprintf(err, sizeof(err), "%s/sim-%d.err", dir, seq);
    snprintf(exe, sizeof(exe), "%s", st_exe("dcb-sim"));
    int rc = e2e_spawn(p, exe, e2e_list_argv(&args), e2e_list_argv(&envl), out, err);
    e2e_list_free(&args);
    e2e_list_free(&envl);
    return rc == 0 ? p : NULL;
}

int e2e_sim_finish(e2e_proc_t *p, int timeout_ms, st_result_t *r, cJSON **json)
{
    memset(r, 0, sizeof(*r));
    if (!e2e_wait(p, timeout_ms)) {
        r->r_timed_out = 1;
        e2e_signal(p, SIGKILL);
        e2e_wait(p, 10000);
    }
    r->r_exit = p->p_status;
    r->r_signal = p->p_signal;
    e2e_release(p);
    r->r_out = st_read_file(p->p_out, NULL);
    r->r_err = st_read_file(p->p_err, NULL);
    unkeep(p);
    free(p);
    if (r->r_out == NULL)
        r->r_out = calloc(1, 1);
    if (r->r_err == NULL)
        r->r_err = calloc(1, 1);
    if (r->r_exit != 0 || r->r_signal != 0 || r->r_timed_out)
        fprintf(stderr, "e2e: dcb-sim exit %lld signal %d%s; stderr (end):\n%s\n",
                (long long)r->r_exit, r->r_signal, r->r_timed_out ? " (timed out)" : "",
                strlen(r->r_err) > 4000 ? r->r_err + strlen(r->r_err) - 4000 : r->r_err);
    if (json != NULL)
        *json = keep(KEEP_JSON, st_json(r));
    return 0;
}

int e2e_sim_run(const char *dir, const char *const *dlls, e2e_broker_t *broker,
                unsigned deadline_ms, const char *const *extra, const char *const *env,
                int timeout_ms, st_result_t *r, cJSON **json)
{
    e2e_proc_t *p = e2e_sim_start(dir, dlls, broker, deadline_ms, extra, env);
    if (p == NULL)
        return -1;
    return e2e_sim_finish(p, timeout_ms, r, json);
}

double e2e_sim_calls_over(const cJSON *json, const char *hook, double min_ns)
{
    /* st_jnum walks to numbers only: find the array by hand. */
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(json, "hooks");
    h = h != NULL ? cJSON_GetObjectItemCaseSensitive(h, hook) : NULL;
    const cJSON *buckets = h != NULL ? cJSON_GetObjectItemCaseSensitive(h, "buckets") : NULL;
    if (!cJSON_IsArray(buckets))
        return -1;
    double n = 0;
    const cJSON *pair;
    cJSON_ArrayForEach(pair, buckets)
    {
        const cJSON *lo = cJSON_GetArrayItem(pair, 0), *c = cJSON_GetArrayItem(pair, 1);
        if (cJSON_IsNumber(lo) && cJSON_IsNumber(c) && lo->valuedouble >= min_ns)
            n += c->valuedouble;
    }
    return n;
}

/* ---- records ------------------------------------------------------------------- */

static int rec_equal(const st_rec_t *a, const st_rec_t *b)
{
    return strcmp(a->rc_outcome, b->rc_outcome) == 0 && a->rc_code == b->rc_code &&
           a->rc_len == b->rc_len &&
           (a->rc_len == 0 || memcmp(a->rc_reply, b->rc_reply, a->rc_len) == 0);
}

static void rec_print(const char *tag, long i, const st_rec_t *e)
{
    fprintf(stderr, "  %s %ld: %s", tag, i, e->rc_outcome);
    if (strcmp(e->rc_outcome, "server-drop") == 0)
        fprintf(stderr, " 0x%x", e->rc_code);
    if (strcmp(e->rc_outcome, "reply") == 0)
        fprintf(stderr, " %zu bytes", e->rc_len);
    fputc('\n', stderr);
}

void e2e_record_diff(const char *a, const char *b, e2e_recdiff_t *d)
{
    st_rec_t *ra = NULL, *rb = NULL;
    long na = st_read_record(a, &ra), nb = st_read_record(b, &rb);
    memset(d, 0, sizeof(*d));
    d->d_first = d->d_last = -1;
    if (na < 0 || nb < 0 || na != nb) {
        fprintf(stderr, "e2e: records %s (%ld entries) and %s (%ld) cannot be compared\n", a, na, b,
                nb);
        d->d_n = -1;
        st_record_free(ra, na);
        st_record_free(rb, nb);
        return;
    }
    d->d_n = na;
    for (long i = 0; i < na; i++) {
        if (rec_equal(&ra[i], &rb[i]))
            continue;
        if (d->d_diffs < 5) {
            fprintf(stderr, "e2e: records differ at entry %ld:\n", i);
            rec_print("a", i, &ra[i]);
            rec_print("b", i, &rb[i]);
        }
        d->d_diffs++;
        if (d->d_first < 0)
            d->d_first = i;
        d->d_last = i;
        if (strcmp(ra[i].rc_outcome, "plugin-drop") == 0 &&
            strcmp(rb[i].rc_outcome, "plugin-drop") != 0)
            d->d_only_undrop++;
    }
    if (d->d_diffs > 0)
        fprintf(stderr, "e2e: %ld of %ld entries differ (first %ld, last %ld)\n", d->d_diffs, na,
                d->d_first, d->d_last);
    st_record_free(ra, na);
    st_record_free(rb, nb);
}

long e2e_record_count(const char *path, const char *outcome, long from, long to)
{
    st_rec_t *r = NULL;
    long n = st_read_record(path, &r), k = 0;
    for (long i = from < 0 ? 0 : from; i < n && i < to; i++)
        k += strcmp(r[i].rc_outcome, outcome) == 0;
    st_record_free(r, n);
    return n < 0 ? -1 : k;
}
