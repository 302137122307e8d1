/*
 * service_win.c — `dcb-broker --service`: the broker under the Windows
 * service control manager (service.h has the whole sequence).
 *
 * Three threads meet here. The main thread sits in
 * StartServiceCtrlDispatcherW until the service has stopped. The SCM starts
 * the service main on a thread of its own; the broker's loop runs there,
 * inside run(). Control requests arrive on the dispatcher's thread, which
 * only reports STOP_PENDING and wakes the loop with uv_async_send: the loop
 * is single-threaded and nothing else touches it. sv_lock guards the status
 * and whether the async handle is still there to be sent to.
 *
 * A service has no console, and the C runtime's stderr has no descriptor
 * there: what run() prints before its log is set up (a configuration error)
 * would be lost. So before run() the service runs its own executable with
 * --check-config and the same arguments, reads what that prints, and when
 * the configuration is bad stops with the broker's exit status and that
 * text in an error event. Later failures are logged (file and Event Log)
 * by the broker itself.
 */
#include "service.h"

#include <windows.h>

#include <shellapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exit status for a command line that is not a service start (broker_main.c's EXIT_USAGE). */
#define SERVICE_EXIT_USAGE 2
/* Wait hint while starting: the configuration check, the event pipe, nothing slow. */
#define SERVICE_START_HINT_MS 30000u
/* What a failed configuration check keeps of its output for the event. */
#define SERVICE_CHECK_OUTPUT_MAX 3072u
/* The longest the configuration check may take. */
#define SERVICE_CHECK_TIMEOUT_MS 20000u

static struct {
    SRWLOCK sv_lock;
    SERVICE_STATUS_HANDLE sv_handle;
    SERVICE_STATUS sv_status;
    int sv_active; /* running under the SCM */
    service_run_fn sv_run;
    int sv_argc;
    char **sv_argv;
    int sv_rc;
    int sv_running; /* SERVICE_RUNNING was reported */

    /* The loop's side (service_attach). */
    uv_async_t sv_async;
    int sv_attached;
    int sv_stop_requested;
    DWORD sv_stop_control;
    uint32_t sv_stop_hint_ms;
    service_stop_fn sv_stop_cb;
    void *sv_stop_arg;

    /* What the configuration check printed. */
    char sv_check[SERVICE_CHECK_OUTPUT_MAX + 1];
    size_t sv_check_len;
    int sv_check_cut;
} sv = {.sv_lock = SRWLOCK_INIT};

/* Under sv_lock. */
static void report_locked(DWORD state, DWORD wait_hint_ms)
{
    SERVICE_STATUS *st = &sv.sv_status;

    st->dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    st->dwCurrentState = state;
    /* No control before the loop can take it, nor once it is stopping. */
    st->dwControlsAccepted =
        state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN : 0;
    st->dwWaitHint = wait_hint_ms;
    if (state == SERVICE_START_PENDING || state == SERVICE_STOP_PENDING)
        st->dwCheckPoint++;
    else
        st->dwCheckPoint = 0;
    if (sv.sv_handle != NULL)
        SetServiceStatus(sv.sv_handle, st);
}

static void report(DWORD state, DWORD wait_hint_ms)
{
    AcquireSRWLockExclusive(&sv.sv_lock);
    report_locked(state, wait_hint_ms);
    ReleaseSRWLockExclusive(&sv.sv_lock);
}

/* ---- the configuration check ----------------------------------------------- */

/* Appends arg to cmd as one argument, quoted the way CommandLineToArgvW reads it back. */
static void cmd_append(WCHAR *cmd, size_t cap, const WCHAR *arg)
{
    size_t n = wcslen(cmd), slashes = 0;

    if (n + 4 >= cap)
        return;
    if (n > 0)
        cmd[n++] = L' ';
    cmd[n++] = L'"';
    for (const WCHAR *p = arg; *p != 0 && n + 4 < cap; p++) {
        if (*p == L'\\') {
            slashes++;
        } else {
            /* Backslashes before a quote are doubled, and the quote escaped. */
            if (*p == L'"')
                for (size_t k = 0; k < slashes + 1 && n + 4 < cap; k++)
                    cmd[n++] = L'\\';
            slashes = 0;
        }
        cmd[n++] = *p;
    }
    /* Backslashes before the closing quote are doubled. */
    for (size_t k = 0; k < slashes && n + 3 < cap; k++)
        cmd[n++] = L'\\';
    cmd[n++] = L'"';
    cmd[n] = 0;
}

/*
 * Runs this executable with --check-config and the service's own arguments
 * (without --service), its stdout and stderr into sv_check. Returns its exit
 * status, or -1 when it could not be run.
 */
static int check_config(void)
{
    static WCHAR exe[MAX_PATH * 4], cmd[32768];
    SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, TRUE};
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    HANDLE rd = NULL, wr = NULL;
    LPWSTR *args;
    int nargs = 0;
    DWORD n, code = (DWORD)-1;
    char buf[512];

    if (GetModuleFileNameW(NULL, exe, MAX_PATH * 4) == 0)
        return -1;
    args = CommandLineToArgvW(GetCommandLineW(), &nargs);
    if (args == NULL)
        return -1;
    cmd[0] = 0;
    cmd_append(cmd, 32768, exe);
    cmd_append(cmd, 32768, L"--check-config");
    for (int i = 1; i < nargs; i++)
        if (wcscmp(args[i], L"--service") != 0)
            cmd_append(cmd, 32768, args[i]);
    LocalFree(args);
    /* Only the pipe's write end is inheritable: nothing else of ours leaks into the child. */
    if (!CreatePipe(&rd, &wr, &sa, 0))
        return -1;
    SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0);
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = NULL;
    si.hStdOutput = wr;
    si.hStdError = wr;
    if (!CreateProcessW(exe, cmd, NULL, NULL, TRUE, CREATE_NO_WINDOW, NULL, NULL, &si, &pi)) {
        CloseHandle(rd);
        CloseHandle(wr);
        return -1;
    }
    CloseHandle(wr);
    /* The check only parses files and prints a few lines: read to its end. */
    while (ReadFile(rd, buf, sizeof(buf), &n, NULL) && n > 0) {
        for (DWORD i = 0; i < n; i++) {
            if (buf[i] == '\r')
                continue; /* the child's text mode; the event's lines end in \n */
            if (sv.sv_check_len == SERVICE_CHECK_OUTPUT_MAX) {
                sv.sv_check_cut = 1;
                break;
            }
            sv.sv_check[sv.sv_check_len++] = buf[i];
        }
    }
    sv.sv_check[sv.sv_check_len] = '\0';
    CloseHandle(rd);
    if (WaitForSingleObject(pi.hProcess, SERVICE_CHECK_TIMEOUT_MS) != WAIT_OBJECT_0)
        TerminateProcess(pi.hProcess, 1);
    else
        GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return code == (DWORD)-1 ? -1 : (int)code;
}

/* ---- the loop's side ------------------------------------------------------- */

static void async_cb(uv_async_t *h)
{
    DWORD control;

    (void)h;
    AcquireSRWLockShared(&sv.sv_lock);
    control = sv.sv_stop_control;
    ReleaseSRWLockShared(&sv.sv_lock);
    sv.sv_stop_cb(sv.sv_stop_arg,
                  control == SERVICE_CONTROL_SHUTDOWN ? "system shutdown" : "service stop");
}

int service_attach(uv_loop_t *loop, service_stop_fn stop, void *arg, uint32_t stop_hint_ms)
{
    int rc;

    if (!sv.sv_active)
        return 0;
    rc = uv_async_init(loop, &sv.sv_async, async_cb);
    if (rc != 0)
        return rc;
    AcquireSRWLockExclusive(&sv.sv_lock);
    sv.sv_stop_cb = stop;
    sv.sv_stop_arg = arg;
    sv.sv_stop_hint_ms = stop_hint_ms;
    sv.sv_attached = 1;
    ReleaseSRWLockExclusive(&sv.sv_lock);
    return 0;
}

void service_running(void)
{
    if (!sv.sv_active)
        return;
    AcquireSRWLockExclusive(&sv.sv_lock);
    /* A stop that came in the meantime keeps STOP_PENDING. */
    if (!sv.sv_stop_requested)
        report_locked(SERVICE_RUNNING, 0);
    sv.sv_running = 1;
    ReleaseSRWLockExclusive(&sv.sv_lock);
}

static void async_closed(uv_handle_t *h)
{
    (void)h;
}

void service_detach(void)
{
    int attached;

    if (!sv.sv_active)
        return;
    AcquireSRWLockExclusive(&sv.sv_lock);
    attached = sv.sv_attached;
    sv.sv_attached = 0;
    ReleaseSRWLockExclusive(&sv.sv_lock);
    if (attached)
        uv_close((uv_handle_t *)&sv.sv_async, async_closed);
}

/* ---- the SCM's side ------------------------------------------------------------ */

static DWORD WINAPI handler(DWORD control, DWORD type, LPVOID data, LPVOID ctx)
{
    (void)type;
    (void)data;
    (void)ctx;
    switch (control) {
    case SERVICE_CONTROL_INTERROGATE:
        return NO_ERROR;
    case SERVICE_CONTROL_STOP:
    case SERVICE_CONTROL_SHUTDOWN:
        AcquireSRWLockExclusive(&sv.sv_lock);
        if (sv.sv_attached && !sv.sv_stop_requested) {
            sv.sv_stop_requested = 1;
            sv.sv_stop_control = control;
            report_locked(SERVICE_STOP_PENDING, sv.sv_stop_hint_ms);
            /* Under the lock: service_detach cannot close the handle in between. */
            uv_async_send(&sv.sv_async);
        }
        ReleaseSRWLockExclusive(&sv.sv_lock);
        return NO_ERROR;
    default:
        return ERROR_CALL_NOT_IMPLEMENTED;
    }
}

/* A start that failed before the broker listened: say why in the Event Log. */
static void report_failed_start(int rc, const char *printed)
{
    char text[SERVICE_CHECK_OUTPUT_MAX + 1];
    size_t n;

    snprintf(text, sizeof(text), "%s", printed != NULL ? printed : "");
    n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    eventlog_start();
    if (n > 0)
        eventlog_note(DCB_LOG_ERROR,
                      "the dcb-broker service did not start (exit status %d, usage or "
                      "configuration error):\n%s%s",
                      rc, text, sv.sv_check_cut ? "\n(more output was cut)" : "");
    else
        eventlog_note(DCB_LOG_ERROR,
                      "the dcb-broker service did not start (exit status %d, %s); the events "
                      "before this one and the broker's log file say why",
                      rc,
                      rc == SERVICE_EXIT_USAGE ? "usage or configuration error" : "runtime error");
    eventlog_stop();
}

static void WINAPI service_main(DWORD n, LPWSTR *args)
{
    const WCHAR *name = n > 0 && args[0] != NULL ? args[0] : L"dcb-broker";
    int rc;

    sv.sv_handle = RegisterServiceCtrlHandlerExW(name, handler, NULL);
    if (sv.sv_handle == NULL) {
        /* Nothing to report to: the SCM times the start out. */
        sv.sv_rc = 1;
        return;
    }
    report(SERVICE_START_PENDING, SERVICE_START_HINT_MS);
    rc = check_config();
    if (rc == SERVICE_EXIT_USAGE) {
        report_failed_start(rc, sv.sv_check);
    } else {
        /* A check that could not run proves nothing: the broker checks again itself. */
        report(SERVICE_START_PENDING, SERVICE_START_HINT_MS);
        rc = sv.sv_run(sv.sv_argc, sv.sv_argv);
        if (!sv.sv_running && rc != 0)
            report_failed_start(rc, NULL);
    }
    sv.sv_rc = rc;

    AcquireSRWLockExclusive(&sv.sv_lock);
    sv.sv_status.dwWin32ExitCode = rc == 0 ? NO_ERROR : ERROR_SERVICE_SPECIFIC_ERROR;
    sv.sv_status.dwServiceSpecificExitCode = (DWORD)rc;
    /* The last thing: after STOPPED the process may be ended at any moment. */
    report_locked(SERVICE_STOPPED, 0);
    ReleaseSRWLockExclusive(&sv.sv_lock);
}

int service_dispatch(int argc, char **argv, service_run_fn run)
{
    static WCHAR name[] = L"dcb-broker";
    SERVICE_TABLE_ENTRYW table[] = {{name, service_main}, {NULL, NULL}};
    char **args = calloc((size_t)argc + 2, sizeof(*args));
    int n = 0;

    if (args == NULL)
        return 1;
    /* The foreground command line, with the Event Log on. */
    for (int i = 0; i < argc; i++)
        if (i == 0 || strcmp(argv[i], "--service") != 0)
            args[n++] = argv[i];
    args[n++] = (char *)"--event-log";
    sv.sv_argc = n;
    sv.sv_argv = args;
    sv.sv_run = run;
    sv.sv_active = 1;
    if (!StartServiceCtrlDispatcherW(table)) {
        DWORD err = GetLastError();
        if (err == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT)
            fprintf(stderr, "dcb-broker: --service: not started by the service control manager "
                            "(start the service with `sc start dcb-broker`; to run in the "
                            "foreground, leave out --service)\n");
        else
            fprintf(stderr,
                    "dcb-broker: --service: StartServiceCtrlDispatcher failed (error %lu)\n",
                    (unsigned long)err);
        free(args);
        return SERVICE_EXIT_USAGE;
    }
    free(args);
    return sv.sv_rc;
}
