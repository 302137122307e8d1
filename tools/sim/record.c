/*
 * record.c — the outcome of every packet, keyed by its sequence number in
 * the source, so that two runs of the same seeded traffic (say, plugins
 * in-process and plugins behind dcb) can be compared byte for byte.
 *
 * Workers finish packets in any order; entries live in fixed chunks found
 * by sequence number, so writing one never moves another, and the file is
 * always written in sequence order. One line per packet:
 *
 *   <seq> plugin-drop
 *   <seq> server-drop <code, hex>
 *   <seq> reply <length> <bytes, hex>
 *   <seq> no-reply
 *   <seq> unsent <length>
 *   <seq> oversized
 *   <seq> abandoned
 */
#include "dcbsim.h"
#include "dcb_os.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_BITS 14
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS (1u << 18) /* 4 G packets */

typedef struct rec_entry {
    uint8_t re_outcome;
    uint32_t re_code;
    uint32_t re_len;
    uint8_t *re_reply;
} rec_entry_t;

struct sim_record {
    dcb_mutex_t r_lock;
    rec_entry_t *r_chunks[MAX_CHUNKS];
};

sim_record_t *sim_record_new(void)
{
    sim_record_t *r = calloc(1, sizeof(*r));
    if (r != NULL)
        dcb_mutex_init(&r->r_lock);
    return r;
}

void sim_record_free(sim_record_t *r)
{
    if (r == NULL)
        return;
    for (size_t c = 0; c < MAX_CHUNKS; c++) {
        if (r->r_chunks[c] == NULL)
            continue;
        for (size_t i = 0; i < CHUNK_SIZE; i++)
            free(r->r_chunks[c][i].re_reply);
        free(r->r_chunks[c]);
    }
    dcb_mutex_destroy(&r->r_lock);
    free(r);
}

const char *sim_outcome_name(sim_outcome_t o)
{
    static const char *const names[] = {"none",     "plugin-drop", "server-drop", "reply",
                                        "no-reply", "unsent",      "oversized",   "abandoned"};
    return (unsigned)o < sizeof(names) / sizeof(names[0]) ? names[o] : "?";
}

int sim_record_set(sim_record_t *r, uint64_t seq, sim_outcome_t o, uint32_t code,
                   const uint8_t *reply, size_t len)
{
    size_t c = (size_t)(seq >> CHUNK_BITS);
    if (c >= MAX_CHUNKS)
        return -1;
    uint8_t *copy = NULL;
    if (reply != NULL && len > 0) {
        copy = malloc(len);
        if (copy == NULL)
            return -1;
        memcpy(copy, reply, len);
    }
    dcb_mutex_lock(&r->r_lock);
    if (r->r_chunks[c] == NULL) {
        r->r_chunks[c] = calloc(CHUNK_SIZE, sizeof(rec_entry_t));
        if (r->r_chunks[c] == NULL) {
            dcb_mutex_unlock(&r->r_lock);
            free(copy);
            return -1;
        }
    }
    rec_entry_t *e = &r->r_chunks[c][seq & (CHUNK_SIZE - 1)];
    free(e->re_reply);
    e->re_outcome = (uint8_t)o;
    e->re_code = code;
    e->re_len = (uint32_t)len;
    e->re_reply = copy;
    dcb_mutex_unlock(&r->r_lock);
    return 0;
}

int sim_record_write(const sim_record_t *r, FILE *f, uint64_t count)
{
    static const char hex[] = "0123456789abcdef";
    for (uint64_t seq = 0; seq < count; seq++) {
        const rec_entry_t *chunk = r->r_chunks[seq >> CHUNK_BITS];
        const rec_entry_t *e = chunk != NULL ? &chunk[seq & (CHUNK_SIZE - 1)] : NULL;
        sim_outcome_t o = e != NULL ? (sim_outcome_t)e->re_outcome : SIM_OUT_NONE;
        fprintf(f, "%llu %s", (unsigned long long)seq, sim_outcome_name(o));
        if (o == SIM_OUT_SERVER_DROP) {
            fprintf(f, " 0x%x", (unsigned)e->re_code);
        } else if (o == SIM_OUT_UNSENT) {
            fprintf(f, " %u", (unsigned)e->re_len);
        } else if (o == SIM_OUT_REPLY) {
            fprintf(f, " %u ", (unsigned)e->re_len);
            for (uint32_t i = 0; i < e->re_len && e->re_reply != NULL; i++) {
                fputc(hex[e->re_reply[i] >> 4], f);
                fputc(hex[e->re_reply[i] & 15], f);
            }
        }
        fputc('\n', f);
    }
    return ferror(f) ? -1 : 0;
}
