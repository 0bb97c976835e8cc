#!/usr/bin/env bash
# Installs what dueflow needs on a fresh machine: npm packages and, unless MONGODB_URI is set,
# FerretDB built from the Go module proxy (cached in .cache/bin). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
if [ -z "${MONGODB_URI:-}" ]; then
  bash scripts/build-ferretdb.sh >/dev/null
fi
if [ -z "${REDIS_URL:-}" ] && ! command -v redis-server >/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
  else
    echo "setup: no Redis on 127.0.0.1:6379 and no redis-server; install Redis or set REDIS_URL" >&2
    exit 1
  fi
fi
# The browser tests (test/browser) drive Debian's Chromium through playwright-core; no browser is
# downloaded. Only they need it: without it the rest still runs, and they fail saying so.
if [ -z "${CHROMIUM_PATH:-}" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  else
    echo "setup: no Chromium at /usr/bin/chromium, which the browser tests need; install it (apt-get install chromium) or set CHROMIUM_PATH" >&2
  fi
fi
