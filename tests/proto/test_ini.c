/*
 * test_ini.c — the INI reader: what it accepts, and the line it blames.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dcb_ini.h"

struct seen {
    char text[2048];
    int refuse_line;
};

static int collect(void *user, const char *section, const char *key, const char *value,
                   int lineno)
{
    struct seen *s = user;
    size_t n = strlen(s->text);

    snprintf(s->text + n, sizeof(s->text) - n, "%d:[%s]%s=<%s>\n", lineno, section, key, value);
    return lineno == s->refuse_line;
}

static void test_ini_accepts(void **state)
{
    struct seen s = {"", 0};
    const char *text = "\xEF\xBB\xBF; leading comment\r\n"
                       "top = 1\n"
                       "[broker]\n"
                       "  pipe =  \\\\.\\pipe\\dcb-broker   ; the pipe\n"
                       "# another comment\n"
                       "\n"
                       "[plugin macfilter]\n"
                       "fail.NewPkt=closed\n"
                       "quoted = \"  a;b  \"\n"
                       "url = http://x/#frag\n"
                       "empty =\n";

    assert_int_equal(dcb_ini_parse_string(text, collect, &s), 0);
    assert_string_equal(s.text, "2:[]top=<1>\n"
                                "4:[broker]pipe=<\\\\.\\pipe\\dcb-broker>\n"
                                "8:[plugin macfilter]fail.NewPkt=<closed>\n"
                                "9:[plugin macfilter]quoted=<  a;b  >\n"
                                "10:[plugin macfilter]url=<http://x/#frag>\n"
                                "11:[plugin macfilter]empty=<>\n");
}

static void test_ini_blames_the_line(void **state)
{
    struct seen s = {"", 0};
    char longline[2100];

    assert_int_equal(dcb_ini_parse_string("[a]\nok = 1\nno equals sign\n", collect, &s), 3);
    assert_int_equal(dcb_ini_parse_string("[a\n", collect, &s), 1);
    assert_int_equal(dcb_ini_parse_string("[]\n", collect, &s), 1);
    assert_int_equal(dcb_ini_parse_string("[a] junk\n", collect, &s), 1);
    assert_int_equal(dcb_ini_parse_string("= value\n", collect, &s), 1);
    assert_int_equal(dcb_ini_parse_string("k = \"open\n", collect, &s), 1);
    /* The handler refusing a key stops the parse at that key's line. */
    s.text[0] = '\0';
    s.refuse_line = 2;
    assert_int_equal(dcb_ini_parse_string("a = 1\nb = 2\nc = 3\n", collect, &s), 2);
    assert_string_equal(s.text, "1:[]a=<1>\n2:[]b=<2>\n");
    /* An over-long line is an error on that line, never a silent cut. */
    memset(longline, 'x', sizeof(longline));
    memcpy(longline, "[s]\nk = ", 8);
    longline[sizeof(longline) - 1] = '\0';
    s.refuse_line = 0;
    assert_int_equal(dcb_ini_parse_string(longline, collect, &s), 2);
}

static void test_ini_file(void **state)
{
    struct seen s = {"", 0};
    char path[] = "dcb-test-ini.tmp";
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs("[x]\nk = v\nbad line\n", f);
    fclose(f);
    assert_int_equal(dcb_ini_parse(path, collect, &s), 3);
    remove(path);
    assert_int_equal(dcb_ini_parse("no/such/dir/file.ini", collect, &s), DCB_INI_EOPEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ini_accepts),
        cmocka_unit_test(test_ini_blames_the_line),
        cmocka_unit_test(test_ini_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
