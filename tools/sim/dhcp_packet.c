/*
 * dhcp_packet.c — parsing and building BOOTP/DHCPv4 messages (RFC 2131,
 * RFC 2132), and the DHCP_SERVER_OPTIONS mapping of callout-api.md.
 *
 * The parser never reads past the length it is given: the packets it sees
 * come from plugins as well as from the wire.
 */
#include "dcbsim.h"

#include <stdio.h>
#include <string.h>

void sim_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint32_t sim_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void sim_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

uint16_t sim_get_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

const char *sim_ip_str(uint32_t addr, char *buf)
{
    snprintf(buf, 16, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 0xff, (addr >> 8) & 0xff,
             addr & 0xff);
    return buf;
}

const char *sim_dhcp_strerror(int err)
{
    switch (err) {
    case SIM_DHCP_OK:
        return "ok";
    case SIM_DHCP_ESHORT:
        return "shorter than the BOOTP header";
    case SIM_DHCP_EHLEN:
        return "hardware address length larger than 16";
    case SIM_DHCP_EOPTLEN:
        return "option runs past the end of the packet";
    case SIM_DHCP_EMSGTYPE:
        return "malformed DHCP message type option";
    case SIM_DHCP_EOVERLOAD:
        return "malformed option overload";
    case SIM_DHCP_ENOEND:
        return "options not terminated";
    default:
        return "unknown error";
    }
}

const char *sim_dhcp_msgtype_name(int t)
{
    static const char *const names[] = {"BOOTP", "DISCOVER", "OFFER",   "REQUEST", "DECLINE",
                                        "ACK",   "NAK",      "RELEASE", "INFORM"};
    if (t >= 0 && t <= 8)
        return names[t];
    return "UNKNOWN";
}

/*
 * Walks one options area. The first occurrence of a code wins; RFC 3396
 * concatenation of repeated options is not needed by anything here.
 * Returns 1 when END was seen, 0 when the area ended without it, or a
 * negative error.
 */
static int parse_area(sim_dhcp_msg_t *m, const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t code = p[i];
        if (code == 0) {
            i++;
            continue;
        }
        if (code == 255)
            return 1;
        if (i + 1 >= len)
            return SIM_DHCP_EOPTLEN;
        uint8_t olen = p[i + 1];
        if (i + 2 + olen > len)
            return SIM_DHCP_EOPTLEN;
        if (m->m_opt[code] == NULL) {
            m->m_opt[code] = p + i + 2;
            m->m_optlen[code] = olen;
        }
        i += 2u + olen;
    }
    return 0;
}

int sim_dhcp_parse(sim_dhcp_msg_t *m, const uint8_t *pkt, size_t len)
{
    memset(m, 0, sizeof(*m));
    m->m_pkt = pkt;
    m->m_len = len;
    if (pkt == NULL || len < SIM_DHCP_HDR_LEN)
        return SIM_DHCP_ESHORT;
    m->m_op = pkt[0];
    m->m_htype = pkt[1];
    m->m_hlen = pkt[2];
    m->m_hops = pkt[3];
    m->m_xid = sim_get_be32(pkt + 4);
    m->m_secs = sim_get_be16(pkt + 8);
    m->m_flags = sim_get_be16(pkt + 10);
    m->m_ciaddr = sim_get_be32(pkt + 12);
    m->m_yiaddr = sim_get_be32(pkt + 16);
    m->m_siaddr = sim_get_be32(pkt + 20);
    m->m_giaddr = sim_get_be32(pkt + 24);
    m->m_chaddr = pkt + 28;
    if (m->m_hlen > 16)
        return SIM_DHCP_EHLEN;
    if (len < SIM_DHCP_OPT_OFF || sim_get_be32(pkt + SIM_DHCP_HDR_LEN) != SIM_DHCP_COOKIE)
        return SIM_DHCP_OK; /* plain BOOTP: the vend field is opaque */
    m->m_has_cookie = 1;

    int rc = parse_area(m, pkt + SIM_DHCP_OPT_OFF, len - SIM_DHCP_OPT_OFF);
    if (rc < 0)
        return rc;
    if (rc == 0 && len - SIM_DHCP_OPT_OFF > 0 && m->m_opt[53] != NULL) {
        /*
         * A DHCP message must end its options with END (RFC 2131 4.1);
         * a BOOTP vend field that merely starts with the cookie need not.
         */
        return SIM_DHCP_ENOEND;
    }
    if (m->m_opt[52] != NULL) {
        if (m->m_optlen[52] != 1 || m->m_opt[52][0] < 1 || m->m_opt[52][0] > 3)
            return SIM_DHCP_EOVERLOAD;
        m->m_overload = m->m_opt[52][0];
        /* RFC 2131: the file field first, then sname. */
        if (m->m_overload & 1) {
            rc = parse_area(m, pkt + SIM_DHCP_FILE_OFF, SIM_DHCP_FILE_LEN);
            if (rc < 0)
                return rc;
        }
        if (m->m_overload & 2) {
            rc = parse_area(m, pkt + SIM_DHCP_SNAME_OFF, SIM_DHCP_SNAME_LEN);
            if (rc < 0)
                return rc;
        }
    }
    if (m->m_opt[53] != NULL) {
        if (m->m_optlen[53] != 1)
            return SIM_DHCP_EMSGTYPE;
        m->m_msgtype = m->m_opt[53][0];
    }
    return SIM_DHCP_OK;
}

uint32_t sim_dhcp_opt_addr(const sim_dhcp_msg_t *m, uint8_t code)
{
    if (m->m_opt[code] == NULL || m->m_optlen[code] < 4)
        return 0;
    return sim_get_be32(m->m_opt[code]);
}

size_t sim_dhcp_client_key(const sim_dhcp_msg_t *m, uint8_t *key, size_t cap)
{
    size_t n;
    if (m->m_opt[61] != NULL && m->m_optlen[61] > 0) {
        n = m->m_optlen[61] < cap ? m->m_optlen[61] : cap;
        memcpy(key, m->m_opt[61], n);
        return n;
    }
    if (cap < 1)
        return 0;
    key[0] = m->m_htype;
    n = m->m_hlen < cap - 1 ? m->m_hlen : cap - 1;
    memcpy(key + 1, m->m_chaddr, n);
    return n + 1;
}

/* The packet is the server's; the struct's fields are not const. */
static void *unconst(const void *p)
{
    return (void *)(uintptr_t)p;
}

/*
 * DSDomainName: callout-api.md maps it to "Microsoft sub-options of 43"
 * without naming one. The emulator takes the client's option 43 sub-option
 * 0x5E, and sets DSDomainNameRequested when the parameter request list asks
 * for option 43. This is the emulator's choice, written down so tests can
 * rely on it, not a claim about the real server.
 */
#define SIM_MS_DSDOMAIN_SUBOPT 0x5E

static void ds_domain(const sim_dhcp_msg_t *m, DHCP_SERVER_OPTIONS *so)
{
    const uint8_t *prl = m->m_opt[55];
    for (unsigned i = 0; prl != NULL && i < m->m_optlen[55]; i++)
        if (prl[i] == 43)
            so->DSDomainNameRequested = TRUE;
    const uint8_t *v = m->m_opt[43];
    size_t len = v != NULL ? m->m_optlen[43] : 0;
    size_t i = 0;
    while (i + 2 <= len) {
        uint8_t code = v[i], sl = v[i + 1];
        if (i + 2 + sl > len)
            break;
        if (code == SIM_MS_DSDOMAIN_SUBOPT) {
            so->DSDomainName = unconst(v + i + 2);
            so->DSDomainNameLen = sl;
            return;
        }
        i += 2u + sl;
    }
}

void sim_dhcp_server_options(const sim_dhcp_msg_t *m, DHCP_SERVER_OPTIONS *so)
{
    memset(so, 0, sizeof(*so));
#define OPT_PTR(code) (m->m_opt[code] != NULL ? unconst(m->m_opt[code]) : NULL)
#define OPT_PTR4(code)                                                                             \
    (m->m_opt[code] != NULL && m->m_optlen[code] >= 4 ? unconst(m->m_opt[code]) : NULL)
    so->MessageType = OPT_PTR(53);
    so->SubnetMask = OPT_PTR4(1);
    so->RouterAddress = OPT_PTR4(3);
    so->RequestedAddress = OPT_PTR4(50);
    so->RequestLeaseTime = OPT_PTR4(51);
    so->OverlayFields = OPT_PTR(52);
    so->Server = OPT_PTR4(54);
    so->ParameterRequestList = OPT_PTR(55);
    so->ParameterRequestListLength = so->ParameterRequestList ? m->m_optlen[55] : 0;
    so->MachineName = OPT_PTR(12);
    so->MachineNameLength = so->MachineName ? m->m_optlen[12] : 0;
    if (m->m_opt[61] != NULL && m->m_optlen[61] >= 1) {
        /* Option 61, not chaddr: the first byte is the type. */
        so->ClientHardwareAddressType = m->m_opt[61][0];
        so->ClientHardwareAddressLength = (BYTE)(m->m_optlen[61] - 1);
        so->ClientHardwareAddress = unconst(m->m_opt[61] + 1);
    }
    so->ClassIdentifier = OPT_PTR(77);
    so->ClassIdentifierLength = so->ClassIdentifier ? m->m_optlen[77] : 0;
    so->VendorClass = OPT_PTR(60);
    so->VendorClassLength = so->VendorClass ? m->m_optlen[60] : 0;
    if (m->m_opt[81] != NULL && m->m_optlen[81] >= 3) {
        /* FQDN (RFC 4702): flags, two obsolete RCODE bytes, then the name. */
        so->DNSFlags = m->m_opt[81][0];
        so->DNSNameLength = m->m_optlen[81] - 3u;
        so->DNSName = so->DNSNameLength ? unconst(m->m_opt[81] + 3) : NULL;
    } else {
        so->DNSFlags = 3;
    }
    ds_domain(m, so);
    so->ScopeId = NULL; /* unused for DHCP */
#undef OPT_PTR
#undef OPT_PTR4
}

void sim_dhcp_buf_init(sim_dhcp_buf_t *b, uint8_t *data, size_t cap)
{
    b->b_data = data;
    b->b_cap = cap;
    b->b_len = 0;
    b->b_overflow = 0;
}

void sim_dhcp_put_header(sim_dhcp_buf_t *b, uint8_t op, const uint8_t *chaddr, uint8_t hlen,
                         uint32_t xid, uint16_t flags, uint32_t ciaddr, uint32_t yiaddr,
                         uint32_t siaddr, uint32_t giaddr)
{
    if (b->b_cap < SIM_DHCP_OPT_OFF) {
        b->b_overflow = 1;
        return;
    }
    uint8_t *p = b->b_data;
    memset(p, 0, SIM_DHCP_OPT_OFF);
    p[0] = op;
    p[1] = 1; /* Ethernet */
    p[2] = hlen > 16 ? 16 : hlen;
    sim_put_be32(p + 4, xid);
    sim_put_be16(p + 10, flags);
    sim_put_be32(p + 12, ciaddr);
    sim_put_be32(p + 16, yiaddr);
    sim_put_be32(p + 20, siaddr);
    sim_put_be32(p + 24, giaddr);
    if (chaddr != NULL)
        memcpy(p + 28, chaddr, p[2]);
    sim_put_be32(p + SIM_DHCP_HDR_LEN, SIM_DHCP_COOKIE);
    b->b_len = SIM_DHCP_OPT_OFF;
}

void sim_dhcp_put_opt(sim_dhcp_buf_t *b, uint8_t code, const void *val, size_t len)
{
    if (len > 255 || b->b_len + 2 + len + 1 > b->b_cap) { /* keep room for END */
        b->b_overflow = 1;
        return;
    }
    b->b_data[b->b_len] = code;
    b->b_data[b->b_len + 1] = (uint8_t)len;
    if (len > 0)
        memcpy(b->b_data + b->b_len + 2, val, len);
    b->b_len += 2 + len;
}

void sim_dhcp_put_opt_u8(sim_dhcp_buf_t *b, uint8_t code, uint8_t v)
{
    sim_dhcp_put_opt(b, code, &v, 1);
}

void sim_dhcp_put_opt_u32(sim_dhcp_buf_t *b, uint8_t code, uint32_t v)
{
    uint8_t be[4];
    sim_put_be32(be, v);
    sim_dhcp_put_opt(b, code, be, 4);
}

size_t sim_dhcp_finish(sim_dhcp_buf_t *b, size_t min_len)
{
    if (b->b_len < b->b_cap)
        b->b_data[b->b_len++] = 255;
    else
        b->b_overflow = 1;
    if (min_len > b->b_cap)
        min_len = b->b_cap;
    if (b->b_len < min_len) {
        memset(b->b_data + b->b_len, 0, min_len - b->b_len);
        b->b_len = min_len;
    }
    return b->b_len;
}

int sim_madcap_probe(const uint8_t *pkt, size_t len, uint8_t *msgtype, uint32_t *xid)
{
    if (pkt == NULL || len < 8 || pkt[0] != 1 || pkt[1] < 1 || pkt[1] > 12 || pkt[2] != 0 ||
        pkt[3] != 1)
        return 0;
    if (msgtype != NULL)
        *msgtype = pkt[1];
    if (xid != NULL)
        *xid = sim_get_be32(pkt + 4);
    return 1;
}
