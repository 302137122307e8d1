/*
 * dcb_proto.h — frames and the codec every side of dcb uses.
 *
 * A frame is an 8-byte header followed by one protobuf message:
 *
 *   0      2         3        4                8
 *   +------+---------+--------+----------------+-------------------+
 *   | "DC" | version | type   | length (LE u32)| payload (length)  |
 *   +------+---------+--------+----------------+-------------------+
 *
 * The header alone says which message follows and how long it is, so a
 * reader checks the length against its limit *before* it buffers or
 * allocates anything. Encoding writes into a caller's buffer and never
 * allocates. Decoding allocates only from a caller-supplied arena, so the
 * memory one frame can cost is fixed in advance; every decoded message is
 * then validated (ranges, lengths, offsets) before any code acts on it.
 */
#ifndef DCB_PROTO_H
#define DCB_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "dcb.pb-c.h"

#define DCB_PROTO_VERSION 1
#define DCB_FRAME_HEADER_SIZE 8

/* Defaults; every reader passes its own limits. */
#define DCB_MAX_PACKET_DEFAULT 16384u  /* largest DHCP packet accepted, bytes */
#define DCB_MAX_FRAME_EVENT 65536u     /* shim/broker/host frames */
#define DCB_MAX_FRAME_CONTROL 4194304u /* control responses carry histograms */
#define DCB_MAX_DEADLINE_US 60000000u  /* no event waits more than a minute */

/* Errors: distinct so logs and tests can tell a truncated frame from a bad one. */
#define DCB_E_TRUNCATED (-1001) /* fewer bytes than the header announces */
#define DCB_E_TOOBIG (-1002)    /* length above the reader's limit */
#define DCB_E_MAGIC (-1003)     /* not a dcb frame at all */
#define DCB_E_VERSION (-1004)   /* a dcb frame of another protocol version */
#define DCB_E_TYPE (-1005)      /* unknown frame type */
#define DCB_E_DECODE (-1006)    /* payload is not a valid message of its type */
#define DCB_E_NOSPC (-1007)     /* caller's buffer too small to encode into */
#define DCB_E_INVALID (-1008)   /* decodes, but a field is out of range */
#define DCB_E_NOMEM (-1009)     /* the decode arena is exhausted */

const char *dcb_proto_strerror(int err);

typedef struct dcb_limits {
    uint32_t max_frame;  /* payload bytes */
    uint32_t max_packet; /* bytes in any packet field */
} dcb_limits_t;

typedef struct dcb_frame_hdr {
    uint8_t version;
    uint8_t type; /* Dcb__FrameType */
    uint32_t length;
} dcb_frame_hdr_t;

/*
 * Parses the header at the start of buf. Returns 0, DCB_E_TRUNCATED when n
 * is shorter than a header, or DCB_E_MAGIC / _VERSION / _TYPE / _TOOBIG.
 */
int dcb_frame_header(const uint8_t *buf, size_t n, const dcb_limits_t *lim,
                     dcb_frame_hdr_t *hdr);

/* The protobuf descriptor for a frame type, or NULL when unknown. */
const ProtobufCMessageDescriptor *dcb_frame_descriptor(uint8_t type);

/*
 * Encodes msg as a frame of the given type into buf (capacity cap).
 * Returns the frame's total length, or DCB_E_NOSPC / DCB_E_TYPE. Never
 * allocates.
 */
int dcb_frame_encode(uint8_t type, const ProtobufCMessage *msg, uint8_t *buf, size_t cap);
/* The encoded frame's total length, header included. */
size_t dcb_frame_size(const ProtobufCMessage *msg);

/*
 * A bump allocator for decoding: a fixed buffer, reset between frames.
 * protobuf-c allocates the message, its strings, bytes and repeated arrays
 * from it; when it runs out, decoding fails with DCB_E_NOMEM.
 */
typedef struct dcb_arena {
    ProtobufCAllocator a_alloc; /* first member: handed to protobuf-c */
    uint8_t *a_base;
    size_t a_cap;
    size_t a_used;
    int a_exhausted; /* an allocation was refused since the last reset */
} dcb_arena_t;

void dcb_arena_init(dcb_arena_t *arena, void *mem, size_t cap);
void dcb_arena_reset(dcb_arena_t *arena);
/*
 * An arena of this size holds any frame of max_frame bytes a well-behaved
 * peer sends; a frame crafted to need more fails with DCB_E_NOMEM instead
 * of costing more memory.
 */
size_t dcb_arena_size_for(uint32_t max_frame);

typedef struct dcb_msg {
    uint8_t type;
    ProtobufCMessage *msg; /* lives in the arena until its next reset */
    size_t frame_len;      /* header + payload, bytes consumed */
} dcb_msg_t;

/*
 * Decodes one complete frame from buf[0..n) and validates it. The arena is
 * reset first. Returns 0 or a DCB_E_* error; on error out->msg is NULL.
 */
int dcb_frame_decode(const uint8_t *buf, size_t n, const dcb_limits_t *lim, dcb_arena_t *arena,
                     dcb_msg_t *out);

/* Semantic checks on a decoded message (done by dcb_frame_decode). */
int dcb_msg_validate(uint8_t type, const ProtobufCMessage *msg, const dcb_limits_t *lim);

/* The EventHeader of an event frame (FT_EV_*), or NULL for other types. */
Dcb__EventHeader *dcb_event_header(uint8_t type, ProtobufCMessage *msg);

/* Frame type of the event for a hook (dcb_hook_t), and back (-1 if none). */
#define DCB_FT_EVENT(hook) ((uint8_t)(DCB__FRAME_TYPE__FT_EV_CONTROL + (hook)))
int dcb_frame_event_hook(uint8_t type);

/* The hook's name as the API spells it ("NewPkt", "PktSend", ...). */
const char *dcb_hook_name(int hook);

#endif /* DCB_PROTO_H */
