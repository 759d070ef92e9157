//! The posed-model scene: a model prepared for fitting ([`FitModel`]), the
//! state it is posed in ([`FitState`]: pose, scale, PSF σ, shape), its render
//! at that state and the score of that render against a frame (NCC).
//!
//! This is the shared vocabulary of refinement, the viewer's live view and
//! score, and the PNG export: all three render a state through
//! [`render_state`] and score it through [`score`], so the score the viewer
//! shows is the score a fit reports.

use crate::geometry::{Pose, Symmetry};
use crate::render::kernel::Scratch;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ncc_is_one_for_affine_copies_and_zero_for_constant() {
        let a: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = a.iter().map(|x| 3.0 * x + 7.0).collect();
        assert!((ncc(&a, &b) - 1.0).abs() < 1e-9);
        let c: Vec<f32> = a.iter().map(|x| -x).collect();
        assert!((ncc(&a, &c) + 1.0).abs() < 1e-9);
        assert_eq!(ncc(&a, &[5.0; 100]), 0.0);
    }
}
