/*
 * test_sim_plugins.c — the sample plugins do what plugins/README.md says:
 *   macfilter drops exactly the listed clients (deny) or exactly the others
 *   (allow), fails open or closed on a broken list, and chains the rest of
 *   CalloutDlls when loaded first;
 *   auditlog writes exactly one correct JSON line per event, and rotates;
 *   optinject's replies carry the configured options byte for byte, every
 *   other reply is untouched, and every buffer it allocates is freed.
 *
 * Expected outcomes are computed here from the same seeded traffic
 * (dcbsimcore's generator) with this file's own reading of each packet.
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

#define SEED "21"
#define CLIENTS "200"
#define COUNT 3000

typedef struct stream {
    uint8_t *s_pkt[COUNT];
    size_t s_len[COUNT];
} stream_t;

/* The traffic dcb-sim generates for --seed SEED --clients CLIENTS. */
static stream_t *make_stream(void)
{
    sim_scope_t sc;
    sim_traffic_cfg_t tc;
    sim_scope_default(&sc);
    sim_traffic_cfg_default(&tc, &sc);
    tc.tc_seed = strtoull(SEED, NULL, 10);
    tc.tc_clients = (uint32_t)strtoul(CLIENTS, NULL, 10);
    sim_traffic_t *t = sim_traffic_new(&tc);
    stream_t *s = calloc(1, sizeof(*s));
    uint8_t buf[SIM_SERVER_BUF];
    for (int i = 0; i < COUNT; i++) {
        s->s_len[i] = sim_traffic_next(t, buf, sizeof(buf), NULL);
        s->s_pkt[i] = malloc(s->s_len[i] + 1);
        memcpy(s->s_pkt[i], buf, s->s_len[i]);
    }
    sim_traffic_free(t);
    return s;
}

static void free_stream(stream_t *s)
{
    for (int i = 0; i < COUNT; i++)
        free(s->s_pkt[i]);
    free(s);
}

/* Option code in the main options area (this test's own walker). */
static const uint8_t *find_opt(const uint8_t *p, size_t len, uint8_t code, uint8_t *olen)
{
    if (len < 240 || p[236] != 0x63 || p[237] != 0x82 || p[238] != 0x53 || p[239] != 0x63)
        return NULL;
    for (size_t i = 240; i < len;) {
        if (p[i] == 0) {
            i++;
            continue;
        }
        if (p[i] == 255 || i + 1 >= len || i + 2 + p[i + 1] > len)
            return NULL;
        if (p[i] == code) {
            *olen = p[i + 1];
            return p + i + 2;
        }
        i += 2u + p[i + 1];
    }
    return NULL;
}

static const char *write_text(const char *dir, const char *name, const char *text)
{
    const char *path = st_path(dir, name);
    assert_int_equal(st_write_file(path, text, strlen(text)), 0);
    return path;
}

/* ------------------------------------------------------------------ */
/* macfilter                                                           */
/* ------------------------------------------------------------------ */

typedef struct mflist {
    uint8_t m_macs[64][6];
    int m_nmacs;
    uint8_t m_cid[16];
    int m_cidlen;
    char m_text[8192];
} mflist_t;

static const uint8_t rpi_prefix[3] = {0xb8, 0x27, 0xeb};

/* Picks listed clients from the stream and writes them in several notations. */
static void make_list(const stream_t *s, mflist_t *l)
{
    memset(l, 0, sizeof(*l));
    size_t k = (size_t)snprintf(l->m_text, sizeof(l->m_text),
                                "# MAC filter list for the test\n\nb8-27-eb-*   # a prefix\n");
    for (int i = 0; i < COUNT && l->m_nmacs < 40; i++) {
        const uint8_t *p = s->s_pkt[i];
        if (s->s_len[i] < 240 || p[0] != 1 || p[2] != 6 || p[33] % 5 != 0)
            continue;
        int dup = 0;
        for (int j = 0; j < l->m_nmacs; j++)
            dup |= memcmp(l->m_macs[j], p + 28, 6) == 0;
        if (dup || memcmp(p + 28, rpi_prefix, 3) == 0)
            continue;
        memcpy(l->m_macs[l->m_nmacs], p + 28, 6);
        const uint8_t *m = p + 28;
        switch (l->m_nmacs++ % 3) {
        case 0:
            k += (size_t)snprintf(l->m_text + k, sizeof(l->m_text) - k,
                                  "%02x:%02x:%02x:%02x:%02x:%02x\n", m[0], m[1], m[2], m[3], m[4],
                                  m[5]);
            break;
        case 1:
            k += (size_t)snprintf(l->m_text + k, sizeof(l->m_text) - k,
                                  "  %02X-%02X-%02X-%02X-%02X-%02X\r\n", m[0], m[1], m[2], m[3],
                                  m[4], m[5]);
            break;
        default:
            k += (size_t)snprintf(l->m_text + k, sizeof(l->m_text) - k,
                                  "%02x%02x%02x%02x%02x%02x\n", m[0], m[1], m[2], m[3], m[4], m[5]);
            break;
        }
    }
    /* One client known only by its RFC 4361 client identifier (option 61). */
    for (int i = 0; i < COUNT && l->m_cidlen == 0; i++) {
        uint8_t ol;
        const uint8_t *cid = find_opt(s->s_pkt[i], s->s_len[i], 61, &ol);
        if (cid == NULL || cid[0] != 255 || ol < 2 || s->s_pkt[i][0] != 1 ||
            memcmp(s->s_pkt[i] + 28, rpi_prefix, 3) == 0)
            continue;
        int listed = 0;
        for (int j = 0; j < l->m_nmacs; j++)
            listed |= memcmp(l->m_macs[j], s->s_pkt[i] + 28, 6) == 0;
        if (listed)
            continue;
        l->m_cidlen = ol - 1;
        memcpy(l->m_cid, cid + 1, (size_t)l->m_cidlen);
        for (int b = 0; b < l->m_cidlen; b++)
            k += (size_t)snprintf(l->m_text + k, sizeof(l->m_text) - k, "%02x%s", l->m_cid[b],
                                  b + 1 < l->m_cidlen ? ":" : "\n");
    }
    assert_true(l->m_nmacs >= 20 && l->m_cidlen > 0);
}

static int is_listed(const mflist_t *l, const uint8_t *p, size_t len)
{
    size_t hlen = p[2] > 16 ? 16 : p[2];
    if (hlen >= 3 && memcmp(p + 28, rpi_prefix, 3) == 0)
        return 1;
    for (int j = 0; hlen == 6 && j < l->m_nmacs; j++)
        if (memcmp(l->m_macs[j], p + 28, 6) == 0)
            return 1;
    uint8_t ol;
    const uint8_t *cid = find_opt(p, len, 61, &ol);
    if (cid != NULL && ol >= 2) {
        if (ol - 1 == 6)
            for (int j = 0; j < l->m_nmacs; j++)
                if (memcmp(l->m_macs[j], cid + 1, 6) == 0)
                    return 1;
        if (ol - 1 == l->m_cidlen && memcmp(l->m_cid, cid + 1, (size_t)l->m_cidlen) == 0)
            return 1;
        if (ol - 1 >= 3 && memcmp(cid + 1, rpi_prefix, 3) == 0)
            return 1;
    }
    return 0;
}

static int is_bootrequest(const uint8_t *p, size_t len)
{
    return len >= 236 && p[0] == 1;
}

/* Runs dcb-sim with macfilter and returns the record (COUNT entries). */
static st_rec_t *run_macfilter(const char *ini, const char *const *extra_args, cJSON **json,
                               char **err)
{
    st_result_t r;
    char rec[1024], env[1100], plugin[1024];
    snprintf(rec, sizeof(rec), "%s", st_path(st_scratch("mf_run"), "mf.rec"));
    snprintf(env, sizeof(env), "DCB_MACFILTER_CONFIG=%s", ini);
    snprintf(plugin, sizeof(plugin), "%s", st_plugin("macfilter"));
    const char *args[32] = {"--dll",   plugin, "--seed",   SEED, "--clients", CLIENTS,
                            "--count", "3000", "--record", rec,  "--json"};
    size_t n = 11;
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL; i++)
        args[n++] = extra_args[i];
    args[n] = NULL;
    assert_int_equal(st_run_sim(args, ST_ARGS(env), 120000, &r), 0);
    assert_int_equal(r.r_exit, 0);
    *json = st_json(&r);
    assert_non_null(*json);
    if (err != NULL) {
        *err = r.r_err;
        r.r_err = NULL;
    }
    st_result_free(&r);
    st_rec_t *recs;
    assert_int_equal(st_read_record(rec, &recs), COUNT);
    return recs;
}

static void test_macfilter_deny_and_allow(void **state)
{
    (void)state;
    stream_t *s = make_stream();
    mflist_t l;
    make_list(s, &l);
    const char *dir = st_scratch("mf_lists");
    char ini[1024];
    write_text(dir, "clients.list", l.m_text);
    snprintf(ini, sizeof(ini), "%s",
             write_text(dir, "deny.ini", "[macfilter]\nmode = deny\nlist = clients.list\n"));
    cJSON *j;
    st_rec_t *rec = run_macfilter(ini, NULL, &j, NULL);
    int drops = 0;
    for (int i = 0; i < COUNT; i++) {
        int expect =
            is_bootrequest(s->s_pkt[i], s->s_len[i]) && is_listed(&l, s->s_pkt[i], s->s_len[i]);
        int got = strcmp(rec[i].rc_outcome, "plugin-drop") == 0;
        if (expect != got)
            fail_msg("packet %d: expected %s, got %s", i, expect ? "drop" : "pass",
                     rec[i].rc_outcome);
        drops += got;
    }
    assert_true(drops > 50 && drops < COUNT - 50);
    assert_int_equal((int)st_jnum(j, "packets.plugin_drops"), drops);
    cJSON_Delete(j);
    st_record_free(rec, COUNT);

    snprintf(ini, sizeof(ini), "%s",
             write_text(dir, "allow.ini",
                        "; only listed clients are served\n[macfilter]\nmode = allow\n"
                        "list = clients.list\nmatch = both\n"));
    rec = run_macfilter(ini, NULL, &j, NULL);
    for (int i = 0; i < COUNT; i++) {
        int expect =
            is_bootrequest(s->s_pkt[i], s->s_len[i]) && !is_listed(&l, s->s_pkt[i], s->s_len[i]);
        int got = strcmp(rec[i].rc_outcome, "plugin-drop") == 0;
        if (expect != got)
            fail_msg("allow, packet %d: expected %s, got %s", i, expect ? "drop" : "pass",
                     rec[i].rc_outcome);
    }
    cJSON_Delete(j);
    st_record_free(rec, COUNT);
    free_stream(s);
}

static void test_macfilter_broken_config(void **state)
{
    (void)state;
    const char *dir = st_scratch("mf_broken");
    char ini[1024], *err;
    cJSON *j;
    write_text(dir, "bad.list", "00:11:22:33:44:55\n# fine so far\nzz:11:22:33:44:55\n");
    snprintf(ini, sizeof(ini), "%s",
             write_text(dir, "open.ini", "[macfilter]\nmode = allow\nlist = bad.list\n"));
    /* Allow mode would drop almost everything; a broken list fails open. */
    st_rec_t *rec = run_macfilter(ini, NULL, &j, &err);
    assert_int_equal((int)st_jnum(j, "packets.plugin_drops"), 0);
    assert_non_null(strstr(err, "bad.list:3:"));
    assert_non_null(strstr(err, "not a MAC address"));
    free(err);
    cJSON_Delete(j);
    st_record_free(rec, COUNT);

    snprintf(ini, sizeof(ini), "%s",
             write_text(dir, "closed.ini", "[macfilter]\nlist = bad.list\non_error = closed\n"));
    rec = run_macfilter(ini, NULL, &j, &err);
    assert_int_equal((int)st_jnum(j, "packets.plugin_drops"), COUNT);
    free(err);
    cJSON_Delete(j);
    st_record_free(rec, COUNT);

    snprintf(ini, sizeof(ini), "%s",
             write_text(dir, "typo.ini", "[macfilter]\nlist = bad.list\nmod = deny\n"));
    rec = run_macfilter(ini, NULL, &j, &err);
    assert_non_null(strstr(err, "typo.ini:3: unknown key 'mod'"));
    assert_int_equal((int)st_jnum(j, "packets.plugin_drops"), 0);
    free(err);
    cJSON_Delete(j);
    st_record_free(rec, COUNT);

    /* No configuration at all: a clear error, and DHCP goes on. */
    rec = run_macfilter(st_path(dir, "missing.ini"), NULL, &j, &err);
    assert_non_null(strstr(err, "cannot read the configuration"));
    assert_int_equal((int)st_jnum(j, "packets.plugin_drops"), 0);
    assert_int_equal((int)st_jnum(j, "packets.processed"), COUNT);
    free(err);
    cJSON_Delete(j);
    st_record_free(rec, COUNT);
}

static void test_macfilter_chains(void **state)
{
    (void)state;
    stream_t *s = make_stream();
    mflist_t l;
    make_list(s, &l);
    const char *dir = st_scratch("mf_chain");
    char ini[1024], log[1024], oc[1024], calllog[1024], ordercheck[1024];
    write_text(dir, "clients.list", l.m_text);
    snprintf(ini, sizeof(ini), "%s",
             write_text(dir, "deny.ini", "[macfilter]\nmode = deny\nlist = clients.list\n"));
    snprintf(log, sizeof(log), "DCB_CALLLOG_OUT=%s", st_path(dir, "calls.log"));
    snprintf(oc, sizeof(oc), "DCB_ORDERCHECK_OUT=%s", st_path(dir, "order.txt"));
    snprintf(calllog, sizeof(calllog), "%s", st_plugin("calllog"));
    snprintf(ordercheck, sizeof(ordercheck), "%s", st_plugin("ordercheck"));
    cJSON *j;
    char *extra_env_log = log, *extra_env_oc = oc;

    /* macfilter loads first and serves calllog and ordercheck itself. */
    st_result_t r;
    char rec[1024], env[1100], plugin[1024];
    snprintf(rec, sizeof(rec), "%s", st_path(dir, "chain.rec"));
    snprintf(env, sizeof(env), "DCB_MACFILTER_CONFIG=%s", ini);
    snprintf(plugin, sizeof(plugin), "%s", st_plugin("macfilter"));
    assert_int_equal(
        st_run_sim(ST_ARGS("--dll", plugin, "--dll", calllog, "--dll", ordercheck, "--seed", SEED,
                           "--clients", CLIENTS, "--count", "3000", "--record", rec, "--json"),
                   ST_ARGS(env, extra_env_log, extra_env_oc), 120000, &r),
        0);
    assert_int_equal(r.r_exit, 0);
    j = st_json(&r);
    assert_non_null(j);
    assert_string_equal(st_jstr(j, "loaded"), plugin);
    int drops = (int)st_jnum(j, "packets.plugin_drops");
    assert_true(drops > 50);
    st_result_free(&r);

    /* The chained DLLs got an empty chain, and only the packets macfilter passed. */
    char *text = st_read_file(st_path(dir, "calls.log"), NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "calllog entry version=0 chain=0\n"));
    assert_int_equal((int)st_count_lines(text, "newpkt "), COUNT - drops);
    assert_int_equal((int)st_count_lines(text, "control code=1"), 1);
    assert_int_equal((int)st_count_lines(text, "control code=2"), 1);
    free(text);
    text = st_read_file(st_path(dir, "order.txt"), NULL);
    assert_non_null(text);
    char want[128];
    snprintf(want, sizeof(want), "packets=%d violations=0 outstanding=0\n", COUNT - drops);
    assert_string_equal(text, want);
    free(text);

    /* Same decisions as macfilter alone. */
    st_rec_t *recs;
    assert_int_equal(st_read_record(rec, &recs), COUNT);
    for (int i = 0; i < COUNT; i++) {
        int expect =
            is_bootrequest(s->s_pkt[i], s->s_len[i]) && is_listed(&l, s->s_pkt[i], s->s_len[i]);
        assert_int_equal(strcmp(recs[i].rc_outcome, "plugin-drop") == 0, expect);
    }
    st_record_free(recs, COUNT);
    cJSON_Delete(j);
    free_stream(s);
}

/* ------------------------------------------------------------------ */
/* auditlog                                                            */
/* ------------------------------------------------------------------ */

static const struct {
    const char *hook, *json;
} hooks[] = {{"newpkt", "NewPkt"},
             {"pktdrop", "PktDrop"},
             {"pktsend", "PktSend"},
             {"addressdel", "AddressDel"},
             {"addressoffer", "AddressOffer"},
             {"handleoptions", "HandleOptions"},
             {"deleteclient", "DeleteClient"}};

static void count_events(const char *text, long *counts, long *control, long *processed,
                         long *lines)
{
    char *copy = strdup(text);
    for (char *line = copy; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        (*lines)++;
        cJSON *o = cJSON_Parse(line);
        if (o == NULL)
            fail_msg("not a JSON line: %s", line);
        const char *hook = st_jstr(o, "hook"), *ts = st_jstr(o, "ts");
        assert_non_null(hook);
        assert_non_null(ts);
        assert_int_equal(strlen(ts), 24); /* 2024-05-01T12:00:00.123Z */
        assert_int_equal(ts[23], 'Z');
        const char *ip = st_jstr(o, "ip");
        /* Each hook's byte order, decoded: always the server's address. */
        if (ip != NULL)
            assert_string_equal(ip, "10.0.0.1");
        if (strcmp(hook, "control") == 0)
            (*control)++;
        for (size_t h = 0; h < sizeof(hooks) / sizeof(hooks[0]); h++)
            if (strcmp(hook, hooks[h].hook) == 0)
                counts[h]++;
        if (strcmp(hook, "pktdrop") == 0 && st_jnum(o, "code") == 11) {
            assert_string_equal(st_jstr(o, "reason"), "PROCESSED");
            (*processed)++;
        }
        if (strcmp(hook, "pktsend") == 0 && st_jstr(o, "mac") != NULL)
            assert_non_null(st_jstr(o, "yiaddr"));
        if (strcmp(hook, "addressoffer") == 0)
            assert_non_null(st_jstr(o, "address"));
        cJSON_Delete(o);
        line = nl != NULL ? nl + 1 : NULL;
    }
    free(copy);
}

static void test_auditlog_one_line_per_event(void **state)
{
    (void)state;
    const char *dir = st_scratch("auditlog");
    char ini[1024], env[1100], plugin[1024], out[1024];
    snprintf(ini, sizeof(ini), "%s",
             write_text(dir, "auditlog.ini",
                        "[auditlog]\nfile = audit.jsonl\nmax_size = 0\nhooks = all\n"));
    snprintf(out, sizeof(out), "%s", st_path(dir, "audit.jsonl"));
    snprintf(env, sizeof(env), "DCB_AUDITLOG_CONFIG=%s", ini);
    snprintf(plugin, sizeof(plugin), "%s", st_plugin("auditlog"));
    st_result_t r;
    /* Short leases at a modest rate, so the scavenger deletes clients too. */
    assert_int_equal(st_run_sim(ST_ARGS("--dll", plugin, "--count", "2000", "--rate", "10000",
                                        "--lease-ms", "5", "--json"),
                                ST_ARGS(env), 120000, &r),
                     0);
    assert_int_equal(r.r_exit, 0);
    cJSON *j = st_json(&r);
    assert_non_null(j);
    char *text = st_read_file(out, NULL);
    assert_non_null(text);
    long counts[7] = {0}, control = 0, processed = 0, lines = 0;
    count_events(text, counts, &control, &processed, &lines);
    char key[64];
    for (size_t h = 0; h < sizeof(hooks) / sizeof(hooks[0]); h++) {
        snprintf(key, sizeof(key), "hooks.%s.calls", hooks[h].json);
        long calls = (long)st_jnum(j, key);
        if (counts[h] != calls)
            fail_msg("%s: %ld lines for %ld calls", hooks[h].hook, counts[h], calls);
    }
    assert_true(counts[6] > 0);   /* DeleteClient happened */
    assert_int_equal(control, 2); /* START and STOP */
    assert_int_equal(processed, 2000);
    free(text);
    cJSON_Delete(j);
    st_result_free(&r);
}

static void test_auditlog_rotation(void **state)
{
    (void)state;
    const char *dir = st_scratch("auditlog_rotate");
    char ini[1024], env[1100], plugin[1024], path[1100];
    snprintf(ini, sizeof(ini), "%s",
             write_text(dir, "auditlog.ini",
                        "[auditlog]\nfile = audit.jsonl\nmax_size = 20000\nkeep = 100\n"
                        "hooks = newpkt, pktdrop\n"));
    snprintf(env, sizeof(env), "DCB_AUDITLOG_CONFIG=%s", ini);
    snprintf(plugin, sizeof(plugin), "%s", st_plugin("auditlog"));
    st_result_t r;
    assert_int_equal(
        st_run_sim(ST_ARGS("--dll", plugin, "--count", "600", "--json"), ST_ARGS(env), 120000, &r),
        0);
    assert_int_equal(r.r_exit, 0);
    cJSON *j = st_json(&r);
    assert_non_null(j);
    long counts[7] = {0}, control = 0, processed = 0, lines = 0;
    int files = 0;
    for (int i = 0; i <= 100; i++) {
        if (i == 0)
            snprintf(path, sizeof(path), "%s", st_path(dir, "audit.jsonl"));
        else
            snprintf(path, sizeof(path), "%s.%d", st_path(dir, "audit.jsonl"), i);
        size_t len;
        char *text = st_read_file(path, &len);
        if (text == NULL)
            break;
        files++;
        assert_true(len <= 20000);
        count_events(text, counts, &control, &processed, &lines);
        free(text);
    }
    assert_true(files > 3);
    /* Rotation loses no line and adds none; only the selected hooks appear. */
    assert_int_equal(counts[0], (long)st_jnum(j, "hooks.NewPkt.calls"));
    assert_int_equal(counts[1], (long)st_jnum(j, "hooks.PktDrop.calls"));
    assert_int_equal(counts[2] + counts[3] + counts[4] + counts[5] + control, 0);
    cJSON_Delete(j);
    st_result_free(&r);
}

/* ------------------------------------------------------------------ */
/* optinject                                                           */
/* ------------------------------------------------------------------ */

static const uint8_t phones[2][3] = {{0x00, 0x04, 0xf2}, {0x00, 0x0b, 0x82}};
static const uint8_t apple[3] = {0x3c, 0x22, 0xfb};
static const uint8_t tftp[4] = {10, 0, 0, 5};

static void big_value(uint8_t *v)
{
    for (int i = 0; i < 200; i++)
        v[i] = (uint8_t)(i * 7 + 1);
}

/* What optinject must make of a reply, per this test's configuration. */
static size_t expected_reply(const uint8_t *base, size_t len, uint8_t *out)
{
    uint8_t big[200];
    big_value(big);
    int type = 0;
    uint8_t ol;
    const uint8_t *t = find_opt(base, len, 53, &ol);
    if (t != NULL && ol == 1)
        type = t[0];
    if (len < 240 || base[0] != 2 || (type != 2 && type != 5))
        return 0; /* not an OFFER or ACK: unchanged */
    int add150 = memcmp(base + 28, phones[0], 3) == 0 || memcmp(base + 28, phones[1], 3) == 0;
    int add224 = memcmp(base + 28, apple, 3) == 0;
    if (!add150 && !add224)
        return 0;
    size_t k = 240, i = 240;
    memcpy(out, base, 240);
    while (i < len && base[i] != 255) {
        if (base[i] == 0) {
            i++;
            continue;
        }
        size_t n = 2u + base[i + 1];
        if (!(add150 && base[i] == 150) && !(add224 && base[i] == 224)) {
            memcpy(out + k, base + i, n);
            k += n;
        }
        i += n;
    }
    if (add150) {
        out[k++] = 150;
        out[k++] = 4;
        memcpy(out + k, tftp, 4);
        k += 4;
    }
    if (add224) {
        out[k++] = 224;
        out[k++] = 200;
        memcpy(out + k, big, 200);
        k += 200;
    }
    out[k++] = 255;
    size_t total = k <= len ? len : (k < 300 ? 300 : k);
    memset(out + k, 0, total - k);
    return total;
}

static void test_optinject_byte_exact(void **state)
{
    (void)state;
    const char *dir = st_scratch("optinject");
    char ini[1024], env[1100], plugin[1024], base[1024], inj[1024], text[2048];
    uint8_t big[200];
    big_value(big);
    size_t k = (size_t)snprintf(text, sizeof(text),
                                "; TFTP servers for the phones\n"
                                "[rule phones]\n"
                                "mac = 00:04:f2, 00-0b-82-*\n"
                                "option = 150\n"
                                "ip = 10.0.0.5\n"
                                "\n"
                                "[rule apple]\n"
                                "mac = 3c:22:fb\n"
                                "option = 224\n"
                                "messages = offer, ack\n"
                                "hex = ");
    for (int i = 0; i < 200; i++)
        k += (size_t)snprintf(text + k, sizeof(text) - k, "%02x", big[i]);
    snprintf(text + k, sizeof(text) - k, "\n");
    snprintf(ini, sizeof(ini), "%s", write_text(dir, "optinject.ini", text));
    snprintf(env, sizeof(env), "DCB_OPTINJECT_CONFIG=%s", ini);
    snprintf(plugin, sizeof(plugin), "%s", st_plugin("optinject"));
    snprintf(base, sizeof(base), "%s", st_path(dir, "base.rec"));
    snprintf(inj, sizeof(inj), "%s", st_path(dir, "inj.rec"));

    st_result_t r;
    assert_int_equal(st_run_sim(ST_ARGS("--seed", SEED, "--clients", CLIENTS, "--count", "3000",
                                        "--record", base),
                                NULL, 120000, &r),
                     0);
    assert_int_equal(r.r_exit, 0);
    st_result_free(&r);
    assert_int_equal(st_run_sim(ST_ARGS("--dll", plugin, "--seed", SEED, "--clients", CLIENTS,
                                        "--count", "3000", "--record", inj, "--json"),
                                ST_ARGS(env), 120000, &r),
                     0);
    assert_int_equal(r.r_exit, 0); /* also: no leak reported by the sanitizer build */
    cJSON *j = st_json(&r);
    assert_non_null(j);

    st_rec_t *b, *g;
    assert_int_equal(st_read_record(base, &b), COUNT);
    assert_int_equal(st_read_record(inj, &g), COUNT);
    uint8_t want[4096];
    int changed = 0, grown = 0;
    for (int i = 0; i < COUNT; i++) {
        assert_string_equal(b[i].rc_outcome, g[i].rc_outcome);
        if (strcmp(b[i].rc_outcome, "reply") != 0)
            continue;
        size_t n = expected_reply(b[i].rc_reply, b[i].rc_len, want);
        if (n == 0) {
            assert_int_equal(g[i].rc_len, b[i].rc_len);
            assert_memory_equal(g[i].rc_reply, b[i].rc_reply, b[i].rc_len);
            continue;
        }
        changed++;
        grown += n > b[i].rc_len;
        if (g[i].rc_len != n || memcmp(g[i].rc_reply, want, n) != 0)
            fail_msg("packet %d: reply differs from the expected injection", i);
    }
    assert_true(changed > 20 && grown > 5 && grown < changed);
    assert_int_equal((int)st_jnum(j, "packets.replies_modified"), changed);

    /* Every buffer it handed the server was freed at PROCESSED. */
    unsigned long long total, in_place, replaced, freed;
    const char *line = strstr(r.r_err, "replies changed");
    assert_non_null(line);
    while (line > r.r_err && line[-1] == ' ')
        line--;
    while (line > r.r_err && line[-1] != ' ')
        line--;
    assert_int_equal(sscanf(line,
                            "%llu replies changed (%llu in place, %llu in new buffers), "
                            "%llu buffers freed",
                            &total, &in_place, &replaced, &freed),
                     4);
    assert_int_equal(total, (unsigned long long)changed);
    assert_int_equal(replaced, (unsigned long long)grown);
    assert_int_equal(freed, replaced);
    assert_int_equal(in_place + replaced, total);
    st_record_free(b, COUNT);
    st_record_free(g, COUNT);
    cJSON_Delete(j);
    st_result_free(&r);
}

static void test_optinject_bad_config_changes_nothing(void **state)
{
    (void)state;
    const char *dir = st_scratch("optinject_bad");
    char ini[1024], env[1100], plugin[1024];
    snprintf(
        ini, sizeof(ini), "%s",
        write_text(dir, "optinject.ini", "[rule phones]\nmac = 00:04:f2\noption = 53\nhex = 05\n"));
    snprintf(env, sizeof(env), "DCB_OPTINJECT_CONFIG=%s", ini);
    snprintf(plugin, sizeof(plugin), "%s", st_plugin("optinject"));
    st_result_t r;
    assert_int_equal(
        st_run_sim(ST_ARGS("--dll", plugin, "--count", "500", "--json"), ST_ARGS(env), 60000, &r),
        0);
    assert_int_equal(r.r_exit, 0);
    assert_non_null(strstr(r.r_err, "optinject.ini:3: bad value '53' for 'option'"));
    cJSON *j = st_json(&r);
    assert_non_null(j);
    assert_int_equal((int)st_jnum(j, "packets.replies_modified"), 0);
    cJSON_Delete(j);
    st_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_macfilter_deny_and_allow),
        cmocka_unit_test(test_macfilter_broken_config),
        cmocka_unit_test(test_macfilter_chains),
        cmocka_unit_test(test_auditlog_one_line_per_event),
        cmocka_unit_test(test_auditlog_rotation),
        cmocka_unit_test(test_optinject_byte_exact),
        cmocka_unit_test(test_optinject_bad_config_changes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
