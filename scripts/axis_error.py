#!/usr/bin/env python3
"""Pooled symmetry-aware axis error of `posescope fit TABLE` CSVs against
`synth --locs` truth CSVs (a comparison script, not part of PoseScope).

usage: axis_error.py FIT.csv:TRUTH.csv [FIT.csv:TRUTH.csv ...]

Each fitted particle is matched to the nearest true centre within 150 nm;
the error is min angle(axis, {±t, ±mirror_z(t)}), as in shared/README.md.
For fits that used the localisations' z (a z_locs column above 0) it also
counts how often the axis is ±t rather than ±mirror_z(t), over particles
tilted 15–75° (where ±t and ±mirror_z(t) are at least 30° apart).
"""
import csv
import math
import sys


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def angle(a, b):
    d = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    return math.degrees(math.acos(max(-1.0, min(1.0, abs(d) / (na * nb)))))


def axis_error(p, t):
    m = (t[0], t[1], -t[2])
    return min(angle(p, t), angle(p, m))


errors = []
direction = [0, 0]  # right, counted
for pair in sys.argv[1:]:
    fit_path, truth_path = pair.split(":")
    truth = [
        ((float(r["x_nm"]), float(r["y_nm"])), tuple(float(r[k]) for k in ("axis_x", "axis_y", "axis_z")))
        for r in rows(truth_path)
    ]
    for r in rows(fit_path):
        if r.get("error") or not r.get("axis_x"):
            continue
        c = (float(r["x_nm"]), float(r["y_nm"]))
        near = min(truth, key=lambda t: math.hypot(t[0][0] - c[0], t[0][1] - c[1]))
        if math.hypot(near[0][0] - c[0], near[0][1] - c[1]) > 150:
            continue
        a = tuple(float(r[k]) for k in ("axis_x", "axis_y", "axis_z"))
        t = near[1]
        errors.append(axis_error(a, t))
        tilt = math.degrees(math.acos(min(1.0, abs(t[2]))))
        if int(r.get("z_locs") or 0) > 0 and 15 <= tilt <= 75:
            direction[1] += 1
            direction[0] += angle(a, t) < angle(a, (t[0], t[1], -t[2]))
errors.sort()
n = len(errors)
if n == 0:
    sys.exit("no matched particles")
q = lambda p: errors[round((n - 1) * p)]
print(f"{n} particles: median {q(0.5):.2f}°, p90 {q(0.9):.2f}°, max {errors[-1]:.2f}°")
if direction[1]:
    print(f"tilt direction from z: right for {direction[0]} of {direction[1]} (tilt 15–75°)")
