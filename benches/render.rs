//! Renderer benchmarks: 500 points into a 128×128 frame.
//!
//! Run with `cargo bench --bench render`. Results are recorded in docs/PERFORMANCE.md.

use candle_core::{Device, Tensor, Var};
use posescope::render::cpu::{self, render_frame_into};
use posescope::render::kernel::Scratch;
use posescope::render::SplatParams;

fn main() {
    divan::main();
}

const N: usize = 500;
const SIZE: usize = 128;

fn torus_like() -> (Vec<[f32; 3]>, Vec<f32>) {
    // a deterministic ring of points with some tube thickness; no RNG needed
    let pts = (0..N)
        .map(|i| {
            let a = i as f32 * 2.399_963; // golden angle
            let b = i as f32 * 0.618_034 * std::f32::consts::TAU;
            let (r, t) = (20.0f32, 5.0f32);
            [
                (r + t * b.cos()) * a.cos(),
                (r + t * b.cos()) * a.sin(),
                t * b.sin(),
            ]
        })
        .collect();
    (pts, vec![1.0; N])
}

const ROT: [[f64; 3]; 3] = [
    [0.936, -0.275, 0.218],
    [0.289, 0.956, -0.036],
    [-0.199, 0.098, 0.975],
];

/// The fast path used for synthesis, scoring and display: project + splat, one thread.
#[divan::bench]
fn frame_fast(bencher: divan::Bencher) {
    let (pts, w) = torus_like();
    let params = SplatParams::new(SIZE, SIZE, 1.6);
    let mut scratch = Scratch::default();
    let mut out = vec![0.0f32; SIZE * SIZE];
    bencher.bench_local(|| {
        render_frame_into(&pts, &w, &ROT, [1.0, -2.0], &params, &mut scratch, &mut out).unwrap();
        divan::black_box(&out);
    });
}

struct Batch {
    pts: Tensor,
    w: Tensor,
    rot: Tensor,
    shift: Tensor,
    sigma: Tensor,
    scale: Tensor,
}

fn batch(b: usize) -> Batch {
    let dev = Device::Cpu;
    let (pts, w) = torus_like();
    let rot: Vec<f32> = (0..b)
        .flat_map(|_| ROT.iter().flatten().map(|&x| x as f32))
        .collect();
    Batch {
        pts: Tensor::from_vec(
            pts.iter().flatten().copied().collect::<Vec<_>>(),
            (N, 3),
            &dev,
        )
        .unwrap(),
        w: Tensor::new(w, &dev).unwrap(),
        rot: Tensor::from_vec(rot, (b, 3, 3), &dev).unwrap(),
        shift: Tensor::zeros((b, 2), candle_core::DType::F32, &dev).unwrap(),
        sigma: Tensor::full(1.6f32, b, &dev).unwrap(),
        scale: Tensor::ones(b, candle_core::DType::F32, &dev).unwrap(),
    }
}

/// The candle renderer (custom splat op), forward only, batch sizes 1 and 32.
#[divan::bench(args = [1, 32])]
fn candle_forward(bencher: divan::Bencher, b: usize) {
    let t = batch(b);
    bencher.bench_local(|| {
        cpu::render(
            &t.pts, &t.w, &t.rot, &t.shift, &t.sigma, &t.scale, SIZE, SIZE,
        )
        .unwrap()
    });
}

/// Forward and backward through the whole render (rotation, shift, σ, scale, points).
#[divan::bench(args = [1, 32])]
fn candle_forward_backward(bencher: divan::Bencher, b: usize) {
    let t = batch(b);
    let rot = Var::from_tensor(&t.rot).unwrap();
    let shift = Var::from_tensor(&t.shift).unwrap();
    let sigma = Var::from_tensor(&t.sigma).unwrap();
    bencher.bench_local(|| {
        let img = cpu::render(&t.pts, &t.w, &rot, &shift, &sigma, &t.scale, SIZE, SIZE).unwrap();
        img.sqr().unwrap().sum_all().unwrap().backward().unwrap()
    });
}

/// The same formula in stock candle ops (broadcast exp + matmul), for comparison.
#[divan::bench]
fn candle_stock_ops_forward(bencher: divan::Bencher) {
    let t = batch(1);
    let uv = cpu::project(&t.pts, &t.rot, &t.shift, &t.scale, SIZE, SIZE).unwrap();
    let w = t.w.unsqueeze(0).unwrap();
    bencher.bench_local(|| cpu::splat_ops(&uv, &w, &t.sigma, SIZE, SIZE).unwrap());
}
