/*
 * b64.c - RFC 4648 base64 (§4) and base64url (§5). Decoding accepts input with or without
 * '=' padding (Azure mixes both, PROTOCOLS.md §0); padding that is present must be complete
 * and last. Non-zero trailing bits are accepted, as Go's and OpenSSL's decoders do.
 */
#include "b64.h"

#include <string.h>

static const char std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

skr_err
skr_b64_encode(struct skr_span in, unsigned int flags, struct skr_buf *out)
{
    const char *alpha = (flags & SKR_B64_URL) != 0 ? url_alpha : std_alpha;
    bool pad = (flags & SKR_B64_PAD) != 0;
    size_t i = 0;
    size_t need;

    ENSURE(in.len <= (SIZE_MAX / 4) * 3 - 3, SKR_E_TOO_LARGE, "input too large");
    need = (in.len + 2) / 3 * 4;
    TRY(skr_buf_reserve(out, need));
    for (; i + 3 <= in.len; i += 3) {
        uint32_t v = (uint32_t)in.ptr[i] << 16 | (uint32_t)in.ptr[i + 1] << 8 | in.ptr[i + 2];
        char q[4] = { alpha[v >> 18], alpha[(v >> 12) & 63], alpha[(v >> 6) & 63], alpha[v & 63] };

        TRY(skr_buf_append(out, q, 4));
    }
    if (in.len - i == 1) {
        uint32_t v = (uint32_t)in.ptr[i] << 16;
        char q[4] = { alpha[v >> 18], alpha[(v >> 12) & 63], '=', '=' };

        TRY(skr_buf_append(out, q, pad ? 4 : 2));
    } else if (in.len - i == 2) {
        uint32_t v = (uint32_t)in.ptr[i] << 16 | (uint32_t)in.ptr[i + 1] << 8;
        char q[4] = { alpha[v >> 18], alpha[(v >> 12) & 63], alpha[(v >> 6) & 63], '=' };

        TRY(skr_buf_append(out, q, pad ? 4 : 3));
    }
    return SKR_OK;
}

static int
b64_value(uint8_t c, unsigned int flags)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if ((flags & SKR_B64_STD) != 0 && (c == '+' || c == '/')) {
        return c == '+' ? 62 : 63;
    }
    if ((flags & SKR_B64_URL) != 0 && (c == '-' || c == '_')) {
        return c == '-' ? 62 : 63;
    }
    return -1;
}

static bool
is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static skr_err
invalid_char(uint8_t c, size_t offset, unsigned int flags)
{
    if ((flags & SKR_B64_ANY) != SKR_B64_URL) {
        FAIL(SKR_E_MALFORMED, "base64: invalid character");
    }
    if (c == '+' || c == '/') {
        FAIL(SKR_E_MALFORMED, "base64url: standard base64 alphabet ('+' '/') is not allowed");
    }
    FAILF(SKR_E_MALFORMED, "base64url: invalid base64url character at offset %zu", offset);
}

skr_err
skr_b64_decode(struct skr_span in, unsigned int flags, struct skr_buf *out)
{
    uint32_t acc = 0;
    size_t nchars = 0; /* data characters seen */
    size_t npad = 0;
    size_t start = out->len;

    ENSURE((flags & SKR_B64_ANY) != 0, SKR_E_INVALID_ARG, "no base64 alphabet selected");
    TRY(skr_buf_reserve(out, in.len / 4 * 3 + 3));
    for (size_t i = 0; i < in.len; i++) {
        uint8_t c = in.ptr[i];
        int v;

        if ((flags & SKR_B64_SKIP_WS) != 0 && is_ws(c)) {
            continue;
        }
        if (c == '=') {
            if ((flags & SKR_B64_STRICT) != 0) {
                out->len = start;
                FAIL(SKR_E_MALFORMED, "base64url: padding '=' is not allowed (RFC 7515 §2)");
            }
            npad++;
            continue;
        }
        if (npad > 0) {
            out->len = start;
            FAIL(SKR_E_MALFORMED, "base64: data after padding");
        }
        v = b64_value(c, flags);
        if (v < 0) {
            out->len = start;
            return invalid_char(c, i, flags);
        }
        acc = acc << 6 | (uint32_t)v;
        nchars++;
        if (nchars % 4 == 0) {
            uint8_t b[3] = { (uint8_t)(acc >> 16), (uint8_t)(acc >> 8), (uint8_t)acc };

            TRY(skr_buf_append(out, b, 3));
            acc = 0;
        }
    }
    if ((flags & SKR_B64_STRICT) != 0 &&
        ((nchars % 4 == 2 && (acc & 0x0f) != 0) || (nchars % 4 == 3 && (acc & 0x03) != 0))) {
        out->len = start;
        FAIL(SKR_E_MALFORMED, "non-canonical base64url (unused bits set)");
    }
    switch (nchars % 4) {
    case 0:
        ENSURE(npad == 0, SKR_E_MALFORMED, "base64: unexpected padding");
        return SKR_OK;
    case 2: {
        uint8_t b = (uint8_t)(acc >> 4);

        ENSURE(npad == 0 || npad == 2, SKR_E_MALFORMED, "base64: wrong padding");
        return skr_buf_append(out, &b, 1);
    }
    case 3: {
        uint8_t b[2] = { (uint8_t)(acc >> 10), (uint8_t)(acc >> 2) };

        ENSURE(npad == 0 || npad == 1, SKR_E_MALFORMED, "base64: wrong padding");
        return skr_buf_append(out, b, 2);
    }
    default:
        out->len = start;
        FAIL(SKR_E_MALFORMED, "base64: impossible length");
    }
}
