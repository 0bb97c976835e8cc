#!/usr/bin/env bash
# The demo command for a fresh machine: installs what it needs (npm packages, FerretDB, Redis; no
# browser), starts Redis, FerretDB and a Feishu-compatible server, runs dueflow in all mode and
# walks through a notification.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run build
exec node dist/scripts/demo.js "$@"
