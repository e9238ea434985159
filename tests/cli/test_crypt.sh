#!/bin/sh
# test_crypt.sh - skr encrypt/decrypt against an independent implementation of
# docs/encryption-format.md (tests/cli/crypt_ref.py, pyca/cryptography) in both directions, for
# oct-128/192/256 and RSA-2048/3072/4096 keys, bare JWKs and skrd's {"key": "<JWK>"} responses;
# then every error case with its exit code and message, and that a failed decrypt writes
# nothing.
. "$(dirname "$0")/lib.sh"
REF="$SKR_SRC_DIR/tests/cli/crypt_ref.py"
K="$TMP/keys"

# check DESC CMD...: one assertion, ok when CMD succeeds.
check() {
    _d=$1
    shift
    if "$@"; then ok "$_d"; else not_ok "$_d"; fi
}
mkdir -p "$K"

if python3 "$REF" keys "$K"; then
    ok "independent implementation made the test keys"
else
    not_ok "crypt_ref.py keys"
    finish
    exit 1
fi
head -c 100000 /dev/urandom >"$TMP/data.bin"
: >"$TMP/empty.bin"

# 1. skr encrypts, python decrypts; python encrypts, skr decrypts
for k in oct16 oct24 oct32 rsa2048 rsa3072 rsa4096 oct32_rel rsa3072_rel rsa2048z; do
    for aad in "" "dataset=7"; do
        what="$k${aad:+ with --aad}"
        expect_rc 0 "$what: skr encrypt" "$SKR" encrypt --key "$K/$k.jwk" --in "$TMP/data.bin" \
            --out "$TMP/s.skre" --aad "$aad"
        if python3 "$REF" decrypt "$K/$k.jwk" "$TMP/s.skre" "$TMP/p.out" "$aad" &&
            cmp -s "$TMP/p.out" "$TMP/data.bin"; then
            ok "$what: python decrypts what skr encrypted"
        else
            not_ok "$what: python cannot decrypt skr's file"
        fi
        python3 "$REF" encrypt "$K/$k.jwk" "$TMP/data.bin" "$TMP/p.skre" "$aad"
        expect_rc 0 "$what: skr decrypt of python's file" "$SKR" decrypt --key "$K/$k.jwk" \
            --in "$TMP/p.skre" --out "$TMP/s.out" --aad "$aad"
        if cmp -s "$TMP/s.out" "$TMP/data.bin"; then
            ok "$what: skr decrypts what python encrypted"
        else
            not_ok "$what: skr's plaintext differs"
        fi
    done
done

# 2. stdin/stdout, empty input, key on stdin, public-only RSA key, file header and kid
"$SKR" encrypt --key "$K/oct16.jwk" <"$TMP/data.bin" >"$TMP/pipe.skre"
if "$SKR" decrypt --key "$K/oct16.jwk" <"$TMP/pipe.skre" | cmp -s - "$TMP/data.bin"; then
    ok "stdin to stdout round trip"
else
    not_ok "stdin to stdout round trip"
fi
expect_rc 0 "empty input encrypts" "$SKR" encrypt --key "$K/oct32.jwk" --in "$TMP/empty.bin" \
    --out "$TMP/e.skre"
if [ "$(wc -c <"$TMP/e.skre")" -eq 76 ] && python3 "$REF" decrypt "$K/oct32.jwk" "$TMP/e.skre" \
    "$TMP/e.out" && [ ! -s "$TMP/e.out" ]; then
    ok "empty input: a 76-byte file python decrypts to nothing"
else
    not_ok "empty input file"
fi
# shellcheck disable=SC2016 # expanded by the inner shell
expect_rc 0 "key from stdin ({\"key\": ...} form) when --in is a file" sh -c \
    '"$1" encrypt --key - --in "$2" --out "$3" <"$4"' _ "$SKR" "$TMP/data.bin" "$TMP/r.skre" \
    "$K/oct32_rel.jwk"
expect_rc 0 "...and the bare key decrypts it" "$SKR" decrypt --key "$K/oct32.jwk" \
    --in "$TMP/r.skre" --out "$TMP/r.out"
check "key-on-stdin round trip" cmp -s "$TMP/r.out" "$TMP/data.bin"
"$SKR" encrypt --key "$K/rsa2048_pub.jwk" --in "$TMP/data.bin" --out "$TMP/k.skre"
expect_rc 0 "public-only RSA key encrypts; the private key decrypts" "$SKR" decrypt \
    --key "$K/rsa2048.jwk" --in "$TMP/k.skre" --out "$TMP/k.out"
check "public-key envelope round trip" cmp -s "$TMP/k.out" "$TMP/data.bin"
expect_rc 2 "decrypt with a public-only RSA key" "$SKR" decrypt --key "$K/rsa2048_pub.jwk" \
    --in "$TMP/k.skre" --out "$TMP/x.out"
expect_out "decrypting needs its private key" "public-only key: message names the private key"
kid=$(python3 "$REF" kid "$K/rsa2048.jwk")
if head -c 5 "$TMP/k.skre" | od -An -c | tr -d ' \n' | grep -q '^SKRE001$' &&
    [ "$(od -An -tu1 -j5 -N1 "$TMP/k.skre" | tr -d ' ')" = 4 ]; then
    ok "header: magic SKRE, version 1, alg 4 for RSA"
else
    not_ok "header bytes"
fi

# 3. authentication failures: exit 1, nothing written
cp "$TMP/data.bin" "$TMP/keep.out"
expect_rc 1 "wrong oct key" "$SKR" decrypt --key "$K/oct32b.jwk" --in "$TMP/pipe.skre" \
    --out "$TMP/keep.out"
expect_rc 1 "wrong RSA key" "$SKR" decrypt --key "$K/rsa2048b.jwk" --in "$TMP/k.skre" \
    --out "$TMP/keep.out"
expect_out "wrong key: the file was encrypted to key $kid" "wrong key: message names the file's key"
check "a failed decrypt leaves an existing --out intact" cmp -s "$TMP/keep.out" "$TMP/data.bin"
"$SKR" encrypt --key "$K/oct24.jwk" --in "$TMP/data.bin" --out "$TMP/a.skre" --aad one
expect_rc 1 "--aad mismatch" "$SKR" decrypt --key "$K/oct24.jwk" --in "$TMP/a.skre" \
    --out "$TMP/none.out" --aad two
expect_out "authentication failed" "--aad mismatch: authentication failed"
expect_rc 1 "--aad missing" "$SKR" decrypt --key "$K/oct24.jwk" --in "$TMP/a.skre" \
    --out "$TMP/none.out"
for off in 20 70 5000 100075; do
    cp "$TMP/a.skre" "$TMP/t.skre"
    flip "$TMP/t.skre" "$off"
    expect_rc 1 "flipped byte at $off" "$SKR" decrypt --key "$K/oct24.jwk" --in "$TMP/t.skre" \
        --out "$TMP/none.out" --aad one
done
cp "$TMP/k.skre" "$TMP/t.skre"
flip "$TMP/t.skre" 100
expect_rc 1 "flipped byte in the RSA-wrapped key" "$SKR" decrypt --key "$K/rsa2048.jwk" \
    --in "$TMP/t.skre" --out "$TMP/none.out"
expect_out "authentication failed" "wrapped key tampering: authentication failed"
check "no --out file after failed decrypts" test ! -e "$TMP/none.out"
# shellcheck disable=SC2016 # expanded by the inner shell
check "no temporary file left behind" sh -c '! ls "$1" | grep -q none.out.tmp' _ "$TMP"

# 4. bad input: exit 2
head -c 1000 "$TMP/a.skre" >"$TMP/t.skre"
expect_rc 2 "truncated file" "$SKR" decrypt --key "$K/oct24.jwk" --in "$TMP/t.skre" --aad one
expect_out "cut short" "truncated: message says so"
expect_rc 2 "not an SKRE file" "$SKR" decrypt --key "$K/oct24.jwk" --in "$TMP/data.bin"
expect_out 'no "SKRE" magic' "not SKRE: message says so"
cp "$TMP/a.skre" "$TMP/t.skre"
printf '\002' | dd of="$TMP/t.skre" bs=1 seek=4 conv=notrunc 2>/dev/null
expect_rc 2 "version 2" "$SKR" decrypt --key "$K/oct24.jwk" --in "$TMP/t.skre" --aad one
expect_out "format version 2 is not supported" "version 2: message names the version"
cp "$TMP/a.skre" "$TMP/t.skre"
printf '\011' | dd of="$TMP/t.skre" bs=1 seek=5 conv=notrunc 2>/dev/null
expect_rc 2 "unknown algorithm" "$SKR" decrypt --key "$K/oct24.jwk" --in "$TMP/t.skre" --aad one
expect_out "algorithm id 9 is not supported" "unknown algorithm: message names it"
expect_rc 2 "EC key" "$SKR" encrypt --key "$K/ec.jwk" --in "$TMP/data.bin" --out "$TMP/x"
expect_out "EC keys are not supported for encryption" "EC key: clear message"
expect_rc 2 "oct key of 20 bytes" "$SKR" encrypt --key "$K/oct20.jwk" --in "$TMP/data.bin" \
    --out "$TMP/x"
expect_out "oct key is 20 bytes; AES-GCM needs 16, 24 or 32" "oct-160: clear message"
printf '{"kty":"oct","k":"TOPSECRETVALUE' >"$TMP/bad.jwk"
expect_rc 2 "key file not JSON" "$SKR" encrypt --key "$TMP/bad.jwk" --in "$TMP/data.bin" \
    --out "$TMP/x"
if grep -q TOPSECRET "$TMP/out" "$TMP/err"; then
    not_ok "key text appears in the error message"
else
    ok "key text is not echoed in the error message"
fi
expect_rc 2 "missing --key" "$SKR" encrypt --in "$TMP/data.bin"
expect_out "--key JWK is required" "missing --key: message"
expect_rc 2 "--key - with stdin input" "$SKR" decrypt --key -
expect_out "only when --in names a file" "--key -: message"
expect_rc 2 "extra argument" "$SKR" encrypt --key "$K/oct16.jwk" stray
expect_rc 2 "missing key file" "$SKR" encrypt --key "$TMP/nope.jwk" --in "$TMP/data.bin"
expect_rc 2 "missing input file" "$SKR" encrypt --key "$K/oct16.jwk" --in "$TMP/nope.bin"
truncate -s 1100M "$TMP/big.bin"
expect_rc 2 "input over the 1 GiB limit" "$SKR" encrypt --key "$K/oct16.jwk" \
    --in "$TMP/big.bin" --out "$TMP/x"
expect_out "the limit is" "over the limit: message"
rm -f "$TMP/big.bin"

# 5. I/O errors: exit 3
expect_rc 3 "unwritable --out" "$SKR" encrypt --key "$K/oct16.jwk" --in "$TMP/data.bin" \
    --out "$TMP/no/such/dir/x"
expect_rc 3 "unwritable decrypt --out" "$SKR" decrypt --key "$K/oct16.jwk" --in "$TMP/pipe.skre" \
    --out "$TMP/no/such/dir/x"

# 6. examples/encrypt-decrypt.sh: with a saved release response, and through curl against a
# stand-in for skrd's POST /key/release that checks the request and answers {"key": "<JWK>"}
EX="$SKR_SRC_DIR/examples/encrypt-decrypt.sh"
cp "$TMP/data.bin" "$TMP/ex.bin"
expect_rc 0 "example with KEY_FILE (RSA release response)" env SKR="$SKR" \
    KEY_FILE="$K/rsa3072_rel.jwk" sh "$EX" "$TMP/ex.bin"
expect_out "identical to" "example: round trip reported"
python3 - "$K/oct32_rel.jwk" "$TMP/port" >"$TMP/fake.log" 2>&1 <<'PY' &
import http.server, json, sys
key = open(sys.argv[1], "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        good = self.path == "/key/release" and req == {"maa_endpoint": "maa.example",
                                                        "akv_endpoint": "kv.example", "kid": "k1"}
        self.send_response(200 if good else 400)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(key if good else b'{"error":"bad request"}')
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[2], "w").write(str(s.server_address[1]))
s.handle_request()
PY
FAKE_PID=$!
i=0
while [ ! -s "$TMP/port" ] && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
expect_rc 0 "example through curl and /key/release" env SKR="$SKR" \
    SKRD_URL="http://127.0.0.1:$(cat "$TMP/port")" MAA_ENDPOINT=maa.example \
    AKV_ENDPOINT=kv.example KEY_NAME=k1 sh "$EX" "$TMP/ex.bin"
expect_out "1. released key k1" "example: release step reported"
kill "$FAKE_PID" 2>/dev/null
wait "$FAKE_PID" 2>/dev/null
"$SKR" decrypt --key "$K/oct32.jwk" --in "$TMP/ex.bin.skre" --aad "file=ex.bin" --out "$TMP/ex.out"
check "example's file decrypts with the released key" cmp -s "$TMP/ex.out" "$TMP/data.bin"

# 7. help and mode of the plaintext
expect_rc 0 "encrypt --help" "$SKR" encrypt --help
expect_out "usage: skr encrypt --key JWK" "encrypt --help: usage"
expect_rc 0 "decrypt --help" "$SKR" decrypt --help
expect_out "Exit codes: 0 ok, 1 authentication failed" "decrypt --help: exit codes"
"$SKR" decrypt --key "$K/oct16.jwk" --in "$TMP/pipe.skre" --out "$TMP/mode.out"
check "decrypted file has mode 0600" test "$(stat -c %a "$TMP/mode.out")" = 600
finish
