/*
 * crash — an access violation (SIGSEGV) on the DCB_TEST_N-th call of the
 * selected hooks (default: the 50th call of any hook but Control).
 */
#include "testplug.h"

void testplug_on_call(dcb_hook_t h)
{
    if (testplug_count(h) == testplug_n())
        testplug_crash();
}

DWORD testplug_on_entry(void)
{
    return ERROR_SUCCESS;
}
