/*
 * test_escape.c — a plugin that tries to leave its sandbox
 * (plugins/test/escape.c): start a program, reach the broker's pipe, write
 * outside its write_paths, signal, trace or write the broker. Each attempt
 * is reported on the plugin's stdout, which the broker logs; the host's own
 * sandbox lines ("sandbox: blocked system call ...") and the broker's view
 * (the host killed by SIGSYS) are checked too.
 *
 * Linux: everything is stopped (seccomp, Landlock, a non-dumpable broker),
 * threads still work, the allowed directory stays writable; as root, the
 * host runs without capabilities, or as host_user.
 * Windows: the job's active-process limit stops CreateProcess, low
 * integrity stops writing the broker's pipe, files and process. Under Wine
 * only the removal of privileges and the job itself hold: each gap is
 * printed as "security: WINE GAP" and what Wine does show is checked.
 */
#include "test_security.h"

#include <sys/stat.h>

#ifdef _WIN32
#include <direct.h>
#define sec_mkdir(p) _mkdir(p)
#else
#include <unistd.h>
#define sec_mkdir(p) mkdir((p), 0700)
#endif

static void set_env(const char *name, const char *value)
{
#ifdef _WIN32
    _putenv_s(name, value);
#else
    setenv(name, value, 1);
#endif
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void expect(tb_broker_t *b, const char *text)
{
    if (!tb_log_wait(b, text, 15000)) {
        tb_log_dump(b);
        fail_msg("the broker's log lacks \"%s\"", text);
    }
}

typedef struct escape_env {
    char e_dir[512];
    char e_allowed[512];
    char e_outside[512];
    char e_inside[512];
    char e_pipe[256];
    char e_ctl[256];
    char e_dll[1024];
} escape_env_t;

static void escape_setup(escape_env_t *e, const char *tag)
{
    char cwd_dir[128], native[512];

    snprintf(cwd_dir, sizeof(cwd_dir), "escape-%s-%u", tag, dcb_getpid());
    sec_mkdir(cwd_dir);
    snprintf(e->e_dir, sizeof(e->e_dir), "%s", cwd_dir);
    snprintf(e->e_allowed, sizeof(e->e_allowed), "%s/allowed", cwd_dir);
    sec_mkdir(e->e_allowed);
    /* Windows: where a low-integrity plugin may write is labelled low (Linux: write_paths). */
    sec_label_low(e->e_allowed);
    snprintf(e->e_outside, sizeof(e->e_outside), "%s/outside.txt", cwd_dir);
    snprintf(e->e_inside, sizeof(e->e_inside), "%s/allowed/inside.txt", cwd_dir);
    remove(e->e_outside);
    remove(e->e_inside);
    sec_endpoints(e->e_pipe, e->e_ctl, sizeof(e->e_pipe));
    tb_plugin("escape", e->e_dll, sizeof(e->e_dll));
    set_env("DCB_ESCAPE_PIPE", e->e_pipe);
    sec_native_path(e->e_outside, native, sizeof(native));
    set_env("DCB_ESCAPE_OUTSIDE", native);
    sec_native_path(e->e_inside, native, sizeof(native));
    set_env("DCB_ESCAPE_INSIDE", native);
}

static const char *escape_section(const escape_env_t *e, const char *write_paths)
{
    char allowed_abs[1024] = "";

    if (write_paths != NULL) {
#ifdef _WIN32
        snprintf(allowed_abs, sizeof(allowed_abs), "%s", write_paths);
#else
        if (realpath(write_paths, allowed_abs) == NULL)
            snprintf(allowed_abs, sizeof(allowed_abs), "%s", write_paths);
#endif
    }
    return sec_fmt("[plugin escape]\ndll = %s\nrestart_backoff_ms = 2000\ncrash_loop_limit = 3\n"
                   "%s%s\n",
                   e->e_dll, write_paths != NULL ? "write_paths = " : "", allowed_abs);
}

#ifndef _WIN32

static void test_escape_linux(void **state)
{
    static const char *const blocked[] = {
        "escape: fork: blocked",           "escape: exec: blocked",
        "escape: socket: blocked",         "escape: connect-broker: blocked",
        "escape: write-outside: blocked",  "escape: signal-broker: blocked",
        "escape: ptrace-broker: blocked",  "escape: broker-memory: blocked",
        "blocked system call clone",       "blocked system call execve",
        "blocked system call socket",      "blocked system call kill",
        "blocked system call ptrace",      "escape: write-inside: ALLOWED",
        "escape: thread: ALLOWED",         "Landlock ABI",
        "(Bad system call), from its seccomp sandbox",
    };
    escape_env_t e;
    static tb_broker_t b;

    (void)state;
    escape_setup(&e, "linux");
    SEC_START(&b, "escape", e.e_pipe, e.e_ctl, "chain = escape", escape_section(&e, e.e_allowed));
    for (size_t i = 0; i < sizeof(blocked) / sizeof(blocked[0]); i++)
        expect(&b, blocked[i]);
    assert_false(tb_log_contains(&b, ": ALLOWED (posix_spawn"));
    assert_false(file_exists(e.e_outside));
    assert_true(file_exists(e.e_inside));
    if (geteuid() == 0)
        expect(&b, "capabilities 0\n");
    sec_note("escape (Linux): fork, exec, posix_spawn, sockets, the broker's socket, writes "
             "outside write_paths, kill/ptrace/mem of the broker: all stopped and logged; "
             "threads and writes inside write_paths work");
    SEC_STOP(&b);
}

static void test_escape_host_user(void **state)
{
    escape_env_t e;
    static tb_broker_t b;

    (void)state;
    if (geteuid() != 0) {
        sec_note("not root: host_user not tried");
        skip();
    }
    escape_setup(&e, "user");
    /* The host (nobody) must be able to write inside its directory. */
    chmod(e.e_dir, 0755);
    chmod(e.e_allowed, 0777);
    SEC_START(&b, "escape-user", e.e_pipe, e.e_ctl, "chain = escape\nhost_user = nobody",
              escape_section(&e, e.e_allowed));
    expect(&b, "sandbox: running as nobody (uid 65534)");
    expect(&b, "escape: identity: uid 65534 gid 65534");
    expect(&b, "escape: write-inside: ALLOWED");
    expect(&b, "escape: write-outside: blocked");
    sec_note("escape (Linux, root broker): the host ran as nobody (uid 65534)");
    SEC_STOP(&b);
}

const struct CMUnitTest sec_escape_tests[] = {
    cmocka_unit_test_teardown(test_escape_linux, sec_teardown),
    cmocka_unit_test_teardown(test_escape_host_user, sec_teardown),
};

#else /* _WIN32 */

static void test_escape_windows(void **state)
{
    escape_env_t e;
    static tb_broker_t b;

    (void)state;
    escape_setup(&e, "win");
    SEC_START(&b, "escape", e.e_pipe, e.e_ctl, "chain = escape", escape_section(&e, NULL));
    expect(&b, "escape: done");
    expect(&b, "escape: thread: ALLOWED");
    expect(&b, "escape: write-inside: ALLOWED");
    /* Privileges are gone everywhere (SeChangeNotifyPrivilege stays). */
    expect(&b, ", 1 privileges)");
    if (sec_is_wine()) {
        /* What Wine shows: every attempt was made and reported... */
        expect(&b, "escape: spawn: ALLOWED (CreateProcess started pid");
        expect(&b, "escape: connect-broker: ALLOWED");
        expect(&b, "escape: write-outside: ALLOWED");
        expect(&b, "escape: open-broker: ALLOWED");
        expect(&b, "escape: token: ALLOWED (integrity 0x3000, 1 privileges)");
        /* ...and the child it started was in the host's job (killed with it). */
        expect(&b, "in a job: yes");
        expect(&b, "Wine does not lower a running process's token");
        sec_note("WINE GAP: the job's active-process limit is not enforced: CreateProcess "
                 "succeeded (the child was in the host's kill-on-close job)");
        sec_note("WINE GAP: integrity levels are neither lowered nor enforced: the plugin "
                 "opened the broker's pipe for writing, wrote outside its directory and "
                 "opened the broker's process for PROCESS_TERMINATE (never used)");
        sec_note("Wine enforces: privilege removal (1 left), the job object itself");
    } else {
        expect(&b, "escape: spawn: blocked");
        expect(&b, "escape: connect-broker: blocked");
        expect(&b, "escape: write-outside: blocked");
        expect(&b, "escape: open-broker: blocked");
        expect(&b, "escape: token: blocked (integrity 0x1000, 1 privileges)");
        assert_false(file_exists(e.e_outside));
        sec_note("escape (Windows): CreateProcess, the broker's pipe, files and process: all "
                 "refused to the low-integrity, privilege-less host");
    }
    SEC_STOP(&b);
}

const struct CMUnitTest sec_escape_tests[] = {
    cmocka_unit_test_teardown(test_escape_windows, sec_teardown),
};

#endif
const size_t sec_n_escape_tests = sizeof(sec_escape_tests) / sizeof(sec_escape_tests[0]);
