#!/usr/bin/env bash
# `make run`: the whole pipeline on the bundled sample news site (or on
# SEEDS="url ..."), then a summary; stops everything it started.
#
# On the sample site it also shows the watch: the site's feeds are
# registered, then the site edits one article and takes another down, and
# the revisits find both (a demo revisit schedule of seconds, not hours).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/stack.sh"

if alive nats || alive crawler || alive storage; then
  echo "a crawlq stack is already running from $DATA (make down first)" >&2
  exit 1
fi
trap stop_all EXIT
if [ -z "${SEEDS:-}" ]; then
  export CRAWLQ_HOST_DELAY="${CRAWLQ_HOST_DELAY:-100ms}"
  export CRAWLQ_REVISIT_SCHEDULE="${CRAWLQ_REVISIT_SCHEDULE:-15s,10s,10s,10s,10s,1h,1d,3d,7d,30d,90d}"
fi
start_nats
start_services
if [ -n "${SEEDS:-}" ]; then
  read -r -a args <<< "$SEEDS"
  "$BIN" submit --force --wait "${args[@]}"
else
  start_site
  "$BIN" submit --force --wait --feed "http://$SITE_ADDR/rss.xml" --feed "http://$SITE_ADDR/atom.xml" --sitemap "http://$SITE_ADDR/sitemap.xml"
  register_feeds 1h
  curl -sf -X POST "http://$SITE_ADDR/_demo/change"
  echo "watching: the revisits should find one edit and one removal"
  "$BIN" changes --follow --for 60s --until 2
fi
echo "archive: $CRAWLQ_STORE_URL (index/, articles/, changes/)"
