#!/usr/bin/env bash
# `make bench`, part 2: the whole pipeline on a generated news site against
# a Scrapy + trafilatura spider on the same pages, in the same run; growth
# at several sizes; and the ceilings of the parts (HTTP server, nats-server,
# parsing). Writes bench/work/pipeline.jsonl and bench/PIPELINE.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
WORK="$ROOT/bench/work"
SIZES="${BENCH_PAGES:-1000,10000,50000,10000-off,10000-object,10000-nowarc}"
BASELINE_PAGES="${BENCH_BASELINE_PAGES:-10000}"
cd "$ROOT"
mkdir -p "$WORK"
cargo build --release -q -p crawlq -p crawlq-testkit --bins
if ! "$WORK/venv/bin/python" -c "import scrapy, trafilatura" 2>/dev/null; then
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install -q "trafilatura==2.0.0" lxml_html_clean "scrapy==2.19.0"
fi
OUT="$WORK/pipeline.jsonl"
: > "$OUT"

# Scrapy on the same site and pages, first. On ext4 without a journal
# (this machine's disk) creating a file skips every inode freed in the last
# 60 s, or 6 min while the freed inodes' table blocks are still unwritten:
# a run soon after deleting a big archive spent twice the CPU archiving.
# So old output is removed, written out with `sync`, and the 60 s waited
# out; the crawlq runs below delete their archives only after the last one.
URLS="$WORK/urls.txt"
rm -rf "$WORK/scrapy-out" "$WORK/pages"
sync
sleep 65
coproc SITE { exec "$BIN/crawlq-news-site" 8 "$BASELINE_PAGES" "$URLS"; }
read -r _port <&"${SITE[0]}"
line=$("$WORK/venv/bin/python" tests/bench/scrapy_bench.py "$URLS" "$WORK/scrapy-out")
echo "{\"kind\": \"scrapy\", \"result\": $line}" >> "$OUT"
# The fair baseline uses the cores crawlq uses: one Scrapy process per
# core, the URLs split by host (so per-host politeness holds), all at once.
CORES="$(nproc)"
rm -rf "$WORK/scrapy-out"
python3 - "$URLS" "$CORES" "$WORK/urls-part" <<'PY'
import sys, urllib.parse
urls, n, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
hosts = sorted({urllib.parse.urlsplit(u.strip()).netloc for u in open(urls) if u.strip()})
parts = [open(f"{prefix}-{i}.txt", "w") for i in range(n)]
for u in open(urls):
    if u.strip():
        parts[hosts.index(urllib.parse.urlsplit(u.strip()).netloc) % n].write(u)
PY
pids=()
for i in $(seq 0 $((CORES - 1))); do
  "$WORK/venv/bin/python" tests/bench/scrapy_bench.py "$WORK/urls-part-$i.txt" "$WORK/scrapy-out" > "$WORK/scrapy-part-$i.json" &
  pids+=($!)
done
wait "${pids[@]}"
python3 - "$CORES" "$WORK" >> "$OUT" <<'PY'
import json, sys
n, work = int(sys.argv[1]), sys.argv[2]
runs = [json.loads(open(f"{work}/scrapy-part-{i}.json").read()) for i in range(n)]
pages, secs = sum(r["pages"] for r in runs), max(r["seconds"] for r in runs)
print(json.dumps({"kind": "scrapy_per_core", "result": {
    "processes": n, "pages": pages, "seconds": secs, "pages_per_s": pages / secs,
    "cpu_s": sum(r["cpu_s"] for r in runs), "peak_rss_mib": [r["peak_rss_mib"] for r in runs]}}))
PY
kill "$SITE_PID"; wait "$SITE_PID" 2>/dev/null || true

# crawlq pipeline at each size, then the HTTP and NATS ceilings.
BENCH_OUT="$OUT" BENCH_PAGES="$SIZES" CRAWLQ_BIN="$BIN/crawlq" \
  cargo test --release -q -p crawlq-e2e --test pipeline_bench -- --ignored --nocapture

# Parsing alone: one thread, 500 generated pages.
mkdir -p "$WORK/pages"
for n in $(seq 1 500); do "$BIN/crawlq-news-site" page "$n" > "$WORK/pages/$n.html"; done
rate=$("$BIN/crawlq" extract-bench "$WORK/pages" 2>&1 >/dev/null | sed -n 's/.*: \([0-9.]*\) pages\/s.*/\1/p')
echo "{\"kind\": \"parse_ceiling\", \"result\": {\"pages\": 500, \"pages_per_s_one_thread\": $rate}}" >> "$OUT"

python3 tests/bench/pipeline_report.py "$OUT" > "$ROOT/bench/PIPELINE.md"
cat "$ROOT/bench/PIPELINE.md"
