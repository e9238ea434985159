#!/bin/sh
# test_skrd_config.sh - skrd's configuration (flags with one or two dashes, the reference's
# variables and SkrSideCarArgs, skr.sh's positional arguments, security-context discovery, the
# new options and their bad values, loopback-only listening) through --check-config; then the
# daemon itself on an emulated platform: readiness, /attest/raw bound to the runtime data, bad
# input of every kind on every route, 404/405/413, the Unix socket, --max-releases, SIGTERM;
# and without an SNP device, /status 503 naming the cause. The release flow against the
# emulated Azure services is test_skrd_e2e.sh's.
. "$(dirname "$0")/lib.sh"
wrap "$SKR_BUILD_DIR/src/skrd" skrd
SKRD="$TMP/skrd"

# A clean environment: none of the variables skrd reads leak in from the caller.
unset Port LogLevel LogFile SkrSideCarArgs ServerType UVM_SECURITY_CONTEXT_DIR \
    UVM_SECURITY_POLICY UVM_HOST_AMD_CERTIFICATE UVM_REFERENCE_INFO AZURE_CLIENT_ID \
    AZURE_TENANT_ID AZURE_FEDERATED_TOKEN_FILE AZURE_AUTHORITY_HOST SKR_SNP_DEVICE \
    SKR_IMDS_ENDPOINT SKR_CA_FILE SKR_TRUST_ROOT SKR_POOL_SIZE SKR_REUSE_WINDOW \
    SKR_TRANSFER_KEY_BITS SKR_RELEASE_ENC SKR_RETRIES SKR_TIMEOUT_MS SKR_CONNECT_TIMEOUT_MS \
    SKR_RELEASE_DEADLINE_MS SKR_TOKEN_REFRESH SKR_LISTEN SKR_ALLOW_NON_LOOPBACK SKR_SOCKET \
    SKR_MAX_RELEASES

# setting NAME FIELD: .settings.NAME.FIELD of the last --check-config output ($TMP/out).
setting() {
    jq -r ".settings.$1.$2" "$TMP/out" 2>/dev/null
}

# expect_setting NAME VALUE SOURCE DESC: after a --check-config run.
expect_setting() {
    _v=$(setting "$1" value)
    _s=$(setting "$1" source)
    if [ "$_v" = "$2" ] && [ "$_s" = "$3" ]; then
        ok "$4"
    else
        not_ok "$4 (got value '$_v' from '$_s', expected '$2' from '$3')"
        sed 's/^/#   /' "$TMP/err" | head -5
    fi
}

b64() {
    printf '%s' "$1" | base64 -w0
}

# ---- help and version ----------------------------------------------------------------------

expect_rc 0 "--help exits 0" "$SKRD" --help
expect_out "usage: skrd" "--help prints the usage"
expect_out "--max-releases" "--help lists the new options"
expect_rc 0 "-help (one dash) exits 0" "$SKRD" -help
expect_out "SkrSideCarArgs" "-help prints the usage"
expect_rc 0 "--version exits 0" "$SKRD" --version
expect_out "skrd 0.1.0" "--version prints the version"

# ---- defaults, flags, variables, positional arguments ---------------------------------------

expect_rc 0 "--check-config with nothing set" "$SKRD" --check-config
if jq -e . "$TMP/out" >/dev/null 2>&1; then ok "--check-config prints JSON"; else not_ok "--check-config prints JSON"; fi
expect_setting port 8080 default "port defaults to 8080"
expect_setting listen 127.0.0.1 default "listen defaults to 127.0.0.1"
expect_setting log_level warning default "log level defaults to warning"
expect_setting max_releases 8 default "max releases default to 8"
if [ "$(jq -r '.listeners[0]' "$TMP/out")" = "http://127.0.0.1:8080" ]; then
    ok "the listener is http://127.0.0.1:8080"
else
    not_ok "the listener is http://127.0.0.1:8080 ($(jq -c .listeners "$TMP/out"))"
fi

Port=9001 expect_rc 0 "env Port" "$SKRD" --check-config
expect_setting port 9001 "env Port" "env Port sets the port"
Port=9001 expect_rc 0 "env Port and -port" "$SKRD" --check-config -port 9002
expect_setting port 9002 "flag -port" "-port (one dash) wins over env Port"
Port=9001 expect_rc 0 "env Port and --port=" "$SKRD" --check-config --port=9003
expect_setting port 9003 "flag --port" "--port=N (two dashes, =) wins over env Port"
LogLevel=debug expect_rc 0 "env LogLevel" "$SKRD" --check-config
expect_setting log_level debug "env LogLevel" "env LogLevel sets the log level"
LogLevel=debug expect_rc 0 "env LogLevel and -loglevel=" "$SKRD" -check-config -loglevel=trace
expect_setting log_level trace "flag -loglevel" "-loglevel=trace wins over env LogLevel"
LogFile=$TMP/a.log expect_rc 0 "env LogFile" "$SKRD" --check-config --logfile "$TMP/b.log"
expect_setting log_file "$TMP/b.log" "flag --logfile" "--logfile wins over env LogFile"
SKR_POOL_SIZE=3 expect_rc 0 "env SKR_POOL_SIZE" "$SKRD" --check-config
expect_setting pool_size 3 "env SKR_POOL_SIZE" "SKR_POOL_SIZE reaches pool_size"
SKR_POOL_SIZE=3 expect_rc 0 "env SKR_POOL_SIZE and --pool-size" "$SKRD" --check-config --pool-size 4
expect_setting pool_size 4 "flag --pool-size" "--pool-size wins over SKR_POOL_SIZE"
SKR_SNP_DEVICE=sev-guest expect_rc 0 "env SKR_SNP_DEVICE" "$SKRD" --check-config
expect_setting snp_device sev-guest "env SKR_SNP_DEVICE" "SKR_SNP_DEVICE reaches snp_device"
expect_rc 0 "--reuse-window" "$SKRD" --check-config --reuse-window 60
expect_setting reuse_window_s 60 "flag --reuse-window" "--reuse-window reaches reuse_window_s"
expect_rc 0 "-port=\"\" " "$SKRD" --check-config -- "" 9004
expect_setting port 9004 "argument 2" "skr.sh's second argument is the port"
Port=9001 expect_rc 0 "env Port and a positional port" "$SKRD" --check-config -- "" 9004
expect_setting port 9001 "env Port" "env Port wins over the positional port (as skr.sh)"
expect_rc 0 "--socket with --port 0" "$SKRD" --check-config --port 0 --socket "$TMP/x.sock"
if [ "$(jq -c .listeners "$TMP/out")" = "[\"unix:$TMP/x.sock\"]" ]; then
    ok "--port 0 --socket: the Unix socket is the only listener"
else
    not_ok "--port 0 --socket: the Unix socket is the only listener ($(jq -c .listeners "$TMP/out"))"
fi
AZURE_CLIENT_ID=wi-client AZURE_TENANT_ID=wi-tenant AZURE_FEDERATED_TOKEN_FILE=$TMP/token \
    AZURE_AUTHORITY_HOST=http://127.0.0.1:1 expect_rc 0 "workload identity variables" \
    "$SKRD" --check-config
expect_setting wi_client_id wi-client "env AZURE_CLIENT_ID" "AZURE_CLIENT_ID reaches wi_client_id"
expect_setting authority_host http://127.0.0.1:1 "env AZURE_AUTHORITY_HOST" \
    "AZURE_AUTHORITY_HOST reaches authority_host"

# ---- SkrSideCarArgs -----------------------------------------------------------------------------

ARGS=$(b64 '{"certcache":{"endpoint_type":"AzCache","endpoint":"cache.example.net","tee_type":"SevSnpVM","api_version":"api-version=2020-10-15-preview","client_id":"ConfidentialACI","future":1},"identity":{"client_id":"mi-1234"},"maaconfig":{"user_agent":"my-agent"},"unknown":{"x":[1]}}')
SkrSideCarArgs=$ARGS expect_rc 0 "SkrSideCarArgs with every member (and unknown ones)" "$SKRD" --check-config
expect_setting certcache_endpoint_type AzCache "SkrSideCarArgs certcache.endpoint_type (env SkrSideCarArgs)" \
    "certcache.endpoint_type -> certcache_endpoint_type"
expect_setting certcache_endpoint cache.example.net "SkrSideCarArgs certcache.endpoint (env SkrSideCarArgs)" \
    "certcache.endpoint -> certcache_endpoint"
expect_setting certcache_api_version api-version=2020-10-15-preview \
    "SkrSideCarArgs certcache.api_version (env SkrSideCarArgs)" "certcache.api_version -> certcache_api_version"
expect_setting certcache_client_id ConfidentialACI "SkrSideCarArgs certcache.client_id (env SkrSideCarArgs)" \
    "certcache.client_id -> certcache_client_id"
expect_setting client_id mi-1234 "SkrSideCarArgs identity.client_id (env SkrSideCarArgs)" \
    "identity.client_id -> client_id"
expect_setting user_agent my-agent "SkrSideCarArgs maaconfig.user_agent (env SkrSideCarArgs)" \
    "maaconfig.user_agent -> user_agent"
if [ "$(setting sidecar_args bytes)" -gt 100 ] && ! grep -q "$ARGS" "$TMP/out"; then
    ok "--check-config shows the SkrSideCarArgs blob's size, not the blob"
else
    not_ok "--check-config shows the SkrSideCarArgs blob's size, not the blob"
fi
SkrSideCarArgs=$ARGS expect_rc 0 "-base64 flag over SkrSideCarArgs" "$SKRD" --check-config \
    -base64 "$(b64 '{"Identity":{"Client_ID":"other"}}')"
expect_setting client_id other "SkrSideCarArgs identity.client_id (flag -base64)" \
    "-base64 wins over SkrSideCarArgs; member names match case-insensitively (Go)"
expect_setting certcache_endpoint null "default (libskr)" "the env blob is not merged with the flag's"
expect_rc 0 "SkrSideCarArgs as skr.sh's first argument" "$SKRD" --check-config "$(b64 '{"maaconfig":{"user_agent":"ua-arg"}}')"
expect_setting user_agent ua-arg "SkrSideCarArgs maaconfig.user_agent (argument 1)" \
    "skr.sh's first argument is SkrSideCarArgs"
SkrSideCarArgs=$(b64 '{"certcache":{"endpoint":null},"identity":null}') expect_rc 0 \
    "null members are absent (Go)" "$SKRD" --check-config
SkrSideCarArgs=$(b64 '{"maaconfig":{"user_agent":""}}') expect_rc 0 "empty member" "$SKRD" --check-config
expect_setting user_agent null "default (libskr)" "an empty member means not given (Go)"

SkrSideCarArgs='not base64!' expect_rc 2 "SkrSideCarArgs: bad base64 -> exit 2" "$SKRD" --check-config
expect_out "SkrSideCarArgs (env SkrSideCarArgs): not valid standard base64" "bad base64: the message names SkrSideCarArgs"
expect_rc 2 "-base64: bad base64 -> exit 2" "$SKRD" --check-config -base64 'a*b'
expect_out "(flag -base64)" "bad base64 in the flag: the message names -base64"
SkrSideCarArgs=$(b64 '{"certcache":') expect_rc 2 "SkrSideCarArgs: bad JSON -> exit 2" "$SKRD" --check-config
expect_out "not valid JSON" "bad JSON: the message says so"
SkrSideCarArgs=$(b64 '[1,2]') expect_rc 2 "SkrSideCarArgs: a JSON array -> exit 2" "$SKRD" --check-config
expect_out "expected a JSON object" "a JSON array: the message says an object was expected"
SkrSideCarArgs=$(b64 '{"certcache":"AMD"}') expect_rc 2 "SkrSideCarArgs: certcache a string -> exit 2" "$SKRD" --check-config
expect_out "member 'certcache' must be an object" "certcache of the wrong type: named"
SkrSideCarArgs=$(b64 '{"certcache":{"endpoint":42}}') expect_rc 2 "SkrSideCarArgs: endpoint a number -> exit 2" "$SKRD" --check-config
expect_out "member 'certcache.endpoint' must be a string" "certcache.endpoint of the wrong type: named"
SkrSideCarArgs=$(b64 '{"identity":{"client_id":true}}') expect_rc 2 "SkrSideCarArgs: client_id a bool -> exit 2" "$SKRD" --check-config
expect_out "member 'identity.client_id' must be a string" "identity.client_id of the wrong type: named"
SkrSideCarArgs=$(b64 '{"maaconfig":[]}') expect_rc 2 "SkrSideCarArgs: maaconfig an array -> exit 2" "$SKRD" --check-config
expect_out "member 'maaconfig' must be an object" "maaconfig of the wrong type: named"

# ---- security context ---------------------------------------------------------------------

mkdir -p "$TMP/ctx-env" "$TMP/ctx-flag"
UVM_SECURITY_CONTEXT_DIR=$TMP/ctx-env expect_rc 0 "UVM_SECURITY_CONTEXT_DIR" "$SKRD" --check-config
expect_setting security_context_dir "$TMP/ctx-env" "env UVM_SECURITY_CONTEXT_DIR" \
    "UVM_SECURITY_CONTEXT_DIR names the security context"
UVM_SECURITY_CONTEXT_DIR=$TMP/ctx-env expect_rc 0 "--security-context-dir" "$SKRD" --check-config \
    --security-context-dir "$TMP/ctx-flag"
expect_setting security_context_dir "$TMP/ctx-flag" "flag --security-context-dir" \
    "--security-context-dir wins over UVM_SECURITY_CONTEXT_DIR"
UVM_SECURITY_CONTEXT_DIR=$TMP/nowhere expect_rc 2 "UVM_SECURITY_CONTEXT_DIR not a directory -> exit 2" \
    "$SKRD" --check-config
expect_out "env UVM_SECURITY_CONTEXT_DIR" "a missing context directory: the message names the variable"
if ls -d /*security-context-* >/dev/null 2>&1; then
    ok "# SKIP legacy variables: this machine has a /security-context-* directory"
else
    SC=$DATA/scc/security-context-test
    UVM_SECURITY_POLICY=cGFja2FnZSBwb2xpY3k= UVM_HOST_AMD_CERTIFICATE=$(cat "$SC/host-amd-cert-base64") \
        UVM_REFERENCE_INFO=AAAA expect_rc 0 "legacy UVM_* variables" "$SKRD" --check-config
    expect_setting security_context_dir null "not found (the UVM_* variables, if any, are used)" \
        "no context directory found: the variables are used"
    if [ "$(setting security_policy source)" = "env UVM_SECURITY_POLICY" ] &&
        [ "$(setting security_policy bytes)" = 20 ] &&
        [ "$(setting host_amd_cert source)" = "env UVM_HOST_AMD_CERTIFICATE" ] &&
        [ "$(setting uvm_reference_info source)" = "env UVM_REFERENCE_INFO" ] &&
        ! grep -q cGFja2FnZSBwb2xpY3k "$TMP/out"; then
        ok "UVM_SECURITY_POLICY, UVM_HOST_AMD_CERTIFICATE, UVM_REFERENCE_INFO are passed (sizes shown)"
    else
        not_ok "UVM_SECURITY_POLICY, UVM_HOST_AMD_CERTIFICATE, UVM_REFERENCE_INFO are passed"
        sed 's/^/#   /' "$TMP/out" | grep -A2 -E 'security_policy|host_amd|uvm_ref'
    fi
    UVM_HOST_AMD_CERTIFICATE=e30= expect_rc 2 "UVM_HOST_AMD_CERTIFICATE without a VCEK -> exit 2" \
        "$SKRD" --check-config
    expect_out "env UVM_HOST_AMD_CERTIFICATE" "a bad UVM_HOST_AMD_CERTIFICATE: the message names it"
    UVM_SECURITY_POLICY='not base64!' expect_rc 2 "UVM_SECURITY_POLICY not base64 -> exit 2" \
        "$SKRD" --check-config
    expect_out "env UVM_SECURITY_POLICY" "a bad UVM_SECURITY_POLICY: the message names it"
fi

# ---- bad values: exit 2 with a message naming where the value came from ----------------------

# bad FLAG VALUE: --FLAG VALUE exits 2 naming --FLAG.
bad() {
    expect_rc 2 "--$1 '$2' -> exit 2" "$SKRD" --check-config "--$1" "$2"
    expect_out "flag --$1" "--$1 '$2': the message names --$1"
}
bad snp-device bogus-device
bad imds-endpoint "ftp://example.com"
bad ca-file "$TMP/no-such.pem"
bad trust-root "$TMP/no-such-ark.pem"
bad security-context-dir "$TMP/no-such-dir"
bad pool-size 99
bad pool-size -1
bad reuse-window 7200
bad reuse-window soon
bad transfer-key-bits 1024
bad release-enc RSA-OAEP
bad retries 100
bad timeout-ms 0
bad timeout-ms 1e3
bad connect-timeout-ms x
bad release-deadline-ms 0
bad token-refresh forever
bad max-releases 0
bad max-releases 65
bad port 65536
bad port 80x
bad listen not-an-address
bad socket "/tmp/$(printf '%0120d' 0)"
expect_rc 2 "--allow-non-loopback=maybe -> exit 2" "$SKRD" --check-config --allow-non-loopback=maybe
expect_out "for flag --allow-non-loopback" "--allow-non-loopback=maybe: the message names the flag"
SKR_ALLOW_NON_LOOPBACK=yes expect_rc 2 "SKR_ALLOW_NON_LOOPBACK=yes -> exit 2" "$SKRD" --check-config
expect_out "env SKR_ALLOW_NON_LOOPBACK" "SKR_ALLOW_NON_LOOPBACK=yes: the message names the variable"
expect_rc 2 "-loglevel loud -> exit 2" "$SKRD" --check-config -loglevel loud
expect_out "flag -loglevel" "-loglevel loud: the message names -loglevel"
LogLevel=chatty expect_rc 2 "LogLevel=chatty -> exit 2" "$SKRD" --check-config
expect_out "env LogLevel" "LogLevel=chatty: the message names LogLevel"
Port=http expect_rc 2 "Port=http -> exit 2" "$SKRD" --check-config
expect_out "env Port" "Port=http: the message names Port"
SKR_RETRIES=lots expect_rc 2 "SKR_RETRIES=lots -> exit 2" "$SKRD" --check-config
expect_out "env SKR_RETRIES" "SKR_RETRIES=lots: the message names SKR_RETRIES"
SkrSideCarArgs=$(b64 '{"certcache":{"endpoint_type":"Nowhere"}}') expect_rc 2 \
    "certcache.endpoint_type unknown -> exit 2" "$SKRD" --check-config
expect_out "SkrSideCarArgs certcache.endpoint_type" "an unknown endpoint_type: the message names the member"
expect_rc 2 "--port 0 without --socket -> exit 2" "$SKRD" --check-config --port 0
expect_out "needs --socket" "--port 0 alone: the message says a socket is needed"
expect_rc 2 "an unknown flag -> exit 2" "$SKRD" --check-config --frobnicate
expect_out "flag provided but not defined: -frobnicate" "an unknown flag is named"
expect_rc 2 "a flag without its value -> exit 2" "$SKRD" --check-config --pool-size
expect_out "flag needs an argument: --pool-size" "a missing flag value is named"
expect_rc 2 "-server_type grpc -> exit 2" "$SKRD" --check-config -server_type grpc
expect_out "only http is supported" "-server_type grpc: not supported"
expect_rc 2 "the reference's wrapping mode (-infile) -> exit 2" "$SKRD" --check-config -infile x
expect_out "not supported" "-infile: not supported"
expect_rc 2 "three positional arguments -> exit 2" "$SKRD" --check-config a 1 extra
expect_out "unexpected argument" "a third positional argument is refused"

# ---- loopback only ------------------------------------------------------------------------------

expect_rc 2 "--listen 0.0.0.0 without --allow-non-loopback -> exit 2" "$SKRD" --check-config --listen 0.0.0.0
expect_out "--allow-non-loopback" "the refusal says how to allow it"
SKR_LISTEN=192.0.2.1 expect_rc 2 "SKR_LISTEN=192.0.2.1 without the flag -> exit 2" "$SKRD" --check-config
expect_out "env SKR_LISTEN" "the refusal names SKR_LISTEN"
expect_rc 0 "--listen 0.0.0.0 --allow-non-loopback" "$SKRD" --check-config --listen 0.0.0.0 --allow-non-loopback
expect_setting allow_non_loopback true "flag --allow-non-loopback" "--allow-non-loopback is recorded"
expect_rc 0 "--listen ::1 (loopback)" "$SKRD" --check-config --listen ::1
expect_rc 0 "--listen localhost" "$SKRD" --check-config --listen localhost

# ---- the daemon -------------------------------------------------------------------------------

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_skrd NAME ARGS...: skrd in the background ($PID), logging at debug to $TMP/NAME.log.
start_skrd() {
    _name=$1
    shift
    "$SKRD" -loglevel debug -logfile "$TMP/$_name.log" "$@" >"$TMP/$_name.out" 2>&1 &
    PID=$!
}

# wait_status URL WANT: polls GET /status until it answers WANT (up to 60 s).
wait_status() {
    _i=0
    while [ $_i -lt 600 ]; do
        _st=$(curl -s -o "$TMP/status.body" -w '%{http_code}' "$1/status" 2>/dev/null)
        [ "$_st" = "$2" ] && return 0
        sleep 0.1
        _i=$((_i + 1))
    done
    return 1
}

# call METHOD PATH BODY: status in $ST, body in $TMP/body, headers in $TMP/hdrs.
call() {
    ST=$(curl -s -o "$TMP/body" -D "$TMP/hdrs" -w '%{http_code}' -X "$1" \
        -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$U$2")
}

# expect_call WANT DESC METHOD PATH [BODY] [WORD]: the status, an {"error": "..."} body for
# errors, and WORD in it when given.
expect_call() {
    _want=$1
    _desc=$2
    call "$3" "$4" "${5:-}"
    if [ "$ST" != "$_want" ]; then
        not_ok "$_desc (status $ST, expected $_want)"
        sed 's/^/#   /' "$TMP/body" | head -3
    elif [ "$_want" -ge 400 ] && ! jq -e '.error | strings | length > 0' "$TMP/body" >/dev/null 2>&1; then
        not_ok "$_desc (body is not {\"error\": \"...\"})"
        sed 's/^/#   /' "$TMP/body" | head -3
    elif [ -n "${6:-}" ] && ! grep -qiF -- "$6" "$TMP/body"; then
        not_ok "$_desc (no '$6' in the answer)"
        sed 's/^/#   /' "$TMP/body" | head -3
    else
        ok "$_desc"
    fi
}

# stop_skrd DESC: SIGTERM, and skrd must exit 0.
stop_skrd() {
    kill -TERM "$PID"
    wait "$PID"
    _rc=$?
    if [ $_rc -eq 0 ]; then ok "$1: SIGTERM -> exit 0"; else not_ok "$1: SIGTERM -> exit $_rc"; fi
}

# Without an SNP device (this machine is not an SEV-SNP guest): 503 naming the cause.
if [ -e /dev/sev-guest ] || [ -e /dev/sev ] || [ -d /sys/kernel/config/tsm/report ]; then
    ok "# SKIP no-device case: this machine has an SEV-SNP guest device"
else
    P=$(free_port)
    U=http://127.0.0.1:$P
    start_skrd nodev --snp-device auto --port "$P"
    # 503 while loading, then 503 with the failed stage
    i=0
    while [ $i -lt 300 ]; do
        _st=$(curl -s -o "$TMP/status.body" -w '%{http_code}' "$U/status" 2>/dev/null)
        [ "$_st" = 503 ] && grep -q '"stage"' "$TMP/status.body" && break
        sleep 0.1
        i=$((i + 1))
    done
    if [ "$_st" = 503 ] && grep -q '"stage"' "$TMP/status.body"; then
        ok "no SNP device: /status answers 503 with the failed stage"
    else
        not_ok "no SNP device: /status answers 503 with the failed stage (last $_st)"
    fi
    if grep -qi "not an SEV-SNP guest" "$TMP/status.body" &&
        jq -e '.message == "Status NOT OK"' "$TMP/status.body" >/dev/null; then
        ok "no SNP device: {\"message\":\"Status NOT OK\"} and the reason says 'not an SEV-SNP guest'"
    else
        not_ok "no SNP device: the reason says 'not an SEV-SNP guest'"
        sed 's/^/#   /' "$TMP/status.body"
    fi
    expect_call 503 "no SNP device: /attest/raw -> 503" POST /attest/raw '{"runtime_data":"AA=="}' "not an SEV-SNP guest"
    if grep -q "not ready" "$TMP/nodev.log" && grep -q "error" "$TMP/nodev.log"; then
        ok "no SNP device: the reason is logged at error level"
    else
        not_ok "no SNP device: the reason is logged at error level"
    fi
    stop_skrd "no SNP device"
fi

# ---- per-thread malloc caches (main.c: bound_thread_caches) ---------------------------------

# caches_run DESC CMD...: runs CMD (skrd with its environment) in the background as $PID, waits
# until /status answers, and leaves /proc/$PID/environ one string per line in $TMP/environ
# (empty when unreadable). glibc splits GLIBC_TUNABLES at ':' in place as it reads it, so each
# tunable after the first is a line of its own.
caches_run() {
    _desc=$1
    shift
    P=$(free_port)
    U=http://127.0.0.1:$P
    rm -f "$TMP/caches.log"
    "$@" -loglevel debug -logfile "$TMP/caches.log" --snp-device auto --port "$P" \
        >"$TMP/caches.out" 2>&1 &
    PID=$!
    _i=0
    while [ "$(curl -s -o /dev/null -w '%{http_code}' "$U/status" 2>/dev/null)" = 000 ] &&
        [ $_i -lt $((300 * WAIT)) ]; do
        sleep 0.1
        _i=$((_i + 1))
    done
    tr '\0' '\n' <"/proc/$PID/environ" >"$TMP/environ" 2>/dev/null || : >"$TMP/environ"
    # the log is opened after the restart: one start-up line, with the pid we started
    if [ "$(grep -c "starting (pid $PID)" "$TMP/caches.log")" = 1 ] &&
        [ "$(grep -c "starting (pid" "$TMP/caches.log")" = 1 ]; then
        ok "$_desc: one start-up, same pid"
    else
        not_ok "$_desc: one start-up, same pid ($PID)"
        sed 's/^/#   /' "$TMP/caches.log" "$TMP/caches.out" | head -10
    fi
}

# has_line LINE: $TMP/environ holds LINE.
has_line() {
    grep -qxF -- "$1" "$TMP/environ"
}

# expect_log TEXT DESC: the last caches_run's log holds TEXT.
expect_log() {
    if grep -qF -- "$1" "$TMP/caches.log"; then ok "$2"; else not_ok "$2"; fi
}

if [ "${SKR_VALGRIND:-}" = 1 ]; then
    caches_run "under valgrind" env -u GLIBC_TUNABLES "$SKRD"
    if grep -q "per-thread malloc caches: glibc's defaults (under valgrind)" "$TMP/caches.log"; then
        ok "under valgrind: no restart (valgrind replaces malloc), and the log says so"
    else
        not_ok "under valgrind: no restart, and the log says so"
    fi
    stop_skrd "under valgrind"
else
    caches_run "thread caches" env -u GLIBC_TUNABLES "$SKRD"
    if [ ! -s "$TMP/environ" ]; then
        ok "# SKIP thread caches: /proc/$PID/environ is not readable here (skrd is non-dumpable)"
    elif has_line "GLIBC_TUNABLES=glibc.malloc.tcache_max=128"; then
        ok "thread caches: skrd restarted itself with GLIBC_TUNABLES=glibc.malloc.tcache_max=128"
    else
        not_ok "thread caches: skrd restarted itself with GLIBC_TUNABLES=glibc.malloc.tcache_max=128"
        grep GLIBC "$TMP/environ" | sed 's/^/#   /'
    fi
    expect_log "per-thread malloc caches: as GLIBC_TUNABLES sets them; GLIBC_TUNABLES=glibc.malloc.tcache_max=128" \
        "thread caches: the debug log names the tunable"
    stop_skrd "thread caches"

    caches_run "thread caches, another tunable set" env GLIBC_TUNABLES=glibc.malloc.perturb=0 "$SKRD"
    if [ ! -s "$TMP/environ" ]; then
        ok "# SKIP thread caches: /proc/$PID/environ is not readable here"
    elif has_line "GLIBC_TUNABLES=glibc.malloc.perturb=0" && has_line "glibc.malloc.tcache_max=128"; then
        ok "thread caches: the operator's other tunables are kept, the cache bound is added"
    else
        not_ok "thread caches: the operator's other tunables are kept, the cache bound is added"
        sed -n '/GLIBC/,+2p' "$TMP/environ" | sed 's/^/#   /'
    fi
    stop_skrd "thread caches, another tunable set"

    caches_run "thread caches set by the operator" env GLIBC_TUNABLES=glibc.malloc.tcache_count=2 "$SKRD"
    if [ ! -s "$TMP/environ" ]; then
        ok "# SKIP thread caches: /proc/$PID/environ is not readable here"
    elif has_line "GLIBC_TUNABLES=glibc.malloc.tcache_count=2" &&
        ! grep -q "tcache_max" "$TMP/environ"; then
        ok "thread caches: a glibc.malloc.tcache_* tunable of the operator wins (no restart)"
    else
        not_ok "thread caches: a glibc.malloc.tcache_* tunable of the operator wins"
        sed -n '/GLIBC/,+2p' "$TMP/environ" | sed 's/^/#   /'
    fi
    stop_skrd "thread caches set by the operator"

    # Without /proc (a mount namespace of our own) the restart fails: skrd runs on, and says so.
    if ldd "$SKR_BUILD_DIR/src/skrd" 2>/dev/null | grep -q libasan; then
        # its runtime reads /proc: LeakSanitizer fails at exit, and SIGTERM no longer reaches
        # skrd's sigwait
        ok "# SKIP no /proc: an ASan build cannot run without /proc"
    elif unshare -m sh -c 'umount -l /proc' 2>/dev/null; then
        # shellcheck disable=SC2016 # $0 and $@ are the inner shell's
        caches_run "no /proc" unshare -m sh -c 'umount -l /proc && exec env -u GLIBC_TUNABLES "$0" "$@"' "$SKRD"
        expect_log "per-thread malloc caches: glibc's defaults (cannot restart with bounded caches): No such file or directory" \
            "no /proc: skrd runs with glibc's caches and logs why at info"
        if curl -s -o /dev/null -w '%{http_code}' "$U/status" | grep -q '^[0-9][0-9][0-9]$' &&
            ! grep -q "GLIBC_TUNABLES=" "$TMP/caches.log"; then
            ok "no /proc: skrd serves, with the environment as it was"
        else
            not_ok "no /proc: skrd serves, with the environment as it was"
        fi
        stop_skrd "no /proc"
    else
        ok "# SKIP no /proc: cannot make a mount namespace here"
    fi
fi

# An emulated platform.
EMU=$TMP/emu
expect_rc 0 "skr-emu init" "$SKR_EMU" init "$EMU"
# A stand-in for IMDS, MAA and AKV that accepts connections and never answers (for the
# --max-releases and shutdown checks below).
python3 - "$TMP/hole.port" "$TMP/hole.hit" <<'PY' &
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
held = []
s.settimeout(600)
try:
    while True:
        c, _ = s.accept()
        held.append(c)
        open(sys.argv[2], "w").write("hit")
except OSError:
    pass
PY
HOLE_PID=$!
i=0
while [ ! -s "$TMP/hole.port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
HOLE="127.0.0.1:$(cat "$TMP/hole.port")"
P=$(free_port)
U=http://127.0.0.1:$P
SOCK=$TMP/skrd.sock
start_skrd emu --snp-device "emulated:$EMU" --security-context-dir "$EMU/security-context" \
    --port "$P" --socket "$SOCK" --max-releases 1 --retries 0 --timeout-ms 60000 \
    --imds-endpoint "http://$HOLE"
if wait_status "$U" 200 && jq -e '.message == "Status OK"' "$TMP/status.body" >/dev/null; then
    ok "emulated platform: GET /status -> 200 {\"message\":\"Status OK\"}"
else
    not_ok "emulated platform: GET /status -> 200 (last $_st)"
    sed 's/^/#   /' "$TMP/status.body" "$TMP/emu.log" | tail -20
fi

# /attest/raw: REPORT_DATA = SHA-256(runtime data), checked by skr report show.
printf '{"keys":[{"kty":"RSA","kid":"test"}]}' >"$TMP/rt"
RT=$(base64 -w0 "$TMP/rt")
expect_call 200 "POST /attest/raw -> 200" POST /attest/raw "{\"runtime_data\":\"$RT\"}"
jq -r .report "$TMP/body" >"$TMP/report.hex"
# shellcheck disable=SC2153 # SKR comes from lib.sh
expect_rc 0 "skr report show reads the report" "$SKR" report show "$TMP/report.hex" --format json
want="$(sha256sum "$TMP/rt" | cut -c1-64)$(printf '%064d' 0)"
got=$(jq -r .report_data "$TMP/out" 2>/dev/null)
if [ "$got" = "$want" ]; then
    ok "/attest/raw: REPORT_DATA = SHA-256(runtime data), zero-padded"
else
    not_ok "/attest/raw: REPORT_DATA = SHA-256(runtime data) (got '$got')"
fi
expect_call 200 "POST /attest/combined -> 200" POST /attest/combined "{\"runtime_data\":\"$RT\"}"
if jq -e '[.endorsed_tcb, .endorsements, .evidence, .uvm_endorsements] | all(type == "string")' \
    "$TMP/body" >/dev/null 2>&1; then
    ok "/attest/combined: endorsed_tcb, endorsements, evidence, uvm_endorsements"
else
    not_ok "/attest/combined: the four fields"
    head -c 300 "$TMP/body" | sed 's/^/#   /'
fi

# Bad input on every route: 400 with a message naming the problem.
REL='"maa_endpoint":"127.0.0.1:1","akv_endpoint":"127.0.0.1:1"'
for route in /attest/raw /attest/combined /attest/maa; do
    maa=
    [ $route = /attest/maa ] && maa='"maa_endpoint":"127.0.0.1:1",'
    expect_call 400 "$route: empty body -> 400" POST $route "" "empty"
    expect_call 400 "$route: not JSON -> 400" POST $route '{runtime_data:' "json"
    expect_call 400 "$route: a JSON array -> 400" POST $route '[1]' "object"
    expect_call 400 "$route: missing runtime_data -> 400" POST $route "{$maa\"x\":1}" "runtime_data"
    expect_call 400 "$route: runtime_data a number -> 400" POST $route "{$maa\"runtime_data\":5}" "runtime_data"
    expect_call 400 "$route: runtime_data null -> 400" POST $route "{$maa\"runtime_data\":null}" "runtime_data"
    expect_call 400 "$route: runtime_data empty -> 400" POST $route "{$maa\"runtime_data\":\"\"}" "empty"
    expect_call 400 "$route: runtime_data not base64 -> 400" POST $route "{$maa\"runtime_data\":\"@@@\"}" "base64"
    expect_call 400 "$route: runtime_data base64url -> 400" POST $route "{$maa\"runtime_data\":\"-_-_\"}" "base64"
    expect_call 400 "$route: a duplicate member -> 400" POST $route \
        "{$maa\"runtime_data\":\"AA==\",\"runtime_data\":\"AA==\"}" "duplicate"
    expect_call 400 "$route: invalid UTF-8 -> 400" POST $route "$(printf '{"runtime_data":"\377"}')" "json"
done
expect_call 400 "/attest/maa: missing maa_endpoint -> 400" POST /attest/maa "{\"runtime_data\":\"$RT\"}" "maa_endpoint"
expect_call 400 "/attest/maa: maa_endpoint a number -> 400" POST /attest/maa "{\"runtime_data\":\"$RT\",\"maa_endpoint\":1}" "maa_endpoint"
expect_call 400 "/attest/maa: maa_endpoint empty -> 400" POST /attest/maa "{\"runtime_data\":\"$RT\",\"maa_endpoint\":\"\"}" "maa_endpoint"
expect_call 400 "/attest/maa: runtime_data that is not JSON -> 400" POST /attest/maa \
    "{\"runtime_data\":\"AAEC\",\"maa_endpoint\":\"127.0.0.1:1\"}" "JSON"
expect_call 400 "/key/release: not JSON -> 400" POST /key/release 'kid=x' "json"
expect_call 400 "/key/release: a JSON string -> 400" POST /key/release '"kid"' "object"
expect_call 400 "/key/release: empty object -> 400" POST /key/release '{}' "maa_endpoint"
expect_call 400 "/key/release: missing kid -> 400" POST /key/release "{$REL}" "kid"
expect_call 400 "/key/release: missing akv_endpoint -> 400" POST /key/release '{"maa_endpoint":"m","kid":"k"}' "akv_endpoint"
expect_call 400 "/key/release: kid a number -> 400" POST /key/release "{$REL,\"kid\":7}" "kid"
expect_call 400 "/key/release: kid empty -> 400" POST /key/release "{$REL,\"kid\":\"\"}" "kid"
expect_call 400 "/key/release: kid null -> 400" POST /key/release "{$REL,\"kid\":null}" "kid"
expect_call 400 "/key/release: akv_endpoint a list -> 400" POST /key/release '{"maa_endpoint":"m","akv_endpoint":["a"],"kid":"k"}' "akv_endpoint"
expect_call 400 "/key/release: access_token a number -> 400" POST /key/release "{$REL,\"kid\":\"k\",\"access_token\":1}" "access_token"

# Routes, methods, limits.
expect_call 404 "GET /nope -> 404" GET /nope
expect_call 404 "GET /status/ -> 404" GET /status/
expect_call 404 "POST /key/release/x -> 404" POST /key/release/x '{}'
expect_call 405 "GET /key/release -> 405" GET /key/release "" "POST"
if grep -qi '^Allow: POST' "$TMP/hdrs"; then ok "405 carries Allow: POST"; else not_ok "405 carries Allow: POST"; fi
expect_call 405 "POST /status -> 405" POST /status '{}' "GET"
if grep -qi '^Allow: GET' "$TMP/hdrs"; then ok "405 on /status carries Allow: GET"; else not_ok "405 on /status carries Allow: GET"; fi
expect_call 405 "DELETE /attest/raw -> 405" DELETE /attest/raw
python3 -c 'import sys; sys.stdout.write("{\"runtime_data\":\"" + "A" * 70000 + "\"}")' >"$TMP/big.json"
expect_call 413 "a 70 KiB body -> 413" POST /attest/raw "@$TMP/big.json" "limit"
ST=$(curl -s -o "$TMP/body" -w '%{http_code}' -H 'Transfer-Encoding: chunked' \
    --data-binary "@$TMP/big.json" "$U/attest/raw")
if [ "$ST" = 413 ]; then ok "a 70 KiB chunked body -> 413"; else not_ok "a 70 KiB chunked body -> 413 ($ST)"; fi
python3 -c 'import sys; sys.stdout.write("{\"runtime_data\":\"" + "A" * 65000 + "\"}")' >"$TMP/almost.json"
expect_call 200 "a 65000-byte body (under 64 KiB) -> 200" POST /attest/raw "@$TMP/almost.json"

# The Unix socket.
if [ "$(stat -c %a "$SOCK" 2>/dev/null)" = 600 ]; then ok "--socket: mode 0600"; else not_ok "--socket: mode 0600 ($(stat -c %a "$SOCK" 2>&1))"; fi
ST=$(curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$SOCK" http://skrd/status)
if [ "$ST" = 200 ] && jq -e '.message == "Status OK"' "$TMP/body" >/dev/null; then
    ok "--socket: GET /status over the Unix socket"
else
    not_ok "--socket: GET /status over the Unix socket ($ST)"
fi
ST=$(curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -d "{\"runtime_data\":\"$RT\"}" http://skrd/attest/raw)
if [ "$ST" = 200 ] && [ "$(jq -r '.report | length' "$TMP/body")" = 2368 ]; then
    ok "--socket: POST /attest/raw over the Unix socket"
else
    not_ok "--socket: POST /attest/raw over the Unix socket ($ST)"
fi

# --max-releases 1: while one release waits on the stand-in, the next is refused at once with
# 503 instead of queueing.
rm -f "$TMP/hole.hit"
curl -s -o "$TMP/slow.body" -w '%{http_code}' -m $((90 * WAIT)) \
    -d "{\"maa_endpoint\":\"$HOLE\",\"akv_endpoint\":\"$HOLE\",\"kid\":\"k\"}" "$U/key/release" >"$TMP/slow.st" &
SLOW_PID=$!
i=0
while [ ! -s "$TMP/hole.hit" ] && [ $i -lt $((300 * WAIT)) ]; do sleep 0.1; i=$((i + 1)); done
if [ -s "$TMP/hole.hit" ]; then
    expect_call 503 "--max-releases 1: a second concurrent release -> 503 at once" POST /key/release \
        "{\"maa_endpoint\":\"$HOLE\",\"akv_endpoint\":\"$HOLE\",\"kid\":\"k\"}" "max-releases"
    if jq -e '.stage == "input"' "$TMP/body" >/dev/null && grep -qi '^Retry-After:' "$TMP/hdrs"; then
        ok "the 503 has stage input and Retry-After"
    else
        not_ok "the 503 has stage input and Retry-After"
    fi
    expect_call 200 "other routes still answer during a release" GET /status
else
    not_ok "--max-releases 1: the first release never reached the stand-in"
fi

# SIGTERM while the release is in flight: skrd stops accepting, the release finishes (it
# fails once the stand-in goes away), skrd exits 0 and removes its socket.
kill -TERM "$PID"
sleep 0.5
if curl -s -m 2 -o /dev/null "$U/status"; then
    not_ok "after SIGTERM no new connection is accepted"
else
    ok "after SIGTERM no new connection is accepted"
fi
kill "$HOLE_PID" 2>/dev/null
wait "$HOLE_PID" 2>/dev/null
wait "$SLOW_PID"
if [ "$(cat "$TMP/slow.st")" = 403 ] && jq -e '.stage | strings | length > 0' "$TMP/slow.body" >/dev/null 2>&1; then
    ok "the in-flight release was answered (403 with its stage) during shutdown"
else
    not_ok "the in-flight release was answered during shutdown ($(cat "$TMP/slow.st"): $(head -c 200 "$TMP/slow.body"))"
fi
wait "$PID"
rc=$?
if [ $rc -eq 0 ]; then ok "emulated platform: SIGTERM -> exit 0"; else not_ok "emulated platform: SIGTERM -> exit $rc"; fi
if [ ! -e "$SOCK" ]; then ok "the Unix socket is removed on exit"; else not_ok "the Unix socket is removed on exit"; fi

# The log: one info line per request with route, status and stage; no request bodies.
if grep -q 'info: POST /attest/raw -> 200 in' "$TMP/emu.log" &&
    grep -q 'info: POST /key/release -> 400 in .* stage=input' "$TMP/emu.log" &&
    grep -q 'info: GET (unknown route) -> 404' "$TMP/emu.log" &&
    grep -q 'info: POST /attest/raw -> 413' "$TMP/emu.log"; then
    ok "one log line per request: route, status, duration, stage"
else
    not_ok "one log line per request: route, status, duration, stage"
    grep ' info: ' "$TMP/emu.log" | head -10 | sed 's/^/#   /'
fi
if grep -qF "$RT" "$TMP/emu.log" || grep -q 'AAAAAAAAAAAAAAAA' "$TMP/emu.log"; then
    not_ok "request bodies are not logged"
else
    ok "request bodies are not logged"
fi

# A second skrd on a socket path left behind by a dead one replaces it; one held by a live
# skrd is refused.
python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$SOCK"
start_skrd stale --snp-device "emulated:$EMU" --security-context-dir "$EMU/security-context" \
    --port 0 --socket "$SOCK"
i=0
while [ $i -lt 300 ]; do
    ST=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://skrd/status 2>/dev/null)
    [ "$ST" = 200 ] && break
    sleep 0.1
    i=$((i + 1))
done
if [ "$ST" = 200 ]; then ok "--socket replaces a stale socket; --port 0: socket only"; else not_ok "--socket replaces a stale socket ($ST)"; fi
expect_rc 1 "a second skrd on a live socket exits 1" "$SKRD" --port 0 --socket "$SOCK"
expect_out "another process listens" "the refusal says the socket is in use"
stop_skrd "socket only"

finish
