/*
 * dlllist.c — the ordered list of callout DLLs, and the list-file format
 * used where there is no registry (Linux) or for convenience (both).
 *
 * Format: UTF-8 text, one DLL path per line. Blank lines and lines whose
 * first non-blank character is '#' are skipped; surrounding blanks are
 * trimmed; a path may be put in double quotes (for paths with spaces or a
 * leading '#'). A relative path is taken relative to the list file's own
 * folder. Control characters and lines over 4095 bytes are errors, reported
 * with the file name and line number.
 */
#include "dcbsim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES 4095u

void sim_dlllist_init(sim_dlllist_t *l)
{
    l->dl_items = NULL;
    l->dl_count = 0;
}

void sim_dlllist_free(sim_dlllist_t *l)
{
    for (size_t i = 0; i < l->dl_count; i++)
        free(l->dl_items[i]);
    free(l->dl_items);
    sim_dlllist_init(l);
}

int sim_dlllist_add(sim_dlllist_t *l, const char *path)
{
    char **items = realloc(l->dl_items, (l->dl_count + 1) * sizeof(*items));
    if (items == NULL)
        return -1;
    l->dl_items = items;
    size_t n = strlen(path);
    char *copy = malloc(n + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, path, n + 1);
    l->dl_items[l->dl_count++] = copy;
    return 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static int is_absolute(const char *p)
{
    if (p[0] == '/' || p[0] == '\\')
        return 1;
    /* "C:\..." or "C:/..." */
    return ((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z')) && p[1] == ':';
}

static int add_resolved(sim_dlllist_t *l, const char *path, const char *base)
{
    if (base == NULL || base[0] == '\0' || is_absolute(path))
        return sim_dlllist_add(l, path);
    size_t bl = strlen(base), pl = strlen(path);
    char *full = malloc(bl + 1 + pl + 1);
    if (full == NULL)
        return -1;
    memcpy(full, base, bl);
    full[bl] = '/';
    memcpy(full + bl + 1, path, pl + 1);
    int rc = sim_dlllist_add(l, full);
    free(full);
    return rc;
}

int sim_dlllist_parse(sim_dlllist_t *l, const char *text, size_t len, const char *name,
                      const char *base, char *err, size_t errlen)
{
    size_t pos = 0;
    unsigned lineno = 0;
    char line[LINE_MAX_BYTES + 1];
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        lineno++;
        if (end - pos > LINE_MAX_BYTES) {
            snprintf(err, errlen, "%s:%u: line longer than %u bytes", name, lineno, LINE_MAX_BYTES);
            return -1;
        }
        size_t linelen = end - pos;
        memcpy(line, text + pos, linelen);
        line[linelen] = '\0';
        pos = end + 1;

        /* Control characters (NUL included) mean this is not a list file. */
        for (size_t i = 0; i < linelen; i++) {
            unsigned char c = (unsigned char)line[i];
            if (c < 0x20 && c != '\t' && c != '\r') {
                snprintf(err, errlen, "%s:%u: control character 0x%02x in a DLL path", name, lineno,
                         c);
                return -1;
            }
        }
        char *s = line;
        while (is_blank(*s))
            s++;
        size_t sl = strlen(s);
        while (sl > 0 && is_blank(s[sl - 1]))
            s[--sl] = '\0';
        if (sl == 0 || s[0] == '#')
            continue;
        if (s[0] == '"') {
            char *close = strchr(s + 1, '"');
            if (close == NULL) {
                snprintf(err, errlen, "%s:%u: unterminated quoted path", name, lineno);
                return -1;
            }
            if (close[1] != '\0') {
                snprintf(err, errlen, "%s:%u: text after the quoted path", name, lineno);
                return -1;
            }
            *close = '\0';
            s++;
            if (*s == '\0') {
                snprintf(err, errlen, "%s:%u: empty quoted path", name, lineno);
                return -1;
            }
        }
        if (add_resolved(l, s, base) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

int sim_dlllist_read_file(sim_dlllist_t *l, const char *file, char *err, size_t errlen)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open DLL list %s: %s", file, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    int rc = -1;
    if (text == NULL)
        goto out;
    for (;;) {
        if (len == cap) {
            if (cap >= (1u << 20)) {
                snprintf(err, errlen, "%s: DLL list larger than 1 MiB", file);
                goto out;
            }
            char *t = realloc(text, cap * 2);
            if (t == NULL)
                goto out;
            text = t;
            cap *= 2;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        if (got == 0)
            break;
        len += got;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read DLL list %s", file);
        goto out;
    }
    /* Relative entries are relative to the list file's folder. */
    char base[4096];
    snprintf(base, sizeof(base), "%s", file);
    char *slash = strrchr(base, '/');
    char *bslash = strrchr(base, '\\');
    if (bslash != NULL && (slash == NULL || bslash > slash))
        slash = bslash;
    if (slash != NULL)
        *slash = '\0';
    else
        base[0] = '\0';
    rc = sim_dlllist_parse(l, text, len, file, base, err, errlen);
out:
    free(text);
    fclose(f);
    return rc;
}
