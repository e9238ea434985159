/*
 * err.h - the one error type (STYLE.md C4) and the control-flow macros (C5).
 *
 * skr_err_at() records file, line and a message in a thread-local slot and returns the
 * code, so callers at the boundary can log "what" and "where" without lib/ logging.
 * Messages must never contain secrets or raw input bytes.
 */
#pragma once

#include <stddef.h>

#include "skr/skr.h"

#include "compiler.h"

struct skr_err_site {
    skr_err code;
    const char *file;
    int line;
    char msg[384];
};

/* Records the site and returns code. msg is copied (may be a literal). */
skr_err skr_err_at(skr_err code, const char *file, int line, const char *msg);
/* As skr_err_at with a printf-style message. */
skr_err skr_err_atf(skr_err code, const char *file, int line, const char *fmt, ...)
    SKR_PRINTF(4, 5);
/* Appends the OpenSSL error queue (and drains it) to the last message. */
void skr_err_add_ossl(void);
/* The last site recorded on this thread. */
const struct skr_err_site *skr_err_last(void);
/* Message of the last error without the file:line suffix. */
const char *skr_err_msg(void);
void skr_err_clear(void);

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        skr_err try_err_ = (expr);                                                                 \
        if (try_err_ != SKR_OK) {                                                                  \
            return try_err_;                                                                       \
        }                                                                                          \
    } while (0)

/*
 * FAIL and FAILF return the code itself, not skr_err_at()'s result: the two are equal, but only
 * the former is visible to a reader (and to gcc -fanalyzer, which cannot see into err.c and
 * would otherwise assume a FAIL might return SKR_OK and follow impossible paths).
 */
#define FAIL(code, msg)                                                                            \
    return ({                                                                                      \
        skr_err fail_code_ = (code);                                                               \
        (void)skr_err_at(fail_code_, __FILE__, __LINE__, (msg));                                   \
        fail_code_;                                                                                \
    })
#define FAILF(code, ...)                                                                           \
    return ({                                                                                      \
        skr_err fail_code_ = (code);                                                               \
        (void)skr_err_atf(fail_code_, __FILE__, __LINE__, __VA_ARGS__);                            \
        fail_code_;                                                                                \
    })

#define ENSURE(cond, code, msg)                                                                    \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            FAIL((code), (msg));                                                                   \
        }                                                                                          \
    } while (0)

/* libcrypto returns 1 for success; anything else fails with the OpenSSL queue attached. */
#define TRY_OSSL(call, code, msg)                                                                  \
    do {                                                                                           \
        if ((call) != 1) {                                                                         \
            skr_err ossl_err_ = (code);                                                            \
            (void)skr_err_at(ossl_err_, __FILE__, __LINE__, (msg));                                \
            skr_err_add_ossl();                                                                    \
            return ossl_err_;                                                                      \
        }                                                                                          \
    } while (0)
