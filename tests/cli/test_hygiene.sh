#!/bin/sh
# test_hygiene.sh - secret hygiene (issue #6) against skr-emu serve, driven by hygiene.py:
# released keys, caller and identity tokens, MAA tokens and the federated assertion are in no
# skrd log line (trace level), no HTTP error body and no skr stderr; a libskr application's
# memory holds none of them after it freed everything (tests/hygiene/memscan.c, with a negative
# control that must be found); skrd's memory holds no released key or caller token once idle
# (root); skrd warns when mlock fails; skrd is non-dumpable as a same-uid peer sees it (root).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/skrd_lib.sh"
SKRD_PY="$(dirname "$0")/hygiene.py"

# Under ASan the memory scans and the mlock check measure the sanitizer, not skr: its shadow
# memory is unreadable to a scanner, its quarantine keeps freed heap blocks unreused (so bytes
# glibc would overwrite stay visible), and its mlock() always succeeds. Run in the normal build.
if ldd "$SKR_BUILD_DIR/src/skrd" 2>/dev/null | grep -q libasan; then
    echo "1..0 # SKIP secret-hygiene scans need the normal allocator (this is an ASan build)"
    exit 77
fi

emu_init
emu_serve
driver all "$SKRD" "$EMU" "$SKR_BUILD_DIR/tests/hygiene_memscan" "$SKR" "$SKR_EMU" "$EMU_PID"
# hygiene.py stopped this emulator and ran its own with faults (stopped too): reap the first
kill -TERM "$EMU_PID" 2>/dev/null
wait "$EMU_PID"
EMU_PID=
finish
