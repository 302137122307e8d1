/*
 * simtest.h — helpers for the dcb-sim and plugin tests: paths of built
 * binaries, a scratch folder, running dcb-sim as a child process (libuv's
 * uv_spawn, with stdout and stderr in files and a time limit), and reading
 * what it left behind (its JSON report, its record, plugin logs).
 */
#ifndef SIMTEST_H
#define SIMTEST_H

/* A NULL-terminated argument or environment list. */
#define ST_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

typedef struct st_result {
    int64_t r_exit;  /* exit status (on Windows, the NTSTATUS of a crash) */
    int r_signal;    /* the signal that ended it (POSIX), 0 if none */
    int r_timed_out; /* killed by the test after its time limit */
    char *r_out;     /* what it wrote to stdout */
    char *r_err;     /* what it wrote to stderr */
} st_result_t;

/* "<DCB_BIN_DIR>/<name>" plus the executable or module suffix. */
const char *st_exe(const char *name);
const char *st_plugin(const char *name);
/* A fresh, empty folder for one test, and paths inside it. */
const char *st_scratch(const char *test);
const char *st_path(const char *dir, const char *file);

/*
 * Runs dcb-sim with args (NULL-terminated) and extra environment entries
 * ("KEY=VALUE", NULL-terminated, may be NULL). Returns 0 when it ran
 * (whatever its exit), -1 when it could not be started.
 */
int st_run_sim(const char *const *args, const char *const *env, int timeout_ms, st_result_t *r);
void st_result_free(st_result_t *r);
/* Whether the child ended by a crash (signal, sanitizer abort, NTSTATUS). */
int st_crashed(const st_result_t *r);

/* Opens path for a child's stdout or stderr (created or truncated): an fd, or < 0. */
int st_open_out(const char *path);
/* Closes an fd from st_open_out; a negative one is ignored. */
void st_close_fd(int fd);
/*
 * A child's environment: the current one, minus the keys that extra
 * ("KEY=VALUE", NULL-terminated, may be NULL) sets, plus extra. NULL when
 * the environment cannot be read; free it with st_free_env.
 */
char **st_make_env(const char *const *extra);
void st_free_env(char **env);

char *st_read_file(const char *path, size_t *len);
int st_write_file(const char *path, const void *data, size_t len);
int st_file_exists(const char *path);
/* Number of lines in text that start with prefix. */
size_t st_count_lines(const char *text, const char *prefix);

/* The report dcb-sim printed with --json; NULL if stdout is not JSON. */
cJSON *st_json(const st_result_t *r);
/*
 * A number at a dotted path ("packets.in", "hooks.NewPkt.calls",
 * "callouts.0.result" for arrays); -1 (NULL) if absent.
 */
double st_jnum(const cJSON *root, const char *path);
const char *st_jstr(const cJSON *root, const char *path);

/* One record line: outcome and, for replies, the bytes. */
typedef struct st_rec {
    char rc_outcome[16];
    uint32_t rc_code;
    uint8_t *rc_reply;
    size_t rc_len;
} st_rec_t;

/* Parses a --record file; returns the entry count, or -1. */
long st_read_record(const char *path, st_rec_t **out);
void st_record_free(st_rec_t *r, long n);

#endif /* SIMTEST_H */
