/*
 * capture.c — see capture.h. Output goes through tmpfile(), which both C
 * runtimes provide, and is read back once dcbctl returns.
 */
#include "capture.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcbctl.h"

static char *slurp(FILE *f)
{
    long n;
    char *s;

    fflush(f);
    n = ftell(f);
    if (n < 0)
        n = 0;
    s = malloc((size_t)n + 1);
    if (s == NULL)
        abort();
    rewind(f);
    n = (long)fread(s, 1, (size_t)n, f);
    s[n] = '\0';
    fclose(f);
    return s;
}

int capture_runv(char **out, char **err, int argc, const char *const *argv)
{
    char *av[40];
    FILE *fo = tmpfile(), *fe = tmpfile();
    int rc;

    if (fo == NULL || fe == NULL || argc > 38) {
        fprintf(stderr, "capture: tmpfile failed\n");
        abort();
    }
    av[0] = "dcbctl";
    for (int i = 0; i < argc; i++)
        av[i + 1] = (char *)argv[i];
    av[argc + 1] = NULL;
    rc = ctl_main(argc + 1, av, fo, fe);
    *out = slurp(fo);
    *err = slurp(fe);
    printf("$ dcbctl");
    for (int i = 0; i < argc; i++)
        printf(" %s", argv[i]);
    printf("   -> exit %d\n%s%s", rc, *out, *err);
    fflush(stdout);
    return rc;
}

int capture_run(char **out, char **err, const char *arg, ...)
{
    const char *argv[38];
    int argc = 0;
    va_list ap;

    va_start(ap, arg);
    for (const char *a = arg; a != NULL && argc < 38; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    return capture_runv(out, err, argc, argv);
}

void capture_setenv(const char *name, const char *value)
{
#ifdef _WIN32
    _putenv_s(name, value != NULL ? value : "");
#else
    if (value != NULL)
        setenv(name, value, 1);
    else
        unsetenv(name);
#endif
}
