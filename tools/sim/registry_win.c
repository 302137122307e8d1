/*
 * registry_win.c — the DLL list where the DHCP server keeps it:
 * HKLM\System\CurrentControlSet\Services\DHCPServer\Parameters, values
 * CalloutDlls (REG_MULTI_SZ) and CalloutEnabled (REG_DWORD). Under Wine
 * this is Wine's registry.
 */
#include "dcbsim.h"
#include "dcb_os.h"

#include <stdio.h>
#include <stdlib.h>
#include <windows.h>

#define SIM_PARAMS_KEY L"System\\CurrentControlSet\\Services\\DHCPServer\\Parameters"

int sim_registry_supported(void)
{
    return 1;
}

static void win_err(char *err, size_t errlen, const char *what, LONG code)
{
    char msg[256] = "";
    FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, (DWORD)code, 0,
                   msg, sizeof(msg), NULL);
    for (char *p = msg; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    snprintf(err, errlen, "%s: error %ld %s", what, (long)code, msg);
}

int sim_registry_read(sim_dlllist_t *l, int *enabled, char *err, size_t errlen)
{
    HKEY key;
    *enabled = 0;
    LONG rc = RegOpenKeyExW(HKEY_LOCAL_MACHINE, SIM_PARAMS_KEY, 0, KEY_QUERY_VALUE, &key);
    if (rc == ERROR_FILE_NOT_FOUND)
        return 0; /* no key: no callouts, as on a server without them */
    if (rc != ERROR_SUCCESS) {
        win_err(err, errlen, "cannot open HKLM\\...\\DHCPServer\\Parameters", rc);
        return -1;
    }
    DWORD type = 0, value = 0, size = sizeof(value);
    rc = RegQueryValueExW(key, L"CalloutEnabled", NULL, &type, (LPBYTE)&value, &size);
    if (rc == ERROR_SUCCESS && type == REG_DWORD)
        *enabled = value == 1;

    size = 0;
    rc = RegQueryValueExW(key, L"CalloutDlls", NULL, &type, NULL, &size);
    if (rc == ERROR_FILE_NOT_FOUND) {
        RegCloseKey(key);
        return 0;
    }
    if (rc != ERROR_SUCCESS || type != REG_MULTI_SZ) {
        RegCloseKey(key);
        if (rc == ERROR_SUCCESS)
            snprintf(err, errlen, "CalloutDlls is not a REG_MULTI_SZ (type %lu)",
                     (unsigned long)type);
        else
            win_err(err, errlen, "cannot read CalloutDlls", rc);
        return -1;
    }
    /* Room for two extra terminators in case the stored value lacks them. */
    DWORD units = size / sizeof(WCHAR) + 2;
    WCHAR *msz = calloc(units, sizeof(WCHAR));
    if (msz == NULL) {
        RegCloseKey(key);
        return -1;
    }
    rc = RegQueryValueExW(key, L"CalloutDlls", NULL, &type, (LPBYTE)msz, &size);
    RegCloseKey(key);
    if (rc != ERROR_SUCCESS) {
        free(msz);
        win_err(err, errlen, "cannot read CalloutDlls", rc);
        return -1;
    }
    char **items = NULL;
    int n = dcb_multisz_to_utf8((const uint16_t *)msz, units, &items);
    free(msz);
    if (n < 0) {
        snprintf(err, errlen, "CalloutDlls is not a valid MULTI_SZ");
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (sim_dlllist_add(l, items[i]) != 0) {
            dcb_strlist_free(items, (size_t)n);
            return -1;
        }
    dcb_strlist_free(items, (size_t)n);
    return 0;
}

/* Units in a MULTI_SZ, both terminators included. */
static size_t multisz_units(const uint16_t *m)
{
    size_t i = 0;
    while (m[i] != 0) {
        while (m[i] != 0)
            i++;
        i++;
    }
    return i + 1;
}

int sim_registry_write(const sim_dlllist_t *l, int enabled, char *err, size_t errlen)
{
    HKEY key;
    LONG rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, SIM_PARAMS_KEY, 0, NULL, 0, KEY_SET_VALUE, NULL,
                              &key, NULL);
    if (rc != ERROR_SUCCESS) {
        win_err(err, errlen, "cannot create HKLM\\...\\DHCPServer\\Parameters", rc);
        return -1;
    }
    uint16_t *msz = dcb_multisz_from_utf8((const char *const *)l->dl_items, l->dl_count);
    if (msz == NULL) {
        RegCloseKey(key);
        return -1;
    }
    size_t units = multisz_units(msz);
    DWORD dw = enabled ? 1 : 0;
    rc = RegSetValueExW(key, L"CalloutDlls", 0, REG_MULTI_SZ, (const BYTE *)msz,
                        (DWORD)(units * sizeof(WCHAR)));
    if (rc == ERROR_SUCCESS)
        rc = RegSetValueExW(key, L"CalloutEnabled", 0, REG_DWORD, (const BYTE *)&dw, sizeof(dw));
    free(msz);
    RegCloseKey(key);
    if (rc != ERROR_SUCCESS) {
        win_err(err, errlen, "cannot write CalloutDlls/CalloutEnabled", rc);
        return -1;
    }
    return 0;
}

int sim_registry_clear(char *err, size_t errlen)
{
    HKEY key;
    LONG rc = RegOpenKeyExW(HKEY_LOCAL_MACHINE, SIM_PARAMS_KEY, 0, KEY_SET_VALUE, &key);
    if (rc == ERROR_FILE_NOT_FOUND)
        return 0;
    if (rc != ERROR_SUCCESS) {
        win_err(err, errlen, "cannot open HKLM\\...\\DHCPServer\\Parameters", rc);
        return -1;
    }
    RegDeleteValueW(key, L"CalloutDlls");
    RegDeleteValueW(key, L"CalloutEnabled");
    RegCloseKey(key);
    return 0;
}
