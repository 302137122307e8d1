/* escape_win.c — the escape plugin's attempts on Windows. */
#include "escape.h"

#include <windows.h>
#include <tlhelp32.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static DWORD parent_pid(void)
{
    PROCESSENTRY32W pe;
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
    DWORD self = GetCurrentProcessId(), parent = 0;

    if (snap == INVALID_HANDLE_VALUE)
        return 0;
    pe.dwSize = sizeof(pe);
    for (BOOL ok = Process32FirstW(snap, &pe); ok; ok = Process32NextW(snap, &pe))
        if (pe.th32ProcessID == self)
            parent = pe.th32ParentProcessID;
    CloseHandle(snap);
    return parent;
}

static wchar_t *widen(const char *s)
{
    static wchar_t buf[1024];

    MultiByteToWideChar(CP_UTF8, 0, s, -1, buf, 1024);
    return buf;
}

static void try_spawn(void)
{
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    wchar_t cmd[] = L"cmd.exe /c exit 3";
    BOOL in_job = FALSE;

    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    if (!CreateProcessW(NULL, cmd, NULL, NULL, FALSE, CREATE_NO_WINDOW, NULL, NULL, &si, &pi)) {
        escape_report("spawn", 0, "CreateProcess: error %lu", GetLastError());
        return;
    }
    IsProcessInJob(pi.hProcess, NULL, &in_job);
    TerminateProcess(pi.hProcess, 1);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    escape_report("spawn", 1, "CreateProcess started pid %lu; in a job: %s", pi.dwProcessId,
                  in_job ? "yes" : "no");
}

static void try_connect_broker(void)
{
    const char *pipe = escape_env("DCB_ESCAPE_PIPE");
    HANDLE h;

    if (pipe == NULL) {
        escape_report("connect-broker", 0, "DCB_ESCAPE_PIPE not set: not tried");
        return;
    }
    h = CreateFileW(widen(pipe), GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        escape_report("connect-broker", 0, "CreateFile %s: error %lu", pipe, GetLastError());
        return;
    }
    CloseHandle(h);
    escape_report("connect-broker", 1, "opened %s for reading and writing", pipe);
}

static void try_write(const char *what, const char *var)
{
    const char *path = escape_env(var);
    HANDLE h;
    DWORD done = 0;

    if (path == NULL) {
        escape_report(what, 0, "%s not set: not tried", var);
        return;
    }
    h = CreateFileW(widen(path), GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL,
                    NULL);
    if (h == INVALID_HANDLE_VALUE) {
        escape_report(what, 0, "CreateFile %s: error %lu", path, GetLastError());
        return;
    }
    WriteFile(h, "escaped\r\n", 9, &done, NULL);
    CloseHandle(h);
    escape_report(what, 1, "wrote %s", path);
}

static void try_open_broker(void)
{
    DWORD broker = parent_pid();
    HANDLE h;

    if (broker == 0) {
        escape_report("open-broker", 0, "parent process not found: not tried");
        return;
    }
    /* Opened only: never used, so a gap cannot hurt the test's broker. */
    h = OpenProcess(PROCESS_TERMINATE | PROCESS_VM_WRITE | PROCESS_VM_OPERATION, FALSE, broker);
    if (h == NULL) {
        escape_report("open-broker", 0, "OpenProcess(%lu, terminate/write): error %lu", broker,
                      GetLastError());
        return;
    }
    CloseHandle(h);
    escape_report("open-broker", 1, "opened process %lu to terminate or write it", broker);
}

static void report_token(void)
{
    union {
        TOKEN_MANDATORY_LABEL tml;
        BYTE raw[sizeof(TOKEN_MANDATORY_LABEL) + SECURITY_MAX_SID_SIZE];
    } u;
    BYTE privs[4096];
    HANDLE tok;
    DWORD len = 0, rid = 0, n = 0;

    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok)) {
        escape_report("token", 0, "OpenProcessToken: error %lu", GetLastError());
        return;
    }
    if (GetTokenInformation(tok, TokenIntegrityLevel, &u, sizeof(u), &len))
        rid = *GetSidSubAuthority(u.tml.Label.Sid, *GetSidSubAuthorityCount(u.tml.Label.Sid) - 1u);
    if (GetTokenInformation(tok, TokenPrivileges, privs, sizeof(privs), &len))
        n = ((TOKEN_PRIVILEGES *)privs)->PrivilegeCount;
    CloseHandle(tok);
    /* "allowed" here means: runs with more than low integrity or more than one privilege. */
    escape_report("token", rid > SECURITY_MANDATORY_LOW_RID || n > 1,
                  "integrity 0x%04lX, %lu privileges", rid, n);
}

static DWORD WINAPI thread_main(void *arg)
{
    *(int *)arg = 42;
    return 0;
}

static void try_thread(void)
{
    int value = 0;
    HANDLE t = CreateThread(NULL, 0, thread_main, &value, 0, NULL);

    if (t == NULL) {
        escape_report("thread", 0, "CreateThread: error %lu", GetLastError());
        return;
    }
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
    escape_report("thread", value == 42, "CreateThread and wait %s", value == 42 ? "work" : "?");
}

void escape_try_all(void)
{
    try_spawn();
    try_connect_broker();
    try_write("write-outside", "DCB_ESCAPE_OUTSIDE");
    try_write("write-inside", "DCB_ESCAPE_INSIDE");
    try_open_broker();
    report_token();
    try_thread();
}
