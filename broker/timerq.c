/*
 * timerq.c — many deadlines on one uv_timer_t.
 *
 * Requests, plugin steps, reorder holds, watchdogs and restarts each need a
 * deadline. A uv_timer_t per object would tie every object's lifetime to a
 * close callback; a binary heap of plain structs keeps the objects simple
 * (stop the timer, free the object) and costs one uv_timer_t in all.
 *
 * libuv's timers count whole milliseconds of loop time, so a wakeup can
 * come up to a millisecond before a nanosecond deadline: entries due within
 * that slack fire early rather than a whole tick late, which keeps answers
 * ahead of the shim's deadline.
 */
#include "broker.h"

#include <stdlib.h>

#define TIMERQ_SLACK_NS 1000000u

void btimer_init(btimer_t *t, btimer_cb cb)
{
    t->bt_due_ns = 0;
    t->bt_idx = (size_t)-1;
    t->bt_cb = cb;
}

static void heap_set(broker_t *b, size_t i, btimer_t *t)
{
    b->b_heap[i] = t;
    t->bt_idx = i;
}

static void sift_up(broker_t *b, size_t i)
{
    btimer_t *t = b->b_heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (b->b_heap[parent]->bt_due_ns <= t->bt_due_ns)
            break;
        heap_set(b, i, b->b_heap[parent]);
        i = parent;
    }
    heap_set(b, i, t);
}

static void sift_down(broker_t *b, size_t i)
{
    btimer_t *t = b->b_heap[i];

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= b->b_heap_len)
            break;
        if (c + 1 < b->b_heap_len && b->b_heap[c + 1]->bt_due_ns < b->b_heap[c]->bt_due_ns)
            c++;
        if (t->bt_due_ns <= b->b_heap[c]->bt_due_ns)
            break;
        heap_set(b, i, b->b_heap[c]);
        i = c;
    }
    heap_set(b, i, t);
}

static void heap_remove(broker_t *b, btimer_t *t)
{
    size_t i = t->bt_idx;
    btimer_t *last;

    t->bt_idx = (size_t)-1;
    last = b->b_heap[--b->b_heap_len];
    if (i == b->b_heap_len)
        return;
    heap_set(b, i, last);
    if (i > 0 && b->b_heap[(i - 1) / 2]->bt_due_ns > last->bt_due_ns)
        sift_up(b, i);
    else
        sift_down(b, i);
}

static void timerq_cb(uv_timer_t *handle);

static void rearm(broker_t *b)
{
    uint64_t now, ms;

    if (!b->b_timer_open)
        return;
    if (b->b_heap_len == 0) {
        uv_timer_stop(&b->b_timer);
        return;
    }
    now = dcb_now_ns();
    ms = 0;
    if (b->b_heap[0]->bt_due_ns > now + TIMERQ_SLACK_NS)
        ms = (b->b_heap[0]->bt_due_ns - now) / 1000000u;
    uv_update_time(b->b_loop);
    uv_timer_start(&b->b_timer, timerq_cb, ms, 0);
}

static void timerq_cb(uv_timer_t *handle)
{
    broker_t *b = handle->data;

    for (;;) {
        uint64_t now = dcb_now_ns();
        btimer_t *t;

        if (b->b_heap_len == 0 || b->b_heap[0]->bt_due_ns > now + TIMERQ_SLACK_NS)
            break;
        t = b->b_heap[0];
        heap_remove(b, t);
        t->bt_cb(t);
    }
    rearm(b);
}

void btimer_start(broker_t *b, btimer_t *t, uint64_t due_ns)
{
    int was_first;

    if (!b->b_timer_open)
        return; /* shut down */
    if (btimer_active(t))
        heap_remove(b, t);
    if (b->b_heap_len == b->b_heap_cap) {
        size_t cap = b->b_heap_cap ? b->b_heap_cap * 2 : 64;
        btimer_t **nh = realloc(b->b_heap, cap * sizeof(*nh));
        if (nh == NULL) {
            /* Out of memory: fire at once rather than never. */
            t->bt_cb(t);
            return;
        }
        b->b_heap = nh;
        b->b_heap_cap = cap;
    }
    t->bt_due_ns = due_ns;
    heap_set(b, b->b_heap_len++, t);
    sift_up(b, t->bt_idx);
    was_first = t->bt_idx == 0;
    if (was_first)
        rearm(b);
}

void btimer_stop(broker_t *b, btimer_t *t)
{
    if (!btimer_active(t))
        return;
    heap_remove(b, t);
    /* The uv timer may now fire early for nothing; that is harmless. */
}

int timerq_init(broker_t *b)
{
    int rc = uv_timer_init(b->b_loop, &b->b_timer);

    if (rc != 0)
        return rc;
    b->b_timer.data = b;
    b->b_timer_open = 1;
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    (void)h;
}

void timerq_close(broker_t *b)
{
    if (b->b_timer_open) {
        b->b_timer_open = 0;
        uv_close((uv_handle_t *)&b->b_timer, timer_closed);
    }
    /* Whatever is still queued is simply not due any more. */
    for (size_t i = 0; i < b->b_heap_len; i++)
        b->b_heap[i]->bt_idx = (size_t)-1;
    free(b->b_heap);
    b->b_heap = NULL;
    b->b_heap_len = b->b_heap_cap = 0;
}
