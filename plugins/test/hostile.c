/*
 * hostile — a plugin that attacks the broker through its own host's
 * channel, the way any plugin could: it finds the descriptor (Linux: the
 * socket the host moved to fd >= 200; Windows: the pipe handle that is not
 * stdin, stdout or stderr) and writes to it directly. Every NewPkt whose
 * packet starts with "HOSTILE:" carries one attack:
 *
 *   garbage         64 bytes that are no frame at all
 *   oversized       a header announcing a 2 GB frame
 *   badpayload      a header of the right length, a payload that is no message
 *   truncated       half a frame, then the hook hangs (slowloris on the channel)
 *   unknown-request a well-formed HostResult for a request never sent
 *   loaded-twice    a second HostLoaded
 *   wrong-type      a frame only the broker sends (NewPktDecision)
 *   bigpacket       a HostResult whose packet exceeds max_packet
 *   flood           20 MB of well-formed, unsolicited Pong frames (ignored by
 *                   the broker; the hook then returns normally)
 * Anything else passes the packet. Run it with threads = 1, so no other
 * worker of the host writes while it does. tests/security/test_hostile.c
 * drives it.
 */
#include "hostile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcb_proto.h"

static uint8_t frame_buf[DCB_FRAME_HEADER_SIZE + 70000];

static int send_msg(uint8_t type, const ProtobufCMessage *msg)
{
    int n = dcb_frame_encode(type, msg, frame_buf, sizeof(frame_buf));

    if (n < 0)
        return -1;
    return hostile_write(frame_buf, (size_t)n);
}

static void attack(const char *mode)
{
    uint8_t raw[128];

    fprintf(stderr, "hostile: attack %s\n", mode);
    fflush(stderr);
    if (strcmp(mode, "garbage") == 0) {
        memset(raw, 'Z', 64);
        hostile_write(raw, 64);
    } else if (strcmp(mode, "oversized") == 0) {
        const uint8_t hdr[8] = {'D', 'C', DCB_PROTO_VERSION, DCB__FRAME_TYPE__FT_HOST_RESULT,
                                0xF0, 0xFF, 0xFF, 0x7F};
        hostile_write(hdr, sizeof(hdr));
    } else if (strcmp(mode, "badpayload") == 0) {
        const uint8_t hdr[8] = {'D', 'C', DCB_PROTO_VERSION, DCB__FRAME_TYPE__FT_HOST_RESULT,
                                32, 0, 0, 0};
        memcpy(raw, hdr, 8);
        memset(raw + 8, 0xFF, 32);
        hostile_write(raw, 40);
    } else if (strcmp(mode, "truncated") == 0) {
        const uint8_t hdr[8] = {'D', 'C', DCB_PROTO_VERSION, DCB__FRAME_TYPE__FT_HOST_RESULT,
                                0x00, 0x10, 0, 0};
        memcpy(raw, hdr, 8);
        memset(raw + 8, 0x08, 16);
        hostile_write(raw, 24);
        hostile_sleep_forever();
    } else if (strcmp(mode, "unknown-request") == 0) {
        Dcb__HostResult r = DCB__HOST_RESULT__INIT;
        r.request_id = 0xFFFFFFF0u;
        r.hook = DCB_HOOK_NEWPKT;
        send_msg(DCB__FRAME_TYPE__FT_HOST_RESULT, &r.base);
    } else if (strcmp(mode, "loaded-twice") == 0) {
        Dcb__HostLoaded l = DCB__HOST_LOADED__INIT;
        l.ok = 1;
        l.hooks = 0xFF;
        send_msg(DCB__FRAME_TYPE__FT_HOST_LOADED, &l.base);
    } else if (strcmp(mode, "wrong-type") == 0) {
        Dcb__NewPktDecision d = DCB__NEW_PKT_DECISION__INIT;
        d.request_id = 1;
        d.process_it = 0;
        send_msg(DCB__FRAME_TYPE__FT_NEWPKT_DECISION, &d.base);
    } else if (strcmp(mode, "bigpacket") == 0) {
        static uint8_t big[65000];
        Dcb__HostResult r = DCB__HOST_RESULT__INIT;
        r.request_id = 1;
        r.hook = DCB_HOOK_NEWPKT;
        r.has_packet = 1;
        r.packet.data = big;
        r.packet.len = 60000;
        send_msg(DCB__FRAME_TYPE__FT_HOST_RESULT, &r.base);
    } else if (strcmp(mode, "flood") == 0) {
        Dcb__Ping p = DCB__PING__INIT;
        size_t one, total = 0;
        int n;
        p.nonce = 0xDEADBEEFu;
        n = dcb_frame_encode(DCB__FRAME_TYPE__FT_PONG, &p.base, frame_buf, sizeof(frame_buf));
        if (n <= 0)
            return;
        one = (size_t)n;
        /* Many frames per write, 20 MB in all. */
        while (one * 2 <= 65536) {
            memcpy(frame_buf + one, frame_buf, one);
            one *= 2;
        }
        while (total < 20u * 1024u * 1024u && hostile_write(frame_buf, one) == 0)
            total += one;
    }
}

static DWORD WINAPI h_newpkt(LPBYTE *packet, DWORD *size, DWORD ip, LPVOID reserved, LPVOID *ctx,
                             LPBOOL process_it)
{
    char mode[32];
    DWORD n;

    if (*size < 8 || memcmp(*packet, "HOSTILE:", 8) != 0)
        return ERROR_SUCCESS;
    n = *size - 8 < sizeof(mode) - 1 ? *size - 8 : (DWORD)sizeof(mode) - 1;
    memcpy(mode, *packet + 8, n);
    mode[n] = '\0';
    if (hostile_find_channel() != 0) {
        fprintf(stderr, "hostile: no channel found\n");
        fflush(stderr);
        return ERROR_SUCCESS;
    }
    attack(mode);
    return ERROR_SUCCESS;
}

DCB_CALLOUT_EXPORT DWORD WINAPI DhcpServerCalloutEntry(LPWSTR ChainDlls, DWORD CalloutVersion,
                                                       LPDHCP_CALLOUT_TABLE CalloutTbl)
{
    if (CalloutVersion != 0)
        return ERROR_NOT_SUPPORTED;
    memset(CalloutTbl, 0, sizeof(*CalloutTbl));
    CalloutTbl->DhcpNewPktHook = h_newpkt;
    return ERROR_SUCCESS;
}
