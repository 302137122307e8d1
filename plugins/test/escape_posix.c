/* escape_posix.c — the escape plugin's attempts on Linux. */
#include "escape.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void try_spawn(void)
{
    char *argv[] = {"/bin/true", NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);

    if (rc != 0) {
        escape_report("spawn", 0, "posix_spawn: %s", strerror(rc));
        return;
    }
    waitpid(pid, NULL, 0);
    escape_report("spawn", 1, "posix_spawn started pid %d", (int)pid);
}

static void try_fork(void)
{
    pid_t pid = fork();

    if (pid == 0)
        _exit(0);
    if (pid < 0) {
        escape_report("fork", 0, "fork: %s", strerror(errno));
        return;
    }
    waitpid(pid, NULL, 0);
    escape_report("fork", 1, "fork made pid %d", (int)pid);
}

static void try_exec(void)
{
    char *argv[] = {"/bin/true", NULL};

    /* Success would replace the host with /bin/true: the broker would see it exit. */
    execve("/bin/true", argv, environ);
    escape_report("exec", 0, "execve: %s", strerror(errno));
}

static void try_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0) {
        escape_report("socket", 0, "socket(AF_INET): %s", strerror(errno));
        return;
    }
    close(fd);
    escape_report("socket", 1, "socket(AF_INET) gave fd %d", fd);
}

static void try_connect_broker(void)
{
    const char *pipe = escape_env("DCB_ESCAPE_PIPE");
    struct sockaddr_un sa;
    int fd;

    if (pipe == NULL) {
        escape_report("connect-broker", 0, "DCB_ESCAPE_PIPE not set: not tried");
        return;
    }
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        escape_report("connect-broker", 0, "socket(AF_UNIX): %s", strerror(errno));
        return;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", pipe);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        escape_report("connect-broker", 0, "connect %s: %s", pipe, strerror(errno));
        close(fd);
        return;
    }
    close(fd);
    escape_report("connect-broker", 1, "connected to %s", pipe);
}

static void try_write(const char *what, const char *var)
{
    const char *path = escape_env(var);
    int fd;

    if (path == NULL) {
        escape_report(what, 0, "%s not set: not tried", var);
        return;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        escape_report(what, 0, "open %s: %s", path, strerror(errno));
        return;
    }
    if (write(fd, "escaped\n", 8) != 8) {
        close(fd);
        escape_report(what, 0, "write %s: %s", path, strerror(errno));
        return;
    }
    close(fd);
    escape_report(what, 1, "wrote %s", path);
}

static void try_signal_broker(void)
{
    pid_t broker = getppid();

    if (kill(broker, 0) != 0) {
        escape_report("signal-broker", 0, "kill(%d, 0): %s", (int)broker, strerror(errno));
        return;
    }
    escape_report("signal-broker", 1, "kill(%d, 0) succeeded", (int)broker);
}

static void try_ptrace_broker(void)
{
    pid_t broker = getppid();

    if (ptrace(PTRACE_SEIZE, broker, NULL, NULL) != 0) {
        escape_report("ptrace-broker", 0, "PTRACE_SEIZE %d: %s", (int)broker, strerror(errno));
        return;
    }
    ptrace(PTRACE_DETACH, broker, NULL, NULL);
    escape_report("ptrace-broker", 1, "attached to %d", (int)broker);
}

static void try_broker_memory(void)
{
    char path[64];
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/mem", (int)getppid());
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        escape_report("broker-memory", 0, "open %s: %s", path, strerror(errno));
        return;
    }
    close(fd);
    escape_report("broker-memory", 1, "opened %s for writing", path);
}

static void *thread_main(void *arg)
{
    *(int *)arg = 42;
    return NULL;
}

static void try_thread(void)
{
    pthread_t t;
    int value = 0, rc = pthread_create(&t, NULL, thread_main, &value);

    if (rc != 0) {
        escape_report("thread", 0, "pthread_create: %s", strerror(rc));
        return;
    }
    pthread_join(t, NULL);
    escape_report("thread", value == 42, "pthread_create and join %s", value == 42 ? "work" : "?");
}

/* Who the host runs as: uid, gid and effective capabilities. */
static void report_identity(void)
{
    char line[256];
    unsigned long long caps = ~0ull;
    FILE *f = fopen("/proc/self/status", "r");

    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "CapEff: %llx", &caps) == 1)
            break;
    if (f != NULL)
        fclose(f);
    printf("escape: identity: uid %d gid %d capabilities %llx\n", (int)getuid(), (int)getgid(),
           caps);
    fflush(stdout);
}

void escape_try_all(void)
{
    report_identity();
    try_fork();
    try_exec();
    try_socket();
    try_connect_broker();
    try_write("write-outside", "DCB_ESCAPE_OUTSIDE");
    try_write("write-inside", "DCB_ESCAPE_INSIDE");
    try_signal_broker();
    try_ptrace_broker();
    try_broker_memory();
    try_thread();
    /*
     * Last: posix_spawn blocks every signal around its clone, and a trapped
     * system call with SIGSYS blocked ends the process (the kernel's rule).
     */
    try_spawn();
}
