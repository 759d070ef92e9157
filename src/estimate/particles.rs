//! A pose for every pick of a localisation table: the orchestration that
//! `posescope fit TABLE` and the viewer share.
//!
//! Each pick's localisations within its disc are rendered into a particle
//! frame at the pixel size that puts the torus at the bundled network's
//! trained size ([`ParticleSetup::frame`]); the frames go through the usual
//! batch fit (network + render-and-compare). Then, by default, each pose is
//! refined on the localisations themselves ([`super::locfit`]).

use rayon::prelude::*;

use super::locfit::likelihood::ParticleLocs;
use super::locfit::{self, AxialModel, LocFit, LocFitOptions, ZScale};
use super::pick::{particle_frame, Grid, Pick};
use super::pose::fit::{FitOutcome, StartSource};
use super::pose::pipeline::{FrameFit, ModelSpec};
use super::pose::results::FrameResult;
use super::pose::train::REFERENCE_MAJOR_PX;
use crate::geometry::{Pose, Quat};
use crate::io::locs::LocTable;
use crate::io::Frame;
use crate::render::scene::FitState;
use crate::shapes::Units;

/// Most particles [`ParticleSetup::z_scale`] fits.
pub const Z_SCALE_PARTICLES: usize = 24;

/// Particle frames are this many pixels square.
pub const PARTICLE_FRAME_PX: usize = 128;

/// Which data the final pose is fitted to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RefineOn {
    /// The localisations' likelihood ([`super::locfit`]), started
    /// from the image fit.
    #[default]
    Locs,
    /// The rendered particle frame (render-and-compare) only.
    Image,
}

impl RefineOn {
    /// The name in CSVs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            RefineOn::Locs => "locs",
            RefineOn::Image => "image",
        }
    }
}

/// The particle of a localisation table or a whole field when nothing says
/// otherwise: a CEP152-like torus of R 180 nm, r 40 nm. The viewer's
/// settings, `pick` and `fit TABLE` / `fit IMAGE --pick` start from it.
pub const DEFAULT_TORUS_NM: [f64; 2] = [180.0, 40.0];

/// [`ParticleSetup::reach_nm`] for a torus `[R, r]` (nm) and a median
/// precision (nm).
pub fn reach_nm(torus_nm: [f64; 2], precision_nm: f64) -> f64 {
    1.25 * (torus_nm[0] + torus_nm[1]) + 2.0 * precision_nm
}

/// Errors of setting up particle fits.
#[derive(Debug, thiserror::Error)]
pub enum ParticleError {
    #[error(
        "a localisation table is in nm: give the torus in nm (--torus R,r without --units px), not {0}"
    )]
    ModelNotNm(String),
    #[error("the torus radii {0}, {1} cannot be fitted (need 0 ≤ r < R)")]
    BadTorus(f64, f64),
    #[error("picking particles needs a torus model, not {0}")]
    NotTorus(String),
    #[error(
        "the model is in nm but the image's pixel size is unknown: give it with --pixel-size (nm per pixel), or the model in px"
    )]
    NoPixelSize,
}

/// How the picks of one table become particle frames and how their poses
/// are refined.
#[derive(Clone, Debug)]
pub struct ParticleSetup {
    /// Torus `[R, r]`, nm.
    pub torus_nm: [f64; 2],
    /// nm per particle-frame pixel.
    pub pixel_nm: f64,
    /// Radius of the disc whose localisations make a particle, nm: 1.25 ×
    /// the torus's outer radius plus twice the median precision. A disc of
    /// the outer radius plus twice the precision cut real localisations of
    /// particles picked a little off centre, and the fits' tails showed it:
    /// on held-out fields (seeds 301–310) the p90 axis error fell from
    /// 11.4° to 6.0° with the wider disc (docs/ACCURACY.md).
    pub reach_nm: f64,
    /// Radius of the disc a pick's localisations are counted in, nm: the
    /// picker's own (outer radius plus twice the precision), so `n_locs`
    /// means the same in `pick` and in the viewer.
    pub count_nm: f64,
    /// The table's extent `[x_min, y_min, x_max, y_max]`, nm (for [`index`](Self::index)).
    pub extent_nm: [f32; 4],
    /// The model in particle-frame pixels, for the image fit.
    pub spec_px: ModelSpec,
    /// The model for the localisation fit.
    pub locs_model: AxialModel,
    /// The same, sampled more sparsely: the grid and first simplex runs.
    pub locs_coarse: AxialModel,
    /// Settings of the localisation fit.
    pub locfit: LocFitOptions,
}

impl ParticleSetup {
    /// The setup for `table` and a torus given in nm.
    pub fn new(table: &LocTable, spec: &ModelSpec) -> Result<Self, ParticleError> {
        if !spec.is_torus() || spec.units != Units::Nm {
            return Err(ParticleError::ModelNotNm(spec.describe()));
        }
        let [major_nm, tube_nm] = spec.torus;
        let locs_model = AxialModel::torus(major_nm, tube_nm, 12.0, 5.0)
            .ok_or(ParticleError::BadTorus(major_nm, tube_nm))?;
        let locs_coarse = AxialModel::torus(major_nm, tube_nm, 24.0, 5.0)
            .ok_or(ParticleError::BadTorus(major_nm, tube_nm))?;
        let summary = table.summary();
        let precision = summary.median_precision_nm.map_or(10.0, f64::from);
        let pixel_nm = major_nm / REFERENCE_MAJOR_PX;
        Ok(Self {
            torus_nm: spec.torus,
            pixel_nm,
            reach_nm: reach_nm([major_nm, tube_nm], precision),
            count_nm: major_nm + tube_nm + 2.0 * precision,
            extent_nm: summary.extent_nm,
            spec_px: ModelSpec {
                torus: [REFERENCE_MAJOR_PX, tube_nm / pixel_nm],
                units: Units::Px,
                pixel_size: Some(pixel_nm),
                ..spec.clone()
            },
            locs_model,
            locs_coarse,
            locfit: LocFitOptions {
                default_precision_nm: precision,
                ..LocFitOptions::default()
            },
        })
    }

    /// The particle frame of one pick, its localisations found through
    /// `grid` (from [`index`](Self::index)).
    pub fn frame(&self, table: &LocTable, grid: &Grid, pick: &Pick) -> Frame {
        particle_frame(
            table,
            grid,
            pick,
            self.reach_nm,
            self.pixel_nm,
            PARTICLE_FRAME_PX,
        )
    }

    /// The index of `table`'s localisations that [`refine_one`](Self::refine_one) queries.
    pub fn index(&self, table: &LocTable) -> Grid {
        Grid::new(table, self.extent_nm, self.reach_nm.max(1.0))
    }

    /// Refines every image fit on its pick's localisations (in parallel);
    /// see [`refine_one`](Self::refine_one).
    pub fn refine_on_locs(
        &self,
        table: &LocTable,
        grid: &Grid,
        picks: &[Pick],
        results: &mut [FrameResult],
    ) -> Vec<Option<LocFit>> {
        results
            .par_iter_mut()
            .zip(picks.par_iter())
            .map(|(result, pick)| self.refine_one(table, grid, pick, result))
            .collect()
    }

    /// How well the table's z agrees with the model: the median over up to
    /// [`Z_SCALE_PARTICLES`] particles (evenly spread over `picks`) of the
    /// factor on z that makes each one's localisations most likely
    /// ([`locfit::fit_z_scale`]; on the sparser model). `fits` are the
    /// picks' localisation fits; `None` when fewer than
    /// [`ZScale::MIN_PARTICLES`] are 3D fits tilted enough to tell.
    pub fn z_scale(
        &self,
        table: &LocTable,
        grid: &Grid,
        picks: &[Pick],
        fits: &[Option<LocFit>],
    ) -> Option<ZScale> {
        let usable: Vec<(&Pick, &LocFit)> = picks
            .iter()
            .zip(fits)
            .filter_map(|(p, f)| Some((p, f.as_ref()?)))
            .filter(|(_, f)| locfit::zscale::tells_scale(f))
            .collect();
        let step = usable.len().div_ceil(Z_SCALE_PARTICLES).max(1);
        let factors: Vec<_> = usable
            .par_iter()
            .step_by(step)
            .filter_map(|(pick, fit)| {
                let locs = self.particle_locs(table, grid, pick);
                locfit::fit_z_scale(&self.locs_coarse, &locs, fit, &self.locfit)
            })
            .collect();
        ZScale::of(&factors)
    }

    /// The localisations the fit of `pick` uses: those within reach of its
    /// centre, nm, with their precisions and (for a 3D table fitted in 3D)
    /// their z as the fit takes it ([`locfit::gather`]).
    pub fn particle_locs(&self, table: &LocTable, grid: &Grid, pick: &Pick) -> ParticleLocs {
        let near = grid.indices_near(pick.x_nm, pick.y_nm, self.reach_nm);
        let centre = [pick.x_nm, pick.y_nm];
        locfit::gather(table, &near, centre, self.reach_nm, &self.locfit)
    }

    /// Refines one particle's image fit on its localisations: the axis and
    /// centre become the localisation fit's, the image fit's axis being one
    /// of its starts. A failed image fit is fitted from the grid alone.
    /// `None` (the result unchanged) when the localisation fit fails.
    pub fn refine_one(
        &self,
        table: &LocTable,
        grid: &Grid,
        pick: &Pick,
        result: &mut FrameResult,
    ) -> Option<LocFit> {
        let centre = [pick.x_nm, pick.y_nm];
        let locs = self.particle_locs(table, grid, pick);
        let start = result.as_ref().ok().map(|f| f.outcome.state.pose.q.axis());
        let coarse = Some(&self.locs_coarse);
        match locfit::fit_axis(&self.locs_model, coarse, &locs, centre, start, &self.locfit) {
            Ok(fit) => {
                let sd = locfit::axis_standard_error(&self.locs_model, &locs, &fit, &self.locfit);
                self.apply(result, pick, &fit, sd);
                Some(fit)
            }
            Err(e) => {
                if result.is_ok() {
                    tracing::debug!("localisation fit skipped: {e}");
                } else {
                    *result = Err(e.to_string());
                }
                None
            }
        }
    }

    /// Writes a localisation fit, with its axis's standard error `sd`
    /// (degrees), into a particle's frame result.
    fn apply(&self, result: &mut FrameResult, pick: &Pick, fit: &LocFit, sd: f64) {
        let Some(q) = Quat::from_symmetry_axis(fit.axis, 0.0) else {
            return;
        };
        let shift = [
            (fit.centre_nm[0] - pick.x_nm) / self.pixel_nm,
            (fit.centre_nm[1] - pick.y_nm) / self.pixel_nm,
        ];
        match result {
            Ok(f) => {
                // keep the image fit's spin (meaningless for a torus, but stable)
                let (_, _, psi) = f.outcome.state.pose.q.to_euler_zyz();
                let q = Quat::from_symmetry_axis(fit.axis, psi).unwrap_or(q);
                f.outcome.state.pose = Pose::new(q, shift);
                f.outcome.axis_sd_deg = sd;
                f.outcome.z_locs = fit.z_locs;
            }
            Err(_) => {
                // the image fit failed: the localisation fit (from its grid) stands alone
                *result = Ok(FrameFit {
                    outcome: FitOutcome {
                        state: FitState {
                            pose: Pose::new(q, shift),
                            scale: 1.0,
                            sigma: 1.0,
                            shape: self.spec_px.torus[1],
                        },
                        score: 0.0,
                        converged: true,
                        iterations: 0,
                        axis_sd_deg: sd,
                        z_locs: fit.z_locs,
                        source: StartSource::Search,
                        start_ms: 0.0,
                        refine_ms: 0.0,
                    },
                    cnn_ms: 0.0,
                    nonfinite_px: 0,
                });
            }
        }
    }
}
