/*
 * test_sim_contract.c — dcb-sim keeps the server's side of the callout
 * contract (callout-api.md), seen from inside plugins:
 *   - every packet ends with exactly one PROCESSED drop, and it is the last
 *     hook of the packet; ProcessIt = FALSE gives that drop and nothing else;
 *   - the PktContext set in NewPkt comes back on every later hook;
 *   - IpAddress arrives in the byte order each hook documents;
 *   - DHCP_SERVER_OPTIONS points into the packet per the mapping;
 *   - replies are padded to 300 bytes; the record of a run depends on its
 *     seed only, not on threads;
 *   - contract violations by a plugin are detected and counted;
 *   - packets queued at STOP are freed without callbacks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simtest.h"

static void test_ordercheck_clean(void **state)
{
    (void)state;
    st_result_t r;
    char out[1024], env[1100], plugin[1024];
    snprintf(out, sizeof(out), "%s", st_path(st_scratch("contract_ordercheck"), "summary.txt"));
    snprintf(env, sizeof(env), "DCB_ORDERCHECK_OUT=%s", out);
    snprintf(plugin, sizeof(plugin), "%s", st_plugin("ordercheck"));
    assert_int_equal(
        st_run_sim(ST_ARGS("--dll", plugin, "--count", "5000", "--seed", "7", "--json"),
                   ST_ARGS(env), 120000, &r),
        0);
    assert_int_equal(r.r_exit, 0);
    cJSON *j = st_json(&r);
    assert_non_null(j);
    assert_int_equal((int)st_jnum(j, "packets.in"), 5000);
    assert_int_equal((int)st_jnum(j, "packets.processed"), 5000);
    assert_int_equal((int)st_jnum(j, "violations.total"), 0);
    char *summary = st_read_file(out, NULL);
    assert_non_null(summary);
    assert_string_equal(summary, "packets=5000 violations=0 outstanding=0\n");
    free(summary);
    cJSON_Delete(j);
    st_result_free(&r);
}

#define MAX_IDS 4000

typedef struct pkt_state {
    int ps_newpkt;    /* position of NewPkt among this packet's hooks (1 = first) */
    int ps_hooks;     /* hooks seen */
    int ps_dropped;   /* calllog set ProcessIt = FALSE */
    int ps_processed; /* PROCESSED drops */
    int ps_after;     /* hooks after PROCESSED */
} pkt_state_t;

static unsigned long long field_u(const char *line, const char *key)
{
    const char *p = strstr(line, key);
    return p != NULL ? strtoull(p + strlen(key), NULL, 0) : 0;
}

static int field_is(const char *line, const char *key, const char *want)
{
    const char *p = strstr(line, key);
    if (p == NULL)
        return 0;
    p += strlen(key);
    size_t n = strcspn(p, " \n");
    return n == strlen(want) && strncmp(p, want, n) == 0;
}

static void test_calllog_sequences(void **state)
{
    (void)state;
    st_result_t r;
    char log[1024], env[1100], plugin[1024];
    snprintf(log, sizeof(log), "%s", st_path(st_scratch("contract_calllog"), "calls.log"));
    snprintf(env, sizeof(env), "DCB_CALLLOG_OUT=%s", log);
    snprintf(plugin, sizeof(plugin), "%s", st_plugin("calllog"));
    const int count = 3000;
    assert_int_equal(
        st_run_sim(ST_ARGS("--dll", plugin, "--count", "3000", "--seed", "11", "--json"),
                   ST_ARGS(env, "DCB_CALLLOG_DROP_EVERY=4"), 120000, &r),
        0);
    assert_int_equal(r.r_exit, 0);
    cJSON *j = st_json(&r);
    assert_non_null(j);
    assert_int_equal((int)st_jnum(j, "packets.plugin_drops"), count / 4);

    char *text = st_read_file(log, NULL);
    assert_non_null(text);
    pkt_state_t *ps = calloc(MAX_IDS + 1, sizeof(*ps));
    int named = 0, duid = 0, bootp_offer = 0, dhcp_offer = 0, give_new = 0, give_old = 0;
    int del_codes[5] = {0}, dup_drops = 0, invalid_drops = 0, sends = 0;
    for (char *line = text; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        int is_pkt_hook =
            strncmp(line, "newpkt ", 7) == 0 || strncmp(line, "pktdrop ", 8) == 0 ||
            strncmp(line, "pktsend ", 8) == 0 || strncmp(line, "addressdel ", 11) == 0 ||
            strncmp(line, "addressoffer ", 13) == 0 || strncmp(line, "handleoptions ", 14) == 0;
        if (is_pkt_hook) {
            unsigned long long id = field_u(line, "id=");
            /* Every later hook carries the PktContext that NewPkt set. */
            assert_true(id >= 1 && id <= MAX_IDS);
            pkt_state_t *p = &ps[id];
            p->ps_hooks++;
            if (p->ps_processed)
                p->ps_after++;
            if (strncmp(line, "newpkt ", 7) == 0) {
                p->ps_newpkt = p->ps_hooks;
                p->ps_dropped = strstr(line, " drop") != NULL;
            }
            /* IpAddress: network order in these, host order in AddressOffer. */
            if (strstr(line, "ip=") != NULL && !field_is(line, "ip=", "10.0.0.1"))
                fail_msg("wrong IpAddress byte order: %s", line);
            if (strncmp(line, "pktdrop ", 8) == 0) {
                unsigned long long code = field_u(line, "code=");
                p->ps_processed += code == 0xb;
                dup_drops += code == 0x1;
                invalid_drops += code == 0x8;
            }
            if (strncmp(line, "pktsend ", 8) == 0) {
                sends++;
                assert_true(field_u(line, "size=") >= 300); /* padded */
                assert_int_equal(field_u(line, "code="), 0x10000000);
            }
            if (strncmp(line, "handleoptions ", 14) == 0) {
                if (!field_is(line, "options=", "ok"))
                    fail_msg("DHCP_SERVER_OPTIONS mapping: %s", line);
                named += strstr(line, " name") != NULL;
                duid += strstr(line, "cid_type=255") != NULL;
            }
            if (strncmp(line, "addressoffer ", 13) == 0) {
                unsigned long long type = field_u(line, "type=");
                bootp_offer += type == 0x30000003;
                dhcp_offer += type == 0x30000004;
                give_new += field_u(line, "code=") == 0x30000001;
                give_old += field_u(line, "code=") == 0x30000002;
            }
            if (strncmp(line, "addressdel ", 11) == 0) {
                unsigned long long code = field_u(line, "code=") - 0x20000000ull;
                if (code >= 1 && code <= 4)
                    del_codes[code]++;
            }
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    for (int id = 1; id <= count; id++) {
        pkt_state_t *p = &ps[id];
        assert_int_equal(p->ps_newpkt, 1);    /* NewPkt first */
        assert_int_equal(p->ps_processed, 1); /* exactly one PROCESSED */
        assert_int_equal(p->ps_after, 0);     /* and nothing after it */
        if (p->ps_dropped)
            assert_int_equal(p->ps_hooks, 2); /* NewPkt, PROCESSED: nothing else */
        assert_int_equal(p->ps_dropped, id % 4 == 0);
    }
    assert_int_equal(ps[count + 1].ps_hooks, 0);
    assert_int_equal(sends, (int)st_jnum(j, "packets.replies"));
    /* The traffic is varied enough to exercise every path. */
    assert_true(named > 0 && duid > 0);
    assert_true(bootp_offer > 0 && dhcp_offer > 0 && give_new > 0 && give_old > 0);
    for (int c = 1; c <= 4; c++)
        assert_true(del_codes[c] > 0);
    assert_true(dup_drops > 0 && invalid_drops > 0);
    free(ps);
    free(text);
    cJSON_Delete(j);
    st_result_free(&r);
}

static void test_record_deterministic(void **state)
{
    (void)state;
    st_result_t r;
    const char *dir = st_scratch("contract_record");
    char a[1024], b[1024], c[1024], plugin[1024];
    snprintf(a, sizeof(a), "%s", st_path(dir, "a.rec"));
    snprintf(b, sizeof(b), "%s", st_path(dir, "b.rec"));
    snprintf(c, sizeof(c), "%s", st_path(dir, "c.rec"));
    snprintf(plugin, sizeof(plugin), "%s", st_plugin("noop"));
    assert_int_equal(st_run_sim(ST_ARGS("--dll", plugin, "--count", "4000", "--seed", "5",
                                        "--workers", "1", "--record", a),
                                NULL, 120000, &r),
                     0);
    assert_int_equal(r.r_exit, 0);
    st_result_free(&r);
    assert_int_equal(st_run_sim(ST_ARGS("--dll", plugin, "--count", "4000", "--seed", "5",
                                        "--workers", "8", "--record", b),
                                NULL, 120000, &r),
                     0);
    assert_int_equal(r.r_exit, 0);
    st_result_free(&r);
    assert_int_equal(
        st_run_sim(ST_ARGS("--count", "4000", "--seed", "6", "--record", c), NULL, 120000, &r), 0);
    assert_int_equal(r.r_exit, 0);
    st_result_free(&r);

    size_t la, lb, lc;
    char *ta = st_read_file(a, &la), *tb = st_read_file(b, &lb), *tc = st_read_file(c, &lc);
    assert_non_null(ta);
    assert_non_null(tb);
    assert_non_null(tc);
    assert_int_equal(la, lb);
    assert_memory_equal(ta, tb, la);                  /* thread count does not matter */
    assert_true(la != lc || memcmp(ta, tc, la) != 0); /* the seed does */
    free(ta);
    free(tb);
    free(tc);

    st_rec_t *rec;
    long n = st_read_record(a, &rec);
    assert_int_equal(n, 4000);
    long replies = 0;
    for (long i = 0; i < n; i++)
        if (strcmp(rec[i].rc_outcome, "reply") == 0) {
            replies++;
            assert_true(rec[i].rc_len >= 300);
        }
    assert_true(replies > 3000);
    st_record_free(rec, n);
}

static void test_badsize_detected(void **state)
{
    (void)state;
    st_result_t r;
    char plugin[1024], rec[1024];
    snprintf(plugin, sizeof(plugin), "%s", st_plugin("badsize"));
    snprintf(rec, sizeof(rec), "%s", st_path(st_scratch("contract_badsize"), "bad.rec"));
    /* A reply replaced with an impossible size: detected, not sent, not read. */
    assert_int_equal(
        st_run_sim(ST_ARGS("--dll", plugin, "--count", "500", "--json", "--record", rec), NULL,
                   60000, &r),
        0);
    assert_int_equal(r.r_exit, 0);
    cJSON *j = st_json(&r);
    assert_non_null(j);
    int unsent = (int)st_jnum(j, "packets.replies_unsent");
    assert_true(unsent > 400);
    assert_int_equal((int)st_jnum(j, "packets.replies"), 0);
    assert_int_equal((int)st_jnum(j, "violations.replaced_size_too_big"), unsent);
    assert_int_equal((int)st_jnum(j, "packets.processed"), 500);
    cJSON_Delete(j);
    st_result_free(&r);
    st_rec_t *recs;
    long n = st_read_record(rec, &recs);
    assert_int_equal(n, 500);
    long unsent_lines = 0;
    for (long i = 0; i < n; i++)
        unsent_lines += strcmp(recs[i].rc_outcome, "unsent") == 0;
    assert_int_equal(unsent_lines, unsent);
    st_record_free(recs, n);

    /* The same in NewPkt: the server cannot use the packet and drops it. */
    assert_int_equal(st_run_sim(ST_ARGS("--dll", plugin, "--count", "300", "--json"),
                                ST_ARGS("DCB_TEST_HOOK=newpkt"), 60000, &r),
                     0);
    assert_int_equal(r.r_exit, 0);
    j = st_json(&r);
    assert_non_null(j);
    assert_int_equal((int)st_jnum(j, "violations.replaced_size_too_big"), 300);
    assert_int_equal((int)st_jnum(j, "server_drops.INVALID"), 300);
    assert_int_equal((int)st_jnum(j, "hooks.PktSend.calls"), 0);
    cJSON_Delete(j);
    st_result_free(&r);
}

static void test_abandoned_at_stop(void **state)
{
    (void)state;
    st_result_t r;
    char plugin[1024];
    snprintf(plugin, sizeof(plugin), "%s", st_plugin("slow"));
    /* One slow worker and a small queue: packets are waiting when STOP comes. */
    assert_int_equal(st_run_sim(ST_ARGS("--dll", plugin, "--duration", "0.5", "--workers", "1",
                                        "--queue", "8", "--json"),
                                ST_ARGS("DCB_TEST_HOOK=handleoptions", "DCB_TEST_SLEEP_MS=20"),
                                60000, &r),
                     0);
    assert_int_equal(r.r_exit, 0);
    cJSON *j = st_json(&r);
    assert_non_null(j);
    double in = st_jnum(j, "packets.in"), processed = st_jnum(j, "packets.processed");
    double abandoned = st_jnum(j, "packets.abandoned");
    assert_true(abandoned > 0);
    assert_true(processed + abandoned == in);
    /* Abandoned packets got no callback: every PktDrop belongs to a processed one. */
    assert_true(st_jnum(j, "hooks.PktDrop.calls") ==
                processed + st_jnum(j, "packets.server_drops"));
    assert_true(st_jnum(j, "hooks.NewPkt.calls") == in);
    cJSON_Delete(j);
    st_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ordercheck_clean),     cmocka_unit_test(test_calllog_sequences),
        cmocka_unit_test(test_record_deterministic), cmocka_unit_test(test_badsize_detected),
        cmocka_unit_test(test_abandoned_at_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
