#!/usr/bin/python3
"""Idiomatic PyTorch on a folder of photos, the Python peer of `graft extract` and
`graft finetune` with their default options in bench/photos_e2e.sh. Run as a whole process
(the script times nothing itself; the benchmark times the process from start to exit).

The network is a TorchScript ResNet-18 (bench/py/export_resnet18.py); its children run in
order up to `avgpool` (512 features), as a user of a TorchScript backbone writes it.
Images: torchvision ImageFolder with ToTensor + Normalize(0.5, 0.5) (graft's default
preprocessing for TorchScript models), a DataLoader with --batch and --workers.

  extract   inference mode, features written to --out as .npy (float32).
  finetune  the same trunk plus a new seeded Linear(512, classes) head, every layer trained
            with Adam (lr 1e-3) and a cosine schedule per step, 10% of the images held out
            (seeded) and evaluated after each epoch; the weights of the epoch with the lowest
            validation loss are kept and saved to --out with torch.save (graft finetune's
            defaults, --epochs aside).

usage: photos_loop.py extract|finetune --model M.pt --root DIR --out FILE [--batch 32]
         [--workers 2] [--threads 2] [--epochs 2] [--seed 1] [--device cpu|cuda]
         [--precision fp32|bf16|fp16]"""
import argparse
import copy
import math

import numpy as np
import torch
import torchvision
from torch import nn
from torchvision import transforms

import device_peer

p = argparse.ArgumentParser()
p.add_argument("mode", choices=["extract", "finetune"])
p.add_argument("--model", required=True)
p.add_argument("--root", required=True)
p.add_argument("--out", required=True)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--workers", type=int, default=2)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--seed", type=int, default=1)
device_peer.add_args(p)
a = p.parse_args()
peer = device_peer.Peer(a)
dev, autocast = peer.dev, peer.autocast
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

net = torch.jit.load(a.model, map_location=dev)
trunk = []
for name, child in net.named_children():
    trunk.append(child)
    if name == "avgpool":
        break
trunk = nn.Sequential(*trunk, nn.Flatten())
tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)])
ds = torchvision.datasets.ImageFolder(a.root, transform=tf)

if a.mode == "extract":
    trunk.eval()
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=False, num_workers=a.workers,
                                     pin_memory=dev.type == "cuda")
    feats = []
    with torch.inference_mode(), autocast():
        for x, _ in dl:
            feats.append(trunk(x.to(dev, non_blocking=True)).float().cpu())
    np.save(a.out, torch.cat(feats).numpy())
else:
    n_val = max(1, len(ds) // 10)
    train_ds, val_ds = torch.utils.data.random_split(
        ds, [len(ds) - n_val, n_val], generator=torch.Generator().manual_seed(a.seed))
    pin = dev.type == "cuda"
    train_dl = torch.utils.data.DataLoader(train_ds, batch_size=a.batch, shuffle=True, num_workers=a.workers,
                                           pin_memory=pin)
    val_dl = torch.utils.data.DataLoader(val_ds, batch_size=a.batch, shuffle=False, num_workers=a.workers,
                                         pin_memory=pin)
    model = nn.Sequential(trunk, nn.Linear(512, len(ds.classes))).to(dev)
    scaler = peer.scaler
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a.epochs * len(train_dl))
    loss_fn = nn.CrossEntropyLoss()
    best, best_state = math.inf, None
    for epoch in range(a.epochs):
        model.train()
        for x, y in train_dl:
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            opt.zero_grad()
            with autocast():
                out = model(x)
            scaler.scale(loss_fn(out.float(), y)).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
        model.eval()
        total = 0.0
        with torch.no_grad(), autocast():
            for x, y in val_dl:
                x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
                total += loss_fn(model(x).float(), y).item() * x.size(0)
        if total / n_val < best:
            best, best_state = total / n_val, copy.deepcopy(model.state_dict())
    torch.save(best_state, a.out)
