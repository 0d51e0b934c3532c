#!/usr/bin/python3
"""Where bf16 extraction of the real MobileNetV2 loses agreement, and how that compares with
the network's own sensitivity in fp32 (the reading of scripts/results/precision_extract.sh).

Takes the folder that precision_extract.sh wrote (photos/, mobilenet_v2-fp32.npy and
mobilenet_v2-bf16.npy from graft) and, with Debian's PyTorch:
  1. checks that the Python pipeline reproduces graft's fp32 and bf16 features (cosine);
  2. the cosine per stage, fp32 against bf16 autocast with channels-last (PyTorch's own bf16),
     for the photos where graft's bf16 agrees least;
  3. bf16 for the stages before S and fp32 from S on, for several S;
  4. fp32 alone with the input perturbed: rounded to bf16, relative noise of 2^-9, and
     +-1 grey level (the size of a JPEG decoder difference).
usage: bf16_sensitivity.py DIR [--model PATH] [--threads N]"""
import argparse
import glob
import os

import numpy as np
import torch
from PIL import Image

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("--model", default=os.path.expanduser("~/.cache/graft/models/mobilenet_v2.pt"))
p.add_argument("--threads", type=int, default=1)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
net = torch.jit.load(a.model).eval()
kids = []
for name, child in net.named_children():
    kids.append((name, child))
    if name == "pool":
        break
names = [n for n, _ in kids]
files = sorted(glob.glob(os.path.join(a.dir, "photos", "*", "*")))  # graft's order
# graft's preprocessing for this file: resize to 224x224 (the crops already are), [0, 1] RGB
X = torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
                 for f in files])
G32 = torch.from_numpy(np.load(os.path.join(a.dir, "mobilenet_v2-fp32.npy")).reshape(len(files), -1))
G16 = torch.from_numpy(np.load(os.path.join(a.dir, "mobilenet_v2-bf16.npy")).reshape(len(files), -1))


def cos(u, v):
    return (u * v).sum(1) / u.norm(dim=1) / v.norm(dim=1)


def run(x, bf16_before="", keep=False):
    """Stages in order up to pool; bf16 autocast (channels-last) for those before bf16_before."""
    outs, h = [], x.contiguous(memory_format=torch.channels_last) if bf16_before else x
    with torch.no_grad():
        for name, child in kids:
            bf = bool(bf16_before) and names.index(name) < names.index(bf16_before)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf):
                h = child(h if bf else h.float())
            if keep:
                outs.append(h.float().flatten(1))
    return outs if keep else h.float().flatten(1)


def batched(f):
    return torch.cat([f(X[i:i + 32]) for i in range(0, len(X), 32)])


def line(label, c):
    print(f"{label}: min {c.min():.5f}  mean {c.mean():.5f}  worst photos {torch.argsort(c)[:3].tolist()}")


line("graft bf16 vs graft fp32", cos(G16, G32))
line("python fp32 vs graft fp32", cos(batched(run), G32))
line("python bf16 vs graft bf16", cos(batched(lambda x: run(x, "pool")), G16))
worst = torch.argsort(cos(G16, G32))[:2].tolist()
for i in worst:
    f = run(X[i:i + 1], keep=True)
    b = run(X[i:i + 1], "pool", keep=True)
    print(f"photo {i}, cosine per stage:", " ".join(f"{n} {float(cos(u, v)):.4f}" for n, u, v in zip(names, f, b)))
for start in ["block_16", "block_15", "block_13"]:
    line(f"bf16 before {start}, fp32 from it, vs graft fp32", cos(batched(lambda x: run(x, start)), G32))
for label, perturb in [("fp32, input rounded to bf16", lambda x: x.bfloat16().float()),
                       ("fp32, input x (1 + 2^-9 noise)", lambda x: x * (1 + 2 ** -9 * torch.randn_like(x))),
                       ("fp32, input +-1 grey level", lambda x: x + torch.randint(-1, 2, x.shape) / 255.0)]:
    line(label + ", vs graft fp32", cos(batched(lambda x: run(perturb(x))), G32))
