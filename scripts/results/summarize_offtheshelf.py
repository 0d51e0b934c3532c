#!/usr/bin/python3
"""Summarise scripts/results/offtheshelf.sh: per-layer tables and the comparison of
the best layer's SVM against raw pixels and training from scratch (mean ± std over seeds)."""
import glob
import json
import os
import re
import statistics
import sys


def ms(values):
    m = 100 * statistics.mean(values)
    s = 100 * statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{m:.2f} ± {s:.2f}"


def main(out):
    budgets, rows = None, []
    for src, label in (("fmnist04", "Fashion-MNIST 0-4"), ("mnist", "MNIST")):
        path = os.path.join(out, f"transfer-{src}", "results.json")
        if not os.path.exists(path):
            continue
        res = json.load(open(path))
        budgets = sorted({c["labels_per_class"] for c in res["cells"]})
        print(f"### Source: {label} (dann_mnist), per layer\n")
        print(open(os.path.join(out, f"transfer-{src}", "table.md")).read())
        if src == "fmnist04" or not rows:
            acc = {b: [r["accuracy"] for r in res["runs"] if r["layer"] == "input" and r["labels_per_class"] == b] for b in budgets}
            rows.append(("linear SVM on raw pixels", acc))
        best = {b: next(x["layer"] for x in res["best"] if x["labels_per_class"] == b) for b in budgets}
        acc = {b: [r["accuracy"] for r in res["runs"] if r["layer"] == best[b] and r["labels_per_class"] == b] for b in budgets}
        name = f"off-the-shelf SVM, source {label}, best layer (" + ", ".join(f"{b}: {best[b]}" for b in budgets) + ")"
        rows.append((name, acc))
    scratch = {}
    for d in glob.glob(os.path.join(out, "scratch-n*-s*")):
        m = re.search(r"scratch-n(\d+)-s(\d+)$", d)
        f = os.path.join(d, "result.json")
        if m and os.path.exists(f):
            scratch.setdefault(int(m.group(1)), []).append(json.load(open(f))["test"]["accuracy"])
    if scratch:
        rows.append(("dann_mnist from scratch on the same labels", scratch))
    if budgets is None:
        budgets = sorted(scratch)
    print("### Comparison (Fashion-MNIST 5-9 test accuracy, %, mean ± std over seeds)\n")
    print("| method | " + " | ".join(f"{b} labels/class" for b in budgets) + " |")
    print("|---|" + "---|" * len(budgets))
    for name, acc in rows:
        cells = [f"{ms(acc[b])} (n={len(acc[b])})" if acc.get(b) else "-" for b in budgets]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/offtheshelf")
