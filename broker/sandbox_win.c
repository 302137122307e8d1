/*
 * sandbox_win.c — host limits on Windows: one job object per host (kill on
 * close, one active process, a memory cap, no UI, die on an unhandled
 * exception), and the committed memory of a host as the supervisor polls it.
 *
 * Wine accepts the job but does not enforce its memory limit, which is why
 * the supervisor also polls (host.c); restricted tokens and integrity levels
 * are the hardening issue's.
 */
#include "platform.h"

#include <windows.h>
#include <psapi.h>
#include <stdio.h>

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

void sandbox_host_early(void)
{
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX | SEM_NOOPENFILEERRORBOX);
    SetUnhandledExceptionFilter(crash_filter);
}

void sandbox_host_limits(uint32_t memory_mb, char *note, size_t notelen)
{
    /* The supervisor's job object carries the limits on Windows. */
    (void)memory_mb;
    if (notelen > 0)
        note[0] = '\0';
}
