#!/bin/sh
# test_sdk_js.sh - the official Azure SDK for JS against skr-emu serve (issue #3 proof):
# @azure/identity ManagedIdentityCredential from the IMDS emulator, @azure/keyvault-keys
# create / get / import / release with a token from the MAA emulator (the released key unwrapped
# independently with node:crypto), @azure/attestation signers and OpenID metadata.
# The packages are pinned in tests/js/package-lock.json and installed by scripts/install-deps
# (npm ci); the test fails, and says so, when node or tests/js/node_modules is missing.
. "$(dirname "$0")/lib.sh"

JS="${SKR_SRC_DIR:-$(dirname "$0")/../..}/tests/js"
if ! command -v node >/dev/null 2>&1; then
    not_ok "node is not installed (scripts/install-deps installs it)"
    finish
    exit 1
fi
if [ ! -d "$JS/node_modules/@azure/keyvault-keys" ]; then
    not_ok "$JS/node_modules is missing: run scripts/install-deps (npm ci --prefix tests/js)"
    finish
    exit 1
fi

EMU="$TMP/emu"
expect_rc 0 "skr-emu init" "$SKR_EMU" init "$EMU"
"$SKR_EMU" serve "$EMU" >"$TMP/serve.out" 2>"$TMP/serve.err" &
PID=$!
trap 'kill -TERM "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
i=0
while [ ! -s "$EMU/endpoints.json" ] && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
if [ -s "$EMU/endpoints.json" ]; then
    ok "skr-emu serve: endpoints.json written"
else
    not_ok "skr-emu serve: no endpoints.json after 10 s"
    sed 's/^/#   /' "$TMP/serve.out" "$TMP/serve.err"
fi
IMDS=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).imds)' \
    "$EMU/endpoints.json")

# Only the emulator: no proxy, no other managed identity source (MSAL picks App Service, Arc,
# Cloud Shell or Service Fabric before IMDS when their variables are set), no service principal.
# AZURE_POD_IDENTITY_AUTHORITY_HOST points MSAL's IMDS source at the emulator;
# NODE_EXTRA_CA_CERTS makes node trust the emulator CA for MAA and Key Vault.
if (cd "$JS" && env -u HTTP_PROXY -u HTTPS_PROXY -u ALL_PROXY -u http_proxy -u https_proxy \
    -u all_proxy -u IDENTITY_ENDPOINT -u IDENTITY_HEADER -u IDENTITY_SERVER_THUMBPRINT \
    -u IMDS_ENDPOINT -u MSI_ENDPOINT -u MSI_SECRET -u AZURE_CLIENT_ID -u AZURE_TENANT_ID \
    -u AZURE_CLIENT_SECRET -u AZURE_CLIENT_CERTIFICATE_PATH -u AZURE_FEDERATED_TOKEN_FILE \
    -u AZURE_USERNAME -u AZURE_PASSWORD -u AZURE_AUTHORITY_HOST -u AZURE_TOKEN_CREDENTIALS \
    NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost \
    AZURE_POD_IDENTITY_AUTHORITY_HOST="$IMDS" NODE_EXTRA_CA_CERTS="$EMU/ca.pem" \
    timeout 90 node sdk_test.mjs "$SKR" "$EMU") >"$TMP/sdk.out" 2>&1; then
    ok "Azure SDK for JS against the emulator"
else
    not_ok "Azure SDK for JS against the emulator"
fi
sed 's/^/#   /' "$TMP/sdk.out"

kill -TERM "$PID"
wait "$PID"
rc=$?
trap 'rm -rf "$TMP"' EXIT
if [ "$rc" -eq 0 ]; then ok "serve stops cleanly"; else not_ok "serve exit $rc"; sed 's/^/#   /' "$TMP/serve.err"; fi
finish
