/*
 * dcb_plugin.h — helpers shared by the sample callout DLLs: serving the
 * rest of CalloutDlls when loaded first (chaining), bounds-checked access
 * to DHCP packets, and where a plugin finds its configuration.
 *
 * Linked statically into each plugin; every DLL has its own copy of the
 * state below.
 */
#ifndef DCB_PLUGIN_H
#define DCB_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "dcb_callout.h"

/* ------------------------------------------------------------------ */
/* chain.c                                                              */
/* ------------------------------------------------------------------ */

/*
 * The tail of DhcpServerCalloutEntry for a plugin that may be loaded
 * first. self is the plugin's own entry point (to refuse being listed
 * twice); own is the plugin's own hook table. With an empty ChainDlls, out
 * receives own unchanged. Otherwise every DLL in ChainDlls is loaded and
 * its entry point called (with an empty chain and the same version); the
 * ones that succeed run after this plugin, in list order, and out receives
 * dispatch hooks that:
 *   - call each member in order, each seeing the packet as the ones before
 *     left it, and stop NewPkt at the first ProcessIt = FALSE;
 *   - keep one PktContext per member per packet in the server's single
 *     slot, and hand each member its own value back;
 *   - call a member's later hooks only for packets whose NewPkt reached it,
 *     and always deliver the final PROCESSED drop to those members;
 *   - at STOP, pass STOP on, release per-packet state the server will
 *     never finish (packets queued at STOP), and unload the chain.
 * Returns ERROR_SUCCESS, or an error for a version other than 0.
 */
DWORD dcb_chain_entry(const char *plugin, LPDHCP_ENTRY_POINT_FUNC self, LPWSTR chain_dlls,
                      DWORD version, const DHCP_CALLOUT_TABLE *own, LPDHCP_CALLOUT_TABLE out);

/* ------------------------------------------------------------------ */
/* dhcp.c                                                               */
/* ------------------------------------------------------------------ */

#define DCB_DHCP_OPT_OFF 240u

/* Whether a buffer holds a BOOTP/DHCP message with the magic cookie. */
int dcb_dhcp_has_options(const uint8_t *pkt, size_t len);
/*
 * Finds option code in the options field (and in file/sname when option 52
 * says so). Returns a pointer to its value and stores its length, or NULL.
 * Never reads outside [pkt, pkt + len).
 */
const uint8_t *dcb_dhcp_find_option(const uint8_t *pkt, size_t len, uint8_t code, uint8_t *olen);
/* Message type (option 53), 0 when absent. */
int dcb_dhcp_msgtype(const uint8_t *pkt, size_t len);
const char *dcb_dhcp_msgtype_name(int type);
/* chaddr and its length (hlen, capped at 16); 0 for a short packet. */
size_t dcb_dhcp_chaddr(const uint8_t *pkt, size_t len, const uint8_t **chaddr);
uint32_t dcb_dhcp_get32(const uint8_t *p); /* big-endian */

/* "aa:bb:cc:dd:ee:ff" (n bytes) into out. */
void dcb_format_hex(const uint8_t *b, size_t n, char sep, char *out, size_t cap);
/* An address given as a DWORD in network order (the bytes a.b.c.d in memory). */
void dcb_format_ip_net(DWORD ip, char *out, size_t cap);
/* An address given as a host-order number. */
void dcb_format_ip_host(DWORD ip, char *out, size_t cap);
/*
 * Parses "00:11:22:33:44:55", "00-11-22-33-44-55", "001122334455" or a
 * prefix ending in '*' ("00-11-22-*"). Returns the byte count (> 0), or -1.
 * *prefix is set when the entry ended in '*'.
 */
int dcb_parse_hwaddr(const char *s, uint8_t *out, size_t cap, int *prefix);
/* Parses plain hex ("0a000005", blanks and ':' allowed). Returns bytes or -1. */
int dcb_parse_hex(const char *s, uint8_t *out, size_t cap);

/* ------------------------------------------------------------------ */
/* config.c and plugin_{posix,win}.c                                    */
/* ------------------------------------------------------------------ */

/*
 * The configuration file: the value of the environment variable envvar
 * when it is set and not empty, else the DLL's own path with its extension
 * replaced by ".ini" (macfilter.dll -> macfilter.ini). addr is any address
 * inside the calling DLL. Returns 0, or -1 when no path can be formed.
 */
int dcb_plugin_config_path(const char *envvar, const void *addr, char *out, size_t cap);
/* Resolves rel against the folder of base_file (absolute rel is kept). */
void dcb_plugin_resolve(const char *base_file, const char *rel, char *out, size_t cap);
/* Parses "yes/no/true/false/on/off/1/0"; -1 when it is none of them. */
int dcb_parse_bool(const char *s);

/* The path of the module containing addr, UTF-8. */
int dcb_plugin_module_path(const void *addr, char *out, size_t cap);
/* UTC wall-clock time, ISO 8601 with milliseconds: 2024-05-01T12:00:00.123Z */
void dcb_plugin_utc_now(char *out, size_t cap);
/* Replaces dst by src (rename that overwrites on both platforms). */
int dcb_plugin_replace_file(const char *src, const char *dst);

#endif /* DCB_PLUGIN_H */
