/*
 * registry_posix.c — there is no registry off Windows: the DLL list comes
 * from the command line or a list file.
 */
#include "dcbsim.h"

#include <stdio.h>

int sim_registry_supported(void)
{
    return 0;
}

int sim_registry_read(sim_dlllist_t *l, int *enabled, char *err, size_t errlen)
{
    (void)l;
    *enabled = 0;
    snprintf(err, errlen, "the registry exists only on Windows; use --dll or --dlls-file");
    return -1;
}

int sim_registry_write(const sim_dlllist_t *l, int enabled, char *err, size_t errlen)
{
    (void)l;
    (void)enabled;
    snprintf(err, errlen, "the registry exists only on Windows");
    return -1;
}

int sim_registry_clear(char *err, size_t errlen)
{
    snprintf(err, errlen, "the registry exists only on Windows");
    return -1;
}
