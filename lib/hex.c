/*
 * hex.c - hexadecimal text <-> bytes.
 */
#include "hex.h"

#include <string.h>

static const char lower_digits[] = "0123456789abcdef";
static const char upper_digits[] = "0123456789ABCDEF";

skr_err
skr_hex_encode(struct skr_span in, bool upper, struct skr_buf *out)
{
    const char *d = upper ? upper_digits : lower_digits;

    ENSURE(in.len <= SIZE_MAX / 2, SKR_E_TOO_LARGE, "input too large");
    TRY(skr_buf_reserve(out, in.len * 2));
    for (size_t i = 0; i < in.len; i++) {
        char pair[2] = { d[in.ptr[i] >> 4], d[in.ptr[i] & 15] };

        TRY(skr_buf_append(out, pair, 2));
    }
    return SKR_OK;
}

void
skr_hex_fmt(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = lower_digits[p[i] >> 4];
        out[2 * i + 1] = lower_digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int
nibble(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

skr_err
skr_hex_decode(struct skr_span in, bool skip_ws, struct skr_buf *out)
{
    size_t start = out->len;
    int hi = -1;

    TRY(skr_buf_reserve(out, in.len / 2));
    for (size_t i = 0; i < in.len; i++) {
        uint8_t c = in.ptr[i];
        int v;

        if (skip_ws && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
            continue;
        }
        v = nibble(c);
        if (v < 0) {
            out->len = start;
            FAILF(SKR_E_MALFORMED, "hex: invalid character at offset %zu", i);
        }
        if (hi < 0) {
            hi = v;
            continue;
        }
        TRY(skr_buf_append_byte(out, (uint8_t)(hi << 4 | v)));
        hi = -1;
    }
    if (hi >= 0) {
        out->len = start;
        FAIL(SKR_E_MALFORMED, "hex: odd number of digits");
    }
    return SKR_OK;
}

skr_err
skr_hex_decode_fixed(struct skr_span in, uint8_t *out, size_t n)
{
    ENSURE(in.len / 2 == n && in.len % 2 == 0, SKR_E_MALFORMED, "hex: wrong length");
    for (size_t i = 0; i < n; i++) {
        int hi = nibble(in.ptr[2 * i]);
        int lo = nibble(in.ptr[2 * i + 1]);

        ENSURE(hi >= 0 && lo >= 0, SKR_E_MALFORMED, "hex: invalid character");
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return SKR_OK;
}
