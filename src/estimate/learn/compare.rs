//! Comparing a learned structure with a known one: the best global
//! alignment (a rotation, and the mirror, which projections cannot tell),
//! the mean symmetric Chamfer distance after it, the poses carried into the
//! known model's frame by the same alignment, and the radius of a ring.

use serde::Serialize;

use crate::estimate::pose::eval::{evaluate, EvalReport};
use crate::geometry::{mat_mul, mat_transpose, sym_eigen3, Mat3, Pose, Quat, Symmetry};
use crate::io::PoseRow;
use crate::shapes::Model;

use super::assign::rotation_grid;
use super::convention::mirror_conjugate;

/// How the learned cloud lies on the known one: `known ≈ G·M^mirror·learned`.
#[derive(Clone, Copy, Debug)]
pub struct Alignment {
    /// Rotation `G`.
    pub g: Mat3,
    /// Whether the learned cloud is mirrored (z → −z) first.
    pub mirror: bool,
    /// Mean symmetric Chamfer distance after the alignment, pixels.
    pub chamfer: f64,
}

impl Alignment {
    /// A learned pose expressed for the known model: it renders the known
    /// model as the learned pose renders the learned cloud.
    pub fn pose_for_known(&self, q: Quat) -> Quat {
        // learned = M^m·Gᵀ·known, so R·learned projects as M^m·R·M^m·Gᵀ·known
        let r = q.to_matrix();
        let r = if self.mirror { mirror_conjugate(&r) } else { r };
        Quat::from_matrix(&mat_mul(&r, &mat_transpose(&self.g)))
    }
}

fn centred(points: &[[f32; 3]], weights: &[f32]) -> Vec<[f64; 3]> {
    let total: f64 = weights.iter().map(|&w| w as f64).sum::<f64>().max(1e-300);
    let mut c = [0.0; 3];
    for (p, &w) in points.iter().zip(weights) {
        for k in 0..3 {
            c[k] += w as f64 * p[k] as f64 / total;
        }
    }
    points
        .iter()
        .map(|p| [0, 1, 2].map(|k| p[k] as f64 - c[k]))
        .collect()
}

/// Mean of the nearest-neighbour distances from `a` to `b`.
fn one_way(a: &[[f64; 3]], b: &[[f64; 3]]) -> f64 {
    let mut sum = 0.0;
    for p in a {
        let mut best = f64::MAX;
        for q in b {
            let d = (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2);
            best = best.min(d);
        }
        sum += best.sqrt();
    }
    sum / a.len().max(1) as f64
}

/// The mean symmetric Chamfer distance: the average of both one-way mean
/// nearest-neighbour distances.
pub fn chamfer(a: &[[f64; 3]], b: &[[f64; 3]]) -> f64 {
    0.5 * (one_way(a, b) + one_way(b, a))
}

fn transform(g: &Mat3, mirror: bool, pts: &[[f64; 3]]) -> Vec<[f64; 3]> {
    pts.iter()
        .map(|p| {
            let p = if mirror { [p[0], p[1], -p[2]] } else { *p };
            [0, 1, 2].map(|r| g[r][0] * p[0] + g[r][1] * p[1] + g[r][2] * p[2])
        })
        .collect()
}

/// Every `stride`-th point, so that searches stay fast on big clouds.
fn thin(pts: &[[f64; 3]], most: usize) -> Vec<[f64; 3]> {
    let stride = pts.len().div_ceil(most.max(1)).max(1);
    pts.iter().step_by(stride).copied().collect()
}

/// The learned points that carry weight (faint points are left out: they
/// hold no density).
pub fn significant(points: &[[f32; 3]], weights: &[f32]) -> (Vec<[f32; 3]>, Vec<f32>) {
    let mean = weights.iter().map(|&w| w as f64).sum::<f64>() / weights.len().max(1) as f64;
    points
        .iter()
        .zip(weights)
        .filter(|(_, &w)| w as f64 >= 0.2 * mean)
        .map(|(p, &w)| (*p, w))
        .unzip()
}

/// The rotation and mirror that bring the learned cloud closest to the
/// known one (both centred on their weighted centroids), by Chamfer
/// distance: principal-axis matches and a grid of rotations, each with and
/// without the mirror, then a local search from the best.
pub fn align(learned: &[[f32; 3]], lw: &[f32], known: &[[f32; 3]], kw: &[f32]) -> Alignment {
    let (lp, lwt) = significant(learned, lw);
    let l = centred(&lp, &lwt);
    let k = centred(known, kw);
    let (ls, ks) = (thin(&l, 300), thin(&k, 600));
    let cov = |pts: &[[f64; 3]]| {
        let mut c = [[0.0; 3]; 3];
        for p in pts {
            for i in 0..3 {
                for j in 0..3 {
                    c[i][j] += p[i] * p[j];
                }
            }
        }
        c
    };
    let mut cands: Vec<(Mat3, bool)> = Vec::new();
    for mirror in [false, true] {
        let lm = transform(&crate::geometry::mat_identity(), mirror, &l);
        let (_, vl) = sym_eigen3(&cov(&lm));
        let (_, vk) = sym_eigen3(&cov(&k));
        for signs in [
            [1.0, 1.0, 1.0],
            [-1.0, -1.0, 1.0],
            [-1.0, 1.0, -1.0],
            [1.0, -1.0, -1.0],
        ] {
            // G = Vkᵀ·S·Vl maps the learned principal axes onto the known ones
            let mut s_vl = vl;
            for (row, s) in s_vl.iter_mut().zip(signs) {
                *row = row.map(|x| x * s);
            }
            cands.push((mat_mul(&mat_transpose(&vk), &s_vl), mirror));
        }
        for q in rotation_grid(1500) {
            cands.push((q.to_matrix(), mirror));
        }
    }
    let cost = |g: &Mat3, m: bool| {
        one_way(&transform(g, m, &ls), &ks) + one_way(&ks, &transform(g, m, &ls))
    };
    let mut best = cands
        .iter()
        .map(|(g, m)| (cost(g, *m), *g, *m))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .expect("candidates");
    // local search: shrinking random turns
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(7);
    let mut step = 6f64.to_radians();
    for _ in 0..8 {
        for _ in 0..40 {
            let axis = Quat::random_uniform(&mut rng).axis();
            let turn = Quat::from_axis_angle(axis, step).to_matrix();
            let g = mat_mul(&turn, &best.1);
            let c = cost(&g, best.2);
            if c < best.0 {
                best = (c, g, best.2);
            }
        }
        step *= 0.5;
    }
    let full = chamfer(&transform(&best.1, best.2, &l), &k);
    Alignment {
        g: best.1,
        mirror: best.2,
        chamfer: full,
    }
}

/// The weighted mean distance of the points from model z: the radius of a
/// ring or torus in the reporting frame.
pub fn ring_radius(points: &[[f32; 3]], weights: &[f32]) -> f64 {
    let total: f64 = weights.iter().map(|&w| w as f64).sum::<f64>().max(1e-300);
    points
        .iter()
        .zip(weights)
        .map(|(p, &w)| w as f64 * (p[0] as f64).hypot(p[1] as f64))
        .sum::<f64>()
        / total
}

/// A learned structure and its poses against a known model and the true poses.
#[derive(Clone, Debug, Serialize)]
pub struct StructureReport {
    /// Mean symmetric Chamfer distance after the best alignment, pixels.
    pub chamfer_px: f64,
    /// Whether the best alignment mirrors the learned cloud.
    pub mirrored: bool,
    /// Weighted mean distance of the learned points from model z, pixels.
    pub ring_radius_px: f64,
    /// The learned poses, carried into the known model's frame by the same
    /// alignment, against the truth (with the known model's symmetry).
    pub poses: EvalReport,
}

/// Compares a learned cloud and its poses with a known model and true poses
/// (`symmetry`: the known model's, for the pose errors).
pub fn structure_report(
    learned: &Model,
    known: &Model,
    truth: &[PoseRow],
    pred: &[PoseRow],
    symmetry: &Symmetry,
) -> StructureReport {
    let a = align(
        &learned.points,
        &learned.weights,
        &known.points,
        &known.weights,
    );
    let carried: Vec<PoseRow> = pred
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if r.pose.q.is_finite() {
                r.pose = Pose::new(a.pose_for_known(r.pose.q), r.pose.shift);
            }
            r
        })
        .collect();
    StructureReport {
        chamfer_px: a.chamfer,
        mirrored: a.mirror,
        ring_radius_px: ring_radius(&learned.points, &learned.weights),
        poses: evaluate(truth, &carried, symmetry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asym() -> Vec<[f32; 3]> {
        let mut pts = Vec::new();
        for i in 0..60 {
            let t = std::f64::consts::TAU * i as f64 / 60.0;
            pts.push([(10.0 * t.cos()) as f32, (10.0 * t.sin()) as f32, 0.0]);
        }
        for i in 0..12 {
            pts.push([12.0, 2.0, i as f32]);
        }
        pts
    }

    #[test]
    fn a_turned_mirrored_copy_aligns_back_to_zero_distance() {
        let known = asym();
        let w = vec![1.0; known.len()];
        let g = Quat::from_euler_zyz_deg(40.0, 65.0, -100.0).to_matrix();
        let learned: Vec<[f32; 3]> = known
            .iter()
            .map(|p| {
                let x = [0, 1, 2]
                    .map(|r| g[r][0] * p[0] as f64 + g[r][1] * p[1] as f64 + g[r][2] * p[2] as f64);
                [x[0] as f32 + 3.0, x[1] as f32, -x[2] as f32]
            })
            .collect();
        let a = align(&learned, &w, &known, &w);
        assert!(a.mirror, "the copy is mirrored");
        assert!(a.chamfer < 0.05, "chamfer {}", a.chamfer);
        // a pose of the learned cloud renders the known model the same way
        let r = Quat::from_euler_zyz_deg(10.0, 80.0, 30.0);
        let rk = a.pose_for_known(r).to_matrix();
        let rl = r.to_matrix();
        let lc = centred(&learned, &w);
        let kc = centred(&known, &w);
        for (pl, pk) in lc.iter().zip(&kc) {
            for row in 0..2 {
                let a1 = rl[row][0] * pl[0] + rl[row][1] * pl[1] + rl[row][2] * pl[2];
                let b1 = rk[row][0] * pk[0] + rk[row][1] * pk[1] + rk[row][2] * pk[2];
                assert!((a1 - b1).abs() < 0.1, "{a1} vs {b1}");
            }
        }
        // and an unrelated blob is far
        let blob: Vec<[f32; 3]> = (0..50)
            .map(|i| [(i % 5) as f32, (i / 5 % 5) as f32, 0.0])
            .collect();
        assert!(align(&blob, &[1.0; 50], &known, &w).chamfer > 2.0);
    }

    #[test]
    fn ring_radius_of_a_ring() {
        let pts = asym()[..60].to_vec();
        assert!((ring_radius(&pts, &vec![1.0; 60]) - 10.0).abs() < 1e-4);
    }
}
