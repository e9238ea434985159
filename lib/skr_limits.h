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
