/*
 * plat_win.c — the few platform details of dcbctl on Windows: a console
 * that shows UTF-8 ("µs") and ANSI screen control (top), and a command line
 * in UTF-8 rather than the ANSI code page, so paths with any characters
 * reach install intact.
 */
#include "dcbctl.h"

#include <windows.h>

#include <io.h>
#include <shellapi.h>
#include <stdlib.h>

void ctl_plat_console_init(FILE *out)
{
    HANDLE h = (HANDLE)_get_osfhandle(_fileno(out));
    DWORD mode;

    if (h == INVALID_HANDLE_VALUE || !GetConsoleMode(h, &mode))
        return; /* Not a console: bytes go out as they are. */
    SetConsoleOutputCP(CP_UTF8);
    SetConsoleMode(h, mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING);
}

void ctl_plat_utf8_args(int *argc, char ***argv)
{
    int n = 0;
    LPWSTR *w = CommandLineToArgvW(GetCommandLineW(), &n);
    char **v;

    if (w == NULL)
        return;
    v = calloc((size_t)n + 1, sizeof(*v));
    for (int i = 0; v != NULL && i < n; i++) {
        int len = WideCharToMultiByte(CP_UTF8, 0, w[i], -1, NULL, 0, NULL, NULL);
        v[i] = len > 0 ? malloc((size_t)len) : NULL;
        if (v[i] == NULL || WideCharToMultiByte(CP_UTF8, 0, w[i], -1, v[i], len, NULL, NULL) == 0) {
            /* Keep what the C runtime parsed rather than a half-converted line. */
            LocalFree(w);
            return;
        }
    }
    LocalFree(w);
    if (v == NULL)
        return;
    *argc = n;
    *argv = v;
}
