//! The torus's size learned from a table's particles: the profile
//! likelihood of `R` ([`locfit::size::profile`]), every particle's
//! localisation fit run afresh at each size, then a last round at the
//! fitted size for the poses. Shared by `fit TABLE --fit-size` and the
//! viewer.
//!
//! The particle frames (images) stay as they were rendered; only the
//! localisation fits, and with them the results' poses and centres, follow
//! the size.
//!
//! [`locfit::size::profile`]: super::locfit::size::profile

use rayon::prelude::*;

use super::locfit::size::{self, ProfileError, ProfilePoint, SizeOptions};
use super::locfit::{quartiles, LocFit};
use super::particles::{reach_nm, ParticleError, ParticleSetup};
use super::pick::{Grid, Pick};
use super::pose::pipeline::ModelSpec;
use super::pose::results::FrameResult;
use crate::io::locs::LocTable;
use crate::shapes::Units;

/// The profile's window may move from the start by at most this factor
/// (either way); beyond, the start was too far off for the picks and the
/// discs it set, and the user is asked for a better one.
pub const MAX_FACTOR: f64 = 1.6;

/// Fewest particles a size is fitted to.
pub const MIN_PARTICLES: usize = 3;

/// Rounds of pose fits a size fit usually takes: a window of five and the
/// last round (more when the window moves); for progress bars.
pub const TYPICAL_ROUNDS: usize = 6;

/// What [`fit_size`] found.
#[derive(Clone, Debug)]
pub struct SizeReport {
    /// `R` and `r`, nm.
    pub torus_nm: [f64; 2],
    /// Their standard errors, nm: for `R` the larger of the profile's and
    /// the one the spread of the particles' own `R` gives; for `r` the
    /// sandwich estimate over particles.
    pub se_nm: [f64; 2],
    /// Particles fitted at every size of the profile.
    pub particles: usize,
    /// Rounds of pose fits run.
    pub rounds: usize,
    /// The size the fit started from, nm.
    pub start_nm: [f64; 2],
    /// Each pick's own `R`, nm (`None` where its own profile has no
    /// minimum inside the window).
    pub per_particle: Vec<Option<f64>>,
    /// Each pick's final localisation fit, with the fitted size.
    pub fits: Vec<Option<LocFit>>,
}

impl SizeReport {
    /// The quartiles and median of the particles' own `R`.
    fn own_quartiles(&self) -> Option<[f64; 3]> {
        quartiles(self.per_particle.iter().flatten().copied())
    }

    /// Whether the joint `R` and the median of the particles' own differ
    /// by more than twice the standard error: then the size is poorly
    /// determined (on held-out 2D fields one of ten did).
    pub fn disagrees(&self) -> bool {
        let Some([_, mid, _]) = self.own_quartiles() else {
            return false;
        };
        let se = self.se_nm[0];
        se.is_finite() && (self.torus_nm[0] - mid).abs() > 2.0 * se
    }

    /// One line for a user: the size, its standard errors, the spread of
    /// the particles' own `R` and where it started.
    pub fn describe(&self) -> String {
        let se = |v: f64| {
            if v.is_finite() {
                format!(" ± {v:.1}")
            } else {
                String::new()
            }
        };
        let spread = self.own_quartiles().map_or(String::new(), |[lo, mid, hi]| {
            format!("; each particle's own R: median {mid:.1}, quartiles {lo:.1}–{hi:.1} nm")
        });
        let [r0, t0] = self.start_nm;
        let warn = if self.disagrees() {
            "; warning: the joint R and the median of the particles' own differ by more than \
             twice its standard error, so R is poorly determined here (2D tables give a looser \
             size than 3D; a few odd particles can pull it)"
        } else {
            ""
        };
        format!(
            "torus size from {} particles: R {:.1}{} nm, r {:.1}{} nm (standard errors){spread}; \
             from R {r0}, r {t0} in {} rounds{warn}",
            self.particles,
            self.torus_nm[0],
            se(self.se_nm[0]),
            self.torus_nm[1],
            se(self.se_nm[1]),
            self.rounds,
        )
    }
}

/// The standard error of the median of `values` from their spread:
/// 1.4826 × the median absolute deviation × 1.2533 ÷ √n (NaN for fewer
/// than [`MIN_PARTICLES`]).
fn robust_se(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    if v.len() < MIN_PARTICLES {
        return f64::NAN;
    }
    let median = |mut x: Vec<f64>| {
        x.sort_by(f64::total_cmp);
        let n = x.len();
        if n % 2 == 1 {
            x[n / 2]
        } else {
            0.5 * (x[n / 2 - 1] + x[n / 2])
        }
    };
    let m = median(v.clone());
    let mad = median(v.iter().map(|x| (x - m).abs()).collect());
    1.4826 * mad * 1.2533 / (v.len() as f64).sqrt()
}

/// Each pick's localisations and fit (`None` where the fit failed).
type Particles = Vec<Option<(crate::estimate::locfit::ParticleLocs, LocFit)>>;

/// Errors of the size fit.
#[derive(Debug, thiserror::Error)]
pub enum SizeError {
    #[error("only {0} particles have a localisation fit: the size needs at least {MIN_PARTICLES}")]
    TooFew(usize),
    #[error(
        "{0} (the particle's size sets the picks and the discs their localisations come from)"
    )]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Setup(#[from] ParticleError),
}

/// `setup` with the torus `torus_nm`: its localisation models, discs and
/// counts follow the size; its particle frames' pixel size does not.
pub fn resized(
    setup: &ParticleSetup,
    table: &LocTable,
    torus_nm: [f64; 2],
) -> Result<ParticleSetup, ParticleError> {
    let spec = ModelSpec {
        torus: torus_nm,
        units: Units::Nm,
        pixel_size: None,
        ..setup.spec_px.clone()
    };
    let mut out = ParticleSetup::new(table, &spec)?;
    out.pixel_nm = setup.pixel_nm;
    out.spec_px = setup.spec_px.clone();
    out.locfit = setup.locfit;
    Ok(out)
}

/// Fits the torus's size to the picks' localisations, starting from
/// `setup`'s torus. On success `setup` has the fitted torus and `results`
/// the poses fitted with it; on failure both are as they were. `on_round`
/// hears each point of the profile (for progress).
pub fn fit_size(
    setup: &mut ParticleSetup,
    table: &LocTable,
    grid: &Grid,
    picks: &[Pick],
    results: &mut [FrameResult],
    mut on_round: impl FnMut(usize, &ProfilePoint),
) -> Result<SizeReport, SizeError> {
    let start = setup.torus_nm;
    let precision = setup.locfit.default_precision_nm;
    let opts = SizeOptions {
        spacing_nm: 12.0,
        blur_nm: setup.locs_model.blur_nm,
        background: setup.locfit.background,
    };
    let mut trial: Vec<FrameResult> = results.to_vec();
    // every pick's poses fitted with `size`, its localisations gathered
    // within the disc of a torus `reach`
    let fit_round = |size: [f64; 2],
                     reach: [f64; 2],
                     trial: &mut [FrameResult]|
     -> Result<(Particles, Vec<Option<LocFit>>), SizeError> {
        let mut s = resized(setup, table, size)?;
        s.reach_nm = reach_nm(reach, precision);
        let fits = s.refine_on_locs(table, grid, picks, trial);
        let usable = fits.iter().flatten().count();
        if usable < MIN_PARTICLES {
            return Err(SizeError::TooFew(usable));
        }
        let particles = picks
            .par_iter()
            .zip(&fits)
            .map(|(p, f)| Some((s.particle_locs(table, grid, p), (*f)?)))
            .collect();
        Ok((particles, fits))
    };
    let mut failure: Option<SizeError> = None;
    let profile = size::profile(
        start,
        MAX_FACTOR,
        &opts,
        |size, reach| {
            if failure.is_some() {
                return Vec::new();
            }
            match fit_round(size, reach, &mut trial) {
                Ok((particles, _)) => particles,
                Err(e) => {
                    failure = Some(e);
                    Vec::new()
                }
            }
        },
        &mut on_round,
    );
    if let Some(e) = failure {
        return Err(e);
    }
    let profile = profile?;
    let sized = [profile.major_nm, profile.tube_nm];
    // the last round: the poses at the fitted size, on their usual discs
    let (_, fits) = fit_round(sized, sized, &mut trial)?;
    // the particles fitted at every point of the window
    let particles = (0..picks.len())
        .filter(|&i| {
            profile
                .window
                .iter()
                .all(|p| p.tube.terms.get(i).is_some_and(|v| v.is_finite()))
        })
        .count();
    let spread = robust_se(profile.per_particle.iter().flatten().copied());
    let major_se = match (profile.major_se_nm.is_finite(), spread.is_finite()) {
        (true, true) => profile.major_se_nm.max(spread),
        (true, false) => profile.major_se_nm,
        _ => spread,
    };
    *setup = resized(setup, table, sized)?;
    results.clone_from_slice(&trial);
    Ok(SizeReport {
        torus_nm: sized,
        se_nm: [major_se, profile.tube_se_nm],
        particles,
        rounds: profile.rounds + 1,
        start_nm: start,
        per_particle: profile.per_particle,
        fits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(major: f64, se: f64, own: &[f64]) -> SizeReport {
        SizeReport {
            torus_nm: [major, 40.0],
            se_nm: [se, 0.5],
            particles: own.len(),
            rounds: 6,
            start_nm: [150.0, 30.0],
            per_particle: own.iter().map(|&r| Some(r)).collect(),
            fits: vec![None; own.len()],
        }
    }

    #[test]
    fn a_joint_size_far_from_the_particles_own_is_flagged() {
        let own = [176.0, 178.0, 179.0, 180.0, 181.0, 183.0];
        let fine = report(179.0, 1.0, &own);
        assert!(!fine.disagrees());
        assert!(fine
            .describe()
            .starts_with("torus size from 6 particles: R 179.0 ± 1.0 nm, r 40.0 ± 0.5 nm"));
        assert!(!fine.describe().contains("warning"));
        let off = report(190.7, 2.0, &own);
        assert!(off.disagrees());
        assert!(
            off.describe().contains("poorly determined"),
            "{}",
            off.describe()
        );
    }

    #[test]
    fn the_spread_gives_a_standard_error_of_the_median() {
        // 1.4826 × MAD 1 × 1.2533 / √5
        let se = robust_se([1.0, 2.0, 3.0, 4.0, 5.0].into_iter());
        assert!((se - 1.4826 * 1.2533 / 5f64.sqrt()).abs() < 1e-12, "{se}");
        assert!(robust_se([1.0, 2.0].into_iter()).is_nan());
    }
}
