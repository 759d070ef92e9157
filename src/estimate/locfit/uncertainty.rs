//! The standard error of a localisation fit's axis: the sandwich
//! covariance `H⁻¹·M·H⁻¹` of the likelihood's parameters at the fit, with
//! `H` the Hessian of the negative log-likelihood and `M` the spread of the
//! per-localisation scores summed over *clusters* of nearby localisations.
//!
//! The likelihood treats every localisation as an independent draw from
//! the surface, but the blinks of one label are not: they scatter about the
//! same point. With `M = H` (each localisation its own cluster, the model
//! exact) this is the Fisher-information error; clustering the
//! localisations that lie within a few precisions of each other (most
//! blinks of one label, and sometimes two labels) makes the error count
//! labels rather than blinks. Derivatives are central differences.

use super::likelihood::{log_densities, negative_log_likelihood, AxialModel, ParticleLocs};
use super::{LocFit, LocFitOptions, TangentPlane};
use crate::geometry::{solve_spd, Vec3};

/// Finite-difference steps: axis tilts (rad), centre x, y, z (nm).
const STEPS: [f64; 5] = [0.01, 0.01, 1.0, 1.0, 2.0];

/// Localisations closer than this many times their precision (the larger
/// of the pair's, lateral) are one cluster.
pub const CLUSTER_PRECISIONS: f64 = 2.5;

/// The fit's parameters as the covariance sees them: two tilts in the
/// tangent plane of the fitted axis and the centre (with z for 3D fits).
struct Params<'a> {
    fit: &'a LocFit,
    plane: TangentPlane,
    n: usize,
}

impl Params<'_> {
    fn at(&self, p: &[f64]) -> Option<(Vec3, [f64; 3])> {
        let axis = self.plane.tilted(p[0], p[1])?;
        let z = self.fit.z_centre_nm.unwrap_or(0.0) + p.get(4).copied().unwrap_or(0.0);
        let [x, y] = self.fit.centre_nm;
        Some((axis, [x + p[2], y + p[3], z]))
    }

    /// The point `k·h_i + l·h_j` away from the fit.
    fn offset(&self, moves: &[(usize, f64)]) -> Vec<f64> {
        let mut p = vec![0.0; self.n];
        for &(i, k) in moves {
            p[i] += k * STEPS[i];
        }
        p
    }
}

/// The axis's standard error of `fit` (from [`super::fit_axis`] on `locs`
/// with `model`), degrees: the root of the summed variances of the two
/// tilts. NaN when the curvature is not positive definite or a likelihood
/// is not finite.
pub fn axis_standard_error(
    model: &AxialModel,
    locs: &ParticleLocs,
    fit: &LocFit,
    opts: &LocFitOptions,
) -> f64 {
    let n = if fit.z_centre_nm.is_some() { 5 } else { 4 };
    let par = Params {
        fit,
        plane: TangentPlane::new(fit.axis),
        n,
    };
    let nll = |p: &[f64]| {
        par.at(p)
            .and_then(|(a, c)| negative_log_likelihood(model, locs, a, c, opts.background))
            .unwrap_or(f64::NAN)
    };
    // the Hessian of the negative log-likelihood
    let f0 = nll(&vec![0.0; n]);
    let mut h = vec![0.0; n * n];
    for i in 0..n {
        let (fp, fm) = (
            nll(&par.offset(&[(i, 1.0)])),
            nll(&par.offset(&[(i, -1.0)])),
        );
        h[i * n + i] = (fp - 2.0 * f0 + fm) / (STEPS[i] * STEPS[i]);
        for j in 0..i {
            let f = |a: f64, b: f64| nll(&par.offset(&[(i, a), (j, b)]));
            let v = (f(1.0, 1.0) - f(1.0, -1.0) - f(-1.0, 1.0) + f(-1.0, -1.0))
                / (4.0 * STEPS[i] * STEPS[j]);
            h[i * n + j] = v;
            h[j * n + i] = v;
        }
    }
    // each localisation's score (gradient of its log density)
    let logs = |p: &[f64]| {
        par.at(p)
            .and_then(|(a, c)| log_densities(model, locs, a, c, opts.background))
    };
    let mut scores = vec![vec![0.0; n]; locs.len()];
    for i in 0..n {
        let (Some(up), Some(down)) = (
            logs(&par.offset(&[(i, 1.0)])),
            logs(&par.offset(&[(i, -1.0)])),
        ) else {
            return f64::NAN;
        };
        for (k, s) in scores.iter_mut().enumerate() {
            s[i] = (up[k] - down[k]) / (2.0 * STEPS[i]);
        }
    }
    // M: the scores summed within clusters, then their outer products
    let mut m = vec![0.0; n * n];
    for members in clusters(locs) {
        let g: Vec<f64> = (0..n)
            .map(|i| members.iter().map(|&k| scores[k][i]).sum())
            .collect();
        for i in 0..n {
            for j in 0..n {
                m[i * n + j] += g[i] * g[j];
            }
        }
    }
    sandwich_axis_variance(&h, &m, n).map_or(f64::NAN, |v| v.sqrt().to_degrees())
}

/// `(H⁻¹ M H⁻¹)₀₀ + (H⁻¹ M H⁻¹)₁₁`: the two tilts' variances.
fn sandwich_axis_variance(h: &[f64], m: &[f64], n: usize) -> Option<f64> {
    if !h.iter().chain(m).all(|v| v.is_finite()) {
        return None;
    }
    // rows 0 and 1 of H⁻¹ (H is symmetric: they are its columns too)
    let unit = |i: usize| {
        (0..n)
            .map(|k| f64::from(u8::from(k == i)))
            .collect::<Vec<_>>()
    };
    let r0 = solve_spd(h, &unit(0), n)?;
    let r1 = solve_spd(h, &unit(1), n)?;
    let quad = |r: &[f64]| -> f64 {
        (0..n)
            .map(|i| (0..n).map(|j| r[i] * m[i * n + j] * r[j]).sum::<f64>())
            .sum()
    };
    let v = quad(&r0) + quad(&r1);
    (v.is_finite() && v > 0.0).then_some(v)
}

/// Groups of localisations near each other: each localisation joins the
/// first group whose first member (its leader) lies within
/// [`CLUSTER_PRECISIONS`] × the larger of their precisions, else leads a
/// new group. Unlike single linkage this cannot chain along a densely
/// labelled ring into one group (which would sum the scores to about zero
/// and shrink the error to nothing).
fn clusters(locs: &ParticleLocs) -> Vec<Vec<usize>> {
    let mut leaders: Vec<usize> = Vec::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    // a particle has a few hundred localisations: all pairs is cheap
    for i in 0..locs.len() {
        let near = leaders.iter().position(|&l| {
            let reach = CLUSTER_PRECISIONS * locs.precision[l].max(locs.precision[i]);
            (locs.x[l] - locs.x[i]).hypot(locs.y[l] - locs.y[i]) < reach
        });
        match near {
            Some(g) => groups[g].push(i),
            None => {
                leaders.push(i);
                groups.push(vec![i]);
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::super::tests::{particle, particle_3d};
    use super::super::{fit_axis, AxialModel, LocFitOptions};
    use super::*;
    use crate::geometry::symmetry::axis_error;
    use crate::geometry::Quat;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn blinks_of_one_label_are_one_cluster_and_a_dense_ring_does_not_chain() {
        // two labels 100 nm apart, each blinking four times within 10 nm
        let mut locs = ParticleLocs::default();
        for (k, (x, y)) in [(0.0, 0.0), (100.0, 0.0)].into_iter().enumerate() {
            for d in [-4.0, 0.0, 3.0, 6.0] {
                locs.x.push(x + d);
                locs.y.push(y - d);
                locs.precision.push(8.0 + k as f64);
            }
        }
        let c = clusters(&locs);
        assert_eq!(c, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
        // a ring of 360 localisations 3 nm apart: single linkage would make
        // it one group; leaders 25 nm apart cut its 1131 nm into about 45
        let mut ring = ParticleLocs::default();
        for k in 0..360 {
            let u = (k as f64).to_radians();
            ring.x.push(180.0 * u.cos());
            ring.y.push(180.0 * u.sin());
            ring.precision.push(10.0);
        }
        let n = clusters(&ring).len();
        assert!((40..=50).contains(&n), "{n} groups");
    }

    /// rms axis error ÷ rms standard error over random particles.
    fn calibration(depth: bool) -> (f64, usize) {
        let model = AxialModel::torus(180.0, 40.0, 12.0, 5.0).unwrap();
        let coarse = AxialModel::torus(180.0, 40.0, 24.0, 5.0).unwrap();
        let opts = LocFitOptions::default();
        let mut rng = ChaCha8Rng::seed_from_u64(if depth { 91 } else { 90 });
        let (mut e2, mut s2, mut within) = (0.0, 0.0, 0);
        let n = 40;
        for k in 0..n {
            let q = Quat::random_uniform(&mut rng);
            let locs = if depth {
                particle_3d(q, [0.0, 0.0, 100.0], 500 + k)
            } else {
                particle(q, [0.0, 0.0], 600 + k)
            };
            let fit = fit_axis(&model, Some(&coarse), &locs, [4.0, -3.0], None, &opts).unwrap();
            let sd = axis_standard_error(&model, &locs, &fit, &opts);
            assert!(sd.is_finite() && sd > 0.0, "particle {k}: {sd}");
            let e = if depth {
                let t = q.axis();
                let c: f64 = (0..3).map(|i| fit.axis[i] * t[i]).sum();
                c.abs().min(1.0).acos().to_degrees()
            } else {
                axis_error(fit.axis, q.axis()).to_degrees()
            };
            e2 += e * e;
            s2 += sd * sd;
            within += usize::from(e < sd);
        }
        ((e2 / s2).sqrt(), within * 100 / n as usize)
    }

    #[test]
    fn the_standard_error_matches_the_spread_of_the_fits() {
        // 70 labels, each blinking four times at its own precision: the
        // errors come from where the labels are, which the clusters count
        for depth in [false, true] {
            let (ratio, within) = calibration(depth);
            eprintln!("3D {depth}: rms error / rms sd {ratio:.2}, {within} % within one");
            assert!(
                (0.75..=1.35).contains(&ratio),
                "3D {depth}: rms error / rms sd {ratio:.2}"
            );
            // 63 % expected within one standard error
            assert!((40..=85).contains(&within), "3D {depth}: {within} % within");
        }
    }
}
