#!/usr/bin/env bash
# Local crawlq stack: nats-server with JetStream under ./data/nats, the
# three services as separate processes writing to ./data/archive, logs
# under ./data/logs (appended, never truncated). Sourced by run.sh;
# `stack.sh up|down` for make up / make down.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA="${CRAWLQ_DATA:-$ROOT/data}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${CRAWLQ_BIN:-$TARGET/release/crawlq}"
SITE_BIN="${CRAWLQ_SITE_BIN:-$TARGET/release/crawlq-sample-site}"
NATS_BIN="${NATS_SERVER_BIN:-$ROOT/.tools/bin/nats-server}"
for f in "$BIN" "$SITE_BIN" "$NATS_BIN"; do
  [ -x "$f" ] || { echo "missing $f: run \`make build\` and \`make deps\` (\`make run\` and \`make up\` do both)" >&2; exit 1; }
done
NATS_PORT="${CRAWLQ_LOCAL_NATS_PORT:-14222}"
SITE_ADDR="${CRAWLQ_SITE_ADDR:-127.0.0.1:18080}"
export CRAWLQ_NATS_URL="${CRAWLQ_NATS_URL:-nats://127.0.0.1:$NATS_PORT}"
export CRAWLQ_STORE_URL="${CRAWLQ_STORE_URL:-$DATA/archive}"
# The sample site is on loopback, which the SSRF guard refuses: allow that
# one address (not every private network), and keep its host delay short.
export CRAWLQ_ALLOW_CIDRS="${CRAWLQ_ALLOW_CIDRS:-127.0.0.1/32}"
RUN="$DATA/run"
LOGS="$DATA/logs"
STARTED=()

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

port_busy() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

# data/nats remembers the newest nats-server that ran on it; an older one
# is refused (a downgrade can misread what a newer server wrote).
check_nats_version() {
  local have recorded
  have=$("$NATS_BIN" --version 2>&1 | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p' | head -1)
  [ -n "$have" ] || { echo "cannot tell the version of $NATS_BIN" >&2; exit 1; }
  recorded=$(cat "$DATA/nats/server-version" 2>/dev/null || true)
  if [ -n "$recorded" ] && [ "$recorded" != "$have" ] &&
     [ "$(printf '%s\n%s\n' "$recorded" "$have" | sort -V | head -1)" = "$have" ]; then
    echo "$DATA/nats was written by nats-server $recorded; $NATS_BIN is $have, older: refusing (run \`make deps\`, or point NATS_SERVER_BIN at $recorded or newer)" >&2
    exit 1
  fi
  echo "$have" > "$DATA/nats/server-version"
}

start_nats() {
  mkdir -p "$DATA/nats" "$RUN" "$LOGS"
  if alive nats; then return; fi
  check_nats_version
  if port_busy "127.0.0.1:$NATS_PORT"; then
    echo "port $NATS_PORT is taken (another crawlq stack, or CRAWLQ_LOCAL_NATS_PORT=...)" >&2; exit 1
  fi
  # sync_interval: always fsyncs before every acknowledgement, as in
  # production (Jepsen lost acknowledged writes under the 2-minute default).
  cat > "$DATA/nats/nats.conf" <<CONF
listen: 127.0.0.1:$NATS_PORT
jetstream { store_dir: "$DATA/nats", sync_interval: always }
CONF
  "$NATS_BIN" -c "$DATA/nats/nats.conf" >> "$LOGS/nats.log" 2>&1 &
  echo $! > "$RUN/nats.pid"; STARTED+=(nats)
  for _ in $(seq 1 100); do
    port_busy "127.0.0.1:$NATS_PORT" && return
    sleep 0.1
  done
  echo "nats-server did not start; see $LOGS/nats.log" >&2
  exit 1
}

start_service() { # name metrics-port
  local name=$1 port=$2
  if alive "$name"; then return; fi
  if port_busy "127.0.0.1:$port"; then
    echo "port $port ($name metrics) is taken: is another crawlq stack running?" >&2; exit 1
  fi
  CRAWLQ_METRICS_ADDR="127.0.0.1:$port" "$BIN" "$name" >> "$LOGS/$name.log" 2>&1 &
  echo $! > "$RUN/$name.pid"; STARTED+=("$name")
}

start_services() {
  start_service crawler 9101
  start_service extractor 9102
  start_service storage 9103
  for port in 9101 9102 9103; do
    for _ in $(seq 1 150); do
      curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
      sleep 0.2
    done
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 || { echo "service on :$port not ready; logs in $LOGS" >&2; exit 1; }
  done
  for name in "${STARTED[@]}"; do
    alive "$name" || { echo "$name exited at start; see $LOGS/$name.log" >&2; exit 1; }
  done
}

start_site() {
  if alive sample-site; then return; fi
  if port_busy "$SITE_ADDR"; then
    echo "$SITE_ADDR is taken (CRAWLQ_SITE_ADDR=... to move the sample site)" >&2; exit 1
  fi
  "$SITE_BIN" "$SITE_ADDR" >> "$LOGS/sample-site.log" 2>&1 &
  echo $! > "$RUN/sample-site.pid"
  for _ in $(seq 1 100); do curl -sf "http://$SITE_ADDR/robots.txt" >/dev/null 2>&1 && break; sleep 0.1; done
  echo "sample news site on http://$SITE_ADDR"
}

# Registers the sample site's feeds and sitemap, polled every `$1`.
register_feeds() {
  "$BIN" feeds add "http://$SITE_ADDR/rss.xml" --every "$1"
  "$BIN" feeds add "http://$SITE_ADDR/atom.xml" --every "$1"
  "$BIN" feeds add --sitemap "http://$SITE_ADDR/sitemap.xml" --every "$1"
}

stop_all() {
  for name in crawler extractor storage sample-site nats; do
    local pidfile="$RUN/$name.pid"
    [ -f "$pidfile" ] || continue
    local pid; pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    up)
      export CRAWLQ_HOST_DELAY="${CRAWLQ_HOST_DELAY:-100ms}"
      start_nats; start_services; start_site; register_feeds 1h
      echo "crawlq is up: archive $CRAWLQ_STORE_URL, logs $LOGS"
      echo "metrics: http://127.0.0.1:9101/metrics (crawler) :9102 (extractor) :9103 (storage)"
      echo "for crawlq commands in this shell:"
      echo "  export CRAWLQ_NATS_URL=$CRAWLQ_NATS_URL CRAWLQ_STORE_URL=$CRAWLQ_STORE_URL"
      ;;
    down) stop_all; echo "crawlq is down" ;;
    *) echo "usage: stack.sh up|down" >&2; exit 2 ;;
  esac
fi
