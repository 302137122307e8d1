/*
 * config.c — the shim's settings.
 *
 * Each setting has a documented default (shim/README.md), a value name in
 * the platform source (Windows: the registry key
 * HKLM\SYSTEM\CurrentControlSet\Services\dcb\Parameters; Linux: the file
 * named by DCB_SHIM_CONFIG, default /etc/dcb/shim.conf) and an environment
 * variable that overrides it (for tests). A value that does not parse or is
 * out of range is logged and the documented default is used: a broken
 * configuration never stops DHCP.
 */
#include "shim.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#define DEFAULT_PIPE "\\\\.\\pipe\\dcb-broker"
#else
#define DEFAULT_PIPE "/run/dcb/broker.sock"
#endif

typedef struct num_setting {
    const char *n_name; /* registry value / file key */
    const char *n_env;
    size_t n_offset; /* of the uint32_t in dcb__cfg_t */
    uint32_t n_def, n_min, n_max;
} num_setting_t;

#define NUM(name, env, field, def, min, max)                                                       \
    {                                                                                              \
        name, env, offsetof(dcb__cfg_t, field), def, min, max                                      \
    }

static const num_setting_t nums[] = {
    NUM("NewPktDeadlineMs", "DCB_NEWPKT_DEADLINE_MS", c_newpkt_deadline_ms, 100, 1, 60000),
    NUM("PktSendDeadlineMs", "DCB_PKTSEND_DEADLINE_MS", c_pktsend_deadline_ms, 100, 1, 60000),
    NUM("NotifyDeadlineMs", "DCB_NOTIFY_DEADLINE_MS", c_notify_deadline_ms, 1000, 1, 60000),
    NUM("QueueSize", "DCB_QUEUE_SIZE", c_queue_size, 4096, 16, 1048576),
    NUM("MaxPacketSize", "DCB_MAX_PACKET", c_max_packet, DCB_MAX_PACKET_DEFAULT, 576, 65000),
    NUM("PoolMax", "DCB_POOL_MAX", c_pool_max, 32, 1, 256),
    NUM("PoolSpare", "DCB_POOL_SPARE", c_pool_spare, 2, 1, 64),
    NUM("BreakerThreshold", "DCB_BREAKER_THRESHOLD", c_breaker_threshold, 5, 1, 1000),
    NUM("BreakerMinMs", "DCB_BREAKER_MIN_MS", c_breaker_min_ms, 100, 1, 60000),
    NUM("BreakerMaxMs", "DCB_BREAKER_MAX_MS", c_breaker_max_ms, 5000, 1, 600000),
    NUM("StatsIntervalMs", "DCB_STATS_INTERVAL_MS", c_stats_interval_ms, 1000, 10, 3600000),
    NUM("ConnectTimeoutMs", "DCB_CONNECT_TIMEOUT_MS", c_connect_timeout_ms, 1000, 10, 60000),
    NUM("StartupWaitMs", "DCB_STARTUP_WAIT_MS", c_startup_wait_ms, 2000, 0, 60000),
};

void dcb__cfg_defaults(dcb__cfg_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->c_pipe, sizeof(cfg->c_pipe), "%s", DEFAULT_PIPE);
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        *(uint32_t *)((char *)cfg + nums[i].n_offset) = nums[i].n_def;
    cfg->c_fail_closed = 0;
}

static void trim(char *s)
{
    size_t n = strlen(s), i = 0;

    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    while (isspace((unsigned char)s[i]))
        i++;
    if (i > 0)
        memmove(s, s + i, n - i + 1);
}

/* Strict unsigned decimal (or 0x hex): no sign, no trailing text. */
static int parse_u32(const char *s, uint32_t *out)
{
    unsigned long long v;
    char *end;

    if (!isdigit((unsigned char)s[0]))
        return -1;
    v = strtoull(s, &end, 0);
    if (*end != '\0' || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/*
 * The value of one setting: the environment variable if set, else the
 * platform source. Returns 1 with the text in buf, 0 when neither has it.
 */
static int lookup(const char *name, const char *env, char *buf, size_t cap, const char **from)
{
    if (env != NULL && dcb__plat_env_get(env, buf, cap)) {
        *from = env;
        trim(buf);
        return 1;
    }
    if (dcb__plat_cfg_get(name, buf, cap)) {
        *from = name;
        trim(buf);
        return 1;
    }
    return 0;
}

static void load_string(const char *name, const char *env, char *field, size_t cap, const char *def)
{
    char buf[1024];
    const char *from;

    if (!lookup(name, env, buf, sizeof(buf), &from))
        return;
    if (buf[0] == '\0' && def != NULL) {
        dcb__log(DCB_LOG_WARN, "config %s is empty; using the default %s", from, def);
        return;
    }
    if (strlen(buf) >= cap) {
        dcb__log(DCB_LOG_ERROR, "config %s is too long (max %zu); using the default", from,
                 cap - 1);
        return;
    }
    snprintf(field, cap, "%s", buf);
}

void dcb__cfg_load(dcb__cfg_t *cfg)
{
    char buf[64];
    const char *from;
    uint32_t v;

    dcb__cfg_defaults(cfg);
    /* The log first, so the other settings' problems reach it. */
    load_string("LogFile", "DCB_SHIM_LOG", cfg->c_log_path, sizeof(cfg->c_log_path), NULL);
    dcb__log_open(cfg->c_log_path);
    load_string("PipeName", "DCB_PIPE", cfg->c_pipe, sizeof(cfg->c_pipe), DEFAULT_PIPE);
    load_string("ExpectedBrokerAccount", "DCB_BROKER_ACCOUNT", cfg->c_broker_account,
                sizeof(cfg->c_broker_account), NULL);
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        const num_setting_t *n = &nums[i];
        if (!lookup(n->n_name, n->n_env, buf, sizeof(buf), &from))
            continue;
        if (parse_u32(buf, &v) != 0 || v < n->n_min || v > n->n_max) {
            dcb__log(DCB_LOG_ERROR, "config %s=\"%s\" is invalid (want %u..%u); using %u", from,
                     buf, n->n_min, n->n_max, n->n_def);
            continue;
        }
        *(uint32_t *)((char *)cfg + n->n_offset) = v;
    }
    if (lookup("FailClosedNewPkt", "DCB_FAIL_CLOSED", buf, sizeof(buf), &from)) {
        if (parse_u32(buf, &v) != 0 || v > 1)
            dcb__log(DCB_LOG_ERROR, "config %s=\"%s\" is invalid (want 0 or 1); using 0", from,
                     buf);
        else
            cfg->c_fail_closed = (int)v;
    }
    if (cfg->c_breaker_max_ms < cfg->c_breaker_min_ms) {
        dcb__log(DCB_LOG_ERROR, "config BreakerMaxMs %u < BreakerMinMs %u; using %u",
                 cfg->c_breaker_max_ms, cfg->c_breaker_min_ms, cfg->c_breaker_min_ms);
        cfg->c_breaker_max_ms = cfg->c_breaker_min_ms;
    }
    if (cfg->c_pool_spare > cfg->c_pool_max)
        cfg->c_pool_spare = cfg->c_pool_max;
}
