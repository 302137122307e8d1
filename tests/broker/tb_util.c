/*
 * tb_util.c — the broker as a child process, and a fake shim.
 */
#include "tb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#define TB_EXE ".exe"
#define TB_DLL ".dll"
#else
#define TB_EXE ""
#define TB_DLL ".so"
#endif

void tb_sleep_ms(int ms)
{
    dcb_sleep_ms((uint32_t)ms);
}

static void bin_path(const char *name, const char *suffix, char *out, size_t n)
{
    const char *dir = getenv("DCB_BIN_DIR");
    char tmp[1024];

    snprintf(tmp, sizeof(tmp), "%s/%s%s", dir ? dir : ".", name, suffix);
    tb_native_path(tmp, out, n);
}

void tb_bin(const char *name, char *out, size_t n)
{
    bin_path(name, TB_EXE, out, n);
}

void tb_plugin(const char *name, char *out, size_t n)
{
    bin_path(name, TB_DLL, out, n);
}

void tb_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL)
        return;
    fputs(text, f);
    fclose(f);
}

static void exit_cb(uv_process_t *proc, int64_t status, int sig)
{
    tb_broker_t *b = proc->data;

    b->tb_exited = 1;
    b->tb_status = status;
    b->tb_signal = sig;
}

int tb_open_trunc(const char *path)
{
    uv_fs_t req;
    int fd =
        uv_fs_open(NULL, &req, path, UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_TRUNC, 0644, NULL);

    uv_fs_req_cleanup(&req);
    return fd;
}

void tb_close_fd(int fd)
{
    uv_fs_t req;

    if (fd < 0)
        return;
    uv_fs_close(NULL, &req, fd, NULL);
    uv_fs_req_cleanup(&req);
}

int tb_spawn_logged(tb_broker_t *b, const char *const *argv)
{
    uv_process_options_t opt;
    uv_stdio_container_t stdio[3];
    int fd = tb_open_trunc(b->tb_log), rc;

    if (fd < 0) {
        fprintf(stderr, "tb: cannot open the log %s: %s\n", b->tb_log, uv_strerror(fd));
        return -1;
    }
    uv_loop_init(&b->tb_loop);
    memset(&opt, 0, sizeof(opt));
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = fd;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = fd;
    opt.file = argv[0];
    opt.args = (char **)argv;
    opt.stdio = stdio;
    opt.stdio_count = 3;
    opt.exit_cb = exit_cb;
    opt.flags = UV_PROCESS_WINDOWS_HIDE;
    b->tb_proc.data = b;
    rc = uv_spawn(&b->tb_loop, &b->tb_proc, &opt);
    tb_close_fd(fd);
    b->tb_running = 1;
    if (rc != 0) {
        fprintf(stderr, "tb: cannot start %s: %s\n", argv[0], uv_strerror(rc));
        b->tb_exited = 1;
        return -1;
    }
    return 0;
}

static int spawn(tb_broker_t *b, const char *test, const char *config_file, const char *const *args)
{
    char exe[1024];
    const char *argv[32];
    int n = 0;

    snprintf(b->tb_log, sizeof(b->tb_log), "tb-%s-%u.log", test, dcb_getpid());
    tb_bin("dcb-broker", exe, sizeof(exe));
    argv[n++] = exe;
    if (config_file != NULL) {
        argv[n++] = "--config";
        argv[n++] = config_file;
    }
    if (b->tb_pipe[0] != '\0') {
        argv[n++] = "--pipe";
        argv[n++] = b->tb_pipe;
    }
    for (int i = 0; args != NULL && args[i] != NULL && n < 30; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return tb_spawn_logged(b, argv);
}

void tb_broker_release(tb_broker_t *b)
{
    if (!b->tb_running)
        return;
    uv_close((uv_handle_t *)&b->tb_proc, NULL);
    uv_run(&b->tb_loop, UV_RUN_DEFAULT);
    uv_loop_close(&b->tb_loop);
    b->tb_running = 0;
}

static int wait_exit(tb_broker_t *b, int timeout_ms)
{
    uint64_t end = dcb_now_ns() + (uint64_t)timeout_ms * 1000000u;

    while (!b->tb_exited && dcb_now_ns() < end) {
        uv_run(&b->tb_loop, UV_RUN_NOWAIT);
        if (!b->tb_exited)
            tb_sleep_ms(5);
    }
    return b->tb_exited;
}

int tb_broker_start(tb_broker_t *b, const char *test, const char *config, const char *const *args)
{
    tb_pipe_t *p;

    memset(b, 0, sizeof(*b));
    tb_pipe_name(b->tb_pipe, sizeof(b->tb_pipe), test);
    if (config != NULL) {
        snprintf(b->tb_cfg, sizeof(b->tb_cfg), "tb-%s-%u.ini", test, dcb_getpid());
        tb_write_file(b->tb_cfg, config);
    }
    if (spawn(b, test, config != NULL ? b->tb_cfg : NULL, args) != 0)
        return -1;
    /* Ready when it accepts a connection (that one is just closed again). */
    p = tb_pipe_connect(b->tb_pipe, 20000);
    if (p == NULL) {
        fprintf(stderr, "tb: the broker does not listen on %s\n", b->tb_pipe);
        tb_log_dump(b);
        return -1;
    }
    tb_pipe_close(p);
    return 0;
}

int tb_broker_run(tb_broker_t *b, const char *test, const char *config_file,
                  const char *const *args, int timeout_ms)
{
    memset(b, 0, sizeof(*b));
    if (spawn(b, test, config_file, args) != 0)
        return -1;
    if (!wait_exit(b, timeout_ms)) {
        uv_process_kill(&b->tb_proc, SIGKILL);
        wait_exit(b, 5000);
        tb_broker_release(b);
        return -1;
    }
    tb_broker_release(b);
    return (int)b->tb_status;
}

int tb_broker_stop(tb_broker_t *b)
{
    int status;

    if (!b->tb_running)
        return -1;
    if (!b->tb_exited)
        uv_process_kill(&b->tb_proc, SIGTERM);
    if (!wait_exit(b, 15000)) {
        fprintf(stderr, "tb: the broker did not stop; killing it\n");
        uv_process_kill(&b->tb_proc, SIGKILL);
        wait_exit(b, 5000);
        tb_broker_release(b);
        tb_pipe_cleanup(b->tb_pipe);
        return -1;
    }
    status = b->tb_signal != 0 ? 128 + b->tb_signal : (int)b->tb_status;
    tb_broker_release(b);
    tb_pipe_cleanup(b->tb_pipe);
    return status;
}

char *tb_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0)
        n = 0;
    text = malloc((size_t)n + 1);
    if (text != NULL) {
        n = (long)fread(text, 1, (size_t)n, f);
        text[n] = '\0';
    }
    fclose(f);
    return text;
}

static char *read_log(tb_broker_t *b)
{
    return tb_read_file(b->tb_log);
}

long tb_log_find(tb_broker_t *b, const char *text)
{
    char *log = read_log(b), *at;
    long pos = -1;

    if (log == NULL)
        return -1;
    at = strstr(log, text);
    if (at != NULL)
        pos = (long)(at - log);
    free(log);
    return pos;
}

int tb_log_contains(tb_broker_t *b, const char *text)
{
    return tb_log_find(b, text) >= 0;
}

int tb_log_count(tb_broker_t *b, const char *text)
{
    char *log = read_log(b), *at;
    int n = 0;

    if (log == NULL)
        return 0;
    for (at = strstr(log, text); at != NULL; at = strstr(at + 1, text))
        n++;
    free(log);
    return n;
}

int tb_log_wait(tb_broker_t *b, const char *text, int timeout_ms)
{
    uint64_t end = dcb_now_ns() + (uint64_t)timeout_ms * 1000000u;

    for (;;) {
        if (tb_log_contains(b, text))
            return 1;
        if (dcb_now_ns() > end)
            return 0;
        tb_sleep_ms(10);
    }
}

void tb_log_dump(tb_broker_t *b)
{
    char *log = read_log(b);

    fprintf(stderr, "---- %s ----\n%s---- end of log ----\n", b->tb_log, log ? log : "(none)\n");
    free(log);
}

/* ---- fake shim ---------------------------------------------------------------- */

/* Every open connection, so a test that fails half-way leaks none. */
static tb_conn_t *open_conns[64];

void tb_disconnect_all(void)
{
    for (int i = 0; i < 64; i++)
        if (open_conns[i] != NULL)
            tb_disconnect(open_conns[i]);
}

tb_conn_t *tb_connect(tb_broker_t *b)
{
    tb_conn_t *c = calloc(1, sizeof(*c));

    c->c_pipe = tb_pipe_connect(b->tb_pipe, 5000);
    if (c->c_pipe == NULL) {
        free(c);
        return NULL;
    }
    c->c_buf = malloc(DCB_FRAME_HEADER_SIZE + DCB_MAX_FRAME_EVENT);
    c->c_arena_mem = malloc(dcb_arena_size_for(DCB_MAX_FRAME_EVENT));
    dcb_arena_init(&c->c_arena, c->c_arena_mem, dcb_arena_size_for(DCB_MAX_FRAME_EVENT));
    c->c_lim.max_frame = DCB_MAX_FRAME_EVENT;
    c->c_lim.max_packet = 60000;
    for (int i = 0; i < 64; i++)
        if (open_conns[i] == NULL) {
            open_conns[i] = c;
            break;
        }
    return c;
}

void tb_disconnect(tb_conn_t *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < 64; i++)
        if (open_conns[i] == c)
            open_conns[i] = NULL;
    tb_pipe_close(c->c_pipe);
    free(c->c_buf);
    free(c->c_arena_mem);
    free(c);
}

int tb_send_raw(tb_conn_t *c, const void *buf, size_t n)
{
    return tb_pipe_write(c->c_pipe, buf, n);
}

int tb_send_msg(tb_conn_t *c, uint8_t type, const ProtobufCMessage *msg)
{
    uint8_t buf[DCB_FRAME_HEADER_SIZE + DCB_MAX_FRAME_EVENT];
    int n = dcb_frame_encode(type, msg, buf, sizeof(buf));

    if (n < 0)
        return n;
    return tb_pipe_write(c->c_pipe, buf, (size_t)n);
}

int tb_recv_msg(tb_conn_t *c, int timeout_ms, dcb_msg_t *out)
{
    uint64_t end = dcb_now_ns() + (uint64_t)timeout_ms * 1000000u;

    /* Drop the frame handed out last time. */
    for (;;) {
        dcb_frame_hdr_t hdr;
        int rc = dcb_frame_header(c->c_buf, c->c_len, &c->c_lim, &hdr);
        uint64_t now;

        if (rc == 0 && c->c_len >= DCB_FRAME_HEADER_SIZE + hdr.length) {
            size_t len = DCB_FRAME_HEADER_SIZE + hdr.length;
            static uint8_t frame[DCB_FRAME_HEADER_SIZE + DCB_MAX_FRAME_EVENT];
            memcpy(frame, c->c_buf, len);
            memmove(c->c_buf, c->c_buf + len, c->c_len - len);
            c->c_len -= len;
            return dcb_frame_decode(frame, len, &c->c_lim, &c->c_arena, out);
        }
        if (rc != 0 && rc != DCB_E_TRUNCATED)
            return rc;
        now = dcb_now_ns();
        if (now >= end)
            return TB_TIMEOUT;
        rc = tb_pipe_read(c->c_pipe, c->c_buf + c->c_len,
                          DCB_FRAME_HEADER_SIZE + DCB_MAX_FRAME_EVENT - c->c_len,
                          (int)((end - now) / 1000000u) + 1);
        if (rc < 0)
            return rc;
        c->c_len += (size_t)rc;
    }
}

Dcb__Welcome *tb_hello(tb_conn_t *c, int role, const char *const *dlls, size_t n)
{
    Dcb__Hello h = DCB__HELLO__INIT;
    dcb_msg_t m;

    h.protocol_version = DCB_PROTO_VERSION;
    h.role = role;
    h.has_pid = 1;
    h.pid = dcb_getpid();
    h.has_instance_id = 1;
    h.instance_id = 0x7E57;
    h.shim_version = "tb";
    h.chain_dlls = (char **)dlls;
    h.n_chain_dlls = n;
    if (tb_send_msg(c, DCB__FRAME_TYPE__FT_HELLO, &h.base) != 0)
        return NULL;
    if (tb_recv_msg(c, 10000, &m) != 0 || m.type != DCB__FRAME_TYPE__FT_WELCOME)
        return NULL;
    return (Dcb__Welcome *)m.msg;
}

static uint64_t next_request_id = 1;

int tb_send_request(tb_conn_t *c, int hook, uint64_t packet_id, uint32_t seq, const uint8_t *pkt,
                    size_t len, uint32_t deadline_us)
{
    Dcb__EventHeader hdr = DCB__EVENT_HEADER__INIT;

    hdr.packet_id = packet_id;
    hdr.seq = seq;
    hdr.deadline_us = deadline_us;
    hdr.has_request_id = 1;
    hdr.request_id = next_request_id++;
    hdr.has_reserved = 1;
    hdr.reserved = 0xABCD0000u + packet_id;
    if (hook == DCB_HOOK_NEWPKT) {
        Dcb__NewPktEvent e = DCB__NEW_PKT_EVENT__INIT;
        e.hdr = &hdr;
        e.packet.data = (uint8_t *)pkt;
        e.packet.len = len;
        e.ip_address = 0x0100007f;
        return tb_send_msg(c, DCB__FRAME_TYPE__FT_EV_NEWPKT, &e.base);
    } else {
        Dcb__PktSendEvent e = DCB__PKT_SEND_EVENT__INIT;
        e.hdr = &hdr;
        e.packet.data = (uint8_t *)pkt;
        e.packet.len = len;
        e.control_code = DHCP_SEND_PACKET;
        e.ip_address = 0x0100007f;
        return tb_send_msg(c, DCB__FRAME_TYPE__FT_EV_PKTSEND, &e.base);
    }
}

void tb_wait_decision(tb_conn_t *c, int timeout_ms, tb_decision_t *d)
{
    dcb_msg_t m;

    d->td_rc = tb_recv_msg(c, timeout_ms, &m);
    d->td_process_it = 1;
    d->td_reason = 0;
    d->td_has_packet = 0;
    d->td_len = 0;
    if (d->td_rc != 0)
        return;
    if (m.type == DCB__FRAME_TYPE__FT_NEWPKT_DECISION) {
        Dcb__NewPktDecision *x = (Dcb__NewPktDecision *)m.msg;
        d->td_process_it = x->process_it;
        d->td_reason = x->has_default_reason ? x->default_reason : 0;
        if (x->has_packet) {
            d->td_has_packet = 1;
            d->td_len = x->packet.len;
            memcpy(d->td_packet, x->packet.data, x->packet.len);
        }
    } else if (m.type == DCB__FRAME_TYPE__FT_PKTSEND_DECISION) {
        Dcb__PktSendDecision *x = (Dcb__PktSendDecision *)m.msg;
        d->td_reason = x->has_default_reason ? x->default_reason : 0;
        if (x->has_packet) {
            d->td_has_packet = 1;
            d->td_len = x->packet.len;
            memcpy(d->td_packet, x->packet.data, x->packet.len);
        }
    } else {
        d->td_rc = DCB_E_TYPE;
    }
}

static void request(tb_conn_t *c, int hook, uint64_t packet_id, uint32_t seq, const char *packet,
                    uint32_t deadline_us, tb_decision_t *d)
{
    uint64_t t0 = dcb_now_ns();

    d->td_rc = tb_send_request(c, hook, packet_id, seq, (const uint8_t *)packet, strlen(packet),
                               deadline_us);
    if (d->td_rc != 0)
        return;
    tb_wait_decision(c, (int)(deadline_us / 1000u) + 10000, d);
    d->td_elapsed_us = (dcb_now_ns() - t0) / 1000u;
}

void tb_newpkt(tb_conn_t *c, uint64_t packet_id, const char *packet, uint32_t deadline_us,
               tb_decision_t *d)
{
    request(c, DCB_HOOK_NEWPKT, packet_id, 0, packet, deadline_us, d);
}

void tb_pktsend(tb_conn_t *c, uint64_t packet_id, uint32_t seq, const char *packet,
                uint32_t deadline_us, tb_decision_t *d)
{
    request(c, DCB_HOOK_PKTSEND, packet_id, seq, packet, deadline_us, d);
}

int tb_pktdrop(tb_conn_t *c, uint64_t packet_id, uint32_t seq, const char *packet, uint32_t code)
{
    Dcb__EventHeader hdr = DCB__EVENT_HEADER__INIT;
    Dcb__PktDropEvent e = DCB__PKT_DROP_EVENT__INIT;

    hdr.packet_id = packet_id;
    hdr.seq = seq;
    hdr.deadline_us = 0;
    e.hdr = &hdr;
    e.packet.data = (uint8_t *)packet;
    e.packet.len = strlen(packet);
    e.control_code = code;
    e.ip_address = 0x0100007f;
    return tb_send_msg(c, DCB__FRAME_TYPE__FT_EV_PKTDROP, &e.base);
}

int tb_handleoptions(tb_conn_t *c, uint64_t packet_id, uint32_t seq, const char *packet)
{
    Dcb__EventHeader hdr = DCB__EVENT_HEADER__INIT;
    Dcb__HandleOptionsEvent e = DCB__HANDLE_OPTIONS_EVENT__INIT;
    Dcb__ServerOptions o = DCB__SERVER_OPTIONS__INIT;
    static const uint8_t extra[] = {0x01, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF};

    hdr.packet_id = packet_id;
    hdr.seq = seq;
    e.hdr = &hdr;
    e.packet.data = (uint8_t *)packet;
    e.packet.len = strlen(packet);
    /* MessageType points at the packet's first byte; the hardware address is in extra. */
    o.has_message_type = 1;
    o.message_type = 1;
    o.has_extra = 1;
    o.extra.data = (uint8_t *)extra;
    o.extra.len = sizeof(extra);
    o.has_client_hardware_address_type = 1;
    o.client_hardware_address_type = 1;
    o.has_client_hardware_address_length = 1;
    o.client_hardware_address_length = 6;
    o.has_client_hardware_address = 1;
    o.client_hardware_address = (uint32_t)e.packet.len + 2;
    o.has_dns_flags = 1;
    o.dns_flags = 3;
    e.options = &o;
    return tb_send_msg(c, DCB__FRAME_TYPE__FT_EV_HANDLEOPTIONS, &e.base);
}

int tb_control(tb_conn_t *c, uint32_t code)
{
    Dcb__EventHeader hdr = DCB__EVENT_HEADER__INIT;
    Dcb__ControlEvent e = DCB__CONTROL_EVENT__INIT;

    e.hdr = &hdr;
    e.control_code = code;
    return tb_send_msg(c, DCB__FRAME_TYPE__FT_EV_CONTROL, &e.base);
}
