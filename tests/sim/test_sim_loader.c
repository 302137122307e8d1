/*
 * test_sim_loader.c — dcb-sim loads callout DLLs the way the DHCP server
 * does: in list order, falling through failed entries, handing the rest of
 * the list to the one that loads as ChainDlls with version 0, START before
 * any packet hook and STOP after the last one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcbsim.h"
#include "simtest.h"

typedef struct paths {
    char p_badentry[1024], p_calllog[1024], p_noop[1024], p_empty[1024], p_missing[1024];
    char p_log[1024], p_env[1100], p_dir[1024];
} paths_t;

static void paths_init(paths_t *p, const char *test)
{
    const char *dir = st_scratch(test);
    snprintf(p->p_dir, sizeof(p->p_dir), "%s", dir);
    snprintf(p->p_badentry, sizeof(p->p_badentry), "%s", st_plugin("badentry"));
    snprintf(p->p_calllog, sizeof(p->p_calllog), "%s", st_plugin("calllog"));
    snprintf(p->p_noop, sizeof(p->p_noop), "%s", st_plugin("noop"));
    snprintf(p->p_empty, sizeof(p->p_empty), "%s", st_plugin("emptytable"));
    snprintf(p->p_missing, sizeof(p->p_missing), "%s", st_path(dir, "no-such-callout.dll"));
    snprintf(p->p_log, sizeof(p->p_log), "%s", st_path(dir, "calls.log"));
    snprintf(p->p_env, sizeof(p->p_env), "DCB_CALLLOG_OUT=%s", p->p_log);
}

/* Index of the first line equal to want (or starting with it, if prefix). */
static long find_line(char **lines, long n, const char *want, int prefix)
{
    for (long i = 0; i < n; i++)
        if (prefix ? strncmp(lines[i], want, strlen(want)) == 0 : strcmp(lines[i], want) == 0)
            return i;
    return -1;
}

static long split_lines(char *text, char ***out)
{
    long n = 0, cap = 1024;
    char **lines = malloc((size_t)cap * sizeof(char *));
    for (char *p = text; p != NULL && *p != '\0';) {
        char *nl = strchr(p, '\n');
        if (nl != NULL)
            *nl = '\0';
        if (n == cap) {
            cap *= 2;
            char **bigger = realloc(lines, (size_t)cap * sizeof(char *));
            assert_non_null(bigger);
            lines = bigger;
        }
        lines[n++] = p;
        p = nl != NULL ? nl + 1 : NULL;
    }
    *out = lines;
    return n;
}

static void test_fallthrough_and_chain(void **state)
{
    (void)state;
    paths_t p;
    st_result_t r;
    paths_init(&p, "loader_fallthrough");
    assert_int_equal(
        st_run_sim(ST_ARGS("--dll", p.p_missing, "--dll", p.p_badentry, "--dll", p.p_calllog,
                           "--dll", p.p_noop, "--dll", p.p_empty, "--count", "200", "--json"),
                   ST_ARGS(p.p_env), 60000, &r),
        0);
    assert_int_equal(r.r_exit, 0);
    cJSON *j = st_json(&r);
    assert_non_null(j);
    assert_string_equal(st_jstr(j, "callouts.0.result"), "cannot load");
    assert_string_equal(st_jstr(j, "callouts.1.result"), "entry point failed");
    assert_int_equal((int)st_jnum(j, "callouts.1.code"), 87);
    assert_string_equal(st_jstr(j, "callouts.2.result"), "loaded");
    assert_string_equal(st_jstr(j, "callouts.3.result"), "not tried");
    assert_string_equal(st_jstr(j, "callouts.4.result"), "not tried");
    assert_string_equal(st_jstr(j, "loaded"), p.p_calllog);
    assert_int_equal((int)st_jnum(j, "packets.processed"), 200);

    char *text = st_read_file(p.p_log, NULL);
    assert_non_null(text);
    char **lines;
    long n = split_lines(text, &lines);
    char want[4200];
    /* badentry saw the entries after it; calllog the ones after calllog. */
    snprintf(want, sizeof(want), "badentry entry version=0 chain=3 %s|%s|%s", p.p_calllog, p.p_noop,
             p.p_empty);
    assert_true(find_line(lines, n, want, 0) >= 0);
    snprintf(want, sizeof(want), "calllog entry version=0 chain=2 %s|%s", p.p_noop, p.p_empty);
    long entry = find_line(lines, n, want, 0);
    assert_true(entry >= 0);
    /* The server stopped walking: the DLLs after calllog were never called. */
    assert_int_equal(find_line(lines, n, "emptytable", 1), -1);

    /* START right after the entry point, before any packet hook; STOP last. */
    assert_string_equal(lines[entry + 1], "control code=1");
    assert_string_equal(lines[n - 1], "control code=2");
    long starts = 0, stops = 0, newpkts = 0;
    for (long i = 0; i < n; i++) {
        starts += strcmp(lines[i], "control code=1") == 0;
        stops += strcmp(lines[i], "control code=2") == 0;
        newpkts += strncmp(lines[i], "newpkt ", 7) == 0;
        if (i < entry + 1)
            assert_true(strncmp(lines[i], "newpkt", 6) != 0);
    }
    assert_int_equal(starts, 1);
    assert_int_equal(stops, 1);
    assert_int_equal(newpkts, 200);
    free(lines);
    free(text);
    cJSON_Delete(j);
    st_result_free(&r);
}

static void test_empty_table_loads(void **state)
{
    (void)state;
    paths_t p;
    st_result_t r;
    paths_init(&p, "loader_emptytable");
    assert_int_equal(
        st_run_sim(ST_ARGS("--dll", p.p_empty, "--dll", p.p_calllog, "--count", "300", "--json"),
                   ST_ARGS(p.p_env), 60000, &r),
        0);
    assert_int_equal(r.r_exit, 0);
    cJSON *j = st_json(&r);
    assert_non_null(j);
    assert_string_equal(st_jstr(j, "loaded"), p.p_empty);
    /* Success with an empty table: no hook at all, and calllog never loads. */
    assert_int_equal((int)st_jnum(j, "hooks.NewPkt.calls"), 0);
    assert_int_equal((int)st_jnum(j, "hooks.PktDrop.calls"), 0);
    assert_int_equal((int)st_jnum(j, "packets.processed"), 300);
    char *text = st_read_file(p.p_log, NULL);
    assert_non_null(text);
    char want[2200];
    snprintf(want, sizeof(want), "emptytable entry version=0 chain=1 %s\n", p.p_calllog);
    assert_string_equal(text, want);
    free(text);
    cJSON_Delete(j);
    st_result_free(&r);
}

static void test_all_fail_runs_without_callouts(void **state)
{
    (void)state;
    paths_t p;
    st_result_t r;
    paths_init(&p, "loader_allfail");
    assert_int_equal(
        st_run_sim(ST_ARGS("--dll", p.p_badentry, "--dll", p.p_missing, "--count", "100", "--json"),
                   ST_ARGS(p.p_env), 60000, &r),
        0);
    assert_int_equal(r.r_exit, 0);
    cJSON *j = st_json(&r);
    assert_non_null(j);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "loaded")));
    assert_string_equal(st_jstr(j, "callouts.0.result"), "entry point failed");
    assert_string_equal(st_jstr(j, "callouts.1.result"), "cannot load");
    assert_int_equal((int)st_jnum(j, "packets.processed"), 100);
    char *text = st_read_file(p.p_log, NULL);
    assert_non_null(text);
    char want[2200];
    snprintf(want, sizeof(want), "badentry entry version=0 chain=1 %s\n", p.p_missing);
    assert_string_equal(text, want);
    free(text);
    cJSON_Delete(j);
    st_result_free(&r);
}

static void test_list_file(void **state)
{
    (void)state;
    paths_t p;
    st_result_t r;
    paths_init(&p, "loader_listfile");
    char list[1024], text[8192];
    snprintf(list, sizeof(list), "%s", st_path(p.p_dir, "callouts.txt"));
    snprintf(text, sizeof(text),
             "# CalloutDlls for this test, in order\r\n"
             "\n"
             "   \"%s\"   \r\n"
             "%s\n"
             "  # an indented comment\n"
             "%s\n",
             p.p_badentry, p.p_calllog, p.p_noop);
    assert_int_equal(st_write_file(list, text, strlen(text)), 0);
    assert_int_equal(st_run_sim(ST_ARGS("--dlls-file", list, "--count", "50", "--json"),
                                ST_ARGS(p.p_env), 60000, &r),
                     0);
    assert_int_equal(r.r_exit, 0);
    cJSON *j = st_json(&r);
    assert_non_null(j);
    assert_string_equal(st_jstr(j, "callouts.0.path"), p.p_badentry);
    assert_string_equal(st_jstr(j, "loaded"), p.p_calllog);
    assert_null(st_jstr(j, "callouts.3.path"));
    cJSON_Delete(j);
    st_result_free(&r);
}

static void test_registry(void **state)
{
    (void)state;
    paths_t p;
    st_result_t r;
    paths_init(&p, "loader_registry");
#ifdef _WIN32
    assert_int_equal(
        st_run_sim(ST_ARGS("--set-registry", "--dll", p.p_badentry, "--dll", p.p_calllog), NULL,
                   60000, &r),
        0);
    assert_int_equal(r.r_exit, 0);
    st_result_free(&r);
    assert_int_equal(
        st_run_sim(ST_ARGS("--registry", "--count", "40", "--json"), ST_ARGS(p.p_env), 60000, &r),
        0);
    assert_int_equal(r.r_exit, 0);
    cJSON *j = st_json(&r);
    assert_non_null(j);
    assert_string_equal(st_jstr(j, "loaded"), p.p_calllog);
    assert_string_equal(st_jstr(j, "callouts.0.result"), "entry point failed");
    assert_int_equal((int)st_jnum(j, "hooks.NewPkt.calls"), 40);
    cJSON_Delete(j);
    st_result_free(&r);
    assert_int_equal(st_run_sim(ST_ARGS("--clear-registry"), NULL, 60000, &r), 0);
    assert_int_equal(r.r_exit, 0);
    st_result_free(&r);
    assert_int_equal(st_run_sim(ST_ARGS("--registry", "--count", "10", "--json"), NULL, 60000, &r),
                     0);
    j = st_json(&r);
    assert_non_null(j);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "loaded")));
    cJSON_Delete(j);
    st_result_free(&r);
#else
    /* No registry off Windows: a clear usage error, not a silent empty list. */
    assert_int_equal(st_run_sim(ST_ARGS("--registry"), NULL, 60000, &r), 0);
    assert_int_equal(r.r_exit, 2);
    assert_non_null(strstr(r.r_err, "Windows"));
    st_result_free(&r);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fallthrough_and_chain),
        cmocka_unit_test(test_empty_table_loads),
        cmocka_unit_test(test_all_fail_runs_without_callouts),
        cmocka_unit_test(test_list_file),
        cmocka_unit_test(test_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
