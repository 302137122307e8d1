/*
 * wire.c — dcb frames over libuv streams.
 *
 * Reading: bytes accumulate in one buffer per stream. The 8-byte header is
 * checked (magic, version, type, length against the reader's limit) as
 * soon as it is complete, before any payload is buffered, so a peer can
 * never make the broker hold more than one frame of its limit.
 *
 * Writing: frames are encoded into the broker's scratch buffer and handed
 * to uv_try_write; only what the kernel did not take at once is copied into
 * a write request, which lives until its callback.
 */
#include "broker.h"

#include <stdlib.h>
#include <string.h>

#define WIRE_MIN_ROOM 4096u

void wire_rd_free(wire_rd_t *rd)
{
    free(rd->wr_buf);
    rd->wr_buf = NULL;
    rd->wr_len = rd->wr_cap = 0;
}

static int reserve(wire_rd_t *rd, size_t need)
{
    uint8_t *nb;
    size_t cap;

    if (rd->wr_cap >= need)
        return 0;
    cap = rd->wr_cap ? rd->wr_cap : WIRE_MIN_ROOM;
    while (cap < need)
        cap *= 2;
    nb = realloc(rd->wr_buf, cap);
    if (nb == NULL)
        return UV_ENOMEM;
    rd->wr_buf = nb;
    rd->wr_cap = cap;
    return 0;
}

void wire_rd_alloc(wire_rd_t *rd, uv_buf_t *buf)
{
    if (rd->wr_cap - rd->wr_len < WIRE_MIN_ROOM / 4 &&
        reserve(rd, rd->wr_len + WIRE_MIN_ROOM) != 0) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)rd->wr_buf + rd->wr_len;
    buf->len = rd->wr_cap - rd->wr_len;
}

int wire_rd_next(wire_rd_t *rd, const dcb_limits_t *lim, size_t *frame_len)
{
    dcb_frame_hdr_t hdr;
    size_t need;
    int rc;

    if (rd->wr_len == 0)
        return 0;
    rc = dcb_frame_header(rd->wr_buf, rd->wr_len, lim, &hdr);
    if (rc == DCB_E_TRUNCATED)
        return 0;
    if (rc != 0)
        return rc;
    need = DCB_FRAME_HEADER_SIZE + (size_t)hdr.length;
    if (rd->wr_len < need) {
        /* The header is good: make room for exactly this frame (within the limit). */
        if (reserve(rd, need) != 0)
            return DCB_E_NOMEM;
        return 0;
    }
    *frame_len = need;
    return 1;
}

void wire_rd_consume(wire_rd_t *rd, size_t n)
{
    if (n >= rd->wr_len) {
        rd->wr_len = 0;
        /* A stream that once carried a big frame gives the memory back. */
        if (rd->wr_cap > 4 * WIRE_MIN_ROOM) {
            free(rd->wr_buf);
            rd->wr_buf = NULL;
            rd->wr_cap = 0;
        }
        return;
    }
    memmove(rd->wr_buf, rd->wr_buf + n, rd->wr_len - n);
    rd->wr_len -= n;
}

typedef struct wire_wreq {
    uv_write_t ww_req;
    uint8_t ww_data[];
} wire_wreq_t;

static void write_cb(uv_write_t *req, int status)
{
    (void)status; /* A failed write shows up as EOF or an error on the read side. */
    free(broker_container_of(req, wire_wreq_t, ww_req));
}

int wire_write(broker_t *b, uv_stream_t *s, uint8_t type, const ProtobufCMessage *msg)
{
    size_t size = dcb_frame_size(msg);
    uv_buf_t buf;
    wire_wreq_t *w;
    int n, rc;

    if (size > b->b_wbuf_cap) {
        uint8_t *nb = realloc(b->b_wbuf, size);
        if (nb == NULL)
            return UV_ENOMEM;
        b->b_wbuf = nb;
        b->b_wbuf_cap = size;
    }
    n = dcb_frame_encode(type, msg, b->b_wbuf, b->b_wbuf_cap);
    if (n < 0)
        return n;
    buf = uv_buf_init((char *)b->b_wbuf, (unsigned)n);
    rc = uv_try_write(s, &buf, 1);
    if (rc == n)
        return 0;
    if (rc < 0)
        rc = 0; /* EAGAIN, or not supported for this handle: queue it all. */
    w = malloc(sizeof(*w) + (size_t)(n - rc));
    if (w == NULL)
        return UV_ENOMEM;
    memcpy(w->ww_data, b->b_wbuf + rc, (size_t)(n - rc));
    buf = uv_buf_init((char *)w->ww_data, (unsigned)(n - rc));
    rc = uv_write(&w->ww_req, s, &buf, 1, write_cb);
    if (rc != 0)
        free(w);
    return rc;
}
