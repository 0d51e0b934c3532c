#!/usr/bin/python3
"""Idiomatic PyTorch DANN training loop, the Python peer of `graft adapt --method dann` in
bench/dann_speed.sh.

Network: the DANN paper's MNIST architecture on 3-channel 28x28 input.
  features:  conv(3->32, 5x5) ReLU, maxpool 2, conv(32->48, 5x5) ReLU, maxpool 2, flatten (768)
  labels:    Linear(768, 100) ReLU, Linear(100, 100) ReLU, Linear(100, 10)
  domain:    gradient reversal (an autograd.Function), then Linear(768, 1024) ReLU Dropout(0.5),
             Linear(1024, 1024) ReLU Dropout(0.5), Linear(1024, 1); BCE with logits,
             source = 0, target = 1.
Data, as a PyTorch user would write it:
  source  MNIST train through torchvision.datasets.MNIST (gray copied to 3 channels, ToTensor,
          Normalize 0.5/0.5),
  target  the MNIST-M-style train set made by `graft data make mnistm` (IDX files: images
          (N, 28, 28, 3) uint8), held in memory by a small Dataset that returns one
          normalised float tensor per item.
  Two DataLoaders (shuffle, drop_last, num_workers=--workers) are walked in pairs; whichever
  runs out is restarted (with --steps up to 937 at batch 64 neither does).
Step: source and target batches are concatenated and go through the network once; the loss is
the source cross-entropy plus the domain loss, with the paper's schedules for p = step/steps:
lambda = 2/(1+exp(-10p)) - 1 and lr = 0.01/(1+10p)^0.75; SGD with momentum 0.9 over the label
network and the domain classifier.

Timed: --steps iterations after --warmup untimed ones (which also absorb the DataLoader worker
start-up), data loading included. Prints one JSON line.

usage: dann_loop.py [--batch 64] [--threads 2] [--workers 2] [--steps 843] [--warmup 5]
         [--mnist DIR] [--mnistm DIR] [--seed 1] [--channels-last] [--device cpu|cuda]
         [--precision fp32|bf16|fp16] [--resident]"""
import argparse
import json
import math
import os
import shutil
import tempfile
import time

import numpy as np
import torch
import torchvision
from torch import nn
from torchvision import transforms

import device_peer

CACHE = os.environ.get("GRAFT_DATA") or os.path.join(os.environ.get("HOME") or "/root", ".cache", "graft")
MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def read_idx(path):
    """An uncompressed IDX file as a numpy array: magic 0 0 <type> <ndim>, then ndim big-endian
    int32 sizes, then the data. Only unsigned bytes (type 0x08) occur here."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


class ColourDigits(torch.utils.data.Dataset):
    """MNIST-M-style images (N, H, W, 3) uint8 kept in memory; an item is a (3, H, W) float
    tensor scaled to [-1, 1] and its label (unused by the adaptation)."""

    def __init__(self, folder, split="train"):
        prefix = "train" if split == "train" else "t10k"
        self.images = torch.from_numpy(read_idx(os.path.join(folder, f"{prefix}-images-idx4-ubyte")).copy())
        self.labels = torch.from_numpy(read_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte")).astype(np.int64))
        if self.images.dim() != 4 or self.images.size(3) != 3:
            raise ValueError(f"{folder}: expected (N, H, W, 3) images, got {tuple(self.images.shape)}")

    def __len__(self):
        return self.images.size(0)

    def __getitem__(self, i):
        x = self.images[i].permute(2, 0, 1).float().div(255).sub(0.5).div(0.5)
        return x, self.labels[i]


def mnist_root(raw):
    """torchvision wants ROOT/MNIST/raw/<idx files>: a temporary root of links to the cache."""
    root = tempfile.mkdtemp(prefix="mnist-")
    os.makedirs(os.path.join(root, "MNIST", "raw"))
    for f in MNIST_FILES:
        os.symlink(os.path.join(os.path.abspath(raw), f), os.path.join(root, "MNIST", "raw", f))
    return root


class ReverseGrad(torch.autograd.Function):
    """Identity going forward; the gradient comes back negated and scaled by lambda."""

    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.neg() * ctx.lam, None


class Dann(nn.Module):
    def __init__(self, classes=10, hidden=1024):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 48, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.classifier = nn.Sequential(
            nn.Linear(768, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, classes))
        self.domain = nn.Sequential(
            nn.Linear(768, hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, 1))

    def forward(self, x, lam):
        f = self.features(x)
        return self.classifier(f), self.domain(ReverseGrad.apply(f, lam)).squeeze(1)


def resident(images, labels, batch, dev):
    """Batches of tensors held on dev for ever, a new random order each pass (drop_last)."""
    images, labels = images.to(dev), labels.to(dev)
    while True:
        order = torch.randperm(images.size(0), device=dev)
        for k in range(images.size(0) // batch):
            idx = order[k * batch:(k + 1) * batch]
            yield images[idx], labels[idx]


def endless(loader):
    """Batches of loader for ever, starting a new pass (and new workers) when one ends."""
    while True:
        yield from loader


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--steps", type=int, default=843)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=1)
    device_peer.add_args(p)
    p.add_argument("--resident", action="store_true",
                   help="both datasets held as tensors on --device, batches drawn there (no DataLoader)")
    p.add_argument("--channels-last", action="store_true",
                   help="convolutions and batches in channels-last format (what graft does by default on the CPU)")
    p.add_argument("--mnist", default=os.path.join(CACHE, "mnist"), help="raw MNIST IDX folder")
    p.add_argument("--mnistm", default=os.path.join(CACHE, "mnistm"), help="MNIST-M-style IDX folder")
    a = p.parse_args()
    if a.steps < 1 or a.warmup < 0:
        p.error("--steps must be >= 1 and --warmup >= 0")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    root = mnist_root(a.mnist)
    try:
        source = torchvision.datasets.MNIST(root, train=True, download=False, transform=transforms.Compose([
            transforms.Grayscale(num_output_channels=3), transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]))
        target = ColourDigits(a.mnistm, "train")
        opts = dict(batch_size=a.batch, shuffle=True, drop_last=True, num_workers=a.workers)
        peer = device_peer.Peer(a)
        dev, scaler = peer.dev, peer.scaler
        if a.resident:
            src_batches = resident(source.data.float().div(255).sub(0.5).div(0.5).unsqueeze(1).expand(-1, 3, -1, -1),
                                   source.targets, a.batch, dev)
            tgt_batches = resident(target.images.permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5),
                                   target.labels, a.batch, dev)
        else:
            opts["pin_memory"] = dev.type == "cuda"
            src_batches = endless(torch.utils.data.DataLoader(source, **opts))
            tgt_batches = endless(torch.utils.data.DataLoader(target, **opts))

        net = Dann().to(dev)
        fmt = torch.channels_last if a.channels_last else torch.contiguous_format
        net = net.to(memory_format=fmt)
        opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=0.9)
        ce = nn.CrossEntropyLoss()
        bce = nn.BCEWithLogitsLoss()
        net.train()

        def step(i):
            """One DANN iteration at schedule position i / steps; returns the classification loss."""
            prog = i / a.steps
            lam = 2.0 / (1.0 + math.exp(-10.0 * prog)) - 1.0
            for g in opt.param_groups:
                g["lr"] = a.lr / (1.0 + 10.0 * prog) ** 0.75
            xs, ys = next(src_batches)
            xt, _ = next(tgt_batches)
            xs, ys, xt = (t.to(dev, non_blocking=True) for t in (xs, ys, xt))
            n = xs.size(0)
            with peer.autocast():
                logits, dom = net(torch.cat([xs, xt]).contiguous(memory_format=fmt), lam)
            domain_labels = torch.cat([torch.zeros(n, device=dev), torch.ones(xt.size(0), device=dev)])
            cls = ce(logits[:n].float(), ys)
            loss = cls + bce(dom.float(), domain_labels)
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            return cls.item()

        for _ in range(a.warmup):  # schedule position 0; not timed
            step(0)
        cls_sum = 0.0
        t0 = time.perf_counter()
        for i in range(a.steps):
            cls_sum += step(i)
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"impl": "pytorch", "steps": a.steps, "seconds": seconds, "iters_per_s": a.steps / seconds,
                      "batch": a.batch, "warmup": a.warmup, "threads": a.threads, "workers": a.workers,
                      "mean_loss_cls": cls_sum / a.steps}))


if __name__ == "__main__":
    main()
