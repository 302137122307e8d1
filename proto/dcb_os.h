/*
 * dcb_os.h — the few portable primitives every side of dcb needs: a
 * monotonic clock, locks, threads, shared-library loading, UTF-16 MULTI_SZ
 * helpers and a small logger.
 *
 * Keep #ifdefs out of logic files: code that needs one of these calls it
 * here; os_win.c and os_posix.c each implement the whole header. Every
 * function that can fail returns 0 or a negative error code.
 */
#ifndef DCB_OS_H
#define DCB_OS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef _WIN32
#include <windows.h>
typedef SRWLOCK dcb_mutex_t;
typedef SRWLOCK dcb_rwlock_t;
typedef CONDITION_VARIABLE dcb_cond_t;
typedef HANDLE dcb_thread_t;
#else
#include <pthread.h>
typedef pthread_mutex_t dcb_mutex_t;
typedef pthread_rwlock_t dcb_rwlock_t;
typedef pthread_cond_t dcb_cond_t;
typedef pthread_t dcb_thread_t;
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Monotonic time, shared by all processes of one machine. */
uint64_t dcb_now_ns(void);
void dcb_sleep_ms(uint32_t ms);

/* A non-recursive mutex. Static initialisation is not portable: call init. */
void dcb_mutex_init(dcb_mutex_t *m);
void dcb_mutex_destroy(dcb_mutex_t *m);
void dcb_mutex_lock(dcb_mutex_t *m);
void dcb_mutex_unlock(dcb_mutex_t *m);

void dcb_rwlock_init(dcb_rwlock_t *l);
void dcb_rwlock_destroy(dcb_rwlock_t *l);
void dcb_rwlock_rdlock(dcb_rwlock_t *l);
void dcb_rwlock_rdunlock(dcb_rwlock_t *l);
void dcb_rwlock_wrlock(dcb_rwlock_t *l);
void dcb_rwlock_wrunlock(dcb_rwlock_t *l);

void dcb_cond_init(dcb_cond_t *c);
void dcb_cond_destroy(dcb_cond_t *c);
void dcb_cond_signal(dcb_cond_t *c);
void dcb_cond_broadcast(dcb_cond_t *c);
void dcb_cond_wait(dcb_cond_t *c, dcb_mutex_t *m);
/* Returns 0 when signalled, DCB_OS_ETIMEDOUT when timeout_ms elapsed. */
int dcb_cond_timedwait(dcb_cond_t *c, dcb_mutex_t *m, uint32_t timeout_ms);

typedef void (*dcb_thread_fn)(void *arg);
int dcb_thread_create(dcb_thread_t *t, dcb_thread_fn fn, void *arg);
int dcb_thread_join(dcb_thread_t t);

/* Shared libraries (LoadLibraryW / dlopen). Paths are UTF-8. */
typedef struct dcb_dl dcb_dl_t;
/* On failure returns NULL and writes a human-readable reason into err. */
dcb_dl_t *dcb_dl_open(const char *path, char *err, size_t errlen);
void *dcb_dl_sym(dcb_dl_t *dl, const char *name);
void dcb_dl_close(dcb_dl_t *dl);

/*
 * UTF-16 MULTI_SZ lists, the form of ChainDlls: strings each ended by a
 * 0 unit, the list ended by one more 0 unit (an empty list is a single 0).
 * The WCHAR type is uint16_t-sized on both platforms.
 */
/* Encodes n UTF-8 strings; returns a malloc'd MULTI_SZ or NULL. */
uint16_t *dcb_multisz_from_utf8(const char *const *items, size_t n);
/*
 * Decodes a MULTI_SZ of at most max_units units into malloc'd UTF-8 strings.
 * Returns the count (>= 0) and stores the array in *items, or a negative
 * error for a list that is not terminated within max_units.
 */
int dcb_multisz_to_utf8(const uint16_t *msz, size_t max_units, char ***items);
void dcb_strlist_free(char **items, size_t n);

/* Logging: one line per call, timestamped, to stderr unless redirected. */
typedef enum dcb_log_level { DCB_LOG_DEBUG, DCB_LOG_INFO, DCB_LOG_WARN, DCB_LOG_ERROR } dcb_log_level_t;
typedef void (*dcb_log_sink_fn)(dcb_log_level_t level, const char *line, void *ctx);
void dcb_log_set_level(dcb_log_level_t level);
void dcb_log_set_sink(dcb_log_sink_fn fn, void *ctx);
void dcb_log_set_tag(const char *tag);
#if defined(__MINGW32__)
__attribute__((format(gnu_printf, 2, 3)))
#elif defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void dcb_log(dcb_log_level_t level, const char *fmt, ...);
void dcb_vlog(dcb_log_level_t level, const char *fmt, va_list ap);

/* Current process id (for logs and status). */
uint32_t dcb_getpid(void);

#ifdef _WIN32
/* s (UTF-8) as a malloc'd UTF-16 string, or NULL. */
wchar_t *dcb_utf8_to_wide(const char *s);
#endif

#define DCB_OS_ETIMEDOUT (-110)
#define DCB_OS_EIO (-5)
#define DCB_OS_ENOMEM (-12)
#define DCB_OS_EINVAL (-22)

#ifdef __cplusplus
}
#endif
#endif /* DCB_OS_H */
