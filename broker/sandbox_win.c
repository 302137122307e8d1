/*
 * sandbox_win.c — plugin hosts on Windows: one job object per host (kill on
 * close, one active process, a memory cap, no UI, die on an unhandled
 * exception), the host's own token and mitigation policies, and the
 * committed memory of a host as the supervisor polls it.
 *
 * The token: uv_spawn cannot start a process with another token, and the
 * broker keeps libuv's process handle (exit callback, kill). So the host
 * restricts itself, before any plugin code is loaded: every privilege but
 * SeChangeNotifyPrivilege is removed from its primary token for good
 * (SE_PRIVILEGE_REMOVED), and the token's integrity level is lowered to
 * Low. The difference from a token made by CreateRestrictedToken and given
 * at creation: the host's own start-up code (ours, up to HostLoad) runs
 * with the broker's full token, and handles it opened then (its channel and
 * stdio) stay usable; no restricting SIDs are added. From then on the plugin
 * runs at low integrity: it cannot write to the broker's pipes, open the
 * broker's process for anything but limited queries, or write files and
 * registry keys not labelled low, and it holds no privilege.
 * Mitigation policies that ordinary callout DLLs live with: strict handle
 * checks, no images from remote shares or with a low label (nothing the
 * plugin itself could have dropped), no legacy extension points (AppInit
 * DLLs and the like), and the current directory out of the DLL search path.
 *
 * Wine accepts the job but does not enforce its memory limit (the
 * supervisor also polls, host.c) nor its active process limit; it removes
 * privileges, but keeps the integrity level (and does not enforce
 * integrity levels anyway). The host says so in its log.
 */
#include "platform.h"

#include <windows.h>
#include <psapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcb_os.h"

void *sandbox_job_attach(uv_process_t *proc, uint32_t memory_mb, char *err, size_t errlen)
{
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION lim;
    JOBOBJECT_BASIC_UI_RESTRICTIONS ui;
    HANDLE job;

    if (errlen > 0)
        err[0] = '\0';
    job = CreateJobObjectW(NULL, NULL);
    if (job == NULL) {
        snprintf(err, errlen, "CreateJobObject failed, error %lu", GetLastError());
        return NULL;
    }
    memset(&lim, 0, sizeof(lim));
    lim.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE |
                                           JOB_OBJECT_LIMIT_ACTIVE_PROCESS |
                                           JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
    lim.BasicLimitInformation.ActiveProcessLimit = 1;
    if (memory_mb > 0) {
        lim.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_PROCESS_MEMORY;
        lim.ProcessMemoryLimit = (SIZE_T)memory_mb * 1024u * 1024u;
    }
    if (!SetInformationJobObject(job, JobObjectExtendedLimitInformation, &lim, sizeof(lim))) {
        snprintf(err, errlen, "SetInformationJobObject failed, error %lu", GetLastError());
        CloseHandle(job);
        return NULL;
    }
    memset(&ui, 0, sizeof(ui));
    ui.UIRestrictionsClass = JOB_OBJECT_UILIMIT_DESKTOP | JOB_OBJECT_UILIMIT_DISPLAYSETTINGS |
                             JOB_OBJECT_UILIMIT_EXITWINDOWS | JOB_OBJECT_UILIMIT_GLOBALATOMS |
                             JOB_OBJECT_UILIMIT_HANDLES | JOB_OBJECT_UILIMIT_READCLIPBOARD |
                             JOB_OBJECT_UILIMIT_SYSTEMPARAMETERS |
                             JOB_OBJECT_UILIMIT_WRITECLIPBOARD;
    /* UI limits are a nicety: Wine may not know all of them. */
    SetInformationJobObject(job, JobObjectBasicUIRestrictions, &ui, sizeof(ui));
    if (!AssignProcessToJobObject(job, proc->process_handle)) {
        snprintf(err, errlen, "AssignProcessToJobObject failed, error %lu", GetLastError());
        CloseHandle(job);
        return NULL;
    }
    return job;
}

void sandbox_job_close(void *job)
{
    if (job != NULL)
        CloseHandle((HANDLE)job);
}

int sandbox_job_memory_hit(void *job, uint32_t memory_mb)
{
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION lim;

    if (job == NULL || memory_mb == 0)
        return 0;
    if (!QueryInformationJobObject((HANDLE)job, JobObjectExtendedLimitInformation, &lim,
                                   sizeof(lim), NULL))
        return 0;
    return lim.PeakProcessMemoryUsed + 1024u * 1024u >= (SIZE_T)memory_mb * 1024u * 1024u;
}

int sandbox_proc_memory(uint32_t pid, uint64_t *bytes)
{
    PROCESS_MEMORY_COUNTERS_EX pmc;
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_VM_READ, FALSE, pid);
    BOOL ok;

    if (h == NULL)
        h = OpenProcess(PROCESS_QUERY_INFORMATION | PROCESS_VM_READ, FALSE, pid);
    if (h == NULL)
        return UV_EPERM;
    memset(&pmc, 0, sizeof(pmc));
    ok = GetProcessMemoryInfo(h, (PROCESS_MEMORY_COUNTERS *)&pmc, sizeof(pmc));
    CloseHandle(h);
    if (!ok)
        return UV_EIO;
    /* Committed private memory is what the job limit counts; take the larger of the two. */
    *bytes = pmc.PrivateUsage > pmc.WorkingSetSize ? pmc.PrivateUsage : pmc.WorkingSetSize;
    return 0;
}

static LONG WINAPI crash_filter(EXCEPTION_POINTERS *ep)
{
    DWORD code = ep->ExceptionRecord->ExceptionCode;
    char line[160];
    DWORD n;

    /*
     * An unhandled exception in plugin code: say so on stderr (the broker
     * logs it) and end at once with the exception code, instead of waiting
     * for a debugger or an error-reporting dialog.
     */
    n = (DWORD)snprintf(line, sizeof(line),
                        "dcb-host: unhandled exception 0x%08lX at %p; host exits\r\n",
                        (unsigned long)code, ep->ExceptionRecord->ExceptionAddress);
    WriteFile(GetStdHandle(STD_ERROR_HANDLE), line, n, &n, NULL);
    TerminateProcess(GetCurrentProcess(), code);
    return EXCEPTION_EXECUTE_HANDLER;
}

void sandbox_supervisor_init(void)
{
    /* Nothing: the hosts' low integrity keeps them away from the broker's process. */
}

void sandbox_host_early(void)
{
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX | SEM_NOOPENFILEERRORBOX);
    SetUnhandledExceptionFilter(crash_filter);
}

static HANDLE broker_process;

static DWORD WINAPI broker_watch(LPVOID arg)
{
    (void)arg;
    WaitForSingleObject(broker_process, INFINITE);
    /* No DLL detach (the plugin's code could hang in it): gone at once. */
    TerminateProcess(GetCurrentProcess(), 1);
    return 0;
}

void sandbox_host_tie(uint32_t broker_pid)
{
    HANDLE t;

    if (broker_pid == 0)
        return;
    /* Only SYNCHRONIZE: enough to wait on, nothing a plugin could use against the broker. */
    broker_process = OpenProcess(SYNCHRONIZE, FALSE, broker_pid);
    if (broker_process == NULL)
        TerminateProcess(GetCurrentProcess(), 1); /* The broker is already gone. */
    t = CreateThread(NULL, 64 * 1024, broker_watch, NULL, STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
    if (t != NULL)
        CloseHandle(t);
}

/* Removes every privilege but SeChangeNotifyPrivilege (path traversal) for good. */
static int drop_privileges(HANDLE tok, int *removed, char *err, size_t errlen)
{
    LUID keep;
    TOKEN_PRIVILEGES *tp;
    DWORD len = 0;

    *removed = 0;
    GetTokenInformation(tok, TokenPrivileges, NULL, 0, &len);
    tp = malloc(len ? len : sizeof(*tp));
    if (tp == NULL || !GetTokenInformation(tok, TokenPrivileges, tp, len, &len)) {
        snprintf(err, errlen, "cannot read the host's privileges (error %lu)", GetLastError());
        free(tp);
        return -1;
    }
    LookupPrivilegeValueW(NULL, SE_CHANGE_NOTIFY_NAME, &keep);
    for (DWORD i = 0; i < tp->PrivilegeCount; i++) {
        LUID l = tp->Privileges[i].Luid;
        if (l.LowPart == keep.LowPart && l.HighPart == keep.HighPart) {
            tp->Privileges[i].Attributes = SE_PRIVILEGE_ENABLED;
            continue;
        }
        tp->Privileges[i].Attributes = SE_PRIVILEGE_REMOVED;
        (*removed)++;
    }
    if (!AdjustTokenPrivileges(tok, FALSE, tp, 0, NULL, NULL) ||
        GetLastError() == ERROR_NOT_ALL_ASSIGNED) {
        snprintf(err, errlen, "cannot remove the host's privileges (error %lu)", GetLastError());
        free(tp);
        return -1;
    }
    free(tp);
    return 0;
}

/* The token's integrity level RID (0x1000 low, 0x2000 medium, 0x3000 high, 0x4000 system). */
static DWORD token_integrity(HANDLE tok)
{
    union {
        TOKEN_MANDATORY_LABEL tml;
        BYTE raw[sizeof(TOKEN_MANDATORY_LABEL) + SECURITY_MAX_SID_SIZE];
    } u;
    DWORD len = 0;

    if (!GetTokenInformation(tok, TokenIntegrityLevel, &u, sizeof(u), &len))
        return 0;
    return *GetSidSubAuthority(u.tml.Label.Sid, *GetSidSubAuthorityCount(u.tml.Label.Sid) - 1u);
}

static int lower_integrity(HANDLE tok, char *err, size_t errlen)
{
    BYTE low[SECURITY_MAX_SID_SIZE];
    DWORD n = sizeof(low);
    TOKEN_MANDATORY_LABEL tml;

    if (!CreateWellKnownSid(WinLowLabelSid, NULL, low, &n)) {
        snprintf(err, errlen, "cannot make the low integrity SID (error %lu)", GetLastError());
        return -1;
    }
    tml.Label.Sid = low;
    tml.Label.Attributes = SE_GROUP_INTEGRITY;
    if (!SetTokenInformation(tok, TokenIntegrityLevel, &tml, sizeof(tml) + GetLengthSid(low))) {
        snprintf(err, errlen, "cannot lower the host's integrity level (error %lu)",
                 GetLastError());
        return -1;
    }
    return 0;
}

static void mitigations(void)
{
    PROCESS_MITIGATION_STRICT_HANDLE_CHECK_POLICY sh;
    PROCESS_MITIGATION_IMAGE_LOAD_POLICY il;
    PROCESS_MITIGATION_EXTENSION_POINT_DISABLE_POLICY ep;
    char missing[160] = "";

    memset(&sh, 0, sizeof(sh));
    sh.RaiseExceptionOnInvalidHandleReference = 1;
    sh.HandleExceptionsPermanentlyEnabled = 1;
    if (!SetProcessMitigationPolicy(ProcessStrictHandleCheckPolicy, &sh, sizeof(sh)))
        strcat(missing, " strict-handles");
    memset(&il, 0, sizeof(il));
    il.NoRemoteImages = 1;
    il.NoLowMandatoryLabelImages = 1;
    if (!SetProcessMitigationPolicy(ProcessImageLoadPolicy, &il, sizeof(il)))
        strcat(missing, " image-load");
    memset(&ep, 0, sizeof(ep));
    ep.DisableExtensionPoints = 1;
    if (!SetProcessMitigationPolicy(ProcessExtensionPointDisablePolicy, &ep, sizeof(ep)))
        strcat(missing, " extension-points");
    SetDllDirectoryW(L"");
    if (missing[0] != '\0')
        dcb_log(DCB_LOG_WARN, "sandbox: mitigation policies not available:%s", missing);
}

static int is_wine(void)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");

    return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
}

int sandbox_host_limits(const sandbox_opts_t *o, char *err, size_t errlen)
{
    HANDLE tok = NULL;
    DWORD il;
    int removed = 0;

    /* The supervisor's job object carries the memory cap and the process limit. */
    if (errlen > 0)
        err[0] = '\0';
    if (o->so_user != NULL || o->so_write_paths != NULL)
        dcb_log(DCB_LOG_INFO, "sandbox: host_user and write_paths are Linux settings; on "
                              "Windows the host runs at low integrity instead");
    mitigations();
    if (!OpenProcessToken(GetCurrentProcess(),
                          TOKEN_QUERY | TOKEN_ADJUST_PRIVILEGES | TOKEN_ADJUST_DEFAULT, &tok)) {
        snprintf(err, errlen, "cannot open the host's token (error %lu)", GetLastError());
        return -1;
    }
    if (drop_privileges(tok, &removed, err, errlen) != 0 ||
        lower_integrity(tok, err, errlen) != 0) {
        CloseHandle(tok);
        return -1;
    }
    il = token_integrity(tok);
    CloseHandle(tok);
    if (il > SECURITY_MANDATORY_LOW_RID && is_wine())
        dcb_log(DCB_LOG_INFO,
                "sandbox: %d privileges removed; the integrity level stayed 0x%04lX: Wine does "
                "not lower a running process's token (and enforces no integrity levels)",
                removed, il);
    else if (il > SECURITY_MANDATORY_LOW_RID)
        dcb_log(DCB_LOG_WARN, "sandbox: the integrity level stayed 0x%04lX, not low (0x1000)", il);
    else
        dcb_log(DCB_LOG_INFO, "sandbox: %d privileges removed, integrity level low", removed);
    return 0;
}
