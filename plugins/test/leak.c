/*
 * leak — allocates DCB_TEST_LEAK_KB KiB (default 256) on every call and
 * never frees it, touching every page so the memory is really used.
 */
#include "testplug.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static size_t leak_bytes;
static _Atomic(void *) last; /* the newest block: its contents must not be optimised away */

void testplug_on_call(dcb_hook_t h)
{
    char *p = malloc(leak_bytes);
    if (p != NULL) {
        memset(p, 0x5c, leak_bytes);
        atomic_store_explicit(&last, p, memory_order_relaxed);
    }
}

DWORD testplug_on_entry(void)
{
    leak_bytes = (size_t)testplug_env_u32("DCB_TEST_LEAK_KB", 256) * 1024;
    return ERROR_SUCCESS;
}
