#!/usr/bin/python3
"""Tables of scripts/results/selfsup.sh: Fashion-MNIST test accuracy (mean ± std over seeds)
of a linear probe per layer and of fine-tuning, for each initialisation and label budget;
then semi-supervised vs supervised-only training on the same labels.

usage: summarize_selfsup.py OUT"""
import glob
import json
import os
import re
import statistics
import sys

INITS = ["random", "exemplar", "rotation", "mnist"]
NAMES = {"random": "random initialisation", "exemplar": "exemplar pretraining (unlabelled)",
         "rotation": "rotation pretraining (unlabelled)", "mnist": "supervised on MNIST (another dataset)"}


def ms(v):
    if not v:
        return "n/a"
    return f"{100 * statistics.mean(v):.2f} ± {100 * (statistics.stdev(v) if len(v) > 1 else 0):.2f}"


def main():
    out = sys.argv[1]
    probe = {}
    layers = []
    for i in INITS:
        f = os.path.join(out, f"probe-{i}", "results.json")
        if os.path.exists(f):
            for c in json.load(open(f))["cells"]:
                probe[(i, c["labels_per_class"], c["layer"])] = (c["mean"], c["std"], c["seeds"])
                if c["layer"] not in layers:
                    layers.append(c["layer"])
    ft = {}
    for d in glob.glob(os.path.join(out, "finetune-*-n*-s*", "result.json")):
        m = re.match(r"finetune-(\w+)-n(\d+)-s(\d+)", os.path.basename(os.path.dirname(d)))
        ft.setdefault((m.group(1), int(m.group(2))), []).append(json.load(open(d))["test"]["accuracy"])
    budgets = sorted({k[1] for k in probe} | {k[1] for k in ft})
    for n in budgets:
        print(f"\n{n} labels per class:\n")
        print("| initialisation | " + " | ".join(f"linear probe {l}" for l in layers) + " | fine-tuning (seeds) |")
        print("|---|" + "---|" * (len(layers) + 1))
        for i in INITS:
            cells = []
            for l in layers:
                c = probe.get((i, n, l))
                cells.append(f"{100 * c[0]:.2f} ± {100 * c[1]:.2f}" if c else "n/a")
            f = ft.get((i, n), [])
            print(f"| {NAMES[i]} | " + " | ".join(cells) + f" | {ms(f)} ({len(f)}) |")
    semi = {}
    for d in glob.glob(os.path.join(out, "semisup-*-n*-s*", "semisup.json")):
        m = re.match(r"semisup-([\w-]+)-n(\d+)-s(\d+)", os.path.basename(os.path.dirname(d)))
        j = json.load(open(d))
        semi.setdefault((m.group(1), int(m.group(2))), []).append(j)
    if semi:
        print("\nSemi-supervised vs supervised-only (random initialisation, same labels, steps and weak augmentation):\n")
        print("| labels per class | method | test accuracy (seeds) | unlabelled draws above threshold |")
        print("|---|---|---|---|")
        for (m, n), js in sorted(semi.items(), key=lambda kv: (kv[0][1], kv[0][0] != "supervised")):
            acc = [j["test_accuracy"] for j in js]
            mask = [j["mask_rate"] for j in js if "mask_rate" in j]
            print(f"| {n} | {m} | {ms(acc)} ({len(acc)}) | {ms(mask) if mask else '-'} |")


if __name__ == "__main__":
    main()
