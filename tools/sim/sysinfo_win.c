/* sysinfo_win.c — the number of logical processors. */
#include "dcbsim.h"

#include <windows.h>

unsigned sim_cpu_count(void)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return si.dwNumberOfProcessors > 0 ? (unsigned)si.dwNumberOfProcessors : 1u;
}
