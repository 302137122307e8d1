/*
 * plat_win.c — configuration sources and log output on Windows.
 *
 * Settings come from the registry key
 * HKLM\SYSTEM\CurrentControlSet\Services\dcb\Parameters (REG_SZ or
 * REG_DWORD values) and, for tests, from environment variables.
 */
#include "shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARAMS_KEY L"SYSTEM\\CurrentControlSet\\Services\\dcb\\Parameters"

static int from_wide(const wchar_t *w, char *out, size_t cap)
{
    int cap_i = cap > 0x7fffffff ? 0x7fffffff : (int)cap;

    if (cap == 0)
        return 0;
    out[0] = '\0';
    if (WideCharToMultiByte(CP_UTF8, 0, w, -1, out, cap_i, NULL, NULL) <= 0) {
        out[0] = '\0';
        return 0;
    }
    return 1;
}

static int to_wide(const char *s, wchar_t *out, int cap)
{
    return MultiByteToWideChar(CP_UTF8, 0, s, -1, out, cap) > 0;
}

int dcb__plat_env_get(const char *name, char *out, size_t cap)
{
    wchar_t wname[128], val[1024];
    DWORD n;

    if (!to_wide(name, wname, 128))
        return 0;
    n = GetEnvironmentVariableW(wname, val, 1024);
    if (n == 0 && GetLastError() == ERROR_ENVVAR_NOT_FOUND)
        return 0;
    if (n >= 1024)
        return 0; /* Longer than any setting may be: treat as unset. */
    val[n] = 0;
    return from_wide(val, out, cap);
}

int dcb__plat_cfg_get(const char *name, char *out, size_t cap)
{
    wchar_t wname[128], val[1024];
    DWORD type = 0, size = sizeof(val) - sizeof(wchar_t);
    LSTATUS rc;

    if (!to_wide(name, wname, 128))
        return 0;
    /* A REG_EXPAND_SZ comes back expanded, as REG_SZ. */
    rc = RegGetValueW(HKEY_LOCAL_MACHINE, PARAMS_KEY, wname, RRF_RT_REG_SZ | RRF_RT_REG_DWORD,
                      &type, val, &size);
    if (rc != ERROR_SUCCESS)
        return 0;
    if (type == REG_DWORD) {
        DWORD v;
        memcpy(&v, val, sizeof(v));
        snprintf(out, cap, "%lu", (unsigned long)v);
        return 1;
    }
    val[size / sizeof(wchar_t) < 1024 ? size / sizeof(wchar_t) : 1023] = 0;
    return from_wide(val, out, cap);
}

FILE *dcb__plat_fopen_append(const char *path)
{
    wchar_t w[1024];

    if (!to_wide(path, w, 1024))
        return NULL;
    return _wfopen(w, L"a");
}

void dcb__plat_log_default(const char *line)
{
    char buf[1100];

    snprintf(buf, sizeof(buf), "%s\n", line);
    OutputDebugStringA(buf);
}

uint64_t dcb__plat_random64(void)
{
    LARGE_INTEGER pc;
    FILETIME ft;
    uint64_t v;

    QueryPerformanceCounter(&pc);
    GetSystemTimeAsFileTime(&ft);
    v = (uint64_t)pc.QuadPart ^ ((uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime) ^
        ((uint64_t)GetCurrentProcessId() << 40) ^ (uint64_t)(uintptr_t)&v;
    return v != 0 ? v : 1;
}
