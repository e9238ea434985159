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
#include "jose.h"
#include "ossl.h"
#include "secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Largest plaintext a fuzz input can produce (libFuzzer's default -max_len is 4096). */
#define FUZZ_MAX_OUT (1u << 20)

/* A throwaway RSA-2048 key for fuzzing only: it protects nothing. */
static const char fuzz_rsa_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCppaIg1RPO9BTn\n"
    "a+cxJesBDyW2oHZpazyHZF+QAR3ftmYixqXFImLK57r58DHnWHr4PGCces+1Hc4b\n"
    "NTYiZj65dIfGK84KPU9F097xyXSNN0IiVEzmxBStEoITYknRg0UJlAvoTKmH2Onc\n"
    "/C0ACRSRVt4piuFvNc4leIACpl2ZsvmfmTFZPbipjm9FP7h0t6yXR3eupfw6apLW\n"
    "yaRTslp++93QZbmyIVZTZWtubq++/egMwj7flOOYveWk7xhPXtoFVnEVKpuvm/JD\n"
    "RUtgzJakBxVGVnN5heXFo+cwpdO2ev2Oex7j4b8UxOOMlG/AAYv4REt4lbh84e0T\n"
    "41E0Q30VAgMBAAECggEAFj8EHa4TZOYY/6fkr0s7n+3ukh5EqNpJG7AL4ARleHqg\n"
    "thq6jjlOHzF4EWJwCNhPd9HjEWIBbsyzxFmb+bLSstsXGuOPp0QW6x83cxlp0ULX\n"
    "x0yqsPAxjeiJaiVPbMv795+UWCgFay0Erdfbxs9qBQ0RIP13RnAV0lAU6UQLriXV\n"
    "QI9D0v7TFZipVrOj2skZSfrA64zBPGiOWndqLULoAabHb7tKcUB+ZgDSU+rrzxVR\n"
    "qcMX5qnEgqxwWTbpxVWdjpn1pxo3gEt53aQ5b43tC+UUvvdnkvKMwui7KugruKYo\n"
    "t7CIlJvuEY5AtjyNzoFZNLsgjtJUr+vtQsY+6xCkwQKBgQDismQa1MpN+6GjSNCO\n"
    "U0MUTQfmX1Uc7ehk7vv0OLL2s+9LSzvQr5OFylirInUlwysToPLg9N734U7EJ1DW\n"
    "3RpyDU+n+N++jsSyeTXHwPoa1ew6KIcF+e69xWp5dlFXh664LurxQD+OXnPtLTUI\n"
    "KzgeqnNhrXIPyTcnLqDQTOSZLQKBgQC/k2kG9c41dxAJyStZmbY+8+u3fUJP7Fu6\n"
    "1Tj3R3gNzsduZtFQmOWkBFYy9Zx9HXNdtm/Q91nH1p+2+nPtUSk2dFE/otHn1jjU\n"
    "ozbNcjSlz9Qt3eFYGZeFuxI5m/c6rxHQyWSt7s3HsbgkDZiYwoHTHiUdr6XoYavt\n"
    "6PfdB44UiQKBgBj0JgzGC5bV8g71Pu/LvoCHki0LpWTP01r464cQjrKVT+vr1iO8\n"
    "j/KUOXptCpQjjaRVfSbCDaEfjfoNkdp08CpJyNDmlkp1kLVMnlzkoyM9FQm52FMS\n"
    "FfORvYytN3r5FoRztazks5pKT1x2M3Y4u660eIrx+rI+JfIMMet761XpAoGBAI9Y\n"
    "r8fDeW7MDjYkTsmWmKV2QrRjh5DiHKkqDpwI4C4EwXk8efbC0WHu1MkAuv1rYf2H\n"
    "GxfTXVyIna1+reuvRRU35+uj20iMJK4HCmSjxf0kC3HeilUvoQ8xsStmJpHEmaIO\n"
    "b8Ut4NBBjLV9bucu85GTBta1rYC6RLmaDo1Wr9txAoGAe1RYmmfMnP5kLjLO4Cuc\n"
    "Z+7lCeUv1VAfT0az24D9rvWyb6H6Joegw3kTb5OpfmDVTKcfmCRyiGVrxiuioquk\n"
    "Wj95pE8N9IwcILnUB8W0+dCQGEycuEBIxmkGY3WkP7QvYEeFlMI7iwI3YziLYg87\n"
    "ib4XoZlhNZlDZsanhn75nHM=\n"
    "-----END PRIVATE KEY-----\n";

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
    BIO *b;

    if (keys[which] != NULL) {
        return keys[which];
    }
    if (which < 2) {
        keys[which] = key_from_text(oct[which]);
        return keys[which];
    }
    b = BIO_new_mem_buf(fuzz_rsa_pem, (int)sizeof(fuzz_rsa_pem) - 1);
    pk = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (pk == NULL || skr_jwk_from_pkey(pk, true, &j) != SKR_OK) {
        abort();
    }
    EVP_PKEY_free(pk);
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
