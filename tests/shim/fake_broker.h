/*
 * fake_broker.h — an in-test broker: listens where DCB_PIPE points, speaks
 * the shim<->broker protocol with the real codec, records every frame it
 * receives, and can be told how to answer requests.
 */
#ifndef DCB_TEST_FAKE_BROKER_H
#define DCB_TEST_FAKE_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include "dcb_proto.h"

typedef enum fb_mode {
    FB_ANSWER,     /* answer at once with the configured decision */
    FB_LATE,       /* answer after fb_set_late_ms() */
    FB_SILENT,     /* never answer */
    FB_GARBAGE,    /* bytes that are no frame at all */
    FB_WRONG_ID,   /* a decision for another request */
    FB_OVERSIZED,  /* a decision whose packet is over the shim's limit */
    FB_TRUNCATED,  /* half a decision, then close */
    FB_WRONG_TYPE, /* a Subscription frame instead of a decision */
    FB_DOUBLE      /* the decision twice */
} fb_mode_t;

typedef enum fb_reply {
    FB_REPLY_UNCHANGED, /* no packet in the decision */
    FB_REPLY_FIXED,     /* the bytes given to fb_set_reply() */
    FB_REPLY_MANGLE     /* the request's packet, byte 0 inverted, plus `grow` bytes of 0xAB */
} fb_reply_t;

typedef struct fb_frame {
    uint8_t f_type;
    int f_role; /* Dcb__ConnRole of the connection it came on */
    size_t f_len;
    uint8_t *f_buf; /* the whole frame, header included */
} fb_frame_t;

typedef struct fb_hook_stats {
    int valid;
    uint64_t calls, unsub, d_timeout, d_no_broker, d_breaker, d_bad_reply, queue_full, d_other,
        lost, waited;
} fb_hook_stats_t;

typedef struct fake_broker fake_broker_t;

fake_broker_t *fb_start(const char *name, uint32_t welcome_hooks);
void fb_stop(fake_broker_t *fb);

void fb_set_mode(fake_broker_t *fb, fb_mode_t mode);
void fb_set_late_ms(fake_broker_t *fb, int ms);
void fb_set_process_it(fake_broker_t *fb, int process_it);
void fb_set_reply(fake_broker_t *fb, fb_reply_t kind, const uint8_t *pkt, size_t len, size_t grow);
void fb_set_oversize(fake_broker_t *fb, size_t len);
/* While set, NOTIFY connections are not read (a stalled broker). */
void fb_set_stall(fake_broker_t *fb, int stall);
/* Answers a NOTIFY Hello with a Subscription first, then the Welcome. */
void fb_set_sub_before_welcome(fake_broker_t *fb, int on);
/* Sends a Subscription on the NOTIFY connection(s). */
void fb_push_subscription(fake_broker_t *fb, uint32_t hooks);

int fb_hellos(fake_broker_t *fb, int role);
/* Frames of a type received so far (type 0: all). */
int fb_count(fake_broker_t *fb, uint8_t type);
/* A copy of the nth frame of a type (type 0: any); 0 or -1. Free with fb_frame_free. */
int fb_frame(fake_broker_t *fb, uint8_t type, int nth, fb_frame_t *out);
void fb_frame_free(fb_frame_t *f);
/* The chain DLLs the last Hello carried, joined with '|'. */
void fb_chain(fake_broker_t *fb, char *buf, size_t cap);

/* ShimStats frames received so far, and the latest figures for a hook. */
int fb_stats_count(fake_broker_t *fb);
int fb_stats(fake_broker_t *fb, int hook, fb_hook_stats_t *out);
uint64_t fb_packets_live(fake_broker_t *fb);

#endif
