/*
 * secret.c - skr_secret (STYLE.md C10): key material on its own pages, mlock()ed so it is never
 * swapped, MADV_DONTDUMP so it never lands in a core file, wiped with OPENSSL_cleanse before the
 * pages go back. mlock() can fail under a small RLIMIT_MEMLOCK: the secret is still usable,
 * is_locked says so and the failure is counted for the daemon to report.
 */
#include "secret.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "skr_limits.h"

static atomic_size_t live_secrets;
static atomic_size_t lock_failures;
static _Atomic(skr_secret_lock_hook) lock_hook;
static atomic_bool keep_freed;

skr_err
skr_secret_new(size_t len, struct skr_secret **ret)
{
    long page = sysconf(_SC_PAGESIZE);
    struct skr_secret *s;
    size_t map_len;
    void *p;

    ENSURE(len > 0 && len <= SKR_MAX_SECRET_BYTES, SKR_E_TOO_LARGE, "secret size out of range");
    ENSURE(page > 0, SKR_E_INTERNAL, "no page size");
    map_len = (len + (size_t)page - 1) / (size_t)page * (size_t)page;
    s = calloc(1, sizeof(*s));
    ENSURE(s != NULL, SKR_E_NOMEM, "out of memory");
    p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        free(s);
        FAIL(SKR_E_NOMEM, "cannot map secret memory");
    }
    (void)madvise(p, map_len, MADV_DONTDUMP);
    s->is_locked = mlock(p, map_len) == 0;
    if (!s->is_locked) {
        size_t n = atomic_fetch_add(&lock_failures, 1) + 1;
        skr_secret_lock_hook hook = atomic_load(&lock_hook);

        if (hook != NULL) {
            hook(n);
        }
    }
    s->ptr = p;
    s->len = len;
    s->map_len = map_len;
    atomic_fetch_add(&live_secrets, 1);
    *ret = s;
    return SKR_OK;
}

skr_err
skr_secret_from(struct skr_span in, struct skr_secret **ret)
{
    struct skr_secret *s;

    TRY(skr_secret_new(in.len, &s));
    memcpy(s->ptr, in.ptr, in.len);
    *ret = s;
    return SKR_OK;
}

void
skr_secret_free(struct skr_secret *s)
{
    if (s == NULL) {
        return;
    }
    OPENSSL_cleanse(s->ptr, s->map_len);
    if (s->is_locked) {
        (void)munlock(s->ptr, s->map_len);
    }
    if (atomic_load(&keep_freed)) {
        (void)mprotect(s->ptr, s->map_len, PROT_READ);
    } else {
        (void)munmap(s->ptr, s->map_len);
    }
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
    atomic_fetch_sub(&live_secrets, 1);
}

size_t
skr_secret_live(void)
{
    return atomic_load(&live_secrets);
}

size_t
skr_secret_lock_failures(void)
{
    return atomic_load(&lock_failures);
}

void
skr_secret_set_lock_hook(skr_secret_lock_hook hook)
{
    atomic_store(&lock_hook, hook);
}

void
skr_secret_test_keep_freed(bool keep)
{
    atomic_store(&keep_freed, keep);
}

skr_err
skr_process_harden(void)
{
    ENSURE(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0, SKR_E_INTERNAL,
           "prctl(PR_SET_DUMPABLE, 0) failed");
    ENSURE(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0, SKR_E_INTERNAL, "process is still dumpable");
    return SKR_OK;
}
