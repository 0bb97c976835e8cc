#!/usr/bin/env bash
# Builds FerretDB (pinned in tools/ferretdb/go.mod) from the Go module proxy once and caches the
# binary in .cache/bin; rebuilds only when the pin or the wrapper changes. Prints the binary's path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/tools/ferretdb"
bin="$root/.cache/bin/ferretdb"
stamp="$root/.cache/bin/ferretdb.stamp"
want=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -d' ' -f1)
if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null || { echo "build-ferretdb: Go is needed to build FerretDB (or set MONGODB_URI)" >&2; exit 1; }
mkdir -p "$root/.cache/bin"
echo "build-ferretdb: building FerretDB (first time takes a few minutes)..." >&2
(cd "$src" && go build -trimpath -o "$bin.tmp" .)
mv "$bin.tmp" "$bin"
echo "$want" > "$stamp"
echo "$bin"
