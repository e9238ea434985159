/*
 * release_identity.c - bearer tokens for the vault (PROTOCOLS.md §6): AKS workload identity
 * when wi_client_id, wi_tenant_id and wi_token_file are all set (the federated token file is
 * read every time a token is fetched, since the kubelet rotates it), else the IMDS managed
 * identity (client_id optional). Tokens are cached per (resource, identity) in wiped, locked
 * memory until token_refresh_s before they expire; the cache is shared by all threads of a
 * client. Two threads that miss at once both fetch; the later one's token is kept.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "release_int.h"

static skr_err
identity_name(const struct skr_client *c, bool *is_wi, struct skr_buf *out)
{
    const char *wi_client = rel_opt_str(c->cfg, OPT_WI_CLIENT_ID);
    const char *wi_tenant = rel_opt_str(c->cfg, OPT_WI_TENANT_ID);
    const char *wi_file = rel_opt_str(c->cfg, OPT_WI_TOKEN_FILE);
    const char *mi = rel_opt_str(c->cfg, OPT_CLIENT_ID);

    *is_wi = wi_client != NULL && wi_tenant != NULL && wi_file != NULL;
    if (*is_wi) {
        return skr_buf_printf(out, "wi:%s:%s", wi_tenant, wi_client);
    }
    return skr_buf_printf(out, "mi:%s", mi != NULL ? mi : "");
}

static struct rel_token_entry *
find_entry(struct skr_client *c, const char *resource, const char *identity)
{
    for (size_t i = 0; i < REL_TOKEN_CACHE; i++) {
        struct rel_token_entry *t = &c->tokens[i];

        if (t->token != NULL && strcmp(t->resource, resource) == 0 &&
            strcmp(t->identity, identity) == 0) {
            return t;
        }
    }
    return NULL;
}

static void
entry_clear(struct rel_token_entry *t)
{
    free(t->resource);
    free(t->identity);
    skr_secret_free(t->token);
    *t = (struct rel_token_entry){ 0 };
}

/* A copy of the cached token when it is still fresh enough. */
static skr_err
cache_get(struct skr_client *c, const char *resource, const char *identity, struct skr_secret **ret)
{
    skr_err e = SKR_OK;
    struct rel_token_entry *t;
    int64_t now = (int64_t)time(NULL);

    *ret = NULL;
    pthread_mutex_lock(&c->lock);
    t = find_entry(c, resource, identity);
    if (t != NULL && now + (int64_t)c->token_refresh_s < t->expires_on) {
        e = skr_secret_from(skr_secret_span(t->token), ret);
    }
    pthread_mutex_unlock(&c->lock);
    return e;
}

static void
cache_put(struct skr_client *c, const char *resource, const char *identity,
          const struct skr_secret *token, int64_t expires_on)
{
    struct rel_token_entry *t;
    struct skr_secret *copy = NULL;
    char *r = strdup(resource);
    char *id = strdup(identity);

    if (r == NULL || id == NULL || skr_secret_from(skr_secret_span(token), &copy) != SKR_OK) {
        free(r);
        free(id);
        return; /* not cached: the next call fetches again */
    }
    pthread_mutex_lock(&c->lock);
    t = find_entry(c, resource, identity);
    for (size_t i = 0; t == NULL && i < REL_TOKEN_CACHE; i++) {
        if (c->tokens[i].token == NULL) {
            t = &c->tokens[i];
        }
    }
    if (t == NULL) {
        t = &c->tokens[0];
        for (size_t i = 1; i < REL_TOKEN_CACHE; i++) {
            if (c->tokens[i].expires_on < t->expires_on) {
                t = &c->tokens[i];
            }
        }
    }
    entry_clear(t);
    /*
     * r and id are owned by the cache entry from here on (entry_clear frees them). gcc 12
     * -fanalyzer does not keep stores through t, a pointer to c->tokens[i] at an unknown i, and
     * so reports r and id as leaked here: a false positive.
     */
    SKR_ANALYZER_IGNORE("-Wanalyzer-malloc-leak")
    *t = (struct rel_token_entry){
        .resource = r, .identity = id, .token = copy, .expires_on = expires_on
    };
    SKR_ANALYZER_END
    pthread_mutex_unlock(&c->lock);
}

static skr_err
fetch_wi(struct rel_call *call, const char *resource, struct skr_token *tok)
{
    struct skr_client *c = call->c;
    _cleanup_(skr_buf_donep) struct skr_buf assertion = { 0 };
    const char *path = rel_opt_str(c->cfg, OPT_WI_TOKEN_FILE);

    skr_buf_init(&assertion, REL_MAX_WI_TOKEN_BYTES);
    if (skr_read_file(path, &assertion) != SKR_OK) {
        FAILF(SKR_E_IO, "workload identity: cannot read the federated token file %s: %s", path,
              skr_err_msg());
    }
    ENSURE(assertion.len > 0, SKR_E_MALFORMED,
           "workload identity: the federated token file is "
           "empty");
    return skr_wi_token(
        c->http, rel_opt_str(c->cfg, OPT_AUTHORITY_HOST), rel_opt_str(c->cfg, OPT_WI_TENANT_ID),
        rel_opt_str(c->cfg, OPT_WI_CLIENT_ID), skr_buf_span(&assertion), resource, tok, &call->up);
}

skr_err
rel_identity_token(struct rel_call *call, const char *resource, struct skr_secret **ret)
{
    struct skr_client *c = call->c;
    _cleanup_(skr_buf_donep) struct skr_buf identity = { 0 };
    _cleanup_(skr_secret_freep) struct skr_secret *copy = NULL;
    struct skr_token tok = { 0 };
    const char *id = NULL;
    bool is_wi = false;
    size_t n;
    skr_err e;

    TRY(rel_stage(call, "identity"));
    skr_buf_init(&identity, 1024);
    TRY(identity_name(c, &is_wi, &identity));
    TRY(skr_buf_cstr(&identity, &id));
    TRY(cache_get(c, resource, id, ret));
    if (*ret != NULL) {
        return SKR_OK;
    }
    if (is_wi) {
        e = fetch_wi(call, resource, &tok);
    } else {
        e = skr_imds_token(c->http, c->imds_base, resource, rel_opt_str(c->cfg, OPT_CLIENT_ID),
                           &tok, &call->up);
    }
    if (e != SKR_OK) {
        skr_token_done(&tok);
        return e;
    }
    n = strnlen((const char *)tok.value->ptr, tok.value->len);
    e = skr_secret_new(n + 1, &copy);
    if (e == SKR_OK) {
        memcpy(copy->ptr, tok.value->ptr, n);
        copy->len = n + 1;
        cache_put(c, resource, id, copy, tok.expires_on);
    }
    skr_token_done(&tok);
    TRY(e);
    pthread_mutex_lock(&c->lock);
    c->stats.token_fetches++;
    pthread_mutex_unlock(&c->lock);
    *ret = TAKE_PTR(copy);
    return SKR_OK;
}

void
rel_identity_forget(struct skr_client *c, const char *resource)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < REL_TOKEN_CACHE; i++) {
        if (c->tokens[i].token != NULL && strcmp(c->tokens[i].resource, resource) == 0) {
            entry_clear(&c->tokens[i]);
        }
    }
    pthread_mutex_unlock(&c->lock);
}

void
rel_identity_done(struct skr_client *c)
{
    for (size_t i = 0; i < REL_TOKEN_CACHE; i++) {
        entry_clear(&c->tokens[i]);
    }
}
