/*
 * source.c — the seeded traffic generator as a packet source. (The pcap
 * source lives in pcapsrc_*.c.)
 */
#include "dcbsim.h"

#include <stdlib.h>

typedef struct traffic_source {
    sim_source_t ts_base;
    sim_traffic_t *ts_traffic;
} traffic_source_t;

static int traffic_next(sim_source_t *s, uint8_t *buf, size_t cap, size_t *len, int *kind)
{
    traffic_source_t *ts = (traffic_source_t *)s;
    sim_pkt_kind_t k = SIM_KIND_DISCOVER;
    *len = sim_traffic_next(ts->ts_traffic, buf, cap, &k);
    if (kind != NULL)
        *kind = (int)k;
    return SIM_SOURCE_PACKET;
}

static void traffic_close(sim_source_t *s)
{
    traffic_source_t *ts = (traffic_source_t *)s;
    sim_traffic_free(ts->ts_traffic);
    free(ts);
}

sim_source_t *sim_source_traffic(const sim_traffic_cfg_t *cfg)
{
    traffic_source_t *ts = calloc(1, sizeof(*ts));
    if (ts == NULL)
        return NULL;
    ts->ts_traffic = sim_traffic_new(cfg);
    if (ts->ts_traffic == NULL) {
        free(ts);
        return NULL;
    }
    ts->ts_base.src_next = traffic_next;
    ts->ts_base.src_close = traffic_close;
    ts->ts_base.src_name = "generated";
    return &ts->ts_base;
}
