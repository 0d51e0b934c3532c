#!/usr/bin/python3
"""Python peer of bench_train_step: the DANN MNIST network, same batch, SGD, threads."""
import argparse
import json
import time

import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=128)
p.add_argument("--steps", type=int, default=200)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--channels", type=int, default=1)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
net = nn.Sequential(
    nn.Conv2d(a.channels, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 48, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
    nn.Linear(768, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10))
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
x = torch.randn(a.batch, a.channels, 28, 28)
y = torch.randint(0, 10, (a.batch,))
lossf = nn.CrossEntropyLoss()


def step():
    opt.zero_grad()
    loss = lossf(net(x), y)
    loss.backward()
    opt.step()
    return loss.item()


for _ in range(20):
    step()
t0 = time.perf_counter()
for _ in range(a.steps):
    step()
s = time.perf_counter() - t0
print(json.dumps({"impl": "pytorch", "model": "dann_mnist", "batch": a.batch, "threads": a.threads,
                  "ms_per_step": 1000 * s / a.steps}))
