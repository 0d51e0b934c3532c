#!/usr/bin/python3
"""Idiomatic PyTorch epoch: torchvision MNIST + DataLoader + the DANN MNIST network.

usage: train_epoch.py MNIST_RAW_DIR [--workers 2] [--threads 2] [--batch 128] [--device cpu|cuda]
         [--precision fp32|bf16|fp16] [--limit N] [--augment]
--augment: each image padded by 2 and cropped back to 28x28 at a random place, then rotated by
a random angle in [-10, 10] degrees (graft's --augment random-crop=28:2,rotate=10).
Prints one JSON line with the epoch's wall time (data pipeline included)."""
import argparse
import json
import os
import tempfile
import time

import torch
import torchvision
from torch import nn
from torchvision import transforms

import device_peer

p = argparse.ArgumentParser()
p.add_argument("raw")
p.add_argument("--workers", type=int, default=2)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--limit", type=int, default=0, help="the first N training images only (0: all)")
p.add_argument("--augment", action="store_true", help="random crop (padding 2) and rotation (10 degrees)")
device_peer.add_args(p)
a = p.parse_args()
peer = device_peer.Peer(a)
dev, scaler = peer.dev, peer.scaler
torch.set_num_threads(a.threads)
torch.manual_seed(0)

# torchvision expects ROOT/MNIST/raw/<idx files>; link the cached ones there.
root = tempfile.mkdtemp()
os.makedirs(os.path.join(root, "MNIST", "raw"))
for f in os.listdir(a.raw):
    os.symlink(os.path.join(os.path.abspath(a.raw), f), os.path.join(root, "MNIST", "raw", f))
augment = [transforms.RandomCrop(28, padding=2), transforms.RandomRotation(10)] if a.augment else []
ds = torchvision.datasets.MNIST(root, train=True, download=False,
                                transform=transforms.Compose(augment + [transforms.ToTensor(),
                                                                        transforms.Normalize((0.5,), (0.5,))]))
if a.limit > 0:
    ds = torch.utils.data.Subset(ds, range(min(a.limit, len(ds))))
loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers,
                                     pin_memory=dev.type == "cuda")
net = nn.Sequential(
    nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 48, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
    nn.Linear(768, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10)).to(dev)
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
lossf = nn.CrossEntropyLoss()
t0 = time.perf_counter()
n = correct = 0
for x, y in loader:
    x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
    opt.zero_grad()
    with peer.autocast():
        out = net(x)
    loss = lossf(out.float(), y)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    n += len(y)
    correct += (out.argmax(1) == y).sum().item()
s = time.perf_counter() - t0
print(json.dumps({"impl": "pytorch", "epoch_seconds": s, "images": n, "train_acc": correct / n}))
