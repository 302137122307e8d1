/*
 * test_sim_input.c — input handling: the DLL list format, the DHCP codec
 * and the DHCP_SERVER_OPTIONS mapping, bad command lines and list files
 * (clear errors, exit status 2), and pcap replay including a datagram too
 * big for the server's receive buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcbsim.h"
#include "simtest.h"

/* ------------------------------------------------------------------ */
/* The list format, in process                                          */
/* ------------------------------------------------------------------ */

static int parse(sim_dlllist_t *l, const char *text, char *err, size_t errlen)
{
    sim_dlllist_init(l);
    return sim_dlllist_parse(l, text, strlen(text), "list.txt", "/base", err, errlen);
}

static void test_dlllist_format(void **state)
{
    (void)state;
    sim_dlllist_t l;
    char err[256] = "";
    assert_int_equal(parse(&l,
                           "# comment\r\n"
                           "\n"
                           "  rel/a.dll  \r\n"
                           "\"/opt/with space/b.dll\"\n"
                           "C:\\Program Files\\Vendor\\c.dll\n"
                           "\t# indented comment\n"
                           "\"#not-a-comment.dll\"",
                           err, sizeof(err)),
                     0);
    assert_int_equal(l.dl_count, 4);
    assert_string_equal(l.dl_items[0], "/base/rel/a.dll");
    assert_string_equal(l.dl_items[1], "/opt/with space/b.dll");
    assert_string_equal(l.dl_items[2], "C:\\Program Files\\Vendor\\c.dll");
    assert_string_equal(l.dl_items[3], "/base/#not-a-comment.dll");
    sim_dlllist_free(&l);

    assert_int_equal(parse(&l, "", err, sizeof(err)), 0);
    assert_int_equal(l.dl_count, 0);
    sim_dlllist_free(&l);
}

static void test_dlllist_errors(void **state)
{
    (void)state;
    sim_dlllist_t l;
    char err[256];
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"a.dll\n\"b.dll\n", "list.txt:2: unterminated quoted path"},
        {"a.dll\n\"b.dll\" c\n", "list.txt:2: text after the quoted path"},
        {"\"\"\n", "list.txt:1: empty quoted path"},
        {"a.dll\nb\x01.dll\n", "list.txt:2: control character 0x01"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        assert_int_not_equal(parse(&l, cases[i].text, err, sizeof(err)), 0);
        assert_non_null(strstr(err, cases[i].want));
        sim_dlllist_free(&l);
    }
    /* NUL bytes (a binary file) and over-long lines. */
    const char bin[] = "a.dll\nb\0c.dll\n";
    sim_dlllist_init(&l);
    assert_int_not_equal(sim_dlllist_parse(&l, bin, sizeof(bin) - 1, "x", NULL, err, sizeof(err)),
                         0);
    assert_non_null(strstr(err, "x:2: control character 0x00"));
    sim_dlllist_free(&l);
    char *longline = malloc(5000);
    memset(longline, 'a', 4999);
    longline[4999] = '\0';
    assert_int_not_equal(parse(&l, longline, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "list.txt:1: line longer than"));
    sim_dlllist_free(&l);
    free(longline);
}

/* ------------------------------------------------------------------ */
/* The DHCP codec and the server options mapping, in process            */
/* ------------------------------------------------------------------ */

static void test_dhcp_server_options(void **state)
{
    (void)state;
    uint8_t pkt[600];
    static const uint8_t mac[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
    static const uint8_t cid[7] = {1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
    static const uint8_t fqdn[] = {0x01, 0, 0, 'h', '.', 'e', 'x'};
    static const uint8_t prl[] = {1, 3, 6, 43};
    static const uint8_t v43[] = {0x01, 2, 'x', 'y', 0x5e, 4, 'c', 'o', 'r', 'p'};
    sim_dhcp_buf_t b;
    sim_dhcp_buf_init(&b, pkt, sizeof(pkt));
    sim_dhcp_put_header(&b, SIM_BOOTREQUEST, mac, 6, 0x1234, 0x8000, 0, 0, 0, 0);
    sim_dhcp_put_opt_u8(&b, 53, SIM_DHCPDISCOVER);
    sim_dhcp_put_opt(&b, 61, cid, sizeof(cid));
    sim_dhcp_put_opt(&b, 81, fqdn, sizeof(fqdn));
    sim_dhcp_put_opt(&b, 55, prl, sizeof(prl));
    sim_dhcp_put_opt(&b, 43, v43, sizeof(v43));
    sim_dhcp_put_opt(&b, 60, "MSFT 5.0", 8);
    sim_dhcp_put_opt_u32(&b, 50, 0x0a000105);
    sim_dhcp_put_opt_u8(&b, 52, 2); /* option 12 lives in sname */
    size_t len = sim_dhcp_finish(&b, 300);
    uint8_t *sname = pkt + SIM_DHCP_SNAME_OFF;
    sname[0] = 12;
    sname[1] = 4;
    memcpy(sname + 2, "host", 4);
    sname[6] = 255;

    sim_dhcp_msg_t m;
    assert_int_equal(sim_dhcp_parse(&m, pkt, len), SIM_DHCP_OK);
    assert_int_equal(m.m_msgtype, SIM_DHCPDISCOVER);
    assert_int_equal(m.m_xid, 0x1234);
    DHCP_SERVER_OPTIONS so;
    sim_dhcp_server_options(&m, &so);
    assert_ptr_equal(so.MessageType, pkt + 242);
    assert_int_equal(*so.MessageType, SIM_DHCPDISCOVER);
    assert_ptr_equal(so.MachineName, (CHAR *)sname + 2); /* from sname, by option 52 */
    assert_int_equal(so.MachineNameLength, 4);
    assert_int_equal(so.ClientHardwareAddressType, 1);
    assert_int_equal(so.ClientHardwareAddressLength, 6);
    assert_memory_equal(so.ClientHardwareAddress, mac, 6);
    assert_int_equal(so.DNSFlags, 1);
    assert_int_equal(so.DNSNameLength, 4);
    assert_memory_equal(so.DNSName, "h.ex", 4);
    assert_int_equal(so.ParameterRequestListLength, 4);
    assert_true(so.DSDomainNameRequested);
    assert_int_equal(so.DSDomainNameLen, 4);
    assert_memory_equal(so.DSDomainName, "corp", 4);
    assert_int_equal(so.VendorClassLength, 8);
    assert_non_null(so.RequestedAddress);
    assert_memory_equal(so.RequestedAddress, "\x0a\x00\x01\x05", 4); /* network order */
    assert_non_null(so.OverlayFields);
    assert_null(so.SubnetMask);
    assert_null(so.Server);
    assert_null(so.ClassIdentifier);
    assert_null(so.ScopeId);

    /* Without option 81, DNSFlags is 3; without 61, no hardware address. */
    sim_dhcp_buf_init(&b, pkt, sizeof(pkt));
    sim_dhcp_put_header(&b, SIM_BOOTREQUEST, mac, 6, 1, 0, 0, 0, 0, 0);
    sim_dhcp_put_opt_u8(&b, 53, SIM_DHCPREQUEST);
    len = sim_dhcp_finish(&b, 0);
    assert_int_equal(sim_dhcp_parse(&m, pkt, len), SIM_DHCP_OK);
    sim_dhcp_server_options(&m, &so);
    assert_int_equal(so.DNSFlags, 3);
    assert_null(so.DNSName);
    assert_null(so.ClientHardwareAddress);
    assert_false(so.DSDomainNameRequested);
}

static void test_dhcp_malformed(void **state)
{
    (void)state;
    uint8_t pkt[400];
    static const uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
    sim_dhcp_buf_t b;
    sim_dhcp_msg_t m;
    sim_dhcp_buf_init(&b, pkt, sizeof(pkt));
    sim_dhcp_put_header(&b, SIM_BOOTREQUEST, mac, 6, 7, 0, 0, 0, 0, 0);
    sim_dhcp_put_opt_u8(&b, 53, SIM_DHCPDISCOVER);
    sim_dhcp_put_opt(&b, 12, "name", 4);
    size_t len = sim_dhcp_finish(&b, 0);
    assert_int_equal(sim_dhcp_parse(&m, pkt, len), SIM_DHCP_OK);
    assert_int_equal(sim_dhcp_parse(&m, pkt, 100), SIM_DHCP_ESHORT);
    assert_int_equal(sim_dhcp_parse(&m, pkt, len - 3), SIM_DHCP_EOPTLEN); /* cut in option 12 */
    pkt[2] = 17;
    assert_int_equal(sim_dhcp_parse(&m, pkt, len), SIM_DHCP_EHLEN);
    pkt[2] = 6;
    pkt[SIM_DHCP_OPT_OFF + 1] = 2; /* option 53, two bytes */
    assert_int_not_equal(sim_dhcp_parse(&m, pkt, len), SIM_DHCP_OK);
    assert_int_equal(sim_dhcp_parse(&m, NULL, 0), SIM_DHCP_ESHORT);
    /* MADCAP is told apart from BOOTP. */
    static const uint8_t madcap[24] = {1, 8, 0, 1, 0, 0, 0, 9};
    uint8_t type;
    assert_true(sim_madcap_probe(madcap, sizeof(madcap), &type, NULL));
    assert_int_equal(type, 8);
    pkt[2] = 6;
    assert_false(sim_madcap_probe(pkt, len, NULL, NULL));
}

/* ------------------------------------------------------------------ */
/* dcb-sim's command line                                               */
/* ------------------------------------------------------------------ */

static void expect_usage_error(const char *const *args, const char *want)
{
    st_result_t r;
    assert_int_equal(st_run_sim(args, NULL, 30000, &r), 0);
    assert_int_equal(r.r_exit, 2);
    if (strstr(r.r_err, want) == NULL)
        fail_msg("expected '%s' in: %s", want, r.r_err);
    assert_null(strstr(r.r_out, "packets in"));
    st_result_free(&r);
}

static void test_cli_errors(void **state)
{
    (void)state;
    const char *dir = st_scratch("cli");
    char bad[1024], ctl[1024], missing[1024], rec[1024];
    snprintf(bad, sizeof(bad), "%s", st_path(dir, "bad-list.txt"));
    snprintf(ctl, sizeof(ctl), "%s", st_path(dir, "binary-list.txt"));
    snprintf(missing, sizeof(missing), "%s", st_path(dir, "no-such-list.txt"));
    snprintf(rec, sizeof(rec), "%s", st_path(dir, "no-such-dir/out.rec"));
    assert_int_equal(st_write_file(bad, "# list\n\"C:\\vendor\\x.dll\n", 25), 0);
    assert_int_equal(st_write_file(ctl,
                                   "\x7f"
                                   "ELF\x02\x01\x01\x00",
                                   8),
                     0);
    expect_usage_error(ST_ARGS("--dlls-file", bad), "bad-list.txt:2: unterminated quoted path");
    expect_usage_error(ST_ARGS("--dlls-file", ctl), "binary-list.txt:1: control character");
    expect_usage_error(ST_ARGS("--dlls-file", missing), "cannot open DLL list");
    expect_usage_error(ST_ARGS("--frobnicate"), "unknown option '--frobnicate'");
    expect_usage_error(ST_ARGS("--count", "many"), "'many' is not a number");
    expect_usage_error(ST_ARGS("--workers", "0"), "--workers must be 1..256");
    expect_usage_error(ST_ARGS("--dll"), "--dll needs a value");
    expect_usage_error(ST_ARGS("--count", "10", "--record", rec), "cannot write");
    expect_usage_error(ST_ARGS("--pcap", st_path(dir, "none.pcap")),
                       sim_source_pcap_supported() ? "cannot read pcap file" : "Linux");
}

/* ------------------------------------------------------------------ */
/* pcap replay                                                          */
/* ------------------------------------------------------------------ */

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Appends one Ethernet frame carrying UDP to dport (ethertype 0x0800), or ARP. */
static size_t add_frame(uint8_t *out, const uint8_t *payload, size_t plen, uint16_t dport, int arp)
{
    uint8_t *rec = out, *f = out + 16;
    size_t flen;
    memset(f, 0xff, 6);
    memcpy(f + 6, "\x02\x00\x00\x00\x00\x01", 6);
    if (arp) {
        sim_put_be16(f + 12, 0x0806);
        memset(f + 14, 0, 28);
        flen = 42;
    } else {
        sim_put_be16(f + 12, 0x0800);
        uint8_t *ip = f + 14;
        memset(ip, 0, 20);
        ip[0] = 0x45;
        sim_put_be16(ip + 2, (uint16_t)(20 + 8 + plen));
        ip[8] = 64;
        ip[9] = 17;
        sim_put_be32(ip + 16, 0xffffffffu);
        uint8_t *udp = ip + 20;
        sim_put_be16(udp, 68);
        sim_put_be16(udp + 2, dport);
        sim_put_be16(udp + 4, (uint16_t)(8 + plen));
        sim_put_be16(udp + 6, 0);
        memcpy(udp + 8, payload, plen);
        flen = 14 + 20 + 8 + plen;
    }
    put_le32(rec, 1700000000);
    put_le32(rec + 4, 0);
    put_le32(rec + 8, (uint32_t)flen);
    put_le32(rec + 12, (uint32_t)flen);
    return 16 + flen;
}

static void test_pcap_replay(void **state)
{
    (void)state;
    if (!sim_source_pcap_supported()) {
        /* Windows builds: --pcap is refused with a clear message (test_cli_errors). */
        skip();
    }
    uint8_t *file = calloc(1, 16384), dhcp[600], big[2500];
    size_t n = 0;
    put_le32(file, 0xa1b2c3d4);
    sim_put_be16(file + 4, 0);
    file[4] = 2; /* version 2.4, little-endian fields */
    file[6] = 4;
    put_le32(file + 16, 65535);
    put_le32(file + 20, 1); /* Ethernet */
    n = 24;
    static const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x01};
    sim_dhcp_buf_t b;
    sim_dhcp_buf_init(&b, dhcp, sizeof(dhcp));
    sim_dhcp_put_header(&b, SIM_BOOTREQUEST, mac, 6, 0x42, 0x8000, 0, 0, 0, 0);
    sim_dhcp_put_opt_u8(&b, 53, SIM_DHCPDISCOVER);
    size_t dlen = sim_dhcp_finish(&b, 300);
    memset(big, 0, sizeof(big));
    memcpy(big, dhcp, dlen);
    n += add_frame(file + n, dhcp, dlen, 67, 0);       /* 0: DISCOVER -> OFFER */
    n += add_frame(file + n, NULL, 0, 0, 1);           /* ARP: not for the server */
    n += add_frame(file + n, dhcp, dlen, 53, 0);       /* DNS port: not either */
    n += add_frame(file + n, big, sizeof(big), 67, 0); /* 1: too big for 2000 bytes */
    sim_dhcp_buf_init(&b, dhcp, sizeof(dhcp));
    sim_dhcp_put_header(&b, SIM_BOOTREQUEST, mac, 6, 0x43, 0, 0x0a000063, 0, 0, 0);
    sim_dhcp_put_opt_u8(&b, 53, SIM_DHCPINFORM);
    dlen = sim_dhcp_finish(&b, 0);
    n += add_frame(file + n, dhcp, dlen, 67, 0); /* 2: INFORM -> ACK */

    const char *dir = st_scratch("pcap");
    char pcap[1024], rec[1024];
    snprintf(pcap, sizeof(pcap), "%s", st_path(dir, "dhcp.pcap"));
    snprintf(rec, sizeof(rec), "%s", st_path(dir, "out.rec"));
    assert_int_equal(st_write_file(pcap, file, n), 0);
    free(file);
    st_result_t r;
    assert_int_equal(
        st_run_sim(ST_ARGS("--pcap", pcap, "--record", rec, "--json"), NULL, 30000, &r), 0);
    assert_int_equal(r.r_exit, 0);
    assert_non_null(strstr(r.r_err, "do not fit the server's 2000-byte receive buffer"));
    cJSON *j = st_json(&r);
    assert_non_null(j);
    assert_int_equal((int)st_jnum(j, "packets.received"), 3);
    assert_int_equal((int)st_jnum(j, "packets.in"), 2);
    assert_int_equal((int)st_jnum(j, "packets.oversized"), 1);
    assert_int_equal((int)st_jnum(j, "packets.replies"), 2);
    st_rec_t *recs;
    assert_int_equal(st_read_record(rec, &recs), 3);
    assert_string_equal(recs[0].rc_outcome, "reply");
    assert_int_equal(recs[0].rc_reply[242], SIM_DHCPOFFER);
    assert_string_equal(recs[1].rc_outcome, "oversized");
    assert_string_equal(recs[2].rc_outcome, "reply");
    assert_int_equal(recs[2].rc_reply[242], SIM_DHCPACK);
    st_record_free(recs, 3);
    cJSON_Delete(j);
    st_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dlllist_format),      cmocka_unit_test(test_dlllist_errors),
        cmocka_unit_test(test_dhcp_server_options), cmocka_unit_test(test_dhcp_malformed),
        cmocka_unit_test(test_cli_errors),          cmocka_unit_test(test_pcap_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
