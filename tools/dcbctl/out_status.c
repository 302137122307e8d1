/*
 * out_status.c — `dcbctl status`: the broker, its shims, and each plugin.
 */
#include "dcbctl.h"

#include <string.h>

#include <cJSON.h>

#include "dcb_callout.h"

void ctl_out_status_text(const Dcb__StatusReport *r, FILE *out)
{
    static const char *const header[] = {"PLUGIN",   "STATE", "PID",         "UPTIME",
                                         "RESTARTS", "GEN",   "LAST FAILURE"};
    static const int right[] = {0, 0, 1, 1, 1, 1, 0};
    ctl_table_t t;
    char up[32], ver[64];

    ctl_fmt_uptime(r->uptime_ms, up, sizeof(up));
    ctl_fmt_sanitize(r->broker_version != NULL ? r->broker_version : "?", ver, sizeof(ver));
    fprintf(out, "broker: running, pid %u, up %s, version %s\n", r->broker_pid, up, ver);
    if (r->has_shims_connected)
        fprintf(out, "shims connected: %u%s\n", r->shims_connected,
                r->shims_connected == 0 ? " (the DHCP server has not loaded dcbshim.dll, or "
                                          "it is not running)"
                                        : "");
    else
        fprintf(out, "shims connected: unknown\n");
    if (r->n_plugins == 0) {
        fprintf(out, "plugins: none configured\n");
        return;
    }
    fputc('\n', out);

    ctl_table_init(&t, 7, header, right);
    for (size_t i = 0; i < r->n_plugins; i++) {
        const Dcb__PluginStatus *p = r->plugins[i];
        char name[128], why[256], age[32];

        ctl_fmt_sanitize(p->name, name, sizeof(name));
        ctl_table_cell(&t, 0, "%s", name);
        ctl_table_cell(&t, 1, "%s", ctl_plugin_state_name(p->state));
        if (p->has_pid && p->pid != 0)
            ctl_table_cell(&t, 2, "%u", p->pid);
        else
            ctl_table_cell(&t, 2, "-");
        if (p->has_uptime_ms && p->state != DCB__PLUGIN_STATE__PS_DISABLED) {
            ctl_fmt_uptime(p->uptime_ms, up, sizeof(up));
            ctl_table_cell(&t, 3, "%s", up);
        } else {
            ctl_table_cell(&t, 3, "-");
        }
        ctl_table_cell(&t, 4, "%u", p->has_restarts ? p->restarts : 0);
        if (p->has_generation)
            ctl_table_cell(&t, 5, "%u", p->generation);
        else
            ctl_table_cell(&t, 5, "-");
        if (p->last_failure != NULL && p->last_failure[0] != '\0') {
            ctl_fmt_sanitize(p->last_failure, why, sizeof(why));
            if (p->has_last_failure_age_ms) {
                ctl_fmt_uptime(p->last_failure_age_ms, age, sizeof(age));
                ctl_table_cell(&t, 6, "%s (%s ago)", why, age);
            } else {
                ctl_table_cell(&t, 6, "%s", why);
            }
        } else {
            ctl_table_cell(&t, 6, "-");
        }
    }
    ctl_table_print(&t, out);
    ctl_table_free(&t);
}

static cJSON *hooks_array(uint32_t bits)
{
    cJSON *a = cJSON_CreateArray();

    for (int h = 0; a != NULL && h < DCB_HOOK_COUNT; h++)
        if (bits & (1u << h))
            cJSON_AddItemToArray(a, cJSON_CreateString(dcb_hook_name(h)));
    return a;
}

int ctl_out_status_json(const Dcb__StatusReport *r, FILE *out)
{
    cJSON *root = cJSON_CreateObject(), *broker, *plugins;
    char *text;

    if (root == NULL)
        return -1;
    broker = cJSON_AddObjectToObject(root, "broker");
    cJSON_AddNumberToObject(broker, "pid", r->broker_pid);
    cJSON_AddNumberToObject(broker, "uptime_ms", (double)r->uptime_ms);
    if (r->broker_version != NULL)
        cJSON_AddStringToObject(broker, "version", r->broker_version);
    if (r->has_shims_connected)
        cJSON_AddNumberToObject(broker, "shims_connected", r->shims_connected);
    plugins = cJSON_AddArrayToObject(root, "plugins");
    for (size_t i = 0; i < r->n_plugins; i++) {
        const Dcb__PluginStatus *p = r->plugins[i];
        cJSON *o = cJSON_CreateObject();

        cJSON_AddItemToArray(plugins, o);
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddStringToObject(o, "state", ctl_plugin_state_name(p->state));
        if (p->has_pid)
            cJSON_AddNumberToObject(o, "pid", p->pid);
        if (p->has_uptime_ms)
            cJSON_AddNumberToObject(o, "uptime_ms", (double)p->uptime_ms);
        cJSON_AddNumberToObject(o, "restarts", p->has_restarts ? p->restarts : 0);
        if (p->last_failure != NULL)
            cJSON_AddStringToObject(o, "last_failure", p->last_failure);
        if (p->has_last_failure_age_ms)
            cJSON_AddNumberToObject(o, "last_failure_age_ms", (double)p->last_failure_age_ms);
        if (p->dll_path != NULL)
            cJSON_AddStringToObject(o, "dll_path", p->dll_path);
        if (p->has_hooks)
            cJSON_AddItemToObject(o, "hooks", hooks_array(p->hooks));
        if (p->has_generation)
            cJSON_AddNumberToObject(o, "generation", p->generation);
    }
    text = cJSON_Print(root);
    cJSON_Delete(root);
    if (text == NULL)
        return -1;
    fprintf(out, "%s\n", text);
    cJSON_free(text);
    return 0;
}
