/*
 * tbplugin.c — a scriptable callout DLL for the broker tests.
 *
 * Built several times with a different TB_ID ("a", "b", ...). It reads its
 * orders from the packet itself: tokens "<id>=<action>[@<Hook>]" separated
 * by ';' or spaces anywhere in the packet (hook NewPkt when none is given),
 * so one test packet can tell each plugin of a chain what to do:
 *
 *   drop          ProcessIt = FALSE
 *   last:X        ProcessIt = FALSE unless the packet ends with X (order check)
 *   append:X      replace the buffer with packet + X (kept until PROCESSED)
 *   edit:X        in place: the first '#' becomes X
 *   echo          replace the buffer with packet + "[<id>:<tag>]", where tag
 *                 is what NewPkt saw (proves the PktContext round trip)
 *   crash hang exit sleep:MS mem:MB
 *   big           replace the buffer with 70000 bytes (beyond max_packet)
 *   smash         write 64 bytes past the 2000-byte buffer
 *   print         "TB <id> <Hook> tag=<tag>" on stdout
 *   trace         print every hook of this packet, and PROCESSED
 *   spam:N        N lines on stdout
 *   closefds      close stdout, stderr and descriptor 3
 *
 * The tag is the packet's first 8 bytes. Every packet hook checks that its
 * PktContext is the one NewPkt set; a mismatch prints "TBVIOLATION".
 */
#include "dcb_callout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <io.h>
#define tb_sleep(ms) Sleep(ms)
#define tb_close(fd) _close(fd)
#else
#include <unistd.h>
#define tb_sleep(ms) usleep((useconds_t)(ms)*1000u)
#define tb_close(fd) close(fd)
#endif

#ifndef TB_ID
#define TB_ID "a"
#endif

#define TB_MAGIC 0x54424358u

#ifdef TB_BADENTRY
#define TB_ENTRY_FAILS 1
#else
#define TB_ENTRY_FAILS 0
#endif
#ifdef TB_NO_NEWPKT
#define TB_WITH_NEWPKT 0
#else
#define TB_WITH_NEWPKT 1
#endif

typedef struct tb_ctx {
    unsigned magic;
    char tag[9];
    int trace;
    void *replaced[8];
    int nreplaced;
} tb_ctx_t;

/* The "mem" action's blocks, kept where the optimiser cannot drop them. */
volatile char *volatile tb_hoard;
volatile unsigned tb_hoard_total;

static const char *const hook_names[] = {"Control",       "NewPkt",      "PktDrop",
                                         "PktSend",       "AddressDel",  "AddressOffer",
                                         "HandleOptions", "DeleteClient"};

/* Finds "<id>=<action>" for this hook; returns the action's argument text or NULL. */
static int find_action(const BYTE *pkt, DWORD len, int hook, const char *action, char *arg,
                       size_t arglen)
{
    size_t idlen = strlen(TB_ID), alen = strlen(action);

    for (DWORD i = 0; i + idlen + 1 + alen <= len; i++) {
        const char *p = (const char *)pkt + i;
        const char *end = (const char *)pkt + len, *q;
        int want = 1; /* NewPkt */
        size_t n = 0;

        if (i > 0 && pkt[i - 1] != ';' && pkt[i - 1] != ' ')
            continue;
        if (memcmp(p, TB_ID, idlen) != 0 || p[idlen] != '=' ||
            memcmp(p + idlen + 1, action, alen) != 0)
            continue;
        q = p + idlen + 1 + alen;
        if (q < end && *q == ':') {
            q++;
            while (q < end && *q != ';' && *q != ' ' && *q != '@' && n + 1 < arglen)
                arg[n++] = *q++;
        }
        if (arglen > 0)
            arg[n] = '\0';
        if (q < end && *q == '@') {
            q++;
            want = -1;
            for (int h = 0; h < 8; h++) {
                size_t hl = strlen(hook_names[h]);
                if ((size_t)(end - q) >= hl && memcmp(q, hook_names[h], hl) == 0)
                    want = h;
            }
        } else if (q < end && *q != ';' && *q != ' ') {
            continue; /* a longer action name */
        }
        if (want == hook)
            return 1;
    }
    return 0;
}

static int has(const BYTE *pkt, DWORD len, int hook, const char *action)
{
    char arg[32];
    return find_action(pkt, len, hook, action, arg, sizeof(arg));
}

static void out(const char *hook, const char *tag)
{
    printf("TB %s %s tag=%s\n", TB_ID, hook, tag);
    fflush(stdout);
}

static void replace(LPBYTE *packet, DWORD *size, const void *add, size_t addlen, tb_ctx_t *ctx)
{
    BYTE *nb = malloc(*size + addlen);

    if (nb == NULL)
        return;
    memcpy(nb, *packet, *size);
    memcpy(nb + *size, add, addlen);
    if (ctx != NULL && ctx->nreplaced < 8)
        ctx->replaced[ctx->nreplaced++] = nb; /* freed at PROCESSED, as the API wants */
    *packet = nb;
    *size += (DWORD)addlen;
}

/* Actions shared by every hook that has a packet. */
static void common(LPBYTE *packet, DWORD *size, int hook, tb_ctx_t *ctx)
{
    const char *tag = ctx != NULL ? ctx->tag : "?";
    char arg[32];

    if (ctx != NULL && ctx->trace)
        out(hook_names[hook], tag);
    if (has(*packet, *size, hook, "print"))
        out(hook_names[hook], tag);
    if (find_action(*packet, *size, hook, "sleep", arg, sizeof(arg)))
        tb_sleep((unsigned)atoi(arg));
    if (find_action(*packet, *size, hook, "spam", arg, sizeof(arg))) {
        int n = atoi(arg);
        for (int i = 0; i < n; i++)
            printf("TB %s spam line %d of %d\n", TB_ID, i + 1, n);
        fflush(stdout);
    }
    if (find_action(*packet, *size, hook, "mem", arg, sizeof(arg))) {
        int mb = atoi(arg);
        /* Slowly, so the broker's once-a-second poll sees the growth. */
        for (int i = 0; i < mb / 4; i++) {
            char *p = malloc(4u << 20);
            if (p == NULL)
                abort();
            memset(p, 0x5A, 4u << 20);
            /* Keep it reachable: a compiler may drop a block nobody reads. */
            tb_hoard = p;
            tb_hoard_total += p[i % (4u << 20)];
            tb_sleep(50);
        }
    }
    if (has(*packet, *size, hook, "closefds")) {
        fflush(stdout);
        tb_close(1);
        tb_close(2);
        tb_close(3);
    }
    if (has(*packet, *size, hook, "exit"))
        exit(7);
    if (has(*packet, *size, hook, "crash")) {
        volatile int *volatile p = NULL;
        *p = 42;
    }
    if (has(*packet, *size, hook, "hang"))
        for (;;)
            tb_sleep(1000);
}

static void edits(LPBYTE *packet, DWORD *size, int hook, tb_ctx_t *ctx)
{
    char arg[32];

    if (find_action(*packet, *size, hook, "edit", arg, sizeof(arg))) {
        BYTE *hash = memchr(*packet, '#', *size);
        if (hash != NULL)
            *hash = (BYTE)arg[0];
    }
    if (find_action(*packet, *size, hook, "append", arg, sizeof(arg)))
        replace(packet, size, arg, strlen(arg), ctx);
    if (has(*packet, *size, hook, "echo") && ctx != NULL) {
        char add[32];
        snprintf(add, sizeof(add), "[%s:%s]", TB_ID, ctx->tag);
        replace(packet, size, add, strlen(add), ctx);
    }
    if (has(*packet, *size, hook, "big")) {
        static BYTE big[70000];
        memset(big, 'B', sizeof(big));
        *packet = big;
        *size = sizeof(big);
    }
    if (has(*packet, *size, hook, "smash")) {
        DWORD cap = *size > 2000 ? *size : 2000;
        memset(*packet + cap, 'Z', 64);
    }
}

static tb_ctx_t *check_ctx(LPVOID pktctx, int hook, const BYTE *packet, DWORD size)
{
    tb_ctx_t *ctx = pktctx;

    /* Without a NewPkt hook there is no context to check. */
    if (!TB_WITH_NEWPKT)
        return NULL;
    if (ctx == NULL || ctx->magic != TB_MAGIC) {
        char tag[9] = "";
        memcpy(tag, packet, size < 8 ? size : 8);
        tag[size < 8 ? size : 8] = '\0';
        fprintf(stderr, "TBVIOLATION %s %s without its NewPkt context (%p) tag=%s\n", TB_ID,
                hook_names[hook], pktctx, tag);
        fflush(stderr);
        return NULL;
    }
    return ctx;
}

static DWORD WINAPI tb_control(DWORD code, LPVOID reserved)
{
    (void)reserved;
    printf("TB %s Control %u\n", TB_ID, (unsigned)code);
    fflush(stdout);
    return ERROR_SUCCESS;
}

static DWORD WINAPI tb_newpkt(LPBYTE *packet, DWORD *size, DWORD ip, LPVOID reserved,
                              LPVOID *pktctx, LPBOOL process)
{
    tb_ctx_t *ctx = calloc(1, sizeof(*ctx));
    char arg[32];

    (void)ip;
    (void)reserved;
    if (ctx != NULL) {
        ctx->magic = TB_MAGIC;
        memcpy(ctx->tag, *packet, *size < 8 ? *size : 8);
        ctx->trace = has(*packet, *size, DCB_HOOK_NEWPKT, "trace");
        *pktctx = ctx;
    }
    common(packet, size, DCB_HOOK_NEWPKT, ctx);
    if (has(*packet, *size, DCB_HOOK_NEWPKT, "drop"))
        *process = FALSE;
    if (find_action(*packet, *size, DCB_HOOK_NEWPKT, "last", arg, sizeof(arg)) &&
        (*size == 0 || (*packet)[*size - 1] != (BYTE)arg[0]))
        *process = FALSE;
    edits(packet, size, DCB_HOOK_NEWPKT, ctx);
    return ERROR_SUCCESS;
}

static DWORD WINAPI tb_drop(LPBYTE *packet, DWORD *size, DWORD code, DWORD ip, LPVOID reserved,
                            LPVOID pktctx)
{
    tb_ctx_t *ctx = check_ctx(pktctx, DCB_HOOK_PKTDROP, *packet, *size);

    (void)ip;
    (void)reserved;
    common(packet, size, DCB_HOOK_PKTDROP, ctx);
    if (code == DHCP_DROP_PROCESSED && ctx != NULL) {
        if (ctx->trace)
            out("PROCESSED", ctx->tag);
        for (int i = 0; i < ctx->nreplaced; i++)
            free(ctx->replaced[i]);
        ctx->magic = 0;
        free(ctx);
    }
    return ERROR_SUCCESS;
}

static DWORD WINAPI tb_send(LPBYTE *packet, DWORD *size, DWORD code, DWORD ip, LPVOID reserved,
                            LPVOID pktctx)
{
    tb_ctx_t *ctx = check_ctx(pktctx, DCB_HOOK_PKTSEND, *packet, *size);

    (void)code;
    (void)ip;
    (void)reserved;
    common(packet, size, DCB_HOOK_PKTSEND, ctx);
    edits(packet, size, DCB_HOOK_PKTSEND, ctx);
    return ERROR_SUCCESS;
}

static DWORD WINAPI tb_addrdel(LPBYTE packet, DWORD size, DWORD code, DWORD ip, DWORD alt,
                               LPVOID reserved, LPVOID pktctx)
{
    tb_ctx_t *ctx = check_ctx(pktctx, DCB_HOOK_ADDRESSDEL, packet, size);

    (void)code;
    (void)ip;
    (void)alt;
    (void)reserved;
    common(&packet, &size, DCB_HOOK_ADDRESSDEL, ctx);
    return ERROR_SUCCESS;
}

static DWORD WINAPI tb_offer(LPBYTE packet, DWORD size, DWORD code, DWORD ip, DWORD alt, DWORD type,
                             DWORD lease, LPVOID reserved, LPVOID pktctx)
{
    tb_ctx_t *ctx = check_ctx(pktctx, DCB_HOOK_ADDRESSOFFER, packet, size);

    (void)code;
    (void)ip;
    (void)alt;
    (void)type;
    (void)lease;
    (void)reserved;
    common(&packet, &size, DCB_HOOK_ADDRESSOFFER, ctx);
    return ERROR_SUCCESS;
}

static DWORD WINAPI tb_options(LPBYTE packet, DWORD size, LPVOID reserved, LPVOID pktctx,
                               LPDHCP_SERVER_OPTIONS so)
{
    tb_ctx_t *ctx = check_ctx(pktctx, DCB_HOOK_HANDLEOPTIONS, packet, size);

    (void)reserved;
    common(&packet, &size, DCB_HOOK_HANDLEOPTIONS, ctx);
    if (has(packet, size, DCB_HOOK_HANDLEOPTIONS, "opts")) {
        char hw[64] = "";
        for (int i = 0;
             so->ClientHardwareAddress != NULL && i < so->ClientHardwareAddressLength && i < 16;
             i++)
            snprintf(hw + strlen(hw), sizeof(hw) - strlen(hw), "%02x",
                     so->ClientHardwareAddress[i]);
        printf("TB %s opts mt=%d hwtype=%d hw=%s name=%.*s\n", TB_ID,
               so->MessageType ? *so->MessageType : -1, so->ClientHardwareAddressType, hw,
               so->MachineName ? (int)so->MachineNameLength : 0,
               so->MachineName ? so->MachineName : "");
        fflush(stdout);
    }
    return ERROR_SUCCESS;
}

static DWORD WINAPI tb_delete(DWORD ip, LPBYTE hw, ULONG hwlen, DWORD reserved, DWORD type)
{
    (void)reserved;
    (void)type;
    printf("TB %s DeleteClient ip=%08x hwlen=%u hw0=%d\n", TB_ID, (unsigned)ip, (unsigned)hwlen,
           hw != NULL && hwlen > 0 ? hw[0] : -1);
    fflush(stdout);
    return ERROR_SUCCESS;
}

DCB_CALLOUT_EXPORT DWORD WINAPI DhcpServerCalloutEntry(LPWSTR chain, DWORD version,
                                                       LPDHCP_CALLOUT_TABLE table)
{
    if (chain == NULL || chain[0] != 0 || version != 0)
        return ERROR_NOT_SUPPORTED;
    if (TB_ENTRY_FAILS)
        return ERROR_INVALID_PARAMETER;
    if (TB_WITH_NEWPKT) {
        table->DhcpControlHook = tb_control;
        table->DhcpNewPktHook = tb_newpkt;
        table->DhcpAddressDelHook = tb_addrdel;
        table->DhcpAddressOfferHook = tb_offer;
        table->DhcpHandleOptionsHook = tb_options;
        table->DhcpDeleteClientHook = tb_delete;
    }
    table->DhcpPktDropHook = tb_drop;
    table->DhcpPktSendHook = tb_send;
    return ERROR_SUCCESS;
}
