/*
 * top.c — `dcbctl top`: the stats table, redrawn every interval, with a
 * calls-per-second column from the difference to the previous screen.
 *
 * One connection serves every refresh (the control protocol allows several
 * requests in turn). When the broker goes away top keeps trying and says
 * so on screen: at 3 a.m. it is exactly while the broker restarts that the
 * operator is watching. With --iterations N it stops after N screens and
 * exits with the last screen's code (tests, scripts).
 */
#include "dcbctl.h"

#include <stdlib.h>
#include <string.h>

#include "dcb_os.h"

#define ANSI_HOME_CLEAR "\033[H\033[2J"

/* A copy of a report that outlives the client's arena (for the next rate). */
static Dcb__StatsReport *report_copy(const Dcb__StatsReport *r)
{
    size_t n = dcb__stats_report__get_packed_size(r);
    uint8_t *buf = malloc(n ? n : 1);
    Dcb__StatsReport *copy;

    if (buf == NULL)
        return NULL;
    dcb__stats_report__pack(r, buf);
    copy = dcb__stats_report__unpack(NULL, n, buf);
    free(buf);
    return copy;
}

int ctl_top(const ctl_args_t *a, const char *endpoint, FILE *out, FILE *err)
{
    Dcb__ControlRequest req = DCB__CONTROL_REQUEST__INIT;
    Dcb__StatsReport *prev = NULL;
    uint64_t prev_ns = 0;
    ctl_client_t cl;
    char why[640];
    int last = CTL_EXIT_OK;

    (void)err;
    ctl_plat_console_init(out);
    req.command = DCB__CONTROL_COMMAND__CC_STATS;
    ctl_client_init(&cl, endpoint, a->a_timeout_ms);
    for (long i = 0; a->a_iterations == 0 || i < a->a_iterations; i++) {
        Dcb__ControlResponse *resp = NULL;
        uint64_t now;
        int rc;

        if (i > 0)
            dcb_sleep_ms(a->a_interval_ms);
        rc = ctl_client_call(&cl, &req, &resp);
        now = dcb_now_ns();
        why[0] = '\0';
        if (rc != 0) {
            snprintf(why, sizeof(why), "%s", cl.cl_err);
            last = ctl_exit_for(rc);
        } else if (resp->status != DCB__CONTROL_STATUS__CS_OK) {
            char e[256];
            ctl_fmt_sanitize(resp->error, e, sizeof(e));
            snprintf(why, sizeof(why), "the broker refused: %s%s%s", ctl_status_name(resp->status),
                     e[0] ? ": " : "", e);
            last = ctl_exit_for_status(resp->status);
        } else if (resp->stats_report == NULL) {
            snprintf(why, sizeof(why), "bad answer: no statistics in the broker's response");
            last = CTL_EXIT_PROTOCOL;
        } else {
            last = CTL_EXIT_OK;
        }

        fputs(ANSI_HOME_CLEAR, out);
        fprintf(out, "dcbctl top: %s, every %.1fs (Ctrl-C to quit)\n\n", endpoint,
                a->a_interval_ms / 1000.0);
        if (last != CTL_EXIT_OK) {
            fprintf(out, "%s\n(retrying)\n", why);
            /* A new broker starts its counters again: no rate across the gap. */
            if (prev != NULL)
                dcb__stats_report__free_unpacked(prev, NULL);
            prev = NULL;
        } else {
            uint32_t ms = prev != NULL ? (uint32_t)((now - prev_ns) / 1000000u) : 0;
            ctl_out_stats_text(resp->stats_report, prev, ms ? ms : 1, out);
            if (prev != NULL)
                dcb__stats_report__free_unpacked(prev, NULL);
            prev = report_copy(resp->stats_report);
            prev_ns = now;
        }
        fflush(out);
    }
    if (prev != NULL)
        dcb__stats_report__free_unpacked(prev, NULL);
    ctl_client_free(&cl);
    return last;
}
