/*
 * service_posix.c — there is no service control manager to talk to: the
 * broker runs in the foreground under whatever supervises it (systemd: see
 * dcb-broker.service beside this file), so --service is refused and the
 * hooks do nothing.
 */
#include "service.h"

#include <stdio.h>

int service_dispatch(int argc, char **argv, service_run_fn run)
{
    (void)argc;
    (void)argv;
    (void)run;
    fprintf(stderr, "dcb-broker: --service is for the Windows service control manager; here run "
                    "dcb-broker in the foreground under your service manager (for systemd, see "
                    "dcb-broker.service in the broker's sources)\n");
    return 2;
}

int service_attach(uv_loop_t *loop, service_stop_fn stop, void *arg, uint32_t stop_hint_ms)
{
    (void)loop;
    (void)stop;
    (void)arg;
    (void)stop_hint_ms;
    return 0;
}

void service_running(void)
{
}

void service_detach(void)
{
}
