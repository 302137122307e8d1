/*
 * slow — sleeps DCB_TEST_SLEEP_MS (default 10) in every NewPkt, or in the
 * hooks DCB_TEST_HOOK selects when it is set.
 */
#include "testplug.h"
#include "dcb_os.h"

#include <stdlib.h>

static uint32_t sleep_ms;
static int by_env;

void testplug_on_call(dcb_hook_t h)
{
    if (by_env ? testplug_hook_selected(h) : h == DCB_HOOK_NEWPKT)
        dcb_sleep_ms(sleep_ms);
}

DWORD testplug_on_entry(void)
{
    const char *hook = getenv("DCB_TEST_HOOK");
    by_env = hook != NULL && *hook != '\0';
    sleep_ms = testplug_env_u32("DCB_TEST_SLEEP_MS", 10);
    return ERROR_SUCCESS;
}
