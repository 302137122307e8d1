/*
 * samples.h — one fully populated instance of every wire message, for
 * round-trip tests, fuzz seed corpora and the codec benchmark.
 */
#ifndef DCB_TEST_SAMPLES_H
#define DCB_TEST_SAMPLES_H

#include <stdbool.h>
#include <stdint.h>

#include "dcb_proto.h"

#define DCB_SAMPLE_PACKET_LEN 548

typedef struct dcb_sample {
    ProtobufCMessage *msg; /* static storage, valid until the next build */
} dcb_sample_t;

/* A 548-byte DHCPDISCOVER with options 53, 61, 12, 60, 55, 82. */
const uint8_t *dcb_sample_packet(void);
/* Builds the sample for a frame type; false when the type has no message. */
bool dcb_sample_build(uint8_t type, dcb_sample_t *out);

#endif
