/*
 * fuzz_emu_form.c - the Entra token endpoint's form parsing on arbitrary bodies:
 * emu_entra_parse_token_form (percent-decoding, duplicates, bounds), then, as the handler
 * does, emu_entra_scope_resource on the scope and emu_entra_check_assertion on the assertion.
 *
 * Properties: no crash or leak; decoded values hold no NUL before their end and are no longer
 * than the body; a scope resource R is found as "R/.default" in the scope; a rejected assertion has
 * a reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "service.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_value(const char *v, size_t size)
{
    if (v != NULL && strlen(v) > size) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct emu_token_form f = { 0 };

    if (emu_entra_parse_token_form(skr_span_make(data, size), &f) == SKR_OK) {
        char resource[513];
        const char *why = NULL;

        check_value(f.grant_type, size);
        check_value(f.assertion_type, size);
        check_value(f.assertion, size);
        check_value(f.client_id, size);
        check_value(f.scope, size);
        if (f.scope != NULL && emu_entra_scope_resource(f.scope, resource, sizeof(resource))) {
            char needle[sizeof(resource) + 16];

            (void)snprintf(needle, sizeof(needle), "%s/.default", resource);
            if (resource[0] == '\0' || strstr(f.scope, needle) == NULL) {
                abort();
            }
        }
        if (f.assertion != NULL && emu_entra_check_assertion(f.assertion, &why) != 0 &&
            why == NULL) {
            abort();
        }
    }
    emu_token_form_done(&f);
    skr_err_clear();
    return 0;
}
