/*
 * config.c — where a sample plugin finds its configuration, and small
 * parsing helpers for its INI values.
 */
#include "dcb_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dcb_plugin_config_path(const char *envvar, const void *addr, char *out, size_t cap)
{
    const char *env = envvar != NULL ? getenv(envvar) : NULL;
    if (env != NULL && env[0] != '\0') {
        if (strlen(env) >= cap)
            return -1;
        snprintf(out, cap, "%s", env);
        return 0;
    }
    char mod[4096];
    if (dcb_plugin_module_path(addr, mod, sizeof(mod)) != 0)
        return -1;
    /* Replace the extension of the last path component. */
    char *slash = strrchr(mod, '/');
    char *bslash = strrchr(mod, '\\');
    char *base = slash > bslash ? slash : bslash;
    char *dot = strrchr(base != NULL ? base : mod, '.');
    if (dot != NULL)
        *dot = '\0';
    if (strlen(mod) + 4 >= cap)
        return -1;
    snprintf(out, cap, "%s.ini", mod);
    return 0;
}

static int is_absolute(const char *p)
{
    return p[0] == '/' || p[0] == '\\' ||
           (((p[0] | 0x20) >= 'a' && (p[0] | 0x20) <= 'z') && p[1] == ':');
}

void dcb_plugin_resolve(const char *base_file, const char *rel, char *out, size_t cap)
{
    if (is_absolute(rel)) {
        snprintf(out, cap, "%s", rel);
        return;
    }
    const char *slash = strrchr(base_file, '/');
    const char *bslash = strrchr(base_file, '\\');
    const char *sep = slash > bslash ? slash : bslash;
    if (sep == NULL) {
        snprintf(out, cap, "%s", rel);
        return;
    }
    snprintf(out, cap, "%.*s%s", (int)(sep - base_file + 1), base_file, rel);
}

static int same_nocase(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++)
        if ((*a | 0x20) != (*b | 0x20))
            return 0;
    return *a == *b;
}

int dcb_parse_bool(const char *s)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (same_nocase(s, yes[i]))
            return 1;
        if (same_nocase(s, no[i]))
            return 0;
    }
    return -1;
}
