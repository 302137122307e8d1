/* sec_win.c — the security tests' platform pieces on Windows (and Wine). */
#include "sec.h"

#include <windows.h>
#include <aclapi.h>
#include <psapi.h>
#include <sddl.h>
#include <stdio.h>

void sec_endpoint(char *out, size_t n, const char *leaf)
{
    static int counter;

    static ULONGLONG started;

    /* Wine reuses process ids quickly: the start time keeps names apart across runs. */
    if (started == 0)
        started = GetTickCount64();
    snprintf(out, n, "\\\\.\\pipe\\dcb-sec-%lu-%llx-%d-%s", GetCurrentProcessId(),
             (unsigned long long)started, ++counter, leaf);
}

void sec_endpoints(char *pipe, char *ctl, size_t n)
{
    sec_endpoint(pipe, n, "event");
    sec_endpoint(ctl, n, "control");
}

void sec_endpoint_cleanup(const char *name)
{
    (void)name; /* A named pipe goes with its last handle. */
}

int sec_is_wine(void)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");

    return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
}

int64_t sec_rss(int pid)
{
    PROCESS_MEMORY_COUNTERS_EX pmc;
    HANDLE h = OpenProcess(PROCESS_QUERY_INFORMATION | PROCESS_VM_READ, FALSE, (DWORD)pid);
    BOOL ok;

    if (h == NULL)
        return -1;
    memset(&pmc, 0, sizeof(pmc));
    ok = GetProcessMemoryInfo(h, (PROCESS_MEMORY_COUNTERS *)&pmc, sizeof(pmc));
    CloseHandle(h);
    if (!ok)
        return -1;
    return (int64_t)(pmc.PrivateUsage > pmc.WorkingSetSize ? pmc.PrivateUsage
                                                           : pmc.WorkingSetSize);
}

void sec_raise_fd_limit(void)
{
}

void sec_native_path(const char *in, char *out, size_t n)
{
    tb_native_path(in, out, n);
}

int sec_label_low(const char *dir)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    PACL sacl = NULL;
    BOOL present = FALSE, defaulted = FALSE;
    wchar_t w[1024];
    DWORD rc;

    /* icacls DIR /setintegritylevel (OI)(CI)low */
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(L"S:(ML;OICI;NW;;;LW)",
                                                              SDDL_REVISION_1, &sd, NULL))
        return -1;
    GetSecurityDescriptorSacl(sd, &present, &sacl, &defaulted);
    MultiByteToWideChar(CP_UTF8, 0, dir, -1, w, 1024);
    rc = SetNamedSecurityInfoW(w, SE_FILE_OBJECT, LABEL_SECURITY_INFORMATION, NULL, NULL, NULL,
                               sacl);
    LocalFree(sd);
    return rc == ERROR_SUCCESS ? 0 : -1;
}
