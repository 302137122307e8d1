/*
 * ops.c — see ops.h. Children are started with libuv, so the same code
 * runs natively and, as a Windows program, under Wine.
 */
#include "ops.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- files --------------------------------------------------------------------- */

static char *next_buf(void)
{
    static char bufs[16][2048];
    static unsigned next;

    return bufs[next++ % 16];
}

static void rm_tree(const char *path)
{
    uv_fs_t req;
    uv_dirent_t ent;

    if (uv_fs_scandir(NULL, &req, path, 0, NULL) >= 0) {
        while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
            char child[2048];
            uv_fs_t r2;
            snprintf(child, sizeof(child), "%s/%s", path, ent.name);
            if (ent.type == UV_DIRENT_DIR) {
                rm_tree(child);
            } else {
                uv_fs_unlink(NULL, &r2, child, NULL);
                uv_fs_req_cleanup(&r2);
            }
        }
    }
    uv_fs_req_cleanup(&req);
    uv_fs_rmdir(NULL, &req, path, NULL);
    uv_fs_req_cleanup(&req);
}

const char *ops_scratch(const char *test)
{
    char cwd[1024];
    size_t n = sizeof(cwd);
    char *b = next_buf();
    uv_fs_t req;

    if (uv_cwd(cwd, &n) != 0)
        snprintf(cwd, sizeof(cwd), ".");
    for (char *c = cwd; *c != '\0'; c++)
        if (*c == '\\')
            *c = '/';
    snprintf(b, 2048, "%s/ops-%s", cwd, test);
    rm_tree(b);
    uv_fs_mkdir(NULL, &req, b, 0700, NULL);
    uv_fs_req_cleanup(&req);
    return b;
}

const char *ops_path(const char *dir, const char *name)
{
    char *b = next_buf();

    snprintf(b, 2048, "%s/%s", dir, name);
    return b;
}

const char *ops_native(const char *path)
{
    char *b = next_buf();

    tb_native_path(path, b, 2048);
    return b;
}

int ops_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

int ops_replace_file(const char *dst, const char *src)
{
    static int seq;
    char aside[2100];
    uv_fs_t req;
    int rc;

    snprintf(aside, sizeof(aside), "%s.old-%d", dst, ++seq);
    rc = uv_fs_rename(NULL, &req, dst, aside, NULL);
    uv_fs_req_cleanup(&req);
    if (rc != 0 && rc != UV_ENOENT)
        return rc;
    rc = uv_fs_copyfile(NULL, &req, src, dst, 0, NULL);
    uv_fs_req_cleanup(&req);
    return rc;
}

char **ops_list_dir(const char *dir, const char *prefix)
{
    char **list = calloc(1, sizeof(*list));
    size_t n = 0;
    uv_fs_t req;
    uv_dirent_t ent;

    if (uv_fs_scandir(NULL, &req, dir, 0, NULL) >= 0) {
        while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
            if (strncmp(ent.name, prefix, strlen(prefix)) != 0)
                continue;
            list = realloc(list, (n + 2) * sizeof(*list));
            list[n] = malloc(strlen(ent.name) + 1);
            strcpy(list[n++], ent.name);
            list[n] = NULL;
        }
    }
    uv_fs_req_cleanup(&req);
    return list;
}

void ops_free_list(char **list)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        free(list[i]);
    free(list);
}

void ops_setenv(const char *name, const char *value)
{
    if (value == NULL)
        uv_os_unsetenv(name);
    else
        uv_os_setenv(name, value);
}

/* ---- child processes ----------------------------------------------------------- */

static void proc_exit_cb(uv_process_t *proc, int64_t status, int sig)
{
    ops_proc_t *p = proc->data;

    p->pr_exited = 1;
    p->pr_status = status;
    p->pr_signal = sig;
}

int ops_spawn(ops_proc_t *p, const char *exe, const char *const *args, const char *out_path,
              const char *err_path)
{
    return ops_spawn_as(p, exe, args, out_path, err_path, -1);
}

int ops_spawn_as(ops_proc_t *p, const char *exe, const char *const *args, const char *out_path,
                 const char *err_path, int uid)
{
    const char *argv[64];
    uv_process_options_t opt;
    uv_stdio_container_t stdio[3];
    int n = 0, ofd, efd, rc;

    memset(p, 0, sizeof(*p));
    snprintf(p->pr_out, sizeof(p->pr_out), "%s", out_path);
    snprintf(p->pr_err, sizeof(p->pr_err), "%s", err_path);
    argv[n++] = exe;
    for (int i = 0; args != NULL && args[i] != NULL && n < 62; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    ofd = tb_open_trunc(out_path);
    efd = tb_open_trunc(err_path);
    memset(&opt, 0, sizeof(opt));
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = ofd;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = efd;
    opt.file = exe;
    opt.args = (char **)argv;
    opt.stdio = stdio;
    opt.stdio_count = 3;
    opt.exit_cb = proc_exit_cb;
    opt.flags = UV_PROCESS_WINDOWS_HIDE;
    if (uid >= 0) {
        opt.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
        opt.uid = (uv_uid_t)uid;
        opt.gid = (uv_gid_t)uid;
    }
    uv_loop_init(&p->pr_loop);
    p->pr_proc.data = p;
    rc = ofd < 0 || efd < 0 ? UV_EIO : uv_spawn(&p->pr_loop, &p->pr_proc, &opt);
    tb_close_fd(ofd);
    tb_close_fd(efd);
    if (rc != 0) {
        fprintf(stderr, "ops: cannot start %s: %s\n", exe, uv_strerror(rc));
        if (ofd >= 0 && efd >= 0)
            uv_close((uv_handle_t *)&p->pr_proc, NULL);
        uv_run(&p->pr_loop, UV_RUN_DEFAULT);
        uv_loop_close(&p->pr_loop);
        return -1;
    }
    p->pr_started = 1;
    return 0;
}

int ops_proc_wait(ops_proc_t *p, int timeout_ms)
{
    uint64_t end = dcb_now_ns() + (uint64_t)timeout_ms * 1000000u;

    while (p->pr_started && !p->pr_exited) {
        uv_run(&p->pr_loop, UV_RUN_NOWAIT);
        if (p->pr_exited || dcb_now_ns() >= end)
            break;
        dcb_sleep_ms(5);
    }
    return !p->pr_started || p->pr_exited;
}

void ops_proc_release(ops_proc_t *p)
{
    if (!p->pr_started)
        return;
    if (!ops_proc_wait(p, 0)) {
        uv_process_kill(&p->pr_proc, SIGKILL);
        ops_proc_wait(p, 10000);
    }
    uv_close((uv_handle_t *)&p->pr_proc, NULL);
    uv_run(&p->pr_loop, UV_RUN_DEFAULT);
    uv_loop_close(&p->pr_loop);
    p->pr_started = 0;
}

/* ---- the broker ------------------------------------------------------------------ */

int ops_broker_start(ops_broker_t *b, const char *test, const char *config)
{
    static int seq;
    const char *args[3];

#ifdef _WIN32
    snprintf(b->ob_ctl, sizeof(b->ob_ctl), "\\\\.\\pipe\\dcb-ops-%u-%d-ctl", dcb_getpid(), ++seq);
#else
    {
        /* A private folder: the broker refuses one others may write to. */
        char dir[128];
        uv_fs_t req;
        snprintf(dir, sizeof(dir), "/tmp/dcb-ops-%u-%d", dcb_getpid(), ++seq);
        uv_fs_mkdir(NULL, &req, dir, 0700, NULL);
        uv_fs_req_cleanup(&req);
        snprintf(b->ob_ctl, sizeof(b->ob_ctl), "%s/ctl.sock", dir);
    }
#endif
    args[0] = "--control";
    args[1] = b->ob_ctl;
    args[2] = NULL;
    return tb_broker_start(&b->ob_tb, test, config, args);
}

int ops_broker_stop(ops_broker_t *b)
{
    int status = tb_broker_stop(&b->ob_tb);

#ifndef _WIN32
    {
        char dir[256], *slash;
        uv_fs_t req;
        snprintf(dir, sizeof(dir), "%s", b->ob_ctl);
        slash = strrchr(dir, '/');
        if (slash != NULL)
            *slash = '\0';
        uv_fs_unlink(NULL, &req, b->ob_ctl, NULL);
        uv_fs_req_cleanup(&req);
        uv_fs_rmdir(NULL, &req, dir, NULL);
        uv_fs_req_cleanup(&req);
    }
#endif
    return status;
}

void ops_broker_kill(ops_broker_t *b)
{
    tb_broker_t *t = &b->ob_tb;
    uint64_t end = dcb_now_ns() + 10000000000ull;

    if (!t->tb_running || t->tb_exited)
        return;
    uv_process_kill(&t->tb_proc, SIGKILL);
    while (!t->tb_exited && dcb_now_ns() < end) {
        uv_run(&t->tb_loop, UV_RUN_NOWAIT);
        if (!t->tb_exited)
            dcb_sleep_ms(5);
    }
}

int ops_broker_restart(ops_broker_t *b)
{
    tb_broker_t *t = &b->ob_tb;
    const char *argv[12];
    char exe[1024], log[512];
    tb_pipe_t *probe;
    int n = 0;

    /* Release the dead one's handles (its exit was seen by ops_broker_kill). */
    tb_broker_release(t);
    t->tb_exited = 0;
    t->tb_status = 0;
    t->tb_signal = 0;
    snprintf(log, sizeof(log), "%.480s.restarted", t->tb_log);
    snprintf(t->tb_log, sizeof(t->tb_log), "%.500s", log);
    tb_bin("dcb-broker", exe, sizeof(exe));
    argv[n++] = exe;
    if (t->tb_cfg[0] != '\0') {
        argv[n++] = "--config";
        argv[n++] = t->tb_cfg;
    }
    argv[n++] = "--pipe";
    argv[n++] = t->tb_pipe;
    argv[n++] = "--control";
    argv[n++] = b->ob_ctl;
    argv[n] = NULL;
    if (tb_spawn_logged(t, argv) != 0)
        return -1;
    probe = tb_pipe_connect(t->tb_pipe, 20000);
    if (probe == NULL)
        return -1;
    tb_pipe_close(probe);
    return 0;
}

void ops_wait_log(ops_broker_t *b, const char *text, int timeout_ms)
{
    if (!tb_log_wait(&b->ob_tb, text, timeout_ms)) {
        tb_log_dump(&b->ob_tb);
        fail_msg("the broker's log never said: %s", text);
    }
}

/* ---- the control protocol ----------------------------------------------------------- */

struct ops_ctl {
    tb_pipe_t *oc_pipe;
    uint8_t *oc_buf;
    size_t oc_len;
    size_t oc_cap;
    uint8_t *oc_frame;
    dcb_arena_t oc_arena;
    void *oc_arena_mem;
};

static const dcb_limits_t ctl_limits = {DCB_MAX_FRAME_CONTROL, DCB_MAX_PACKET_DEFAULT};

ops_ctl_t *ops_ctl_connect(const char *endpoint, int timeout_ms)
{
    ops_ctl_t *c = calloc(1, sizeof(*c));
    size_t arena = dcb_arena_size_for(DCB_MAX_FRAME_CONTROL);

    c->oc_pipe = tb_pipe_connect(endpoint, timeout_ms);
    if (c->oc_pipe == NULL) {
        free(c);
        return NULL;
    }
    c->oc_cap = DCB_FRAME_HEADER_SIZE + DCB_MAX_FRAME_CONTROL;
    c->oc_buf = malloc(c->oc_cap);
    c->oc_frame = malloc(c->oc_cap);
    c->oc_arena_mem = malloc(arena);
    dcb_arena_init(&c->oc_arena, c->oc_arena_mem, arena);
    return c;
}

void ops_ctl_close(ops_ctl_t *c)
{
    if (c == NULL)
        return;
    tb_pipe_close(c->oc_pipe);
    free(c->oc_buf);
    free(c->oc_frame);
    free(c->oc_arena_mem);
    free(c);
}

int ops_ctl_send_raw(ops_ctl_t *c, const void *buf, size_t n)
{
    return tb_pipe_write(c->oc_pipe, buf, n);
}

int ops_ctl_recv(ops_ctl_t *c, int timeout_ms, Dcb__ControlResponse **resp)
{
    uint64_t end = dcb_now_ns() + (uint64_t)timeout_ms * 1000000u;

    *resp = NULL;
    for (;;) {
        dcb_frame_hdr_t hdr;
        dcb_msg_t m;
        uint64_t now;
        int rc = dcb_frame_header(c->oc_buf, c->oc_len, &ctl_limits, &hdr);

        if (rc == 0 && c->oc_len >= DCB_FRAME_HEADER_SIZE + (size_t)hdr.length) {
            size_t len = DCB_FRAME_HEADER_SIZE + hdr.length;
            memcpy(c->oc_frame, c->oc_buf, len);
            memmove(c->oc_buf, c->oc_buf + len, c->oc_len - len);
            c->oc_len -= len;
            if (hdr.type != DCB__FRAME_TYPE__FT_CTL_RESPONSE)
                return DCB_E_TYPE;
            rc = dcb_frame_decode(c->oc_frame, len, &ctl_limits, &c->oc_arena, &m);
            if (rc == 0)
                *resp = (Dcb__ControlResponse *)m.msg;
            return rc;
        }
        if (rc != 0 && rc != DCB_E_TRUNCATED)
            return rc;
        now = dcb_now_ns();
        if (now >= end)
            return TB_TIMEOUT;
        rc = tb_pipe_read(c->oc_pipe, c->oc_buf + c->oc_len, c->oc_cap - c->oc_len,
                          (int)((end - now) / 1000000u) + 1);
        if (rc < 0)
            return rc;
        c->oc_len += (size_t)rc;
    }
}

int ops_ctl_call(ops_ctl_t *c, const Dcb__ControlRequest *req, int timeout_ms,
                 Dcb__ControlResponse **resp)
{
    uint8_t buf[4096];
    int n = dcb_frame_encode(DCB__FRAME_TYPE__FT_CTL_REQUEST, &req->base, buf, sizeof(buf));

    *resp = NULL;
    if (n < 0)
        return n;
    if (tb_pipe_write(c->oc_pipe, buf, (size_t)n) != 0)
        return TB_ERROR;
    return ops_ctl_recv(c, timeout_ms, resp);
}

static ops_ctl_t *cmd_conn;

static Dcb__ControlResponse *cmd_call(ops_broker_t *b, const Dcb__ControlRequest *req)
{
    Dcb__ControlResponse *resp;
    int rc;

    ops_ctl_close(cmd_conn);
    cmd_conn = ops_ctl_connect(b->ob_ctl, 10000);
    if (cmd_conn == NULL) {
        tb_log_dump(&b->ob_tb);
        fail_msg("cannot connect to the control endpoint %s", b->ob_ctl);
    }
    /* A reload waits for a host to load: generous under Wine and the sanitizers. */
    rc = ops_ctl_call(cmd_conn, req, 60000, &resp);
    if (rc != 0) {
        tb_log_dump(&b->ob_tb);
        fail_msg("control command %d: no response (%d)", req->command, rc);
    }
    return resp;
}

Dcb__ControlResponse *ops_cmd(ops_broker_t *b, int command, const char *plugin)
{
    Dcb__ControlRequest req = DCB__CONTROL_REQUEST__INIT;

    req.command = (Dcb__ControlCommand)command;
    req.plugin = (char *)plugin;
    return cmd_call(b, &req);
}

Dcb__ControlResponse *ops_cmd_timeout(ops_broker_t *b, const char *plugin, int has_hook,
                                      uint32_t hook, uint32_t timeout_ms)
{
    Dcb__ControlRequest req = DCB__CONTROL_REQUEST__INIT;

    req.command = DCB__CONTROL_COMMAND__CC_SET_TIMEOUT;
    req.plugin = (char *)plugin;
    req.has_timeout_ms = 1;
    req.timeout_ms = timeout_ms;
    req.has_hook = has_hook;
    req.hook = hook;
    return cmd_call(b, &req);
}

/* ---- reading reports -------------------------------------------------------------- */

const Dcb__PluginStatus *ops_plugin_status(const Dcb__StatusReport *r, const char *plugin)
{
    for (size_t i = 0; r != NULL && i < r->n_plugins; i++)
        if (strcmp(r->plugins[i]->name, plugin) == 0)
            return r->plugins[i];
    return NULL;
}

const Dcb__HookPluginStats *ops_stats_entry(const Dcb__StatsReport *r, const char *plugin, int hook)
{
    for (size_t i = 0; r != NULL && i < r->n_entries; i++)
        if (strcmp(r->entries[i]->plugin, plugin) == 0 && r->entries[i]->hook == (uint32_t)hook)
            return r->entries[i];
    return NULL;
}

const Dcb__ShimHookStats *ops_shim_entry(const Dcb__StatsReport *r, int hook)
{
    for (size_t i = 0; r != NULL && i < r->n_shim; i++)
        if (r->shim[i]->hook == (uint32_t)hook)
            return r->shim[i];
    return NULL;
}

uint64_t ops_entry_defaults(const Dcb__HookPluginStats *e)
{
    if (e == NULL)
        return 0;
    return e->defaults_timeout + e->defaults_crash + e->defaults_breaker + e->defaults_queue_full +
           e->defaults_bad_reply + e->defaults_disabled;
}

uint64_t ops_shim_defaults(const Dcb__ShimHookStats *e)
{
    if (e == NULL)
        return 0;
    return e->defaults_timeout + e->defaults_no_broker + e->defaults_breaker +
           e->defaults_bad_reply + e->defaults_other + e->queue_full + e->lost;
}

static dcb_hist_t *hist_from_wire(const Dcb__Histogram *w)
{
    dcb_hist_t *h = malloc(sizeof(*h));

    dcb_hist_reset(h);
    for (size_t i = 0; w != NULL && i < w->n_bucket; i++)
        dcb_hist_add_bucket(h, w->bucket[i], w->count[i]);
    /* The exact maximum bounds every quantile, as on the broker's side. */
    if (w != NULL && w->has_max && w->max != 0)
        atomic_store(&h->h_max, w->max);
    return h;
}

uint64_t ops_quantile(const Dcb__Histogram *w, double q)
{
    dcb_hist_t *h = hist_from_wire(w);
    uint64_t v = dcb_hist_quantile(h, q);

    free(h);
    return v;
}

uint64_t ops_hist_count(const Dcb__Histogram *w)
{
    uint64_t n = 0;

    for (size_t i = 0; w != NULL && i < w->n_count; i++)
        n += w->count[i];
    return n;
}

/* ---- dcbctl ------------------------------------------------------------------------- */

int ops_have_dcbctl(void)
{
    char exe[1024];
    uv_fs_t req;
    int rc;

    tb_bin("dcbctl", exe, sizeof(exe));
    rc = uv_fs_stat(NULL, &req, exe, NULL);
    uv_fs_req_cleanup(&req);
    return rc == 0;
}

int ops_dcbctl(const char *endpoint, const char *const *args, char **out, char **err)
{
    return ops_dcbctl_as(-1, endpoint, args, out, err);
}

int ops_dcbctl_as(int uid, const char *endpoint, const char *const *args, char **out, char **err)
{
    static int seq;
    const char *argv[32];
    char exe[1024], outp[256], errp[256];
    ops_proc_t p;
    int n = 0, status;

    tb_bin("dcbctl", exe, sizeof(exe));
    if (endpoint != NULL) {
        argv[n++] = "--control";
        argv[n++] = endpoint;
        argv[n++] = "--timeout";
        argv[n++] = "60s";
    }
    for (int i = 0; args[i] != NULL && n < 30; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    snprintf(outp, sizeof(outp), "ops-dcbctl-%u-%d.out", dcb_getpid(), ++seq);
    snprintf(errp, sizeof(errp), "ops-dcbctl-%u-%d.err", dcb_getpid(), seq);
    if (ops_spawn_as(&p, exe, argv, outp, errp, uid) != 0)
        return -1;
    if (!ops_proc_wait(&p, 90000)) {
        ops_proc_release(&p);
        return -1;
    }
    status = p.pr_signal != 0 ? 128 + p.pr_signal : (int)p.pr_status;
    ops_proc_release(&p);
    if (out != NULL)
        *out = tb_read_file(outp);
    if (err != NULL)
        *err = tb_read_file(errp);
    remove(outp);
    remove(errp);
    return status;
}

/* ---- dcb-sim ---------------------------------------------------------------------------- */

const char *ops_plugin(const char *name)
{
    char *b = next_buf();

    tb_plugin(name, b, 2048);
    return b;
}

const char *ops_shim_path(void)
{
    return ops_plugin(OPS_WINE ? "dcbshim" : "libdcbshim");
}

int ops_sim_start(ops_proc_t *p, const char *dir, ops_broker_t *b, const char *const *dlls,
                  const char *const *extra)
{
    static int seq;
    const char *argv[64];
    char exe[1024], out[1100], err[1100];
    int n = 0;

    tb_bin("dcb-sim", exe, sizeof(exe));
    ops_setenv("DCB_PIPE", b->ob_tb.tb_pipe);
    argv[n++] = "--dll";
    argv[n++] = ops_shim_path();
    for (int i = 0; dlls != NULL && dlls[i] != NULL && n < 40; i++) {
        argv[n++] = "--dll";
        argv[n++] = dlls[i];
    }
    for (int i = 0; extra != NULL && extra[i] != NULL && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    seq++;
    snprintf(out, sizeof(out), "%s/sim-%d.out", dir, seq);
    snprintf(err, sizeof(err), "%s/sim-%d.err", dir, seq);
    return ops_spawn(p, exe, argv, out, err);
}

cJSON *ops_sim_finish(ops_proc_t *p, int timeout_ms)
{
    char *text;
    cJSON *j;

    if (!ops_proc_wait(p, timeout_ms))
        fprintf(stderr, "ops: dcb-sim did not finish within %d ms; killing it\n", timeout_ms);
    ops_proc_release(p);
    if (p->pr_status != 0 || p->pr_signal != 0) {
        char *e = tb_read_file(p->pr_err);
        size_t len = e != NULL ? strlen(e) : 0;
        fprintf(stderr, "ops: dcb-sim exit %lld signal %d; stderr (end):\n%s\n",
                (long long)p->pr_status, p->pr_signal,
                e == NULL    ? ""
                : len > 4000 ? e + len - 4000
                             : e);
        free(e);
    }
    text = tb_read_file(p->pr_out);
    j = text != NULL ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

double ops_jnum(const cJSON *root, const char *path)
{
    char key[128];
    const char *p = path;
    const cJSON *o = root;

    while (o != NULL && *p != '\0') {
        const char *dot = strchr(p, '.');
        size_t n = dot != NULL ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof(key))
            return -1;
        memcpy(key, p, n);
        key[n] = '\0';
        o = cJSON_GetObjectItemCaseSensitive(o, key);
        p = dot != NULL ? dot + 1 : p + n;
    }
    return cJSON_IsNumber(o) ? o->valuedouble : -1;
}
