/*
 * fuzz_decode.c — one libFuzzer harness per reader of untrusted frames.
 *
 * The input is treated as the byte stream a peer sent: frames are split by
 * their headers and decoded with the reader's own limits, exactly as the
 * reader does. Properties checked on everything that decodes:
 *  - the type is one this reader accepts, or the frame is refused;
 *  - re-encoding gives a frame that decodes to the same bytes again;
 *  - every HandleOptions offset, read with its length from an exact-size
 *    copy of packet||extra, stays inside it (ASan turns a slip into a crash).
 * Compiled once per reader with DCB_FUZZ_READER set to one of the below.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dcb_callout.h"
#include "dcb_proto.h"

#define READER_BROKER_FROM_SHIM 1
#define READER_SHIM_FROM_BROKER 2
#define READER_BROKER_FROM_HOST 3
#define READER_HOST_FROM_BROKER 4
#define READER_CONTROL 5

static int accepted(uint8_t t)
{
    int ev = dcb_frame_event_hook(t) >= 0;

    switch (DCB_FUZZ_READER) {
    case READER_BROKER_FROM_SHIM:
        return ev || t == DCB__FRAME_TYPE__FT_HELLO || t == DCB__FRAME_TYPE__FT_SHIM_STATS;
    case READER_SHIM_FROM_BROKER:
        return t == DCB__FRAME_TYPE__FT_WELCOME || t == DCB__FRAME_TYPE__FT_SUBSCRIPTION ||
               t == DCB__FRAME_TYPE__FT_NEWPKT_DECISION ||
               t == DCB__FRAME_TYPE__FT_PKTSEND_DECISION;
    case READER_BROKER_FROM_HOST:
        return t == DCB__FRAME_TYPE__FT_HOST_LOADED || t == DCB__FRAME_TYPE__FT_HOST_RESULT ||
               t == DCB__FRAME_TYPE__FT_PING || t == DCB__FRAME_TYPE__FT_PONG;
    case READER_HOST_FROM_BROKER:
        return ev || t == DCB__FRAME_TYPE__FT_HOST_LOAD || t == DCB__FRAME_TYPE__FT_PING ||
               t == DCB__FRAME_TYPE__FT_PONG;
    default:
        return t == DCB__FRAME_TYPE__FT_CTL_REQUEST || t == DCB__FRAME_TYPE__FT_CTL_RESPONSE;
    }
}

static void touch(const uint8_t *buf, size_t total, int has, uint32_t off1, uint32_t len)
{
    volatile uint8_t sink = 0;

    if (!has || off1 == 0)
        return;
    for (uint32_t i = 0; i < len; i++)
        sink ^= buf[off1 - 1 + i];
    (void)sink;
    (void)total;
}

static void check_options(const Dcb__HandleOptionsEvent *e)
{
    const Dcb__ServerOptions *o = e->options;
    size_t extra = o->has_extra ? o->extra.len : 0, total = e->packet.len + extra;
    uint8_t *buf = malloc(total ? total : 1);

    if (buf == NULL)
        abort();
    if (e->packet.len)
        memcpy(buf, e->packet.data, e->packet.len);
    if (extra)
        memcpy(buf + e->packet.len, o->extra.data, extra);
    touch(buf, total, o->has_message_type, o->message_type, 1);
    touch(buf, total, o->has_subnet_mask, o->subnet_mask, 4);
    touch(buf, total, o->has_requested_address, o->requested_address, 4);
    touch(buf, total, o->has_request_lease_time, o->request_lease_time, 4);
    touch(buf, total, o->has_overlay_fields, o->overlay_fields, 1);
    touch(buf, total, o->has_router_address, o->router_address, 4);
    touch(buf, total, o->has_server, o->server, 4);
    touch(buf, total, o->has_scope_id, o->scope_id, 4);
    touch(buf, total, o->has_parameter_request_list, o->parameter_request_list,
          o->parameter_request_list_length);
    touch(buf, total, o->has_machine_name, o->machine_name, o->machine_name_length);
    touch(buf, total, o->has_client_hardware_address, o->client_hardware_address,
          o->client_hardware_address_length);
    touch(buf, total, o->has_class_identifier, o->class_identifier, o->class_identifier_length);
    touch(buf, total, o->has_vendor_class, o->vendor_class, o->vendor_class_length);
    touch(buf, total, o->has_dns_name, o->dns_name, o->dns_name_length);
    touch(buf, total, o->has_ds_domain_name, o->ds_domain_name, o->ds_domain_name_len);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static dcb_arena_t arena, arena2;
    static uint8_t *mem, *mem2, *enc, *enc2;
    const dcb_limits_t lim = {
        DCB_FUZZ_READER == READER_CONTROL ? 262144u : DCB_MAX_FRAME_EVENT,
        DCB_MAX_PACKET_DEFAULT};
    size_t arena_size = dcb_arena_size_for(lim.max_frame), enc_size = lim.max_frame + 64;

    if (mem == NULL) {
        mem = malloc(arena_size);
        mem2 = malloc(arena_size);
        enc = malloc(enc_size);
        enc2 = malloc(enc_size);
        if (mem == NULL || mem2 == NULL || enc == NULL || enc2 == NULL)
            abort();
        dcb_arena_init(&arena, mem, arena_size);
        dcb_arena_init(&arena2, mem2, arena_size);
    }
    while (size > 0) {
        dcb_frame_hdr_t hdr;
        dcb_msg_t msg, again;
        int n, n2;

        if (dcb_frame_header(data, size, &lim, &hdr) != 0)
            return 0; /* the reader closes the connection here */
        if (!accepted(hdr.type))
            return 0; /* a type this reader never accepts: violation */
        if (dcb_frame_decode(data, size, &lim, &arena, &msg) != 0)
            return 0;
        if (msg.type == DCB__FRAME_TYPE__FT_EV_HANDLEOPTIONS)
            check_options((const Dcb__HandleOptionsEvent *)msg.msg);
        /* Round trip: what decoded must encode, and decode to the same bytes. */
        n = dcb_frame_encode(msg.type, msg.msg, enc, enc_size);
        if (n < 0)
            abort();
        if (dcb_frame_decode(enc, (size_t)n, &lim, &arena2, &again) != 0)
            abort();
        n2 = dcb_frame_encode(again.type, again.msg, enc2, enc_size);
        if (n2 != n || memcmp(enc, enc2, (size_t)n) != 0)
            abort();
        data += msg.frame_len;
        size -= msg.frame_len;
    }
    return 0;
}
