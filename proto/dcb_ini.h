/*
 * dcb_ini.h — a small INI reader for dcb's own configuration files.
 *
 *   ; comment            # comment
 *   [section]
 *   key = value          ; inline comments need whitespace before ';' or '#'
 *
 * Keys and values are trimmed; a value may be wrapped in double quotes to
 * keep leading/trailing spaces or a ';'. Lines are at most 1023 bytes. The
 * handler sees every key with its section and line number, in file order,
 * and returns 0 to accept it or non-zero to stop with that line reported.
 */
#ifndef DCB_INI_H
#define DCB_INI_H

#include <stdio.h>

typedef int (*dcb_ini_handler)(void *user, const char *section, const char *key,
                               const char *value, int lineno);

/*
 * Returns 0 when every line parsed and the handler accepted every key; the
 * line number (> 0) of the first syntax error or refused key; DCB_INI_EOPEN
 * when the file cannot be opened. An over-long line is a syntax error on
 * that line, as is a line that is neither a section, a key = value pair,
 * a comment nor blank.
 */
int dcb_ini_parse(const char *path, dcb_ini_handler handler, void *user);
int dcb_ini_parse_stream(FILE *f, dcb_ini_handler handler, void *user);
int dcb_ini_parse_string(const char *text, dcb_ini_handler handler, void *user);

#define DCB_INI_EOPEN (-1)
#define DCB_INI_LINE_MAX 1024

#endif
