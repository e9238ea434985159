#!/bin/sh
# test_token.sh - skr token, skr attest and skr release against skr-emu serve (issue #5), checked
# by an independent side (token_util.py: keys made and imported with urllib + pyca/cryptography,
# RFC 7638 fingerprints and JWT claims computed in Python):
#   token:   IMDS managed identity (aud, oid, appid), --client-id known and unknown, workload
#            identity through the emulated Entra, --decode of a given (and of an expired) token,
#            bad --resource, bad token files, IMDS down, --out mode 0600
#   attest:  HOST_DATA = skr policy digest of the security policy, runtime data in x-ms-runtime
#            and REPORT_DATA, default runtime data, no SNP device, bad runtime data
#   release: oct-HSM and RSA-HSM keys: fingerprint = Python's RFC 7638, --out 0600 with the
#            imported key, refusal to overwrite, --force, --out -, a policy denial naming the
#            claim, a missing key (404)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/skrd_lib.sh"

TU="$(dirname "$0")/token_util.py"

# u ARGS...: token_util.py
u() {
    python3 "$TU" "$@"
}
VAULT=https://vault.azure.net

# get FILE MEMBER: a member of a JSON file ("" when missing).
get() {
    u get "$1" "$2" 2>/dev/null
}

# expect_eq GOT WANT DESC
expect_eq() {
    if [ "$1" = "$2" ] && [ -n "$2" ]; then
        ok "$3"
    else
        not_ok "$3 (got '$1', expected '$2')"
    fi
}

# Keep the caller's Azure settings out of every run.
unset AZURE_CLIENT_ID AZURE_TENANT_ID AZURE_FEDERATED_TOKEN_FILE AZURE_AUTHORITY_HOST \
    AZURE_ACCESS_TOKEN SKR_SNP_DEVICE 2>/dev/null

# ---- usage, offline ------------------------------------------------------------------------
for cmd in token attest release; do
    expect_rc 0 "$cmd --help" "$SKR" "$cmd" --help
done
"$SKR" token --help >"$TMP/h"
for o in --resource --client-id --imds-endpoint --ca-file --set --decode --token-file --token \
    --format --out; do
    grep -q -- "$o" "$TMP/h" || not_ok "token --help lists $o"
done
ok "token --help lists every option"
"$SKR" attest --help >"$TMP/h"
for o in --maa --runtime-data --decode --format --out --snp-device --security-context-dir \
    --imds-endpoint --ca-file --trust-root --set; do
    grep -q -- "$o" "$TMP/h" || not_ok "attest --help lists $o"
done
ok "attest --help lists every option"
"$SKR" release --help >"$TMP/h"
for o in --maa --akv --kid --out --force --format --snp-device --security-context-dir \
    --imds-endpoint --ca-file --trust-root --client-id --set --token --token-file; do
    grep -q -- "$o" "$TMP/h" || not_ok "release --help lists $o"
done
ok "release --help lists every option"

expect_rc 2 "token without --resource" "$SKR" token
expect_out "--resource is required" "... says --resource is required"
expect_rc 2 "token --resource without a scheme" "$SKR" token --resource vault.azure.net
expect_out "--resource 'vault.azure.net'" "... names --resource and its value"
expect_rc 2 "token --resource http://" "$SKR" token --resource http://vault.azure.net
expect_out "--resource" "... names --resource"
expect_rc 2 "token --resource https:// without a host" "$SKR" token --resource https:///x
expect_rc 2 "token --resource empty" "$SKR" token --resource ""
expect_rc 2 "token --resource with a space" "$SKR" token --resource "https://vault.azure.net x"
expect_rc 2 "token --resource not quite a GUID" "$SKR" token \
    --resource 6fe9a4fe-1668-4c48-ab03-2073151e927
expect_rc 2 "token --format yaml" "$SKR" token --resource "$VAULT" --format yaml
expect_out "--format" "... names --format"
expect_rc 2 "token extra argument" "$SKR" token --resource "$VAULT" extra
expect_rc 2 "token --token-file without --decode" "$SKR" token --token-file /dev/null
expect_out "only for --decode" "... says --token-file is for --decode"

u jwt "$TMP/live.jwt" 1800
u jwt "$TMP/expired.jwt" -120
expect_rc 0 "token --decode --token-file (a given token)" "$SKR" token --decode \
    --token-file "$TMP/live.jwt"
expect_out "audience:   https://vault.azure.net" "... text names the audience"
expect_out "object id:  66666666-7777-8888-9999-000000000000" "... and the object id"
expect_out "app id:     11111111-2222-3333-4444-555555555555" "... and the app id"
expect_out "(in 1" "... and the seconds until expiry"
expect_out "<redacted, 256 bytes>" "... with the signature redacted"
sig=$(cut -d. -f3 "$TMP/live.jwt")
if grep -qF -- "$sig" "$TMP/out" "$TMP/err"; then
    not_ok "... never prints the signature"
else
    ok "... never prints the signature"
fi
expect_rc 0 "token --decode --format json of an expired token" "$SKR" token --decode \
    --token-file "$TMP/expired.jwt" --format json
cp "$TMP/out" "$TMP/expired.json"
expect_eq "$(get "$TMP/expired.json" summary.expired)" true "... summary.expired is true"
exp_in=$(get "$TMP/expired.json" summary.expires_in_s)
if [ -n "$exp_in" ] && [ "$exp_in" -lt 0 ]; then
    ok "... expires_in_s is negative ($exp_in)"
else
    not_ok "... expires_in_s is negative (got '$exp_in')"
fi
expect_eq "$(get "$TMP/expired.json" claims.oid)" "$(u get "$TMP/expired.json" summary.object_id)" \
    "... claims.oid is summary.object_id"
expect_rc 0 "token --decode text of an expired token" "$SKR" token --decode \
    --token-file "$TMP/expired.jwt"
expect_out "EXPIRED" "... says EXPIRED"
expect_rc 0 "token --decode --token TOKEN" "$SKR" token --decode --token "$(cat "$TMP/live.jwt")"
expect_rc 0 "token --decode --token-file - (stdin)" sh -c "'$SKR' token --decode --token-file - \
    <'$TMP/live.jwt'"
expect_rc 2 "token --decode --token-file missing" "$SKR" token --decode --token-file "$TMP/none"
expect_out "$TMP/none" "... names the file"
printf 'not-a-jwt\n' >"$TMP/bad.jwt"
expect_rc 2 "token --decode of a file that is not a JWT" "$SKR" token --decode \
    --token-file "$TMP/bad.jwt"
expect_out "$TMP/bad.jwt: not a JWT" "... names the file"
printf 'eyJhbGciOiJub25lIn0.e30.c2ln\n' >"$TMP/none.jwt"
expect_rc 2 "token --decode of an alg none token" "$SKR" token --decode --token-file "$TMP/none.jwt"
: >"$TMP/empty.jwt"
expect_rc 2 "token --decode of an empty file" "$SKR" token --decode --token-file "$TMP/empty.jwt"
head -c 70000 /dev/zero | tr '\0' a >"$TMP/long.jwt"
expect_rc 2 "token --decode of a token over the size bound" "$SKR" token --decode \
    --token-file "$TMP/long.jwt"
expect_out "longer than" "... says it is too long"
expect_rc 2 "token --decode with --resource and --token-file" "$SKR" token --decode \
    --resource "$VAULT" --token-file "$TMP/live.jwt"

expect_rc 2 "attest without --maa" "$SKR" attest
expect_out "--maa" "... names --maa"
expect_rc 2 "release without --kid" "$SKR" release --maa m.example --akv v.example
expect_out "--kid" "... names --kid"
expect_rc 2 "release --format yaml" "$SKR" release --maa m --akv v --kid k --format yaml

# ---- the emulator --------------------------------------------------------------------------
emu_init
emu_serve --imds-port 0 --maa-port 0 --akv-port 0
EP="$EMU/endpoints.json"
IMDS=$(get "$EP" imds)
MAA=$(get "$EP" maa)
AKV=$(get "$EP" akv)
MI_CLIENT=$(get "$EMU/emu.json" managed_identity.client_id)
MI_OID=$(get "$EMU/emu.json" managed_identity.object_id)
TENANT=$(get "$EMU/emu.json" tenant_id)
EXTRA=$(u get "$EMU/emu.json" workload_client_ids | tr -d '[]"')
CLOSED=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# ---- skr token -----------------------------------------------------------------------------
expect_rc 0 "token from the IMDS managed identity" "$SKR" token --resource "$VAULT" \
    --imds-endpoint "$IMDS"
cp "$TMP/out" "$TMP/mi.jwt"
u claims "$TMP/mi.jwt" >"$TMP/mi.claims" 2>"$TMP/err" || not_ok "the printed token is a JWT"
expect_eq "$(get "$TMP/mi.claims" aud)" "$VAULT" "... its aud (decoded in Python) is the resource"
expect_eq "$(wc -l <"$TMP/mi.jwt" | tr -d ' ')" 1 "... printed as one line"
expect_rc 0 "token --decode --format json from IMDS" "$SKR" token --resource "$VAULT" \
    --imds-endpoint "$IMDS" --decode --format json
cp "$TMP/out" "$TMP/mi.json"
expect_eq "$(get "$TMP/mi.json" claims.aud)" "$VAULT" "... claims.aud is the resource"
expect_eq "$(get "$TMP/mi.json" claims.oid)" "$MI_OID" "... claims.oid is the managed identity"
expect_eq "$(get "$TMP/mi.json" summary.audience)" "$VAULT" "... summary.audience"
expect_eq "$(get "$TMP/mi.json" summary.object_id)" "$MI_OID" "... summary.object_id"
expect_eq "$(get "$TMP/mi.json" summary.expired)" false "... not expired"
if grep -qF -- "$(cut -d. -f2 "$TMP/mi.jwt")" "$TMP/mi.json"; then
    not_ok "... the decoded output holds no token segment"
else
    ok "... the decoded output holds no token segment"
fi
expect_rc 0 "token --resource api://... (app ID URI)" "$SKR" token --resource api://skr-test \
    --imds-endpoint "$IMDS" --decode --format json
expect_eq "$(get "$TMP/out" claims.aud)" api://skr-test "... aud is the app ID URI"
expect_rc 0 "token --resource GUID" "$SKR" token --resource "$MI_CLIENT" \
    --imds-endpoint "$IMDS" --decode --format json
expect_eq "$(get "$TMP/out" claims.aud)" "$MI_CLIENT" "... aud is the GUID"
expect_rc 0 "token --format json" "$SKR" token --resource "$VAULT" --imds-endpoint "$IMDS" \
    --format json
get "$TMP/out" token >"$TMP/j.jwt"
u claims "$TMP/j.jwt" >"$TMP/j.claims" || true
expect_eq "$(get "$TMP/j.claims" aud)" "$VAULT" "... {\"token\": JWT} for the resource"

expect_rc 0 "token --client-id (the managed identity's)" "$SKR" token --resource "$VAULT" \
    --imds-endpoint "$IMDS" --client-id "$MI_CLIENT" --decode --format json
expect_eq "$(get "$TMP/out" claims.appid)" "$MI_CLIENT" "... appid is the client id"
expect_rc 3 "token --client-id unknown" "$SKR" token --resource "$VAULT" \
    --imds-endpoint "$IMDS" --client-id 11111111-2222-3333-4444-555555555555
expect_out "Identity not found" "... names IMDS's error"
expect_out "HTTP 400" "... and its status"
expect_rc 2 "token --client-id with a bad character" "$SKR" token --resource "$VAULT" \
    --imds-endpoint "$IMDS" --client-id 'a b'
expect_out "--client-id" "... names --client-id"

expect_rc 3 "token with IMDS down" "$SKR" token --resource "$VAULT" \
    --imds-endpoint "http://127.0.0.1:$CLOSED" --set retries=0
expect_out "hint:" "... gives a hint"
expect_out "127.0.0.1:$CLOSED" "... names the endpoint"

expect_rc 0 "token --out FILE" "$SKR" token --resource "$VAULT" --imds-endpoint "$IMDS" \
    --out "$TMP/tok.out"
expect_eq "$(stat -c %a "$TMP/tok.out")" 600 "... FILE has mode 0600"
expect_eq "$(wc -c <"$TMP/out" | tr -d ' ')" 0 "... and stdout is empty"
u claims "$TMP/tok.out" >"$TMP/tok.claims" || true
expect_eq "$(get "$TMP/tok.claims" aud)" "$VAULT" "... FILE holds the token"

# workload identity: the emulated Entra on the IMDS listener; IMDS itself points at a closed
# port so that only workload identity can succeed.
u fed "$TMP/fed.jwt"
expect_rc 0 "token through workload identity" env AZURE_CLIENT_ID="$MI_CLIENT" \
    AZURE_TENANT_ID="$TENANT" AZURE_FEDERATED_TOKEN_FILE="$TMP/fed.jwt" \
    AZURE_AUTHORITY_HOST="$IMDS" "$SKR" token --resource "$VAULT" \
    --imds-endpoint "http://127.0.0.1:$CLOSED" --set retries=0 --decode --format json
expect_eq "$(get "$TMP/out" claims.oid)" "$MI_OID" "... oid is the managed identity's"
expect_eq "$(get "$TMP/out" claims.aud)" "$VAULT" "... aud is the resource"
expect_rc 0 "token through workload identity, another client" env AZURE_CLIENT_ID="$EXTRA" \
    AZURE_TENANT_ID="$TENANT" AZURE_FEDERATED_TOKEN_FILE="$TMP/fed.jwt" \
    AZURE_AUTHORITY_HOST="$IMDS" "$SKR" token --resource "$VAULT" \
    --imds-endpoint "http://127.0.0.1:$CLOSED" --set retries=0 --decode --format json
expect_eq "$(get "$TMP/out" claims.appid)" "$EXTRA" "... appid is that client"
expect_rc 3 "token through workload identity, unknown tenant" env AZURE_CLIENT_ID="$MI_CLIENT" \
    AZURE_TENANT_ID=99999999-2222-3333-4444-555555555555 AZURE_FEDERATED_TOKEN_FILE="$TMP/fed.jwt" \
    AZURE_AUTHORITY_HOST="$IMDS" "$SKR" token --resource "$VAULT" --set retries=0
expect_out "HTTP 400" "... names Entra's status"
expect_rc 0 "token ignores AZURE_ACCESS_TOKEN" env AZURE_ACCESS_TOKEN="$(cat "$TMP/live.jwt")" \
    "$SKR" token --resource api://other --imds-endpoint "$IMDS" --decode --format json
expect_eq "$(get "$TMP/out" claims.aud)" api://other "... the token is a new one"

# ---- skr attest ----------------------------------------------------------------------------
DEV="--snp-device emulated:$EMU --security-context-dir $EMU/security-context --ca-file $EMU/ca.pem --imds-endpoint $IMDS"
"$SKR" policy digest "$EMU/security-context/security-policy-base64" >"$TMP/digest"
printf '{"nonce":"h2-%s","purpose":"skr attest test"}\n' "$$" >"$TMP/rt.json"
# shellcheck disable=SC2086 # DEV is a list of options
expect_rc 0 "attest --runtime-data --decode --format json" "$SKR" attest --maa "$MAA" $DEV \
    --runtime-data "$TMP/rt.json" --decode --format json
cp "$TMP/out" "$TMP/maa.json"
expect_eq "$(get "$TMP/maa.json" claims.x-ms-sevsnpvm-hostdata)" "$(cat "$TMP/digest")" \
    "... x-ms-sevsnpvm-hostdata is skr policy digest of the security policy"
expect_eq "$(get "$TMP/maa.json" claims.x-ms-runtime)" \
    "$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), sort_keys=True, separators=(",",":")))' "$TMP/rt.json")" \
    "... x-ms-runtime is the runtime data"
expect_eq "$(get "$TMP/maa.json" claims.x-ms-sevsnpvm-reportdata)" \
    "$(sha256sum "$TMP/rt.json" | cut -d' ' -f1)$(printf '%064d' 0)" \
    "... REPORT_DATA is SHA-256 of the file, then zeros"
expect_eq "$(get "$TMP/maa.json" summary.issuer)" "$MAA" "... summary.issuer is the MAA"
expect_eq "$(get "$TMP/maa.json" signature)" "<redacted, 256 bytes>" "... signature redacted"
# shellcheck disable=SC2086
expect_rc 0 "attest (the token, default runtime data)" "$SKR" attest --maa "$MAA" $DEV
cp "$TMP/out" "$TMP/maa.jwt"
u claims "$TMP/maa.jwt" >"$TMP/maa.claims" || true
expect_eq "$(get "$TMP/maa.claims" x-ms-runtime)" "{}" "... default runtime data is {}"
expect_eq "$(get "$TMP/maa.claims" x-ms-sevsnpvm-hostdata)" "$(cat "$TMP/digest")" \
    "... its HOST_DATA (decoded in Python)"
"$SKR" policy build --authority "$MAA" --from-security-policy \
    "$EMU/security-context/security-policy-base64" >"$TMP/policy.json"
expect_rc 0 "skr policy check accepts the MAA token for a policy from the security policy" \
    "$SKR" policy check "$TMP/policy.json" "$TMP/maa.jwt"
# shellcheck disable=SC2086
expect_rc 0 "attest --decode text --out FILE" "$SKR" attest --maa "$MAA" $DEV --decode \
    --out "$TMP/maa.txt"
expect_eq "$(stat -c %a "$TMP/maa.txt")" 600 "... FILE has mode 0600"
if grep -q "^issuer: *$MAA" "$TMP/maa.txt" && grep -q "^expires: .*(in " "$TMP/maa.txt"; then
    ok "... FILE names issuer and expiry"
else
    not_ok "... FILE names issuer and expiry"
fi
expect_rc 3 "attest without an SNP device (auto)" "$SKR" attest --maa "$MAA" --snp-device auto \
    --ca-file "$EMU/ca.pem"
expect_out "attest: device:" "... names stage device"
expect_out "hint:" "... gives a hint"
printf 'not json' >"$TMP/rt.bad"
# shellcheck disable=SC2086
expect_rc 2 "attest --runtime-data not JSON" "$SKR" attest --maa "$MAA" $DEV \
    --runtime-data "$TMP/rt.bad"
expect_out "--runtime-data $TMP/rt.bad: expected one JSON document" "... names the file"
# shellcheck disable=SC2086
expect_rc 2 "attest --runtime-data missing" "$SKR" attest --maa "$MAA" $DEV \
    --runtime-data "$TMP/none"
expect_out "$TMP/none" "... names the file"
head -c 1048577 /dev/zero | tr '\0' ' ' >"$TMP/rt.big"
# shellcheck disable=SC2086
expect_rc 2 "attest --runtime-data over 1 MiB" "$SKR" attest --maa "$MAA" $DEV \
    --runtime-data "$TMP/rt.big"
# shellcheck disable=SC2086
expect_rc 3 "attest with MAA down" "$SKR" attest --maa "https://127.0.0.1:$CLOSED" $DEV \
    --set retries=0
expect_out "attest: maa:" "... names stage maa"
# shellcheck disable=SC2086
expect_rc 2 "attest --snp-device bogus" "$SKR" attest --maa "$MAA" --snp-device bogus
expect_out "--snp-device" "... names --snp-device"

# ---- skr release ---------------------------------------------------------------------------
u import "$EMU" tok-oct oct "$TMP/want-oct.json" >"$TMP/fp-oct" ||
    not_ok "import oct-HSM key (Python)"
u import "$EMU" tok-rsa rsa "$TMP/want-rsa.json" >"$TMP/fp-rsa" ||
    not_ok "import RSA-HSM key (Python)"
u import "$EMU" tok-deny oct "$TMP/want-deny.json" \
    00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff >/dev/null ||
    not_ok "import key with a wrong HOST_DATA (Python)"

# shellcheck disable=SC2086
expect_rc 0 "release oct-HSM" "$SKR" release --maa "$MAA" --akv "$AKV" --kid tok-oct $DEV
expect_out "fingerprint: $(cat "$TMP/fp-oct")" "... fingerprint = RFC 7638 in Python"
expect_out "key type:    oct 256 bits" "... key type oct 256 bits"
expect_out "written to:  nowhere" "... the key is not written without --out"
if grep -qF -- "$(get "$TMP/want-oct.json" k)" "$TMP/out" "$TMP/err"; then
    not_ok "... the key is not printed"
else
    ok "... the key is not printed"
fi
# shellcheck disable=SC2086
expect_rc 0 "release oct-HSM --out FILE" "$SKR" release --maa "$MAA" --akv "$AKV" --kid tok-oct \
    $DEV --out "$TMP/oct.jwk"
expect_eq "$(stat -c %a "$TMP/oct.jwk")" 600 "... FILE has mode 0600"
expect_rc 0 "... FILE holds the imported key" u compare "$TMP/oct.jwk" "$TMP/want-oct.json"
cp "$TMP/oct.jwk" "$TMP/oct.before"
# shellcheck disable=SC2086
expect_rc 2 "release refuses an existing --out FILE" "$SKR" release --maa "$MAA" --akv "$AKV" \
    --kid tok-rsa $DEV --out "$TMP/oct.jwk"
expect_out "use --force" "... says --force replaces it"
expect_rc 0 "... FILE is unchanged" cmp "$TMP/oct.jwk" "$TMP/oct.before"
ln -s "$TMP/nowhere" "$TMP/dangling.jwk"
# shellcheck disable=SC2086
expect_rc 2 "release refuses a dangling symlink --out" "$SKR" release --maa "$MAA" --akv "$AKV" \
    --kid tok-rsa $DEV --out "$TMP/dangling.jwk"
# shellcheck disable=SC2086
expect_rc 0 "release RSA-HSM --out FILE --force" "$SKR" release --maa "$MAA" --akv "$AKV" \
    --kid tok-rsa $DEV --out "$TMP/oct.jwk" --force
expect_out "fingerprint: $(cat "$TMP/fp-rsa")" "... fingerprint = RFC 7638 in Python"
expect_out "key type:    RSA 2048 bits" "... key type RSA 2048 bits"
expect_eq "$(stat -c %a "$TMP/oct.jwk")" 600 "... FILE has mode 0600"
expect_rc 0 "... FILE now holds the RSA key" u compare "$TMP/oct.jwk" "$TMP/want-rsa.json"
expect_eq "$(u fp "$TMP/oct.jwk")" "$(cat "$TMP/fp-rsa")" "... its fingerprint (Python)"
# shellcheck disable=SC2086
expect_rc 0 "release --out - --format json" "$SKR" release --maa "$MAA" --akv "$AKV" \
    --kid tok-rsa $DEV --out - --format json
cp "$TMP/out" "$TMP/stdout.jwk"
cp "$TMP/err" "$TMP/sum.json"
expect_rc 0 "... stdout is the key" u compare "$TMP/stdout.jwk" "$TMP/want-rsa.json"
expect_eq "$(get "$TMP/sum.json" fingerprint)" "$(cat "$TMP/fp-rsa")" \
    "... the JSON summary on stderr has the fingerprint"
expect_eq "$(get "$TMP/sum.json" size)" 2048 "... and the size"
# shellcheck disable=SC2086
expect_rc 0 "release with --token-file (a vault token from IMDS, in Python)" sh -c \
    "python3 '$TU' vault-token '$EMU' >'$TMP/vault.tok' && '$SKR' release --maa '$MAA' --akv '$AKV' \
    --kid tok-oct $DEV --token-file '$TMP/vault.tok' --format json"
expect_eq "$(get "$TMP/out" fingerprint)" "$(cat "$TMP/fp-oct")" "... the same key"

# shellcheck disable=SC2086
expect_rc 1 "release denied (policy with a wrong HOST_DATA)" "$SKR" release --maa "$MAA" \
    --akv "$AKV" --kid tok-deny $DEV --out "$TMP/deny.jwk"
expect_out "x-ms-sevsnpvm-hostdata" "... names the claim"
expect_out "HTTP 403" "... and the vault's status"
if [ -e "$TMP/deny.jwk" ]; then
    not_ok "... nothing is written"
else
    ok "... nothing is written"
fi
# shellcheck disable=SC2086
expect_rc 3 "release of a key that does not exist" "$SKR" release --maa "$MAA" --akv "$AKV" \
    --kid tok-missing $DEV
expect_out "404" "... names 404"
expect_out "release: akv:" "... and stage akv"
expect_rc 3 "release without an SNP device" "$SKR" release --maa "$MAA" --akv "$AKV" \
    --kid tok-oct --snp-device auto --ca-file "$EMU/ca.pem" --imds-endpoint "$IMDS"
expect_out "release: device:" "... names stage device"
# shellcheck disable=SC2086
expect_rc 2 "release --kid with a space" "$SKR" release --maa "$MAA" --akv "$AKV" \
    --kid "a b" $DEV
# shellcheck disable=SC2086
expect_rc 2 "release --token-file missing" "$SKR" release --maa "$MAA" --akv "$AKV" \
    --kid tok-oct $DEV --token-file "$TMP/none"
expect_out "--token-file $TMP/none" "... names the file"

emu_stop
finish
