/*
 * err.c - error categories, their strings (one X-macro, STYLE.md C4) and the thread-local
 * site of the last error (C5). Nothing here logs; the boundary reads skr_err_last().
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

static _Thread_local struct skr_err_site last_site;
static _Thread_local char detail_buf[sizeof(last_site.msg) + 64];

static const char *const err_text[] = {
#define SKR_ERR_TEXT_(name, text) [name] = text,
    SKR_ERRORS(SKR_ERR_TEXT_)
#undef SKR_ERR_TEXT_
};

static const char *const err_names[] = {
#define SKR_ERR_NAME_(name, text) [name] = #name,
    SKR_ERRORS(SKR_ERR_NAME_)
#undef SKR_ERR_NAME_
};

const char *
skr_err_str(skr_err e)
{
    if ((unsigned)e >= SKR_ERR_COUNT_) {
        return "unknown error";
    }
    return err_text[e];
}

const char *
skr_err_name(skr_err e)
{
    if ((unsigned)e >= SKR_ERR_COUNT_) {
        return "SKR_E_UNKNOWN";
    }
    return err_names[e];
}

static const char *
base_name(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash != NULL ? slash + 1 : path;
}

skr_err
skr_err_at(skr_err code, const char *file, int line, const char *msg)
{
    last_site.code = code;
    last_site.file = base_name(file);
    last_site.line = line;
    (void)snprintf(last_site.msg, sizeof(last_site.msg), "%s", msg != NULL ? msg : "");
    return code;
}

skr_err
skr_err_atf(skr_err code, const char *file, int line, const char *fmt, ...)
{
    char msg[sizeof(last_site.msg)];
    va_list ap;

    /* Format into a local first: callers may pass skr_err_msg() (the slot itself) as an
     * argument when they add context to an inner error. */
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    last_site.code = code;
    last_site.file = base_name(file);
    last_site.line = line;
    memcpy(last_site.msg, msg, sizeof(msg));
    return code;
}

void
skr_err_add_ossl(void)
{
    unsigned long e;
    size_t used = strlen(last_site.msg);

    while ((e = ERR_get_error()) != 0) {
        char text[160];

        ERR_error_string_n(e, text, sizeof(text));
        if (used + 3 < sizeof(last_site.msg)) {
            int n = snprintf(last_site.msg + used, sizeof(last_site.msg) - used, "%s%s",
                             used > 0 ? ": " : "", text);
            if (n > 0) {
                used += (size_t)n < sizeof(last_site.msg) - used ? (size_t)n
                                                                 : sizeof(last_site.msg) - used - 1;
            }
        }
    }
}

const struct skr_err_site *
skr_err_last(void)
{
    return &last_site;
}

const char *
skr_err_msg(void)
{
    return last_site.msg[0] != '\0' ? last_site.msg : skr_err_str(last_site.code);
}

void
skr_err_clear(void)
{
    memset(&last_site, 0, sizeof(last_site));
    ERR_clear_error();
}

const char *
skr_err_detail(void)
{
    if (last_site.file == NULL) {
        return skr_err_msg();
    }
    (void)snprintf(detail_buf, sizeof(detail_buf), "%s (%s:%d)", skr_err_msg(), last_site.file,
                   last_site.line);
    return detail_buf;
}

const char *
skr_version(void)
{
    return SKR_VERSION;
}
