/*
 * fuzz_envelope.c - the SKRE file parser and decryption of skr decrypt (lib/envelope.c) on
 * arbitrary bytes, and the JWK key loader of skr encrypt/decrypt.
 *
 * Input: byte 0 selects the mode. sel % 4: 0 = oct-128 key, 1 = oct-256 key, 2 = RSA-2048 key,
 * each fixed (oct bytes 0x00, 0x01, ...; the RSA key below, the one of fuzz_keywrap.c), and the
 * rest is an encrypted file, decrypted with associated data "fuzz" when sel & 4, else none;
 * 3 = the rest is key-file text for skr_env_key_from_jwk. Keys are built once per process. The
 * corpus holds valid files for each key (made with tests/cli/crypt_ref.py, the independent
 * implementation), so mutations reach the RSA-OAEP and GCM code.
 *
 * Properties: no crash or leak, no secret left allocated; a decryption succeeds only when the
 * framing parses, yields exactly ciphertext_len bytes, and leaves the output empty otherwise; a
 * key that loads encrypts and (with its private half) decrypts a message back to itself.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "buf.h"
#include "envelope.h"
#include "err.h"
#include "fuzz_key.h"
#include "jose.h"
#include "ossl.h"
#include "secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Largest plaintext a fuzz input can produce (libFuzzer's default -max_len is 4096). */
#define FUZZ_MAX_OUT (1u << 20)

static struct skr_env_key *
key_from_text(const char *text)
{
    struct skr_env_key *k = NULL;

    if (skr_env_key_from_jwk(skr_span_str(text), &k) != SKR_OK) {
        abort();
    }
    return k;
}

static struct skr_env_key *
fixed_key(unsigned int which)
{
    static const char *const oct[2] = {
        "{\"kty\":\"oct\",\"k\":\"AAECAwQFBgcICQoLDA0ODw\"}",
        "{\"kty\":\"oct\",\"k\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"}",
    };
    static struct skr_env_key *keys[3];
    json_t *j = NULL;
    EVP_PKEY *pk;
    char *text;

    if (keys[which] != NULL) {
        return keys[which];
    }
    if (which < 2) {
        keys[which] = key_from_text(oct[which]);
        return keys[which];
    }
    pk = fuzz_key(); /* shared, owned by fuzz_key.h */
    if (skr_jwk_from_pkey(pk, true, &j) != SKR_OK) {
        abort();
    }
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (text == NULL) {
        abort();
    }
    keys[which] = key_from_text(text);
    free(text);
    return keys[which];
}

static void
check_decrypt(const struct skr_env_key *key, struct skr_span blob, struct skr_span aad)
{
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    struct skr_env_blob b;
    skr_err parsed = skr_env_parse(blob, &b);

    skr_buf_init(&out, FUZZ_MAX_OUT);
    if (skr_env_decrypt(key, blob, aad, &out) != SKR_OK) {
        if (out.len != 0) {
            abort();
        }
        return;
    }
    if (parsed != SKR_OK || out.len != b.ciphertext.len) {
        abort();
    }
}

static void
check_key(struct skr_span text)
{
    static const uint8_t msg[] = "round trip";
    _cleanup_(skr_env_key_freep) struct skr_env_key *k = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf blob = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf back = { 0 };

    if (skr_env_key_from_jwk(text, &k) != SKR_OK) {
        if (k != NULL) {
            abort();
        }
        return;
    }
    skr_buf_init(&blob, FUZZ_MAX_OUT);
    skr_buf_init(&back, FUZZ_MAX_OUT);
    if (skr_env_encrypt(k, skr_span_make(msg, sizeof(msg)), skr_span_str("a"), &blob) != SKR_OK) {
        abort();
    }
    if (!k->has_private) {
        return;
    }
    if (skr_env_decrypt(k, skr_buf_span(&blob), skr_span_str("a"), &back) != SKR_OK ||
        !skr_span_eq(skr_buf_span(&back), skr_span_make(msg, sizeof(msg)))) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t live;
    struct skr_span rest;
    unsigned int sel;

    if (size < 1) {
        return 0;
    }
    sel = data[0];
    rest = skr_span_make(data + 1, size - 1);
    if (sel % 4 != 3) {
        (void)fixed_key(sel % 4);
    }
    live = skr_secret_live();
    if (sel % 4 == 3) {
        check_key(rest);
    } else {
        check_decrypt(fixed_key(sel % 4), rest, skr_span_str((sel & 4) != 0 ? "fuzz" : ""));
    }
    if (skr_secret_live() != live) {
        abort();
    }
    ERR_clear_error();
    return 0;
}
