//! Render-and-compare refinement of a pose against one frame.
//!
//! # Score
//! The score is the normalised cross-correlation (NCC) between the frame and
//! the rendered model. Fitting `frame ≈ a·render + b` by least squares with the
//! best gain `a` and offset `b` is the same as maximising the NCC, so the fit
//! needs no camera calibration (gain, offset, background, photon count). A
//! Poisson likelihood would be statistically tighter for calibrated photon
//! counts, but users' files rarely state gain and offset; NCC also makes the
//! score comparable across frames and files (1 = perfect, 0 = unrelated).
//!
//! # Method
//! Levenberg–Marquardt on the pose (a rotation increment `ω` applied in the
//! camera frame, `R ← exp([ω]×)·R`), the shift, `ln scale`, `ln σ`, optionally
//! the torus tube radius, and the linear `a`, `b`. Each iteration renders the
//! frame together with its exact derivative images
//! ([`crate::render::kernel::splat_frame_jacobian`]) and solves the damped
//! normal equations (a few dozen unknowns at most).

use crate::geometry::{Pose, Quat, Symmetry};
use crate::render::kernel::{self, splat_frame_jacobian, JacobianSpec, Scratch};
use crate::shapes::Model;

/// A model prepared for fitting: points (pixels) and, optionally, a linear
/// shape mode `points + ρ·mode` (for a torus, ρ is the tube radius).
#[derive(Clone, Debug)]
pub struct FitModel {
    /// Base points in model coordinates (pixels).
    pub base: Vec<[f32; 3]>,
    /// Point weights.
    pub weights: Vec<f32>,
    /// Optional per-point direction of the shape parameter.
    pub mode: Option<Vec<[f32; 3]>>,
    /// Symmetry of the model (for the equivalent starts and the error).
    pub symmetry: Symmetry,
}

impl FitModel {
    /// A rigid model from any point cloud (already in pixels).
    pub fn rigid(model: &Model) -> Self {
        Self {
            base: model.points.clone(),
            weights: model.weights.clone(),
            mode: None,
            symmetry: model.symmetry,
        }
    }

    /// A torus of major radius `major` (pixels) whose tube radius is a fitted
    /// parameter: points are `ring + ρ·(cos v cos φ, cos v sin φ, sin v)`.
    /// The sampling keeps neighbouring points within about 1.8 σ so the
    /// rendered surface is smooth (ripple about 2·exp(−2π²σ²/d²) ≈ 0.5 %).
    pub fn torus(major: f64, tube: f64, sigma: f64) -> Self {
        let spacing = 1.8 * sigma.max(0.3);
        let n_az =
            ((std::f64::consts::TAU * (major + tube) / spacing).ceil() as usize).clamp(12, 720);
        let n_tube = ((std::f64::consts::TAU * tube / spacing).ceil() as usize).clamp(4, 180);
        let mut base = Vec::with_capacity(n_az * n_tube);
        let mut mode = Vec::with_capacity(n_az * n_tube);
        let mut weights = Vec::with_capacity(n_az * n_tube);
        for i in 0..n_az {
            let phi = std::f64::consts::TAU * i as f64 / n_az as f64;
            let (sp, cp) = phi.sin_cos();
            for j in 0..n_tube {
                // symmetric about v = 0 so the set keeps the z mirror
                let v =
                    std::f64::consts::TAU * (j as f64 + 0.5) / n_tube as f64 - std::f64::consts::PI;
                let (sv, cv) = v.sin_cos();
                base.push([(major * cp) as f32, (major * sp) as f32, 0.0]);
                mode.push([(cv * cp) as f32, (cv * sp) as f32, sv as f32]);
                // area element of the torus surface ∝ R + r·cos v
                weights.push(((major + tube * cv) / major) as f32);
            }
        }
        let total: f32 = weights.iter().sum();
        let norm = (n_az * n_tube) as f32 / total;
        weights.iter_mut().for_each(|w| *w *= norm);
        Self {
            base,
            weights,
            mode: Some(mode),
            symmetry: Symmetry::TORUS,
        }
    }

    /// The model points at shape parameter `rho` (the tube radius of a torus).
    pub fn points(&self, rho: f64) -> Vec<[f32; 3]> {
        match &self.mode {
            Some(m) => self
                .base
                .iter()
                .zip(m)
                .map(|(p, d)| [0, 1, 2].map(|k| p[k] + rho as f32 * d[k]))
                .collect(),
            None => self.base.clone(),
        }
    }
}

/// Settings of [`refine`].
#[derive(Clone, Debug)]
pub struct RefineConfig {
    /// Maximum Levenberg–Marquardt iterations.
    pub max_iters: usize,
    /// Stop when the relative decrease of the cost falls below this.
    pub tolerance: f64,
    /// Fit the PSF σ.
    pub fit_sigma: bool,
    /// Fit the model scale.
    pub fit_scale: bool,
    /// Fit the shape parameter (tube radius), when the model has one.
    pub fit_shape: bool,
}

impl Default for RefineConfig {
    fn default() -> Self {
        Self {
            max_iters: 20,
            tolerance: 1e-3,
            fit_sigma: true,
            fit_scale: true,
            fit_shape: true,
        }
    }
}

/// Everything that is fitted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitState {
    /// Rotation and shift.
    pub pose: Pose,
    /// Model scale.
    pub scale: f64,
    /// PSF σ in pixels.
    pub sigma: f64,
    /// Shape parameter (tube radius in model pixels) when the model has one.
    pub shape: f64,
}

/// The outcome of a refinement.
#[derive(Clone, Copy, Debug)]
pub struct RefineResult {
    /// Fitted parameters.
    pub state: FitState,
    /// NCC between the frame and the fitted render (1 is perfect).
    pub score: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Whether the cost stopped decreasing before `max_iters`.
    pub converged: bool,
}

/// Errors from refinement.
#[derive(Debug, thiserror::Error)]
pub enum RefineError {
    /// The frame cannot be fitted.
    #[error("cannot fit this frame: {0}")]
    BadFrame(String),
}

/// Normalised cross-correlation of two images (0 when either is constant).
pub fn ncc(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    if n == 0.0 {
        return 0.0;
    }
    let (mut sa, mut sb) = (0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        sa += x as f64;
        sb += y as f64;
    }
    let (ma, mb) = (sa / n, sb / n);
    let (mut sab, mut saa, mut sbb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa <= 0.0 || sbb <= 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// Checks that a frame can be fitted: the right size and finite pixels.
pub fn check_frame(frame: &[f32], width: usize, height: usize) -> Result<(), RefineError> {
    if frame.len() != width * height || width < 4 || height < 4 {
        return Err(RefineError::BadFrame(format!(
            "{} pixels for a {width}×{height} frame",
            frame.len()
        )));
    }
    if let Some(i) = frame.iter().position(|v| !v.is_finite()) {
        return Err(RefineError::BadFrame(format!(
            "pixel ({}, {}) is {}",
            i % width,
            i / width,
            frame[i]
        )));
    }
    Ok(())
}

/// Renders the model at a state (fast path, no derivatives).
pub fn render_state(
    model: &FitModel,
    state: &FitState,
    width: usize,
    height: usize,
    scratch: &mut Scratch,
) -> Vec<f32> {
    let pts = model.points(state.shape);
    let params = crate::render::SplatParams {
        width,
        height,
        sigma: state.sigma as f32,
        scale: state.scale as f32,
    };
    let mut out = vec![0.0; width * height];
    // sizes and σ are validated by the callers; an error leaves a blank render
    let _ = crate::render::cpu::render_frame_into(
        &pts,
        &model.weights,
        &state.pose.q.to_matrix(),
        state.pose.shift,
        &params,
        scratch,
        &mut out,
    );
    out
}

/// The NCC score of a state against a frame: the live score of the viewer.
pub fn score(
    frame: &[f32],
    width: usize,
    height: usize,
    model: &FitModel,
    state: &FitState,
) -> f64 {
    ncc(
        frame,
        &render_state(model, state, width, height, &mut Scratch::default()),
    )
}

/// Which parameters are free, in Jacobian order.
struct Layout {
    shape: bool,
    log_sigma: bool,
    scale: bool,
}

impl Layout {
    /// `(du, dv)`-driven parameters: ω (3), shift (2), [ln s], [ρ].
    fn geometric(&self) -> usize {
        5 + usize::from(self.scale) + usize::from(self.shape)
    }
}

/// Solves `A·x = b` for a small symmetric positive-definite `A` (Cholesky);
/// `None` when `A` is not positive definite.
fn solve_spd(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[i * n + k] * y[k]).sum();
        y[i] = (b[i] - s) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
        x[i] = (y[i] - s) / l[i * n + i];
    }
    Some(x)
}

/// A frame centred on its mean, with its sum of squares: what every
/// evaluation of the fit needs, computed once.
struct CentredFrame {
    centred: Vec<f32>,
    ss: f64,
}

impl CentredFrame {
    fn new(frame: &[f32]) -> Self {
        let mean = frame.iter().map(|&v| v as f64).sum::<f64>() / frame.len().max(1) as f64;
        let centred: Vec<f32> = frame.iter().map(|&v| (v as f64 - mean) as f32).collect();
        let ss = centred.iter().map(|&v| (v as f64) * (v as f64)).sum();
        Self { centred, ss }
    }

    /// Least-squares gain `a` and offset `b` of `centred ≈ a·img + b`, and the
    /// residual sum of squares. Using the centred frame keeps the sums free
    /// of cancellation, so f32 lanes are accurate enough.
    fn linear_fit(&self, img: &[f32]) -> (f64, f64, f64) {
        let n = img.len() as f64;
        let si = sum(img);
        let var_i = dot(img, img) - si * si / n;
        let cov = dot(img, &self.centred);
        let a = if var_i > 0.0 { cov / var_i } else { 0.0 };
        let b = -a * si / n;
        (a, b, (self.ss - a * cov).max(0.0))
    }
}

/// `Σ x` in f32 lanes of 8, summed in f64.
fn sum(x: &[f32]) -> f64 {
    let mut acc = [0.0f32; 8];
    let mut xc = x.chunks_exact(8);
    for a in &mut xc {
        for k in 0..8 {
            acc[k] += a[k];
        }
    }
    acc.iter().map(|&v| v as f64).sum::<f64>()
        + xc.remainder().iter().map(|&v| v as f64).sum::<f64>()
}

/// `Σ x·y` in f32 lanes of 8, summed in f64 (vectorises; exact enough for normal equations).
fn dot(x: &[f32], y: &[f32]) -> f64 {
    let mut acc = [0.0f32; 8];
    let mut xc = x.chunks_exact(8);
    let mut yc = y.chunks_exact(8);
    for (a, b) in (&mut xc).zip(&mut yc) {
        for k in 0..8 {
            acc[k] += a[k] * b[k];
        }
    }
    let tail: f64 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(a, b)| (*a as f64) * (*b as f64))
        .sum();
    acc.iter().map(|&v| v as f64).sum::<f64>() + tail
}

/// Gauss–Newton normal equations `(H, g)` for the columns
/// `[a·J_0 … a·J_{m−1}, I, 1]` and residual `r = a·I + b − F`.
fn normal_equations(
    jac: &[f32],
    image: &[f32],
    frame: &[f32],
    m: usize,
    a: f64,
    b: f64,
) -> (Vec<f64>, Vec<f64>) {
    let plane = image.len();
    let p = m + 2;
    let col = |j: usize| &jac[j * plane..(j + 1) * plane];
    let residual: Vec<f32> = image
        .iter()
        .zip(frame)
        .map(|(&i, &f)| (a * i as f64 + b - f as f64) as f32)
        .collect();
    let mut h = vec![0.0f64; p * p];
    let mut g = vec![0.0f64; p];
    for i in 0..m {
        for j in 0..=i {
            h[i * p + j] = a * a * dot(col(i), col(j));
        }
        h[m * p + i] = a * dot(image, col(i));
        h[(m + 1) * p + i] = a * sum(col(i));
        g[i] = a * dot(col(i), &residual);
    }
    h[m * p + m] = dot(image, image);
    h[(m + 1) * p + m] = sum(image);
    h[(m + 1) * p + m + 1] = plane as f64;
    g[m] = dot(image, &residual);
    g[m + 1] = sum(&residual);
    for i in 0..p {
        for j in 0..i {
            h[j * p + i] = h[i * p + j];
        }
    }
    (h, g)
}

/// Refines `start` against `frame` (`width × height`, row-major, finite).
pub fn refine(
    frame: &[f32],
    width: usize,
    height: usize,
    model: &FitModel,
    start: &FitState,
    cfg: &RefineConfig,
) -> Result<RefineResult, RefineError> {
    check_frame(frame, width, height)?;
    let layout = Layout {
        shape: cfg.fit_shape && model.mode.is_some(),
        log_sigma: cfg.fit_sigma,
        scale: cfg.fit_scale,
    };
    let k = layout.geometric();
    let spec = JacobianSpec {
        width,
        height,
        sigma: start.sigma as f32,
        params: k,
        log_sigma: layout.log_sigma,
        // derivatives for the step need less reach than the exact cost
        radius_sigmas: 4.0,
    };
    let plane = width * height;
    let n_img = spec.images();
    let p = n_img + 2; // + gain a and offset b
    let mut state = *start;
    let mut scratch = Scratch::default();
    let target = CentredFrame::new(frame);
    let cost_of = |st: &FitState, scratch: &mut Scratch| {
        let img = render_state(model, st, width, height, scratch);
        target.linear_fit(&img).2
    };
    let mut cost = cost_of(&state, &mut scratch);
    let mut lambda = 1e-3;
    let mut image = vec![0.0f32; plane];
    let mut jac = vec![0.0f32; n_img * plane];
    let mut converged = false;
    let mut iterations = 0;
    let n = model.base.len();
    let mut uv = vec![0.0f32; 2 * n];
    let mut dudv = vec![0.0f32; 2 * n * k];
    for _ in 0..cfg.max_iters {
        iterations += 1;
        // per-point positions and sensitivities at the current state
        let rot = state.pose.q.to_matrix();
        let pts = model.points(state.shape);
        let s = state.scale;
        let (cu, cv) = (
            width as f64 / 2.0 + state.pose.shift[0],
            height as f64 / 2.0 + state.pose.shift[1],
        );
        for i in 0..n {
            let q = pts[i].map(|x| x as f64);
            let c = [0, 1, 2].map(|r| rot[r][0] * q[0] + rot[r][1] * q[1] + rot[r][2] * q[2]);
            uv[2 * i] = (cu + s * c[0]) as f32;
            uv[2 * i + 1] = (cv + s * c[1]) as f32;
            let d = &mut dudv[i * 2 * k..(i + 1) * 2 * k];
            // ∂(u, v)/∂θ: ω_x, ω_y, ω_z (camera-frame rotation), shift x, shift y
            let mut sens = [[0.0f64; 2]; 7];
            sens[..5].copy_from_slice(&[
                [0.0, -s * c[2]],
                [s * c[2], 0.0],
                [-s * c[1], s * c[0]],
                [1.0, 0.0],
                [0.0, 1.0],
            ]);
            let mut j = 5;
            if layout.scale {
                sens[j] = [s * c[0], s * c[1]]; // ln scale
                j += 1;
            }
            if let (true, Some(m)) = (layout.shape, &model.mode) {
                let t = m[i].map(|x| x as f64);
                sens[j] =
                    [0, 1].map(|r| s * (rot[r][0] * t[0] + rot[r][1] * t[1] + rot[r][2] * t[2]));
                // shape
            }
            for (dst, sv) in d.chunks_exact_mut(2).zip(&sens) {
                dst[0] = sv[0] as f32;
                dst[1] = sv[1] as f32;
            }
        }
        let spec = JacobianSpec {
            sigma: state.sigma as f32,
            ..spec
        };
        splat_frame_jacobian(&uv, &dudv, &model.weights, &spec, &mut image, &mut jac);
        let (a, b, _) = target.linear_fit(&image);
        let (h, g) = normal_equations(&jac, &image, &target.centred, n_img, a, b);
        // damped steps until one lowers the cost
        let mut improved = false;
        for _ in 0..8 {
            let mut hd = h.clone();
            for i in 0..p {
                hd[i * p + i] += lambda * h[i * p + i].max(1e-12);
            }
            let neg_g: Vec<f64> = g.iter().map(|x| -x).collect();
            let Some(step) = solve_spd(&hd, &neg_g, p) else {
                lambda *= 10.0;
                continue;
            };
            let cand = apply_step(&state, &step, &layout);
            let c = cost_of(&cand, &mut scratch);
            if c < cost {
                let rel = (cost - c) / cost.max(1e-300);
                state = cand;
                cost = c;
                lambda = (lambda / 3.0).max(1e-9);
                improved = true;
                if rel < cfg.tolerance {
                    converged = true;
                }
                break;
            }
            lambda *= 4.0;
        }
        if !improved {
            // no damped step lowers the cost: a (local) minimum
            converged = true;
        }
        if converged {
            break;
        }
    }
    let img = render_state(model, &state, width, height, &mut scratch);
    Ok(RefineResult {
        state,
        score: ncc(&img, frame),
        iterations,
        converged,
    })
}

fn apply_step(state: &FitState, step: &[f64], layout: &Layout) -> FitState {
    let omega = [step[0], step[1], step[2]];
    let q: Quat = Quat::from_rotvec(omega) * state.pose.q;
    let mut next = FitState {
        pose: Pose::new(
            q,
            [state.pose.shift[0] + step[3], state.pose.shift[1] + step[4]],
        ),
        ..*state
    };
    let mut j = 5;
    if layout.scale {
        next.scale = (state.scale * step[j].clamp(-0.5, 0.5).exp()).clamp(0.05, 20.0);
        j += 1;
    }
    if layout.shape {
        next.shape = (state.shape + step[j]).max(0.0);
        j += 1;
    }
    if layout.log_sigma {
        next.sigma = (state.sigma * step[j].clamp(-0.5, 0.5).exp()).clamp(0.3, 30.0);
    }
    next
}

/// Keeps `kernel` in the public path for callers that need raw access.
pub use kernel::TRUNCATE_SIGMAS;

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(model: &FitModel, st: &FitState, size: usize) -> Vec<f32> {
        // a bright particle over an offset, as a camera would see it
        render_state(model, st, size, size, &mut Scratch::default())
            .iter()
            .map(|v| 300.0 * v + 100.0)
            .collect()
    }

    #[test]
    fn recovers_a_perturbed_torus_pose_exactly_without_noise() {
        let truth_model = FitModel::torus(20.0, 5.0, 1.6);
        let truth = FitState {
            pose: Pose::new(Quat::from_euler_zyz_deg(35.0, 55.0, 0.0), [2.5, -1.5]),
            scale: 1.0,
            sigma: 1.6,
            shape: 5.0,
        };
        let frame = frame_of(&truth_model, &truth, 96);
        let start = FitState {
            pose: Pose::new(Quat::from_euler_zyz_deg(45.0, 45.0, 0.0), [0.0, 0.0]),
            scale: 1.1,
            sigma: 2.0,
            shape: 4.0,
        };
        let before = score(&frame, 96, 96, &truth_model, &start);
        let r = refine(
            &frame,
            96,
            96,
            &truth_model,
            &start,
            &RefineConfig::default(),
        )
        .unwrap();
        let err = Symmetry::TORUS
            .axis_error(r.state.pose.q, truth.pose.q)
            .to_degrees();
        assert!(
            err < 0.05,
            "axis error {err}° after {} iterations",
            r.iterations
        );
        assert!(
            r.score > 0.9999 && r.score > before,
            "score {} (start {before})",
            r.score
        );
        assert!((r.state.sigma - 1.6).abs() < 0.01, "σ {}", r.state.sigma);
        assert!(
            (r.state.scale - 1.0).abs() < 0.01,
            "scale {}",
            r.state.scale
        );
        assert!((r.state.shape - 5.0).abs() < 0.1, "tube {}", r.state.shape);
        assert!(
            (r.state.pose.shift[0] - 2.5).abs() < 0.02
                && (r.state.pose.shift[1] + 1.5).abs() < 0.02
        );
        assert!(r.converged);
    }

    #[test]
    fn ncc_is_one_for_affine_copies_and_zero_for_constant() {
        let a: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = a.iter().map(|x| 3.0 * x + 7.0).collect();
        assert!((ncc(&a, &b) - 1.0).abs() < 1e-9);
        let c: Vec<f32> = a.iter().map(|x| -x).collect();
        assert!((ncc(&a, &c) + 1.0).abs() < 1e-9);
        assert_eq!(ncc(&a, &[5.0; 100]), 0.0);
    }

    #[test]
    fn nan_frames_are_rejected() {
        let m = FitModel::torus(10.0, 2.0, 1.5);
        let mut frame = vec![0.0f32; 32 * 32];
        frame[40] = f32::NAN;
        let st = FitState {
            pose: Pose::default(),
            scale: 1.0,
            sigma: 1.5,
            shape: 2.0,
        };
        let e = refine(&frame, 32, 32, &m, &st, &RefineConfig::default()).unwrap_err();
        assert!(e.to_string().contains("(8, 1)"), "{e}");
    }
}
