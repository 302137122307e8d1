/*
 * test_install_win.c — `dcbctl install` / `uninstall` against the real
 * registry and service control manager (Wine's, under ctest): CalloutDlls
 * and CalloutEnabled before, during and after, byte for byte; the service's
 * configuration; the Event Log source; and every refusal.
 *
 * Where Wine cannot show something (it ignores a service's account, keeps
 * no per-service SIDs...), the test says so on stdout and checks what it can.
 * Everything it creates is removed at the end, and the DHCP Server's key is
 * returned to the state it found.
 */
#include <windows.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include <cmocka.h>

#include "capture.h"
#include "dcbctl.h"
#include "fake_server.h"

#define DHCP_KEY L"SYSTEM\\CurrentControlSet\\Services\\DHCPServer"
#define PARAMS_KEY DHCP_KEY L"\\Parameters"
#define BACKUP_KEY L"SOFTWARE\\dcb\\Backup"
#define DCB_KEY L"SOFTWARE\\dcb"
#define SOURCE_KEY L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\dcb"
#define SHIM_KEY L"SYSTEM\\CurrentControlSet\\Services\\dcb"
#define SHIM_PARAMS SHIM_KEY L"\\Parameters"
#define VIEW KEY_WOW64_64KEY

#define VENDOR_A L"C:\\Vendor\\alpha.dll"
#define VENDOR_B L"C:\\Program Files\\Vendor Two\\beta.dll"

/* ---- the world the tests run in ------------------------------------------ */

static WCHAR tmpdir[MAX_PATH];
static char shim_u8[MAX_PATH * 3], broker_u8[MAX_PATH * 3], config_u8[MAX_PATH * 3];
static char nomsg_broker_u8[MAX_PATH * 3];
static WCHAR shim_w[MAX_PATH], broker_w[MAX_PATH], config_w[MAX_PATH], msgdll_w[MAX_PATH];
static int (*real_is_elevated)(void);

/* A value as the registry holds it. */
typedef struct raw {
    int present;
    DWORD type;
    DWORD size;
    BYTE data[8192];
} raw_t;

static raw_t dhcp_saved_dlls, dhcp_saved_enabled, shim_saved_account;
static int dhcp_existed, shim_key_existed;

static void raw_read(const WCHAR *key, const WCHAR *name, raw_t *r)
{
    HKEY k;
    LSTATUS st;

    memset(r, 0, sizeof(*r));
    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, key, 0, KEY_QUERY_VALUE | VIEW, &k) != ERROR_SUCCESS)
        return;
    r->size = sizeof(r->data);
    st = RegQueryValueExW(k, name, NULL, &r->type, r->data, &r->size);
    RegCloseKey(k);
    assert_true(st == ERROR_SUCCESS || st == ERROR_FILE_NOT_FOUND);
    r->present = st == ERROR_SUCCESS;
    if (!r->present)
        r->size = 0;
}

static void raw_write(const WCHAR *key, const WCHAR *name, const raw_t *r)
{
    HKEY k;

    assert_int_equal(
        RegCreateKeyExW(HKEY_LOCAL_MACHINE, key, 0, NULL, 0, KEY_SET_VALUE | VIEW, NULL, &k, NULL),
        ERROR_SUCCESS);
    if (r->present)
        assert_int_equal(RegSetValueExW(k, name, 0, r->type, r->data, r->size), ERROR_SUCCESS);
    else
        RegDeleteValueW(k, name);
    RegCloseKey(k);
}

static void assert_raw_equal(const raw_t *a, const raw_t *b)
{
    assert_int_equal(a->present, b->present);
    if (!a->present)
        return;
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->size, b->size);
    assert_memory_equal(a->data, b->data, a->size);
}

/* A REG_MULTI_SZ value of the given strings (NULL-terminated list). */
static void multisz(raw_t *r, const WCHAR *first, ...)
{
    size_t at = 0;
    va_list ap;

    memset(r, 0, sizeof(*r));
    r->present = 1;
    r->type = REG_MULTI_SZ;
    va_start(ap, first);
    for (const WCHAR *s = first; s != NULL; s = va_arg(ap, const WCHAR *)) {
        size_t n = (wcslen(s) + 1) * sizeof(WCHAR);
        memcpy(r->data + at, s, n);
        at += n;
    }
    va_end(ap);
    memset(r->data + at, 0, sizeof(WCHAR));
    r->size = (DWORD)(at + sizeof(WCHAR));
}

static void dword(raw_t *r, DWORD v)
{
    memset(r, 0, sizeof(*r));
    r->present = 1;
    r->type = REG_DWORD;
    r->size = 4;
    memcpy(r->data, &v, 4);
}

static void absent(raw_t *r)
{
    memset(r, 0, sizeof(*r));
}

/* The DHCP Server's two values as a test wants them. */
static void dhcp_set(const raw_t *dlls, const raw_t *enabled)
{
    raw_write(PARAMS_KEY, L"CalloutDlls", dlls);
    raw_write(PARAMS_KEY, L"CalloutEnabled", enabled);
}

static int key_exists(const WCHAR *key)
{
    HKEY k;

    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, key, 0, KEY_QUERY_VALUE | VIEW, &k) != ERROR_SUCCESS)
        return 0;
    RegCloseKey(k);
    return 1;
}

static int service_exists(void)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT), svc;

    assert_non_null(scm);
    svc = OpenServiceW(scm, L"dcb-broker", SERVICE_QUERY_STATUS);
    if (svc == NULL) {
        assert_int_equal(GetLastError(), ERROR_SERVICE_DOES_NOT_EXIST);
        CloseServiceHandle(scm);
        return 0;
    }
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return 1;
}

/* Removes whatever a failed test may have left. */
static void scrub(void)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_ALL_ACCESS), svc;

    if (scm != NULL) {
        svc = OpenServiceW(scm, L"dcb-broker", DELETE);
        if (svc != NULL) {
            DeleteService(svc);
            CloseServiceHandle(svc);
        }
        CloseServiceHandle(scm);
    }
    RegDeleteKeyExW(HKEY_LOCAL_MACHINE, BACKUP_KEY, VIEW, 0);
    RegDeleteKeyExW(HKEY_LOCAL_MACHINE, DCB_KEY, VIEW, 0);
    RegDeleteKeyExW(HKEY_LOCAL_MACHINE, SOURCE_KEY, VIEW, 0);
    /* The shim's settings: as they were when the tests started. */
    if (shim_key_existed) {
        raw_write(SHIM_PARAMS, L"ExpectedBrokerAccount", &shim_saved_account);
    } else {
        RegDeleteKeyExW(HKEY_LOCAL_MACHINE, SHIM_PARAMS, VIEW, 0);
        RegDeleteKeyExW(HKEY_LOCAL_MACHINE, SHIM_KEY, VIEW, 0);
    }
}

static void to_u8(const WCHAR *w, char *buf, size_t n)
{
    assert_true(WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, (int)n, NULL, NULL) > 0);
}

static void make_file(const WCHAR *dir, const WCHAR *name, WCHAR *path_out)
{
    HANDLE h;
    DWORD put;

    swprintf(path_out, MAX_PATH, L"%ls\\%ls", dir, name);
    h = CreateFileW(path_out, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    assert_true(h != INVALID_HANDLE_VALUE);
    WriteFile(h, "MZ", 2, &put, NULL);
    CloseHandle(h);
}

static int deny(void)
{
    return 0;
}

static int group_setup(void **state)
{
    WCHAR self[MAX_PATH], src[MAX_PATH], nomsg[MAX_PATH], scratch[MAX_PATH];
    WCHAR *slash;

    real_is_elevated = ctl_is_elevated;
    /* A private folder with stand-ins for the files install registers. */
    GetTempPathW(MAX_PATH, tmpdir);
    swprintf(tmpdir + wcslen(tmpdir), MAX_PATH - wcslen(tmpdir), L"dcbctl install %lu",
             (unsigned long)GetCurrentProcessId());
    CreateDirectoryW(tmpdir, NULL);
    make_file(tmpdir, L"dcbshim.dll", shim_w);
    make_file(tmpdir, L"dcb-broker.exe", broker_w);
    make_file(tmpdir, L"dcb.ini", config_w);
    /* The real message DLL, from beside this test. */
    GetModuleFileNameW(NULL, self, MAX_PATH);
    slash = wcsrchr(self, L'\\');
    assert_non_null(slash);
    slash[1] = 0;
    swprintf(src, MAX_PATH, L"%lsdcbmsg.dll", self);
    swprintf(msgdll_w, MAX_PATH, L"%ls\\dcbmsg.dll", tmpdir);
    if (!CopyFileW(src, msgdll_w, FALSE)) {
        fprintf(stderr, "cannot copy dcbmsg.dll from beside the test (error %lu)\n",
                (unsigned long)GetLastError());
        return -1;
    }
    /* A broker in a folder without dcbmsg.dll. */
    swprintf(nomsg, MAX_PATH, L"%ls\\nomsg", tmpdir);
    CreateDirectoryW(nomsg, NULL);
    make_file(nomsg, L"dcb-broker.exe", scratch);
    to_u8(scratch, nomsg_broker_u8, sizeof(nomsg_broker_u8));
    to_u8(shim_w, shim_u8, sizeof(shim_u8));
    to_u8(broker_w, broker_u8, sizeof(broker_u8));
    to_u8(config_w, config_u8, sizeof(config_u8));

    dhcp_existed = key_exists(DHCP_KEY);
    shim_key_existed = key_exists(SHIM_KEY);
    raw_read(SHIM_PARAMS, L"ExpectedBrokerAccount", &shim_saved_account);
    raw_read(PARAMS_KEY, L"CalloutDlls", &dhcp_saved_dlls);
    raw_read(PARAMS_KEY, L"CalloutEnabled", &dhcp_saved_enabled);
    if (key_exists(BACKUP_KEY) || service_exists()) {
        fprintf(stderr, "dcb looks installed in this Wine prefix already; refusing to touch it\n");
        return -1;
    }
    if (fnet_is_wine())
        printf("NOTE (Wine): running against Wine's registry and service control manager\n");
    return 0;
}

static int group_teardown(void **state)
{
    WCHAR p[MAX_PATH];

    scrub();
    if (dhcp_existed) {
        raw_write(PARAMS_KEY, L"CalloutDlls", &dhcp_saved_dlls);
        raw_write(PARAMS_KEY, L"CalloutEnabled", &dhcp_saved_enabled);
    } else {
        RegDeleteTreeW(HKEY_LOCAL_MACHINE, DHCP_KEY);
    }
    DeleteFileW(shim_w);
    DeleteFileW(broker_w);
    DeleteFileW(config_w);
    DeleteFileW(msgdll_w);
    swprintf(p, MAX_PATH, L"%ls\\nomsg\\dcb-broker.exe", tmpdir);
    DeleteFileW(p);
    swprintf(p, MAX_PATH, L"%ls\\nomsg", tmpdir);
    RemoveDirectoryW(p);
    RemoveDirectoryW(tmpdir);
    return 0;
}

static int setup(void **state)
{
    scrub();
    ctl_is_elevated = real_is_elevated;
    return 0;
}

static int teardown(void **state)
{
    scrub();
    ctl_is_elevated = real_is_elevated;
    return 0;
}

static int install(char **out, char **err, const char *account)
{
    if (account != NULL)
        return capture_run(out, err, "install", "--shim", shim_u8, "--broker", broker_u8,
                           "--config", config_u8, "--account", account, NULL);
    return capture_run(out, err, "install", "--shim", shim_u8, "--broker", broker_u8, "--config",
                       config_u8, NULL);
}

static void free2(char *a, char *b)
{
    free(a);
    free(b);
}

/* ---- checks on what install made ------------------------------------------ */

static void check_service(const WCHAR *account, const char *install_err)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT), svc;
    QUERY_SERVICE_CONFIGW *qc;
    BYTE buf[8192];
    DWORD need = 0;
    WCHAR cmd[MAX_PATH * 3];

    assert_non_null(scm);
    svc = OpenServiceW(scm, L"dcb-broker", SERVICE_QUERY_CONFIG);
    assert_non_null(svc);
    qc = (QUERY_SERVICE_CONFIGW *)buf;
    assert_true(QueryServiceConfigW(svc, qc, sizeof(buf), &need));
    assert_int_equal(qc->dwServiceType, SERVICE_WIN32_OWN_PROCESS);
    assert_int_equal(qc->dwStartType, SERVICE_AUTO_START);
    assert_int_equal(qc->dwErrorControl, SERVICE_ERROR_NORMAL);
    swprintf(cmd, MAX_PATH * 3, L"\"%ls\" --service --config \"%ls\"", broker_w, config_w);
    assert_true(wcscmp(qc->lpBinaryPathName, cmd) == 0);
    assert_non_null(qc->lpServiceStartName);
    if (_wcsicmp(qc->lpServiceStartName, account) != 0) {
        char got[512];
        to_u8(qc->lpServiceStartName, got, sizeof(got));
        fail_msg("service account is '%s'", got);
    }
    if (fnet_is_wine())
        printf("NOTE (Wine): the service records its account (%ls), but Wine runs every service "
               "as the prefix's one user: the low-privilege account itself cannot be shown "
               "here\n",
               account);

    /* The description. */
    need = 0;
    assert_true(QueryServiceConfig2W(svc, SERVICE_CONFIG_DESCRIPTION, buf, sizeof(buf), &need));
    assert_non_null(wcsstr(((SERVICE_DESCRIPTIONW *)buf)->lpDescription, L"dcbshim.dll"));

    /* Recovery: restart three times. */
    need = 0;
    if (QueryServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS, buf, sizeof(buf), &need) &&
        ((SERVICE_FAILURE_ACTIONSW *)buf)->cActions == 3) {
        SERVICE_FAILURE_ACTIONSW *fa = (SERVICE_FAILURE_ACTIONSW *)buf;
        assert_int_equal(fa->dwResetPeriod, 86400);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(fa->lpsaActions[i].Type, SC_ACTION_RESTART);
            assert_true(fa->lpsaActions[i].Delay >= 1000);
        }
        printf("recovery actions: restart after %lu, %lu, %lu ms\n",
               (unsigned long)fa->lpsaActions[0].Delay, (unsigned long)fa->lpsaActions[1].Delay,
               (unsigned long)fa->lpsaActions[2].Delay);
    } else {
        assert_true(fnet_is_wine());
        printf("NOTE (Wine): the SCM accepted the recovery actions but does not report them "
               "back (QueryServiceConfig2W: %s, error %lu): restart x3 cannot be shown here\n",
               need ? "no actions" : "failed", (unsigned long)GetLastError());
    }
    need = 0;
    if (QueryServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, buf, sizeof(buf), &need)) {
        assert_true(((SERVICE_FAILURE_ACTIONS_FLAG *)buf)->fFailureActionsOnNonCrashFailures);
    } else {
        assert_true(fnet_is_wine());
        assert_non_null(strstr(install_err, "SERVICE_CONFIG_FAILURE_ACTIONS_FLAG"));
        printf("NOTE (Wine): no SERVICE_CONFIG_FAILURE_ACTIONS_FLAG (error %lu); install warned "
               "about it, as it must\n",
               (unsigned long)GetLastError());
    }
    need = 0;
    if (QueryServiceConfig2W(svc, SERVICE_CONFIG_SERVICE_SID_INFO, buf, sizeof(buf), &need)) {
        assert_int_equal(((SERVICE_SID_INFO *)buf)->dwServiceSidType,
                         SERVICE_SID_TYPE_UNRESTRICTED);
    } else {
        assert_true(fnet_is_wine());
        assert_non_null(strstr(install_err, "SERVICE_CONFIG_SERVICE_SID_INFO"));
        printf("NOTE (Wine): no per-service SIDs (error %lu); install warned about it\n",
               (unsigned long)GetLastError());
    }
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
}

static void check_event_source(void)
{
    raw_t r;
    HMODULE msg;
    HANDLE es;
    WCHAR text[256];
    const WCHAR *inserts[1] = {L"hello from the test"};
    DWORD_PTR args[1] = {(DWORD_PTR)L"hello from the test"};

    raw_read(SOURCE_KEY, L"EventMessageFile", &r);
    assert_true(r.present);
    assert_int_equal(r.type, REG_EXPAND_SZ);
    assert_true(_wcsicmp((const WCHAR *)r.data, msgdll_w) == 0);
    raw_read(SOURCE_KEY, L"TypesSupported", &r);
    assert_true(r.present);
    assert_int_equal(r.type, REG_DWORD);
    assert_int_equal(*(DWORD *)r.data, 7);

    /* The message file really has message 1 = "%1". */
    msg = LoadLibraryExW(msgdll_w, NULL, LOAD_LIBRARY_AS_DATAFILE);
    assert_non_null(msg);
    assert_true(FormatMessageW(FORMAT_MESSAGE_FROM_HMODULE | FORMAT_MESSAGE_ARGUMENT_ARRAY, msg, 1,
                               0, text, 256, (va_list *)args) > 0);
    FreeLibrary(msg);
    assert_non_null(wcsstr(text, L"hello from the test"));

    /* And the source can be written to. */
    es = RegisterEventSourceW(NULL, L"dcb");
    assert_non_null(es);
    assert_true(ReportEventW(es, EVENTLOG_INFORMATION_TYPE, 0, 1, NULL, 1, 0, inserts, NULL));
    DeregisterEventSource(es);
    if (fnet_is_wine())
        printf("NOTE (Wine): ReportEventW succeeds, but Wine keeps no Application log to read "
               "the event back from; the registration and the message table were checked\n");
}

static void check_backup(const raw_t *dlls, const raw_t *enabled)
{
    raw_t r, cur;

    raw_read(BACKUP_KEY, L"CalloutDlls.Present", &r);
    assert_true(r.present);
    assert_int_equal(*(DWORD *)r.data, dlls->present);
    raw_read(BACKUP_KEY, L"CalloutDlls.Data", &r);
    assert_int_equal(r.present, dlls->present);
    if (dlls->present) {
        assert_int_equal(r.type, REG_BINARY);
        assert_int_equal(r.size, dlls->size);
        assert_memory_equal(r.data, dlls->data, r.size);
        raw_read(BACKUP_KEY, L"CalloutDlls.Type", &r);
        assert_int_equal(*(DWORD *)r.data, dlls->type);
    }
    raw_read(BACKUP_KEY, L"CalloutEnabled.Present", &r);
    assert_true(r.present);
    assert_int_equal(*(DWORD *)r.data, enabled->present);
    raw_read(BACKUP_KEY, L"CalloutEnabled.Data", &r);
    assert_int_equal(r.present, enabled->present);
    if (enabled->present) {
        assert_int_equal(r.size, enabled->size);
        assert_memory_equal(r.data, enabled->data, r.size);
        raw_read(BACKUP_KEY, L"CalloutEnabled.Type", &r);
        assert_int_equal(*(DWORD *)r.data, enabled->type);
    }
    /* What install wrote, to recognise it at uninstall. */
    raw_read(BACKUP_KEY, L"CalloutDlls.Written", &r);
    raw_read(PARAMS_KEY, L"CalloutDlls", &cur);
    assert_int_equal(r.size, cur.size);
    assert_memory_equal(r.data, cur.data, r.size);
    raw_read(BACKUP_KEY, L"Shim", &r);
    assert_int_equal(r.type, REG_SZ);
    assert_true(_wcsicmp((const WCHAR *)r.data, shim_w) == 0);
}

static void check_gone(void)
{
    raw_t r;

    assert_false(key_exists(BACKUP_KEY));
    assert_false(key_exists(DCB_KEY));
    assert_false(key_exists(SOURCE_KEY));
    assert_false(service_exists());
    if (!shim_key_existed) {
        assert_false(key_exists(SHIM_KEY));
    } else {
        raw_read(SHIM_PARAMS, L"ExpectedBrokerAccount", &r);
        assert_raw_equal(&r, &shim_saved_account);
    }
}

/* The shim was told which account serves its pipe. */
static void check_shim_account(const WCHAR *account)
{
    raw_t r;

    raw_read(SHIM_PARAMS, L"ExpectedBrokerAccount", &r);
    assert_true(r.present);
    assert_int_equal(r.type, REG_SZ);
    assert_true(_wcsicmp((const WCHAR *)r.data, account) == 0);
}

/* ---- tests -------------------------------------------------------------- */

static void test_elevation(void **state)
{
    raw_t dlls, enabled, now;
    char *out, *err;

    /* Tests run as Wine's administrator, elevated: the real check must see it. */
    assert_true(real_is_elevated());
    multisz(&dlls, VENDOR_A, NULL);
    dword(&enabled, 0);
    dhcp_set(&dlls, &enabled);
    ctl_is_elevated = deny;
    assert_int_equal(install(&out, &err, NULL), CTL_EXIT_NOT_ELEVATED);
    assert_non_null(strstr(err, "dcbctl: install: needs an elevated administrator"));
    free2(out, err);
    assert_int_equal(capture_run(&out, &err, "uninstall", NULL), CTL_EXIT_NOT_ELEVATED);
    assert_non_null(strstr(err, "dcbctl: uninstall: needs an elevated administrator"));
    free2(out, err);
    raw_read(PARAMS_KEY, L"CalloutDlls", &now);
    assert_raw_equal(&now, &dlls);
    check_gone();
    printf("NOTE: a non-elevated token cannot be made under Wine; the refusal is shown with the "
           "elevation check replaced, and the real check was seen to pass as administrator\n");
}

static void test_no_dhcp_server(void **state)
{
    char *out, *err;

    RegDeleteTreeW(HKEY_LOCAL_MACHINE, DHCP_KEY);
    assert_int_equal(install(&out, &err, NULL), CTL_EXIT_NO_DHCP);
    assert_non_null(strstr(err, "the DHCP Server is not installed here"));
    free2(out, err);
    check_gone();
}

static void test_missing_files(void **state)
{
    raw_t dlls, enabled, now;
    char *out, *err, missing[MAX_PATH * 3];

    multisz(&dlls, VENDOR_A, NULL);
    dword(&enabled, 1);
    dhcp_set(&dlls, &enabled);
    snprintf(missing, sizeof(missing), "%s.not-there", shim_u8);
    assert_int_equal(capture_run(&out, &err, "install", "--shim", missing, "--broker", broker_u8,
                                 "--config", config_u8, NULL),
                     CTL_EXIT_MISSING_FILE);
    assert_non_null(strstr(err, "dcbctl: install: the shim not found: "));
    assert_non_null(strstr(err, "dcbshim.dll.not-there"));
    free2(out, err);
    snprintf(missing, sizeof(missing), "%s.not-there", config_u8);
    assert_int_equal(capture_run(&out, &err, "install", "--shim", shim_u8, "--broker", broker_u8,
                                 "--config", missing, NULL),
                     CTL_EXIT_MISSING_FILE);
    assert_non_null(strstr(err, "the broker's configuration not found"));
    assert_non_null(strstr(err, "dcb.ini.sample"));
    free2(out, err);
    assert_int_equal(capture_run(&out, &err, "install", "--shim", shim_u8, "--broker",
                                 nomsg_broker_u8, "--config", config_u8, NULL),
                     CTL_EXIT_MISSING_FILE);
    assert_non_null(strstr(err, "the Event Log message file not found"));
    free2(out, err);
    /* A folder is not a file. */
    {
        char dir[MAX_PATH * 3];
        to_u8(tmpdir, dir, sizeof(dir));
        assert_int_equal(capture_run(&out, &err, "install", "--shim", dir, "--broker", broker_u8,
                                     "--config", config_u8, NULL),
                         CTL_EXIT_MISSING_FILE);
        free2(out, err);
    }
    raw_read(PARAMS_KEY, L"CalloutDlls", &now);
    assert_raw_equal(&now, &dlls);
    check_gone();
}

static void test_install_uninstall_with_vendors(void **state)
{
    raw_t dlls, enabled, now, want;
    char *out, *err, *ierr;

    multisz(&dlls, VENDOR_A, VENDOR_B, NULL);
    dword(&enabled, 0);
    dhcp_set(&dlls, &enabled);

    assert_int_equal(install(&out, &ierr, NULL), 0);
    assert_non_null(strstr(out, "dcb installed."));
    assert_non_null(strstr(out, "Restart the DHCP Server service once"));
    assert_non_null(strstr(out, "sc start dcb-broker"));
    free(out);

    /* CalloutDlls = [shim, vendor A, vendor B]; CalloutEnabled = 1. */
    multisz(&want, shim_w, VENDOR_A, VENDOR_B, NULL);
    raw_read(PARAMS_KEY, L"CalloutDlls", &now);
    assert_raw_equal(&now, &want);
    dword(&want, 1);
    raw_read(PARAMS_KEY, L"CalloutEnabled", &now);
    assert_raw_equal(&now, &want);
    check_backup(&dlls, &enabled);
    check_service(L"NT AUTHORITY\\LocalService", ierr);
    if (!shim_key_existed)
        check_shim_account(L"NT AUTHORITY\\LocalService");
    check_event_source();
    free(ierr);

    /* Twice: refused, nothing changed. */
    assert_int_equal(install(&out, &err, NULL), CTL_EXIT_ALREADY_INSTALLED);
    assert_non_null(strstr(err, "already installed: CalloutDlls already starts with"));
    free2(out, err);
    multisz(&want, shim_w, VENDOR_A, VENDOR_B, NULL);
    raw_read(PARAMS_KEY, L"CalloutDlls", &now);
    assert_raw_equal(&now, &want);

    /* Uninstall: byte for byte as before, and everything else gone. */
    assert_int_equal(capture_run(&out, &err, "uninstall", NULL), 0);
    assert_non_null(strstr(out, "CalloutDlls: restored to the value saved at install"));
    assert_non_null(strstr(out, "dcb uninstalled."));
    assert_string_equal(err, "");
    free2(out, err);
    raw_read(PARAMS_KEY, L"CalloutDlls", &now);
    assert_raw_equal(&now, &dlls);
    raw_read(PARAMS_KEY, L"CalloutEnabled", &now);
    assert_raw_equal(&now, &enabled);
    check_gone();

    /* And once more: not installed. */
    assert_int_equal(capture_run(&out, &err, "uninstall", NULL), CTL_EXIT_NOT_INSTALLED);
    assert_non_null(strstr(err, "dcb is not installed"));
    free2(out, err);
}

static void test_values_absent_before(void **state)
{
    raw_t none, now, want;
    char *out, *err;

    absent(&none);
    dhcp_set(&none, &none);
    assert_int_equal(install(&out, &err, NULL), 0);
    free2(out, err);
    multisz(&want, shim_w, NULL);
    raw_read(PARAMS_KEY, L"CalloutDlls", &now);
    assert_raw_equal(&now, &want);
    dword(&want, 1);
    raw_read(PARAMS_KEY, L"CalloutEnabled", &now);
    assert_raw_equal(&now, &want);
    check_backup(&none, &none);

    assert_int_equal(capture_run(&out, &err, "uninstall", NULL), 0);
    assert_non_null(strstr(out, "(it did not exist: removed)"));
    free2(out, err);
    raw_read(PARAMS_KEY, L"CalloutDlls", &now);
    assert_false(now.present);
    raw_read(PARAMS_KEY, L"CalloutEnabled", &now);
    assert_false(now.present);
    check_gone();
}

static void test_odd_values_restored_exactly(void **state)
{
    raw_t dlls, enabled, now, want;
    char *out, *err;

    /* A list without its final terminator, and CalloutEnabled as text. */
    multisz(&dlls, VENDOR_A, NULL);
    dlls.size -= sizeof(WCHAR);
    memset(&enabled, 0, sizeof(enabled));
    enabled.present = 1;
    enabled.type = REG_SZ;
    memcpy(enabled.data, L"yes", 8);
    enabled.size = 8;
    dhcp_set(&dlls, &enabled);

    assert_int_equal(install(&out, &err, NULL), 0);
    assert_non_null(strstr(out, "CalloutEnabled: 1 (was another value)"));
    free2(out, err);
    multisz(&want, shim_w, VENDOR_A, NULL);
    raw_read(PARAMS_KEY, L"CalloutDlls", &now);
    assert_raw_equal(&now, &want);
    check_backup(&dlls, &enabled);

    assert_int_equal(capture_run(&out, &err, "uninstall", NULL), 0);
    free2(out, err);
    raw_read(PARAMS_KEY, L"CalloutDlls", &now);
    assert_raw_equal(&now, &dlls);
    raw_read(PARAMS_KEY, L"CalloutEnabled", &now);
    assert_raw_equal(&now, &enabled);
    check_gone();
}

static void test_changed_after_install(void **state)
{
    raw_t dlls, enabled, now, want;
    char *out, *err;

    multisz(&dlls, VENDOR_A, VENDOR_B, NULL);
    dword(&enabled, 0);
    dhcp_set(&dlls, &enabled);
    assert_int_equal(install(&out, &err, NULL), 0);
    free2(out, err);

    /* An administrator adds a third vendor after the shim. */
    multisz(&now, shim_w, VENDOR_A, VENDOR_B, L"C:\\Vendor\\gamma.dll", NULL);
    raw_write(PARAMS_KEY, L"CalloutDlls", &now);

    assert_int_equal(capture_run(&out, &err, "uninstall", NULL), 0);
    assert_non_null(strstr(err, "warning: CalloutDlls was changed after install"));
    assert_non_null(strstr(err, "gamma.dll"));
    free2(out, err);
    /* Their change is kept; only the shim is gone. */
    multisz(&want, VENDOR_A, VENDOR_B, L"C:\\Vendor\\gamma.dll", NULL);
    raw_read(PARAMS_KEY, L"CalloutDlls", &now);
    assert_raw_equal(&now, &want);
    raw_read(PARAMS_KEY, L"CalloutEnabled", &now);
    assert_raw_equal(&now, &enabled);
    check_gone();
}

static void test_refusals(void **state)
{
    raw_t dlls, enabled, now;
    char *out, *err;
    HKEY k;

    dword(&enabled, 1);

    /* The shim listed, but not first. */
    multisz(&dlls, VENDOR_A, L"D:\\old\\DCBSHIM.DLL", NULL);
    dhcp_set(&dlls, &enabled);
    assert_int_equal(install(&out, &err, NULL), CTL_EXIT_ALREADY_INSTALLED);
    assert_non_null(strstr(err, "at position 2, not first"));
    free2(out, err);
    raw_read(PARAMS_KEY, L"CalloutDlls", &now);
    assert_raw_equal(&now, &dlls);

    /* A backup left behind. */
    multisz(&dlls, VENDOR_A, NULL);
    dhcp_set(&dlls, &enabled);
    assert_int_equal(RegCreateKeyExW(HKEY_LOCAL_MACHINE, BACKUP_KEY, 0, NULL, 0,
                                     KEY_ALL_ACCESS | VIEW, NULL, &k, NULL),
                     ERROR_SUCCESS);
    RegCloseKey(k);
    assert_int_equal(install(&out, &err, NULL), CTL_EXIT_ALREADY_INSTALLED);
    assert_non_null(strstr(err, "a backup from an earlier install"));
    free2(out, err);
    scrub();

    /* A dcb-broker service that is not ours. */
    {
        SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_ALL_ACCESS);
        SC_HANDLE svc = CreateServiceW(
            scm, L"dcb-broker", L"someone else's", SERVICE_ALL_ACCESS, SERVICE_WIN32_OWN_PROCESS,
            SERVICE_DEMAND_START, SERVICE_ERROR_NORMAL, L"C:\\x.exe", NULL, NULL, NULL, NULL, NULL);
        assert_non_null(svc);
        CloseServiceHandle(svc);
        CloseServiceHandle(scm);
    }
    assert_int_equal(install(&out, &err, NULL), CTL_EXIT_ALREADY_INSTALLED);
    assert_non_null(strstr(err, "a service named dcb-broker exists"));
    free2(out, err);
    scrub();

    /* CalloutDlls of a type the DHCP Server does not read. */
    memset(&dlls, 0, sizeof(dlls));
    dlls.present = 1;
    dlls.type = REG_SZ;
    memcpy(dlls.data, VENDOR_A, sizeof(VENDOR_A));
    dlls.size = sizeof(VENDOR_A);
    dhcp_set(&dlls, &enabled);
    assert_int_equal(install(&out, &err, NULL), CTL_EXIT_NO_DHCP);
    assert_non_null(strstr(err, "not REG_MULTI_SZ"));
    free2(out, err);

    /* An odd byte count is no list at all. */
    multisz(&dlls, VENDOR_A, NULL);
    dlls.type = REG_MULTI_SZ;
    dlls.size -= 1;
    dhcp_set(&dlls, &enabled);
    assert_int_equal(install(&out, &err, NULL), CTL_EXIT_NO_DHCP);
    assert_non_null(strstr(err, "not a well-formed list"));
    free2(out, err);
    raw_read(PARAMS_KEY, L"CalloutDlls", &now);
    assert_raw_equal(&now, &dlls);
    check_gone();
}

static void test_virtual_account(void **state)
{
    raw_t dlls, enabled;
    char *out, *err;

    multisz(&dlls, VENDOR_A, NULL);
    dword(&enabled, 0);
    dhcp_set(&dlls, &enabled);
    assert_int_equal(install(&out, &err, "virtual"), 0);
    assert_non_null(strstr(out, "account NT SERVICE\\dcb-broker"));
    check_service(L"NT SERVICE\\dcb-broker", err);
    if (!shim_key_existed)
        check_shim_account(L"NT SERVICE\\dcb-broker");
    free2(out, err);
    assert_int_equal(capture_run(&out, &err, "uninstall", NULL), 0);
    free2(out, err);
    check_gone();
}

static void test_shim_account_kept(void **state)
{
    raw_t dlls, enabled, mine, now;
    char *out, *err;

    multisz(&dlls, VENDOR_A, NULL);
    dword(&enabled, 0);
    dhcp_set(&dlls, &enabled);
    /* An administrator's own setting, and another of the shim's settings. */
    memset(&mine, 0, sizeof(mine));
    mine.present = 1;
    mine.type = REG_SZ;
    memcpy(mine.data, L"*", 4);
    mine.size = 4;
    raw_write(SHIM_PARAMS, L"ExpectedBrokerAccount", &mine);
    dword(&now, 250);
    raw_write(SHIM_PARAMS, L"NewPktDeadlineMs", &now);

    assert_int_equal(install(&out, &err, NULL), 0);
    assert_non_null(strstr(out, "ExpectedBrokerAccount: * (already set; left as it is)"));
    assert_non_null(strstr(err, "warning: the shim's ExpectedBrokerAccount was already set"));
    free2(out, err);
    raw_read(SHIM_PARAMS, L"ExpectedBrokerAccount", &now);
    assert_raw_equal(&now, &mine);
    assert_int_equal(capture_run(&out, &err, "uninstall", NULL), 0);
    free2(out, err);
    /* Still the administrator's, and the key with their other setting stays. */
    raw_read(SHIM_PARAMS, L"ExpectedBrokerAccount", &now);
    assert_raw_equal(&now, &mine);
    raw_read(SHIM_PARAMS, L"NewPktDeadlineMs", &now);
    assert_true(now.present);
    assert_false(key_exists(BACKUP_KEY));
    assert_false(service_exists());
    /* Back to the state the tests started from. */
    RegDeleteKeyValueW(HKEY_LOCAL_MACHINE, SHIM_PARAMS, L"NewPktDeadlineMs");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_elevation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_dhcp_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_install_uninstall_with_vendors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values_absent_before, setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_values_restored_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_after_install, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_virtual_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shim_account_kept, setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
