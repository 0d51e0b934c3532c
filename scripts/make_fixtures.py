#!/usr/bin/python3
"""Generate TorchScript test fixtures with Debian's python3-torch/torchvision.

Writes into OUT_DIR (default tests/fixtures/generated):
  resnet_tiny.pt         torchvision ResNet (BasicBlock, [1,1,1,1]) scripted, random weights
  resnet_tiny_input.npy  a fixed input batch (2,3,32,32)
  resnet_tiny_<layer>.npy  Python's activations after layer2, layer4, avgpool (flattened) and fc
  mobilenet.pt, mobilenet_input.npy, mobilenet_out.npy, mobilenet_features3.npy (a dotted tap)
                         torchvision MobileNetV2 (width 0.25), whose forward() pools and
                         flattens between its children 'features' and 'classifier'
  resnet18.pt            torchvision ResNet-18 (random weights, perturbed BatchNorm statistics) scripted
  resnet18_input.npy     a fixed input batch (2,3,224,224)
  resnet18_<layer>.npy   the eager (unscripted) torchvision model's activations after layer2,
                         layer4 and avgpool, flattened: the off-the-shelf features graft must equal
  scripted_fn.pt         a module whose forward() is not its children in order (taps refused)

graft never runs Python: this script only makes fixtures that the C++ tests compare against.
"""
import os
import sys

import numpy as np
import torch
import torchvision


def save(path, arr):
    np.save(path, np.ascontiguousarray(arr))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "generated")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)

    net = torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1], num_classes=10)
    net.eval()
    # Non-trivial BatchNorm statistics so eval-mode outputs test the buffers too.
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 32, 32)
    scripted = torch.jit.script(net)
    scripted.save(os.path.join(out, "resnet_tiny.pt"))
    save(os.path.join(out, "resnet_tiny_input.npy"), x.numpy())
    with torch.no_grad():
        h = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        h = net.layer1(h)
        h = net.layer2(h)
        save(os.path.join(out, "resnet_tiny_layer2.npy"), h.numpy())
        h = net.layer4(net.layer3(h))
        save(os.path.join(out, "resnet_tiny_layer4.npy"), h.numpy())
        h = net.avgpool(h)
        save(os.path.join(out, "resnet_tiny_avgpool.npy"), h.numpy())
        save(os.path.join(out, "resnet_tiny_fc.npy"), net(x).numpy())

    mob = torchvision.models.mobilenet_v2(width_mult=0.25, num_classes=5)
    mob.eval()
    xm = torch.randn(2, 3, 64, 64)
    torch.jit.script(mob).save(os.path.join(out, "mobilenet.pt"))
    save(os.path.join(out, "mobilenet_input.npy"), xm.numpy())
    with torch.no_grad():
        save(os.path.join(out, "mobilenet_out.npy"), mob(xm).numpy())
        # a dotted tap: the output of features[3] (inside the Sequential 'features'), and of
        # the first part of features[4] (a Sequential inside an InvertedResidual: refused)
        save(os.path.join(out, "mobilenet_features3.npy"), mob.features[:4](xm).flatten(1).numpy())

    r18 = torchvision.models.resnet18(num_classes=1000)
    r18.eval()
    for m in r18.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    torch.jit.script(r18).save(os.path.join(out, "resnet18.pt"))
    x18 = torch.randn(2, 3, 224, 224)
    save(os.path.join(out, "resnet18_input.npy"), x18.numpy())
    with torch.no_grad():
        h = r18.maxpool(r18.relu(r18.bn1(r18.conv1(x18))))
        h = r18.layer2(r18.layer1(h))
        save(os.path.join(out, "resnet18_layer2.npy"), h.flatten(1).numpy())
        h = r18.layer4(r18.layer3(h))
        save(os.path.join(out, "resnet18_layer4.npy"), h.flatten(1).numpy())
        save(os.path.join(out, "resnet18_avgpool.npy"), r18.avgpool(h).flatten(1).numpy())

    class Twisted(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(4, 4)
            self.b = torch.nn.Linear(4, 3)

        def forward(self, x):
            return self.b(self.a(x) * 2.0 + x)

    torch.jit.script(Twisted()).save(os.path.join(out, "scripted_fn.pt"))
    print("fixtures written to", os.path.abspath(out))


if __name__ == "__main__":
    main()
