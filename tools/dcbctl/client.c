/*
 * client.c — one ControlRequest out, one ControlResponse back.
 *
 * The response is read the way every dcb reader reads a frame: the 8-byte
 * header first, checked against DCB_MAX_FRAME_CONTROL before a byte of the
 * payload is buffered, then the payload into a buffer of exactly that size,
 * decoded into an arena sized for that length and validated by the codec.
 * Everything a broker (or whatever squats on its endpoint) sends is
 * untrusted; nothing here trusts a length it has not checked.
 */
#include "dcbctl.h"

#include <stdlib.h>
#include <string.h>

#include "dcb_os.h"

/* A request is a few dozen bytes; this leaves room for long plugin names. */
#define CTL_REQUEST_MAX 4096

static const dcb_limits_t ctl_limits = {DCB_MAX_FRAME_CONTROL, DCB_MAX_PACKET_DEFAULT};

void ctl_client_init(ctl_client_t *cl, const char *endpoint, uint32_t timeout_ms)
{
    memset(cl, 0, sizeof(*cl));
    cl->cl_endpoint = endpoint;
    cl->cl_timeout_ms = timeout_ms;
}

static void client_disconnect(ctl_client_t *cl)
{
    if (cl->cl_conn != NULL) {
        ctl_conn_close(cl->cl_conn);
        cl->cl_conn = NULL;
    }
}

void ctl_client_free(ctl_client_t *cl)
{
    client_disconnect(cl);
    free(cl->cl_buf);
    free(cl->cl_arena_mem);
    cl->cl_buf = NULL;
    cl->cl_arena_mem = NULL;
}

static const char *transport_words(int rc)
{
    switch (rc) {
    case CTL_E_TIMEOUT:
        return "no answer in time";
    case CTL_E_CLOSED:
        return "the broker closed the connection without an answer";
    case CTL_E_NOMEM:
        return "out of memory";
    default:
        return "I/O error";
    }
}

int ctl_client_call(ctl_client_t *cl, const Dcb__ControlRequest *req, Dcb__ControlResponse **resp)
{
    uint8_t out[CTL_REQUEST_MAX], hdrbuf[DCB_FRAME_HEADER_SIZE];
    uint64_t deadline = dcb_now_ns() + (uint64_t)cl->cl_timeout_ms * 1000000u;
    dcb_frame_hdr_t hdr;
    dcb_msg_t msg;
    size_t need;
    int n, rc;

    *resp = NULL;
    cl->cl_err[0] = '\0';
    n = dcb_frame_encode(DCB__FRAME_TYPE__FT_CTL_REQUEST, &req->base, out, sizeof(out));
    if (n < 0) {
        snprintf(cl->cl_err, sizeof(cl->cl_err), "cannot encode the request: %s",
                 dcb_proto_strerror(n));
        return CTL_E_PROTO;
    }
    if (cl->cl_conn == NULL) {
        char why[256];
        rc = ctl_conn_open(cl->cl_endpoint, deadline, &cl->cl_conn, why, sizeof(why));
        if (rc != 0) {
            if (rc == CTL_E_NOBROKER)
                snprintf(cl->cl_err, sizeof(cl->cl_err), "broker not running (%s: %s)",
                         cl->cl_endpoint, why);
            else if (rc == CTL_E_ACCESS)
                snprintf(cl->cl_err, sizeof(cl->cl_err),
                         "access denied to %s (%s); the control endpoint is for administrators",
                         cl->cl_endpoint, why);
            else if (rc == CTL_E_TIMEOUT)
                snprintf(cl->cl_err, sizeof(cl->cl_err), "timed out connecting to %s (%s)",
                         cl->cl_endpoint, why);
            else
                snprintf(cl->cl_err, sizeof(cl->cl_err), "cannot connect to %s: %s",
                         cl->cl_endpoint, why);
            cl->cl_conn = NULL;
            return rc;
        }
    }

    rc = ctl_conn_write(cl->cl_conn, out, (size_t)n, deadline);
    if (rc == 0)
        rc = ctl_conn_read(cl->cl_conn, hdrbuf, sizeof(hdrbuf), deadline);
    if (rc != 0) {
        snprintf(cl->cl_err, sizeof(cl->cl_err), "%s: %s", cl->cl_endpoint, transport_words(rc));
        goto fail;
    }
    rc = dcb_frame_header(hdrbuf, sizeof(hdrbuf), &ctl_limits, &hdr);
    if (rc != 0) {
        snprintf(cl->cl_err, sizeof(cl->cl_err), "%s: bad answer: %s", cl->cl_endpoint,
                 dcb_proto_strerror(rc));
        rc = CTL_E_PROTO;
        goto fail;
    }
    if (hdr.type != DCB__FRAME_TYPE__FT_CTL_RESPONSE) {
        snprintf(cl->cl_err, sizeof(cl->cl_err),
                 "%s: bad answer: frame type %u where a control response (%u) belongs",
                 cl->cl_endpoint, hdr.type, DCB__FRAME_TYPE__FT_CTL_RESPONSE);
        rc = CTL_E_PROTO;
        goto fail;
    }

    /* The length is within DCB_MAX_FRAME_CONTROL: only now allocate for it. */
    need = DCB_FRAME_HEADER_SIZE + (size_t)hdr.length;
    free(cl->cl_buf);
    cl->cl_buf = malloc(need);
    if (cl->cl_arena_cap < dcb_arena_size_for(hdr.length)) {
        free(cl->cl_arena_mem);
        cl->cl_arena_cap = dcb_arena_size_for(hdr.length);
        cl->cl_arena_mem = malloc(cl->cl_arena_cap);
    }
    if (cl->cl_buf == NULL || cl->cl_arena_mem == NULL) {
        cl->cl_arena_cap = 0;
        rc = CTL_E_NOMEM;
        snprintf(cl->cl_err, sizeof(cl->cl_err), "out of memory for a %u-byte answer", hdr.length);
        goto fail;
    }
    dcb_arena_init(&cl->cl_arena, cl->cl_arena_mem, cl->cl_arena_cap);
    memcpy(cl->cl_buf, hdrbuf, sizeof(hdrbuf));
    rc = ctl_conn_read(cl->cl_conn, cl->cl_buf + DCB_FRAME_HEADER_SIZE, hdr.length, deadline);
    if (rc != 0) {
        snprintf(cl->cl_err, sizeof(cl->cl_err), "%s: %s", cl->cl_endpoint, transport_words(rc));
        goto fail;
    }
    rc = dcb_frame_decode(cl->cl_buf, need, &ctl_limits, &cl->cl_arena, &msg);
    if (rc != 0) {
        snprintf(cl->cl_err, sizeof(cl->cl_err), "%s: bad answer: %s", cl->cl_endpoint,
                 dcb_proto_strerror(rc));
        rc = CTL_E_PROTO;
        goto fail;
    }
    *resp = (Dcb__ControlResponse *)msg.msg;
    return 0;

fail:
    /* After a failure the stream position is unknown: never reuse it. */
    client_disconnect(cl);
    return rc;
}

int ctl_exit_for(int err)
{
    switch (err) {
    case 0:
        return CTL_EXIT_OK;
    case CTL_E_NOBROKER:
        return CTL_EXIT_NO_BROKER;
    case CTL_E_ACCESS:
        return CTL_EXIT_ACCESS;
    default:
        return CTL_EXIT_PROTOCOL;
    }
}

int ctl_exit_for_status(Dcb__ControlStatus st)
{
    switch (st) {
    case DCB__CONTROL_STATUS__CS_OK:
        return CTL_EXIT_OK;
    case DCB__CONTROL_STATUS__CS_UNKNOWN_PLUGIN:
        return CTL_EXIT_UNKNOWN_PLUGIN;
    default:
        return CTL_EXIT_BROKER_FAILED;
    }
}

const char *ctl_status_name(Dcb__ControlStatus st)
{
    switch (st) {
    case DCB__CONTROL_STATUS__CS_OK:
        return "ok";
    case DCB__CONTROL_STATUS__CS_UNKNOWN_PLUGIN:
        return "unknown plugin";
    case DCB__CONTROL_STATUS__CS_BAD_REQUEST:
        return "bad request";
    case DCB__CONTROL_STATUS__CS_BUSY:
        return "busy";
    case DCB__CONTROL_STATUS__CS_FAILED:
        return "failed";
    default:
        return "unknown status";
    }
}
