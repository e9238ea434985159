/*
 * release_pool.c - transfer keys made ahead of time (issue #4 "The flow"): RSA key generation
 * (~115 ms for RSA-2048 here, seconds for 4096) is kept off the request path by one background
 * thread that keeps up to size keys ready. A release takes one key and wakes the thread; when
 * the pool is empty (a burst, or size 0) the caller generates its key itself rather than wait.
 * Keys are generated outside the lock; the private halves live in OpenSSL objects and are freed
 * (OpenSSL clears RSA bignums on free) as soon as they leave the pool or the pool stops.
 */
#include <pthread.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "err.h"
#include "ossl.h"
#include "release_int.h"

struct rel_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a key was taken, or stop */
    EVP_PKEY *keys[REL_POOL_MAX];
    size_t n;
    size_t size;
    unsigned int bits;
    bool stop;
    bool has_thread;
    pthread_t thread;
    size_t generated;
};

/* EVP_PKEY_CTX_set_cb: called as prime candidates are tried; 0 stops the generation. */
static int
keygen_progress(EVP_PKEY_CTX *ctx)
{
    const uint64_t *deadline = EVP_PKEY_CTX_get_app_data(ctx);

    return skr_http_now_ms() < *deadline ? 1 : 0;
}

/*
 * An RSA key of bits; with a deadline (CLOCK_MONOTONIC ms, 0: none) the generation stops when it
 * passes (SKR_E_TIMEOUT): a release that finds the pool empty generates inline, and on a busy
 * machine that alone could overrun release_deadline_ms by seconds.
 */
static skr_err
gen_key(unsigned int bits, uint64_t deadline_ms, EVP_PKEY **ret)
{
    _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *k = NULL;
    skr_err e;

    if (ctx != NULL && EVP_PKEY_keygen_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) == 1) {
        if (deadline_ms != 0) {
            EVP_PKEY_CTX_set_app_data(ctx, &deadline_ms);
            EVP_PKEY_CTX_set_cb(ctx, keygen_progress);
        }
        if (EVP_PKEY_generate(ctx, &k) == 1) {
            *ret = k;
            return SKR_OK;
        }
        if (deadline_ms != 0 && skr_http_now_ms() >= deadline_ms) {
            ERR_clear_error();
            FAILF(SKR_E_TIMEOUT,
                  "the deadline (release_deadline_ms) passed in stage internal, while an RSA-%u "
                  "transfer key was being generated",
                  bits);
        }
    }
    e = skr_err_atf(SKR_E_INTERNAL, __FILE__, __LINE__, "cannot generate an RSA-%u transfer key",
                    bits);
    skr_err_add_ossl();
    return e;
}

static void *
pool_main(void *arg)
{
    struct rel_pool *p = arg;

    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        EVP_PKEY *k = NULL;

        if (p->n >= p->size) {
            pthread_cond_wait(&p->wake, &p->lock);
            continue;
        }
        pthread_mutex_unlock(&p->lock);
        if (gen_key(p->bits, 0, &k) != SKR_OK) {
            k = NULL;
        }
        pthread_mutex_lock(&p->lock);
        if (k == NULL) {
            /* Out of memory or entropy: stop filling; takers generate inline and report it. */
            break;
        }
        p->generated++;
        if (p->stop || p->n >= p->size) {
            EVP_PKEY_free(k);
            continue;
        }
        p->keys[p->n++] = k;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

skr_err
rel_pool_new(unsigned int bits, unsigned int size, struct rel_pool **ret)
{
    struct rel_pool *p;

    ENSURE(ret != NULL && size <= REL_POOL_MAX, SKR_E_INVALID_ARG, "bad pool arguments");
    p = calloc(1, sizeof(*p));
    ENSURE(p != NULL, SKR_E_NOMEM, "out of memory");
    p->bits = bits;
    p->size = size;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        FAIL(SKR_E_INTERNAL, "pthread_mutex_init failed");
    }
    if (pthread_cond_init(&p->wake, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        FAIL(SKR_E_INTERNAL, "pthread_cond_init failed");
    }
    if (size > 0) {
        if (pthread_create(&p->thread, NULL, pool_main, p) != 0) {
            rel_pool_free(p);
            FAIL(SKR_E_INTERNAL, "cannot start the transfer-key pool thread");
        }
        p->has_thread = true;
    }
    *ret = p;
    return SKR_OK;
}

void
rel_pool_free(struct rel_pool *p)
{
    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    if (p->has_thread) {
        (void)pthread_join(p->thread, NULL);
    }
    for (size_t i = 0; i < p->n; i++) {
        EVP_PKEY_free(p->keys[i]);
    }
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

skr_err
rel_pool_take(struct rel_pool *p, EVP_PKEY **ret)
{
    EVP_PKEY *k = NULL;
    unsigned int bits;

    ENSURE(p != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    pthread_mutex_lock(&p->lock);
    if (p->n > 0) {
        k = p->keys[--p->n];
        p->keys[p->n] = NULL;
    }
    pthread_cond_signal(&p->wake);
    bits = p->bits;
    pthread_mutex_unlock(&p->lock);
    if (k == NULL) {
        TRY(gen_key(bits, skr_http_deadline(), &k));
        pthread_mutex_lock(&p->lock);
        p->generated++;
        pthread_mutex_unlock(&p->lock);
    }
    *ret = k;
    return SKR_OK;
}

size_t
rel_pool_ready(struct rel_pool *p)
{
    size_t n;

    pthread_mutex_lock(&p->lock);
    n = p->n;
    pthread_mutex_unlock(&p->lock);
    return n;
}

size_t
rel_pool_generated(struct rel_pool *p)
{
    size_t n;

    pthread_mutex_lock(&p->lock);
    n = p->generated;
    pthread_mutex_unlock(&p->lock);
    return n;
}
