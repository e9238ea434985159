/*
 * policy.h - Azure Key Vault / Managed HSM key release policy (PROTOCOLS.md §7.5-§7.6,
 * pitfall 12): parse, evaluate against the claims of an attestation token, explain.
 *
 * The Key Vault emulator, `skr policy check` and `skr diagnose` all decide through
 * skr_policy_explain(); skr_policy_evaluate() is a wrapper over it, so the decision and its
 * explanation cannot disagree.
 *
 * Grammar accepted:
 *   policy    = {"version": "1.0.0" | "1.0" | "0.2", "anyOf": [authority, ...]}
 *   authority = {"authority": URL, "allOf": [cond, ...]} | {"authority": URL, "anyOf": [...]}
 *   cond      = {"claim": NAME, "equals": VALUE} | {"anyOf": [cond, ...]} | {"allOf": [...]}
 *             | {"claim": NAME, "condition": "equals", "value": VALUE}   (version 0.2 only)
 *   VALUE     = string | integer | true | false
 * Deliberate choices where Key Vault is undocumented (each rejects rather than guesses):
 *   - unknown members anywhere, empty lists, real-number and null/object/array values are parse
 *     errors; the reserved operators (notEquals, less, lessOrEquals, greater, greaterOrEquals,
 *     exists) are SKR_E_UNSUPPORTED naming the operator;
 *   - authority matching strips one trailing '/' from both sides, then compares exactly
 *     (case-sensitive, no other URL normalisation);
 *   - values compare as canonical strings: true/false, decimal integers, strings as-is, exact
 *     and case-sensitive ("True" does not match true; "00" does not match 0). A claim that is a
 *     real number, null, an object or an array never matches;
 *   - a dotted claim name is first looked up literally at the top level, then as a path of
 *     nested objects ("x-ms-isolation-tee.x-ms-compliance-status").
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "buf.h"

/* Policy text: real policies are < 4 KiB; AKV stores them inside a key attribute. */
#define SKR_MAX_POLICY_BYTES (64u * 1024u)
/* Nesting of anyOf/allOf below an authority's condition list (Azure CVM policy uses 2). */
#define SKR_POLICY_MAX_DEPTH 8
/* Entries in any one list (authorities, conditions); real policies have < 20. */
#define SKR_POLICY_MAX_LIST 64
/* Condition nodes in a whole policy (bounds evaluation and explanation work). */
#define SKR_POLICY_MAX_NODES 1024
/* Length of a claim name or an authority URL. */
#define SKR_POLICY_MAX_NAME 512

enum skr_policy_node_kind {
    SKR_POLICY_CLAIM = 0, /* claim equals value */
    SKR_POLICY_ALL_OF,
    SKR_POLICY_ANY_OF,
};

struct skr_policy_cond {
    enum skr_policy_node_kind kind;
    /* SKR_POLICY_CLAIM */
    char *claim;
    json_t *value;    /* the value as written (string, integer or boolean) */
    char *canonical;  /* its canonical string form, compared with the claim's */
    bool legacy_form; /* written as {"condition":"equals","value":...} */
    /* SKR_POLICY_ALL_OF / SKR_POLICY_ANY_OF */
    struct skr_policy_cond *children;
    size_t n_children;
};

struct skr_policy_authority {
    char *authority;             /* as written */
    struct skr_policy_cond root; /* kind ALL_OF or ANY_OF, children = the condition list */
};

/* A parsed policy. Read-only for callers; free with skr_policy_free(). */
struct skr_policy {
    char version[8]; /* normalised: "1.0.0" or "0.2" */
    struct skr_policy_authority *authorities;
    size_t n_authorities;
};

void skr_policy_free(struct skr_policy *p);
DEFINE_CLEANUP(struct skr_policy *, skr_policy_free)

/* Parses policy JSON text ({"version":...,"anyOf":[...]}). Errors name the offending member,
 * e.g. "release policy: missing 'version' property". */
SKR_NODISCARD skr_err skr_policy_parse(struct skr_span text, struct skr_policy **ret);
/* Same, from an already parsed JSON object (not modified; non-const for jansson's iterator). */
SKR_NODISCARD skr_err skr_policy_parse_json(json_t *obj, struct skr_policy **ret);
/* From the AKV release_policy object {"contentType": ..., "data": "<base64/base64url>"}.
 * contentType is optional (default application/json) and must be application/json. */
SKR_NODISCARD skr_err skr_policy_parse_release(const json_t *release_policy,
                                               struct skr_policy **ret);
/* Any of: policy text, a release_policy object, or a KeyBundle {"release_policy": {...}}. */
SKR_NODISCARD skr_err skr_policy_load(struct skr_span text, struct skr_policy **ret);

/* The normalised policy as AKV returns it ("1.0" -> "1.0.0"); serialize with
 * JSON_COMPACT | JSON_SORT_KEYS for the byte form AKV stores. */
SKR_NODISCARD skr_err skr_policy_to_json(const struct skr_policy *p, json_t **ret);
/* {"contentType": content_type (NULL => "application/json; charset=utf-8"),
 *  "data": base64url-unpadded(compact sorted JSON)} as in an AKV KeyBundle. */
SKR_NODISCARD skr_err skr_policy_to_release(const struct skr_policy *p, const char *content_type,
                                            json_t **ret);

/* ---- evaluation and explanation ------------------------------------------------------ */

enum skr_policy_seen {
    SKR_POLICY_SEEN_VALUE = 0,   /* claim present with a comparable value */
    SKR_POLICY_SEEN_MISSING,     /* no such claim */
    SKR_POLICY_SEEN_UNSUPPORTED, /* present but a real, null, object or array */
};

/* Mirrors one policy condition. cond is borrowed from the policy. */
struct skr_policy_cond_result {
    const struct skr_policy_cond *cond;
    bool pass;
    /* SKR_POLICY_CLAIM only */
    enum skr_policy_seen seen;
    const char *seen_type; /* "string", "integer", "boolean", "real", "null", "object", "array",
                              or "missing" */
    char *seen_text;       /* canonical form when seen == VALUE (reals: %.17g), else NULL */
    json_t *seen_value;    /* a reference to the claim's value, NULL when missing */
    /* groups */
    struct skr_policy_cond_result *children;
    size_t n_children;
};

struct skr_policy_branch {
    const struct skr_policy_authority *authority; /* borrowed from the policy */
    bool authority_matches;
    bool conditions_pass;
    size_t n_claims_pass; /* claim conditions satisfied, anywhere in the branch */
    struct skr_policy_cond_result root;
};

/* The explanation of one decision. Borrows from the policy: free it first. */
struct skr_policy_explain {
    bool allow;
    const char *version;
    char *issuer; /* NULL when the token has none */
    struct skr_policy_branch *branches;
    size_t n_branches;
    /* deny: the branch with the most satisfied claims among those whose authority matches
     * (first on a tie), or -1 when no authority matches; allow: the first allowing branch */
    long closest;
    const struct skr_policy_cond_result *first_failure; /* deny with closest >= 0 */
    char reason[768];                                   /* one line, for logs and errors */
};

void skr_policy_explain_free(struct skr_policy_explain *x);
DEFINE_CLEANUP(struct skr_policy_explain *, skr_policy_explain_free)

/* Evaluates p against a token's claims (a JSON object). iss NULL => claims["iss"].
 * Returns SKR_OK with the explanation in *ret whatever the decision; errors only for bad
 * arguments or memory. */
SKR_NODISCARD skr_err skr_policy_explain(const struct skr_policy *p, const char *iss,
                                         const json_t *claims, struct skr_policy_explain **ret);
/* The decision alone (via skr_policy_explain). */
SKR_NODISCARD skr_err skr_policy_evaluate(const struct skr_policy *p, const char *iss,
                                          const json_t *claims, bool *ret_allow);

/* {"allow","version","issuer","reason","closest","first_failure",
 *  "authorities":[{"authority","matches_issuer","satisfied","conditions":[...]}]} where a claim
 * condition is {"claim","expected","seen","seen_type","pass"} and a group {"allOf"|"anyOf":
 * [...],"pass"}. */
SKR_NODISCARD skr_err skr_policy_explain_to_json(const struct skr_policy_explain *x, json_t **ret);
/* Human text, one line per authority and per condition, e.g.
 *   "  FAIL x-ms-sevsnpvm-hostdata: expected \"abc\", token has \"def\"". */
SKR_NODISCARD skr_err skr_policy_explain_to_text(const struct skr_policy_explain *x,
                                                 struct skr_buf *out);
