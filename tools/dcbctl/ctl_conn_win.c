/*
 * ctl_conn_win.c — the control connection on Windows: the broker's named
 * pipe, opened for overlapped I/O so every wait has the caller's deadline.
 *
 * The pipe is opened with SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION:
 * whoever serves the pipe (the broker, or something squatting on its name)
 * can learn who we are but can never act as us.
 */
#include "dcbctl.h"

#include <windows.h>

#include <stdlib.h>
#include <string.h>

#include "dcb_os.h"

struct ctl_conn {
    HANDLE cc_pipe;
    HANDLE cc_event;
};

const char *ctl_conn_default_endpoint(void)
{
    return "\\\\.\\pipe\\dcb-control";
}

static DWORD ms_left(uint64_t deadline_ns)
{
    uint64_t now = dcb_now_ns();

    if (now >= deadline_ns)
        return 0;
    return (DWORD)((deadline_ns - now + 999999u) / 1000000u);
}

static void win_words(DWORD code, char *buf, size_t n)
{
    WCHAR w[256];
    DWORD len = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL,
                               code, 0, w, sizeof(w) / sizeof(w[0]), NULL);

    while (len > 0 &&
           (w[len - 1] == L'\r' || w[len - 1] == L'\n' || w[len - 1] == L' ' || w[len - 1] == L'.'))
        len--;
    w[len] = 0;
    if (len == 0 || WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, (int)n, NULL, NULL) == 0)
        snprintf(buf, n, "error %lu", (unsigned long)code);
    else
        snprintf(buf + strlen(buf), n - strlen(buf), " (error %lu)", (unsigned long)code);
}

static int error_to_ctl(DWORD code)
{
    switch (code) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_BAD_PATHNAME:
    case ERROR_INVALID_NAME:
        return CTL_E_NOBROKER;
    case ERROR_ACCESS_DENIED:
        return CTL_E_ACCESS;
    case ERROR_BROKEN_PIPE:
    case ERROR_PIPE_NOT_CONNECTED:
    case ERROR_NO_DATA:
        return CTL_E_CLOSED;
    default:
        return CTL_E_IO;
    }
}

int ctl_conn_open(const char *endpoint, uint64_t deadline_ns, ctl_conn_t **out, char *err,
                  size_t errlen)
{
    WCHAR name[512];
    char full[512];
    ctl_conn_t *c;
    HANDLE h;
    DWORD code;

    *out = NULL;
    /* "dcb-control" is short for \\.\pipe\dcb-control. */
    if (strncmp(endpoint, "\\\\", 2) == 0)
        snprintf(full, sizeof(full), "%s", endpoint);
    else
        snprintf(full, sizeof(full), "\\\\.\\pipe\\%s", endpoint);
    if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, full, -1, name,
                            sizeof(name) / sizeof(name[0])) == 0) {
        snprintf(err, errlen, "not a valid pipe name");
        return CTL_E_NOBROKER;
    }

    for (;;) {
        h = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                        FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                        NULL);
        if (h != INVALID_HANDLE_VALUE)
            break;
        code = GetLastError();
        if (code == ERROR_PIPE_BUSY) {
            /* Every instance is serving someone: wait for one, within the deadline. */
            DWORD left = ms_left(deadline_ns);
            if (left == 0 || (!WaitNamedPipeW(name, left) && GetLastError() == ERROR_SEM_TIMEOUT)) {
                snprintf(err, errlen, "every pipe instance stayed busy");
                return CTL_E_TIMEOUT;
            }
            continue;
        }
        win_words(code, err, errlen);
        return error_to_ctl(code);
    }

    c = malloc(sizeof(*c));
    if (c == NULL || (c->cc_event = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL) {
        free(c);
        CloseHandle(h);
        snprintf(err, errlen, "out of memory");
        return CTL_E_NOMEM;
    }
    c->cc_pipe = h;
    *out = c;
    return 0;
}

/* One overlapped read or write, waited for until the deadline. */
static int io_once(ctl_conn_t *c, int writing, void *p, DWORD n, DWORD *done, uint64_t deadline_ns)
{
    OVERLAPPED ov;
    BOOL ok;
    DWORD code;

    memset(&ov, 0, sizeof(ov));
    ov.hEvent = c->cc_event;
    ResetEvent(c->cc_event);
    ok = writing ? WriteFile(c->cc_pipe, p, n, NULL, &ov) : ReadFile(c->cc_pipe, p, n, NULL, &ov);
    if (!ok && (code = GetLastError()) != ERROR_IO_PENDING)
        return error_to_ctl(code);
    if (!ok && WaitForSingleObject(c->cc_event, ms_left(deadline_ns)) != WAIT_OBJECT_0) {
        /* Cancel, then wait for the cancel: ov and the buffer are on our stack. */
        CancelIoEx(c->cc_pipe, &ov);
        GetOverlappedResult(c->cc_pipe, &ov, done, TRUE);
        return CTL_E_TIMEOUT;
    }
    if (!GetOverlappedResult(c->cc_pipe, &ov, done, FALSE))
        return error_to_ctl(GetLastError());
    return 0;
}

int ctl_conn_write(ctl_conn_t *c, const void *buf, size_t n, uint64_t deadline_ns)
{
    const uint8_t *p = buf;

    while (n > 0) {
        DWORD chunk = n > (1u << 30) ? (1u << 30) : (DWORD)n, done = 0;
        int rc = io_once(c, 1, (void *)p, chunk, &done, deadline_ns);
        if (rc != 0)
            return rc;
        p += done;
        n -= done;
    }
    return 0;
}

int ctl_conn_read(ctl_conn_t *c, void *buf, size_t n, uint64_t deadline_ns)
{
    uint8_t *p = buf;

    while (n > 0) {
        DWORD chunk = n > (1u << 30) ? (1u << 30) : (DWORD)n, done = 0;
        int rc = io_once(c, 0, p, chunk, &done, deadline_ns);
        if (rc != 0)
            return rc;
        if (done == 0)
            return CTL_E_CLOSED;
        p += done;
        n -= done;
    }
    return 0;
}

void ctl_conn_close(ctl_conn_t *c)
{
    if (c == NULL)
        return;
    CloseHandle(c->cc_pipe);
    CloseHandle(c->cc_event);
    free(c);
}
