/*
 * log.c - the log sink of src/ programs (STYLE.md C13): one line per event, level-filtered,
 * every line redacted before it is written. Redaction is a safety net under the rule that code
 * never formats secrets into messages: bearer tokens, JWTs, JSON or form members that carry
 * tokens or key material, PEM private keys and long base64 blobs become "[REDACTED]".
 */
#include "log.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "skr_limits.h"

static const char *log_prog = "skr";
static enum skr_log_level log_level = SKR_LOG_INFO;
static FILE *log_file;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
skr_log_init(const char *prog, enum skr_log_level level, FILE *f)
{
    log_prog = prog != NULL ? prog : "skr";
    log_level = level;
    log_file = f;
}

void
skr_log_set_level(enum skr_log_level level)
{
    log_level = level;
}

enum skr_log_level
skr_log_get_level(void)
{
    return log_level;
}

skr_err
skr_log_level_parse(const char *s, enum skr_log_level *ret)
{
    static const struct {
        const char *name;
        enum skr_log_level level;
    } names[] = {
        { "error", SKR_LOG_ERROR }, { "fatal", SKR_LOG_ERROR },  { "panic", SKR_LOG_ERROR },
        { "warn", SKR_LOG_WARN },   { "warning", SKR_LOG_WARN }, { "info", SKR_LOG_INFO },
        { "debug", SKR_LOG_DEBUG }, { "trace", SKR_LOG_DEBUG },
    };

    for (size_t i = 0; i < SKR_ARRAY_LEN(names); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *ret = names[i].level;
            return SKR_OK;
        }
    }
    FAILF(SKR_E_INVALID_ARG, "unknown log level '%.32s' (error, warn, info, debug)", s);
}

/* ---- redaction ------------------------------------------------------------------------ */

/* Members whose values are tokens or key material (JSON "name": "value" and name=value). */
static const char *const secret_names[] = {
    "access_token", "refresh_token", "id_token",    "client_assertion", "client_secret",
    "password",     "token",         "target",      "key_hsm",          "ciphertext",
    "key",          "sig",           "private_key",
};
/* JWK private members: JSON form only (single letters are too common in text). */
static const char *const jwk_private[] = { "k", "d", "p", "q", "dp", "dq", "qi" };

static const char redacted[] = "[REDACTED]";

struct redactor {
    const char *in;
    size_t i;
    char *out;
    size_t o;
    size_t count;
};

static bool
is_b64_char(char c)
{
    return isalnum((unsigned char)c) || c == '+' || c == '/' || c == '-' || c == '_' || c == '=';
}

/* Replaces n input chars with the marker (or as many '*' when n is shorter). */
static void
emit_redacted(struct redactor *r, size_t n)
{
    if (n >= sizeof(redacted) - 1) {
        memcpy(r->out + r->o, redacted, sizeof(redacted) - 1);
        r->o += sizeof(redacted) - 1;
    } else {
        memset(r->out + r->o, '*', n);
        r->o += n;
    }
    r->i += n;
    r->count++;
}

static void
copy_n(struct redactor *r, size_t n)
{
    memmove(r->out + r->o, r->in + r->i, n);
    r->o += n;
    r->i += n;
}

static bool
at_boundary(const struct redactor *r)
{
    return r->i == 0 || !isalnum((unsigned char)r->in[r->i - 1]);
}

static bool
name_in(const char *s, size_t n, const char *const *names, size_t count)
{
    for (size_t k = 0; k < count; k++) {
        if (strlen(names[k]) == n && strncasecmp(s, names[k], n) == 0) {
            return true;
        }
    }
    return false;
}

/* "name" : "value" with a secret name: copy up to the value's quote, redact the value. */
static bool
try_json_member(struct redactor *r)
{
    const char *s = r->in + r->i + 1;
    const char *end = strchr(s, '"');
    size_t n, j, v;

    if (end == NULL) {
        return false;
    }
    n = (size_t)(end - s);
    if (!name_in(s, n, secret_names, SKR_ARRAY_LEN(secret_names)) &&
        !name_in(s, n, jwk_private, SKR_ARRAY_LEN(jwk_private))) {
        return false;
    }
    j = n + 2;
    while (r->in[r->i + j] == ' ') {
        j++;
    }
    if (r->in[r->i + j] != ':') {
        return false;
    }
    j++;
    while (r->in[r->i + j] == ' ') {
        j++;
    }
    if (r->in[r->i + j] != '"') {
        return false;
    }
    copy_n(r, j + 1);
    for (v = 0; r->in[r->i + v] != '\0' && r->in[r->i + v] != '"'; v++) {
        if (r->in[r->i + v] == '\\' && r->in[r->i + v + 1] != '\0') {
            v++;
        }
    }
    emit_redacted(r, v);
    return true;
}

/* name=value (query strings, forms, SAS tokens). */
static bool
try_form_member(struct redactor *r)
{
    const char *s = r->in + r->i;
    const char *eq = strchr(s, '=');
    size_t n, v;

    if (eq == NULL || !at_boundary(r)) {
        return false;
    }
    n = (size_t)(eq - s);
    if (!name_in(s, n, secret_names, SKR_ARRAY_LEN(secret_names))) {
        return false;
    }
    copy_n(r, n + 1);
    for (v = 0; r->in[r->i + v] != '\0' && strchr("& \t\"',;", r->in[r->i + v]) == NULL; v++) {
    }
    emit_redacted(r, v);
    return true;
}

static bool
try_bearer(struct redactor *r)
{
    size_t v;

    if (strncasecmp(r->in + r->i, "bearer ", 7) != 0 || !at_boundary(r)) {
        return false;
    }
    copy_n(r, 7);
    for (v = 0; r->in[r->i + v] != '\0' && strchr(" \t\"',;", r->in[r->i + v]) == NULL; v++) {
    }
    emit_redacted(r, v);
    return true;
}

static bool
try_pem_private(struct redactor *r)
{
    const char *s = r->in + r->i;
    const char *line_end, *end;

    if (strncmp(s, "-----BEGIN ", 11) != 0) {
        return false;
    }
    line_end = strstr(s + 11, "-----");
    if (line_end == NULL || strstr(s, "PRIVATE KEY") == NULL ||
        strstr(s, "PRIVATE KEY") > line_end) {
        return false;
    }
    end = strstr(line_end + 5, "-----END ");
    if (end != NULL) {
        end = strstr(end + 9, "-----");
    }
    emit_redacted(r, end != NULL ? (size_t)(end + 5 - s) : strlen(s));
    return true;
}

/* A JWT (eyJ...) or a long base64 run that mixes digits and both letter cases. */
static bool
try_blob(struct redactor *r)
{
    const char *s = r->in + r->i;
    bool has_digit = false, has_upper = false, has_lower = false, has_dot = false;
    size_t n = 0;

    if (!at_boundary(r) || !is_b64_char(s[0])) {
        return false;
    }
    for (; is_b64_char(s[n]) || s[n] == '.'; n++) {
        has_digit |= isdigit((unsigned char)s[n]) != 0;
        has_upper |= isupper((unsigned char)s[n]) != 0;
        has_lower |= islower((unsigned char)s[n]) != 0;
        has_dot |= s[n] == '.';
    }
    if (strncmp(s, "eyJ", 3) == 0 && has_dot && n >= 16) {
        emit_redacted(r, n);
        return true;
    }
    if (n >= 48 && has_digit && has_upper && has_lower) {
        emit_redacted(r, n);
        return true;
    }
    return false;
}

size_t
skr_log_redact(char *s)
{
    struct redactor r = { .in = s, .out = s };

    while (s[r.i] != '\0') {
        if (s[r.i] == '"' && try_json_member(&r)) {
            continue;
        }
        if (try_bearer(&r) || try_pem_private(&r) || try_form_member(&r) || try_blob(&r)) {
            continue;
        }
        copy_n(&r, 1);
    }
    s[r.o] = '\0';
    return r.count;
}

/* ---- output --------------------------------------------------------------------------- */

static void
log_write(enum skr_log_level level, char *line)
{
    struct timespec ts;
    struct tm tm;
    char when[32] = "";
    FILE *f = log_file != NULL ? log_file : stderr;

    (void)skr_log_redact(line);
    if (clock_gettime(CLOCK_REALTIME, &ts) == 0 && gmtime_r(&ts.tv_sec, &tm) != NULL) {
        (void)strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    (void)pthread_mutex_lock(&log_lock);
    (void)fprintf(f, "%s %s %s: %s\n", when, log_prog, level_names[level], line);
    (void)fflush(f);
    (void)pthread_mutex_unlock(&log_lock);
}

void
skr_log(enum skr_log_level level, const char *fmt, ...)
{
    char line[SKR_MAX_LOG_LINE];
    va_list ap;

    if (level > log_level) {
        return;
    }
    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_write(level, line);
}

void
skr_log_err(skr_err e, const char *fmt, ...)
{
    char line[SKR_MAX_LOG_LINE];
    const struct skr_err_site *site = skr_err_last();
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof(line)) {
        (void)snprintf(line + n, sizeof(line) - (size_t)n, ": %s err=%s at %s:%d", skr_err_msg(),
                       skr_err_name(e), site->file != NULL ? site->file : "?", site->line);
    }
    log_write(SKR_LOG_ERROR, line);
}
