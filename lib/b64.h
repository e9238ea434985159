/*
 * b64.h - base64 (RFC 4648 §4) and base64url (§5). Encoders append to a skr_buf; decoders
 * accept padded and unpadded input (PROTOCOLS.md §0: the Azure "base64 zoo").
 */
#pragma once

#include "buf.h"

enum skr_b64_flags {
    SKR_B64_STD = 1u << 0, /* '+' '/' alphabet */
    SKR_B64_URL = 1u << 1, /* '-' '_' alphabet */
    SKR_B64_ANY = SKR_B64_STD | SKR_B64_URL,
    SKR_B64_PAD = 1u << 2,     /* encode: emit '=' padding */
    SKR_B64_SKIP_WS = 1u << 3, /* decode: ignore ASCII whitespace (PEM, files with \n) */
    /* decode: no '=' and no unused bits set (RFC 7515 §2), so that every text has one value
     * and a changed character is a changed value */
    SKR_B64_STRICT = 1u << 4,
};

/* Appends the encoding of in to out. flags: STD or URL, optionally PAD. */
SKR_NODISCARD skr_err skr_b64_encode(struct skr_span in, unsigned int flags, struct skr_buf *out);
/* Appends the decoding of in to out. flags: alphabet(s) accepted, optionally SKIP_WS.
 * Padding is optional but, when present, must be correct (with STRICT it is refused).
 * Fails with SKR_E_MALFORMED; for a url-only alphabet the message tells a standard-alphabet
 * character from any other. */
SKR_NODISCARD skr_err skr_b64_decode(struct skr_span in, unsigned int flags, struct skr_buf *out);
