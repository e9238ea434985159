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
/* Called on every mlock() failure, in the allocating thread, with the failure count so far, so
 * that a program can report it when it happens (lib/ does not log above debug); NULL removes it.
 * The hook must not allocate secrets. */
typedef void (*skr_secret_lock_hook)(size_t failures);
void skr_secret_set_lock_hook(skr_secret_lock_hook hook);
/* Tests only: from now on skr_secret_free wipes and unlocks as always, then leaves the pages
 * mapped read-only instead of unmapping them, so that a test can read freed secret memory and
 * see that every byte was wiped. The pages are never returned. */
void skr_secret_test_keep_freed(bool keep);

/* Makes the process non-dumpable (no core files, no ptrace by peers). Callers in src/ call it at
 * start; lib/ never does. */
SKR_NODISCARD skr_err skr_process_harden(void);
