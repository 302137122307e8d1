/*
 * lease.c — the emulated lease database: client key -> address, hardware
 * address and expiry. The server's lease scavenger walks it and calls
 * DhcpDeleteClientHook for each lease it removes. Callers hold the
 * database lock; nothing here locks.
 */
#include "dcbsim.h"

#include <stdlib.h>
#include <string.h>

#define LEASE_KEY_MAX 64
#define LEASE_BUCKETS 16384u

typedef struct lease {
    struct lease *l_next;
    uint64_t l_expiry_ns;
    uint32_t l_addr;
    uint32_t l_client_type;
    uint8_t l_keylen;
    uint8_t l_hwlen;
    uint8_t l_key[LEASE_KEY_MAX];
    uint8_t l_hw[16];
} lease_t;

struct sim_leases {
    lease_t *ls_buckets[LEASE_BUCKETS];
    size_t ls_count;
};

static uint32_t key_hash(const uint8_t *k, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= k[i];
        h *= 16777619u;
    }
    return h % LEASE_BUCKETS;
}

sim_leases_t *sim_leases_new(void)
{
    return calloc(1, sizeof(sim_leases_t));
}

void sim_leases_free(sim_leases_t *l)
{
    if (l == NULL)
        return;
    for (uint32_t i = 0; i < LEASE_BUCKETS; i++) {
        lease_t *e = l->ls_buckets[i];
        while (e != NULL) {
            lease_t *next = e->l_next;
            free(e);
            e = next;
        }
    }
    free(l);
}

static lease_t **find(sim_leases_t *l, const uint8_t *key, size_t keylen)
{
    lease_t **pp = &l->ls_buckets[key_hash(key, keylen)];
    for (; *pp != NULL; pp = &(*pp)->l_next)
        if ((*pp)->l_keylen == keylen && memcmp((*pp)->l_key, key, keylen) == 0)
            break;
    return pp;
}

int sim_leases_bind(sim_leases_t *l, const uint8_t *key, size_t keylen, uint32_t addr,
                    const uint8_t *hw, uint8_t hwlen, uint32_t client_type, uint64_t expiry_ns)
{
    if (keylen > LEASE_KEY_MAX)
        keylen = LEASE_KEY_MAX;
    if (hwlen > 16)
        hwlen = 16;
    lease_t **pp = find(l, key, keylen);
    lease_t *e = *pp;
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e == NULL)
            return -1;
        e->l_keylen = (uint8_t)keylen;
        memcpy(e->l_key, key, keylen);
        *pp = e;
        l->ls_count++;
    }
    e->l_addr = addr;
    e->l_client_type = client_type;
    e->l_expiry_ns = expiry_ns;
    e->l_hwlen = hwlen;
    if (hwlen > 0)
        memcpy(e->l_hw, hw, hwlen);
    return 0;
}

void sim_leases_remove(sim_leases_t *l, const uint8_t *key, size_t keylen)
{
    if (keylen > LEASE_KEY_MAX)
        keylen = LEASE_KEY_MAX;
    lease_t **pp = find(l, key, keylen);
    lease_t *e = *pp;
    if (e != NULL) {
        *pp = e->l_next;
        free(e);
        l->ls_count--;
    }
}

size_t sim_leases_expire(sim_leases_t *l, uint64_t now_ns, sim_lease_expired_fn fn, void *ctx)
{
    size_t n = 0;
    for (uint32_t i = 0; i < LEASE_BUCKETS; i++) {
        lease_t **pp = &l->ls_buckets[i];
        while (*pp != NULL) {
            lease_t *e = *pp;
            if (e->l_expiry_ns > now_ns) {
                pp = &e->l_next;
                continue;
            }
            *pp = e->l_next;
            l->ls_count--;
            if (fn != NULL)
                fn(ctx, e->l_addr, e->l_hw, e->l_hwlen, e->l_client_type);
            free(e);
            n++;
        }
    }
    return n;
}

size_t sim_leases_count(const sim_leases_t *l)
{
    return l->ls_count;
}
