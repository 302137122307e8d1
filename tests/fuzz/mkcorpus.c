/*
 * mkcorpus.c — writes the seed corpora in tests/fuzz/corpus/: for each
 * reader, one file per message type it accepts (a valid frame), plus a few
 * multi-frame streams. Run it again after changing dcb.proto:
 *   build/native/bin/dcb-mkcorpus tests/fuzz/corpus
 */
#include <stdio.h>
#include <string.h>

#include "dcb_proto.h"
#include "samples.h"

static const struct {
    const char *dir;
    uint8_t types[16];
} readers[] = {
    {"broker_from_shim", {1, 4, 10, 11, 12, 13, 14, 15, 16, 17}},
    {"shim_from_broker", {2, 3, 20, 21}},
    {"broker_from_host", {31, 32, 33, 34}},
    {"host_from_broker", {30, 10, 11, 12, 13, 14, 15, 16, 17, 33}},
    {"control", {40, 41}},
};

static uint8_t buf[1 << 20];

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS-DIR\n", argv[0]);
        return 2;
    }
    for (size_t r = 0; r < sizeof(readers) / sizeof(readers[0]); r++) {
        size_t stream = 0;
        char path[4096];
        FILE *f;

        for (size_t i = 0; i < sizeof(readers[r].types) && readers[r].types[i]; i++) {
            uint8_t t = readers[r].types[i];
            dcb_sample_t s;
            int n;

            if (!dcb_sample_build(t, &s))
                return 1;
            n = dcb_frame_encode(t, s.msg, buf + stream, sizeof(buf) - stream);
            if (n < 0)
                return 1;
            snprintf(path, sizeof(path), "%s/%s/%02u-%s", argv[1], readers[r].dir, t,
                     s.msg->descriptor->short_name);
            f = fopen(path, "wb");
            if (f == NULL || fwrite(buf + stream, 1, (size_t)n, f) != (size_t)n) {
                fprintf(stderr, "mkcorpus: cannot write %s\n", path);
                return 1;
            }
            fclose(f);
            stream += (size_t)n;
        }
        snprintf(path, sizeof(path), "%s/%s/stream", argv[1], readers[r].dir);
        f = fopen(path, "wb");
        if (f == NULL || fwrite(buf, 1, stream, f) != stream)
            return 1;
        fclose(f);
    }
    return 0;
}
