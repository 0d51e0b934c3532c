#!/usr/bin/python3
"""Check that a TorchScript file graft saved opens in Python and reproduces graft's output.

usage: check_torchscript_load.py MODEL.pt INPUT.npy EXPECTED_OUTPUT.npy
Exits 0 when torch.jit.load opens MODEL.pt and model(INPUT) matches EXPECTED (allclose).
"""
import sys

import numpy as np
import torch

model = torch.jit.load(sys.argv[1])
model.eval()
x = torch.from_numpy(np.load(sys.argv[2]))
want = np.load(sys.argv[3])
with torch.no_grad():
    got = model(x).numpy()
if got.shape != want.shape or not np.allclose(got, want, rtol=1e-4, atol=1e-5):
    print("mismatch: max abs diff", float(np.abs(got - want).max()) if got.shape == want.shape else got.shape)
    sys.exit(1)
print("ok: torch.jit.load opened", sys.argv[1], "and reproduced graft's output")
