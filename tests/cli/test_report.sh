#!/bin/sh
# test_report.sh - `skr report show|verify` against every real vector with its VCEK, the
# negative vectors, and bit flips in the body, r, s, the VCEK and the ASK.
. "$(dirname "$0")/lib.sh"

# report  certificates (any accepted format)
while read -r rep certs; do
    expect_rc 0 "verify $rep with $certs" "$SKR" report verify "$DATA/$rep" --certs "$DATA/$certs"
    expect_out "result: verified (Milan, VCEK)" "$rep verified as Milan/VCEK"
    expect_rc 0 "show $rep --format bin round-trips" "$SKR" report show "$DATA/$rep" --format bin
    "$SKR" report show "$DATA/$rep" --format bin >"$TMP/rt.bin"
    case "$rep" in
    *.hex) tr -d ' \n\r' <"$DATA/$rep" | tr 'A-F' 'a-f' >"$TMP/orig.hex"
           "$SKR" report show "$DATA/$rep" --format hex | tr -d '\n' >"$TMP/rt.hex"
           if cmp -s "$TMP/orig.hex" "$TMP/rt.hex"; then ok "$rep hex round trip"; else not_ok "$rep hex round trip"; fi ;;
    *) if cmp -s "$DATA/$rep" "$TMP/rt.bin"; then ok "$rep byte-identical round trip"; else not_ok "$rep byte-identical round trip"; fi ;;
    esac
done <<'VECTORS'
scc/test_data__snp_report.bin scc/test_data__uvm_host_amd_certificate.json
scc/test_data__snp_report.bin scc/test_data__uvm_host_amd_certificate.pem
gsg/attestation.bin gsg/vcek.testcer
virtee/report_milan.bin virtee/vcek_milan.der
virtee/report_milan.hex virtee/vcek_milan.der
psk/evidence_report.bin psk/endorsements_chain.pem
VECTORS

# The v3 vector has no published VCEK but must parse and round-trip.
"$SKR" report show "$DATA/scc/platform_cert_fetcher_test__v3_report.bin" --format bin >"$TMP/v3.bin"
if cmp -s "$TMP/v3.bin" "$DATA/scc/platform_cert_fetcher_test__v3_report.bin"; then ok "v3 round trip"; else not_ok "v3 round trip"; fi
expect_rc 0 "show v3 as JSON" "$SKR" report show "$DATA/scc/platform_cert_fetcher_test__v3_report.bin" --format json
expect_out '"product": "Milan"' "v3 product from CPUID"
expect_out '"microcode": 219' "v3 ucode 0xdb decoded"

# HOST_DATA of the sidecar vector is SHA-256 of its security policy (PROTOCOLS.md §9).
want=$(base64 -d "$DATA/scc/test_data__uvm_security_policy.base64" | sha256sum | cut -d' ' -f1)
expect_rc 0 "show sidecar report" "$SKR" report show "$DATA/scc/test_data__snp_report.bin" --format json
expect_out "\"host_data\": \"$want\"" "HOST_DATA = SHA-256(security policy) = $want"
expect_rc 0 "text show" "$SKR" report show "$DATA/scc/test_data__snp_report.bin"
expect_out "$want" "text show prints HOST_DATA"

# The truncated REST-spec report and the reference's fake v1 report are rejected as input.
expect_rc 2 "truncated 1182-byte report rejected" "$SKR" report verify \
    "$DATA/restspec/maa_AttestSevSnpVm_example_SnpReport_TRUNCATED_1182bytes.bin" \
    --certs "$DATA/restspec/maa_AttestSevSnpVm_example_VcekCertChain.pem"
expect_out "1182 bytes" "truncated report: the length is named"
expect_rc 2 "fake v1 report rejected" "$SKR" report show "$DATA/scc/attestation_report_fetcher__fake_report_v1.hex"
expect_out "version 1" "fake report: the version is named"

# A VCEK of another chip: signature and chip id fail, each by name.
expect_rc 1 "report with another chip's VCEK" "$SKR" report verify "$DATA/scc/test_data__snp_report.bin" \
    --certs "$DATA/scc/security-context-test/host-amd-cert-base64"
expect_out "FAIL  report.signature" "other chip: report.signature named"
expect_out "FAIL  chip_id.hwid" "other chip: chip_id.hwid named"
expect_out "PASS  tcb.thim_tcbm" "other chip at the same TCB: tcbm still matches"

# Bit flips. The report: body (MEASUREMENT at 0x90), r (0x2A0), s (0x2E8).
for spec in body:144 r:672 s:744; do
    name=${spec%%:*}
    off=${spec#*:}
    cp "$DATA/gsg/attestation.bin" "$TMP/flip.bin"
    flip "$TMP/flip.bin" "$off"
    expect_rc 1 "flip in $name rejected" "$SKR" report verify "$TMP/flip.bin" --certs "$DATA/gsg/vcek.testcer"
    expect_out "FAIL  report.signature" "flip in $name: report.signature named"
done

# The certificates: flip the last byte (inside the signature) of the VCEK, then of the ASK.
openssl x509 -in "$DATA/scc/test_data__uvm_host_amd_certificate.pem" -outform der >"$TMP/vcek.der"
awk 'n==1{print} /END CERT/{n++} ' "$DATA/scc/test_data__uvm_host_amd_certificate.pem" >/dev/null
csplit -s -z -f "$TMP/c" "$DATA/scc/test_data__uvm_host_amd_certificate.pem" '/-----BEGIN CERTIFICATE-----/' '{*}'
for role in vcek:00 ask:01; do
    name=${role%%:*}
    idx=${role#*:}
    openssl x509 -in "$TMP/c$idx" -outform der >"$TMP/cert.der"
    size=$(wc -c <"$TMP/cert.der")
    flip "$TMP/cert.der" $((size - 1))
    : >"$TMP/chain.pem"
    for k in 00 01 02; do
        if [ "$k" = "$idx" ]; then
            openssl x509 -inform der -in "$TMP/cert.der" >>"$TMP/chain.pem"
        else
            cat "$TMP/c$k" >>"$TMP/chain.pem"
        fi
    done
    expect_rc 1 "flip in the $name rejected" "$SKR" report verify "$DATA/scc/test_data__snp_report.bin" --certs "$TMP/chain.pem"
    if [ "$name" = vcek ]; then
        expect_out "FAIL  chain.vcek_ask" "flip in the VCEK: chain.vcek_ask named"
    else
        expect_out "FAIL  chain.ask_ark" "flip in the ASK: chain.ask_ark named"
    fi
done

# A chain ending in a Genoa ARK for a Milan report, and an unknown root.
cat "$DATA/gsg/vcek.testcer" >/dev/null
openssl x509 -inform der -in "$DATA/gsg/vcek.testcer" >"$TMP/mixed.pem"
cat "$DATA/gsg/trust/ask_ark_genoa.pem" >>"$TMP/mixed.pem"
expect_rc 1 "Genoa chain for a Milan VCEK" "$SKR" report verify "$DATA/gsg/attestation.bin" --certs "$TMP/mixed.pem"
expect_out "FAIL  chain.ark_trusted" "wrong product root named"

# Optional checks.
SCC_REPORT="$DATA/scc/test_data__snp_report.bin"
SCC_CERTS="$DATA/scc/test_data__uvm_host_amd_certificate.pem"
measurement=$("$SKR" report show "$SCC_REPORT" --format json | sed -n 's/.*"measurement": "\([0-9a-f]*\)".*/\1/p')
expect_rc 0 "expected measurement, HOST_DATA, no debug, VMPL and minimum TCB hold" "$SKR" report verify "$SCC_REPORT" \
    --certs "$SCC_CERTS" --measurement "$measurement" --host-data "$want" --no-debug --vmpl 0 \
    --min-tcb bl=3,tee=0,snp=8,ucode=115
expect_out "PASS  measurement" "measurement check reported"
expect_out "PASS  policy.no_debug" "no-debug check reported"
# The go-sev-guest vector was taken from a debuggable guest (POLICY 0xb0000, bit 19 set).
expect_rc 1 "debuggable guest fails --no-debug" "$SKR" report verify "$DATA/gsg/attestation.bin" \
    --certs "$DATA/gsg/vcek.testcer" --no-debug
expect_out "FAIL  policy.no_debug" "policy.no_debug named"
expect_rc 1 "wrong HOST_DATA fails" "$SKR" report verify "$DATA/gsg/attestation.bin" \
    --certs "$DATA/gsg/vcek.testcer" --host-data "$(printf '%064d' 0 | tr 0 a)"
expect_out "FAIL  host_data" "host_data named"
expect_rc 1 "minimum TCB above the report fails" "$SKR" report verify "$DATA/gsg/attestation.bin" \
    --certs "$DATA/gsg/vcek.testcer" --min-tcb snp=200
expect_out "FAIL  tcb.minimum" "tcb.minimum named"
expect_rc 1 "wrong VMPL fails" "$SKR" report verify "$DATA/gsg/attestation.bin" --certs "$DATA/gsg/vcek.testcer" --vmpl 2
expect_out "FAIL  vmpl" "vmpl named"
expect_rc 0 "JSON verification result" "$SKR" report verify "$DATA/gsg/attestation.bin" --certs "$DATA/gsg/vcek.testcer" --format json
expect_out '"ok": true' "JSON result says ok"

# Usage errors exit 2.
expect_rc 2 "verify without --certs" "$SKR" report verify "$DATA/gsg/attestation.bin"
expect_out "no certificates" "missing --certs explained"
expect_rc 2 "bad --min-tcb" "$SKR" report verify "$DATA/gsg/attestation.bin" --certs "$DATA/gsg/vcek.testcer" --min-tcb xx=1
expect_rc 2 "bad --format" "$SKR" report show "$DATA/gsg/attestation.bin" --format yaml
expect_rc 2 "missing file" "$SKR" report show "$TMP/nope.bin"
expect_rc 2 "unknown command" "$SKR" report frobnicate
expect_rc 0 "help" "$SKR" report --help
expect_out "skr report verify FILE --certs FILE" "help lists verify"
printf 'not a report' >"$TMP/junk"
expect_rc 2 "junk input" "$SKR" report show "$TMP/junk"

finish
