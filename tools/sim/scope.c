/*
 * scope.c — the subnets the emulated server serves, and how it picks an
 * address for a client.
 *
 * Address choice is a pure function of the client's key and subnet, so
 * the traffic generator can predict it (its clients then REQUEST what the
 * server offered) and a run's replies do not depend on which worker thread
 * handled which packet. Conflict detection is emulated too: some addresses
 * "answer a ping", and the server moves on to the next candidate.
 */
#include "dcbsim.h"

#include <string.h>

static uint32_t ip4(unsigned a, unsigned b, unsigned c, unsigned d)
{
    return (uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | (uint32_t)d;
}

static void subnet(sim_subnet_t *s, uint32_t net, unsigned prefix, uint32_t router, uint32_t relay,
                   int full)
{
    memset(s, 0, sizeof(*s));
    s->s_mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
    s->s_net = net & s->s_mask;
    s->s_router = router;
    s->s_relay = relay;
    /* Leave .0-.9 of the first /24 for routers and servers. */
    s->s_first = s->s_net + 10;
    s->s_last = (s->s_net | ~s->s_mask) - 1;
    s->s_full = full;
}

void sim_scope_default(sim_scope_t *sc)
{
    memset(sc, 0, sizeof(*sc));
    sc->sc_server = ip4(10, 0, 0, 1);
    sc->sc_lease_secs = 86400;
    sc->sc_dns[0] = ip4(10, 0, 0, 2);
    sc->sc_dns[1] = ip4(10, 0, 0, 3);
    sc->sc_domain = "corp.example";
    subnet(&sc->sc_subnets[0], ip4(10, 0, 0, 0), 16, ip4(10, 0, 0, 254), 0, 0);
    subnet(&sc->sc_subnets[1], ip4(10, 1, 0, 0), 16, ip4(10, 1, 0, 1), ip4(10, 1, 0, 1), 0);
    subnet(&sc->sc_subnets[2], ip4(10, 2, 0, 0), 16, ip4(10, 2, 0, 1), ip4(10, 2, 0, 1), 0);
    subnet(&sc->sc_subnets[3], ip4(10, 3, 0, 0), 24, ip4(10, 3, 0, 1), ip4(10, 3, 0, 1), 1);
    sc->sc_nsubnets = 4;
}

const sim_subnet_t *sim_scope_subnet(const sim_scope_t *sc, uint32_t giaddr)
{
    for (size_t i = 0; i < sc->sc_nsubnets; i++)
        if (sc->sc_subnets[i].s_relay == giaddr)
            return &sc->sc_subnets[i];
    return NULL;
}

/* FNV-1a, 64 bits: cheap, stable across platforms, good enough here. */
static uint64_t fnv1a(const uint8_t *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint32_t sim_scope_candidate(const sim_subnet_t *sub, const uint8_t *key, size_t keylen,
                             unsigned attempt)
{
    uint8_t salt = (uint8_t)attempt;
    uint64_t h = fnv1a(key, keylen, 0xcbf29ce484222325ull);
    h = fnv1a(&salt, 1, h);
    uint32_t span = sub->s_last - sub->s_first + 1;
    return sub->s_first + (uint32_t)(h % span);
}

int sim_scope_in_use(uint32_t addr)
{
    uint8_t be[4];
    sim_put_be32(be, addr);
    /* About one address in 50 belongs to a host the server does not know. */
    return fnv1a(be, 4, 0x84222325cbf29ce4ull) % 50 == 0;
}

uint32_t sim_scope_address(const sim_subnet_t *sub, const uint8_t *key, size_t keylen,
                           int *conflicts)
{
    int n = 0;
    uint32_t addr = 0;
    if (!sub->s_full) {
        /* One ping per candidate, as with conflict detection set to 1. */
        for (unsigned attempt = 0; attempt < 8; attempt++) {
            addr = sim_scope_candidate(sub, key, keylen, attempt);
            if (!sim_scope_in_use(addr))
                break;
            n++;
        }
    }
    if (conflicts != NULL)
        *conflicts = n;
    return addr;
}
