#!/usr/bin/env python3
"""Axis error against the 3D floor, binned by the true tilt (the angle
between the particle's axis and the optical axis).

    python3 scripts/axis_error_by_tilt.py TRUTH.csv FIT.csv

TRUTH.csv is a `posescope synth` truth (with floor_axis_deg), FIT.csv a
`posescope fit` CSV. The error is symmetry-aware for a torus (±axis and
the mirror in z), as `posescope eval` computes it. Needs numpy.
"""
import csv
import sys

import numpy as np


def main():
    truth = {int(r["frame"]): r for r in csv.DictReader(open(sys.argv[1]))}
    pred = {int(r["frame"]): r for r in csv.DictReader(open(sys.argv[2]))}
    rows = []
    for f, t in truth.items():
        if f not in pred or not pred[f].get("axis_x"):
            continue
        a = np.array([float(t[k]) for k in ("axis_x", "axis_y", "axis_z")])
        b = np.array([float(pred[f][k]) for k in ("axis_x", "axis_y", "axis_z")])
        err = min(
            np.degrees(np.arccos(min(1.0, abs(float(np.dot(a * m, b))))))
            for m in (np.array([1, 1, 1]), np.array([1, 1, -1]))
        )
        tilt = np.degrees(np.arccos(min(1.0, abs(a[2]))))
        rows.append((tilt, err, float(t["floor_axis_deg"])))
    rows = np.array(rows)
    print("| tilt | frames | axis error median / p90 | 3D floor median | ratio at the median |")
    print("|---|---|---|---|---|")
    for lo, hi in [(0, 15), (15, 30), (30, 60), (60, 80), (80, 90.01)]:
        m = (rows[:, 0] >= lo) & (rows[:, 0] < hi)
        if not m.any():
            continue
        e, fl = rows[m, 1], rows[m, 2]
        print(f"| {lo}–{min(hi, 90):.0f}° | {m.sum()} | {np.median(e):.2f}° / "
              f"{np.percentile(e, 90):.2f}° | {np.median(fl):.2f}° | "
              f"{np.median(e) / np.median(fl):.2f}× |")
    worst = rows[np.argsort(-rows[:, 1])][: max(1, len(rows) // 10)]
    below30 = (worst[:, 0] < 30).mean()
    print(f"\nworst 10 %: {100 * below30:.0f} % of them tilted under 30°")


if __name__ == "__main__":
    main()
