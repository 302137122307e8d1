/*
 * install_posix.c — install and uninstall exist on Windows only: on Linux
 * dcb runs from the build tree or a service manager unit, and there is no
 * CalloutDlls to edit.
 */
#include "dcbctl.h"

static int always_elevated(void)
{
    return 1;
}

int (*ctl_is_elevated)(void) = always_elevated;

static int windows_only(const char *what, FILE *err)
{
    fprintf(err,
            "dcbctl: %s is Windows-only: it edits the DHCP Server's CalloutDlls and "
            "registers the broker service\n",
            what);
    return CTL_EXIT_USAGE;
}

int ctl_install(const ctl_args_t *a, FILE *out, FILE *err)
{
    (void)a;
    (void)out;
    return windows_only("install", err);
}

int ctl_uninstall(const ctl_args_t *a, FILE *out, FILE *err)
{
    (void)a;
    (void)out;
    return windows_only("uninstall", err);
}
