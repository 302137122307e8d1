/*
 * test_evlog.c — the Event Log queue (proto/dcb_evlog.h) with a fake
 * backend that can be made to hang, on both platforms: a producer never
 * waits for the writer; a full queue and the rate limit drop lines and count
 * them, and the writer reports the drops once it catches up; close is
 * bounded even when the Event Log hangs, and the writer then frees itself.
 * On Windows (Wine) also the real backend: Wine's ReportEventW accepts
 * events (and, with WINEDEBUG=+eventlog, prints them), so "written" counts
 * them; and dcbshim.dll, whose writer must be gone after STOP so that the
 * server's FreeLibrary really unloads it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dcb_evlog.h"

#ifdef _WIN32
#include <dhcpssdk.h>
#endif

/* ---- a fake backend ----------------------------------------------------------- */

#define FAKE_MAX 64

static struct {
    dcb_mutex_t f_lock;
    dcb_cond_t f_cond;
    int f_hold; /* write blocks while set */
    int f_in_write;
    int f_open_fails;
    int f_opened;
    int f_closed;
    int f_n;
    int f_bad; /* the writer passed something unexpected (checked on the test's thread) */
    dcb_log_level_t f_levels[FAKE_MAX];
    char f_text[FAKE_MAX][DCB_EVLOG_LINE_MAX];
} fake;

static void *fake_open(const char *source)
{
    dcb_mutex_lock(&fake.f_lock);
    fake.f_opened++;
    if (strcmp(source, "test-source") != 0)
        fake.f_bad = 1;
    dcb_mutex_unlock(&fake.f_lock);
    return fake.f_open_fails ? NULL : (void *)&fake;
}

static int fake_write(void *h, dcb_log_level_t level, const char *text)
{
    dcb_mutex_lock(&fake.f_lock);
    if (h != (void *)&fake)
        fake.f_bad = 1;
    fake.f_in_write = 1;
    dcb_cond_broadcast(&fake.f_cond);
    while (fake.f_hold)
        dcb_cond_wait(&fake.f_cond, &fake.f_lock);
    if (fake.f_n < FAKE_MAX) {
        fake.f_levels[fake.f_n] = level;
        snprintf(fake.f_text[fake.f_n], sizeof(fake.f_text[0]), "%s", text);
    }
    fake.f_n++;
    fake.f_in_write = 0;
    dcb_cond_broadcast(&fake.f_cond);
    dcb_mutex_unlock(&fake.f_lock);
    return 0;
}

static void fake_close(void *h)
{
    (void)h;
    dcb_mutex_lock(&fake.f_lock);
    fake.f_closed++;
    dcb_cond_broadcast(&fake.f_cond);
    dcb_mutex_unlock(&fake.f_lock);
}

static const dcb_evlog_backend_t fake_backend = {fake_open, fake_write, fake_close};

static int group_setup(void **state)
{
    (void)state;
    dcb_mutex_init(&fake.f_lock);
    dcb_cond_init(&fake.f_cond);
    return 0;
}

/* Resets the fake; under its lock, since an earlier test's writer may still be leaving it. */
static int setup(void **state)
{
    (void)state;
    dcb_mutex_lock(&fake.f_lock);
    fake.f_hold = fake.f_in_write = fake.f_open_fails = 0;
    fake.f_opened = fake.f_closed = fake.f_n = fake.f_bad = 0;
    memset(fake.f_levels, 0, sizeof(fake.f_levels));
    memset(fake.f_text, 0, sizeof(fake.f_text));
    dcb_mutex_unlock(&fake.f_lock);
    return 0;
}

static void fake_hold(int hold)
{
    dcb_mutex_lock(&fake.f_lock);
    fake.f_hold = hold;
    dcb_cond_broadcast(&fake.f_cond);
    dcb_mutex_unlock(&fake.f_lock);
}

/* Waits until the writer sits in write() (holding one line). */
static void fake_wait_in_write(void)
{
    uint64_t until = dcb_now_ns() + 5000000000ull;

    dcb_mutex_lock(&fake.f_lock);
    while (!fake.f_in_write && dcb_now_ns() < until)
        dcb_cond_timedwait(&fake.f_cond, &fake.f_lock, 100);
    assert_true(fake.f_in_write);
    dcb_mutex_unlock(&fake.f_lock);
}

/* Waits until the backend was closed n times. */
static int fake_wait_closed(int n, uint32_t ms)
{
    uint64_t until = dcb_now_ns() + (uint64_t)ms * 1000000u;
    int ok;

    dcb_mutex_lock(&fake.f_lock);
    while (fake.f_closed < n && dcb_now_ns() < until)
        dcb_cond_timedwait(&fake.f_cond, &fake.f_lock, 20);
    ok = fake.f_closed >= n && !fake.f_bad;
    dcb_mutex_unlock(&fake.f_lock);
    return ok;
}

static dcb_evlog_t *open_fake(unsigned depth, unsigned burst, unsigned per_minute)
{
    dcb_evlog_opts_t o = {
        .eo_name = "tester", .eo_depth = depth, .eo_burst = burst, .eo_per_minute = per_minute};
    dcb_evlog_t *ev = NULL;

    assert_int_equal(dcb_evlog_open(&ev, &fake_backend, "test-source", &o), 0);
    assert_non_null(ev);
    return ev;
}

/* ---- the text of an event ------------------------------------------------------- */

static void test_text(void **state)
{
    char out[64];

    (void)state;
    dcb_evlog_text("dcb-broker[12] 3.456 warn: plugin x crashed", out, sizeof(out));
    assert_string_equal(out, "dcb-broker[12]: plugin x crashed");
    dcb_evlog_text("dcbshim[7] 100.001 error: refusing broker pipe", out, sizeof(out));
    assert_string_equal(out, "dcbshim[7]: refusing broker pipe");
    dcb_evlog_text("dcb-broker[1] 0.000 info: a: b", out, sizeof(out));
    assert_string_equal(out, "dcb-broker[1]: a: b");
    /* Not a dcb_log line: as it is. */
    dcb_evlog_text("dcb-broker[3] 1.5 warn: [macfilter:err] oops", out, sizeof(out));
    assert_string_equal(out, "dcb-broker[3]: [macfilter:err] oops");
    dcb_evlog_text("tag[1] 12 warn: x", out, sizeof(out));
    assert_string_equal(out, "tag[1] 12 warn: x");
    dcb_evlog_text("tag[1] .5 warn: x", out, sizeof(out));
    assert_string_equal(out, "tag[1] .5 warn: x");
    dcb_evlog_text("tag[1] 12.345 notice: x", out, sizeof(out));
    assert_string_equal(out, "tag[1] 12.345 notice: x");
    dcb_evlog_text("plain text", out, sizeof(out));
    assert_string_equal(out, "plain text");
    /* Cut to the buffer. */
    dcb_evlog_text("dcb-broker[12] 3.456 warn: 0123456789", out, 20);
    assert_string_equal(out, "dcb-broker[12]: 012");
}

/* ---- a hung Event Log never holds up a producer ------------------------------ */

static void test_full_queue_drops_and_reports(void **state)
{
    dcb_evlog_t *ev;
    dcb_evlog_counts_t c;
    uint64_t t0, took_ns;
    int dropped = 0;

    (void)state;
    fake_hold(1);
    ev = open_fake(4, 0, 0);
    assert_int_equal(dcb_evlog_post(ev, DCB_LOG_ERROR, "x[1] 1.000 error: first"), 0);
    fake_wait_in_write(); /* "first" is taken; the queue is empty, the writer stuck */

    t0 = dcb_now_ns();
    for (int i = 0; i < 100; i++) {
        char line[64];
        snprintf(line, sizeof(line), "x[1] 1.000 warn: line %d", i);
        if (dcb_evlog_post(ev, DCB_LOG_WARN, line) != 0)
            dropped++;
    }
    took_ns = dcb_now_ns() - t0;
    /* 100 posts against a hung backend: no waiting (generous for Wine and sanitizers). */
    assert_true(took_ns < 200000000ull);
    assert_int_equal(dropped, 96);
    dcb_evlog_counts(ev, &c);
    assert_int_equal(c.ec_queue_full, 96);
    assert_int_equal(c.ec_written, 0);

    fake_hold(0);
    assert_int_equal(dcb_evlog_close(ev, 5000, &c), 0);
    /* first, the 4 queued, then the report of the drops. */
    assert_int_equal(c.ec_written, 6);
    assert_int_equal(c.ec_failed, 0);
    assert_int_equal(c.ec_queue_full, 96);
    assert_int_equal(fake.f_n, 6);
    assert_string_equal(fake.f_text[0], "x[1]: first");
    assert_int_equal(fake.f_levels[0], DCB_LOG_ERROR);
    assert_string_equal(fake.f_text[1], "x[1]: line 0");
    assert_string_equal(fake.f_text[4], "x[1]: line 3");
    assert_int_equal(fake.f_levels[5], DCB_LOG_WARN);
    assert_non_null(strstr(fake.f_text[5], "tester["));
    assert_non_null(strstr(fake.f_text[5], "96 message(s) were not written to the Event Log"));
    assert_non_null(strstr(fake.f_text[5], "96 with the queue full"));
    assert_true(fake_wait_closed(1, 5000));
}

static void test_rate_limit(void **state)
{
    dcb_evlog_t *ev;
    dcb_evlog_counts_t c;
    int accepted = 0;

    (void)state;
    /* 5 at once, then one a minute: the 6th within the test is over the limit. */
    ev = open_fake(64, 5, 1);
    for (int i = 0; i < 20; i++)
        if (dcb_evlog_post(ev, DCB_LOG_WARN, "r[2] 0.100 warn: again") == 0)
            accepted++;
    assert_int_equal(accepted, 5);
    assert_int_equal(dcb_evlog_close(ev, 5000, &c), 0);
    assert_int_equal(c.ec_rate, 15);
    assert_int_equal(c.ec_written, 6);
    assert_non_null(strstr(fake.f_text[5], "15 over the limit of 1 a minute"));
    assert_true(fake_wait_closed(1, 5000));
}

static void test_close_is_bounded_when_hung(void **state)
{
    dcb_evlog_t *ev;
    dcb_evlog_counts_t c;
    uint64_t t0, took_ms;

    (void)state;
    fake_hold(1);
    ev = open_fake(8, 0, 0);
    assert_int_equal(dcb_evlog_post(ev, DCB_LOG_ERROR, "h[3] 0.001 error: stuck"), 0);
    fake_wait_in_write();
    assert_int_equal(dcb_evlog_post(ev, DCB_LOG_ERROR, "h[3] 0.001 error: queued"), 0);
    t0 = dcb_now_ns();
    assert_int_equal(dcb_evlog_close(ev, 100, &c), DCB_OS_ETIMEDOUT);
    took_ms = (dcb_now_ns() - t0) / 1000000u;
    assert_true(took_ms >= 90 && took_ms < 2000);
    /* One line in the writer's hands, one still queued: neither written. */
    assert_int_equal(c.ec_written, 0);
    assert_int_equal(c.ec_queue_full, 1);
    /* The Event Log comes back: the writer finishes and frees everything itself. */
    fake_hold(0);
    assert_true(fake_wait_closed(1, 5000));
    assert_int_equal(fake.f_n, 2);
}

static void test_source_cannot_open(void **state)
{
    dcb_evlog_t *ev;
    dcb_evlog_counts_t c;

    (void)state;
    fake.f_open_fails = 1;
    ev = open_fake(8, 0, 0);
    assert_int_equal(dcb_evlog_post(ev, DCB_LOG_WARN, "o[4] 0.001 warn: lost"), 0);
    assert_int_equal(dcb_evlog_close(ev, 5000, &c), 0);
    assert_int_equal(c.ec_failed, 1);
    assert_int_equal(c.ec_written, 0);
    assert_int_equal(fake.f_n, 0);
    assert_int_equal(fake.f_opened, 1);
    assert_int_equal(fake.f_closed, 0); /* nothing was opened, nothing closed */
    assert_false(fake.f_bad);
}

static void test_null_and_bad_arguments(void **state)
{
    dcb_evlog_opts_t o = {.eo_depth = 1};
    dcb_evlog_t *ev = (dcb_evlog_t *)&o;
    dcb_evlog_counts_t c;

    (void)state;
    assert_int_equal(dcb_evlog_open(&ev, NULL, "x", &o), DCB_OS_EINVAL);
    assert_null(ev);
    assert_int_equal(dcb_evlog_post(NULL, DCB_LOG_ERROR, "nothing"), 0);
    dcb_evlog_counts(NULL, &c);
    assert_int_equal(c.ec_written, 0);
    assert_int_equal(dcb_evlog_close(NULL, 10, &c), 0);
}

/* ---- the system's Event Log ------------------------------------------------------- */

static void test_system_backend(void **state)
{
    static const dcb_evlog_opts_t o = {
        .eo_name = "test-evlog", .eo_depth = 16, .eo_burst = 10, .eo_per_minute = 10};
    const dcb_evlog_backend_t *be = dcb_evlog_system();
    dcb_evlog_t *ev = NULL;
    dcb_evlog_counts_t c;

    (void)state;
#ifdef _WIN32
    assert_non_null(be);
    assert_int_equal(dcb_evlog_open(&ev, be, DCB_EVLOG_SOURCE, &o), 0);
    assert_int_equal(dcb_evlog_post(ev, DCB_LOG_ERROR, "test-evlog[1] 0.001 error: an error"), 0);
    assert_int_equal(dcb_evlog_post(ev, DCB_LOG_WARN, "test-evlog[1] 0.001 warn: a warning"), 0);
    assert_int_equal(dcb_evlog_post(ev, DCB_LOG_INFO, "test-evlog[1] 0.001 info: a note"), 0);
    assert_int_equal(dcb_evlog_close(ev, 10000, &c), 0);
    printf("evlog: the system Event Log took %llu of 3 events (%llu failed)\n",
           (unsigned long long)c.ec_written, (unsigned long long)c.ec_failed);
    assert_int_equal(c.ec_written, 3);
    assert_int_equal(c.ec_failed, 0);
#else
    /* Not a skip: this asserts that there is none and that opening one is refused. */
    assert_null(be);
    assert_int_equal(dcb_evlog_open(&ev, be, DCB_EVLOG_SOURCE, &o), DCB_OS_EINVAL);
    assert_null(ev);
    (void)c;
    printf("evlog: no system Event Log on this platform (Windows-only), as expected\n");
#endif
}

#ifdef _WIN32
/*
 * What Event Viewer does with an event of the source "dcb": FormatMessage
 * with the message ID from the source's EventMessageFile. Both files that
 * may be registered render ID 1 as the event's text.
 */
static void test_message_files(void **state)
{
    static const WCHAR *const files[] = {L"dcb-broker.exe", L"dcbmsg.dll"};
    WCHAR path[MAX_PATH], *slash, out[256];
    const WCHAR *text = L"dcb-broker[7]: plugin x crashed; 100% of it";
    DWORD_PTR args[1] = {(DWORD_PTR)text};

    (void)state;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        HMODULE m;
        DWORD n;
        GetModuleFileNameW(NULL, path, MAX_PATH);
        slash = wcsrchr(path, L'\\');
        assert_non_null(slash);
        wcscpy(slash + 1, files[i]);
        m = LoadLibraryExW(path, NULL, LOAD_LIBRARY_AS_DATAFILE);
        assert_non_null(m);
        n = FormatMessageW(FORMAT_MESSAGE_FROM_HMODULE | FORMAT_MESSAGE_ARGUMENT_ARRAY, m,
                           DCB_EVLOG_MSG_TEXT, MAKELANGID(LANG_ENGLISH, SUBLANG_ENGLISH_US), out,
                           256, (va_list *)(void *)args);
        FreeLibrary(m);
        assert_true(n > 0);
        /* mc ends every message with CRLF. */
        assert_true(wcsncmp(out, text, wcslen(text)) == 0);
        printf("evlog: %ls renders message %u as the event's text\n", files[i], DCB_EVLOG_MSG_TEXT);
    }
}

/* The shim as the server uses it: load, entry, START, STOP, FreeLibrary. */
static void test_shim_unloads(void **state)
{
    WCHAR path[MAX_PATH], *slash;
    DHCP_CALLOUT_TABLE table;
    LPDHCP_ENTRY_POINT_FUNC entry;
    HMODULE m;
    uint64_t t0, took_ms;

    (void)state;
    GetModuleFileNameW(NULL, path, MAX_PATH);
    slash = wcsrchr(path, L'\\');
    assert_non_null(slash);
    wcscpy(slash + 1, L"dcbshim.dll");
    /* No broker on this pipe: the shim runs on its defaults, as with a broker down. */
    SetEnvironmentVariableW(L"DCB_PIPE", L"\\\\.\\pipe\\dcb-evlog-test-nobody");
    m = LoadLibraryW(path);
    assert_non_null(m);
    entry = (LPDHCP_ENTRY_POINT_FUNC)(void *)GetProcAddress(m, "DhcpServerCalloutEntry");
    assert_non_null(entry);
    memset(&table, 0, sizeof(table));
    assert_int_equal(entry((LPWSTR)L"\0", 0, &table), ERROR_SUCCESS);
    table.DhcpControlHook(DHCP_CONTROL_START, NULL);
    t0 = dcb_now_ns();
    table.DhcpControlHook(DHCP_CONTROL_STOP, NULL);
    took_ms = (dcb_now_ns() - t0) / 1000000u;
    assert_true(took_ms < 3000);
    FreeLibrary(m);
    /* The writer drops its own reference as it exits, right after STOP. */
    for (int i = 0; i < 300 && GetModuleHandleW(L"dcbshim.dll") != NULL; i++)
        Sleep(10);
    assert_null(GetModuleHandleW(L"dcbshim.dll"));
    printf("evlog: dcbshim.dll: STOP took %llu ms, then FreeLibrary unloaded it\n",
           (unsigned long long)took_ms);
    SetEnvironmentVariableW(L"DCB_PIPE", NULL);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_text, setup),
        cmocka_unit_test_setup(test_full_queue_drops_and_reports, setup),
        cmocka_unit_test_setup(test_rate_limit, setup),
        cmocka_unit_test_setup(test_close_is_bounded_when_hung, setup),
        cmocka_unit_test_setup(test_source_cannot_open, setup),
        cmocka_unit_test_setup(test_null_and_bad_arguments, setup),
        cmocka_unit_test_setup(test_system_backend, setup),
#ifdef _WIN32
        cmocka_unit_test(test_message_files),
        cmocka_unit_test(test_shim_unloads),
#endif
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
