#!/usr/bin/python3
"""Per-layer means from the progress lines of a `graft transfer` run (for runs cut short:
every finished (budget, seed, layer) line counts). usage: summarize_pretrained_logs.py LOG"""
import re
import statistics
import sys
from collections import defaultdict

acc, cv, order = defaultdict(list), defaultdict(list), []
for line in open(sys.argv[1]):
    m = re.search(r"budget (\S+)/class\s+seed (\d+)\s+layer (\S+) \((\d+) features\).*CV accuracy ([\d.]+)%\s+"
                  r"test accuracy ([\d.]+)%", line)
    if not m:
        continue
    key = (m[1], m[3])
    if m[3] not in order:
        order.append(m[3])
    acc[key].append(float(m[6]))
    cv[key].append(float(m[5]))
budgets = sorted({b for b, _ in acc}, key=int)
print("| layer | " + " | ".join(f"{b}/class test | CV | seeds" for b in budgets) + " |")
print("|---|" + "---|---|---|" * len(budgets))
for l in order:
    cells = []
    for b in budgets:
        a = acc.get((b, l), [])
        if not a:
            cells.append("- | - | 0")
            continue
        s = statistics.stdev(a) if len(a) > 1 else 0.0
        cells.append(f"{statistics.mean(a):.2f} ± {s:.2f} | {statistics.mean(cv[(b, l)]):.1f} | {len(a)}")
    print(f"| {l} | " + " | ".join(cells) + " |")
for b in budgets:
    k = min(len(cv[(b, l)]) for l in order if (b, l) in cv)  # seeds that every layer finished
    best = max((l for l in order if (b, l) in cv), key=lambda l: statistics.mean(cv[(b, l)][:k]))
    print(f"\nCV choice at {b}/class (highest mean CV accuracy over the {k} seed(s) every layer finished): {best}")
