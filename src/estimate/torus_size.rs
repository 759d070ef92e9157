//! The torus's size learned from a table's particles: alternate every
//! particle's localisation fit with the fit of `R` and `r` to all of them
//! ([`locfit::size`]), then measure each particle's own size at its final
//! pose. Shared by `fit TABLE --fit-size` and the viewer.
//!
//! The particle frames (images) stay as they were rendered; only the
//! localisation fits, and with them the results' poses and centres, follow
//! the size.

use rayon::prelude::*;

use super::locfit::size::{self, Alternation, Posed, SizeOptions};
use super::locfit::LocFit;
use super::particles::{ParticleError, ParticleSetup};
use super::pick::{Grid, Pick};
use super::pose::pipeline::ModelSpec;
use super::pose::results::FrameResult;
use crate::io::locs::LocTable;
use crate::shapes::Units;

/// Most rounds of pose fits the size fit runs.
pub const MAX_ROUNDS: usize = 8;

/// The fitted size may move from the start by at most this factor (either
/// way); beyond, the start was too far off for the picks and the discs it
/// set, and the user is asked for a better one.
pub const MAX_FACTOR: f64 = 1.6;

/// Fewest particles a size is fitted to.
pub const MIN_PARTICLES: usize = 3;

/// What [`fit_size`] found.
#[derive(Clone, Debug)]
pub struct SizeReport {
    /// The size at the last round, with its standard errors.
    pub fit: size::SizeFit,
    /// Rounds run, and whether the size settled before they ran out.
    pub rounds: usize,
    pub settled: bool,
    /// The size the fit started from, nm.
    pub start_nm: [f64; 2],
    /// Each pick's own `[R, r]` at its final pose (`None` where it has no
    /// localisation fit or its size fit failed).
    pub per_particle: Vec<Option<[f64; 2]>>,
    /// Each pick's final localisation fit, with the fitted size.
    pub fits: Vec<Option<LocFit>>,
}

impl SizeReport {
    /// One line for a user: the size, its standard errors, the spread of
    /// the particles' own and how it was reached.
    pub fn describe(&self) -> String {
        let f = &self.fit;
        let se = |v: f64| {
            if v.is_finite() {
                format!(" ± {v:.1}")
            } else {
                String::new()
            }
        };
        let spread = size::quartiles(self.per_particle.iter().flatten().map(|s| s[0])).map_or(
            String::new(),
            |[lo, mid, hi]| {
                format!("; each particle's own R: median {mid:.1}, quartiles {lo:.1}–{hi:.1} nm")
            },
        );
        let [r0, t0] = self.start_nm;
        format!(
            "torus size from {} particles: R {:.1}{} nm, r {:.1}{} nm (standard errors){spread}; \
             from R {r0}, r {t0} in {} round(s){}",
            f.particles,
            f.major_nm,
            se(f.se_nm[0]),
            f.tube_nm,
            se(f.se_nm[1]),
            self.rounds,
            if self.settled { "" } else { ", not settled" }
        )
    }
}

/// Errors of the size fit.
#[derive(Debug, thiserror::Error)]
pub enum SizeError {
    #[error("only {0} particles have a localisation fit: the size needs at least {MIN_PARTICLES}")]
    TooFew(usize),
    #[error(
        "the torus size went from R {0:.0}, r {1:.0} nm to R {2:.0}, r {3:.0} nm: start nearer \
         (the particle's size sets the picks and the discs their localisations come from)"
    )]
    RanAway(f64, f64, f64, f64),
    #[error("no torus size could be fitted to these particles")]
    Failed,
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

/// Fits the torus's size to the picks' localisations, alternating with
/// their poses (up to [`MAX_ROUNDS`]), starting from `setup`'s torus. On
/// success `setup` has the fitted torus and `results` the poses fitted with
/// it; on failure both are as they were. `on_round` hears each round's
/// size (for progress).
pub fn fit_size(
    setup: &mut ParticleSetup,
    table: &LocTable,
    grid: &Grid,
    picks: &[Pick],
    results: &mut [FrameResult],
    on_round: impl FnMut(usize, &size::SizeFit),
) -> Result<SizeReport, SizeError> {
    let start = setup.torus_nm;
    let opts = SizeOptions {
        spacing_nm: 12.0,
        blur_nm: setup.locs_model.blur_nm,
        background: setup.locfit.background,
    };
    let mut trial: Vec<FrameResult> = results.to_vec();
    let mut current = setup.clone();
    let mut fits: Vec<Option<LocFit>> = vec![None; picks.len()];
    let mut failure: Option<SizeError> = None;
    let run: Option<Alternation> = size::alternate(
        start,
        MAX_ROUNDS,
        &opts,
        |size, _| {
            if failure.is_some() {
                return Vec::new();
            }
            if (size[0] / start[0]).max(start[0] / size[0]) > MAX_FACTOR {
                failure = Some(SizeError::RanAway(start[0], start[1], size[0], size[1]));
                return Vec::new();
            }
            match resized(&current, table, size) {
                Ok(s) => current = s,
                Err(e) => {
                    failure = Some(e.into());
                    return Vec::new();
                }
            }
            fits = current.refine_on_locs(table, grid, picks, &mut trial);
            let usable = fits.iter().flatten().count();
            if usable < MIN_PARTICLES {
                failure = Some(SizeError::TooFew(usable));
                return Vec::new();
            }
            picks
                .par_iter()
                .zip(&fits)
                .filter_map(|(p, f)| Some((current.particle_locs(table, grid, p), (*f)?)))
                .collect()
        },
        on_round,
    );
    if let Some(e) = failure {
        return Err(e);
    }
    let run = run.ok_or(SizeError::Failed)?;
    let sized = [run.fit.major_nm, run.fit.tube_nm];
    if (sized[0] / start[0]).max(start[0] / sized[0]) > MAX_FACTOR {
        return Err(SizeError::RanAway(start[0], start[1], sized[0], sized[1]));
    }
    // the setup of the last round's poses; the final size differs from it
    // by less than a round's move
    let per_particle: Vec<Option<[f64; 2]>> = picks
        .par_iter()
        .zip(&fits)
        .map(|(p, f)| {
            let fit = f.as_ref()?;
            let locs = current.particle_locs(table, grid, p);
            size::particle_size(Posed { locs: &locs, fit }, sized, &opts)
        })
        .collect();
    *setup = resized(&current, table, sized)?;
    results.clone_from_slice(&trial);
    Ok(SizeReport {
        fit: run.fit,
        rounds: run.rounds,
        settled: run.settled,
        start_nm: start,
        per_particle,
        fits,
    })
}
