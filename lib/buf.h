/*
 * buf.h - bytes live in three types (STYLE.md C6): a borrowed span, an owned buffer with a
 * hard maximum, and a bounds-checked reading cursor (C7). Nothing outside buf.c does pointer
 * arithmetic on them.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "err.h"

struct skr_span {
    const uint8_t *ptr;
    size_t len;
};

/* Owned, growable up to max. Always wiped before its memory is released. */
struct skr_buf {
    uint8_t *ptr;
    size_t len;
    size_t cap;
    size_t max;
};

struct skr_rd {
    const uint8_t *ptr;
    size_t len;
    size_t off;
};

static inline struct skr_span
skr_span_make(const void *p, size_t n)
{
    return (struct skr_span){ (const uint8_t *)p, n };
}

/* A span over a NUL-terminated string (without the NUL). NULL gives an empty span. */
struct skr_span skr_span_str(const char *s);
bool skr_span_eq(struct skr_span a, struct skr_span b);
bool skr_span_eq_str(struct skr_span a, const char *s);

/* Overflow-checked size addition (C12). */
SKR_NODISCARD skr_err skr_add_sz(size_t a, size_t b, size_t *ret);

void skr_buf_init(struct skr_buf *b, size_t max);
/* Wipes and frees; the buffer is empty (and reusable with the same max) afterwards. */
void skr_buf_done(struct skr_buf *b);
static inline void
skr_buf_donep(struct skr_buf *b)
{
    skr_buf_done(b);
}
/* Sets len to 0 (wiping the old contents), keeps the allocation. */
void skr_buf_reset(struct skr_buf *b);
SKR_NODISCARD skr_err skr_buf_reserve(struct skr_buf *b, size_t extra);
SKR_NODISCARD skr_err skr_buf_append(struct skr_buf *b, const void *p, size_t n);
SKR_NODISCARD skr_err skr_buf_append_span(struct skr_buf *b, struct skr_span s);
SKR_NODISCARD skr_err skr_buf_append_str(struct skr_buf *b, const char *s);
SKR_NODISCARD skr_err skr_buf_append_byte(struct skr_buf *b, uint8_t c);
SKR_NODISCARD skr_err skr_buf_printf(struct skr_buf *b, const char *fmt, ...) SKR_PRINTF(2, 3);
/* Makes ptr a C string (a NUL after len, not counted in len). */
SKR_NODISCARD skr_err skr_buf_cstr(struct skr_buf *b, const char **ret);
static inline struct skr_span
skr_buf_span(const struct skr_buf *b)
{
    return skr_span_make(b->ptr, b->len);
}

void skr_rd_init(struct skr_rd *rd, struct skr_span s);
static inline size_t
skr_rd_left(const struct skr_rd *rd)
{
    return rd->len - rd->off;
}
SKR_NODISCARD skr_err skr_rd_bytes(struct skr_rd *rd, size_t n, struct skr_span *ret);
SKR_NODISCARD skr_err skr_rd_copy(struct skr_rd *rd, void *dst, size_t n);
SKR_NODISCARD skr_err skr_rd_skip(struct skr_rd *rd, size_t n);
SKR_NODISCARD skr_err skr_rd_u8(struct skr_rd *rd, uint8_t *ret);
SKR_NODISCARD skr_err skr_rd_u16le(struct skr_rd *rd, uint16_t *ret);
SKR_NODISCARD skr_err skr_rd_u32le(struct skr_rd *rd, uint32_t *ret);
SKR_NODISCARD skr_err skr_rd_u64le(struct skr_rd *rd, uint64_t *ret);

/* Little-endian stores into a caller array (serializers). */
void skr_put_u16le(uint8_t *p, uint16_t v);
void skr_put_u32le(uint8_t *p, uint32_t v);
void skr_put_u64le(uint8_t *p, uint64_t v);
uint32_t skr_get_u32le(const uint8_t *p);
uint64_t skr_get_u64le(const uint8_t *p);

/* Parses a whole span as an unsigned decimal (or 0x-hex when allow_hex) within [min, max]. */
SKR_NODISCARD skr_err skr_parse_u64(struct skr_span s, bool allow_hex, uint64_t min, uint64_t max,
                                    uint64_t *ret);

/* Parses a whole span of 1..16 hex digits (either case, no prefix) as a uint64. */
SKR_NODISCARD skr_err skr_parse_hex_u64(struct skr_span s, uint64_t *ret);

/* Reads a whole file into b (b->max bounds it; SKR_E_TOO_LARGE past it). "-" is stdin. */
SKR_NODISCARD skr_err skr_read_file(const char *path, struct skr_buf *b);
/* Writes a file atomically (temp file + fsync + rename) with the given mode. */
SKR_NODISCARD skr_err skr_write_file_atomic(const char *path, struct skr_span data,
                                            unsigned int mode);
/* True when every byte of s is zero. */
bool skr_span_is_zero(struct skr_span s);
/* Wipes memory in a way the compiler cannot elide. */
void skr_wipe(void *p, size_t n);
