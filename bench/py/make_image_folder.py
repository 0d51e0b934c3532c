#!/usr/bin/python3
"""Make a benchmark image folder: N JPEG crops (S x S) of the cached colour photos in 10 classes.
usage: make_image_folder.py PHOTOS_DIR OUT_DIR [N] [S]"""
import os
import random
import sys

from PIL import Image

photos_dir, out = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
size = int(sys.argv[4]) if len(sys.argv) > 4 else 160
rng = random.Random(0)
photos = [Image.open(os.path.join(photos_dir, f)).convert("RGB") for f in sorted(os.listdir(photos_dir))]
for i in range(n):
    cls = os.path.join(out, "class%d" % (i % 10))
    os.makedirs(cls, exist_ok=True)
    ph = photos[rng.randrange(len(photos))]
    x = rng.randrange(0, ph.width - size + 1)
    y = rng.randrange(0, ph.height - size + 1)
    ph.crop((x, y, x + size, y + size)).save(os.path.join(cls, "%05d.jpg" % i), quality=90)
