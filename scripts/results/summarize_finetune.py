#!/usr/bin/python3
"""Summarise scripts/results/finetune.sh: test accuracy (%) per method and label budget,
mean ± std over seeds, best per budget in bold; plus the epochs kept by early stopping."""
import glob
import json
import os
import re
import statistics
import sys

ORDER = ["scratch", "offtheshelf", "head-only", "freeze-fc1", "freeze-pool2", "freeze-pool1", "full",
         "discriminative", "l2sp"]
LABEL = {
    "scratch": "from scratch (same net, random init)",
    "offtheshelf": "off-the-shelf linear SVM on pool2",
    "head-only": "head only (frozen through fc2)",
    "freeze-fc1": "frozen through fc1 (fc2 + head train)",
    "freeze-pool2": "frozen through pool2 (fc1, fc2, head)",
    "freeze-pool1": "frozen through pool1 (conv2 and up)",
    "full": "full fine-tuning",
    "discriminative": "discriminative LRs (layer decay 0.5)",
    "l2sp": "L2-SP (alpha 0.1, beta 0.01)",
}


def main(out):
    acc, kept = {}, {}
    for f in glob.glob(os.path.join(out, "*-n*-s*", "result.json")):
        m = re.search(r"/([a-z0-9-]+)-n(\d+)-s(\d+)/result.json$", f)
        r = json.load(open(f))
        acc.setdefault((m.group(1), int(m.group(2))), []).append(r["test"]["accuracy"])
        kept.setdefault((m.group(1), int(m.group(2))), []).append(r.get("best_epoch", 0))
    ots = os.path.join(out, "offtheshelf", "results.json")
    if os.path.exists(ots):
        for run in json.load(open(ots))["runs"]:
            acc.setdefault(("offtheshelf", run["labels_per_class"]), []).append(run["accuracy"])
    budgets = sorted({b for _, b in acc})
    best = {b: max((statistics.mean(v), m) for (m, bb), v in acc.items() if bb == b)[1] for b in budgets}
    print("| method | " + " | ".join(f"{b} labels/class" for b in budgets) + " |")
    print("|---|" + "---|" * len(budgets))
    for m in ORDER:
        cells = []
        for b in budgets:
            v = acc.get((m, b))
            if not v:
                cells.append("-")
                continue
            s = f"{100 * statistics.mean(v):.2f} ± {100 * (statistics.stdev(v) if len(v) > 1 else 0):.2f}"
            cells.append(f"**{s}**" if best[b] == m else s)
        print(f"| {LABEL[m]} | " + " | ".join(cells) + " |")
    n = {len(v) for v in acc.values()}
    print(f"\nseeds per cell: {sorted(n)}")
    print("\nEpoch kept by early stopping (mean over seeds):\n")
    print("| method | " + " | ".join(f"{b}" for b in budgets) + " |")
    print("|---|" + "---|" * len(budgets))
    for m in ORDER:
        if m == "offtheshelf":
            continue
        print(f"| {m} | " + " | ".join(f"{statistics.mean(kept[(m, b)]):.1f}" if (m, b) in kept else "-" for b in budgets) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/finetune")
