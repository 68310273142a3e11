#!/usr/bin/env python3
"""Extraction quality on the three dev sets, in production mode.

Each page is given its real URL from the ground truth and the tool makes
the decision the service makes (a page taken for a listing or dead-lettered
scores as empty). Scored with the sets' own score.py.

Usage:
  extraction.py run   TOOL DIR OUT.json   TOOL is `crawlq:/path/to/crawlq` or
                                          `trafilatura:/path/to/python`
  extraction.py check DIR BASELINE.json   crawlq from $CRAWLQ_BIN; fails when a set
                                          loses more than 0.005 F1 or gains an empty page
  extraction.py baseline DIR BASELINE.json  rewrites the baseline from a run

DIR is the benchmark folder (holding dev/, wcxb-dev/, zh-dev/, score.py).
Python 3 standard library only.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SETS = [("dev", []), ("wcxb-dev", []), ("zh-dev", ["--cjk"])]
F1_SLACK = 0.005


def run_tool(tool, d, name, out):
    kind, path = tool.split(":", 1)
    html, truth = f"{d}/{name}/html", f"{d}/{name}/ground-truth.json"
    if kind == "crawlq":
        proc = subprocess.run([path, "extract-bench", html, "--truth", truth],
                              capture_output=True, text=True, check=True)
        open(out, "w").write(proc.stdout)
        m = re.search(r"extracted (\d+) pages in ([0-9.]+) s", proc.stderr)
        pages, secs = int(m.group(1)), float(m.group(2))
    else:
        proc = subprocess.run([path, f"{HERE}/trafilatura_bench.py", html, out, "--truth", truth],
                              capture_output=True, text=True, check=True)
        r = json.loads(proc.stdout)
        pages, secs = r["pages"], r["seconds"]
    return pages, secs


def score(d, name, flags, preds):
    proc = subprocess.run([sys.executable, f"{d}/score.py", f"{d}/{name}/ground-truth.json", preds, "--json", *flags],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def measure(tool, d):
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags in SETS:
            preds = f"{tmp}/{name}.json"
            pages, secs = run_tool(tool, d, name, preds)
            m = score(d, name, flags, preds)
            m["pages_per_s"] = pages / secs if secs else 0.0
            out[name] = m
    return out


def table(results):
    keys = ["f1", "precision", "recall", "empty", "title_exact", "date_day"]
    lines = ["| set | tool | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for name, _ in SETS:
        for tool, res in results.items():
            m = res[name]
            cells = []
            for k in keys:
                v = m.get(k)
                cells.append("" if v is None else (str(v) if k == "empty" else f"{v:.3f}"))
            lines.append(f"| {name} | {tool} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[1]
    if cmd == "run":
        res = measure(argv[2], argv[3])
        json.dump(res, open(argv[4], "w"), indent=1)
        print(table({argv[2].split(":")[0]: res}))
        return 0
    d, baseline = argv[2], argv[3]
    crawlq = os.environ.get("CRAWLQ_BIN", "crawlq")
    res = measure(f"crawlq:{crawlq}", d)
    print(table({"crawlq": res}))
    if cmd == "baseline":
        keep = {n: {k: res[n][k] for k in ("f1", "empty", "title_exact", "date_day") if k in res[n]} for n, _ in SETS}
        json.dump(keep, open(baseline, "w"), indent=1)
        open(baseline, "a").write("\n")
        print(f"wrote {baseline}")
        return 0
    base = json.load(open(baseline))
    failures = []
    for name, _ in SETS:
        b, m = base[name], res[name]
        if m["f1"] < b["f1"] - F1_SLACK:
            failures.append(f"{name}: F1 {m['f1']:.3f} is below the baseline {b['f1']:.3f} by more than {F1_SLACK}")
        if m["empty"] > b["empty"]:
            failures.append(f"{name}: {m['empty']} empty pages, the baseline has {b['empty']}")
        print(f"{name}: F1 {m['f1']:.3f} (baseline {b['f1']:.3f}), empty {m['empty']} (baseline {b['empty']})")
    if failures:
        print("extraction regression:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print("extraction check passed: no set lost more than 0.005 F1 or gained an empty page")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
