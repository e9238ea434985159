# lib.sh - shared helpers for the CLI tests (sourced). Each test prints TAP-like lines and
# exits non-zero when any assertion failed.
set -u
DATA="${SKR_TEST_DATA:?}"
TMP=$(mktemp -d /tmp/skr-cli-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# Under `make valgrind` every skr run goes through memcheck (a memcheck error exits 99, which no
# assertion expects). skr-emu init is not wrapped: RSA-4096 key generation under memcheck takes
# minutes; its code is checked by the snp_emu unit test under valgrind.
# Memcheck runs skr 20-50 times slower: making one RSA-2048 transfer key takes 10-60 s, past the
# default 30 s release deadline, so `skr release` and `skr diagnose` get a 15-minute one (a
# --set of the test's own comes later and wins). Checks of a deadline's timing skip themselves
# (slow_skip below).
VG_DEADLINE=900000
# WAIT: how many times longer a test waits for skr or skrd (10 under memcheck); SLOW_SKRD: the
# skrd options that give it the same 15-minute deadline under memcheck (empty otherwise).
WAIT=1
SLOW_SKRD=
if [ "${SKR_VALGRIND:-}" = 1 ]; then
    WAIT=10
    SLOW_SKRD="--release-deadline-ms $VG_DEADLINE"
fi
wrap() {
    if [ "${SKR_VALGRIND:-}" = 1 ]; then
        printf '#!/bin/sh\nvg() { exec valgrind --quiet --fair-sched=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect "%s" "$@"; }\ncase "${1:-}" in release | diagnose) c=$1; shift; vg "$c" --set release_deadline_ms=%s "$@" ;; esac\nvg "$@"\n' "$1" "$VG_DEADLINE" >"$TMP/$2"
    else
        printf '#!/bin/sh\nexec "%s" "$@"\n' "$1" >"$TMP/$2"
    fi
    chmod +x "$TMP/$2"
}
wrap "${SKR_BUILD_DIR:?}/src/skr" skr
SKR_VALGRIND= wrap "${SKR_BUILD_DIR}/src/skr-emu" skr-emu
SKR="$TMP/skr"
SKR_EMU="$TMP/skr-emu"
FAILS=0
N=0

ok() {
    N=$((N + 1))
    echo "ok $N - $1"
}

# slow_skip DESC: true (and the check DESC is reported skipped) under `make valgrind`, where a
# check of how fast something fails, or of a deadline met, says nothing about the code.
slow_skip() {
    if [ "${SKR_VALGRIND:-}" = 1 ]; then
        N=$((N + 1))
        echo "ok $N - $1 # SKIP timing under memcheck"
        return 0
    fi
    return 1
}

not_ok() {
    N=$((N + 1))
    FAILS=$((FAILS + 1))
    echo "not ok $N - $1"
}

# expect_rc RC DESC CMD...: runs CMD, output in $TMP/out and $TMP/err, checks the exit code.
expect_rc() {
    _want=$1
    _desc=$2
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    _got=$?
    if [ "$_got" -eq "$_want" ]; then
        ok "$_desc"
    else
        not_ok "$_desc (exit $_got, expected $_want)"
        sed 's/^/#   /' "$TMP/out" "$TMP/err" | head -20
    fi
}

# expect_out PATTERN DESC: the last command's stdout+stderr contains the fixed string PATTERN.
expect_out() {
    if grep -qF -- "$1" "$TMP/out" "$TMP/err"; then
        ok "$2"
    else
        not_ok "$2 (no '$1' in output)"
        sed 's/^/#   /' "$TMP/out" "$TMP/err" | head -20
    fi
}

# flip FILE OFFSET: xor the byte at OFFSET with 0x01, in place.
flip() {
    perl -e 'open(my $f, "+<", $ARGV[0]) or die; binmode $f; seek($f, $ARGV[1], 0);
             read($f, my $c, 1); seek($f, $ARGV[1], 0); print $f chr(ord($c) ^ 1); close $f' "$1" "$2"
}

finish() {
    echo "1..$N"
    echo "# $((N - FAILS)) passed, $FAILS failed"
    [ "$FAILS" -eq 0 ]
}
