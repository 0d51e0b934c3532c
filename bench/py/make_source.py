#!/usr/bin/python3
"""Pretrained source network for the fine-tuning speed benchmark (bench/finetune_speed.sh).

The DANN paper's MNIST architecture, written as a module whose top-level children are the
layers graft cuts by name (conv1, pool1, conv2, pool2, fc1, fc2, fc3; graft adds the flatten
between pool2 and fc1 itself). It is trained on Fashion-MNIST classes 0-4 (labels 0..4) with
Adam 1e-3, batch 128, seed 0, inputs scaled to [-1, 1], then scripted and saved, so that graft
and the Python peer (finetune.py) start fine-tuning from the very same weights.

usage: make_source.py OUT.pt [--epochs 2] [--threads 2] [--limit N]
         [--raw /usr/share/datasets/fashion-mnist] [--data-root DIR]
The test accuracy on classes 0-4 goes to stderr; stdout gets one JSON line."""
import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
import time

import torch
import torchvision
from torch import nn

FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def torchvision_root(raw, root):
    """Return a folder laid out as torchvision wants (ROOT/FashionMNIST/raw/<uncompressed idx>).
    Debian ships the files gzipped and torchvision 0.14 only looks for the plain names, so
    they are unpacked (once: an existing root is reused)."""
    if root is None:
        root = tempfile.mkdtemp(prefix="fmnist-")
    dst = os.path.join(root, "FashionMNIST", "raw")
    os.makedirs(dst, exist_ok=True)
    for f in FILES:
        target = os.path.join(dst, f)
        if os.path.exists(target):
            continue
        plain = os.path.join(raw, f)
        if os.path.exists(plain):
            os.symlink(os.path.abspath(plain), target)
        else:
            with gzip.open(plain + ".gz", "rb") as src, open(target + ".part", "wb") as out:
                shutil.copyfileobj(src, out)
            os.replace(target + ".part", target)
    return root


class DannMnist(nn.Module):
    """conv(5x5,32)-pool-conv(5x5,48)-pool-fc100-fc100-fc(classes), ReLU throughout."""

    def __init__(self, classes=5):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU())
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Sequential(nn.Conv2d(32, 48, 5), nn.ReLU())
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Sequential(nn.Linear(768, 100), nn.ReLU())
        self.fc2 = nn.Sequential(nn.Linear(100, 100), nn.ReLU())
        self.fc3 = nn.Linear(100, classes)

    def forward(self, x):
        x = self.pool2(self.conv2(self.pool1(self.conv1(x))))
        return self.fc3(self.fc2(self.fc1(x.flatten(1))))


def subset(ds, lo, hi, limit=None):
    """Images (N,1,28,28) in [-1,1] and labels relabelled to 0.. for classes lo..hi."""
    keep = (ds.targets >= lo) & (ds.targets <= hi)
    x = ds.data[keep].unsqueeze(1).float().div(255).sub(0.5).div(0.5)
    y = ds.targets[keep] - lo
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x, y


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only (smoke tests)")
    p.add_argument("--raw", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--data-root", default=None, help="torchvision root to create or reuse")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    root = torchvision_root(a.raw, a.data_root)
    train = torchvision.datasets.FashionMNIST(root, train=True, download=False)
    test = torchvision.datasets.FashionMNIST(root, train=False, download=False)
    x, y = subset(train, 0, 4, a.limit)
    tx, ty = subset(test, 0, 4)

    # Not a timed run: the source only has to be a sensible pretrained network, so the
    # training set is kept in memory and shuffled by a seeded permutation.
    net = DannMnist(5)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    net.train()
    for _ in range(a.epochs):
        for idx in torch.randperm(len(y), generator=gen).split(128):
            opt.zero_grad()
            lossf(net(x[idx]), y[idx]).backward()
            opt.step()
    seconds = time.perf_counter() - t0

    net.eval()
    with torch.no_grad():
        correct = sum((net(bx).argmax(1) == by).sum().item() for bx, by in zip(tx.split(1000), ty.split(1000)))
    acc = correct / len(ty)
    print(f"source: Fashion-MNIST classes 0-4, {a.epochs} epochs on {len(y)} images, "
          f"test accuracy {acc:.4f}", file=sys.stderr)
    torch.jit.script(net).save(a.out)
    if a.data_root is None:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"out": a.out, "epochs": a.epochs, "train_size": len(y),
                      "train_seconds": seconds, "test_accuracy": acc}))


if __name__ == "__main__":
    main()
