/*
 * test_deploy_win.c — dcb deployed the way an administrator deploys it, on
 * the real registry and service control manager (Wine's, in a Wine prefix
 * of its own; or a Windows test machine):
 *
 *   1. a DHCP Server's Parameters key with two vendor callouts (macfilter,
 *      noop) in CalloutDlls; every value recorded, raw;
 *   2. the package's files copied to C:\Program Files\dcb and the vendor
 *      DLLs to C:\Vendor Callouts; `dcbctl install` from the install folder;
 *   3. StartServiceW; RUNNING once the event pipe listens;
 *   4. `dcb-sim --registry` loads the shim from the CalloutDlls that install
 *      wrote (shim first, the vendors after it) and drives traffic through
 *      the service-hosted broker: the per-packet record must equal the one
 *      of the same traffic with the vendors in process (macfilter's drops,
 *      byte-identical replies), and the broker's log shows the shim, the
 *      chain the shim named, and one host per plugin;
 *   5. the Event Log: what reaches ReportEventW (Wine prints it on its
 *      eventlog debug channel; Windows keeps it in the Application log);
 *   6. SERVICE_CONTROL_STOP: STOP_PENDING with a wait hint, then STOPPED with
 *      exit code 0, the broker and its hosts gone, the log's clean end;
 *   7. a crash of the service's process: whether recovery restarts it;
 *   8. `dcbctl uninstall`: every Parameters value back byte for byte (types,
 *      raw bytes, absence), the service and dcb's keys gone;
 *   9. once more with CalloutDlls and CalloutEnabled absent before install.
 *
 * What Wine cannot show (a service account: Wine runs every service as the
 * logged-on user; the Event Log's contents; recovery actions), the test
 * says on stdout, lines starting "deploy: wine:", and checks what it can.
 * The DHCP Server's key is left as the test found it.
 */
#include <windows.h>

#include <sddl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include <cjson/cJSON.h>

#define VIEW KEY_WOW64_64KEY
#define DHCP_KEY L"SYSTEM\\CurrentControlSet\\Services\\DHCPServer"
#define PARAMS_KEY DHCP_KEY L"\\Parameters"
#define DCB_KEY L"SOFTWARE\\dcb"
#define SOURCE_KEY L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\dcb"
#define SHIM_KEY L"SYSTEM\\CurrentControlSet\\Services\\dcb"
#define SERVICE L"dcb-broker"
#define PIPE L"\\\\.\\pipe\\dcb-broker"

#define INST_DIR L"C:\\Program Files\\dcb"
#define VENDOR_DIR L"C:\\Vendor Callouts"
#define DATA_DIR L"C:\\ProgramData\\dcb data" /* a space: every command line must quote it */

/*
 * Packets per traffic run; the seed makes both runs the same traffic. A
 * steady rate: the shim connects on its own thread after START, and the
 * packets before that get its default at once (fail-open), as designed.
 */
#define SIM_COUNT 2000
#define SIM_COUNT_W L"2000"
#define SIM_SEED L"7"
#define SIM_RATE L"1000"

static int failures;
static int on_wine;

/* ---- output ----------------------------------------------------------------- */

static void note(const char *fmt, ...)
{
    va_list ap;

    printf("deploy: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static int check_(int ok, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;

    if (ok)
        return 1;
    failures++;
    printf("deploy: FAIL (line %d: %s): ", line, expr);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return 0;
}
#define CHECK(cond, ...) check_((cond) ? 1 : 0, __LINE__, #cond, __VA_ARGS__)

/* UTF-8 of a wide string, in a rotating static buffer (for printing). */
static const char *u8(const WCHAR *w)
{
    static char bufs[8][2048];
    static int next;
    char *b = bufs[next++ % 8];

    if (WideCharToMultiByte(CP_UTF8, 0, w, -1, b, (int)sizeof(bufs[0]), NULL, NULL) <= 0)
        snprintf(b, sizeof(bufs[0]), "?");
    return b;
}

/* ---- files -------------------------------------------------------------------- */

static void path_join(WCHAR *out, size_t cap, const WCHAR *dir, const WCHAR *name)
{
    swprintf(out, cap, L"%ls\\%ls", dir, name);
}

static int write_text(const WCHAR *path, const char *text)
{
    HANDLE f = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    DWORD n = 0;
    BOOL ok;

    if (f == INVALID_HANDLE_VALUE)
        return -1;
    ok = WriteFile(f, text, (DWORD)strlen(text), &n, NULL);
    CloseHandle(f);
    return ok && n == strlen(text) ? 0 : -1;
}

/* The whole file, NUL-terminated, malloc'd; NULL when it cannot be read. */
static char *read_text(const WCHAR *path)
{
    HANDLE f =
        CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                    NULL, OPEN_EXISTING, 0, NULL);
    LARGE_INTEGER size;
    char *buf;
    DWORD n = 0;

    if (f == INVALID_HANDLE_VALUE)
        return NULL;
    if (!GetFileSizeEx(f, &size) || size.QuadPart > 64 * 1024 * 1024) {
        CloseHandle(f);
        return NULL;
    }
    buf = malloc((size_t)size.QuadPart + 1);
    if (buf != NULL && !ReadFile(f, buf, (DWORD)size.QuadPart, &n, NULL))
        n = 0;
    CloseHandle(f);
    if (buf != NULL)
        buf[n] = '\0';
    return buf;
}

static int count_of(const char *text, const char *needle)
{
    int n = 0;

    for (const char *p = text; p != NULL && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* The next line of *p (cut in place), or NULL at the end. */
static char *next_line(char **p)
{
    char *line = *p, *nl;

    if (line == NULL || *line == '\0')
        return NULL;
    nl = strchr(line, '\n');
    if (nl != NULL) {
        *nl = '\0';
        *p = nl + 1;
    } else {
        *p = line + strlen(line);
    }
    return line;
}

/* Deletes a folder and everything in it (the test's own folders only). */
static void remove_tree(const WCHAR *dir)
{
    WCHAR pattern[MAX_PATH * 2], path[MAX_PATH * 2];
    WIN32_FIND_DATAW fd;
    HANDLE h;

    path_join(pattern, MAX_PATH * 2, dir, L"*");
    h = FindFirstFileW(pattern, &fd);
    if (h != INVALID_HANDLE_VALUE) {
        do {
            if (wcscmp(fd.cFileName, L".") == 0 || wcscmp(fd.cFileName, L"..") == 0)
                continue;
            path_join(path, MAX_PATH * 2, dir, fd.cFileName);
            if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
                remove_tree(path);
            else
                DeleteFileW(path);
        } while (FindNextFileW(h, &fd));
        FindClose(h);
    }
    RemoveDirectoryW(dir);
}

/* ---- processes ------------------------------------------------------------------- */

/*
 * The current environment with env's "NAME=VALUE" entries (UTF-8) added,
 * replacing variables of the same name. malloc'd.
 */
static WCHAR *env_block(const char *const *env)
{
    static WCHAR add[32][2048];
    WCHAR *cur = GetEnvironmentStringsW(), *blk;
    size_t cap = 0, len = 0;
    int n_add = 0;

    for (const WCHAR *p = cur; *p != 0; p += wcslen(p) + 1)
        cap += wcslen(p) + 1;
    for (; env != NULL && env[n_add] != NULL && n_add < 32; n_add++) {
        MultiByteToWideChar(CP_UTF8, 0, env[n_add], -1, add[n_add], 2048);
        cap += wcslen(add[n_add]) + 1;
    }
    blk = malloc((cap + 2) * sizeof(WCHAR));
    if (blk == NULL)
        abort();
    for (const WCHAR *p = cur; *p != 0; p += wcslen(p) + 1) {
        int replaced = 0;
        for (int i = 0; i < n_add && !replaced; i++) {
            const WCHAR *eq = wcschr(add[i], L'=');
            size_t nl = (size_t)(eq - add[i]);
            replaced = _wcsnicmp(p, add[i], nl) == 0 && p[nl] == L'=';
        }
        if (replaced)
            continue;
        wcscpy(blk + len, p);
        len += wcslen(p) + 1;
    }
    for (int i = 0; i < n_add; i++) {
        wcscpy(blk + len, add[i]);
        len += wcslen(add[i]) + 1;
    }
    blk[len] = 0;
    FreeEnvironmentStringsW(cur);
    return blk;
}

static HANDLE open_out(const WCHAR *path)
{
    SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, TRUE};

    if (path == NULL)
        path = L"NUL";
    return CreateFileW(path, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, CREATE_ALWAYS,
                       0, NULL);
}

/*
 * Runs cmdline (stdout and stderr to the files named, or NUL) and waits at
 * most timeout_ms. Returns its exit code, or -1 (not started, or killed at
 * the timeout).
 */
static long run(const WCHAR *cmdline, const char *const *env, const WCHAR *out, const WCHAR *err,
                DWORD timeout_ms)
{
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    WCHAR *cmd = _wcsdup(cmdline), *blk = env_block(env);
    DWORD code = (DWORD)-1;
    BOOL ok;

    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = INVALID_HANDLE_VALUE;
    si.hStdOutput = open_out(out);
    si.hStdError = open_out(err);
    ok = CreateProcessW(NULL, cmd, NULL, NULL, TRUE, CREATE_UNICODE_ENVIRONMENT, blk, NULL, &si,
                        &pi);
    CloseHandle(si.hStdOutput);
    CloseHandle(si.hStdError);
    free(cmd);
    free(blk);
    if (!ok) {
        note("cannot start %s (error %lu)", u8(cmdline), GetLastError());
        return -1;
    }
    if (WaitForSingleObject(pi.hProcess, timeout_ms) != WAIT_OBJECT_0) {
        note("%s: still running after %lu ms; killed", u8(cmdline), timeout_ms);
        TerminateProcess(pi.hProcess, 255);
        WaitForSingleObject(pi.hProcess, 5000);
    } else {
        GetExitCodeProcess(pi.hProcess, &code);
    }
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return code == (DWORD)-1 ? -1 : (long)code;
}

/* Prints a file's text, indented (what a failed step left behind). */
static void show_file(const char *what, const WCHAR *path)
{
    char *t = read_text(path);

    note("---- %s (%s) ----", what, u8(path));
    for (char *p = t, *line; (line = next_line(&p)) != NULL;)
        printf("    %s\n", line);
    fflush(stdout);
    free(t);
}

static int process_gone(DWORD pid, DWORD wait_ms)
{
    HANDLE h = OpenProcess(SYNCHRONIZE, FALSE, pid);
    DWORD r;

    if (h == NULL)
        return 1;
    r = WaitForSingleObject(h, wait_ms);
    CloseHandle(h);
    return r == WAIT_OBJECT_0;
}

/* ---- registry ----------------------------------------------------------------- */

typedef struct rv {
    WCHAR rv_name[256];
    DWORD rv_type;
    DWORD rv_size;
    BYTE *rv_data;
} rv_t;

typedef struct snap {
    int sn_exists;
    DWORD sn_subkeys;
    DWORD sn_n;
    rv_t *sn_v;
} snap_t;

/* Every value of a key, raw. */
static void snap_take(const WCHAR *key, snap_t *s)
{
    HKEY k;
    DWORD n = 0, maxname = 0, maxdata = 0;

    memset(s, 0, sizeof(*s));
    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, key, 0, KEY_READ | VIEW, &k) != ERROR_SUCCESS)
        return;
    s->sn_exists = 1;
    RegQueryInfoKeyW(k, NULL, NULL, NULL, &s->sn_subkeys, NULL, NULL, &n, &maxname, &maxdata, NULL,
                     NULL);
    s->sn_v = calloc(n + 1, sizeof(*s->sn_v));
    for (DWORD i = 0; i < n; i++) {
        rv_t *v = &s->sn_v[s->sn_n];
        DWORD nl = 256, ds = maxdata + 16;
        v->rv_data = malloc(ds);
        if (RegEnumValueW(k, i, v->rv_name, &nl, NULL, &v->rv_type, v->rv_data, &ds) !=
            ERROR_SUCCESS) {
            free(v->rv_data);
            continue;
        }
        v->rv_size = ds;
        s->sn_n++;
    }
    RegCloseKey(k);
}

static void snap_free(snap_t *s)
{
    for (DWORD i = 0; i < s->sn_n; i++)
        free(s->sn_v[i].rv_data);
    free(s->sn_v);
    memset(s, 0, sizeof(*s));
}

static const rv_t *snap_find(const snap_t *s, const WCHAR *name)
{
    for (DWORD i = 0; i < s->sn_n; i++)
        if (_wcsicmp(s->sn_v[i].rv_name, name) == 0)
            return &s->sn_v[i];
    return NULL;
}

static void print_value(const char *label, const rv_t *v)
{
    printf("deploy:     %s: ", label);
    if (v == NULL) {
        printf("(absent)\n");
        return;
    }
    printf("type %lu, %lu bytes:", v->rv_type, v->rv_size);
    for (DWORD i = 0; i < v->rv_size && i < 96; i++)
        printf(" %02x", v->rv_data[i]);
    printf("%s\n", v->rv_size > 96 ? " ..." : "");
}

/* Whether two snapshots hold the same values, byte for byte; prints what differs. */
static int snap_same(const snap_t *a, const snap_t *b, const char *what)
{
    int same = a->sn_exists == b->sn_exists && a->sn_n == b->sn_n && a->sn_subkeys == b->sn_subkeys;

    if (a->sn_exists != b->sn_exists)
        note("%s: the key %s", what, a->sn_exists ? "is gone" : "exists now");
    if (a->sn_subkeys != b->sn_subkeys)
        note("%s: %lu subkeys before, %lu now", what, a->sn_subkeys, b->sn_subkeys);
    for (int pass = 0; pass < 2; pass++) {
        const snap_t *x = pass == 0 ? a : b, *y = pass == 0 ? b : a;
        for (DWORD i = 0; i < x->sn_n; i++) {
            const rv_t *v = &x->sn_v[i], *w = snap_find(y, v->rv_name);
            if (w != NULL && (pass == 1 || (w->rv_type == v->rv_type && w->rv_size == v->rv_size &&
                                            memcmp(w->rv_data, v->rv_data, v->rv_size) == 0)))
                continue;
            same = 0;
            note("%s: value %s differs", what, u8(v->rv_name));
            print_value("before", pass == 0 ? v : w);
            print_value("after ", pass == 0 ? w : v);
        }
    }
    return same;
}

static int key_exists(const WCHAR *key)
{
    HKEY k;

    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, key, 0, KEY_READ | VIEW, &k) != ERROR_SUCCESS)
        return 0;
    RegCloseKey(k);
    return 1;
}

static LSTATUS set_value(const WCHAR *key, const WCHAR *name, DWORD type, const void *data,
                         DWORD size)
{
    HKEY k;
    LSTATUS st =
        RegCreateKeyExW(HKEY_LOCAL_MACHINE, key, 0, NULL, 0, KEY_SET_VALUE | VIEW, NULL, &k, NULL);

    if (st != ERROR_SUCCESS)
        return st;
    st = RegSetValueExW(k, name, 0, type, data, size);
    RegCloseKey(k);
    return st;
}

static void delete_value(const WCHAR *key, const WCHAR *name)
{
    HKEY k;

    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, key, 0, KEY_SET_VALUE | VIEW, &k) != ERROR_SUCCESS)
        return;
    RegDeleteValueW(k, name);
    RegCloseKey(k);
}

/* A MULTI_SZ of the given strings (NULL-terminated list). */
static DWORD multisz(const WCHAR *const *items, WCHAR *out, size_t cap)
{
    size_t len = 0;

    for (size_t i = 0; items[i] != NULL; i++) {
        size_t n = wcslen(items[i]) + 1;
        if (len + n + 1 > cap)
            break;
        memcpy(out + len, items[i], n * sizeof(WCHAR));
        len += n;
    }
    out[len++] = 0;
    return (DWORD)(len * sizeof(WCHAR));
}

/* ---- the service -------------------------------------------------------------- */

/* The service's status; 0 when it does not exist. */
static DWORD svc_query(SERVICE_STATUS_PROCESS *sp)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT), svc;
    DWORD need = 0, state = 0;

    memset(sp, 0, sizeof(*sp));
    if (scm == NULL)
        return 0;
    svc = OpenServiceW(scm, SERVICE, SERVICE_QUERY_STATUS);
    if (svc != NULL) {
        if (QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)sp, sizeof(*sp), &need))
            state = sp->dwCurrentState;
        CloseServiceHandle(svc);
    }
    CloseServiceHandle(scm);
    return state;
}

static const char *state_name(DWORD s)
{
    switch (s) {
    case 0:
        return "(no service)";
    case SERVICE_STOPPED:
        return "STOPPED";
    case SERVICE_START_PENDING:
        return "START_PENDING";
    case SERVICE_STOP_PENDING:
        return "STOP_PENDING";
    case SERVICE_RUNNING:
        return "RUNNING";
    default:
        return "other";
    }
}

/* Waits until the service is in state want (or gone, want 0). */
static int svc_wait(DWORD want, DWORD timeout_ms, SERVICE_STATUS_PROCESS *sp)
{
    ULONGLONG until = GetTickCount64() + timeout_ms;
    DWORD s;

    for (;;) {
        s = svc_query(sp);
        if (s == want)
            return 1;
        if (GetTickCount64() >= until)
            return 0;
        Sleep(100);
    }
}

static int svc_exists(void)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT), svc;
    int exists = 0;

    if (scm == NULL)
        return 0;
    svc = OpenServiceW(scm, SERVICE, SERVICE_QUERY_STATUS);
    if (svc != NULL) {
        exists = 1;
        CloseServiceHandle(svc);
    } else if (GetLastError() != ERROR_SERVICE_DOES_NOT_EXIST) {
        exists = 1;
    }
    CloseServiceHandle(scm);
    return exists;
}

static int svc_start(void)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT), svc;
    int ok = 0;

    if (scm == NULL)
        return 0;
    svc = OpenServiceW(scm, SERVICE, SERVICE_START);
    if (svc != NULL) {
        ok = StartServiceW(svc, 0, NULL) || GetLastError() == ERROR_SERVICE_ALREADY_RUNNING;
        if (!ok)
            note("StartServiceW: error %lu", GetLastError());
        CloseServiceHandle(svc);
    }
    CloseServiceHandle(scm);
    return ok;
}

/* Sends STOP; stores the status the control returned. */
static int svc_stop(SERVICE_STATUS *st)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT), svc;
    int ok = 0;

    memset(st, 0, sizeof(*st));
    if (scm == NULL)
        return 0;
    svc = OpenServiceW(scm, SERVICE, SERVICE_STOP);
    if (svc != NULL) {
        ok = ControlService(svc, SERVICE_CONTROL_STOP, st) != 0;
        if (!ok)
            note("ControlService(STOP): error %lu", GetLastError());
        CloseServiceHandle(svc);
    }
    CloseServiceHandle(scm);
    return ok;
}

/* The service's command line as the SCM holds it (malloc'd UTF-8, or NULL). */
static char *svc_binary_path(DWORD *start_type, char *account, size_t account_cap)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT), svc;
    QUERY_SERVICE_CONFIGW *qc = NULL;
    DWORD need = 0;
    char *out = NULL;

    if (scm == NULL)
        return NULL;
    svc = OpenServiceW(scm, SERVICE, SERVICE_QUERY_CONFIG);
    if (svc != NULL) {
        QueryServiceConfigW(svc, NULL, 0, &need);
        qc = malloc(need + 16);
        if (qc != NULL && QueryServiceConfigW(svc, qc, need + 16, &need)) {
            out = _strdup(u8(qc->lpBinaryPathName));
            *start_type = qc->dwStartType;
            snprintf(account, account_cap, "%s",
                     qc->lpServiceStartName != NULL ? u8(qc->lpServiceStartName) : "");
        }
        free(qc);
        CloseServiceHandle(svc);
    }
    CloseServiceHandle(scm);
    return out;
}

/* ---- the world ------------------------------------------------------------------ */

static WCHAR bin_dir[MAX_PATH];
static WCHAR inst_dcbctl[MAX_PATH], inst_shim[MAX_PATH], inst_broker[MAX_PATH];
static WCHAR vendor_macfilter[MAX_PATH], vendor_noop[MAX_PATH];
static WCHAR config[MAX_PATH], broker_log[MAX_PATH], shim_log[MAX_PATH];
static char user_sid[256];

static void wait_log(const char *needle, int n, DWORD timeout_ms, int *found)
{
    ULONGLONG until = GetTickCount64() + timeout_ms;
    char *t;

    for (;;) {
        t = read_text(broker_log);
        *found = count_of(t, needle);
        free(t);
        if (*found >= n || GetTickCount64() >= until)
            return;
        Sleep(200);
    }
}

static int copy_in(const WCHAR *name, const WCHAR *to_dir, WCHAR *dest)
{
    WCHAR from[MAX_PATH * 2];

    path_join(from, MAX_PATH * 2, bin_dir, name);
    path_join(dest, MAX_PATH, to_dir, name);
    if (!CopyFileW(from, dest, FALSE)) {
        note("cannot copy %s to %s (error %lu)", u8(from), u8(dest), GetLastError());
        return -1;
    }
    return 0;
}

static int prepare_files(void)
{
    WCHAR dest[MAX_PATH], ini[MAX_PATH], list[MAX_PATH];
    char text[2048];
    int rc = 0;

    remove_tree(INST_DIR);
    remove_tree(VENDOR_DIR);
    remove_tree(DATA_DIR);
    CreateDirectoryW(INST_DIR, NULL);
    CreateDirectoryW(VENDOR_DIR, NULL);
    CreateDirectoryW(L"C:\\ProgramData", NULL);
    CreateDirectoryW(DATA_DIR, NULL);
    /* What the package puts side by side. */
    rc |= copy_in(L"dcbshim.dll", INST_DIR, inst_shim);
    rc |= copy_in(L"dcb-broker.exe", INST_DIR, inst_broker);
    rc |= copy_in(L"dcbctl.exe", INST_DIR, inst_dcbctl);
    rc |= copy_in(L"dcbmsg.dll", INST_DIR, dest);
    /* The vendors' callouts, already in CalloutDlls before dcb comes along. */
    rc |= copy_in(L"macfilter.dll", VENDOR_DIR, vendor_macfilter);
    rc |= copy_in(L"noop.dll", VENDOR_DIR, vendor_noop);
    /* macfilter reads macfilter.ini beside itself: VMware and Raspberry Pi clients denied. */
    path_join(ini, MAX_PATH, VENDOR_DIR, L"macfilter.ini");
    path_join(list, MAX_PATH, VENDOR_DIR, L"clients.list");
    rc |= write_text(list, "# denied by the deployment test\r\n00:50:56:*\r\nb8-27-eb-*\r\n");
    rc |= write_text(ini, "[macfilter]\r\nmode = deny\r\nlist = clients.list\r\n");

    path_join(config, MAX_PATH, DATA_DIR, L"dcb.ini");
    path_join(broker_log, MAX_PATH, DATA_DIR, L"broker.log");
    path_join(shim_log, MAX_PATH, DATA_DIR, L"shim.log");
    /*
     * The chain is configured as well, so the hosts are ready before any
     * traffic (the shim's Hello then names the same DLLs and they stay);
     * deadlines far beyond any wait here, so that a default decision can only
     * come from a fault.
     */
    snprintf(text, sizeof(text),
             "; dcb.ini of the deployment test\r\n"
             "[broker]\r\n"
             "log_file = %s\r\n"
             "log_level = info\r\n"
             "chain = %s, %s\r\n"
             "[defaults]\r\n"
             "timeout_ms = 5000\r\n"
             "hang_ms = 20000\r\n",
             u8(broker_log), u8(vendor_macfilter), u8(vendor_noop));
    rc |= write_text(config, text);
    return rc == 0 ? 0 : -1;
}

static void current_user_sid(void)
{
    HANDLE tok;
    BYTE buf[512];
    DWORD n = 0;
    LPSTR s = NULL;

    snprintf(user_sid, sizeof(user_sid), "*");
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
        return;
    if (GetTokenInformation(tok, TokenUser, buf, sizeof(buf), &n) &&
        ConvertSidToStringSidA(((TOKEN_USER *)buf)->User.Sid, &s)) {
        snprintf(user_sid, sizeof(user_sid), "%s", s);
        LocalFree(s);
    }
    CloseHandle(tok);
}

/* `dcbctl ARGS` from the install folder; its output in DATA_DIR\NAME.out/.err. */
static long dcbctl(const WCHAR *args, const WCHAR *name)
{
    WCHAR cmd[2048], out[MAX_PATH], err[MAX_PATH], f[64];
    long rc;

    swprintf(cmd, 2048, L"\"%ls\" %ls", inst_dcbctl, args);
    swprintf(f, 64, L"%ls.out", name);
    path_join(out, MAX_PATH, DATA_DIR, f);
    swprintf(f, 64, L"%ls.err", name);
    path_join(err, MAX_PATH, DATA_DIR, f);
    rc = run(cmd, NULL, out, err, 120000);
    if (rc != 0) {
        note("dcbctl %s: exit %ld", u8(args), rc);
        show_file("stdout", out);
        show_file("stderr", err);
    }
    return rc;
}

/* The shape of the world install and uninstall touch. */
typedef struct world {
    snap_t w_params;
    int w_dcb_key;
    int w_shim_key;
    int w_source_key;
    int w_service;
} world_t;

static void world_take(world_t *w)
{
    snap_take(PARAMS_KEY, &w->w_params);
    w->w_dcb_key = key_exists(DCB_KEY);
    w->w_shim_key = key_exists(SHIM_KEY);
    w->w_source_key = key_exists(SOURCE_KEY);
    w->w_service = svc_exists();
}

static void world_check_same(const world_t *before, const char *when)
{
    world_t now;

    world_take(&now);
    CHECK(snap_same(&before->w_params, &now.w_params, when),
          "%s: DHCPServer\\Parameters is not what it was before install", when);
    CHECK(now.w_dcb_key == before->w_dcb_key, "%s: HKLM\\SOFTWARE\\dcb %s", when,
          now.w_dcb_key ? "left behind" : "gone");
    CHECK(now.w_shim_key == before->w_shim_key, "%s: HKLM\\...\\Services\\dcb %s", when,
          now.w_shim_key ? "left behind" : "gone");
    CHECK(now.w_source_key == before->w_source_key, "%s: the Event Log source key %s", when,
          now.w_source_key ? "left behind" : "gone");
    CHECK(now.w_service == before->w_service, "%s: the dcb-broker service %s", when,
          now.w_service ? "still exists" : "is gone");
    snap_free(&now.w_params);
}

/* CalloutDlls as install must have written it: the shim, then what was there. */
static void check_installed_values(const WCHAR *const *before_list)
{
    snap_t s;
    const rv_t *dlls, *enabled;
    const WCHAR *expect[8];
    WCHAR want[2048];
    DWORD want_size;
    size_t n = 0;

    expect[n++] = inst_shim;
    for (size_t i = 0; before_list != NULL && before_list[i] != NULL && n < 7; i++)
        expect[n++] = before_list[i];
    expect[n] = NULL;
    want_size = multisz(expect, want, 2048);
    snap_take(PARAMS_KEY, &s);
    dlls = snap_find(&s, L"CalloutDlls");
    enabled = snap_find(&s, L"CalloutEnabled");
    if (CHECK(dlls != NULL && dlls->rv_type == REG_MULTI_SZ, "install: CalloutDlls not a MULTI_SZ"))
        CHECK(dlls->rv_size == want_size && memcmp(dlls->rv_data, want, want_size) == 0,
              "install: CalloutDlls is not [shim, previous entries]");
    CHECK(enabled != NULL && enabled->rv_type == REG_DWORD && enabled->rv_size == 4 &&
              *(DWORD *)enabled->rv_data == 1,
          "install: CalloutEnabled is not the DWORD 1");
    snap_free(&s);
}

/* ---- the phases ------------------------------------------------------------------- */

static DWORD broker_pid;
static DWORD host_pids[8];
static int n_host_pids;

/* Host pids from "plugin NAME: host pid N started" lines. */
static void collect_host_pids(void)
{
    char *t = read_text(broker_log);

    n_host_pids = 0;
    for (const char *p = t; p != NULL && (p = strstr(p, ": host pid ")) != NULL; p++) {
        char *end;
        unsigned long pid = strtoul(p + strlen(": host pid "), &end, 10);
        if (pid != 0 && strncmp(end, " started", 8) == 0 && n_host_pids < 8)
            host_pids[n_host_pids++] = (DWORD)pid;
    }
    free(t);
}

static int phase_start(void)
{
    SERVICE_STATUS_PROCESS sp;
    int ready_a = 0, ready_b = 0;
    BOOL pipe_there;
    DWORD state;

    note("starting the service (StartServiceW)");
    if (!CHECK(svc_start(), "StartServiceW failed"))
        return -1;
    if (!CHECK(svc_wait(SERVICE_RUNNING, 60000, &sp), "not RUNNING within 60 s (state %s)",
               state_name(sp.dwCurrentState))) {
        show_file("broker log", broker_log);
        return -1;
    }
    /* RUNNING is reported once the event pipe listens: a client finds it at once. */
    pipe_there = WaitNamedPipeW(PIPE, 2000) || GetLastError() == ERROR_SEM_TIMEOUT;
    CHECK(pipe_there, "RUNNING, but %s is not there (error %lu)", u8(PIPE), GetLastError());
    broker_pid = sp.dwProcessId;
    CHECK((sp.dwControlsAccepted & (SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN)) ==
              (SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN),
          "RUNNING accepts controls 0x%lx, not STOP and SHUTDOWN", sp.dwControlsAccepted);
    note("service RUNNING: pid %lu, controls accepted 0x%lx, the event pipe is there", broker_pid,
         sp.dwControlsAccepted);
    wait_log("plugin macfilter ready", 1, 60000, &ready_a);
    wait_log("plugin noop ready", 1, 60000, &ready_b);
    if (!CHECK(ready_a == 1 && ready_b == 1, "the hosts did not get ready (macfilter %d, noop %d)",
               ready_a, ready_b)) {
        show_file("broker log", broker_log);
        return -1;
    }
    state = svc_query(&sp);
    CHECK(state == SERVICE_RUNNING, "the service is %s after its hosts started", state_name(state));
    return 0;
}

/*
 * Compares the in-process record a with the through-dcb record b. From
 * packet `from` on they must be identical; before it, a packet may differ
 * only by having been let through (the shim's fail-open default) where the
 * vendor dropped it in process. Returns the number of other differences
 * (-1: unreadable); *undrops and *drops_from count the allowed differences
 * and a's plugin drops from `from` on.
 */
static long record_compare(const WCHAR *a, const WCHAR *b, long from, long *undrops,
                           long *drops_from)
{
    char *ta = read_text(a), *tb = read_text(b), *sa = ta, *sb = tb, *la, *lb;
    long bad = 0, n = 0;

    *undrops = *drops_from = 0;
    if (ta == NULL || tb == NULL) {
        free(ta);
        free(tb);
        return -1;
    }
    la = next_line(&sa);
    lb = next_line(&sb);
    while (la != NULL || lb != NULL) {
        int a_drop = la != NULL && strstr(la, " plugin-drop") != NULL;
        if (a_drop && n >= from)
            (*drops_from)++;
        if (la == NULL || lb == NULL || strcmp(la, lb) != 0) {
            if (n < from && a_drop && lb != NULL && strstr(lb, " plugin-drop") == NULL) {
                (*undrops)++;
            } else if (bad++ < 5) {
                note("record line %ld: in process \"%.60s\", through dcb \"%.60s\"", n,
                     la ? la : "(none)", lb ? lb : "(none)");
            }
        }
        n++;
        la = la ? next_line(&sa) : NULL;
        lb = lb ? next_line(&sb) : NULL;
    }
    free(ta);
    free(tb);
    return bad;
}

/* macfilter's summary at STOP, as the broker logged its output: "N packets seen, M dropped". */
static int macfilter_summary(long *seen, long *dropped)
{
    char *t = read_text(broker_log);
    const char *p = t != NULL ? strstr(t, " packets seen, ") : NULL, *q;
    int ok = 0;

    if (p != NULL) {
        for (q = p; q > t && q[-1] >= '0' && q[-1] <= '9'; q--)
            ;
        *seen = strtol(q, NULL, 10);
        *dropped = strtol(p + strlen(" packets seen, "), NULL, 10);
        ok = q < p;
    }
    free(t);
    return ok;
}

static double json_num(const cJSON *root, const char *obj, const char *key)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, obj);
    const cJSON *v = o != NULL ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;

    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static cJSON *read_json(const WCHAR *path)
{
    char *t = read_text(path);
    cJSON *j = t != NULL ? cJSON_Parse(t) : NULL;

    free(t);
    return j;
}

/* dcb-sim, its report to DATA_DIR\NAME.json and its record to NAME.rec. */
static long sim(const WCHAR *dll_args, const char *const *env, const WCHAR *name)
{
    WCHAR cmd[4096], out[MAX_PATH], err[MAX_PATH], rec[MAX_PATH], f[64];
    long rc;

    swprintf(f, 64, L"%ls.rec", name);
    path_join(rec, MAX_PATH, DATA_DIR, f);
    swprintf(f, 64, L"%ls.json", name);
    path_join(out, MAX_PATH, DATA_DIR, f);
    swprintf(f, 64, L"%ls.err", name);
    path_join(err, MAX_PATH, DATA_DIR, f);
    swprintf(
        cmd, 4096,
        L"\"%ls\\dcb-sim.exe\" %ls "
        L"--"
        L"count " SIM_COUNT_W L" --seed " SIM_SEED L" --rate " SIM_RATE L" --json --record \"%ls\"",
        bin_dir, dll_args, rec);
    rc = run(cmd, env, out, err, 240000);
    if (rc != 0) {
        note("dcb-sim %s: exit %ld", u8(dll_args), rc);
        show_file("dcb-sim stderr", err);
    }
    return rc;
}

static void phase_traffic(void)
{
    WCHAR args[1024], ref_rec[MAX_PATH], via_rec[MAX_PATH], path[MAX_PATH], refused_log[MAX_PATH];
    char env_log[MAX_PATH * 3 + 32], env_acct[300], env_log2[MAX_PATH * 3 + 32];
    cJSON *ref = NULL, *via = NULL, *refused = NULL;
    double ref_drops, via_drops, refused_drops;
    char *log;

    /* The reference: the same traffic, the vendors' DLLs in process (no dcb). */
    swprintf(args, 1024, L"--dll \"%ls\" --dll \"%ls\"", vendor_macfilter, vendor_noop);
    if (!CHECK(sim(args, NULL, L"in-process") == 0, "the in-process reference run failed"))
        return;
    path_join(path, MAX_PATH, DATA_DIR, L"in-process.json");
    ref = read_json(path);
    ref_drops = json_num(ref, "packets", "plugin_drops");
    note("in process: %.0f of %d packets dropped by macfilter", ref_drops, SIM_COUNT);
    CHECK(ref_drops > 100, "the traffic hardly exercises macfilter (%.0f drops)", ref_drops);

    /*
     * Through dcb as installed. The shim checks who serves the pipe, and
     * install set its ExpectedBrokerAccount to the service's account. Wine
     * runs every service as the logged-on user: with the installed setting
     * the shim must refuse this broker, which is the check working, not a
     * fault. Shown, then the shim is told (environment override, which the
     * shim documents for tests) to expect the account the service really
     * runs as here.
     */
    path_join(refused_log, MAX_PATH, DATA_DIR, L"shim-installed-account.log");
    snprintf(env_log2, sizeof(env_log2), "DCB_SHIM_LOG=%s", u8(refused_log));
    {
        const char *env[] = {env_log2, "DCB_NEWPKT_DEADLINE_MS=10000",
                             "DCB_PKTSEND_DEADLINE_MS=10000", NULL};
        long rc;
        rc = sim(L"--registry", env, L"installed-account");
        path_join(path, MAX_PATH, DATA_DIR, L"installed-account.json");
        refused = read_json(path);
        refused_drops = json_num(refused, "packets", "plugin_drops");
        log = read_text(refused_log);
        if (on_wine) {
            note("wine: the service runs as %s, not as its configured account; with "
                 "ExpectedBrokerAccount as installed the shim %s (%.0f plugin drops; exit %ld)",
                 user_sid,
                 count_of(log, "refusing broker pipe") > 0 ? "refuses the broker, as it must"
                                                           : "did not refuse the broker",
                 refused_drops, rc);
        } else {
            CHECK(rc == 0 && refused_drops == ref_drops,
                  "with the installed account setting, traffic did not flow (%.0f drops)",
                  refused_drops);
        }
        free(log);
    }

    snprintf(env_log, sizeof(env_log), "DCB_SHIM_LOG=%s", u8(shim_log));
    snprintf(env_acct, sizeof(env_acct), "DCB_BROKER_ACCOUNT=%s", on_wine ? user_sid : "");
    {
        const char *env[] = {env_log, "DCB_NEWPKT_DEADLINE_MS=10000",
                             "DCB_PKTSEND_DEADLINE_MS=10000", on_wine ? env_acct : NULL, NULL};
        /* dcb-sim reads CalloutDlls/CalloutEnabled as the DHCP Server does. */
        if (!CHECK(sim(L"--registry", env, L"through-dcb") == 0,
                   "dcb-sim --registry through the service failed")) {
            show_file("shim log", shim_log);
            show_file("broker log", broker_log);
            goto out;
        }
    }
    path_join(path, MAX_PATH, DATA_DIR, L"through-dcb.json");
    via = read_json(path);
    via_drops = json_num(via, "packets", "plugin_drops");
    {
        const cJSON *loaded = cJSON_GetObjectItemCaseSensitive(via, "loaded");
        note("through the service: %.0f packets dropped by macfilter; dcb-sim loaded %s", via_drops,
             cJSON_IsString(loaded) ? loaded->valuestring : "?");
        CHECK(cJSON_IsString(loaded) && strstr(loaded->valuestring, "dcbshim.dll") != NULL,
              "dcb-sim did not load the shim from CalloutDlls");
    }
    /*
     * Which packets went through the broker: macfilter (in its host) counts
     * the NewPkt events it saw and logs that at STOP. They are the last ones
     * of the stream, since NewPkt runs on the one receive thread in order
     * and only the packets before the shim's first connection got its
     * default. From there on the record must equal the in-process one.
     */
    {
        long seen = 0, dropped = 0, undrops = 0, drops_from = 0, bad, from;
        int found = 0;
        wait_log(" packets seen, ", 1, 15000, &found);
        if (!CHECK(found >= 1 && macfilter_summary(&seen, &dropped),
                   "macfilter's summary at STOP is not in the broker's log"))
            goto out;
        from = SIM_COUNT - seen;
        path_join(ref_rec, MAX_PATH, DATA_DIR, L"in-process.rec");
        path_join(via_rec, MAX_PATH, DATA_DIR, L"through-dcb.rec");
        bad = record_compare(ref_rec, via_rec, from, &undrops, &drops_from);
        note("through the service: macfilter in its host saw %ld of %d packets and dropped %ld; "
             "the first %ld went out before the shim had connected (its fail-open default: %ld of "
             "them the vendor would have dropped)",
             seen, SIM_COUNT, dropped, from, undrops);
        CHECK(seen >= SIM_COUNT / 2, "only %ld of %d packets reached the service-hosted broker",
              seen, SIM_COUNT);
        CHECK(via_drops == dropped,
              "dcb-sim saw %.0f plugin drops, macfilter in the broker's host made %ld", via_drops,
              dropped);
        CHECK(drops_from == dropped,
              "in process macfilter dropped %ld of the last %ld packets, through dcb %ld",
              drops_from, seen, dropped);
        CHECK(bad == 0, "the per-packet records differ in %ld packets beyond the shim's defaults",
              bad);
        CHECK(via_drops + undrops == ref_drops, "drops: %.0f through dcb + %ld defaulted != %.0f",
              via_drops, undrops, ref_drops);
        if (bad == 0)
            note("per-packet record: from packet %ld on identical to the in-process run (every "
                 "drop, every reply byte)",
                 from);
    }

    /* The broker's side: the shim as dcb-sim loaded it, the chain it named, one host each. */
    log = read_text(broker_log);
    CHECK(count_of(log, "2 chained DLLs") >= 1,
          "the broker's log shows no shim connection naming the two vendor DLLs");
    CHECK(count_of(log, "names a different chain") == 0,
          "the shim named a chain other than the configured one (CalloutDlls paths differ)");
    {
        /*
         * Until the server's STOP the hosts that started with the service
         * served all traffic: the chain the shim named matched, nothing
         * restarted. (After STOP the broker loads each plugin afresh, as a
         * stopped DLL instance is never started again.)
         */
        char *stop = log != NULL ? strstr(log, "server control STOP") : NULL;
        if (stop != NULL)
            *stop = '\0';
        CHECK(stop != NULL, "the broker's log shows no STOP from the shim");
        CHECK(count_of(log, "plugin macfilter: host pid") == 1 &&
                  count_of(log, "plugin noop: host pid") == 1,
              "expected one host per plugin while traffic ran (macfilter %d, noop %d)",
              count_of(log, "plugin macfilter: host pid"), count_of(log, "plugin noop: host pid"));
    }
    free(log);
    collect_host_pids();

    /* The broker's own counters, when its control endpoint answers. */
    {
        WCHAR out[MAX_PATH];
        long rc = dcbctl(L"stats --json", L"stats");
        path_join(out, MAX_PATH, DATA_DIR, L"stats.out");
        if (rc == 0) {
            cJSON *j = read_json(out), *it;
            double drops = -1, defaults = 0;
            cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "plugins"))
            {
                const cJSON *h = cJSON_GetObjectItemCaseSensitive(it, "hook");
                const cJSON *p = cJSON_GetObjectItemCaseSensitive(it, "plugin");
                const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "defaults"), *x;
                if (cJSON_IsString(h) && cJSON_IsString(p) &&
                    strcmp(h->valuestring, "NewPkt") == 0 &&
                    strcmp(p->valuestring, "macfilter") == 0)
                    drops = cJSON_GetObjectItemCaseSensitive(it, "drop")->valuedouble;
                cJSON_ArrayForEach(x, d) defaults += cJSON_IsNumber(x) ? x->valuedouble : 0;
            }
            note("dcbctl stats: macfilter dropped %.0f at NewPkt; %.0f default decisions in all",
                 drops, defaults);
            CHECK(drops >= via_drops, "dcbctl stats: macfilter NewPkt drops %.0f < %.0f", drops,
                  via_drops);
            CHECK(defaults == 0, "dcbctl stats: %.0f default decisions", defaults);
            cJSON_Delete(j);
        } else {
            note("dcbctl stats: exit %ld (the broker's control endpoint did not answer); the "
                 "broker's counters are not checked",
                 rc);
        }
    }
out:
    cJSON_Delete(ref);
    cJSON_Delete(via);
    cJSON_Delete(refused);
}

/* Application log events of source "dcb" containing needle (Windows; Wine keeps none). */
static long app_log_events(const char *needle, DWORD *err)
{
    HANDLE h = OpenEventLogW(NULL, L"Application");
    BYTE *buf = malloc(64 * 1024);
    DWORD read = 0, need = 0;
    long found = 0;

    *err = 0;
    if (h == NULL || buf == NULL) {
        *err = GetLastError();
        free(buf);
        return -1;
    }
    while (ReadEventLogW(h, EVENTLOG_SEQUENTIAL_READ | EVENTLOG_BACKWARDS_READ, 0, buf, 64 * 1024,
                         &read, &need)) {
        for (BYTE *p = buf; p < buf + read;) {
            EVENTLOGRECORD *r = (EVENTLOGRECORD *)p;
            const WCHAR *src = (const WCHAR *)(p + sizeof(*r));
            if (wcscmp(src, L"dcb") == 0 && r->NumStrings > 0 &&
                strstr(u8((const WCHAR *)(p + r->StringOffset)), needle) != NULL)
                found++;
            p += r->Length;
        }
    }
    if (GetLastError() != ERROR_HANDLE_EOF && found == 0)
        *err = GetLastError();
    CloseEventLog(h);
    free(buf);
    return found;
}

/*
 * What reaches the Event Log. A second broker on the service's pipe is
 * refused (first-instance semantics) and, with --event-log, reports that as
 * an error event before it exits. Windows keeps the events in the
 * Application log, read back here. Wine keeps none, but prints every
 * ReportEventW call on its "eventlog" debug channel (err for errors, warn
 * for warnings, trace for information) on the process's Unix stderr, which
 * a Windows handle cannot redirect: run_deploy.cmake runs this test with
 * that channel on and checks the text and type of the service's, the
 * shim's and this broker's events there.
 */
static void phase_eventlog(void)
{
    WCHAR cmd[2048], out[MAX_PATH], err[MAX_PATH], plog[MAX_PATH];
    char *text;
    long rc;
    DWORD e = 0;

    path_join(out, MAX_PATH, DATA_DIR, L"probe.out");
    path_join(err, MAX_PATH, DATA_DIR, L"probe.err");
    path_join(plog, MAX_PATH, DATA_DIR, L"probe.log");
    swprintf(cmd, 2048,
             L"\"%ls\" --event-log --pipe %ls --control \\\\.\\pipe\\dcb-deploy-probe "
             L"--log-file \"%ls\"",
             inst_broker, PIPE, plog);
    rc = run(cmd, NULL, out, err, 60000);
    CHECK(rc == 1, "a second broker on the service's pipe: exit %ld, not 1", rc);
    text = read_text(plog);
    CHECK(count_of(text, "cannot listen on") == 1, "the second broker did not say why it stopped");
    {
        const char *ev = strstr(text != NULL ? text : "", "Event Log (source dcb): ");
        unsigned long written = ev != NULL ? strtoul(ev + 24, NULL, 10) : 0;
        CHECK(ev != NULL && written >= 2 && strstr(ev, " 0 failed") != NULL,
              "the second broker's Event Log writer did not take its events (see %s)", u8(plog));
    }
    free(text);
    rc = app_log_events("cannot listen on", &e);
    if (on_wine) {
        note("wine: a second broker on the service's pipe was refused and wrote its events; Wine "
             "keeps no Event Log to read back (%ld found, error %lu): run_deploy.cmake checks "
             "Wine's eventlog debug channel instead",
             rc, e);
    } else {
        CHECK(rc >= 1, "the Application log holds no \"cannot listen\" event of source dcb");
    }
}

static void phase_stop(void)
{
    SERVICE_STATUS st;
    SERVICE_STATUS_PROCESS sp;
    char *log;

    note("stopping the service (SERVICE_CONTROL_STOP)");
    if (!CHECK(svc_stop(&st), "ControlService(STOP) failed"))
        return;
    note("after STOP: %s, wait hint %lu ms, checkpoint %lu", state_name(st.dwCurrentState),
         st.dwWaitHint, st.dwCheckPoint);
    CHECK(st.dwCurrentState == SERVICE_STOP_PENDING || st.dwCurrentState == SERVICE_STOPPED,
          "STOP answered with state %s", state_name(st.dwCurrentState));
    if (st.dwCurrentState == SERVICE_STOP_PENDING)
        CHECK(st.dwWaitHint >= 2000, "STOP_PENDING with a wait hint of %lu ms", st.dwWaitHint);
    if (!CHECK(svc_wait(SERVICE_STOPPED, 30000, &sp), "not STOPPED within 30 s"))
        return;
    CHECK(sp.dwWin32ExitCode == NO_ERROR, "STOPPED with exit code %lu (service-specific %lu)",
          sp.dwWin32ExitCode, sp.dwServiceSpecificExitCode);
    CHECK(process_gone(broker_pid, 10000), "the broker's process %lu is still there", broker_pid);
    for (int i = 0; i < n_host_pids; i++)
        CHECK(process_gone(host_pids[i], 10000), "host process %lu is still there", host_pids[i]);
    log = read_text(broker_log);
    CHECK(count_of(log, "service stop: shutting down") == 1, "no \"service stop\" in the log");
    CHECK(count_of(log, "info: stopped") == 1, "the broker's log does not end \"stopped\"");
    {
        const char *ev = strstr(log != NULL ? log : "", "Event Log (source dcb): ");
        unsigned long written = ev != NULL ? strtoul(ev + 24, NULL, 10) : 0;
        note("%s: the service's Event Log writer took its events (start, stop...): %lu written",
             on_wine ? "wine" : "windows", written);
        CHECK(ev != NULL && written >= 3 && strstr(ev, " 0 failed") != NULL,
              "the service's Event Log account is missing or shows failures");
    }
    free(log);
    note("service STOPPED: exit code 0; the broker and its %d host(s) are gone", n_host_pids);
}

/*
 * A start that fails: a configuration error. The service reports STOPPED
 * with ERROR_SERVICE_SPECIFIC_ERROR and the broker's exit status (2), and
 * puts what the broker printed in an error event (run_deploy.cmake checks
 * it on Wine's eventlog channel).
 */
static void phase_bad_config(void)
{
    SERVICE_STATUS_PROCESS sp;
    char *good = read_text(config);

    if (!CHECK(good != NULL, "cannot read %s", u8(config)))
        return;
    write_text(config, "[broker]\r\nlog_level = loud\r\n");
    note("starting the service with a broken configuration");
    if (CHECK(svc_start(), "StartServiceW failed") &&
        CHECK(svc_wait(SERVICE_STOPPED, 60000, &sp),
              "the service did not stop after its failed "
              "start (state %s)",
              state_name(sp.dwCurrentState))) {
        note("failed start: STOPPED, exit code %lu, service-specific %lu", sp.dwWin32ExitCode,
             sp.dwServiceSpecificExitCode);
        CHECK(sp.dwWin32ExitCode == ERROR_SERVICE_SPECIFIC_ERROR &&
                  sp.dwServiceSpecificExitCode == 2,
              "a configuration error should stop the service with service-specific code 2");
    }
    write_text(config, good);
    free(good);
}

/* The recovery actions install set: a restart after a failure. */
static void check_recovery_config(void)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT), svc;
    BYTE buf[1024];
    DWORD need = 0, err = 0, n_actions = 0;
    int restarts = 0, ok = 0;

    svc = scm != NULL ? OpenServiceW(scm, SERVICE, SERVICE_QUERY_CONFIG) : NULL;
    if (svc != NULL)
        ok = QueryServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS, buf, sizeof(buf), &need);
    if (ok) {
        const SERVICE_FAILURE_ACTIONSW *fa = (const SERVICE_FAILURE_ACTIONSW *)buf;
        n_actions = fa->cActions;
        for (DWORD i = 0; i < fa->cActions && fa->lpsaActions != NULL; i++)
            if (fa->lpsaActions[i].Type == SC_ACTION_RESTART) {
                restarts++;
                note("recovery action %lu: restart after %lu ms", i + 1, fa->lpsaActions[i].Delay);
            }
    } else {
        err = GetLastError();
    }
    if (on_wine && restarts == 0)
        note("wine: the SCM does not report the recovery actions back (%lu actions, error %lu), "
             "though install set them without an error",
             n_actions, err);
    else
        CHECK(restarts > 0,
              "no restart among the service's recovery actions (%lu actions, "
              "error %lu)",
              n_actions, err);
    if (svc != NULL)
        CloseServiceHandle(svc);
    if (scm != NULL)
        CloseServiceHandle(scm);
}

/*
 * A stopped service starts again; and, on Windows, a crash of its process
 * makes the SCM run the recovery actions.
 */
static void phase_restart(void)
{
    SERVICE_STATUS_PROCESS sp;
    SERVICE_STATUS st;
    HANDLE h;
    DWORD pid;
    int restarted = 0;
    ULONGLONG until;

    check_recovery_config();
    if (!svc_start() || !svc_wait(SERVICE_RUNNING, 60000, &sp)) {
        CHECK(0, "the service did not start a second time");
        return;
    }
    pid = sp.dwProcessId;
    note("service RUNNING again (pid %lu): a stopped service starts again", pid);
    if (on_wine) {
        /*
         * Here TerminateProcess reports success but the process goes on
         * (its handle is never signalled), and Wine's SCM keeps a service
         * whose process is gone RUNNING with a dead control pipe: a crash
         * cannot be staged, and recovery actions are not run.
         */
        note("wine: a crash of the service is not staged (Wine's TerminateProcess does not end "
             "the process here, and its SCM leaves a service whose process died RUNNING): the "
             "recovery actions are install's settings, not exercised");
    } else {
        h = OpenProcess(PROCESS_TERMINATE | SYNCHRONIZE, FALSE, pid);
        if (CHECK(h != NULL, "cannot open the broker's process %lu", pid)) {
            TerminateProcess(h, 0xC0000005u);
            CHECK(WaitForSingleObject(h, 10000) == WAIT_OBJECT_0, "the broker did not die");
            CloseHandle(h);
            /* install asks for a restart after 5 s */
            until = GetTickCount64() + 20000;
            while (GetTickCount64() < until && !restarted) {
                restarted = svc_query(&sp) == SERVICE_RUNNING && sp.dwProcessId != pid;
                Sleep(200);
            }
            CHECK(restarted, "after a crash the SCM did not restart the broker");
            if (restarted)
                note("after a crash the SCM restarted the broker (pid %lu)", sp.dwProcessId);
        }
    }
    if (svc_query(&sp) == SERVICE_START_PENDING)
        svc_wait(SERVICE_RUNNING, 30000, &sp);
    svc_stop(&st);
    if (CHECK(svc_wait(SERVICE_STOPPED, 30000, &sp), "the service did not stop the second time"))
        CHECK(sp.dwWin32ExitCode == NO_ERROR, "STOPPED with exit code %lu", sp.dwWin32ExitCode);
}

/* Install and uninstall only, with CalloutDlls and CalloutEnabled absent before. */
static void phase_absent_values(void)
{
    world_t before;
    WCHAR args[2048];

    delete_value(PARAMS_KEY, L"CalloutDlls");
    delete_value(PARAMS_KEY, L"CalloutEnabled");
    world_take(&before);
    swprintf(args, 2048, L"install --config \"%ls\"", config);
    if (CHECK(dcbctl(args, L"install-absent") == 0, "install with no CalloutDlls failed")) {
        check_installed_values(NULL);
        CHECK(dcbctl(L"uninstall", L"uninstall-absent") == 0, "uninstall failed");
    }
    world_check_same(&before, "after uninstall (values absent before)");
    if (!snap_find(&before.w_params, L"CalloutDlls"))
        note("absent before, absent after: CalloutDlls and CalloutEnabled");
    snap_free(&before.w_params);
}

static void find_bin_dir(void)
{
    WCHAR *slash;

    GetModuleFileNameW(NULL, bin_dir, MAX_PATH);
    slash = wcsrchr(bin_dir, L'\\');
    if (slash != NULL)
        *slash = 0;
}

int main(void)
{
    snap_t dhcp_found;
    world_t before;
    int dhcp_created = 0, installed = 0;
    WCHAR list[2048], args[2048];
    const WCHAR *vendors[3];
    DWORD one = 1, start_type = 0;
    char account[256], *binpath;

    setvbuf(stdout, NULL, _IONBF, 0);
    on_wine = GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "wine_get_version") != NULL;
    find_bin_dir();
    current_user_sid();
    note("binaries from %s; %s", u8(bin_dir),
         on_wine ? "running under Wine" : "running on Windows");

    /* Leftovers of an earlier, interrupted run in this prefix. */
    if (key_exists(DCB_KEY L"\\Backup") || svc_exists()) {
        WCHAR leftover[MAX_PATH];
        path_join(leftover, MAX_PATH, INST_DIR, L"dcbctl.exe");
        note("an earlier run left dcb installed here: uninstalling it first");
        wcscpy(inst_dcbctl,
               GetFileAttributesW(leftover) != INVALID_FILE_ATTRIBUTES ? leftover : L"dcbctl.exe");
        CreateDirectoryW(L"C:\\ProgramData", NULL);
        CreateDirectoryW(DATA_DIR, NULL);
        dcbctl(L"uninstall", L"uninstall-leftover");
    }
    if (!CHECK(!svc_exists() && !key_exists(DCB_KEY L"\\Backup"),
               "dcb is still installed from an earlier run"))
        return 1;

    /* 1. The DHCP Server as the test finds it, then as the test sets it up. */
    snap_take(PARAMS_KEY, &dhcp_found);
    dhcp_created = !key_exists(DHCP_KEY);
    if (!CHECK(prepare_files() == 0, "cannot lay out the files"))
        return 1;
    vendors[0] = vendor_macfilter;
    vendors[1] = vendor_noop;
    vendors[2] = NULL;
    CHECK(set_value(PARAMS_KEY, L"CalloutDlls", REG_MULTI_SZ, list, multisz(vendors, list, 2048)) ==
              ERROR_SUCCESS,
          "cannot set CalloutDlls");
    CHECK(set_value(PARAMS_KEY, L"CalloutEnabled", REG_DWORD, &one, 4) == ERROR_SUCCESS,
          "cannot set CalloutEnabled");
    CHECK(set_value(PARAMS_KEY, L"DatabaseName", REG_SZ, L"dhcp.mdb", 18) == ERROR_SUCCESS,
          "cannot set DatabaseName");
    world_take(&before);
    note("before install: CalloutDlls = [%s, %s], CalloutEnabled = 1; %lu values recorded",
         u8(vendor_macfilter), u8(vendor_noop), before.w_params.sn_n);

    /* 2. Install, as an administrator would, from the install folder. */
    swprintf(args, 2048, L"install --config \"%ls\"", config);
    installed = CHECK(dcbctl(args, L"install") == 0, "dcbctl install failed");
    if (installed) {
        check_installed_values(vendors);
        binpath = svc_binary_path(&start_type, account, sizeof(account));
        note("service dcb-broker: %s (start type %lu, account %s)", binpath ? binpath : "?",
             start_type, account);
        CHECK(binpath != NULL && strstr(binpath, "dcb-broker.exe\" --service --config") != NULL,
              "the service's command line does not run dcb-broker --service --config");
        free(binpath);
        CHECK(key_exists(SOURCE_KEY), "install did not register the Event Log source");

        /* 3-7. The service. */
        if (phase_start() == 0) {
            phase_traffic();
            phase_eventlog();
            phase_stop();
            phase_bad_config();
            phase_restart();
        } else {
            SERVICE_STATUS st;
            svc_stop(&st);
        }
        /* 8. Uninstall. */
        CHECK(dcbctl(L"uninstall", L"uninstall") == 0, "dcbctl uninstall failed");
    }
    world_check_same(&before, "after uninstall");
    if (installed)
        note("after uninstall: every Parameters value as before, byte for byte; the service "
             "and dcb's keys are gone");
    snap_free(&before.w_params);

    /* 9. The same with the values absent before install. */
    if (installed)
        phase_absent_values();

    /* Leave the DHCP Server's key as it was found. */
    if (dhcp_created) {
        RegDeleteTreeW(HKEY_LOCAL_MACHINE, DHCP_KEY);
    } else {
        snap_t now;
        snap_take(PARAMS_KEY, &now);
        for (DWORD i = 0; i < now.sn_n; i++)
            if (snap_find(&dhcp_found, now.sn_v[i].rv_name) == NULL)
                delete_value(PARAMS_KEY, now.sn_v[i].rv_name);
        for (DWORD i = 0; i < dhcp_found.sn_n; i++)
            set_value(PARAMS_KEY, dhcp_found.sn_v[i].rv_name, dhcp_found.sn_v[i].rv_type,
                      dhcp_found.sn_v[i].rv_data, dhcp_found.sn_v[i].rv_size);
        snap_free(&now);
    }
    snap_free(&dhcp_found);

    if (failures > 0) {
        note("%d check(s) failed", failures);
        return 1;
    }
    note("all checks passed");
    return 0;
}
