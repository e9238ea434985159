/*
 * cmd_policy.c - `skr policy digest|build|check`: the HOST_DATA a confidential computing
 * security policy produces, release policies built from claims, and offline evaluation of a
 * release policy against a token's claims through skr_policy_explain() (the routine the Key
 * Vault emulator decides with; PROTOCOLS.md §7.5-§7.6).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "b64.h"
#include "cli.h"
#include "hex.h"
#include "jose.h"
#include "json.h"
#include "policy.h"
#include "skr_limits.h"

static const char usage[] =
    "usage: skr policy digest FILE|- [--base64 | --text]\n"
    "       skr policy build --authority URL [--authority URL]... [--claim NAME=VALUE]...\n"
    "                        [--claims FILE] [--from-security-policy FILE] [--any-of]\n"
    "                        [--typed] [--out FILE]\n"
    "       skr policy check POLICY TOKEN|CLAIMS.json [--issuer URL] [--format text|json]\n"
    "\n"
    "digest: prints the HOST_DATA a security policy produces: the hex SHA-256 of the decoded\n"
    "        policy. FILE is rego text or a security-policy-base64 file. Auto-detection: when\n"
    "        the whole input, leading and trailing whitespace removed, is standard base64\n"
    "        (A-Z a-z 0-9 + /, length a multiple of 4, '=' padding only at the end) and\n"
    "        decodes to text (no control characters but tab, CR and LF), the decoded bytes\n"
    "        are hashed; otherwise the input bytes exactly as read. --base64 and --text force\n"
    "        either reading.\n"
    "build:  prints a release policy (version 1.0.0) whose authorities each require the\n"
    "        claims: {\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":URL,\"allOf\":[{\"claim\":\n"
    "        NAME,\"equals\":VALUE},...]}]}. --any-of requires any one claim instead of all.\n"
    "        An authority without a scheme gets https://.\n"
    "        --claim NAME=VALUE  VALUE is a string as written; with --typed, true and false\n"
    "                            become booleans and decimal integers become integers (Key\n"
    "                            Vault matches either form: \"false\" equals false, \"0\" 0)\n"
    "        --claims FILE       a JSON object {\"NAME\": VALUE, ...} or a list of\n"
    "                            {\"claim\": NAME, \"equals\": VALUE}; VALUE a string, integer or\n"
    "                            boolean, kept as written\n"
    "        --from-security-policy FILE  adds x-ms-sevsnpvm-hostdata = the digest of FILE\n"
    "                            (as 'digest' reads it), x-ms-compliance-status =\n"
    "                            azure-compliant-uvm, x-ms-sevsnpvm-is-debuggable = \"false\" and\n"
    "                            x-ms-sevsnpvm-vmpl = \"0\" (false and 0 with --typed), the\n"
    "                            claims of the ACI examples\n"
    "        Claims are added in that order (security policy, --claims, --claim); a later one\n"
    "        with the same NAME replaces the earlier. The result is checked by the policy\n"
    "        parser before it is printed.\n"
    "check:  evaluates POLICY (policy JSON, an AKV release_policy object or a KeyBundle) as Key\n"
    "        Vault does against the claims of TOKEN (a JWT such as an MAA token, or an MAA\n"
    "        response {\"token\": JWT}) or of CLAIMS.json (a JSON object of claims). The issuer\n"
    "        is --issuer, else the \"iss\" claim. The token's signature and lifetime are NOT\n"
    "        checked: this answers whether the claims satisfy the policy, not whether the\n"
    "        token is genuine. Prints ALLOW or DENY and, for each authority of the policy,\n"
    "        every condition with the claim value the token has.\n"
    "        Exit 0 allow, 1 deny, 2 bad input (the file and the field are named).\n";

static const char *const check_formats[] = { "text", "json", NULL };

/* Claims given with --claim: bounded like a policy's condition list. */
#define MAX_CLAIM_ARGS SKR_POLICY_MAX_LIST
/* Authorities given with --authority: bounded like a policy's authority list. */
#define MAX_AUTHORITIES SKR_POLICY_MAX_LIST

enum digest_mode {
    DIGEST_AUTO = 0,
    DIGEST_BASE64,
    DIGEST_TEXT,
};

static bool
is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static struct skr_span
trim(struct skr_span s)
{
    size_t a = 0;
    size_t b = s.len;

    while (a < b && is_space(s.ptr[a])) {
        a++;
    }
    while (b > a && is_space(s.ptr[b - 1])) {
        b--;
    }
    return skr_span_make(s.ptr + a, b - a);
}

static bool
is_b64_std(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Standard base64, padded to a multiple of 4, '=' only as the last one or two characters. */
static bool
looks_base64(struct skr_span s)
{
    size_t pad = 0;

    if (s.len == 0 || s.len % 4 != 0) {
        return false;
    }
    while (pad < 2 && s.ptr[s.len - 1 - pad] == '=') {
        pad++;
    }
    for (size_t i = 0; i < s.len - pad; i++) {
        if (!is_b64_std(s.ptr[i])) {
            return false;
        }
    }
    return true;
}

static bool
is_text(struct skr_span s)
{
    if (s.len == 0) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        uint8_t c = s.ptr[i];

        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
            return false;
        }
    }
    return true;
}

/* hex SHA-256 of the security policy in path, read as mode says. */
static skr_err
policy_digest(const char *path, enum digest_mode mode, char hex[65], bool *was_base64)
{
    _cleanup_(skr_buf_donep) struct skr_buf file = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf dec = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    struct skr_span data;
    struct skr_span t;
    uint8_t md[32];
    unsigned int md_len = 0;

    skr_buf_init(&dec, SKR_MAX_FILE_BYTES);
    skr_buf_init(&out, 80);
    TRY(cli_read(path, &file));
    data = skr_buf_span(&file);
    t = trim(data);
    *was_base64 = false;
    if (mode == DIGEST_BASE64) {
        ENSURE(looks_base64(t), SKR_E_MALFORMED,
               "expected standard base64 (security-policy-base64), found other characters");
        TRY(skr_b64_decode(t, SKR_B64_STD, &dec));
        ENSURE(dec.len > 0, SKR_E_MALFORMED, "the decoded security policy is empty");
        data = skr_buf_span(&dec);
        *was_base64 = true;
    } else if (mode == DIGEST_AUTO && looks_base64(t)) {
        if (skr_b64_decode(t, SKR_B64_STD, &dec) == SKR_OK && is_text(skr_buf_span(&dec))) {
            data = skr_buf_span(&dec);
            *was_base64 = true;
        }
    }
    ENSURE(data.len > 0, SKR_E_MALFORMED, "the security policy is empty");
    TRY_OSSL(EVP_Digest(data.ptr, data.len, md, &md_len, EVP_sha256(), NULL), SKR_E_INTERNAL,
             "SHA-256 failed");
    TRY(skr_hex_encode(skr_span_make(md, sizeof(md)), false, &out));
    ENSURE(out.len == 64, SKR_E_INTERNAL, "unexpected digest length");
    memcpy(hex, out.ptr, 64);
    hex[64] = '\0';
    return SKR_OK;
}

/*
 * The option loop of digest and check: -h and --help print the usage on stdout, an unknown
 * option is a usage error, and an option whose val is below n_vals puts its argument (a flag:
 * its own name) in vals[val], the last one given winning. Then exactly n_operands operands must
 * remain, else the usage error operands_msg. Returns -1 when the command goes on, else the exit
 * code to return.
 */
static int
parse_opts(int argc, char **argv, const struct option *opts, const char **vals, int n_vals,
           int n_operands, const char *operands_msg)
{
    int idx = 0;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        if (c == 'h') {
            (void)fputs(usage, stdout);
            return SKR_EXIT_OK;
        }
        if (c < 0 || c >= n_vals) {
            return cli_usage_error(usage, "bad option");
        }
        vals[c] = optarg != NULL ? optarg : opts[idx].name;
    }
    if (optind + n_operands != argc) {
        return cli_usage_error(usage, "%s", operands_msg);
    }
    return -1;
}

static int
policy_digest_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        { "base64", no_argument, NULL, 0 },
        { "text", no_argument, NULL, 0 },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    enum digest_mode mode = DIGEST_AUTO;
    const char *forced = NULL;
    char hex[65];
    bool was_b64 = false;
    skr_err e;
    int rc;

    rc = parse_opts(argc, argv, opts, &forced, 1, 1,
                    "digest: expected one FILE (or - for standard input)");
    if (rc >= 0) {
        return rc;
    }
    if (forced != NULL) {
        mode = strcmp(forced, "base64") == 0 ? DIGEST_BASE64 : DIGEST_TEXT;
    }
    e = policy_digest(argv[optind], mode, hex, &was_b64);
    if (e != SKR_OK) {
        return cli_fail(e, argv[optind]);
    }
    (void)printf("%s\n", hex);
    return SKR_EXIT_OK;
}

/* ---- build ------------------------------------------------------------------------------ */

static bool
valid_value(const json_t *v)
{
    return json_is_string(v) || json_is_integer(v) || json_is_boolean(v);
}

/* Appends {"claim": name, "equals": v} to conds, or replaces the value of an earlier condition
 * on the same claim. v's reference is stolen. */
static skr_err
add_cond(json_t *conds, const char *name, json_t *v)
{
    _cleanup_(json_decrefp) json_t *val = v;
    _cleanup_(json_decrefp) json_t *cond = NULL;
    size_t i;
    json_t *old;

    ENSURE(val != NULL, SKR_E_NOMEM, "out of memory");
    ENSURE(name[0] != '\0', SKR_E_MALFORMED, "empty claim name");
    ENSURE(strlen(name) <= SKR_POLICY_MAX_NAME, SKR_E_TOO_LARGE, "claim name too long");
    json_array_foreach(conds, i, old)
    {
        if (strcmp(json_string_value(json_object_get(old, "claim")), name) == 0) {
            return skr_json_set(old, "equals", TAKE_PTR(val));
        }
    }
    ENSURE(json_array_size(conds) < SKR_POLICY_MAX_LIST, SKR_E_TOO_LARGE,
           "too many claims (at most 64)");
    cond = json_object();
    ENSURE(cond != NULL, SKR_E_NOMEM, "out of memory");
    TRY(skr_json_set(cond, "claim", json_string(name)));
    TRY(skr_json_set(cond, "equals", TAKE_PTR(val)));
    ENSURE(json_array_append(conds, cond) == 0, SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

/* "-"? digits, no leading zero, within int64. */
static bool
parse_integer(const char *s, json_int_t *ret)
{
    bool neg = s[0] == '-';
    const char *d = neg ? s + 1 : s;
    uint64_t u = 0;

    if (d[0] == '\0' || (d[0] == '0' && d[1] != '\0') || (neg && strcmp(d, "0") == 0)) {
        return false;
    }
    for (const char *p = d; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
    }
    if (skr_parse_u64(skr_span_str(d), false, 0, neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX, &u) !=
        SKR_OK) {
        return false;
    }
    *ret = neg ? (u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(json_int_t)u) : (json_int_t)u;
    return true;
}

static json_t *
typed_value(const char *s, bool typed)
{
    json_int_t n = 0;

    if (typed && strcmp(s, "true") == 0) {
        return json_true();
    }
    if (typed && strcmp(s, "false") == 0) {
        return json_false();
    }
    if (typed && parse_integer(s, &n)) {
        return json_integer(n);
    }
    return json_string(s);
}

static skr_err
add_claim_arg(json_t *conds, const char *arg, bool typed)
{
    const char *eq = strchr(arg, '=');
    char name[SKR_POLICY_MAX_NAME + 1];
    size_t n;

    ENSURE(eq != NULL, SKR_E_MALFORMED, "--claim: expected NAME=VALUE");
    n = (size_t)(eq - arg);
    ENSURE(n > 0, SKR_E_MALFORMED, "--claim: empty NAME in NAME=VALUE");
    ENSURE(n <= SKR_POLICY_MAX_NAME, SKR_E_TOO_LARGE, "--claim: NAME too long");
    memcpy(name, arg, n);
    name[n] = '\0';
    return add_cond(conds, name, typed_value(eq + 1, typed));
}

static skr_err
add_claims_file(json_t *conds, const char *path)
{
    _cleanup_(skr_buf_donep) struct skr_buf file = { 0 };
    _cleanup_(json_decrefp) json_t *doc = NULL;
    const char *key;
    json_t *v;
    size_t i;

    TRY(cli_read(path, &file));
    TRY(skr_json_parse(skr_buf_span(&file), SKR_MAX_JSON_BYTES, &doc));
    if (json_is_object(doc)) {
        json_object_foreach(doc, key, v)
        {
            ENSURE(valid_value(v), SKR_E_MALFORMED,
                   "claim value: expected a string, integer or boolean");
            TRY(add_cond(conds, key, json_incref(v)));
        }
        return SKR_OK;
    }
    ENSURE(json_is_array(doc), SKR_E_MALFORMED,
           "expected a JSON object of claims or a list of {\"claim\",\"equals\"}");
    json_array_foreach(doc, i, v)
    {
        const char *name = NULL;
        json_t *val = json_object_get(v, "equals");

        if (!json_is_object(v) || skr_json_get_str(v, "claim", &name) != SKR_OK) {
            FAILF(SKR_E_MALFORMED, "entry %zu: expected {\"claim\": NAME, \"equals\": VALUE}", i);
        }
        if (val == NULL || !valid_value(val) || json_object_size(v) != 2) {
            FAILF(SKR_E_MALFORMED,
                  "entry %zu ('claim' %.64s): 'equals' must be a string, integer or boolean and "
                  "the only other member",
                  i, name);
        }
        TRY(add_cond(conds, name, json_incref(val)));
    }
    return SKR_OK;
}

static skr_err
add_security_policy(json_t *conds, const char *path, bool typed)
{
    char hex[65];
    bool was_b64 = false;

    TRY(policy_digest(path, DIGEST_AUTO, hex, &was_b64));
    TRY(add_cond(conds, "x-ms-sevsnpvm-hostdata", json_string(hex)));
    TRY(add_cond(conds, "x-ms-compliance-status", json_string("azure-compliant-uvm")));
    TRY(add_cond(conds, "x-ms-sevsnpvm-is-debuggable", typed_value("false", typed)));
    return add_cond(conds, "x-ms-sevsnpvm-vmpl", typed_value("0", typed));
}

static skr_err
authority_value(const char *a, json_t **ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };

    ENSURE(a[0] != '\0', SKR_E_MALFORMED, "--authority: empty URL");
    ENSURE(strlen(a) <= SKR_POLICY_MAX_NAME, SKR_E_TOO_LARGE, "--authority: URL too long");
    skr_buf_init(&b, SKR_POLICY_MAX_NAME + 16);
    if (strstr(a, "://") == NULL) {
        TRY(skr_buf_append_str(&b, "https://"));
    }
    TRY(skr_buf_append_str(&b, a));
    *ret = json_stringn((const char *)b.ptr, b.len);
    ENSURE(*ret != NULL, SKR_E_MALFORMED, "--authority: not UTF-8");
    return SKR_OK;
}

/* The policy document, validated and normalised by the policy module. */
static skr_err
build_policy(const char *const *auths, size_t n_auths, json_t *conds, bool any_of,
             struct skr_buf *out)
{
    _cleanup_(json_decrefp) json_t *doc = json_object();
    _cleanup_(json_decrefp) json_t *list = json_array();
    _cleanup_(json_decrefp) json_t *norm = NULL;
    _cleanup_(skr_policy_freep) struct skr_policy *p = NULL;

    ENSURE(doc != NULL && list != NULL, SKR_E_NOMEM, "out of memory");
    ENSURE(json_array_size(conds) > 0, SKR_E_INVALID_ARG,
           "no claims: give --claim, --claims or --from-security-policy");
    for (size_t i = 0; i < n_auths; i++) {
        _cleanup_(json_decrefp) json_t *branch = json_object();
        json_t *url = NULL;

        ENSURE(branch != NULL, SKR_E_NOMEM, "out of memory");
        TRY(authority_value(auths[i], &url));
        TRY(skr_json_set(branch, "authority", url));
        TRY(skr_json_set(branch, any_of ? "anyOf" : "allOf", json_deep_copy(conds)));
        ENSURE(json_array_append(list, branch) == 0, SKR_E_NOMEM, "out of memory");
    }
    TRY(skr_json_set(doc, "version", json_string("1.0.0")));
    TRY(skr_json_set(doc, "anyOf", TAKE_PTR(list)));
    TRY(skr_policy_parse_json(doc, &p));
    TRY(skr_policy_to_json(p, &norm));
    /* what Key Vault would store must be what we print (only the member order differs) */
    ENSURE(json_equal(norm, doc), SKR_E_INTERNAL, "the policy does not round-trip");
    TRY(skr_json_dump(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER, out));
    return skr_buf_append_byte(out, '\n');
}

static int
policy_build_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        { "authority", required_argument, NULL, 'a' },
        { "claim", required_argument, NULL, 'c' },
        { "claims", required_argument, NULL, 'C' },
        { "from-security-policy", required_argument, NULL, 's' },
        { "any-of", no_argument, NULL, 'y' },
        { "typed", no_argument, NULL, 't' },
        { "out", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *auths[MAX_AUTHORITIES];
    const char *claim_args[MAX_CLAIM_ARGS];
    size_t n_auths = 0;
    size_t n_claims = 0;
    const char *claims_file = NULL;
    const char *sec_policy = NULL;
    const char *out_path = NULL;
    bool any_of = false;
    bool typed = false;
    _cleanup_(json_decrefp) json_t *conds = json_array();
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    skr_err e;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (n_auths == MAX_AUTHORITIES) {
                return cli_usage_error(usage, "--authority: at most %d", MAX_AUTHORITIES);
            }
            auths[n_auths++] = optarg;
            break;
        case 'c':
            if (n_claims == MAX_CLAIM_ARGS) {
                return cli_usage_error(usage, "--claim: at most %d", MAX_CLAIM_ARGS);
            }
            claim_args[n_claims++] = optarg;
            break;
        case 'C':
            claims_file = optarg;
            break;
        case 's':
            sec_policy = optarg;
            break;
        case 'y':
            any_of = true;
            break;
        case 't':
            typed = true;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 'h':
            (void)fputs(usage, stdout);
            return SKR_EXIT_OK;
        default:
            return cli_usage_error(usage, "bad option");
        }
    }
    if (optind != argc) {
        return cli_usage_error(usage, "build: unexpected argument '%s'", argv[optind]);
    }
    if (n_auths == 0) {
        return cli_usage_error(usage, "build: --authority URL is required");
    }
    if (conds == NULL) {
        return cli_fail(SKR_E_NOMEM, "policy build");
    }
    if (sec_policy != NULL) {
        e = add_security_policy(conds, sec_policy, typed);
        if (e != SKR_OK) {
            return cli_fail(e, sec_policy);
        }
    }
    if (claims_file != NULL) {
        e = add_claims_file(conds, claims_file);
        if (e != SKR_OK) {
            return cli_fail(e, claims_file);
        }
    }
    for (size_t i = 0; i < n_claims; i++) {
        e = add_claim_arg(conds, claim_args[i], typed);
        if (e != SKR_OK) {
            return cli_fail(e, "policy build");
        }
    }
    skr_buf_init(&out, SKR_MAX_JSON_BYTES);
    e = build_policy(auths, n_auths, conds, any_of, &out);
    if (e != SKR_OK) {
        return cli_fail(e, "policy build");
    }
    e = cli_write(out_path, skr_buf_span(&out));
    return e == SKR_OK ? SKR_EXIT_OK : cli_fail(e, out_path != NULL ? out_path : "output");
}

/* ---- check ------------------------------------------------------------------------------ */

static skr_err
load_release_policy(const char *path, struct skr_policy **ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf file = { 0 };

    TRY(cli_read(path, &file));
    return skr_policy_load(skr_buf_span(&file), ret);
}

static skr_err
claims_from_jwt(struct skr_span jwt, json_t **ret)
{
    _cleanup_(skr_jws_donep) struct skr_jws jws = { 0 };

    TRY(skr_jws_parse(jwt, &jws));
    ENSURE(jws.claims != NULL, SKR_E_MALFORMED, "token payload: expected a JSON object of claims");
    *ret = json_incref(jws.claims);
    return SKR_OK;
}

/* Claims from a JWT, an MAA response {"token": JWT} or a JSON object of claims. */
static skr_err
load_claims(const char *path, json_t **ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf file = { 0 };
    _cleanup_(json_decrefp) json_t *obj = NULL;
    struct skr_span t;
    const char *tok = NULL;

    TRY(cli_read(path, &file));
    t = trim(skr_buf_span(&file));
    ENSURE(t.len > 0, SKR_E_MALFORMED, "empty: expected a JWT or a JSON object of claims");
    if (t.ptr[0] != '{' && t.ptr[0] != '[') {
        return claims_from_jwt(t, ret);
    }
    TRY(skr_json_parse_object(t, SKR_MAX_JSON_BYTES, "claims", &obj));
    if (json_object_size(obj) == 1 && skr_json_opt_str(obj, "token", &tok) == SKR_OK &&
        tok != NULL) {
        return claims_from_jwt(skr_span_str(tok), ret);
    }
    *ret = TAKE_PTR(obj);
    return SKR_OK;
}

static skr_err
print_explain(const struct skr_policy_explain *x, const char *fmt)
{
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    json_t *j = NULL;

    if (strcmp(fmt, "json") == 0) {
        TRY(skr_policy_explain_to_json(x, &j));
        return cli_print_json(j);
    }
    skr_buf_init(&out, SKR_MAX_JSON_BYTES);
    TRY(skr_policy_explain_to_text(x, &out));
    return cli_write(NULL, skr_buf_span(&out));
}

static int
policy_check_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        { "issuer", required_argument, NULL, 0 },
        { "format", required_argument, NULL, 1 },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *vals[2] = { NULL, "text" };
    const char *issuer;
    const char *fmt;
    _cleanup_(skr_policy_freep) struct skr_policy *p = NULL;
    _cleanup_(json_decrefp) json_t *claims = NULL;
    _cleanup_(skr_policy_explain_freep) struct skr_policy_explain *x = NULL;
    skr_err e;
    int rc;

    rc = parse_opts(argc, argv, opts, vals, 2, 2, "check: expected POLICY and TOKEN|CLAIMS.json");
    if (rc >= 0) {
        return rc;
    }
    issuer = vals[0];
    fmt = vals[1];
    if (!cli_format_ok(fmt, check_formats)) {
        return cli_usage_error(usage, "--format: expected text or json");
    }
    if (issuer != NULL && (issuer[0] == '\0' || strlen(issuer) > SKR_POLICY_MAX_NAME)) {
        return cli_usage_error(usage, "--issuer: expected a URL of 1..%d characters",
                               SKR_POLICY_MAX_NAME);
    }
    e = load_release_policy(argv[optind], &p);
    if (e != SKR_OK) {
        return cli_fail(e, argv[optind]);
    }
    e = load_claims(argv[optind + 1], &claims);
    if (e != SKR_OK) {
        return cli_fail(e, argv[optind + 1]);
    }
    if (issuer == NULL && !json_is_string(json_object_get(claims, "iss"))) {
        (void)fprintf(stderr,
                      "skr: %s: no string 'iss' claim and no --issuer: no authority "
                      "can match\n",
                      argv[optind + 1]);
    }
    e = skr_policy_explain(p, issuer, claims, &x);
    if (e != SKR_OK) {
        return cli_fail(e, "policy check");
    }
    e = print_explain(x, fmt);
    if (e != SKR_OK) {
        return cli_fail(e, "output");
    }
    return x->allow ? SKR_EXIT_OK : SKR_EXIT_DENIED;
}

int
cmd_policy(int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL;

    optind = 1;
    if (sub == NULL) {
        return cli_usage_error(usage, "expected digest, build or check");
    }
    if (strcmp(sub, "digest") == 0) {
        return policy_digest_cmd(argc - 1, argv + 1);
    }
    if (strcmp(sub, "build") == 0) {
        return policy_build_cmd(argc - 1, argv + 1);
    }
    if (strcmp(sub, "check") == 0) {
        return policy_check_cmd(argc - 1, argv + 1);
    }
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        (void)fputs(usage, stdout);
        return SKR_EXIT_OK;
    }
    return cli_usage_error(usage, "unknown policy command '%s'", sub);
}
