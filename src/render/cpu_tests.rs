//! Tests of the CPU renderer against the per-pixel reference and finite differences.

use super::*;
use crate::render::reference::render_naive;
use candle_core::{Device, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rot_from_rotvec(v: [f64; 3]) -> [[f64; 3]; 3] {
    let th = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    let k = if th > 0.0 {
        v.map(|x| x / th)
    } else {
        [0.0, 0.0, 1.0]
    };
    let (s, c) = th.sin_cos();
    let t = 1.0 - c;
    [
        [
            c + k[0] * k[0] * t,
            k[0] * k[1] * t - k[2] * s,
            k[0] * k[2] * t + k[1] * s,
        ],
        [
            k[1] * k[0] * t + k[2] * s,
            c + k[1] * k[1] * t,
            k[1] * k[2] * t - k[0] * s,
        ],
        [
            k[2] * k[0] * t - k[1] * s,
            k[2] * k[1] * t + k[0] * s,
            c + k[2] * k[2] * t,
        ],
    ]
}

fn random_cloud(n: usize, radius: f32, seed: u64) -> (Vec<[f32; 3]>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pts = (0..n)
        .map(|_| [0; 3].map(|_| rng.random_range(-radius..radius)))
        .collect();
    let w = (0..n).map(|_| rng.random_range(0.5f32..2.0)).collect();
    (pts, w)
}

fn max_abs(a: &[f32], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn fast_frame_matches_naive_reference() {
    let (pts, w) = random_cloud(60, 12.0, 1);
    for (sigma, scale, shift, size) in [
        (1.0f32, 1.0f32, [0.0, 0.0], (40usize, 32usize)),
        (2.3, 1.3, [3.7, -2.2], (33, 47)),
        (0.7, 0.8, [-5.0, 4.5], (64, 64)),
    ] {
        let rot = rot_from_rotvec([0.3, -1.1, 0.7]);
        let params = SplatParams {
            width: size.0,
            height: size.1,
            sigma,
            scale,
        };
        let fast = render_frame(&pts, &w, &rot, shift, &params).unwrap();
        let naive = render_naive(&pts, &w, &rot, shift, &params);
        let peak = naive.iter().cloned().fold(0.0, f64::max);
        let err = max_abs(&fast, &naive);
        assert!(
            err < 1e-5 * peak.max(1.0),
            "σ={sigma}: max error {err} (peak {peak})"
        );
        // the total intensity is about the total weight when the cloud is inside the image
        let total: f64 = naive.iter().sum();
        assert!(total > 0.0);
    }
}

#[test]
fn candle_batch_matches_fast_frames() {
    let dev = Device::Cpu;
    let (pts, w) = random_cloud(40, 10.0, 2);
    let rots = [[0.2, 0.1, -0.4], [1.5, -0.3, 0.2], [-2.0, 0.5, 1.0]].map(rot_from_rotvec);
    let shifts = [[0.0, 0.0], [2.5, -1.0], [-3.0, 4.0]];
    let sigmas = [1.2f32, 1.8, 2.5];
    let scales = [1.0f32, 1.2, 0.9];
    let (wd, ht) = (48, 40);
    let pts_t = Tensor::from_vec(
        pts.iter().flatten().copied().collect::<Vec<f32>>(),
        (pts.len(), 3),
        &dev,
    )
    .unwrap();
    let w_t = Tensor::new(w.clone(), &dev).unwrap();
    let rot_t = Tensor::new(&rots.map(|r| r.map(|row| row.map(|x| x as f32))), &dev).unwrap();
    let shift_t = Tensor::new(&shifts.map(|s| s.map(|x| x as f32)), &dev).unwrap();
    let sig_t = Tensor::new(&sigmas, &dev).unwrap();
    let sc_t = Tensor::new(&scales, &dev).unwrap();
    let imgs = render(&pts_t, &w_t, &rot_t, &shift_t, &sig_t, &sc_t, wd, ht).unwrap();
    assert_eq!(imgs.dims(), [3, ht, wd]);
    let imgs = imgs.to_vec3::<f32>().unwrap();
    for b in 0..3 {
        let params = SplatParams {
            width: wd,
            height: ht,
            sigma: sigmas[b],
            scale: scales[b],
        };
        let want = render_naive(&pts, &w, &rots[b], shifts[b], &params);
        let got: Vec<f32> = imgs[b].concat();
        let peak = want.iter().cloned().fold(0.0, f64::max);
        assert!(
            max_abs(&got, &want) < 1e-5 * peak.max(1.0),
            "batch item {b}"
        );
    }
    // the stock-op formulation agrees too
    let uv = project(&pts_t, &rot_t, &shift_t, &sc_t, wd, ht).unwrap();
    let wb = w_t
        .unsqueeze(0)
        .unwrap()
        .broadcast_as((3, 40))
        .unwrap()
        .contiguous()
        .unwrap();
    let a = splat(&uv, &wb, &sig_t, wd, ht).unwrap();
    let b = splat_ops(&uv, &wb, &sig_t, wd, ht).unwrap();
    let diff = crate::test_util::max_abs_diff(&a, &b);
    assert!(diff < 1e-5, "custom op vs stock ops differ by {diff}");
}

/// A fixed linear loss `Σ I·T` over random targets, so gradients are easy to check.
fn loss_target(b: usize, ht: usize, wd: usize, seed: u64, dev: &Device) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let t: Vec<f32> = (0..b * ht * wd)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    Tensor::from_vec(t, (b, ht, wd), dev).unwrap()
}

#[test]
fn custom_backward_matches_autograd_of_stock_ops() {
    let dev = Device::Cpu;
    let (b, n, wd, ht) = (2, 25, 30, 26);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let uv: Vec<f32> = (0..b * n * 2)
        .map(|_| rng.random_range(5.0f32..24.0))
        .collect();
    let w: Vec<f32> = (0..b * n).map(|_| rng.random_range(0.5f32..2.0)).collect();
    let target = loss_target(b, ht, wd, 4, &dev);
    let grads_of = |use_op: bool| {
        let uv = Var::from_vec(uv.clone(), (b, n, 2), &dev).unwrap();
        let w = Var::from_vec(w.clone(), (b, n), &dev).unwrap();
        let s = Var::new(&[1.4f32, 2.1], &dev).unwrap();
        let img = if use_op {
            splat(&uv, &w, &s, wd, ht).unwrap()
        } else {
            splat_ops(&uv, &w, &s, wd, ht).unwrap()
        };
        let loss = (img * &target).unwrap().sum_all().unwrap();
        let g = loss.backward().unwrap();
        [uv.as_tensor(), w.as_tensor(), s.as_tensor()].map(|t| {
            g.get(t)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        })
    };
    let op = grads_of(true);
    let stock = grads_of(false);
    for (name, (a, s)) in ["uv", "weights", "sigma"].iter().zip(op.iter().zip(&stock)) {
        let scale = s.iter().map(|x| x.abs()).fold(0.0f32, f32::max);
        assert!(scale > 0.0, "{name}: zero gradient");
        let err = a
            .iter()
            .zip(s)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(
            err < 1e-4 * scale.max(1.0),
            "{name}: max gradient difference {err} (scale {scale})"
        );
    }
}

/// Central finite differences of the full render with respect to every input
/// that refinement and training use: 6-D rotation, shift, σ, scale and points.
#[test]
fn full_render_gradients_match_finite_differences() {
    let dev = Device::Cpu;
    let (pts, w) = random_cloud(30, 9.0, 5);
    let (wd, ht) = (32, 32);
    let target = loss_target(1, ht, wd, 6, &dev);
    let base = (
        vec![0.9f32, 0.2, -0.3, 0.1, 0.8, 0.5],
        vec![1.5f32, -0.7],
        vec![1.7f32],
        vec![1.1f32],
        pts.iter().flatten().copied().collect::<Vec<f32>>(),
    );
    let w_t = Tensor::new(w.clone(), &dev).unwrap();
    let loss_of = |six: &Tensor, shift: &Tensor, sig: &Tensor, sc: &Tensor, p: &Tensor| {
        let rot = rotation_from_6d(six).unwrap();
        let img = render(p, &w_t, &rot, shift, sig, sc, wd, ht).unwrap();
        (img * &target).unwrap().sum_all().unwrap()
    };
    let vars = [
        Var::from_vec(base.0.clone(), (1, 6), &dev).unwrap(),
        Var::from_vec(base.1.clone(), (1, 2), &dev).unwrap(),
        Var::from_vec(base.2.clone(), 1, &dev).unwrap(),
        Var::from_vec(base.3.clone(), 1, &dev).unwrap(),
        Var::from_vec(base.4.clone(), (30, 3), &dev).unwrap(),
    ];
    let loss = loss_of(&vars[0], &vars[1], &vars[2], &vars[3], &vars[4]);
    let grads = loss.backward().unwrap();
    let names = ["rotation (6D)", "shift", "sigma", "scale", "points"];
    for (k, var) in vars.iter().enumerate() {
        let analytic = grads
            .get(var)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let flat = var.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // check a handful of coordinates of each input
        for j in (0..flat.len()).step_by((flat.len() / 6).max(1)) {
            let eps = 1e-2f32;
            let eval = |delta: f32| {
                let mut v = flat.clone();
                v[j] += delta;
                let t = Tensor::from_vec(v, var.dims(), &dev).unwrap();
                let mut args: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
                args[k] = t;
                loss_of(&args[0], &args[1], &args[2], &args[3], &args[4])
                    .to_scalar::<f32>()
                    .unwrap() as f64
            };
            let fd = (eval(eps) - eval(-eps)) / (2.0 * eps as f64);
            let an = analytic[j] as f64;
            let tol = 2e-2 * fd.abs().max(an.abs()).max(0.05);
            assert!(
                (fd - an).abs() < tol,
                "{}[{j}]: analytic {an} vs finite difference {fd}",
                names[k]
            );
        }
    }
}

#[test]
fn rotation_from_6d_is_orthonormal() {
    let dev = Device::Cpu;
    let six = Tensor::new(
        &[
            [1.0f32, 0.3, -0.2, 0.4, 2.0, 0.1],
            [0.0, 0.0, 3.0, 1.0, 1.0, 0.0],
        ],
        &dev,
    )
    .unwrap();
    let r = rotation_from_6d(&six).unwrap().to_vec3::<f32>().unwrap();
    for m in r {
        for i in 0..3 {
            for j in 0..3 {
                let dot: f32 = (0..3).map(|k| m[k][i] * m[k][j]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-5, "RᵀR[{i}][{j}] = {dot}");
            }
        }
        let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
        assert!((det - 1.0).abs() < 1e-5, "det {det}");
    }
}

#[test]
fn invalid_inputs_are_errors() {
    let params = SplatParams::new(16, 16, 0.0);
    let r = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    assert!(render_frame(&[[0.0; 3]], &[1.0], &r, [0.0; 2], &params).is_err());
    let params = SplatParams::new(16, 16, 1.0);
    assert!(render_frame(&[[0.0; 3]], &[], &r, [0.0; 2], &params).is_err());
    let dev = Device::Cpu;
    let uv = Tensor::zeros((1, 3, 2), DType::F32, &dev).unwrap();
    let w = Tensor::zeros((1, 4), DType::F32, &dev).unwrap();
    let s = Tensor::ones(1, DType::F32, &dev).unwrap();
    assert!(splat(&uv, &w, &s, 8, 8).is_err());
}
