//! How well a 3D table's z agrees with the model's shape: the factor on z
//! that makes a particle's localisations most likely, fitted together with
//! its pose ([`fit_z_scale`]), and its median over many particles
//! ([`ZScale`]). A localisation program that did not correct for the
//! refractive-index mismatch between immersion oil and a watery sample
//! leaves z stretched or squeezed (by 0.7–0.9 typically); the fit still
//! tells each axis from its mirror then, but the tilt is biased, and
//! `fit --z-scale` corrects it.
//!
//! The factor is identifiable only for tilted particles: the lateral
//! ellipse fixes the tilt, the spread in z then fixes the factor. Nearly
//! face-on particles, with almost no spread in z, are left out.

use super::likelihood::{negative_log_likelihood, AxialModel, ParticleLocs};
use super::simplex::{minimise, SimplexOptions};
use super::{tangents, LocFit, LocFitOptions};
use crate::geometry::normalize;

/// Particles tilted less than this tell little about the z factor.
pub const MIN_TILT_DEG: f64 = 25.0;

/// The factor on z (with the pose and centre free) that maximises the
/// likelihood of `locs`, starting from the 3D fit `fit`. `None` for a 2D
/// fit, a particle tilted less than [`MIN_TILT_DEG`], or a failed fit.
pub fn fit_z_scale(
    model: &AxialModel,
    locs: &ParticleLocs,
    fit: &LocFit,
    opts: &LocFitOptions,
) -> Option<f64> {
    let z0 = fit.z_centre_nm.filter(|_| fit.z_locs > 0)?;
    let tilt = fit.axis[2].abs().min(1.0).acos().to_degrees();
    if tilt < MIN_TILT_DEG {
        return None;
    }
    let (e1, e2) = tangents(fit.axis);
    let [cx, cy] = fit.centre_nm;
    let n_z = locs.with_z() as f64;
    let nll = |p: &[f64]| {
        let s = p[5].exp();
        let a = [0, 1, 2].map(|i| fit.axis[i] + p[0] * e1[i] + p[1] * e2[i]);
        let Some(a) = normalize(a) else {
            return f64::INFINITY;
        };
        // the centre's z scales with the table's
        let c = [cx + p[2], cy + p[3], s * z0 + p[4]];
        // the likelihood of the z as written: the scaled one's, less the Jacobian
        negative_log_likelihood(model, &locs.scaled_z(s), a, c, opts.background)
            .map_or(f64::INFINITY, |f| f - n_z * p[5])
    };
    let m = minimise(
        nll,
        &[0.0; 6],
        &[0.08, 0.08, 10.0, 10.0, 20.0, 0.15],
        SimplexOptions {
            f_tol: 1e-5,
            max_evals: 900,
        },
    );
    let s = m.x[5].exp();
    (m.f.is_finite() && s.is_finite()).then_some(s)
}

/// The median of many particles' z factors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZScale {
    /// Median factor.
    pub median: f64,
    /// Its quartiles.
    pub quartiles: [f64; 2],
    /// Particles it is the median of.
    pub particles: usize,
}

impl ZScale {
    /// Fewest particles whose median is reported.
    pub const MIN_PARTICLES: usize = 5;

    /// The median and quartiles of `factors` (non-finite ones dropped);
    /// `None` for fewer than [`Self::MIN_PARTICLES`].
    pub fn of(factors: &[f64]) -> Option<Self> {
        let mut f: Vec<f64> = factors.iter().copied().filter(|v| v.is_finite()).collect();
        if f.len() < Self::MIN_PARTICLES {
            return None;
        }
        f.sort_by(f64::total_cmp);
        let q = |p: f64| f[((f.len() - 1) as f64 * p).round() as usize];
        Some(Self {
            median: q(0.5),
            quartiles: [q(0.25), q(0.75)],
            particles: f.len(),
        })
    }

    /// Whether the factor differs from 1 by more than its spread and by
    /// more than 5 %: then the table's z likely needs `--z-scale`.
    pub fn suggests_correction(&self) -> bool {
        let off = (self.median - 1.0).abs() > 0.05;
        let clear = !(self.quartiles[0]..=self.quartiles[1]).contains(&1.0);
        off && clear
    }

    /// One line for a user.
    pub fn describe(&self) -> String {
        let [lo, hi] = self.quartiles;
        let verdict = if self.suggests_correction() {
            format!(
                "the z looks {} — if it was not corrected for refractive-index mismatch, fit again with --z-scale {:.2}",
                if self.median > 1.0 { "squeezed" } else { "stretched" },
                self.median
            )
        } else {
            "consistent with the model's shape".to_string()
        };
        format!(
            "z scale: the localisations fit best with z × {:.2} (quartiles {lo:.2}–{hi:.2}, {} particles tilted ≥ {MIN_TILT_DEG}°): {verdict}",
            self.median, self.particles
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::particle_3d;
    use super::super::{fit_axis, AxialModel, LocFitOptions};
    use super::*;
    use crate::geometry::Quat;

    fn factor_of(tilt_deg: f64, squeeze: f64, seed: u64) -> Option<f64> {
        let model = AxialModel::torus(180.0, 40.0, 12.0, 5.0).unwrap();
        let t = tilt_deg.to_radians();
        let q = Quat::from_symmetry_axis([t.sin() * 0.6, t.sin() * 0.8, t.cos()], 0.0).unwrap();
        // a table whose z was left `squeeze` × the truth
        let locs = particle_3d(q, [0.0, 0.0, 300.0], seed).scaled_z(squeeze);
        let opts = LocFitOptions::default();
        let fit = fit_axis(&model, None, &locs, [5.0, -5.0], None, &opts).unwrap();
        fit_z_scale(&model, &locs, &fit, &opts)
    }

    #[test]
    fn a_squeezed_z_is_found_and_a_right_one_left_alone() {
        for (k, tilt) in [35.0, 50.0, 70.0].into_iter().enumerate() {
            let s = factor_of(tilt, 0.75, 40 + k as u64).unwrap();
            assert!((s - 1.0 / 0.75).abs() < 0.12, "tilt {tilt}°: {s}");
            let s = factor_of(tilt, 1.0, 50 + k as u64).unwrap();
            assert!((s - 1.0).abs() < 0.1, "tilt {tilt}°: {s}");
        }
        // nearly face-on: no spread in z to tell
        assert_eq!(factor_of(10.0, 1.0, 3), None);
    }

    #[test]
    fn the_median_says_when_to_correct() {
        assert_eq!(ZScale::of(&[1.0, 1.1, f64::NAN, 0.9, 1.0]), None);
        let right = ZScale::of(&[0.97, 1.02, 1.0, 1.05, 0.99, 1.01]).unwrap();
        assert_eq!(right.particles, 6);
        assert!(!right.suggests_correction());
        assert!(
            right.describe().contains("consistent"),
            "{}",
            right.describe()
        );
        let short = ZScale::of(&[1.30, 1.36, 1.25, 1.41, 1.33]).unwrap();
        assert_eq!(short.median, 1.33);
        assert!(short.suggests_correction());
        assert!(
            short.describe().contains("--z-scale 1.33"),
            "{}",
            short.describe()
        );
        // off by 8 % but spread across 1: no advice
        let wide = ZScale::of(&[0.8, 0.95, 1.08, 1.2, 1.3]).unwrap();
        assert!(!wide.suggests_correction());
    }
}
