/*
 * test_security.c — dcb against an attacker (see README.md, "Threat model").
 *
 *   test_security pipes    who may reach the broker's endpoints, and squatting
 *   test_security hostile  a plugin host that sends garbage, oversized,
 *                          truncated, unrequested and out-of-order frames
 *   test_security flood    floods of shim and control connections, slowloris,
 *                          garbage from shims: memory bounded, NewPkt answered
 *   test_security escape   a plugin that tries to leave its sandbox
 *
 * Each test starts its own dcb-broker (from DCB_BIN_DIR) on endpoints of its
 * own and talks to it as a shim would (tests/broker's tb.h). What a platform
 * cannot enforce (Wine) is printed as a "security: WINE GAP" line and checked
 * as far as Wine shows it; nothing passes silently.
 */
#include "test_security.h"

tb_broker_t *sec_current;

int sec_teardown(void **state)
{
    (void)state;
    tb_disconnect_all();
    if (sec_current != NULL && sec_current->tb_running)
        tb_broker_stop(sec_current);
    sec_current = NULL;
    return 0;
}

void sec_note(const char *fmt, ...)
{
    va_list ap;

    printf("security: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        const struct CMUnitTest *tests;
        const size_t *n;
    } groups[] = {
        {"pipes", sec_pipe_tests, &sec_n_pipe_tests},
        {"hostile", sec_hostile_tests, &sec_n_hostile_tests},
        {"flood", sec_flood_tests, &sec_n_flood_tests},
        {"escape", sec_escape_tests, &sec_n_escape_tests},
    };
    const char *group = argc > 1 ? argv[1] : "all";
    int failed = 0, ran = 0;

    if (argc > 2)
        cmocka_set_test_filter(argv[2]);
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        char name[64];
        if (strcmp(group, groups[i].name) != 0 && strcmp(group, "all") != 0)
            continue;
        snprintf(name, sizeof(name), "security.%s", groups[i].name);
        failed += _cmocka_run_group_tests(name, groups[i].tests, *groups[i].n, NULL, NULL);
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "usage: %s [pipes|hostile|flood|escape|all] [test-filter]\n", argv[0]);
        return 2;
    }
    return failed == 0 ? 0 : 1;
}
