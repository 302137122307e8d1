/*
 * test_codec.c — frames and the codec: every message round-trips, and every
 * kind of bad frame is rejected with its own error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dcb_callout.h"
#include "dcb_proto.h"
#include "samples.h"

static const dcb_limits_t lim = {DCB_MAX_FRAME_CONTROL, DCB_MAX_PACKET_DEFAULT};

static uint8_t frame[1 << 20];
static uint8_t frame2[1 << 20];

static dcb_arena_t *new_arena(size_t cap)
{
    dcb_arena_t *a = malloc(sizeof(*a) + cap);

    assert_non_null(a);
    dcb_arena_init(a, a + 1, cap);
    return a;
}

/* Encode, decode, re-encode: the bytes must match and the type survive. */
static void roundtrip_one(uint8_t type, const ProtobufCMessage *msg)
{
    dcb_arena_t *a = new_arena(dcb_arena_size_for(lim.max_frame));
    dcb_msg_t out;
    int n, n2;

    n = dcb_frame_encode(type, msg, frame, sizeof(frame));
    assert_true(n >= DCB_FRAME_HEADER_SIZE);
    assert_int_equal((size_t)n, dcb_frame_size(msg));
    assert_int_equal(dcb_frame_decode(frame, (size_t)n, &lim, a, &out), 0);
    assert_int_equal(out.type, type);
    assert_int_equal(out.frame_len, (size_t)n);
    assert_ptr_equal(out.msg->descriptor, dcb_frame_descriptor(type));
    n2 = dcb_frame_encode(type, out.msg, frame2, sizeof(frame2));
    assert_int_equal(n2, n);
    assert_memory_equal(frame, frame2, (size_t)n);
    free(a);
}

static void test_roundtrip_every_message(void **state)
{
    dcb_sample_t s;
    int types = 0;

    for (int t = 0; t < 256; t++) {
        if (dcb_frame_descriptor((uint8_t)t) == NULL)
            continue;
        assert_true(dcb_sample_build((uint8_t)t, &s));
        roundtrip_one((uint8_t)t, s.msg);
        types++;
    }
    /* Every FrameType in dcb.proto except FT_NONE has a message. */
    assert_int_equal(types, (int)dcb__frame_type__descriptor.n_values - 1);
}

static void test_newpkt_fields_survive(void **state)
{
    dcb_arena_t *a = new_arena(dcb_arena_size_for(lim.max_frame));
    dcb_sample_t s;
    dcb_msg_t out;
    Dcb__NewPktEvent *e;
    int n;

    assert_true(dcb_sample_build(DCB__FRAME_TYPE__FT_EV_NEWPKT, &s));
    n = dcb_frame_encode(DCB__FRAME_TYPE__FT_EV_NEWPKT, s.msg, frame, sizeof(frame));
    assert_int_equal(dcb_frame_decode(frame, (size_t)n, &lim, a, &out), 0);
    e = (Dcb__NewPktEvent *)out.msg;
    assert_int_equal(e->hdr->packet_id, 0x1122334455667788ull);
    assert_int_equal(e->hdr->seq, 0);
    assert_int_equal(e->hdr->deadline_us, 100000);
    assert_int_equal(e->hdr->request_id, 42);
    assert_int_equal(e->ip_address, 0x0100000a);
    assert_int_equal(e->packet.len, DCB_SAMPLE_PACKET_LEN);
    assert_memory_equal(e->packet.data, dcb_sample_packet(), DCB_SAMPLE_PACKET_LEN);
    assert_ptr_equal(dcb_event_header(out.type, out.msg), e->hdr);
    assert_int_equal(dcb_frame_event_hook(out.type), DCB_HOOK_NEWPKT);
    assert_int_equal(DCB_FT_EVENT(DCB_HOOK_NEWPKT), DCB__FRAME_TYPE__FT_EV_NEWPKT);
    free(a);
}

static int encode_sample(uint8_t type)
{
    dcb_sample_t s;

    assert_true(dcb_sample_build(type, &s));
    return dcb_frame_encode(type, s.msg, frame, sizeof(frame));
}

static void test_truncated(void **state)
{
    dcb_arena_t *a = new_arena(dcb_arena_size_for(lim.max_frame));
    dcb_msg_t out;
    int n = encode_sample(DCB__FRAME_TYPE__FT_EV_NEWPKT);

    /* Every proper prefix is truncated: in the header or in the payload. */
    for (int cut = 0; cut < n; cut++)
        assert_int_equal(dcb_frame_decode(frame, (size_t)cut, &lim, a, &out), DCB_E_TRUNCATED);
    assert_null(out.msg);
    free(a);
}

static void test_oversized_checked_before_payload(void **state)
{
    dcb_arena_t *a = new_arena(4096);
    dcb_limits_t small = {1024, 512};
    dcb_frame_hdr_t hdr;
    dcb_msg_t out;
    uint8_t head[8] = {'D', 'C', DCB_PROTO_VERSION, DCB__FRAME_TYPE__FT_EV_NEWPKT,
                       0x01, 0x04, 0x00, 0x00}; /* 1025 bytes announced */

    /* The header alone is enough to refuse: nothing after it is needed. */
    assert_int_equal(dcb_frame_header(head, sizeof(head), &small, &hdr), DCB_E_TOOBIG);
    assert_int_equal(dcb_frame_decode(head, sizeof(head), &small, a, &out), DCB_E_TOOBIG);
    head[4] = 0x00; /* 1024: at the limit is fine (then truncated here) */
    assert_int_equal(dcb_frame_header(head, sizeof(head), &small, &hdr), 0);
    assert_int_equal(hdr.length, 1024);
    head[4] = head[5] = head[6] = head[7] = 0xff;
    assert_int_equal(dcb_frame_header(head, sizeof(head), &small, &hdr), DCB_E_TOOBIG);
    free(a);
}

static void test_oversized_packet_field(void **state)
{
    dcb_arena_t *a = new_arena(dcb_arena_size_for(lim.max_frame));
    dcb_limits_t tight = {DCB_MAX_FRAME_EVENT, DCB_SAMPLE_PACKET_LEN - 1};
    dcb_msg_t out;
    int n = encode_sample(DCB__FRAME_TYPE__FT_EV_NEWPKT);

    /* The frame fits, but the packet inside is one byte over the limit. */
    assert_int_equal(dcb_frame_decode(frame, (size_t)n, &tight, a, &out), DCB_E_INVALID);
    tight.max_packet++;
    assert_int_equal(dcb_frame_decode(frame, (size_t)n, &tight, a, &out), 0);
    free(a);
}

static void test_garbage_and_version_and_type(void **state)
{
    dcb_arena_t *a = new_arena(dcb_arena_size_for(lim.max_frame));
    dcb_msg_t out;
    int n = encode_sample(DCB__FRAME_TYPE__FT_HELLO);
    uint8_t bad[64];

    memcpy(bad, frame, 8);
    bad[0] = 'G';
    assert_int_equal(dcb_frame_decode(bad, 8, &lim, a, &out), DCB_E_MAGIC);
    assert_int_equal(dcb_frame_decode(bad, 1, &lim, a, &out), DCB_E_MAGIC);
    memcpy(bad, "GET / HTTP/1.1\r\n", 16);
    assert_int_equal(dcb_frame_decode(bad, 16, &lim, a, &out), DCB_E_MAGIC);

    memcpy(bad, frame, (size_t)n < sizeof(bad) ? (size_t)n : sizeof(bad));
    bad[2] = DCB_PROTO_VERSION + 1;
    assert_int_equal(dcb_frame_decode(bad, (size_t)n, &lim, a, &out), DCB_E_VERSION);
    bad[2] = 0;
    assert_int_equal(dcb_frame_decode(bad, (size_t)n, &lim, a, &out), DCB_E_VERSION);

    bad[2] = DCB_PROTO_VERSION;
    bad[3] = 99;
    assert_int_equal(dcb_frame_decode(bad, (size_t)n, &lim, a, &out), DCB_E_TYPE);
    bad[3] = 0;
    assert_int_equal(dcb_frame_decode(bad, (size_t)n, &lim, a, &out), DCB_E_TYPE);

    /* A valid header over a payload that is not a protobuf message. */
    n = encode_sample(DCB__FRAME_TYPE__FT_EV_NEWPKT);
    memset(frame + DCB_FRAME_HEADER_SIZE, 0xff, (size_t)n - DCB_FRAME_HEADER_SIZE);
    assert_int_equal(dcb_frame_decode(frame, (size_t)n, &lim, a, &out), DCB_E_DECODE);
    assert_null(out.msg);

    /* Distinct errors have distinct descriptions. */
    assert_string_not_equal(dcb_proto_strerror(DCB_E_TRUNCATED), dcb_proto_strerror(DCB_E_TOOBIG));
    assert_string_not_equal(dcb_proto_strerror(DCB_E_MAGIC), dcb_proto_strerror(DCB_E_VERSION));
    free(a);
}

static void test_missing_required_field(void **state)
{
    dcb_arena_t *a = new_arena(dcb_arena_size_for(lim.max_frame));
    dcb_msg_t out;
    Dcb__Ping ping = DCB__PING__INIT;
    int n;

    /* A Ping's payload decoded as a NewPktEvent lacks every required field. */
    ping.nonce = 7;
    n = dcb_frame_encode(DCB__FRAME_TYPE__FT_PING, &ping.base, frame, sizeof(frame));
    assert_true(n > 0);
    frame[3] = DCB__FRAME_TYPE__FT_EV_NEWPKT;
    assert_int_equal(dcb_frame_decode(frame, (size_t)n, &lim, a, &out), DCB_E_DECODE);
    /* And a message cannot be encoded as a frame of another type. */
    assert_int_equal(dcb_frame_encode(DCB__FRAME_TYPE__FT_EV_NEWPKT, &ping.base, frame,
                                      sizeof(frame)),
                     DCB_E_TYPE);
    free(a);
}

static void test_encode_never_overflows(void **state)
{
    dcb_sample_t s;
    int full;

    assert_true(dcb_sample_build(DCB__FRAME_TYPE__FT_EV_NEWPKT, &s));
    full = dcb_frame_encode(DCB__FRAME_TYPE__FT_EV_NEWPKT, s.msg, frame, sizeof(frame));
    assert_true(full > 0);
    for (int cap = 0; cap < full; cap++) {
        memset(frame, 0xAB, sizeof(frame));
        assert_int_equal(dcb_frame_encode(DCB__FRAME_TYPE__FT_EV_NEWPKT, s.msg, frame,
                                          (size_t)cap),
                         DCB_E_NOSPC);
        /* Nothing written when it does not fit. */
        assert_int_equal(frame[0], 0xAB);
    }
}

static void test_arena_bounds_memory(void **state)
{
    dcb_arena_t *a = new_arena(256);
    dcb_msg_t out;
    int n = encode_sample(DCB__FRAME_TYPE__FT_EV_NEWPKT);

    /* A 548-byte packet cannot be copied into a 256-byte arena. */
    assert_int_equal(dcb_frame_decode(frame, (size_t)n, &lim, a, &out), DCB_E_NOMEM);
    assert_true(a->a_used <= 256);
    free(a);
}

static void test_handleoptions_offsets_validated(void **state)
{
    dcb_arena_t *a = new_arena(dcb_arena_size_for(lim.max_frame));
    dcb_sample_t s;
    dcb_msg_t out;
    Dcb__HandleOptionsEvent *e;
    int n;

    assert_true(dcb_sample_build(DCB__FRAME_TYPE__FT_EV_HANDLEOPTIONS, &s));
    e = (Dcb__HandleOptionsEvent *)s.msg;
    /* The last 4 bytes of packet||extra are a valid place for a 4-byte value... */
    e->options->has_subnet_mask = 1;
    e->options->subnet_mask = (uint32_t)(e->packet.len + e->options->extra.len) - 4 + 1;
    n = dcb_frame_encode(DCB__FRAME_TYPE__FT_EV_HANDLEOPTIONS, s.msg, frame, sizeof(frame));
    assert_int_equal(dcb_frame_decode(frame, (size_t)n, &lim, a, &out), 0);
    /* ...one byte further would let the plugin read past the buffer. */
    e->options->subnet_mask++;
    n = dcb_frame_encode(DCB__FRAME_TYPE__FT_EV_HANDLEOPTIONS, s.msg, frame, sizeof(frame));
    assert_int_equal(dcb_frame_decode(frame, (size_t)n, &lim, a, &out), DCB_E_INVALID);
    /* A length that runs past the end is caught the same way. */
    e->options->subnet_mask = 1;
    e->options->has_machine_name = 1;
    e->options->machine_name = 10;
    e->options->has_machine_name_length = 1;
    e->options->machine_name_length = (uint32_t)e->packet.len;
    n = dcb_frame_encode(DCB__FRAME_TYPE__FT_EV_HANDLEOPTIONS, s.msg, frame, sizeof(frame));
    assert_int_equal(dcb_frame_decode(frame, (size_t)n, &lim, a, &out), DCB_E_INVALID);
    free(a);
}

static void test_field_ranges(void **state)
{
    dcb_arena_t *a = new_arena(dcb_arena_size_for(lim.max_frame));
    dcb_msg_t out;
    Dcb__EventHeader hdr = DCB__EVENT_HEADER__INIT;
    Dcb__ControlEvent ce = DCB__CONTROL_EVENT__INIT;
    Dcb__HostResult hr = DCB__HOST_RESULT__INIT;
    Dcb__ControlRequest cr = DCB__CONTROL_REQUEST__INIT;
    int n;

    ce.hdr = &hdr;
    ce.control_code = 5; /* START..CONTINUE is 1..4 */
    n = dcb_frame_encode(DCB__FRAME_TYPE__FT_EV_CONTROL, &ce.base, frame, sizeof(frame));
    assert_int_equal(dcb_frame_decode(frame, (size_t)n, &lim, a, &out), DCB_E_INVALID);
    ce.control_code = DHCP_CONTROL_PAUSE;
    hdr.deadline_us = DCB_MAX_DEADLINE_US + 1;
    n = dcb_frame_encode(DCB__FRAME_TYPE__FT_EV_CONTROL, &ce.base, frame, sizeof(frame));
    assert_int_equal(dcb_frame_decode(frame, (size_t)n, &lim, a, &out), DCB_E_INVALID);
    hdr.deadline_us = 1000;
    n = dcb_frame_encode(DCB__FRAME_TYPE__FT_EV_CONTROL, &ce.base, frame, sizeof(frame));
    assert_int_equal(dcb_frame_decode(frame, (size_t)n, &lim, a, &out), 0);

    hr.request_id = 1;
    hr.hook = DCB_HOOK_COUNT;
    n = dcb_frame_encode(DCB__FRAME_TYPE__FT_HOST_RESULT, &hr.base, frame, sizeof(frame));
    assert_int_equal(dcb_frame_decode(frame, (size_t)n, &lim, a, &out), DCB_E_INVALID);
    hr.hook = DCB_HOOK_NEWPKT;
    hr.request_id = 0;
    n = dcb_frame_encode(DCB__FRAME_TYPE__FT_HOST_RESULT, &hr.base, frame, sizeof(frame));
    assert_int_equal(dcb_frame_decode(frame, (size_t)n, &lim, a, &out), DCB_E_INVALID);

    cr.command = 99;
    n = dcb_frame_encode(DCB__FRAME_TYPE__FT_CTL_REQUEST, &cr.base, frame, sizeof(frame));
    assert_int_equal(dcb_frame_decode(frame, (size_t)n, &lim, a, &out), DCB_E_INVALID);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_every_message),
        cmocka_unit_test(test_newpkt_fields_survive),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_oversized_checked_before_payload),
        cmocka_unit_test(test_oversized_packet_field),
        cmocka_unit_test(test_garbage_and_version_and_type),
        cmocka_unit_test(test_missing_required_field),
        cmocka_unit_test(test_encode_never_overflows),
        cmocka_unit_test(test_arena_bounds_memory),
        cmocka_unit_test(test_handleoptions_offsets_validated),
        cmocka_unit_test(test_field_ranges),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
