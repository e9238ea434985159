/*
 * fuzz_keywrap.c - the key unwrap paths on arbitrary bytes: skr_aes_kwp_unwrap (RFC 5649) and
 * skr_rsa_aes_unwrap (CKM_RSA_AES_KEY_WRAP family), then PKCS#8 decoding of what unwraps.
 *
 * Input: byte 0 selects the KEK size (16/24/32 bytes: sel % 3) and the algorithm
 * ((sel / 3) % 3: CKM_RSA_AES_KEY_WRAP, _256, _384); the rest is the ciphertext for both paths.
 * The KEK is fixed (bytes 0x00, 0x01, ...) and so is the RSA-2048 key below, so the corpus can
 * hold valid wraps that reach the AES-KWP and PKCS#8 code behind RSA-OAEP, and every run is
 * deterministic. The key is parsed once per process, outside the hot loop.
 *
 * Properties: no crash or leak, no secret left allocated; a successful AES-KWP unwrap re-wraps
 * to exactly the input (RFC 5649 is deterministic); an unwrapped plaintext is never empty.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "buf.h"
#include "err.h"
#include "keywrap.h"
#include "ossl.h"
#include "secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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

static EVP_PKEY *
fuzz_key(void)
{
    static EVP_PKEY *key;
    BIO *b;

    if (key == NULL) {
        b = BIO_new_mem_buf(fuzz_rsa_pem, (int)sizeof(fuzz_rsa_pem) - 1);
        key = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (key == NULL) {
            abort();
        }
    }
    return key;
}

static void
check_kwp(struct skr_span kek, struct skr_span ct)
{
    _cleanup_(skr_buf_donep) struct skr_buf again = { 0 };
    struct skr_secret *s = NULL;

    if (skr_aes_kwp_unwrap(kek, ct, &s) != SKR_OK) {
        if (s != NULL) {
            abort();
        }
        return;
    }
    skr_buf_init(&again, ct.len);
    if (s->len == 0 || skr_aes_kwp_wrap(kek, skr_secret_span(s), &again) != SKR_OK ||
        !skr_span_eq(skr_buf_span(&again), ct)) {
        abort();
    }
    skr_secret_free(s);
}

static void
check_rsa(enum skr_kw_alg alg, struct skr_span ct)
{
    struct skr_secret *s = NULL;
    EVP_PKEY *k = NULL;

    if (skr_rsa_aes_unwrap(fuzz_key(), alg, ct, &s) != SKR_OK) {
        if (s != NULL) {
            abort();
        }
        return;
    }
    if (s->len == 0) {
        abort();
    }
    if (skr_kw_pkcs8_to_pkey(skr_secret_span(s), &k) == SKR_OK) {
        EVP_PKEY_free(k);
    }
    skr_secret_free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t kek[32] = {
        0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
        16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    };
    static const size_t kek_lens[3] = { 16, 24, 32 };
    static const enum skr_kw_alg algs[3] = {
        SKR_KW_CKM_RSA_AES_KEY_WRAP,
        SKR_KW_RSA_AES_KEY_WRAP_256,
        SKR_KW_RSA_AES_KEY_WRAP_384,
    };
    size_t live = skr_secret_live();
    struct skr_span ct;

    if (size < 1) {
        return 0;
    }
    ct = skr_span_make(data + 1, size - 1);
    check_kwp(skr_span_make(kek, kek_lens[data[0] % 3]), ct);
    check_rsa(algs[(data[0] / 3) % 3], ct);
    if (skr_secret_live() != live) {
        abort();
    }
    ERR_clear_error();
    return 0;
}
