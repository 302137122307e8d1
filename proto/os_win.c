/*
 * os_win.c — dcb_os.h on Windows.
 */
#include "dcb_os.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t dcb_now_ns(void)
{
    static LARGE_INTEGER freq;
    LARGE_INTEGER now;

    /* The frequency is fixed at boot; a racy first read stores the same value. */
    if (freq.QuadPart == 0)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    return (uint64_t)(now.QuadPart / freq.QuadPart) * 1000000000u +
           (uint64_t)(now.QuadPart % freq.QuadPart) * 1000000000u / (uint64_t)freq.QuadPart;
}

void dcb_sleep_ms(uint32_t ms)
{
    Sleep(ms);
}

void dcb_mutex_init(dcb_mutex_t *m)
{
    InitializeSRWLock(m);
}

void dcb_mutex_destroy(dcb_mutex_t *m)
{
    (void)m; /* SRW locks own no resources. */
}

void dcb_mutex_lock(dcb_mutex_t *m)
{
    AcquireSRWLockExclusive(m);
}

void dcb_mutex_unlock(dcb_mutex_t *m)
{
    ReleaseSRWLockExclusive(m);
}

void dcb_rwlock_init(dcb_rwlock_t *l)
{
    InitializeSRWLock(l);
}

void dcb_rwlock_destroy(dcb_rwlock_t *l)
{
    (void)l;
}

void dcb_rwlock_rdlock(dcb_rwlock_t *l)
{
    AcquireSRWLockShared(l);
}

void dcb_rwlock_rdunlock(dcb_rwlock_t *l)
{
    ReleaseSRWLockShared(l);
}

void dcb_rwlock_wrlock(dcb_rwlock_t *l)
{
    AcquireSRWLockExclusive(l);
}

void dcb_rwlock_wrunlock(dcb_rwlock_t *l)
{
    ReleaseSRWLockExclusive(l);
}

void dcb_cond_init(dcb_cond_t *c)
{
    InitializeConditionVariable(c);
}

void dcb_cond_destroy(dcb_cond_t *c)
{
    (void)c;
}

void dcb_cond_signal(dcb_cond_t *c)
{
    WakeConditionVariable(c);
}

void dcb_cond_broadcast(dcb_cond_t *c)
{
    WakeAllConditionVariable(c);
}

void dcb_cond_wait(dcb_cond_t *c, dcb_mutex_t *m)
{
    SleepConditionVariableSRW(c, m, INFINITE, 0);
}

int dcb_cond_timedwait(dcb_cond_t *c, dcb_mutex_t *m, uint32_t timeout_ms)
{
    if (SleepConditionVariableSRW(c, m, timeout_ms, 0))
        return 0;
    return GetLastError() == ERROR_TIMEOUT ? DCB_OS_ETIMEDOUT : DCB_OS_EIO;
}

struct thread_start {
    dcb_thread_fn fn;
    void *arg;
};

static DWORD WINAPI thread_main(LPVOID p)
{
    struct thread_start start = *(struct thread_start *)p;

    free(p);
    start.fn(start.arg);
    return 0;
}

int dcb_thread_create(dcb_thread_t *t, dcb_thread_fn fn, void *arg)
{
    struct thread_start *start = malloc(sizeof(*start));

    if (start == NULL)
        return DCB_OS_ENOMEM;
    start->fn = fn;
    start->arg = arg;
    *t = CreateThread(NULL, 0, thread_main, start, 0, NULL);
    if (*t == NULL) {
        free(start);
        return DCB_OS_EIO;
    }
    return 0;
}

int dcb_thread_join(dcb_thread_t t)
{
    DWORD rc = WaitForSingleObject(t, INFINITE);

    CloseHandle(t);
    return rc == WAIT_OBJECT_0 ? 0 : DCB_OS_EIO;
}

wchar_t *dcb_utf8_to_wide(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    wchar_t *w;

    if (n <= 0)
        return NULL;
    w = malloc((size_t)n * sizeof(*w));
    if (w != NULL && MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n) <= 0) {
        free(w);
        w = NULL;
    }
    return w;
}

dcb_dl_t *dcb_dl_open(const char *path, char *err, size_t errlen)
{
    wchar_t *wpath = dcb_utf8_to_wide(path);
    HMODULE h;
    DWORD code;

    if (wpath == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: not a valid UTF-8 path", path);
        return NULL;
    }
    /*
     * LOAD_WITH_ALTERED_SEARCH_PATH resolves the DLL's own dependencies from
     * its folder first, as the DHCP server does for a full path.
     */
    h = LoadLibraryExW(wpath, NULL, LOAD_WITH_ALTERED_SEARCH_PATH);
    code = GetLastError();
    free(wpath);
    if (h == NULL && err != NULL && errlen > 0) {
        char msg[256] = "";
        FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code, 0,
                       msg, sizeof(msg), NULL);
        msg[strcspn(msg, "\r\n")] = '\0';
        snprintf(err, errlen, "%s: LoadLibrary failed, error %lu %s", path, (unsigned long)code,
                 msg);
    }
    return (dcb_dl_t *)h;
}

void *dcb_dl_sym(dcb_dl_t *dl, const char *name)
{
    return (void *)GetProcAddress((HMODULE)dl, name);
}

void dcb_dl_close(dcb_dl_t *dl)
{
    if (dl != NULL)
        FreeLibrary((HMODULE)dl);
}

uint32_t dcb_getpid(void)
{
    return (uint32_t)GetCurrentProcessId();
}
