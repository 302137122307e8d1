/*
 * traffic.c — seeded, reproducible DHCPv4 client traffic.
 *
 * A population of clients, each with a MAC address from a handful of real
 * vendor prefixes and a "profile" (Windows, Android, Linux, PXE, VoIP
 * phone) that decides which options it sends: 61 (client identifier, by
 * MAC or RFC 4361 DUID), 12, 60, 77, 81, 55, 57, and 82 when a relay agent
 * forwards it. Every packet advances one client's state machine: DISCOVER,
 * REQUEST (selecting, renewing, rebinding, rebooting), RELEASE, DECLINE,
 * INFORM, and BOOTP requests. On top come duplicates (retransmissions),
 * malformed packets and MADCAP messages.
 *
 * The clients assume the server answers: a client that sent a DISCOVER
 * next REQUESTs the address the server will offer (scope.c is
 * deterministic, so the generator knows it) whether or not a plugin dropped
 * the DISCOVER. The stream therefore depends on the seed alone, never on
 * the plugins or on thread timing.
 */
#include "dcbsim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum profile { P_WINDOWS, P_ANDROID, P_LINUX, P_PXE, P_PHONE, P_COUNT } profile_t;

typedef enum cstate { C_INIT, C_OFFERED, C_BOUND } cstate_t;

typedef struct client {
    uint8_t c_mac[6];
    uint8_t c_state;
    uint8_t c_profile;
    uint8_t c_bootp;
    uint8_t c_cidlen; /* 0: no option 61 */
    uint8_t c_cid[20];
    uint8_t c_relay; /* index into the relay table; 0 = direct */
    uint8_t c_hostname;
    uint8_t c_userclass;
    uint8_t c_fqdn;
    uint8_t c_dsdomain;
    uint8_t c_overload; /* puts option 12 into sname (option 52 = 2) */
    uint32_t c_addr;    /* offered or bound address */
    uint32_t c_xid;
    uint32_t c_id;
} client_t;

struct sim_traffic {
    sim_traffic_cfg_t t_cfg;
    uint64_t t_rng;
    client_t *t_clients;
    uint8_t t_last[SIM_SERVER_BUF];
    size_t t_last_len;
};

/* Relay agents: 0 is "no relay"; the last one serves no known subnet. */
static const uint32_t relays[] = {0, 0x0a010001, 0x0a020001, 0x0a030001, 0xc0000201};

static const uint8_t ouis[][3] = {
    {0x00, 0x50, 0x56}, /* VMware */
    {0x3c, 0x22, 0xfb}, /* Apple */
    {0x00, 0x1b, 0x21}, /* Intel */
    {0x00, 0x04, 0xf2}, /* Polycom */
    {0x00, 0x0b, 0x82}, /* Grandstream */
    {0xb8, 0x27, 0xeb}, /* Raspberry Pi */
    {0xf0, 0x1f, 0xaf}, /* Dell */
    {0x02, 0x00, 0x00}, /* locally administered */
};

static const char *const vendor_class[P_COUNT] = {"MSFT 5.0", "android-dhcp-13", "udhcp 1.36.1",
                                                  "PXEClient:Arch:00007:UNDI:003016",
                                                  "Polycom-VVX411"};

static const uint8_t prl_windows[] = {1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119, 121, 249, 252};
static const uint8_t prl_android[] = {1, 3, 6, 15, 26, 28, 51, 58, 59, 43};
static const uint8_t prl_linux[] = {1, 3, 6, 12, 15, 28, 42};
static const uint8_t prl_pxe[] = {1,  2,  3,  4,  5,   6,   11,  12,  13,  15,  16,  17,
                                  18, 22, 23, 28, 40,  41,  42,  43,  50,  51,  54,  58,
                                  59, 60, 66, 67, 128, 129, 130, 131, 132, 133, 134, 135};
static const uint8_t prl_phone[] = {1, 3, 6, 15, 42, 66, 150, 160};

const char *sim_pkt_kind_name(sim_pkt_kind_t k)
{
    static const char *const names[SIM_KIND_COUNT] = {
        "discover", "select", "renew", "rebind",    "reboot",    "release",
        "decline",  "inform", "bootp", "duplicate", "malformed", "madcap"};
    return (unsigned)k < SIM_KIND_COUNT ? names[k] : "?";
}

void sim_traffic_cfg_default(sim_traffic_cfg_t *cfg, const sim_scope_t *scope)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->tc_seed = 1;
    cfg->tc_clients = 1000;
    cfg->tc_scope = scope;
    cfg->tc_duplicate_pm = 20;
    cfg->tc_malformed_pm = 10;
    cfg->tc_madcap_pm = 10;
    cfg->tc_bootp_clients_pm = 20;
    cfg->tc_relayed_clients_pm = 400;
}

/* splitmix64: tiny, fast, and identical on every platform. */
static uint64_t rnd(sim_traffic_t *t)
{
    uint64_t z = (t->t_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static unsigned rnd_below(sim_traffic_t *t, unsigned n)
{
    return (unsigned)(rnd(t) % n);
}

static void client_init(sim_traffic_t *t, client_t *c, uint32_t id)
{
    memset(c, 0, sizeof(*c));
    c->c_id = id;
    const uint8_t *oui = ouis[rnd_below(t, sizeof(ouis) / sizeof(ouis[0]))];
    uint64_t r = rnd(t);
    memcpy(c->c_mac, oui, 3);
    /* The client number in the low bytes keeps MACs unique per run. */
    c->c_mac[3] = (uint8_t)(r ^ (id >> 16));
    c->c_mac[4] = (uint8_t)(id >> 8);
    c->c_mac[5] = (uint8_t)id;
    if (oui[0] == 0x02) {
        c->c_mac[1] = (uint8_t)(r >> 8);
        c->c_mac[2] = (uint8_t)(r >> 16);
    }
    if (oui[0] == 0x00 && (oui[2] == 0xf2 || oui[2] == 0x82))
        c->c_profile = P_PHONE;
    else
        c->c_profile = (uint8_t)rnd_below(t, P_COUNT);

    c->c_bootp = rnd_below(t, 1000) < t->t_cfg.tc_bootp_clients_pm;
    if (rnd_below(t, 1000) < t->t_cfg.tc_relayed_clients_pm) {
        unsigned x = rnd_below(t, 1000);
        c->c_relay = x < 10 ? 3 : x < 15 ? 4 : (uint8_t)(1 + (x & 1));
    }
    unsigned cid = rnd_below(t, 10);
    if (cid < 7) {
        c->c_cid[0] = 1; /* type 1: Ethernet, then the MAC */
        memcpy(c->c_cid + 1, c->c_mac, 6);
        c->c_cidlen = 7;
    } else if (cid < 8) {
        /* RFC 4361: type 255, IAID, DUID-LL (type 3, hw type 1, MAC). */
        c->c_cid[0] = 255;
        sim_put_be32(c->c_cid + 1, (uint32_t)r);
        sim_put_be16(c->c_cid + 5, 3);
        sim_put_be16(c->c_cid + 7, 1);
        memcpy(c->c_cid + 9, c->c_mac, 6);
        c->c_cidlen = 15;
    }
    c->c_hostname = rnd_below(t, 10) < 6;
    c->c_userclass = rnd_below(t, 100) < 15;
    c->c_fqdn = c->c_profile == P_WINDOWS && rnd_below(t, 10) < 7;
    c->c_dsdomain = c->c_profile == P_WINDOWS && rnd_below(t, 10) < 1;
    c->c_overload = rnd_below(t, 100) < 1;
    c->c_state = C_INIT;
}

sim_traffic_t *sim_traffic_new(const sim_traffic_cfg_t *cfg)
{
    if (cfg->tc_scope == NULL)
        return NULL;
    sim_traffic_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->t_cfg = *cfg;
    if (t->t_cfg.tc_clients == 0)
        t->t_cfg.tc_clients = 1;
    t->t_rng = cfg->tc_seed;
    t->t_clients = calloc(t->t_cfg.tc_clients, sizeof(client_t));
    if (t->t_clients == NULL) {
        free(t);
        return NULL;
    }
    for (uint32_t i = 0; i < t->t_cfg.tc_clients; i++)
        client_init(t, &t->t_clients[i], i);
    return t;
}

void sim_traffic_free(sim_traffic_t *t)
{
    if (t == NULL)
        return;
    free(t->t_clients);
    free(t);
}

static void hostname(const client_t *c, char *buf, size_t cap)
{
    static const char *const prefix[P_COUNT] = {"DESKTOP-", "android-", "node-", "pxe-", "SEP"};
    snprintf(buf, cap, "%s%02X%02X%02X", prefix[c->c_profile], c->c_mac[3], c->c_mac[4],
             c->c_mac[5]);
}

static void put_prl(sim_dhcp_buf_t *b, const client_t *c)
{
    switch (c->c_profile) {
    case P_WINDOWS:
        sim_dhcp_put_opt(b, 55, prl_windows, sizeof(prl_windows));
        break;
    case P_ANDROID:
        sim_dhcp_put_opt(b, 55, prl_android, sizeof(prl_android));
        break;
    case P_LINUX:
        sim_dhcp_put_opt(b, 55, prl_linux, sizeof(prl_linux));
        break;
    case P_PXE:
        sim_dhcp_put_opt(b, 55, prl_pxe, sizeof(prl_pxe));
        break;
    default:
        sim_dhcp_put_opt(b, 55, prl_phone, sizeof(prl_phone));
        break;
    }
}

/*
 * Builds one client message. requested/server are option 50/54 values
 * (0 = leave out); ciaddr as the client fills it.
 */
static size_t build(sim_traffic_t *t, client_t *c, uint8_t *buf, size_t cap, uint8_t msgtype,
                    uint32_t ciaddr, uint32_t requested, uint32_t server, int broadcast)
{
    sim_dhcp_buf_t b;
    char name[32];
    uint32_t giaddr = relays[c->c_relay];
    sim_dhcp_buf_init(&b, buf, cap);
    sim_dhcp_put_header(&b, SIM_BOOTREQUEST, c->c_mac, 6, c->c_xid, broadcast ? 0x8000 : 0, ciaddr,
                        0, 0, giaddr);
    if (b.b_overflow)
        return 0;
    if (giaddr != 0)
        buf[3] = 1; /* hops */
    hostname(c, name, sizeof(name));

    if (c->c_bootp) {
        /* A BOOTP client: no option 53; the vend field is padded to 64 bytes. */
        if (c->c_hostname)
            sim_dhcp_put_opt(&b, 12, name, strlen(name));
        return sim_dhcp_finish(&b, 300);
    }
    sim_dhcp_put_opt_u8(&b, 53, msgtype);
    if (c->c_cidlen > 0)
        sim_dhcp_put_opt(&b, 61, c->c_cid, c->c_cidlen);
    if (requested != 0)
        sim_dhcp_put_opt_u32(&b, 50, requested);
    if (server != 0)
        sim_dhcp_put_opt_u32(&b, 54, server);
    if (msgtype == SIM_DHCPRELEASE || msgtype == SIM_DHCPDECLINE)
        goto relay; /* RFC 2131 table 5: no parameters in these */
    if (c->c_profile == P_LINUX || c->c_profile == P_ANDROID)
        sim_dhcp_put_opt(&b, 57, "\x05\xdc", 2); /* 1500 */
    if (c->c_hostname && !c->c_overload)
        sim_dhcp_put_opt(&b, 12, name, strlen(name));
    if (c->c_fqdn) {
        uint8_t fq[64];
        int n = snprintf((char *)fq + 3, sizeof(fq) - 3, "%s.corp.example", name);
        fq[0] = 0x01; /* S: the server updates the A record */
        fq[1] = fq[2] = 0;
        sim_dhcp_put_opt(&b, 81, fq, 3u + (size_t)n);
    }
    sim_dhcp_put_opt(&b, 60, vendor_class[c->c_profile], strlen(vendor_class[c->c_profile]));
    if (c->c_userclass)
        sim_dhcp_put_opt(&b, 77, "corp-laptops", 12);
    if (c->c_dsdomain) {
        static const uint8_t v43[] = {0x5e, 12,  'c', 'o', 'r', 'p', '.',
                                      'e',  'x', 'a', 'm', 'p', 'l', 'e'};
        sim_dhcp_put_opt(&b, 43, v43, sizeof(v43));
    }
    put_prl(&b, c);
    if (c->c_overload && c->c_hostname) {
        /* Option 12 lives in sname; option 52 says so. */
        uint8_t *sname = buf + SIM_DHCP_SNAME_OFF;
        size_t n = strlen(name);
        sim_dhcp_put_opt_u8(&b, 52, 2);
        sname[0] = 12;
        sname[1] = (uint8_t)n;
        memcpy(sname + 2, name, n);
        sname[2 + n] = 255;
    }
relay:
    if (giaddr != 0) {
        /* Relay agent information: circuit id and remote id sub-options. */
        uint8_t o82[32];
        int n = snprintf((char *)o82 + 2, 16, "ge-0/0/%u", (unsigned)(c->c_id % 48));
        o82[0] = 1;
        o82[1] = (uint8_t)n;
        size_t k = 2u + (size_t)n;
        o82[k++] = 2;
        o82[k++] = 6;
        sim_put_be32(o82 + k, giaddr);
        sim_put_be16(o82 + k + 4, 0x5e00);
        k += 6;
        sim_dhcp_put_opt(&b, 82, o82, k);
    }
    /* Windows and PXE clients pad to the BOOTP minimum; others do not. */
    size_t min = (c->c_profile == P_WINDOWS || c->c_profile == P_PXE) ? 300 : 0;
    if (b.b_overflow)
        return 0;
    return sim_dhcp_finish(&b, min);
}

/* The address the server will hand this client (see scope.c). */
static uint32_t predict(sim_traffic_t *t, const uint8_t *pkt, size_t len)
{
    sim_dhcp_msg_t m;
    uint8_t key[64];
    if (sim_dhcp_parse(&m, pkt, len) != SIM_DHCP_OK)
        return 0;
    const sim_subnet_t *sub = sim_scope_subnet(t->t_cfg.tc_scope, m.m_giaddr);
    if (sub == NULL)
        return 0;
    size_t klen = sim_dhcp_client_key(&m, key, sizeof(key));
    return sim_scope_address(sub, key, klen, NULL);
}

static size_t client_step(sim_traffic_t *t, client_t *c, uint8_t *buf, size_t cap,
                          sim_pkt_kind_t *kind)
{
    uint32_t server = t->t_cfg.tc_scope->sc_server;
    size_t n;
    if (c->c_bootp) {
        c->c_xid = (uint32_t)rnd(t);
        *kind = SIM_KIND_BOOTP;
        return build(t, c, buf, cap, 0, 0, 0, 0, 0);
    }
    switch (c->c_state) {
    case C_INIT:
    discover:
        c->c_xid = (uint32_t)rnd(t);
        n = build(t, c, buf, cap, SIM_DHCPDISCOVER, 0, 0, 0, c->c_profile != P_LINUX);
        c->c_addr = predict(t, buf, n);
        c->c_state = C_OFFERED;
        *kind = SIM_KIND_DISCOVER;
        return n;
    case C_OFFERED:
        *kind = SIM_KIND_SELECT;
        if (rnd_below(t, 100) < 3) {
            /* The client took another server's offer. */
            c->c_state = C_INIT;
            return build(t, c, buf, cap, SIM_DHCPREQUEST, 0, c->c_addr, 0x0a000009, 1);
        }
        c->c_state = C_BOUND;
        return build(t, c, buf, cap, SIM_DHCPREQUEST, 0, c->c_addr, server, 1);
    default:
        break;
    }
    unsigned r = rnd_below(t, 100);
    c->c_xid = (uint32_t)rnd(t);
    if (r < 50) {
        *kind = SIM_KIND_RENEW;
        return build(t, c, buf, cap, SIM_DHCPREQUEST, c->c_addr, 0, 0, 0);
    }
    if (r < 60) {
        *kind = SIM_KIND_REBIND;
        return build(t, c, buf, cap, SIM_DHCPREQUEST, c->c_addr, 0, 0, 1);
    }
    if (r < 68) {
        *kind = SIM_KIND_INFORM;
        return build(t, c, buf, cap, SIM_DHCPINFORM, c->c_addr, 0, 0, 0);
    }
    if (r < 76) {
        *kind = SIM_KIND_REBOOT;
        if (rnd_below(t, 100) < 15) {
            /* Moved to another network: asks for an address it cannot have. */
            c->c_state = C_INIT;
            return build(t, c, buf, cap, SIM_DHCPREQUEST, 0, c->c_addr ^ 0x00000100u, 0, 1);
        }
        return build(t, c, buf, cap, SIM_DHCPREQUEST, 0, c->c_addr, 0, 1);
    }
    if (r < 86) {
        *kind = SIM_KIND_RELEASE;
        c->c_state = C_INIT;
        return build(t, c, buf, cap, SIM_DHCPRELEASE, c->c_addr, 0, server, 0);
    }
    if (r < 89) {
        *kind = SIM_KIND_DECLINE;
        c->c_state = C_INIT;
        return build(t, c, buf, cap, SIM_DHCPDECLINE, 0, c->c_addr, server, 1);
    }
    goto discover;
}

/* A broken packet built from a client's DISCOVER; the client is unchanged. */
static size_t malformed(sim_traffic_t *t, uint8_t *buf, size_t cap)
{
    client_t c = t->t_clients[rnd_below(t, t->t_cfg.tc_clients)];
    c.c_bootp = 0;
    c.c_xid = (uint32_t)rnd(t);
    size_t n = build(t, &c, buf, cap, SIM_DHCPDISCOVER, 0, 0, 0, 1);
    if (n < SIM_DHCP_OPT_OFF + 8)
        return n;
    switch (rnd_below(t, 6)) {
    case 0: /* truncated inside the fixed header */
        return 20 + rnd_below(t, SIM_DHCP_HDR_LEN - 20);
    case 1: /* hardware address length larger than chaddr */
        buf[2] = (uint8_t)(17 + rnd_below(t, 239));
        return n;
    case 2: { /* an option claims more bytes than the packet has */
        size_t at = SIM_DHCP_OPT_OFF + 3;
        buf[at] = 12;
        buf[at + 1] = 250;
        return at + 2 + 10;
    }
    case 3: /* a BOOTREPLY sent to the server */
        buf[0] = SIM_BOOTREPLY;
        return n;
    case 4: /* option 53 with two bytes */
        buf[SIM_DHCP_OPT_OFF + 1] = 2;
        return n;
    default: /* a message type no one defined */
        buf[SIM_DHCP_OPT_OFF + 2] = (uint8_t)(20 + rnd_below(t, 200));
        return n;
    }
}

/* RFC 2730: version, type, address family, xid, then 16-bit TLV options. */
static size_t madcap(sim_traffic_t *t, uint8_t *buf, size_t cap)
{
    static const uint8_t types[] = {1, 3, 4, 7, 8, 8};
    if (cap < 24)
        return 0;
    buf[0] = 1;
    buf[1] = types[rnd_below(t, sizeof(types))];
    sim_put_be16(buf + 2, 1);
    sim_put_be32(buf + 4, (uint32_t)rnd(t));
    sim_put_be16(buf + 8, 3); /* lease identifier */
    sim_put_be16(buf + 10, 8);
    uint64_t id = rnd(t);
    for (int i = 0; i < 8; i++)
        buf[12 + i] = (uint8_t)(id >> (8 * i));
    sim_put_be16(buf + 20, 0); /* end */
    sim_put_be16(buf + 22, 0);
    return 24;
}

size_t sim_traffic_next(sim_traffic_t *t, uint8_t *buf, size_t cap, sim_pkt_kind_t *kind)
{
    sim_pkt_kind_t k;
    size_t n;
    if (t->t_last_len > 0 && t->t_last_len <= cap &&
        rnd_below(t, 1000) < t->t_cfg.tc_duplicate_pm) {
        /* A retransmission: the same bytes again, same xid. */
        memcpy(buf, t->t_last, t->t_last_len);
        if (kind != NULL)
            *kind = SIM_KIND_DUPLICATE;
        return t->t_last_len;
    }
    unsigned r = rnd_below(t, 1000);
    if (r < t->t_cfg.tc_malformed_pm) {
        k = SIM_KIND_MALFORMED;
        n = malformed(t, buf, cap);
    } else if (r < t->t_cfg.tc_malformed_pm + t->t_cfg.tc_madcap_pm) {
        k = SIM_KIND_MADCAP;
        n = madcap(t, buf, cap);
    } else {
        client_t *c = &t->t_clients[rnd_below(t, t->t_cfg.tc_clients)];
        n = client_step(t, c, buf, cap, &k);
        if (n > 0 && n <= sizeof(t->t_last)) {
            memcpy(t->t_last, buf, n);
            t->t_last_len = n;
        }
    }
    if (kind != NULL)
        *kind = k;
    return n;
}
