#!/bin/sh
# test_emu_init.sh - skr-emu init builds the offline Azure stack's state (DESIGN.md §4.2): CA and
# TLS certificates, MAA/Entra signing keys, the software SNP platform, an ACI security-context
# directory, an empty key store and emu.json. Checked with independent tools (openssl, python3's
# json, base64, sha256sum) and with the skr CLI. Each init generates RSA-4096 keys: two inits.
. "$(dirname "$0")/lib.sh"

EMU="$TMP/emu"
printf 'package policy\n\napi_svn := "0.10.0"\n\ndefault allow := true\n# test %s\n' "$$" \
    >"$TMP/policy.rego"
policy_sha=$(sha256sum "$TMP/policy.rego" | cut -d' ' -f1)

# Input errors come before any key generation.
expect_rc 2 "a missing --policy file is a usage error" "$SKR_EMU" init "$EMU" \
    --policy "$TMP/no-such.rego"
expect_out "no-such.rego" "the bad policy path is named"
: >"$TMP/empty.rego"
expect_rc 2 "an empty policy is refused" "$SKR_EMU" init "$EMU" --policy "$TMP/empty.rego"
if [ ! -e "$EMU" ]; then ok "nothing created on input errors"; else not_ok "$EMU created"; fi
: >"$TMP/plainfile"
expect_rc 3 "a DIR that cannot be created fails" "$SKR_EMU" init "$TMP/plainfile/emu" \
    --host-data "$(printf '%064d' 0)"
expect_out "warning: --host-data given: HOST_DATA will not be the SHA-256" \
    "--host-data warns that it breaks the policy binding"
expect_rc 0 "--help" "$SKR_EMU" init --help
expect_out "reference-info-base64" "--help documents the layout"
expect_out "NOT Microsoft's COSE_Sign1" "--help says the reference info is not a COSE_Sign1"

# ---- init #1: with a policy file, Genoa --------------------------------------------------
expect_rc 0 "skr-emu init --policy FILE --product Genoa" "$SKR_EMU" init "$EMU" \
    --policy "$TMP/policy.rego" --product Genoa
expect_out "EMULATOR" "the summary says loudly that this is an emulator"
expect_out "$EMU/security-context/host-amd-cert-base64" "the summary lists the created paths"
expect_out "host data:      $policy_sha" "the summary shows HOST_DATA = SHA-256(policy)"

for f in ca.pem tls.pem maa/signing.pem entra/signing.pem snp/ark.pem snp/ask.pem snp/vcek.pem \
    snp/platform.json security-context/security-policy-base64 \
    security-context/host-amd-cert-base64 security-context/reference-info-base64 \
    keys/store.json emu.json; do
    if [ -s "$EMU/$f" ]; then ok "$f exists"; else not_ok "$f missing or empty"; fi
done
for f in ca.key tls.key maa/signing.key entra/signing.key snp/ark.key snp/ask.key snp/vcek.key; do
    mode=$(stat -c %a "$EMU/$f" 2>/dev/null)
    if [ "$mode" = 600 ]; then ok "$f is 0600"; else not_ok "$f is '$mode', expected 600"; fi
done
mode=$(stat -c %a "$EMU/keys")
if [ "$mode" = 700 ]; then ok "keys/ is 0700"; else not_ok "keys/ is $mode, expected 700"; fi
if [ -n "$(find "$EMU" -name '*.tmp.*')" ]; then not_ok "temporary files left"; else ok "no temporary files left"; fi

# ---- CA and TLS ---------------------------------------------------------------------------
expect_rc 0 "CA is self-signed and valid" openssl verify -CAfile "$EMU/ca.pem" "$EMU/ca.pem"
expect_rc 0 "CA extensions" openssl x509 -in "$EMU/ca.pem" -noout -subject \
    -ext basicConstraints,keyUsage
expect_out "CN = skr-emu CA" "CA subject CN"
expect_out "CA:TRUE" "CA basicConstraints CA:TRUE"
if grep -A1 'Basic Constraints: critical' "$TMP/out" | grep -q 'CA:TRUE'; then
    ok "CA basicConstraints is critical"
else
    not_ok "CA basicConstraints is not critical"
fi
expect_out "Certificate Sign, CRL Sign" "CA keyUsage keyCertSign, cRLSign"
# notAfter - notBefore: 10 years (+1 day of backdating)
days=$(python3 -c '
import subprocess, sys, datetime
fmt = "%b %d %H:%M:%S %Y GMT"
def d(opt):
    s = subprocess.run(["openssl", "x509", "-in", sys.argv[1], "-noout", opt],
                       capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    return datetime.datetime.strptime(" ".join(s.split()), fmt)
print((d("-enddate") - d("-startdate")).days)' "$EMU/ca.pem")
if [ "$days" -ge 3650 ] && [ "$days" -le 3653 ]; then ok "CA valid for 10 years"; else not_ok "CA valid for $days days"; fi

expect_rc 0 "openssl verify -CAfile ca.pem tls.pem" openssl verify -CAfile "$EMU/ca.pem" \
    "$EMU/tls.pem"
expect_rc 0 "TLS SANs" openssl x509 -in "$EMU/tls.pem" -noout -ext subjectAltName
expect_out "DNS:localhost" "SAN localhost"
expect_out "IP Address:127.0.0.1" "SAN 127.0.0.1"
expect_out "IP Address:0:0:0:0:0:0:0:1" "SAN ::1"
expect_rc 0 "TLS EKU" openssl x509 -in "$EMU/tls.pem" -noout -ext extendedKeyUsage
expect_out "TLS Web Server Authentication" "TLS EKU serverAuth"
if [ "$(grep -c 'BEGIN CERTIFICATE' "$EMU/tls.pem")" = 2 ]; then ok "tls.pem holds two certificates"; else not_ok "tls.pem count"; fi
awk '/BEGIN CERT/{n++} n==2' "$EMU/tls.pem" >"$TMP/tls-second.pem"
if cmp -s "$TMP/tls-second.pem" "$EMU/ca.pem"; then ok "tls.pem: leaf then CA"; else not_ok "second cert of tls.pem is not the CA"; fi

# key <-> certificate: the public halves are equal
same_key() {
    openssl pkey -in "$1" -pubout >"$TMP/k1" 2>/dev/null &&
        openssl x509 -in "$2" -noout -pubkey >"$TMP/k2" 2>/dev/null &&
        cmp -s "$TMP/k1" "$TMP/k2"
}
for pair in ca.key:ca.pem tls.key:tls.pem maa/signing.key:maa/signing.pem \
    entra/signing.key:entra/signing.pem; do
    if same_key "$EMU/${pair%%:*}" "$EMU/${pair#*:}"; then ok "$pair match"; else not_ok "$pair do not match"; fi
done

# ---- MAA and Entra signing keys --------------------------------------------------------------
for s in maa entra; do
    expect_rc 0 "$s cert verifies against the CA" openssl verify -CAfile "$EMU/ca.pem" \
        "$EMU/$s/signing.pem"
    expect_rc 0 "$s key" openssl pkey -in "$EMU/$s/signing.key" -noout -text
    expect_out "Private-Key: (2048 bit" "$s key is RSA-2048"
done
expect_rc 0 "MAA cert subject" openssl x509 -in "$EMU/maa/signing.pem" -noout -subject
expect_out "CN = skr-emu MAA signing" "MAA cert CN"

# ---- emu.json ------------------------------------------------------------------------------
# kid = RFC 7638 thumbprint, recomputed here from openssl's modulus.
expect_rc 0 "emu.json is JSON with GUIDs and RFC 7638 kids" python3 -c '
import base64, hashlib, json, re, subprocess, sys
d = sys.argv[1]
c = json.load(open(d + "/emu.json"))
guid = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
mi = c["managed_identity"]
ids = [c["tenant_id"], mi["client_id"], mi["object_id"]]
assert c["version"] == 1, c["version"]
assert all(guid.match(g) for g in ids), ids
assert len(set(ids)) == 3, ids
assert mi["msi_res_id"].startswith("/subscriptions/"), mi["msi_res_id"]
assert mi["msi_res_id"].endswith("/providers/Microsoft.ManagedIdentity/userAssignedIdentities/skr-emu")
assert c["compliance_status"] == "azure-compliant-uvm"
def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
for s in ("maa", "entra"):
    out = subprocess.run(["openssl", "rsa", "-in", d + "/" + s + "/signing.key", "-noout",
                          "-modulus"], capture_output=True, text=True, check=True).stdout
    n = bytes.fromhex(out.strip().split("=", 1)[1])
    jwk = "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"%s\"}" % b64u(n)
    want = b64u(hashlib.sha256(jwk.encode()).digest())
    assert c[s]["kid"] == want, (s, c[s]["kid"], want)
print(c["tenant_id"])
' "$EMU"
tenant1=$(cat "$TMP/out")

expect_rc 0 "keys/store.json is an empty store" python3 -c '
import json, sys
assert json.load(open(sys.argv[1])) == {"version": 1, "keys": {}}' "$EMU/keys/store.json"

# ---- security context -----------------------------------------------------------------------
SC="$EMU/security-context"
for f in security-policy-base64 host-amd-cert-base64 reference-info-base64; do
    if [ "$(tail -c1 "$SC/$f" | od -An -c | tr -d ' ')" = '\n' ]; then
        not_ok "$f ends with a newline"
    elif grep -q '^[A-Za-z0-9+/]*=*$' "$SC/$f"; then
        ok "$f is one line of standard base64"
    else
        not_ok "$f is not standard base64"
    fi
done
base64 -d "$SC/security-policy-base64" >"$TMP/policy.decoded"
if cmp -s "$TMP/policy.decoded" "$TMP/policy.rego"; then ok "security-policy-base64 decodes to --policy"; else not_ok "security policy differs"; fi

expect_rc 0 "fetch a report from the platform" "$SKR" report fetch --device "emulated:$EMU" \
    --format json --out "$TMP/r.json"
if grep -qF "\"host_data\": \"$policy_sha\"" "$TMP/r.json"; then
    ok "HOST_DATA = SHA-256(security policy)"
else
    not_ok "HOST_DATA is not SHA-256 of the policy"
    grep host_data "$TMP/r.json" | sed 's/^/#   /'
fi

expect_rc 0 "host-amd-cert-base64 is THIM JSON of the platform's certificates" python3 -c '
import base64, json, re, sys
d = sys.argv[1]
raw = base64.b64decode(open(d + "/security-context/host-amd-cert-base64").read(), validate=True)
t = json.loads(raw)
assert list(t) == ["vcekCert", "tcbm", "certificateChain", "cacheControl"], list(t)
assert all(isinstance(v, str) for v in t.values())
assert b"\n" not in raw and b": " not in raw, "not compact"
assert t["vcekCert"] == open(d + "/snp/vcek.pem").read()
assert t["certificateChain"] == open(d + "/snp/ask.pem").read() + open(d + "/snp/ark.pem").read()
assert re.fullmatch(r"[0-9A-F]{16}", t["tcbm"]), t["tcbm"]
assert t["cacheControl"] == "86400"
r = json.load(open(sys.argv[2]))
assert t["tcbm"] == r["reported_tcb"]["raw"], (t["tcbm"], r["reported_tcb"])
' "$EMU" "$TMP/r.json"

expect_rc 0 "reference-info-base64 carries the platform's measurement" python3 -c '
import base64, json, sys
d = sys.argv[1]
ri = json.loads(base64.b64decode(open(d + "/security-context/reference-info-base64").read()))
r = json.load(open(sys.argv[2]))
assert ri["x-ms-sevsnpvm-launchmeasurement"] == r["measurement"], ri
assert len(r["measurement"]) == 96
assert ri["x-ms-sevsnpvm-guestsvn"] == str(r["guest_svn"]), ri
assert ri["emulated"] is True
' "$EMU" "$TMP/r.json"

expect_rc 0 "skr certs verify host-amd-cert-base64 with the emulated ARK" "$SKR" certs verify \
    "$SC/host-amd-cert-base64" --trust-root "$EMU/snp/ark.pem"
expect_out "result: verified (Genoa, VCEK)" "THIM chain verified (Genoa)"
expect_rc 1 "without the emulated ARK the THIM chain is not trusted" "$SKR" certs verify \
    "$SC/host-amd-cert-base64"

expect_rc 0 "fetch a binary report" "$SKR" report fetch --device "emulated:$EMU" --format bin \
    --out "$TMP/r.bin"
expect_rc 0 "report verifies against host-amd-cert-base64" "$SKR" report verify "$TMP/r.bin" \
    --certs "$SC/host-amd-cert-base64" --trust-root "$EMU/snp/ark.pem" --host-data "$policy_sha"
expect_out "PASS  tcb.thim_tcbm" "THIM tcbm matches REPORTED_TCB"
expect_out "PASS  host_data" "report HOST_DATA checked against the policy digest"
expect_out "result: verified (Genoa, VCEK)" "report verified"

# ---- overwrite protection and --force ---------------------------------------------------------
expect_rc 3 "init refuses to replace an existing DIR" "$SKR_EMU" init "$EMU"
expect_out "--force" "the refusal names --force"
cp "$EMU/snp/ark.pem" "$TMP/old-ark.pem"
printf '{"version":1,"keys":{"k":{}}}\n' >"$EMU/keys/store.json"
chmod 755 "$EMU/keys"

# ---- init #2: --force, default policy ----------------------------------------------------------
expect_rc 0 "init --force replaces it (default policy)" "$SKR_EMU" init "$EMU" --force
base64 -d "$SC/security-policy-base64" >"$TMP/default.rego"
expect_out "host data:      cadd74f71ebb8fbf9782baab649612520f3c416bc5ce9ac768808ddc8d9b031c" \
    "default policy: HOST_DATA is ACI's allow-all value"
if [ "$(sha256sum "$TMP/default.rego" | cut -d' ' -f1)" = \
    cadd74f71ebb8fbf9782baab649612520f3c416bc5ce9ac768808ddc8d9b031c ]; then
    ok "default security-policy-base64 is ACI's allow-all rego"
else
    not_ok "default policy digest"
fi
if grep -q '^package policy' "$TMP/default.rego"; then ok "default policy is rego"; else not_ok "default policy is not rego"; fi
tenant2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tenant_id"])' "$EMU/emu.json")
if [ -n "$tenant1" ] && [ "$tenant1" != "$tenant2" ]; then ok "--force made new identities"; else not_ok "tenant id unchanged ($tenant1)"; fi
if grep -q '"keys": {}' "$EMU/keys/store.json"; then ok "--force empties the key store"; else not_ok "key store kept"; fi
mode=$(stat -c %a "$EMU/keys")
if [ "$mode" = 700 ]; then ok "--force restores keys/ to 0700"; else not_ok "keys/ is $mode"; fi
expect_rc 0 "the new platform's report verifies against the new THIM file" "$SKR" report fetch \
    --device "emulated:$EMU" --format bin --out "$TMP/r2.bin"
expect_rc 0 "verify after --force" "$SKR" report verify "$TMP/r2.bin" \
    --certs "$SC/host-amd-cert-base64" --trust-root "$EMU/snp/ark.pem" \
    --host-data cadd74f71ebb8fbf9782baab649612520f3c416bc5ce9ac768808ddc8d9b031c
expect_out "result: verified (Milan, VCEK)" "Milan after --force"
expect_rc 1 "the old ARK does not verify the new platform" "$SKR" certs verify \
    "$SC/host-amd-cert-base64" --trust-root "$TMP/old-ark.pem"

finish
