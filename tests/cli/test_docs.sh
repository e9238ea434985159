#!/bin/sh
# test_docs.sh - docs/cli.md is exactly what the programs' --help prints.
. "$(dirname "$0")/lib.sh"
cp -r "$SKR_SRC_DIR/docs" "$SKR_SRC_DIR/scripts" "$TMP/"
sh "$TMP/scripts/gen-cli-doc" "$SKR_BUILD_DIR"
if cmp -s "$TMP/docs/cli.md" "$SKR_SRC_DIR/docs/cli.md"; then
    ok "docs/cli.md matches --help"
else
    not_ok "docs/cli.md is stale: run scripts/gen-cli-doc build"
    diff "$SKR_SRC_DIR/docs/cli.md" "$TMP/docs/cli.md" | head -20 | sed 's/^/#   /'
fi
finish
