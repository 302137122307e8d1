/*
 * chain.h — the plugin chain, per-packet state, and event execution.
 *
 * Every event a shim sends becomes a chain_ev_t (a private copy of its
 * frame). Events of one packet are admitted in `seq` order (held briefly when
 * they arrive out of order) and then queued per plugin: each plugin of a
 * packet has a FIFO of slots, and only its head may be in flight at the
 * plugin's host. That one queue gives all the ordering guarantees: hooks of
 * a packet reach a plugin in server order, one at a time, and a request
 * (NewPkt, PktSend) that has not yet reached a plugin holds back the later
 * notifications of the same packet at that plugin.
 */
#ifndef DCB_CHAIN_H
#define DCB_CHAIN_H

#include "broker.h"
#include "host.h"

/* The plugins of the chain, in CalloutDlls order. Packets keep the chain they began on. */
struct chain {
    int c_refs;
    size_t c_n;
    broker_plugin_t *c_plugins[];
};

struct chain_ev {
    int ev_refs;
    uint8_t ev_type;
    uint8_t ev_hook;
    uint32_t ev_seq;
    uint32_t ev_deadline_us;
    uint32_t ev_code; /* PktDrop/Control code */
    uint64_t ev_packet_id;
    uint64_t ev_request_id;
    uint64_t ev_read_ns;
    blist_t ev_held;          /* in the packet's hold list */
    struct shimconn *ev_conn; /* requests: the connection awaiting the answer */
    size_t ev_len;
    uint8_t ev_frame[];
};

typedef enum slot_state {
    SLOT_WAIT = 0, /* a request step the chain has not reached yet */
    SLOT_READY,    /* may be sent when it is the head */
    SLOT_SENT,
} slot_state_t;

typedef struct chain_pkt chain_pkt_t;

typedef struct chain_slot {
    blist_t s_link; /* in the plugin's queue */
    host_call_t s_call;
    chain_ev_t *s_ev;   /* ref */
    chain_req_t *s_req; /* request step slots; NULL once the request let go */
    chain_pkt_t *s_pkt; /* NULL for Control events */
    size_t s_idx;       /* plugin index in the packet */
    host_t *s_target;   /* Control events: the host they go to (ref) */
    slot_state_t s_state;
    /*
     * STOP: the server called it after every hook of that shim instance's
     * packets, so it waits until those have reached the host (s_inst).
     */
    int s_barrier;
    uint64_t s_inst;
} chain_slot_t;

/* One plugin's view of one packet. */
typedef struct chain_pp {
    host_t *pp_host; /* the host that saw NewPkt (ref), or NULL: not seen */
    uint64_t pp_ctx; /* its PktContext */
    blist_t pp_queue;
    int pp_busy; /* the head is in flight */
} chain_pp_t;

struct chain_pkt {
    htab_node_t k_node;
    broker_t *k_broker;
    blist_t k_lru;
    uint64_t k_inst;
    uint64_t k_id;
    uint64_t k_last_ns;
    chain_t *k_chain; /* ref */
    uint32_t k_next_seq;
    int k_in_table;
    int k_orphan; /* NewPkt never seen: nothing is delivered */
    int k_done;   /* PROCESSED admitted (or STOP): freed once drained */
    uint32_t k_nslots;
    uint32_t k_nreqs;
    blist_t k_held; /* events waiting for predecessors, by seq */
    btimer_t k_hold_timer;
    size_t k_n;
    chain_pp_t k_pp[];
};

struct chain_req {
    blist_t r_link; /* b_reqs */
    blist_t r_runq;
    int r_queued;
    broker_t *r_broker;
    chain_ev_t *r_ev;
    chain_pkt_t *r_pkt;
    uint64_t r_answer_ns; /* answer no later than this */
    uint8_t *r_data;      /* the packet as modified so far */
    uint32_t r_len;
    uint32_t r_cap;
    int r_modified;
    int r_process_it;
    int r_default_reason; /* the first plugin that defaulted, and why */
    size_t r_pos;         /* plugin the chain is at */
    int r_step;           /* STEP_* of the current plugin */
    int r_step_reason;
    btimer_t r_timer;
    chain_slot_t **r_slots; /* per plugin, while queued */
    int r_finished;
};

int chain_init(broker_t *b);
void chain_shutdown(broker_t *b);

/* Replaces the current chain by this list of DLLs (reusing plugins that stay). */
int chain_set(broker_t *b, char **dlls, size_t n);
/* Whether the list names the current chain. */
int chain_matches(broker_t *b, char **dlls, size_t n);

/*
 * Takes one decoded, validated event frame from a shim connection (request
 * events carry their connection). Returns 0, or a negative value for a
 * protocol violation.
 */
int chain_on_event(broker_t *b, struct shimconn *conn, uint64_t inst, uint8_t type,
                   ProtobufCMessage *msg, const uint8_t *frame, size_t frame_len);
/* Advances every request that something happened to; call after each callback. */
void chain_run(broker_t *b);
/* A connection went away: its request is still run, its answer dropped. */
void chain_conn_gone(chain_ev_t *ev);
void chain_ev_unref(chain_ev_t *ev);
/* The set of hooks to subscribe, for Welcome and Subscription. */
uint32_t chain_subscribed(broker_t *b);
/* A host became ready: send what it needs (PAUSE when the server is paused). */
void chain_host_ready(host_t *h);
/* A host died or is stopping: drop its queued Control events. */
void chain_host_dead(host_t *h);

#endif /* DCB_CHAIN_H */
