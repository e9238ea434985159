#!/bin/sh
# test_emu_e2e.sh - the whole release flow against skr-emu serve, with an independent client
# (Python urllib + pyca/cryptography, e2e_release.py): report from the emulated platform, MAA
# token, IMDS token, key import with a release policy, release, JWS check and unwrap.
. "$(dirname "$0")/lib.sh"

EMU="$TMP/emu"
expect_rc 0 "skr-emu init" "$SKR_EMU" init "$EMU"
"$SKR_EMU" serve "$EMU" >"$TMP/serve.out" 2>"$TMP/serve.err" &
PID=$!
i=0
while [ ! -s "$EMU/endpoints.json" ] && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
if python3 "$(dirname "$0")/e2e_release.py" "$SKR" "$EMU" >"$TMP/e2e.out" 2>&1; then
    ok "release flow end to end"
else
    not_ok "release flow end to end"
fi
sed 's/^/#   /' "$TMP/e2e.out"
kill -TERM "$PID"
wait "$PID"
rc=$?
if [ "$rc" -eq 0 ]; then ok "serve stops cleanly"; else not_ok "serve exit $rc"; sed 's/^/#   /' "$TMP/serve.err"; fi
finish
