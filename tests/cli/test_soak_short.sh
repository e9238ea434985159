#!/bin/sh
# test_soak_short.sh - the fault soak's driver (tests/soak/soak.py, `make soak`) for 20 s with 4
# clients, so that `make test` runs every part of it: releases through skrd while skr-emu fails
# about 30% of IMDS, MAA and AKV requests and is killed and restarted once; wrong keys, unclear
# failures, crashes and descriptor leaks must be 0; the emulator stopped (every release fails
# with a stage-named error); skrd SIGKILLed and started again (serves again). Timing and memory
# are only reported (no thresholds here). Also the driver's bad usage (exit 2).
. "$(dirname "$0")/lib.sh"
SOAK="$(dirname "$0")/../soak/soak.py"

expect_rc 2 "soak.py without a build directory: exit 2" python3 "$SOAK"
expect_out "usage" "soak.py without a build directory: usage"
expect_rc 2 "soak.py --seconds 5: exit 2" python3 "$SOAK" "$SKR_BUILD_DIR" --seconds 5
expect_out "--seconds 5: must be 10..480" "soak.py --seconds 5: names the bound"
expect_rc 2 "soak.py --seconds 481 (over 10 minutes in all): exit 2" \
    python3 "$SOAK" "$SKR_BUILD_DIR" --seconds 481
expect_rc 2 "soak.py --clients 0: exit 2" python3 "$SOAK" "$SKR_BUILD_DIR" --clients 0
expect_out "--clients 0" "soak.py --clients 0: names the option"
expect_rc 2 "soak.py --retries 9: exit 2" python3 "$SOAK" "$SKR_BUILD_DIR" --retries 9
expect_rc 2 "soak.py --seconds abc: exit 2" python3 "$SOAK" "$SKR_BUILD_DIR" --seconds abc
expect_rc 2 "soak.py --bogus: exit 2" python3 "$SOAK" "$SKR_BUILD_DIR" --bogus
expect_rc 2 "soak.py on a directory without skrd: exit 2" python3 "$SOAK" "$TMP/no-build"
expect_out "not found" "soak.py on a directory without skrd: says what is missing"

python3 "$SOAK" "$SKR_BUILD_DIR" --seconds 20 --clients 4 --tap --json "$TMP/soak.json" \
    --work "$TMP/work" >"$TMP/soak.out" 2>&1
rc=$?
bad=0
while IFS= read -r line; do
    case "$line" in
    "ok - "*) ok "${line#ok - }" ;;
    "not ok - "*)
        not_ok "${line#not ok - }"
        bad=1
        ;;
    *) echo "$line" ;;
    esac
done <"$TMP/soak.out"
if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
    not_ok "soak.py exited $rc without a failed check"
fi
if [ "$rc" -ne 0 ]; then
    echo "# skrd's last log lines:"
    tail -n 20 "$TMP/work/skrd.log" 2>/dev/null | sed 's/^/#   /'
fi

# The JSON summary carries every figure the soak reports, consistent with itself.
python3 - "$TMP/soak.json" <<'PY' >"$TMP/json.out" 2>&1
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except (OSError, ValueError) as e:
    print(f"not ok - the JSON summary is readable: {e!r}")
    sys.exit(0)
m = s.get("main", {})
def chk(c, d):
    print(("ok - " if c else "not ok - ") + d)
chk(m.get("attempted", 0) > 0 and m.get("attempted") == m.get("succeeded", -1) +
    m.get("failed_upstream", 0) + m.get("failed_other_stage", 0) + m.get("busy_503", 0) +
    m.get("unclear", 0) + m.get("wrong_keys", 0),
    "summary: attempted = succeeded + failed (by kind) + wrong keys")
chk(sum(m.get("failures_by_class", {}).values()) == m.get("attempted", 0) - m.get("succeeded", 0)
    - m.get("wrong_keys", 0), "summary: the failures by class add up to the failures")
chk(m.get("wrong_keys") == 0 and s.get("crashes") == 0,
    "summary: wrong keys 0, crashes 0")
chk(s.get("resources", {}).get("fd_leak") in (0, None) and
    isinstance(s.get("resources", {}).get("start", {}).get("status", {}).get("RssAnon"), int),
    "summary: fd leak 0, RssAnon measured")
chk(isinstance(m.get("latency_ms", {}).get("p99"), (int, float)), "summary: p99 latency")
a, b = s.get("scenario_a", {}), s.get("scenario_b", {})
chk(a.get("attempted", 0) > 0 and a.get("stage_named") == a.get("attempted"),
    "summary: scenario (a), every release failed with a stage-named error")
chk(b.get("served_again") is True, "summary: scenario (b), skrd served again")
chk(s.get("failed_checks") == 0, "summary: failed_checks 0")
PY
while IFS= read -r line; do
    case "$line" in
    "ok - "*) ok "${line#ok - }" ;;
    "not ok - "*) not_ok "${line#not ok - }" ;;
    *) echo "# $line" ;;
    esac
done <"$TMP/json.out"
finish
