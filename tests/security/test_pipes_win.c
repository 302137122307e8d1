/*
 * test_pipes_win.c — the broker's named pipes on Windows (and Wine)
 * (broker/pipesec_win.c): the DACL every instance carries, the control
 * pipe's, a squatter, and the shim's access rights.
 */
#include "test_security.h"

#include <windows.h>
#include <aclapi.h>
#include <sddl.h>

typedef struct win_conn {
    HANDLE wc_h;
} win_conn_t;

static HANDLE open_pipe(const char *name, DWORD access)
{
    wchar_t w[256];
    uint64_t end = dcb_now_ns() + 5000000000ull;

    MultiByteToWideChar(CP_UTF8, 0, name, -1, w, 256);
    for (;;) {
        HANDLE h = CreateFileW(w, access, 0, NULL, OPEN_EXISTING,
                               SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
        DWORD e = GetLastError();
        /* All instances busy, or (seen under Wine) none listening for a moment: again. */
        if (h != INVALID_HANDLE_VALUE || (e != ERROR_PIPE_BUSY && e != ERROR_FILE_NOT_FOUND) ||
            dcb_now_ns() > end)
            return h;
        if (e == ERROR_PIPE_BUSY)
            WaitNamedPipeW(w, 100);
        else
            Sleep(10);
    }
}

/* The DACL of the pipe instance behind h, as SDDL, and its number of ACEs. */
static int dacl_of(HANDLE h, char *out, size_t n)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    PACL dacl = NULL;
    wchar_t *s = NULL;
    int aces = -1;

    out[0] = '\0';
    if (GetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, &dacl, NULL,
                        &sd) != ERROR_SUCCESS)
        return -1;
    if (ConvertSecurityDescriptorToStringSecurityDescriptorW(sd, SDDL_REVISION_1,
                                                             DACL_SECURITY_INFORMATION, &s, NULL)) {
        WideCharToMultiByte(CP_UTF8, 0, s, -1, out, (int)n, NULL, NULL);
        LocalFree(s);
    }
    if (dacl != NULL)
        aces = dacl->AceCount;
    LocalFree(sd);
    return aces;
}

static void own_sid(char *out, size_t n)
{
    union {
        TOKEN_USER tu;
        BYTE raw[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
    } u;
    HANDLE tok;
    DWORD len;
    wchar_t *s;

    out[0] = '\0';
    OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok);
    if (GetTokenInformation(tok, TokenUser, &u, sizeof(u), &len) &&
        ConvertSidToStringSidW(u.tu.User.Sid, &s)) {
        WideCharToMultiByte(CP_UTF8, 0, s, -1, out, (int)n, NULL, NULL);
        LocalFree(s);
    }
    CloseHandle(tok);
}

static void test_event_pipe_dacl(void **state)
{
    enum { N = 12 }; /* more than the instances the broker keeps waiting */
    static HANDLE conns[N];
    char pipe[256], ctl[256], sddl[1024], me[256], want_me[300];
    static tb_broker_t b;

    (void)state;
    own_sid(me, sizeof(me));
    snprintf(want_me, sizeof(want_me), "(A;;FA;;;%s)", me);
    sec_endpoints(pipe, ctl, sizeof(pipe));
    SEC_START(&b, "dacl", pipe, ctl, NULL, NULL);
    for (int i = 0; i < N; i++) {
        int aces;
        conns[i] = open_pipe(pipe, GENERIC_READ | GENERIC_WRITE | READ_CONTROL);
        assert_true(conns[i] != INVALID_HANDLE_VALUE);
        aces = dacl_of(conns[i], sddl, sizeof(sddl));
        if (i == 0 || i == N - 1)
            sec_note("event pipe instance %d: %s", i + 1, sddl);
        /* Protected; Administrators and the broker's account; NETWORK SERVICE without
         * create-instance. */
        assert_int_equal(aces, 3);
        assert_non_null(strstr(sddl, "D:P"));
        assert_non_null(strstr(sddl, "(A;;FA;;;BA)"));
        assert_non_null(strstr(sddl, "(A;;0x12018b;;;NS)"));
        assert_true(strstr(sddl, want_me) != NULL || strstr(sddl, "(A;;FA;;;SY)") != NULL);
    }
    for (int i = 0; i < N; i++)
        CloseHandle(conns[i]);
    SEC_STOP(&b);
}

static void test_shim_access_rights(void **state)
{
    char pipe[256], ctl[256];
    HANDLE h;
    static tb_broker_t b;

    (void)state;
    /*
     * What the shim asks for (shim/conn_win.c) is exactly what the DACL gives
     * NETWORK SERVICE: no FILE_CREATE_PIPE_INSTANCE among it.
     */
    sec_endpoints(pipe, ctl, sizeof(pipe));
    SEC_START(&b, "rights", pipe, ctl, NULL, NULL);
    h = open_pipe(pipe, FILE_GENERIC_READ | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES);
    assert_true(h != INVALID_HANDLE_VALUE);
    assert_int_equal((FILE_GENERIC_READ | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES) &
                         FILE_CREATE_PIPE_INSTANCE,
                     0);
    assert_int_equal(FILE_GENERIC_READ | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES, 0x12018b);
    CloseHandle(h);
    SEC_STOP(&b);
}

static void test_control_pipe_dacl(void **state)
{
    char pipe[256], ctl[256], sddl[1024];
    HANDLE h;
    int aces;
    static tb_broker_t b;

    (void)state;
    sec_endpoints(pipe, ctl, sizeof(pipe));
    SEC_START(&b, "ctldacl", pipe, ctl, NULL, NULL);
    h = open_pipe(ctl, GENERIC_READ | GENERIC_WRITE | READ_CONTROL);
    assert_true(h != INVALID_HANDLE_VALUE);
    aces = dacl_of(h, sddl, sizeof(sddl));
    sec_note("control pipe: %s", sddl);
    /* Administrators and the broker's own account only. */
    assert_int_equal(aces, 2);
    assert_non_null(strstr(sddl, "D:P"));
    assert_non_null(strstr(sddl, "(A;;FA;;;BA)"));
    assert_null(strstr(sddl, ";NS)"));
    CloseHandle(h);
    SEC_STOP(&b);
}

static void test_squatter(void **state)
{
    char pipe[256], ctl[256];
    wchar_t w[256];
    HANDLE squat;
    static tb_broker_t b;
    int status;

    (void)state;
    sec_endpoints(pipe, ctl, sizeof(pipe));
    MultiByteToWideChar(CP_UTF8, 0, pipe, -1, w, 256);
    /* Someone creates the broker's pipe first, with default security. */
    squat = CreateNamedPipeW(w, PIPE_ACCESS_DUPLEX, PIPE_TYPE_BYTE | PIPE_WAIT,
                             PIPE_UNLIMITED_INSTANCES, 4096, 4096, 0, NULL);
    assert_true(squat != INVALID_HANDLE_VALUE);
    status = sec_broker_run(&b, "squat", pipe, ctl, NULL, SEC_SLOW ? 40000 : 15000);
    if (status != 1 || !tb_log_contains(&b, "squatting on the name"))
        tb_log_dump(&b);
    assert_int_equal(status, 1);
    assert_true(tb_log_contains(&b, "refusing to start"));
    sec_note("a pipe created first by someone else: the broker refused to start");
    if (sec_is_wine())
        sec_note("WINE GAP: FILE_FLAG_FIRST_PIPE_INSTANCE is not enforced by Wine; the broker "
                 "found the squatter by looking the name up first (and would by the foreign "
                 "DACL of its first instance)");
    sec_note("not testable here: PIPE_REJECT_REMOTE_CLIENTS (no remote clients under Wine)");
    CloseHandle(squat);
}

const struct CMUnitTest sec_pipe_tests[] = {
    cmocka_unit_test_teardown(test_event_pipe_dacl, sec_teardown),
    cmocka_unit_test_teardown(test_shim_access_rights, sec_teardown),
    cmocka_unit_test_teardown(test_control_pipe_dacl, sec_teardown),
    cmocka_unit_test_teardown(test_squatter, sec_teardown),
};
const size_t sec_n_pipe_tests = sizeof(sec_pipe_tests) / sizeof(sec_pipe_tests[0]);
