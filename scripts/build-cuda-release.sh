#!/usr/bin/env bash
# Builds the release binary with the CUDA CNN path, stripped, ready to copy to
# a GPU machine (CI only type-checks the CUDA path: a full release build takes
# too long for every run). Needs nvcc (Debian 12: nvidia-cuda-toolkit from
# non-free; see README "GPU builds"). No GPU is needed to build: candle's build
# script is told the compute capability. 80 (Ampere) compiles with nvcc 11.8,
# and its PTX runs on newer GPUs (Hopper included) through the driver's JIT.
set -euo pipefail
cd "$(dirname "$0")/.."
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-80}"
cargo build --release --no-default-features --features cuda "$@"
bin="${CARGO_TARGET_DIR:-target}/release/posescope"
out="${OUT:-target/posescope-cuda}"
strip -o "$out" "$bin"
# the CPU/CUDA agreement tests as a binary of their own
test_bin=$(cargo test --release --no-default-features --features cuda --test cuda_agreement \
  --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("profile", {}).get("test") and m.get("executable"): print(m["executable"])')
strip -o "${out}-agreement" "$test_bin"
ls -l "$out" "${out}-agreement"
echo "copy both and assets/ to the GPU machine; there run, beside assets/:"
echo "  ./$(basename "$out") bench --device cuda"
echo "  ./$(basename "$out")-agreement --nocapture"
