/*
 * plat_posix.c — the few platform details of dcbctl on Linux: nothing to
 * prepare; terminals speak UTF-8 and ANSI, and argv is already UTF-8.
 */
#include "dcbctl.h"

void ctl_plat_console_init(FILE *out)
{
    (void)out;
}

void ctl_plat_utf8_args(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
}
