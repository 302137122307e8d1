/* sysinfo_posix.c — the number of online CPUs. */
#include "dcbsim.h"

#include <unistd.h>

unsigned sim_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
}
