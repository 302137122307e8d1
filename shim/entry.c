/*
 * entry.c — DhcpServerCalloutEntry, and starting and stopping the shim.
 *
 * The entry point rejects callout versions other than 0 and otherwise
 * always succeeds: a missing broker, a broken configuration or a failed
 * allocation must never stop DHCP from starting. It reads the settings,
 * keeps ChainDlls (the DLLs the server listed after the shim, which the
 * broker hosts) for Hello, starts the two background threads and fills every
 * hook. STOP undoes all of it, because the server calls FreeLibrary next.
 */
#include "shim.h"

#include <stdlib.h>
#include <string.h>

/* ChainDlls is read up to this many UTF-16 units; the server's list is far shorter. */
#define CHAIN_MAX_UNITS 65536u
/* Hello carries at most this many DLLs (the broker's limit, validate.c). */
#define CHAIN_MAX_ITEMS 64u
/* What STOP may spend sending what is still queued (the STOP event among it). */
#define STOP_FLUSH_MS 250u

_Atomic uint32_t dcb__state;
dcb__cfg_t dcb__cfg;
uint64_t dcb__instance_id;
_Atomic uint32_t dcb__max_packet;
extern _Atomic uint32_t dcb__inflight;

static _Atomic uint64_t next_request_id;
/* Set by the one STOP that tears down; cleared at start. */
static _Atomic int stop_claimed;
static char **chain;
static size_t n_chain;

uint64_t dcb__next_request_id(void)
{
    return atomic_fetch_add_explicit(&next_request_id, 1, memory_order_relaxed) + 1;
}

void dcb__chain_get(char ***items, size_t *n)
{
    *items = chain;
    *n = n_chain;
}

void dcb__subscribe_from(int role, uint32_t hooks)
{
    uint32_t old, want;

    /* The NOTIFY connection carries the live set; a REQUEST Welcome only stands in for it. */
    if (role == DCB__CONN_ROLE__ROLE_REQUEST && dcb__notify_up())
        return;
    hooks &= DCB__HOOKS_ALL;
    old = atomic_load(&dcb__state);
    do {
        want = (old & ~DCB__HOOKS_ALL) | hooks;
    } while (!atomic_compare_exchange_weak(&dcb__state, &old, want));
    if ((old & DCB__HOOKS_ALL) != hooks)
        dcb__log(DCB_LOG_INFO, "subscribed hooks: 0x%02x", hooks);
}

static void chain_load(LPWSTR dlls)
{
    char **items = NULL;
    int n;

    n = dcb_multisz_to_utf8((const uint16_t *)dlls, CHAIN_MAX_UNITS, &items);
    if (n < 0) {
        dcb__log(DCB_LOG_ERROR, "ChainDlls is not a valid list; the broker gets none");
        n = 0;
    }
    if ((size_t)n > CHAIN_MAX_ITEMS) {
        dcb__log(DCB_LOG_ERROR, "ChainDlls lists %d DLLs; only the first %u are passed on", n,
                 CHAIN_MAX_ITEMS);
        for (size_t i = CHAIN_MAX_ITEMS; i < (size_t)n; i++)
            free(items[i]);
        n = (int)CHAIN_MAX_ITEMS;
    }
    chain = items;
    n_chain = (size_t)n;
}

/*
 * The server sends no packet before the entry point returns, so a short,
 * bounded wait here for the broker's connections costs DHCP nothing and
 * spares the first packets after a start the default decision.
 */
static void wait_for_broker(void)
{
    uint64_t limit = dcb_now_ns() + (uint64_t)dcb__cfg.c_startup_wait_ms * 1000000u;

    while (!(dcb__notify_up() && dcb__pool_ready())) {
        if (dcb_now_ns() >= limit) {
            dcb__log(DCB_LOG_WARN,
                     "broker %s not ready within %u ms; default decisions until it is",
                     dcb__cfg.c_pipe, dcb__cfg.c_startup_wait_ms);
            return;
        }
        dcb_sleep_ms(1);
    }
}

static void shim_start(LPWSTR dlls)
{
    dcb__cfg_load(&dcb__cfg);
    dcb__stats_reset();
    dcb__pkt_init();
    dcb__breaker_init(&dcb__cfg);
    dcb__instance_id = dcb__plat_random64();
    atomic_store(&dcb__max_packet, dcb__cfg.c_max_packet);
    atomic_store(&dcb__inflight, 0);
    chain_load(dlls);
    atomic_store(&stop_claimed, 0);
    /* Until the broker says otherwise every hook is assumed wanted. */
    atomic_store(&dcb__state, DCB__RUNNING | DCB__HOOKS_ALL);
    dcb__notify_start();
    dcb__pool_start();
    wait_for_broker();
    dcb__log_note("dcbshim %s started: broker %s, %zu chained DLL(s), NewPkt %u ms (%s), "
                  "PktSend %u ms, queue %u, max packet %u",
                  DCB_SHIM_VERSION, dcb__cfg.c_pipe, n_chain, dcb__cfg.c_newpkt_deadline_ms,
                  dcb__cfg.c_fail_closed ? "fail-closed" : "fail-open",
                  dcb__cfg.c_pktsend_deadline_ms, dcb__cfg.c_queue_size, dcb__cfg.c_max_packet);
}

void dcb__shim_stop(void)
{
    uint64_t limit;
    uint32_t waited_for;

    if (!(atomic_load(&dcb__state) & DCB__RUNNING) || atomic_exchange(&stop_claimed, 1))
        return;
    /* Queued first, so the flush below carries it to the broker. */
    dcb__notify_control(DHCP_CONTROL_STOP);
    atomic_fetch_and(&dcb__state, ~DCB__RUNNING);
    /* No new hook starts now; those still running finish within their deadlines. */
    waited_for = dcb__cfg.c_newpkt_deadline_ms > dcb__cfg.c_pktsend_deadline_ms
                     ? dcb__cfg.c_newpkt_deadline_ms
                     : dcb__cfg.c_pktsend_deadline_ms;
    limit = dcb_now_ns() + ((uint64_t)waited_for + 1000u) * 1000000u;
    while (atomic_load(&dcb__inflight) != 0 && dcb_now_ns() < limit)
        dcb_sleep_ms(1);
    dcb__notify_stop(STOP_FLUSH_MS);
    if (atomic_load(&dcb__inflight) != 0) {
        /* Leaking is better than freeing what a running hook uses. */
        dcb__log(DCB_LOG_ERROR, "hooks still running at STOP; their memory is left alone");
        return;
    }
    dcb__pool_stop();
    dcb__pkt_free_all();
    dcb_strlist_free(chain, n_chain);
    chain = NULL;
    n_chain = 0;
    dcb__log_note("dcbshim stopped");
    dcb__log_close();
}

DCB_CALLOUT_EXPORT DWORD WINAPI DhcpServerCalloutEntry(LPWSTR ChainDlls, DWORD CalloutVersion,
                                                       LPDHCP_CALLOUT_TABLE CalloutTbl)
{
    if (CalloutVersion != 0)
        return ERROR_NOT_SUPPORTED;
    if (!(atomic_load(&dcb__state) & DCB__RUNNING))
        shim_start(ChainDlls);
    if (CalloutTbl != NULL)
        dcb__hooks_fill(CalloutTbl);
    return ERROR_SUCCESS;
}
