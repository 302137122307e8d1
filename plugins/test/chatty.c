/*
 * chatty — prints to stdout and stderr on every call, and on the
 * DCB_TEST_N-th call closes file descriptors 1 and 2 (once): a host that
 * talks to its parent over stdio must not be disturbed by either.
 */
#include "testplug.h"

#include <stdatomic.h>
#include <stdio.h>

static _Atomic uint64_t calls;

void testplug_on_call(dcb_hook_t h)
{
    uint64_t n = atomic_fetch_add(&calls, 1) + 1;
    printf("chatty: stdout %s call %llu\n", testplug_hook_name(h), (unsigned long long)n);
    fflush(stdout);
    fprintf(stderr, "chatty: stderr %s call %llu\n", testplug_hook_name(h), (unsigned long long)n);
    if (n == testplug_n())
        testplug_close_stdio();
}

DWORD testplug_on_entry(void)
{
    return ERROR_SUCCESS;
}
