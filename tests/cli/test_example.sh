#!/bin/sh
# test_example.sh - examples/custom-app (built by meson: $SKR_BUILD_DIR/examples/custom-app, on
# libskr's public API alone) releases keys imported by an independent Python client into
# skr-emu; its output names the kty and the SHA-256 fingerprint that Python computes on its own.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/skrd_lib.sh"

APP="$SKR_BUILD_DIR/examples/custom-app"
if [ -x "$APP" ]; then ok "custom-app is built"; else not_ok "no $APP"; fi
emu_init
emu_serve
driver example "$APP" "$EMU"
emu_stop
finish
