/*
 * test_runtime.c — the portable runtime: histograms and MULTI_SZ lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dcb_hist.h"
#include "dcb_os.h"

static dcb_hist_t *new_hist(void)
{
    dcb_hist_t *h = calloc(1, sizeof(*h));

    assert_non_null(h);
    return h;
}

static void test_hist_buckets_cover_and_bound_error(void **state)
{
    uint64_t prev_hi = 0;

    /* Buckets tile the number line with no gap and no overlap... */
    for (uint32_t b = 0; b < DCB_HIST_BUCKETS; b++) {
        uint64_t lo, hi;
        dcb_hist_bucket_range(b, &lo, &hi);
        if (b > 0)
            assert_int_equal(lo, prev_hi + 1);
        assert_int_equal(dcb_hist_bucket(lo), b);
        assert_int_equal(dcb_hist_bucket(hi), b);
        /* ...and each is narrow: width / lower bound <= 1/64. */
        if (lo > 0)
            assert_true((double)(hi - lo) / (double)lo <= 1.0 / 64.0);
        prev_hi = hi;
    }
    /* Values past the top are clamped, never out of range. */
    assert_int_equal(dcb_hist_bucket(UINT64_MAX), DCB_HIST_BUCKETS - 1);
}

static void test_hist_quantiles_within_2_percent(void **state)
{
    dcb_hist_t *h = new_hist();
    /* 1..100000 ns, each once: the q-quantile is q * 100000. */
    for (uint64_t v = 1; v <= 100000; v++)
        dcb_hist_record(h, v);
    assert_int_equal(dcb_hist_count(h), 100000);
    assert_int_equal(dcb_hist_max(h), 100000);
    {
        const double qs[] = {0.5, 0.9, 0.99, 0.999};
        for (size_t i = 0; i < 4; i++) {
            double want = qs[i] * 100000.0, got = (double)dcb_hist_quantile(h, qs[i]);
            assert_true(got >= want * 0.98 && got <= want * 1.02);
        }
    }
    assert_int_equal(dcb_hist_quantile(h, 1.0), 100000);
    free(h);
}

static void test_hist_known_latencies(void **state)
{
    dcb_hist_t *h = new_hist();
    /* 90% at 20 us, 9% at 5 ms, 1% at 150 ms: each reported within 2%. */
    for (int i = 0; i < 9000; i++)
        dcb_hist_record(h, 20000);
    for (int i = 0; i < 900; i++)
        dcb_hist_record(h, 5000000);
    for (int i = 0; i < 100; i++)
        dcb_hist_record(h, 150000000);
    assert_in_range(dcb_hist_quantile(h, 0.5), 19600, 20400);
    assert_in_range(dcb_hist_quantile(h, 0.95), 4900000, 5100000);
    assert_in_range(dcb_hist_quantile(h, 0.995), 147000000, 153000000);
    free(h);
}

static void test_hist_merge(void **state)
{
    dcb_hist_t *a = new_hist(), *b = new_hist(), *sum = new_hist();

    for (int i = 0; i < 1000; i++) {
        dcb_hist_record(a, 1000);
        dcb_hist_record(b, 3000);
    }
    dcb_hist_merge(sum, a);
    dcb_hist_merge(sum, b);
    assert_int_equal(dcb_hist_count(sum), 2000);
    assert_int_equal(dcb_hist_max(sum), 3000);
    assert_in_range(dcb_hist_quantile(sum, 0.25), 980, 1020);
    assert_in_range(dcb_hist_quantile(sum, 0.75), 2940, 3060);
    /* Sparse form: rebuilding from buckets gives the same quantiles. */
    {
        dcb_hist_t *c = new_hist();
        for (uint32_t i = 0; i < DCB_HIST_BUCKETS; i++) {
            uint64_t n = atomic_load(&sum->h_buckets[i]);
            if (n)
                dcb_hist_add_bucket(c, i, n);
        }
        assert_int_equal(dcb_hist_count(c), 2000);
        assert_int_equal(dcb_hist_quantile(c, 0.75), dcb_hist_quantile(sum, 0.75));
        free(c);
    }
    dcb_hist_reset(sum);
    assert_int_equal(dcb_hist_count(sum), 0);
    assert_int_equal(dcb_hist_quantile(sum, 0.5), 0);
    free(a);
    free(b);
    free(sum);
}

static void test_multisz_roundtrip(void **state)
{
    const char *in[] = {"C:\\dhcp\\macfilter.dll", "", "C:\\Programme\\Größe\\audit.dll",
                        "\xf0\x9f\x98\x80.dll"};
    uint16_t *msz = dcb_multisz_from_utf8(in, 4);
    char **out;
    int n;

    assert_non_null(msz);
    n = dcb_multisz_to_utf8(msz, 1000, &out);
    /* The empty string cannot be represented (it would end the list). */
    assert_int_equal(n, 3);
    assert_string_equal(out[0], in[0]);
    assert_string_equal(out[1], in[2]);
    assert_string_equal(out[2], in[3]);
    dcb_strlist_free(out, (size_t)n);
    free(msz);
}

static void test_multisz_empty_and_unterminated(void **state)
{
    const uint16_t empty[] = {0};
    const uint16_t unterminated[] = {'a', 'b', 0, 'c', 'd'};
    const uint16_t no_list_end[] = {'a', 0};
    char **out;

    assert_int_equal(dcb_multisz_to_utf8(empty, 1, &out), 0);
    assert_null(out);
    /* Never reads past max_units, whatever the content. */
    assert_true(dcb_multisz_to_utf8(unterminated, 5, &out) < 0);
    assert_true(dcb_multisz_to_utf8(no_list_end, 2, &out) < 0);
    assert_true(dcb_multisz_to_utf8(empty, 0, &out) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_buckets_cover_and_bound_error),
        cmocka_unit_test(test_hist_quantiles_within_2_percent),
        cmocka_unit_test(test_hist_known_latencies),
        cmocka_unit_test(test_hist_merge),
        cmocka_unit_test(test_multisz_roundtrip),
        cmocka_unit_test(test_multisz_empty_and_unterminated),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
