#!/usr/bin/env python3
# Usage: scripts/stall_fraction.py QOSSIM_BINARY OUT_DIR SEEDS LOSS
# Stall statistic over seeds: per run, the longest gap between successive
# deliveries at the subscriber (from the first publish; an undelivered tail
# counts until the end of the run), messages delivered, connections lost.
import csv, subprocess, sys, os, statistics
binary, out, nseeds, p = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
scen = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scenarios", "fidelity", "mqtt-qos0.toml")
stalls, lost_runs, deliv = 0, 0, []
for seed in range(1, nseeds + 1):
    d = f"{out}/s{seed}"
    subprocess.run([binary, "run", scen, "--out", d, "--seed", str(seed), "--quiet",
                    "--set", f"links.pub--broker.loss.p={p}", "--set", f"links.sub--broker.loss.p={p}"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = list(csv.DictReader(open(f"{d}/messages.csv")))
    t = sorted(float(r["delivered_at_ms"]) for r in rows if r["delivered_at_ms"])
    start = min(float(r["sent_at_ms"]) for r in rows)
    end = 25000.0 + 60000.0
    pts = [start] + t + ([end] if len(t) < len(rows) else [])
    gap = max(b - a for a, b in zip(pts, pts[1:]))
    if gap > 20000: stalls += 1
    conns = list(csv.DictReader(open(f"{d}/connections.csv")))
    if any(c["outcome"] not in ("open", "closed") for c in conns): lost_runs += 1
    deliv.append(len(t) / len(rows))
print(f"{binary}: p={p} seeds={nseeds} stall>20s: {stalls}/{nseeds}; runs with a lost/reset connection: {lost_runs}; delivered mean {statistics.mean(deliv):.4f} min {min(deliv):.3f}")
