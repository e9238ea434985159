#!/bin/sh
# test_emulated.sh - the software SNP platform end to end through the CLI: skr-emu init, skr
# report fetch --device emulated:DIR, verification with the emulated ARK as an extra root, and
# the "never a silent fake" rule.
. "$(dirname "$0")/lib.sh"

EMU="$TMP/emu"
printf 'package policy\ndefault allow := true\n' >"$TMP/policy.rego"
host_data=$(sha256sum "$TMP/policy.rego" | cut -d' ' -f1)
expect_rc 0 "skr-emu init" "$SKR_EMU" init "$EMU" --policy "$TMP/policy.rego"
for f in ark.key ask.key vcek.key; do
    mode=$(stat -c %a "$EMU/snp/$f")
    if [ "$mode" = 600 ]; then ok "$f is 0600"; else not_ok "$f is $mode, expected 600"; fi
done
expect_rc 3 "init refuses to overwrite" "$SKR_EMU" init "$EMU"
expect_rc 2 "skr-emu serve without DIR" "$SKR_EMU" serve
expect_out "expected exactly one DIR" "serve names what is missing"

printf '{"keys":[]}' >"$TMP/runtime.json"
rd=$(sha256sum "$TMP/runtime.json" | cut -d' ' -f1)
rd64="${rd}$(printf '%064d' 0)"
expect_rc 0 "fetch from the emulated platform" "$SKR" report fetch --device "emulated:$EMU" \
    --runtime-data "$TMP/runtime.json" --format bin --out "$TMP/r.bin" --certs-out "$TMP/certs.pem"
expect_out "EMULATED" "the emulated platform is announced loudly"
size=$(wc -c <"$TMP/r.bin")
if [ "$size" = 1184 ]; then ok "report is 1184 bytes"; else not_ok "report is $size bytes"; fi
if [ "$(grep -c 'BEGIN CERTIFICATE' "$TMP/certs.pem")" = 3 ]; then ok "VCEK, ASK, ARK from the platform"; else not_ok "certs.pem"; fi

expect_rc 0 "verify with the emulated ARK as extra root" "$SKR" report verify "$TMP/r.bin" \
    --certs "$TMP/certs.pem" --trust-root "$EMU/snp/ark.pem" --report-data "$rd64" \
    --host-data "$host_data" --no-debug --vmpl 0
expect_out "PASS  chain.ark_trusted      ARK-Milan is an extra root" "extra root used"
expect_out "PASS  report_data" "REPORT_DATA = SHA-256(runtime data)"
expect_rc 1 "without --trust-root the emulated chain is not trusted" "$SKR" report verify \
    "$TMP/r.bin" --certs "$TMP/certs.pem"
expect_out "FAIL  chain.ark_trusted" "chain.ark_trusted named"
expect_rc 1 "emulated ASK/ARK are not AMD's: built-in roots do not sign the emulated VCEK" \
    "$SKR" report verify "$TMP/r.bin" --certs "$EMU/snp/vcek.pem"
expect_out "FAIL  chain.vcek_ask" "chain.vcek_ask named"

# report data given as hex and at VMPL 1
expect_rc 0 "fetch with --report-data at VMPL 1" "$SKR" report fetch --device "emulated:$EMU" \
    --report-data 00112233 --vmpl 1 --format json
expect_out '"report_data": "00112233000000' "report data zero-padded"
expect_out '"vmpl": 1' "VMPL 1 requested"
expect_rc 2 "report data over 64 bytes" "$SKR" report fetch --device "emulated:$EMU" \
    --report-data "$(printf '%0130d' 0)"
expect_rc 2 "both report data options" "$SKR" report fetch --device "emulated:$EMU" \
    --report-data 00 --runtime-data "$TMP/runtime.json"
expect_rc 2 "bad device spec" "$SKR" report fetch --device bogus
expect_rc 3 "emulated platform that does not exist" "$SKR" report fetch --device "emulated:$TMP/none"

# Turin: 8-byte chip id, FMC in the TCB, structVersion 1.
expect_rc 0 "skr-emu init --product Turin --report-version 5" "$SKR_EMU" init "$TMP/turin" \
    --product Turin --report-version 5
expect_rc 0 "fetch Turin" "$SKR" report fetch --device "emulated:$TMP/turin" --format bin \
    --out "$TMP/t.bin" --certs-out "$TMP/t.pem"
expect_rc 0 "verify Turin" "$SKR" report verify "$TMP/t.bin" --certs "$TMP/t.pem" \
    --trust-root "$TMP/turin/snp/ark.pem"
expect_out "result: verified (Turin, VCEK)" "Turin verified"
expect_rc 0 "Turin KDS URL" "$SKR" certs kds-url "$TMP/t.bin"
expect_out "vcek/v1/Turin/" "Turin URL"
expect_out "fmcSPL=" "Turin URL has fmcSPL"

# No silent fake: on a machine without an SNP device, auto fails with the documented message.
if [ ! -e /dev/sev-guest ] && [ ! -e /dev/sev ] && [ ! -d /sys/kernel/config/tsm/report ]; then
    expect_rc 3 "auto without a device" "$SKR" report fetch
    expect_out "not an SEV-SNP guest: no /dev/sev-guest, /dev/sev or configfs-tsm" "clear error"
    expect_rc 3 "sev-guest without the node" "$SKR" report fetch --device sev-guest
else
    ok "# SKIP this machine has an SEV-SNP device"
fi

finish
