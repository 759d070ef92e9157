//! The likelihood of a particle's localisations under a posed axial model
//! (a torus): the model surface as a weighted cloud of points, each
//! localisation a Gaussian of its own precision (plus the model's blur:
//! label linkage) around the posed surface, mixed with a uniform
//! background over the pick's disc — the approach of SMAP's LocMoFit
//! (Wu et al., Nat. Methods 2023).
//!
//! A localisation with a z (3D SMLM: astigmatism, biplane) is a 3D
//! Gaussian with its own axial precision around the rotated surface; one
//! without is the same Gaussian marginalised over z, which is the 2D one.
//! The z term is what tells an axis from its mirror in z, which no 2D view
//! can.

use super::grid::{PointGrid, RunSlice};
use crate::geometry::{Quat, Vec3};
use crate::simd::{exp_neg, simd_dispatch};

/// A surface symmetric about its z axis, sampled as weighted points.
#[derive(Clone, Debug)]
pub struct AxialModel {
    points: Vec<[f64; 3]>,
    /// Mixture weights, summing to one.
    weights: Vec<f64>,
    /// Extra blur of every localisation (label linkage), nm.
    pub blur_nm: f64,
}

impl AxialModel {
    /// A torus of major radius `major_nm` and tube radius `tube_nm`,
    /// sampled about every `spacing_nm` along both circles with weights
    /// proportional to the area element `(R + r cos v)`; rows of the tube
    /// angle are staggered so the cloud has no lanes. `None` for unusable
    /// sizes (non-finite, R ≤ 0, r < 0, r ≥ R, spacing ≤ 0) or more than
    /// 10⁵ points.
    pub fn torus(major_nm: f64, tube_nm: f64, spacing_nm: f64, blur_nm: f64) -> Option<Self> {
        let [nu, nv] = torus_samples(major_nm, tube_nm, spacing_nm)?;
        Self::torus_sampled(major_nm, tube_nm, [nu, nv], blur_nm)
    }

    /// The same torus with `nu` points around the ring and `nv` around the
    /// tube, whatever its size: a likelihood smooth in `R` and `r` (no
    /// jumps where the point count would change), for fitting the size.
    /// `None` for unusable sizes or more than 10⁵ points.
    pub fn torus_sampled(
        major_nm: f64,
        tube_nm: f64,
        [nu, nv]: [usize; 2],
        blur_nm: f64,
    ) -> Option<Self> {
        let ok = major_nm.is_finite()
            && tube_nm.is_finite()
            && blur_nm.is_finite()
            && major_nm > 0.0
            && tube_nm >= 0.0
            && tube_nm < major_nm
            && blur_nm >= 0.0
            && nu >= 1
            && nv >= 1;
        if !ok || nu.saturating_mul(nv) > 100_000 {
            return None;
        }
        let tau = std::f64::consts::TAU;
        let mut points = Vec::with_capacity(nu * nv);
        let mut weights = Vec::with_capacity(nu * nv);
        for l in 0..nv {
            let v = tau * l as f64 / nv as f64;
            let rho = major_nm + tube_nm * v.cos();
            let z = tube_nm * v.sin();
            let stagger = if l % 2 == 1 { 0.5 } else { 0.0 };
            for k in 0..nu {
                let u = tau * (k as f64 + stagger) / nu as f64;
                points.push([rho * u.cos(), rho * u.sin(), z]);
                weights.push(rho);
            }
        }
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        Some(Self {
            points,
            weights,
            blur_nm,
        })
    }

    /// Number of surface points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True for a model without points (never, for a built one).
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The points after rotating the z axis onto `axis`.
    fn posed(&self, axis: Vec3) -> Option<Vec<[f32; 3]>> {
        let m = Quat::from_symmetry_axis(axis, 0.0)?.to_matrix();
        Some(
            self.points
                .iter()
                .map(|p| {
                    [0, 1, 2].map(|r| (m[r][0] * p[0] + m[r][1] * p[1] + m[r][2] * p[2]) as f32)
                })
                .collect(),
        )
    }
}

/// Points `[around the ring, around the tube]` of a torus sampled about
/// every `spacing_nm` along both circles (at least 8 and 4; one around a
/// tube of radius 0). `None` for non-finite or non-positive sizes.
pub fn torus_samples(major_nm: f64, tube_nm: f64, spacing_nm: f64) -> Option<[usize; 2]> {
    let ok = [major_nm, tube_nm, spacing_nm]
        .iter()
        .all(|v| v.is_finite())
        && major_nm > 0.0
        && tube_nm >= 0.0
        && spacing_nm > 0.0;
    if !ok {
        return None;
    }
    let tau = std::f64::consts::TAU;
    let cap = 1e6; // far beyond the 10⁵ points a model may have
    let nu = (tau * (major_nm + tube_nm) / spacing_nm).ceil().min(cap) as usize;
    let nv = if tube_nm > 0.0 {
        ((tau * tube_nm / spacing_nm).ceil().min(cap) as usize).max(4)
    } else {
        1
    };
    Some([nu.max(8), nv])
}

/// One particle's localisations, nm, with their precisions.
#[derive(Clone, Debug, Default)]
pub struct ParticleLocs {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    /// Lateral precision (1σ).
    pub precision: Vec<f64>,
    /// Axial positions: empty for a 2D table, else one per localisation,
    /// NaN where a localisation has none.
    pub z: Vec<f64>,
    /// Axial precision (1σ) of each localisation with a z (same length as `z`).
    pub precision_z: Vec<f64>,
    /// Area the localisations were gathered from (the pick's disc), nm²:
    /// the support of the uniform background.
    pub area_nm2: f64,
    /// Depth the background of localisations with a z spreads over, nm.
    pub depth_nm: f64,
}

impl ParticleLocs {
    /// Number of localisations.
    pub fn len(&self) -> usize {
        self.x.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// Localisations with a finite z and axial precision.
    pub fn with_z(&self) -> usize {
        self.z
            .iter()
            .zip(&self.precision_z)
            .filter(|(z, p)| z.is_finite() && p.is_finite() && **p > 0.0)
            .count()
    }

    /// The same localisations with z, its precision and the background's
    /// depth multiplied by `s`. (A likelihood of the scaled z is that of
    /// the original times `s` per localisation with a z: the Jacobian.)
    pub fn scaled_z(&self, s: f64) -> Self {
        Self {
            x: self.x.clone(),
            y: self.y.clone(),
            precision: self.precision.clone(),
            z: self.z.iter().map(|z| z * s).collect(),
            precision_z: self.precision_z.iter().map(|p| p * s).collect(),
            area_nm2: self.area_nm2,
            depth_nm: self.depth_nm * s,
        }
    }

    /// The median z of the localisations with one (`None` without).
    pub fn median_z(&self) -> Option<f64> {
        let mut z: Vec<f64> = self.z.iter().copied().filter(|z| z.is_finite()).collect();
        if z.is_empty() {
            return None;
        }
        let mid = z.len() / 2;
        z.select_nth_unstable_by(mid, f64::total_cmp);
        Some(z[mid])
    }
}

/// Beyond this many σ a point's contribution is dropped (e^−12.5 ≈ 4·10⁻⁶).
const CUTOFF_SIGMA: f32 = 5.0;

/// Exponents at or above this are dropped: beyond [`CUTOFF_SIGMA`].
const CUT: f32 = 0.5 * CUTOFF_SIGMA * CUTOFF_SIGMA;

/// One localisation relative to the centre, with its Gaussian's inverse
/// variances (halved); `inv_z` 0 for a localisation without z.
#[derive(Clone, Copy, Debug)]
struct Probe {
    x: f32,
    y: f32,
    z: f32,
    inv: f32,
    inv_z: f32,
}

/// Lanes summed apart, so that the sum vectorises without reassociation.
const LANES: usize = 8;

/// `Σ w·exp(−e)` over `run`, with `e = ((x − px)² + (y − py)²)·inv +
/// (z − pz)²·inv_z`, the points with `e ≥ CUT` left out.
fn gaussian_sum(run: RunSlice<'_>, probe: Probe) -> f64 {
    let mut acc = 0.0f32;
    gaussian_sum_into(run, probe, &mut acc);
    f64::from(acc)
}

simd_dispatch! {
    /// Adds [`gaussian_sum`] of `run` to `acc`.
    fn gaussian_sum_into(run: RunSlice<'_>, probe: Probe, acc: &mut f32) => gaussian_sum_kernel
}

#[inline(always)]
fn gaussian_sum_kernel(run: RunSlice<'_>, p: Probe, acc: &mut f32) {
    let term = |x: f32, y: f32, z: f32, w: f32| {
        let (dx, dy, dz) = (p.x - x, p.y - y, p.z - z);
        let e = (dx * dx + dy * dy) * p.inv + dz * dz * p.inv_z;
        let g = w * exp_neg(-e);
        if e < CUT {
            g
        } else {
            0.0
        }
    };
    let mut lanes = [0.0f32; LANES];
    let (xs, ys) = (run.xs.chunks_exact(LANES), run.ys.chunks_exact(LANES));
    let (zs, ws) = (run.zs.chunks_exact(LANES), run.ws.chunks_exact(LANES));
    let tails = [
        xs.remainder(),
        ys.remainder(),
        zs.remainder(),
        ws.remainder(),
    ];
    for ((x, y), (z, w)) in xs.zip(ys).zip(zs.zip(ws)) {
        for l in 0..LANES {
            lanes[l] += term(x[l], y[l], z[l], w[l]);
        }
    }
    let [x, y, z, w] = tails;
    let rest: f32 = (0..x.len().min(y.len()).min(z.len()).min(w.len()))
        .map(|k| term(x[k], y[k], z[k], w[k]))
        .sum();
    *acc += lanes.iter().sum::<f32>() + rest;
}

/// Negative log-likelihood of `locs` under the model with symmetry axis
/// `axis` centred at `centre` (x, y, z in nm; z matters only for
/// localisations with a z), a fraction `background` of the localisations
/// being uniform over the disc (and, with a z, over `depth_nm`). `None`
/// for a zero axis.
pub fn negative_log_likelihood(
    model: &AxialModel,
    locs: &ParticleLocs,
    axis: Vec3,
    centre: [f64; 3],
    background: f64,
) -> Option<f64> {
    let mut nll = 0.0;
    densities(model, locs, axis, centre, background, |_, d| nll -= d.ln())?;
    Some(nll)
}

/// Each localisation's log density under the same model as
/// [`negative_log_likelihood`] (which is minus their sum).
pub fn log_densities(
    model: &AxialModel,
    locs: &ParticleLocs,
    axis: Vec3,
    centre: [f64; 3],
    background: f64,
) -> Option<Vec<f64>> {
    let mut out = vec![0.0; locs.len()];
    densities(model, locs, axis, centre, background, |i, d| {
        out[i] = d.ln()
    })?;
    Some(out)
}

/// Calls `each(i, density)` for every localisation.
fn densities(
    model: &AxialModel,
    locs: &ParticleLocs,
    axis: Vec3,
    centre: [f64; 3],
    background: f64,
    mut each: impl FnMut(usize, f64),
) -> Option<()> {
    let pts = model.posed(axis)?;
    let blur2 = model.blur_nm * model.blur_nm;
    // every contribution kept lies within CUTOFF_SIGMA lateral σ: cells of
    // half the typical such radius keep a localisation's visit to about
    // (2.5 radii)² of the surface
    let variance = |i: usize| (locs.precision[i] * locs.precision[i] + blur2).max(1e-6);
    let mut radii: Vec<f32> = (0..locs.len())
        .map(|i| CUTOFF_SIGMA * (variance(i) as f32).sqrt())
        .collect();
    let cell = if radii.is_empty() {
        1.0
    } else {
        let mid = radii.len() / 2;
        0.5 * *radii.select_nth_unstable_by(mid, f32::total_cmp).1
    };
    let grid = PointGrid::new(&pts, &model.weights, cell);
    let b = background.clamp(1e-6, 1.0 - 1e-6);
    let floor_2d = b / locs.area_nm2.max(1.0);
    let floor_3d = floor_2d / locs.depth_nm.max(1.0);
    let tau = std::f64::consts::TAU;
    for i in 0..locs.len() {
        let s2 = variance(i);
        let radius = CUTOFF_SIGMA * (s2 as f32).sqrt();
        let inv = (0.5 / s2) as f32;
        let lx = (locs.x[i] - centre[0]) as f32;
        let ly = (locs.y[i] - centre[1]) as f32;
        let depth = locs
            .z
            .get(i)
            .zip(locs.precision_z.get(i))
            .filter(|(z, p)| z.is_finite() && p.is_finite() && **p > 0.0);
        let density = match depth {
            None => {
                let probe = Probe {
                    x: lx,
                    y: ly,
                    z: 0.0,
                    inv,
                    inv_z: 0.0,
                };
                let mut sum = 0.0f64;
                grid.near(lx, ly, radius, |run| sum += gaussian_sum(run, probe));
                floor_2d + (1.0 - b) * sum / (tau * s2)
            }
            Some((&z, &pz)) => {
                // the exponent in units of σ², lateral and axial apart; what
                // counts (below CUT) lies within `radius` laterally
                let s2z = (pz * pz + blur2).max(1e-6);
                let probe = Probe {
                    x: lx,
                    y: ly,
                    z: (z - centre[2]) as f32,
                    inv,
                    inv_z: (0.5 / s2z) as f32,
                };
                let mut sum = 0.0f64;
                grid.near(lx, ly, radius, |run| sum += gaussian_sum(run, probe));
                floor_3d + (1.0 - b) * sum / (tau * s2 * (tau * s2z).sqrt())
            }
        };
        each(i, density);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torus_weights_sum_to_one_and_follow_the_area_element() {
        let m = AxialModel::torus(180.0, 40.0, 12.0, 5.0).unwrap();
        let s: f64 = m.weights.iter().sum();
        assert!((s - 1.0).abs() < 1e-12);
        // each weight is proportional to the area element, the distance from the axis
        let ratio = |k: usize| m.weights[k] / m.points[k][0].hypot(m.points[k][1]);
        assert!((0..m.len()).all(|k| (ratio(k) / ratio(0) - 1.0).abs() < 1e-9));
        let (lo, hi) = m
            .weights
            .iter()
            .fold((1.0f64, 0.0f64), |(a, b), &w| (a.min(w), b.max(w)));
        assert!(
            hi / lo > 1.5 && hi / lo <= 220.0 / 140.0 + 1e-9,
            "{}",
            hi / lo
        );
        assert!(AxialModel::torus(40.0, 180.0, 12.0, 5.0).is_none());
        assert!(AxialModel::torus(180.0, 40.0, 1e-6, 5.0).is_none());
    }

    #[test]
    fn the_likelihood_matches_a_direct_f64_sum_over_every_point() {
        use rand::{Rng, SeedableRng};
        let m = AxialModel::torus(180.0, 40.0, 12.0, 5.0).unwrap();
        let axis = crate::geometry::normalize([0.4, -0.3, 0.8]).unwrap();
        let rot = Quat::from_symmetry_axis(axis, 0.0).unwrap().to_matrix();
        let centre = [15.0, -10.0, 60.0];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut locs = ParticleLocs {
            area_nm2: std::f64::consts::PI * 400.0 * 400.0,
            depth_nm: 800.0,
            ..ParticleLocs::default()
        };
        // near the surface, some far off it, precisions 3–30 nm, every
        // third without a z
        for k in 0..300 {
            let p = m.points[rng.random_range(0..m.len())];
            let off = if k % 7 == 0 { 150.0 } else { 15.0 };
            let q = [0, 1, 2].map(|r| {
                rot[r][0] * p[0] + rot[r][1] * p[1] + rot[r][2] * p[2] + rng.random_range(-off..off)
            });
            locs.x.push(q[0] + centre[0]);
            locs.y.push(q[1] + centre[1]);
            locs.precision.push(rng.random_range(3.0..30.0));
            locs.z.push(if k % 3 == 0 {
                f64::NAN
            } else {
                q[2] + centre[2]
            });
            locs.precision_z.push(rng.random_range(10.0..60.0));
        }
        let b = 0.1;
        let tau = std::f64::consts::TAU;
        let blur2 = m.blur_nm * m.blur_nm;
        let mut reference = 0.0;
        for i in 0..locs.len() {
            let s2 = locs.precision[i].powi(2) + blur2;
            let s2z = locs.precision_z[i].powi(2) + blur2;
            let mut sum = 0.0;
            for (p, w) in m.points.iter().zip(&m.weights) {
                let q = [0, 1, 2].map(|r| rot[r][0] * p[0] + rot[r][1] * p[1] + rot[r][2] * p[2]);
                let (dx, dy) = (locs.x[i] - centre[0] - q[0], locs.y[i] - centre[1] - q[1]);
                let mut e = (dx * dx + dy * dy) / (2.0 * s2);
                if locs.z[i].is_finite() {
                    let dz = locs.z[i] - centre[2] - q[2];
                    e += dz * dz / (2.0 * s2z);
                }
                sum += w * (-e).exp();
            }
            let density = if locs.z[i].is_finite() {
                b / locs.area_nm2 / locs.depth_nm
                    + (1.0 - b) * sum / (tau * s2 * (tau * s2z).sqrt())
            } else {
                b / locs.area_nm2 + (1.0 - b) * sum / (tau * s2)
            };
            reference -= density.ln();
        }
        let nll = negative_log_likelihood(&m, &locs, axis, centre, b).unwrap();
        // f32 arithmetic and the 5σ cut-off (terms below e^−12.5)
        assert!(
            (nll - reference).abs() < 1e-5 * reference.abs(),
            "{nll} vs {reference}"
        );
    }

    #[test]
    fn the_true_axis_and_centre_are_more_likely_than_wrong_ones() {
        // localisations exactly on a tilted ring of 180 nm
        let m = AxialModel::torus(180.0, 0.0, 6.0, 5.0).unwrap();
        let axis = [0.5f64.sin(), 0.0, 0.5f64.cos()];
        let rot = Quat::from_symmetry_axis(axis, 0.0).unwrap().to_matrix();
        let mut locs = ParticleLocs {
            area_nm2: std::f64::consts::PI * 300.0 * 300.0,
            ..ParticleLocs::default()
        };
        for k in 0..90 {
            let u = std::f64::consts::TAU * k as f64 / 90.0;
            let p = [180.0 * u.cos(), 180.0 * u.sin(), 0.0];
            locs.x.push(rot[0][0] * p[0] + rot[0][1] * p[1] + 30.0);
            locs.y.push(rot[1][0] * p[0] + rot[1][1] * p[1] - 20.0);
            locs.precision.push(8.0);
        }
        let at = |l: &ParticleLocs, a: Vec3, c: [f64; 3]| {
            negative_log_likelihood(&m, l, a, c, 0.1).unwrap()
        };
        let c = [30.0, -20.0, 0.0];
        let best = at(&locs, axis, c);
        assert!(best < at(&locs, [0.0, 0.0, 1.0], c));
        assert!(best < at(&locs, axis, [40.0, -20.0, 0.0]));
        // the mirror in z and the opposite axis are the same image
        let mirror_axis = [axis[0], axis[1], -axis[2]];
        let mirror = at(&locs, mirror_axis, c);
        assert!(
            (mirror - best).abs() < 1e-3 * best.abs(),
            "{mirror} vs {best}"
        );
        assert!(negative_log_likelihood(&m, &locs, [0.0; 3], [0.0; 3], 0.1).is_none());

        // with each localisation's z (σz 25 nm, the centre at z 400 nm) the
        // mirror is far less likely, the opposite axis still the same
        let mut deep = locs.clone();
        deep.depth_nm = 800.0;
        for k in 0..90 {
            let u = std::f64::consts::TAU * k as f64 / 90.0;
            deep.z
                .push(400.0 + rot[2][0] * 180.0 * u.cos() + rot[2][1] * 180.0 * u.sin());
            deep.precision_z.push(25.0);
        }
        assert_eq!(deep.with_z(), 90);
        let c = [30.0, -20.0, 400.0];
        let best = at(&deep, axis, c);
        let mirror = at(&deep, mirror_axis, c);
        let opposite = at(&deep, axis.map(|v| -v), c);
        assert!(mirror > best + 100.0, "{mirror} vs {best}");
        assert!((opposite - best).abs() < 1e-6 * best.abs());
        assert!(best < at(&deep, axis, [30.0, -20.0, 450.0]));
        // a localisation without z counts as in 2D: its term is the 2D one
        let mut one = deep.clone();
        one.z[0] = f64::NAN;
        assert_eq!(one.with_z(), 89);
        let drop0 = |l: &mut ParticleLocs| {
            l.x.remove(0);
            l.y.remove(0);
            l.precision.remove(0);
        };
        let (mut rest3, mut first2) = (deep.clone(), locs.clone());
        drop0(&mut rest3);
        rest3.z.remove(0);
        rest3.precision_z.remove(0);
        first2.x.truncate(1);
        first2.y.truncate(1);
        first2.precision.truncate(1);
        let sum = at(&rest3, axis, c) + at(&first2, axis, c);
        assert!((at(&one, axis, c) - sum).abs() < 1e-9 * sum.abs());
    }
}
