#!/usr/bin/python3
"""Reference features with torchvision transforms, for graft's preprocessing parity test.

usage: torchvision_features.py MODEL.pt IMAGE_DIR PRESET LAYER OUT.npy
Each image (sorted by name, PIL, RGB) goes through torchvision's tensor path:
  imagenet:  ToTensor, Resize(256, antialias=True), CenterCrop(224), Normalize(ImageNet mean/std)
  inception: ToTensor, Resize(299, antialias=True), CenterCrop(299), Normalize(0.5, 0.5)
then through the TorchScript model's children up to and including LAYER (eval mode);
the outputs, flattened, are saved as OUT.npy (N, F). This is what graft's
--preprocess imagenet|inception is defined to equal (docs/ARCHITECTURE.md).
"""
import os
import sys

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

PRESETS = {
    "imagenet": [T.ToTensor(), T.Resize(256, antialias=True), T.CenterCrop(224),
                 T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])],
    "inception": [T.ToTensor(), T.Resize(299, antialias=True), T.CenterCrop(299), T.Normalize([0.5] * 3, [0.5] * 3)],
}


def main():
    model, folder, preset, layer, out = sys.argv[1:6]
    tf = T.Compose(PRESETS[preset])
    m = torch.jit.load(model).eval()
    feats = []
    for f in sorted(os.listdir(folder)):
        x = tf(Image.open(os.path.join(folder, f)).convert("RGB")).unsqueeze(0)
        with torch.no_grad():
            for name, child in m.named_children():
                x = child(x)
                if name == layer:
                    break
        feats.append(x.flatten(1).numpy())
    np.save(out, np.concatenate(feats).astype(np.float32))


if __name__ == "__main__":
    main()
