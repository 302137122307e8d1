/*
 * rawchain.h — the physical limit dcb is measured against: a request that
 * crosses two process boundaries and comes back (client -> relay -> echo
 * -> relay -> client) over the same kind of local channel dcb uses (Unix
 * stream sockets on Linux, byte-mode named pipes on Windows), with the same
 * message sizes, and no protocol at all: blocking writes and reads.
 */
#ifndef DCB_RAWCHAIN_H
#define DCB_RAWCHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "dcb_hist.h"

/* What the relay and echo processes cost, measured when they exit. */
typedef struct rawchain_stats {
    uint64_t rs_cpu_ns;  /* relay + echo, user + system */
    uint64_t rs_peak_kb; /* the larger of the two peaks */
} rawchain_stats_t;

/*
 * Runs n round trips of req_size bytes out and resp_size bytes back through
 * a two-hop chain of fresh processes, recording each round trip (ns) in h.
 * st may be NULL. Returns 0 or a negative error.
 */
int rawchain_run(size_t req_size, size_t resp_size, long n, dcb_hist_t *h, rawchain_stats_t *st);

/*
 * Windows starts the relay and the echo by re-executing this program with a
 * role argument: main() calls this first. Returns -1 when argv names no
 * role (always, on POSIX, where the chain forks), else the role's exit status.
 */
int rawchain_child(int argc, char **argv);

#endif
