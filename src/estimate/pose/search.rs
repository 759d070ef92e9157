//! Starting points without a network: image moments for shift and scale, and
//! a coarse search over the model's symmetry-reduced rotation domain.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::geometry::{sym_eigen3, Mat3, Pose, Quat, Symmetry};
use crate::render::kernel::Scratch;
use crate::render::scene::{ncc, render_state, FitModel, FitState};

/// Intensity moments of a frame above its background.
#[derive(Clone, Copy, Debug)]
pub struct Moments {
    /// Intensity centroid, pixels from the image centre (x right, y down).
    pub centroid: [f64; 2],
    /// Largest variance along a principal direction, px².
    pub major_var: f64,
    /// Background level used (20th percentile).
    pub background: f64,
}

/// Background-subtracted moments; `None` when there is no signal above background.
pub fn image_moments(frame: &[f32], width: usize, height: usize) -> Option<Moments> {
    let mut sorted: Vec<f32> = frame.to_vec();
    let k = sorted.len() / 5;
    let (_, bg, _) = sorted.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
    let bg = *bg as f64;
    let (mut m0, mut mx, mut my) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &v) in frame.iter().enumerate() {
        let w = (v as f64 - bg).max(0.0);
        m0 += w;
        mx += w * ((i % width) as f64 + 0.5);
        my += w * ((i / width) as f64 + 0.5);
    }
    if m0.is_nan() || m0 <= 0.0 {
        return None;
    }
    let (cx, cy) = (mx / m0, my / m0);
    let (mut sxx, mut syy, mut sxy) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &v) in frame.iter().enumerate() {
        let w = (v as f64 - bg).max(0.0);
        let dx = (i % width) as f64 + 0.5 - cx;
        let dy = (i / width) as f64 + 0.5 - cy;
        sxx += w * dx * dx;
        syy += w * dy * dy;
        sxy += w * dx * dy;
    }
    let (sxx, syy, sxy) = (sxx / m0, syy / m0, sxy / m0);
    let tr = sxx + syy;
    let det = sxx * syy - sxy * sxy;
    let major = tr / 2.0 + (tr * tr / 4.0 - det).max(0.0).sqrt();
    Some(Moments {
        centroid: [cx - width as f64 / 2.0, cy - height as f64 / 2.0],
        major_var: major,
        background: bg,
    })
}

/// The principal variances of the model's points (weighted; px², largest
/// first) and their directions (rows, model frame); `None` without weight.
pub fn model_principal_axes(points: &[[f32; 3]], weights: &[f32]) -> Option<([f64; 3], Mat3)> {
    let total: f64 = weights.iter().map(|&w| w as f64).sum();
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    let mut mean = [0.0f64; 3];
    for (p, &w) in points.iter().zip(weights) {
        for k in 0..3 {
            mean[k] += w as f64 * p[k] as f64 / total;
        }
    }
    let mut c = [[0.0f64; 3]; 3];
    for (p, &w) in points.iter().zip(weights) {
        let d = [0, 1, 2].map(|k| p[k] as f64 - mean[k]);
        for i in 0..3 {
            for j in 0..3 {
                c[i][j] += w as f64 * d[i] * d[j] / total;
            }
        }
    }
    Some(sym_eigen3(&c))
}

/// The largest principal variance of the model's points (weighted), model px².
pub fn model_major_var(points: &[[f32; 3]], weights: &[f32]) -> f64 {
    model_principal_axes(points, weights).map_or(0.0, |(l, _)| l[0].max(0.0))
}

/// Scores the fitted state `state` turned about the model-frame `axis` by
/// every multiple of `step_deg` (shift, scale and σ kept); returns
/// `(ncc, rotation)` in spin order, starting at the state itself. For a
/// particle that is nearly symmetric about `axis` (a sparsely labelled
/// ring), the spin is the one parameter the coarse search cannot resolve:
/// its basins are about a PSF wide along the ring, narrower than any
/// affordable grid of SO(3).
pub fn spin_scan(
    frame: &[f32],
    width: usize,
    height: usize,
    model: &FitModel,
    state: &FitState,
    axis: [f64; 3],
    step_deg: f64,
) -> Vec<(f64, Quat)> {
    let steps = (360.0 / step_deg.max(0.1)).round().max(1.0) as usize;
    let turns: Vec<Quat> = (0..steps)
        .map(|k| {
            let turn = Quat::from_axis_angle(axis, (k as f64 * step_deg).to_radians());
            state.pose.q.mul(turn)
        })
        .collect();
    score_rotations(frame, width, height, model, state, &turns)
}

/// Indices of the local maxima of a circular score sequence (a spin scan),
/// best first. A plateau counts once, at its first index.
pub fn circular_peaks(scores: &[f64]) -> Vec<usize> {
    let n = scores.len();
    let mut peaks: Vec<usize> = (0..n)
        .filter(|&k| {
            let prev = scores[(k + n - 1) % n];
            let next = scores[(k + 1) % n];
            scores[k] > prev && scores[k] >= next
        })
        .collect();
    peaks.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    peaks
}

/// Rotations covering the model's rotation domain once up to its symmetry.
///
/// For axial models (C∞, D∞) only the axis matters: `count` axes are spread
/// evenly (Fibonacci lattice) over the canonical part of the sphere. For other
/// models `count` rotations are drawn uniformly from SO(3) with a fixed seed.
pub fn candidate_rotations(symmetry: &Symmetry, count: usize) -> Vec<Quat> {
    let count = count.max(1);
    if symmetry.is_axial() {
        // how much of the sphere is canonical: ± (D∞) and the mirror each halve it
        let fold = if matches!(symmetry.group, crate::geometry::SymmetryGroup::DInf) {
            2
        } else {
            1
        } * if symmetry.mirror_z { 2 } else { 1 };
        let total = count * fold;
        let golden = std::f64::consts::PI * (3.0 - 5f64.sqrt());
        (0..total)
            .filter_map(|i| {
                let z = 1.0 - (2.0 * i as f64 + 1.0) / total as f64;
                let r = (1.0 - z * z).max(0.0).sqrt();
                let a = [
                    r * (golden * i as f64).cos(),
                    r * (golden * i as f64).sin(),
                    z,
                ];
                let c = symmetry.canonical_axis(a);
                let same = (c[0] - a[0]).abs() + (c[1] - a[1]).abs() + (c[2] - a[2]).abs() < 1e-9;
                if same {
                    Quat::from_symmetry_axis(a, 0.0)
                } else {
                    None
                }
            })
            .collect()
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(0x5EED);
        (0..count).map(|_| Quat::random_uniform(&mut rng)).collect()
    }
}

/// Scores every candidate rotation at a fixed shift, scale and σ; returns
/// `(ncc, rotation)` sorted best first.
pub fn coarse_search(
    frame: &[f32],
    width: usize,
    height: usize,
    model: &FitModel,
    base: &FitState,
    candidates: &[Quat],
) -> Vec<(f64, Quat)> {
    let mut scored = score_rotations(frame, width, height, model, base, candidates);
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
}

/// `(ncc, rotation)` of each rotation at `base`'s shift, scale and σ, in order.
fn score_rotations(
    frame: &[f32],
    width: usize,
    height: usize,
    model: &FitModel,
    base: &FitState,
    rotations: &[Quat],
) -> Vec<(f64, Quat)> {
    rotations
        .par_iter()
        .map_init(Scratch::default, |scratch, &q| {
            let st = FitState {
                pose: Pose::new(q, base.pose.shift),
                ..*base
            };
            (
                ncc(frame, &render_state(model, &st, width, height, scratch)),
                q,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circular_peaks_wrap_around_and_come_best_first() {
        // maxima at 4 (0.9) and at 0 (0.7), whose other neighbour is 0.1 across the wrap
        let s = [0.7, 0.5, 0.2, 0.3, 0.9, 0.1];
        assert_eq!(circular_peaks(&s), vec![4, 0]);
        let s = [0.1, 0.5, 0.2, 0.3, 0.9, 0.4];
        assert_eq!(circular_peaks(&s), vec![4, 1]);
        // a flat scan has no peak
        assert!(circular_peaks(&[0.3; 8]).is_empty());
    }

    #[test]
    fn torus_candidates_cover_the_canonical_quarter_sphere_evenly() {
        let c = candidate_rotations(&Symmetry::TORUS, 400);
        assert!((380..=420).contains(&c.len()), "{} candidates", c.len());
        for q in &c {
            let a = q.axis();
            assert!(
                a[2] >= -1e-9 && a[0] >= -1e-9,
                "axis {a:?} outside the canonical region"
            );
        }
        // every axis on the sphere is within ~6° of some candidate (up to symmetry)
        let probe = candidate_rotations(&Symmetry::NONE, 300);
        let worst = probe
            .iter()
            .map(|p| {
                c.iter()
                    .map(|q| Symmetry::TORUS.axis_error(*q, *p))
                    .fold(f64::MAX, f64::min)
            })
            .fold(0.0f64, f64::max)
            .to_degrees();
        assert!(worst < 6.0, "coverage hole of {worst}°");
    }

    #[test]
    fn moments_find_a_shifted_blob() {
        let (w, h) = (64, 48);
        let frame: Vec<f32> = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32 + 0.5 - 40.0, (i / w) as f32 + 0.5 - 20.0);
                10.0 + 100.0 * (-(x * x / 18.0 + y * y / 2.0)).exp()
            })
            .collect();
        let m = image_moments(&frame, w, h).unwrap();
        assert!(
            (m.centroid[0] - 8.0).abs() < 0.05 && (m.centroid[1] + 4.0).abs() < 0.05,
            "{:?}",
            m.centroid
        );
        assert!(
            (m.major_var - 9.0).abs() < 0.3,
            "major variance {}",
            m.major_var
        );
        assert!(image_moments(&[5.0; 100], 10, 10).is_none());
    }
}
