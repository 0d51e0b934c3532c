#!/usr/bin/python3
"""Write a TorchScript ResNet-18 (ImageNet layout, 1000 classes) for the extraction benchmarks.
The weights are random but seeded; BatchNorm running statistics are drawn away from the 0/1
defaults so that a wrong inference-mode BatchNorm would show up as a difference in the output.
usage: export_resnet18.py OUT.pt [--seed 0]"""
import argparse

import torch
import torchvision

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
torch.manual_seed(a.seed)
net = torchvision.models.resnet18(weights=None, num_classes=1000)
with torch.no_grad():
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
net.eval()
torch.jit.script(net).save(a.out)
print(a.out)
