/*
 * chain.c — what the DLL that Microsoft DHCP Server loads first must do
 * for the rest of CalloutDlls ("Chaining Multiple Third-Party DLLs"): load
 * them, merge their hook tables, and call every one of them from its own
 * hooks. The mistakes callout-api.md lists are the ones avoided here: the
 * chained entry points' return values are checked, no chained hook is
 * dropped while merging, and each chained DLL gets its own PktContext.
 *
 * Member 0 is the plugin itself; members 1..n are the chained DLLs in list
 * order. Per packet, one record holds every member's PktContext and how far
 * NewPkt got; the server's single PktContext slot points at it.
 */
#include "dcb_plugin.h"
#include "dcb_os.h"

#include <stdlib.h>
#include <string.h>

#define WRAP_MAGIC 0x44434257u /* "DCBW" */

typedef struct member {
    DHCP_CALLOUT_TABLE m_tbl;
    dcb_dl_t *m_dl; /* NULL for member 0 */
    char *m_path;
} member_t;

typedef struct pkt_wrap {
    struct pkt_wrap *w_prev, *w_next;
    uint32_t w_magic;
    size_t w_reached; /* members [0, w_reached) saw this packet's NewPkt */
    LPVOID w_ctx[];   /* one per member */
} pkt_wrap_t;

static struct {
    const char *c_plugin;
    member_t *c_members;
    size_t c_count;
    dcb_mutex_t c_lock;
    pkt_wrap_t *c_live; /* packets between NewPkt and PROCESSED */
} chain;

static pkt_wrap_t *unwrap(LPVOID ctx)
{
    pkt_wrap_t *w = ctx;
    return (w != NULL && w->w_magic == WRAP_MAGIC) ? w : NULL;
}

static void live_remove(pkt_wrap_t *w)
{
    if (w->w_prev != NULL)
        w->w_prev->w_next = w->w_next;
    else
        chain.c_live = w->w_next;
    if (w->w_next != NULL)
        w->w_next->w_prev = w->w_prev;
}

static DWORD WINAPI chain_control(DWORD code, LPVOID reserved)
{
    for (size_t i = 0; i < chain.c_count; i++)
        if (chain.c_members[i].m_tbl.DhcpControlHook != NULL)
            chain.c_members[i].m_tbl.DhcpControlHook(code, reserved);
    if (code != DHCP_CONTROL_STOP)
        return ERROR_SUCCESS;
    /* Packets still queued at STOP never get their PROCESSED drop. */
    dcb_mutex_lock(&chain.c_lock);
    size_t dropped = 0;
    while (chain.c_live != NULL) {
        pkt_wrap_t *w = chain.c_live;
        chain.c_live = w->w_next;
        w->w_magic = 0;
        free(w);
        dropped++;
    }
    dcb_mutex_unlock(&chain.c_lock);
    if (dropped > 0)
        dcb_log(DCB_LOG_INFO, "%s: released %zu packets the server will not finish", chain.c_plugin,
                dropped);
    /* After STOP the server calls nothing more, and then unloads us. */
    for (size_t i = 1; i < chain.c_count; i++) {
        dcb_dl_close(chain.c_members[i].m_dl);
        free(chain.c_members[i].m_path);
    }
    free(chain.c_members);
    chain.c_members = NULL;
    chain.c_count = 0;
    dcb_mutex_destroy(&chain.c_lock);
    return ERROR_SUCCESS;
}

static DWORD WINAPI chain_newpkt(LPBYTE *packet, DWORD *size, DWORD ip, LPVOID reserved,
                                 LPVOID *ctx, LPBOOL process_it)
{
    pkt_wrap_t *w = calloc(1, sizeof(*w) + chain.c_count * sizeof(LPVOID));
    if (w == NULL) {
        /* No room to track the packet: let it through untouched. */
        *ctx = NULL;
        return ERROR_SUCCESS;
    }
    w->w_magic = WRAP_MAGIC;
    *process_it = TRUE;
    for (size_t i = 0; i < chain.c_count; i++) {
        w->w_reached = i + 1;
        LPDHCP_NEWPKT fn = chain.c_members[i].m_tbl.DhcpNewPktHook;
        if (fn != NULL)
            fn(packet, size, ip, reserved, &w->w_ctx[i], process_it);
        if (!*process_it)
            break; /* the first drop ends the chain for this packet */
    }
    dcb_mutex_lock(&chain.c_lock);
    w->w_next = chain.c_live;
    if (chain.c_live != NULL)
        chain.c_live->w_prev = w;
    chain.c_live = w;
    dcb_mutex_unlock(&chain.c_lock);
    *ctx = w;
    return ERROR_SUCCESS;
}

static DWORD WINAPI chain_drop(LPBYTE *packet, DWORD *size, DWORD code, DWORD ip, LPVOID reserved,
                               LPVOID ctx)
{
    pkt_wrap_t *w = unwrap(ctx);
    if (w == NULL)
        return ERROR_SUCCESS;
    for (size_t i = 0; i < w->w_reached; i++) {
        LPDHCP_DROP_SEND fn = chain.c_members[i].m_tbl.DhcpPktDropHook;
        if (fn != NULL)
            fn(packet, size, code, ip, reserved, w->w_ctx[i]);
    }
    if (code == DHCP_DROP_PROCESSED) {
        dcb_mutex_lock(&chain.c_lock);
        live_remove(w);
        dcb_mutex_unlock(&chain.c_lock);
        w->w_magic = 0;
        free(w);
    }
    return ERROR_SUCCESS;
}

static DWORD WINAPI chain_send(LPBYTE *packet, DWORD *size, DWORD code, DWORD ip, LPVOID reserved,
                               LPVOID ctx)
{
    pkt_wrap_t *w = unwrap(ctx);
    if (w == NULL)
        return ERROR_SUCCESS;
    for (size_t i = 0; i < w->w_reached; i++) {
        LPDHCP_DROP_SEND fn = chain.c_members[i].m_tbl.DhcpPktSendHook;
        if (fn != NULL)
            fn(packet, size, code, ip, reserved, w->w_ctx[i]);
    }
    return ERROR_SUCCESS;
}

static DWORD WINAPI chain_address_del(LPBYTE packet, DWORD size, DWORD code, DWORD ip, DWORD alt,
                                      LPVOID reserved, LPVOID ctx)
{
    pkt_wrap_t *w = unwrap(ctx);
    if (w == NULL)
        return ERROR_SUCCESS;
    for (size_t i = 0; i < w->w_reached; i++) {
        LPDHCP_PROB fn = chain.c_members[i].m_tbl.DhcpAddressDelHook;
        if (fn != NULL)
            fn(packet, size, code, ip, alt, reserved, w->w_ctx[i]);
    }
    return ERROR_SUCCESS;
}

static DWORD WINAPI chain_address_offer(LPBYTE packet, DWORD size, DWORD code, DWORD ip, DWORD alt,
                                        DWORD type, DWORD lease, LPVOID reserved, LPVOID ctx)
{
    pkt_wrap_t *w = unwrap(ctx);
    if (w == NULL)
        return ERROR_SUCCESS;
    for (size_t i = 0; i < w->w_reached; i++) {
        LPDHCP_GIVE_ADDRESS fn = chain.c_members[i].m_tbl.DhcpAddressOfferHook;
        if (fn != NULL)
            fn(packet, size, code, ip, alt, type, lease, reserved, w->w_ctx[i]);
    }
    return ERROR_SUCCESS;
}

static DWORD WINAPI chain_handle_options(LPBYTE packet, DWORD size, LPVOID reserved, LPVOID ctx,
                                         LPDHCP_SERVER_OPTIONS opts)
{
    pkt_wrap_t *w = unwrap(ctx);
    if (w == NULL)
        return ERROR_SUCCESS;
    for (size_t i = 0; i < w->w_reached; i++) {
        LPDHCP_HANDLE_OPTIONS fn = chain.c_members[i].m_tbl.DhcpHandleOptionsHook;
        if (fn != NULL)
            fn(packet, size, reserved, w->w_ctx[i], opts);
    }
    return ERROR_SUCCESS;
}

static DWORD WINAPI chain_delete_client(DWORD ip, LPBYTE hw, ULONG hwlen, DWORD reserved,
                                        DWORD type)
{
    for (size_t i = 0; i < chain.c_count; i++) {
        LPDHCP_DELETE_CLIENT fn = chain.c_members[i].m_tbl.DhcpDeleteClientHook;
        if (fn != NULL)
            fn(ip, hw, hwlen, reserved, type);
    }
    return ERROR_SUCCESS;
}

static LPDHCP_ENTRY_POINT_FUNC entry_of(dcb_dl_t *dl)
{
    void *sym = dcb_dl_sym(dl, DHCP_CALLOUT_ENTRY_POINT);
    LPDHCP_ENTRY_POINT_FUNC fn;
    memcpy(&fn, &sym, sizeof(fn));
    return fn;
}

DWORD dcb_chain_entry(const char *plugin, LPDHCP_ENTRY_POINT_FUNC self, LPWSTR chain_dlls,
                      DWORD version, const DHCP_CALLOUT_TABLE *own, LPDHCP_CALLOUT_TABLE out)
{
    char **paths = NULL;
    int n = 0;
    if (version != 0)
        return ERROR_NOT_SUPPORTED;
    if (chain_dlls != NULL)
        n = dcb_multisz_to_utf8((const uint16_t *)chain_dlls, 1u << 20, &paths);
    if (n < 0) {
        dcb_log(DCB_LOG_ERROR, "%s: ChainDlls is not a valid list; not chaining", plugin);
        n = 0;
    }
    if (n == 0) {
        *out = *own;
        return ERROR_SUCCESS;
    }

    chain.c_plugin = plugin;
    chain.c_members = calloc((size_t)n + 1, sizeof(member_t));
    if (chain.c_members == NULL) {
        dcb_strlist_free(paths, (size_t)n);
        *out = *own;
        return ERROR_SUCCESS;
    }
    dcb_mutex_init(&chain.c_lock);
    chain.c_members[0].m_tbl = *own;
    chain.c_count = 1;
    uint16_t empty = 0;
    for (int i = 0; i < n; i++) {
        char err[256] = "";
        dcb_dl_t *dl = dcb_dl_open(paths[i], err, sizeof(err));
        if (dl == NULL) {
            dcb_log(DCB_LOG_ERROR, "%s: chained callout %s: cannot load: %s", plugin, paths[i],
                    err);
            continue;
        }
        LPDHCP_ENTRY_POINT_FUNC entry = entry_of(dl);
        if (entry == NULL) {
            dcb_log(DCB_LOG_ERROR, "%s: chained callout %s: no %s", plugin, paths[i],
                    DHCP_CALLOUT_ENTRY_POINT);
            dcb_dl_close(dl);
            continue;
        }
        if (entry == self) {
            /* The same DLL listed again would re-enter this very code. */
            dcb_log(DCB_LOG_ERROR, "%s: %s is this DLL again; skipped", plugin, paths[i]);
            dcb_dl_close(dl);
            continue;
        }
        member_t *m = &chain.c_members[chain.c_count];
        memset(&m->m_tbl, 0, sizeof(m->m_tbl));
        /* Each chained DLL gets an empty chain: this DLL serves the whole list. */
        DWORD rc = entry((LPWSTR)&empty, version, &m->m_tbl);
        if (rc != ERROR_SUCCESS) {
            dcb_log(DCB_LOG_ERROR, "%s: chained callout %s: entry point returned %lu; skipped",
                    plugin, paths[i], (unsigned long)rc);
            dcb_dl_close(dl);
            continue;
        }
        m->m_dl = dl;
        m->m_path = paths[i];
        paths[i] = NULL;
        chain.c_count++;
        dcb_log(DCB_LOG_INFO, "%s: chained %s", plugin, m->m_path);
    }
    dcb_strlist_free(paths, (size_t)n);

    /* Every hook is ours: any member may need any of them. */
    memset(out, 0, sizeof(*out));
    out->DhcpControlHook = chain_control;
    out->DhcpNewPktHook = chain_newpkt;
    out->DhcpPktDropHook = chain_drop;
    out->DhcpPktSendHook = chain_send;
    out->DhcpAddressDelHook = chain_address_del;
    out->DhcpAddressOfferHook = chain_address_offer;
    out->DhcpHandleOptionsHook = chain_handle_options;
    out->DhcpDeleteClientHook = chain_delete_client;
    return ERROR_SUCCESS;
}
