/* escape.h — the escape test plugin's pieces (escape.c, escape_{posix,win}.c). */
#ifndef ESCAPE_H
#define ESCAPE_H

#include "dcb_callout.h"

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void escape_report(const char *what, int allowed, const char *fmt, ...);
/* An environment variable, or NULL when unset or empty. */
const char *escape_env(const char *name);
/* Every attempt of this platform, each reported. */
void escape_try_all(void);

#endif
