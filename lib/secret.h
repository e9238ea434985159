/*
 * secret.h - key material lives here (STYLE.md C10): page-aligned, mlock()ed, excluded from
 * core dumps, wiped on every path before its memory is returned.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct skr_secret {
    uint8_t *ptr;
    size_t len;
    size_t map_len; /* private */
    bool is_locked; /* false when mlock() failed (RLIMIT_MEMLOCK); reported, not hidden */
};

/* A zeroed secret of len bytes (1..SKR_MAX_SECRET_BYTES). */
SKR_NODISCARD skr_err skr_secret_new(size_t len, struct skr_secret **ret);
/* A secret holding a copy of s. */
SKR_NODISCARD skr_err skr_secret_from(struct skr_span s, struct skr_secret **ret);
/* Wipes, unlocks and frees; NULL is a no-op. */
void skr_secret_free(struct skr_secret *s);
DEFINE_CLEANUP(struct skr_secret *, skr_secret_free)

static inline struct skr_span
skr_secret_span(const struct skr_secret *s)
{
    return skr_span_make(s->ptr, s->len);
}

/* Secrets currently allocated (tests prove that every path frees them). */
size_t skr_secret_live(void);
/* Times mlock() failed since start; the daemon warns about it. */
size_t skr_secret_lock_failures(void);

/* Makes the process non-dumpable (no core files, no ptrace by peers). Callers in src/ call it at
 * start; lib/ never does. */
SKR_NODISCARD skr_err skr_process_harden(void);
