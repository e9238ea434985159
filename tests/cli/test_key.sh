#!/bin/sh
# test_key.sh - `skr key import|create|get|policy` against skr-emu: the reference's example
# importkeyconfig.json files (tests/data/scc-importkey) imported unchanged but for their
# placeholders and released through the emulator by an independent client (key_tool.py), every
# key type and size of the richer form, import from every key file format, the HKDF key of
# --derive-out against an independent HKDF, policy replacement and the immutable refusal, a table
# of bad inputs that leave the vault untouched, and every token source.
# shellcheck disable=SC2086 # $CL and $DEAD are lists of flags, split on purpose
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/skrd_lib.sh"
HERE=$(dirname "$0")
KT="python3 $HERE/key_tool.py"
REF="$DATA/scc-importkey"

emu_init
emu_serve
ep() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$EMU/endpoints.json" "$1"; }
IMDS=$(ep imds)
MAA=$(ep maa)
AKV=$(ep akv)
CL="--imds-endpoint $IMDS --ca-file $EMU/ca.pem"
DEAD="--imds-endpoint http://127.0.0.1:1 --ca-file $EMU/ca.pem --set retries=0"
HD=$("$SKR" policy digest "$EMU/security-context/security-policy-base64")
STORE="$EMU/keys/store.json"
store_sum() { sha256sum "$STORE" 2>/dev/null | cut -c1-64; }
token=$(python3 - "$IMDS" <<'PY'
import json, sys, urllib.request
r = urllib.request.Request(sys.argv[1] + "/metadata/identity/oauth2/token?api-version=2018-02-01"
                           "&resource=https%3A%2F%2Fvault.azure.net", headers={"Metadata": "true"})
print(json.load(urllib.request.urlopen(r))["access_token"])
PY
)

# jget FILE EXPR: a value from a JSON file (python expression over d)
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# fill TEMPLATE OUT NAME KTY TOKEN SALT LABEL: the reference example with its placeholders filled
fill() {
    sed -e "s|<key-vault-key-identifier>|$3|; s|<key-vault-key-name>|$3|" \
        -e "s|<key-type-of-key-imported-to-akv>|$4|" \
        -e "s|<authority-of-key-imported-to-akv>|${MAA#https://}|; s|<maa-endpoint>|${MAA#https://}|" \
        -e "s|<key-vault-akv-endpoint>|${AKV#https://}|; s|<key-vault-endpoint>|${AKV#https://}|" \
        -e "s|<aad-token-with-permissions-to-akv>|$5|; s|<aad-token-with-permissions-to-key-vault>|$5|" \
        -e "s|<salt-for-key-derivation-valid-only-for-RSA-HSM-keys>|$6|" \
        -e "s|<label-for-derived-key-valid-only-for-RSA-HSM-keys>|$7|" \
        -e "s|<hash-digest-of-the-security-policy>|$HD|" "$1" >"$2"
}

# ---- help -----------------------------------------------------------------------------------
expect_rc 0 "key --help" "$SKR" key --help
for o in --key-file --derive-out --force --akv --name --api-version --dry-run --version --format \
    --set --immutable --token --token-file --client-id --imds-endpoint --ca-file; do
    expect_out "$o" "--help lists $o"
done
expect_rc 2 "key without a command" "$SKR" key
expect_rc 2 "unknown key command" "$SKR" key frob

# ---- the reference's examples, unchanged but for the placeholders -------------------------
# ACI example as oct-HSM, bearer token in the config, IMDS unreachable: the config's token is used
SALT=00112233445566778899aabbccddeeff
fill "$REF/aci-importkeyconfig.json" "$TMP/aci.json" aci-oct oct-HSM "$token" "$SALT" aci-label
if grep -q '<' "$TMP/aci.json"; then not_ok "placeholders left in aci.json"; else ok "aci example filled"; fi
openssl rand -hex 32 >"$TMP/oct.hex"
expect_rc 0 "ACI example imported (oct-HSM from a hex key file, bearer_token of the config)" \
    "$SKR" key import "$TMP/aci.json" --key-file "$TMP/oct.hex" $DEAD
expect_out "$AKV/keys/aci-oct/" "prints the key id"
expect_out "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"$MAA\",\"allOf\":[{\"claim\":\"x-ms-sevsnpvm-hostdata\",\"equals\":\"$HD\"}" \
    "prints the reference's policy (authority https://<endpoint>, claims as allOf)"
expect_rc 0 "key get shows the ACI key" "$SKR" key get aci-oct --akv "$AKV" $CL
expect_out "exportable:  true" "exportable shown"
expect_out "\"equals\": \"$HD\"" "decoded policy shows HOST_DATA"
if $KT release "$TMP/skr" "$EMU" aci-oct >"$TMP/rel.json" 2>"$TMP/rel.err" &&
    [ "$(jget "$TMP/rel.json" 'd["oct_hex"]')" = "$(cat "$TMP/oct.hex")" ]; then
    ok "released through the emulator (attested): exactly the oct key of the file"
else
    not_ok "ACI key release"
    sed 's/^/#   /' "$TMP/rel.json" "$TMP/rel.err"
fi

# encfs example as RSA-HSM, generated, --derive-out, token from IMDS (bearer_token "")
fill "$REF/encfs-importkeyconfig.json" "$TMP/encfs.json" encfs-rsa RSA-HSM "" "$SALT" encfs-label
expect_rc 0 "encfs example imported (RSA-HSM generated, --derive-out, IMDS identity)" \
    "$SKR" key import "$TMP/encfs.json" --derive-out "$TMP/keyfile.bin" $CL
expect_out "derived key written to $TMP/keyfile.bin" "derive-out reported"
[ "$(stat -c %a "$TMP/keyfile.bin")" = 600 ] && ok "keyfile mode 0600" || not_ok "keyfile mode $(stat -c %a "$TMP/keyfile.bin")"
[ "$(stat -c %s "$TMP/keyfile.bin")" = 32 ] && ok "keyfile is 32 bytes" || not_ok "keyfile size"
if $KT release "$TMP/skr" "$EMU" encfs-rsa >"$TMP/rel.json" 2>"$TMP/rel.err"; then
    d=$(jget "$TMP/rel.json" 'd["d_hex"]')
    want=$($KT hkdf "$d" "$SALT" encfs-label)
    got=$(od -An -tx1 -v "$TMP/keyfile.bin" | tr -d ' \n')
    [ "$want" = "$got" ] && ok "keyfile = HKDF-SHA256(d of the released key, salt, label) (python hmac)" ||
        not_ok "derived key differs from the independent HKDF ($got vs $want)"
else
    not_ok "encfs key release"
    sed 's/^/#   /' "$TMP/rel.err"
fi
expect_rc 0 "key policy shows the encfs policy" "$SKR" key policy encfs-rsa --akv "$AKV" $CL
expect_out "x-ms-sevsnpvm-vmpl" "decoded policy printed"
before=$(store_sum)
expect_rc 2 "--derive-out refuses to overwrite" "$SKR" key import "$TMP/encfs.json" \
    --derive-out "$TMP/keyfile.bin" $CL
expect_out "$TMP/keyfile.bin: the file exists" "refusal names the file"
[ "$got" = "$(od -An -tx1 -v "$TMP/keyfile.bin" | tr -d ' \n')" ] && ok "keyfile unchanged" || not_ok "keyfile changed"
[ "$before" = "$(store_sum)" ] && ok "nothing sent to the vault" || not_ok "store changed"

# the same derivation with an imported PEM and no key_derivation (default label, empty salt)
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TMP/rsa.pem" 2>/dev/null
cat >"$TMP/rich-rsa.json" <<EOF
{"key": {"kid": "rsa-pem", "kty": "RSA-HSM", "authority": {"endpoint": "$MAA"},
         "akv": {"endpoint": "$AKV", "api_version": "7.4"}},
 "claims": [[{"claim": "x-ms-sevsnpvm-hostdata", "equals": "$HD"}]]}
EOF
expect_rc 0 "import PEM with --derive-out --force over an existing file" "$SKR" key import \
    "$TMP/rich-rsa.json" --key-file "$TMP/rsa.pem" --derive-out "$TMP/keyfile.bin" --force $CL
d=$(openssl pkey -in "$TMP/rsa.pem" -text -noout | awk '/^privateExponent:/{f=1;next} /^prime1:/{f=0} f' |
    tr -d ' :\n' | sed 's/^00//')
[ "$d" = "$($KT d "$TMP/rsa.pem")" ] && ok "d from openssl pkey -text" || not_ok "d extraction"
want=$($KT hkdf "$d" "" "Symmetric Encryption Key")
got=$(od -An -tx1 -v "$TMP/keyfile.bin" | tr -d ' \n')
[ "$want" = "$got" ] && ok "default label, empty salt: HKDF matches (d from openssl pkey -text)" ||
    not_ok "HKDF default label"
[ "$(stat -c %a "$TMP/keyfile.bin")" = 600 ] && ok "replaced keyfile mode 0600" || not_ok "mode"

# ---- richer form: every type and size, import (generated) and create ----------------------
rich() { # rich FILE NAME KTY EXTRA-KEY-MEMBERS
    cat >"$1" <<EOF
{"key": {"kid": "$2", "kty": "$3", $4 "key_ops": ["encrypt", "decrypt"], "exportable": true,
         "akv": {"endpoint": "$AKV"}},
 "release_policy": {"version": "1.0.0", "anyOf": [{"authority": "$MAA",
     "allOf": [{"claim": "x-ms-sevsnpvm-hostdata", "equals": "$HD"},
               {"claim": "x-ms-sevsnpvm-is-debuggable", "equals": false}]}]}}
EOF
}
for spec in RSA-HSM:key_size:2048 RSA-HSM:key_size:3072 RSA-HSM:key_size:4096 EC-HSM:crv:P-256 \
    EC-HSM:crv:P-384 EC-HSM:crv:P-521 oct-HSM:key_size:128 oct-HSM:key_size:192 \
    oct-HSM:key_size:256; do
    kty=${spec%%:*}
    rest=${spec#*:}
    m=${rest%%:*}
    v=${rest#*:}
    case $m in key_size) mv=$v ;; *) mv="\"$v\"" ;; esac
    n=$(echo "$kty-$v" | tr -d ':')
    for how in import create; do
        rich "$TMP/r.json" "$how-$n" "$kty" "\"$m\": $mv,"
        expect_rc 0 "$how $kty $v" "$SKR" key $how "$TMP/r.json" $CL
        "$SKR" key get "$how-$n" --akv "$AKV" --format json $CL >"$TMP/g.json" 2>"$TMP/err"
        case $kty in
        RSA-HSM) have=$(jget "$TMP/g.json" 'len(__import__("base64").urlsafe_b64decode(d["key"]["n"]+"==").lstrip(b"\0"))*8') ;;
        EC-HSM) have=$(jget "$TMP/g.json" 'd["key"]["crv"]') ;;
        *) have=$v ;;
        esac
        kt=$(jget "$TMP/g.json" 'd["key"]["kty"]+" "+str(d["attributes"]["exportable"])+" "+str(d["key"]["key_ops"])+" "+str(d["release_policy"]["policy"]["anyOf"][0]["allOf"][1]["equals"])')
        [ "$have $kt" = "$v $kty True ['encrypt', 'decrypt'] False" ] && ok "$how $kty $v: vault has it, exportable, key_ops, policy" ||
            not_ok "$how $kty $v: got '$have $kt'"
    done
done
for b in 16 24; do
    openssl rand -hex $b >"$TMP/o$b.hex"
    rich "$TMP/r.json" "oct$b" oct-HSM ""
    expect_rc 0 "import oct-HSM $((b * 8)) bits from hex" "$SKR" key import "$TMP/r.json" --key-file "$TMP/o$b.hex" $CL
    $KT release "$TMP/skr" "$EMU" "oct$b" >"$TMP/rel.json" 2>"$TMP/rel.err"
    [ "$(jget "$TMP/rel.json" 'd["oct_hex"]' 2>/dev/null)" = "$(cat "$TMP/o$b.hex")" ] &&
        ok "oct $((b * 8)) bits released: the key of the file" || not_ok "oct $b release"
done
rich "$TMP/r.json" dry RSA-HSM ""
expect_rc 0 "create --dry-run" "$SKR" key create "$TMP/r.json" --dry-run
expect_out '"method": "POST"' "dry run method"
expect_out "/keys/dry/create?api-version=7.4" "dry run url"
expect_out '"key_size": 2048' "dry run body"

# ---- key file formats --------------------------------------------------------------------
openssl pkey -in "$TMP/rsa.pem" -traditional -out "$TMP/rsa1.pem" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$TMP/rsa.pem" -outform DER -out "$TMP/rsa8.der"
openssl pkey -in "$TMP/rsa.pem" -traditional -outform DER -out "$TMP/rsa1.der" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$TMP/ec.pem" 2>/dev/null
openssl pkey -in "$TMP/ec.pem" -traditional -out "$TMP/ec1.pem" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$TMP/ec.pem" -outform DER -out "$TMP/ec8.der"
openssl pkey -in "$TMP/ec.pem" -traditional -outform DER -out "$TMP/ec1.der" 2>/dev/null
python3 - "$TMP/rsa.pem" "$TMP/rsa.jwk" "$TMP/ec.pem" "$TMP/ec.jwk" <<'PY'
import base64, json, sys
from cryptography.hazmat.primitives import serialization
def u(i, n=None):
    b = i.to_bytes(n or (i.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
k = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), None)
p = k.private_numbers()
json.dump({"kty": "RSA", "n": u(p.public_numbers.n), "e": u(p.public_numbers.e), "d": u(p.d),
           "p": u(p.p), "q": u(p.q), "dp": u(p.dmp1), "dq": u(p.dmq1), "qi": u(p.iqmp)},
          open(sys.argv[2], "w"))
k = serialization.load_pem_private_key(open(sys.argv[3], "rb").read(), None)
p = k.private_numbers()
json.dump({"kty": "EC-HSM", "crv": "P-384", "x": u(p.public_numbers.x, 48),
           "y": u(p.public_numbers.y, 48), "d": u(p.private_value, 48)}, open(sys.argv[4], "w"))
PY
openssl rand 32 >"$TMP/oct.raw"
printf '{"kty":"oct","k":"%s"}' "$(basenc --base64url <"$TMP/oct.raw" | tr -d '=\n')" >"$TMP/oct.jwk"
i=0
for f in rsa.pem:"PEM (PKCS#8)" rsa1.pem:"PEM (PKCS#1)" rsa8.der:"DER (PKCS#8)" rsa1.der:"DER (PKCS#1)" \
    rsa.jwk:JWK ec.pem:"PEM (PKCS#8)" ec1.pem:"PEM (SEC1)" ec8.der:"DER (PKCS#8)" ec1.der:"DER (SEC1)" \
    ec.jwk:JWK oct.raw:raw oct.jwk:JWK oct.hex:hex; do
    file=${f%%:*}
    fmt=${f#*:}
    i=$((i + 1))
    case $file in rsa*) kty=RSA-HSM ;; ec*) kty=EC-HSM ;; *) kty=oct-HSM ;; esac
    rich "$TMP/r.json" "kf$i" "$kty" ""
    expect_rc 0 "import $kty from $file" "$SKR" key import "$TMP/r.json" --key-file "$TMP/$file" $CL
    expect_out "($fmt," "format detected as $fmt"
    "$SKR" key get "kf$i" --akv "$AKV" --format json $CL >"$TMP/g.json" 2>"$TMP/err"
    case $kty in
    oct-HSM)
        $KT release "$TMP/skr" "$EMU" "kf$i" >"$TMP/rel.json" 2>"$TMP/rel.err"
        want=$(od -An -tx1 -v "$TMP/oct.raw" | tr -d ' \n')
        [ "$file" = oct.hex ] && want=$(cat "$TMP/oct.hex")
        [ "$(jget "$TMP/rel.json" 'd["oct_hex"]' 2>/dev/null)" = "$want" ] &&
            ok "$file: released key = file's key" || not_ok "$file: released key differs"
        ;;
    *)
        src=$TMP/rsa.pem
        [ "$kty" = EC-HSM ] && src=$TMP/ec.pem
        $KT pub "$src" >"$TMP/pub.json"
        if python3 -c "import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2]))['key']; sys.exit(any(b.get(k)!=v for k,v in a.items()))" "$TMP/pub.json" "$TMP/g.json"; then
            ok "$file: the vault's public key is the file's"
        else
            not_ok "$file: public key differs"
        fi
        ;;
    esac
done

# ---- policy --set and immutable -----------------------------------------------------------
cat >"$TMP/newpol.json" <<EOF
{"version": "1.0.0", "anyOf": [{"authority": "$MAA", "allOf": [
  {"claim": "x-ms-sevsnpvm-hostdata", "equals": "$HD"}, {"claim": "x-ms-sevsnpvm-vmpl", "equals": 0}]}]}
EOF
expect_rc 0 "policy --set --dry-run" "$SKR" key policy kf1 --akv "$AKV" --set "$TMP/newpol.json" --dry-run
expect_out '"method": "PATCH"' "dry run PATCH"
expect_rc 0 "policy --set replaces the policy" "$SKR" key policy kf1 --akv "$AKV" --set "$TMP/newpol.json" $CL
expect_out '"claim": "x-ms-sevsnpvm-vmpl"' "the new policy is printed"
expect_rc 0 "policy reads it back" "$SKR" key policy kf1 --akv "$AKV" $CL
expect_out '"equals": 0' "round trip"
$KT release "$TMP/skr" "$EMU" kf1 >"$TMP/rel.json" 2>"$TMP/rel.err" && ok "release under the new policy" || not_ok "release under the new policy"
expect_rc 0 "policy --set --immutable" "$SKR" key policy kf1 --akv "$AKV" --set "$TMP/newpol.json" --immutable $CL
expect_rc 0 "key get shows immutable" "$SKR" key get kf1 --akv "$AKV" $CL
expect_out "immutable true" "immutable shown"
expect_rc 2 "an immutable policy cannot be replaced" "$SKR" key policy kf1 --akv "$AKV" --set "$TMP/newpol.json" $CL
expect_out "AKV.SKR.1020" "AKV.SKR.1020 reported"
expect_out "hint: the key's release policy is immutable" "hint printed"
expect_rc 2 "--immutable without --set" "$SKR" key policy kf1 --akv "$AKV" --immutable $CL

# ---- vault errors ---------------------------------------------------------------------------
expect_rc 3 "get of a missing key" "$SKR" key get nosuchkey --akv "$AKV" $CL
expect_out "HTTP 404" "404 named"
expect_out "hint: no such key" "404 hint"
expect_rc 3 "a token the vault refuses" "$SKR" key get kf1 --akv "$AKV" --token not-a-jwt $CL
expect_out "HTTP 401" "401 named"
expect_out "hint: the vault refused the token" "401 hint"

# ---- token sources ------------------------------------------------------------------------
printf '%s\n' "$token" >"$TMP/tok"
expect_rc 0 "--token-file (IMDS unreachable)" "$SKR" key get kf1 --akv "$AKV" --token-file "$TMP/tok" $DEAD
export AZURE_ACCESS_TOKEN="$token"
expect_rc 0 "AZURE_ACCESS_TOKEN (IMDS unreachable)" "$SKR" key get kf1 --akv "$AKV" $DEAD
unset AZURE_ACCESS_TOKEN
expect_rc 3 "no token source at all (IMDS unreachable)" "$SKR" key get kf1 --akv "$AKV" $DEAD
sed "s|\"$token\"|\"bad-token\"|" "$TMP/aci.json" >"$TMP/aci-bad.json"
export AZURE_ACCESS_TOKEN="$token"
expect_rc 0 "AZURE_ACCESS_TOKEN wins over the config's bearer_token" \
    "$SKR" key import "$TMP/aci-bad.json" --name aci-env $DEAD
unset AZURE_ACCESS_TOKEN
expect_rc 3 "the config's bad bearer_token is used (401)" "$SKR" key import "$TMP/aci-bad.json" \
    --name aci-bad $DEAD
expect_out "HTTP 401" "the vault refused the config's token"

# ---- bad input: each exits 2, names the file and the member, sends nothing ----------------
before=$(store_sum)
python3 - "$TMP/encfs.json" "$TMP" <<'PY' >"$TMP/cases"
import copy, json, sys
base = json.load(open(sys.argv[1]))
cases = [
    ("key.akv.endpoint", lambda d: d["key"]["akv"].__setitem__("endpoint", "ftp://x")),
    ("key.akv.endpoint", lambda d: d["key"]["akv"].__setitem__("endpoint", 7)),
    ("key.akv.api_version", lambda d: d["key"]["akv"].__setitem__("api_version", "api-version=7 4")),
    ("key.akv.bearer_token", lambda d: d["key"]["akv"].__setitem__("bearer_token", "<aad-token>")),
    ("key.akv.bearer_token", lambda d: d["key"]["akv"].__setitem__("bearer_token", "a b")),
    ("key.akv.endponit", lambda d: d["key"]["akv"].__setitem__("endponit", "x")),
    ("key.kid", lambda d: d["key"].__setitem__("kid", "bad/name")),
    ("key.kid", lambda d: d["key"].__setitem__("kid", "<key-vault-key-identifier>")),
    ("key.kty", lambda d: d["key"].__setitem__("kty", "RSA")),
    ("key.key_size", lambda d: d["key"].__setitem__("key_size", 1024)),
    ("key.crv", lambda d: d["key"].__setitem__("crv", "P-256")),
    ("key.key_ops[1]", lambda d: d["key"].__setitem__("key_ops", ["encrypt", "frobnicate"])),
    ("key.authority.endpoint", lambda d: d["key"]["authority"].__setitem__("endpoint", "http://maa")),
    ("key.authority.endpoint", lambda d: d["key"].pop("authority")),
    ("key.exportable", lambda d: d["key"].__setitem__("exportable", "yes")),
    ("key_derivation.salt", lambda d: d["key_derivation"].__setitem__("salt", "abc")),
    ("key_derivation.salt", lambda d: d["key_derivation"].__setitem__("salt", "zz")),
    ("key_derivation.label", lambda d: d["key_derivation"].__setitem__("label", 5)),
    ("claims[0][2].equals", lambda d: d["claims"][0][2].__setitem__("equals", 1.5)),
    ("claims[0][1].claim", lambda d: d["claims"][0][1].__setitem__("claim", "")),
    ("claims[0][0].equals", lambda d: d["claims"][0][0].__setitem__("equals", "<hash-digest-of-the-security-policy>")),
    ("claims[0][3]", lambda d: d["claims"][0][3].__setitem__("value", "0")),
    ("claims[0]", lambda d: d["claims"].__setitem__(0, [])),
    ("claims", lambda d: d.__setitem__("claims", {})),
    ("release_policy: not together with claims", lambda d: d.__setitem__("release_policy", {"version": "1.0.0"})),
    ("release_policy: missing", lambda d: (d.pop("claims"), d.__setitem__("release_policy", {"version": "1.0.0"}))),
    ("claims: missing", lambda d: d.pop("claims")),
    ("identity.client_id", lambda d: d.__setitem__("identity", {"client_id": 3})),
    ("release_policy: anyOf[0]: unknown member 'allof'", lambda d: (d.pop("claims"), d.__setitem__("release_policy", {"version": "1.0.0", "anyOf": [{"authority": "https://a", "allof": []}]}))),
    ("release_policy: ", lambda d: (d.pop("claims"), d.__setitem__("release_policy", {"version": "1.0.0", "anyOf": [{"authority": "https://a", "allOf": [{"claim": "c", "exists": True}]}]}))),
    ("key.bogus: unknown member (expected one of: kid,", lambda d: d.__setitem__("key", {"kid": "x", "bogus": 1})),
]
for i, (field, f) in enumerate(cases):
    d = copy.deepcopy(base)
    f(d)
    p = f"{sys.argv[2]}/bad{i}.json"
    json.dump(d, open(p, "w"))
    print(f"{p}\t{field}")
PY
printf '{"key": ' >"$TMP/trunc.json"
printf '%s\t%s\n' "$TMP/trunc.json" "" >>"$TMP/cases"
printf '[1]' >"$TMP/notobj.json"
printf '%s\t%s\n' "$TMP/notobj.json" "" >>"$TMP/cases"
while IFS="$(printf '\t')" read -r f field; do
    expect_rc 2 "bad config $(basename "$f") ($field)" "$SKR" key import "$f" $CL
    expect_out "$f: $field" "message names the file and '$field'"
done <"$TMP/cases"
expect_rc 2 "missing config file" "$SKR" key import "$TMP/nonexistent.json" $CL
expect_out "$TMP/nonexistent.json" "missing file named"
# bad key files
printf 'not a key at all, not hex either: %%%%' >"$TMP/junk.key"
openssl pkey -in "$TMP/rsa.pem" -pubout -out "$TMP/pub.pem"
openssl pkey -in "$TMP/rsa.pem" -aes128 -passout pass:x -out "$TMP/enc.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$TMP/rsa1024.pem" 2>/dev/null
openssl rand -hex 20 >"$TMP/oct20.hex"
printf '{"kty":"RSA","n":"AQAB","e":"AQAB"}' >"$TMP/pub.jwk"
head -c 100 "$TMP/rsa8.der" >"$TMP/trunc.der"
for kf in junk.key:"DER: not a PKCS#8" pub.pem:"PEM: expected a PRIVATE KEY" \
    enc.pem:"PEM: an encrypted private key" rsa1024.pem:"PEM (PKCS#8): an RSA key of 1024 bits" \
    oct20.hex:"hex: an oct key of 20 bytes" pub.jwk:"JWK: d: missing" trunc.der:"DER: not a PKCS#8" \
    ec.pem:"PEM (PKCS#8): an EC key, but key.kty is RSA-HSM" oct.hex:"hex: an oct key, but key.kty is RSA-HSM"; do
    file=${kf%%:*}
    msg=${kf#*:}
    expect_rc 2 "bad key file $file" "$SKR" key import "$TMP/encfs.json" --key-file "$TMP/$file" $CL
    expect_out "$TMP/$file: $msg" "names the file and says: $msg"
done
rich "$TMP/r4.json" size-mismatch RSA-HSM '"key_size": 4096,'
expect_rc 2 "key file size differs from key.key_size" "$SKR" key import "$TMP/r4.json" --key-file "$TMP/rsa.pem" $CL
expect_out "a key of 2048 bits, but key.key_size is 4096" "size mismatch named"
# bad policies for --set
printf '{"version":"1.0.0","anyOf":[]}' >"$TMP/p1.json"
printf '{"version":"1.0.0","anyOf":[{"authority":"https://a","allOf":[{"claim":"c","equals":[1]}]}]}' >"$TMP/p2.json"
printf '{"anyOf":[{"authority":"https://a","allOf":[{"claim":"c","equals":"1"}]}]}' >"$TMP/p3.json"
printf 'nope' >"$TMP/p4.json"
for p in p1 p2 p3 p4; do
    expect_rc 2 "bad policy $p for --set" "$SKR" key policy kf2 --akv "$AKV" --set "$TMP/$p.json" $CL
    expect_out "$TMP/$p.json: " "names the policy file"
done
# derive-out misuse
expect_rc 2 "--derive-out for an oct key" "$SKR" key import "$TMP/aci.json" --derive-out "$TMP/x.bin" $CL
expect_rc 2 "--derive-out into a missing directory" "$SKR" key import "$TMP/encfs.json" \
    --derive-out "$TMP/no/such/dir/k.bin" $CL
expect_out "cannot create files in directory" "unwritable target named"
expect_rc 2 "--derive-out for key create" "$SKR" key create "$TMP/encfs.json" --derive-out "$TMP/x.bin"
expect_rc 2 "get without --akv" "$SKR" key get kf1
expect_rc 2 "bad --format" "$SKR" key get kf1 --akv "$AKV" --format yaml
expect_rc 2 "bad --name" "$SKR" key import "$TMP/encfs.json" --name 'a b' $CL
[ "$before" = "$(store_sum)" ] && ok "the vault's store is unchanged by every bad input" || not_ok "store changed"

# the import of a dry run redacts every private member
expect_rc 0 "import --dry-run" "$SKR" key import "$TMP/rich-rsa.json" --key-file "$TMP/rsa.pem" --dry-run
dpriv=$(jget "$TMP/rsa.jwk" 'd["d"]')
if grep -qF "$dpriv" "$TMP/out" "$TMP/err"; then not_ok "dry run leaks d"; else ok "dry run does not print d"; fi
expect_out '"d": "<redacted>"' "d redacted"
expect_out '"qi": "<redacted>"' "qi redacted"
expect_out "\"n\": \"$(jget "$TMP/rsa.jwk" 'd["n"]')\"" "public n shown"

emu_stop
finish
