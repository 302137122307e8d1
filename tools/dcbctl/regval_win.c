/*
 * regval_win.c — registry values as raw bytes, their backups, and MULTI_SZ
 * lists (see install_win.h).
 *
 * Nothing here interprets a value it only has to keep: a backup is the
 * value's presence, its type and its bytes, written back with exactly that
 * type and those bytes, so uninstall returns CalloutDlls and CalloutEnabled
 * to what they were even when they held something unusual.
 */
#include "install_win.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

LSTATUS regval_read(HKEY key, const WCHAR *name, regval_t *v)
{
    LSTATUS st;
    DWORD size = 0, type = 0;

    memset(v, 0, sizeof(*v));
    for (int tries = 0; tries < 8; tries++) {
        st = RegQueryValueExW(key, name, NULL, &type, NULL, &size);
        if (st == ERROR_FILE_NOT_FOUND)
            return ERROR_SUCCESS; /* absent */
        if (st != ERROR_SUCCESS)
            return st;
        free(v->rv_data);
        /* One spare byte so that an empty value still has a buffer. */
        v->rv_data = malloc((size_t)size + 1);
        if (v->rv_data == NULL)
            return ERROR_NOT_ENOUGH_MEMORY;
        st = RegQueryValueExW(key, name, NULL, &type, v->rv_data, &size);
        if (st == ERROR_MORE_DATA)
            continue; /* It grew in between: ask again. */
        if (st != ERROR_SUCCESS) {
            regval_free(v);
            return st;
        }
        v->rv_present = 1;
        v->rv_type = type;
        v->rv_size = size;
        return ERROR_SUCCESS;
    }
    regval_free(v);
    return ERROR_MORE_DATA;
}

LSTATUS regval_write(HKEY key, const WCHAR *name, const regval_t *v)
{
    static const BYTE none = 0;
    LSTATUS st;

    if (!v->rv_present) {
        st = RegDeleteValueW(key, name);
        return st == ERROR_FILE_NOT_FOUND ? ERROR_SUCCESS : st;
    }
    return RegSetValueExW(key, name, 0, v->rv_type, v->rv_data != NULL ? v->rv_data : &none,
                          v->rv_size);
}

int regval_equal(const regval_t *a, const regval_t *b)
{
    if (a->rv_present != b->rv_present)
        return 0;
    if (!a->rv_present)
        return 1;
    return a->rv_type == b->rv_type && a->rv_size == b->rv_size &&
           (a->rv_size == 0 || memcmp(a->rv_data, b->rv_data, a->rv_size) == 0);
}

void regval_free(regval_t *v)
{
    free(v->rv_data);
    memset(v, 0, sizeof(*v));
}

/* "name.suffix", cut to fit. */
static void suffixed(WCHAR *buf, size_t n, const WCHAR *name, const WCHAR *suffix)
{
    size_t i = 0;

    for (; *name != 0 && i + 1 < n; name++)
        buf[i++] = *name;
    if (i + 1 < n)
        buf[i++] = L'.';
    for (; *suffix != 0 && i + 1 < n; suffix++)
        buf[i++] = *suffix;
    buf[i] = 0;
}

LSTATUS regval_backup_save(HKEY backup, const WCHAR *name, const regval_t *v)
{
    static const BYTE none = 0;
    WCHAR vn[128];
    DWORD present = v->rv_present ? 1 : 0;
    LSTATUS st;

    suffixed(vn, 128, name, L"Present");
    st = RegSetValueExW(backup, vn, 0, REG_DWORD, (const BYTE *)&present, sizeof(present));
    if (st != ERROR_SUCCESS || !present)
        return st;
    suffixed(vn, 128, name, L"Type");
    st = RegSetValueExW(backup, vn, 0, REG_DWORD, (const BYTE *)&v->rv_type, sizeof(DWORD));
    if (st != ERROR_SUCCESS)
        return st;
    suffixed(vn, 128, name, L"Data");
    return RegSetValueExW(backup, vn, 0, REG_BINARY, v->rv_data != NULL ? v->rv_data : &none,
                          v->rv_size);
}

static LSTATUS read_dword(HKEY key, const WCHAR *name, DWORD *out)
{
    DWORD type = 0, size = sizeof(*out);
    LSTATUS st = RegQueryValueExW(key, name, NULL, &type, (BYTE *)out, &size);

    if (st == ERROR_SUCCESS && (type != REG_DWORD || size != sizeof(*out)))
        return ERROR_INVALID_DATA;
    return st;
}

LSTATUS regval_backup_load(HKEY backup, const WCHAR *name, regval_t *v)
{
    WCHAR vn[128];
    DWORD present = 0, type = 0;
    regval_t data;
    LSTATUS st;

    memset(v, 0, sizeof(*v));
    suffixed(vn, 128, name, L"Present");
    st = read_dword(backup, vn, &present);
    if (st != ERROR_SUCCESS)
        return st == ERROR_FILE_NOT_FOUND ? ERROR_INVALID_DATA : st;
    if (!present)
        return ERROR_SUCCESS;
    suffixed(vn, 128, name, L"Type");
    st = read_dword(backup, vn, &type);
    if (st != ERROR_SUCCESS)
        return st == ERROR_FILE_NOT_FOUND ? ERROR_INVALID_DATA : st;
    suffixed(vn, 128, name, L"Data");
    st = regval_read(backup, vn, &data);
    if (st != ERROR_SUCCESS)
        return st;
    if (!data.rv_present || data.rv_type != REG_BINARY) {
        regval_free(&data);
        return ERROR_INVALID_DATA;
    }
    *v = data;
    v->rv_type = type;
    return ERROR_SUCCESS;
}

/* ---- MULTI_SZ ------------------------------------------------------------ */

int wlist_push(wlist_t *l, const WCHAR *s)
{
    WCHAR **grown = realloc(l->wl_items, (l->wl_n + 1) * sizeof(*grown));
    WCHAR *copy;
    size_t len = wcslen(s);

    if (grown == NULL)
        return -1;
    l->wl_items = grown;
    copy = malloc((len + 1) * sizeof(WCHAR));
    if (copy == NULL)
        return -1;
    memcpy(copy, s, (len + 1) * sizeof(WCHAR));
    l->wl_items[l->wl_n++] = copy;
    return 0;
}

int wlist_from_multisz(const BYTE *data, DWORD size, wlist_t *out)
{
    size_t units = size / sizeof(WCHAR), i = 0;
    WCHAR *w;

    memset(out, 0, sizeof(*out));
    if (size % sizeof(WCHAR) != 0)
        return -1;
    /* A copy with a terminator, so that every string can be read safely. */
    w = malloc((units + 1) * sizeof(WCHAR));
    if (w == NULL)
        return -1;
    memcpy(w, data, units * sizeof(WCHAR));
    w[units] = 0;
    while (i < units && w[i] != 0) {
        if (wlist_push(out, w + i) != 0) {
            free(w);
            wlist_free(out);
            return -1;
        }
        i += wcslen(w + i) + 1;
    }
    free(w);
    return 0;
}

int wlist_to_multisz(const wlist_t *l, BYTE **data, DWORD *size)
{
    size_t units = 1, at = 0;
    WCHAR *w;

    for (size_t i = 0; i < l->wl_n; i++)
        units += wcslen(l->wl_items[i]) + 1;
    w = malloc(units * sizeof(WCHAR));
    if (w == NULL)
        return -1;
    for (size_t i = 0; i < l->wl_n; i++) {
        size_t len = wcslen(l->wl_items[i]) + 1;
        memcpy(w + at, l->wl_items[i], len * sizeof(WCHAR));
        at += len;
    }
    w[at] = 0;
    *data = (BYTE *)w;
    *size = (DWORD)(units * sizeof(WCHAR));
    return 0;
}

void wlist_free(wlist_t *l)
{
    for (size_t i = 0; i < l->wl_n; i++)
        free(l->wl_items[i]);
    free(l->wl_items);
    memset(l, 0, sizeof(*l));
}

/* ---- strings ------------------------------------------------------------- */

WCHAR *inst_wide(const char *utf8)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8, -1, NULL, 0);
    WCHAR *w;

    if (n <= 0)
        return NULL;
    w = malloc((size_t)n * sizeof(WCHAR));
    if (w != NULL && MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8, -1, w, n) <= 0) {
        free(w);
        return NULL;
    }
    return w;
}

char *inst_utf8(const WCHAR *w)
{
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s;

    if (n <= 0)
        return NULL;
    s = malloc((size_t)n);
    if (s != NULL && WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL) <= 0) {
        free(s);
        return NULL;
    }
    return s;
}

void inst_win_words(DWORD code, char *buf, size_t n)
{
    WCHAR w[256];
    DWORD len = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL,
                               code, 0, w, sizeof(w) / sizeof(w[0]), NULL);
    char *s;

    while (len > 0 && (w[len - 1] == L'\r' || w[len - 1] == L'\n' || w[len - 1] == L' '))
        len--;
    w[len] = 0;
    s = len > 0 ? inst_utf8(w) : NULL;
    if (s != NULL)
        snprintf(buf, n, "%s (error %lu)", s, (unsigned long)code);
    else
        snprintf(buf, n, "error %lu", (unsigned long)code);
    free(s);
}
