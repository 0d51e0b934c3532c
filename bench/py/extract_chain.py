#!/usr/bin/python3
"""Python peer of bench_extract for any TorchScript chain (e.g. the converted MobileNetV2):
its children run in order up to and including LAYER, output flattened, inference mode,
fixed random batch. --freeze also applies torch.jit.freeze + optimize_for_inference
(what graft does to each child).
usage: extract_chain.py --model FILE.pt --layer pool [--batch 16] [--iters 10] [--warmup 2]
                        [--threads 1] [--size 224] [--freeze]"""
import argparse
import json
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--layer", required=True)
p.add_argument("--batch", type=int, default=16)
p.add_argument("--iters", type=int, default=10)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--size", type=int, default=224)
p.add_argument("--freeze", action="store_true")
a = p.parse_args()
torch.set_num_threads(a.threads)
net = torch.jit.load(a.model, map_location="cpu").eval()
stages = []
for name, child in net.named_children():
    stages.append(torch.jit.optimize_for_inference(torch.jit.freeze(child.eval())) if a.freeze else child)
    if name == a.layer:
        break
x = torch.rand(a.batch, 3, a.size, a.size, generator=torch.Generator().manual_seed(0))


def run():
    h = x
    for s in stages:
        h = s(h)
    return h.flatten(1)


with torch.inference_mode():
    for _ in range(a.warmup):
        run()
    t0 = time.perf_counter()
    for _ in range(a.iters):
        run()
    dt = time.perf_counter() - t0
print(json.dumps({"images_per_s": a.batch * a.iters / dt, "mode": "freeze" if a.freeze else "jit"}))
