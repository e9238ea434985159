/*
 * log.h - the log sink for src/ programs (lib/ does not log, STYLE.md C13).
 *
 * One line per event. Every line passes through skr_log_redact() before it is written, so a
 * token, a JWK private member or a long base64 blob that slips into a message is replaced by
 * "[REDACTED]" at every level.
 */
#pragma once

#include <stddef.h>
#include <stdio.h>

#include "compiler.h"
#include "err.h"

enum skr_log_level {
    SKR_LOG_ERROR = 0,
    SKR_LOG_WARN = 1,
    SKR_LOG_INFO = 2,
    SKR_LOG_DEBUG = 3,
};

/* Logs go to f (NULL: stderr) at levels <= level. prog prefixes each line. */
void skr_log_init(const char *prog, enum skr_log_level level, FILE *f);
void skr_log_set_level(enum skr_log_level level);
enum skr_log_level skr_log_get_level(void);
/* Parses "error|warn|warning|info|debug|trace" (case-insensitive). */
SKR_NODISCARD skr_err skr_log_level_parse(const char *s, enum skr_log_level *ret);

void skr_log(enum skr_log_level level, const char *fmt, ...) SKR_PRINTF(2, 3);
/* Logs at error level: the message, then the error name, detail and site. */
void skr_log_err(skr_err e, const char *fmt, ...) SKR_PRINTF(2, 3);

#define skr_log_error(...) skr_log(SKR_LOG_ERROR, __VA_ARGS__)
#define skr_log_warn(...)  skr_log(SKR_LOG_WARN, __VA_ARGS__)
#define skr_log_info(...)  skr_log(SKR_LOG_INFO, __VA_ARGS__)
#define skr_log_debug(...) skr_log(SKR_LOG_DEBUG, __VA_ARGS__)

/* Redacts secrets in s (NUL-terminated, in place; the result is never longer). Returns the
 * number of redactions. Exposed for tests and for error strings sent to clients. */
size_t skr_log_redact(char *s);
