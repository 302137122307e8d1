/*
 * install_win.h — what install_win.c needs from regval_win.c: registry
 * values as raw bytes (so they can be restored byte for byte), MULTI_SZ
 * lists, and UTF-8/UTF-16 conversion.
 */
#ifndef DCBCTL_INSTALL_WIN_H
#define DCBCTL_INSTALL_WIN_H

#include <windows.h>

#include <stdio.h>

/* Where things live. Every key is opened in the 64-bit registry view. */
#define INST_DHCP_PARAMS L"SYSTEM\\CurrentControlSet\\Services\\DHCPServer\\Parameters"
#define INST_DCB_KEY L"SOFTWARE\\dcb"
#define INST_BACKUP_KEY L"SOFTWARE\\dcb\\Backup"
#define INST_EVENTLOG_KEY L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\dcb"
/* The shim's own settings (shim/README.md): install sets ExpectedBrokerAccount. */
#define INST_SHIM_KEY L"SYSTEM\\CurrentControlSet\\Services\\dcb"
#define INST_SHIM_PARAMS L"SYSTEM\\CurrentControlSet\\Services\\dcb\\Parameters"
#define INST_SERVICE L"dcb-broker"
#define INST_EVENT_SOURCE L"dcb"
#define INST_MESSAGE_DLL L"dcbmsg.dll"

/* A registry value exactly as stored: presence, type and raw bytes. */
typedef struct regval {
    int rv_present;
    DWORD rv_type;
    BYTE *rv_data; /* malloc'd; NULL when absent */
    DWORD rv_size;
} regval_t;

/* Reads name from key. Absent is success with rv_present = 0. */
LSTATUS regval_read(HKEY key, const WCHAR *name, regval_t *v);
/* Writes v back exactly, or deletes the value when v is absent. */
LSTATUS regval_write(HKEY key, const WCHAR *name, const regval_t *v);
int regval_equal(const regval_t *a, const regval_t *b);
void regval_free(regval_t *v);

/*
 * The backup of one value under INST_BACKUP_KEY: "<name>.Present" (DWORD),
 * "<name>.Type" (DWORD) and "<name>.Data" (REG_BINARY, the raw bytes).
 */
LSTATUS regval_backup_save(HKEY backup, const WCHAR *name, const regval_t *v);
/* Returns ERROR_INVALID_DATA when the backup is incomplete. */
LSTATUS regval_backup_load(HKEY backup, const WCHAR *name, regval_t *v);

/* A MULTI_SZ as a list of strings. */
typedef struct wlist {
    WCHAR **wl_items;
    size_t wl_n;
} wlist_t;

/*
 * Splits REG_MULTI_SZ bytes: strings end at a 0 unit, the list at an empty
 * string or the end of the data (a missing terminator is tolerated, as
 * Windows does). Returns 0, or -1 for an odd byte count or no memory.
 */
int wlist_from_multisz(const BYTE *data, DWORD size, wlist_t *out);
/* The REG_MULTI_SZ bytes of a list (an empty list is a single 0 unit). */
int wlist_to_multisz(const wlist_t *l, BYTE **data, DWORD *size);
int wlist_push(wlist_t *l, const WCHAR *s);
void wlist_free(wlist_t *l);

/* Conversions; the results are malloc'd, NULL on failure. */
WCHAR *inst_wide(const char *utf8);
char *inst_utf8(const WCHAR *w);
/* The Windows error's text, "The system cannot find the file specified. (error 2)". */
void inst_win_words(DWORD code, char *buf, size_t n);

#endif
