/*
 * fake_server.c — the platform-neutral half of the fake control server:
 * the serving thread, request recording and canned answers.
 */
#include "fake_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcb_os.h"

#define FAKE_MAX_REQS 64
#define FAKE_MAX_CMD 16

struct fake_server {
    fnet_t *fs_net;
    char fs_name[256];
    dcb_thread_t fs_thread;
    dcb_mutex_t fs_lock;
    volatile int fs_stop;
    fake_mode_t fs_mode;
    uint32_t fs_delay_ms;
    uint8_t *fs_resp[FAKE_MAX_CMD]; /* encoded frames, by command */
    size_t fs_resp_len[FAKE_MAX_CMD];
    fake_req_t fs_reqs[FAKE_MAX_REQS];
    int fs_nreqs;
    int fs_nconns;
    uint8_t *fs_arena_mem;
    dcb_arena_t fs_arena;
};

static const dcb_limits_t fake_limits = {DCB_MAX_FRAME_CONTROL, DCB_MAX_PACKET_DEFAULT};

static void record(fake_server_t *fs, const Dcb__ControlRequest *r)
{
    fake_req_t *q;

    dcb_mutex_lock(&fs->fs_lock);
    if (fs->fs_nreqs < FAKE_MAX_REQS) {
        q = &fs->fs_reqs[fs->fs_nreqs];
        memset(q, 0, sizeof(*q));
        q->fr_command = (int)r->command;
        if (r->plugin != NULL) {
            q->fr_has_plugin = 1;
            snprintf(q->fr_plugin, sizeof(q->fr_plugin), "%s", r->plugin);
        }
        q->fr_has_timeout = r->has_timeout_ms;
        q->fr_timeout_ms = r->timeout_ms;
        q->fr_has_hook = r->has_hook;
        q->fr_hook = r->hook;
    }
    fs->fs_nreqs++;
    dcb_mutex_unlock(&fs->fs_lock);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Answers one request as the mode says; returns -1 to hang up. */
static int answer(fake_server_t *fs, fconn_t *c, int command)
{
    static const char garbage[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    uint8_t buf[64];
    fake_mode_t mode;
    uint32_t delay;
    uint8_t *frame = NULL;
    size_t len = 0;
    int rc;

    dcb_mutex_lock(&fs->fs_lock);
    mode = fs->fs_mode;
    delay = fs->fs_delay_ms;
    if (command > 0 && command < FAKE_MAX_CMD && fs->fs_resp[command] != NULL) {
        len = fs->fs_resp_len[command];
        frame = malloc(len);
        if (frame != NULL)
            memcpy(frame, fs->fs_resp[command], len);
    }
    dcb_mutex_unlock(&fs->fs_lock);
    if (frame == NULL) {
        /* No canned answer: a plain CS_OK. */
        Dcb__ControlResponse ok = DCB__CONTROL_RESPONSE__INIT;
        int n = dcb_frame_encode(DCB__FRAME_TYPE__FT_CTL_RESPONSE, &ok.base, buf, sizeof(buf));
        frame = malloc((size_t)n);
        if (frame == NULL)
            return -1;
        memcpy(frame, buf, (size_t)n);
        len = (size_t)n;
    }

    switch (mode) {
    case FAKE_SLOW:
        dcb_sleep_ms(delay);
        /* fall through */
    case FAKE_NORMAL:
        rc = fnet_write(c, frame, len);
        break;
    case FAKE_GARBAGE:
        rc = fnet_write(c, garbage, sizeof(garbage) - 1);
        break;
    case FAKE_CLOSE:
        rc = -1;
        break;
    case FAKE_TOOBIG:
        memcpy(buf, frame, DCB_FRAME_HEADER_SIZE);
        put_le32(buf + 4, DCB_MAX_FRAME_CONTROL + 1);
        rc = fnet_write(c, buf, DCB_FRAME_HEADER_SIZE);
        break;
    case FAKE_WRONG_TYPE: {
        Dcb__Ping pong = DCB__PING__INIT;
        int n;
        pong.nonce = 7;
        n = dcb_frame_encode(DCB__FRAME_TYPE__FT_PONG, &pong.base, buf, sizeof(buf));
        rc = fnet_write(c, buf, (size_t)n);
        break;
    }
    case FAKE_TRUNCATED:
        memcpy(buf, frame, DCB_FRAME_HEADER_SIZE);
        put_le32(buf + 4, 100);
        memset(buf + DCB_FRAME_HEADER_SIZE, 0, 10);
        fnet_write(c, buf, DCB_FRAME_HEADER_SIZE + 10);
        rc = -1;
        break;
    case FAKE_BAD_PAYLOAD:
        memcpy(buf, frame, DCB_FRAME_HEADER_SIZE);
        put_le32(buf + 4, 4);
        memset(buf + DCB_FRAME_HEADER_SIZE, 0xff, 4); /* an unterminated varint */
        rc = fnet_write(c, buf, DCB_FRAME_HEADER_SIZE + 4);
        break;
    default:
        rc = -1;
        break;
    }
    free(frame);
    return rc;
}

static void serve(fake_server_t *fs, fconn_t *c)
{
    uint8_t hdrbuf[DCB_FRAME_HEADER_SIZE];
    uint8_t *frame;
    dcb_frame_hdr_t hdr;
    dcb_msg_t msg;

    for (;;) {
        if (fnet_read(c, hdrbuf, sizeof(hdrbuf)) != 0)
            return;
        if (dcb_frame_header(hdrbuf, sizeof(hdrbuf), &fake_limits, &hdr) != 0 ||
            hdr.type != DCB__FRAME_TYPE__FT_CTL_REQUEST || hdr.length > 65536) {
            fprintf(stderr, "fake server: not a control request frame\n");
            return;
        }
        frame = malloc(DCB_FRAME_HEADER_SIZE + hdr.length);
        if (frame == NULL)
            return;
        memcpy(frame, hdrbuf, sizeof(hdrbuf));
        if (fnet_read(c, frame + DCB_FRAME_HEADER_SIZE, hdr.length) != 0 ||
            dcb_frame_decode(frame, DCB_FRAME_HEADER_SIZE + hdr.length, &fake_limits, &fs->fs_arena,
                             &msg) != 0) {
            fprintf(stderr, "fake server: a request that does not decode\n");
            free(frame);
            return;
        }
        free(frame);
        record(fs, (const Dcb__ControlRequest *)msg.msg);
        if (answer(fs, c, (int)((const Dcb__ControlRequest *)msg.msg)->command) != 0)
            return;
    }
}

static void server_main(void *arg)
{
    fake_server_t *fs = arg;

    while (!fs->fs_stop) {
        fconn_t *c = fnet_accept(fs->fs_net);
        if (c == NULL)
            break;
        if (fs->fs_stop) {
            fnet_close(c);
            break;
        }
        dcb_mutex_lock(&fs->fs_lock);
        fs->fs_nconns++;
        dcb_mutex_unlock(&fs->fs_lock);
        serve(fs, c);
        fnet_close(c);
    }
}

fake_server_t *fake_start(void)
{
    fake_server_t *fs = calloc(1, sizeof(*fs));
    size_t cap = 65536 * 10;

    if (fs == NULL)
        return NULL;
    fs->fs_arena_mem = malloc(cap);
    if (fs->fs_arena_mem == NULL ||
        fnet_listen(&fs->fs_net, fs->fs_name, sizeof(fs->fs_name)) != 0) {
        free(fs->fs_arena_mem);
        free(fs);
        return NULL;
    }
    dcb_arena_init(&fs->fs_arena, fs->fs_arena_mem, cap);
    dcb_mutex_init(&fs->fs_lock);
    if (dcb_thread_create(&fs->fs_thread, server_main, fs) != 0) {
        fnet_free(fs->fs_net, fs->fs_name);
        free(fs->fs_arena_mem);
        free(fs);
        return NULL;
    }
    return fs;
}

const char *fake_endpoint(const fake_server_t *fs)
{
    return fs->fs_name;
}

void fake_set_mode(fake_server_t *fs, fake_mode_t mode, uint32_t delay_ms)
{
    dcb_mutex_lock(&fs->fs_lock);
    fs->fs_mode = mode;
    fs->fs_delay_ms = delay_ms;
    dcb_mutex_unlock(&fs->fs_lock);
}

void fake_set_response(fake_server_t *fs, int command, const Dcb__ControlResponse *resp)
{
    size_t n = dcb_frame_size(&resp->base);
    uint8_t *frame = malloc(n);

    if (frame == NULL || command <= 0 || command >= FAKE_MAX_CMD ||
        dcb_frame_encode(DCB__FRAME_TYPE__FT_CTL_RESPONSE, &resp->base, frame, n) != (int)n) {
        fprintf(stderr, "fake server: cannot encode the canned response\n");
        free(frame);
        return;
    }
    dcb_mutex_lock(&fs->fs_lock);
    free(fs->fs_resp[command]);
    fs->fs_resp[command] = frame;
    fs->fs_resp_len[command] = n;
    dcb_mutex_unlock(&fs->fs_lock);
}

int fake_requests(fake_server_t *fs, fake_req_t *out, int max)
{
    int n;

    dcb_mutex_lock(&fs->fs_lock);
    n = fs->fs_nreqs;
    for (int i = 0; i < n && i < max && i < FAKE_MAX_REQS; i++)
        out[i] = fs->fs_reqs[i];
    dcb_mutex_unlock(&fs->fs_lock);
    return n;
}

int fake_connections(fake_server_t *fs)
{
    int n;

    dcb_mutex_lock(&fs->fs_lock);
    n = fs->fs_nconns;
    dcb_mutex_unlock(&fs->fs_lock);
    return n;
}

void fake_stop(fake_server_t *fs)
{
    if (fs == NULL)
        return;
    fs->fs_stop = 1;
    fnet_wake(fs->fs_net, fs->fs_name);
    dcb_thread_join(fs->fs_thread);
    fnet_free(fs->fs_net, fs->fs_name);
    for (int i = 0; i < FAKE_MAX_CMD; i++)
        free(fs->fs_resp[i]);
    dcb_mutex_destroy(&fs->fs_lock);
    free(fs->fs_arena_mem);
    free(fs);
}
