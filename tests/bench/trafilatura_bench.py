#!/usr/bin/env python3
"""Baseline for `make bench`: trafilatura on the same pages, one thread.

Usage: trafilatura_bench.py DIR PREDICTIONS.json [--truth GROUND_TRUTH.json]
With --truth each page is given its real URL (production mode, as crawlq
gets it) and the predictions carry title and published date too.
Prints one JSON line: pages, seconds (extraction only), pages_per_s, peak_rss_mib.
"""
import gzip
import json
import os
import resource
import sys
import time

import trafilatura


def main(d, out, truth_path=None):
    truth = json.load(open(truth_path)) if truth_path else {}
    files = sorted(f for f in os.listdir(d) if f.endswith(".html") or f.endswith(".html.gz"))
    preds, spent = {}, 0.0
    for f in files:
        raw = open(os.path.join(d, f), "rb").read()
        if f.endswith(".gz"):
            raw = gzip.decompress(raw)
        html = raw.decode("utf-8", "replace")
        stem = f[: -len(".html.gz")] if f.endswith(".gz") else f[: -len(".html")]
        url = (truth.get(stem) or {}).get("url")
        t = time.perf_counter()
        if truth_path:
            doc = trafilatura.bare_extraction(html, url=url, with_metadata=True)
            if doc is not None and not isinstance(doc, dict):
                doc = doc.as_dict()
            doc = doc or {}
            pred = {"articleBody": doc.get("text") or "", "title": doc.get("title") or ""}
            if doc.get("date"):
                pred["published"] = doc["date"]
        else:
            pred = {"articleBody": trafilatura.extract(html) or ""}
        spent += time.perf_counter() - t
        preds[stem] = pred
    json.dump(preds, open(out, "w"))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"pages": len(files), "seconds": spent, "pages_per_s": len(files) / spent, "peak_rss_mib": rss}))


if __name__ == "__main__":
    args = sys.argv[1:]
    truth = None
    if "--truth" in args:
        i = args.index("--truth")
        truth = args[i + 1]
        del args[i:i + 2]
    main(args[0], args[1], truth)
