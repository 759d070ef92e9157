//! The structure being learned and its update: a weighted point cloud (the
//! asymmetric unit, expanded by the symmetry prior), the summed image loss
//! of every frame at its pose with its exact gradient through the separable
//! renderer, and Adam.
//!
//! # Loss
//! For frame `f` at pose `R_f`, shift `t_f`, the render `r_f` (PSF σ plus the
//! level's blur) is compared with the crop `d_f` after the best gain and
//! offset: `L_f = min_{a ≥ 0, b} ‖a·r_f + b − d_f‖²`. The gradient with `a, b`
//! held at their optimum is the gradient of `L_f` (they are minimisers). The
//! loss reported is `Σ ω_f L_f / Σ ω_f ‖d_f − d̄_f‖²`: the fraction of the
//! frames' variance the structure leaves unexplained (`1 − NCC²` per frame).

use gemm::Parallelism;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::geometry::{Mat3, Quat};
use crate::render::kernel::{splat_frame, splat_frame_backward, Scratch};

/// A frame's pose in its crop.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CropPose {
    /// Rotation, model to camera.
    pub q: Quat,
    /// Shift from the crop centre, pixels.
    pub shift: [f64; 2],
    /// NCC of the render with the crop at the last assignment.
    pub score: f64,
}

/// The learned points: positions of the asymmetric unit (pixels) and
/// log-weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cloud {
    /// Positions in model coordinates, pixels.
    pub points: Vec<[f32; 3]>,
    /// Natural log of each point's weight.
    pub log_w: Vec<f32>,
}

impl Cloud {
    /// The full cloud: every point under every group rotation (`group[0]` is
    /// the identity), with its weight.
    pub fn expanded(&self, group: &[Mat3]) -> (Vec<[f32; 3]>, Vec<f32>) {
        let mut pts = Vec::with_capacity(self.points.len() * group.len());
        let mut w = Vec::with_capacity(pts.capacity());
        for g in group {
            for (p, &lw) in self.points.iter().zip(&self.log_w) {
                let p = p.map(|x| x as f64);
                pts.push(
                    [0, 1, 2].map(|r| (g[r][0] * p[0] + g[r][1] * p[1] + g[r][2] * p[2]) as f32),
                );
                w.push(lw.exp());
            }
        }
        (pts, w)
    }

    /// Weighted centroid of the expanded cloud.
    pub fn centroid(&self, group: &[Mat3]) -> [f64; 3] {
        let (pts, w) = self.expanded(group);
        let total: f64 = w.iter().map(|&x| x as f64).sum();
        let mut c = [0.0; 3];
        for (p, &wi) in pts.iter().zip(&w) {
            for k in 0..3 {
                c[k] += wi as f64 * p[k] as f64 / total.max(1e-300);
            }
        }
        c
    }

    /// Keeps the weights' mean at 1 and within `[e⁻⁶, e³]` of it (the gain of
    /// each frame absorbs the overall brightness).
    pub fn normalise_weights(&mut self) {
        let n = self.log_w.len().max(1) as f64;
        let mean = self.log_w.iter().map(|&l| (l as f64).exp()).sum::<f64>() / n;
        let shift = mean.ln() as f32;
        for l in &mut self.log_w {
            *l = (*l - shift).clamp(-6.0, 3.0);
        }
    }
}

/// What the loss of one evaluation needs besides the cloud.
pub struct LossInput<'a> {
    /// The crops at the level's blur.
    pub crops: &'a [Vec<f32>],
    /// Side of the crops.
    pub side: usize,
    /// Poses, one per crop.
    pub poses: &'a [CropPose],
    /// Frame weights ω_f.
    pub frame_w: &'a [f32],
    /// Render σ (PSF and the level's blur), pixels.
    pub sigma: f32,
    /// The symmetry group as rotation matrices, identity first.
    pub group: &'a [Mat3],
}

/// The loss and its gradient with respect to the positions (`3·M`) and log-weights (`M`).
pub struct LossGrad {
    /// Unexplained fraction of the frames' variance.
    pub loss: f64,
    /// Gradient of the (normalised) loss with respect to every coordinate.
    pub points: Vec<f32>,
    /// Gradient with respect to every log-weight.
    pub log_w: Vec<f32>,
    /// Per-frame NCC of the render with the crop.
    pub ncc: Vec<f64>,
}

/// Frames per parallel chunk; sums run chunk by chunk in order, so the
/// result does not depend on the number of threads.
const CHUNK: usize = 8;

/// The loss of `cloud` over every frame and its gradient.
pub fn loss_and_grad(cloud: &Cloud, input: &LossInput<'_>) -> LossGrad {
    let m = cloud.points.len();
    let (pts, w) = cloud.expanded(input.group);
    let side = input.side;
    // Per chunk: loss numerator and denominator, then the gradients.
    type Part = (f64, f64, Vec<f64>, Vec<f64>, Vec<f64>);
    let parts: Vec<Part> = input
        .crops
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(ci, crops)| {
            let mut scratch = Scratch::default();
            let mut gp = vec![0.0f64; 3 * m];
            let mut gw = vec![0.0f64; m];
            let (mut num, mut den) = (0.0, 0.0);
            let mut nccs = Vec::with_capacity(crops.len());
            let mut img = vec![0.0f32; side * side];
            let mut uv = vec![0.0f32; 2 * pts.len()];
            for (k, d) in crops.iter().enumerate() {
                let f = ci * CHUNK + k;
                let pose = &input.poses[f];
                let rot = pose.q.to_matrix();
                let c = side as f64 / 2.0;
                for (i, p) in pts.iter().enumerate() {
                    let p = p.map(|x| x as f64);
                    uv[2 * i] = (c
                        + pose.shift[0]
                        + rot[0][0] * p[0]
                        + rot[0][1] * p[1]
                        + rot[0][2] * p[2]) as f32;
                    uv[2 * i + 1] = (c
                        + pose.shift[1]
                        + rot[1][0] * p[0]
                        + rot[1][1] * p[1]
                        + rot[1][2] * p[2]) as f32;
                }
                splat_frame(
                    &uv,
                    &w,
                    input.sigma,
                    side,
                    side,
                    Parallelism::None,
                    &mut scratch,
                    &mut img,
                );
                let n = img.len() as f64;
                let (mut sr, mut sd, mut srr, mut srd, mut sdd) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for (&r, &dv) in img.iter().zip(d) {
                    let (r, dv) = (r as f64, dv as f64);
                    sr += r;
                    sd += dv;
                    srr += r * r;
                    srd += r * dv;
                    sdd += dv * dv;
                }
                let var_r = srr - sr * sr / n;
                let var_d = sdd - sd * sd / n;
                let cov = srd - sr * sd / n;
                let ncc = if var_r > 0.0 && var_d > 0.0 {
                    cov / (var_r * var_d).sqrt()
                } else {
                    0.0
                };
                nccs.push(ncc);
                let omega = input.frame_w[f] as f64;
                den += omega * var_d;
                if var_r.is_nan() || var_r <= 0.0 {
                    num += omega * var_d;
                    continue;
                }
                let a = (cov / var_r).max(0.0);
                let b = (sd - a * sr) / n;
                // residual and dL/dr = 2ω·a·res
                let mut l = 0.0;
                for (g, &dv) in img.iter_mut().zip(d) {
                    let res = a * *g as f64 + b - dv as f64;
                    l += res * res;
                    *g = (2.0 * omega * a * res) as f32;
                }
                num += omega * l;
                if a == 0.0 {
                    continue;
                }
                let g =
                    splat_frame_backward(&uv, &w, input.sigma, side, side, &img, Parallelism::None);
                for (gi, grot) in input.group.iter().enumerate() {
                    // d(u, v)/dp = rows 0 and 1 of R·g
                    let rg = crate::geometry::mat_mul(&rot, grot);
                    for j in 0..m {
                        let e = gi * m + j;
                        let (gu, gv) = (g.uv[2 * e] as f64, g.uv[2 * e + 1] as f64);
                        for k in 0..3 {
                            gp[3 * j + k] += gu * rg[0][k] + gv * rg[1][k];
                        }
                        gw[j] += g.weights[e] as f64 * w[e] as f64;
                    }
                }
            }
            (num, den, gp, gw, nccs)
        })
        .collect();
    let (mut num, mut den) = (0.0, 0.0);
    let mut gp = vec![0.0f64; 3 * m];
    let mut gw = vec![0.0f64; m];
    let mut ncc = Vec::with_capacity(input.crops.len());
    for (a, b, p, w, n) in parts {
        num += a;
        den += b;
        gp.iter_mut().zip(&p).for_each(|(x, y)| *x += y);
        gw.iter_mut().zip(&w).for_each(|(x, y)| *x += y);
        ncc.extend(n);
    }
    let inv = if den > 0.0 { 1.0 / den } else { 0.0 };
    LossGrad {
        loss: num * inv,
        points: gp.iter().map(|&x| (x * inv) as f32).collect(),
        log_w: gw.iter().map(|&x| (x * inv) as f32).collect(),
        ncc,
    }
}

impl Cloud {
    /// Moves every faint point (weight below `floor` of the mean) onto a
    /// bright one, chosen with probability ∝ weight, jittered by 0.5 px; the
    /// two share the bright point's weight. Points that drifted off the
    /// data hold no density and would otherwise stay as strays. Returns the
    /// indices moved (their optimiser state is stale).
    ///
    /// Points farther than `reach` from the origin count as faint too: they
    /// render outside every crop, so no frame moves or dims them.
    pub fn respawn(&mut self, floor: f32, reach: f32, rng: &mut impl rand::Rng) -> Vec<usize> {
        let n = self.points.len();
        let w: Vec<f32> = self.log_w.iter().map(|l| l.exp()).collect();
        let mean = w.iter().sum::<f32>() / n.max(1) as f32;
        let outside = |i: usize| self.points[i].iter().map(|x| x * x).sum::<f32>() > reach * reach;
        let faint: Vec<usize> = (0..n)
            .filter(|&i| w[i] < floor * mean || outside(i))
            .collect();
        let bright: Vec<usize> = (0..n).filter(|&i| w[i] >= mean && !outside(i)).collect();
        if faint.is_empty() || bright.is_empty() {
            return Vec::new();
        }
        let total: f32 = bright.iter().map(|&i| w[i]).sum();
        for &i in &faint {
            let mut pick = rng.random::<f32>() * total;
            let mut donor = bright[bright.len() - 1];
            for &b in &bright {
                pick -= w[b];
                if pick <= 0.0 {
                    donor = b;
                    break;
                }
            }
            let half = self.log_w[donor] - std::f32::consts::LN_2;
            self.log_w[donor] = half;
            self.log_w[i] = half;
            let j = [0; 3].map(|_| (rng.random::<f32>() - 0.5) * 1.0);
            self.points[i] = [0, 1, 2].map(|k| self.points[donor][k] + j[k]);
        }
        faint
    }
}

/// Adam's moment estimates for a parameter vector.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    t: u32,
}

impl Adam {
    /// Forgets the moments of parameters `[i·stride, (i+1)·stride)` for each `i`.
    pub fn reset(&mut self, indices: &[usize], stride: usize) {
        for &i in indices {
            for k in i * stride..(i + 1) * stride {
                if k < self.m.len() {
                    self.m[k] = 0.0;
                    self.v[k] = 0.0;
                }
            }
        }
    }

    /// One step of size `lr` on `params` down `grad`.
    pub fn step(&mut self, params: &mut [f32], grad: &[f32], lr: f32) {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        if self.m.len() != params.len() {
            self.m = vec![0.0; params.len()];
            self.v = vec![0.0; params.len()];
            self.t = 0;
        }
        self.t += 1;
        let c1 = 1.0 - B1.powi(self.t as i32);
        let c2 = 1.0 - B2.powi(self.t as i32);
        for i in 0..params.len() {
            self.m[i] = B1 * self.m[i] + (1.0 - B1) * grad[i];
            self.v[i] = B2 * self.v[i] + (1.0 - B2) * grad[i] * grad[i];
            let mh = self.m[i] / c1;
            let vh = self.v[i] / c2;
            params[i] -= lr * mh / (vh.sqrt() + 1e-12);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Symmetry;

    fn group(s: &str) -> Vec<Mat3> {
        Symmetry::parse(s)
            .unwrap()
            .elements(0)
            .iter()
            .map(|q| q.to_matrix())
            .collect()
    }

    fn toy() -> (Cloud, Vec<Vec<f32>>, Vec<CropPose>) {
        let cloud = Cloud {
            points: vec![[3.0, 1.0, -2.0], [-4.0, 2.5, 1.0], [0.5, -3.0, 2.0]],
            log_w: vec![0.1, -0.2, 0.3],
        };
        let side = 24;
        let poses: Vec<CropPose> = (0..3)
            .map(|f| CropPose {
                q: Quat::from_euler_zyz_deg(30.0 * f as f64, 40.0 + 10.0 * f as f64, 5.0),
                shift: [0.3 * f as f64, -0.2],
                score: 0.0,
            })
            .collect();
        // the data: a slightly different cloud at the same poses, plus a pattern
        let other = Cloud {
            points: vec![[2.0, 1.5, -1.0], [-3.0, 2.0, 1.5], [1.0, -2.0, 2.5]],
            log_w: vec![0.0; 3],
        };
        let (pts, w) = other.expanded(&[crate::geometry::mat_identity()]);
        let crops: Vec<Vec<f32>> = poses
            .iter()
            .enumerate()
            .map(|(f, pose)| {
                let rot = pose.q.to_matrix();
                let uv: Vec<f32> = pts
                    .iter()
                    .flat_map(|p| {
                        let p = p.map(|x| x as f64);
                        [0, 1].map(|r| {
                            (12.0
                                + pose.shift[r]
                                + rot[r][0] * p[0]
                                + rot[r][1] * p[1]
                                + rot[r][2] * p[2]) as f32
                        })
                    })
                    .collect();
                let mut img = vec![0.0f32; side * side];
                splat_frame(
                    &uv,
                    &w,
                    1.7,
                    side,
                    side,
                    Parallelism::None,
                    &mut Scratch::default(),
                    &mut img,
                );
                img.iter()
                    .enumerate()
                    .map(|(i, v)| 5.0 * v + ((i * (f + 3)) % 17) as f32 / 170.0)
                    .collect()
            })
            .collect();
        (cloud, crops, poses)
    }

    #[test]
    fn gradient_matches_finite_differences() {
        for sym in ["c1", "c3", "d2"] {
            let g = group(sym);
            let (cloud, crops, poses) = toy();
            let input = LossInput {
                crops: &crops,
                side: 24,
                poses: &poses,
                frame_w: &[1.0, 0.5, 1.0],
                sigma: 1.7,
                group: &g,
            };
            let lg = loss_and_grad(&cloud, &input);
            assert!(
                lg.loss > 0.01 && lg.ncc.iter().all(|&c| c > 0.2),
                "{} {:?}",
                lg.loss,
                lg.ncc
            );
            assert!(
                lg.points.iter().any(|g| g.abs() > 1e-3),
                "a gradient to check"
            );
            let h = 1e-2f32;
            for j in 0..3 {
                for k in 0..3 {
                    let mut plus = cloud.clone();
                    plus.points[j][k] += h;
                    let mut minus = cloud.clone();
                    minus.points[j][k] -= h;
                    let fd = (loss_and_grad(&plus, &input).loss
                        - loss_and_grad(&minus, &input).loss)
                        / (2.0 * h as f64);
                    let an = lg.points[3 * j + k] as f64;
                    assert!(
                        (fd - an).abs() < 2e-3 * fd.abs().max(an.abs()).max(1e-3),
                        "{sym} point {j} coord {k}: analytic {an} vs finite difference {fd}"
                    );
                }
                let mut plus = cloud.clone();
                plus.log_w[j] += h;
                let mut minus = cloud.clone();
                minus.log_w[j] -= h;
                let fd = (loss_and_grad(&plus, &input).loss - loss_and_grad(&minus, &input).loss)
                    / (2.0 * h as f64);
                let an = lg.log_w[j] as f64;
                assert!(
                    (fd - an).abs() < 2e-3 * fd.abs().max(an.abs()).max(1e-3),
                    "{sym} weight {j}: analytic {an} vs finite difference {fd}"
                );
            }
        }
    }

    #[test]
    fn adam_walks_down_a_bowl() {
        let mut x = [3.0f32, -2.0];
        let mut adam = Adam::default();
        for _ in 0..400 {
            let g = [2.0 * x[0], 2.0 * x[1]];
            adam.step(&mut x, &g, 0.05);
        }
        assert!(x[0].abs() < 0.05 && x[1].abs() < 0.05, "{x:?}");
    }
}
