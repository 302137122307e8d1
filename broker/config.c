/*
 * config.c — the broker's INI file (parsed with inih).
 *
 * Strict on purpose: an unknown section or key, a duplicate, or a value out
 * of range is an error that names the file, the line and the key, and the
 * broker refuses to start. A typo in a fail-closed policy must not silently
 * turn into fail-open. Every such error in the file is reported at once; a
 * syntax error (a line the INI reader cannot parse) ends the parse there.
 * See README.md for every key.
 */
#include "broker.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcb_ini.h"

typedef struct keydef {
    const char *kd_name;
    int kd_id;
    uint32_t kd_min;
    uint32_t kd_max;
    uint32_t kd_default;
} keydef_t;

/* Integer plugin keys (timeout_ms and fail are handled with their per-hook forms). */
static const keydef_t plugin_keys[] = {
    {"memory_mb", PK_MEMORY_MB, 0, 1u << 20, 256},
    {"threads", PK_THREADS, 1, 256, 4},
    {"restart_backoff_ms", PK_RESTART_BACKOFF_MS, 1, 3600000, 100},
    {"restart_backoff_max_ms", PK_RESTART_BACKOFF_MAX_MS, 1, 3600000, 30000},
    {"crash_loop_limit", PK_CRASH_LOOP_LIMIT, 1, BROKER_CRASH_LOOP_MAX, 5},
    {"crash_loop_window_s", PK_CRASH_LOOP_WINDOW_S, 1, 86400, 60},
    {"hang_ms", PK_HANG_MS, 10, 3600000, 2000},
    {"breaker_failures", PK_BREAKER_FAILURES, 0, 1000000, 5},
    {"breaker_ms", PK_BREAKER_MS, 1, 3600000, 1000},
    {"breaker_max_ms", PK_BREAKER_MAX_MS, 1, 3600000, 30000},
};

#define DEFAULT_TIMEOUT_MS 100u

typedef struct parse_ctx {
    broker_config_t *pc_cfg;
    const char *pc_path;
    int pc_line;
    int pc_errors;
    int pc_error_line; /* last line an error was reported for */
    char *pc_err;
    size_t pc_errlen;
    char pc_section[128];
    broker_plugin_conf_t *pc_cur; /* section being filled, NULL for [broker] */
    int pc_in_broker;
    int pc_bad_section; /* the current section was reported as unknown */
    int pc_entered;
    uint64_t pc_broker_seen; /* duplicate detection for [broker] keys */
} parse_ctx_t;

BROKER_PRINTF(3, 4)
static void err_add(parse_ctx_t *pc, const char *key, const char *fmt, ...)
{
    size_t used = strlen(pc->pc_err);
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (used < pc->pc_errlen) {
        if (key != NULL)
            snprintf(pc->pc_err + used, pc->pc_errlen - used, "%s:%d: [%s] %s: %s\n", pc->pc_path,
                     pc->pc_line, pc->pc_section, key, msg);
        else
            snprintf(pc->pc_err + used, pc->pc_errlen - used, "%s:%d: %s\n", pc->pc_path,
                     pc->pc_line, msg);
    }
    pc->pc_errors++;
    pc->pc_error_line = pc->pc_line;
}

static int parse_u32(const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    unsigned long long n;

    if (*v == '\0' || *v == '-' || *v == '+')
        return -1;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < min || n > max)
        return -1;
    *out = (uint32_t)n;
    return 0;
}

static int hook_by_name(const char *name)
{
    for (int h = 0; h < DCB_HOOK_COUNT; h++) {
        const char *n = dcb_hook_name(h);
        size_t i = 0;
        while (n[i] != '\0' && name[i] != '\0' &&
               tolower((unsigned char)n[i]) == tolower((unsigned char)name[i]))
            i++;
        if (n[i] == '\0' && name[i] == '\0')
            return h;
    }
    return -1;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);

    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static int set_str(parse_ctx_t *pc, const char *key, char **slot, const char *v)
{
    if (*slot != NULL) {
        err_add(pc, key, "set twice");
        return 0;
    }
    *slot = xstrdup(v);
    return 1;
}

static int add_chain(parse_ctx_t *pc, const char *v)
{
    broker_config_t *cfg = pc->pc_cfg;
    const char *p = v;

    while (*p != '\0') {
        const char *start, *end;
        char **grown;
        char *item;

        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            break;
        start = p;
        while (*p != '\0' && *p != ',')
            p++;
        end = p;
        while (end > start && isspace((unsigned char)end[-1]))
            end--;
        if (cfg->cfg_n_chain >= 64) {
            err_add(pc, "chain", "more than 64 plugins");
            return 0;
        }
        item = malloc((size_t)(end - start) + 1);
        grown = realloc(cfg->cfg_chain, (cfg->cfg_n_chain + 1) * sizeof(*grown));
        if (item == NULL || grown == NULL) {
            free(item);
            if (grown != NULL)
                cfg->cfg_chain = grown;
            err_add(pc, "chain", "out of memory");
            return 0;
        }
        memcpy(item, start, (size_t)(end - start));
        item[end - start] = '\0';
        cfg->cfg_chain = grown;
        cfg->cfg_chain[cfg->cfg_n_chain++] = item;
    }
    return 1;
}

static int broker_key(parse_ctx_t *pc, const char *name, const char *v)
{
    static const struct {
        const char *name;
        size_t off;
        uint32_t min, max;
    } ints[] = {
        {"max_packet", offsetof(broker_config_t, cfg_max_packet), 576, 60000},
        {"max_connections", offsetof(broker_config_t, cfg_max_connections), 1, 4096},
        {"reorder_hold_ms", offsetof(broker_config_t, cfg_reorder_hold_ms), 0, 60000},
        {"packet_idle_s", offsetof(broker_config_t, cfg_packet_idle_s), 1, 86400},
        {"max_outstanding", offsetof(broker_config_t, cfg_max_outstanding), 1, 1000000},
        {"host_stop_ms", offsetof(broker_config_t, cfg_host_stop_ms), 1, 600000},
        {"output_line_max", offsetof(broker_config_t, cfg_output_line_max), 16, 65536},
        {"output_lines_per_s", offsetof(broker_config_t, cfg_output_lines_per_s), 1, 1000000},
        {"drain_ms", offsetof(broker_config_t, cfg_drain_ms), 100, 3600000},
        {"busy_poll_us", offsetof(broker_config_t, cfg_busy_poll_us), 0, 1000},
    };
    static const char *const strs[] = {"pipe",  "control_pipe", "log_file",      "log_level",
                                       "chain", "pipe_allow",   "control_allow", "host_user"};
    broker_config_t *cfg = pc->pc_cfg;
    size_t nints = sizeof(ints) / sizeof(ints[0]);

    for (size_t i = 0; i < nints; i++) {
        if (strcmp(name, ints[i].name) != 0)
            continue;
        if (pc->pc_broker_seen & (1ull << i)) {
            err_add(pc, name, "set twice");
            return 0;
        }
        pc->pc_broker_seen |= 1ull << i;
        if (parse_u32(v, ints[i].min, ints[i].max, (uint32_t *)((char *)cfg + ints[i].off)) != 0) {
            err_add(pc, name, "'%s' is not a number in [%u, %u]", v, ints[i].min, ints[i].max);
            return 0;
        }
        return 1;
    }
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        uint64_t bit = 1ull << (nints + i);
        if (strcmp(name, strs[i]) != 0)
            continue;
        if (pc->pc_broker_seen & bit) {
            err_add(pc, name, "set twice");
            return 0;
        }
        pc->pc_broker_seen |= bit;
        if (strcmp(name, "chain") == 0) {
            cfg->cfg_chain_line = pc->pc_line;
            return add_chain(pc, v);
        }
        if (*v == '\0') {
            err_add(pc, name, "empty value");
            return 0;
        }
        if (strcmp(name, "log_level") == 0) {
            static const char *const lv[] = {"debug", "info", "warn", "error"};
            for (int l = 0; l < 4; l++)
                if (strcmp(v, lv[l]) == 0) {
                    cfg->cfg_log_level = l;
                    return 1;
                }
            err_add(pc, name, "'%s' is not one of debug, info, warn, error", v);
            return 0;
        }
        {
            char **slot = strcmp(name, "pipe") == 0            ? &cfg->cfg_pipe
                          : strcmp(name, "control_pipe") == 0  ? &cfg->cfg_control_pipe
                          : strcmp(name, "pipe_allow") == 0    ? &cfg->cfg_pipe_allow
                          : strcmp(name, "control_allow") == 0 ? &cfg->cfg_control_allow
                          : strcmp(name, "host_user") == 0     ? &cfg->cfg_host_user
                                                               : &cfg->cfg_log_file;
            free(*slot);
            *slot = xstrdup(v);
        }
        return 1;
    }
    err_add(pc, name, "unknown key");
    return 0;
}

static int plugin_key(parse_ctx_t *pc, broker_plugin_conf_t *p, const char *name, const char *v)
{
    const char *dot = strchr(name, '.');
    size_t base_len = dot ? (size_t)(dot - name) : strlen(name);
    int hook = -1, id = -1;

    if (p->pc_name != NULL && strcmp(name, "dll") == 0) {
        if (*v == '\0') {
            err_add(pc, name, "empty value");
            return 0;
        }
        return set_str(pc, name, &p->pc_dll, v);
    }
    if (strcmp(name, "group") == 0)
        return set_str(pc, name, &p->pc_group, v);
    if (strcmp(name, "write_paths") == 0)
        return set_str(pc, name, &p->pc_write_paths, v);
    if (dot != NULL) {
        hook = hook_by_name(dot + 1);
        if (hook < 0) {
            err_add(pc, name,
                    "unknown hook '%s' (Control, NewPkt, PktDrop, PktSend, AddressDel, "
                    "AddressOffer, HandleOptions, DeleteClient)",
                    dot + 1);
            return 0;
        }
    }
    if (base_len == 10 && strncmp(name, "timeout_ms", 10) == 0)
        id = hook < 0 ? PK_TIMEOUT : PK_TIMEOUT_HOOK + hook;
    else if (base_len == 4 && strncmp(name, "fail", 4) == 0)
        id = hook < 0 ? PK_FAIL : PK_FAIL_HOOK + hook;
    else if (dot == NULL) {
        for (size_t i = 0; i < sizeof(plugin_keys) / sizeof(plugin_keys[0]); i++)
            if (strcmp(name, plugin_keys[i].kd_name) == 0)
                id = plugin_keys[i].kd_id;
    }
    if (id < 0) {
        err_add(pc, name, "unknown key");
        return 0;
    }
    if (p->pc_set[id]) {
        err_add(pc, name, "set twice");
        return 0;
    }
    if (id == PK_FAIL || (id >= PK_FAIL_HOOK && id < PK_FAIL_HOOK + DCB_HOOK_COUNT)) {
        if (strcmp(v, "open") == 0)
            p->pc_val[id] = BROKER_FAIL_OPEN;
        else if (strcmp(v, "closed") == 0)
            p->pc_val[id] = BROKER_FAIL_CLOSED;
        else {
            err_add(pc, name, "'%s' is not open or closed", v);
            return 0;
        }
    } else if (id == PK_TIMEOUT ||
               (id >= PK_TIMEOUT_HOOK && id < PK_TIMEOUT_HOOK + DCB_HOOK_COUNT)) {
        if (parse_u32(v, 1, DCB_MAX_DEADLINE_US / 1000u, &p->pc_val[id]) != 0) {
            err_add(pc, name, "'%s' is not a number in [1, %u]", v, DCB_MAX_DEADLINE_US / 1000u);
            return 0;
        }
    } else {
        for (size_t i = 0; i < sizeof(plugin_keys) / sizeof(plugin_keys[0]); i++) {
            if (plugin_keys[i].kd_id != id)
                continue;
            if (parse_u32(v, plugin_keys[i].kd_min, plugin_keys[i].kd_max, &p->pc_val[id]) != 0) {
                err_add(pc, name, "'%s' is not a number in [%u, %u]", v, plugin_keys[i].kd_min,
                        plugin_keys[i].kd_max);
                return 0;
            }
        }
    }
    p->pc_set[id] = 1;
    return 1;
}

static int enter_section(parse_ctx_t *pc, const char *section)
{
    broker_config_t *cfg = pc->pc_cfg;

    snprintf(pc->pc_section, sizeof(pc->pc_section), "%s", section);
    pc->pc_cur = NULL;
    pc->pc_in_broker = 0;
    pc->pc_bad_section = 1;
    if (strcmp(section, "broker") == 0) {
        pc->pc_in_broker = 1;
        pc->pc_bad_section = 0;
        return 1;
    }
    if (strcmp(section, "defaults") == 0) {
        pc->pc_cur = &cfg->cfg_defaults;
        pc->pc_bad_section = 0;
        return 1;
    }
    if (strncmp(section, "plugin ", 7) == 0) {
        const char *name = section + 7;
        broker_plugin_conf_t *grown;

        while (*name == ' ')
            name++;
        if (*name == '\0' || strpbrk(name, "/\\") != NULL) {
            err_add(pc, NULL, "[%s]: a plugin section needs a name (the DLL's basename)", section);
            return 0;
        }
        for (size_t i = 0; i < cfg->cfg_n_plugins; i++) {
            if (strcmp(cfg->cfg_plugins[i].pc_name, name) == 0) {
                err_add(pc, NULL, "[%s] appears twice", section);
                return 0;
            }
        }
        grown = realloc(cfg->cfg_plugins, (cfg->cfg_n_plugins + 1) * sizeof(*grown));
        if (grown == NULL) {
            err_add(pc, NULL, "out of memory");
            return 0;
        }
        cfg->cfg_plugins = grown;
        pc->pc_cur = &cfg->cfg_plugins[cfg->cfg_n_plugins++];
        memset(pc->pc_cur, 0, sizeof(*pc->pc_cur));
        pc->pc_cur->pc_name = xstrdup(name);
        pc->pc_bad_section = 0;
        return 1;
    }
    err_add(pc, NULL, "unknown section [%s] (expected [broker], [defaults] or [plugin NAME])",
            section);
    return 0;
}

static int handle_key(parse_ctx_t *pc, const char *section, const char *name, const char *value)
{
    if (*section == '\0') {
        pc->pc_section[0] = '\0';
        err_add(pc, name, "key outside a section");
        return 0;
    }
    if (!pc->pc_entered || strcmp(section, pc->pc_section) != 0) {
        pc->pc_entered = 1;
        if (!enter_section(pc, section))
            return 0;
    } else if (pc->pc_bad_section) {
        return 0; /* Reported once, at its first key. */
    }
    if (pc->pc_in_broker)
        return broker_key(pc, name, value);
    return plugin_key(pc, pc->pc_cur, name, value);
}

/* Records every error and goes on, so one run reports them all. */
static int handler(void *user, const char *section, const char *name, const char *value, int lineno)
{
    parse_ctx_t *pc = user;

    pc->pc_line = lineno;
    handle_key(pc, section, name, value);
    return 0;
}

void config_defaults(broker_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->cfg_log_level = DCB_LOG_INFO;
    cfg->cfg_max_packet = 4096;
    cfg->cfg_max_connections = 256;
    cfg->cfg_reorder_hold_ms = 50;
    cfg->cfg_packet_idle_s = 300;
    cfg->cfg_max_outstanding = 1024;
    cfg->cfg_host_stop_ms = 2000;
    cfg->cfg_output_line_max = 512;
    cfg->cfg_output_lines_per_s = 50;
    cfg->cfg_drain_ms = 30000;
    cfg->cfg_busy_poll_us = 50;
}

int config_load(broker_config_t *cfg, const char *path, char *err, size_t errlen)
{
    parse_ctx_t pc;
    int rc;

    memset(&pc, 0, sizeof(pc));
    pc.pc_cfg = cfg;
    pc.pc_path = path;
    pc.pc_err = err;
    pc.pc_errlen = errlen;
    err[0] = '\0';
    free(cfg->cfg_path);
    cfg->cfg_path = xstrdup(path);
    rc = dcb_ini_parse(path, handler, &pc);
    if (rc == DCB_INI_EOPEN) {
        snprintf(err, errlen, "%s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    if (rc > 0) {
        pc.pc_line = rc;
        err_add(&pc, NULL,
                "syntax error (expected [section], key = value or a comment; lines are at most "
                "%d characters); the rest of the file was not read",
                DCB_INI_LINE_MAX - 1);
    }
    for (size_t i = 0; i < cfg->cfg_n_plugins && pc.pc_errors == 0; i++) {
        uint32_t lo = 0, hi = 0;
        broker_policy_t pol;
        config_policy(cfg, &cfg->cfg_plugins[i], &pol);
        lo = pol.pol_restart_backoff_ms;
        hi = pol.pol_restart_backoff_max_ms;
        if (lo > hi) {
            snprintf(err, errlen,
                     "%s: [plugin %s] restart_backoff_ms (%u) is above restart_backoff_max_ms "
                     "(%u)\n",
                     path, cfg->cfg_plugins[i].pc_name, lo, hi);
            return -1;
        }
    }
    return pc.pc_errors ? -1 : 0;
}

void config_free(broker_config_t *cfg)
{
    free(cfg->cfg_path);
    free(cfg->cfg_pipe);
    free(cfg->cfg_control_pipe);
    free(cfg->cfg_log_file);
    free(cfg->cfg_pipe_allow);
    free(cfg->cfg_control_allow);
    free(cfg->cfg_host_user);
    free(cfg->cfg_defaults.pc_write_paths);
    for (size_t i = 0; i < cfg->cfg_n_chain; i++)
        free(cfg->cfg_chain[i]);
    free(cfg->cfg_chain);
    free(cfg->cfg_defaults.pc_group);
    for (size_t i = 0; i < cfg->cfg_n_plugins; i++) {
        free(cfg->cfg_plugins[i].pc_name);
        free(cfg->cfg_plugins[i].pc_dll);
        free(cfg->cfg_plugins[i].pc_group);
        free(cfg->cfg_plugins[i].pc_write_paths);
    }
    free(cfg->cfg_plugins);
    memset(cfg, 0, sizeof(*cfg));
}

static int name_eq(const char *a, const char *b)
{
    /* Windows file names are case-insensitive, and so are plugin names. */
    while (*a != '\0' && tolower((unsigned char)*a) == tolower((unsigned char)*b)) {
        a++;
        b++;
    }
    return *a == '\0' && *b == '\0';
}

const broker_plugin_conf_t *config_find_plugin(const broker_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->cfg_n_plugins; i++)
        if (name_eq(cfg->cfg_plugins[i].pc_name, name))
            return &cfg->cfg_plugins[i];
    return NULL;
}

/* A key's value: the plugin's own, then [defaults], then the built-in. */
static int pick(const broker_config_t *cfg, const broker_plugin_conf_t *pc, int id, uint32_t *v)
{
    if (pc != NULL && pc->pc_set[id]) {
        *v = pc->pc_val[id];
        return 1;
    }
    if (cfg->cfg_defaults.pc_set[id]) {
        *v = cfg->cfg_defaults.pc_val[id];
        return 1;
    }
    return 0;
}

void config_policy(const broker_config_t *cfg, const broker_plugin_conf_t *pc, broker_policy_t *pol)
{
    uint32_t *dst[] = {
        &pol->pol_memory_mb,
        &pol->pol_threads,
        &pol->pol_restart_backoff_ms,
        &pol->pol_restart_backoff_max_ms,
        &pol->pol_crash_loop_limit,
        &pol->pol_crash_loop_window_s,
        &pol->pol_hang_ms,
        &pol->pol_breaker_failures,
        &pol->pol_breaker_ms,
        &pol->pol_breaker_max_ms,
    };

    memset(pol, 0, sizeof(*pol));
    for (int h = 0; h < DCB_HOOK_COUNT; h++) {
        uint32_t v;
        /* Per-hook keys win over the plugin's base key, which wins over [defaults]. */
        if ((pc != NULL && pc->pc_set[PK_TIMEOUT_HOOK + h] &&
             (v = pc->pc_val[PK_TIMEOUT_HOOK + h], 1)) ||
            (pc != NULL && pc->pc_set[PK_TIMEOUT] && (v = pc->pc_val[PK_TIMEOUT], 1)) ||
            pick(cfg, NULL, PK_TIMEOUT_HOOK + h, &v) || pick(cfg, NULL, PK_TIMEOUT, &v))
            pol->pol_timeout_ms[h] = v;
        else
            pol->pol_timeout_ms[h] = DEFAULT_TIMEOUT_MS;
        if ((pc != NULL && pc->pc_set[PK_FAIL_HOOK + h] && (v = pc->pc_val[PK_FAIL_HOOK + h], 1)) ||
            (pc != NULL && pc->pc_set[PK_FAIL] && (v = pc->pc_val[PK_FAIL], 1)) ||
            pick(cfg, NULL, PK_FAIL_HOOK + h, &v) || pick(cfg, NULL, PK_FAIL, &v))
            pol->pol_fail[h] = (uint8_t)v;
        else
            pol->pol_fail[h] = BROKER_FAIL_OPEN;
    }
    for (size_t i = 0; i < sizeof(plugin_keys) / sizeof(plugin_keys[0]); i++) {
        uint32_t v;
        *dst[i] = pick(cfg, pc, plugin_keys[i].kd_id, &v) ? v : plugin_keys[i].kd_default;
    }
    if (pol->pol_restart_backoff_max_ms < pol->pol_restart_backoff_ms)
        pol->pol_restart_backoff_max_ms = pol->pol_restart_backoff_ms;
    if (pol->pol_breaker_max_ms < pol->pol_breaker_ms)
        pol->pol_breaker_max_ms = pol->pol_breaker_ms;
}

void config_plugin_name(const char *path, char *out, size_t outlen)
{
    const char *base = path, *dot;
    size_t n;

    for (const char *p = path; *p != '\0'; p++)
        if (*p == '/' || *p == '\\' || *p == ':')
            base = p + 1;
    dot = strrchr(base, '.');
    n = dot != NULL && dot != base ? (size_t)(dot - base) : strlen(base);
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, base, n);
    out[n] = '\0';
}
