#!/usr/bin/env python3
"""Writes the asymmetric test particle of docs/ACCURACY.md (structure learning):
a ring (mother centriole: torus R 20 px, r 4 px, 1,400 surface points) with an
oblique cylinder (daughter: radius 7 px, length 14 px, 600 points) leaving its
wall off-axis, so that the particle has no rotation and no mirror symmetry.

    python3 scripts/asym_particle.py asym.ply
"""
import sys

import numpy as np

rng = np.random.default_rng(5)
pts = []
while len(pts) < 1400:
    u, v = rng.uniform(0, 2 * np.pi, 2)
    # area element of the torus surface ∝ R + r·cos v
    if rng.uniform() < (20 + 4 * np.cos(v)) / 24:
        rr = 20 + 4 * np.cos(v)
        pts.append([rr * np.cos(u), rr * np.sin(u), 4 * np.sin(v)])
d = np.array([np.cos(np.radians(25)), np.sin(np.radians(25)), 0.35])
d /= np.linalg.norm(d)
e1 = np.cross(d, [0, 0, 1.0])
e1 /= np.linalg.norm(e1)
e2 = np.cross(d, e1)
base = np.array([20.0, 6.0, 7.0])
for _ in range(600):
    t = rng.uniform(0, 14)
    a = rng.uniform(0, 2 * np.pi)
    pts.append(base + t * d + 7 * np.cos(a) * e1 + 7 * np.sin(a) * e2)
pts = np.array(pts)
with open(sys.argv[1] if len(sys.argv) > 1 else "asym.ply", "w") as f:
    f.write("ply\nformat ascii 1.0\ncomment units px\n")
    f.write(f"element vertex {len(pts)}\nproperty float x\nproperty float y\nproperty float z\nend_header\n")
    for p in pts:
        f.write("%.4f %.4f %.4f\n" % tuple(p))
