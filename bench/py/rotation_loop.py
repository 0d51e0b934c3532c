#!/usr/bin/python3
"""Idiomatic PyTorch rotation-prediction pretraining loop (Gidaris et al. 2018), the Python peer
of `graft pretrain --task rotation` in bench/pretrain_speed.sh.

Task: over Fashion-MNIST's 60,000 train images (labels ignored), 4 * N examples; example i is
image i // 4 turned counter-clockwise by 90 * (i % 4) degrees (torch.rot90 over the spatial
dims), and its label is i % 4.
Data, as a PyTorch user would write it: torchvision.datasets.FashionMNIST with ToTensor (images
in [0, 1]) wrapped in a small Dataset that turns the image, then augments it per example the
way graft does by default for 28x28 rotation pretraining: RandomCrop(28, padding=2) (zero
padding, graft's random-crop=28:2) followed by Normalize(0.5, 0.5) (graft's default preprocess
normalize=0.5:0.5). One DataLoader (batch 128, shuffle, drop_last=False, num_workers=--workers),
restarted when a pass ends (the warm-up steps push the timed ones just past one pass).
Network: the DANN paper's MNIST net on 1-channel input with 4 outputs:
  conv(1->32, 5x5) ReLU, maxpool 2, conv(32->48, 5x5) ReLU, maxpool 2, flatten (768),
  Linear(768, 100) ReLU, Linear(100, 100) ReLU, Linear(100, 4).
Step: cross-entropy, SGD lr 0.05 momentum 0.9, the learning rate set before each step to
lr * (1 + cos(pi * i / steps)) / 2 (graft's default cosine schedule, per step).

Timed: --steps iterations (default one epoch: ceil(4 * 60000 / 128) = 1875) after --warmup
untimed ones at schedule position 0 (which also absorb the DataLoader worker start-up), data
loading included. Prints one JSON line; images_per_s counts rotated examples (batch items).

usage: rotation_loop.py [--batch 128] [--threads 2] [--workers 2] [--steps 1875] [--warmup 5]
         [--lr 0.05] [--data DIR] [--seed 1]"""
import argparse
import gzip
import json
import math
import os
import shutil
import tempfile
import time

import torch
import torchvision
from torch import nn
from torchvision import transforms

CACHE = os.environ.get("GRAFT_DATA") or os.path.join(os.environ.get("HOME") or "/root", ".cache", "graft")
IDX_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def default_data_dir():
    """Where graft itself looks: its cache first, then Debian's dataset-fashion-mnist."""
    own = os.path.join(CACHE, "fashion-mnist")
    return own if os.path.isdir(own) else "/usr/share/datasets/fashion-mnist"


def fashion_root(folder):
    """torchvision (0.14) wants ROOT/FashionMNIST/raw/<uncompressed IDX files>, all four of
    them. Build that in a temporary folder: a link where the folder has a plain file, a
    decompressed copy where it only has the .gz (as Debian ships it)."""
    root = tempfile.mkdtemp(prefix="fashion-mnist-")
    raw = os.path.join(root, "FashionMNIST", "raw")
    os.makedirs(raw)
    for name in IDX_FILES:
        plain = os.path.join(os.path.abspath(folder), name)
        if os.path.isfile(plain):
            os.symlink(plain, os.path.join(raw, name))
        elif os.path.isfile(plain + ".gz"):
            with gzip.open(plain + ".gz", "rb") as src, open(os.path.join(raw, name), "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            shutil.rmtree(root, ignore_errors=True)
            raise FileNotFoundError(f"{folder}: neither {name} nor {name}.gz")
    return root


class Rotations(torch.utils.data.Dataset):
    """The rotation task over a dataset of (1, H, W) image tensors: item i is image i // 4 turned
    by 90 * (i % 4) degrees counter-clockwise, then passed through `augment`; label i % 4."""

    def __init__(self, images, augment):
        self.images = images
        self.augment = augment

    def __len__(self):
        return 4 * len(self.images)

    def __getitem__(self, i):
        x, _ = self.images[i // 4]
        k = i % 4
        if k:
            x = torch.rot90(x, k, (1, 2))
        return self.augment(x), k


def rotation_net(classes=4):
    return nn.Sequential(
        nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 48, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(768, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, classes))


def endless(loader):
    """Batches of loader for ever, starting a new pass (and new workers) when one ends."""
    while True:
        yield from loader


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--steps", type=int, default=None, help="timed steps (default: one epoch of the task)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data", default=default_data_dir(), help="Fashion-MNIST IDX folder (plain or .gz files)")
    a = p.parse_args()
    if a.batch < 1 or a.warmup < 0 or (a.steps is not None and a.steps < 1):
        p.error("--batch and --steps must be >= 1 and --warmup >= 0")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    root = fashion_root(a.data)
    try:
        images = torchvision.datasets.FashionMNIST(root, train=True, download=False, transform=transforms.ToTensor())
        augment = transforms.Compose([transforms.RandomCrop(28, padding=2),
                                      transforms.Normalize((0.5,), (0.5,))])
        task = Rotations(images, augment)
        steps = a.steps if a.steps is not None else math.ceil(len(task) / a.batch)
        batches = endless(torch.utils.data.DataLoader(task, batch_size=a.batch, shuffle=True, drop_last=False,
                                                      num_workers=a.workers))

        net = rotation_net()
        opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=0.9)
        ce = nn.CrossEntropyLoss()
        net.train()

        def step(i):
            """One iteration at cosine schedule position i / steps; returns (loss, batch size)."""
            for g in opt.param_groups:
                g["lr"] = a.lr * 0.5 * (1.0 + math.cos(math.pi * i / steps))
            x, y = next(batches)
            loss = ce(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item(), x.size(0)

        for _ in range(a.warmup):  # schedule position 0; not timed
            step(0)
        loss_sum = 0.0
        seen = 0
        t0 = time.perf_counter()
        for i in range(steps):
            lv, n = step(i)
            loss_sum += lv * n
            seen += n
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"impl": "pytorch", "steps": steps, "seconds": seconds, "images_per_s": seen / seconds,
                      "iters_per_s": steps / seconds, "batch": a.batch, "warmup": a.warmup, "threads": a.threads,
                      "workers": a.workers, "mean_loss": loss_sum / seen}))


if __name__ == "__main__":
    main()
