/*
 * htab.c — a chained hash table keyed by two 64-bit words, with intrusive
 * nodes: packets by (shim instance, packet id), host calls by request id.
 */
#include "broker.h"

#include <stdlib.h>

static size_t hash2(uint64_t k1, uint64_t k2)
{
    uint64_t h = k1 * 0x9E3779B97F4A7C15ull ^ (k2 + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full;

    h ^= h >> 31;
    return (size_t)h;
}

int htab_init(htab_t *t, size_t initial)
{
    size_t n = 16;

    while (n < initial)
        n <<= 1;
    t->ht_buckets = calloc(n, sizeof(*t->ht_buckets));
    if (t->ht_buckets == NULL)
        return UV_ENOMEM;
    t->ht_mask = n - 1;
    t->ht_count = 0;
    return 0;
}

void htab_free(htab_t *t)
{
    free(t->ht_buckets);
    t->ht_buckets = NULL;
    t->ht_count = 0;
}

static void grow(htab_t *t)
{
    size_t n = (t->ht_mask + 1) * 2;
    htab_node_t **nb = calloc(n, sizeof(*nb));

    /* Without memory the table stays correct, only slower. */
    if (nb == NULL)
        return;
    for (size_t i = 0; i <= t->ht_mask; i++) {
        htab_node_t *e = t->ht_buckets[i];
        while (e != NULL) {
            htab_node_t *next = e->hn_next;
            size_t j = hash2(e->hn_k1, e->hn_k2) & (n - 1);
            e->hn_next = nb[j];
            nb[j] = e;
            e = next;
        }
    }
    free(t->ht_buckets);
    t->ht_buckets = nb;
    t->ht_mask = n - 1;
}

void htab_insert(htab_t *t, htab_node_t *n, uint64_t k1, uint64_t k2)
{
    size_t i;

    if (t->ht_count >= t->ht_mask + 1)
        grow(t);
    n->hn_k1 = k1;
    n->hn_k2 = k2;
    i = hash2(k1, k2) & t->ht_mask;
    n->hn_next = t->ht_buckets[i];
    t->ht_buckets[i] = n;
    t->ht_count++;
}

htab_node_t *htab_find(const htab_t *t, uint64_t k1, uint64_t k2)
{
    htab_node_t *e = t->ht_buckets[hash2(k1, k2) & t->ht_mask];

    while (e != NULL && (e->hn_k1 != k1 || e->hn_k2 != k2))
        e = e->hn_next;
    return e;
}

void htab_remove(htab_t *t, htab_node_t *n)
{
    htab_node_t **pp = &t->ht_buckets[hash2(n->hn_k1, n->hn_k2) & t->ht_mask];

    while (*pp != NULL && *pp != n)
        pp = &(*pp)->hn_next;
    if (*pp == n) {
        *pp = n->hn_next;
        n->hn_next = NULL;
        t->ht_count--;
    }
}
