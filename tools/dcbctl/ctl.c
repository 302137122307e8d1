/*
 * ctl.c — ctl_main(): parse the command line, run one command, return the
 * exit code. Errors are one line on err, starting "dcbctl: ".
 */
#include "dcbctl.h"

#include <stdlib.h>
#include <string.h>

static const char *endpoint_for(const ctl_args_t *a)
{
    const char *env = getenv("DCB_CONTROL");

    if (a->a_control != NULL)
        return a->a_control;
    if (env != NULL && *env != '\0')
        return env;
    return ctl_conn_default_endpoint();
}

/* The broker's answer to a command that changes something. */
static int report_status(const Dcb__ControlResponse *resp, const ctl_args_t *a, FILE *out,
                         FILE *err)
{
    char plugin[256], why[512];

    ctl_fmt_sanitize(a->a_plugin != NULL ? a->a_plugin : "", plugin, sizeof(plugin));
    if (resp->status != DCB__CONTROL_STATUS__CS_OK) {
        ctl_fmt_sanitize(resp->error, why, sizeof(why));
        if (resp->status == DCB__CONTROL_STATUS__CS_UNKNOWN_PLUGIN)
            fprintf(err, "dcbctl: unknown plugin '%s'%s%s\n", plugin, why[0] ? ": " : "", why);
        else
            fprintf(err, "dcbctl: the broker refused: %s%s%s\n", ctl_status_name(resp->status),
                    why[0] ? ": " : "", why);
        return ctl_exit_for_status(resp->status);
    }
    switch (a->a_cmd) {
    case CTL_CMD_RELOAD:
        fprintf(out, "%s: reloaded\n", plugin);
        break;
    case CTL_CMD_ENABLE:
        fprintf(out, "%s: enabled\n", plugin);
        break;
    case CTL_CMD_DISABLE:
        fprintf(out, "%s: disabled\n", plugin);
        break;
    case CTL_CMD_SET:
        if (a->a_has_hook)
            fprintf(out, "%s: timeout %u ms for %s\n", plugin, a->a_set_timeout_ms,
                    dcb_hook_name((int)a->a_hook));
        else
            fprintf(out, "%s: timeout %u ms for every hook\n", plugin, a->a_set_timeout_ms);
        break;
    case CTL_CMD_RESET_STATS:
        fprintf(out, "statistics reset\n");
        break;
    default:
        break;
    }
    return CTL_EXIT_OK;
}

static int run_control(const ctl_args_t *a, FILE *out, FILE *err)
{
    Dcb__ControlRequest req = DCB__CONTROL_REQUEST__INIT;
    Dcb__ControlResponse *resp;
    ctl_client_t cl;
    int rc;

    switch (a->a_cmd) {
    case CTL_CMD_STATUS:
        req.command = DCB__CONTROL_COMMAND__CC_STATUS;
        break;
    case CTL_CMD_STATS:
        req.command = DCB__CONTROL_COMMAND__CC_STATS;
        break;
    case CTL_CMD_RELOAD:
        req.command = DCB__CONTROL_COMMAND__CC_RELOAD;
        break;
    case CTL_CMD_ENABLE:
        req.command = DCB__CONTROL_COMMAND__CC_ENABLE;
        break;
    case CTL_CMD_DISABLE:
        req.command = DCB__CONTROL_COMMAND__CC_DISABLE;
        break;
    case CTL_CMD_SET:
        req.command = DCB__CONTROL_COMMAND__CC_SET_TIMEOUT;
        req.has_timeout_ms = 1;
        req.timeout_ms = a->a_set_timeout_ms;
        req.has_hook = a->a_has_hook;
        req.hook = a->a_hook;
        break;
    case CTL_CMD_RESET_STATS:
        req.command = DCB__CONTROL_COMMAND__CC_RESET_STATS;
        break;
    default:
        return CTL_EXIT_USAGE;
    }
    /* The generated struct's field is not const; the string is never written. */
    req.plugin = (char *)a->a_plugin;

    ctl_client_init(&cl, endpoint_for(a), a->a_timeout_ms);
    rc = ctl_client_call(&cl, &req, &resp);
    if (rc != 0) {
        fprintf(err, "dcbctl: %s\n", cl.cl_err);
        rc = ctl_exit_for(rc);
        goto out;
    }
    if (a->a_cmd == CTL_CMD_STATUS || a->a_cmd == CTL_CMD_STATS) {
        if (resp->status != DCB__CONTROL_STATUS__CS_OK) {
            rc = report_status(resp, a, out, err);
            goto out;
        }
        if (a->a_cmd == CTL_CMD_STATUS && resp->status_report == NULL) {
            fprintf(err, "dcbctl: bad answer: no status report in the broker's response\n");
            rc = CTL_EXIT_PROTOCOL;
            goto out;
        }
        if (a->a_cmd == CTL_CMD_STATS && resp->stats_report == NULL) {
            fprintf(err, "dcbctl: bad answer: no statistics in the broker's response\n");
            rc = CTL_EXIT_PROTOCOL;
            goto out;
        }
        rc = CTL_EXIT_OK;
        if (a->a_cmd == CTL_CMD_STATUS && a->a_format == CTL_FMT_JSON)
            rc = ctl_out_status_json(resp->status_report, out) == 0 ? 0 : CTL_EXIT_PROTOCOL;
        else if (a->a_cmd == CTL_CMD_STATUS)
            ctl_out_status_text(resp->status_report, out);
        else if (a->a_format == CTL_FMT_JSON)
            rc = ctl_out_stats_json(resp->stats_report, out) == 0 ? 0 : CTL_EXIT_PROTOCOL;
        else if (a->a_format == CTL_FMT_PROMETHEUS)
            ctl_out_stats_prometheus(resp->stats_report, out);
        else
            ctl_out_stats_text(resp->stats_report, NULL, 0, out);
        goto out;
    }
    rc = report_status(resp, a, out, err);

out:
    ctl_client_free(&cl);
    return rc;
}

int ctl_main(int argc, char **argv, FILE *out, FILE *err)
{
    ctl_args_t a;
    int rc;

    rc = ctl_args_parse(argc, argv, &a, err);
    if (rc != 0)
        return rc;
    switch (a.a_cmd) {
    case CTL_CMD_HELP:
        ctl_usage(out);
        return CTL_EXIT_OK;
    case CTL_CMD_VERSION:
        fprintf(out, "dcbctl %s (dcb protocol %d)\n", DCBCTL_VERSION, DCB_PROTO_VERSION);
        return CTL_EXIT_OK;
    case CTL_CMD_TOP:
        return ctl_top(&a, endpoint_for(&a), out, err);
    case CTL_CMD_INSTALL:
        return ctl_install(&a, out, err);
    case CTL_CMD_UNINSTALL:
        return ctl_uninstall(&a, out, err);
    default:
        rc = run_control(&a, out, err);
        fflush(out);
        return rc;
    }
}
