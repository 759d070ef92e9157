#!/usr/bin/env python3
"""Compares PoseScope's TIFF loader with libtiff (through Pillow) on a corpus.

    python3 scripts/tiff_corpus.py DIR...   (needs numpy and Pillow)

Builds and runs `examples/tiff_corpus.rs` on every .tif/.tiff under DIR, then
opens each file with Pillow (which decodes TIFF through libtiff) and reports:
files each side opens, files libtiff opens and PoseScope refuses (with
PoseScope's reason), panics, and, for grey images, the largest pixel
difference of the first frame. A test helper only, never a runtime
dependency.
"""
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

GREY = {"1", "L", "I", "F", "I;16", "I;16B", "I;16L", "I;16S", "I;16BS", "I;32", "I;32S"}


def pillow(path):
    """(ok, frames, mode, grey array or None, error)."""
    try:
        with Image.open(path) as im:
            n = getattr(im, "n_frames", 1)
            im.seek(0)
            im.load()
            mode = im.mode
            arr = None
            tags = {}
            if mode in GREY:
                arr = np.asarray(im, dtype=np.float64)
                tags = {k: im.tag_v2.get(k) for k in (258, 339, 266, 274)}
            return True, n, mode, (arr, tags), ""
    except Exception as e:  # noqa: BLE001 (any failure is a "refused")
        return False, 0, "", None, f"{type(e).__name__}: {e}"


def main():
    dirs = [Path(d) for d in sys.argv[1:]] or [Path(".")]
    files = sorted(p for d in dirs for p in d.rglob("*") if p.suffix.lower() in (".tif", ".tiff"))
    root = Path(__file__).resolve().parent.parent
    import json
    import os

    if os.environ.get("TIFF_CORPUS_EXE"):  # a binary built already
        target = Path(os.environ["TIFF_CORPUS_EXE"])
    else:
        subprocess.run(["cargo", "build", "--quiet", "--example", "tiff_corpus"], cwd=root, check=True)
        exe = subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps"],
            cwd=root, capture_output=True, text=True, check=True,
        )
        target = Path(json.loads(exe.stdout)["target_directory"]) / "debug" / "examples" / "tiff_corpus"
    with tempfile.TemporaryDirectory() as out:
        res = subprocess.run([str(target), out] + [str(f) for f in files], capture_output=True, text=True, timeout=600)
        ours = {}
        for line in res.stdout.splitlines():
            parts = line.split("\t")
            ours[parts[0]] = parts[1:]
        stats = dict(files=len(files), pillow=0, posescope=0, both=0, panics=0, grey_compared=0, grey_equal=0)
        refused, extra, mismatches = [], [], []
        for f in files:
            status, frames, w, h, msg = (ours.get(str(f)) + [""] * 5)[:5] if str(f) in ours else ("missing", "", "", "", "")
            ok_p, n_p, mode, arr, err = pillow(f)
            ok_o = status == "ok"
            stats["pillow"] += ok_p
            stats["posescope"] += ok_o
            stats["both"] += ok_p and ok_o
            stats["panics"] += status == "panic"
            if ok_p and not ok_o:
                refused.append((f.name, mode, msg))
            if ok_o and not ok_p:
                extra.append((f.name, err))
            arr, tags = arr if arr is not None else (None, {})
            if ok_p and ok_o and arr is not None and arr.ndim == 2:
                raw = Path(out) / (f.name + ".f32")
                mine = np.fromfile(raw, dtype="<f4").astype(np.float64)
                stats["grey_compared"] += 1
                bits = tags.get(258)
                bits = bits[0] if isinstance(bits, tuple) else bits
                fmt = tags.get(339)
                fmt = fmt[0] if isinstance(fmt, tuple) else fmt
                # Pillow's conventions, applied to PoseScope's raw sample values: sub-byte grey
                # stretched to 0..255, signed 8-bit read as unsigned, uint32 read as int32
                if mode == "L" and bits and bits < 8:
                    mine = mine * (255 // ((1 << bits) - 1))
                if mode == "L" and fmt == 2:
                    mine = np.mod(mine, 256)
                if mode == "I" and bits == 32 and fmt in (None, 1):
                    mine = np.where(mine >= 2**31, mine - 2**32, mine)
                why = []
                if tags.get(266) == 2:
                    why.append("FillOrder 2 (libtiff reverses the bits of every byte)")
                if tags.get(274) not in (None, 1):
                    why.append(f"Orientation {tags.get(274)}")
                why = "; " + ", ".join(why) if why else ""
                if mine.size == arr.size:
                    d = np.max(np.abs(mine.reshape(arr.shape) - arr)) if arr.size else 0.0
                    if d <= 1e-6 * max(1.0, np.max(np.abs(arr))):
                        stats["grey_equal"] += 1
                    else:
                        mismatches.append((f.name, mode, f"max |diff| {d:g}{why}"))
                else:
                    mismatches.append((f.name, mode, f"size {mine.size} vs {arr.size}{why}"))
    print("## Summary")
    for k, v in stats.items():
        print(f"- {k}: {v}")
    print("\n## libtiff (Pillow) opens, PoseScope refuses")
    for name, mode, msg in refused:
        print(f"- `{name}` (Pillow mode {mode}): {msg}")
    print("\n## PoseScope opens, Pillow refuses")
    for name, err in extra:
        print(f"- `{name}`: {err}")
    print("\n## Grey first frames that differ")
    for name, mode, msg in mismatches:
        print(f"- `{name}` ({mode}): {msg}")


if __name__ == "__main__":
    main()
