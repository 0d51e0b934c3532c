#!/usr/bin/python3
"""Parity of a converted TorchScript model with the original tfjs model run in node.

usage: check_tfjs_parity.py TFJS_DIR MODEL.pt PHOTO_DIR [--tol 1e-4] [--json OUT.json]
Each photo is resized (PIL bilinear) to the model's input size and scaled to [0, 1];
the same float batch goes to tfjs (scripts/tfjs_predict.js, NHWC) and to the
TorchScript model (NCHW). Class probabilities: softmax of the TorchScript logits
against the tfjs model's softmax output. Exits 1 when the max abs difference > tol.
Needs NODE_PATH pointing at a node_modules with @tensorflow/tfjs (scripts/fetch_models.sh).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tfjs_dir")
    ap.add_argument("model")
    ap.add_argument("photos")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    extra = {"graft.json": ""}
    m = torch.jit.load(a.model, _extra_files=extra)
    meta = json.loads(extra["graft.json"])
    _, h, w = meta["input_shape"]
    files = sorted(f for f in os.listdir(a.photos) if f.lower().endswith((".png", ".jpg", ".jpeg")))
    x = np.stack([np.asarray(Image.open(os.path.join(a.photos, f)).convert("RGB").resize((w, h), Image.BILINEAR),
                             dtype=np.float32) / 255.0 for f in files])
    with tempfile.TemporaryDirectory() as tmp:
        fin, fout = os.path.join(tmp, "in.f32"), os.path.join(tmp, "out.f32")
        x.astype("<f4").tofile(fin)
        js = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tfjs_predict.js")
        r = subprocess.run(["node", js, a.tfjs_dir, fin, str(len(files)), str(h), str(w), "3", fout],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stderr.strip(), file=sys.stderr)
            sys.exit(1)
        ref = np.fromfile(fout, dtype="<f4").reshape(len(files), -1)
    with torch.no_grad():
        out = m(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
    probs = out.numpy() if meta.get("output", "logits") != "logits" else torch.softmax(out, 1).numpy()
    diff = float(np.abs(probs - ref).max())
    agree = int((probs.argmax(1) == ref.argmax(1)).sum())
    print(f"{a.model}: {len(files)} photos {h}x{w}, max |p_torchscript - p_tfjs| = {diff:.3g} "
          f"(tolerance {a.tol}), top-1 agrees on {agree}/{len(files)}")
    if a.json:
        json.dump({"model": a.model, "photos": files, "max_abs_diff": diff, "tol": a.tol, "top1_agree": agree,
                   "torchscript": probs.tolist(), "tfjs": ref.tolist()}, open(a.json, "w"), indent=1)
    sys.exit(0 if diff <= a.tol else 1)


if __name__ == "__main__":
    main()
