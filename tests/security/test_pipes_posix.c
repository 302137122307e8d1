/*
 * test_pipes_posix.c — the broker's sockets on Linux (broker/pipesec_posix.c):
 * the directory it creates, the ones it refuses, a live squatter, and
 * SO_PEERCRED on every connection.
 */
#include "test_security.h"

#include <errno.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void dir_of(const char *name, char *out, size_t n)
{
    char *slash;

    snprintf(out, n, "%.120s", name);
    slash = strrchr(out, '/');
    if (slash != NULL)
        *slash = '\0';
}

static void test_socket_dir_private(void **state)
{
    char pipe[256], ctl[256], dir[128];
    struct stat st;
    static tb_broker_t b;

    (void)state;
    sec_endpoint(pipe, sizeof(pipe), "event.sock");
    dir_of(pipe, dir, sizeof(dir));
    snprintf(ctl, sizeof(ctl), "%s/control.sock", dir);
    SEC_START(&b, "dirok", pipe, ctl, NULL, NULL);
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(st.st_uid, geteuid());
    assert_int_equal(stat(pipe, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    sec_note("event socket %s: mode 0600 in a 0700 directory of uid %u", pipe, (unsigned)geteuid());
    SEC_STOP(&b);
}

/* The broker must refuse to start on `pipe`, saying `why`. */
static void refused(const char *test, const char *pipe, const char *why)
{
    char ctl[256];
    static tb_broker_t b;
    int status;

    sec_endpoint(ctl, sizeof(ctl), "control.sock");
    status = sec_broker_run(&b, test, pipe, ctl, NULL, 20000);
    if (status != 1 || !tb_log_contains(&b, why)) {
        tb_log_dump(&b);
        fail_msg("%s: expected exit status 1 and \"%s\", got %d", pipe, why, status);
    }
    sec_note("refused %s: ...%s...", pipe, why);
    sec_endpoint_cleanup(ctl);
}

static void test_refuses_unsafe_dirs(void **state)
{
    char base[256], path[512], target[512];
    int fd;

    (void)state;
    snprintf(base, sizeof(base), "/tmp/dcb-sec-dirs-%d", (int)getpid());
    mkdir(base, 0700);
    /* Straight into /tmp: shared by everybody. */
    refused("dir-tmp", sec_fmt("/tmp/dcb-sec-%d.sock", (int)getpid()), "too open");
    /* A directory others may enter. */
    snprintf(path, sizeof(path), "%s/open", base);
    mkdir(path, 0700);
    chmod(path, 0755);
    refused("dir-0755", sec_fmt("%s/event.sock", path), "mode 0755, too open");
    /* A symbolic link to a good directory. */
    snprintf(target, sizeof(target), "%s/real", base);
    mkdir(target, 0700);
    snprintf(path, sizeof(path), "%s/link", base);
    symlink(target, path);
    refused("dir-link", sec_fmt("%s/event.sock", path), "is a symbolic link");
    /* A good directory inside one that anybody may write to (no sticky bit). */
    snprintf(path, sizeof(path), "%s/shared", base);
    mkdir(path, 0700);
    chmod(path, 0777);
    snprintf(target, sizeof(target), "%s/shared/mine", base);
    mkdir(target, 0700);
    refused("dir-parent", sec_fmt("%s/event.sock", target), "can be changed by other users");
    /* Something that is not a socket where the socket goes. */
    snprintf(path, sizeof(path), "%s/real/event.sock", base);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    refused("dir-file", path, "is not a socket");
    unlink(path);
    /* Someone else's directory (needs root to make one). */
    if (geteuid() == 0) {
        snprintf(path, sizeof(path), "%s/other", base);
        mkdir(path, 0700);
        assert_int_equal(chown(path, 65534, 65534), 0);
        refused("dir-owner", sec_fmt("%s/event.sock", path), "belongs to uid 65534");
        rmdir(path);
    } else {
        sec_note("not root: the other-owner case is not tried");
    }
    rmdir(sec_fmt("%s/shared/mine", base));
    rmdir(sec_fmt("%s/shared", base));
    unlink(sec_fmt("%s/link", base));
    rmdir(sec_fmt("%s/real", base));
    rmdir(sec_fmt("%s/open", base));
    rmdir(base);
}

static void test_live_squatter(void **state)
{
    struct sockaddr_un sa;
    char pipe[256], dir[256];
    int fd;

    (void)state;
    sec_endpoint(pipe, sizeof(pipe), "event.sock");
    dir_of(pipe, dir, sizeof(dir));
    mkdir(dir, 0700);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", pipe);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 4), 0);
    refused("squat", pipe, "another broker is listening there");
    close(fd);
    sec_endpoint_cleanup(pipe);
}

/*
 * In a child that becomes uid/gid 65534: connect, send Hello, wait for an
 * answer. Exit status: 0 closed without an answer, 2 answered, 3 no connect.
 */
static int peer_as_nobody(const char *pipe)
{
    Dcb__Hello h = DCB__HELLO__INIT;
    uint8_t frame[256], buf[256];
    struct sockaddr_un sa;
    int n, status = -1;
    pid_t pid;

    h.protocol_version = DCB_PROTO_VERSION;
    h.role = DCB__CONN_ROLE__ROLE_REQUEST;
    n = dcb_frame_encode(DCB__FRAME_TYPE__FT_HELLO, &h.base, frame, sizeof(frame));
    assert_true(n > 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", pipe);
    pid = fork();
    if (pid == 0) {
        struct timeval tv = {5, 0};
        ssize_t r;
        int fd;
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(4);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
            _exit(3);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        /* The broker may have closed it already: no SIGPIPE for that. */
        if (send(fd, frame, (size_t)n, MSG_NOSIGNAL) != n)
            _exit(0);
        r = read(fd, buf, sizeof(buf));
        _exit(r > 0 ? 2 : r == 0 || errno == ECONNRESET ? 0 : 5);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*
 * A directory the group 65534 may enter, so that only SO_PEERCRED stands in
 * the way; setgid, so the socket gets the directory's group (how an
 * administrator lets the DHCP server's group in).
 */
static void group_dir(const char *dir)
{
    mkdir(dir, 0700);
    assert_int_equal(chown(dir, 0, 65534), 0);
    assert_int_equal(chmod(dir, 02710), 0);
}

static void test_peer_credentials(void **state)
{
    char dir[128], pipe[256], ctl[256];
    struct stat st;
    static tb_broker_t b;

    (void)state;
    if (geteuid() != 0) {
        sec_note("not root: cannot connect as another user; peer credentials not tried");
        skip();
    }
    snprintf(dir, sizeof(dir), "/tmp/dcb-sec-peer-%d", (int)getpid());
    group_dir(dir);
    snprintf(pipe, sizeof(pipe), "%s/event.sock", dir);
    snprintf(ctl, sizeof(ctl), "%s/control.sock", dir);
    SEC_START(&b, "peer", pipe, ctl, NULL, NULL);
    assert_int_equal(stat(pipe, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0660);
    assert_int_equal(peer_as_nobody(pipe), 0);
    assert_true(tb_log_wait(&b, "refused: uid 65534", 5000));
    sec_note("uid 65534 (in the directory's group) refused by SO_PEERCRED");
    SEC_STOP(&b);
    /* The same account, allowed by name in pipe_allow. */
    group_dir(dir);
    SEC_START(&b, "peer-allowed", pipe, ctl, "pipe_allow = nobody", NULL);
    assert_int_equal(peer_as_nobody(pipe), 2);
    assert_false(tb_log_contains(&b, "refused"));
    SEC_STOP(&b);
    rmdir(dir);
}

const struct CMUnitTest sec_pipe_tests[] = {
    cmocka_unit_test_teardown(test_socket_dir_private, sec_teardown),
    cmocka_unit_test_teardown(test_refuses_unsafe_dirs, sec_teardown),
    cmocka_unit_test_teardown(test_live_squatter, sec_teardown),
    cmocka_unit_test_teardown(test_peer_credentials, sec_teardown),
};
const size_t sec_n_pipe_tests = sizeof(sec_pipe_tests) / sizeof(sec_pipe_tests[0]);
