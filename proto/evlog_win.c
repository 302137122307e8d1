/*
 * evlog_win.c — dcb_evlog.h on Windows: the Event Log backend
 * (RegisterEventSourceW, ReportEventW) and the writer thread, which keeps
 * its module loaded while it runs.
 */
#include "dcb_evlog.h"

#include <stdint.h>
#include <stdlib.h>

static void *win_open(const char *source)
{
    WCHAR w[64];

    if (MultiByteToWideChar(CP_UTF8, 0, source, -1, w, (int)(sizeof(w) / sizeof(w[0]))) <= 0)
        return NULL;
    /*
     * Succeeds for a source nobody registered too (Windows then files the
     * events under Application without message text); NULL only when the
     * Event Log service cannot be reached.
     */
    return RegisterEventSourceW(NULL, w);
}

static int win_write(void *h, dcb_log_level_t level, const char *text)
{
    WCHAR w[DCB_EVLOG_LINE_MAX];
    LPCWSTR strings[1] = {w};
    WORD type = level >= DCB_LOG_ERROR  ? EVENTLOG_ERROR_TYPE
                : level == DCB_LOG_WARN ? EVENTLOG_WARNING_TYPE
                                        : EVENTLOG_INFORMATION_TYPE;

    /* A UTF-8 line never needs more UTF-16 units than it has bytes. */
    if (MultiByteToWideChar(CP_UTF8, 0, text, -1, w, (int)(sizeof(w) / sizeof(w[0]))) <= 0)
        return DCB_OS_EINVAL;
    if (!ReportEventW((HANDLE)h, type, 0, DCB_EVLOG_MSG_TEXT, NULL, 1, 0, strings, NULL))
        return DCB_OS_EIO;
    return 0;
}

static void win_close(void *h)
{
    DeregisterEventSource((HANDLE)h);
}

static const dcb_evlog_backend_t win_backend = {win_open, win_write, win_close};

const dcb_evlog_backend_t *dcb_evlog_system(void)
{
    return &win_backend;
}

typedef struct spawn {
    void (*sp_fn)(void *arg);
    void *sp_arg;
    HMODULE sp_module;
} spawn_t;

static DWORD WINAPI spawn_main(LPVOID p)
{
    spawn_t sp = *(spawn_t *)p;

    free(p);
    sp.sp_fn(sp.sp_arg);
    /*
     * The reference taken in dcb__evlog_spawn kept this code mapped even if
     * the DLL's owner unloaded it meanwhile; drop it and leave in one call,
     * so nothing runs in the module after the reference is gone.
     */
    if (sp.sp_module != NULL)
        FreeLibraryAndExitThread(sp.sp_module, 0);
    return 0;
}

int dcb__evlog_spawn(void (*fn)(void *arg), void *arg)
{
    spawn_t *sp = malloc(sizeof(*sp));
    HANDLE t;

    if (sp == NULL)
        return DCB_OS_ENOMEM;
    sp->sp_fn = fn;
    sp->sp_arg = arg;
    sp->sp_module = NULL;
    if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS, (LPCWSTR)(uintptr_t)spawn_main,
                            &sp->sp_module))
        sp->sp_module = NULL;
    /* A small stack: the writer needs its two line buffers and ReportEventW's. */
    t = CreateThread(NULL, 256 * 1024, spawn_main, sp, STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
    if (t == NULL) {
        if (sp->sp_module != NULL)
            FreeLibrary(sp->sp_module);
        free(sp);
        return DCB_OS_ENOMEM;
    }
    CloseHandle(t);
    return 0;
}
