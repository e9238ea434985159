/*
 * hex.h - hexadecimal text <-> bytes.
 */
#pragma once

#include <stdbool.h>

#include "buf.h"

/* Appends lowercase (or uppercase) hex of in to out. */
SKR_NODISCARD skr_err skr_hex_encode(struct skr_span in, bool upper, struct skr_buf *out);
/* Appends the bytes of hex text (either case; whitespace ignored when skip_ws) to out. */
SKR_NODISCARD skr_err skr_hex_decode(struct skr_span in, bool skip_ws, struct skr_buf *out);
/* Decodes exactly n bytes from hex text (no whitespace) into out. */
SKR_NODISCARD skr_err skr_hex_decode_fixed(struct skr_span in, uint8_t *out, size_t n);
/* Writes lowercase hex of n bytes plus a NUL into out (2n+1 bytes). */
void skr_hex_fmt(const uint8_t *p, size_t n, char *out);
