/*
 * auditlog — writes one JSON line per callout event to a file: the hook,
 * the time, the client's MAC, addresses and codes. Rotates by size.
 *
 * A pure observer: it changes no packet and never sets ProcessIt to FALSE.
 * Hooks run on many threads at once; lines are written whole under one
 * lock and flushed, so a crash of the process loses no finished line.
 *
 * Configuration: auditlog.ini (see plugins/README.md), whose path is
 * $DCB_AUDITLOG_CONFIG or the DLL's own path with ".ini". Without a usable
 * configuration it logs why and writes nothing (DHCP is not affected).
 *
 * Byte order, per callout-api.md: IpAddress is in network order for
 * NewPkt, PktDrop, PktSend and AddressDel, and in host order for
 * AddressOffer and DeleteClient; AltAddress is taken as host order.
 */
#include "dcb_callout.h"
#include "dcb_ini.h"
#include "dcb_os.h"
#include "dcb_plugin.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct al_config {
    char c_path[4096];
    char c_file[4096];
    uint64_t c_max_size;
    unsigned c_keep;
    unsigned c_hooks; /* DCB_HOOK_BIT() set */
} al_config_t;

static struct {
    al_config_t a_cf;
    dcb_mutex_t a_lock;
    FILE *a_out;
    uint64_t a_size;
    _Atomic int a_ready; /* read by every hook without the lock */
} al;

static const char *const hook_names[DCB_HOOK_COUNT] = {
    "control",    "newpkt",       "pktdrop",       "pktsend",
    "addressdel", "addressoffer", "handleoptions", "deleteclient"};

static int parse_hooks(const char *v, unsigned *out)
{
    unsigned bits = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", v);
    for (char *tok = strtok(buf, ", \t"); tok != NULL; tok = strtok(NULL, ", \t")) {
        if (strcmp(tok, "all") == 0) {
            bits = (1u << DCB_HOOK_COUNT) - 1;
            continue;
        }
        int found = 0;
        for (unsigned h = 0; h < DCB_HOOK_COUNT; h++)
            if (strcmp(tok, hook_names[h]) == 0) {
                bits |= DCB_HOOK_BIT(h);
                found = 1;
            }
        if (!found)
            return -1;
    }
    *out = bits;
    return 0;
}

static int config_handler(void *user, const char *section, const char *name, const char *value,
                          int lineno)
{
    al_config_t *cf = user;
    char *end;
    if (strcmp(section, "auditlog") != 0) {
        dcb_log(DCB_LOG_ERROR, "%s:%d: unknown section [%s]", cf->c_path, lineno, section);
        return 1;
    }
    if (strcmp(name, "file") == 0) {
        dcb_plugin_resolve(cf->c_path, value, cf->c_file, sizeof(cf->c_file));
    } else if (strcmp(name, "max_size") == 0) {
        cf->c_max_size = strtoull(value, &end, 10);
        if (*end != '\0' || value[0] == '-')
            goto bad;
    } else if (strcmp(name, "keep") == 0) {
        unsigned long k = strtoul(value, &end, 10);
        if (*end != '\0' || k > 100)
            goto bad;
        cf->c_keep = (unsigned)k;
    } else if (strcmp(name, "hooks") == 0) {
        if (parse_hooks(value, &cf->c_hooks) != 0)
            goto bad;
    } else {
        dcb_log(DCB_LOG_ERROR, "%s:%d: unknown key '%s'", cf->c_path, lineno, name);
        return 1;
    }
    return 0;
bad:
    dcb_log(DCB_LOG_ERROR, "%s:%d: bad value '%s' for '%s'", cf->c_path, lineno, value, name);
    return 1;
}

static int open_log(void)
{
    al.a_out = fopen(al.a_cf.c_file, "ab");
    if (al.a_out == NULL) {
        dcb_log(DCB_LOG_ERROR, "cannot open %s for appending", al.a_cf.c_file);
        return -1;
    }
    /* Appends go to the end anyway; the seek is for ftell, the current size. */
    fseek(al.a_out, 0, SEEK_END);
    long pos = ftell(al.a_out);
    al.a_size = pos > 0 ? (uint64_t)pos : 0;
    return 0;
}

/* file -> file.1 -> ... -> file.<keep>; the oldest is removed. Lock held. */
static void rotate(void)
{
    char from[4200], to[4200];
    fclose(al.a_out);
    al.a_out = NULL;
    if (al.a_cf.c_keep == 0) {
        remove(al.a_cf.c_file);
    } else {
        snprintf(to, sizeof(to), "%s.%u", al.a_cf.c_file, al.a_cf.c_keep);
        remove(to);
        for (unsigned i = al.a_cf.c_keep; i > 1; i--) {
            snprintf(from, sizeof(from), "%s.%u", al.a_cf.c_file, i - 1);
            snprintf(to, sizeof(to), "%s.%u", al.a_cf.c_file, i);
            dcb_plugin_replace_file(from, to);
        }
        snprintf(to, sizeof(to), "%s.1", al.a_cf.c_file);
        dcb_plugin_replace_file(al.a_cf.c_file, to);
    }
    if (open_log() != 0)
        al.a_ready = 0;
}

static void emit(cJSON *o)
{
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (line == NULL)
        return;
    size_t n = strlen(line);
    dcb_mutex_lock(&al.a_lock);
    if (al.a_ready) {
        if (al.a_cf.c_max_size > 0 && al.a_size > 0 && al.a_size + n + 1 > al.a_cf.c_max_size)
            rotate();
        if (al.a_out != NULL) {
            fwrite(line, 1, n, al.a_out);
            fputc('\n', al.a_out);
            fflush(al.a_out);
            al.a_size += n + 1;
        }
    }
    dcb_mutex_unlock(&al.a_lock);
    cJSON_free(line);
}

static cJSON *event(dcb_hook_t h)
{
    if (!al.a_ready || !(al.a_cf.c_hooks & DCB_HOOK_BIT(h)))
        return NULL;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    char ts[40];
    dcb_plugin_utc_now(ts, sizeof(ts));
    cJSON_AddStringToObject(o, "ts", ts);
    cJSON_AddStringToObject(o, "hook", hook_names[h]);
    return o;
}

static void add_ip(cJSON *o, const char *k, DWORD ip, int network_order)
{
    char s[20];
    if (network_order)
        dcb_format_ip_net(ip, s, sizeof(s));
    else
        dcb_format_ip_host(ip, s, sizeof(s));
    cJSON_AddStringToObject(o, k, s);
}

/* The packet's identity: xid, MAC, message type, and size. */
static void add_packet(cJSON *o, const uint8_t *pkt, DWORD size)
{
    const uint8_t *chaddr;
    char buf[64];
    cJSON_AddNumberToObject(o, "size", size);
    size_t hlen = dcb_dhcp_chaddr(pkt, size, &chaddr);
    if (hlen == 0 || size < 236 || (pkt[0] != 1 && pkt[0] != 2))
        return; /* not BOOTP (MADCAP, truncated): size is all we can say */
    snprintf(buf, sizeof(buf), "0x%08lx", (unsigned long)dcb_dhcp_get32(pkt + 4));
    cJSON_AddStringToObject(o, "xid", buf);
    dcb_format_hex(chaddr, hlen, ':', buf, sizeof(buf));
    cJSON_AddStringToObject(o, "mac", buf);
    if (dcb_dhcp_has_options(pkt, size))
        cJSON_AddStringToObject(o, "msg", dcb_dhcp_msgtype_name(dcb_dhcp_msgtype(pkt, size)));
}

static const char *drop_name(DWORD code)
{
    static const char *const names[] = {"",        "DUPLICATE",    "NOMEM",     "INTERNAL_ERROR",
                                        "TIMEOUT", "UNAUTH",       "PAUSED",    "NO_SUBNETS",
                                        "INVALID", "WRONG_SERVER", "NOADDRESS", "PROCESSED"};
    if (code >= 1 && code <= 11)
        return names[code];
    if (code == DHCP_DROP_GEN_FAILURE)
        return "GEN_FAILURE";
    return "UNKNOWN";
}

static DWORD WINAPI al_control(DWORD code, LPVOID reserved)
{
    static const char *const names[] = {"", "START", "STOP", "PAUSE", "CONTINUE"};
    cJSON *o = event(DCB_HOOK_CONTROL);
    if (o != NULL) {
        cJSON_AddNumberToObject(o, "code", code);
        cJSON_AddStringToObject(o, "name", code >= 1 && code <= 4 ? names[code] : "UNKNOWN");
        emit(o);
    }
    if (code == DHCP_CONTROL_STOP) {
        dcb_mutex_lock(&al.a_lock);
        if (al.a_out != NULL)
            fclose(al.a_out);
        al.a_out = NULL;
        al.a_ready = 0;
        dcb_mutex_unlock(&al.a_lock);
    }
    return ERROR_SUCCESS;
}

static DWORD WINAPI al_newpkt(LPBYTE *Packet, DWORD *PacketSize, DWORD IpAddress, LPVOID Reserved,
                              LPVOID *PktContext, LPBOOL ProcessIt)
{
    cJSON *o = event(DCB_HOOK_NEWPKT);
    if (o != NULL) {
        add_ip(o, "ip", IpAddress, 1);
        add_packet(o, *Packet, *PacketSize);
        emit(o);
    }
    return ERROR_SUCCESS;
}

static DWORD WINAPI al_drop(LPBYTE *Packet, DWORD *PacketSize, DWORD ControlCode, DWORD IpAddress,
                            LPVOID Reserved, LPVOID PktContext)
{
    cJSON *o = event(DCB_HOOK_PKTDROP);
    if (o != NULL) {
        cJSON_AddNumberToObject(o, "code", ControlCode);
        cJSON_AddStringToObject(o, "reason", drop_name(ControlCode));
        add_ip(o, "ip", IpAddress, 1);
        add_packet(o, *Packet, *PacketSize);
        emit(o);
    }
    return ERROR_SUCCESS;
}

static DWORD WINAPI al_send(LPBYTE *Packet, DWORD *PacketSize, DWORD ControlCode, DWORD IpAddress,
                            LPVOID Reserved, LPVOID PktContext)
{
    cJSON *o = event(DCB_HOOK_PKTSEND);
    if (o != NULL) {
        const uint8_t *pkt = *Packet;
        add_ip(o, "ip", IpAddress, 1);
        add_packet(o, pkt, *PacketSize);
        if (*PacketSize >= 20 && pkt[0] == 2)
            add_ip(o, "yiaddr", dcb_dhcp_get32(pkt + 16), 0);
        emit(o);
    }
    return ERROR_SUCCESS;
}

static DWORD WINAPI al_address_del(LPBYTE Packet, DWORD PacketSize, DWORD ControlCode,
                                   DWORD IpAddress, DWORD AltAddress, LPVOID Reserved,
                                   LPVOID PktContext)
{
    static const char *const names[] = {"", "CONFLICT", "DECLINE", "RELEASE", "NACKED"};
    cJSON *o = event(DCB_HOOK_ADDRESSDEL);
    if (o != NULL) {
        DWORD k = ControlCode - 0x20000000u;
        cJSON_AddNumberToObject(o, "code", ControlCode);
        cJSON_AddStringToObject(o, "reason", k >= 1 && k <= 4 ? names[k] : "UNKNOWN");
        add_ip(o, "ip", IpAddress, 1);
        add_ip(o, "address", AltAddress, 0);
        add_packet(o, Packet, PacketSize);
        emit(o);
    }
    return ERROR_SUCCESS;
}

static DWORD WINAPI al_address_offer(LPBYTE Packet, DWORD PacketSize, DWORD ControlCode,
                                     DWORD IpAddress, DWORD AltAddress, DWORD AddrType,
                                     DWORD LeaseTime, LPVOID Reserved, LPVOID PktContext)
{
    cJSON *o = event(DCB_HOOK_ADDRESSOFFER);
    if (o != NULL) {
        cJSON_AddNumberToObject(o, "code", ControlCode);
        cJSON_AddStringToObject(o, "lease", ControlCode == DHCP_GIVE_ADDRESS_OLD ? "OLD" : "NEW");
        add_ip(o, "ip", IpAddress, 0);
        add_ip(o, "address", AltAddress, 0);
        cJSON_AddStringToObject(o, "client", AddrType == DHCP_CLIENT_BOOTP ? "BOOTP" : "DHCP");
        cJSON_AddNumberToObject(o, "lease_time", LeaseTime);
        add_packet(o, Packet, PacketSize);
        emit(o);
    }
    return ERROR_SUCCESS;
}

static DWORD WINAPI al_handle_options(LPBYTE Packet, DWORD PacketSize, LPVOID Reserved,
                                      LPVOID PktContext, LPDHCP_SERVER_OPTIONS so)
{
    cJSON *o = event(DCB_HOOK_HANDLEOPTIONS);
    if (o != NULL) {
        add_packet(o, Packet, PacketSize);
        /* Option values are not NUL-terminated: copy with their lengths. */
        if (so->MachineName != NULL && so->MachineNameLength > 0) {
            char name[256];
            size_t n =
                so->MachineNameLength < sizeof(name) - 1 ? so->MachineNameLength : sizeof(name) - 1;
            memcpy(name, so->MachineName, n);
            name[n] = '\0';
            cJSON_AddStringToObject(o, "hostname", name);
        }
        if (so->ClientHardwareAddress != NULL && so->ClientHardwareAddressLength > 0) {
            char cid[128];
            dcb_format_hex(so->ClientHardwareAddress, so->ClientHardwareAddressLength, ':', cid,
                           sizeof(cid));
            cJSON_AddStringToObject(o, "client_id", cid);
        }
        emit(o);
    }
    return ERROR_SUCCESS;
}

static DWORD WINAPI al_delete_client(DWORD IpAddress, LPBYTE HwAddress, ULONG HwAddressLength,
                                     DWORD Reserved, DWORD ClientType)
{
    cJSON *o = event(DCB_HOOK_DELETECLIENT);
    if (o != NULL) {
        add_ip(o, "address", IpAddress, 0);
        if (HwAddress != NULL && HwAddressLength > 0) {
            char mac[64];
            dcb_format_hex(HwAddress, HwAddressLength > 16 ? 16 : HwAddressLength, ':', mac,
                           sizeof(mac));
            cJSON_AddStringToObject(o, "mac", mac);
        }
        cJSON_AddNumberToObject(o, "client_type", ClientType);
        emit(o);
    }
    return ERROR_SUCCESS;
}

static void configure(void)
{
    al_config_t *cf = &al.a_cf;
    memset(cf, 0, sizeof(*cf));
    cf->c_max_size = 10u * 1024 * 1024;
    cf->c_keep = 3;
    cf->c_hooks = (1u << DCB_HOOK_COUNT) - 1;
    al.a_ready = 0;
    if (dcb_plugin_config_path("DCB_AUDITLOG_CONFIG", (const void *)configure, cf->c_path,
                               sizeof(cf->c_path)) != 0) {
        dcb_log(DCB_LOG_ERROR, "cannot tell where the configuration is; not logging");
        return;
    }
    int rc = dcb_ini_parse(cf->c_path, config_handler, cf);
    if (rc == DCB_INI_EOPEN) {
        dcb_log(DCB_LOG_ERROR, "cannot read the configuration %s; not logging", cf->c_path);
        return;
    }
    if (rc > 0) {
        dcb_log(DCB_LOG_ERROR, "%s:%d: configuration error; not logging", cf->c_path, rc);
        return;
    }
    if (cf->c_file[0] == '\0') {
        dcb_log(DCB_LOG_ERROR, "%s: no 'file' set; not logging", cf->c_path);
        return;
    }
    if (open_log() == 0)
        al.a_ready = 1;
}

DCB_CALLOUT_EXPORT DWORD WINAPI DhcpServerCalloutEntry(LPWSTR ChainDlls, DWORD CalloutVersion,
                                                       LPDHCP_CALLOUT_TABLE CalloutTbl)
{
    static int inited;
    if (CalloutVersion != 0)
        return ERROR_NOT_SUPPORTED;
    dcb_log_set_tag("auditlog");
    if (!inited) {
        dcb_mutex_init(&al.a_lock);
        inited = 1;
    }
    dcb_mutex_lock(&al.a_lock);
    if (al.a_out != NULL)
        fclose(al.a_out);
    al.a_out = NULL;
    configure();
    dcb_mutex_unlock(&al.a_lock);
    DHCP_CALLOUT_TABLE own;
    memset(&own, 0, sizeof(own));
    own.DhcpControlHook = al_control;
    own.DhcpNewPktHook = al_newpkt;
    own.DhcpPktDropHook = al_drop;
    own.DhcpPktSendHook = al_send;
    own.DhcpAddressDelHook = al_address_del;
    own.DhcpAddressOfferHook = al_address_offer;
    own.DhcpHandleOptionsHook = al_handle_options;
    own.DhcpDeleteClientHook = al_delete_client;
    return dcb_chain_entry("auditlog", DhcpServerCalloutEntry, ChainDlls, CalloutVersion, &own,
                           CalloutTbl);
}
