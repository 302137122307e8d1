/*
 * optinject — adds or overrides DHCP options in replies for clients whose
 * MAC address starts with a configured prefix (say, option 150, the TFTP
 * server, for one vendor's phones).
 *
 * The reply is changed in DhcpPktSendHook, the only hook that can. When the
 * new reply fits in *PacketSize (replies are padded to 300 bytes, so there
 * often is room), it is edited in place, never past *PacketSize. When it
 * must grow, the plugin allocates a new buffer, points *Packet at it and
 * sets *PacketSize: the server sends that buffer but never frees it, so the
 * plugin keeps it in its per-packet context and frees it at the packet's
 * final DHCP_DROP_PROCESSED — or at STOP, for packets the server abandons.
 *
 * Configuration: optinject.ini (see plugins/README.md), whose path is
 * $DCB_OPTINJECT_CONFIG or the DLL's own path with ".ini". A bad
 * configuration is logged with its file and line; the plugin then changes
 * nothing.
 */
#include "dcb_callout.h"
#include "dcb_ini.h"
#include "dcb_os.h"
#include "dcb_plugin.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OI_MAX_RULES 32
#define OI_MAX_PREFIXES 16
#define OI_PKT_MAGIC 0x4f494e4au /* "OINJ" */
#define OI_BOOTP_BIT 1u          /* message "type" 0: a BOOTP reply */

typedef struct oi_rule {
    char r_name[64];
    uint8_t r_prefix[OI_MAX_PREFIXES][16];
    uint8_t r_plen[OI_MAX_PREFIXES];
    size_t r_nprefix;
    int r_any;
    int r_code; /* 0 = not set */
    uint8_t r_val[255];
    int r_vlen; /* -1 = not set */
    unsigned r_msgs;
    int r_add_only;
} oi_rule_t;

typedef struct oi_pkt {
    struct oi_pkt *p_prev, *p_next;
    uint32_t p_magic;
    uint8_t *p_replaced; /* the reply buffer this plugin allocated, if any */
} oi_pkt_t;

static struct {
    char o_path[4096];
    oi_rule_t o_rules[OI_MAX_RULES];
    size_t o_nrules;
    int o_ok;
    dcb_mutex_t o_lock;
    oi_pkt_t *o_live;
    _Atomic uint64_t o_changed, o_in_place, o_replaced, o_freed, o_skipped;
} oi;

static oi_rule_t *rule_for(const char *section)
{
    for (size_t i = 0; i < oi.o_nrules; i++)
        if (strcmp(oi.o_rules[i].r_name, section) == 0)
            return &oi.o_rules[i];
    if (oi.o_nrules == OI_MAX_RULES)
        return NULL;
    oi_rule_t *r = &oi.o_rules[oi.o_nrules++];
    memset(r, 0, sizeof(*r));
    snprintf(r->r_name, sizeof(r->r_name), "%s", section);
    r->r_vlen = -1;
    r->r_msgs = (1u << 2) | (1u << 5); /* OFFER and ACK */
    return r;
}

/* Calls fn for each comma-separated, trimmed item of value. */
static int parse_list(const char *value, int (*fn)(oi_rule_t *, const char *), oi_rule_t *r)
{
    char item[256];
    const char *p = value;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        while (n > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == 0 || n >= sizeof(item))
            return -1;
        memcpy(item, p, n);
        item[n] = '\0';
        if (fn(r, item) != 0)
            return -1;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

static int add_prefix(oi_rule_t *r, const char *s)
{
    if (strcmp(s, "*") == 0 || strcmp(s, "any") == 0) {
        r->r_any = 1;
        return 0;
    }
    if (r->r_nprefix == OI_MAX_PREFIXES)
        return -1;
    int prefix;
    int n = dcb_parse_hwaddr(s, r->r_prefix[r->r_nprefix], 16, &prefix);
    if (n <= 0)
        return -1;
    r->r_plen[r->r_nprefix++] = (uint8_t)n;
    return 0;
}

static int add_msg(oi_rule_t *r, const char *s)
{
    static const struct {
        const char *name;
        unsigned bit;
    } msgs[] = {{"offer", 1u << 2}, {"ack", 1u << 5}, {"nak", 1u << 6}, {"bootp", OI_BOOTP_BIT}};
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
        if (strcmp(s, msgs[i].name) == 0) {
            r->r_msgs |= msgs[i].bit;
            return 0;
        }
    return -1;
}

static int add_ip(oi_rule_t *r, const char *s)
{
    unsigned a, b, c, d;
    char tail;
    if (sscanf(s, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 || b > 255 || c > 255 ||
        d > 255 || r->r_vlen + 4 > 255)
        return -1;
    r->r_val[r->r_vlen++] = (uint8_t)a;
    r->r_val[r->r_vlen++] = (uint8_t)b;
    r->r_val[r->r_vlen++] = (uint8_t)c;
    r->r_val[r->r_vlen++] = (uint8_t)d;
    return 0;
}

static int config_handler(void *user, const char *section, const char *name, const char *value,
                          int lineno)
{
    (void)user;
    if (strncmp(section, "rule", 4) != 0 ||
        (section[4] != ' ' && section[4] != '.' && section[4] != ':')) {
        dcb_log(DCB_LOG_ERROR, "%s:%d: unknown section [%s] (rules are [rule NAME])", oi.o_path,
                lineno, section);
        return 1;
    }
    oi_rule_t *r = rule_for(section);
    if (r == NULL) {
        dcb_log(DCB_LOG_ERROR, "%s:%d: more than %d rules", oi.o_path, lineno, OI_MAX_RULES);
        return 1;
    }
    if (strcmp(name, "mac") == 0) {
        if (parse_list(value, add_prefix, r) != 0)
            goto bad;
    } else if (strcmp(name, "option") == 0) {
        char *end;
        long code = strtol(value, &end, 10);
        /* 0 and 255 are pad and end; 52-54 carry the message's own framing. */
        if (*end != '\0' || code < 1 || code > 254 || (code >= 52 && code <= 54))
            goto bad;
        r->r_code = (int)code;
    } else if (strcmp(name, "hex") == 0 || strcmp(name, "text") == 0 || strcmp(name, "ip") == 0) {
        if (r->r_vlen >= 0) {
            dcb_log(DCB_LOG_ERROR, "%s:%d: [%s] has more than one value", oi.o_path, lineno,
                    section);
            return 1;
        }
        r->r_vlen = 0;
        if (strcmp(name, "hex") == 0) {
            int n = dcb_parse_hex(value, r->r_val, sizeof(r->r_val));
            if (n < 0)
                goto bad;
            r->r_vlen = n;
        } else if (strcmp(name, "text") == 0) {
            size_t n = strlen(value);
            if (n > sizeof(r->r_val))
                goto bad;
            memcpy(r->r_val, value, n);
            r->r_vlen = (int)n;
        } else if (parse_list(value, add_ip, r) != 0) {
            goto bad;
        }
    } else if (strcmp(name, "messages") == 0) {
        r->r_msgs = 0;
        if (parse_list(value, add_msg, r) != 0)
            goto bad;
    } else if (strcmp(name, "mode") == 0) {
        if (strcmp(value, "set") == 0)
            r->r_add_only = 0;
        else if (strcmp(value, "add") == 0)
            r->r_add_only = 1;
        else
            goto bad;
    } else {
        dcb_log(DCB_LOG_ERROR, "%s:%d: unknown key '%s' in [%s]", oi.o_path, lineno, name, section);
        return 1;
    }
    return 0;
bad:
    dcb_log(DCB_LOG_ERROR, "%s:%d: bad value '%s' for '%s' in [%s]", oi.o_path, lineno, value, name,
            section);
    return 1;
}

static void configure(void)
{
    oi.o_nrules = 0;
    oi.o_ok = 0;
    if (dcb_plugin_config_path("DCB_OPTINJECT_CONFIG", (const void *)configure, oi.o_path,
                               sizeof(oi.o_path)) != 0) {
        dcb_log(DCB_LOG_ERROR, "cannot tell where the configuration is; changing nothing");
        return;
    }
    int rc = dcb_ini_parse(oi.o_path, config_handler, NULL);
    if (rc == DCB_INI_EOPEN) {
        dcb_log(DCB_LOG_ERROR, "cannot read the configuration %s; changing nothing", oi.o_path);
        return;
    }
    if (rc > 0) {
        dcb_log(DCB_LOG_ERROR, "%s:%d: configuration error; changing nothing", oi.o_path, rc);
        return;
    }
    for (size_t i = 0; i < oi.o_nrules; i++) {
        oi_rule_t *r = &oi.o_rules[i];
        if (r->r_code == 0 || r->r_vlen < 0 || (!r->r_any && r->r_nprefix == 0)) {
            dcb_log(DCB_LOG_ERROR,
                    "%s: [%s] needs 'mac', 'option' and one of hex/text/ip; "
                    "changing nothing",
                    oi.o_path, r->r_name);
            return;
        }
    }
    oi.o_ok = 1;
    dcb_log(DCB_LOG_INFO, "%zu rules from %s", oi.o_nrules, oi.o_path);
}

static int rule_matches(const oi_rule_t *r, const uint8_t *mac, size_t n)
{
    if (r->r_any)
        return 1;
    for (size_t i = 0; i < r->r_nprefix; i++)
        if (r->r_plen[i] <= n && memcmp(r->r_prefix[i], mac, r->r_plen[i]) == 0)
            return 1;
    return 0;
}

static int any_rule_matches(const uint8_t *pkt, size_t len)
{
    const uint8_t *chaddr;
    size_t n = dcb_dhcp_chaddr(pkt, len, &chaddr);
    for (size_t i = 0; n > 0 && i < oi.o_nrules; i++)
        if (rule_matches(&oi.o_rules[i], chaddr, n))
            return 1;
    return 0;
}

/* Only packets whose client may need a change get a context. */
static DWORD WINAPI oi_newpkt(LPBYTE *Packet, DWORD *PacketSize, DWORD IpAddress, LPVOID Reserved,
                              LPVOID *PktContext, LPBOOL ProcessIt)
{
    if (!oi.o_ok || !any_rule_matches(*Packet, *PacketSize))
        return ERROR_SUCCESS;
    oi_pkt_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return ERROR_SUCCESS;
    c->p_magic = OI_PKT_MAGIC;
    dcb_mutex_lock(&oi.o_lock);
    c->p_next = oi.o_live;
    if (oi.o_live != NULL)
        oi.o_live->p_prev = c;
    oi.o_live = c;
    dcb_mutex_unlock(&oi.o_lock);
    *PktContext = c;
    return ERROR_SUCCESS;
}

/*
 * Rewrites the options of reply into out (cap bytes): the existing options
 * minus those a "set" rule replaces, then the rules' options, then END.
 * Returns the new length, or 0 when nothing is to be done.
 */
static size_t rewrite(const uint8_t *pkt, size_t len, const uint8_t *chaddr, size_t hlen,
                      unsigned msgbit, uint8_t *out, size_t cap)
{
    const oi_rule_t *apply[256] = {0};
    int any = 0;
    for (size_t i = 0; i < oi.o_nrules; i++) {
        const oi_rule_t *r = &oi.o_rules[i];
        if (!(r->r_msgs & msgbit) || !rule_matches(r, chaddr, hlen))
            continue;
        uint8_t ol;
        if (r->r_add_only && dcb_dhcp_find_option(pkt, len, (uint8_t)r->r_code, &ol) != NULL)
            continue;
        apply[r->r_code] = r; /* a later rule for the same option wins */
        any = 1;
    }
    if (!any)
        return 0;
    if (cap < DCB_DHCP_OPT_OFF)
        return 0;
    memcpy(out, pkt, DCB_DHCP_OPT_OFF);
    size_t k = DCB_DHCP_OPT_OFF, i = DCB_DHCP_OPT_OFF;
    while (i < len) {
        uint8_t code = pkt[i];
        if (code == 0) {
            i++;
            continue;
        }
        if (code == 255)
            break;
        if (i + 1 >= len || i + 2u + pkt[i + 1] > len)
            return 0; /* a malformed reply: leave it alone */
        size_t olen = 2u + pkt[i + 1];
        if (apply[code] == NULL) {
            if (k + olen > cap)
                return 0;
            memcpy(out + k, pkt + i, olen);
            k += olen;
        }
        i += olen;
    }
    for (int code = 1; code < 255; code++) {
        const oi_rule_t *r = apply[code];
        if (r == NULL)
            continue;
        if (k + 2u + (size_t)r->r_vlen > cap)
            return 0;
        out[k++] = (uint8_t)code;
        out[k++] = (uint8_t)r->r_vlen;
        memcpy(out + k, r->r_val, (size_t)r->r_vlen);
        k += (size_t)r->r_vlen;
    }
    if (k + 1 > cap)
        return 0;
    out[k++] = 255;
    return k;
}

static DWORD WINAPI oi_send(LPBYTE *Packet, DWORD *PacketSize, DWORD ControlCode, DWORD IpAddress,
                            LPVOID Reserved, LPVOID PktContext)
{
    oi_pkt_t *c = PktContext;
    if (c == NULL || c->p_magic != OI_PKT_MAGIC)
        return ERROR_SUCCESS;
    const uint8_t *pkt = *Packet;
    size_t len = *PacketSize;
    if (!dcb_dhcp_has_options(pkt, len) || pkt[0] != 2)
        return ERROR_SUCCESS;
    uint8_t ol;
    if (dcb_dhcp_find_option(pkt, len, 52, &ol) != NULL) {
        /* Options spill into file/sname: rewriting those is out of scope. */
        atomic_fetch_add_explicit(&oi.o_skipped, 1, memory_order_relaxed);
        return ERROR_SUCCESS;
    }
    int type = dcb_dhcp_msgtype(pkt, len);
    unsigned msgbit = type == 0 ? OI_BOOTP_BIT : (1u << type);
    const uint8_t *chaddr;
    size_t hlen = dcb_dhcp_chaddr(pkt, len, &chaddr);

    size_t cap = len + OI_MAX_RULES * 257u + 1;
    uint8_t *out = malloc(cap < 300 ? 300 : cap);
    if (out == NULL)
        return ERROR_SUCCESS;
    size_t n = rewrite(pkt, len, chaddr, hlen, msgbit, out, cap);
    if (n == 0) {
        free(out);
        return ERROR_SUCCESS;
    }
    atomic_fetch_add_explicit(&oi.o_changed, 1, memory_order_relaxed);
    if (n <= len) {
        /* It fits: edit in place, within *PacketSize, and keep the padding. */
        memcpy(*Packet, out, n);
        memset(*Packet + n, 0, len - n);
        free(out);
        atomic_fetch_add_explicit(&oi.o_in_place, 1, memory_order_relaxed);
        return ERROR_SUCCESS;
    }
    if (c->p_replaced != NULL) {
        /* One reply per packet; a second one is left as it is. */
        free(out);
        atomic_fetch_add_explicit(&oi.o_skipped, 1, memory_order_relaxed);
        return ERROR_SUCCESS;
    }
    /* It must grow: hand the server a buffer of ours, freed at PROCESSED. */
    if (n < 300) {
        memset(out + n, 0, 300 - n);
        n = 300;
    }
    c->p_replaced = out;
    *Packet = out;
    *PacketSize = (DWORD)n;
    atomic_fetch_add_explicit(&oi.o_replaced, 1, memory_order_relaxed);
    return ERROR_SUCCESS;
}

static void release(oi_pkt_t *c)
{
    if (c->p_replaced != NULL) {
        free(c->p_replaced);
        atomic_fetch_add_explicit(&oi.o_freed, 1, memory_order_relaxed);
    }
    c->p_magic = 0;
    free(c);
}

static DWORD WINAPI oi_drop(LPBYTE *Packet, DWORD *PacketSize, DWORD ControlCode, DWORD IpAddress,
                            LPVOID Reserved, LPVOID PktContext)
{
    oi_pkt_t *c = PktContext;
    if (ControlCode != DHCP_DROP_PROCESSED || c == NULL || c->p_magic != OI_PKT_MAGIC)
        return ERROR_SUCCESS;
    dcb_mutex_lock(&oi.o_lock);
    if (c->p_prev != NULL)
        c->p_prev->p_next = c->p_next;
    else
        oi.o_live = c->p_next;
    if (c->p_next != NULL)
        c->p_next->p_prev = c->p_prev;
    dcb_mutex_unlock(&oi.o_lock);
    release(c);
    return ERROR_SUCCESS;
}

static DWORD WINAPI oi_control(DWORD code, LPVOID reserved)
{
    if (code != DHCP_CONTROL_STOP)
        return ERROR_SUCCESS;
    /* The server frees queued packets at STOP without drop callbacks. */
    size_t released = 0;
    dcb_mutex_lock(&oi.o_lock);
    while (oi.o_live != NULL) {
        oi_pkt_t *c = oi.o_live;
        oi.o_live = c->p_next;
        release(c);
        released++;
    }
    dcb_mutex_unlock(&oi.o_lock);
    dcb_log(DCB_LOG_INFO,
            "%llu replies changed (%llu in place, %llu in new buffers), %llu buffers freed, "
            "%zu packets released at STOP, %llu left alone",
            (unsigned long long)atomic_load(&oi.o_changed),
            (unsigned long long)atomic_load(&oi.o_in_place),
            (unsigned long long)atomic_load(&oi.o_replaced),
            (unsigned long long)atomic_load(&oi.o_freed), released,
            (unsigned long long)atomic_load(&oi.o_skipped));
    return ERROR_SUCCESS;
}

DCB_CALLOUT_EXPORT DWORD WINAPI DhcpServerCalloutEntry(LPWSTR ChainDlls, DWORD CalloutVersion,
                                                       LPDHCP_CALLOUT_TABLE CalloutTbl)
{
    static int inited;
    if (CalloutVersion != 0)
        return ERROR_NOT_SUPPORTED;
    dcb_log_set_tag("optinject");
    if (!inited) {
        dcb_mutex_init(&oi.o_lock);
        inited = 1;
    }
    configure();
    DHCP_CALLOUT_TABLE own;
    memset(&own, 0, sizeof(own));
    own.DhcpControlHook = oi_control;
    own.DhcpNewPktHook = oi_newpkt;
    own.DhcpPktDropHook = oi_drop;
    own.DhcpPktSendHook = oi_send;
    return dcb_chain_entry("optinject", DhcpServerCalloutEntry, ChainDlls, CalloutVersion, &own,
                           CalloutTbl);
}
