#!/bin/sh
# test_policy.sh - `skr policy digest|build|check`: HOST_DATA digests against the real ACI
# vector and the emulator, policy build round trips, and agreement of `skr policy check` with the
# shared decision table and with the emulator's real release decisions (policy_agree.py).
. "$(dirname "$0")/lib.sh"
HERE=$(dirname "$0")
SCC_B64="$DATA/scc/test_data__uvm_security_policy.base64"
SCC_HD=cadd74f71ebb8fbf9782baab649612520f3c416bc5ce9ac768808ddc8d9b031c

# ---- digest -------------------------------------------------------------------------------
expect_rc 0 "digest of the ACI security-policy-base64 vector" "$SKR" policy digest "$SCC_B64"
expect_out "$SCC_HD" "= HOST_DATA of the ACI report (tests/data/scc)"
base64 -d "$SCC_B64" >"$TMP/scc.rego"
expect_rc 0 "digest of the decoded rego text" "$SKR" policy digest "$TMP/scc.rego"
expect_out "$SCC_HD" "rego text and its base64 give the same HOST_DATA"
"$SKR" policy digest - <"$SCC_B64" >"$TMP/out" 2>"$TMP/err"
expect_out "$SCC_HD" "digest reads standard input"
want=$(sha256sum "$SCC_B64" | cut -c1-64)
expect_rc 0 "--text hashes the base64 text itself" "$SKR" policy digest --text "$SCC_B64"
expect_out "$want" "--text digest = SHA-256 of the file bytes"
printf 'abcd' >"$TMP/bin.txt" # valid base64, but decodes to binary: hashed as text
want=$(printf 'abcd' | sha256sum | cut -c1-64)
expect_rc 0 "base64-looking text decoding to binary" "$SKR" policy digest "$TMP/bin.txt"
expect_out "$want" "is hashed as written"
expect_rc 2 "--base64 on rego text" "$SKR" policy digest --base64 "$TMP/scc.rego"
expect_out "$TMP/scc.rego: expected standard base64" "the error names the file"
: >"$TMP/empty"
expect_rc 2 "empty policy" "$SKR" policy digest "$TMP/empty"
expect_out "$TMP/empty: the security policy is empty" "empty policy named"
expect_rc 2 "digest without FILE" "$SKR" policy digest
expect_rc 2 "unknown policy command" "$SKR" policy frobnicate

# ---- digest against the emulator: HOST_DATA of an emulated report ----------------------------
EMU="$TMP/emu"
expect_rc 0 "skr-emu init" "$SKR_EMU" init "$EMU"
expect_rc 0 "digest of the emulator's security-policy-base64" "$SKR" policy digest \
    "$EMU/security-context/security-policy-base64"
emu_hd=$(cat "$TMP/out")
"$SKR" report fetch --device "emulated:$EMU" --format bin --out "$TMP/r.bin" 2>"$TMP/err"
expect_rc 0 "report show of an emulated report" "$SKR" report show "$TMP/r.bin" --format json
expect_out "\"host_data\": \"$emu_hd\"" "digest = HOST_DATA of the emulated report"

# ---- build ----------------------------------------------------------------------------------
AUTH=https://maa.test
expect_rc 0 "build from a security policy" "$SKR" policy build --authority "$AUTH" \
    --from-security-policy "$SCC_B64" --claim x-ms-attestation-type=sevsnpvm --out "$TMP/p.json"
tr -d ' \n' <"$TMP/p.json" >"$TMP/p.compact"
if grep -qF "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"$AUTH\",\"allOf\":[{\"claim\":\"x-ms-sevsnpvm-hostdata\",\"equals\":\"$SCC_HD\"},{\"claim\":\"x-ms-compliance-status\",\"equals\":\"azure-compliant-uvm\"},{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":\"false\"},{\"claim\":\"x-ms-sevsnpvm-vmpl\",\"equals\":\"0\"},{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sevsnpvm\"}]}]}" "$TMP/p.compact"; then
    ok "the policy has the ACI claims, HOST_DATA = digest, in order"
else
    not_ok "unexpected policy"
    sed 's/^/#   /' "$TMP/p.json"
fi
cat >"$TMP/claims.json" <<EOF
{"iss": "$AUTH", "x-ms-attestation-type": "sevsnpvm", "x-ms-compliance-status": "azure-compliant-uvm",
 "x-ms-sevsnpvm-hostdata": "$SCC_HD", "x-ms-sevsnpvm-is-debuggable": false, "x-ms-sevsnpvm-vmpl": 0}
EOF
expect_rc 0 "round trip: matching claims allow" "$SKR" policy check "$TMP/p.json" "$TMP/claims.json"
expect_out "token issuer $AUTH: ALLOW" "ALLOW printed"
expect_out "PASS x-ms-sevsnpvm-vmpl" "each condition printed"
sed 's/"x-ms-sevsnpvm-is-debuggable": false/"x-ms-sevsnpvm-is-debuggable": true/' \
    "$TMP/claims.json" >"$TMP/claims-debug.json"
expect_rc 1 "round trip: one changed claim denies" "$SKR" policy check "$TMP/p.json" \
    "$TMP/claims-debug.json"
expect_out "FAIL x-ms-sevsnpvm-is-debuggable" "the changed claim is named"
expect_out ": DENY" "DENY printed"
expect_rc 1 "json format: deny" "$SKR" policy check "$TMP/p.json" "$TMP/claims-debug.json" \
    --format json
expect_out '"allow": false' "json verdict"
expect_out '"seen": true,' "json shows the value the token has"
expect_rc 1 "--issuer overrides iss" "$SKR" policy check "$TMP/p.json" "$TMP/claims.json" \
    --issuer https://other.test
expect_out "does not match the issuer" "authority mismatch explained"

expect_rc 0 "build --typed --any-of, two authorities" "$SKR" policy build --typed --any-of \
    --authority maa.test --authority https://b.test/ --claim x-ms-sevsnpvm-vmpl=0 \
    --claim x-ms-sevsnpvm-is-debuggable=false --claim name=value --claim n=007 \
    --out "$TMP/t.json"
tr -d ' \n' <"$TMP/t.json" >"$TMP/t.compact"
if grep -qF '"authority":"https://maa.test","anyOf":[{"claim":"x-ms-sevsnpvm-vmpl","equals":0},{"claim":"x-ms-sevsnpvm-is-debuggable","equals":false},{"claim":"name","equals":"value"},{"claim":"n","equals":"007"}]},{"authority":"https://b.test/"' "$TMP/t.compact"; then
    ok "--typed: integers and booleans typed, 007 kept a string; https:// added; anyOf"
else
    not_ok "unexpected --typed policy"
    sed 's/^/#   /' "$TMP/t.json"
fi
echo '{"iss": "https://b.test", "x-ms-sevsnpvm-vmpl": 1, "name": "value"}' >"$TMP/c2.json"
expect_rc 0 "--any-of: one claim is enough (and authority slash ignored)" "$SKR" policy check \
    "$TMP/t.json" "$TMP/c2.json"
echo '{"a": "x", "b": 3, "c": true}' >"$TMP/cf.json"
expect_rc 0 "--claims object, overridden by --claim" "$SKR" policy build --authority "$AUTH" \
    --claims "$TMP/cf.json" --claim b=4
tr -d ' \n' <"$TMP/out" >"$TMP/cf.compact"
if grep -qF '[{"claim":"a","equals":"x"},{"claim":"b","equals":"4"},{"claim":"c","equals":true}]' \
    "$TMP/cf.compact"; then
    ok "claims file values kept as written; a later --claim replaces in place"
else
    not_ok "unexpected --claims policy"
    sed 's/^/#   /' "$TMP/out"
fi
echo '[{"claim": "a", "equals": 1}, {"claim": "b", "equals": "y"}]' >"$TMP/cl.json"
expect_rc 0 "--claims list of conditions" "$SKR" policy build --authority "$AUTH" --claims "$TMP/cl.json"
expect_rc 2 "build without --authority" "$SKR" policy build --claim a=b
expect_out "--authority URL is required" "missing authority named"
expect_rc 2 "build without claims" "$SKR" policy build --authority "$AUTH"
expect_out "no claims" "missing claims named"
expect_rc 2 "--claim without =" "$SKR" policy build --authority "$AUTH" --claim abc
expect_out "expected NAME=VALUE" "bad --claim explained"
expect_rc 2 "--claim with an empty name" "$SKR" policy build --authority "$AUTH" --claim =x
echo '{"a": 1.5}' >"$TMP/bad1.json"
expect_rc 2 "--claims with a real value" "$SKR" policy build --authority "$AUTH" --claims "$TMP/bad1.json"
expect_out "$TMP/bad1.json: claim value: expected a string, integer or boolean" "file and field named"
echo '[{"claim": "a", "value": 1}]' >"$TMP/bad2.json"
expect_rc 2 "--claims entry without equals" "$SKR" policy build --authority "$AUTH" --claims "$TMP/bad2.json"
expect_out "$TMP/bad2.json: entry 0 ('claim' a): 'equals'" "entry and field named"
echo '"x"' >"$TMP/bad3.json"
expect_rc 2 "--claims neither object nor list" "$SKR" policy build --authority "$AUTH" --claims "$TMP/bad3.json"
expect_out "$TMP/bad3.json: expected a JSON object of claims" "claims file named"
expect_rc 2 "--from-security-policy empty file" "$SKR" policy build --authority "$AUTH" \
    --from-security-policy "$TMP/empty"
expect_out "$TMP/empty:" "security policy file named"

# ---- check: bad input ---------------------------------------------------------------------
echo '{"anyOf": []}' >"$TMP/nov.json"
expect_rc 2 "policy without version" "$SKR" policy check "$TMP/nov.json" "$TMP/claims.json"
expect_out "$TMP/nov.json: release policy: missing 'version'" "policy file and field named"
echo '{"version":"1.0.0","anyOf":[{"authority":"x","allOf":[{"claim":"a","less":1}]}]}' >"$TMP/less.json"
expect_rc 2 "reserved operator" "$SKR" policy check "$TMP/less.json" "$TMP/claims.json"
expect_out "less" "operator named"
echo 'not.a.jwt' >"$TMP/tok"
expect_rc 2 "malformed token" "$SKR" policy check "$TMP/p.json" "$TMP/tok"
expect_out "$TMP/tok: JWS" "token file named"
echo '[1]' >"$TMP/arr.json"
expect_rc 2 "claims that are not an object" "$SKR" policy check "$TMP/p.json" "$TMP/arr.json"
expect_out "$TMP/arr.json: claims: expected a JSON object" "claims file named"
expect_rc 2 "check with one argument" "$SKR" policy check "$TMP/p.json"
expect_rc 2 "check --format xml" "$SKR" policy check "$TMP/p.json" "$TMP/claims.json" --format xml
echo '{"x-ms-sevsnpvm-vmpl": 0}' >"$TMP/noiss.json"
expect_rc 1 "claims without iss deny" "$SKR" policy check "$TMP/p.json" "$TMP/noiss.json"
expect_out "no string 'iss' claim" "missing issuer explained"

# A JWT (signature not checked) and an MAA response {"token": JWT} carry the same claims.
python3 - "$TMP/claims.json" "$TMP/jwt" "$TMP/maa.json" <<'EOF'
import base64, json, sys
b = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
t = b({"alg": "RS256", "typ": "JWT"}) + "." + b(json.load(open(sys.argv[1]))) + ".c2ln"
open(sys.argv[2], "w").write(t + "\n")
json.dump({"token": t}, open(sys.argv[3], "w"))
EOF
expect_rc 0 "JWT claims allow" "$SKR" policy check "$TMP/p.json" "$TMP/jwt"
expect_rc 0 "MAA response {token} allows" "$SKR" policy check "$TMP/p.json" "$TMP/maa.json"

# ---- agreement with the shared decision table -------------------------------------------------
if python3 "$HERE/policy_agree.py" table "$SKR" "$DATA/policy_cases.json" >"$TMP/agree.out" 2>&1; then
    ok "skr policy check agrees with all of tests/data/policy_cases.json"
else
    not_ok "skr policy check disagrees with the decision table"
fi
grep -v '^agree ' "$TMP/agree.out" | sed 's/^/#   /'

# ---- agreement with the emulator's real release decisions -------------------------------------
"$SKR_EMU" serve "$EMU" >"$TMP/serve.out" 2>"$TMP/serve.err" &
PID=$!
i=0
while [ ! -s "$EMU/endpoints.json" ] && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
if python3 "$HERE/policy_agree.py" emu "$SKR" "$EMU" >"$TMP/emu.out" 2>&1; then
    ok "skr policy check on a real MAA token agrees with the emulator's release decisions"
else
    not_ok "skr policy check disagrees with the emulator"
fi
sed 's/^/#   /' "$TMP/emu.out"
kill -TERM "$PID"
wait "$PID"
finish
