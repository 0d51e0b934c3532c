#!/usr/bin/python3
"""A contact sheet of an IDX image dataset: one row per class, the first COLS images of it,
enlarged SCALE times, so that a person can check the digits are readable.

usage: contact_sheet.py IMAGES_IDX LABELS_IDX OUT.png [COLS=16] [SCALE=3]"""
import struct
import sys

import numpy as np
from PIL import Image


def read_idx(path):
    b = open(path, "rb").read()
    nd = b[3]
    dims = struct.unpack(">" + "I" * nd, b[4:4 + 4 * nd])
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    x, y = read_idx(sys.argv[1]), read_idx(sys.argv[2])
    cols = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    scale = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    if x.ndim == 3:
        x = np.repeat(x[..., None], 3, axis=3)
    n, h, w, _ = x.shape
    classes = sorted(set(y.tolist()))
    sheet = np.full((len(classes) * (h + 2), cols * (w + 2), 3), 255, np.uint8)
    for r, c in enumerate(classes):
        idx = np.flatnonzero(y == c)[:cols]
        for j, i in enumerate(idx):
            sheet[r * (h + 2):r * (h + 2) + h, j * (w + 2):j * (w + 2) + w] = x[i]
    img = Image.fromarray(sheet).resize((sheet.shape[1] * scale, sheet.shape[0] * scale), Image.NEAREST)
    img.save(sys.argv[3])
    print(f"wrote {sys.argv[3]}: {len(classes)} classes x {cols} images of {n}")


if __name__ == "__main__":
    main()
