/*
 * dhcp.c — bounds-checked reading of the DHCP packets a callout sees.
 * Packets reach plugins before the server validated them (NewPkt sees
 * garbage, MADCAP, truncated frames): nothing here trusts a length byte.
 */
#include "dcb_plugin.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define COOKIE_OFF 236u
#define SNAME_OFF 44u
#define SNAME_LEN 64u
#define FILE_OFF 108u
#define FILE_LEN 128u

uint32_t dcb_dhcp_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int dcb_dhcp_has_options(const uint8_t *pkt, size_t len)
{
    return pkt != NULL && len >= DCB_DHCP_OPT_OFF && (pkt[0] == 1 || pkt[0] == 2) &&
           dcb_dhcp_get32(pkt + COOKIE_OFF) == 0x63825363u;
}

static const uint8_t *find_in(const uint8_t *p, size_t len, uint8_t code, uint8_t *olen)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (c == 0) {
            i++;
            continue;
        }
        if (c == 255 || i + 1 >= len)
            return NULL;
        uint8_t l = p[i + 1];
        if (i + 2 + l > len)
            return NULL;
        if (c == code) {
            *olen = l;
            return p + i + 2;
        }
        i += 2u + l;
    }
    return NULL;
}

const uint8_t *dcb_dhcp_find_option(const uint8_t *pkt, size_t len, uint8_t code, uint8_t *olen)
{
    if (!dcb_dhcp_has_options(pkt, len))
        return NULL;
    const uint8_t *v = find_in(pkt + DCB_DHCP_OPT_OFF, len - DCB_DHCP_OPT_OFF, code, olen);
    if (v != NULL || code == 52)
        return v;
    uint8_t ol = 0;
    const uint8_t *ov = find_in(pkt + DCB_DHCP_OPT_OFF, len - DCB_DHCP_OPT_OFF, 52, &ol);
    if (ov == NULL || ol != 1)
        return NULL;
    if ((ov[0] & 1) && (v = find_in(pkt + FILE_OFF, FILE_LEN, code, olen)) != NULL)
        return v;
    if ((ov[0] & 2) && (v = find_in(pkt + SNAME_OFF, SNAME_LEN, code, olen)) != NULL)
        return v;
    return NULL;
}

int dcb_dhcp_msgtype(const uint8_t *pkt, size_t len)
{
    uint8_t l = 0;
    const uint8_t *v = dcb_dhcp_find_option(pkt, len, 53, &l);
    return (v != NULL && l == 1) ? v[0] : 0;
}

const char *dcb_dhcp_msgtype_name(int t)
{
    static const char *const names[] = {"BOOTP", "DISCOVER", "OFFER",   "REQUEST", "DECLINE",
                                        "ACK",   "NAK",      "RELEASE", "INFORM"};
    return (t >= 0 && t <= 8) ? names[t] : "UNKNOWN";
}

size_t dcb_dhcp_chaddr(const uint8_t *pkt, size_t len, const uint8_t **chaddr)
{
    if (pkt == NULL || len < 28 + 16) {
        *chaddr = NULL;
        return 0;
    }
    *chaddr = pkt + 28;
    return pkt[2] > 16 ? 16 : pkt[2];
}

void dcb_format_hex(const uint8_t *b, size_t n, char sep, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t k = 0;
    if (cap == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        size_t need = (sep && i > 0) ? 3 : 2;
        if (k + need >= cap)
            break;
        if (sep && i > 0)
            out[k++] = sep;
        out[k++] = hex[b[i] >> 4];
        out[k++] = hex[b[i] & 15];
    }
    out[k] = '\0';
}

void dcb_format_ip_net(DWORD ip, char *out, size_t cap)
{
    uint8_t b[4];
    memcpy(b, &ip, 4); /* network order: the bytes are a.b.c.d in memory */
    snprintf(out, cap, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
}

void dcb_format_ip_host(DWORD ip, char *out, size_t cap)
{
    snprintf(out, cap, "%u.%u.%u.%u", (unsigned)(ip >> 24), (unsigned)(ip >> 16) & 255,
             (unsigned)(ip >> 8) & 255, (unsigned)ip & 255);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int dcb_parse_hwaddr(const char *s, uint8_t *out, size_t cap, int *prefix)
{
    char buf[128];
    size_t n = 0, len;
    *prefix = 0;
    while (*s == ' ' || *s == '\t')
        s++;
    len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        len--;
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (buf[len - 1] == '*') {
        *prefix = 1;
        buf[--len] = '\0';
        /* "00-11-22-*": the separator before the star is optional. */
        if (len > 0 && (buf[len - 1] == ':' || buf[len - 1] == '-' || buf[len - 1] == '.'))
            buf[--len] = '\0';
    }
    const char *p = buf;
    while (*p != '\0') {
        int hi = hexval((unsigned char)p[0]);
        int lo = hi >= 0 ? hexval((unsigned char)p[1]) : -1;
        if (hi < 0 || lo < 0 || n >= cap)
            return -1;
        out[n++] = (uint8_t)(hi << 4 | lo);
        p += 2;
        if (*p == ':' || *p == '-' || *p == '.') {
            p++;
            if (*p == '\0')
                return -1; /* a trailing separator */
        }
    }
    return n > 0 ? (int)n : -1;
}

int dcb_parse_hex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (;;) {
        while (*s == ' ' || *s == ':' || *s == '\t' || *s == '-')
            s++;
        if (*s == '\0')
            break;
        int hi = hexval((unsigned char)s[0]);
        int lo = hi >= 0 ? hexval((unsigned char)s[1]) : -1;
        if (hi < 0 || lo < 0 || n >= cap)
            return -1;
        out[n++] = (uint8_t)(hi << 4 | lo);
        s += 2;
    }
    return (int)n;
}
