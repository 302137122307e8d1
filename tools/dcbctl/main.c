/*
 * main.c — dcbctl: the operator's tool for dcb. See ctl.c and `dcbctl --help`.
 */
#include "dcbctl.h"

int main(int argc, char **argv)
{
    ctl_plat_utf8_args(&argc, &argv);
    ctl_plat_console_init(stdout);
    return ctl_main(argc, argv, stdout, stderr);
}
