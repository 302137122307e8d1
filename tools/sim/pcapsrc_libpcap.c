/*
 * pcapsrc_libpcap.c — replaying a classic pcap file of DHCP traffic
 * (Linux builds; libpcap from Debian's libpcap-dev).
 *
 * Every IPv4 UDP datagram to port 67 (DHCP server) or 2535 (MADCAP) is
 * handed to the server as if it had been received; everything else in the
 * capture (replies, ARP, ...) is skipped. Ethernet (with 802.1Q tags),
 * Linux cooked (SLL) and raw-IP captures are understood.
 */
#include "dcbsim.h"

#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pcap_source {
    sim_source_t ps_base;
    pcap_t *ps_pcap;
    int ps_linktype;
} pcap_source_t;

int sim_source_pcap_supported(void)
{
    return 1;
}

/* Returns the offset of the IPv4 header in a frame, or -1. */
static long ip_offset(int linktype, const uint8_t *p, size_t len)
{
    size_t off;
    uint16_t ethertype;
    switch (linktype) {
    case DLT_EN10MB:
        if (len < 14)
            return -1;
        off = 14;
        ethertype = sim_get_be16(p + 12);
        while ((ethertype == 0x8100 || ethertype == 0x88a8) && len >= off + 4) {
            ethertype = sim_get_be16(p + off + 2);
            off += 4;
        }
        return ethertype == 0x0800 ? (long)off : -1;
    case DLT_LINUX_SLL:
        if (len < 16)
            return -1;
        return sim_get_be16(p + 14) == 0x0800 ? 16 : -1;
    case DLT_RAW:
#ifdef DLT_IPV4
    case DLT_IPV4:
#endif
        return 0;
    default:
        return -1;
    }
}

static int pcap_next_pkt(sim_source_t *s, uint8_t *buf, size_t cap, size_t *len, int *kind)
{
    pcap_source_t *ps = (pcap_source_t *)s;
    struct pcap_pkthdr *hdr;
    const u_char *data;
    int rc;
    while ((rc = pcap_next_ex(ps->ps_pcap, &hdr, &data)) == 1) {
        size_t caplen = hdr->caplen;
        long ipo = ip_offset(ps->ps_linktype, data, caplen);
        if (ipo < 0 || caplen < (size_t)ipo + 20)
            continue;
        const uint8_t *ip = data + ipo;
        size_t iplen = caplen - (size_t)ipo;
        if ((ip[0] >> 4) != 4 || ip[9] != 17) /* IPv4, UDP */
            continue;
        size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
        if (ihl < 20 || iplen < ihl + 8)
            continue;
        if ((sim_get_be16(ip + 6) & 0x3fff) != 0) /* fragments: not reassembled */
            continue;
        const uint8_t *udp = ip + ihl;
        uint16_t dport = sim_get_be16(udp + 2);
        uint16_t ulen = sim_get_be16(udp + 4);
        if (dport != 67 && dport != 2535)
            continue;
        if (ulen < 8)
            continue;
        size_t plen = (size_t)ulen - 8;
        if (iplen < ihl + 8 + plen) {
            /* The capture cut the datagram short (snaplen): replay what is there. */
            plen = iplen - ihl - 8;
        }
        *len = plen;
        if (plen <= cap)
            memcpy(buf, udp + 8, plen);
        if (kind != NULL)
            *kind = -1;
        return SIM_SOURCE_PACKET;
    }
    if (rc == PCAP_ERROR) {
        fprintf(stderr, "dcb-sim: pcap: %s\n", pcap_geterr(ps->ps_pcap));
        return -1;
    }
    return SIM_SOURCE_END;
}

static void pcap_close_src(sim_source_t *s)
{
    pcap_source_t *ps = (pcap_source_t *)s;
    pcap_close(ps->ps_pcap);
    free(ps);
}

sim_source_t *sim_source_pcap(const char *path, char *err, size_t errlen)
{
    char perr[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_open_offline(path, perr);
    if (p == NULL) {
        snprintf(err, errlen, "cannot read pcap file %s: %s", path, perr);
        return NULL;
    }
    int lt = pcap_datalink(p);
    if (lt != DLT_EN10MB && lt != DLT_LINUX_SLL && lt != DLT_RAW
#ifdef DLT_IPV4
        && lt != DLT_IPV4
#endif
    ) {
        snprintf(err, errlen, "%s: link type %d is not supported (Ethernet, Linux SLL or raw IP)",
                 path, lt);
        pcap_close(p);
        return NULL;
    }
    pcap_source_t *ps = calloc(1, sizeof(*ps));
    if (ps == NULL) {
        pcap_close(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ps->ps_pcap = p;
    ps->ps_linktype = lt;
    ps->ps_base.src_next = pcap_next_pkt;
    ps->ps_base.src_close = pcap_close_src;
    ps->ps_base.src_name = "pcap";
    return &ps->ps_base;
}
