#!/usr/bin/env bash
# Installs the WARC validators the tests use into .tools/py (a virtualenv,
# git-ignored): warcio (check, index) and pywb (wb-manager, wayback), pinned.
# Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.tools/py"
WARCIO=1.7.5
PYWB=2.9.1
STAMP="$VENV/.crawlq-warcio-$WARCIO-pywb-$PYWB"

if [ -f "$STAMP" ] && [ -x "$VENV/bin/warcio" ] && [ -x "$VENV/bin/wb-manager" ]; then
  exit 0
fi
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  echo "installing python3-venv from apt (for the WARC validators)"
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv
fi
echo "installing warcio $WARCIO and pywb $PYWB into $VENV"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "warcio==$WARCIO" "pywb==$PYWB"
touch "$STAMP"
"$VENV/bin/warcio" --version 2>/dev/null || true
