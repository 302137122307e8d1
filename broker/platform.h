/*
 * platform.h — what the broker needs from the operating system beyond
 * libuv, each group implemented once per platform (like libuv's src/unix
 * and src/win): keep #ifdefs out of the logic files.
 *
 *   sandbox_{posix,win}.c   host limits, job objects, memory of a process
 *   hostio_{posix,win}.c    the host role's end of its channel (stdio slot 3)
 *   platform_{posix,win}.c  paths, exit descriptions
 *
 * Every function that can fail returns 0 or a negative error code.
 */
#ifndef DCB_BROKER_PLATFORM_H
#define DCB_BROKER_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* ---- sandbox: supervisor side ------------------------------------------- */

/*
 * Puts a freshly spawned host into its own job (Windows: kill on close, one
 * active process, memory cap, no UI; no-op elsewhere). Called before the
 * host gets HostLoad, so before any plugin code runs. Returns the job (or
 * NULL: none, with the reason in err when it failed).
 */
void *sandbox_job_attach(uv_process_t *proc, uint32_t memory_mb, char *err, size_t errlen);
/* Closing the job kills what is left in it. */
void sandbox_job_close(void *job);
/* Whether the job's memory limit was reached (peak commit at the cap). */
int sandbox_job_memory_hit(void *job, uint32_t memory_mb);
/* Resident (Linux) or committed private (Windows) memory of a process. */
int sandbox_proc_memory(uint32_t pid, uint64_t *bytes);

/* ---- sandbox: host side -------------------------------------------------- */

/* Supervisor start-up (Linux: not dumpable, so a host cannot attach to the broker). */
void sandbox_supervisor_init(void);

/* What the supervisor asks of a host's sandbox (its --host arguments). */
typedef struct sandbox_opts {
    uint32_t so_memory_mb;      /* 0: no cap */
    uint32_t so_threads;        /* the host's calling threads */
    const char *so_user;        /* Linux: the user a root broker's hosts become (NULL: none) */
    const char *so_write_paths; /* Linux: where the plugin may write (NULL: not confined) */
} sandbox_opts_t;

/* First thing in the host role: no new privileges, die with the parent, no core files. */
void sandbox_host_early(void);
/*
 * Ends the host when the broker (broker_pid, 0: not given) is gone, on any
 * platform and whatever the job object does: Linux checks that the broker
 * is still the parent (the death signal covers later); Windows waits on the
 * broker's process on a thread of its own (Wine, for one, does not always
 * end a job's processes with its owner).
 */
void sandbox_host_tie(uint32_t broker_pid);
/*
 * Right before the DLL is loaded: resource limits and confinement (Linux:
 * rlimits, user, Landlock, seccomp; Windows: no privileges, low integrity,
 * mitigation policies). Logs what it did. Returns 0, or -1 with the reason
 * in err: the plugin must then not be loaded.
 */
int sandbox_host_limits(const sandbox_opts_t *o, char *err, size_t errlen);

/* ---- host channel (host side) --------------------------------------------- */

/*
 * Takes over stdio slot 3 as the channel: moves it away from the well-known
 * number, so a plugin that closes fd 3 (or writes to it) cannot touch it.
 */
int hostio_adopt(void);
/* Blocking; safe to call from one reader and one writer thread at a time. */
int hostio_read(void *buf, size_t n); /* > 0 bytes, 0 EOF, < 0 error */
int hostio_write_all(const void *buf, size_t n);
/* Leaves the process at once, without running plugin destructors. */
void hostio_exit(int code);

/* ---- paths and pipes ------------------------------------------------------ */

/* Process-wide settings of the supervisor (SIGPIPE ignored; no error dialogs). */
void platform_init_process(void);

/* An absolute, normalised form of a path (the file need not exist). */
int platform_abspath(const char *in, char *out, size_t outlen);
/* Paths name the same file (case-insensitive on Windows). */
int platform_path_equal(const char *a, const char *b);
/* A host exit in words ("exit status 3", "signal 11 (SIGSEGV)", "exception 0xC0000005"). */
void platform_describe_exit(int64_t status, int term_signal, char *out, size_t outlen);

#endif /* DCB_BROKER_PLATFORM_H */
