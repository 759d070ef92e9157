#!/usr/bin/env python3
"""Times PoseScope's localisation renderer against Picasso's own on the same table.

    python3 scripts/compare_picasso_render.py [ROWS]   (needs numpy, h5py, picassosr)

Writes a Picasso file (ROWS localisations, default 10^6, uniform over a 256 x 256 camera
field at 130 nm/px, precision 5-15 nm) with h5py, renders it at 16.25 nm/px
(2048 x 2048, Picasso's oversampling 8) with individual isotropic blur:
- Picasso: picasso.render.render(..., blur_method="gaussian_iso"), best of 3 after a
  warm-up call (numba compiles on the first);
- PoseScope: `posescope render FILE --region 0,0,33280,33280 --pixel-size-nm 16.25`,
  best of 3 of the render time it prints (reading the file excluded on both sides).
Then compares the two images (both integrate to the localisation count).
A comparison script only, never a runtime dependency.
"""
import os
import re
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
exe = os.environ.get("POSESCOPE", "target/debug/posescope")
rng = np.random.default_rng(7)
dtype = [("frame", "u4"), ("x", "f4"), ("y", "f4"), ("photons", "f4"), ("sx", "f4"),
         ("sy", "f4"), ("bg", "f4"), ("lpx", "f4"), ("lpy", "f4")]
locs = np.zeros(rows, dtype=dtype)
locs["frame"] = np.sort(rng.integers(0, 20000, rows))
locs["x"] = rng.uniform(2, 254, rows)
locs["y"] = rng.uniform(2, 254, rows)
locs["photons"] = 2000
locs["sx"] = locs["sy"] = 1.0
lp = rng.uniform(5, 15, rows) / 130.0
locs["lpx"] = locs["lpy"] = lp

with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "locs.hdf5")
    with h5py.File(path, "w") as f:
        f.create_dataset("locs", data=locs)
    with open(os.path.join(d, "locs.yaml"), "w") as f:
        f.write("Frames: 20000\nHeight: 256\nWidth: 256\n---\nPixelsize: 130\n")

    import picasso.io
    import picasso.render
    plocs, info = picasso.io.load_locs(path)
    kw = dict(disp_px_size=16.25, viewport=((0, 0), (256, 256)), blur_method="gaussian_iso",
              min_blur_width=0.0)
    picasso.render.render(plocs[:1000], info, **kw)  # numba warm-up
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        _, pic = picasso.render.render(plocs, info, **kw)
        times.append(time.perf_counter() - t0)
    t_pic = min(times)

    out = os.path.join(d, "ours.tif")
    ours_ms = []
    for _ in range(3):
        r = subprocess.run([exe, "render", path, "--region", "0,0,33280,33280",
                            "--pixel-size-nm", "16.25", "--min-blur-nm", "0", "--out", out],
                           capture_output=True, text=True, check=True)
        ours_ms.append(float(re.search(r"in (\d+) ms", r.stdout).group(1)))
    t_ours = min(ours_ms) / 1000
    import tifffile
    ours = tifffile.imread(out).astype(np.float64)

pic = np.asarray(pic, dtype=np.float64)
print(f"rows {rows}, image {pic.shape} (Picasso) / {ours.shape} (PoseScope)")
print(f"Picasso gaussian_iso: {t_pic:.3f} s (best of 3: {', '.join(f'{t:.3f}' for t in times)})")
print(f"PoseScope blur:       {t_ours:.3f} s (best of 3: {', '.join(f'{t / 1000:.3f}' for t in ours_ms)})")
print(f"speed ratio Picasso / PoseScope: {t_pic / t_ours:.2f}")
print(f"sums: Picasso {pic.sum():.1f}, PoseScope {ours.sum():.1f}")
if pic.shape == ours.shape:
    a, b = pic.ravel(), ours.ravel()
    a, b = a / a.sum(), b / b.sum()
    corr = np.corrcoef(a, b)[0, 1]
    print(f"Pearson correlation of the two images: {corr:.5f}; "
          f"max |diff| / max: {np.abs(a - b).max() / a.max():.4f}")
