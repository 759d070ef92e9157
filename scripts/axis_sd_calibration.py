#!/usr/bin/env python3
"""Calibration of `posescope fit TABLE`'s axis_sd_deg against `synth --locs`
truth (a comparison script, not part of PoseScope): the fraction of particles
whose axis error is within 1 standard error (63 % expected for a 2D normal
error), within 1.73 (95 %), and rms(error) / rms(sd).

usage: axis_sd_calibration.py FIT.csv:TRUTH.csv [FIT.csv:TRUTH.csv ...]

Each fitted particle is matched to the nearest true centre within 150 nm. For
fits that used z (z_locs > 0) the error is the angle to the true axis itself
(up to ±); otherwise the mirror in z counts as right too.
"""
import csv, math, sys
pairs = sys.argv[1:]
errs, sds = [], []
nan = 0
for pair in pairs:
    fit, truth = pair.split(':')
    T = [((float(r['x_nm']), float(r['y_nm'])), [float(r[k]) for k in ('axis_x', 'axis_y', 'axis_z')]) for r in csv.DictReader(open(truth))]
    for r in csv.DictReader(open(fit)):
        if r.get('error'):
            continue
        c = (float(r['x_nm']), float(r['y_nm']))
        t = min(T, key=lambda t: math.hypot(t[0][0] - c[0], t[0][1] - c[1]))
        if math.hypot(t[0][0] - c[0], t[0][1] - c[1]) > 150:
            continue
        a = [float(r[k]) for k in ('axis_x', 'axis_y', 'axis_z')]
        tv = t[1]
        cands = [tv, [tv[0], tv[1], -tv[2]]] if int(r.get('z_locs') or 0) == 0 else [tv]
        e = min(math.degrees(math.acos(min(1, abs(sum(x * y for x, y in zip(a, c)))))) for c in cands)
        sd = r.get('axis_sd_deg') or ''
        if not sd:
            nan += 1
            continue
        errs.append(e); sds.append(float(sd))
n = len(errs)
w1 = sum(e < s for e, s in zip(errs, sds)) / n
w2 = sum(e < 1.73 * s for e, s in zip(errs, sds)) / n
rr = math.sqrt(sum(e * e for e in errs) / n) / math.sqrt(sum(s * s for s in sds) / n)
sds_sorted = sorted(sds)
print(f"{n} particles ({nan} without sd): within 1 sd {100*w1:.0f} % (63 expected), within 1.73 sd {100*w2:.0f} % (95), rms error / rms sd {rr:.2f}; median sd {sds_sorted[n//2]:.2f}°")
