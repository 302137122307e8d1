/*
 * badsize — replaces the packet with a buffer of its own and reports a
 * size far larger than that buffer (DCB_TEST_BADSIZE, default 1 MiB, more
 * than any datagram can hold): whoever reads *PacketSize bytes from it
 * reads past the allocation. DCB_TEST_HOOK picks the hook: pktsend
 * (default) or newpkt. The buffers are freed at PROCESSED.
 */
#include "testplug.h"

#include <stdlib.h>
#include <string.h>

#define BAD_BUF 64

typedef struct bad_pkt {
    uint8_t *b_bufs[2];
} bad_pkt_t;

static uint32_t bad_size;
static int on_newpkt;

static void replace(bad_pkt_t *c, int slot, LPBYTE *packet, DWORD *size)
{
    uint8_t *buf = malloc(BAD_BUF);
    if (buf == NULL)
        return;
    memcpy(buf, *packet, *size < BAD_BUF ? *size : BAD_BUF);
    free(c->b_bufs[slot]);
    c->b_bufs[slot] = buf;
    *packet = buf;
    *size = bad_size;
}

static DWORD WINAPI b_newpkt(LPBYTE *packet, DWORD *size, DWORD ip, LPVOID reserved, LPVOID *ctx,
                             LPBOOL process_it)
{
    bad_pkt_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return ERROR_SUCCESS;
    *ctx = c;
    if (on_newpkt)
        replace(c, 0, packet, size);
    return ERROR_SUCCESS;
}

static DWORD WINAPI b_send(LPBYTE *packet, DWORD *size, DWORD code, DWORD ip, LPVOID reserved,
                           LPVOID ctx)
{
    if (ctx != NULL && !on_newpkt)
        replace(ctx, 1, packet, size);
    return ERROR_SUCCESS;
}

static DWORD WINAPI b_drop(LPBYTE *packet, DWORD *size, DWORD code, DWORD ip, LPVOID reserved,
                           LPVOID ctx)
{
    bad_pkt_t *c = ctx;
    if (code == DHCP_DROP_PROCESSED && c != NULL) {
        free(c->b_bufs[0]);
        free(c->b_bufs[1]);
        free(c);
    }
    return ERROR_SUCCESS;
}

DCB_CALLOUT_EXPORT DWORD WINAPI DhcpServerCalloutEntry(LPWSTR ChainDlls, DWORD CalloutVersion,
                                                       LPDHCP_CALLOUT_TABLE CalloutTbl)
{
    if (CalloutVersion != 0)
        return ERROR_NOT_SUPPORTED;
    testplug_read_env();
    bad_size = testplug_env_u32("DCB_TEST_BADSIZE", 1u << 20);
    on_newpkt =
        testplug_hook_selected(DCB_HOOK_NEWPKT) && !testplug_hook_selected(DCB_HOOK_PKTSEND);
    memset(CalloutTbl, 0, sizeof(*CalloutTbl));
    CalloutTbl->DhcpNewPktHook = b_newpkt;
    CalloutTbl->DhcpPktSendHook = b_send;
    CalloutTbl->DhcpPktDropHook = b_drop;
    return ERROR_SUCCESS;
}
