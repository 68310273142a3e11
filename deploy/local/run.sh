#!/usr/bin/env bash
# `make run`: the whole pipeline on the bundled sample news site (or on
# SEEDS="url ..."), then a summary; stops everything it started.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
SITE_BIN="${CRAWLQ_SITE_BIN:-$TARGET/release/crawlq-sample-site}"
[ -x "$SITE_BIN" ] || { echo "missing $SITE_BIN: run \`make build\`" >&2; exit 1; }
SITE_ADDR="${CRAWLQ_SITE_ADDR:-127.0.0.1:18080}"

trap stop_all EXIT
stop_all
if [ -z "${SEEDS:-}" ]; then
  # The sample site lives on loopback, which the SSRF guard refuses by
  # default; allow it for this demo only. A short host delay keeps it quick.
  export CRAWLQ_ALLOW_PRIVATE_NETWORKS=true CRAWLQ_HOST_DELAY="${CRAWLQ_HOST_DELAY:-100ms}"
fi
start_nats
start_services
args=()
if [ -n "${SEEDS:-}" ]; then
  read -r -a args <<< "$SEEDS"
else
  mkdir -p "$RUN"
  "$SITE_BIN" "$SITE_ADDR" > "$LOGS/sample-site.log" 2>&1 &
  echo $! > "$RUN/sample-site.pid"
  for _ in $(seq 1 100); do curl -sf "http://$SITE_ADDR/robots.txt" >/dev/null 2>&1 && break; sleep 0.1; done
  echo "sample news site on http://$SITE_ADDR"
  args=(--feed "http://$SITE_ADDR/rss.xml" --feed "http://$SITE_ADDR/atom.xml" --sitemap "http://$SITE_ADDR/sitemap.xml")
fi
"$BIN" submit --force --wait "${args[@]}"
echo "archive: $CRAWLQ_STORE_URL (index pages under index/, articles under articles/)"
