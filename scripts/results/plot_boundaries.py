#!/usr/bin/python3
"""Draws the two-moons target test points and the decision boundaries of the source-only
and DANN models (seed 1) as one self-contained SVG, from the grid predictions written by
scripts/results/moons.sh (graft predict CSVs)."""
import csv
import sys

import numpy as np

out = sys.argv[1]
t = np.load(f"{out}/target/test_x.npy")
ty = np.load(f"{out}/target/test_y.npy")
grid = np.load(f"{out}/grid.npy")
nx = len(np.unique(grid[:, 0]))
ny = len(grid) // nx
lo, hi = grid.min(0), grid.max(0)
W, H, M = 640, 480, 30


def px(p):
    return (M + (p[0] - lo[0]) / (hi[0] - lo[0]) * (W - 2 * M), H - M - (p[1] - lo[1]) / (hi[1] - lo[1]) * (H - 2 * M))


svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + 30}" font-family="sans-serif" font-size="12">',
       '<rect width="100%" height="100%" fill="white"/>',
       f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14">Two moons, target rotated 30°: '
       'decision boundaries (seed 1)</text>']
for y, colour in ((0, "#9ecae1"), (1, "#fdae6b")):
    for p in t[ty == y]:
        x_, y_ = px(p)
        svg.append(f'<circle cx="{x_:.1f}" cy="{y_:.1f}" r="3" fill="{colour}"/>')
for k, (method, colour) in enumerate((("source-only", "#d62728"), ("dann", "#2ca02c"))):
    pred = np.zeros(len(grid), int)
    with open(f"{out}/{method}/grid_pred.csv") as f:
        for row in csv.DictReader(f):
            pred[int(row["index"])] = int(row["class1"]) if row["class1"].isdigit() else row["class1"] != "0"
    p = pred.reshape(ny, nx)
    for j in range(ny):
        for i in range(nx):
            if (i + 1 < nx and p[j, i] != p[j, i + 1]) or (j + 1 < ny and p[j, i] != p[j + 1, i]):
                x_, y_ = px(grid[j * nx + i])
                svg.append(f'<rect x="{x_ - 1.2:.1f}" y="{y_ - 1.2:.1f}" width="2.4" height="2.4" fill="{colour}"/>')
    svg.append(f'<text x="{M + 200 * k}" y="{H + 18}" fill="{colour}">&#9632; {method} boundary</text>')
svg.append(f'<text x="{M + 370}" y="{H + 18}" fill="#555">dots: target test points by true class</text>')
svg.append("</svg>")
print("\n".join(svg))
