#!/usr/bin/env python3
"""Baseline for `make bench`: trafilatura on the same pages, one thread.

Usage: trafilatura_bench.py DIR PREDICTIONS.json
Prints one JSON line: pages, seconds (extraction only), pages_per_s, peak_rss_mib.
"""
import gzip
import json
import os
import resource
import sys
import time

import trafilatura


def main(d, out):
    files = sorted(f for f in os.listdir(d) if f.endswith(".html") or f.endswith(".html.gz"))
    preds, spent = {}, 0.0
    for f in files:
        raw = open(os.path.join(d, f), "rb").read()
        if f.endswith(".gz"):
            raw = gzip.decompress(raw)
        html = raw.decode("utf-8", "replace")
        t = time.perf_counter()
        text = trafilatura.extract(html) or ""
        spent += time.perf_counter() - t
        stem = f[: -len(".html.gz")] if f.endswith(".gz") else f[: -len(".html")]
        preds[stem] = {"articleBody": text}
    json.dump(preds, open(out, "w"))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"pages": len(files), "seconds": spent, "pages_per_s": len(files) / spent, "peak_rss_mib": rss}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
