/*
 * validate.c — field-level checks on decoded messages.
 *
 * protobuf-c guarantees that a message is well-formed and has its required
 * fields; this file guarantees that its values make sense, so no side ever
 * acts on a length, offset, hook number or code that is out of range. A
 * message that fails here is a protocol violation by its sender.
 */
#include "dcb_proto.h"

#include "dcb_callout.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return DCB_E_INVALID;                                                                  \
    } while (0)

static int check_header(const Dcb__EventHeader *h)
{
    CHECK(h != NULL);
    CHECK(h->deadline_us <= DCB_MAX_DEADLINE_US);
    return 0;
}

static int check_packet(const ProtobufCBinaryData *p, const dcb_limits_t *lim)
{
    CHECK(p->len <= lim->max_packet);
    CHECK(p->len == 0 || p->data != NULL);
    return 0;
}

/*
 * An offset+1 into packet||extra (0 = NULL) must leave room for len bytes,
 * since the receiver rebuilds a pointer from it and the plugin reads len.
 */
static int check_span(uint32_t has, uint32_t off1, uint32_t len, size_t total)
{
    if (!has || off1 == 0)
        return 0;
    CHECK(off1 - 1 <= total && len <= total - (off1 - 1));
    return 0;
}

static int check_options(const Dcb__ServerOptions *o, size_t pkt_len, const dcb_limits_t *lim)
{
    size_t total;

    CHECK(o != NULL);
    CHECK(!o->has_extra || o->extra.len <= lim->max_packet);
    total = pkt_len + (o->has_extra ? o->extra.len : 0);
    /* Lengths are checked with their pointers; a length with no pointer is harmless. */
    CHECK(!o->has_client_hardware_address_length || o->client_hardware_address_length <= 255);
    CHECK(!o->has_client_hardware_address_type || o->client_hardware_address_type <= 255);
    CHECK(!o->has_ds_domain_name_requested || o->ds_domain_name_requested <= 1);
    CHECK(check_span(o->has_message_type, o->message_type, 1, total) == 0);
    CHECK(check_span(o->has_subnet_mask, o->subnet_mask, 4, total) == 0);
    CHECK(check_span(o->has_requested_address, o->requested_address, 4, total) == 0);
    CHECK(check_span(o->has_request_lease_time, o->request_lease_time, 4, total) == 0);
    CHECK(check_span(o->has_overlay_fields, o->overlay_fields, 1, total) == 0);
    CHECK(check_span(o->has_router_address, o->router_address, 4, total) == 0);
    CHECK(check_span(o->has_server, o->server, 4, total) == 0);
    CHECK(check_span(o->has_scope_id, o->scope_id, 4, total) == 0);
    CHECK(check_span(o->has_parameter_request_list, o->parameter_request_list,
                     o->parameter_request_list_length, total) == 0);
    CHECK(check_span(o->has_machine_name, o->machine_name, o->machine_name_length, total) == 0);
    CHECK(check_span(o->has_client_hardware_address, o->client_hardware_address,
                     o->client_hardware_address_length, total) == 0);
    CHECK(check_span(o->has_class_identifier, o->class_identifier, o->class_identifier_length,
                     total) == 0);
    CHECK(check_span(o->has_vendor_class, o->vendor_class, o->vendor_class_length, total) == 0);
    CHECK(check_span(o->has_dns_name, o->dns_name, o->dns_name_length, total) == 0);
    CHECK(check_span(o->has_ds_domain_name, o->ds_domain_name, o->ds_domain_name_len, total) ==
          0);
    return 0;
}

static int check_hist(const Dcb__Histogram *h)
{
    if (h == NULL)
        return 0;
    CHECK(h->n_bucket == h->n_count);
    for (size_t i = 0; i < h->n_bucket; i++)
        CHECK(h->bucket[i] < (1u << 16));
    return 0;
}

static int check_shim_hook_stats(const Dcb__ShimHookStats *s)
{
    CHECK(s != NULL && s->hook < DCB_HOOK_COUNT);
    return check_hist(s->waited);
}

/*
 * Both ends speak the same schema (the frame header carries its version), so
 * a field this side does not know is a violation, not something to carry
 * along: protobuf-c would keep it, re-encode it, and (for field number 0)
 * even produce a message it cannot read back.
 */
static int has_unknown_fields(const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;

    if (m->n_unknown_fields != 0 || depth > 8)
        return 1;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;

        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++)
                if (has_unknown_fields(items[k], depth + 1))
                    return 1;
        } else {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)(base + f->offset);
            if (sub != NULL && has_unknown_fields(sub, depth + 1))
                return 1;
        }
    }
    return 0;
}

int dcb_msg_validate(uint8_t type, const ProtobufCMessage *m, const dcb_limits_t *lim)
{
    if (has_unknown_fields(m, 0))
        return DCB_E_INVALID;
    switch (type) {
    case DCB__FRAME_TYPE__FT_HELLO: {
        const Dcb__Hello *h = (const Dcb__Hello *)m;
        CHECK(h->role == DCB__CONN_ROLE__ROLE_REQUEST || h->role == DCB__CONN_ROLE__ROLE_NOTIFY);
        CHECK(h->n_chain_dlls <= 64);
        return 0;
    }
    case DCB__FRAME_TYPE__FT_WELCOME: {
        const Dcb__Welcome *w = (const Dcb__Welcome *)m;
        CHECK(w->subscribed_hooks < (1u << DCB_HOOK_COUNT));
        return 0;
    }
    case DCB__FRAME_TYPE__FT_SUBSCRIPTION:
        CHECK(((const Dcb__Subscription *)m)->subscribed_hooks < (1u << DCB_HOOK_COUNT));
        return 0;
    case DCB__FRAME_TYPE__FT_SHIM_STATS: {
        const Dcb__ShimStats *s = (const Dcb__ShimStats *)m;
        CHECK(s->n_hooks <= DCB_HOOK_COUNT);
        for (size_t i = 0; i < s->n_hooks; i++)
            CHECK(check_shim_hook_stats(s->hooks[i]) == 0);
        return 0;
    }
    case DCB__FRAME_TYPE__FT_EV_CONTROL: {
        const Dcb__ControlEvent *e = (const Dcb__ControlEvent *)m;
        CHECK(check_header(e->hdr) == 0);
        CHECK(e->control_code >= DHCP_CONTROL_START && e->control_code <= DHCP_CONTROL_CONTINUE);
        return 0;
    }
    case DCB__FRAME_TYPE__FT_EV_NEWPKT: {
        const Dcb__NewPktEvent *e = (const Dcb__NewPktEvent *)m;
        CHECK(check_header(e->hdr) == 0);
        return check_packet(&e->packet, lim);
    }
    case DCB__FRAME_TYPE__FT_EV_PKTDROP: {
        const Dcb__PktDropEvent *e = (const Dcb__PktDropEvent *)m;
        CHECK(check_header(e->hdr) == 0);
        return check_packet(&e->packet, lim);
    }
    case DCB__FRAME_TYPE__FT_EV_PKTSEND: {
        const Dcb__PktSendEvent *e = (const Dcb__PktSendEvent *)m;
        CHECK(check_header(e->hdr) == 0);
        return check_packet(&e->packet, lim);
    }
    case DCB__FRAME_TYPE__FT_EV_ADDRESSDEL: {
        const Dcb__AddressDelEvent *e = (const Dcb__AddressDelEvent *)m;
        CHECK(check_header(e->hdr) == 0);
        return check_packet(&e->packet, lim);
    }
    case DCB__FRAME_TYPE__FT_EV_ADDRESSOFFER: {
        const Dcb__AddressOfferEvent *e = (const Dcb__AddressOfferEvent *)m;
        CHECK(check_header(e->hdr) == 0);
        return check_packet(&e->packet, lim);
    }
    case DCB__FRAME_TYPE__FT_EV_HANDLEOPTIONS: {
        const Dcb__HandleOptionsEvent *e = (const Dcb__HandleOptionsEvent *)m;
        CHECK(check_header(e->hdr) == 0);
        CHECK(check_packet(&e->packet, lim) == 0);
        return check_options(e->options, e->packet.len, lim);
    }
    case DCB__FRAME_TYPE__FT_EV_DELETECLIENT: {
        const Dcb__DeleteClientEvent *e = (const Dcb__DeleteClientEvent *)m;
        CHECK(check_header(e->hdr) == 0);
        /* The hardware address length is a ULONG in the API; 255 is DHCP's own cap. */
        CHECK(!e->has_hw_address || e->hw_address.len <= 255);
        return 0;
    }
    case DCB__FRAME_TYPE__FT_NEWPKT_DECISION: {
        const Dcb__NewPktDecision *d = (const Dcb__NewPktDecision *)m;
        CHECK(d->request_id != 0);
        CHECK(!d->has_packet || (d->packet.len > 0 && check_packet(&d->packet, lim) == 0));
        return 0;
    }
    case DCB__FRAME_TYPE__FT_PKTSEND_DECISION: {
        const Dcb__PktSendDecision *d = (const Dcb__PktSendDecision *)m;
        CHECK(d->request_id != 0);
        CHECK(!d->has_packet || (d->packet.len > 0 && check_packet(&d->packet, lim) == 0));
        return 0;
    }
    case DCB__FRAME_TYPE__FT_HOST_LOAD: {
        const Dcb__HostLoad *l = (const Dcb__HostLoad *)m;
        CHECK(l->plugin[0] != '\0' && l->dll_path[0] != '\0');
        CHECK(!l->has_threads || (l->threads >= 1 && l->threads <= 256));
        return 0;
    }
    case DCB__FRAME_TYPE__FT_HOST_LOADED:
        CHECK(((const Dcb__HostLoaded *)m)->hooks < (1u << DCB_HOOK_COUNT));
        return 0;
    case DCB__FRAME_TYPE__FT_HOST_RESULT: {
        const Dcb__HostResult *r = (const Dcb__HostResult *)m;
        CHECK(r->request_id != 0 && r->hook < DCB_HOOK_COUNT);
        CHECK(!r->has_packet || (r->packet.len > 0 && check_packet(&r->packet, lim) == 0));
        return 0;
    }
    case DCB__FRAME_TYPE__FT_PING:
    case DCB__FRAME_TYPE__FT_PONG:
        return 0;
    case DCB__FRAME_TYPE__FT_CTL_REQUEST: {
        const Dcb__ControlRequest *r = (const Dcb__ControlRequest *)m;
        CHECK(r->command > DCB__CONTROL_COMMAND__CC_NONE &&
              r->command <= DCB__CONTROL_COMMAND__CC_RESET_STATS);
        CHECK(!r->has_hook || r->hook < DCB_HOOK_COUNT);
        CHECK(!r->has_timeout_ms || r->timeout_ms <= DCB_MAX_DEADLINE_US / 1000u);
        return 0;
    }
    case DCB__FRAME_TYPE__FT_CTL_RESPONSE: {
        const Dcb__ControlResponse *r = (const Dcb__ControlResponse *)m;
        if (r->stats_report != NULL) {
            for (size_t i = 0; i < r->stats_report->n_entries; i++) {
                CHECK(r->stats_report->entries[i]->hook < DCB_HOOK_COUNT);
                CHECK(check_hist(r->stats_report->entries[i]->latency) == 0);
            }
            for (size_t i = 0; i < r->stats_report->n_shim; i++)
                CHECK(check_shim_hook_stats(r->stats_report->shim[i]) == 0);
        }
        return 0;
    }
    default:
        return DCB_E_TYPE;
    }
}
