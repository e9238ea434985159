#!/bin/sh
# test_skrd_e2e.sh - skrd against skr-emu serve, checked by an independent client (skrd_e2e.py:
# Python http.client + pyca/cryptography). Every route succeeds and fails as issue #4's Proof
# lists: keys made in Python (RSA-HSM, EC-HSM, oct-HSM) released with each wrap algorithm and
# compared with what was imported; policy mismatch, unknown key, missing permission, wrong MAA,
# tampered report (at MAA), MAA/AKV down, expired and invalid tokens, bad input on every route;
# workload identity instead of IMDS; and the trace logs hold no key, token or transfer key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/skrd_lib.sh"

emu_init
emu_serve
driver e2e "$SKRD" "$EMU"
emu_stop
finish
