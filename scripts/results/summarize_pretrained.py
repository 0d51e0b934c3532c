#!/usr/bin/python3
"""Summarise scripts/results/pretrained.sh: per-stage tables of the real MobileNetV2,
the comparison with pixels / the small source network / training from scratch, the
fine-tuning runs and the LogME/LEEP layer study (mean ± std over seeds)."""
import glob
import json
import os
import re
import statistics
import sys

TARGETS = (("fmnist59", "Fashion-MNIST classes 5-9"), ("mnistm", "MNIST-M-style (10 classes)"))


def ms(values):
    m = 100 * statistics.mean(values)
    s = 100 * statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{m:.2f} ± {s:.2f}"


def acc_of(res, layer, budget):
    return [r["accuracy"] for r in res["runs"] if r["layer"] == layer and r["labels_per_class"] == budget]


def main(out):
    for t, label in TARGETS:
        path = os.path.join(out, f"mnv2-{t}", "results.json")
        if not os.path.exists(path):
            continue
        res = json.load(open(path))
        budgets = sorted({c["labels_per_class"] for c in res["cells"]})
        print(f"### {label}: MobileNetV2 stages + linear SVM\n")
        print("Test accuracy (%) mean ± std over seeds, beside the mean 5-fold CV accuracy on the labelled "
              "training images; `*` = the layer CV chose.\n")
        print(open(os.path.join(out, f"mnv2-{t}", "table.md")).read())
        chosen = {b["labels_per_class"]: b["layer"] for b in res["best"]}
        rows = [("linear SVM on raw pixels", {b: acc_of(res, "input", b) for b in budgets}),
                ("MobileNetV2, layer chosen by CV (" + ", ".join(f"{b}: {chosen[b]}" for b in budgets) + ")",
                 {b: acc_of(res, chosen[b], b) for b in budgets})]
        small = os.path.join(out, f"small-{t}", "results.json")
        if os.path.exists(small):
            sr = json.load(open(small))
            sc = {b["labels_per_class"]: b["layer"] for b in sr["best"]}
            src = "Fashion-MNIST 0-4" if t == "fmnist59" else "MNIST"
            rows.append((f"small source network (dann_mnist on {src}), layer chosen by CV ("
                         + ", ".join(f"{b}: {sc.get(b)}" for b in budgets) + ")",
                         {b: acc_of(sr, sc.get(b), b) for b in budgets}))
        scratch = {}
        for d in glob.glob(os.path.join(out, f"scratch-{t}-n*-s*")):
            m = re.search(r"-n(\d+)-s(\d+)$", d)
            f = os.path.join(d, "result.json")
            if m and os.path.exists(f):
                scratch.setdefault(int(m.group(1)), []).append(json.load(open(f))["test"]["accuracy"])
        if scratch:
            rows.append(("dann_mnist from scratch on the same labels", scratch))
        ft = []
        for d in sorted(glob.glob(os.path.join(out, f"finetune-{t}-s*"))):
            f = os.path.join(d, "result.json")
            if os.path.exists(f):
                ft.append(json.load(open(f))["test"]["accuracy"])
        if ft:
            rows.append(("MobileNetV2 fine-tuned (block_13..last_conv at 0.1x, new head), 100 labels/class",
                         {100: ft}))
        print(f"**Comparison on {label}** (test accuracy %, mean ± std, n = runs)\n")
        print("| method | " + " | ".join(f"{b} labels/class" for b in budgets) + " |")
        print("|---|" + "---|" * len(budgets))
        for name, acc in rows:
            cells = [f"{ms(acc[b])} (n={len(acc[b])})" if acc.get(b) else "-" for b in budgets]
            print(f"| {name} | " + " | ".join(cells) + " |")
        print()
        lay = os.path.join(out, f"layers-{t}", "results.json")
        if os.path.exists(lay):
            lr = json.load(open(lay))
            print(f"**LogME / LEEP against the linear probe per stage ({label}, 100 labels/class)**\n")
            print("| layer | dim | probe (%) | LogME |\n|---|---|---|---|")
            for l in lr["layers"]:
                print(f"| {l['layer']} | {l['dim']} | {100 * l['probe_mean']:.2f} ± {100 * l['probe_std']:.2f} | "
                      f"{l['logme']:.3f} |")
            print(f"\nSpearman(LogME, probe) over the stages: {lr.get('spearman_logme_probe', float('nan')):.3f}; "
                  f"LEEP of the network's own 5-class output: {lr.get('leep', float('nan'))}\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/pretrained")
