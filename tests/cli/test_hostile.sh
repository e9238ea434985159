#!/bin/sh
# test_hostile.sh - hostile clients against skrd (sandbox on) on the emulated platform, briefly
# (bench/load.c "hostile"; scripts/load runs them longer with numbers): slow-loris, endless
# chunked bodies and idle connections past skrd's eviction threshold (64), pipelining clients
# that never read (below it: past it the well-behaved client may be refused for about a second,
# see docs/security.md), a flood of concurrent connections, oversized bodies (413) and headers
# (4xx or close), many headers, deep JSON (400), huge base64 fields, invalid UTF-8 (400). Each
# must get its expected answer while a well-behaved client keeps getting 200 from GET /status;
# afterwards skrd is alive and its descriptors are back to their count before the attack.
# Correctness only: no latency or memory threshold.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/skrd_lib.sh"
LOAD="$SKR_BUILD_DIR/bench/bench_load"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || :

emu_init
emu_serve
imds=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["imds"])' "$EMU/endpoints.json")
port=$("$SKR_BUILD_DIR/bench/bench_release" freeport)
# skrd itself, never under memcheck (make valgrind): this test is about staying responsive, which
# a process running 20-50 times slower cannot be; skrd's memory is checked by the other scripts.
UVM_SECURITY_CONTEXT_DIR="$EMU/security-context" "$SKR_BUILD_DIR/src/skrd" --snp-device "emulated:$EMU" \
    --imds-endpoint "$imds" --ca-file "$EMU/ca.pem" --port "$port" -loglevel warning \
    -logfile "$TMP/skrd.log" >"$TMP/skrd.out" 2>&1 &
skrd_pid=$!
i=0
while ! curl -sf --noproxy '*' -o /dev/null "http://127.0.0.1:$port/status" && [ $i -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
if [ $i -lt 300 ]; then ok "skrd ready"; else not_ok "skrd ready"; fi

# hostile KIND CONNS SECONDS: one attack, its verdict line as the TAP line
hostile() {
    "$LOAD" hostile "$port" "$1" --conns "$2" --seconds "$3" --settle 15 --quick --pid "$skrd_pid" \
        >"$TMP/out" 2>"$TMP/err"
    _rc=$?
    if [ "$_rc" -eq 0 ] && grep -q "verdict=ok" "$TMP/out"; then
        ok "$1: expected answers, /status served throughout, skrd alive, descriptors back"
    else
        not_ok "$1 (exit $_rc)"
        sed 's/^/#   /' "$TMP/out" "$TMP/err" | head -20
    fi
}

hostile slowloris 100 4
hostile chunked 100 4
hostile idle 200 3
hostile noread 50 3
hostile flood 200 2
for k in bigbody bigheader manyheaders deepjson hugeb64 badutf8; do
    hostile "$k" 1 1
done

expect_rc 2 "bench_load: an unknown attack kind is refused" "$LOAD" hostile "$port" nosuchkind
expect_out "unknown kind" "bench_load names the unknown kind"
expect_rc 0 "skrd still answers GET /status" curl -sf --noproxy '*' "http://127.0.0.1:$port/status"

kill -TERM "$skrd_pid"
wait "$skrd_pid"
rc=$?
if [ "$rc" -eq 0 ]; then ok "skrd stopped cleanly after the attacks"; else
    not_ok "skrd exit $rc after the attacks"
    sed 's/^/#   /' "$TMP/skrd.out" "$TMP/skrd.log" | tail -20
fi
emu_stop
finish
