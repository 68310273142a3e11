#!/usr/bin/env bash
# Local crawlq stack: nats-server with JetStream under ./data/nats, the
# three services as separate processes writing to ./data/archive, logs under
# ./data/logs. Sourced by run.sh; `stack.sh up|down` for make up / make down.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA="${CRAWLQ_DATA:-$ROOT/data}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${CRAWLQ_BIN:-$TARGET/release/crawlq}"
NATS_BIN="${NATS_SERVER_BIN:-$ROOT/.tools/bin/nats-server}"
for f in "$BIN" "$NATS_BIN"; do
  [ -x "$f" ] || { echo "missing $f: run \`make build\` and \`make deps\` (or \`make run\`, which does both)" >&2; exit 1; }
done
NATS_PORT="${CRAWLQ_LOCAL_NATS_PORT:-14222}"
export CRAWLQ_NATS_URL="${CRAWLQ_NATS_URL:-nats://127.0.0.1:$NATS_PORT}"
export CRAWLQ_STORE_URL="${CRAWLQ_STORE_URL:-$DATA/archive}"
RUN="$DATA/run"
LOGS="$DATA/logs"

start_nats() {
  mkdir -p "$DATA/nats" "$RUN" "$LOGS"
  if [ -f "$RUN/nats.pid" ] && kill -0 "$(cat "$RUN/nats.pid")" 2>/dev/null; then return; fi
  # sync_interval: always fsyncs before every acknowledgement, as in
  # production (Jepsen lost acknowledged writes under the 2-minute default).
  cat > "$DATA/nats/nats.conf" <<CONF
listen: 127.0.0.1:$NATS_PORT
jetstream { store_dir: "$DATA/nats", sync_interval: always }
CONF
  "$NATS_BIN" -c "$DATA/nats/nats.conf" >> "$LOGS/nats.log" 2>&1 &
  echo $! > "$RUN/nats.pid"
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$NATS_PORT") 2>/dev/null && return
    sleep 0.1
  done
  echo "nats-server did not start; see $LOGS/nats.log" >&2
  exit 1
}

start_service() { # name metrics-port
  local name=$1 port=$2
  if [ -f "$RUN/$name.pid" ] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then return; fi
  CRAWLQ_METRICS_ADDR="127.0.0.1:$port" "$BIN" "$name" >> "$LOGS/$name.log" 2>&1 &
  echo $! > "$RUN/$name.pid"
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
      start_nats; start_services
      echo "crawlq is up: NATS $CRAWLQ_NATS_URL, archive $CRAWLQ_STORE_URL, logs $LOGS"
      echo "metrics: http://127.0.0.1:9101/metrics (crawler) :9102 (extractor) :9103 (storage)"
      ;;
    down) stop_all; echo "crawlq is down" ;;
    *) echo "usage: stack.sh up|down" >&2; exit 2 ;;
  esac
fi
