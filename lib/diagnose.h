/*
 * diagnose.h - the release flow run step by step for an operator (issue #5: `skr diagnose`,
 * skrd's GET /diagnose). Internal: not exported from libskr.so.
 *
 * Steps, in order, each with a status (ok, warn, fail, skip), its milliseconds, one detail line
 * and, for a failure, what to do about it:
 *   SNP device            which device opened (or why none), a probe report's version, VMPL,
 *                         guest policy (warn: debugging allowed) and reported TCB
 *   security context      which files exist and parse; SHA-256 of the security policy vs the
 *                         report's HOST_DATA
 *   certificates          the report's TCB vs the security context's host-amd-cert tcbm, and
 *                         where the chain came from (the flow's sources and TCB recovery, past
 *                         the client's cache)
 *   report verification   skr_snp_verify of the report against that chain
 *   identity token        which identity, audience, expiry and oid (never the token)
 *   MAA attestation       the MAA token's issuer and key claims
 *   key                   GET key: readable, enabled, exportable, its release policy
 *   release policy        the policy evaluated against the fresh MAA claims (skr_policy_explain):
 *                         the unmet claim with expected and actual value, or the authority
 *   key release           a real release with the same MAA token (the released key is unwrapped
 *                         to prove it, then wiped at once: never shown); unless no_release
 * A step whose prerequisite failed is "skip" with the reason. The result ends with one sentence
 * naming the first failed step and its fix.
 *
 * It starts from the configuration, so it works when no client can be built (no SNP device: the
 * identity and key steps then run through a client with snp_device none).
 */
#pragma once

#include <stdbool.h>

#include <jansson.h>

#include "skr/skr.h"

#include "buf.h"

struct skr_diag_request {
    const char *maa_endpoint; /* NULL or "": the MAA, policy and release steps are skipped */
    const char *akv_endpoint; /* NULL or "": the key, policy and release steps are skipped */
    const char *kid;          /* key name, name/version or key URL; NULL or "": as akv */
    const char *access_token; /* optional bearer for the vault (never shown); NULL: the
                               * client's identity (workload identity or IMDS) */
    const char *token_source; /* how access_token was given, for the detail ("--token") */
    bool no_release;          /* skip the release attempt */
};

/* The step names, in order (stable: tests and scripts match them). */
#define SKR_DIAG_STEP_COUNT 9
extern const char *const skr_diag_step_names[SKR_DIAG_STEP_COUNT];

/*
 * Runs every step. cfg is the configuration (may be NULL when c is given: c's is used); c is a
 * ready client to diagnose with (skrd's), or NULL to build one from cfg. *ret receives
 *   {"ok": bool, "broken": step name | null, "summary": one sentence, "total_ms",
 *    "request": {"maa","akv","kid","release"},
 *    "steps": [{"name","status","ms","detail","fix"?}, ...]}
 * SKR_OK whenever a diagnosis was made, whatever it found; SKR_E_INVALID_ARG for a malformed
 * endpoint or kid (naming it); other errors only when the tool itself failed (memory).
 */
SKR_NODISCARD skr_err skr_diagnose(const skr_config *cfg, skr_client *c,
                                   const struct skr_diag_request *req, json_t **ret);

/* The result as a table (status, step, ms, detail; fix lines under failures) and the summary
 * sentence, appended to out. */
SKR_NODISCARD skr_err skr_diagnose_to_text(const json_t *d, struct skr_buf *out);
