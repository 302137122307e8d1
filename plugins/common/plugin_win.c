/* plugin_win.c — the platform bits of the plugin helpers, Windows side. */
#include "dcb_plugin.h"

#include <stdio.h>
#include <windows.h>

int dcb_plugin_module_path(const void *addr, char *out, size_t cap)
{
    HMODULE mod = NULL;
    WCHAR wpath[MAX_PATH * 4];
    if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                                GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                            (LPCWSTR)addr, &mod))
        return -1;
    DWORD n = GetModuleFileNameW(mod, wpath, (DWORD)(sizeof(wpath) / sizeof(wpath[0])));
    if (n == 0 || n >= sizeof(wpath) / sizeof(wpath[0]))
        return -1;
    int k = WideCharToMultiByte(CP_UTF8, 0, wpath, (int)n, out, (int)cap - 1, NULL, NULL);
    if (k <= 0)
        return -1;
    out[k] = '\0';
    return 0;
}

void dcb_plugin_utc_now(char *out, size_t cap)
{
    SYSTEMTIME st;
    GetSystemTime(&st);
    snprintf(out, cap, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", st.wYear, st.wMonth, st.wDay,
             st.wHour, st.wMinute, st.wSecond, st.wMilliseconds);
}

int dcb_plugin_replace_file(const char *src, const char *dst)
{
    WCHAR ws[MAX_PATH * 4], wd[MAX_PATH * 4];
    if (MultiByteToWideChar(CP_UTF8, 0, src, -1, ws, MAX_PATH * 4) == 0 ||
        MultiByteToWideChar(CP_UTF8, 0, dst, -1, wd, MAX_PATH * 4) == 0)
        return -1;
    return MoveFileExW(ws, wd, MOVEFILE_REPLACE_EXISTING) ? 0 : -1;
}
