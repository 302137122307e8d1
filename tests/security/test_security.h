/*
 * test_security.h — shared by the security test groups (test_security.c).
 */
#ifndef DCB_TEST_SECURITY_H
#define DCB_TEST_SECURITY_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sec.h"

/* The broker of the running test, stopped by sec_teardown if an assertion ends it early. */
extern tb_broker_t *sec_current;
int sec_teardown(void **state);
/* A line of findings for the test's output ("security: ..."). */
void sec_note(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#define SEC_START(b, test, pipe, ctl, keys, sections)                                              \
    do {                                                                                           \
        assert_int_equal(sec_broker_start((b), (test), (pipe), (ctl), (keys), (sections)), 0);     \
        sec_current = (b);                                                                         \
    } while (0)
#define SEC_STOP(b)                                                                                \
    do {                                                                                           \
        assert_true(sec_broker_alive(b));                                                          \
        tb_disconnect_all();                                                                       \
        tb_broker_stop(b);                                                                         \
        sec_current = NULL;                                                                        \
    } while (0)

/* Each group's tests (test_pipes_{posix,win}.c, test_hostile.c, test_flood.c, test_escape.c). */
extern const struct CMUnitTest sec_pipe_tests[];
extern const size_t sec_n_pipe_tests;
extern const struct CMUnitTest sec_hostile_tests[];
extern const size_t sec_n_hostile_tests;
extern const struct CMUnitTest sec_flood_tests[];
extern const size_t sec_n_flood_tests;
extern const struct CMUnitTest sec_escape_tests[];
extern const size_t sec_n_escape_tests;

#endif
