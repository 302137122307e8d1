/*
 * hostproc.c — host processes: spawn, kill, output, memory.
 *
 * A host is this very executable re-run with --host. Its stdio:
 *   0  nothing
 *   1  a pipe the broker reads: plugin stdout, logged line by line
 *   2  a pipe the broker reads: plugin stderr and the host's own log
 *   3  the channel (frames both ways)
 * Output lines are cut at output_line_max and limited to
 * output_lines_per_s per host (a token bucket), so a chatty plugin cannot
 * flood the broker's log; what is dropped is counted and said.
 */
#include "host.h"
#include "platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void handle_closed_cb(uv_handle_t *handle)
{
    host_handle_closed(handle->data);
}

void hostproc_close_handle(host_t *h, uv_handle_t *handle)
{
    (void)h;
    if (!uv_is_closing(handle))
        uv_close(handle, handle_closed_cb);
}

static void exit_cb(uv_process_t *proc, int64_t status, int term_signal)
{
    host_on_exit(proc->data, status, term_signal);
}

/* ---- output ------------------------------------------------------------------ */

static void out_emit(host_out_t *o, int truncated)
{
    host_t *h = o->ho_host;
    broker_t *b = h->h_broker;
    uint64_t now = dcb_now_ns();
    double rate = (double)b->b_cfg->cfg_output_lines_per_s;

    h->h_out_tokens += (double)(now - h->h_out_tokens_ns) * rate / 1e9;
    if (h->h_out_tokens > rate * 2)
        h->h_out_tokens = rate * 2;
    h->h_out_tokens_ns = now;
    o->ho_line[o->ho_len] = '\0';
    if (h->h_out_tokens < 1.0) {
        if (h->h_out_suppressed++ == 0)
            dcb_log(DCB_LOG_WARN, "[%s] output over %u lines/s: dropping lines",
                    h->h_plugin->p_name, b->b_cfg->cfg_output_lines_per_s);
        o->ho_len = 0;
        return;
    }
    h->h_out_tokens -= 1.0;
    if (h->h_out_suppressed > 0) {
        dcb_log(DCB_LOG_WARN, "[%s] %llu output lines were dropped (over %u lines/s)",
                h->h_plugin->p_name, (unsigned long long)h->h_out_suppressed,
                b->b_cfg->cfg_output_lines_per_s);
        h->h_out_suppressed = 0;
    }
    dcb_log(DCB_LOG_INFO, "[%s:%s] %s%s", h->h_plugin->p_name, o->ho_name, o->ho_line,
            truncated ? " [truncated]" : "");
    o->ho_len = 0;
}

static void out_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    host_out_t *o = broker_container_of((uv_pipe_t *)handle, host_out_t, ho_pipe);

    (void)suggested;
    buf->base = o->ho_buf;
    buf->len = sizeof(o->ho_buf);
}

static void out_close(host_out_t *o);

static void out_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    host_out_t *o = broker_container_of((uv_pipe_t *)s, host_out_t, ho_pipe);
    host_t *h = o->ho_host;
    size_t max = h->h_broker->b_cfg->cfg_output_line_max;

    if (nread < 0) {
        out_close(o);
        return;
    }
    for (ssize_t i = 0; i < nread; i++) {
        char c = buf->base[i];
        if (c == '\n') {
            if (!o->ho_truncated && o->ho_len > 0)
                out_emit(o, 0);
            o->ho_len = 0;
            o->ho_truncated = 0;
            continue;
        }
        if (o->ho_truncated || c == '\r')
            continue;
        /* Keep the log one line per entry and free of terminal escapes. */
        o->ho_line[o->ho_len++] = (c >= 0x20 && c != 0x7f) || c == '\t' || (c & 0x80) ? c : '?';
        if (o->ho_len >= max) {
            out_emit(o, 1);
            o->ho_truncated = 1;
        }
    }
}

static void out_close(host_out_t *o)
{
    if (o->ho_len > 0)
        out_emit(o, 0);
    if (o->ho_open) {
        o->ho_open = 0;
        hostproc_close_handle(o->ho_host, (uv_handle_t *)&o->ho_pipe);
    }
}

void hostproc_out_timer_cb(btimer_t *t)
{
    host_t *h = broker_container_of(t, host_t, h_out_timer);

    /* Whatever still holds the pipes open (a grandchild) is not waited for. */
    for (int i = 0; i < 2; i++)
        out_close(&h->h_out[i]);
}

void hostproc_release(host_t *h)
{
    if (h->h_proc_open) {
        h->h_proc_open = 0;
        hostproc_close_handle(h, (uv_handle_t *)&h->h_proc);
    }
    if ((h->h_out[0].ho_open || h->h_out[1].ho_open) && !btimer_active(&h->h_out_timer))
        btimer_start(h->h_broker, &h->h_out_timer, dcb_now_ns() + (h->h_pid != 0 ? 500000000u : 0));
}

void hostproc_start_output(host_t *h)
{
    for (int i = 0; i < 2; i++)
        if (h->h_out[i].ho_open)
            uv_read_start((uv_stream_t *)&h->h_out[i].ho_pipe, out_alloc, out_read);
}

/* ---- spawn --------------------------------------------------------------------- */

static int pipe_init(host_t *h, uv_pipe_t *p)
{
    int rc = uv_pipe_init(h->h_broker->b_loop, p, 0);

    if (rc == 0) {
        p->data = h;
        h->h_handles++;
    }
    return rc;
}

int hostproc_spawn(host_t *h)
{
    broker_t *b = h->h_broker;
    broker_plugin_t *p = h->h_plugin;
    uv_process_options_t opt;
    uv_stdio_container_t stdio[4];
    const broker_plugin_conf_t *pc = config_find_plugin(b->b_cfg, p->p_name);
    char *write_paths = pc != NULL && pc->pc_write_paths != NULL
                            ? pc->pc_write_paths
                            : b->b_cfg->cfg_defaults.pc_write_paths;
    char mem[16], pid[16], err[160];
    char *args[16];
    int n = 0, rc;

    for (int i = 0; i < 2; i++) {
        h->h_out[i].ho_host = h;
        h->h_out[i].ho_name = i == 0 ? "out" : "err";
        h->h_out[i].ho_line = malloc(b->b_cfg->cfg_output_line_max + 1);
        if (h->h_out[i].ho_line == NULL)
            return UV_ENOMEM;
    }
    if ((rc = pipe_init(h, &h->h_chan)) != 0)
        return rc;
    h->h_chan_open = 1;
    wire_wr_init(&h->h_wr, (uv_stream_t *)&h->h_chan, host_chan_write_failed);
    for (int i = 0; i < 2; i++) {
        if ((rc = pipe_init(h, &h->h_out[i].ho_pipe)) != 0)
            return rc;
        h->h_out[i].ho_open = 1;
    }
    snprintf(mem, sizeof(mem), "%u", p->p_pol.pol_memory_mb);
    args[n++] = b->b_exe;
    args[n++] = "--host";
    args[n++] = "--plugin-name";
    args[n++] = p->p_name;
    args[n++] = "--memory-mb";
    args[n++] = mem;
    snprintf(pid, sizeof(pid), "%u", dcb_getpid());
    args[n++] = "--broker-pid";
    args[n++] = pid;
    /* The host applies its own sandbox (sandbox_host_limits) before it loads the DLL. */
    if (b->b_cfg->cfg_host_user != NULL) {
        args[n++] = "--host-user";
        args[n++] = b->b_cfg->cfg_host_user;
    }
    if (write_paths != NULL) {
        args[n++] = "--write-paths";
        args[n++] = write_paths;
    }
    args[n] = NULL;
    memset(&opt, 0, sizeof(opt));
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&h->h_out[0].ho_pipe;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&h->h_out[1].ho_pipe;
    stdio[3].flags = UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE | UV_OVERLAPPED_PIPE;
    stdio[3].data.stream = (uv_stream_t *)&h->h_chan;
    opt.exit_cb = exit_cb;
    opt.file = b->b_exe;
    opt.args = args;
    opt.stdio = stdio;
    opt.stdio_count = 4;
    opt.flags = UV_PROCESS_WINDOWS_HIDE;
    h->h_proc.data = h;
    rc = uv_spawn(b->b_loop, &h->h_proc, &opt);
    /* The process handle must be closed even when the spawn failed. */
    h->h_handles++;
    h->h_proc_open = 1;
    if (rc != 0) {
        h->h_exited = 1;
        return rc;
    }
    h->h_pid = (uint32_t)h->h_proc.pid;
    h->h_job = sandbox_job_attach(&h->h_proc, p->p_pol.pol_memory_mb, err, sizeof(err));
    if (h->h_job == NULL && err[0] != '\0')
        dcb_log(DCB_LOG_WARN,
                "plugin %s host pid %u: no job object (%s); memory is capped by polling only",
                p->p_name, h->h_pid, err);
    dcb_log(DCB_LOG_INFO, "plugin %s: host pid %u started (generation %u, %s)", p->p_name, h->h_pid,
            h->h_generation, p->p_dll);
    hostproc_start_output(h);
    rc = uv_read_start((uv_stream_t *)&h->h_chan, host_chan_alloc, host_chan_read);
    if (rc != 0)
        return rc;
    return host_send_load(h);
}

void hostproc_kill(host_t *h)
{
    if (h->h_proc_open && !h->h_exited)
        uv_process_kill(&h->h_proc, SIGKILL);
}

int hostproc_check_memory(host_t *h)
{
    broker_plugin_t *p = h->h_plugin;
    uint64_t bytes, cap = (uint64_t)p->p_pol.pol_memory_mb * 1024u * 1024u;
    int rc;

    if (cap == 0 || h->h_exited || h->h_pid == 0)
        return 0;
    rc = sandbox_proc_memory(h->h_pid, &bytes);
    if (rc != 0) {
        if (!h->h_mem_warned)
            dcb_log(DCB_LOG_WARN, "plugin %s host pid %u: cannot read its memory use (%s)",
                    p->p_name, h->h_pid, uv_strerror(rc));
        h->h_mem_warned = 1;
        return 0;
    }
    if (bytes <= cap)
        return 0;
    host_fail(h, HOST_FAIL_MEMORY, "memory %llu MB over its cap of %u MB (broker's memory poll)",
              (unsigned long long)(bytes / (1024u * 1024u)), p->p_pol.pol_memory_mb);
    return 1;
}
