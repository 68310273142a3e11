"""Renders the fault suite's ledgers (JSON lines) as a Markdown table."""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]
print("| scenario | submitted | stored | not modified | dead-lettered | lost | duplicates | corrupt | notes |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    l, x = r["ledger"], r["extra"]
    dead = sum(l["dead"].values())
    reasons = ", ".join(f"{k} {v}" for k, v in l["dead"].items())
    notes = [f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in x.items()]
    notes.append(f"redundant stored events={l['extra_events']}")
    if l.get("staging_leftovers"):
        notes.append(f"staging files left by kill -9={l['staging_leftovers']}")
    print(f"| {r['scenario']} | {l['submitted']} | {l['stored']} | {l['not_modified']} | "
          f"{dead}{' (' + reasons + ')' if reasons else ''} | {l['lost']} | {l['duplicates']} | "
          f"{l['corrupt']} | {'; '.join(notes)} |")
