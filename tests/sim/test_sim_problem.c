/*
 * test_sim_problem.c — the problem dcb exists to solve, made visible:
 * callout DLLs run inside the DHCP server, so one that crashes takes the
 * server down with it, and one that hangs stalls it. dcb-sim, emulating
 * the server, must die and stall the same way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "simtest.h"

static void test_crashing_plugin_kills_the_server(void **state)
{
    (void)state;
    st_result_t r;
    char plugin[1024];
    snprintf(plugin, sizeof(plugin), "%s", st_plugin("crash"));
    /* The 50th hook call is an access violation inside the "server". */
    assert_int_equal(st_run_sim(ST_ARGS("--dll", plugin, "--count", "1000"),
                                ST_ARGS("DCB_TEST_N=50"), 60000, &r),
                     0);
    assert_false(r.r_timed_out);
    assert_true(st_crashed(&r));
    /* It never got to report: the run did not complete. */
    assert_null(strstr(r.r_out, "packets in"));
    st_result_free(&r);

    /* The same plugin with its crash out of reach: the run completes. */
    assert_int_equal(st_run_sim(ST_ARGS("--dll", plugin, "--count", "1000"),
                                ST_ARGS("DCB_TEST_N=100000000"), 60000, &r),
                     0);
    assert_int_equal(r.r_exit, 0);
    assert_non_null(strstr(r.r_out, "packets in"));
    st_result_free(&r);
}

static void test_hanging_plugin_stalls_the_server(void **state)
{
    (void)state;
    st_result_t r;
    char plugin[1024];
    snprintf(plugin, sizeof(plugin), "%s", st_plugin("hang"));
    /* NewPkt never returns: the receive thread, and so the server, stops. */
    assert_int_equal(st_run_sim(ST_ARGS("--dll", plugin, "--count", "1000"),
                                ST_ARGS("DCB_TEST_N=20", "DCB_TEST_HOOK=newpkt"), 3000, &r),
                     0);
    assert_true(r.r_timed_out);
    assert_null(strstr(r.r_out, "packets in"));
    st_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crashing_plugin_kills_the_server),
        cmocka_unit_test(test_hanging_plugin_stalls_the_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
