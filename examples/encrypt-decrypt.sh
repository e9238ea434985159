#!/bin/sh
# encrypt-decrypt.sh - the last step of Secure Key Release: a key released by the skrd sidecar
# encrypts data leaving the container and decrypts a dataset inside it (skr encrypt/decrypt,
# format: docs/encryption-format.md).
#
#   SKRD_URL=http://localhost:8080 MAA_ENDPOINT=sharedeus2.eus2.attest.azure.net \
#   AKV_ENDPOINT=myvault.vault.azure.net KEY_NAME=mykey examples/encrypt-decrypt.sh FILE
#
#   1. POST /key/release to skrd {"maa_endpoint","akv_endpoint","kid"} -> {"key":"<JWK>"}
#      (or KEY_FILE=a response or JWK saved earlier, to skip the release);
#   2. skr encrypt: FILE -> FILE.skre (oct key: AES-GCM; RSA key: RSA-OAEP-256 envelope,
#      for which the public key alone is enough);
#   3. skr decrypt: FILE.skre -> FILE.out, compared with FILE.
# The released key is private key material: it stays in a private temporary directory (umask
# 077) removed on exit, and is never printed. SKR names the skr binary (default: skr on PATH).
set -eu
SKR=${SKR:-skr}
in=${1:?usage: encrypt-decrypt.sh FILE}
aad="file=$(basename "$in")" # binds the ciphertext to its name: a renamed file will not decrypt
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

if [ -n "${KEY_FILE:-}" ]; then
    cp "$KEY_FILE" "$work/key.json"
else
    url=${SKRD_URL:-http://localhost:8080}
    body=$(printf '{"maa_endpoint":"%s","akv_endpoint":"%s","kid":"%s"}' \
        "${MAA_ENDPOINT:?set MAA_ENDPOINT}" "${AKV_ENDPOINT:?set AKV_ENDPOINT}" \
        "${KEY_NAME:?set KEY_NAME}")
    # on failure skrd answers {"error": ..., "stage": ..., "hint": ...}: shown by curl
    curl --fail-with-body -sS -X POST "$url/key/release" -H 'Content-Type: application/json' \
        -d "$body" -o "$work/key.json"
    echo "1. released key $KEY_NAME through $url"
fi

"$SKR" encrypt --key "$work/key.json" --in "$in" --out "$in.skre" --aad "$aad"
echo "2. encrypted $in -> $in.skre ($(wc -c <"$in.skre") bytes)"

"$SKR" decrypt --key "$work/key.json" --in "$in.skre" --out "$in.out" --aad "$aad"
cmp "$in" "$in.out"
echo "3. decrypted $in.skre -> $in.out: identical to $in"
