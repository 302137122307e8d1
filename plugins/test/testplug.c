/* testplug.c — shared helpers of the test plugins. */
#include "testplug.h"
#include "dcb_os.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[DCB_HOOK_COUNT] = {"control",       "newpkt",      "pktdrop",
                                                  "pktsend",       "addressdel",  "addressoffer",
                                                  "handleoptions", "deleteclient"};

static uint32_t tp_n = 50;
static int tp_hook = -1; /* -1: any but control */
static _Atomic uint64_t tp_calls;
static dcb_mutex_t tp_log_lock;
static int tp_log_ready;

const char *testplug_hook_name(dcb_hook_t h)
{
    return (unsigned)h < DCB_HOOK_COUNT ? names[h] : "?";
}

uint32_t testplug_env_u32(const char *name, uint32_t def)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return def;
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    return *end == '\0' ? (uint32_t)n : def;
}

void testplug_read_env(void)
{
    tp_n = testplug_env_u32("DCB_TEST_N", 50);
    const char *h = getenv("DCB_TEST_HOOK");
    tp_hook = -1;
    for (unsigned i = 0; h != NULL && i < DCB_HOOK_COUNT; i++)
        if (strcmp(h, names[i]) == 0)
            tp_hook = (int)i;
    if (!tp_log_ready) {
        dcb_mutex_init(&tp_log_lock);
        tp_log_ready = 1;
    }
}

uint32_t testplug_n(void)
{
    return tp_n;
}

int testplug_hook_selected(dcb_hook_t h)
{
    return tp_hook < 0 ? h != DCB_HOOK_CONTROL : (int)h == tp_hook;
}

uint64_t testplug_count(dcb_hook_t h)
{
    if (!testplug_hook_selected(h))
        return 0;
    return atomic_fetch_add(&tp_calls, 1) + 1;
}

void testplug_log(const char *fmt, ...)
{
    const char *path = getenv("DCB_CALLLOG_OUT");
    char line[2048];
    va_list ap;
    if (path == NULL || *path == '\0' || !tp_log_ready)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    dcb_mutex_lock(&tp_log_lock);
    FILE *f = fopen(path, "ab");
    if (f != NULL) {
        fwrite(line, 1, (size_t)n, f);
        fclose(f);
    }
    dcb_mutex_unlock(&tp_log_lock);
}

void testplug_chain_str(LPWSTR chain, char *out, size_t cap)
{
    char **items = NULL;
    int n = chain != NULL ? dcb_multisz_to_utf8((const uint16_t *)chain, 1u << 20, &items) : 0;
    size_t k = 0;
    if (n < 0) {
        snprintf(out, cap, "invalid");
        return;
    }
    k += (size_t)snprintf(out, cap, "%d", n);
    for (int i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%c%s", i == 0 ? ' ' : '|', items[i]);
    dcb_strlist_free(items, (size_t)n);
}
