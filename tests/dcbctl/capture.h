/*
 * capture.h — run ctl_main() in process and collect what it printed.
 */
#ifndef DCBCTL_CAPTURE_H
#define DCBCTL_CAPTURE_H

/*
 * Runs `dcbctl ARGS...` (a NULL-terminated list, without "dcbctl") and
 * returns its exit code. *out and *err receive what it wrote (malloc'd,
 * NUL-terminated; free them). Also echoes both to the test's stdout, so a
 * failing test's log shows what dcbctl said.
 */
int capture_run(char **out, char **err, const char *arg, ...);
/* The same with an argv array of argc entries (again without "dcbctl"). */
int capture_runv(char **out, char **err, int argc, const char *const *argv);

/* Sets or removes (value NULL) an environment variable. */
void capture_setenv(const char *name, const char *value);

#endif
