/*
 * simtest.c — see simtest.h. Child processes are started with uv_spawn so
 * the same code runs on Linux and on Windows (under Wine).
 */
#include "simtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#ifndef DCB_EXE_SUFFIX
#define DCB_EXE_SUFFIX ""
#endif
#ifndef DCB_MODULE_SUFFIX
#define DCB_MODULE_SUFFIX ".so"
#endif
#ifndef DCB_SIM_TEST_TMP
#define DCB_SIM_TEST_TMP "sim-test-tmp"
#endif

static char paths[16][1024];
static unsigned path_next;

/* A rotating set of static buffers: callers use a path right away. */
static char *next_buf(void)
{
    char *b = paths[path_next++ % 16];
    b[0] = '\0';
    return b;
}

static const char *bin_dir(void)
{
    const char *d = getenv("DCB_BIN_DIR");
    return d != NULL ? d : ".";
}

const char *st_exe(const char *name)
{
    char *b = next_buf();
    snprintf(b, 1024, "%s/%s%s", bin_dir(), name, DCB_EXE_SUFFIX);
    return b;
}

const char *st_plugin(const char *name)
{
    char *b = next_buf();
    snprintf(b, 1024, "%s/%s%s", bin_dir(), name, DCB_MODULE_SUFFIX);
    return b;
}

const char *st_path(const char *dir, const char *file)
{
    char *b = next_buf();
    snprintf(b, 1024, "%s/%s", dir, file);
    return b;
}

static void rm_tree(const char *dir)
{
    uv_fs_t req;
    uv_dirent_t ent;
    char p[1024];
    if (uv_fs_scandir(NULL, &req, dir, 0, NULL) < 0) {
        uv_fs_req_cleanup(&req);
        return;
    }
    while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
        uv_fs_t r2;
        snprintf(p, sizeof(p), "%s/%s", dir, ent.name);
        if (ent.type == UV_DIRENT_DIR) {
            rm_tree(p);
        } else {
            uv_fs_unlink(NULL, &r2, p, NULL);
            uv_fs_req_cleanup(&r2);
        }
    }
    uv_fs_req_cleanup(&req);
    uv_fs_t r3;
    uv_fs_rmdir(NULL, &r3, dir, NULL);
    uv_fs_req_cleanup(&r3);
}

const char *st_scratch(const char *test)
{
    char *b = next_buf();
    uv_fs_t req;
    uv_fs_mkdir(NULL, &req, DCB_SIM_TEST_TMP, 0755, NULL);
    uv_fs_req_cleanup(&req);
    snprintf(b, 1024, "%s/%s", DCB_SIM_TEST_TMP, test);
    rm_tree(b);
    uv_fs_mkdir(NULL, &req, b, 0755, NULL);
    uv_fs_req_cleanup(&req);
    return b;
}

char *st_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        cap *= 2;
        char *bigger = realloc(buf, cap + 1);
        if (bigger == NULL) {
            free(buf);
            fclose(f);
            return NULL;
        }
        buf = bigger;
    }
    fclose(f);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

int st_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t n = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && n == len) ? 0 : -1;
}

int st_file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f != NULL)
        fclose(f);
    return f != NULL;
}

size_t st_count_lines(const char *text, const char *prefix)
{
    size_t n = 0, pl = strlen(prefix);
    const char *p = text;
    while (p != NULL && *p != '\0') {
        if (strncmp(p, prefix, pl) == 0)
            n++;
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return n;
}

typedef struct spawn_ctx {
    uv_process_t sc_proc;
    uv_timer_t sc_timer;
    st_result_t *sc_res;
    int sc_exited;
} spawn_ctx_t;

static void on_child_exit(uv_process_t *p, int64_t status, int sig)
{
    spawn_ctx_t *c = p->data;
    c->sc_res->r_exit = status;
    c->sc_res->r_signal = sig;
    c->sc_exited = 1;
    uv_timer_stop(&c->sc_timer);
    uv_close((uv_handle_t *)p, NULL);
    uv_close((uv_handle_t *)&c->sc_timer, NULL);
}

static void on_timeout(uv_timer_t *t)
{
    spawn_ctx_t *c = t->data;
    c->sc_res->r_timed_out = 1;
    uv_process_kill(&c->sc_proc, 9 /* SIGKILL; TerminateProcess on Windows */);
}

int st_open_out(const char *path)
{
    uv_fs_t req;
    int fd =
        uv_fs_open(NULL, &req, path, UV_FS_O_CREAT | UV_FS_O_TRUNC | UV_FS_O_WRONLY, 0644, NULL);
    uv_fs_req_cleanup(&req);
    return fd;
}

void st_close_fd(int fd)
{
    uv_fs_t req;
    if (fd < 0)
        return;
    uv_fs_close(NULL, &req, fd, NULL);
    uv_fs_req_cleanup(&req);
}

char **st_make_env(const char *const *extra)
{
    uv_env_item_t *items;
    int n;
    if (uv_os_environ(&items, &n) != 0)
        return NULL;
    size_t ne = 0;
    while (extra != NULL && extra[ne] != NULL)
        ne++;
    char **env = calloc((size_t)n + ne + 1, sizeof(char *));
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        int skip = 0;
        size_t nl = strlen(items[i].name);
        for (size_t j = 0; j < ne; j++)
            if (strncmp(extra[j], items[i].name, nl) == 0 && extra[j][nl] == '=')
                skip = 1;
        if (skip)
            continue;
        size_t len = nl + strlen(items[i].value) + 2;
        env[k] = malloc(len);
        snprintf(env[k++], len, "%s=%s", items[i].name, items[i].value);
    }
    for (size_t j = 0; j < ne; j++) {
        size_t len = strlen(extra[j]) + 1;
        env[k] = malloc(len);
        memcpy(env[k++], extra[j], len);
    }
    uv_os_free_environ(items, n);
    return env;
}

void st_free_env(char **env)
{
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        free(env[i]);
    free(env);
}

int st_run_sim(const char *const *args, const char *const *env, int timeout_ms, st_result_t *r)
{
    static unsigned seq;
    char out_path[1024], err_path[1024];
    const char *dir = st_scratch("spawn");
    memset(r, 0, sizeof(*r));
    snprintf(out_path, sizeof(out_path), "%s/out-%u.txt", dir, seq);
    snprintf(err_path, sizeof(err_path), "%s/err-%u.txt", dir, seq++);

    size_t na = 0;
    while (args[na] != NULL)
        na++;
    char **argv = calloc(na + 2, sizeof(char *));
    char exe[1024];
    snprintf(exe, sizeof(exe), "%s", st_exe("dcb-sim"));
    argv[0] = exe;
    for (size_t i = 0; i < na; i++)
        argv[i + 1] = (char *)(uintptr_t)args[i];
    char **envp = st_make_env(env);

    uv_loop_t loop;
    uv_loop_init(&loop);
    spawn_ctx_t c;
    memset(&c, 0, sizeof(c));
    c.sc_res = r;
    int ofd = st_open_out(out_path), efd = st_open_out(err_path);
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = ofd;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = efd;
    uv_process_options_t opt;
    memset(&opt, 0, sizeof(opt));
    opt.exit_cb = on_child_exit;
    opt.file = exe;
    opt.args = argv;
    opt.env = envp;
    opt.stdio = stdio;
    opt.stdio_count = 3;
    c.sc_proc.data = &c;
    c.sc_timer.data = &c;
    uv_timer_init(&loop, &c.sc_timer);
    int rc = uv_spawn(&loop, &c.sc_proc, &opt);
    if (rc != 0) {
        fprintf(stderr, "simtest: cannot start %s: %s\n", exe, uv_strerror(rc));
        uv_close((uv_handle_t *)&c.sc_timer, NULL);
        uv_close((uv_handle_t *)&c.sc_proc, NULL);
    } else {
        uv_timer_start(&c.sc_timer, on_timeout, (uint64_t)timeout_ms, 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    st_close_fd(ofd);
    st_close_fd(efd);
    st_free_env(envp);
    free(argv);
    r->r_out = st_read_file(out_path, NULL);
    r->r_err = st_read_file(err_path, NULL);
    if (r->r_out == NULL)
        r->r_out = calloc(1, 1);
    if (r->r_err == NULL)
        r->r_err = calloc(1, 1);
    if (rc != 0)
        return -1;
    if (r->r_exit != 0 || r->r_signal != 0)
        fprintf(stderr, "simtest: dcb-sim exit %lld signal %d%s; stderr:\n%.4000s\n",
                (long long)r->r_exit, r->r_signal, r->r_timed_out ? " (timed out)" : "", r->r_err);
    return 0;
}

void st_result_free(st_result_t *r)
{
    free(r->r_out);
    free(r->r_err);
    memset(r, 0, sizeof(*r));
}

int st_crashed(const st_result_t *r)
{
#ifdef _WIN32
    /* An unhandled exception ends the process with its NTSTATUS (0xC...). */
    return ((uint64_t)r->r_exit & 0xF0000000u) == 0xC0000000u;
#else
    if (r->r_signal != 0 && !r->r_timed_out)
        return 1;
    /* Under the sanitizers a SEGV is reported and the process exits non-zero. */
    return r->r_exit != 0 && strstr(r->r_err, "AddressSanitizer") != NULL;
#endif
}

cJSON *st_json(const st_result_t *r)
{
    return cJSON_Parse(r->r_out);
}

static const cJSON *walk(const cJSON *root, const char *path)
{
    char key[128];
    const cJSON *o = root;
    while (o != NULL && *path != '\0') {
        const char *dot = strchr(path, '.');
        size_t n = dot != NULL ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof(key))
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        if (cJSON_IsArray(o) && key[0] >= '0' && key[0] <= '9')
            o = cJSON_GetArrayItem(o, atoi(key));
        else
            o = cJSON_GetObjectItemCaseSensitive(o, key);
        path += n + (dot != NULL);
    }
    return o;
}

double st_jnum(const cJSON *root, const char *path)
{
    const cJSON *o = walk(root, path);
    return cJSON_IsNumber(o) ? o->valuedouble : -1;
}

const char *st_jstr(const cJSON *root, const char *path)
{
    const cJSON *o = walk(root, path);
    return cJSON_IsString(o) ? o->valuestring : NULL;
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

long st_read_record(const char *path, st_rec_t **out)
{
    size_t len;
    char *text = st_read_file(path, &len);
    if (text == NULL)
        return -1;
    long n = (long)st_count_lines(text, "");
    st_rec_t *recs = calloc((size_t)n + 1, sizeof(*recs));
    long k = 0;
    char *line = text;
    while (line != NULL && *line != '\0') {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        unsigned long long seq;
        char outcome[16];
        int used = 0;
        if (sscanf(line, "%llu %15s%n", &seq, outcome, &used) != 2 || (long)seq != k) {
            st_record_free(recs, k);
            free(text);
            return -1;
        }
        st_rec_t *e = &recs[k++];
        snprintf(e->rc_outcome, sizeof(e->rc_outcome), "%s", outcome);
        const char *rest = line + used;
        if (strcmp(outcome, "server-drop") == 0) {
            e->rc_code = (uint32_t)strtoul(rest, NULL, 16);
        } else if (strcmp(outcome, "reply") == 0) {
            char *end;
            e->rc_len = strtoul(rest, &end, 10);
            while (*end == ' ')
                end++;
            e->rc_reply = malloc(e->rc_len + 1);
            for (size_t i = 0; i < e->rc_len; i++) {
                int hi = hexv(end[2 * i]), lo = hi >= 0 ? hexv(end[2 * i + 1]) : -1;
                e->rc_reply[i] = (uint8_t)((hi < 0 || lo < 0) ? 0 : (hi << 4 | lo));
            }
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    free(text);
    *out = recs;
    return k;
}

void st_record_free(st_rec_t *r, long n)
{
    for (long i = 0; r != NULL && i < n; i++)
        free(r[i].rc_reply);
    free(r);
}
