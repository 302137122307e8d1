/*
 * codec.c — frames, encoding into caller buffers, arena decoding.
 */
#include "dcb_proto.h"

#include <string.h>

const char *dcb_proto_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case DCB_E_TRUNCATED:
        return "truncated frame";
    case DCB_E_TOOBIG:
        return "frame larger than allowed";
    case DCB_E_MAGIC:
        return "not a dcb frame (bad magic)";
    case DCB_E_VERSION:
        return "unsupported protocol version";
    case DCB_E_TYPE:
        return "unknown frame type";
    case DCB_E_DECODE:
        return "malformed message";
    case DCB_E_NOSPC:
        return "buffer too small";
    case DCB_E_INVALID:
        return "field out of range";
    case DCB_E_NOMEM:
        return "message needs more memory than allowed";
    default:
        return "unknown error";
    }
}

const ProtobufCMessageDescriptor *dcb_frame_descriptor(uint8_t type)
{
    switch (type) {
    case DCB__FRAME_TYPE__FT_HELLO:
        return &dcb__hello__descriptor;
    case DCB__FRAME_TYPE__FT_WELCOME:
        return &dcb__welcome__descriptor;
    case DCB__FRAME_TYPE__FT_SUBSCRIPTION:
        return &dcb__subscription__descriptor;
    case DCB__FRAME_TYPE__FT_SHIM_STATS:
        return &dcb__shim_stats__descriptor;
    case DCB__FRAME_TYPE__FT_EV_CONTROL:
        return &dcb__control_event__descriptor;
    case DCB__FRAME_TYPE__FT_EV_NEWPKT:
        return &dcb__new_pkt_event__descriptor;
    case DCB__FRAME_TYPE__FT_EV_PKTDROP:
        return &dcb__pkt_drop_event__descriptor;
    case DCB__FRAME_TYPE__FT_EV_PKTSEND:
        return &dcb__pkt_send_event__descriptor;
    case DCB__FRAME_TYPE__FT_EV_ADDRESSDEL:
        return &dcb__address_del_event__descriptor;
    case DCB__FRAME_TYPE__FT_EV_ADDRESSOFFER:
        return &dcb__address_offer_event__descriptor;
    case DCB__FRAME_TYPE__FT_EV_HANDLEOPTIONS:
        return &dcb__handle_options_event__descriptor;
    case DCB__FRAME_TYPE__FT_EV_DELETECLIENT:
        return &dcb__delete_client_event__descriptor;
    case DCB__FRAME_TYPE__FT_NEWPKT_DECISION:
        return &dcb__new_pkt_decision__descriptor;
    case DCB__FRAME_TYPE__FT_PKTSEND_DECISION:
        return &dcb__pkt_send_decision__descriptor;
    case DCB__FRAME_TYPE__FT_HOST_LOAD:
        return &dcb__host_load__descriptor;
    case DCB__FRAME_TYPE__FT_HOST_LOADED:
        return &dcb__host_loaded__descriptor;
    case DCB__FRAME_TYPE__FT_HOST_RESULT:
        return &dcb__host_result__descriptor;
    case DCB__FRAME_TYPE__FT_PING:
    case DCB__FRAME_TYPE__FT_PONG:
        return &dcb__ping__descriptor;
    case DCB__FRAME_TYPE__FT_CTL_REQUEST:
        return &dcb__control_request__descriptor;
    case DCB__FRAME_TYPE__FT_CTL_RESPONSE:
        return &dcb__control_response__descriptor;
    default:
        return NULL;
    }
}

int dcb_frame_event_hook(uint8_t type)
{
    if (type >= DCB__FRAME_TYPE__FT_EV_CONTROL && type <= DCB__FRAME_TYPE__FT_EV_DELETECLIENT)
        return type - DCB__FRAME_TYPE__FT_EV_CONTROL;
    return -1;
}

const char *dcb_hook_name(int hook)
{
    static const char *const names[] = {"Control",      "NewPkt",        "PktDrop",
                                        "PktSend",      "AddressDel",    "AddressOffer",
                                        "HandleOptions", "DeleteClient"};

    if (hook < 0 || hook >= (int)(sizeof(names) / sizeof(names[0])))
        return "?";
    return names[hook];
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

int dcb_frame_header(const uint8_t *buf, size_t n, const dcb_limits_t *lim, dcb_frame_hdr_t *hdr)
{
    if (n < DCB_FRAME_HEADER_SIZE) {
        /* A wrong first byte is garbage even before the header is complete. */
        if ((n >= 1 && buf[0] != 'D') || (n >= 2 && buf[1] != 'C'))
            return DCB_E_MAGIC;
        return DCB_E_TRUNCATED;
    }
    if (buf[0] != 'D' || buf[1] != 'C')
        return DCB_E_MAGIC;
    hdr->version = buf[2];
    hdr->type = buf[3];
    hdr->length = get_le32(buf + 4);
    if (hdr->version != DCB_PROTO_VERSION)
        return DCB_E_VERSION;
    if (dcb_frame_descriptor(hdr->type) == NULL)
        return DCB_E_TYPE;
    if (hdr->length > lim->max_frame)
        return DCB_E_TOOBIG;
    return 0;
}

size_t dcb_frame_size(const ProtobufCMessage *msg)
{
    return DCB_FRAME_HEADER_SIZE + protobuf_c_message_get_packed_size(msg);
}

int dcb_frame_encode(uint8_t type, const ProtobufCMessage *msg, uint8_t *buf, size_t cap)
{
    const ProtobufCMessageDescriptor *desc = dcb_frame_descriptor(type);
    size_t len;

    if (desc == NULL || msg->descriptor != desc)
        return DCB_E_TYPE;
    len = protobuf_c_message_get_packed_size(msg);
    if (len > UINT32_MAX || cap < DCB_FRAME_HEADER_SIZE || len > cap - DCB_FRAME_HEADER_SIZE ||
        len + DCB_FRAME_HEADER_SIZE > (size_t)INT32_MAX)
        return DCB_E_NOSPC;
    buf[0] = 'D';
    buf[1] = 'C';
    buf[2] = DCB_PROTO_VERSION;
    buf[3] = type;
    put_le32(buf + 4, (uint32_t)len);
    protobuf_c_message_pack(msg, buf + DCB_FRAME_HEADER_SIZE);
    return (int)(len + DCB_FRAME_HEADER_SIZE);
}

/* ---- arena ---------------------------------------------------------------- */

#define ARENA_ALIGN 16u

static void *arena_alloc(void *ctx, size_t size)
{
    dcb_arena_t *a = ctx;
    size_t at = (a->a_used + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);

    if (size == 0)
        size = 1;
    if (at > a->a_cap || size > a->a_cap - at) {
        a->a_exhausted = 1;
        return NULL;
    }
    a->a_used = at + size;
    return a->a_base + at;
}

static void arena_free(void *ctx, void *p)
{
    /* Everything goes at once on reset. */
    (void)ctx;
    (void)p;
}

void dcb_arena_init(dcb_arena_t *a, void *mem, size_t cap)
{
    a->a_alloc.alloc = arena_alloc;
    a->a_alloc.free = arena_free;
    a->a_alloc.allocator_data = a;
    a->a_base = mem;
    a->a_cap = cap;
    a->a_used = 0;
    a->a_exhausted = 0;
}

void dcb_arena_reset(dcb_arena_t *a)
{
    a->a_used = 0;
    a->a_exhausted = 0;
}

size_t dcb_arena_size_for(uint32_t max_frame)
{
    /*
     * Bytes and strings are copied out of the frame (at most max_frame in
     * all); packed varints widen at most 8-fold (one byte each into 8-byte
     * slots). The fixed 64 KiB covers the message structs themselves.
     */
    return (size_t)max_frame * 9u + 65536u;
}

int dcb_frame_decode(const uint8_t *buf, size_t n, const dcb_limits_t *lim, dcb_arena_t *arena,
                     dcb_msg_t *out)
{
    dcb_frame_hdr_t hdr;
    ProtobufCMessage *msg;
    int rc;

    out->msg = NULL;
    out->type = 0;
    out->frame_len = 0;
    rc = dcb_frame_header(buf, n, lim, &hdr);
    if (rc != 0)
        return rc;
    if (n - DCB_FRAME_HEADER_SIZE < hdr.length)
        return DCB_E_TRUNCATED;
    dcb_arena_reset(arena);
    msg = protobuf_c_message_unpack(dcb_frame_descriptor(hdr.type), &arena->a_alloc, hdr.length,
                                    buf + DCB_FRAME_HEADER_SIZE);
    if (msg == NULL)
        return arena->a_exhausted ? DCB_E_NOMEM : DCB_E_DECODE;
    rc = dcb_msg_validate(hdr.type, msg, lim);
    if (rc != 0)
        return rc;
    out->type = hdr.type;
    out->msg = msg;
    out->frame_len = DCB_FRAME_HEADER_SIZE + hdr.length;
    return 0;
}

Dcb__EventHeader *dcb_event_header(uint8_t type, ProtobufCMessage *msg)
{
    switch (type) {
    case DCB__FRAME_TYPE__FT_EV_CONTROL:
        return ((Dcb__ControlEvent *)msg)->hdr;
    case DCB__FRAME_TYPE__FT_EV_NEWPKT:
        return ((Dcb__NewPktEvent *)msg)->hdr;
    case DCB__FRAME_TYPE__FT_EV_PKTDROP:
        return ((Dcb__PktDropEvent *)msg)->hdr;
    case DCB__FRAME_TYPE__FT_EV_PKTSEND:
        return ((Dcb__PktSendEvent *)msg)->hdr;
    case DCB__FRAME_TYPE__FT_EV_ADDRESSDEL:
        return ((Dcb__AddressDelEvent *)msg)->hdr;
    case DCB__FRAME_TYPE__FT_EV_ADDRESSOFFER:
        return ((Dcb__AddressOfferEvent *)msg)->hdr;
    case DCB__FRAME_TYPE__FT_EV_HANDLEOPTIONS:
        return ((Dcb__HandleOptionsEvent *)msg)->hdr;
    case DCB__FRAME_TYPE__FT_EV_DELETECLIENT:
        return ((Dcb__DeleteClientEvent *)msg)->hdr;
    default:
        return NULL;
    }
}
