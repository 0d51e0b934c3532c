#!/usr/bin/python3
"""Python peer of bench_image_folder: torchvision ImageFolder + DataLoader, same transforms."""
import argparse
import json
import time

import torch
import torchvision
from torchvision import transforms

p = argparse.ArgumentParser()
p.add_argument("--root", required=True)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--workers", type=int, default=2)
p.add_argument("--epochs", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(1)
tf = transforms.Compose([transforms.Resize(128), transforms.CenterCrop(112), transforms.RandomHorizontalFlip(),
                         transforms.ToTensor(),
                         transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
ds = torchvision.datasets.ImageFolder(a.root, transform=tf)
loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers)
best = 1e30
n = 0
for _ in range(a.epochs):
    t0 = time.perf_counter()
    n = 0
    for x, y in loader:
        n += len(y)
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"impl": "torchvision", "images": n, "workers": a.workers, "images_per_s": n / best}))
