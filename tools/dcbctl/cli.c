/*
 * cli.c — dcbctl's command line: one pass over argv, then per-command checks.
 *
 * Options may come before or after the command (`dcbctl --json stats` and
 * `dcbctl stats --json` are the same), as `--opt VALUE` or `--opt=VALUE`.
 * Anything not understood is a usage error (exit 1) with a one-line reason:
 * a script that misspells an option must not silently get the default.
 */
#include "dcbctl.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dcb_callout.h"

void ctl_usage(FILE *f)
{
    fputs(
        "usage: dcbctl [--control PIPE] [--timeout T] COMMAND [ARGS]\n"
        "\n"
        "Talk to the running broker:\n"
        "  status [--json]                    broker, shims and every plugin's state\n"
        "  stats [--json | --prometheus]      per hook x plugin counters and latency,\n"
        "                                     and what the DHCP server's threads waited\n"
        "  top [--interval T] [--iterations N]  stats, refreshed every second\n"
        "  reload PLUGIN                      restart PLUGIN from its DLL on disk, live\n"
        "  enable PLUGIN | disable PLUGIN     put a plugin in or out of service\n"
        "  set PLUGIN timeout MS [--hook HOOK]  a plugin's deadline (all hooks, or one)\n"
        "  reset-stats                        set every counter and histogram to zero\n"
        "\n"
        "Deployment (Windows, as an elevated administrator):\n"
        "  install [--shim DLL] [--broker EXE] [--config INI] [--account localservice|virtual]\n"
        "      put dcbshim.dll first in CalloutDlls, register the dcb-broker service\n"
        "      and the Event Log source \"dcb\" (paths default to dcbctl.exe's folder)\n"
        "  uninstall\n"
        "      remove them and restore CalloutDlls/CalloutEnabled as they were\n"
        "\n"
        "Options:\n"
        "  --control PIPE   control endpoint (default: $DCB_CONTROL, else\n"
        "                   \\\\.\\pipe\\dcb-control on Windows, /run/dcb/control.sock on Linux)\n"
        "  --timeout T      give up after T (default 5s; \"300ms\", \"2s\", \"2\" = seconds)\n"
        "\n"
        "Exit status:\n"
        "   0 ok                         10 install/uninstall: not an elevated administrator\n"
        "   1 usage error                11 install: a file it needs is missing\n"
        "   2 broker not running         12 install: already installed\n"
        "   3 access denied              13 uninstall: not installed\n"
        "   4 unknown plugin             14 DHCP Server not installed / CalloutDlls unreadable\n"
        "   5 the broker refused/failed  15 a registry or service call failed\n"
        "   6 protocol error or timeout\n",
        f);
}

static const struct {
    const char *name;
    ctl_cmd_t cmd;
} commands[] = {
    {"status", CTL_CMD_STATUS},   {"stats", CTL_CMD_STATS},
    {"top", CTL_CMD_TOP},         {"reload", CTL_CMD_RELOAD},
    {"enable", CTL_CMD_ENABLE},   {"disable", CTL_CMD_DISABLE},
    {"set", CTL_CMD_SET},         {"reset-stats", CTL_CMD_RESET_STATS},
    {"install", CTL_CMD_INSTALL}, {"uninstall", CTL_CMD_UNINSTALL},
    {"help", CTL_CMD_HELP},       {"version", CTL_CMD_VERSION},
};

int ctl_hook_parse(const char *s)
{
    char *end;
    unsigned long n;

    for (int h = 0; h < DCB_HOOK_COUNT; h++) {
        const char *name = dcb_hook_name(h);
        size_t i = 0;
        while (name[i] != '\0' && s[i] != '\0' &&
               tolower((unsigned char)name[i]) == tolower((unsigned char)s[i]))
            i++;
        if (name[i] == '\0' && s[i] == '\0')
            return h;
    }
    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    n = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || n >= DCB_HOOK_COUNT)
        return -1;
    return (int)n;
}

/* A non-negative decimal integer no larger than max. */
static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    unsigned long long n;

    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    n = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || n > max)
        return -1;
    *out = n;
    return 0;
}

/* "300ms", "2s", "2" (seconds), "1.5" / "1.5s"; from 1 ms to an hour. */
static int parse_duration_ms(const char *s, uint32_t *out)
{
    char *end;
    double v;

    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s)
        return -1;
    if (strcmp(end, "ms") == 0)
        ;
    else if (*end == '\0' || strcmp(end, "s") == 0)
        v *= 1000.0;
    else
        return -1;
    if (!(v >= 1.0 && v <= 3600000.0))
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int ieq(const char *a, const char *b)
{
    while (*a != '\0' && tolower((unsigned char)*a) == tolower((unsigned char)*b))
        a++, b++;
    return tolower((unsigned char)*a) == tolower((unsigned char)*b);
}

const char *ctl_account_name(const char *arg)
{
    if (arg == NULL || ieq(arg, "localservice") || ieq(arg, CTL_ACCOUNT_LOCALSERVICE))
        return CTL_ACCOUNT_LOCALSERVICE;
    if (ieq(arg, "virtual") || ieq(arg, CTL_ACCOUNT_VIRTUAL))
        return CTL_ACCOUNT_VIRTUAL;
    return NULL;
}

typedef struct opt_state {
    int os_argc;
    char **os_argv;
    int os_i;
    FILE *os_err;
} opt_state_t;

/* The value of --name VALUE or --name=VALUE; NULL (reported) when missing. */
static const char *opt_value(opt_state_t *st, const char *arg, size_t namelen)
{
    if (arg[namelen] == '=')
        return arg + namelen + 1;
    if (st->os_i + 1 >= st->os_argc) {
        fprintf(st->os_err, "dcbctl: %.*s needs a value\n", (int)namelen, arg);
        return NULL;
    }
    return st->os_argv[++st->os_i];
}

static int opt_is(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

int ctl_args_parse(int argc, char **argv, ctl_args_t *a, FILE *err)
{
    const char *pos[8];
    int npos = 0, seen_json = 0, seen_prom = 0, seen_iter = 0, seen_interval = 0;
    int install_opt = 0;
    opt_state_t st = {argc, argv, 0, err};
    unsigned long long n;

    memset(a, 0, sizeof(*a));
    a->a_timeout_ms = 5000;
    a->a_interval_ms = 1000;

    for (st.os_i = 1; st.os_i < argc; st.os_i++) {
        const char *arg = argv[st.os_i];
        const char *v;

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            a->a_cmd = CTL_CMD_HELP;
            return 0;
        }
        if (strcmp(arg, "--version") == 0) {
            a->a_cmd = CTL_CMD_VERSION;
            return 0;
        }
        if (strcmp(arg, "--") == 0) {
            /* Everything after is positional (a plugin named "--x"). */
            while (++st.os_i < argc) {
                if (npos == (int)(sizeof(pos) / sizeof(pos[0])))
                    goto too_many;
                pos[npos++] = argv[st.os_i];
            }
            break;
        }
        if (arg[0] != '-' || arg[1] == '\0') {
            if (npos == (int)(sizeof(pos) / sizeof(pos[0])))
                goto too_many;
            pos[npos++] = arg;
            continue;
        }
        if (opt_is(arg, "--control")) {
            if ((v = opt_value(&st, arg, 9)) == NULL)
                return CTL_EXIT_USAGE;
            if (*v == '\0') {
                fprintf(err, "dcbctl: --control needs a pipe or socket name\n");
                return CTL_EXIT_USAGE;
            }
            a->a_control = v;
        } else if (opt_is(arg, "--timeout")) {
            if ((v = opt_value(&st, arg, 9)) == NULL)
                return CTL_EXIT_USAGE;
            if (parse_duration_ms(v, &a->a_timeout_ms) != 0) {
                fprintf(err, "dcbctl: --timeout '%s': expected a duration such as 5, 2s or 300ms\n",
                        v);
                return CTL_EXIT_USAGE;
            }
        } else if (strcmp(arg, "--json") == 0) {
            seen_json = 1;
        } else if (strcmp(arg, "--prometheus") == 0) {
            seen_prom = 1;
        } else if (opt_is(arg, "--hook")) {
            int h;
            if ((v = opt_value(&st, arg, 6)) == NULL)
                return CTL_EXIT_USAGE;
            if ((h = ctl_hook_parse(v)) < 0) {
                fprintf(err,
                        "dcbctl: --hook '%s': expected Control, NewPkt, PktDrop, PktSend, "
                        "AddressDel, AddressOffer, HandleOptions or DeleteClient\n",
                        v);
                return CTL_EXIT_USAGE;
            }
            a->a_has_hook = 1;
            a->a_hook = (uint32_t)h;
        } else if (opt_is(arg, "--iterations")) {
            if ((v = opt_value(&st, arg, 12)) == NULL)
                return CTL_EXIT_USAGE;
            if (parse_uint(v, 1000000000ull, &n) != 0 || n == 0) {
                fprintf(err, "dcbctl: --iterations '%s': expected a number above 0\n", v);
                return CTL_EXIT_USAGE;
            }
            a->a_iterations = (long)n;
            seen_iter = 1;
        } else if (opt_is(arg, "--interval")) {
            if ((v = opt_value(&st, arg, 10)) == NULL)
                return CTL_EXIT_USAGE;
            if (parse_duration_ms(v, &a->a_interval_ms) != 0) {
                fprintf(err,
                        "dcbctl: --interval '%s': expected a duration such as 1, 2s or 500ms\n", v);
                return CTL_EXIT_USAGE;
            }
            seen_interval = 1;
        } else if (opt_is(arg, "--shim")) {
            if ((a->a_shim = opt_value(&st, arg, 6)) == NULL)
                return CTL_EXIT_USAGE;
            install_opt = 1;
        } else if (opt_is(arg, "--broker")) {
            if ((a->a_broker = opt_value(&st, arg, 8)) == NULL)
                return CTL_EXIT_USAGE;
            install_opt = 1;
        } else if (opt_is(arg, "--config")) {
            if ((a->a_config = opt_value(&st, arg, 8)) == NULL)
                return CTL_EXIT_USAGE;
            install_opt = 1;
        } else if (opt_is(arg, "--account")) {
            if ((a->a_account = opt_value(&st, arg, 9)) == NULL)
                return CTL_EXIT_USAGE;
            install_opt = 1;
        } else {
            fprintf(err, "dcbctl: unknown option '%s' (dcbctl --help lists them)\n", arg);
            return CTL_EXIT_USAGE;
        }
    }

    if (npos == 0) {
        fprintf(err, "dcbctl: no command given (dcbctl --help lists them)\n");
        return CTL_EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(pos[0], commands[i].name) == 0)
            a->a_cmd = commands[i].cmd;
    if (a->a_cmd == CTL_CMD_NONE) {
        fprintf(err, "dcbctl: unknown command '%s' (dcbctl --help lists them)\n", pos[0]);
        return CTL_EXIT_USAGE;
    }

    /* Arity and the options each command takes. */
    switch (a->a_cmd) {
    case CTL_CMD_RELOAD:
    case CTL_CMD_ENABLE:
    case CTL_CMD_DISABLE:
        if (npos != 2 || pos[1][0] == '\0') {
            fprintf(err, "dcbctl: usage: dcbctl %s PLUGIN\n", pos[0]);
            return CTL_EXIT_USAGE;
        }
        a->a_plugin = pos[1];
        break;
    case CTL_CMD_SET:
        if (npos != 4 || pos[1][0] == '\0' || strcmp(pos[2], "timeout") != 0) {
            fprintf(err, "dcbctl: usage: dcbctl set PLUGIN timeout MS [--hook HOOK]\n");
            return CTL_EXIT_USAGE;
        }
        if (parse_uint(pos[3], DCB_MAX_DEADLINE_US / 1000u, &n) != 0 || n == 0) {
            fprintf(err, "dcbctl: set: timeout '%s': expected milliseconds from 1 to %u\n", pos[3],
                    DCB_MAX_DEADLINE_US / 1000u);
            return CTL_EXIT_USAGE;
        }
        a->a_plugin = pos[1];
        a->a_set_timeout_ms = (uint32_t)n;
        break;
    default:
        if (npos != 1) {
            fprintf(err, "dcbctl: %s: unexpected argument '%s'\n", pos[0], pos[1]);
            return CTL_EXIT_USAGE;
        }
        break;
    }
    if (a->a_has_hook && a->a_cmd != CTL_CMD_SET) {
        fprintf(err, "dcbctl: --hook applies to 'set' only\n");
        return CTL_EXIT_USAGE;
    }
    if (seen_json && seen_prom) {
        fprintf(err, "dcbctl: choose one of --json and --prometheus\n");
        return CTL_EXIT_USAGE;
    }
    if (seen_json) {
        if (a->a_cmd != CTL_CMD_STATS && a->a_cmd != CTL_CMD_STATUS) {
            fprintf(err, "dcbctl: --json applies to 'status' and 'stats' only\n");
            return CTL_EXIT_USAGE;
        }
        a->a_format = CTL_FMT_JSON;
    }
    if (seen_prom) {
        if (a->a_cmd != CTL_CMD_STATS) {
            fprintf(err, "dcbctl: --prometheus applies to 'stats' only\n");
            return CTL_EXIT_USAGE;
        }
        a->a_format = CTL_FMT_PROMETHEUS;
    }
    if ((seen_iter || seen_interval) && a->a_cmd != CTL_CMD_TOP) {
        fprintf(err, "dcbctl: --iterations and --interval apply to 'top' only\n");
        return CTL_EXIT_USAGE;
    }
    if (install_opt && a->a_cmd != CTL_CMD_INSTALL) {
        fprintf(err, "dcbctl: --shim, --broker, --config and --account apply to 'install' only\n");
        return CTL_EXIT_USAGE;
    }
    if (a->a_account != NULL && ctl_account_name(a->a_account) == NULL) {
        fprintf(err,
                "dcbctl: --account '%s': expected localservice (NT AUTHORITY\\LocalService) "
                "or virtual (NT SERVICE\\dcb-broker)\n",
                a->a_account);
        return CTL_EXIT_USAGE;
    }
    return 0;

too_many:
    fprintf(err, "dcbctl: too many arguments\n");
    return CTL_EXIT_USAGE;
}
