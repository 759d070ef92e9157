//! The frame the learned structure is reported in.
//!
//! Projections cannot tell a structure from its mirror image: the image of
//! `X` at rotation `R` is the image of `M·X` (M: z → −z) at `M·R·M`. Every
//! pose of a run is fitted to the one current cloud, so the poses share one
//! handedness among themselves; which of the two the run ends in is decided
//! by chance when the symmetric start breaks. The output fixes it by a
//! convention instead:
//!
//! - the cloud is centred on its weighted centroid;
//! - without a symmetry prior, model x is the direction of largest spread,
//!   z the smallest (for a ring or torus, z is its axis);
//! - each axis points the way its third moment is positive (mirroring the
//!   cloud when that takes an odd number of flips), so a structure and its
//!   mirror image come out the same. With a Cₙ/Dₙ prior the symmetry axis
//!   stays model z and only x, y turn (about z) and z may flip.
//!
//! The poses move with the cloud: if `X' = M^m·Q·X`, the pose `R` becomes
//! `M^m·R·Qᵀ·M^m`, which renders the same image.

use crate::geometry::{mat_mul, mat_transpose, sym_eigen3, Mat3, Quat};

/// The proper rotation `q` and mirror flag that bring a cloud into the
/// reporting frame: `X' = M^mirror·Q·X`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Canonical {
    /// Rotation applied to the (centred) cloud.
    pub q: Mat3,
    /// Whether z is then mirrored.
    pub mirror: bool,
}

impl Canonical {
    /// Applies the transform to a point.
    pub fn point(&self, p: [f64; 3]) -> [f64; 3] {
        let m = &self.q;
        let mut x = [0, 1, 2].map(|r| m[r][0] * p[0] + m[r][1] * p[1] + m[r][2] * p[2]);
        if self.mirror {
            x[2] = -x[2];
        }
        x
    }

    /// The pose that renders the transformed cloud as `q` rendered the original.
    pub fn pose(&self, q: Quat) -> Quat {
        let r = mat_mul(&q.to_matrix(), &mat_transpose(&self.q));
        let r = if self.mirror { mirror_conjugate(&r) } else { r };
        Quat::from_matrix(&r)
    }
}

/// `M·R·M` with `M = diag(1, 1, −1)`.
pub fn mirror_conjugate(r: &Mat3) -> Mat3 {
    let mut o = *r;
    o[0][2] = -o[0][2];
    o[1][2] = -o[1][2];
    o[2][0] = -o[2][0];
    o[2][1] = -o[2][1];
    o
}

/// The reporting frame of a centred weighted cloud; `axial` keeps model z
/// (a Cₙ/Dₙ prior).
pub fn canonical(points: &[[f32; 3]], weights: &[f32], axial: bool) -> Canonical {
    let total: f64 = weights.iter().map(|&w| w as f64).sum::<f64>().max(1e-300);
    let mut q = if axial {
        // principal directions within the xy plane only
        let mut c = [[0.0f64; 3]; 3];
        for (p, &w) in points.iter().zip(weights) {
            let (x, y) = (p[0] as f64, p[1] as f64);
            c[0][0] += w as f64 * x * x / total;
            c[0][1] += w as f64 * x * y / total;
            c[1][1] += w as f64 * y * y / total;
        }
        c[1][0] = c[0][1];
        let theta = 0.5 * (2.0 * c[0][1]).atan2(c[0][0] - c[1][1]);
        let (s, co) = theta.sin_cos();
        [[co, s, 0.0], [-s, co, 0.0], [0.0, 0.0, 1.0]]
    } else {
        let mut c = [[0.0f64; 3]; 3];
        for (p, &w) in points.iter().zip(weights) {
            for i in 0..3 {
                for j in 0..3 {
                    c[i][j] += w as f64 * p[i] as f64 * p[j] as f64 / total;
                }
            }
        }
        sym_eigen3(&c).1
    };
    // third moments along each new axis
    let mut skew = [0.0f64; 3];
    for (p, &w) in points.iter().zip(weights) {
        let p = p.map(|x| x as f64);
        for (k, s) in skew.iter_mut().enumerate() {
            let x = q[k][0] * p[0] + q[k][1] * p[1] + q[k][2] * p[2];
            *s += w as f64 * x * x * x;
        }
    }
    // a third moment this small is noise (a mirror-symmetric direction): keep the axis
    let rms = (points
        .iter()
        .zip(weights)
        .map(|(p, &w)| w as f64 * p.iter().map(|&x| (x as f64).powi(2)).sum::<f64>())
        .sum::<f64>()
        / total)
        .sqrt();
    let tiny = 1e-4 * total * rms.powi(3);
    let mut flips = 0;
    for (row, s) in q.iter_mut().zip(skew) {
        if s < -tiny {
            *row = row.map(|x| -x);
            flips += 1;
        }
    }
    // an odd number of flips made the frame improper: undo one with the mirror
    let mirror = flips % 2 == 1;
    if mirror {
        q[2] = q[2].map(|x| -x);
    }
    Canonical { q, mirror }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lumpy() -> (Vec<[f32; 3]>, Vec<f32>) {
        let mut pts = Vec::new();
        for i in 0..40 {
            let t = i as f64 * 0.157;
            pts.push([
                (9.0 * t.cos()) as f32,
                (4.0 * t.sin()) as f32,
                (1.5 * (2.0 * t).sin() + 0.3 * t) as f32,
            ]);
        }
        pts.push([7.0, 3.0, 2.0]);
        let n = pts.len() as f32;
        let c = [0, 1, 2].map(|k| pts.iter().map(|p| p[k]).sum::<f32>() / n);
        let pts: Vec<[f32; 3]> = pts
            .iter()
            .map(|p| [p[0] - c[0], p[1] - c[1], p[2] - c[2]])
            .collect();
        let w = vec![1.0; pts.len()];
        (pts, w)
    }

    fn apply(c: &Canonical, pts: &[[f32; 3]]) -> Vec<[f32; 3]> {
        pts.iter()
            .map(|p| c.point(p.map(|x| x as f64)).map(|x| x as f32))
            .collect()
    }

    #[test]
    fn a_cloud_its_rotation_and_its_mirror_image_land_in_the_same_frame() {
        let (pts, w) = lumpy();
        let base = apply(&canonical(&pts, &w, false), &pts);
        let q = Quat::from_euler_zyz_deg(33.0, 71.0, -12.0).to_matrix();
        let turned: Vec<[f32; 3]> = pts
            .iter()
            .map(|p| {
                [0, 1, 2].map(|r| {
                    (q[r][0] * p[0] as f64 + q[r][1] * p[1] as f64 + q[r][2] * p[2] as f64) as f32
                })
            })
            .collect();
        let mirrored: Vec<[f32; 3]> = turned.iter().map(|p| [p[0], p[1], -p[2]]).collect();
        for other in [turned, mirrored] {
            let o = apply(&canonical(&other, &w, false), &other);
            for (a, b) in base.iter().zip(&o) {
                for k in 0..3 {
                    assert!((a[k] - b[k]).abs() < 1e-3, "{a:?} vs {b:?}");
                }
            }
        }
    }

    #[test]
    fn poses_follow_the_cloud() {
        let (pts, w) = lumpy();
        let c = canonical(&pts, &w, false);
        let r = Quat::from_euler_zyz_deg(-40.0, 20.0, 80.0);
        let r2 = c.pose(r).to_matrix();
        let rm = r.to_matrix();
        for p in &pts {
            let p = p.map(|x| x as f64);
            let x = c.point(p);
            // the same projected (x, y)
            for row in 0..2 {
                let a = rm[row][0] * p[0] + rm[row][1] * p[1] + rm[row][2] * p[2];
                let b = r2[row][0] * x[0] + r2[row][1] * x[1] + r2[row][2] * x[2];
                assert!((a - b).abs() < 1e-9, "{a} vs {b}");
            }
        }
    }
}
