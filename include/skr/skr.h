/*
 * skr.h - public API of libskr.
 *
 * Only what is declared here is exported from libskr.so (the library is built with
 * -fvisibility=hidden). Types are opaque; every fallible call returns skr_err.
 * The release-flow API arrives with issue #4; this header starts with the error model.
 */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

#define SKR_VERSION "0.1.0"

/* Error categories: what a caller acts on (retry? bad input? denied?). */
#define SKR_ERRORS(X)                                                                              \
    X(SKR_OK, "ok")                                                                                \
    X(SKR_E_NOMEM, "out of memory")                                                                \
    X(SKR_E_INVALID_ARG, "invalid argument")                                                       \
    X(SKR_E_TRUNCATED, "input ended early")                                                        \
    X(SKR_E_MALFORMED, "input is malformed")                                                       \
    X(SKR_E_TOO_LARGE, "input exceeds a limit")                                                    \
    X(SKR_E_NOT_FOUND, "not found")                                                                \
    X(SKR_E_UNSUPPORTED, "not supported")                                                          \
    X(SKR_E_DEVICE, "SEV-SNP guest device error")                                                  \
    X(SKR_E_VERIFY, "verification failed")                                                         \
    X(SKR_E_POLICY, "evidence does not satisfy policy")                                            \
    X(SKR_E_UPSTREAM, "remote service returned an error")                                          \
    X(SKR_E_TIMEOUT, "timed out")                                                                  \
    X(SKR_E_IO, "I/O error")                                                                       \
    X(SKR_E_INTERNAL, "internal error")

typedef enum skr_err {
#define SKR_ERR_ENUM_(name, text) name,
    SKR_ERRORS(SKR_ERR_ENUM_)
#undef SKR_ERR_ENUM_
        SKR_ERR_COUNT_
} skr_err;

/* Human text for an error category; never NULL. */
__attribute__((visibility("default"))) const char *skr_err_str(skr_err e);
/* Symbolic name ("SKR_E_MALFORMED"); never NULL. */
__attribute__((visibility("default"))) const char *skr_err_name(skr_err e);
/* Detail of the last error raised on this thread: "<msg> (file.c:123)"; never NULL. */
__attribute__((visibility("default"))) const char *skr_err_detail(void);
/* Library version string. */
__attribute__((visibility("default"))) const char *skr_version(void);

#ifdef __cplusplus
}
#endif
