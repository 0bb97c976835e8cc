#!/usr/bin/env bash
# The test command for a fresh machine: installs what is needed (what the demo needs, plus Chromium
# and a CJK font for the browser tests), builds, and runs the whole suite against real Redis and a
# real MongoDB-compatible server (FerretDB unless MONGODB_URI is set).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
npm run lint
npm run build
npx jest "$@"
