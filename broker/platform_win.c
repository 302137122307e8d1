/*
 * platform_win.c — paths and exit descriptions on Windows.
 */
#include "platform.h"

#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int platform_abspath(const char *in, char *out, size_t outlen)
{
    wchar_t win[MAX_PATH * 4], wout[MAX_PATH * 4];
    DWORD n;

    if (MultiByteToWideChar(CP_UTF8, 0, in, -1, win, (int)(sizeof(win) / sizeof(win[0]))) <= 0)
        return UV_EINVAL;
    n = GetFullPathNameW(win, (DWORD)(sizeof(wout) / sizeof(wout[0])), wout, NULL);
    if (n == 0 || n >= sizeof(wout) / sizeof(wout[0]))
        return UV_ENAMETOOLONG;
    if (WideCharToMultiByte(CP_UTF8, 0, wout, -1, out, (int)outlen, NULL, NULL) <= 0)
        return UV_ENAMETOOLONG;
    return 0;
}

int platform_path_equal(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char ca = *a == '/' ? '\\' : *a, cb = *b == '/' ? '\\' : *b;
        if (ca >= 'A' && ca <= 'Z')
            ca = (char)(ca - 'A' + 'a');
        if (cb >= 'A' && cb <= 'Z')
            cb = (char)(cb - 'A' + 'a');
        if (ca != cb)
            return 0;
    }
    return *a == *b;
}

void platform_describe_exit(int64_t status, int term_signal, char *out, size_t outlen)
{
    uint32_t code = (uint32_t)status;

    if (term_signal != 0 && status == 0)
        snprintf(out, outlen, "terminated (signal %d)", term_signal);
    else if ((code & 0xF0000000u) == 0xC0000000u)
        snprintf(out, outlen, "exception 0x%08X%s", code,
                 code == 0xC0000005u   ? " (access violation)"
                 : code == 0xC0000374u ? " (heap corruption)"
                 : code == 0xC00000FDu ? " (stack overflow)"
                 : code == 0xC0000409u ? " (fail fast)"
                                       : "");
    else
        snprintf(out, outlen, "exit status %u", code);
}

void platform_init_process(void)
{
    /* No error dialogs: a service has nobody to click them. */
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX | SEM_NOOPENFILEERRORBOX);
    sandbox_supervisor_init();
}
