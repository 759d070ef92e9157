#!/usr/bin/env python3
"""Fit each frame of a `posescope synth --emitters` set with its own exact
emitters as a C1 model, and report the full-rotation error.

This isolates the pose search from model error: with the exact cloud the
only error left is photon noise, so a fit far from the truth is a wrong
basin (a spin about the particle's axis, or its projection mirror).

    posescope synth --sites 300 --dropout 0 --blinks 1 --jitter 0 \
        --photons 400 --radius 20 --ratio 0.25 --sigma 1.6 --n 300 \
        --seed 301 --emitters --out e300
    python3 scripts/exact_model_check.py e300 --frames 40 \
        --posescope target/release/posescope --out exact.csv

Needs numpy and tifffile (a test helper, not a runtime dependency).
"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import tifffile


def quat_mul(a, b):
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ])


def rot_err_deg(qa, qb):
    """Angle of qa⁻¹·qb in degrees (C1: no symmetry)."""
    inv = np.array([qa[0], -qa[1], -qa[2], -qa[3]])
    d = quat_mul(inv, qb)
    return np.degrees(2 * np.arccos(min(1.0, abs(d[0]) / np.linalg.norm(d))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("set", help="a synth --emitters output folder")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--posescope", default="target/release/posescope")
    ap.add_argument("--search", type=int, default=3000)
    ap.add_argument("--out", default="exact.csv")
    a = ap.parse_args()

    stack = tifffile.imread(os.path.join(a.set, "stack.tif"))
    truth = {int(r["frame"]): r for r in csv.DictReader(open(os.path.join(a.set, "truth.csv")))}
    emitters = {}
    for r in csv.DictReader(open(os.path.join(a.set, "emitters.csv"))):
        emitters.setdefault(int(r["frame"]), []).append((r["x_px"], r["y_px"], r["z_px"]))

    rows = []
    wall = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(min(a.frames, len(stack))):
            frame = os.path.join(tmp, f"f{k:03}.tif")
            model = os.path.join(tmp, f"m{k:03}.csv")
            out = os.path.join(tmp, f"p{k:03}.csv")
            tifffile.imwrite(frame, stack[k])
            with open(model, "w") as f:
                f.write("x,y,z\n")
                f.writelines(f"{x},{y},{z}\n" for x, y, z in emitters[k])
            t0 = time.perf_counter()
            subprocess.run([a.posescope, "fit", frame, "--model", model, "--symmetry", "c1",
                            "--no-net", "--search", str(a.search), "--csv", out],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wall += time.perf_counter() - t0
            fit = next(csv.DictReader(open(out)))
            fit["frame"] = str(k)
            rows.append(fit)

    with open(a.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)

    errs = []
    for r in rows:
        t = truth[int(r["frame"])]
        q_fit = np.array([float(r[c]) for c in ("qw", "qx", "qy", "qz")])
        q_true = np.array([float(t[c]) for c in ("qw", "qx", "qy", "qz")])
        e = rot_err_deg(q_true, q_fit)
        errs.append(e)
        print(f"frame {r['frame']:>3}  C1 rotation error {e:8.3f}°  score {float(r['score']):.4f}")
    errs = np.array(errs)
    print(f"{len(errs)} frames: median {np.median(errs):.3f}°, p90 {np.percentile(errs, 90):.3f}°, "
          f"within 1°: {(errs < 1).sum()}, fit wall {wall:.1f} s (process start included)")
    print(f"pose CSV: {a.out}  (axis error: posescope eval --truth {a.set}/truth.csv --pred {a.out})")


if __name__ == "__main__":
    sys.exit(main())
