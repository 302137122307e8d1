/*
 * dcbsim.h — dcbsimcore, the library behind dcb-sim: a DHCPv4 server
 * emulator that loads callout DLLs the way Microsoft DHCP Server does and
 * drives seeded traffic through them (see ../../../shared/callout-api.md).
 *
 * It is a library so that benchmarks and tests can reuse its parts: the
 * DHCP packet codec, the seeded traffic generator, the scope and lease
 * table, the loader, the threaded server engine, the outcome record and
 * the report. Each part lives in its own file, named after it.
 *
 * Byte order: addresses inside this library are host-order uint32_t unless
 * a name ends in _net. Hook arguments follow callout-api.md exactly.
 */
#ifndef DCBSIM_H
#define DCBSIM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dcb_callout.h"
#include "dcb_hist.h"

/* ------------------------------------------------------------------ */
/* dhcp_packet.c — parsing and building BOOTP/DHCPv4 messages          */
/* ------------------------------------------------------------------ */

/* The server's own packet buffers (receive and reply) are this big. */
#define SIM_SERVER_BUF 2000u
/* Replies shorter than this are padded with zeros before PktSend. */
#define SIM_MIN_REPLY 300u
/* The largest payload a UDP/IPv4 datagram can carry. */
#define SIM_MAX_UDP 65507u

#define SIM_DHCP_HDR_LEN 236u /* fixed BOOTP header, up to the vend field */
#define SIM_DHCP_OPT_OFF 240u /* after the magic cookie */
#define SIM_DHCP_SNAME_OFF 44u
#define SIM_DHCP_SNAME_LEN 64u
#define SIM_DHCP_FILE_OFF 108u
#define SIM_DHCP_FILE_LEN 128u
#define SIM_DHCP_COOKIE 0x63825363u

#define SIM_BOOTREQUEST 1
#define SIM_BOOTREPLY 2

enum sim_dhcp_msgtype {
    SIM_DHCPDISCOVER = 1,
    SIM_DHCPOFFER = 2,
    SIM_DHCPREQUEST = 3,
    SIM_DHCPDECLINE = 4,
    SIM_DHCPACK = 5,
    SIM_DHCPNAK = 6,
    SIM_DHCPRELEASE = 7,
    SIM_DHCPINFORM = 8
};

/* Parse results. Negative values are reasons a packet is malformed. */
enum sim_dhcp_err {
    SIM_DHCP_OK = 0,
    SIM_DHCP_ESHORT = -1,    /* shorter than the fixed header */
    SIM_DHCP_EHLEN = -2,     /* hlen larger than chaddr */
    SIM_DHCP_EOPTLEN = -3,   /* an option runs past the end of its area */
    SIM_DHCP_EMSGTYPE = -4,  /* option 53 with a bad length */
    SIM_DHCP_EOVERLOAD = -5, /* option 52 with a bad length or value */
    SIM_DHCP_ENOEND = -6     /* options area without an END option */
};

/*
 * A parsed message. Every pointer points into the packet that was parsed,
 * so it is valid as long as that buffer is. Options are located in the
 * options field and, when option 52 says so, in file and sname.
 */
typedef struct sim_dhcp_msg {
    const uint8_t *m_pkt;
    size_t m_len;
    uint8_t m_op, m_htype, m_hlen, m_hops;
    uint32_t m_xid;
    uint16_t m_secs, m_flags;
    uint32_t m_ciaddr, m_yiaddr, m_siaddr, m_giaddr; /* host order */
    const uint8_t *m_chaddr;                         /* 16 bytes */
    int m_has_cookie;
    uint8_t m_overload;
    uint8_t m_msgtype; /* 0: no option 53 (BOOTP) */
    const uint8_t *m_opt[256];
    uint8_t m_optlen[256];
} sim_dhcp_msg_t;

int sim_dhcp_parse(sim_dhcp_msg_t *m, const uint8_t *pkt, size_t len);
const char *sim_dhcp_strerror(int err);
const char *sim_dhcp_msgtype_name(int msgtype);
/* Reads a 4-byte option as a host-order address; 0 when absent or short. */
uint32_t sim_dhcp_opt_addr(const sim_dhcp_msg_t *m, uint8_t code);
/*
 * The client's identity as the server keys its lease: option 61 when
 * present, else htype followed by chaddr[0..hlen). Returns its length.
 */
size_t sim_dhcp_client_key(const sim_dhcp_msg_t *m, uint8_t *key, size_t cap);
/*
 * Fills DHCP_SERVER_OPTIONS the way the server does: pointers into the
 * packet at option values (see callout-api.md for the mapping).
 */
void sim_dhcp_server_options(const sim_dhcp_msg_t *m, DHCP_SERVER_OPTIONS *so);

/* A packet under construction in a caller-owned buffer. */
typedef struct sim_dhcp_buf {
    uint8_t *b_data;
    size_t b_cap;
    size_t b_len;
    int b_overflow; /* set when something did not fit */
} sim_dhcp_buf_t;

void sim_dhcp_buf_init(sim_dhcp_buf_t *b, uint8_t *data, size_t cap);
/* Writes the fixed header and the magic cookie; addresses in host order. */
void sim_dhcp_put_header(sim_dhcp_buf_t *b, uint8_t op, const uint8_t *chaddr, uint8_t hlen,
                         uint32_t xid, uint16_t flags, uint32_t ciaddr, uint32_t yiaddr,
                         uint32_t siaddr, uint32_t giaddr);
void sim_dhcp_put_opt(sim_dhcp_buf_t *b, uint8_t code, const void *val, size_t len);
void sim_dhcp_put_opt_u8(sim_dhcp_buf_t *b, uint8_t code, uint8_t v);
void sim_dhcp_put_opt_u32(sim_dhcp_buf_t *b, uint8_t code, uint32_t v); /* v host order */
/* Adds END and zero padding up to min_len; returns the final length. */
size_t sim_dhcp_finish(sim_dhcp_buf_t *b, size_t min_len);

void sim_put_be32(uint8_t *p, uint32_t v);
uint32_t sim_get_be32(const uint8_t *p);
void sim_put_be16(uint8_t *p, uint16_t v);
uint16_t sim_get_be16(const uint8_t *p);
/* "a.b.c.d" for a host-order address, into buf (at least 16 bytes). */
const char *sim_ip_str(uint32_t addr, char *buf);

/*
 * MADCAP (RFC 2730) messages also go through NewPkt/PktSend/PktDrop. One
 * starts with version 1, a message type in 1..12 and address family 1
 * (bytes 2-3 = 00 01, which a BOOTP message from a real link never has:
 * its hlen would be 0). Returns 1 for a MADCAP message.
 */
int sim_madcap_probe(const uint8_t *pkt, size_t len, uint8_t *msgtype, uint32_t *xid);

/* ------------------------------------------------------------------ */
/* scope.c — the subnets the emulated server serves                    */
/* ------------------------------------------------------------------ */

typedef struct sim_subnet {
    uint32_t s_net, s_mask;
    uint32_t s_router;
    uint32_t s_relay; /* giaddr of the relay agent; 0 for the direct subnet */
    uint32_t s_first, s_last;
    int s_full; /* no free address: DISCOVERs get DHCP_DROP_NOADDRESS */
} sim_subnet_t;

#define SIM_SCOPE_MAX_SUBNETS 4

typedef struct sim_scope {
    uint32_t sc_server;     /* the server's address (its socket) */
    uint32_t sc_lease_secs; /* lease time handed out */
    uint32_t sc_dns[2];
    const char *sc_domain;
    sim_subnet_t sc_subnets[SIM_SCOPE_MAX_SUBNETS];
    size_t sc_nsubnets;
} sim_scope_t;

/*
 * 10.0.0.0/16 direct (server 10.0.0.1), 10.1.0.0/16 and 10.2.0.0/16
 * behind relays 10.1.0.1 and 10.2.0.1, and 10.3.0.0/24 behind 10.3.0.1
 * with no free address.
 */
void sim_scope_default(sim_scope_t *sc);
/* The subnet for a request with this giaddr, or NULL if none is served. */
const sim_subnet_t *sim_scope_subnet(const sim_scope_t *sc, uint32_t giaddr);
/*
 * The address the server gives this client: a hash of its key into the
 * pool, skipping addresses that a ping finds in use. Deterministic, so the
 * traffic generator can predict it and the outcome of a run does not depend
 * on thread order. Returns 0 for a full subnet.
 */
uint32_t sim_scope_address(const sim_subnet_t *sub, const uint8_t *key, size_t keylen,
                           int *conflicts);
/* The address candidate for one attempt (0, 1, ...). */
uint32_t sim_scope_candidate(const sim_subnet_t *sub, const uint8_t *key, size_t keylen,
                             unsigned attempt);
/* Whether a ping to this address is answered (another host uses it). */
int sim_scope_in_use(uint32_t addr);

/* ------------------------------------------------------------------ */
/* lease.c — the lease database (callers hold the database lock)       */
/* ------------------------------------------------------------------ */

typedef struct sim_leases sim_leases_t;
typedef void (*sim_lease_expired_fn)(void *ctx, uint32_t addr, const uint8_t *hw, uint8_t hwlen,
                                     uint32_t client_type);

sim_leases_t *sim_leases_new(void);
void sim_leases_free(sim_leases_t *l);
int sim_leases_bind(sim_leases_t *l, const uint8_t *key, size_t keylen, uint32_t addr,
                    const uint8_t *hw, uint8_t hwlen, uint32_t client_type, uint64_t expiry_ns);
void sim_leases_remove(sim_leases_t *l, const uint8_t *key, size_t keylen);
/* Removes every lease that expired by now_ns, calling fn for each. */
size_t sim_leases_expire(sim_leases_t *l, uint64_t now_ns, sim_lease_expired_fn fn, void *ctx);
size_t sim_leases_count(const sim_leases_t *l);

/* ------------------------------------------------------------------ */
/* traffic.c — seeded, reproducible client traffic                     */
/* ------------------------------------------------------------------ */

typedef struct sim_traffic_cfg {
    uint64_t tc_seed;
    uint32_t tc_clients;
    const sim_scope_t *tc_scope;
    /* Shares in per-mille of all packets / clients. */
    unsigned tc_duplicate_pm;
    unsigned tc_malformed_pm;
    unsigned tc_madcap_pm;
    unsigned tc_bootp_clients_pm;
    unsigned tc_relayed_clients_pm;
} sim_traffic_cfg_t;

/* What the generator meant to send (the server does not look at this). */
typedef enum sim_pkt_kind {
    SIM_KIND_DISCOVER,
    SIM_KIND_SELECT, /* REQUEST after an OFFER */
    SIM_KIND_RENEW,  /* unicast REQUEST with ciaddr */
    SIM_KIND_REBIND, /* broadcast REQUEST with ciaddr */
    SIM_KIND_REBOOT, /* INIT-REBOOT REQUEST with option 50 */
    SIM_KIND_RELEASE,
    SIM_KIND_DECLINE,
    SIM_KIND_INFORM,
    SIM_KIND_BOOTP,
    SIM_KIND_DUPLICATE,
    SIM_KIND_MALFORMED,
    SIM_KIND_MADCAP,
    SIM_KIND_COUNT
} sim_pkt_kind_t;

const char *sim_pkt_kind_name(sim_pkt_kind_t k);
void sim_traffic_cfg_default(sim_traffic_cfg_t *cfg, const sim_scope_t *scope);

typedef struct sim_traffic sim_traffic_t;
sim_traffic_t *sim_traffic_new(const sim_traffic_cfg_t *cfg);
void sim_traffic_free(sim_traffic_t *t);
/* Writes the next packet into buf; returns its length (<= cap). */
size_t sim_traffic_next(sim_traffic_t *t, uint8_t *buf, size_t cap, sim_pkt_kind_t *kind);

/* ------------------------------------------------------------------ */
/* source.c / pcap_*.c — where received packets come from              */
/* ------------------------------------------------------------------ */

enum { SIM_SOURCE_END = 0, SIM_SOURCE_PACKET = 1 };

typedef struct sim_source sim_source_t;
struct sim_source {
    /*
     * Produces the next received datagram into buf (cap bytes). Returns
     * SIM_SOURCE_PACKET with *len set (a *len larger than cap means the
     * datagram did not fit and buf holds nothing), SIM_SOURCE_END, or a
     * negative error.
     */
    int (*src_next)(sim_source_t *s, uint8_t *buf, size_t cap, size_t *len, int *kind);
    void (*src_close)(sim_source_t *s);
    const char *src_name;
};

sim_source_t *sim_source_traffic(const sim_traffic_cfg_t *cfg);
/* A classic pcap file (Linux builds with libpcap); NULL with err set. */
sim_source_t *sim_source_pcap(const char *path, char *err, size_t errlen);
int sim_source_pcap_supported(void);

/* ------------------------------------------------------------------ */
/* dlllist.c — the callout DLL list: files and the registry            */
/* ------------------------------------------------------------------ */

typedef struct sim_dlllist {
    char **dl_items;
    size_t dl_count;
} sim_dlllist_t;

void sim_dlllist_init(sim_dlllist_t *l);
void sim_dlllist_free(sim_dlllist_t *l);
int sim_dlllist_add(sim_dlllist_t *l, const char *path);
/*
 * Reads a list file: one path per line; blank lines and lines starting with
 * '#' are skipped; a path may be in double quotes; relative paths are taken
 * relative to the file's folder. On error returns a negative code and a
 * message naming the file and line in err.
 */
int sim_dlllist_read_file(sim_dlllist_t *l, const char *file, char *err, size_t errlen);
/* Same, from a string (the file's contents); base is the folder for relative paths. */
int sim_dlllist_parse(sim_dlllist_t *l, const char *text, size_t len, const char *name,
                      const char *base, char *err, size_t errlen);

/* registry_win.c / registry_posix.c */
int sim_registry_supported(void);
/* CalloutDlls and CalloutEnabled; *enabled is 0 when the value is absent. */
int sim_registry_read(sim_dlllist_t *l, int *enabled, char *err, size_t errlen);
int sim_registry_write(const sim_dlllist_t *l, int enabled, char *err, size_t errlen);
int sim_registry_clear(char *err, size_t errlen);

/* sysinfo_*.c */
unsigned sim_cpu_count(void);

/* ------------------------------------------------------------------ */
/* loader.c — walking the list the way the server does                 */
/* ------------------------------------------------------------------ */

typedef enum sim_load_result {
    SIM_LOAD_NOT_TRIED,
    SIM_LOAD_OK,
    SIM_LOAD_OPEN_FAILED,
    SIM_LOAD_NO_ENTRY,
    SIM_LOAD_ENTRY_FAILED
} sim_load_result_t;

typedef struct sim_load_attempt {
    char *la_path;
    sim_load_result_t la_result;
    uint32_t la_code; /* the entry point's return value */
    char la_reason[256];
} sim_load_attempt_t;

typedef struct sim_loader {
    sim_load_attempt_t *ld_attempts;
    size_t ld_count;
    size_t ld_loaded; /* index of the DLL that loaded, or ld_count */
    void *ld_dl;      /* dcb_dl_t of the loaded DLL */
    DHCP_CALLOUT_TABLE ld_table;
    int ld_started;
} sim_loader_t;

/*
 * Walks the list: loads each DLL in turn and calls DhcpServerCalloutEntry
 * with ChainDlls = the entries after it and version 0, until one returns
 * ERROR_SUCCESS; then calls DhcpControlHook(DHCP_CONTROL_START). Returns 0
 * (also when no DLL loaded: the server then runs without callouts).
 */
int sim_loader_load(sim_loader_t *ld, const sim_dlllist_t *list);
/* DhcpControlHook(DHCP_CONTROL_STOP), then unloads. */
void sim_loader_unload(sim_loader_t *ld);
/* Unloads if still loaded, then frees the attempt list. */
void sim_loader_free(sim_loader_t *ld);
const char *sim_load_result_name(sim_load_result_t r);

/* ------------------------------------------------------------------ */
/* stats.c — counters and per-hook latency                             */
/* ------------------------------------------------------------------ */

/* Contract violations the emulator can see without crashing. */
typedef enum sim_violation {
    SIM_V_WROTE_PAST_SIZE,   /* in-place write past *PacketSize (guard bytes changed) */
    SIM_V_GREW_IN_PLACE,     /* *PacketSize grown without replacing the buffer */
    SIM_V_SIZE_PAST_BUFFER,  /* in place, *PacketSize beyond the server's buffer */
    SIM_V_REPLACED_TOO_BIG,  /* replaced buffer with a size no datagram can have */
    SIM_V_REPLACED_EMPTY,    /* replaced with NULL or size 0 */
    SIM_V_DROP_CHANGED_PKT,  /* PktDrop changed *Packet or *PacketSize */
    SIM_V_READONLY_MODIFIED, /* a notification hook modified the packet */
    SIM_V_RESERVED_WRITTEN,  /* wrote through the opaque Reserved pointer */
    SIM_V_OPTIONS_OUTSIDE,   /* HandleOptions left a pointer outside the packet */
    SIM_V_HWADDR_MODIFIED,   /* DeleteClient modified HwAddress */
    SIM_V_COUNT
} sim_violation_t;

const char *sim_violation_name(sim_violation_t v);
const char *sim_hook_name(dcb_hook_t h);

/* Server drop codes are counted by index: 1..0x0C, GEN_FAILURE, other. */
#define SIM_DROP_SLOTS 16
#define SIM_DROP_SLOT_GEN_FAILURE 13
#define SIM_DROP_SLOT_OTHER 14
unsigned sim_drop_slot(uint32_t code);
const char *sim_drop_slot_name(unsigned slot);

typedef struct sim_stats {
    uint64_t st_received;              /* datagrams taken from the source */
    _Atomic uint64_t st_in;            /* datagrams handed to NewPkt */
    _Atomic uint64_t st_oversized;     /* datagrams too big for the receive buffer */
    _Atomic uint64_t st_plugin_drops;  /* ProcessIt = FALSE */
    _Atomic uint64_t st_pkts_modified; /* NewPkt changed or replaced the packet */
    _Atomic uint64_t st_replies;       /* replies sent */
    _Atomic uint64_t st_replies_modified;
    _Atomic uint64_t st_replies_unsent; /* PktSend left a reply that cannot be sent */
    _Atomic uint64_t st_no_reply;       /* processed, nothing to send (RELEASE, ...) */
    _Atomic uint64_t st_abandoned;      /* queued at STOP, freed without callbacks */
    _Atomic uint64_t st_processed;      /* PROCESSED drops delivered */
    _Atomic uint64_t st_deleted_clients;
    _Atomic uint64_t st_drops[SIM_DROP_SLOTS]; /* server drops by reason */
    _Atomic uint64_t st_violations[SIM_V_COUNT];
    _Atomic uint64_t st_kinds[SIM_KIND_COUNT];
    _Atomic uint64_t st_calls[DCB_HOOK_COUNT];
    dcb_hist_t st_lat[DCB_HOOK_COUNT]; /* as seen by the calling thread */
    uint64_t st_elapsed_ns;
} sim_stats_t;

sim_stats_t *sim_stats_new(void);
void sim_stats_free(sim_stats_t *st);
uint64_t sim_stats_violations(const sim_stats_t *st);

/* ------------------------------------------------------------------ */
/* record.c — per-packet outcomes, comparable across runs              */
/* ------------------------------------------------------------------ */

typedef enum sim_outcome {
    SIM_OUT_NONE = 0,    /* never completed (run ended first) */
    SIM_OUT_PLUGIN_DROP, /* ProcessIt = FALSE */
    SIM_OUT_SERVER_DROP, /* dropped by the server with a reason code */
    SIM_OUT_REPLY,       /* a reply was sent */
    SIM_OUT_NO_REPLY,    /* processed; nothing to send */
    SIM_OUT_UNSENT,      /* the reply after PktSend could not be sent */
    SIM_OUT_OVERSIZED,   /* did not fit the receive buffer; no hook saw it */
    SIM_OUT_ABANDONED    /* still queued at STOP */
} sim_outcome_t;

typedef struct sim_record sim_record_t;
sim_record_t *sim_record_new(void);
void sim_record_free(sim_record_t *r);
/* Thread-safe; reply may be NULL. Copies the bytes. */
int sim_record_set(sim_record_t *r, uint64_t seq, sim_outcome_t o, uint32_t code,
                   const uint8_t *reply, size_t len);
/* Writes one line per packet, sorted by sequence number. */
int sim_record_write(const sim_record_t *r, FILE *f, uint64_t count);
const char *sim_outcome_name(sim_outcome_t o);

/* ------------------------------------------------------------------ */
/* server.c — the emulated server: threads, locks and hook calls       */
/* ------------------------------------------------------------------ */

typedef struct sim_config {
    unsigned cf_workers;     /* worker threads (default CPU count + 1) */
    unsigned cf_queue;       /* packet queue capacity */
    double cf_rate;          /* packets per second; 0 = as fast as possible */
    uint64_t cf_count;       /* stop after this many datagrams (0 = no limit) */
    uint64_t cf_duration_ms; /* stop after this long (0 = no limit) */
    uint32_t cf_lease_ms;    /* lease lifetime on the emulator's clock */
    int cf_abandon_at_stop;  /* free queued packets at STOP instead of finishing them */
    const sim_scope_t *cf_scope;
} sim_config_t;

void sim_config_default(sim_config_t *cf, const sim_scope_t *scope);

/*
 * Runs traffic from src through the hooks in table (which may be all NULL)
 * until the source ends or the count/duration is reached. Does not call
 * START/STOP: that is the loader's job. rec may be NULL.
 */
int sim_server_run(const sim_config_t *cf, const DHCP_CALLOUT_TABLE *table, sim_source_t *src,
                   sim_stats_t *st, sim_record_t *rec);

/* ------------------------------------------------------------------ */
/* report.c — the table for people and the JSON for machines            */
/* ------------------------------------------------------------------ */

typedef struct sim_run_info {
    const sim_loader_t *ri_loader;
    const sim_config_t *ri_config;
    uint64_t ri_seed;
    const char *ri_source;
} sim_run_info_t;

void sim_report_table(FILE *f, const sim_run_info_t *ri, const sim_stats_t *st);
/* Returns a malloc'd JSON document, or NULL. */
char *sim_report_json(const sim_run_info_t *ri, const sim_stats_t *st);

#endif /* DCBSIM_H */
