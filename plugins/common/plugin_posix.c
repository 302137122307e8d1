/* plugin_posix.c — the platform bits of the plugin helpers, POSIX side. */
#include "dcb_plugin.h"

#include <dlfcn.h>
#include <stdio.h>
#include <time.h>

int dcb_plugin_module_path(const void *addr, char *out, size_t cap)
{
    Dl_info info;
    /* dladdr takes a data pointer; the callers pass one of their functions. */
    if (dladdr((void *)(uintptr_t)addr, &info) == 0 || info.dli_fname == NULL)
        return -1;
    if ((size_t)snprintf(out, cap, "%s", info.dli_fname) >= cap)
        return -1;
    return 0;
}

void dcb_plugin_utc_now(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
}

int dcb_plugin_replace_file(const char *src, const char *dst)
{
    return rename(src, dst) == 0 ? 0 : -1;
}
