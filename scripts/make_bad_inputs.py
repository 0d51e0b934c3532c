#!/usr/bin/python3
"""Writes the corpus of bad inputs used by scripts/badinput.sh into the folder given.

Each file is hostile but fair: what a damaged download, a wrong export or a careless
script produces. Nothing here needs graft; numpy and zlib only."""
import gzip
import io
import os
import struct
import sys
import zlib

import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def p(*parts):
    path = os.path.join(out, *parts)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def npy(name, arr):
    np.save(p(name), arr)


def npy_header(name, descr, shape, data=b""):
    h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
    with open(p(name), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + data)


def idx(dims, data=b"", code=8):
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data


def png(path, w, h, rows=None):
    """A gray 8-bit PNG, streamed so a 20000x20000 image costs little memory."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    comp = zlib.compressobj(9)
    body = io.BytesIO()
    row = b"\x00" + bytes(w)
    for y in range(h):
        body.write(comp.compress(row if rows is None else b"\x00" + rows[y]))
    body.write(comp.flush())
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
                chunk(b"IDAT", body.getvalue()) + chunk(b"IEND", b""))


rng = np.random.default_rng(0)
# Good data to pair with bad parts.
x = rng.random((12, 4), dtype=np.float32)
npy("x.npy", x)
npy("y.npy", (np.arange(12) % 3).astype(np.int64))
for name, v in [("y_1e12.npy", 10**12), ("y_1e6.npy", 10**6), ("y_5000.npy", 5000), ("y_neg.npy", -5)]:
    y = (np.arange(12) % 3).astype(np.int64)
    y[7] = v
    npy(name, y)
npy("y_float.npy", np.arange(12, dtype=np.float32))
npy("y_short.npy", np.arange(5, dtype=np.int64))
x_nan = x.copy()
x_nan[3, 1] = np.nan
npy("x_nan.npy", x_nan)
npy_header("shape_garbage.npy", "<f4", "(abc, 3)", bytes(48))
npy_header("shape_huge.npy", "<f4", "(1000000000000, 1000000)", bytes(64))
npy_header("shape_big.npy", "<f4", "(100000000, 100)", bytes(64))
npy_header("shape_neg.npy", "<f4", "(-3, 4)", bytes(48))
npy_header("dtype_complex.npy", "<c8", "(2, 2)", bytes(32))
with open(p("truncated.npy"), "wb") as f:
    b = io.BytesIO()
    np.save(b, x)
    f.write(b.getvalue()[:-20])
with open(p("not_npy.npy"), "w") as f:
    f.write("hello, I am a CSV\n1,2,3\n")
open(p("empty.npy"), "wb").close()

# IDX.
with open(p("idx_0x0_img"), "wb") as f:
    f.write(idx([5, 0, 0]))
with open(p("idx_lab5"), "wb") as f:
    f.write(idx([5], bytes([0, 1, 2, 0, 1])))
with open(p("idx_short_img"), "wb") as f:
    f.write(idx([60000, 28, 28], bytes(10)))
with open(p("idx_overflow_img"), "wb") as f:
    f.write(idx([0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF]))
with open(p("idx_bomb.gz"), "wb") as f:
    f.write(gzip.compress(idx([100000, 1000, 1000], bytes(1000))))
with open(p("idx_bad_magic"), "wb") as f:
    f.write(b"\x12\x34\x08\x03" + bytes(20))
with open(p("idx_img5"), "wb") as f:
    f.write(idx([5, 4, 4], bytes(range(80))))
with open(p("idx_bad.gz"), "wb") as f:
    f.write(gzip.compress(idx([5, 4, 4], bytes(range(80))))[:40])

# Images.
png(p("huge", "a", "huge.png"), 20000, 20000)  # about 1 MB, 400 megapixels
png(p("huge", "b", "ok.png"), 8, 8)
good = bytearray(open(p("huge", "b", "ok.png"), "rb").read())
forged = bytearray(good)
forged[16:24] = struct.pack(">II", 32767, 32767)
open(p("forged_32767.png"), "wb").write(bytes(forged))
open(p("empty.png"), "wb").close()
open(p("text.png"), "w").write("not an image\n")
open(p("truncated.png"), "wb").write(bytes(good[: len(good) // 2]))
os.makedirs(p("a_folder.png", "x"), exist_ok=True)
for c in range(2):
    for i in range(3):
        rows = [bytes(((c * 100 + i * 10 + y * 8 + xx) % 256) for xx in range(8)) for y in range(8)]
        png(p("imgs", "c%d" % c, "%d.png" % i), 8, 8, rows)
open(p("imgs_bad", "c0", "0.png"), "wb").write(bytes(good))
open(p("imgs_bad", "c1", "0.png"), "w").write("garbage")

# List files.
open(p("list_huge_label.txt"), "w").write("imgs/c0/0.png 0\nimgs/c1/0.png 99999999999999999999\n")
open(p("list_many_classes.txt"), "w").write("imgs/c0/0.png 0\nimgs/c1/0.png 50000\n")
open(p("list_no_label.txt"), "w").write("imgs/c0/0.png\n")
open(p("list_missing_file.txt"), "w").write("imgs/c0/nope.png 0\nimgs/c1/0.png 1\n")
os.makedirs(p("list_dir.txt"), exist_ok=True)
