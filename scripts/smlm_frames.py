#!/usr/bin/env python3
"""Single-particle frames rendered the way SMLM software renders a
localisation table, from a `posescope synth --emitters` set's labels.

Each label (an emitter of the synth set, posed by its truth) gives a
Poisson number of localisations (mean --locs-per-label), each displaced by
its own precision (uniform in --precision px); --background adds that
fraction of extra localisations uniformly over the frame. Every
localisation is drawn as a normalised Gaussian of σ = max(its precision,
--min-blur) at pixel centres (Picasso's "individual blur"). Writes a float32
stack, and with --u8-size also an 8-bit stack at another size (the same
particles zoomed by size/128 and scaled to 0–255, as an export would be),
each with a copy of truth.csv (the axis and the 3D floor do not change with
the zoom; shifts are rescaled).

    posescope synth --sites 200 --dropout 0 --blinks 1 --jitter 0 \\
        --radius 20 --ratio 0.25 --sigma 1.6 --n 300 --seed 303 \\
        --emitters --out lab
    python3 scripts/smlm_frames.py lab --out smlm --u8-size 96

A test-data writer (numpy, tifffile), not a runtime dependency.
"""
import argparse
import csv
import os

import numpy as np
import tifffile


def quat_to_matrix(q):
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def render(xy, sig, size):
    """Sum of normalised Gaussians at pixel centres, cut at ±3σ."""
    img = np.zeros((size, size), np.float64)
    for (x, y), s in zip(xy, sig):
        r = int(np.ceil(3 * s)) + 1
        c0, c1 = max(int(x) - r, 0), min(int(x) + r + 1, size)
        r0, r1 = max(int(y) - r, 0), min(int(y) + r + 1, size)
        if c0 >= c1 or r0 >= r1:
            continue
        cx = np.arange(c0, c1) + 0.5
        cy = np.arange(r0, r1) + 0.5
        g = np.exp(-((cy[:, None] - y) ** 2 + (cx[None, :] - x) ** 2) / (2 * s * s))
        g[((cy[:, None] - y) ** 2 + (cx[None, :] - x) ** 2) > (3 * s) ** 2] = 0
        img[r0:r1, c0:c1] += g / (2 * np.pi * s * s)
    return img


def write_truth(src, dst, zoom):
    rows = list(csv.DictReader(open(src)))
    with open(dst, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=rows[0].keys())
        w.writeheader()
        for r in rows:
            for k in ("shift_x", "shift_y", "major_radius_px", "tube_radius_px"):
                if r.get(k):
                    r[k] = repr(float(r[k]) * zoom)
            w.writerow(r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("set", help="a synth --emitters output folder (128×128 frames)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--locs-per-label", type=float, default=4.0)
    ap.add_argument("--precision", default="0.55,1.7", help="lo,hi px")
    ap.add_argument("--min-blur", type=float, default=0.5)
    ap.add_argument("--background", type=float, default=0.08)
    ap.add_argument("--u8-size", type=int, default=0)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()

    rng = np.random.default_rng(a.seed)
    plo, phi = (float(v) for v in a.precision.split(","))
    truth = list(csv.DictReader(open(os.path.join(a.set, "truth.csv"))))
    labels = {}
    for r in csv.DictReader(open(os.path.join(a.set, "emitters.csv"))):
        labels.setdefault(int(r["frame"]), []).append(
            (float(r["x_px"]), float(r["y_px"]), float(r["z_px"])))
    size = 128
    floats, bytes8 = [], []
    for i, t in enumerate(truth):
        rot = quat_to_matrix(np.array([float(t[k]) for k in ("qw", "qx", "qy", "qz")]))
        world = np.asarray(labels[i]) @ rot.T
        centre = np.array([size / 2 + float(t["shift_x"]), size / 2 + float(t["shift_y"])])
        counts = rng.poisson(a.locs_per_label, len(world))
        xy = np.repeat(world[:, :2] + centre, counts, axis=0)
        sig = rng.uniform(plo, phi, len(xy))
        xy = xy + rng.normal(size=xy.shape) * sig[:, None]
        n_bg = int(round(a.background * len(xy) / (1 - a.background)))
        xy = np.vstack([xy, rng.uniform(0, size, (n_bg, 2))])
        sig = np.concatenate([sig, rng.uniform(plo, phi, n_bg)])
        blur = np.maximum(sig, a.min_blur)
        floats.append(render(xy, blur, size).astype(np.float32))
        if a.u8_size:
            z = a.u8_size / size
            img = render(xy * z, blur * z, a.u8_size)
            bytes8.append(np.round(255 * img / max(img.max(), 1e-12)).astype(np.uint8))
    os.makedirs(os.path.join(a.out, "float"), exist_ok=True)
    tifffile.imwrite(os.path.join(a.out, "float", "stack.tif"), np.stack(floats))
    write_truth(os.path.join(a.set, "truth.csv"), os.path.join(a.out, "float", "truth.csv"), 1.0)
    print(f"{len(floats)} float frames → {a.out}/float")
    if a.u8_size:
        d = os.path.join(a.out, f"u8_{a.u8_size}")
        os.makedirs(d, exist_ok=True)
        tifffile.imwrite(os.path.join(d, "stack.tif"), np.stack(bytes8))
        write_truth(os.path.join(a.set, "truth.csv"), os.path.join(d, "truth.csv"), a.u8_size / size)
        print(f"{len(bytes8)} 8-bit {a.u8_size}² frames → {d}")


if __name__ == "__main__":
    main()
