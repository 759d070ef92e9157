//! Tests of the separable splat kernel against the f64 reference and finite differences.

use super::*;

#[test]
fn exp_neg_matches_std() {
    let mut worst = 0.0f64;
    let mut x = -87.0f32;
    while x <= 0.0 {
        let want = (x as f64).exp();
        let got = exp_neg(x) as f64;
        worst = worst.max(((got - want) / want).abs());
        x += 0.0137;
    }
    assert!(worst < 5e-7, "worst relative error {worst}");
    assert_eq!(exp_neg(0.0), 1.0);
}

#[test]
fn profiles_peak_at_centre() {
    let mut out = vec![0.0; 2 * 16];
    profiles(&[3.5, 10.5], 16, 1.5, Profile::Gauss, &mut out);
    assert!((out[3] - 1.0).abs() < 1e-6);
    assert!((out[16 + 10] - 1.0).abs() < 1e-6);
    let want = (-(2.0f32 * 2.0) / (2.0 * 1.5 * 1.5)).exp();
    assert!((out[5] - want).abs() < 1e-6);
}

#[test]
fn windowed_matches_dense_forward_and_backward() {
    // points inside, on the border and outside the frame
    let uv: Vec<f32> = vec![
        20.3, 30.7, 0.2, 5.0, -3.0, 12.0, 63.9, 63.9, 70.0, 10.0, 31.0, -2.5, 44.4, 17.7, 10.0,
        50.0,
    ];
    let w = vec![1.0, 2.0, 0.5, 1.5, 3.0, 1.0, 0.7, 1.2];
    let (wd, ht) = (64, 60);
    let mut rng = 12345u32;
    let grad: Vec<f32> = (0..wd * ht)
        .map(|_| {
            rng = rng.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (rng >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect();
    for sigma in [0.8f32, 1.6, 2.2] {
        assert!(!prefer_dense(sigma, wd, ht));
        let mut a = vec![0.0; wd * ht];
        let mut b = vec![0.0; wd * ht];
        splat_frame(
            &uv,
            &w,
            sigma,
            wd,
            ht,
            Parallelism::None,
            &mut Scratch::default(),
            &mut a,
        );
        splat_frame_dense(
            &uv,
            &w,
            sigma,
            wd,
            ht,
            Parallelism::None,
            &mut Scratch::default(),
            &mut b,
        );
        let peak = b.iter().cloned().fold(0.0f32, f32::max);
        let err = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-6 * peak, "σ={sigma}: forward differs by {err}");
        splat_frame_fit(&uv, &w, sigma, wd, ht, &mut Scratch::default(), &mut a);
        let err = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-6 * peak, "σ={sigma}: fit render differs by {err}");
        let ga = splat_frame_backward(&uv, &w, sigma, wd, ht, &grad, Parallelism::None);
        let gb = splat_frame_backward_dense(&uv, &w, sigma, wd, ht, &grad, Parallelism::None);
        let close = |x: &[f32], y: &[f32]| {
            let scale = y.iter().map(|v| v.abs()).fold(1e-3f32, f32::max);
            x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-4 * scale)
        };
        assert!(
            close(&ga.uv, &gb.uv),
            "σ={sigma}: uv grads {:?} vs {:?}",
            ga.uv,
            gb.uv
        );
        assert!(close(&ga.weights, &gb.weights), "σ={sigma}: weight grads");
        assert!(
            (ga.sigma - gb.sigma).abs() < 1e-4 * gb.sigma.abs().max(1e-3),
            "σ grads"
        );
    }
}

#[test]
fn jacobian_matches_finite_differences() {
    // two parameters: a shift in u for all points, and a "spread" that moves points apart in v
    let uv: Vec<f32> = vec![20.3, 30.7, 25.1, 28.2, 31.0, 33.9, 2.0, 40.0];
    let n = uv.len() / 2;
    let dudv: Vec<f32> = (0..n)
        .flat_map(|i| [1.0, 0.0, 0.0, i as f32 - 1.5])
        .collect();
    let w = vec![1.0, 2.0, 0.5, 1.5];
    let spec = JacobianSpec {
        width: 48,
        height: 52,
        sigma: 1.7,
        params: 2,
        log_sigma: true,
        radius_sigmas: TRUNCATE_SIGMAS,
    };
    let plane = spec.width * spec.height;
    let mut img = vec![0.0; plane];
    let mut jac = vec![0.0; 3 * plane];
    splat_frame_jacobian(&uv, &dudv, &w, &spec, &mut img, &mut jac);
    let render = |uv: &[f32], sigma: f32| {
        let mut out = vec![0.0; plane];
        splat_frame_dense(
            uv,
            &w,
            sigma,
            spec.width,
            spec.height,
            Parallelism::None,
            &mut Scratch::default(),
            &mut out,
        );
        out
    };
    let base = render(&uv, spec.sigma);
    let peak = base.iter().cloned().fold(0.0f32, f32::max);
    assert!(img
        .iter()
        .zip(&base)
        .all(|(a, b)| (a - b).abs() < 1e-6 * peak));
    let eps = 1e-2f32;
    for kk in 0..2 {
        let moved = |t: f32| -> Vec<f32> {
            let mut q = uv.clone();
            for i in 0..n {
                q[2 * i] += t * dudv[(i * 2 + kk) * 2];
                q[2 * i + 1] += t * dudv[(i * 2 + kk) * 2 + 1];
            }
            render(&q, spec.sigma)
        };
        let (p, m) = (moved(eps), moved(-eps));
        let analytic = &jac[kk * plane..(kk + 1) * plane];
        let scale = analytic.iter().map(|x| x.abs()).fold(0.0f32, f32::max);
        assert!(scale > 0.0);
        for px in 0..plane {
            let fd = (p[px] - m[px]) / (2.0 * eps);
            assert!(
                (fd - analytic[px]).abs() < 2e-3 * scale,
                "param {kk} pixel {px}: {fd} vs {}",
                analytic[px]
            );
        }
    }
    let (p, m) = (
        render(&uv, spec.sigma * eps.exp()),
        render(&uv, spec.sigma * (-eps).exp()),
    );
    let analytic = &jac[2 * plane..];
    let scale = analytic.iter().map(|x| x.abs()).fold(0.0f32, f32::max);
    for px in 0..plane {
        let fd = (p[px] - m[px]) / (2.0 * eps);
        assert!(
            (fd - analytic[px]).abs() < 2e-3 * scale,
            "ln σ pixel {px}: {fd} vs {}",
            analytic[px]
        );
    }
}
