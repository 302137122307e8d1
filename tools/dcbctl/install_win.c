/*
 * install_win.c — `dcbctl install` and `dcbctl uninstall` on Windows.
 *
 * install, in this order, each step undone if a later one fails:
 *   1. checks: elevated; the shim, broker, config and message DLL exist; the
 *      DHCP Server's Parameters key exists and CalloutDlls is a REG_MULTI_SZ;
 *      dcb is not installed already (no dcbshim.dll in CalloutDlls, no
 *      backup, no dcb-broker service). Nothing is written before all pass.
 *   2. backup: CalloutDlls and CalloutEnabled exactly as they are (presence,
 *      type, bytes) under HKLM\SOFTWARE\dcb\Backup, with what install is
 *      about to write, so uninstall can tell whether someone changed it since.
 *   3. the Event Log source "dcb" (Application log), pointing at dcbmsg.dll.
 *   4. the dcb-broker service: own process, auto start, a low-privilege
 *      account, restart on failure; and, unless an administrator set it
 *      already, the shim's ExpectedBrokerAccount (Services\dcb\Parameters)
 *      = that account, since the shim talks only to a broker it recognises.
 *   5. last, CalloutDlls = [shim, every previous entry in order] and
 *      CalloutEnabled = 1: the DHCP server is pointed at the shim only once
 *      the broker it needs is registered.
 *
 * uninstall undoes it: CalloutDlls and CalloutEnabled back to the saved bytes
 * (or, if an administrator changed CalloutDlls since, only the shim taken
 * out), the service stopped and deleted, the source removed, and the backup
 * deleted last, so that a failed uninstall can simply be run again.
 */
#include "dcbctl.h"
#include "install_win.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define REG_VIEW KEY_WOW64_64KEY

static int real_is_elevated(void)
{
    SID_IDENTIFIER_AUTHORITY nt = {SECURITY_NT_AUTHORITY};
    PSID admins = NULL;
    BOOL member = FALSE;

    /*
     * Under UAC an administrator's unelevated token carries Administrators
     * as deny-only, and CheckTokenMembership reports it as absent: this is
     * "member and elevated" in one test.
     */
    if (!AllocateAndInitializeSid(&nt, 2, SECURITY_BUILTIN_DOMAIN_RID, DOMAIN_ALIAS_RID_ADMINS, 0,
                                  0, 0, 0, 0, 0, &admins))
        return 0;
    if (!CheckTokenMembership(NULL, admins, &member))
        member = FALSE;
    FreeSid(admins);
    return member != FALSE;
}

int (*ctl_is_elevated)(void) = real_is_elevated;

typedef struct inst {
    FILE *in_out;
    FILE *in_err;
    WCHAR *in_shim; /* full paths */
    WCHAR *in_broker;
    WCHAR *in_config;
    WCHAR *in_msgdll;
    const char *in_account;
} inst_t;

/* Prints "dcbctl: what: <Windows' words>" and returns CTL_EXIT_SYSTEM. */
static int sys_fail(FILE *err, const char *what, DWORD code)
{
    char words[512];

    inst_win_words(code, words, sizeof(words));
    fprintf(err, "dcbctl: %s: %s\n", what, words);
    return CTL_EXIT_SYSTEM;
}

static void put_w(FILE *f, const WCHAR *w)
{
    char *s = inst_utf8(w);

    fputs(s != NULL ? s : "?", f);
    free(s);
}

static int same_text(const WCHAR *a, const WCHAR *b)
{
    return CompareStringOrdinal(a, -1, b, -1, TRUE) == CSTR_EQUAL;
}

static const WCHAR *base_name(const WCHAR *p)
{
    const WCHAR *b = p;

    for (; *p != 0; p++)
        if (*p == L'\\' || *p == L'/' || *p == L':')
            b = p + 1;
    return b;
}

/* dir + "\" + name, malloc'd. dir may end in a separator. */
static WCHAR *path_join(const WCHAR *dir, const WCHAR *name)
{
    size_t dl = wcslen(dir), nl = wcslen(name);
    WCHAR *p = malloc((dl + nl + 2) * sizeof(WCHAR));

    if (p == NULL)
        return NULL;
    memcpy(p, dir, dl * sizeof(WCHAR));
    if (dl > 0 && dir[dl - 1] != L'\\' && dir[dl - 1] != L'/')
        p[dl++] = L'\\';
    memcpy(p + dl, name, (nl + 1) * sizeof(WCHAR));
    return p;
}

/* The folder of a path (without the separator), malloc'd. */
static WCHAR *dir_of(const WCHAR *path)
{
    size_t n = (size_t)(base_name(path) - path);
    WCHAR *d = malloc((n + 1) * sizeof(WCHAR));

    if (d == NULL)
        return NULL;
    memcpy(d, path, n * sizeof(WCHAR));
    if (n > 0 && (d[n - 1] == L'\\' || d[n - 1] == L'/'))
        n--;
    d[n] = 0;
    return d;
}

static WCHAR *self_dir(void)
{
    WCHAR buf[MAX_PATH * 4];
    DWORD n = GetModuleFileNameW(NULL, buf, sizeof(buf) / sizeof(buf[0]));

    if (n == 0 || n >= sizeof(buf) / sizeof(buf[0]))
        return NULL;
    return dir_of(buf);
}

static WCHAR *full_path(const WCHAR *p)
{
    DWORD n = GetFullPathNameW(p, 0, NULL, NULL);
    WCHAR *f;

    if (n == 0)
        return NULL;
    f = malloc((size_t)n * sizeof(WCHAR));
    if (f != NULL && GetFullPathNameW(p, n, f, NULL) == 0) {
        free(f);
        return NULL;
    }
    return f;
}

/* The option's path, or name in dir; made absolute. */
static WCHAR *resolve(const char *arg, const WCHAR *dir, const WCHAR *name)
{
    WCHAR *w = arg != NULL ? inst_wide(arg) : path_join(dir, name);
    WCHAR *f = w != NULL ? full_path(w) : NULL;

    free(w);
    return f;
}

static int is_file(const WCHAR *p)
{
    DWORD attr = GetFileAttributesW(p);

    return attr != INVALID_FILE_ATTRIBUTES && !(attr & FILE_ATTRIBUTE_DIRECTORY);
}

static int need_file(inst_t *in, const char *what, const WCHAR *path, const char *hint)
{
    if (is_file(path))
        return 0;
    fprintf(in->in_err, "dcbctl: install: %s not found: ", what);
    put_w(in->in_err, path);
    fprintf(in->in_err, "%s%s\n", hint != NULL ? " " : "", hint != NULL ? hint : "");
    return -1;
}

static void inst_free(inst_t *in)
{
    free(in->in_shim);
    free(in->in_broker);
    free(in->in_config);
    free(in->in_msgdll);
}

static int key_exists(const WCHAR *path)
{
    HKEY k;

    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, path, 0, KEY_QUERY_VALUE | REG_VIEW, &k) != ERROR_SUCCESS)
        return 0;
    RegCloseKey(k);
    return 1;
}

static void delete_backup(void)
{
    RegDeleteKeyExW(HKEY_LOCAL_MACHINE, INST_BACKUP_KEY, REG_VIEW, 0);
    /* Only when empty: RegDeleteKeyEx never deletes a key with subkeys. */
    RegDeleteKeyExW(HKEY_LOCAL_MACHINE, INST_DCB_KEY, REG_VIEW, 0);
}

static LSTATUS set_sz(HKEY k, const WCHAR *name, DWORD type, const WCHAR *s)
{
    return RegSetValueExW(k, name, 0, type, (const BYTE *)s,
                          (DWORD)((wcslen(s) + 1) * sizeof(WCHAR)));
}

/* Step 3: the Event Log source. */
static LSTATUS register_source(const WCHAR *msgdll)
{
    DWORD types = EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE;
    HKEY k;
    LSTATUS st;

    st = RegCreateKeyExW(HKEY_LOCAL_MACHINE, INST_EVENTLOG_KEY, 0, NULL, 0,
                         KEY_SET_VALUE | REG_VIEW, NULL, &k, NULL);
    if (st != ERROR_SUCCESS)
        return st;
    st = set_sz(k, L"EventMessageFile", REG_EXPAND_SZ, msgdll);
    if (st == ERROR_SUCCESS)
        st =
            RegSetValueExW(k, L"TypesSupported", 0, REG_DWORD, (const BYTE *)&types, sizeof(types));
    RegCloseKey(k);
    return st;
}

/* Step 4: the service. On success *svc is open with full access. */
static int create_service(inst_t *in, SC_HANDLE scm, SC_HANDLE *svc)
{
    SC_ACTION actions[3] = {
        {SC_ACTION_RESTART, 5000}, {SC_ACTION_RESTART, 10000}, {SC_ACTION_RESTART, 30000}};
    SERVICE_FAILURE_ACTIONSW fa;
    SERVICE_FAILURE_ACTIONS_FLAG faf = {TRUE};
    SERVICE_DESCRIPTIONW desc;
    SERVICE_SID_INFO sid = {SERVICE_SID_TYPE_UNRESTRICTED};
    WCHAR *account = inst_wide(in->in_account);
    WCHAR description[] = L"Runs DHCP Server callout DLLs out of process for dcbshim.dll "
                          L"(dcb, the DHCP Callout Broker). If it stops, the DHCP Server keeps "
                          L"serving with the shim's default decisions.";
    size_t len = wcslen(in->in_broker) + wcslen(in->in_config) + 32;
    WCHAR *cmd = malloc(len * sizeof(WCHAR));

    *svc = NULL;
    if (cmd == NULL || account == NULL) {
        free(cmd);
        free(account);
        return sys_fail(in->in_err, "install", ERROR_NOT_ENOUGH_MEMORY);
    }
    /* "C:\dcb\dcb-broker.exe" --service --config "C:\dcb\dcb.ini" */
    wcscpy(cmd, L"\"");
    wcscat(cmd, in->in_broker);
    wcscat(cmd, L"\" --service --config \"");
    wcscat(cmd, in->in_config);
    wcscat(cmd, L"\"");
    *svc = CreateServiceW(scm, INST_SERVICE, L"dcb broker (DHCP callout broker)",
                          SERVICE_ALL_ACCESS, SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START,
                          SERVICE_ERROR_NORMAL, cmd, NULL, NULL, NULL, account, NULL);
    free(cmd);
    free(account);
    if (*svc == NULL)
        return sys_fail(in->in_err, "install: creating the dcb-broker service", GetLastError());

    desc.lpDescription = description;
    memset(&fa, 0, sizeof(fa));
    fa.dwResetPeriod = 24 * 3600; /* seconds without a failure before the count restarts */
    fa.cActions = 3;
    fa.lpsaActions = actions;
    if (!ChangeServiceConfig2W(*svc, SERVICE_CONFIG_DESCRIPTION, &desc))
        return sys_fail(in->in_err, "install: setting the service description", GetLastError());
    if (!ChangeServiceConfig2W(*svc, SERVICE_CONFIG_FAILURE_ACTIONS, &fa))
        return sys_fail(in->in_err, "install: setting the service's recovery actions",
                        GetLastError());
    /*
     * Also restart when the broker exits with an error rather than crashing.
     * Every Windows since Vista knows this level; a system that does not
     * (Wine) still restarts on crashes, so that is a warning, not a failure.
     */
    if (!ChangeServiceConfig2W(*svc, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, &faf)) {
        DWORD code = GetLastError();
        if (code != ERROR_INVALID_LEVEL)
            return sys_fail(in->in_err, "install: setting the service's recovery flag", code);
        fprintf(in->in_err, "dcbctl: install: warning: this system cannot restart the broker "
                            "after an error exit (SERVICE_CONFIG_FAILURE_ACTIONS_FLAG), only "
                            "after a crash\n");
    }
    /*
     * A service SID (NT SERVICE\dcb-broker) even under LocalService: the
     * broker's pipes can name exactly this service in their DACLs, and the
     * shim can check that the pipe it reaches is served by it.
     */
    if (!ChangeServiceConfig2W(*svc, SERVICE_CONFIG_SERVICE_SID_INFO, &sid)) {
        DWORD code = GetLastError();
        if (code != ERROR_INVALID_LEVEL)
            return sys_fail(in->in_err, "install: setting the service SID type", code);
        fprintf(in->in_err, "dcbctl: install: warning: this system has no per-service SIDs "
                            "(SERVICE_CONFIG_SERVICE_SID_INFO)\n");
    }
    return 0;
}

/* The shim's ExpectedBrokerAccount; absent when its key is. */
static LSTATUS shim_account_read(regval_t *v)
{
    HKEY k;
    LSTATUS st;

    memset(v, 0, sizeof(*v));
    st = RegOpenKeyExW(HKEY_LOCAL_MACHINE, INST_SHIM_PARAMS, 0, KEY_QUERY_VALUE | REG_VIEW, &k);
    if (st == ERROR_FILE_NOT_FOUND)
        return ERROR_SUCCESS;
    if (st != ERROR_SUCCESS)
        return st;
    st = regval_read(k, L"ExpectedBrokerAccount", v);
    RegCloseKey(k);
    return st;
}

/* Writes v (or deletes the value when v is absent), creating the key if needed. */
static LSTATUS shim_account_write(const regval_t *v)
{
    HKEY k;
    LSTATUS st;

    if (!v->rv_present) {
        st = RegOpenKeyExW(HKEY_LOCAL_MACHINE, INST_SHIM_PARAMS, 0, KEY_SET_VALUE | REG_VIEW, &k);
        if (st == ERROR_FILE_NOT_FOUND)
            return ERROR_SUCCESS;
    } else {
        st = RegCreateKeyExW(HKEY_LOCAL_MACHINE, INST_SHIM_PARAMS, 0, NULL, 0,
                             KEY_SET_VALUE | REG_VIEW, NULL, &k, NULL);
    }
    if (st != ERROR_SUCCESS)
        return st;
    st = regval_write(k, L"ExpectedBrokerAccount", v);
    RegCloseKey(k);
    return st;
}

static int key_is_empty(const WCHAR *path)
{
    DWORD subkeys = 1, values = 1;
    HKEY k;

    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, path, 0, KEY_QUERY_VALUE | REG_VIEW, &k) != ERROR_SUCCESS)
        return 0;
    if (RegQueryInfoKeyW(k, NULL, NULL, NULL, &subkeys, NULL, NULL, &values, NULL, NULL, NULL,
                         NULL) != ERROR_SUCCESS)
        subkeys = values = 1;
    RegCloseKey(k);
    return subkeys == 0 && values == 0;
}

/* Bits of "ShimKeys.Created" in the backup. */
#define CREATED_SHIM_KEY 1u
#define CREATED_SHIM_PARAMS 2u

/* Deletes the shim's keys that install created, once nothing is left in them. */
static void shim_keys_prune(DWORD created)
{
    if ((created & CREATED_SHIM_PARAMS) && key_is_empty(INST_SHIM_PARAMS))
        RegDeleteKeyExW(HKEY_LOCAL_MACHINE, INST_SHIM_PARAMS, REG_VIEW, 0);
    if ((created & CREATED_SHIM_KEY) && key_is_empty(INST_SHIM_KEY))
        RegDeleteKeyExW(HKEY_LOCAL_MACHINE, INST_SHIM_KEY, REG_VIEW, 0);
}

static void print_list(FILE *f, const wlist_t *l, const char *first_note, const char *rest_note)
{
    if (l->wl_n == 0) {
        fprintf(f, "      (empty)\n");
        return;
    }
    for (size_t i = 0; i < l->wl_n; i++) {
        fprintf(f, "      %zu. ", i + 1);
        put_w(f, l->wl_items[i]);
        if (i == 0 && first_note != NULL)
            fprintf(f, "  %s", first_note);
        else if (i > 0 && rest_note != NULL)
            fprintf(f, "  %s", rest_note);
        fputc('\n', f);
    }
}

int ctl_install(const ctl_args_t *a, FILE *out, FILE *err)
{
    inst_t in;
    WCHAR *dir = NULL, *bdir = NULL;
    HKEY params = NULL, backup = NULL;
    SC_HANDLE scm = NULL, svc = NULL;
    regval_t orig_dlls, orig_enabled, written, orig_acct, acct;
    wlist_t old, now;
    DWORD one = 1, disp = 0, shim_created = 0;
    LSTATUS st;
    int rc = CTL_EXIT_OK, missing = 0;
    int did_backup = 0, did_source = 0, did_service = 0, did_acct = 0, did_values = 0;
    int rollback_complete = 1;
    WCHAR *wacct = NULL;

    memset(&in, 0, sizeof(in));
    memset(&old, 0, sizeof(old));
    memset(&now, 0, sizeof(now));
    memset(&orig_dlls, 0, sizeof(orig_dlls));
    memset(&orig_enabled, 0, sizeof(orig_enabled));
    memset(&written, 0, sizeof(written));
    memset(&orig_acct, 0, sizeof(orig_acct));
    memset(&acct, 0, sizeof(acct));
    in.in_out = out;
    in.in_err = err;
    in.in_account = ctl_account_name(a->a_account);

    /* ---- 1. checks; nothing is written until all pass ---- */
    if (!ctl_is_elevated()) {
        fprintf(err, "dcbctl: install: needs an elevated administrator (run from an "
                     "\"Administrator\" command prompt or PowerShell)\n");
        return CTL_EXIT_NOT_ELEVATED;
    }
    dir = self_dir();
    in.in_shim = resolve(a->a_shim, dir != NULL ? dir : L".", L"dcbshim.dll");
    in.in_broker = resolve(a->a_broker, dir != NULL ? dir : L".", L"dcb-broker.exe");
    in.in_config = resolve(a->a_config, dir != NULL ? dir : L".", L"dcb.ini");
    bdir = in.in_broker != NULL ? dir_of(in.in_broker) : NULL;
    in.in_msgdll = bdir != NULL ? path_join(bdir, INST_MESSAGE_DLL) : NULL;
    free(dir);
    free(bdir);
    if (in.in_shim == NULL || in.in_broker == NULL || in.in_config == NULL ||
        in.in_msgdll == NULL) {
        fprintf(err, "dcbctl: install: a path given is not valid UTF-8 or not a valid path\n");
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    missing |= need_file(&in, "the shim", in.in_shim, "(--shim names it)");
    missing |= need_file(&in, "the broker", in.in_broker, "(--broker names it)");
    missing |= need_file(&in, "the broker's configuration", in.in_config,
                         "(--config names it; the package has dcb.ini.sample to start from)");
    missing |= need_file(&in, "the Event Log message file", in.in_msgdll,
                         "(it belongs beside the broker)");
    if (missing) {
        rc = CTL_EXIT_MISSING_FILE;
        goto out;
    }

    st = RegOpenKeyExW(HKEY_LOCAL_MACHINE, INST_DHCP_PARAMS, 0,
                       KEY_QUERY_VALUE | KEY_SET_VALUE | REG_VIEW, &params);
    if (st == ERROR_FILE_NOT_FOUND) {
        fprintf(err,
                "dcbctl: install: the DHCP Server is not installed here (no "
                "HKLM\\%s)\n",
                "SYSTEM\\CurrentControlSet\\Services\\DHCPServer\\Parameters");
        rc = CTL_EXIT_NO_DHCP;
        goto out;
    }
    if (st != ERROR_SUCCESS) {
        rc = sys_fail(err, "install: opening the DHCP Server's Parameters key", (DWORD)st);
        goto out;
    }
    if ((st = regval_read(params, L"CalloutDlls", &orig_dlls)) != ERROR_SUCCESS ||
        (st = regval_read(params, L"CalloutEnabled", &orig_enabled)) != ERROR_SUCCESS) {
        rc = sys_fail(err, "install: reading CalloutDlls/CalloutEnabled", (DWORD)st);
        goto out;
    }
    if (orig_dlls.rv_present) {
        if (orig_dlls.rv_type != REG_MULTI_SZ) {
            fprintf(err,
                    "dcbctl: install: CalloutDlls has registry type %lu, not REG_MULTI_SZ (7) "
                    "as the DHCP Server expects; fix it by hand first\n",
                    (unsigned long)orig_dlls.rv_type);
            rc = CTL_EXIT_NO_DHCP;
            goto out;
        }
        if (wlist_from_multisz(orig_dlls.rv_data, orig_dlls.rv_size, &old) != 0) {
            fprintf(err,
                    "dcbctl: install: CalloutDlls is not a well-formed list (%lu bytes); "
                    "fix it by hand first\n",
                    (unsigned long)orig_dlls.rv_size);
            rc = CTL_EXIT_NO_DHCP;
            goto out;
        }
    }
    for (size_t i = 0; i < old.wl_n; i++) {
        if (same_text(old.wl_items[i], in.in_shim) ||
            same_text(base_name(old.wl_items[i]), L"dcbshim.dll")) {
            if (i == 0)
                fprintf(err, "dcbctl: install: already installed: CalloutDlls already starts "
                             "with ");
            else
                fprintf(err, "dcbctl: install: CalloutDlls already lists ");
            put_w(err, old.wl_items[i]);
            if (i == 0)
                fprintf(err, " (dcbctl uninstall removes it)\n");
            else
                fprintf(err,
                        " at position %zu, not first; run dcbctl uninstall or fix "
                        "CalloutDlls by hand\n",
                        i + 1);
            rc = CTL_EXIT_ALREADY_INSTALLED;
            goto out;
        }
    }
    if (key_exists(INST_BACKUP_KEY)) {
        fprintf(err, "dcbctl: install: already installed: a backup from an earlier install is in "
                     "HKLM\\SOFTWARE\\dcb\\Backup; run dcbctl uninstall first\n");
        rc = CTL_EXIT_ALREADY_INSTALLED;
        goto out;
    }
    scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT | SC_MANAGER_CREATE_SERVICE);
    if (scm == NULL) {
        rc = sys_fail(err, "install: opening the service control manager", GetLastError());
        goto out;
    }
    svc = OpenServiceW(scm, INST_SERVICE, SERVICE_QUERY_STATUS);
    if (svc != NULL) {
        fprintf(err, "dcbctl: install: already installed: a service named dcb-broker exists; "
                     "run dcbctl uninstall first\n");
        CloseServiceHandle(svc);
        svc = NULL;
        rc = CTL_EXIT_ALREADY_INSTALLED;
        goto out;
    }

    /* The shim's setting that names the broker's account, and its keys. */
    if ((st = shim_account_read(&orig_acct)) != ERROR_SUCCESS) {
        rc = sys_fail(err, "install: reading the shim's ExpectedBrokerAccount", (DWORD)st);
        goto out;
    }
    shim_created = (key_exists(INST_SHIM_KEY) ? 0 : CREATED_SHIM_KEY) |
                   (key_exists(INST_SHIM_PARAMS) ? 0 : CREATED_SHIM_PARAMS);
    wacct = inst_wide(in.in_account);
    if (wacct == NULL) {
        rc = sys_fail(err, "install", ERROR_NOT_ENOUGH_MEMORY);
        goto out;
    }
    acct.rv_present = 1;
    acct.rv_type = REG_SZ;
    acct.rv_data = (BYTE *)wacct;
    acct.rv_size = (DWORD)((wcslen(wacct) + 1) * sizeof(WCHAR));

    /* The new list: the shim first, then every previous entry in order. */
    if (wlist_push(&now, in.in_shim) != 0) {
        rc = sys_fail(err, "install", ERROR_NOT_ENOUGH_MEMORY);
        goto out;
    }
    for (size_t i = 0; i < old.wl_n; i++)
        if (wlist_push(&now, old.wl_items[i]) != 0) {
            rc = sys_fail(err, "install", ERROR_NOT_ENOUGH_MEMORY);
            goto out;
        }
    if (wlist_to_multisz(&now, &written.rv_data, &written.rv_size) != 0) {
        rc = sys_fail(err, "install", ERROR_NOT_ENOUGH_MEMORY);
        goto out;
    }
    written.rv_present = 1;
    written.rv_type = REG_MULTI_SZ;

    /* ---- 2. backup ---- */
    st = RegCreateKeyExW(HKEY_LOCAL_MACHINE, INST_BACKUP_KEY, 0, NULL, 0,
                         KEY_SET_VALUE | KEY_QUERY_VALUE | REG_VIEW, NULL, &backup, &disp);
    if (st != ERROR_SUCCESS) {
        rc = sys_fail(err, "install: creating HKLM\\SOFTWARE\\dcb\\Backup", (DWORD)st);
        goto rollback;
    }
    did_backup = 1;
    {
        WCHAR *wver = inst_wide(DCBCTL_VERSION);
        if ((st = regval_backup_save(backup, L"CalloutDlls", &orig_dlls)) != ERROR_SUCCESS ||
            (st = regval_backup_save(backup, L"CalloutEnabled", &orig_enabled)) != ERROR_SUCCESS ||
            (st = RegSetValueExW(backup, L"CalloutDlls.Written", 0, REG_BINARY, written.rv_data,
                                 written.rv_size)) != ERROR_SUCCESS ||
            (st = regval_backup_save(backup, L"ExpectedBrokerAccount", &orig_acct)) !=
                ERROR_SUCCESS ||
            (st = RegSetValueExW(backup, L"ShimKeys.Created", 0, REG_DWORD,
                                 (const BYTE *)&shim_created, sizeof(shim_created))) !=
                ERROR_SUCCESS ||
            (st = set_sz(backup, L"Account", REG_SZ, wacct)) != ERROR_SUCCESS ||
            (st = set_sz(backup, L"Shim", REG_SZ, in.in_shim)) != ERROR_SUCCESS ||
            (st = set_sz(backup, L"Version", REG_SZ, wver != NULL ? wver : L"?")) !=
                ERROR_SUCCESS) {
            free(wver);
            rc = sys_fail(err, "install: writing the backup", (DWORD)st);
            goto rollback;
        }
        free(wver);
    }

    /* ---- 3. Event Log source ---- */
    did_source = 1;
    st = register_source(in.in_msgdll);
    if (st != ERROR_SUCCESS) {
        rc = sys_fail(err, "install: registering the Event Log source", (DWORD)st);
        goto rollback;
    }

    /* ---- 4. the broker service ---- */
    rc = create_service(&in, scm, &svc);
    if (svc != NULL)
        did_service = 1;
    if (rc != 0)
        goto rollback;
    /* An administrator's own choice stays; otherwise the shim learns the account. */
    if (!orig_acct.rv_present) {
        did_acct = 1;
        st = shim_account_write(&acct);
        if (st != ERROR_SUCCESS) {
            rc = sys_fail(err, "install: setting the shim's ExpectedBrokerAccount", (DWORD)st);
            goto rollback;
        }
    }

    /* ---- 5. point the DHCP server at the shim ---- */
    did_values = 1;
    st = regval_write(params, L"CalloutDlls", &written);
    if (st == ERROR_SUCCESS)
        st = RegSetValueExW(params, L"CalloutEnabled", 0, REG_DWORD, (const BYTE *)&one,
                            sizeof(one));
    if (st != ERROR_SUCCESS) {
        rc = sys_fail(err, "install: writing CalloutDlls/CalloutEnabled", (DWORD)st);
        goto rollback;
    }

    fprintf(out, "dcb installed.\n\n");
    fprintf(out, "  HKLM\\SYSTEM\\CurrentControlSet\\Services\\DHCPServer\\Parameters\n");
    fprintf(out, "    CalloutDlls:\n");
    print_list(out, &now, "(the shim)", "(now hosted by the broker)");
    fprintf(out, "    CalloutEnabled: 1 (was %s)\n",
            !orig_enabled.rv_present ? "not set"
            : (orig_enabled.rv_type == REG_DWORD && orig_enabled.rv_size == 4 &&
               *(DWORD *)orig_enabled.rv_data == 0)
                ? "0"
            : (orig_enabled.rv_type == REG_DWORD && orig_enabled.rv_size == 4 &&
               *(DWORD *)orig_enabled.rv_data == 1)
                ? "1"
                : "another value");
    fprintf(out, "    previous values saved in HKLM\\SOFTWARE\\dcb\\Backup\n");
    fprintf(out, "  service dcb-broker: automatic start, account %s, restarts on failure\n    ",
            in.in_account);
    fputc('"', out);
    put_w(out, in.in_broker);
    fprintf(out, "\" --service --config \"");
    put_w(out, in.in_config);
    fprintf(out, "\"\n");
    fprintf(out, "  HKLM\\SYSTEM\\CurrentControlSet\\Services\\dcb\\Parameters\n"
                 "    ExpectedBrokerAccount: ");
    if (!orig_acct.rv_present) {
        fprintf(out, "%s (the shim accepts only a broker running as this account)\n",
                in.in_account);
    } else if (orig_acct.rv_type == REG_SZ && orig_acct.rv_size >= sizeof(WCHAR) &&
               ((WCHAR *)orig_acct.rv_data)[orig_acct.rv_size / sizeof(WCHAR) - 1] == 0) {
        put_w(out, (WCHAR *)orig_acct.rv_data);
        fprintf(out, " (already set; left as it is)\n");
        if (!same_text((WCHAR *)orig_acct.rv_data, wacct))
            fprintf(err,
                    "dcbctl: install: warning: the shim's ExpectedBrokerAccount was already "
                    "set and is not %s: the shim will refuse this broker unless that "
                    "setting accepts it\n",
                    in.in_account);
    } else {
        fprintf(out, "(already set; left as it is)\n");
    }
    fprintf(out, "  Event Log source: dcb (Application log), messages from ");
    put_w(out, in.in_msgdll);
    fprintf(out, "\n\nNext:\n"
                 "  1. Start the broker:   sc start dcb-broker\n"
                 "  2. Restart the DHCP Server service once, so that it loads the shim:\n"
                 "       Restart-Service DHCPServer      (or: net stop dhcpserver && net start "
                 "dhcpserver)\n"
                 "  3. Check:              dcbctl status\n");
    rc = CTL_EXIT_OK;
    goto out;

rollback:
    /* Undo in reverse order; report what cannot be undone. */
    if (did_values && (regval_write(params, L"CalloutDlls", &orig_dlls) != ERROR_SUCCESS ||
                       regval_write(params, L"CalloutEnabled", &orig_enabled) != ERROR_SUCCESS)) {
        /* Keep the backup: it is now the only record of the old values. */
        fprintf(err, "dcbctl: install: could not restore CalloutDlls/CalloutEnabled; the "
                     "previous values are in HKLM\\SOFTWARE\\dcb\\Backup (dcbctl uninstall "
                     "restores them)\n");
        did_backup = 0;
        rollback_complete = 0;
    }
    if (did_acct) {
        shim_account_write(&orig_acct);
        shim_keys_prune(shim_created);
    }
    if (did_service && svc != NULL && !DeleteService(svc))
        fprintf(err, "dcbctl: install: could not delete the half-made dcb-broker service\n");
    if (did_source)
        RegDeleteKeyExW(HKEY_LOCAL_MACHINE, INST_EVENTLOG_KEY, REG_VIEW, 0);
    if (did_backup) {
        if (backup != NULL)
            RegCloseKey(backup);
        backup = NULL;
        delete_backup();
    }
    if (rollback_complete)
        fprintf(err, "dcbctl: install: nothing was changed\n");

out:
    if (svc != NULL)
        CloseServiceHandle(svc);
    if (scm != NULL)
        CloseServiceHandle(scm);
    if (backup != NULL)
        RegCloseKey(backup);
    if (params != NULL)
        RegCloseKey(params);
    regval_free(&orig_dlls);
    regval_free(&orig_enabled);
    regval_free(&written);
    regval_free(&orig_acct);
    regval_free(&acct); /* frees wacct */
    wlist_free(&old);
    wlist_free(&now);
    inst_free(&in);
    return rc;
}

/* ---- uninstall ----------------------------------------------------------- */

/* Stops and deletes the service; 0 when it is gone (or never existed). */
static int remove_service(FILE *out, FILE *err)
{
    SC_HANDLE scm, svc;
    SERVICE_STATUS ss;
    SERVICE_STATUS_PROCESS sp;
    DWORD need, code;
    int rc = 0;

    scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    if (scm == NULL)
        return sys_fail(err, "uninstall: opening the service control manager", GetLastError());
    svc = OpenServiceW(scm, INST_SERVICE, SERVICE_STOP | SERVICE_QUERY_STATUS | DELETE);
    if (svc == NULL) {
        code = GetLastError();
        CloseServiceHandle(scm);
        if (code == ERROR_SERVICE_DOES_NOT_EXIST) {
            fprintf(out, "  service dcb-broker: not registered (nothing to remove)\n");
            return 0;
        }
        return sys_fail(err, "uninstall: opening the dcb-broker service", code);
    }
    if (QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)&sp, sizeof(sp), &need) &&
        sp.dwCurrentState != SERVICE_STOPPED) {
        ControlService(svc, SERVICE_CONTROL_STOP, &ss);
        /* The broker stops its hosts first: give it the time its config allows. */
        for (int i = 0; i < 120; i++) {
            if (!QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)&sp, sizeof(sp),
                                      &need) ||
                sp.dwCurrentState == SERVICE_STOPPED)
                break;
            Sleep(250);
        }
        if (sp.dwCurrentState != SERVICE_STOPPED)
            fprintf(err, "dcbctl: uninstall: dcb-broker did not stop within 30 s; it is deleted "
                         "and goes away when it stops\n");
        else
            fprintf(out, "  service dcb-broker: stopped\n");
    }
    if (!DeleteService(svc) && (code = GetLastError()) != ERROR_SERVICE_MARKED_FOR_DELETE)
        rc = sys_fail(err, "uninstall: deleting the dcb-broker service", code);
    else
        fprintf(out, "  service dcb-broker: deleted\n");
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return rc;
}

/* Restores CalloutDlls; returns 0 or an exit code. */
static int restore_dlls(HKEY params, HKEY backup, const WCHAR *shim, FILE *out, FILE *err)
{
    regval_t orig, written, cur;
    wlist_t list, kept;
    LSTATUS st;
    int rc = 0, removed = 0;

    memset(&list, 0, sizeof(list));
    memset(&kept, 0, sizeof(kept));
    memset(&written, 0, sizeof(written));
    memset(&cur, 0, sizeof(cur));
    if ((st = regval_backup_load(backup, L"CalloutDlls", &orig)) != ERROR_SUCCESS ||
        (st = regval_read(backup, L"CalloutDlls.Written", &written)) != ERROR_SUCCESS ||
        !written.rv_present) {
        regval_free(&written);
        fprintf(err, "dcbctl: uninstall: the backup in HKLM\\SOFTWARE\\dcb\\Backup is incomplete; "
                     "restore CalloutDlls by hand\n");
        return CTL_EXIT_NO_DHCP;
    }
    written.rv_type = REG_MULTI_SZ; /* stored as REG_BINARY, written as MULTI_SZ */
    if ((st = regval_read(params, L"CalloutDlls", &cur)) != ERROR_SUCCESS) {
        rc = sys_fail(err, "uninstall: reading CalloutDlls", (DWORD)st);
        goto out;
    }
    if (regval_equal(&cur, &written)) {
        /* Untouched since install: put back exactly what was there. */
        st = regval_write(params, L"CalloutDlls", &orig);
        if (st != ERROR_SUCCESS) {
            rc = sys_fail(err, "uninstall: restoring CalloutDlls", (DWORD)st);
            goto out;
        }
        fprintf(out, "  CalloutDlls: restored to the value saved at install%s\n",
                orig.rv_present ? "" : " (it did not exist: removed)");
        goto out;
    }
    /* Someone changed it since: keep their change, take only the shim out. */
    if (cur.rv_present && cur.rv_type == REG_MULTI_SZ &&
        wlist_from_multisz(cur.rv_data, cur.rv_size, &list) == 0) {
        for (size_t i = 0; i < list.wl_n; i++) {
            if (same_text(list.wl_items[i], shim) ||
                same_text(base_name(list.wl_items[i]), L"dcbshim.dll")) {
                removed++;
                continue;
            }
            if (wlist_push(&kept, list.wl_items[i]) != 0) {
                rc = sys_fail(err, "uninstall", ERROR_NOT_ENOUGH_MEMORY);
                goto out;
            }
        }
    }
    if (removed == 0) {
        fprintf(out, "  CalloutDlls: does not list the shim (changed since install); left as "
                     "it is\n");
        goto out;
    }
    if (kept.wl_n == 0 && !orig.rv_present) {
        st = RegDeleteValueW(params, L"CalloutDlls");
    } else {
        regval_t nv = {1, REG_MULTI_SZ, NULL, 0};
        if (wlist_to_multisz(&kept, &nv.rv_data, &nv.rv_size) != 0) {
            rc = sys_fail(err, "uninstall", ERROR_NOT_ENOUGH_MEMORY);
            goto out;
        }
        st = regval_write(params, L"CalloutDlls", &nv);
        regval_free(&nv);
    }
    if (st != ERROR_SUCCESS) {
        rc = sys_fail(err, "uninstall: writing CalloutDlls", (DWORD)st);
        goto out;
    }
    fprintf(err, "dcbctl: uninstall: warning: CalloutDlls was changed after install; the shim "
                 "was taken out and the other entries kept as they are now:\n");
    print_list(err, &kept, NULL, NULL);
    {
        wlist_t was;
        if (orig.rv_present && wlist_from_multisz(orig.rv_data, orig.rv_size, &was) == 0) {
            fprintf(err, "    (at install it was:)\n");
            print_list(err, &was, NULL, NULL);
            wlist_free(&was);
        } else {
            fprintf(err, "    (at install it did not exist)\n");
        }
    }

out:
    regval_free(&orig);
    regval_free(&written);
    regval_free(&cur);
    wlist_free(&list);
    wlist_free(&kept);
    return rc;
}

/* Restores CalloutEnabled unless someone changed it from our 1. */
static int restore_enabled(HKEY params, HKEY backup, FILE *out, FILE *err)
{
    regval_t orig, cur;
    LSTATUS st;
    int rc = 0;

    memset(&cur, 0, sizeof(cur));
    if ((st = regval_backup_load(backup, L"CalloutEnabled", &orig)) != ERROR_SUCCESS) {
        fprintf(err, "dcbctl: uninstall: the backup of CalloutEnabled is incomplete; set it by "
                     "hand\n");
        return CTL_EXIT_NO_DHCP;
    }
    if ((st = regval_read(params, L"CalloutEnabled", &cur)) != ERROR_SUCCESS) {
        rc = sys_fail(err, "uninstall: reading CalloutEnabled", (DWORD)st);
    } else if (cur.rv_present && cur.rv_type == REG_DWORD && cur.rv_size == 4 &&
               *(DWORD *)cur.rv_data == 1) {
        st = regval_write(params, L"CalloutEnabled", &orig);
        if (st != ERROR_SUCCESS)
            rc = sys_fail(err, "uninstall: restoring CalloutEnabled", (DWORD)st);
        else
            fprintf(out, "  CalloutEnabled: restored%s\n",
                    orig.rv_present ? "" : " (it did not exist: removed)");
    } else {
        fprintf(out, "  CalloutEnabled: changed since install; left as it is\n");
    }
    regval_free(&orig);
    regval_free(&cur);
    return rc;
}

/* Takes back the shim's ExpectedBrokerAccount if install set it and nobody changed it. */
static int restore_shim_account(HKEY backup, FILE *out, FILE *err)
{
    regval_t orig, cur, ours;
    DWORD created = 0, type = 0, size = sizeof(created);
    LSTATUS st;
    int rc = 0;

    memset(&cur, 0, sizeof(cur));
    memset(&ours, 0, sizeof(ours));
    if (regval_backup_load(backup, L"ExpectedBrokerAccount", &orig) != ERROR_SUCCESS) {
        fprintf(err, "dcbctl: uninstall: the backup does not say whether the shim's "
                     "ExpectedBrokerAccount was set before; left as it is\n");
        return 0;
    }
    if (RegQueryValueExW(backup, L"ShimKeys.Created", NULL, &type, (BYTE *)&created, &size) !=
            ERROR_SUCCESS ||
        type != REG_DWORD)
        created = 0;
    if (orig.rv_present) {
        /* It was an administrator's setting before install: never touched. */
        regval_free(&orig);
        return 0;
    }
    if ((st = shim_account_read(&cur)) != ERROR_SUCCESS ||
        (st = regval_read(backup, L"Account", &ours)) != ERROR_SUCCESS) {
        rc = sys_fail(err, "uninstall: reading the shim's ExpectedBrokerAccount", (DWORD)st);
    } else if (cur.rv_present && regval_equal(&cur, &ours)) {
        st = shim_account_write(&orig);
        if (st != ERROR_SUCCESS)
            rc = sys_fail(err, "uninstall: removing the shim's ExpectedBrokerAccount", (DWORD)st);
        else
            fprintf(out, "  shim setting ExpectedBrokerAccount: removed\n");
    } else if (cur.rv_present) {
        fprintf(out, "  shim setting ExpectedBrokerAccount: changed since install; left as it "
                     "is\n");
    }
    if (rc == 0)
        shim_keys_prune(created);
    regval_free(&orig);
    regval_free(&cur);
    regval_free(&ours);
    return rc;
}

int ctl_uninstall(const ctl_args_t *a, FILE *out, FILE *err)
{
    HKEY params = NULL, backup = NULL;
    regval_t shimv;
    WCHAR *shim = NULL;
    LSTATUS st;
    int rc = CTL_EXIT_OK, r;

    (void)a;
    memset(&shimv, 0, sizeof(shimv));
    if (!ctl_is_elevated()) {
        fprintf(err, "dcbctl: uninstall: needs an elevated administrator (run from an "
                     "\"Administrator\" command prompt or PowerShell)\n");
        return CTL_EXIT_NOT_ELEVATED;
    }
    st = RegOpenKeyExW(HKEY_LOCAL_MACHINE, INST_BACKUP_KEY, 0, KEY_QUERY_VALUE | REG_VIEW, &backup);
    if (st == ERROR_FILE_NOT_FOUND) {
        fprintf(err, "dcbctl: uninstall: dcb is not installed (no HKLM\\SOFTWARE\\dcb\\Backup); "
                     "nothing to do\n");
        return CTL_EXIT_NOT_INSTALLED;
    }
    if (st != ERROR_SUCCESS)
        return sys_fail(err, "uninstall: opening HKLM\\SOFTWARE\\dcb\\Backup", (DWORD)st);
    st = regval_read(backup, L"Shim", &shimv);
    if (st != ERROR_SUCCESS || !shimv.rv_present || shimv.rv_type != REG_SZ ||
        shimv.rv_size < sizeof(WCHAR)) {
        fprintf(err, "dcbctl: uninstall: the backup in HKLM\\SOFTWARE\\dcb\\Backup is "
                     "incomplete; restore CalloutDlls by hand\n");
        rc = CTL_EXIT_NO_DHCP;
        goto out;
    }
    /* The stored string may lack its terminator: copy with one. */
    shim = calloc(shimv.rv_size / sizeof(WCHAR) + 1, sizeof(WCHAR));
    if (shim == NULL) {
        rc = sys_fail(err, "uninstall", ERROR_NOT_ENOUGH_MEMORY);
        goto out;
    }
    memcpy(shim, shimv.rv_data, shimv.rv_size / sizeof(WCHAR) * sizeof(WCHAR));

    fprintf(out, "Removing dcb:\n");
    /* First the DHCP server's values, so its next start no longer loads the shim. */
    st = RegOpenKeyExW(HKEY_LOCAL_MACHINE, INST_DHCP_PARAMS, 0,
                       KEY_QUERY_VALUE | KEY_SET_VALUE | REG_VIEW, &params);
    if (st == ERROR_FILE_NOT_FOUND) {
        fprintf(out, "  the DHCP Server's Parameters key is gone: nothing to restore there\n");
    } else if (st != ERROR_SUCCESS) {
        rc = sys_fail(err, "uninstall: opening the DHCP Server's Parameters key", (DWORD)st);
    } else {
        if ((r = restore_dlls(params, backup, shim, out, err)) != 0)
            rc = r;
        if ((r = restore_enabled(params, backup, out, err)) != 0 && rc == 0)
            rc = r;
    }
    if ((r = remove_service(out, err)) != 0 && rc == 0)
        rc = r;
    if ((r = restore_shim_account(backup, out, err)) != 0 && rc == 0)
        rc = r;
    st = RegDeleteKeyExW(HKEY_LOCAL_MACHINE, INST_EVENTLOG_KEY, REG_VIEW, 0);
    if (st != ERROR_SUCCESS && st != ERROR_FILE_NOT_FOUND) {
        if (rc == 0)
            rc = sys_fail(err, "uninstall: removing the Event Log source", (DWORD)st);
    } else {
        fprintf(out, "  Event Log source dcb: removed\n");
    }
    RegCloseKey(backup);
    backup = NULL;
    if (rc != 0) {
        fprintf(err, "dcbctl: uninstall: not complete; the backup is kept, run dcbctl uninstall "
                     "again once the problem above is fixed\n");
        goto out;
    }
    delete_backup();
    fprintf(out, "\ndcb uninstalled. Restart the DHCP Server service once, so that it unloads "
                 "the shim:\n"
                 "    Restart-Service DHCPServer\n"
                 "Until then the shim stays loaded and, with no broker, applies its default "
                 "decision\n(fail-open unless configured otherwise: packets pass unmodified, "
                 "vendor callouts are not called).\n");

out:
    free(shim);
    regval_free(&shimv);
    if (backup != NULL)
        RegCloseKey(backup);
    if (params != NULL)
        RegCloseKey(params);
    return rc;
}
