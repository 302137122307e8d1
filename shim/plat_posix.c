/*
 * plat_posix.c — configuration sources and log output on Linux.
 *
 * Settings come from the environment and from a small file, DCB_SHIM_CONFIG
 * or /etc/dcb/shim.conf, of "Name = value" lines (the registry value names;
 * '#' starts a comment).
 */
#include "shim.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DEFAULT_CONFIG_FILE "/etc/dcb/shim.conf"

int dcb__plat_env_get(const char *name, char *out, size_t cap)
{
    const char *v = getenv(name);

    if (v == NULL || cap == 0)
        return 0;
    snprintf(out, cap, "%s", v);
    return 1;
}

int dcb__plat_cfg_get(const char *name, char *out, size_t cap)
{
    const char *path = getenv("DCB_SHIM_CONFIG");
    char line[1024];
    FILE *f;
    int found = 0;

    if (path == NULL || path[0] == '\0')
        path = DEFAULT_CONFIG_FILE;
    f = fopen(path, "re");
    if (f == NULL)
        return 0;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        char *p = line, *eq, *key_end;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '#' || *p == '\0')
            continue;
        eq = strchr(p, '=');
        if (eq == NULL)
            continue;
        key_end = eq;
        while (key_end > p && isspace((unsigned char)key_end[-1]))
            key_end--;
        if ((size_t)(key_end - p) != strlen(name) || strncasecmp(p, name, strlen(name)) != 0)
            continue;
        eq[strcspn(eq, "\r\n")] = '\0';
        snprintf(out, cap, "%s", eq + 1);
        found = 1;
    }
    fclose(f);
    return found;
}

FILE *dcb__plat_fopen_append(const char *path)
{
    return fopen(path, "ae");
}

void dcb__plat_log_default(const char *line)
{
    /* One write per line keeps lines from different threads whole. */
    fprintf(stderr, "%s\n", line);
}

uint64_t dcb__plat_random64(void)
{
    uint64_t v = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

    if (fd >= 0) {
        if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
            v = 0;
        close(fd);
    }
    v ^= dcb_now_ns() ^ ((uint64_t)dcb_getpid() << 32) ^ (uint64_t)(uintptr_t)&v;
    return v != 0 ? v : 1;
}
