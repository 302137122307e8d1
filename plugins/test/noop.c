/* noop — subscribes to every hook and does nothing: the baseline for benchmarks. */
#include "testplug.h"

void testplug_on_call(dcb_hook_t h)
{
    (void)h;
}

DWORD testplug_on_entry(void)
{
    return ERROR_SUCCESS;
}
