/*
 * stats.c — what a run counts: packets, replies, drops by reason, contract
 * violations, and per-hook latency as the calling thread saw it. Counters
 * are relaxed atomics and histograms are dcb_hist: workers update them
 * without a lock.
 */
#include "dcbsim.h"

#include <stdlib.h>

const char *sim_hook_name(dcb_hook_t h)
{
    static const char *const names[DCB_HOOK_COUNT] = {
        "Control",    "NewPkt",       "PktDrop",       "PktSend",
        "AddressDel", "AddressOffer", "HandleOptions", "DeleteClient"};
    return (unsigned)h < DCB_HOOK_COUNT ? names[h] : "?";
}

const char *sim_violation_name(sim_violation_t v)
{
    static const char *const names[SIM_V_COUNT] = {
        "wrote_past_packet_size",   "grew_packet_in_place",   "packet_size_past_buffer",
        "replaced_size_too_big",    "replaced_null_or_empty", "drop_hook_changed_packet",
        "readonly_packet_modified", "reserved_written",       "server_options_outside_packet",
        "hw_address_modified"};
    return (unsigned)v < SIM_V_COUNT ? names[v] : "?";
}

unsigned sim_drop_slot(uint32_t code)
{
    if (code >= 1 && code <= 0x0C)
        return code;
    if (code == DHCP_DROP_GEN_FAILURE)
        return SIM_DROP_SLOT_GEN_FAILURE;
    return SIM_DROP_SLOT_OTHER;
}

const char *sim_drop_slot_name(unsigned slot)
{
    static const char *const names[SIM_DROP_SLOTS] = {
        "",          "DUPLICATE", "NOMEM",        "INTERNAL_ERROR", "TIMEOUT",
        "UNAUTH",    "PAUSED",    "NO_SUBNETS",   "INVALID",        "WRONG_SERVER",
        "NOADDRESS", "PROCESSED", "UNKNOWN_0x0C", "GEN_FAILURE",    "OTHER",
        ""};
    return slot < SIM_DROP_SLOTS ? names[slot] : "?";
}

sim_stats_t *sim_stats_new(void)
{
    /* Atomics and histograms start at zero: calloc is their initializer. */
    return calloc(1, sizeof(sim_stats_t));
}

void sim_stats_free(sim_stats_t *st)
{
    free(st);
}

uint64_t sim_stats_violations(const sim_stats_t *st)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < SIM_V_COUNT; i++)
        n += atomic_load_explicit(&st->st_violations[i], memory_order_relaxed);
    return n;
}
