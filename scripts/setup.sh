#!/usr/bin/env bash
# Installs what dueflow needs on a fresh machine: npm packages, FerretDB built from the Go module
# proxy (cached in .cache/bin) unless MONGODB_URI is set, and Redis unless one is there or
# REDIS_URL is set. That is all the demo needs (scripts/demo.sh runs it so).
#
# With --browser (scripts/test.sh), also what the browser tests (test/browser) need: Debian's
# Chromium, driven by playwright-core (no browser is downloaded; skipped when CHROMIUM_PATH is set),
# and a CJK font (fonts-noto-cjk), without which the page's Chinese text renders as empty boxes.
# Safe to run again: what is installed is skipped. Root installs with apt-get; otherwise it says what
# to install (Redis is required; without the browser packages only the browser tests fail).
set -euo pipefail
cd "$(dirname "$0")/.."

browser=false
for arg in "$@"; do
  case "$arg" in
    --browser) browser=true ;;
    *) echo "setup: unknown argument $arg (usage: scripts/setup.sh [--browser])" >&2; exit 2 ;;
  esac
done

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
if [ -z "${MONGODB_URI:-}" ]; then
  bash scripts/build-ferretdb.sh >/dev/null
fi

# Debian packages still missing, installed together below (one apt-get update).
apt_packages=()
if [ -z "${REDIS_URL:-}" ] && ! command -v redis-server >/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt_packages+=(redis-server)
  else
    echo "setup: no Redis on 127.0.0.1:6379 and no redis-server; install Redis or set REDIS_URL" >&2
    exit 1
  fi
fi
if [ "$browser" = true ]; then
  if [ -z "${CHROMIUM_PATH:-}" ] && [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
      apt_packages+=(chromium)
    else
      echo "setup: no Chromium at /usr/bin/chromium, which the browser tests need; install it (apt-get install chromium) or set CHROMIUM_PATH" >&2
    fi
  fi
  # Any font covering Chinese will do (fc-list finds it); else Debian's Noto CJK.
  if ! dpkg -s fonts-noto-cjk >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh family 2>/dev/null | head -n 1)" ]; then
    if [ "$(id -u)" = 0 ]; then
      apt_packages+=(fonts-noto-cjk)
    else
      echo "setup: no font for Chinese text, which the browser tests need (a new user's page is in zh-CN); install it (apt-get install fonts-noto-cjk)" >&2
    fi
  fi
fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
  echo "setup: installing ${apt_packages[*]} (apt-get)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}"
fi
