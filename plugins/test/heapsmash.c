/*
 * heapsmash — on the DCB_TEST_N-th call, overwrites the allocator's own
 * bookkeeping around a small heap block and then frees it: the kind of
 * heap corruption that no exception handler catches in the DHCP server
 * (glibc aborts, Windows raises STATUS_HEAP_CORRUPTION or crashes later).
 */
#include "testplug.h"

#include <stdlib.h>

void testplug_on_call(dcb_hook_t h)
{
    if (testplug_count(h) != testplug_n())
        return;
    char *a = malloc(24);
    char *b = malloc(24);
    if (a == NULL || b == NULL)
        return;
    /*
     * Byte by byte through a volatile pointer: a memset of memory about to
     * be freed is a dead store the compiler would remove.
     */
    volatile unsigned char *p = (volatile unsigned char *)a - 16;
    for (size_t i = 0; i < 4096; i++)
        p[i] = 0xA5;
    free(a);
    free(b);
}

DWORD testplug_on_entry(void)
{
    return ERROR_SUCCESS;
}
