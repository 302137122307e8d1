/*
 * os_common.c — the platform-neutral half of dcb_os.h: MULTI_SZ conversion
 * and the logger.
 */
#include "dcb_os.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__MINGW32__)
#define DCB_PRINTF_LIKE __attribute__((format(gnu_printf, 2, 0)))
#elif defined(__GNUC__)
#define DCB_PRINTF_LIKE __attribute__((format(printf, 2, 0)))
#else
#define DCB_PRINTF_LIKE
#endif

/* Encodes one code point as UTF-16; returns the units written (1 or 2). */
static size_t utf16_put(uint16_t *out, uint32_t cp)
{
    if (cp < 0x10000) {
        if (out != NULL)
            out[0] = (uint16_t)cp;
        return 1;
    }
    cp -= 0x10000;
    if (out != NULL) {
        out[0] = (uint16_t)(0xD800 + (cp >> 10));
        out[1] = (uint16_t)(0xDC00 + (cp & 0x3FF));
    }
    return 2;
}

/*
 * Decodes one UTF-8 sequence. Invalid bytes become U+FFFD so a bad path is
 * reported as what it is instead of being cut short.
 */
static uint32_t utf8_get(const unsigned char **pp)
{
    const unsigned char *p = *pp;
    uint32_t cp;
    int extra;

    if (p[0] < 0x80) {
        *pp = p + 1;
        return p[0];
    }
    if ((p[0] & 0xE0) == 0xC0) {
        cp = p[0] & 0x1F;
        extra = 1;
    } else if ((p[0] & 0xF0) == 0xE0) {
        cp = p[0] & 0x0F;
        extra = 2;
    } else if ((p[0] & 0xF8) == 0xF0) {
        cp = p[0] & 0x07;
        extra = 3;
    } else {
        *pp = p + 1;
        return 0xFFFD;
    }
    for (int i = 1; i <= extra; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            *pp = p + i;
            return 0xFFFD;
        }
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    *pp = p + extra + 1;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0xFFFD;
    return cp;
}

static size_t utf8_put(char *out, uint32_t cp)
{
    char buf[4];
    size_t n;

    if (cp < 0x80) {
        buf[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        buf[0] = (char)(0xC0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        buf[0] = (char)(0xE0 | (cp >> 12));
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        buf[0] = (char)(0xF0 | (cp >> 18));
        buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (out != NULL)
        memcpy(out, buf, n);
    return n;
}

uint16_t *dcb_multisz_from_utf8(const char *const *items, size_t n)
{
    size_t units = 1;
    uint16_t *msz, *w;

    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)items[i];
        if (*p == '\0')
            continue; /* An empty string would end the list early. */
        while (*p != '\0')
            units += utf16_put(NULL, utf8_get(&p));
        units++;
    }
    msz = malloc(units * sizeof(*msz));
    if (msz == NULL)
        return NULL;
    w = msz;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)items[i];
        if (*p == '\0')
            continue;
        while (*p != '\0')
            w += utf16_put(w, utf8_get(&p));
        *w++ = 0;
    }
    *w = 0;
    return msz;
}

void dcb_strlist_free(char **items, size_t n)
{
    if (items == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

int dcb_multisz_to_utf8(const uint16_t *msz, size_t max_units, char ***items)
{
    size_t pos = 0, count = 0;
    char **list = NULL;

    *items = NULL;
    if (msz == NULL)
        return 0;
    for (;;) {
        size_t start = pos, len8 = 0;
        char *s, *w;

        if (pos >= max_units)
            goto bad;
        if (msz[pos] == 0)
            break;
        /* Measure, then convert, so each string is one exact allocation. */
        while (pos < max_units && msz[pos] != 0) {
            uint32_t cp = msz[pos++];
            if (cp >= 0xD800 && cp < 0xDC00 && pos < max_units && msz[pos] >= 0xDC00 &&
                msz[pos] < 0xE000)
                cp = 0x10000 + ((cp - 0xD800) << 10) + (msz[pos++] - 0xDC00);
            else if (cp >= 0xD800 && cp < 0xE000)
                cp = 0xFFFD;
            len8 += utf8_put(NULL, cp);
        }
        if (pos >= max_units)
            goto bad;
        s = malloc(len8 + 1);
        if (s == NULL)
            goto bad;
        w = s;
        for (size_t i = start; i < pos;) {
            uint32_t cp = msz[i++];
            if (cp >= 0xD800 && cp < 0xDC00 && i < pos && msz[i] >= 0xDC00 && msz[i] < 0xE000)
                cp = 0x10000 + ((cp - 0xD800) << 10) + (msz[i++] - 0xDC00);
            else if (cp >= 0xD800 && cp < 0xE000)
                cp = 0xFFFD;
            w += utf8_put(w, cp);
        }
        *w = '\0';
        {
            char **grown = realloc(list, (count + 1) * sizeof(*list));
            if (grown == NULL) {
                free(s);
                goto bad;
            }
            list = grown;
        }
        list[count++] = s;
        pos++; /* Skip this string's terminator. */
    }
    *items = list;
    return (int)count;

bad:
    dcb_strlist_free(list, count);
    return DCB_OS_EINVAL;
}

/* ---- logging ---------------------------------------------------------- */

static _Atomic int log_level = DCB_LOG_INFO;
static dcb_log_sink_fn log_sink;
static void *log_sink_ctx;
static char log_tag[32] = "dcb";

void dcb_log_set_level(dcb_log_level_t level)
{
    atomic_store(&log_level, (int)level);
}

void dcb_log_set_sink(dcb_log_sink_fn fn, void *ctx)
{
    log_sink = fn;
    log_sink_ctx = ctx;
}

void dcb_log_set_tag(const char *tag)
{
    snprintf(log_tag, sizeof(log_tag), "%s", tag);
}

DCB_PRINTF_LIKE void dcb_vlog(dcb_log_level_t level, const char *fmt, va_list ap)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char line[1024];
    int n;
    uint64_t ms;

    if ((int)level < atomic_load(&log_level))
        return;
    ms = dcb_now_ns() / 1000000u;
    n = snprintf(line, sizeof(line), "%s[%u] %llu.%03llu %s: ", log_tag, dcb_getpid(),
                 (unsigned long long)(ms / 1000u), (unsigned long long)(ms % 1000u),
                 names[level]);
    if (n < 0)
        return;
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    /*
     * One entry, one line: text from peers (a host's error string, a shim's
     * DLL names) must not forge log lines or carry terminal escapes.
     */
    for (char *p = line + n; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    if (log_sink != NULL) {
        log_sink(level, line, log_sink_ctx);
        return;
    }
    /* One fprintf per line keeps lines from different threads whole. */
    fprintf(stderr, "%s\n", line);
}

void dcb_log(dcb_log_level_t level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    dcb_vlog(level, fmt, ap);
    va_end(ap);
}
