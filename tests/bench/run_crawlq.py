#!/usr/bin/env python3
"""Runs `crawlq extract-bench DIR` and reports its own timing plus peak RSS.

Usage: run_crawlq.py CRAWLQ DIR PREDICTIONS.json [GROUND_TRUTH.json]
With a ground truth the run is in production mode (real URLs).
"""
import json
import re
import resource
import subprocess
import sys

crawlq, d, out = sys.argv[1:4]
truth = ["--truth", sys.argv[4]] if len(sys.argv) > 4 else []
proc = subprocess.run([crawlq, "extract-bench", d, *truth], capture_output=True, text=True, check=True)
open(out, "w").write(proc.stdout)
m = re.search(r"extracted (\d+) pages in ([0-9.]+) s", proc.stderr)
pages, secs = int(m.group(1)), float(m.group(2))
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"pages": pages, "seconds": secs, "pages_per_s": pages / secs, "peak_rss_mib": rss}))
