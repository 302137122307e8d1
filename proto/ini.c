/*
 * ini.c — see dcb_ini.h.
 *
 * Written for dcb rather than taken from a library: Debian's inih is the
 * natural choice, but its source package cannot be fetched for the
 * Windows cross build here, and the format needs fifty lines.
 */
#include "dcb_ini.h"

#include <ctype.h>
#include <string.h>

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

/* Cuts an inline comment: ';' or '#' preceded by whitespace, outside quotes. */
static void cut_comment(char *s)
{
    int quoted = 0;

    for (char *p = s; *p != '\0'; p++) {
        if (*p == '"')
            quoted = !quoted;
        else if (!quoted && (*p == ';' || *p == '#') && p > s && isspace((unsigned char)p[-1])) {
            *p = '\0';
            return;
        }
    }
}

/* One line; returns 0 or the reason it is not valid (non-zero). */
static int parse_line(char *line, char *section, size_t section_cap, dcb_ini_handler handler,
                      void *user, int lineno)
{
    char *s = trim(line), *eq, *key, *value;
    size_t vlen;

    if (*s == '\0' || *s == ';' || *s == '#')
        return 0;
    if (*s == '[') {
        char *end = strchr(s, ']');
        if (end == NULL || *trim(end + 1) != '\0')
            return 1;
        *end = '\0';
        s = trim(s + 1);
        if (*s == '\0' || strlen(s) >= section_cap)
            return 1;
        memcpy(section, s, strlen(s) + 1);
        return 0;
    }
    eq = strchr(s, '=');
    if (eq == NULL)
        return 1;
    *eq = '\0';
    key = trim(s);
    if (*key == '\0')
        return 1;
    value = eq + 1;
    cut_comment(value);
    value = trim(value);
    vlen = strlen(value);
    if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
        value[vlen - 1] = '\0';
        value++;
    } else if (strchr(value, '"') != NULL) {
        return 1; /* an unbalanced quote is a typo, not a value */
    }
    return handler(user, section, key, value, lineno) != 0;
}

typedef int (*next_line_fn)(void *src, char *buf, size_t cap, int *too_long);

static int parse(next_line_fn next, void *src, dcb_ini_handler handler, void *user)
{
    char line[DCB_INI_LINE_MAX], section[256] = "";
    int lineno = 0, too_long;

    while (next(src, line, sizeof(line), &too_long)) {
        lineno++;
        if (too_long)
            return lineno;
        /* A UTF-8 byte order mark (Notepad writes one) is not part of the text. */
        if (lineno == 1 && memcmp(line, "\xEF\xBB\xBF", 3) == 0)
            memmove(line, line + 3, strlen(line + 3) + 1);
        if (parse_line(line, section, sizeof(section), handler, user, lineno) != 0)
            return lineno;
    }
    return 0;
}

static int next_from_file(void *src, char *buf, size_t cap, int *too_long)
{
    FILE *f = src;
    size_t len;

    if (fgets(buf, (int)cap, f) == NULL)
        return 0;
    len = strlen(buf);
    *too_long = len == cap - 1 && buf[len - 1] != '\n' && !feof(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    return 1;
}

struct string_src {
    const char *p;
};

static int next_from_string(void *src, char *buf, size_t cap, int *too_long)
{
    struct string_src *s = src;
    size_t len;

    if (*s->p == '\0')
        return 0;
    len = strcspn(s->p, "\n");
    *too_long = len >= cap;
    if (!*too_long) {
        memcpy(buf, s->p, len);
        buf[len] = '\0';
        buf[strcspn(buf, "\r")] = '\0';
    }
    s->p += len + (s->p[len] == '\n');
    return 1;
}

int dcb_ini_parse_stream(FILE *f, dcb_ini_handler handler, void *user)
{
    return parse(next_from_file, f, handler, user);
}

int dcb_ini_parse_string(const char *text, dcb_ini_handler handler, void *user)
{
    struct string_src src = {text};

    return parse(next_from_string, &src, handler, user);
}

int dcb_ini_parse(const char *path, dcb_ini_handler handler, void *user)
{
    FILE *f = fopen(path, "r");
    int rc;

    if (f == NULL)
        return DCB_INI_EOPEN;
    rc = dcb_ini_parse_stream(f, handler, user);
    fclose(f);
    return rc;
}
