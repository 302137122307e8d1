/*
 * wire.c — dcb frames over libuv streams.
 *
 * Reading: bytes accumulate in one buffer per stream. The 8-byte header is
 * checked (magic, version, type, length against the reader's limit) as
 * soon as it is complete, before any payload is buffered, so a peer can
 * never make the broker hold more than one frame of its limit.
 *
 * Writing is coalesced: wire_send encodes a frame at the end of its
 * stream's buffer (wire_wr_t) and puts the stream on the broker's pending
 * list, without a system call. Once per loop iteration wire_flush_all
 * writes each pending stream's frames with one uv_try_write: from a
 * uv_check_t right after the I/O poll, so what the read callbacks produced
 * leaves in the same iteration, and from a uv_prepare_t right before the
 * loop blocks, for what timer and other callbacks produced. Under load the
 * broker forwards many frames per iteration to the same host; one write per
 * stream and iteration saves the system calls and wake-ups of one write per
 * frame, and the peer reads several frames with one read. Only what the
 * kernel did not take at once goes into a write request, which lives until
 * its callback. (Where uv_try_write does not work, as on some Windows
 * pipes, everything goes through that request.)
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

/* A write buffer that grew past this is given back once it is flushed. */
#define WIRE_WR_KEEP (64u * 1024u)

typedef struct wire_wreq {
    uv_write_t wq_req;
    uint8_t *wq_owned; /* a stream's whole buffer, taken over instead of copied; or NULL */
    uint8_t wq_data[];
} wire_wreq_t;

static void write_cb(uv_write_t *req, int status)
{
    wire_wreq_t *q = broker_container_of(req, wire_wreq_t, wq_req);

    (void)status; /* A failed write shows up as EOF or an error on the read side. */
    free(q->wq_owned);
    free(q);
}

void wire_wr_init(wire_wr_t *w, uv_stream_t *s, wire_wr_err_cb on_error)
{
    memset(w, 0, sizeof(*w));
    w->ww_stream = s;
    w->ww_on_error = on_error;
    blist_init(&w->ww_link);
}

static void wr_unlink(wire_wr_t *w)
{
    if (w->ww_pending) {
        blist_del(&w->ww_link);
        w->ww_pending = 0;
    }
}

/* Everything buffered is written or dropped: keep the buffer unless it is big. */
static void wr_emptied(wire_wr_t *w)
{
    w->ww_len = 0;
    if (w->ww_cap > WIRE_WR_KEEP) {
        free(w->ww_buf);
        w->ww_buf = NULL;
        w->ww_cap = 0;
    }
}

void wire_wr_free(wire_wr_t *w)
{
    wr_unlink(w);
    free(w->ww_buf);
    w->ww_buf = NULL;
    w->ww_len = w->ww_cap = 0;
    w->ww_stream = NULL;
}

size_t wire_wr_queued(const wire_wr_t *w)
{
    return w->ww_len + (w->ww_stream != NULL ? w->ww_stream->write_queue_size : 0);
}

int wire_send(broker_t *b, wire_wr_t *w, uint8_t type, const ProtobufCMessage *msg)
{
    size_t size = dcb_frame_size(msg);
    int n;

    if (w->ww_stream == NULL)
        return UV_EPIPE;
    /* Far beyond what back-pressure lets through; uv_buf_t lengths are unsigned int. */
    if (size > (size_t)INT32_MAX - w->ww_len)
        return UV_ENOBUFS;
    if (w->ww_cap - w->ww_len < size) {
        size_t cap = w->ww_cap ? w->ww_cap : WIRE_MIN_ROOM;
        uint8_t *nb;

        while (cap - w->ww_len < size)
            cap *= 2;
        nb = realloc(w->ww_buf, cap);
        if (nb == NULL)
            return UV_ENOMEM;
        w->ww_buf = nb;
        w->ww_cap = cap;
    }
    n = dcb_frame_encode(type, msg, w->ww_buf + w->ww_len, w->ww_cap - w->ww_len);
    if (n < 0)
        return n;
    w->ww_len += (size_t)n;
    if (!w->ww_pending) {
        blist_add_tail(&b->b_wpending, &w->ww_link);
        w->ww_pending = 1;
    }
    return 0;
}

int wire_wr_flush(wire_wr_t *w)
{
    size_t len = w->ww_len, done, rest;
    wire_wreq_t *q;
    uv_buf_t buf;
    int rc;

    wr_unlink(w);
    if (len == 0)
        return 0;
    buf = uv_buf_init((char *)w->ww_buf, (unsigned)len);
    rc = uv_try_write(w->ww_stream, &buf, 1);
    /* EAGAIN, or not supported for this handle: queue it all. */
    done = rc > 0 ? (size_t)rc : 0;
    if (done == len) {
        wr_emptied(w);
        return 0;
    }
    rest = len - done;
    if (w->ww_cap > WIRE_WR_KEEP) {
        /* It would be given back anyway: hand the buffer over rather than copy it. */
        q = malloc(sizeof(*q));
        if (q != NULL) {
            q->wq_owned = w->ww_buf;
            buf = uv_buf_init((char *)w->ww_buf + done, (unsigned)rest);
            w->ww_buf = NULL;
            w->ww_cap = 0;
        }
    } else {
        q = malloc(sizeof(*q) + rest);
        if (q != NULL) {
            q->wq_owned = NULL;
            memcpy(q->wq_data, w->ww_buf + done, rest);
            buf = uv_buf_init((char *)q->wq_data, (unsigned)rest);
        }
    }
    wr_emptied(w);
    if (q == NULL)
        return UV_ENOMEM;
    rc = uv_write(&q->wq_req, w->ww_stream, &buf, 1, write_cb);
    if (rc != 0) {
        free(q->wq_owned);
        free(q);
    }
    return rc;
}

void wire_flush_all(broker_t *b)
{
    /*
     * The head is taken anew each time: an error callback may close and
     * free any stream, and what it sends queues more.
     */
    while (!blist_empty(&b->b_wpending)) {
        wire_wr_t *w = broker_container_of(b->b_wpending.next, wire_wr_t, ww_link);
        wire_wr_err_cb cb = w->ww_on_error;
        int rc = wire_wr_flush(w); /* takes w off the list */

        if (rc == 0)
            continue;
        if (cb != NULL)
            cb(w, rc); /* may free w */
        else
            dcb_log(DCB_LOG_DEBUG, "stream write failed (%s); frames dropped", uv_strerror(rc));
    }
}

/*
 * Busy polling. When the broker sleeps between events, every event wakes
 * it, and the wake-up is the dearest part of forwarding it: an idle CPU
 * halts, and on a virtual machine waking it takes an inter-processor
 * interrupt and an exit to the hypervisor (tens of microseconds, measured in
 * tools/bench/README.md). So while events keep coming closer together than
 * busy_poll_us, the loop polls (an active uv_idle_t makes libuv poll with a
 * zero timeout) and goes back to sleeping busy_poll_us after the last one.
 * At the rates a DHCP server usually sees it never polls; 0 turns it off.
 * With one CPU to run on it never polls either: the loop would only keep
 * the host and the server's threads from the CPU.
 */
static void poll_idle_cb(uv_idle_t *h)
{
    broker_t *b = h->data;

    if (dcb_now_ns() - b->b_poll_last_ns >= (uint64_t)b->b_cfg->cfg_busy_poll_us * 1000u) {
        uv_idle_stop(&b->b_poll);
        b->b_polling = 0;
    }
}

/* A loop iteration that forwarded something. */
static void poll_note_activity(broker_t *b)
{
    uint64_t window = (uint64_t)b->b_cfg->cfg_busy_poll_us * 1000u, now, gap;

    if (window == 0 || !b->b_poll_ok)
        return;
    now = dcb_now_ns();
    if (b->b_poll_last_ns == 0) {
        /* The first event: as if the ones before were far apart. */
        b->b_poll_last_ns = now;
        b->b_poll_gap_ns = 10 * window;
        return;
    }
    gap = now - b->b_poll_last_ns;
    if (gap > 10 * window)
        gap = 10 * window;
    b->b_poll_gap_ns = gap > b->b_poll_gap_ns ? b->b_poll_gap_ns + (gap - b->b_poll_gap_ns) / 8u
                                              : b->b_poll_gap_ns - (b->b_poll_gap_ns - gap) / 8u;
    b->b_poll_last_ns = now;
    if (!b->b_polling && b->b_poll_gap_ns < window && uv_idle_start(&b->b_poll, poll_idle_cb) == 0)
        b->b_polling = 1;
}

static void flush_check_cb(uv_check_t *h)
{
    broker_t *b = h->data;

    if (!blist_empty(&b->b_wpending))
        poll_note_activity(b);
    wire_flush_all(b);
}

static void flush_prepare_cb(uv_prepare_t *h)
{
    wire_flush_all(h->data);
}

int wire_flush_start(broker_t *b)
{
    int rc;

    blist_init(&b->b_wpending);
    if ((rc = uv_check_init(b->b_loop, &b->b_wcheck)) != 0)
        return rc;
    if ((rc = uv_prepare_init(b->b_loop, &b->b_wprepare)) != 0) {
        uv_close((uv_handle_t *)&b->b_wcheck, NULL);
        return rc;
    }
    if ((rc = uv_idle_init(b->b_loop, &b->b_poll)) != 0) {
        uv_close((uv_handle_t *)&b->b_wcheck, NULL);
        uv_close((uv_handle_t *)&b->b_wprepare, NULL);
        return rc;
    }
    b->b_wcheck.data = b->b_wprepare.data = b->b_poll.data = b;
    b->b_polling = 0;
    b->b_poll_ok = uv_available_parallelism() > 1;
    if (b->b_cfg->cfg_busy_poll_us > 0)
        dcb_log(DCB_LOG_INFO, "busy polling %s (busy_poll_us %u, %u CPUs available)",
                b->b_poll_ok ? "while events come close together" : "off: one CPU",
                b->b_cfg->cfg_busy_poll_us, uv_available_parallelism());
    b->b_wflush_open = 1;
    uv_check_start(&b->b_wcheck, flush_check_cb);
    uv_prepare_start(&b->b_wprepare, flush_prepare_cb);
    /* Neither keeps the loop alive; wire_flush_stop (at the end of shutdown) closes them. */
    uv_unref((uv_handle_t *)&b->b_wcheck);
    uv_unref((uv_handle_t *)&b->b_wprepare);
    uv_unref((uv_handle_t *)&b->b_poll);
    return 0;
}

void wire_flush_stop(broker_t *b)
{
    if (!b->b_wflush_open)
        return;
    b->b_wflush_open = 0;
    uv_close((uv_handle_t *)&b->b_wcheck, NULL);
    uv_close((uv_handle_t *)&b->b_wprepare, NULL);
    uv_close((uv_handle_t *)&b->b_poll, NULL);
    b->b_polling = 0;
}
