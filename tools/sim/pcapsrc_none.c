/*
 * pcapsrc_none.c — builds without libpcap (Windows) cannot replay captures.
 */
#include "dcbsim.h"

#include <stdio.h>

int sim_source_pcap_supported(void)
{
    return 0;
}

sim_source_t *sim_source_pcap(const char *path, char *err, size_t errlen)
{
    snprintf(err, errlen, "pcap replay (%s) needs a Linux build with libpcap", path);
    return NULL;
}
