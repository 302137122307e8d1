/* hostile.h — the hostile test plugin's platform pieces (hostile_{posix,win}.c). */
#ifndef HOSTILE_H
#define HOSTILE_H

#include <stddef.h>

#include "dcb_callout.h"

/* Finds the host's channel among the process's descriptors; 0 when found. */
int hostile_find_channel(void);
/* Writes all of buf to the channel; 0, or -1 when the broker is gone. */
int hostile_write(const void *buf, size_t n);
void hostile_sleep_forever(void);

#endif
