#!/usr/bin/env python3
"""PyTorch CPU counterpart of `cargo bench --bench cnn`.

Mirrors the two networks of src/estimate/net.rs layer for layer (kernel,
stride, padding, channels, LeakyReLU(0.01) after every convolution and after
fc1, NHWC-ordered flatten is irrelevant for speed) and times, at batch 1 and
32 on random inputs:

* forward: `net(x)` under `torch.inference_mode()`;
* train step: forward, MSE loss, backward, `torch.optim.AdamW.step()`
  (lr 1e-4, PyTorch's default implementation for CPU tensors).

Neither implementation uses BatchNorm. Usage:

    python3 bench/pytorch_cnn.py [--threads 2] [--seconds 3] [--json out.json]
"""

import argparse
import json
import platform
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

LEAKY_SLOPE = 0.01


def conv_specs(input_size, channels, down_kernel, down_padding):
    """(in, out, kernel, stride, padding) of each convolution, as NetConfig::conv_layers."""
    specs, in_c, size = [], 1, input_size
    for i, out_c in enumerate(channels):
        if i == 0:
            k, s, p = 5, 2, 2
        elif i % 2 == 1:
            k, s, p = 3, 1, 1
        else:
            k, s, p = down_kernel, 2, down_padding
        specs.append((in_c, out_c, k, s, p))
        size = (size + 2 * p - k) // s + 1
        in_c = out_c
    return specs, size


CONFIGS = {
    # NetConfig::default()
    "default": dict(input_size=64, channels=[32, 32, 64, 64, 128, 128, 256], hidden=256,
                    outputs=9, down_kernel=3, down_padding=1),
    # NetConfig::holly()
    "holly": dict(input_size=128, channels=[16, 32, 32, 64, 64, 128, 128, 256, 256, 256],
                  hidden=256, outputs=6, down_kernel=2, down_padding=1),
}


class OrientationNet(nn.Module):
    def __init__(self, input_size, channels, hidden, outputs, down_kernel, down_padding):
        super().__init__()
        specs, side = conv_specs(input_size, channels, down_kernel, down_padding)
        self.convs = nn.ModuleList(nn.Conv2d(i, o, k, stride=s, padding=p) for i, o, k, s, p in specs)
        self.fc1 = nn.Linear(side * side * channels[-1], hidden)
        self.fc2 = nn.Linear(hidden, outputs)

    def forward(self, x):
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LEAKY_SLOPE)
        x = torch.flatten(x, 1)
        return self.fc2(F.leaky_relu(self.fc1(x), LEAKY_SLOPE))


def timed(fn, seconds, min_iters=3):
    """Median seconds per call over at least `min_iters` calls and `seconds` seconds."""
    fn()  # warm-up
    fn()
    times, start = [], time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2], times[0], len(times)


def bench(name, batch, seconds):
    cfg = CONFIGS[name]
    net = OrientationNet(**cfg)
    s = cfg["input_size"]
    x = torch.randn(batch, 1, s, s)
    target = torch.randn(batch, cfg["outputs"])
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)

    def forward():
        with torch.inference_mode():
            net(x)

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(net(x), target)
        loss.backward()
        opt.step()

    fwd, fwd_best, n_fwd = timed(forward, seconds)
    trn, trn_best, n_trn = timed(train_step, seconds)
    return {
        "net": name,
        "batch": batch,
        "forward_img_per_s": batch / fwd,
        "forward_best_img_per_s": batch / fwd_best,
        "train_step_img_per_s": batch / trn,
        "train_step_best_img_per_s": batch / trn_best,
        "forward_iters": n_fwd,
        "train_iters": n_trn,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0, help="minimum timing per measurement")
    ap.add_argument("--nets", default="default,holly")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, "
          f"mkldnn={torch.backends.mkldnn.is_available()}")
    results = []
    for name in args.nets.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            r = bench(name, batch, args.seconds)
            results.append(r)
            print(f"{name:8s} batch {batch:3d}: forward {r['forward_img_per_s']:8.1f} img/s "
                  f"(best {r['forward_best_img_per_s']:8.1f}), train step "
                  f"{r['train_step_img_per_s']:7.1f} img/s (best {r['train_step_best_img_per_s']:7.1f})",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
