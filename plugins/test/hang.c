/* hang — blocks forever on the DCB_TEST_N-th call of the selected hooks. */
#include "testplug.h"

void testplug_on_call(dcb_hook_t h)
{
    if (testplug_count(h) == testplug_n())
        testplug_hang();
}

DWORD testplug_on_entry(void)
{
    return ERROR_SUCCESS;
}
