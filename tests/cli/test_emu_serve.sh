#!/bin/sh
# test_emu_serve.sh - skr-emu serve DIR: the three listeners answer over loopback (IMDS over
# http, MAA and Key Vault over https trusting DIR/ca.pem), endpoints.json appears once they
# listen and disappears on SIGTERM/SIGINT (exit 0), faults are injected as asked and are
# reproducible with --seed, and bad options (a --fault spec, a non-loopback --host) are usage
# errors before anything is bound. Checked with curl and python3.
. "$(dirname "$0")/lib.sh"

EMU="$TMP/emu"
expect_rc 0 "skr-emu init" "$SKR_EMU" init "$EMU"

# start_serve NAME ARGS...: starts skr-emu serve DIR ARGS in the background (pid in $PID) and
# waits (at most 10 s) for endpoints.json; sets IMDS, MAA, AKV.
start_serve() {
    _name=$1
    shift
    rm -f "$EMU/endpoints.json"
    "$SKR_EMU" serve "$EMU" "$@" >"$TMP/$_name.out" 2>"$TMP/$_name.err" &
    PID=$!
    _i=0
    while [ ! -s "$EMU/endpoints.json" ] && [ $_i -lt 100 ]; do
        sleep 0.1
        _i=$((_i + 1))
    done
    if [ -s "$EMU/endpoints.json" ]; then
        ok "$_name: endpoints.json written"
    else
        not_ok "$_name: no endpoints.json after 10 s"
        sed 's/^/#   /' "$TMP/$_name.out" "$TMP/$_name.err"
    fi
    IMDS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["imds"])' "$EMU/endpoints.json")
    MAA=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["maa"])' "$EMU/endpoints.json")
    AKV=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["akv"])' "$EMU/endpoints.json")
}

# stop_serve NAME SIGNAL: sends SIGNAL, expects exit 0 and endpoints.json removed.
stop_serve() {
    kill -"$2" "$PID"
    wait "$PID"
    _rc=$?
    if [ "$_rc" -eq 0 ]; then ok "$1: SIG$2 -> exit 0"; else not_ok "$1: SIG$2 -> exit $_rc"; fi
    if [ ! -e "$EMU/endpoints.json" ]; then
        ok "$1: endpoints.json removed"
    else
        not_ok "$1: endpoints.json left behind"
    fi
}

# code URL ARGS...: the HTTP status curl sees (000 when there was no answer).
code() {
    _url=$1
    shift
    curl -s -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' --max-time 10 "$@" "$_url"
}

# expect_code WANT DESC URL ARGS...
expect_code() {
    _want=$1
    _desc=$2
    shift 2
    _got=$(code "$@")
    if [ "$_got" = "$_want" ]; then ok "$_desc"; else not_ok "$_desc (HTTP $_got, expected $_want)"; fi
}

# expect_answer DESC URL ARGS...: any HTTP answer (the status is the service's business).
expect_answer() {
    _desc=$1
    shift
    _got=$(code "$@")
    case "$_got" in
    [1-5][0-9][0-9]) ok "$_desc (HTTP $_got)" ;;
    *) not_ok "$_desc (no HTTP answer: $_got)" ;;
    esac
}

# ---- usage errors: nothing is bound ----------------------------------------------------
expect_rc 2 "--host 10.0.0.1 is refused" "$SKR_EMU" serve "$EMU" --host 10.0.0.1
expect_out "not a loopback address" "the refusal says why"
expect_out "--allow-non-loopback" "the refusal names the flag"
expect_rc 2 "--host with a name other than localhost is refused" "$SKR_EMU" serve "$EMU" \
    --host example.com
for spec in "foo:status:1:500" "imds:boom:1" "imds:status:1.5:500" "imds:status:1:200" \
    "imds:drop:1:5" "imds:status:1" "imds:delay:x:1" "imds" "imds:drop:1:2:3:4"; do
    expect_rc 2 "--fault $spec is refused" "$SKR_EMU" serve "$EMU" --fault "$spec"
    expect_out "--fault" "the message for $spec names --fault"
done
expect_rc 2 "--fault foo:... names the bad service" "$SKR_EMU" serve "$EMU" --fault foo:drop:1
expect_out "unknown service 'foo'" "the bad service is named"
expect_rc 2 "--fault imds:boom:1 names the bad kind" "$SKR_EMU" serve "$EMU" --fault imds:boom:1
expect_out "unknown kind 'boom'" "the bad kind is named"
expect_rc 2 "a bad port is refused" "$SKR_EMU" serve "$EMU" --imds-port 70000
expect_rc 2 "serve without DIR" "$SKR_EMU" serve
expect_rc 3 "serve on a DIR that init did not make" "$SKR_EMU" serve "$TMP/nothing"
if [ ! -e "$EMU/endpoints.json" ]; then ok "no endpoints.json after usage errors"; else not_ok "endpoints.json written"; fi

# ---- a plain run ------------------------------------------------------------------------
start_serve plain
if grep -q EMULATOR "$TMP/plain.out"; then ok "serve says EMULATOR"; else not_ok "no EMULATOR notice"; fi
if grep -qF "$IMDS" "$TMP/plain.out"; then ok "serve prints the endpoints"; else not_ok "endpoints not printed"; fi
case "$IMDS" in http://127.0.0.1:*) ok "imds is http on 127.0.0.1" ;; *) not_ok "imds = $IMDS" ;; esac
case "$MAA" in https://127.0.0.1:*) ok "maa is https on 127.0.0.1" ;; *) not_ok "maa = $MAA" ;; esac
case "$AKV" in https://127.0.0.1:*) ok "akv is https on 127.0.0.1" ;; *) not_ok "akv = $AKV" ;; esac

expect_code 200 "IMDS THIM" "$IMDS/metadata/THIM/amd/certification" -H "Metadata: true"
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["vcekCert"].startswith("-----BEGIN CERTIFICATE-----")' "$TMP/body"; then
    ok "THIM JSON has the VCEK"
else
    not_ok "THIM JSON"
fi
base64 -d "$EMU/security-context/host-amd-cert-base64" >"$TMP/thim.json"
if cmp -s "$TMP/thim.json" "$TMP/body"; then ok "THIM equals host-amd-cert-base64"; else not_ok "THIM differs"; fi
expect_code 400 "IMDS THIM without Metadata: true" "$IMDS/metadata/THIM/amd/certification"

expect_code 200 "IMDS token" \
    "$IMDS/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net" \
    -H "Metadata: true"
if python3 -c '
import json, sys, base64
d = json.load(open(sys.argv[1]))
assert all(isinstance(v, str) for v in d.values()), d
assert d["token_type"] == "Bearer" and d["resource"] == "https://vault.azure.net"
p = d["access_token"].split(".")[1]
c = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
assert c["aud"] == "https://vault.azure.net", c
' "$TMP/body"; then
    ok "IMDS token: string fields, aud = resource"
else
    not_ok "IMDS token response"
fi
expect_code 400 "IMDS token without Metadata: true" \
    "$IMDS/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net"
expect_answer "MAA answers over TLS trusting ca.pem" "$MAA/" --cacert "$EMU/ca.pem"
expect_answer "AKV answers over TLS trusting ca.pem" "$AKV/" --cacert "$EMU/ca.pem"
expect_code 000 "MAA is not trusted without ca.pem" "$MAA/"
stop_serve plain TERM

# ---- faults -----------------------------------------------------------------------------
start_serve faults --fault imds:status:503:1.0 --fault maa:drop:1
expect_code 503 "--fault imds:status:503:1.0 makes IMDS answer 503" \
    "$IMDS/metadata/THIM/amd/certification" -H "Metadata: true"
if grep -qi '^Retry-After: 1' "$TMP/headers"; then ok "503 carries Retry-After: 1"; else not_ok "no Retry-After"; fi
expect_code 000 "--fault maa:drop:1 drops MAA connections" "$MAA/" --cacert "$EMU/ca.pem"
expect_answer "AKV is unaffected" "$AKV/" --cacert "$EMU/ca.pem"
stop_serve faults INT

# A seeded half-rate fault gives the same sequence twice.
seq_of() {
    start_serve "seed$1" --fault imds:status:0.5:500 --seed 42
    _s=""
    for _i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do
        _s="$_s$(code "$IMDS/metadata/THIM/amd/certification" -H "Metadata: true")"
    done
    stop_serve "seed$1" TERM
    echo "$_s" >"$TMP/seq$1"
}
seq_of 1
seq_of 2
if cmp -s "$TMP/seq1" "$TMP/seq2"; then ok "--seed makes faults reproducible"; else not_ok "sequences differ: $(cat "$TMP/seq1") vs $(cat "$TMP/seq2")"; fi
if grep -q 500 "$TMP/seq1" && grep -q 200 "$TMP/seq1"; then ok "rate 0.5 gives both outcomes"; else not_ok "sequence $(cat "$TMP/seq1")"; fi

finish
