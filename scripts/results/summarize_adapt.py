#!/usr/bin/python3
"""Tables of a `graft adapt` comparison (scripts/results/mnistm.sh): target test accuracy of
each method, mean ± std over seeds, for the checkpoint each label-free criterion picks, the
oracle best epoch, and the share of the source-only -> train-on-target gap each closes.

usage: summarize_adapt.py OUT   (OUT/<method>/seed-*/metrics.jsonl, OUT/train-on-target/seed-*/result.json)"""
import glob
import json
import os
import statistics
import sys

METHODS = ["source-only", "adabn", "dann", "cdan", "coral", "mmd", "self-train", "mcc", "mdd", "shot", "tent"]
SOURCE_FREE = {"shot", "tent"}
CRITERIA = [("snd", "target_snd"), ("im", "target_im"), ("source-val", "source_val_acc"), ("last", "epoch")]


def ms(v):
    if not v:
        return "n/a"
    return f"{100 * statistics.mean(v):.2f} ± {100 * (statistics.stdev(v) if len(v) > 1 else 0):.2f}"


def pick(lines, key, tol):
    """The oracle accuracy of the epoch graft picks by key: the first with the highest value
    among epochs whose held-out source accuracy is within tol of the run's best (tol applies
    to the target criteria snd and im only). Source-free runs have no source accuracy: no band,
    and no choice by source validation."""
    lines = [e for e in lines if "oracle_target_acc" in e]
    if "source_val_acc" not in lines[0]:
        if key == "source_val_acc":
            return None
    elif key in ("target_snd", "target_im"):
        floor = max(e["source_val_acc"] for e in lines) - tol - 1e-12
        lines = [e for e in lines if e["source_val_acc"] >= floor]
    best = max(lines, key=lambda e: (e[key], -e["epoch"]))
    return best["oracle_target_acc"]


def main():
    out = sys.argv[1]
    rows = {}
    for m in METHODS:
        runs = sorted(glob.glob(os.path.join(out, m, "seed-*", "metrics.jsonl")))
        unfinished = [f for f in runs if not os.path.exists(os.path.join(os.path.dirname(f), "result.json"))]
        if unfinished:  # a run still going (or killed): its epochs so far would pass for a result
            print(f"(not counted, no result.json yet: {', '.join(os.path.dirname(f) for f in unfinished)})")
            runs = [f for f in runs if f not in unfinished]
        if not runs:
            continue
        per = {c: [] for c, _ in CRITERIA}
        per["oracle"] = []
        per["source-bn"] = []
        for f in runs:
            lines = [json.loads(l) for l in open(f) if l.strip()]
            res = os.path.join(os.path.dirname(f), "result.json")
            tol = json.load(open(res))["config"].get("source_tolerance", 0.02) if os.path.exists(res) else 0.02
            lines = [e for e in lines if "oracle_target_acc" in e]
            for c, key in CRITERIA:
                v = pick(lines, key, tol)
                if v is not None:
                    per[c].append(v)
            per["oracle"].append(max(e["oracle_target_acc"] for e in lines))
            if "oracle_target_acc_source_bn" in lines[-1]:
                per["source-bn"].append(pick([dict(e, oracle_target_acc=e["oracle_target_acc_source_bn"]) for e in lines],
                                             "target_im", tol))
        rows[m] = (len(runs), per)
    tot = [json.load(open(f))["test"]["accuracy"]
           for f in sorted(glob.glob(os.path.join(out, "train-on-target", "seed-*", "result.json")))]
    print("Source-free rows (shot, tent) start from each seed's source-only model and read only the target.")
    print()
    print("| method | seeds | selected by IM (default) | by SND | by source val | last epoch | oracle: best epoch |")
    print("|---|---|---|---|---|---|---|")
    for m, (n, per) in rows.items():
        print(f"| {m} | {n} | {ms(per['im'])} | {ms(per['snd'])} | {ms(per['source-val'])} | {ms(per['last'])} "
              f"| {ms(per['oracle'])} |")
        if per["source-bn"]:
            print(f"| (dann_mnist_bn, source BN statistics) | {n} | {ms(per['source-bn'])} | | | | |")
    if tot:
        print(f"| train on target (upper bound) | {len(tot)} | {ms(tot)} | | | | |")
    src = rows.get("source-only")
    if src and tot:
        lo, hi = statistics.mean(src[1]["im"]), statistics.mean(tot)
        print()
        print("Share of the gap from source-only (selected by IM) to train-on-target each method closes:")
        for m, (n, per) in rows.items():
            shares = ", ".join(f"{c} {100 * (statistics.mean(per[c]) - lo) / (hi - lo):.0f}%"
                               for c in ["im", "snd", "source-val", "last", "oracle"] if per[c])
            print(f"- {m}: {shares}")


if __name__ == "__main__":
    main()
