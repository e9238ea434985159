#!/bin/sh
# test_certs.sh - `skr certs show|verify|kds-url` on the real AMD certificates of the vectors.
. "$(dirname "$0")/lib.sh"

# Every accepted input format shows the VCEK with its AMD extensions.
for f in scc/test_data__uvm_host_amd_certificate.json scc/test_data__uvm_host_amd_certificate.pem \
    scc/security-context-test/host-amd-cert-base64 virtee/vcek_milan.der gsg/vcek.testcer; do
    expect_rc 0 "certs show $f" "$SKR" certs show "$DATA/$f"
    expect_out "product_name    Milan-B0" "$f: productName decoded"
done
expect_rc 0 "THIM shows tcbm" "$SKR" certs show "$DATA/scc/test_data__uvm_host_amd_certificate.json"
expect_out "tcbm  7308000000000003 (THIM)" "tcbm printed"
expect_rc 0 "JSON" "$SKR" certs show "$DATA/scc/test_data__uvm_host_amd_certificate.pem" --format json
expect_out '"role": "ark"' "JSON lists the ARK"
expect_out '"ucode_spl": 115' "JSON ucode SPL"

# Turin: structVersion 1, FMC SPL, 8-byte hwID; its chain verifies to the pinned ARK-Turin.
expect_rc 0 "Turin VCEK" "$SKR" certs show "$DATA/virtee/vcek_turin.der"
expect_out "struct_version  1" "Turin structVersion"
expect_out "fmc_spl" "Turin fmcSPL"
expect_out "hwid            1e550a8ee5cf9f4d" "Turin 8-byte hwID"
expect_rc 0 "Turin chain verifies (built-in ASK/ARK)" "$SKR" certs verify "$DATA/virtee/vcek_turin.der"
expect_out "result: verified (Turin, VCEK)" "Turin verified"
{ openssl x509 -inform der -in "$DATA/virtee/vcek_turin.der"; cat "$DATA/virtee/cert_chain_turin"; } >"$TMP/turin.pem"
expect_rc 0 "Turin chain verifies (chain from the vector)" "$SKR" certs verify "$TMP/turin.pem"
expect_out "PASS  chain.ask_ark          SEV-Turin signed by ARK-Turin" "ASK-Turin link"

# Milan chains of every vector.
for f in scc/test_data__uvm_host_amd_certificate.pem psk/endorsements_chain.pem \
    restspec/maa_AttestSevSnpVm_example_VcekCertChain.pem virtee/vcek_milan.der; do
    expect_rc 0 "chain of $f" "$SKR" certs verify "$DATA/$f"
done
# The Turin VCEK under the Milan roots, and a product override that contradicts the VCEK.
{ openssl x509 -inform der -in "$DATA/virtee/vcek_turin.der"; cat "$DATA/gsg/trust/ask_ark_milan.pem"; } >"$TMP/mixed.pem"
expect_rc 1 "Turin VCEK with Milan ASK/ARK" "$SKR" certs verify "$TMP/mixed.pem"
expect_out "FAIL  chain.ark_trusted" "wrong root named"
expect_out "FAIL  chain.vcek_ask" "wrong issuer named"
expect_rc 1 "--product Genoa on a Milan VCEK" "$SKR" certs verify "$DATA/virtee/vcek_milan.der" --product Genoa
expect_rc 2 "a chain without a VCEK" "$SKR" certs show "$DATA/gsg/trust/ask_ark_milan.pem"
expect_out "no VCEK" "missing VCEK explained"
printf 'garbage' >"$TMP/junk"
expect_rc 2 "junk" "$SKR" certs show "$TMP/junk"

# KDS URLs (PROTOCOLS.md §2.5): decimal SPLs, 64-byte chip id for Milan.
expect_rc 0 "kds-url of the v3 report" "$SKR" certs kds-url "$DATA/scc/platform_cert_fetcher_test__v3_report.bin"
expect_out "https://kdsintf.amd.com/vcek/v1/Milan/0f92f1d29e384e0ab34a5176b21e72202785010aa2b14d708754471fd2dddb4c728224b848360e8409adbfb428a2b8c5ce87e7f3ab3a6620073ed60dc05ddc21?blSPL=4&teeSPL=0&snpSPL=24&ucodeSPL=219" "VCEK URL with ucodeSPL=219"
expect_out "cert_chain https://kdsintf.amd.com/vcek/v1/Milan/cert_chain" "chain URL"
expect_rc 2 "v2 report needs --product" "$SKR" certs kds-url "$DATA/scc/test_data__snp_report.bin"
expect_out "pass --product" "the fix is named"
expect_rc 0 "v2 with --product Genoa --vlek" "$SKR" certs kds-url "$DATA/scc/test_data__snp_report.bin" --product Genoa --vlek
expect_out "https://kdsintf.amd.com/vlek/v1/Genoa/cert_chain" "VLEK chain URL"

finish
