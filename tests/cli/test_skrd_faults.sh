#!/bin/sh
# test_skrd_faults.sh - releases through skrd while skr-emu injects faults into IMDS, MAA and
# AKV (20% 500/503, 429 with Retry-After, 200 ms delays, dropped connections; seeded): all 20
# releases succeed with the imported keys within their deadline. Then the emulator stops and
# releases fail fast with the upstream stage named.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/skrd_lib.sh"

emu_init
emu_serve --seed 4242 \
    --fault all:status:0.1:500 --fault all:status:0.1:503 --fault all:status:0.1:429 \
    --fault all:delay:0.2:200 --fault all:drop:0.05
driver faults "$SKRD" "$EMU" "$EMU_PID"
# the driver stopped the emulator (SIGTERM; again here in case the driver did not get there): it
# must have exited cleanly
kill -TERM "$EMU_PID" 2>/dev/null
wait "$EMU_PID"
rc=$?
EMU_PID=
if [ "$rc" -eq 0 ]; then ok "skr-emu serve stopped cleanly"; else not_ok "skr-emu serve exit $rc"; fi
finish
