/*
 * buf.c - skr_span, skr_buf and skr_rd (STYLE.md C6/C7), numbers from text (C12) and whole-file
 * I/O. Invariants: rd.off <= rd.len; buf.len <= buf.cap and buf.len <= buf.max. Every bounds
 * check is written as a subtraction so that it cannot overflow.
 */
#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "skr_limits.h"

struct skr_span
skr_span_str(const char *s)
{
    return s != NULL ? skr_span_make(s, strlen(s)) : skr_span_make(NULL, 0);
}

bool
skr_span_eq(struct skr_span a, struct skr_span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool
skr_span_eq_str(struct skr_span a, const char *s)
{
    return skr_span_eq(a, skr_span_str(s));
}

bool
skr_span_is_zero(struct skr_span s)
{
    uint8_t acc = 0;

    for (size_t i = 0; i < s.len; i++) {
        acc |= s.ptr[i];
    }
    return acc == 0;
}

void
skr_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0) {
        OPENSSL_cleanse(p, n);
    }
}

skr_err
skr_add_sz(size_t a, size_t b, size_t *ret)
{
    size_t sum;

    ENSURE(!__builtin_add_overflow(a, b, &sum), SKR_E_TOO_LARGE, "size overflow");
    *ret = sum;
    return SKR_OK;
}

/* ---- skr_buf ----------------------------------------------------------------------- */

void
skr_buf_init(struct skr_buf *b, size_t max)
{
    *b = (struct skr_buf){ .max = max };
}

void
skr_buf_done(struct skr_buf *b)
{
    size_t max = b->max;

    if (b->ptr != NULL) {
        skr_wipe(b->ptr, b->cap);
        free(b->ptr);
    }
    skr_buf_init(b, max);
}

void
skr_buf_reset(struct skr_buf *b)
{
    skr_wipe(b->ptr, b->len);
    b->len = 0;
}

skr_err
skr_buf_reserve(struct skr_buf *b, size_t extra)
{
    size_t need;
    size_t cap;
    uint8_t *p;

    /* +1 keeps room for the NUL of skr_buf_cstr without another allocation. */
    TRY(skr_add_sz(b->len, extra, &need));
    ENSURE(need <= b->max, SKR_E_TOO_LARGE, "buffer limit reached");
    if (need + 1 <= b->cap) {
        return SKR_OK;
    }
    cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need + 1) {
        ENSURE(cap <= SIZE_MAX / 2, SKR_E_TOO_LARGE, "size overflow");
        cap *= 2;
    }
    if (cap > b->max + 1) {
        cap = b->max + 1;
    }
    /* Never realloc: the old block may hold secrets and must be wiped before it is freed. */
    p = malloc(cap);
    ENSURE(p != NULL, SKR_E_NOMEM, "out of memory");
    if (b->ptr != NULL) {
        memcpy(p, b->ptr, b->len);
        skr_wipe(b->ptr, b->cap);
        free(b->ptr);
    }
    b->ptr = p;
    b->cap = cap;
    return SKR_OK;
}

skr_err
skr_buf_append(struct skr_buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return SKR_OK;
    }
    ENSURE(p != NULL, SKR_E_INVALID_ARG, "NULL data with a length");
    TRY(skr_buf_reserve(b, n));
    memcpy(b->ptr + b->len, p, n);
    b->len += n;
    return SKR_OK;
}

skr_err
skr_buf_append_span(struct skr_buf *b, struct skr_span s)
{
    return skr_buf_append(b, s.ptr, s.len);
}

skr_err
skr_buf_append_str(struct skr_buf *b, const char *s)
{
    return skr_buf_append(b, s, strlen(s));
}

skr_err
skr_buf_append_byte(struct skr_buf *b, uint8_t c)
{
    return skr_buf_append(b, &c, 1);
}

skr_err
skr_buf_printf(struct skr_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    ENSURE(n >= 0, SKR_E_INTERNAL, "bad format");
    TRY(skr_buf_reserve(b, (size_t)n));
    va_start(ap, fmt);
    n = vsnprintf((char *)b->ptr + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    ENSURE(n >= 0 && (size_t)n < b->cap - b->len, SKR_E_INTERNAL, "format changed size");
    b->len += (size_t)n;
    return SKR_OK;
}

skr_err
skr_buf_cstr(struct skr_buf *b, const char **ret)
{
    TRY(skr_buf_reserve(b, 0));
    b->ptr[b->len] = '\0';
    *ret = (const char *)b->ptr;
    return SKR_OK;
}

/* ---- skr_rd -------------------------------------------------------------------------- */

void
skr_rd_init(struct skr_rd *rd, struct skr_span s)
{
    *rd = (struct skr_rd){ .ptr = s.ptr, .len = s.len, .off = 0 };
}

skr_err
skr_rd_bytes(struct skr_rd *rd, size_t n, struct skr_span *ret)
{
    ENSURE(n <= rd->len - rd->off, SKR_E_TRUNCATED, "short read");
    *ret = skr_span_make(rd->ptr + rd->off, n);
    rd->off += n;
    return SKR_OK;
}

skr_err
skr_rd_copy(struct skr_rd *rd, void *dst, size_t n)
{
    struct skr_span s = { 0 };

    TRY(skr_rd_bytes(rd, n, &s));
    if (n > 0) {
        memcpy(dst, s.ptr, n);
    }
    return SKR_OK;
}

skr_err
skr_rd_skip(struct skr_rd *rd, size_t n)
{
    struct skr_span s = { 0 };

    return skr_rd_bytes(rd, n, &s);
}

skr_err
skr_rd_u8(struct skr_rd *rd, uint8_t *ret)
{
    struct skr_span s = { 0 };

    TRY(skr_rd_bytes(rd, 1, &s));
    *ret = s.ptr[0];
    return SKR_OK;
}

skr_err
skr_rd_u16le(struct skr_rd *rd, uint16_t *ret)
{
    struct skr_span s = { 0 };

    TRY(skr_rd_bytes(rd, 2, &s));
    *ret = (uint16_t)(s.ptr[0] | (uint16_t)s.ptr[1] << 8);
    return SKR_OK;
}

skr_err
skr_rd_u32le(struct skr_rd *rd, uint32_t *ret)
{
    struct skr_span s = { 0 };

    TRY(skr_rd_bytes(rd, 4, &s));
    *ret = skr_get_u32le(s.ptr);
    return SKR_OK;
}

skr_err
skr_rd_u64le(struct skr_rd *rd, uint64_t *ret)
{
    struct skr_span s = { 0 };

    TRY(skr_rd_bytes(rd, 8, &s));
    *ret = skr_get_u64le(s.ptr);
    return SKR_OK;
}

uint32_t
skr_get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t
skr_get_u64le(const uint8_t *p)
{
    return (uint64_t)skr_get_u32le(p) | (uint64_t)skr_get_u32le(p + 4) << 32;
}

void
skr_put_u16le(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void
skr_put_u32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

void
skr_put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* ---- numbers from text --------------------------------------------------------------- */

static int
digit_value(uint8_t c, unsigned base)
{
    int v;

    if (c >= '0' && c <= '9') {
        v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
        v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
        v = c - 'A' + 10;
    } else {
        return -1;
    }
    return (unsigned)v < base ? v : -1;
}

skr_err
skr_parse_u64(struct skr_span s, bool allow_hex, uint64_t min, uint64_t max, uint64_t *ret)
{
    unsigned base = 10;
    uint64_t v = 0;
    size_t i = 0;

    if (allow_hex && s.len > 2 && s.ptr[0] == '0' && (s.ptr[1] == 'x' || s.ptr[1] == 'X')) {
        base = 16;
        i = 2;
    }
    ENSURE(i < s.len, SKR_E_MALFORMED, "expected a number");
    ENSURE(s.len - i <= 20, SKR_E_MALFORMED, "number too long");
    for (; i < s.len; i++) {
        int d = digit_value(s.ptr[i], base);

        ENSURE(d >= 0, SKR_E_MALFORMED, "not a number");
        ENSURE(!__builtin_mul_overflow(v, base, &v), SKR_E_MALFORMED, "number out of range");
        ENSURE(!__builtin_add_overflow(v, (uint64_t)d, &v), SKR_E_MALFORMED, "number out of range");
    }
    ENSURE(v >= min && v <= max, SKR_E_MALFORMED, "number out of range");
    *ret = v;
    return SKR_OK;
}

skr_err
skr_parse_hex_u64(struct skr_span s, uint64_t *ret)
{
    uint64_t v = 0;

    ENSURE(s.len >= 1 && s.len <= 16, SKR_E_MALFORMED, "expected 1-16 hex digits");
    for (size_t i = 0; i < s.len; i++) {
        int d = digit_value(s.ptr[i], 16);

        ENSURE(d >= 0, SKR_E_MALFORMED, "expected 1-16 hex digits");
        v = v << 4 | (uint64_t)d;
    }
    *ret = v;
    return SKR_OK;
}

/* ---- files --------------------------------------------------------------------------- */

static void
closep(int *fd)
{
    if (*fd >= 0) {
        (void)close(*fd);
    }
}

skr_err
skr_read_file(const char *path, struct skr_buf *b)
{
    _cleanup_(closep) int fd = -1;
    int in = STDIN_FILENO;

    if (strcmp(path, "-") != 0) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            FAILF(errno == ENOENT ? SKR_E_NOT_FOUND : SKR_E_IO, "cannot open %s: %s", path,
                  strerror(errno));
        }
        in = fd;
    }
    for (;;) {
        ssize_t n;

        if (b->len == b->max) {
            uint8_t probe;

            n = read(in, &probe, 1);
            ENSURE(n <= 0, SKR_E_TOO_LARGE, "file exceeds the size limit");
            if (n == 0) {
                return SKR_OK;
            }
            if (errno == EINTR) {
                continue;
            }
            FAILF(SKR_E_IO, "cannot read %s: %s", path, strerror(errno));
        }
        TRY(skr_buf_reserve(b, b->max - b->len < 4096 ? b->max - b->len : 4096));
        n = read(in, b->ptr + b->len, b->cap - 1 - b->len);
        if (n == 0) {
            return SKR_OK;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            FAILF(SKR_E_IO, "cannot read %s: %s", path, strerror(errno));
        }
        b->len += (size_t)n;
    }
}

skr_err
skr_write_file_atomic(const char *path, struct skr_span data, unsigned int mode)
{
    _cleanup_(skr_buf_donep) struct skr_buf tmp = { 0 };
    _cleanup_(closep) int fd = -1;
    const char *tmp_path;
    size_t off = 0;

    skr_buf_init(&tmp, PATH_MAX);
    TRY(skr_buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid()));
    TRY(skr_buf_cstr(&tmp, &tmp_path));
    fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
    if (fd < 0) {
        FAILF(SKR_E_IO, "cannot create %s: %s", tmp_path, strerror(errno));
    }
    /* The umask may have narrowed the mode; the caller's mode is what is asked for. */
    if (fchmod(fd, (mode_t)mode) != 0) {
        (void)unlink(tmp_path);
        FAILF(SKR_E_IO, "cannot chmod %s: %s", tmp_path, strerror(errno));
    }
    while (off < data.len) {
        ssize_t n = write(fd, data.ptr + off, data.len - off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            (void)unlink(tmp_path);
            FAILF(SKR_E_IO, "cannot write %s: %s", tmp_path, strerror(errno));
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0 || rename(tmp_path, path) != 0) {
        int e = errno;

        (void)unlink(tmp_path);
        FAILF(SKR_E_IO, "cannot write %s: %s", path, strerror(e));
    }
    return SKR_OK;
}
