#!/usr/bin/python3
"""Python peer of bench_extract: ResNet-18 features up to and including the global average
pool (the 'avgpool' layer, flattened; fc is not run), inference mode, fixed random batch.
  eager: torchvision's resnet18 with the weights of the TorchScript file loaded into it
  jit:   the TorchScript module itself, run child by child up to avgpool
usage: extract_speed.py --model FILE.pt [--batch 16] [--iters 10] [--warmup 2] [--threads 2]
                        [--size 224] [--mode eager|jit]"""
import argparse
import json
import time

import torch
import torchvision

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--batch", type=int, default=16)
p.add_argument("--iters", type=int, default=10)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--size", type=int, default=224)
p.add_argument("--mode", choices=("eager", "jit"), default="eager")
a = p.parse_args()
torch.set_num_threads(a.threads)

scripted = torch.jit.load(a.model, map_location="cpu")
if a.mode == "eager":
    net = torchvision.models.resnet18()
    net.load_state_dict(scripted.state_dict())
    del scripted
else:
    net = scripted
net.eval()

# The stages that make up the 'avgpool' features, in execution order; fc and anything
# after avgpool is left out.
stages = []
for name, child in net.named_children():
    stages.append(child)
    if name == "avgpool":
        break
else:
    raise SystemExit("extract_speed.py: %s has no child named 'avgpool'" % a.model)

torch.manual_seed(0)
x = torch.randn(a.batch, 3, a.size, a.size)


def features(t):
    for s in stages:
        t = s(t)
    return torch.flatten(t, 1)


with torch.no_grad():
    for _ in range(a.warmup):
        features(x)
    t0 = time.perf_counter()
    for _ in range(a.iters):
        out = features(x)
    s = time.perf_counter() - t0
assert out.shape == (a.batch, 512), out.shape
print(json.dumps({"impl": "pytorch", "model": "resnet18", "layer": "avgpool", "batch": a.batch, "size": a.size,
                  "images_per_s": a.batch * a.iters / s, "ms_per_batch": 1000 * s / a.iters,
                  "mode": a.mode, "threads": a.threads}))
