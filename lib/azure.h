/*
 * azure.h - the clients of the release flow's Azure services (PROTOCOLS.md §4.1, §5, §6, §7):
 * IMDS managed-identity tokens and THIM certificates, AKS workload identity (Entra client
 * credentials with a federated assertion), Microsoft Azure Attestation (attest/SevSnpVm), and
 * Azure Key Vault / Managed HSM (release, get key), with the release JWS checked before
 * anything is unwrapped.
 *
 * Every call that talks to a service fills a struct skr_upstream (may be NULL) with what the
 * caller needs for an error report: HTTP status, x-ms-request-id, the service's error code and
 * message (bounded, printable ASCII, never a token). Statuses outside 2xx become SKR_E_UPSTREAM
 * (5xx, 429, 408 after the client's retries), SKR_E_POLICY (AKV 403 on release), SKR_E_NOT_FOUND
 * (404), or SKR_E_INVALID_ARG (other 4xx); each message names the service and the status.
 * Tokens only ever live in struct skr_secret.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "buf.h"
#include "http_client.h"
#include "keywrap.h"
#include "secret.h"

/* Error detail of the last exchange with a service. All strings NUL-terminated, possibly "". */
struct skr_upstream {
    long status;                 /* HTTP status of the last attempt, 0 when none arrived */
    unsigned int attempts;       /* attempts made (retries included) */
    char request_id[128];        /* x-ms-request-id */
    char code[64];               /* error.code (AKV/MAA) or error (Entra/IMDS) */
    char message[256];           /* error.message / error_description, cut, ASCII only */
    char challenge_resource[96]; /* AKV 401: resource="..." of WWW-Authenticate */
};

/* "https://vault.azure.net" or "https://managedhsm.azure.net" (endpoint contains "managedhsm"). */
const char *skr_akv_resource_for(const char *akv_endpoint);

/*
 * Base URL of a service endpoint as users write it: "host", "host:port" or "https://host[:port]"
 * (a trailing "/" is dropped) -> "https://host[:port]". Anything else (another scheme, a path,
 * a query, userinfo, whitespace, an empty host, over 253 characters) is SKR_E_INVALID_ARG naming
 * what. *host_out (may be NULL) receives the host alone (no port, IPv6 brackets removed) for
 * certificate name checks; both are appended to their buffers.
 */
SKR_NODISCARD skr_err skr_endpoint_base(const char *endpoint, struct skr_buf *url_out,
                                        struct skr_buf *host_out);

/* ---- identity ------------------------------------------------------------------------- */

/* An access token: value is a NUL-terminated string in locked, wiped memory. */
struct skr_token {
    struct skr_secret *value;
    int64_t expires_on; /* Unix seconds; from expires_on, else now + expires_in */
};
void skr_token_done(struct skr_token *t);

/*
 * IMDS managed identity (PROTOCOLS.md §6.1): GET {imds_base}/metadata/identity/oauth2/token
 * ?api-version=2018-02-01&resource=<resource>[&client_id=<id>] with "Metadata: true".
 * imds_base is "http://169.254.169.254" in Azure (http or https accepted). The response's
 * numbers may be strings or numbers. Errors name IMDS and carry error/error_description.
 */
SKR_NODISCARD skr_err skr_imds_token(struct skr_http_client *c, const char *imds_base,
                                     const char *resource, const char *client_id,
                                     struct skr_token *ret, struct skr_upstream *up);

/*
 * AKS workload identity (PROTOCOLS.md §6.2): POST {authority}/{tenant}/oauth2/v2.0/token with
 * grant_type=client_credentials, client_assertion_type=jwt-bearer, client_assertion=<assertion>,
 * client_id, scope=<resource>/.default. authority is AZURE_AUTHORITY_HOST (trailing "/"
 * optional; NULL: "https://login.microsoftonline.com"). tenant must be a GUID or a DNS-like
 * name (letters, digits, '.', '-'). The assertion is the federated token file's content
 * (surrounding whitespace trimmed).
 */
SKR_NODISCARD skr_err skr_wi_token(struct skr_http_client *c, const char *authority,
                                   const char *tenant, const char *client_id,
                                   struct skr_span assertion, const char *resource,
                                   struct skr_token *ret, struct skr_upstream *up);

/* THIM (PROTOCOLS.md §4.1): GET {imds_base}/metadata/THIM/amd/certification with
 * "Metadata: true"; the JSON body is appended to ret_json (parse with skr_thim_parse). */
SKR_NODISCARD skr_err skr_imds_thim(struct skr_http_client *c, const char *imds_base,
                                    struct skr_buf *ret_json, struct skr_upstream *up);

/* ---- MAA ------------------------------------------------------------------------------ */

struct skr_maa_evidence {
    struct skr_span report;          /* the 1184-byte SNP report */
    struct skr_span vcek_chain;      /* PEM: VCEK, ASK, ARK */
    struct skr_span uvm_endorsement; /* decoded reference-info (COSE_Sign1); may be empty */
    struct skr_span runtime_data;    /* bytes whose SHA-256 is REPORT_DATA[0..31] (JSON) */
    struct skr_span init_data; /* decoded security policy (HOST_DATA preimage); may be empty */
};

/*
 * The attest/SevSnpVm request body exactly as PROTOCOLS.md §5.1 (SCC member order: report,
 * runtimeData, initTimeData, nonce; padded base64url; Endorsements {"Uvm":[...]} only when an
 * endorsement is given; initTimeData omitted when init_data is empty). Appended to out.
 */
SKR_NODISCARD skr_err skr_maa_request_json(const struct skr_maa_evidence *ev, struct skr_buf *out);

/*
 * POST {base(maa_endpoint)}/attest/SevSnpVm?api-version=<api_version> (NULL: "2022-08-01") with
 * the body above and User-Agent user_agent (NULL: the client's). On 200 the "token" member
 * (a compact JWS, at most SKR_MAX_JWT_BYTES, non-empty) is appended to ret_token as a
 * NUL-terminated string. The token's signature is not checked here (the vault checks it).
 */
SKR_NODISCARD skr_err skr_maa_attest(struct skr_http_client *c, const char *maa_endpoint,
                                     const char *api_version, const char *user_agent,
                                     const struct skr_maa_evidence *ev, struct skr_buf *ret_token,
                                     struct skr_upstream *up);

/* ---- AKV / Managed HSM ------------------------------------------------------------------ */

/*
 * POST {base(akv_endpoint)}/keys/{kid}/release?api-version=<api_version> (NULL: "7.4") with
 * Authorization: Bearer <bearer> and {"target": maa_token, "enc": <enc name>}. kid is a key
 * name, "name/version", or a full key URL on the same vault (reduced to name[/version]); names
 * are 1..127 of [0-9A-Za-z-]. On 200 the "value" member (compact JWS) is appended to ret_jws.
 * A 401 fills up->challenge_resource from WWW-Authenticate when present.
 */
SKR_NODISCARD skr_err skr_akv_release(struct skr_http_client *c, const char *akv_endpoint,
                                      const char *kid, const char *api_version, const char *bearer,
                                      const char *maa_token, enum skr_kw_alg enc,
                                      struct skr_buf *ret_jws, struct skr_upstream *up);

/*
 * GET {base(akv_endpoint)}/keys/{kid}?api-version=... -> the key bundle JSON (new reference),
 * used to read a key's release_policy when explaining a denial.
 */
SKR_NODISCARD skr_err skr_akv_get_key(struct skr_http_client *c, const char *akv_endpoint,
                                      const char *kid, const char *api_version, const char *bearer,
                                      json_t **ret, struct skr_upstream *up);

/*
 * The keys API with a request body (PROTOCOLS.md §7.5): import PUT {base}/keys/{name}, create
 * POST {base}/keys/{name}/create, update PATCH {base}/keys/{kid} (kid = name or name/version,
 * or a key URL on the same vault), each ?api-version=<api_version> (NULL: "7.4") with
 * Authorization: Bearer <bearer>. body (JSON, 1 byte..1 MiB) is sent as given: an import body
 * holds private key material, so the caller keeps it in a wiped buffer (lib/keyconfig.h builds
 * them). On 2xx the key bundle is returned (new reference); errors as for every call here,
 * with up filled (AKV's error code, e.g. BadParameter, and message, e.g. "AKV.SKR.1020: ...").
 */
SKR_NODISCARD skr_err skr_akv_import_key(struct skr_http_client *c, const char *akv_endpoint,
                                         const char *name, const char *api_version,
                                         const char *bearer, struct skr_span body, json_t **ret,
                                         struct skr_upstream *up);
SKR_NODISCARD skr_err skr_akv_create_key(struct skr_http_client *c, const char *akv_endpoint,
                                         const char *name, const char *api_version,
                                         const char *bearer, struct skr_span body, json_t **ret,
                                         struct skr_upstream *up);
SKR_NODISCARD skr_err skr_akv_update_key(struct skr_http_client *c, const char *akv_endpoint,
                                         const char *kid, const char *api_version,
                                         const char *bearer, struct skr_span body, json_t **ret,
                                         struct skr_upstream *up);

/* A verified release response. */
struct skr_akv_released {
    json_t *payload;              /* the whole JWS payload (owned) */
    const char *kty;              /* response.key.key.kty (borrowed from payload) */
    const json_t *key_ops;        /* response.key.key.key_ops array or NULL (borrowed) */
    const char *key_id;           /* response.key.key.kid or NULL (borrowed) */
    enum skr_kw_alg enc;          /* key_hsm.header.enc (must equal request.enc when both exist) */
    const char *wrap_kid;         /* key_hsm.header.kid (borrowed) */
    struct skr_buf ciphertext;    /* decoded key_hsm.ciphertext */
    const json_t *release_policy; /* response.key.release_policy or NULL (borrowed) */
    json_t *key_hsm;              /* the decoded key_hsm object (owned; wrap_kid points into it) */
};
void skr_akv_released_done(struct skr_akv_released *r);

/*
 * Checks a release JWS before anything is unwrapped (PROTOCOLS.md §7.2): parse; x5c present;
 * x5c[0] verifies the signature (RS256/PS256..); x5t#S256 matches when present; x5c[0] chains
 * to trust (intermediates from x5c[1..]) and its name matches the host of akv_endpoint
 * (DNS name or IP address); payload has response.key.key with kty in RSA|RSA-HSM|EC|EC-HSM|
 * oct|oct-HSM and key_hsm (base64url JSON with header.enc/kid and ciphertext, schema_version
 * "1.0" or "1.0.0"). Failures: SKR_E_VERIFY (signature, chain, name) naming the check,
 * SKR_E_MALFORMED naming the member.
 */
SKR_NODISCARD skr_err skr_akv_release_verify(struct skr_span jws, const char *akv_endpoint,
                                             X509_STORE *trust, struct skr_akv_released *ret);

/*
 * Unwraps rel's key_hsm with the transfer key (skr_rsa_aes_unwrap; wrap_kid must equal
 * transfer_kid) and builds the JWK the reference sidecar returns: oct/oct-HSM -> {"k","kty":"oct"},
 * RSA/RSA-HSM -> {"d","dp","dq","e","kty":"RSA","n","p","q","qi"}, EC/EC-HSM ->
 * {"crv","d","kty":"EC","x","y"}, plus "key_ops" copied from the released key when non-empty.
 * Members in sorted order, compact, as jwx marshals them. The JSON text is written by hand into
 * *ret (a new secret, NUL-terminated; skr_secret_span covers the text without the NUL) so that
 * private material never passes through jansson or any other heap memory that is not wiped.
 */
SKR_NODISCARD skr_err skr_akv_unwrap_jwk(const struct skr_akv_released *rel, EVP_PKEY *transfer_key,
                                         const char *transfer_kid, struct skr_secret **ret);

/* ---- parsers of untrusted responses (used by the calls above; exposed for fuzz/fuzz_azure.c
 * and the unit tests, which reach them without a server or a valid signature) ------------- */

/*
 * An IMDS or Entra token response: access_token (non-empty, visible ASCII, at most
 * SKR_MAX_JWT_BYTES), token_type "Bearer" when present, expires_on (number or decimal string)
 * else now + expires_in. On success *ret holds a new secret; on failure *ret is untouched.
 */
SKR_NODISCARD skr_err skr_token_parse(struct skr_span body, int64_t now, struct skr_token *ret);

/* An MAA attest response {"token": <compact JWS>}: the token is appended to ret_token as a
 * NUL-terminated string. */
SKR_NODISCARD skr_err skr_maa_parse_response(struct skr_span body, struct skr_buf *ret_token);

/* An AKV release response {"value": <compact JWS>}: appended to ret_jws, NUL-terminated. */
SKR_NODISCARD skr_err skr_akv_parse_release_response(struct skr_span body, struct skr_buf *ret_jws);

/*
 * The JWS payload of a release response (already verified by skr_akv_release_verify, which
 * calls this): the checks of skr_akv_release_verify's last sentence. *ret must be zeroed; on
 * failure it is left zeroed.
 */
SKR_NODISCARD skr_err skr_akv_release_parse_payload(struct skr_span payload,
                                                    struct skr_akv_released *ret);

/*
 * The error detail of a non-2xx reply: code and message from {"error":{"code","message"}}
 * (AKV, MAA) or {"error","error_description"} (IMDS, Entra), and challenge_resource from a
 * WWW-Authenticate value (may be NULL). Never fails; fills what it finds (printable ASCII,
 * cut to the member sizes) and leaves the other members as they were.
 */
void skr_upstream_parse_error(struct skr_span body, const char *www_authenticate,
                              struct skr_upstream *up);
