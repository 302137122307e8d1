/*
 * bench_codec.c — encode + decode of a NewPkt event carrying a 548-byte
 * packet, the shape of every request on the hot path. Prints ns/op; the
 * target on the Linux rig is <= 1 us. Not a timed test: the machines are
 * shared, so the figure is reported, never asserted.
 *   bench-codec [iterations]
 */
#include <stdio.h>
#include <stdlib.h>

#include "dcb_os.h"
#include "dcb_proto.h"
#include "samples.h"

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 1000000;
    static uint8_t frame[4096];
    const dcb_limits_t lim = {DCB_MAX_FRAME_EVENT, DCB_MAX_PACKET_DEFAULT};
    size_t cap = dcb_arena_size_for(lim.max_frame);
    void *mem = malloc(cap);
    dcb_arena_t arena;
    dcb_sample_t s;
    uint64_t t0, t_enc = 0, t_dec = 0, best = UINT64_MAX;
    long rounds = 5;

    if (mem == NULL || iters <= 0 || !dcb_sample_build(DCB__FRAME_TYPE__FT_EV_NEWPKT, &s))
        return 1;
    dcb_arena_init(&arena, mem, cap);
    /* Best of several rounds: the floor is what the code costs, the rest is noise. */
    for (long r = 0; r < rounds; r++) {
        uint64_t enc = 0, dec = 0;
        for (long i = 0; i < iters; i++) {
            dcb_msg_t m;
            int n;
            t0 = dcb_now_ns();
            n = dcb_frame_encode(DCB__FRAME_TYPE__FT_EV_NEWPKT, s.msg, frame, sizeof(frame));
            enc += dcb_now_ns() - t0;
            t0 = dcb_now_ns();
            if (n < 0 || dcb_frame_decode(frame, (size_t)n, &lim, &arena, &m) != 0) {
                fprintf(stderr, "bench-codec: round trip failed\n");
                return 1;
            }
            dec += dcb_now_ns() - t0;
        }
        if (enc + dec < best) {
            best = enc + dec;
            t_enc = enc;
            t_dec = dec;
        }
    }
    printf("codec NewPkt(548 B packet): encode %.0f ns/op, decode %.0f ns/op, "
           "encode+decode %.0f ns/op (target <= 1000 ns; best of %ld x %ld)\n",
           (double)t_enc / (double)iters, (double)t_dec / (double)iters,
           (double)best / (double)iters, rounds, iters);
    free(mem);
    return 0;
}
