/*
 * samples.c — see samples.h. Every field of every message is set, so a
 * round trip exercises the whole schema.
 */
#include "samples.h"

#include <string.h>

#include "dcb_callout.h"

static uint8_t packet[DCB_SAMPLE_PACKET_LEN];

const uint8_t *dcb_sample_packet(void)
{
    static const uint8_t opts[] = {
        99, 130, 83, 99,                                 /* magic cookie */
        53, 1, 1,                                        /* DHCPDISCOVER */
        61, 7, 1, 0x00, 0x15, 0x5d, 0x01, 0x02, 0x03,    /* client id */
        12, 6, 'h', 'o', 's', 't', '-', '1',             /* host name */
        60, 8, 'M', 'S', 'F', 'T', ' ', '5', '.', '0',   /* vendor class */
        55, 4, 1, 3, 6, 15,                              /* parameter list */
        82, 6, 1, 4, 0, 0, 0, 1,                         /* relay agent */
        255};

    if (packet[0] == 0) {
        packet[0] = 1; /* BOOTREQUEST */
        packet[1] = 1; /* Ethernet */
        packet[2] = 6;
        packet[4] = 0x39; /* xid */
        packet[5] = 0x03;
        packet[6] = 0xf3;
        packet[7] = 0x26;
        memcpy(packet + 28, "\x00\x15\x5d\x01\x02\x03", 6); /* chaddr */
        memcpy(packet + 236, opts, sizeof(opts));
    }
    return packet;
}

/* Storage for every message; each build overwrites its own slots. */
static Dcb__EventHeader hdr;
static union {
    Dcb__Hello hello;
    Dcb__Welcome welcome;
    Dcb__Subscription sub;
    Dcb__ShimStats shim_stats;
    Dcb__ControlEvent control;
    Dcb__NewPktEvent newpkt;
    Dcb__PktDropEvent drop;
    Dcb__PktSendEvent send;
    Dcb__AddressDelEvent del;
    Dcb__AddressOfferEvent offer;
    Dcb__HandleOptionsEvent hopt;
    Dcb__DeleteClientEvent delc;
    Dcb__NewPktDecision npd;
    Dcb__PktSendDecision psd;
    Dcb__HostLoad load;
    Dcb__HostLoaded loaded;
    Dcb__HostResult result;
    Dcb__Ping ping;
    Dcb__ControlRequest creq;
    Dcb__ControlResponse cresp;
} m;
static Dcb__ServerOptions sopts;
static Dcb__Histogram hist;
static uint32_t hist_bucket[3] = {1, 700, 2000};
static uint64_t hist_count[3] = {5, 1000, 2};
static Dcb__ShimHookStats shs, *shs_list[1] = {&shs};
static Dcb__PluginStatus ps, *ps_list[1] = {&ps};
static Dcb__StatusReport status_report;
static Dcb__HookPluginStats hps, *hps_list[1] = {&hps};
static Dcb__StatsReport stats_report;
static char *chain[2] = {"C:\\Vendor\\macfilter.dll", "C:\\Vendor\\audit.dll"};
static uint8_t extra[4] = {192, 168, 1, 1};

static void fill_hdr(uint64_t request_id)
{
    dcb__event_header__init(&hdr);
    hdr.packet_id = 0x1122334455667788ull;
    hdr.seq = 0;
    hdr.deadline_us = 100000;
    hdr.has_request_id = 1;
    hdr.request_id = request_id;
    hdr.has_plugin_ctx = 1;
    hdr.plugin_ctx = 0xdeadbeefull;
    hdr.has_reserved = 1;
    hdr.reserved = 0x7ff612340000ull;
}

static ProtobufCBinaryData pkt(void)
{
    ProtobufCBinaryData b = {DCB_SAMPLE_PACKET_LEN, (uint8_t *)dcb_sample_packet()};
    return b;
}

static void fill_hist(void)
{
    dcb__histogram__init(&hist);
    hist.n_bucket = 3;
    hist.bucket = hist_bucket;
    hist.n_count = 3;
    hist.count = hist_count;
    hist.has_max = 1;
    hist.max = 123456;
    hist.has_sum = 1;
    hist.sum = 9999999;
}

static void fill_shim_hook_stats(void)
{
    dcb__shim_hook_stats__init(&shs);
    shs.hook = DCB_HOOK_NEWPKT;
    shs.has_calls = shs.has_unsubscribed = shs.has_defaults_timeout = 1;
    shs.has_defaults_no_broker = shs.has_defaults_breaker = shs.has_defaults_bad_reply = 1;
    shs.has_queue_full = 1;
    shs.calls = 1000000;
    shs.unsubscribed = 3;
    shs.defaults_timeout = 4;
    shs.defaults_no_broker = 5;
    shs.defaults_breaker = 6;
    shs.defaults_bad_reply = 7;
    shs.queue_full = 8;
    fill_hist();
    shs.waited = &hist;
}

static void fill_options(void)
{
    dcb__server_options__init(&sopts);
    /* Offsets + 1 into the sample packet (options start at 240). */
    sopts.has_message_type = 1;
    sopts.message_type = 242 + 1;
    sopts.has_parameter_request_list = sopts.has_parameter_request_list_length = 1;
    sopts.parameter_request_list = 273 + 1;
    sopts.parameter_request_list_length = 4;
    sopts.has_machine_name = sopts.has_machine_name_length = 1;
    sopts.machine_name = 254 + 1;
    sopts.machine_name_length = 6;
    sopts.has_client_hardware_address_type = sopts.has_client_hardware_address_length = 1;
    sopts.has_client_hardware_address = 1;
    sopts.client_hardware_address_type = 1;
    sopts.client_hardware_address_length = 6;
    sopts.client_hardware_address = 246 + 1;
    sopts.has_vendor_class = sopts.has_vendor_class_length = 1;
    sopts.vendor_class = 262 + 1;
    sopts.vendor_class_length = 8;
    sopts.has_dns_flags = 1;
    sopts.dns_flags = 3;
    sopts.has_dns_name_length = 1;
    sopts.dns_name_length = 0;
    sopts.has_ds_domain_name_requested = 1;
    sopts.ds_domain_name_requested = 0;
    /* One value outside the packet, carried in extra. */
    sopts.has_router_address = 1;
    sopts.router_address = DCB_SAMPLE_PACKET_LEN + 0 + 1;
    sopts.has_extra = 1;
    sopts.extra.len = sizeof(extra);
    sopts.extra.data = extra;
    sopts.has_subnet_mask = sopts.has_requested_address = sopts.has_request_lease_time = 1;
    sopts.has_overlay_fields = sopts.has_server = sopts.has_scope_id = 1;
    sopts.has_class_identifier = sopts.has_class_identifier_length = 1;
    sopts.has_dns_name = sopts.has_ds_domain_name = sopts.has_ds_domain_name_len = 1;
    /* Present but NULL (0). */
}

bool dcb_sample_build(uint8_t type, dcb_sample_t *out)
{
    memset(&m, 0, sizeof(m));
    out->msg = &m.hello.base;
    switch (type) {
    case DCB__FRAME_TYPE__FT_HELLO:
        dcb__hello__init(&m.hello);
        m.hello.protocol_version = DCB_PROTO_VERSION;
        m.hello.role = DCB__CONN_ROLE__ROLE_NOTIFY;
        m.hello.has_capabilities = m.hello.has_pid = m.hello.has_instance_id = 1;
        m.hello.capabilities = DCB__CAPABILITY__CAP_SHIM_STATS;
        m.hello.pid = 4242;
        m.hello.shim_version = "0.1.0";
        m.hello.n_chain_dlls = 2;
        m.hello.chain_dlls = chain;
        m.hello.instance_id = 0xfeedfacecafebeefull;
        return true;
    case DCB__FRAME_TYPE__FT_WELCOME:
        dcb__welcome__init(&m.welcome);
        m.welcome.protocol_version = DCB_PROTO_VERSION;
        m.welcome.subscribed_hooks = 0xff;
        m.welcome.has_capabilities = m.welcome.has_max_packet_size = 1;
        m.welcome.capabilities = 1;
        m.welcome.broker_version = "0.1.0";
        m.welcome.max_packet_size = DCB_MAX_PACKET_DEFAULT;
        return true;
    case DCB__FRAME_TYPE__FT_SUBSCRIPTION:
        dcb__subscription__init(&m.sub);
        m.sub.subscribed_hooks = DCB_HOOK_BIT(DCB_HOOK_NEWPKT) | DCB_HOOK_BIT(DCB_HOOK_PKTSEND);
        return true;
    case DCB__FRAME_TYPE__FT_SHIM_STATS:
        dcb__shim_stats__init(&m.shim_stats);
        fill_shim_hook_stats();
        m.shim_stats.n_hooks = 1;
        m.shim_stats.hooks = shs_list;
        m.shim_stats.has_reconnects = m.shim_stats.has_packets_live = 1;
        m.shim_stats.reconnects = 2;
        m.shim_stats.packets_live = 17;
        return true;
    case DCB__FRAME_TYPE__FT_EV_CONTROL:
        dcb__control_event__init(&m.control);
        fill_hdr(0);
        hdr.packet_id = 0;
        m.control.hdr = &hdr;
        m.control.control_code = DHCP_CONTROL_START;
        return true;
    case DCB__FRAME_TYPE__FT_EV_NEWPKT:
        dcb__new_pkt_event__init(&m.newpkt);
        fill_hdr(42);
        m.newpkt.hdr = &hdr;
        m.newpkt.packet = pkt();
        m.newpkt.ip_address = 0x0100000a;
        return true;
    case DCB__FRAME_TYPE__FT_EV_PKTDROP:
        dcb__pkt_drop_event__init(&m.drop);
        fill_hdr(0);
        hdr.seq = 3;
        m.drop.hdr = &hdr;
        m.drop.packet = pkt();
        m.drop.control_code = DHCP_DROP_PROCESSED;
        m.drop.ip_address = 0x0100000a;
        return true;
    case DCB__FRAME_TYPE__FT_EV_PKTSEND:
        dcb__pkt_send_event__init(&m.send);
        fill_hdr(43);
        hdr.seq = 2;
        m.send.hdr = &hdr;
        m.send.packet = pkt();
        m.send.control_code = DHCP_SEND_PACKET;
        m.send.ip_address = 0x0100000a;
        return true;
    case DCB__FRAME_TYPE__FT_EV_ADDRESSDEL:
        dcb__address_del_event__init(&m.del);
        fill_hdr(0);
        m.del.hdr = &hdr;
        m.del.packet = pkt();
        m.del.control_code = DHCP_PROB_DECLINE;
        m.del.ip_address = 0x0a01a8c0;
        m.del.alt_address = 0x0b01a8c0;
        return true;
    case DCB__FRAME_TYPE__FT_EV_ADDRESSOFFER:
        dcb__address_offer_event__init(&m.offer);
        fill_hdr(0);
        m.offer.hdr = &hdr;
        m.offer.packet = pkt();
        m.offer.control_code = DHCP_GIVE_ADDRESS_NEW;
        m.offer.ip_address = 0xc0a8010a;
        m.offer.alt_address = 0xc0a80101;
        m.offer.addr_type = DHCP_CLIENT_DHCP;
        m.offer.lease_time = 86400;
        return true;
    case DCB__FRAME_TYPE__FT_EV_HANDLEOPTIONS:
        dcb__handle_options_event__init(&m.hopt);
        fill_hdr(0);
        m.hopt.hdr = &hdr;
        m.hopt.packet = pkt();
        fill_options();
        m.hopt.options = &sopts;
        return true;
    case DCB__FRAME_TYPE__FT_EV_DELETECLIENT:
        dcb__delete_client_event__init(&m.delc);
        fill_hdr(0);
        hdr.packet_id = 0;
        m.delc.hdr = &hdr;
        m.delc.ip_address = 0xc0a8010a;
        m.delc.has_hw_address = 1;
        m.delc.hw_address.len = 6;
        m.delc.hw_address.data = (uint8_t *)dcb_sample_packet() + 28;
        m.delc.client_type = 1;
        return true;
    case DCB__FRAME_TYPE__FT_NEWPKT_DECISION:
        dcb__new_pkt_decision__init(&m.npd);
        m.npd.request_id = 42;
        m.npd.process_it = 1;
        m.npd.has_packet = m.npd.has_default_reason = 1;
        m.npd.packet = pkt();
        m.npd.default_reason = DCB__DEFAULT_REASON__DR_TIMEOUT;
        return true;
    case DCB__FRAME_TYPE__FT_PKTSEND_DECISION:
        dcb__pkt_send_decision__init(&m.psd);
        m.psd.request_id = 43;
        m.psd.has_packet = m.psd.has_default_reason = 1;
        m.psd.packet = pkt();
        m.psd.default_reason = DCB__DEFAULT_REASON__DR_CRASH;
        return true;
    case DCB__FRAME_TYPE__FT_HOST_LOAD:
        dcb__host_load__init(&m.load);
        m.load.plugin = "macfilter";
        m.load.dll_path = chain[0];
        m.load.generation = 3;
        m.load.has_threads = m.load.has_max_packet_size = m.load.has_send_start = 1;
        m.load.threads = 4;
        m.load.max_packet_size = DCB_MAX_PACKET_DEFAULT;
        m.load.send_start = 1;
        return true;
    case DCB__FRAME_TYPE__FT_HOST_LOADED:
        dcb__host_loaded__init(&m.loaded);
        m.loaded.ok = 1;
        m.loaded.hooks = 0x0b;
        m.loaded.error = "";
        m.loaded.has_entry_status = m.loaded.has_pid = 1;
        m.loaded.entry_status = 0;
        m.loaded.pid = 777;
        return true;
    case DCB__FRAME_TYPE__FT_HOST_RESULT:
        dcb__host_result__init(&m.result);
        m.result.request_id = 9;
        m.result.hook = DCB_HOOK_NEWPKT;
        m.result.has_process_it = m.result.has_packet = 1;
        m.result.has_plugin_ctx = m.result.has_elapsed_us = 1;
        m.result.process_it = 0;
        m.result.packet = pkt();
        m.result.plugin_ctx = 0x1234;
        m.result.elapsed_us = 17;
        return true;
    case DCB__FRAME_TYPE__FT_PING:
    case DCB__FRAME_TYPE__FT_PONG:
        dcb__ping__init(&m.ping);
        m.ping.nonce = 0x0123456789abcdefull;
        return true;
    case DCB__FRAME_TYPE__FT_CTL_REQUEST:
        dcb__control_request__init(&m.creq);
        m.creq.command = DCB__CONTROL_COMMAND__CC_SET_TIMEOUT;
        m.creq.plugin = "macfilter";
        m.creq.has_timeout_ms = m.creq.has_hook = 1;
        m.creq.timeout_ms = 25;
        m.creq.hook = DCB_HOOK_PKTSEND;
        return true;
    case DCB__FRAME_TYPE__FT_CTL_RESPONSE:
        dcb__control_response__init(&m.cresp);
        m.cresp.status = DCB__CONTROL_STATUS__CS_OK;
        m.cresp.error = "";
        dcb__plugin_status__init(&ps);
        ps.name = "macfilter";
        ps.state = DCB__PLUGIN_STATE__PS_RUNNING;
        ps.has_pid = ps.has_uptime_ms = ps.has_restarts = 1;
        ps.has_last_failure_age_ms = ps.has_hooks = ps.has_generation = 1;
        ps.pid = 778;
        ps.uptime_ms = 5000;
        ps.restarts = 1;
        ps.last_failure = "crash: exit signal 11";
        ps.last_failure_age_ms = 1200;
        ps.dll_path = chain[0];
        ps.hooks = 0x0b;
        ps.generation = 2;
        dcb__status_report__init(&status_report);
        status_report.broker_pid = 100;
        status_report.uptime_ms = 60000;
        status_report.has_shims_connected = 1;
        status_report.shims_connected = 1;
        status_report.n_plugins = 1;
        status_report.plugins = ps_list;
        status_report.broker_version = "0.1.0";
        m.cresp.status_report = &status_report;
        dcb__hook_plugin_stats__init(&hps);
        hps.hook = DCB_HOOK_NEWPKT;
        hps.plugin = "macfilter";
        hps.has_calls = hps.has_pass = hps.has_drop = hps.has_modified = 1;
        hps.has_defaults_timeout = hps.has_defaults_crash = hps.has_defaults_breaker = 1;
        hps.has_defaults_queue_full = hps.has_defaults_bad_reply = 1;
        hps.has_defaults_disabled = 1;
        hps.calls = 100;
        hps.pass = 90;
        hps.drop = 5;
        hps.modified = 5;
        hps.defaults_timeout = 1;
        fill_hist();
        hps.latency = &hist;
        fill_shim_hook_stats();
        dcb__stats_report__init(&stats_report);
        stats_report.n_entries = 1;
        stats_report.entries = hps_list;
        stats_report.n_shim = 1;
        stats_report.shim = shs_list;
        stats_report.has_uptime_ms = 1;
        stats_report.uptime_ms = 60000;
        m.cresp.stats_report = &stats_report;
        return true;
    default:
        return false;
    }
}
