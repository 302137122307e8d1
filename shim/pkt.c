/*
 * pkt.c — the per-packet record, which is the shim's PktContext.
 *
 * NewPkt creates it and hands it to the server, which passes it back to
 * every later hook of that packet. It carries the packet's id and sequence
 * counter, and owns every buffer the shim gave the server in place of the
 * packet (the server uses such a buffer but never frees it). The final
 * PktDrop(PROCESSED) frees the record and its buffers; at STOP the server
 * frees its packets without drop callbacks, so every live record is kept on
 * a list and freed then.
 */
#include "shim.h"

#include <stdlib.h>

struct dcb__pktbuf {
    dcb__pktbuf_t *b_next;
    _Alignas(16) uint8_t b_data[];
};

static struct {
    dcb_mutex_t l_lock;
    dcb__pkt_t *l_head;
    uint64_t l_count;
    _Atomic uint64_t l_next_id;
} live;

void dcb__pkt_init(void)
{
    static int inited;

    /* The list outlives STOP (a START may follow), so it is set up once. */
    if (!inited) {
        dcb_mutex_init(&live.l_lock);
        atomic_store(&live.l_next_id, 1);
        inited = 1;
    }
}

dcb__pkt_t *dcb__pkt_new(int anonymous)
{
    dcb__pkt_t *p = malloc(sizeof(*p));

    if (p == NULL)
        return NULL;
    p->pk_magic = DCB__PKT_MAGIC;
    /* Unseen until NewPkt is on its way to the broker (request.c clears it). */
    p->pk_flags = anonymous ? 0 : DCB__PKT_UNSEEN;
    p->pk_id = anonymous ? 0 : atomic_fetch_add_explicit(&live.l_next_id, 1, memory_order_relaxed);
    p->pk_seq = 0;
    p->pk_bufs = NULL;
    p->pk_prev = NULL;
    dcb_mutex_lock(&live.l_lock);
    p->pk_next = live.l_head;
    if (live.l_head != NULL)
        live.l_head->pk_prev = p;
    live.l_head = p;
    live.l_count++;
    dcb_mutex_unlock(&live.l_lock);
    return p;
}

uint8_t *dcb__pkt_alloc_buf(dcb__pkt_t *p, size_t len)
{
    dcb__pktbuf_t *b = malloc(sizeof(*b) + len);

    if (b == NULL)
        return NULL;
    b->b_next = p->pk_bufs;
    p->pk_bufs = b;
    return b->b_data;
}

static void pkt_release(dcb__pkt_t *p)
{
    dcb__pktbuf_t *b;

    while ((b = p->pk_bufs) != NULL) {
        p->pk_bufs = b->b_next;
        free(b);
    }
    p->pk_magic = 0;
    free(p);
}

void dcb__pkt_free(dcb__pkt_t *p)
{
    dcb_mutex_lock(&live.l_lock);
    if (p->pk_prev != NULL)
        p->pk_prev->pk_next = p->pk_next;
    else
        live.l_head = p->pk_next;
    if (p->pk_next != NULL)
        p->pk_next->pk_prev = p->pk_prev;
    live.l_count--;
    dcb_mutex_unlock(&live.l_lock);
    pkt_release(p);
}

void dcb__pkt_free_all(void)
{
    dcb__pkt_t *p, *next;
    uint64_t n;

    dcb_mutex_lock(&live.l_lock);
    p = live.l_head;
    n = live.l_count;
    live.l_head = NULL;
    live.l_count = 0;
    dcb_mutex_unlock(&live.l_lock);
    for (; p != NULL; p = next) {
        next = p->pk_next;
        pkt_release(p);
    }
    if (n > 0)
        dcb__log(DCB_LOG_INFO, "freed %llu packet records left at STOP", (unsigned long long)n);
}

uint64_t dcb__pkt_live(void)
{
    uint64_t n;

    dcb_mutex_lock(&live.l_lock);
    n = live.l_count;
    dcb_mutex_unlock(&live.l_lock);
    return n;
}
