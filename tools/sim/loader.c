/*
 * loader.c — loading callout DLLs the way the DHCP server does
 * (callout-api.md, "Loading"):
 *
 *   for each entry of CalloutDlls, in order:
 *     LoadLibrary; GetProcAddress("DhcpServerCalloutEntry");
 *     call it with ChainDlls = the entries after this one (MULTI_SZ,
 *     L"\0" when none follow) and CalloutVersion = 0;
 *     ERROR_SUCCESS: stop walking, call DhcpControlHook(START);
 *     anything else: free the DLL and try the next entry.
 *
 * At the end: DhcpControlHook(STOP), then FreeLibrary. The ChainDlls buffer
 * is the loader's and is freed after the entry point returns: a DLL that
 * keeps the pointer is wrong, and the sanitizer builds will say so.
 */
#include "dcbsim.h"
#include "dcb_os.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sim_load_result_name(sim_load_result_t r)
{
    switch (r) {
    case SIM_LOAD_NOT_TRIED:
        return "not tried";
    case SIM_LOAD_OK:
        return "loaded";
    case SIM_LOAD_OPEN_FAILED:
        return "cannot load";
    case SIM_LOAD_NO_ENTRY:
        return "no DhcpServerCalloutEntry";
    case SIM_LOAD_ENTRY_FAILED:
        return "entry point failed";
    }
    return "?";
}

/* Entry points are looked up by name and called through this type. */
static LPDHCP_ENTRY_POINT_FUNC entry_of(dcb_dl_t *dl)
{
    void *sym = dcb_dl_sym(dl, DHCP_CALLOUT_ENTRY_POINT);
    LPDHCP_ENTRY_POINT_FUNC fn;
    /* Object to function pointer: the one conversion dlsym needs. */
    memcpy(&fn, &sym, sizeof(fn));
    return fn;
}

int sim_loader_load(sim_loader_t *ld, const sim_dlllist_t *list)
{
    memset(ld, 0, sizeof(*ld));
    ld->ld_count = list->dl_count;
    ld->ld_loaded = list->dl_count;
    if (list->dl_count == 0)
        return 0;
    ld->ld_attempts = calloc(list->dl_count, sizeof(*ld->ld_attempts));
    if (ld->ld_attempts == NULL)
        return -1;
    for (size_t i = 0; i < list->dl_count; i++) {
        size_t n = strlen(list->dl_items[i]);
        ld->ld_attempts[i].la_path = malloc(n + 1);
        if (ld->ld_attempts[i].la_path == NULL)
            return -1;
        memcpy(ld->ld_attempts[i].la_path, list->dl_items[i], n + 1);
    }

    for (size_t i = 0; i < list->dl_count; i++) {
        sim_load_attempt_t *a = &ld->ld_attempts[i];
        dcb_dl_t *dl = dcb_dl_open(a->la_path, a->la_reason, sizeof(a->la_reason));
        if (dl == NULL) {
            a->la_result = SIM_LOAD_OPEN_FAILED;
            dcb_log(DCB_LOG_WARN, "callout %s: cannot load: %s", a->la_path, a->la_reason);
            continue;
        }
        LPDHCP_ENTRY_POINT_FUNC entry = entry_of(dl);
        if (entry == NULL) {
            a->la_result = SIM_LOAD_NO_ENTRY;
            snprintf(a->la_reason, sizeof(a->la_reason), "no %s export", DHCP_CALLOUT_ENTRY_POINT);
            dcb_log(DCB_LOG_WARN, "callout %s: %s", a->la_path, a->la_reason);
            dcb_dl_close(dl);
            continue;
        }
        uint16_t *chain = dcb_multisz_from_utf8((const char *const *)(list->dl_items + i + 1),
                                                list->dl_count - i - 1);
        if (chain == NULL) {
            dcb_dl_close(dl);
            return -1;
        }
        DHCP_CALLOUT_TABLE table;
        memset(&table, 0, sizeof(table));
        DWORD rc = entry((LPWSTR)chain, 0, &table);
        free(chain);
        a->la_code = rc;
        if (rc != ERROR_SUCCESS) {
            a->la_result = SIM_LOAD_ENTRY_FAILED;
            snprintf(a->la_reason, sizeof(a->la_reason), "returned %lu", (unsigned long)rc);
            dcb_log(DCB_LOG_WARN, "callout %s: entry point returned %lu; trying the next",
                    a->la_path, (unsigned long)rc);
            dcb_dl_close(dl);
            continue;
        }
        a->la_result = SIM_LOAD_OK;
        ld->ld_loaded = i;
        ld->ld_dl = dl;
        ld->ld_table = table;
        dcb_log(DCB_LOG_INFO, "callout %s loaded (%zu more in its chain)", a->la_path,
                list->dl_count - i - 1);
        break;
    }
    if (ld->ld_dl != NULL && ld->ld_table.DhcpControlHook != NULL)
        ld->ld_table.DhcpControlHook(DHCP_CONTROL_START, NULL);
    ld->ld_started = ld->ld_dl != NULL;
    return 0;
}

void sim_loader_unload(sim_loader_t *ld)
{
    if (ld->ld_dl != NULL) {
        if (ld->ld_started && ld->ld_table.DhcpControlHook != NULL)
            ld->ld_table.DhcpControlHook(DHCP_CONTROL_STOP, NULL);
        dcb_dl_close((dcb_dl_t *)ld->ld_dl);
        ld->ld_dl = NULL;
    }
    memset(&ld->ld_table, 0, sizeof(ld->ld_table));
}

void sim_loader_free(sim_loader_t *ld)
{
    sim_loader_unload(ld);
    for (size_t i = 0; i < ld->ld_count && ld->ld_attempts != NULL; i++)
        free(ld->ld_attempts[i].la_path);
    free(ld->ld_attempts);
    ld->ld_attempts = NULL;
    ld->ld_count = 0;
}
