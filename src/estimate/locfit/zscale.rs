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
//!
//! The axial precision is fitted with it (a factor on the one assumed):
//! held fixed at a wrong value it biased the z factor (by 4–7 % on
//! synthetic fields whose axial error was 2.0× the lateral precision and
//! the fit assumed 2.5×), and its fitted value tells the user what
//! `--z-precision-factor` to give.

use super::likelihood::{negative_log_likelihood, AxialModel, ParticleLocs};
use super::simplex::{minimise, SimplexOptions};
use super::{LocFit, LocFitOptions, TangentPlane};

/// Particles tilted less than this tell little about the z factor.
pub const MIN_TILT_DEG: f64 = 25.0;

/// Whether `fit` can tell the z factor: a 3D fit tilted at least
/// [`MIN_TILT_DEG`].
pub fn tells_scale(fit: &LocFit) -> bool {
    let tilt = fit.axis[2].abs().min(1.0).acos().to_degrees();
    fit.z_locs > 0 && fit.z_centre_nm.is_some() && tilt >= MIN_TILT_DEG
}

/// What one particle says of its table's z.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZFit {
    /// The factor on z that fits best.
    pub scale: f64,
    /// The axial precision that fits best, as a factor on the one assumed
    /// (after the scale).
    pub precision: f64,
}

/// The factor on z and on the axial precision (with the pose and centre
/// free) that maximise the likelihood of `locs`, starting from the 3D fit
/// `fit`. `None` for a 2D fit, a particle tilted less than
/// [`MIN_TILT_DEG`], or a failed fit.
pub fn fit_z_scale(
    model: &AxialModel,
    locs: &ParticleLocs,
    fit: &LocFit,
    opts: &LocFitOptions,
) -> Option<ZFit> {
    if !tells_scale(fit) {
        return None;
    }
    let z0 = fit.z_centre_nm?;
    let plane = TangentPlane::new(fit.axis);
    let [cx, cy] = fit.centre_nm;
    let n_z = locs.with_z() as f64;
    let nll = |p: &[f64]| {
        let s = p[5].exp();
        let Some(a) = plane.tilted(p[0], p[1]) else {
            return f64::INFINITY;
        };
        // the centre's z scales with the table's
        let c = [cx + p[2], cy + p[3], s * z0 + p[4]];
        // the likelihood of the z as written: the scaled one's, less the Jacobian
        let mut l = locs.scaled_z(s);
        let blur = p[6].exp();
        l.precision_z.iter_mut().for_each(|v| *v *= blur);
        negative_log_likelihood(model, &l, a, c, opts.background)
            .map_or(f64::INFINITY, |f| f - n_z * p[5])
    };
    let m = minimise(
        nll,
        &[0.0; 7],
        &[0.08, 0.08, 10.0, 10.0, 20.0, 0.15, 0.2],
        SimplexOptions {
            f_tol: 1e-5,
            max_evals: 1400,
        },
    );
    let (scale, precision) = (m.x[5].exp(), m.x[6].exp());
    (m.f.is_finite() && scale.is_finite() && precision.is_finite())
        .then_some(ZFit { scale, precision })
}

/// The median of many particles' z factors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZScale {
    /// Median factor on z.
    pub median: f64,
    /// Its quartiles.
    pub quartiles: [f64; 2],
    /// Median factor on the assumed axial precision.
    pub precision: f64,
    /// Particles it is the median of.
    pub particles: usize,
}

impl ZScale {
    /// Fewest particles whose median is reported.
    pub const MIN_PARTICLES: usize = 5;

    /// The medians and quartiles of `fits` (non-finite ones dropped);
    /// `None` for fewer than [`Self::MIN_PARTICLES`].
    pub fn of(fits: &[ZFit]) -> Option<Self> {
        let fits: Vec<&ZFit> = fits
            .iter()
            .filter(|f| f.scale.is_finite() && f.precision.is_finite())
            .collect();
        if fits.len() < Self::MIN_PARTICLES {
            return None;
        }
        let [lo, median, hi] = super::quartiles(fits.iter().map(|f| f.scale))?;
        let [_, precision, _] = super::quartiles(fits.iter().map(|f| f.precision))?;
        Some(Self {
            median,
            quartiles: [lo, hi],
            precision,
            particles: fits.len(),
        })
    }

    /// Whether the factor differs from 1 by more than its spread and by
    /// more than 5 %: then the table's z likely needs `--z-scale`.
    pub fn suggests_correction(&self) -> bool {
        let off = (self.median - 1.0).abs() > 0.05;
        let clear = !(self.quartiles[0]..=self.quartiles[1]).contains(&1.0);
        off && clear
    }

    /// What was measured, for a user: the factor, its quartiles and how
    /// many particles.
    pub fn describe(&self) -> String {
        let [lo, hi] = self.quartiles;
        format!(
            "z scale: the localisations fit best with z × {:.2} (quartiles {lo:.2}–{hi:.2}, {} particles tilted ≥ {MIN_TILT_DEG}°) and an axial precision {:.2} × the one assumed",
            self.median, self.particles, self.precision
        )
    }

    /// Whether the axial precision assumed is off by more than 20 %.
    pub fn precision_off(&self) -> bool {
        (self.precision.ln()).abs() > 1.2f64.ln()
    }

    /// What it means: consistent, or which way z looks off and the factor
    /// to correct it by (the caller says where to set it).
    pub fn verdict(&self) -> String {
        if self.suggests_correction() {
            format!(
                "the z looks {}: if it was not corrected for refractive-index mismatch, fit again with z × {:.2}",
                if self.median > 1.0 { "squeezed" } else { "stretched" },
                self.median
            )
        } else {
            "consistent with the model's shape".to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::particle_3d;
    use super::super::{fit_axis, AxialModel, LocFitOptions};
    use super::*;
    use crate::geometry::Quat;

    fn factor_of(tilt_deg: f64, squeeze: f64, seed: u64) -> Option<ZFit> {
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
            let f = factor_of(tilt, 0.75, 40 + k as u64).unwrap();
            assert!((f.scale - 1.0 / 0.75).abs() < 0.1, "tilt {tilt}°: {f:?}");
            let f = factor_of(tilt, 1.0, 50 + k as u64).unwrap();
            assert!((f.scale - 1.0).abs() < 0.08, "tilt {tilt}°: {f:?}");
            // the axial error is what particle_3d assumes: 2.5 × lateral
            assert!((f.precision - 1.0).abs() < 0.25, "tilt {tilt}°: {f:?}");
        }
        // nearly face-on: no spread in z to tell
        assert_eq!(factor_of(10.0, 1.0, 3), None);
    }

    #[test]
    fn the_median_says_when_to_correct() {
        let fits = |s: &[f64]| -> Vec<ZFit> {
            s.iter()
                .map(|&scale| ZFit {
                    scale,
                    precision: 0.8,
                })
                .collect()
        };
        assert_eq!(ZScale::of(&fits(&[1.0, 1.1, f64::NAN, 0.9, 1.0])), None);
        let right = ZScale::of(&fits(&[0.97, 1.02, 1.0, 1.05, 0.99, 1.01])).unwrap();
        assert_eq!(right.precision, 0.8);
        assert!(right.precision_off());
        assert_eq!(right.particles, 6);
        assert!(!right.suggests_correction());
        assert!(
            right.verdict().contains("consistent"),
            "{}",
            right.verdict()
        );
        assert!(
            right
                .describe()
                .contains("z × 1.01 (quartiles 0.99–1.02, 6 particles"),
            "{}",
            right.describe()
        );
        let short = ZScale::of(&fits(&[1.30, 1.36, 1.25, 1.41, 1.33])).unwrap();
        assert_eq!(short.median, 1.33);
        assert!(short.suggests_correction());
        assert!(
            short.verdict().contains("squeezed") && short.verdict().contains("z × 1.33"),
            "{}",
            short.verdict()
        );
        // off by 8 % but spread across 1: no advice
        let wide = ZScale::of(&fits(&[0.8, 0.95, 1.08, 1.2, 1.3])).unwrap();
        assert!(!wide.suggests_correction());
    }
}
