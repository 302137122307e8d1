/*
 * macfilter — allow or deny DHCP clients by MAC address, in the spirit of
 * Microsoft's MAC filter callout.
 *
 * DhcpNewPktHook looks at the request's chaddr and at option 61 (client
 * identifier, without its type byte) and drops the packet with
 * *ProcessIt = FALSE — the only way a callout can drop one; returning a
 * DHCP_DROP_* code does nothing. It touches no other hook, never writes to
 * the packet, and reads nothing past *PacketSize.
 *
 * Configuration: macfilter.ini (see plugins/README.md), whose path is
 * $DCB_MACFILTER_CONFIG or the DLL's own path with ".ini". The list file
 * holds one MAC address or prefix per line. A configuration or list that
 * cannot be read is logged with its file and line, and the filter then
 * fails open (lets every packet through) unless on_error = closed.
 *
 * When the server loads it first, it serves the rest of CalloutDlls
 * (common/chain.c).
 */
#include "dcb_callout.h"
#include "dcb_ini.h"
#include "dcb_os.h"
#include "dcb_plugin.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MF_MATCH_CHADDR 1
#define MF_MATCH_CLIENTID 2

typedef struct mf_entry {
    uint8_t e_len;
    uint8_t e_prefix;
    uint8_t e_bytes[16];
} mf_entry_t;

typedef struct mf_config {
    int c_allow; /* allow mode: only listed clients pass */
    int c_match; /* MF_MATCH_* bits */
    int c_fail_closed;
    int c_log_drops;
    char c_list[4096];
    char c_path[4096];
    int c_bad_key_line;
} mf_config_t;

static struct {
    mf_config_t m_cf;
    int m_broken; /* the configuration could not be used: on_error applies */
    mf_entry_t *m_exact;
    size_t m_nexact;
    mf_entry_t *m_prefix;
    size_t m_nprefix;
    _Atomic uint64_t m_seen, m_dropped;
} mf;

static int entry_cmp(const void *a, const void *b)
{
    const mf_entry_t *x = a, *y = b;
    if (x->e_len != y->e_len)
        return x->e_len < y->e_len ? -1 : 1;
    return memcmp(x->e_bytes, y->e_bytes, x->e_len);
}

static int config_handler(void *user, const char *section, const char *name, const char *value,
                          int lineno)
{
    mf_config_t *cf = user;
    if (strcmp(section, "macfilter") != 0) {
        dcb_log(DCB_LOG_ERROR, "%s:%d: unknown section [%s]", cf->c_path, lineno, section);
        return 1;
    }
    if (strcmp(name, "mode") == 0) {
        if (strcmp(value, "allow") == 0)
            cf->c_allow = 1;
        else if (strcmp(value, "deny") == 0)
            cf->c_allow = 0;
        else
            goto bad;
    } else if (strcmp(name, "list") == 0) {
        dcb_plugin_resolve(cf->c_path, value, cf->c_list, sizeof(cf->c_list));
    } else if (strcmp(name, "match") == 0) {
        if (strcmp(value, "both") == 0)
            cf->c_match = MF_MATCH_CHADDR | MF_MATCH_CLIENTID;
        else if (strcmp(value, "chaddr") == 0)
            cf->c_match = MF_MATCH_CHADDR;
        else if (strcmp(value, "clientid") == 0)
            cf->c_match = MF_MATCH_CLIENTID;
        else
            goto bad;
    } else if (strcmp(name, "on_error") == 0) {
        if (strcmp(value, "open") == 0)
            cf->c_fail_closed = 0;
        else if (strcmp(value, "closed") == 0)
            cf->c_fail_closed = 1;
        else
            goto bad;
    } else if (strcmp(name, "log_drops") == 0) {
        int b = dcb_parse_bool(value);
        if (b < 0)
            goto bad;
        cf->c_log_drops = b;
    } else {
        dcb_log(DCB_LOG_ERROR, "%s:%d: unknown key '%s'", cf->c_path, lineno, name);
        return 1;
    }
    return 0;
bad:
    dcb_log(DCB_LOG_ERROR, "%s:%d: bad value '%s' for '%s'", cf->c_path, lineno, value, name);
    return 1;
}

static int add_entry(mf_entry_t **arr, size_t *n, const mf_entry_t *e)
{
    mf_entry_t *a = realloc(*arr, (*n + 1) * sizeof(*a));
    if (a == NULL)
        return -1;
    a[(*n)++] = *e;
    *arr = a;
    return 0;
}

/* Reads the list file; on any error logs file:line and returns -1. */
static int load_list(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        dcb_log(DCB_LOG_ERROR, "cannot open the MAC list %s", path);
        return -1;
    }
    char line[512];
    unsigned lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
            dcb_log(DCB_LOG_ERROR, "%s:%u: line too long", path, lineno);
            rc = -1;
            break;
        }
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        char *hash = strchr(s, '#');
        if (hash != NULL)
            *hash = '\0';
        len = strlen(s);
        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' ||
                           s[len - 1] == '\t'))
            s[--len] = '\0';
        if (len == 0)
            continue;
        mf_entry_t e;
        int prefix = 0;
        memset(&e, 0, sizeof(e));
        int n = dcb_parse_hwaddr(s, e.e_bytes, sizeof(e.e_bytes), &prefix);
        if (n < 0) {
            dcb_log(DCB_LOG_ERROR, "%s:%u: '%s' is not a MAC address or prefix", path, lineno, s);
            rc = -1;
            break;
        }
        e.e_len = (uint8_t)n;
        e.e_prefix = (uint8_t)prefix;
        if ((prefix ? add_entry(&mf.m_prefix, &mf.m_nprefix, &e)
                    : add_entry(&mf.m_exact, &mf.m_nexact, &e)) != 0) {
            rc = -1;
            break;
        }
    }
    fclose(f);
    if (rc == 0 && mf.m_nexact > 1)
        qsort(mf.m_exact, mf.m_nexact, sizeof(mf_entry_t), entry_cmp);
    return rc;
}

static void release(void)
{
    free(mf.m_exact);
    free(mf.m_prefix);
    mf.m_exact = mf.m_prefix = NULL;
    mf.m_nexact = mf.m_nprefix = 0;
}

static void configure(void)
{
    mf_config_t *cf = &mf.m_cf;
    release();
    memset(cf, 0, sizeof(*cf));
    cf->c_match = MF_MATCH_CHADDR | MF_MATCH_CLIENTID;
    mf.m_broken = 0;
    if (dcb_plugin_config_path("DCB_MACFILTER_CONFIG", (const void *)configure, cf->c_path,
                               sizeof(cf->c_path)) != 0) {
        dcb_log(DCB_LOG_ERROR, "cannot tell where the configuration is; failing open");
        mf.m_broken = 1;
        return;
    }
    int rc = dcb_ini_parse(cf->c_path, config_handler, cf);
    if (rc != 0) {
        if (rc == DCB_INI_EOPEN)
            dcb_log(DCB_LOG_ERROR, "cannot read the configuration %s", cf->c_path);
        else
            dcb_log(DCB_LOG_ERROR, "%s:%d: configuration error", cf->c_path, rc);
        mf.m_broken = 1;
    } else if (cf->c_list[0] == '\0') {
        dcb_log(DCB_LOG_ERROR, "%s: no 'list' set", cf->c_path);
        mf.m_broken = 1;
    } else if (load_list(cf->c_list) != 0) {
        mf.m_broken = 1;
        release();
    }
    if (mf.m_broken)
        dcb_log(DCB_LOG_ERROR, "filter disabled: failing %s (on_error)",
                cf->c_fail_closed ? "closed, every packet is dropped"
                                  : "open, every packet passes");
    else
        dcb_log(DCB_LOG_INFO, "%s mode, %zu addresses and %zu prefixes from %s",
                cf->c_allow ? "allow" : "deny", mf.m_nexact, mf.m_nprefix, cf->c_list);
}

static int listed(const uint8_t *b, size_t n)
{
    mf_entry_t key;
    if (n == 0 || n > sizeof(key.e_bytes))
        return 0;
    memset(&key, 0, sizeof(key));
    key.e_len = (uint8_t)n;
    memcpy(key.e_bytes, b, n);
    if (mf.m_nexact > 0 &&
        bsearch(&key, mf.m_exact, mf.m_nexact, sizeof(mf_entry_t), entry_cmp) != NULL)
        return 1;
    for (size_t i = 0; i < mf.m_nprefix; i++)
        if (mf.m_prefix[i].e_len <= n &&
            memcmp(mf.m_prefix[i].e_bytes, b, mf.m_prefix[i].e_len) == 0)
            return 1;
    return 0;
}

static DWORD WINAPI mf_newpkt(LPBYTE *Packet, DWORD *PacketSize, DWORD IpAddress, LPVOID Reserved,
                              LPVOID *PktContext, LPBOOL ProcessIt)
{
    const uint8_t *pkt = *Packet;
    size_t len = *PacketSize;
    atomic_fetch_add_explicit(&mf.m_seen, 1, memory_order_relaxed);
    if (mf.m_broken) {
        *ProcessIt = mf.m_cf.c_fail_closed ? FALSE : TRUE;
        if (!*ProcessIt)
            atomic_fetch_add_explicit(&mf.m_dropped, 1, memory_order_relaxed);
        return ERROR_SUCCESS;
    }
    const uint8_t *chaddr;
    size_t hlen = dcb_dhcp_chaddr(pkt, len, &chaddr);
    if (hlen == 0 || len < 236 || pkt[0] != 1) {
        /* Not a BOOTP request (MADCAP, garbage): not ours to judge. */
        *ProcessIt = TRUE;
        return ERROR_SUCCESS;
    }
    int hit = (mf.m_cf.c_match & MF_MATCH_CHADDR) && listed(chaddr, hlen);
    if (!hit && (mf.m_cf.c_match & MF_MATCH_CLIENTID)) {
        uint8_t olen = 0;
        const uint8_t *cid = dcb_dhcp_find_option(pkt, len, 61, &olen);
        if (cid != NULL && olen >= 2)
            hit = listed(cid + 1, olen - 1u); /* after the type byte */
    }
    int drop = mf.m_cf.c_allow ? !hit : hit;
    *ProcessIt = drop ? FALSE : TRUE;
    if (drop) {
        atomic_fetch_add_explicit(&mf.m_dropped, 1, memory_order_relaxed);
        if (mf.m_cf.c_log_drops) {
            char mac[64];
            dcb_format_hex(chaddr, hlen, ':', mac, sizeof(mac));
            dcb_log(DCB_LOG_INFO, "dropped a packet from %s", mac);
        }
    }
    return ERROR_SUCCESS;
}

static DWORD WINAPI mf_control(DWORD code, LPVOID reserved)
{
    if (code == DHCP_CONTROL_STOP) {
        dcb_log(DCB_LOG_INFO, "%llu packets seen, %llu dropped",
                (unsigned long long)atomic_load(&mf.m_seen),
                (unsigned long long)atomic_load(&mf.m_dropped));
        release();
    }
    return ERROR_SUCCESS;
}

DCB_CALLOUT_EXPORT DWORD WINAPI DhcpServerCalloutEntry(LPWSTR ChainDlls, DWORD CalloutVersion,
                                                       LPDHCP_CALLOUT_TABLE CalloutTbl)
{
    if (CalloutVersion != 0)
        return ERROR_NOT_SUPPORTED;
    dcb_log_set_tag("macfilter");
    configure();
    DHCP_CALLOUT_TABLE own;
    memset(&own, 0, sizeof(own));
    own.DhcpControlHook = mf_control;
    own.DhcpNewPktHook = mf_newpkt;
    return dcb_chain_entry("macfilter", DhcpServerCalloutEntry, ChainDlls, CalloutVersion, &own,
                           CalloutTbl);
}
