/*
 * testplug.h — shared pieces of the deliberately broken and the checking
 * test plugins. They exist to exercise dcb-sim, the shim and the broker;
 * none is an example to follow (the samples in ../macfilter, ../auditlog
 * and ../optinject are).
 *
 * Environment, read at the entry point:
 *   DCB_TEST_N        the call that misbehaves (crash, hang, heapsmash,
 *                     chatty's close); default 50
 *   DCB_TEST_HOOK     which hooks count: "any" (default: every hook but
 *                     Control) or one of control, newpkt, pktdrop, pktsend,
 *                     addressdel, addressoffer, handleoptions, deleteclient
 *   DCB_CALLLOG_OUT   file that calllog, badentry and emptytable append to
 */
#ifndef TESTPLUG_H
#define TESTPLUG_H

#include <stddef.h>
#include <stdint.h>

#include "dcb_callout.h"

const char *testplug_hook_name(dcb_hook_t h);
uint32_t testplug_env_u32(const char *name, uint32_t def);
/* Reads DCB_TEST_N and DCB_TEST_HOOK. */
void testplug_read_env(void);
uint32_t testplug_n(void);
int testplug_hook_selected(dcb_hook_t h);
/* Counts a call of a selected hook; returns its number (1, 2, ...) or 0. */
uint64_t testplug_count(dcb_hook_t h);

/* Appends one line to $DCB_CALLLOG_OUT (if set). Thread-safe. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
void testplug_log(const char *fmt, ...);
/* ChainDlls as "n path|path|..." into out. */
void testplug_chain_str(LPWSTR chain, char *out, size_t cap);

/* testplug_posix.c / testplug_win.c */
void testplug_crash(void);       /* a real access violation / SIGSEGV */
void testplug_hang(void);        /* never returns */
void testplug_close_stdio(void); /* closes file descriptors 1 and 2 */
int testplug_replace_file(const char *tmp, const char *path);

/*
 * generic.c: a plugin that subscribes to every hook and calls
 * testplug_on_call(hook) from each; the plugin defines both functions.
 */
void testplug_on_call(dcb_hook_t h);
DWORD testplug_on_entry(void);

#endif /* TESTPLUG_H */
