#!/usr/bin/env bash
# `make extraction-check`: the extraction regression check. Runs crawlq on
# the three dev sets in production mode and fails when any set loses more
# than 0.005 F1 against bench/extraction-baseline.json or gains an empty
# page. The dev sets live outside the repository: without them the check
# says so and skips. CRAWLQ_BENCH_DIR points elsewhere; `update` rewrites
# the baseline (commit it with the change that earned it).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DIR="${CRAWLQ_BENCH_DIR:-$ROOT/../shared/bench/extraction}"
if [ ! -f "$DIR/score.py" ]; then
  echo "extraction-check SKIPPED: no dev sets at $DIR (set CRAWLQ_BENCH_DIR to the folder holding dev/, wcxb-dev/, zh-dev/ and score.py)"
  exit 0
fi
cd "$ROOT"
cargo build --release -q -p crawlq
export CRAWLQ_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/crawlq"
[ -x "$CRAWLQ_BIN" ] || { echo "extraction-check: $CRAWLQ_BIN missing after the build" >&2; exit 1; }
mode=check
[ "${1:-}" = update ] && mode=baseline
python3 tests/bench/extraction.py "$mode" "$DIR" bench/extraction-baseline.json
