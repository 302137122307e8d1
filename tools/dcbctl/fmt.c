/*
 * fmt.c — the small formatting pieces every output shares: latency
 * quantiles from a wire histogram, durations, uptimes, safe strings, and a
 * text table that sizes its columns to their content.
 */
#include "dcbctl.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void ctl_latency_from_wire(const Dcb__Histogram *h, dcb_hist_t *scratch, ctl_latency_t *out)
{
    memset(out, 0, sizeof(*out));
    if (h == NULL)
        return;
    dcb_hist_reset(scratch);
    for (size_t i = 0; i < h->n_bucket && i < h->n_count; i++)
        dcb_hist_add_bucket(scratch, h->bucket[i], h->count[i]);
    /*
     * add_bucket can only bound the maximum by its bucket's top; the wire
     * carries the exact one, and the quantiles must never exceed it.
     */
    if (h->has_max && dcb_hist_count(scratch) != 0)
        atomic_store_explicit(&scratch->h_max, h->max, memory_order_relaxed);
    out->l_count = dcb_hist_count(scratch);
    if (out->l_count == 0)
        return;
    out->l_p50 = dcb_hist_quantile(scratch, 0.50);
    out->l_p90 = dcb_hist_quantile(scratch, 0.90);
    out->l_p99 = dcb_hist_quantile(scratch, 0.99);
    out->l_p999 = dcb_hist_quantile(scratch, 0.999);
    out->l_max = dcb_hist_max(scratch);
    out->l_sum = h->has_sum ? h->sum : atomic_load_explicit(&scratch->h_sum, memory_order_relaxed);
}

/* Three significant digits in the given unit. */
static void fmt_scaled(double v, const char *unit, char *buf, size_t n)
{
    if (v < 9.995)
        snprintf(buf, n, "%.2f%s", v, unit);
    else if (v < 99.95)
        snprintf(buf, n, "%.1f%s", v, unit);
    else
        snprintf(buf, n, "%.0f%s", v, unit);
}

void ctl_fmt_duration(uint64_t ns, char *buf, size_t n)
{
    if (ns < 1000)
        snprintf(buf, n, "%uns", (unsigned)ns);
    else if (ns < 999500)
        fmt_scaled((double)ns / 1e3, "\xc2\xb5s", buf, n); /* µs */
    else if (ns < 999500000)
        fmt_scaled((double)ns / 1e6, "ms", buf, n);
    else
        fmt_scaled((double)ns / 1e9, "s", buf, n);
}

void ctl_fmt_uptime(uint64_t ms, char *buf, size_t n)
{
    uint64_t s = ms / 1000, m = s / 60, h = m / 60, d = h / 24;

    if (d > 0)
        snprintf(buf, n, "%llud%02lluh", (unsigned long long)d, (unsigned long long)(h % 24));
    else if (h > 0)
        snprintf(buf, n, "%lluh%02llum", (unsigned long long)h, (unsigned long long)(m % 60));
    else if (m > 0)
        snprintf(buf, n, "%llum%02llus", (unsigned long long)m, (unsigned long long)(s % 60));
    else
        snprintf(buf, n, "%llus", (unsigned long long)s);
}

void ctl_fmt_sanitize(const char *s, char *buf, size_t n)
{
    size_t i = 0;

    if (n == 0)
        return;
    for (; s != NULL && *s != '\0' && i + 1 < n; s++) {
        unsigned char c = (unsigned char)*s;
        /* C0 controls and DEL; UTF-8 sequences pass (names may be non-ASCII). */
        buf[i++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    buf[i] = '\0';
}

const char *ctl_plugin_state_name(Dcb__PluginState st)
{
    switch (st) {
    case DCB__PLUGIN_STATE__PS_STARTING:
        return "starting";
    case DCB__PLUGIN_STATE__PS_RUNNING:
        return "running";
    case DCB__PLUGIN_STATE__PS_RESTARTING:
        return "restarting";
    case DCB__PLUGIN_STATE__PS_DISABLED:
        return "disabled";
    case DCB__PLUGIN_STATE__PS_RELOADING:
        return "reloading";
    default:
        return "unknown";
    }
}

/* ---- table ---------------------------------------------------------------- */

void ctl_table_init(ctl_table_t *t, int cols, const char *const *header, const int *right)
{
    memset(t, 0, sizeof(*t));
    t->t_cols = cols < CTL_TABLE_MAX_COLS ? cols : CTL_TABLE_MAX_COLS;
    for (int c = 0; c < t->t_cols; c++) {
        t->t_right[c] = right != NULL && right[c];
        ctl_table_cell(t, c, "%s", header[c]);
    }
}

void ctl_table_cell(ctl_table_t *t, int col, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int row;

    if (col < 0 || col >= t->t_cols)
        return;
    /* Column 0 starts a new row. */
    if (col == 0 || t->t_rows == 0)
        t->t_rows++;
    row = t->t_rows - 1;
    if ((size_t)t->t_rows * (size_t)t->t_cols > (size_t)t->t_cap) {
        int cap = t->t_cap ? t->t_cap * 2 : t->t_cols * 16;
        char **grown;
        while (cap < t->t_rows * t->t_cols)
            cap *= 2;
        grown = realloc(t->t_cells, (size_t)cap * sizeof(*grown));
        if (grown == NULL) {
            t->t_rows--;
            return;
        }
        memset(grown + t->t_cap, 0, (size_t)(cap - t->t_cap) * sizeof(*grown));
        t->t_cells = grown;
        t->t_cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    free(t->t_cells[row * t->t_cols + col]);
    t->t_cells[row * t->t_cols + col] = strdup(buf);
}

/* Terminal columns of a UTF-8 string: its code points (no wide glyphs here). */
static int text_width(const char *s)
{
    int w = 0;

    for (; s != NULL && *s != '\0'; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

void ctl_table_print(const ctl_table_t *t, FILE *out)
{
    int width[CTL_TABLE_MAX_COLS] = {0};

    for (int r = 0; r < t->t_rows; r++)
        for (int c = 0; c < t->t_cols; c++) {
            int w = text_width(t->t_cells[r * t->t_cols + c]);
            if (w > width[c])
                width[c] = w;
        }
    for (int r = 0; r < t->t_rows; r++) {
        int pending = 0; /* spaces owed before the next cell */
        for (int c = 0; c < t->t_cols; c++) {
            const char *s = t->t_cells[r * t->t_cols + c];
            int pad = width[c] - text_width(s);
            if (s == NULL)
                s = "";
            if (c > 0)
                pending += 2;
            if (t->t_right[c])
                pending += pad;
            if (*s != '\0' || t->t_right[c]) {
                fprintf(out, "%*s%s", pending, "", s);
                pending = 0;
            }
            if (!t->t_right[c])
                pending += pad;
        }
        fputc('\n', out);
    }
}

void ctl_table_free(ctl_table_t *t)
{
    for (int i = 0; i < t->t_rows * t->t_cols && i < t->t_cap; i++)
        free(t->t_cells[i]);
    free(t->t_cells);
    memset(t, 0, sizeof(*t));
}
