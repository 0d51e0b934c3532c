#!/usr/bin/python3
"""Idiomatic PyTorch fine-tuning, the Python peer of `graft finetune` in bench/finetune_speed.sh.

The pretrained source (a TorchScript file from make_source.py) is cut after fc2: its layers
conv1..fc2 are rebuilt as ordinary eager modules carrying the source's weights, and a new,
seeded Linear(100, 5) head goes on top. The target task is Fashion-MNIST classes 5-9
(relabelled 0..4), read with torchvision and a DataLoader, as a PyTorch user would write it.

  --mode full    every layer trains (Adam).
  --mode frozen  conv1..fc1 are frozen (no gradients, eval mode) and simply run under
                 torch.no_grad() on every batch of every epoch, i.e. recomputed each epoch;
                 fc2 and the head train (Adam).

Timed: each epoch (wall seconds, data loading included) and the whole training, from just
before the first batch of epoch 1 to the end of the last epoch. The test accuracy on
Fashion-MNIST test classes 5-9 is measured afterwards and not timed.

usage: finetune.py --source SRC.pt --mode full|frozen [--epochs 1] [--batch 64] [--threads 2]
         [--workers 2] [--per-class N] [--seed 1] [--lr 1e-3] [--data-root DIR]
Prints one JSON line."""
import argparse
import json
import os
import shutil
import sys
import time

import torch
import torchvision
from torch import nn
from torchvision import transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_source import DannMnist, torchvision_root  # noqa: E402

FIRST = 5  # target classes FIRST..FIRST+4


def relabel(y):
    return y - FIRST


def target_subset(ds, per_class, seed):
    """Indices of the target classes; with per_class, a seeded draw of that many per class."""
    targets = torch.as_tensor(ds.targets)
    if per_class is None:
        return torch.nonzero((targets >= FIRST) & (targets < FIRST + 5)).flatten().tolist()
    gen = torch.Generator().manual_seed(seed)
    idx = []
    for c in range(FIRST, FIRST + 5):
        of_c = torch.nonzero(targets == c).flatten()
        idx += of_c[torch.randperm(len(of_c), generator=gen)[:per_class]].tolist()
    return sorted(idx)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--source", required=True)
    p.add_argument("--mode", choices=["full", "frozen"], required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--per-class", type=int, default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--raw", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--data-root", default=None, help="torchvision root to create or reuse")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    root = torchvision_root(a.raw, a.data_root)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    train = torchvision.datasets.FashionMNIST(root, train=True, download=False, transform=tf,
                                              target_transform=relabel)
    test = torchvision.datasets.FashionMNIST(root, train=False, download=False, transform=tf,
                                             target_transform=relabel)
    train = torch.utils.data.Subset(train, target_subset(train, a.per_class, a.seed))
    test = torch.utils.data.Subset(test, target_subset(test, None, a.seed))
    loader = torch.utils.data.DataLoader(train, batch_size=a.batch, shuffle=True, num_workers=a.workers)

    # Pretrained layers: the source's weights in eager modules of the same definition.
    src = DannMnist(5)
    src.load_state_dict(torch.jit.load(a.source).state_dict())
    head = nn.Linear(100, 5)  # seeded by manual_seed above
    lower = nn.Sequential(src.conv1, src.pool1, src.conv2, src.pool2, nn.Flatten(), src.fc1)
    if a.mode == "full":
        net = nn.Sequential(lower, src.fc2, head)
        frozen, trained = None, net
    else:
        frozen, trained = lower, nn.Sequential(src.fc2, head)
        for q in frozen.parameters():
            q.requires_grad_(False)
        net = nn.Sequential(frozen, trained)
    opt = torch.optim.Adam(trained.parameters(), lr=a.lr)
    lossf = nn.CrossEntropyLoss()

    epoch_seconds = []
    t0 = time.perf_counter()
    for _ in range(a.epochs):
        te = time.perf_counter()
        trained.train()
        if frozen is not None:
            frozen.eval()
        for x, y in loader:
            if frozen is not None:
                with torch.no_grad():
                    x = frozen(x)  # recomputed every epoch: the plain loop
            opt.zero_grad()
            loss = lossf(trained(x), y)
            loss.backward()
            opt.step()
        epoch_seconds.append(time.perf_counter() - te)
    total = time.perf_counter() - t0

    net.eval()
    correct = 0
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(test, batch_size=1000, num_workers=a.workers):
            correct += (net(x).argmax(1) == y).sum().item()
    if a.data_root is None:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"impl": "pytorch", "mode": a.mode, "epochs": a.epochs, "epoch_seconds": epoch_seconds,
                      "total_seconds": total, "test_accuracy": correct / len(test), "train_size": len(train)}))


if __name__ == "__main__":
    main()
