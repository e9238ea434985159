/*
 * fuzz_key.h - the throwaway RSA-2048 key the fuzz targets share (it protects nothing), parsed
 * once per process.
 */
#pragma once

#include <stdlib.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

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
