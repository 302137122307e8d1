/*
 * sys_win.c — the platform under dcb-bench on Windows: child processes,
 * process figures (GetProcessTimes, PeakWorkingSetSize, a Toolhelp
 * snapshot for children), files and the environment. Paths and names are
 * UTF-8 here and UTF-16 at the API.
 */
#include "bench.h"

#include <windows.h>
#include <psapi.h>
#include <tlhelp32.h>
#include <stdlib.h>
#include <string.h>

struct bench_child {
    HANDLE ch_proc;
    DWORD ch_pid;
    char ch_image[MAX_PATH]; /* the executable's file name, to recognise its children */
};

static int to_wide(const char *s, wchar_t *out, int cap)
{
    return MultiByteToWideChar(CP_UTF8, 0, s, -1, out, cap) > 0;
}

static int to_utf8(const wchar_t *s, char *out, int cap)
{
    return WideCharToMultiByte(CP_UTF8, 0, s, -1, out, cap, NULL, NULL) > 0;
}

int bench_sys_exe_dir(char *out, size_t cap)
{
    wchar_t path[MAX_PATH];
    char *slash;

    if (GetModuleFileNameW(NULL, path, MAX_PATH) == 0 || !to_utf8(path, out, (int)cap))
        return -1;
    slash = strrchr(out, '\\');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    return 0;
}

int bench_sys_setenv(const char *name, const char *value)
{
    wchar_t wn[128], wv[BENCH_PATH_MAX];

    wchar_t entry[128 + BENCH_PATH_MAX + 2];

    if (!to_wide(name, wn, 128) || (value != NULL && !to_wide(value, wv, BENCH_PATH_MAX)))
        return -1;
    /*
     * Two copies: the C runtime's (msvcrt.dll, shared with the plugins we
     * load in-process, whose getenv reads it) and the process environment
     * block (what the shim reads and our children inherit). _wputenv sets
     * both; SetEnvironmentVariableW makes sure of the second.
     */
    _snwprintf(entry, sizeof(entry) / sizeof(entry[0]), L"%ls=%ls", wn, value != NULL ? wv : L"");
    entry[sizeof(entry) / sizeof(entry[0]) - 1] = 0;
    _wputenv(entry);
    return SetEnvironmentVariableW(wn, value != NULL ? wv : NULL) ? 0 : -1;
}

int bench_sys_mkdtemp(char *out, size_t cap)
{
    static LONG counter;
    wchar_t base[MAX_PATH], dir[MAX_PATH];

    if (GetTempPathW(MAX_PATH, base) == 0)
        return -1;
    for (int i = 0; i < 100; i++) {
        _snwprintf(dir, MAX_PATH, L"%lsdcb-bench-%lu-%ld", base, GetCurrentProcessId(),
                   InterlockedIncrement(&counter));
        if (CreateDirectoryW(dir, NULL))
            return to_utf8(dir, out, (int)cap) ? 0 : -1;
        if (GetLastError() != ERROR_ALREADY_EXISTS)
            return -1;
    }
    return -1;
}

void bench_sys_rmdir(const char *dir)
{
    wchar_t wdir[MAX_PATH], pattern[MAX_PATH], path[MAX_PATH];
    WIN32_FIND_DATAW fd;
    HANDLE f;

    if (!to_wide(dir, wdir, MAX_PATH))
        return;
    _snwprintf(pattern, MAX_PATH, L"%ls\\*", wdir);
    f = FindFirstFileW(pattern, &fd);
    if (f != INVALID_HANDLE_VALUE) {
        do {
            if (wcscmp(fd.cFileName, L".") == 0 || wcscmp(fd.cFileName, L"..") == 0)
                continue;
            _snwprintf(path, MAX_PATH, L"%ls\\%ls", wdir, fd.cFileName);
            DeleteFileW(path);
        } while (FindNextFileW(f, &fd));
        FindClose(f);
    }
    RemoveDirectoryW(wdir);
}

void bench_sys_pipe_name(char *out, size_t cap, const char *dir, const char *tag)
{
    (void)dir;
    snprintf(out, cap, "\\\\.\\pipe\\dcb-bench-%lu-%s", GetCurrentProcessId(), tag);
}

const char *bench_sys_dll_suffix(void)
{
    return ".dll";
}

const char *bench_sys_exe_suffix(void)
{
    return ".exe";
}

const char *bench_sys_shim_name(void)
{
    return "dcbshim.dll";
}

/* Appends one argument to a command line, quoted the way CommandLineToArgvW reads it. */
static void append_arg(wchar_t *line, size_t cap, const wchar_t *arg)
{
    size_t n = wcslen(line);

    if (n + 3 >= cap)
        return;
    if (n > 0)
        line[n++] = L' ';
    line[n++] = L'"';
    for (const wchar_t *p = arg; *p != 0 && n + 3 < cap; p++) {
        size_t slashes = 0;
        while (*p == L'\\' && p[1] != 0) {
            slashes++;
            p++;
        }
        if (*p == L'"' || (*p == L'\\' && p[1] == 0)) {
            slashes = slashes * 2 + (*p == L'"' ? 1 : 2);
            while (slashes-- > 0 && n + 3 < cap)
                line[n++] = L'\\';
            if (*p == L'"')
                line[n++] = L'"';
            continue;
        }
        while (slashes-- > 0 && n + 3 < cap)
            line[n++] = L'\\';
        line[n++] = *p;
    }
    line[n++] = L'"';
    line[n] = 0;
}

int bench_child_spawn(bench_child_t **out, const char *exe, const char *const *argv,
                      const char *log)
{
    static wchar_t line[8192];
    wchar_t wexe[MAX_PATH], warg[BENCH_PATH_MAX], wlog[MAX_PATH];
    SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, TRUE};
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    HANDLE hlog, hnull;
    bench_child_t *ch;
    BOOL ok;

    *out = NULL;
    if (!to_wide(exe, wexe, MAX_PATH) || !to_wide(log, wlog, MAX_PATH))
        return -1;
    line[0] = 0;
    for (size_t i = 0; argv[i] != NULL; i++) {
        if (!to_wide(argv[i], warg, BENCH_PATH_MAX))
            return -1;
        append_arg(line, sizeof(line) / sizeof(line[0]), warg);
    }
    hlog = CreateFileW(wlog, FILE_APPEND_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, OPEN_ALWAYS,
                       FILE_ATTRIBUTE_NORMAL, NULL);
    hnull = CreateFileW(L"NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa,
                        OPEN_EXISTING, 0, NULL);
    if (hlog == INVALID_HANDLE_VALUE) {
        if (hnull != INVALID_HANDLE_VALUE)
            CloseHandle(hnull);
        return -1;
    }
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = hnull != INVALID_HANDLE_VALUE ? hnull : NULL;
    si.hStdOutput = hlog;
    si.hStdError = hlog;
    ok = CreateProcessW(wexe, line, NULL, NULL, TRUE, CREATE_NO_WINDOW, NULL, NULL, &si, &pi);
    CloseHandle(hlog);
    if (hnull != INVALID_HANDLE_VALUE)
        CloseHandle(hnull);
    if (!ok)
        return -1;
    CloseHandle(pi.hThread);
    ch = calloc(1, sizeof(*ch));
    if (ch == NULL) {
        TerminateProcess(pi.hProcess, 1);
        CloseHandle(pi.hProcess);
        return -1;
    }
    ch->ch_proc = pi.hProcess;
    ch->ch_pid = pi.dwProcessId;
    {
        const char *base = exe;
        for (const char *p = exe; *p != '\0'; p++)
            if (*p == '/' || *p == '\\')
                base = p + 1;
        snprintf(ch->ch_image, sizeof(ch->ch_image), "%s", base);
    }
    *out = ch;
    return 0;
}

uint32_t bench_child_pid(const bench_child_t *ch)
{
    return ch != NULL ? (uint32_t)ch->ch_pid : 0;
}

int bench_child_running(bench_child_t *ch)
{
    return ch != NULL && WaitForSingleObject(ch->ch_proc, 0) == WAIT_TIMEOUT;
}

/* Terminates the processes and closes the handles. */
static void end_all(HANDLE *h, size_t n, uint32_t timeout_ms)
{
    for (size_t i = 0; i < n; i++) {
        TerminateProcess(h[i], 0);
        WaitForSingleObject(h[i], timeout_ms);
        CloseHandle(h[i]);
    }
}

int bench_child_stop(bench_child_t *ch, uint32_t timeout_ms)
{
    uint32_t kids[64];
    HANDLE held[64];
    size_t n, nheld = 0;

    if (ch == NULL)
        return 0;
    /*
     * The broker has no SIGTERM on Windows: it is terminated, and its hosts
     * with it (their job object kills them when the broker's handle closes;
     * Wine does not do that, so we end them too). Its hosts are opened
     * first: once the broker is gone, Wine no longer names it as their
     * parent, and a held handle keeps a pid from being reused. A last pass
     * catches a host started in between. It cannot log its final figures.
     */
    n = bench_sys_children(ch->ch_pid, ch->ch_image, kids, 64);
    for (size_t i = 0; i < n; i++) {
        HANDLE h = OpenProcess(PROCESS_TERMINATE | SYNCHRONIZE, FALSE, kids[i]);
        if (h != NULL)
            held[nheld++] = h;
    }
    TerminateProcess(ch->ch_proc, 0);
    WaitForSingleObject(ch->ch_proc, timeout_ms);
    end_all(held, nheld, timeout_ms);
    n = bench_sys_children(ch->ch_pid, ch->ch_image, kids, 64);
    nheld = 0;
    for (size_t i = 0; i < n; i++) {
        HANDLE h = OpenProcess(PROCESS_TERMINATE | SYNCHRONIZE, FALSE, kids[i]);
        if (h != NULL)
            held[nheld++] = h;
    }
    end_all(held, nheld, timeout_ms);
    CloseHandle(ch->ch_proc);
    free(ch);
    return 0;
}

size_t bench_sys_children(uint32_t pid, const char *image, uint32_t *out, size_t max)
{
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
    PROCESSENTRY32W pe;
    wchar_t wimage[MAX_PATH];
    size_t n = 0;

    if (snap == INVALID_HANDLE_VALUE)
        return 0;
    if (image != NULL && !to_wide(image, wimage, MAX_PATH))
        image = NULL;
    pe.dwSize = sizeof(pe);
    if (Process32FirstW(snap, &pe)) {
        do {
            if (pe.th32ParentProcessID != pid || pe.th32ProcessID == pid || n >= max)
                continue;
            /* Not the console host or other helpers the system may start. */
            if (image != NULL && _wcsicmp(pe.szExeFile, wimage) != 0)
                continue;
            out[n++] = pe.th32ProcessID;
        } while (Process32NextW(snap, &pe));
    }
    CloseHandle(snap);
    return n;
}

static uint64_t ft_ns(const FILETIME *f)
{
    ULARGE_INTEGER v;

    v.LowPart = f->dwLowDateTime;
    v.HighPart = f->dwHighDateTime;
    return v.QuadPart * 100u;
}

int bench_sys_procstat(uint32_t pid, bench_procstat_t *st)
{
    HANDLE h =
        pid == 0 ? GetCurrentProcess() : OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    FILETIME c, e, k, u;
    PROCESS_MEMORY_COUNTERS pmc;
    int rc = -1;

    memset(st, 0, sizeof(*st));
    if (h == NULL)
        return -1;
    if (GetProcessTimes(h, &c, &e, &k, &u)) {
        st->ps_cpu_ns = ft_ns(&k) + ft_ns(&u);
        rc = 0;
    }
    memset(&pmc, 0, sizeof(pmc));
    if (GetProcessMemoryInfo(h, &pmc, sizeof(pmc))) {
        st->ps_rss_kb = pmc.WorkingSetSize / 1024u;
        st->ps_peak_kb = pmc.PeakWorkingSetSize / 1024u;
    }
    if (pid != 0)
        CloseHandle(h);
    return rc;
}

int bench_sys_reset_peak(void)
{
    return 0; /* PeakWorkingSetSize cannot be reset. */
}

int bench_sys_is_wine(void)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");

    return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
}

int bench_sys_pin(const char *cpus)
{
    DWORD_PTR mask = 0;
    const char *p = cpus;

    while (*p != '\0') {
        char *end;
        unsigned long lo = strtoul(p, &end, 10), hi = lo;
        if (end == p)
            return -1;
        if (*end == '-')
            hi = strtoul(end + 1, &end, 10);
        for (unsigned long i = lo; i <= hi && i < sizeof(mask) * 8; i++)
            mask |= (DWORD_PTR)1 << i;
        p = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0')
            return -1;
    }
    /* Child processes inherit the affinity mask. */
    return SetProcessAffinityMask(GetCurrentProcess(), mask) ? 0 : -1;
}

void bench_sys_machine(char *out, size_t cap, unsigned *ncpu)
{
    SYSTEM_INFO si;
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    const char *(*wine_version)(void) = NULL;
    FARPROC fp = ntdll != NULL ? GetProcAddress(ntdll, "wine_get_version") : NULL;

    GetSystemInfo(&si);
    *ncpu = si.dwNumberOfProcessors;
    if (fp != NULL) {
        memcpy(&wine_version, &fp, sizeof(wine_version));
        snprintf(out, cap, "Windows API under Wine %s, %u CPUs", wine_version(), *ncpu);
    } else {
        snprintf(out, cap, "Windows, %u CPUs", *ncpu);
    }
}

double bench_sys_loadavg(void)
{
    return -1;
}

char *bench_sys_read_file(const char *path, size_t *len)
{
    wchar_t wpath[MAX_PATH];
    HANDLE h;
    LARGE_INTEGER size;
    DWORD got = 0;
    char *buf;

    if (!to_wide(path, wpath, MAX_PATH))
        return NULL;
    /* Share everything: the broker may still be appending to its log. */
    h = CreateFileW(wpath, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                    NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return NULL;
    if (!GetFileSizeEx(h, &size) || size.QuadPart > 64 * 1024 * 1024) {
        CloseHandle(h);
        return NULL;
    }
    buf = malloc((size_t)size.QuadPart + 1);
    if (buf != NULL && size.QuadPart > 0 && !ReadFile(h, buf, (DWORD)size.QuadPart, &got, NULL))
        got = 0;
    CloseHandle(h);
    if (buf == NULL)
        return NULL;
    buf[got] = '\0';
    if (len != NULL)
        *len = got;
    return buf;
}

int bench_sys_write_file(const char *path, const char *text)
{
    wchar_t wpath[MAX_PATH];
    HANDLE h;
    DWORD n = 0, len = (DWORD)strlen(text);
    BOOL ok;

    if (!to_wide(path, wpath, MAX_PATH))
        return -1;
    h = CreateFileW(wpath, GENERIC_WRITE, FILE_SHARE_READ, NULL, CREATE_ALWAYS,
                    FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return -1;
    ok = len == 0 || (WriteFile(h, text, len, &n, NULL) && n == len);
    CloseHandle(h);
    return ok ? 0 : -1;
}
