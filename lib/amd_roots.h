/*
 * amd_roots.h - the built-in AMD trust anchors: ARK and ASK (and ASVK for VLEK) for Milan,
 * Genoa and Turin, as served by KDS /{vcek,vlek}/v1/{P}/cert_chain. Public AMD data.
 * Pinned by SHA-256 of the ARK DER (PROTOCOLS.md §2.4).
 */
#pragma once

#include <stdbool.h>

#include <openssl/x509.h>

#include "buf.h"
#include "snp_report.h"

/* New references to the built-in ASK (or ASVK when vlek) and ARK of product p. */
SKR_NODISCARD skr_err skr_amd_roots_get(enum skr_snp_product p, bool vlek, X509 **ret_ask,
                                        X509 **ret_ark);
/* True when cert is byte-identical to one of the built-in ARKs; *ret_p gets its product. */
bool skr_amd_roots_is_ark(X509 *cert, enum skr_snp_product *ret_p);
