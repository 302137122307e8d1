/*
 * pipesec_posix.c — the broker's Unix sockets, created secure (pipesec.h).
 *
 * On Linux a socket's own mode is what connect() checks, but a socket can
 * be replaced, or its name taken before the broker binds it, by whoever may
 * write to its directory. So the directory is what is checked:
 *   - it belongs to the broker's user and gives group no write and others
 *     no access at all (the broker creates it 0700 when it is missing);
 *   - it is a real directory, not a symbolic link;
 *   - every directory above it belongs to root or the broker's user and is
 *     writable by nobody else, unless sticky (like /tmp): otherwise someone
 *     could rename the whole directory away and put their own in its place.
 * Anything else and the broker refuses to start, saying which path and why.
 * The socket itself is bound with umask 0177 (mode 0600; 0660 when the
 * directory deliberately lets a group in), and each peer's SO_PEERCRED uid
 * must be the broker's own, root's, or one listed in the allow key.
 */
#include "pipesec.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define PIPESEC_MAX_ALLOW 32
#define PIPESEC_BACKLOG 128

struct pipesec {
    uv_pipe_t ps_server;
    pipesec_cb ps_cb;
    void *ps_data;
    uid_t ps_allow[PIPESEC_MAX_ALLOW];
    size_t ps_nallow;
};

static void closed_cb(uv_handle_t *h)
{
    free(h->data);
}

static void connection_cb(uv_stream_t *server, int status)
{
    pipesec_t *ps = server->data;

    if (status != 0)
        return; /* EMFILE and the like: libuv retries on the next event. */
    ps->ps_cb(ps, ps->ps_data);
}

/* Resolves "root, dhcp, 1001" into uids. */
static int parse_allow(pipesec_t *ps, const char *allow, char *err, size_t errlen)
{
    const char *p = allow != NULL ? allow : "";

    while (*p != '\0') {
        char name[256], buf[2048], *end;
        struct passwd pw, *res = NULL;
        size_t n = 0;
        unsigned long v;

        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t' && n + 1 < sizeof(name))
            name[n++] = *p++;
        name[n] = '\0';
        if (n == 0)
            break;
        if (ps->ps_nallow >= PIPESEC_MAX_ALLOW) {
            snprintf(err, errlen, "more than %d accounts in the allow list", PIPESEC_MAX_ALLOW);
            return UV_EINVAL;
        }
        errno = 0;
        v = strtoul(name, &end, 10);
        if (*end == '\0' && errno == 0 && v <= (unsigned long)(uid_t)-2) {
            ps->ps_allow[ps->ps_nallow++] = (uid_t)v;
            continue;
        }
        if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
            snprintf(err, errlen, "allow list: '%s' is not a known user", name);
            return UV_EINVAL;
        }
        ps->ps_allow[ps->ps_nallow++] = res->pw_uid;
    }
    return 0;
}

/* mkdir -p: parents 0755, the socket's own directory 0700 (owned by us). */
static int make_dir(const char *dir, mode_t mode)
{
    char parent[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char *slash;

    if (mkdir(dir, mode) == 0 || errno == EEXIST)
        return 0;
    if (errno != ENOENT || strlen(dir) >= sizeof(parent))
        return -errno;
    strcpy(parent, dir);
    slash = strrchr(parent, '/');
    if (slash == NULL || slash == parent)
        return UV_ENOENT;
    *slash = '\0';
    if (make_dir(parent, 0755) != 0)
        return UV_ENOENT;
    return mkdir(dir, mode) == 0 || errno == EEXIST ? 0 : -errno;
}

/* The socket's own directory: ours, no symlink, nobody else may write or (others) enter. */
static int check_dir(const char *dir, int *group_ok, char *err, size_t errlen)
{
    struct stat st;

    if (lstat(dir, &st) != 0) {
        snprintf(err, errlen, "socket directory %s: %s", dir, strerror(errno));
        return -errno;
    }
    if (S_ISLNK(st.st_mode)) {
        snprintf(err, errlen,
                 "socket directory %s is a symbolic link: refusing to start (use the real "
                 "directory)",
                 dir);
        return UV_EPERM;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "socket directory %s is not a directory", dir);
        return UV_ENOTDIR;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen,
                 "socket directory %s belongs to uid %u, not to the broker's uid %u: refusing to "
                 "start (someone else could replace the socket)",
                 dir, (unsigned)st.st_uid, (unsigned)geteuid());
        return UV_EPERM;
    }
    if (st.st_mode & 0027) {
        snprintf(err, errlen,
                 "socket directory %s is mode %04o, too open: refusing to start (only the broker's "
                 "user may enter it: chmod 0700)",
                 dir, (unsigned)(st.st_mode & 07777));
        return UV_EPERM;
    }
    *group_ok = (st.st_mode & 0010) != 0;
    return 0;
}

/* Every directory above: root's or ours, and writable by nobody else unless sticky. */
static int check_parents(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];

    if (realpath(dir, path) == NULL) {
        snprintf(err, errlen, "socket directory %s: %s", dir, strerror(errno));
        return -errno;
    }
    for (;;) {
        char *slash = strrchr(path, '/');
        struct stat st;

        if (slash == NULL || (slash == path && path[1] == '\0'))
            break;
        if (slash == path)
            path[1] = '\0'; /* the parent is "/" */
        else
            *slash = '\0';
        if (stat(path, &st) != 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return -errno;
        }
        if ((st.st_uid != 0 && st.st_uid != geteuid()) ||
            ((st.st_mode & 0022) && !(st.st_mode & S_ISVTX))) {
            snprintf(err, errlen,
                     "directory %s (uid %u, mode %04o) above the socket can be changed by other "
                     "users: refusing to start (put the socket under a directory only root or "
                     "the broker's user can write)",
                     path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
            return UV_EPERM;
        }
    }
    return 0;
}

/* A socket file left behind: removed when nobody answers on it. */
static int remove_stale(const char *name, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd, rc;

    if (lstat(name, &st) != 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a socket: refusing to replace it", name);
        return UV_EEXIST;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, name);
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    if (rc == 0) {
        snprintf(err, errlen, "%s: another broker is listening there", name);
        return UV_EADDRINUSE;
    }
    if (errno == ECONNREFUSED && unlink(name) != 0) {
        snprintf(err, errlen, "%s: cannot remove the stale socket: %s", name, strerror(errno));
        return -errno;
    }
    return 0;
}

int pipesec_listen(uv_loop_t *loop, const char *name, pipesec_kind_t kind, const char *allow,
                   pipesec_cb cb, void *data, pipesec_t **out, char *err, size_t errlen)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    pipesec_t *ps;
    char *slash;
    mode_t old;
    int group_ok = 0, rc;

    (void)kind; /* Both kinds: the broker's uid, root, and the allow list. */
    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (strlen(name) >= sizeof(dir)) {
        snprintf(err, errlen, "%s: a socket path has at most %zu bytes", name, sizeof(dir) - 1);
        return UV_ENAMETOOLONG;
    }
    strcpy(dir, name);
    slash = strrchr(dir, '/');
    if (slash == NULL)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    ps = calloc(1, sizeof(*ps));
    if (ps == NULL)
        return UV_ENOMEM;
    ps->ps_cb = cb;
    ps->ps_data = data;
    rc = parse_allow(ps, allow, err, errlen);
    if (rc == 0 && (rc = make_dir(dir, 0700)) != 0)
        snprintf(err, errlen, "cannot create the socket directory %s: %s", dir, uv_strerror(rc));
    if (rc == 0)
        rc = check_dir(dir, &group_ok, err, errlen);
    if (rc == 0)
        rc = check_parents(dir, err, errlen);
    if (rc == 0)
        rc = remove_stale(name, err, errlen);
    if (rc != 0) {
        free(ps);
        return rc;
    }
    rc = uv_pipe_init(loop, &ps->ps_server, 0);
    if (rc != 0) {
        free(ps);
        return rc;
    }
    ps->ps_server.data = ps;
    /* No moment in which the socket exists with a wider mode. */
    old = umask(0177);
    rc = uv_pipe_bind(&ps->ps_server, name);
    umask(old);
    if (rc == 0 && chmod(name, group_ok ? 0660 : 0600) != 0)
        rc = -errno;
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&ps->ps_server, PIPESEC_BACKLOG, connection_cb);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", name, uv_strerror(rc));
        uv_close((uv_handle_t *)&ps->ps_server, closed_cb);
        return rc;
    }
    *out = ps;
    return 0;
}

int pipesec_accept(pipesec_t *ps, uv_pipe_t *client, char *peer, size_t peerlen)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    uv_os_fd_t fd;
    int rc;

    if (peerlen > 0)
        peer[0] = '\0';
    rc = uv_accept((uv_stream_t *)&ps->ps_server, (uv_stream_t *)client);
    if (rc != 0)
        return rc;
    rc = uv_fileno((uv_handle_t *)client, &fd);
    if (rc != 0)
        return rc;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        snprintf(peer, peerlen, "unknown peer");
        return UV_EACCES;
    }
    snprintf(peer, peerlen, "uid %u pid %d", (unsigned)cred.uid, (int)cred.pid);
    if (cred.uid == geteuid() || cred.uid == 0)
        return 0;
    for (size_t i = 0; i < ps->ps_nallow; i++)
        if (cred.uid == ps->ps_allow[i])
            return 0;
    return UV_EACCES;
}

void pipesec_close(pipesec_t *ps)
{
    if (ps != NULL && !uv_is_closing((uv_handle_t *)&ps->ps_server))
        uv_close((uv_handle_t *)&ps->ps_server, closed_cb);
}
