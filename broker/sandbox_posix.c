/*
 * sandbox_posix.c — plugin hosts on Linux: limits and confinement, and the
 * resident memory of a host as the supervisor polls it.
 *
 * A host runs code nobody here wrote. Before that code is loaded, the host
 * (in this order):
 *   1. sandbox_host_early: no new privileges (setuid binaries and file
 *      capabilities stop working), dies with the broker, no core files;
 *   2. sandbox_host_limits:
 *      - rlimits: open files 256, data segment = memory cap + 64 MB (not
 *        under AddressSanitizer, whose shadow memory counts as data),
 *        processes = what its user already runs + its threads + a margin
 *        (not enforced for root);
 *      - optionally another user: a broker running as root gives its hosts
 *        host_user's uid (and no capabilities either way when it stays root);
 *      - optionally Landlock: when the plugin has write_paths, it may create,
 *        change or delete files only beneath them (reading stays open);
 *      - a seccomp filter (libseccomp). Allowed is everything a callout DLL
 *        needs — memory, files, threads, time, its inherited descriptors.
 *        Denied is what would take it out of its box: starting programs
 *        (execve, execveat), new processes (fork, vfork, clone without
 *        CLONE_THREAD; clone3, whose flags a filter cannot read, answers
 *        ENOSYS so the C library falls back to clone), sockets (socket,
 *        connect, bind, listen, accept: the host needs only the channel it
 *        inherited, and the broker's own endpoints must stay out of reach),
 *        other processes (ptrace, process_vm_*, pidfd_*, kill and friends
 *        aimed at anything but itself, priorities and limits of others),
 *        io_uring (it could do the above behind the filter's back), and the
 *        administrative calls (mount, namespaces, modules, bpf, keys, ...).
 *        A denied call traps: the host's SIGSYS handler writes
 *        "sandbox: blocked NAME" to stderr, which the broker logs with the
 *        plugin's name, and the call returns EPERM, so an ordinary DLL that
 *        merely tries (syslog's socket, say) keeps running.
 * A plugin that replaces the SIGSYS handler silences the log line, not the
 * filter: the call still fails.
 */
#include "platform.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/landlock.h>

#include "dcb_os.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif

/* Landlock rights newer than the kernel headers this may be built with. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif

#define SANDBOX_NOFILE 256
#define SANDBOX_NPROC_MARGIN 64

/* ---- supervisor side -------------------------------------------------------- */

void sandbox_supervisor_init(void)
{
#ifndef SANDBOX_ASAN
    /*
     * Hosts run as the broker's user unless host_user is set. Not dumpable:
     * a host cannot ptrace the broker or write its /proc/PID/mem even
     * without its seccomp filter. (Sanitizer builds keep it: LeakSanitizer
     * attaches to its own process at exit.)
     */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
}

void *sandbox_job_attach(uv_process_t *proc, uint32_t memory_mb, char *err, size_t errlen)
{
    (void)proc;
    (void)memory_mb;
    if (errlen > 0)
        err[0] = '\0';
    return NULL;
}

void sandbox_job_close(void *job)
{
    (void)job;
}

int sandbox_job_memory_hit(void *job, uint32_t memory_mb)
{
    (void)job;
    (void)memory_mb;
    return 0;
}

int sandbox_proc_memory(uint32_t pid, uint64_t *bytes)
{
    char path[64];
    unsigned long long size, resident;
    FILE *f;
    int n;

    snprintf(path, sizeof(path), "/proc/%u/statm", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return UV_ENOENT;
    n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (n != 2)
        return UV_EIO;
    *bytes = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
    return 0;
}

/* ---- host side: early -------------------------------------------------------- */

void sandbox_host_early(void)
{
    struct rlimit core = {0, 0};

    /* Never gain privileges through exec (setuid binaries, file caps). */
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    /* A host must not outlive its broker. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() == 1)
        _exit(1); /* The broker died before the line above. */
    /* Crashing plugins are expected; their core files are not wanted. */
    setrlimit(RLIMIT_CORE, &core);
}

void sandbox_host_tie(uint32_t broker_pid)
{
    if (broker_pid != 0 && getppid() != (pid_t)broker_pid)
        _exit(1); /* The broker is already gone. */
}

/* ---- the SIGSYS reporter -------------------------------------------------------- */

typedef struct sandbox_deny {
    const char *sd_name;
    const char *sd_what;
    int sd_nr; /* filled in from the name at filter time; -1: not on this machine */
} sandbox_deny_t;

/* Denied outright (trap: logged, EPERM). */
static sandbox_deny_t deny_list[] = {
    {"execve", "start a program", -1},
    {"execveat", "start a program", -1},
    {"fork", "create a process", -1},
    {"vfork", "create a process", -1},
    {"ptrace", "trace a process", -1},
    {"process_vm_readv", "read another process's memory", -1},
    {"process_vm_writev", "write another process's memory", -1},
    {"process_madvise", "act on another process's memory", -1},
    {"kcmp", "inspect another process", -1},
    {"pidfd_open", "get a handle on a process", -1},
    {"pidfd_getfd", "take another process's descriptor", -1},
    {"pidfd_send_signal", "signal a process", -1},
    {"tkill", "signal a thread", -1},
    {"socket", "open a socket", -1},
    {"connect", "connect a socket", -1},
    {"bind", "bind a socket", -1},
    {"listen", "listen on a socket", -1},
    {"accept", "accept a connection", -1},
    {"accept4", "accept a connection", -1},
    {"io_uring_setup", "use io_uring", -1},
    {"io_uring_enter", "use io_uring", -1},
    {"io_uring_register", "use io_uring", -1},
    {"mount", "mount a file system", -1},
    {"umount2", "unmount a file system", -1},
    {"pivot_root", "change the root", -1},
    {"chroot", "change the root", -1},
    {"unshare", "enter new namespaces", -1},
    {"setns", "enter a namespace", -1},
    {"mount_setattr", "change a mount", -1},
    {"move_mount", "move a mount", -1},
    {"open_tree", "open a mount tree", -1},
    {"fsopen", "create a file system", -1},
    {"fsconfig", "configure a file system", -1},
    {"fsmount", "mount a file system", -1},
    {"fspick", "reconfigure a file system", -1},
    {"swapon", "manage swap", -1},
    {"swapoff", "manage swap", -1},
    {"reboot", "reboot", -1},
    {"kexec_load", "load a kernel", -1},
    {"kexec_file_load", "load a kernel", -1},
    {"init_module", "load a kernel module", -1},
    {"finit_module", "load a kernel module", -1},
    {"delete_module", "unload a kernel module", -1},
    {"acct", "switch process accounting", -1},
    {"quotactl", "manage quotas", -1},
    {"bpf", "load BPF", -1},
    {"perf_event_open", "open performance counters", -1},
    {"userfaultfd", "handle page faults", -1},
    {"keyctl", "use kernel keys", -1},
    {"add_key", "use kernel keys", -1},
    {"request_key", "use kernel keys", -1},
    {"open_by_handle_at", "open a file by handle", -1},
    {"name_to_handle_at", "open a file by handle", -1},
    {"iopl", "access I/O ports", -1},
    {"ioperm", "access I/O ports", -1},
    {"settimeofday", "set the clock", -1},
    {"clock_settime", "set the clock", -1},
    {"clock_adjtime", "set the clock", -1},
    {"adjtimex", "set the clock", -1},
    {"sethostname", "set the host name", -1},
    {"setdomainname", "set the domain name", -1},
    {"syslog", "read the kernel log", -1},
    {"vhangup", "hang up the terminal", -1},
    {"lookup_dcookie", "look up a directory cookie", -1},
};

/*
 * Calls that name a process: allowed only on the host itself. sd_nr holds
 * the argument and how it is checked: ARG_SELF (must be our pid: kill(0)
 * would reach the broker, which shares our process group), ARG_ZERO (must
 * be 0, "the caller"), or ARG_PRLIMIT (prlimit64 may read anyone's limits
 * and change only its own, through pid 0, as the C library does).
 */
#define ARG_SELF(i) ((i) + 0)
#define ARG_ZERO(i) ((i) + 8)
#define ARG_PRLIMIT 16
static sandbox_deny_t self_only[] = {
    {"kill", "signal another process", ARG_SELF(0)},
    {"tgkill", "signal another process", ARG_SELF(0)},
    {"rt_sigqueueinfo", "signal another process", ARG_SELF(0)},
    {"rt_tgsigqueueinfo", "signal another process", ARG_SELF(0)},
    {"prlimit64", "change another process's limits", ARG_PRLIMIT},
    {"setpriority", "change a process's priority", ARG_ZERO(1)},
    {"ioprio_set", "change a process's I/O priority", ARG_ZERO(1)},
    {"sched_setscheduler", "change a process's scheduling", ARG_ZERO(0)},
    {"sched_setparam", "change a process's scheduling", ARG_ZERO(0)},
    {"sched_setattr", "change a process's scheduling", ARG_ZERO(0)},
    {"sched_setaffinity", "change a process's CPUs", ARG_ZERO(0)},
};
static int self_only_nr[sizeof(self_only) / sizeof(self_only[0])];
static int clone_nr = -1;

static size_t fmt_str(char *out, size_t at, size_t cap, const char *s)
{
    while (*s != '\0' && at + 1 < cap)
        out[at++] = *s++;
    return at;
}

static size_t fmt_int(char *out, size_t at, size_t cap, long v)
{
    char tmp[24];
    size_t n = 0;

    if (v < 0) {
        at = fmt_str(out, at, cap, "-");
        v = -v;
    }
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0 && n < sizeof(tmp));
    while (n > 0 && at + 1 < cap)
        out[at++] = tmp[--n];
    return at;
}

/*
 * SIGSYS from the filter: say what was blocked (async-signal-safe: no
 * stdio, no allocation) and make the call return EPERM.
 */
static void sigsys_handler(int sig, siginfo_t *info, void *uctx)
{
    const char *name = "?", *what = "make a forbidden system call";
    char line[256];
    size_t n = 0;
    int nr = info->si_syscall;
    ssize_t w;

    (void)sig;
    for (size_t i = 0; i < sizeof(deny_list) / sizeof(deny_list[0]); i++)
        if (deny_list[i].sd_nr == nr) {
            name = deny_list[i].sd_name;
            what = deny_list[i].sd_what;
        }
    for (size_t i = 0; i < sizeof(self_only) / sizeof(self_only[0]); i++)
        if (self_only_nr[i] == nr) {
            name = self_only[i].sd_name;
            what = self_only[i].sd_what;
        }
    if (nr == clone_nr) {
        name = "clone";
        what = "create a process";
    }
    n = fmt_str(line, n, sizeof(line), "dcb-host: sandbox: blocked system call ");
    n = fmt_str(line, n, sizeof(line), name);
    n = fmt_str(line, n, sizeof(line), " (");
    n = fmt_int(line, n, sizeof(line), nr);
    n = fmt_str(line, n, sizeof(line), "): the plugin tried to ");
    n = fmt_str(line, n, sizeof(line), what);
    n = fmt_str(line, n, sizeof(line), "; it gets EPERM\n");
    w = write(2, line, n);
    (void)w;
#if defined(__x86_64__)
    ((ucontext_t *)uctx)->uc_mcontext.gregs[REG_RAX] = -EPERM;
#elif defined(__aarch64__)
    ((ucontext_t *)uctx)->uc_mcontext.regs[0] = (unsigned long long)-EPERM;
#else
    (void)uctx;
#endif
}

/* ---- host side: limits, user, Landlock, seccomp ------------------------------------ */

/* Tasks (threads) the real uid already runs: what RLIMIT_NPROC counts. */
static unsigned long user_tasks(uid_t uid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    unsigned long n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[64];
        struct stat st;
        DIR *t;
        struct dirent *te;

        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%.20s/task", e->d_name);
        if (stat(path, &st) != 0 || st.st_uid != uid || (t = opendir(path)) == NULL)
            continue;
        while ((te = readdir(t)) != NULL)
            if (te->d_name[0] != '.')
                n++;
        closedir(t);
    }
    closedir(d);
    return n;
}

static int set_limits(const sandbox_opts_t *o, char *err, size_t errlen)
{
    struct rlimit files = {SANDBOX_NOFILE, SANDBOX_NOFILE};
    struct rlimit procs;

    if (setrlimit(RLIMIT_NOFILE, &files) != 0) {
        snprintf(err, errlen, "setrlimit(RLIMIT_NOFILE): %s", strerror(errno));
        return -1;
    }
    if (getuid() != 0) {
        procs.rlim_cur = procs.rlim_max =
            user_tasks(getuid()) + (o->so_threads ? o->so_threads : 4) + SANDBOX_NPROC_MARGIN;
        setrlimit(RLIMIT_NPROC, &procs);
    }
    if (o->so_memory_mb == 0)
        return 0;
#ifdef SANDBOX_ASAN
    dcb_log(DCB_LOG_INFO, "sandbox: memory rlimit skipped under AddressSanitizer");
#else
    {
        /*
         * RLIMIT_DATA (private writable mappings, Linux >= 4.7) is the closest
         * to "the plugin's heap". It sits a little above the cap the broker
         * polls for, so the broker's kill is what normally acts and the
         * rlimit is the backstop between two polls.
         */
        rlim_t cap = ((rlim_t)o->so_memory_mb + 64u) * 1024u * 1024u;
        struct rlimit data = {cap, cap};
        if (setrlimit(RLIMIT_DATA, &data) != 0) {
            snprintf(err, errlen, "setrlimit(RLIMIT_DATA): %s", strerror(errno));
            return -1;
        }
    }
#endif
    return 0;
}

/* Root with no capabilities: no DAC override, no raw sockets, no kill of others' processes. */
static int drop_capabilities(char *err, size_t errlen)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];

    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
            break;
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &hdr, data) != 0) {
        snprintf(err, errlen, "capset: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int switch_user(const char *user, char *err, size_t errlen)
{
    struct passwd pw, *res = NULL;
    char buf[4096];

    if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
        snprintf(err, errlen, "host_user '%s' is not a known user", user);
        return -1;
    }
    if (res->pw_uid == 0) {
        snprintf(err, errlen, "host_user '%s' is root", user);
        return -1;
    }
    if (setgroups(0, NULL) != 0 || setresgid(res->pw_gid, res->pw_gid, res->pw_gid) != 0 ||
        setresuid(res->pw_uid, res->pw_uid, res->pw_uid) != 0) {
        snprintf(err, errlen, "cannot become %s: %s", user, strerror(errno));
        return -1;
    }
    /* A change of credentials clears the parent-death signal: set it again. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() == 1)
        _exit(1);
    dcb_log(DCB_LOG_INFO, "sandbox: running as %s (uid %u)", user, (unsigned)res->pw_uid);
    return 0;
}

static int landlock_apply(const char *paths, char *err, size_t errlen)
{
    const uint64_t file_rights_base = LANDLOCK_ACCESS_FS_WRITE_FILE;
    uint64_t handled, file_rights;
    struct landlock_ruleset_attr attr;
    long abi;
    int fd, rules = 0;
    const char *p = paths;

    abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 1) {
        snprintf(err, errlen,
                 "write_paths needs Landlock (Linux 5.13 or later, enabled): %s; refusing to run "
                 "the plugin unconfined",
                 strerror(errno));
        return -1;
    }
    handled = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
              LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
              LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
              LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
              LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
    file_rights = file_rights_base;
    if (abi >= 2)
        handled |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3) {
        handled |= LANDLOCK_ACCESS_FS_TRUNCATE;
        file_rights |= LANDLOCK_ACCESS_FS_TRUNCATE;
    }
    if (abi >= 5) {
        handled |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
        file_rights |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    }
    memset(&attr, 0, sizeof(attr));
    attr.handled_access_fs = handled;
    fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (fd < 0) {
        snprintf(err, errlen, "landlock_create_ruleset: %s", strerror(errno));
        return -1;
    }
    /* The plugin's directories, and the null device everybody writes to. */
    for (int pass = 0; pass < 2; pass++) {
        while (pass == 1 || *p != '\0') {
            struct landlock_path_beneath_attr pb;
            char path[4096];
            struct stat st;
            size_t n = 0;

            if (pass == 1) {
                snprintf(path, sizeof(path), "/dev/null");
            } else {
                while (*p == ',' || *p == ' ' || *p == '\t')
                    p++;
                while (*p != '\0' && *p != ',' && n + 1 < sizeof(path))
                    path[n++] = *p++;
                while (n > 0 && (path[n - 1] == ' ' || path[n - 1] == '\t'))
                    n--;
                path[n] = '\0';
                if (n == 0)
                    break;
            }
            pb.parent_fd = open(path, O_PATH | O_CLOEXEC);
            if (pb.parent_fd < 0 || fstat(pb.parent_fd, &st) != 0) {
                snprintf(err, errlen, "write_paths: %s: %s", path, strerror(errno));
                if (pb.parent_fd >= 0)
                    close(pb.parent_fd);
                close(fd);
                return -1;
            }
            pb.allowed_access = S_ISDIR(st.st_mode) ? handled : file_rights;
            if (syscall(SYS_landlock_add_rule, fd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0) {
                snprintf(err, errlen, "landlock_add_rule %s: %s", path, strerror(errno));
                close(pb.parent_fd);
                close(fd);
                return -1;
            }
            close(pb.parent_fd);
            if (pass == 1)
                break;
            rules++;
        }
    }
    if (syscall(SYS_landlock_restrict_self, fd, 0) != 0) {
        snprintf(err, errlen, "landlock_restrict_self: %s", strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    dcb_log(DCB_LOG_INFO, "sandbox: Landlock ABI %ld: writes confined to %s", abi, paths);
    (void)rules;
    return 0;
}

/* libseccomp's SCMP_A* macros leave fields to the compiler; spelled out here. */
static struct scmp_arg_cmp arg_cmp(unsigned arg, enum scmp_compare op, scmp_datum_t a,
                                   scmp_datum_t b)
{
    struct scmp_arg_cmp c;

    c.arg = arg;
    c.op = op;
    c.datum_a = a;
    c.datum_b = b;
    return c;
}

static int seccomp_apply(char *err, size_t errlen)
{
    struct sigaction sa;
    scmp_filter_ctx ctx;
    pid_t self = getpid();
    int rc = 0, denied = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = sigsys_handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) != 0) {
        snprintf(err, errlen, "sigaction(SIGSYS): %s", strerror(errno));
        return -1;
    }
    ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL) {
        snprintf(err, errlen, "seccomp_init failed");
        return -1;
    }
#if defined(__x86_64__)
    /* x32 system calls share the x86-64 filter: give them the same rules. */
    rc = seccomp_arch_add(ctx, SCMP_ARCH_X32);
    if (rc != 0 && rc != -EEXIST)
        goto fail;
    rc = 0;
#endif
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    for (size_t i = 0; i < sizeof(deny_list) / sizeof(deny_list[0]); i++) {
        int nr = seccomp_syscall_resolve_name(deny_list[i].sd_name);
        deny_list[i].sd_nr = nr;
        if (nr == __NR_SCMP_ERROR || nr < 0)
            continue; /* not a system call on this architecture */
        rc = seccomp_rule_add(ctx, SCMP_ACT_TRAP, nr, 0);
        if (rc != 0)
            goto fail;
        denied++;
    }
    for (size_t i = 0; i < sizeof(self_only) / sizeof(self_only[0]); i++) {
        int nr = seccomp_syscall_resolve_name(self_only[i].sd_name);
        int how = self_only[i].sd_nr;
        self_only_nr[i] = nr;
        if (nr == __NR_SCMP_ERROR || nr < 0)
            continue;
        if (how == ARG_PRLIMIT)
            rc = seccomp_rule_add(ctx, SCMP_ACT_TRAP, nr, 2, arg_cmp(0, SCMP_CMP_NE, 0, 0),
                                  arg_cmp(2, SCMP_CMP_NE, 0, 0));
        else if (how >= ARG_ZERO(0))
            rc = seccomp_rule_add(ctx, SCMP_ACT_TRAP, nr, 1,
                                  arg_cmp((unsigned)(how - ARG_ZERO(0)), SCMP_CMP_NE, 0, 0));
        else
            rc = seccomp_rule_add(ctx, SCMP_ACT_TRAP, nr, 1,
                                  arg_cmp((unsigned)how, SCMP_CMP_NE, (scmp_datum_t)self, 0));
        if (rc != 0)
            goto fail;
        denied++;
    }
    /* A thread is a clone with CLONE_THREAD; anything else is a new process. */
    clone_nr = seccomp_syscall_resolve_name("clone");
    rc = seccomp_rule_add(ctx, SCMP_ACT_TRAP, SCMP_SYS(clone), 1,
                          arg_cmp(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
    if (rc != 0)
        goto fail;
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc != 0 && rc != -EDOM)
        goto fail;
    rc = seccomp_load(ctx);
    if (rc != 0)
        goto fail;
    seccomp_release(ctx);
    dcb_log(DCB_LOG_INFO,
            "sandbox: seccomp filter on (%d system calls denied: no programs, processes, "
            "sockets or other processes)",
            denied + 2);
    return 0;
fail:
    snprintf(err, errlen, "seccomp: %s", strerror(-rc));
    seccomp_release(ctx);
    return -1;
}

int sandbox_host_limits(const sandbox_opts_t *o, char *err, size_t errlen)
{
    if (errlen > 0)
        err[0] = '\0';
    if (set_limits(o, err, errlen) != 0)
        return -1;
    if (geteuid() == 0) {
        if (o->so_user != NULL && o->so_user[0] != '\0') {
            if (switch_user(o->so_user, err, errlen) != 0)
                return -1;
        } else {
            dcb_log(DCB_LOG_WARN,
                    "sandbox: the host runs as root (set host_user to give hosts their own "
                    "account); its capabilities are dropped");
            if (drop_capabilities(err, errlen) != 0)
                return -1;
        }
    } else if (o->so_user != NULL && o->so_user[0] != '\0') {
        dcb_log(DCB_LOG_INFO, "sandbox: host_user %s ignored: the broker does not run as root",
                o->so_user);
    }
    if (o->so_write_paths != NULL && o->so_write_paths[0] != '\0' &&
        landlock_apply(o->so_write_paths, err, errlen) != 0)
        return -1;
    return seccomp_apply(err, errlen);
}
