/*
 * skr_limits.h - every bound a peer or a user can push against (STYLE.md C11).
 * Each value says why it is what it is. Checks happen where the first byte is read.
 */
#pragma once

/* Whole files we read (reports, PEM bundles, security-context files): the largest real one
 * is a THIM JSON of ~7 KiB; 1 MiB leaves room for a long rego policy. */
#define SKR_MAX_FILE_BYTES (1u << 20)

/* JSON documents from peers: SCC caps HTTP bodies at 1 MiB (PROTOCOLS.md pitfall 17). */
#define SKR_MAX_JSON_BYTES (1u << 20)

/* Nesting depth of any JSON we parse: real documents nest < 10 deep. */
#define SKR_MAX_JSON_DEPTH 32

/* One DER certificate: AMD ARK/ASK are ~1.6 KiB, VCEK ~1.4 KiB. */
#define SKR_MAX_CERT_BYTES (16u * 1024u)

/* Certificates in one chain or bundle (VCEK/VLEK + ASK/ASVK + ARK, plus slack). */
#define SKR_MAX_CERT_CHAIN 8

/* Extended-report certificate table: the kernel allows up to 4 pages from the host
 * (SEV_FW_BLOB_MAX_SIZE is 16 KiB); we accept 64 KiB. */
#define SKR_MAX_CERT_TABLE_BYTES (64u * 1024u)

/* Entries in a certificate table (4 GUIDs are defined; allow unknown extras). */
#define SKR_MAX_CERT_TABLE_ENTRIES 16

/* A PEM bundle as text: a few certificates. */
#define SKR_MAX_PEM_BYTES (64u * 1024u)

/* One formatted log line, after which the line is cut. */
#define SKR_MAX_LOG_LINE 2048u

/* A secret buffer (a released key, a transfer key in DER): RSA-4096 PKCS#8 is ~2.4 KiB. */
#define SKR_MAX_SECRET_BYTES (64u * 1024u)

/* configfs-tsm: retries when the generation counter moved under us (a racing writer). */
#define SKR_TSM_MAX_RETRIES 8

/* Extended report: largest certificate buffer we offer the kernel (multiple of 4096). */
#define SKR_MAX_EXT_CERTS_BYTES (16u * 4096u)

/* One compact JWS/JWT: the real mHSM release JWS is 14 KiB (3 certificates in x5c plus the
 * wrapped key), MAA tokens are 3-10 KiB but grow with runtime/init-time claims; 256 KiB leaves
 * room for those while staying well under the 1 MiB HTTP body cap (PROTOCOLS.md pitfall 17). */
#define SKR_MAX_JWT_BYTES (256u * 1024u)

/* RSA modulus sizes we accept in JWKs and for JWS verification: 2048 is the floor of every
 * Azure service and of SCC's transfer key; 8192 bounds the cost of one RSA operation. */
#define SKR_MIN_RSA_BITS 2048
#define SKR_MAX_RSA_BITS 8192

/* ---- HTTP (lib/http_server.c, lib/http_client.c) ---- */

/* One HTTP request or response body: SCC caps HTTP bodies at 1 MiB (PROTOCOLS.md pitfall 17);
 * the largest real one, an AKV release response with a 14 KiB JWS, is far below. */
#define SKR_MAX_HTTP_BODY_BYTES (1u << 20)

/* Request line plus all header fields one peer may send us: Azure requests carry a bearer
 * token (~2-3 KiB) and a few short headers; 16 KiB is what nginx/Apache allow per line. */
#define SKR_MAX_HTTP_HEADER_BYTES (16u * 1024u)

/* Response header bytes the client accepts (all lines of one response): Azure front doors
 * send ~1-2 KiB; anything past 64 KiB is a broken or hostile peer. */
#define SKR_MAX_HTTP_RESPONSE_HEADER_BYTES (64u * 1024u)

/* One captured response header value (WWW-Authenticate, Retry-After, x-ms-request-id,
 * Content-Type): the longest real one, an Entra WWW-Authenticate challenge, is ~300 bytes. */
#define SKR_MAX_HTTP_HEADER_VALUE (4u * 1024u)

/* Extra headers one server response carries (WWW-Authenticate, Retry-After, request ids). */
#define SKR_HTTP_MAX_RESPONSE_HEADERS 8

/* Concurrent connections one server accepts (each gets a thread): skrd has one local client,
 * the emulators a test suite; 64 bounds threads and memory under a connection flood. */
#define SKR_MAX_CLIENTS 64

/* Seconds an idle (or stalled) server connection is kept: covers a slow local client, closes
 * slowloris-style connections. */
#define SKR_HTTP_SERVER_IDLE_TIMEOUT_S 30

/* Seconds a server connection may take to deliver one whole request (headers and body),
 * counted from its accept or from its previous response: the idle timeout above restarts with
 * every byte, so a slow-loris client sending one byte every few seconds would otherwise hold
 * its connection (and thread) for ever. A local client sends a request in milliseconds. Servers
 * opt in (skr_http_server_cfg.request_timeout_s); skrd does. */
#define SKR_HTTP_SERVER_REQUEST_TIMEOUT_S 10

/* Past evict_above connections, a connection with request bytes still waiting for its thread
 * is closed only once it is this old (ms): a burst of well-formed clients is served, a client
 * that pipelines requests and never reads the answers is not kept. */
#define SKR_HTTP_SERVER_EVICT_GRACE_MS 1000u

/* Longest delay an emulator fault may inject per request: long enough to trip any client
 * timeout we use, short enough that a mistyped fault spec cannot hang a test run. */
#define SKR_HTTP_MAX_FAULT_DELAY_MS 60000u

/* Client defaults: a TCP/TLS connect to Azure takes < 1 s; 10 s covers a slow IMDS. The
 * whole-attempt bound matches the reference sidecar's 30 s HTTP client timeout. */
#define SKR_HTTP_CONNECT_TIMEOUT_MS 10000u
#define SKR_HTTP_TIMEOUT_MS         30000u

/* Idle connections one client keeps for reuse (shared by its threads): one per request that
 * can be in flight, so concurrent releases reuse their TLS connections instead of each opening
 * a new one. */
#define SKR_HTTP_MAX_CACHED_CONNECTIONS SKR_MAX_CLIENTS

/* Client retries: attempts after the first (Azure SDKs retry 3 times), the first backoff step
 * (full jitter, doubling each time), and the cap on one wait, Retry-After included, so a peer
 * cannot park us for minutes. The hard ceiling bounds what a caller may configure. */
#define SKR_HTTP_RETRIES       3u
#define SKR_HTTP_RETRY_BASE_MS 200u
#define SKR_HTTP_RETRY_CAP_MS  10000u
#define SKR_HTTP_MAX_RETRIES   10u

/* ---- skrd (src/skrd) ---- */

/* One request body to skrd: the largest real one, a /key/release with a caller's access token
 * (~2-3 KiB), or runtime data for /attest/maa (a JWKS of a few KiB), is far below 64 KiB
 * (issue #4: "request body (64 KiB)"). */
#define SKR_SKRD_MAX_BODY_BYTES (64u * 1024u)

/* Concurrent /key/release calls: default and ceiling. Each holds a transfer key and up to three
 * upstream calls; past the limit skrd answers 503 at once rather than queueing. 8 serves the
 * 8-client benchmark; the ceiling is the connection limit, past which nothing more arrives. */
#define SKR_SKRD_MAX_RELEASES_DEFAULT 8u
#define SKR_SKRD_MAX_RELEASES         SKR_MAX_CLIENTS

/* skrd's connections: past SKR_MAX_CLIENTS open connections the oldest one not inside a
 * handler is closed for each new one (so held-open or slow connections cannot lock a
 * well-behaved client out; libmicrohttpd refuses connections at its limit rather than queueing
 * them), and the hard limit leaves room for that churn. Each connection is a thread and two
 * descriptors (ours is a dup used to cut it): 256 keeps skrd under a default 1024-descriptor
 * limit and its threads' memory bounded (docs/security.md has the figures). */
#define SKR_SKRD_MAX_CONNECTIONS 256u

/* On SIGTERM, how long in-flight requests may finish: under the 30 s grace period Kubernetes
 * and ACI give a container between SIGTERM and SIGKILL, with room for the rest of shutdown. */
#define SKR_SKRD_DRAIN_MS 20000u

/* The base64 SkrSideCarArgs blob: a few hundred bytes in practice (endpoints and ids). */
#define SKR_SKRD_MAX_ARGS_BYTES (64u * 1024u)

/* ---- skr encrypt / decrypt (lib/envelope.c, docs/encryption-format.md) ---- */

/* Plaintext of one encrypted file. Encryption and decryption are one-shot in memory (so that
 * decrypt can hold back every byte until the GCM tag verified), costing about twice the file
 * size in RAM; 1 GiB covers a dataset or a model shard and stays far below GCM's 64 GiB
 * per-nonce ceiling (NIST SP 800-38D §5.2.1.1). Larger data: split it, one file per part. */
#define SKR_MAX_CRYPT_BYTES (1u << 30)

/* A key file for skr encrypt/decrypt: a bare JWK or skrd's {"key":"<JWK>"}; an RSA-8192 private
 * JWK is ~6 KiB of text, ~7 KiB once escaped inside a JSON string. */
#define SKR_MAX_KEY_FILE_BYTES (64u * 1024u)

/* The smallest RSA key skr encrypt accepts: what Key Vault and the transfer keys use at least
 * (NIST SP 800-131A: under 2048 bits is disallowed). */
#define SKR_ENV_MIN_RSA_BITS 2048

/* ---- skr key (lib/keyconfig.c) ---- */

/* An import-key configuration file: the reference's examples are ~1.2 KiB; a full release
 * policy inside one stays below SKR_MAX_POLICY_BYTES (64 KiB, lib/policy.h), plus the rest. */
#define SKR_MAX_KEY_CONFIG_BYTES (128u * 1024u)

/* key_derivation.salt (decoded) and .label: the reference's examples use 32-byte salts and
 * short labels; HKDF takes any length, 1 KiB bounds what we hex-decode and log-free echo. */
#define SKR_MAX_KDF_SALT_BYTES 1024u
#define SKR_MAX_KDF_LABEL      1024u
