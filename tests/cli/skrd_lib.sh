# shellcheck shell=sh
# skrd_lib.sh - shared by test_skrd_e2e.sh, test_skrd_faults.sh and test_example.sh (sourced after
# lib.sh): an emulator DIR with one extra workload identity client, skr-emu serve, and the Python
# driver skrd_e2e.py whose "ok - ..." / "not ok - ..." lines become this script's TAP lines.
SKRD_PY="$(dirname "$0")/skrd_e2e.py"
wrap "$SKR_BUILD_DIR/src/skrd" skrd
# shellcheck disable=SC2034 # used by the scripts that source this file
SKRD="$TMP/skrd"
EMU="$TMP/emu"
EMU_PID=

# emu_init: skr-emu init, plus a workload identity client that Entra knows but Key Vault does not
# grant release (skr-emu's way to deny the release permission: emu.json workload_client_ids).
emu_init() {
    expect_rc 0 "skr-emu init" "$SKR_EMU" init "$EMU"
    python3 - "$EMU/emu.json" <<'PY'
import json, sys, uuid
p = sys.argv[1]
cfg = json.load(open(p))
cfg["workload_client_ids"] = [str(uuid.uuid4())]
json.dump(cfg, open(p, "w"), indent=2)
PY
}

# emu_serve [ARGS...]: starts skr-emu serve on $EMU in the background ($EMU_PID) and waits for
# endpoints.json.
emu_serve() {
    rm -f "$EMU/endpoints.json"
    "$SKR_EMU" serve "$EMU" "$@" >"$TMP/serve.out" 2>"$TMP/serve.err" &
    EMU_PID=$!
    i=0
    while [ ! -s "$EMU/endpoints.json" ] && [ $i -lt 200 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if [ -s "$EMU/endpoints.json" ]; then
        ok "skr-emu serve $*"
    else
        not_ok "skr-emu serve $* (no endpoints.json)"
        sed 's/^/#   /' "$TMP/serve.err"
    fi
}

# emu_stop: SIGTERM to skr-emu serve (if still running), reaps it.
emu_stop() {
    [ -n "$EMU_PID" ] || return 0
    kill -TERM "$EMU_PID" 2>/dev/null
    wait "$EMU_PID"
    EMU_PID=
}

# driver MODE PROG DIR [ARGS...]: runs skrd_e2e.py and turns its lines into TAP lines.
driver() {
    _mode=$1
    _prog=$2
    _dir=$3
    shift 3
    python3 "$SKRD_PY" "$_mode" "$_prog" "$_dir" "$TMP" "$@" >"$TMP/driver.out" 2>&1
    _rc=$?
    _bad=0
    while IFS= read -r line; do
        case "$line" in
        "ok - "*) ok "${line#ok - }" ;;
        "not ok - "*)
            not_ok "${line#not ok - }"
            _bad=1
            ;;
        *) echo "$line" ;;
        esac
    done <"$TMP/driver.out"
    if [ "$_rc" -ne 0 ] && [ "$_bad" -eq 0 ]; then
        not_ok "skrd_e2e.py $_mode exited $_rc"
    fi
}
