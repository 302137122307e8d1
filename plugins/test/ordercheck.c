/*
 * ordercheck — checks, per packet, the order of hooks a plugin is owed:
 *   - NewPkt comes first: a later hook whose PktContext is not one this
 *     plugin set (NULL, or an id it never issued) is a violation;
 *   - the PktContext set in NewPkt comes back on every later hook of the
 *     packet, with the same Reserved value;
 *   - nothing comes after the final PROCESSED drop, and PROCESSED comes
 *     once per packet.
 * Packets still open at STOP are reported as "outstanding", not as
 * violations: the server frees queued packets at STOP without callbacks.
 *
 * PktContext holds a number (the packet's id), not a pointer, so a late or
 * foreign hook can be recognised without touching freed memory.
 *
 * The summary ("packets=N violations=M outstanding=K", then details) goes
 * to $DCB_ORDERCHECK_OUT at STOP and every 1000th packet, replaced
 * atomically, so a killed host leaves a recent one. A "%p" in that path
 * stands for the process id, so that each instance (a host and the one
 * that replaces it after a restart) keeps its own summary.
 */
#include "testplug.h"
#include "dcb_os.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096u
#define MAX_DETAILS 50

typedef struct live_pkt {
    struct live_pkt *l_next;
    uint64_t l_id;
    LPVOID l_reserved;
} live_pkt_t;

static struct {
    dcb_mutex_t o_lock;
    live_pkt_t *o_buckets[BUCKETS];
    size_t o_live;
    uint64_t o_next_id; /* ids issued: 1 .. o_next_id - 1 */
    uint64_t o_violations;
    char o_details[MAX_DETAILS][160];
    size_t o_ndetails;
    char o_out[4096];
} oc;

/* Lock held. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void
violation(const char *fmt, ...)
{
    oc.o_violations++;
    if (oc.o_ndetails == MAX_DETAILS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(oc.o_details[oc.o_ndetails++], sizeof(oc.o_details[0]), fmt, ap);
    va_end(ap);
}

/* Lock held. */
static void write_summary(void)
{
    char tmp[4200];
    if (oc.o_out[0] == '\0')
        return;
    snprintf(tmp, sizeof(tmp), "%s.tmp", oc.o_out);
    FILE *f = fopen(tmp, "wb");
    if (f == NULL)
        return;
    fprintf(f, "packets=%llu violations=%llu outstanding=%zu\n",
            (unsigned long long)(oc.o_next_id - 1), (unsigned long long)oc.o_violations, oc.o_live);
    for (size_t i = 0; i < oc.o_ndetails; i++)
        fprintf(f, "violation: %s\n", oc.o_details[i]);
    if (fclose(f) == 0)
        testplug_replace_file(tmp, oc.o_out);
}

static live_pkt_t **find(uint64_t id)
{
    live_pkt_t **pp = &oc.o_buckets[id % BUCKETS];
    while (*pp != NULL && (*pp)->l_id != id)
        pp = &(*pp)->l_next;
    return pp;
}

/*
 * Checks a later hook of a packet; returns the live record's slot or NULL.
 * Lock held.
 */
static live_pkt_t **check(dcb_hook_t h, LPVOID ctx, LPVOID reserved)
{
    uint64_t id = (uint64_t)(uintptr_t)ctx;
    if (id == 0) {
        violation("%s for a packet whose NewPkt this plugin did not see (PktContext NULL)",
                  testplug_hook_name(h));
        return NULL;
    }
    if (id >= oc.o_next_id) {
        violation("%s with a PktContext this plugin never set (%llu)", testplug_hook_name(h),
                  (unsigned long long)id);
        return NULL;
    }
    live_pkt_t **pp = find(id);
    if (*pp == NULL) {
        violation("%s for packet %llu after its PROCESSED drop", testplug_hook_name(h),
                  (unsigned long long)id);
        return NULL;
    }
    if ((*pp)->l_reserved != reserved)
        violation("%s for packet %llu with another Reserved than at NewPkt", testplug_hook_name(h),
                  (unsigned long long)id);
    return pp;
}

/* $DCB_ORDERCHECK_OUT into oc.o_out, with "%p" replaced by the process id. */
static void out_path(const char *tmpl)
{
    size_t k = 0;
    oc.o_out[0] = '\0';
    for (const char *c = tmpl; c != NULL && *c != '\0' && k + 16 < sizeof(oc.o_out); c++) {
        if (c[0] == '%' && c[1] == 'p') {
            k += (size_t)snprintf(oc.o_out + k, sizeof(oc.o_out) - k, "%u", dcb_getpid());
            c++;
        } else {
            oc.o_out[k++] = *c;
            oc.o_out[k] = '\0';
        }
    }
}

static DWORD WINAPI oc_newpkt(LPBYTE *packet, DWORD *size, DWORD ip, LPVOID reserved, LPVOID *ctx,
                              LPBOOL process_it)
{
    live_pkt_t *p = calloc(1, sizeof(*p));
    dcb_mutex_lock(&oc.o_lock);
    if (*ctx != NULL)
        violation("newpkt with a PktContext already set");
    uint64_t id = oc.o_next_id++;
    if (p != NULL) {
        p->l_id = id;
        p->l_reserved = reserved;
        live_pkt_t **slot = &oc.o_buckets[id % BUCKETS];
        p->l_next = *slot;
        *slot = p;
        oc.o_live++;
    }
    if (id % 1000 == 0)
        write_summary();
    dcb_mutex_unlock(&oc.o_lock);
    *ctx = (LPVOID)(uintptr_t)id;
    return ERROR_SUCCESS;
}

static DWORD WINAPI oc_drop(LPBYTE *packet, DWORD *size, DWORD code, DWORD ip, LPVOID reserved,
                            LPVOID ctx)
{
    dcb_mutex_lock(&oc.o_lock);
    live_pkt_t **pp = check(DCB_HOOK_PKTDROP, ctx, reserved);
    if (pp != NULL && code == DHCP_DROP_PROCESSED) {
        live_pkt_t *p = *pp;
        *pp = p->l_next;
        oc.o_live--;
        free(p);
    }
    dcb_mutex_unlock(&oc.o_lock);
    return ERROR_SUCCESS;
}

#define SIMPLE_CHECK(h, ctx, reserved)                                                             \
    do {                                                                                           \
        dcb_mutex_lock(&oc.o_lock);                                                                \
        check((h), (ctx), (reserved));                                                             \
        dcb_mutex_unlock(&oc.o_lock);                                                              \
    } while (0)

static DWORD WINAPI oc_send(LPBYTE *packet, DWORD *size, DWORD code, DWORD ip, LPVOID reserved,
                            LPVOID ctx)
{
    SIMPLE_CHECK(DCB_HOOK_PKTSEND, ctx, reserved);
    return ERROR_SUCCESS;
}

static DWORD WINAPI oc_address_del(LPBYTE packet, DWORD size, DWORD code, DWORD ip, DWORD alt,
                                   LPVOID reserved, LPVOID ctx)
{
    SIMPLE_CHECK(DCB_HOOK_ADDRESSDEL, ctx, reserved);
    return ERROR_SUCCESS;
}

static DWORD WINAPI oc_address_offer(LPBYTE packet, DWORD size, DWORD code, DWORD ip, DWORD alt,
                                     DWORD type, DWORD lease, LPVOID reserved, LPVOID ctx)
{
    SIMPLE_CHECK(DCB_HOOK_ADDRESSOFFER, ctx, reserved);
    return ERROR_SUCCESS;
}

static DWORD WINAPI oc_handle_options(LPBYTE packet, DWORD size, LPVOID reserved, LPVOID ctx,
                                      LPDHCP_SERVER_OPTIONS opts)
{
    SIMPLE_CHECK(DCB_HOOK_HANDLEOPTIONS, ctx, reserved);
    return ERROR_SUCCESS;
}

static DWORD WINAPI oc_delete_client(DWORD ip, LPBYTE hw, ULONG hwlen, DWORD reserved, DWORD type)
{
    return ERROR_SUCCESS;
}

static DWORD WINAPI oc_control(DWORD code, LPVOID reserved)
{
    if (code != DHCP_CONTROL_STOP)
        return ERROR_SUCCESS;
    dcb_mutex_lock(&oc.o_lock);
    write_summary();
    for (size_t b = 0; b < BUCKETS; b++) {
        while (oc.o_buckets[b] != NULL) {
            live_pkt_t *p = oc.o_buckets[b];
            oc.o_buckets[b] = p->l_next;
            free(p);
        }
    }
    oc.o_live = 0;
    dcb_mutex_unlock(&oc.o_lock);
    return ERROR_SUCCESS;
}

DCB_CALLOUT_EXPORT DWORD WINAPI DhcpServerCalloutEntry(LPWSTR ChainDlls, DWORD CalloutVersion,
                                                       LPDHCP_CALLOUT_TABLE CalloutTbl)
{
    static int inited;
    if (CalloutVersion != 0)
        return ERROR_NOT_SUPPORTED;
    testplug_read_env();
    if (!inited) {
        dcb_mutex_init(&oc.o_lock);
        inited = 1;
    }
    oc.o_next_id = 1;
    out_path(getenv("DCB_ORDERCHECK_OUT"));
    memset(CalloutTbl, 0, sizeof(*CalloutTbl));
    CalloutTbl->DhcpControlHook = oc_control;
    CalloutTbl->DhcpNewPktHook = oc_newpkt;
    CalloutTbl->DhcpPktDropHook = oc_drop;
    CalloutTbl->DhcpPktSendHook = oc_send;
    CalloutTbl->DhcpAddressDelHook = oc_address_del;
    CalloutTbl->DhcpAddressOfferHook = oc_address_offer;
    CalloutTbl->DhcpHandleOptionsHook = oc_handle_options;
    CalloutTbl->DhcpDeleteClientHook = oc_delete_client;
    return ERROR_SUCCESS;
}
