//! Field documents: a localisation table, or a large image with many
//! particles (a whole-field render), opened in the viewer becomes a
//! document whose frames are its particles. It keeps the field's source —
//! the table with the [`ParticleSetup`] shared with `posescope fit TABLE`,
//! or the image's mip pyramid with the [`ImageParticleSetup`] shared with
//! `posescope fit IMAGE --pick` — and the picks: the automatic candidates
//! the user accepts or removes, and the ones added by hand. Frame `k` of
//! the document is pick `k`'s particle frame; a removed pick keeps its
//! number (as Picasso keeps group ids) and is skipped.
//!
//! Pick positions are in *field units*: nm for a table, and for an image
//! its pixel size in nm when known (else one unit per pixel).
//! Plain data, no egui.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::error::AppError;
use super::frame_store::{FrameSource, FrameStore};
use super::state::{DocId, Document};
use crate::estimate::image_particles::{ImageParticleSetup, PICK_EXTRA_COLUMNS};
use crate::estimate::locfit::{LocFit, ZScale};
use crate::estimate::particles::ParticleSetup;
use crate::estimate::pick::{
    table_picks, Grid, ImagePick, Pick, PickConfig, PickError, PickSource,
};
use crate::estimate::pose::pipeline::{short_number, ModelSpec};
use crate::estimate::pose::results::{FitResults, FrameResult};
use crate::estimate::torus_size::{self, SizeError, SizeReport};
use crate::io::locs::{self, LocTable, PickRow, TableOptions};
use crate::io::{Frame, SampleType, StackInfo};
use crate::render::locs::{render_locs, LocMode, LocView};
use crate::render::mip::MipPyramid;
use crate::shapes::Units;

/// Where a pick stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PickState {
    /// Found by the automatic picker, not reviewed yet.
    Candidate,
    /// Accepted (or added by hand): fitted by Estimate all.
    Accepted,
    /// Removed by the user.
    Removed,
}

/// One pick of a field document.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PickEntry {
    pub pick: Pick,
    pub state: PickState,
    /// Added by a click rather than by the picker.
    pub manual: bool,
}

/// What the field of a field document is made of.
#[derive(Clone)]
pub enum FieldSource {
    /// A localisation table.
    Table {
        table: Arc<LocTable>,
        setup: Arc<ParticleSetup>,
        /// The table's localisations bucketed for disc queries.
        grid: Arc<Grid>,
    },
    /// One large image.
    Image {
        image: Arc<MipPyramid>,
        setup: Arc<ImageParticleSetup>,
    },
}

/// Field units per image pixel: the pixel size in nm when known, else 1.
fn unit(setup: &ImageParticleSetup) -> f64 {
    setup.pixel_nm.unwrap_or(1.0)
}

impl FieldSource {
    /// Pick `p`'s particle frame.
    pub fn frame(&self, p: &Pick) -> Frame {
        match self {
            FieldSource::Table { table, setup, grid } => setup.frame(table, grid, p),
            FieldSource::Image { image, setup } => {
                setup.frame(image.image(), &image_pick(image, setup, p))
            }
        }
    }

    /// The field rendered into `view` (field units): a table with
    /// individual blur of at least one pixel, an image from its pyramid.
    pub fn render(&self, view: &LocView) -> Vec<f32> {
        match self {
            FieldSource::Table { table, .. } => render_locs(
                &table.x_nm,
                &table.y_nm,
                table.precision_nm.as_deref(),
                view,
                LocMode::Blur {
                    min_blur_nm: view.pixel_nm as f32,
                },
            ),
            FieldSource::Image { image, setup } => image.render(view, unit(setup)),
        }
    }

    /// Whether a render takes long enough to belong on a background thread.
    pub fn heavy(&self) -> bool {
        match self {
            FieldSource::Table { table, .. } => table.len() > super::field_view::SYNC_ROWS,
            FieldSource::Image { .. } => false,
        }
    }
}

/// The measured image pick at field position `p`.
fn image_pick(image: &MipPyramid, setup: &ImageParticleSetup, p: &Pick) -> ImagePick {
    let u = unit(setup);
    setup.pick_at(image.image(), [p.x_nm / u, p.y_nm / u])
}

/// What a field document adds to a document.
pub struct ParticleDoc {
    pub source: FieldSource,
    pub picks: Vec<PickEntry>,
    /// The detector is still running on a field image: its candidates are
    /// added when it ends ([`add_candidates`]).
    pub picking: bool,
}

/// How tables and field images are opened.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TableLoad {
    /// The particle: a torus `[R, r]`, nm.
    pub torus_nm: [f64; 2],
    /// Camera pixel size for tables (and field images) that do not state
    /// it (Picasso without its `.yaml`).
    pub pixel_size_nm: Option<f64>,
    /// Fit a 3D table's z ([`LocFitOptions::use_z`](crate::estimate::locfit::LocFitOptions)).
    pub use_z: bool,
    /// Factor on a 3D table's z ([`LocFitOptions::z_scale`](crate::estimate::locfit::LocFitOptions)).
    pub z_scale: f64,
    /// Negate a 3D table's z ([`LocFitOptions::flip_z`](crate::estimate::locfit::LocFitOptions)).
    pub flip_z: bool,
}

impl Default for TableLoad {
    fn default() -> Self {
        Self {
            torus_nm: crate::estimate::particles::DEFAULT_TORUS_NM,
            pixel_size_nm: None,
            use_z: true,
            z_scale: 1.0,
            flip_z: false,
        }
    }
}

impl ParticleDoc {
    /// The torus `[R, r]` in field units.
    pub fn torus(&self) -> [f64; 2] {
        match &self.source {
            FieldSource::Table { setup, .. } => setup.torus_nm,
            FieldSource::Image { setup, .. } => setup.torus_px.map(|v| v * unit(setup)),
        }
    }

    /// Field units per particle-frame pixel.
    pub fn frame_pixel(&self) -> f64 {
        match &self.source {
            FieldSource::Table { setup, .. } => setup.pixel_nm,
            FieldSource::Image { setup, .. } => unit(setup) / setup.scale,
        }
    }

    /// The model the particles are fitted with, in particle-frame pixels.
    pub fn spec_px(&self) -> ModelSpec {
        match &self.source {
            FieldSource::Table { setup, .. } => setup.spec_px.clone(),
            FieldSource::Image { setup, .. } => setup.spec_px.clone(),
        }
    }

    /// The field's extent `[x_min, y_min, x_max, y_max]`, field units.
    pub fn extent(&self) -> [f32; 4] {
        match &self.source {
            FieldSource::Table { table, .. } => table.summary().extent_nm,
            FieldSource::Image { image, setup } => {
                let (i, u) = (image.image(), unit(setup));
                [
                    0.0,
                    0.0,
                    (i.width as f64 * u) as f32,
                    (i.height as f64 * u) as f32,
                ]
            }
        }
    }

    /// The field's length unit: "nm", or "px" for an image of unknown pixel size.
    pub fn unit_name(&self) -> &'static str {
        match &self.source {
            FieldSource::Image { setup, .. } if setup.pixel_nm.is_none() => "px",
            _ => "nm",
        }
    }

    /// The view of the whole field for an overview PNG (a table at 10 nm
    /// per pixel, an image at its own pixels, coarser beyond 16 Mpx), and
    /// its pixel size in nm when the field is in nm.
    pub fn overview_view(&self) -> Option<(LocView, Option<f64>)> {
        let [major, tube] = self.torus();
        let margin = 2.0 * (major + tube);
        match &self.source {
            FieldSource::Table { .. } => {
                let v = LocView::covering(self.extent(), 10.0, margin, 1 << 28)?;
                Some((v, Some(10.0)))
            }
            FieldSource::Image { image, setup } => {
                let i = image.image();
                let step = ((i.width as f64 * i.height as f64) / f64::from(1u32 << 24))
                    .sqrt()
                    .ceil()
                    .max(1.0);
                let pixel = unit(setup) * step;
                let v = LocView {
                    origin_nm: [0.0, 0.0],
                    pixel_nm: pixel,
                    width: (i.width as f64 / step).ceil() as usize,
                    height: (i.height as f64 / step).ceil() as usize,
                };
                Some((v, setup.pixel_nm.map(|_| pixel)))
            }
        }
    }

    /// One line about the field: its localisations, or the image's size.
    pub fn describe(&self) -> String {
        let [major, tube] = self.torus();
        let unit = self.unit_name();
        let [major, tube] = [major, tube].map(short_number);
        format!(
            "{} · torus R {major} {unit}, r {tube} {unit}",
            self.source_line()
        )
    }

    /// What the field is made of: its localisations, or the image's size.
    pub fn source_line(&self) -> String {
        match &self.source {
            FieldSource::Table { table, .. } => format!("{} localisations", table.len()),
            FieldSource::Image { image, .. } => {
                let i = image.image();
                format!("{} × {} px image", i.width, i.height)
            }
        }
    }

    /// The status bar's line for the field (its particle frames are not
    /// what the user opened): source, pixel size, particles.
    pub fn status_line(&self) -> String {
        let pixel = match &self.source {
            FieldSource::Table { .. } => String::new(),
            FieldSource::Image { setup, .. } => match setup.pixel_nm {
                Some(p) => format!(" · {} nm/px", short_number(p)),
                None => " · pixel size unknown".into(),
            },
        };
        let particles = if self.picking {
            "finding particles…".to_string()
        } else {
            format!("{} particles", self.picks.len())
        };
        format!("{}{pixel} · {particles}", self.source_line())
    }
    /// The picks Estimate all fits.
    pub fn accepted(&self) -> Vec<usize> {
        self.indices(PickState::Accepted)
    }

    /// The picks in a state.
    pub fn indices(&self, state: PickState) -> Vec<usize> {
        (0..self.picks.len())
            .filter(|&k| self.picks[k].state == state)
            .collect()
    }

    /// The next candidate after pick `after` (from the start when `None`),
    /// wrapping round; `None` when no candidate is left — the order in
    /// which the keyboard review (A, Delete, N) walks the picks.
    pub fn next_candidate(&self, after: Option<usize>) -> Option<usize> {
        let n = self.picks.len();
        let start = after.map_or(0, |k| k + 1);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&k| self.picks[k].state == PickState::Candidate)
    }

    /// Accepts every candidate; returns how many.
    pub fn accept_all(&mut self) -> usize {
        let mut n = 0;
        for p in &mut self.picks {
            if p.state == PickState::Candidate {
                p.state = PickState::Accepted;
                n += 1;
            }
        }
        n
    }

    /// The pick whose disc (the particle's outer radius) holds `(x, y)` nm,
    /// nearest first; removed picks do not count.
    pub fn pick_at(&self, x_nm: f64, y_nm: f64) -> Option<usize> {
        let [major, tube] = self.torus();
        let r = major + tube;
        self.picks
            .iter()
            .enumerate()
            .filter(|(_, p)| p.state != PickState::Removed)
            .map(|(k, p)| (k, (p.pick.x_nm - x_nm).hypot(p.pick.y_nm - y_nm)))
            .filter(|&(_, d)| d <= r)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(k, _)| k)
    }

    /// Every pick's position, by number (what estimation jobs refine against).
    pub fn pick_list(&self) -> Arc<Vec<Pick>> {
        Arc::new(self.picks.iter().map(|p| p.pick).collect())
    }

    /// Particle `k`'s localisations that have a z (as its fit takes them),
    /// in particle-frame pixels about its centre (`shift_px` from the pick,
    /// the pose's shift) and their median z: what the 3D view draws beside
    /// the posed model. `None` for an image field, a 2D table or one fitted
    /// without its z.
    pub fn locs_3d(&self, k: usize, shift_px: [f64; 2]) -> Option<Vec<[f32; 3]>> {
        let FieldSource::Table { table, setup, grid } = &self.source else {
            return None;
        };
        let pick = self.picks.get(k)?.pick;
        let locs = setup.particle_locs(table, grid, &pick);
        let zc = locs.median_z()?;
        let px = setup.pixel_nm;
        let (cx, cy) = (pick.x_nm + shift_px[0] * px, pick.y_nm + shift_px[1] * px);
        Some(
            (0..locs.len())
                .filter(|&i| locs.z[i].is_finite())
                .map(|i| [locs.x[i] - cx, locs.y[i] - cy, locs.z[i] - zc].map(|v| (v / px) as f32))
                .collect(),
        )
    }

    /// Makes `setup` the table's (a torus size fitted to its particles);
    /// nothing for an image field.
    pub fn set_setup(&mut self, setup: Arc<ParticleSetup>) {
        if let FieldSource::Table { setup: s, .. } = &mut self.source {
            *s = setup;
        }
    }

    /// The table's setup (`None` for an image field).
    pub fn table_setup(&self) -> Option<Arc<ParticleSetup>> {
        match &self.source {
            FieldSource::Table { setup, .. } => Some(setup.clone()),
            FieldSource::Image { .. } => None,
        }
    }

    /// The table's torus `[R, r]`, nm (`None` for an image field).
    pub fn table_torus_nm(&self) -> Option<[f64; 2]> {
        self.table_setup().map(|s| s.torus_nm)
    }

    /// Whether the field is a localisation table (its picks count localisations).
    pub fn is_table(&self) -> bool {
        matches!(self.source, FieldSource::Table { .. })
    }

    /// What an estimation job needs to refine a particle on its
    /// localisations (`None` for an image: it has none).
    pub fn refiner(&self) -> Option<LocRefiner> {
        match &self.source {
            FieldSource::Table { table, setup, grid } => Some(LocRefiner {
                table: table.clone(),
                setup: setup.clone(),
                grid: grid.clone(),
                picks: self.pick_list(),
            }),
            FieldSource::Image { .. } => None,
        }
    }

    /// Replaces the picks with `picks` (accepted, their localisation counts
    /// taken from the table); returns how many.
    pub fn replace_picks(&mut self, picks: &[Pick]) -> usize {
        self.picks = picks
            .iter()
            .map(|p| PickEntry {
                pick: Pick {
                    n_locs: self.locs_near(p.x_nm, p.y_nm),
                    ..*p
                },
                state: PickState::Accepted,
                manual: false,
            })
            .collect();
        self.picks.len()
    }

    /// What the picks' positions are in: a table's nm, an image's nm or
    /// pixels.
    pub fn positions(&self) -> super::pick_store::Positions {
        use super::pick_store::Positions;
        match &self.source {
            FieldSource::Table { .. } => Positions::Nm,
            FieldSource::Image { setup, .. } => Positions::Image {
                pixel_nm: setup.pixel_nm,
            },
        }
    }

    /// Localisations within a pick's disc around `(x, y)` nm (0 on an image).
    pub fn locs_near(&self, x_nm: f64, y_nm: f64) -> usize {
        let FieldSource::Table {
            table: t,
            setup,
            grid,
        } = &self.source
        else {
            return 0;
        };
        let reach = setup.count_nm;
        grid.indices_near(x_nm, y_nm, reach)
            .into_iter()
            .filter(|&i| (f64::from(t.x_nm[i]) - x_nm).hypot(f64::from(t.y_nm[i]) - y_nm) <= reach)
            .count()
    }

    /// Reads a picks CSV into field positions: a table's in nm; an image's
    /// in its pixels (or nm, with its pixel size).
    pub fn read_picks(&self, path: &Path) -> Result<Vec<Pick>, crate::io::IoError> {
        match &self.source {
            FieldSource::Table { .. } => locs::read_picks(path),
            FieldSource::Image { setup, .. } => {
                let u = unit(setup);
                Ok(locs::read_pick_centres_px(path, setup.pixel_nm)?
                    .into_iter()
                    .map(|c| Pick {
                        x_nm: c[0] * u,
                        y_nm: c[1] * u,
                        n_locs: 0,
                    })
                    .collect())
            }
        }
    }

    /// The picks as `posescope pick` writes them (removed ones left out).
    pub fn save_picks(&self, path: &Path) -> Result<usize, AppError> {
        let kept: Vec<Pick> = self
            .picks
            .iter()
            .filter(|p| p.state != PickState::Removed)
            .map(|p| p.pick)
            .collect();
        let [major, tube] = self.torus();
        match &self.source {
            FieldSource::Table { table, .. } => {
                locs::write_picks(path, &kept, table.pixel_size_nm, 2.0 * (major + tube))?;
            }
            FieldSource::Image { image, setup } => {
                let rows: Vec<PickRow> = kept
                    .iter()
                    .map(|p| setup.pick_row(&image_pick(image, setup, p)))
                    .collect();
                locs::write_pick_rows(path, &rows, &PICK_EXTRA_COLUMNS)?;
            }
        }
        Ok(kept.len())
    }
}

/// A field's particle frames, rendered from its source when asked for
/// (frame `k` is pick `k`'s).
pub struct ParticleFrames {
    source: FieldSource,
    picks: Arc<Vec<Pick>>,
}

impl FrameSource for ParticleFrames {
    fn len(&self) -> usize {
        self.picks.len()
    }

    fn read(&self, k: usize) -> Result<Frame, String> {
        let p = self
            .picks
            .get(k)
            .ok_or_else(|| format!("particle {k} is not in the field's picks"))?;
        Ok(self.source.frame(p))
    }
}

impl ParticleDoc {
    /// The document's frames: one per pick, rendered on demand.
    pub fn frame_store(&self) -> FrameStore {
        let size = crate::estimate::particles::PARTICLE_FRAME_PX;
        let source = ParticleFrames {
            source: self.source.clone(),
            picks: self.pick_list(),
        };
        FrameStore::from_source(Arc::new(source), size * size * 4, PARTICLE_CACHE_BYTES)
    }
}

/// Makes a field document's frames again from its picks (one per pick,
/// after the picks changed); its frame count follows. Its results are the
/// caller's to keep in step.
pub fn refresh_frames(doc: &mut Document) {
    if let Some(p) = &doc.particles {
        doc.frames = Arc::new(p.frame_store());
        doc.info.frames = doc.frames.len();
    }
}

/// Particle frames kept rendered, bytes.
const PARTICLE_CACHE_BYTES: usize = 64 << 20;

/// A snapshot for refining particles on their localisations in a job.
#[derive(Clone)]
pub struct LocRefiner {
    table: Arc<LocTable>,
    setup: Arc<ParticleSetup>,
    grid: Arc<Grid>,
    picks: Arc<Vec<Pick>>,
}

impl LocRefiner {
    /// The table's file.
    pub fn table_path(&self) -> std::path::PathBuf {
        self.table.path.clone()
    }

    /// The torus's size fitted to the particles `which`, from `results`
    /// (theirs, in the same order) as starts ([`torus_size::fit_size`]):
    /// the setup with that size, what was found and the particles' results
    /// fitted with it. `on_round` hears each round.
    pub fn fit_size(
        &self,
        which: &[usize],
        mut results: Vec<FrameResult>,
        on_round: impl FnMut(usize, &crate::estimate::locfit::size::ProfilePoint),
    ) -> Result<(ParticleSetup, SizeReport, Vec<FrameResult>), SizeError> {
        let picks: Vec<Pick> = which
            .iter()
            .filter_map(|&k| self.picks.get(k).copied())
            .collect();
        if picks.len() != results.len() {
            return Err(SizeError::TooFew(picks.len().min(results.len())));
        }
        let mut setup = (*self.setup).clone();
        let report = torus_size::fit_size(
            &mut setup,
            &self.table,
            &self.grid,
            &picks,
            &mut results,
            on_round,
        )?;
        Ok((setup, report, results))
    }

    /// Refines particle `k`'s result on its localisations (unchanged if it
    /// has no pick or the fit fails); the localisation fit, if any.
    pub fn refine(&self, k: usize, result: &mut FrameResult) -> Option<LocFit> {
        let p = self.picks.get(k)?;
        self.setup.refine_one(&self.table, &self.grid, p, result)
    }

    /// The check of a 3D table's z against the model
    /// ([`ParticleSetup::z_scale`]) over the particles `fits` (index, fit).
    pub fn z_scale(&self, fits: &[(usize, LocFit)]) -> Option<ZScale> {
        let (picks, fits): (Vec<Pick>, Vec<Option<LocFit>>) = fits
            .iter()
            .filter_map(|(k, f)| Some((*self.picks.get(*k)?, Some(*f))))
            .unzip();
        self.setup.z_scale(&self.table, &self.grid, &picks, &fits)
    }
}

/// The model spec of a table's particles: the torus in nm.
pub fn particle_spec(torus_nm: [f64; 2]) -> ModelSpec {
    ModelSpec {
        torus: torus_nm,
        units: Units::Nm,
        ..ModelSpec::default()
    }
}

/// Opens a localisation table as a document: picks its particles
/// automatically (as candidates) and renders their particle frames.
pub fn load_table(
    path: &Path,
    opts: &TableLoad,
    cancel: &AtomicBool,
) -> Result<Document, AppError> {
    let table = locs::open_table(
        path,
        &TableOptions {
            pixel_size_nm: opts.pixel_size_nm,
            ..TableOptions::default()
        },
    )?;
    if table.is_empty() {
        return Err(AppError::Empty(path.to_path_buf()));
    }
    let mut setup =
        ParticleSetup::new(&table, &particle_spec(opts.torus_nm)).map_err(|e| AppError::Table {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    setup.locfit.use_z = opts.use_z;
    setup.locfit.z_scale = opts.z_scale;
    setup.locfit.flip_z = opts.flip_z;
    if cancel.load(Ordering::Relaxed) {
        return Err(AppError::Cancelled);
    }
    let [major, tube] = setup.torus_nm;
    // a field too wide to pick (absurd coordinates) still opens, to be
    // looked at and picked by hand
    let cfg = PickConfig::for_radius(major + tube);
    let (picks, source, not_picked) = match table_picks(&table, &cfg, false) {
        Ok((picks, source)) => (picks, source, None),
        Err(e @ PickError::TooLarge(_)) => (Vec::new(), PickSource::Detected, Some(e.to_string())),
        Err(e) => {
            return Err(AppError::Table {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })
        }
    };
    if cancel.load(Ordering::Relaxed) {
        return Err(AppError::Cancelled);
    }
    let grid = setup.index(&table);
    // the reader's warnings already count the rows it skipped
    let mut warnings = table.warnings.clone();
    if let Some(why) = not_picked {
        warnings.push(format!("{why}: click in the field to pick by hand"));
    } else if let PickSource::Groups(_) = source {
        warnings.push(format!(
            "its picks are {}: accepted as they are",
            source.describe()
        ));
    } else if picks.is_empty() {
        warnings.push(format!(
            "no particles of R {major} nm, r {tube} nm found automatically: click in the field to pick by hand"
        ));
    }
    let format = table.format;
    let frame_pixel_nm = setup.pixel_nm;
    let particles = ParticleDoc {
        source: FieldSource::Table {
            table: Arc::new(table),
            setup: Arc::new(setup),
            grid: Arc::new(grid),
        },
        picks: picks
            .into_iter()
            .map(|pick| PickEntry {
                pick,
                // picks made in Picasso were the user's own choice
                state: match source {
                    PickSource::Groups(_) => PickState::Accepted,
                    PickSource::Detected => PickState::Candidate,
                },
                manual: false,
            })
            .collect(),
        picking: false,
    };
    Ok(field_document(
        path,
        format,
        particles,
        Some(frame_pixel_nm),
        warnings,
    ))
}

/// The document of a field: one frame per pick.
fn field_document(
    path: &Path,
    format: &'static str,
    particles: ParticleDoc,
    frame_pixel_nm: Option<f64>,
    warnings: Vec<String>,
) -> Document {
    let size = crate::estimate::particles::PARTICLE_FRAME_PX;
    let n = particles.picks.len();
    Document {
        id: DocId::next(),
        path: path.to_path_buf(),
        info: StackInfo {
            path: path.to_path_buf(),
            format,
            width: size,
            height: size,
            frames: n,
            sample_type: SampleType::F32,
            bits_per_sample: 32,
            palette: None,
            pixel_size_nm: frame_pixel_nm,
            warnings,
        },
        frames: Arc::new(particles.frame_store()),
        results: FitResults::new(n),
        unsaved: false,
        particles: Some(particles),
        sequence: None,
        history: Default::default(),
    }
}

/// Reads one large image (a whole-field render), opened as `stack`, into a
/// field document: its mip pyramid, with no picks yet, and the detector's
/// run that finds its candidates ([`FieldPicking::run`], then
/// [`add_candidates`]) — on a huge image that takes seconds, so the viewer
/// shows the field first.
/// The torus in nm needs the image's pixel size (the file's, or `opts`');
/// without one, the bundled model's R 20 px, r 5 px stands in and a
/// warning says so.
pub fn load_image_field(
    path: &Path,
    mut stack: crate::io::Stack,
    opts: &TableLoad,
    cancel: &AtomicBool,
) -> Result<(Document, FieldPicking), AppError> {
    let info = stack.info().clone();
    let frame = stack.frame(0)?;
    let mut warnings = info.warnings.clone();
    if info.frames > 1 {
        warnings.push(format!(
            "{} frames of {} × {} px: only frame 0 is shown, as a field",
            info.frames, info.width, info.height
        ));
    }
    let pixel_nm = info.pixel_size_nm.or(opts.pixel_size_nm);
    let spec = match pixel_nm {
        Some(p) => ModelSpec {
            torus: opts.torus_nm,
            units: Units::Nm,
            pixel_size: Some(p),
            ..ModelSpec::default()
        },
        None => {
            warnings.push(
                "the pixel size is unknown: positions are in pixels and the particle is taken as R 20 px, r 5 px; set the pixel size in Settings and reopen".into(),
            );
            ModelSpec::default()
        }
    };
    let setup = ImageParticleSetup::new(&spec, pixel_nm).map_err(|e| AppError::Table {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    if cancel.load(Ordering::Relaxed) {
        return Err(AppError::Cancelled);
    }
    let frame_pixel = pixel_nm.map(|p| p / setup.scale);
    let image = Arc::new(MipPyramid::new(frame));
    let setup = Arc::new(setup);
    let particles = ParticleDoc {
        source: FieldSource::Image {
            image: image.clone(),
            setup: setup.clone(),
        },
        picks: Vec::new(),
        picking: true,
    };
    let doc = field_document(path, info.format, particles, frame_pixel, warnings);
    let picking = FieldPicking {
        doc: doc.id,
        image,
        setup,
    };
    Ok((doc, picking))
}

/// The automatic picking of a field image, run after its document opened.
pub struct FieldPicking {
    /// The document the candidates belong to.
    pub doc: DocId,
    image: Arc<MipPyramid>,
    setup: Arc<ImageParticleSetup>,
}

impl FieldPicking {
    /// The image's particles (field units), and what to tell the user when
    /// the detector could not run or found none.
    pub fn run(&self) -> (Vec<Pick>, Option<String>) {
        let setup = &self.setup;
        let u = unit(setup);
        match setup.pick(self.image.image(), &setup.pick_config()) {
            // the field stays open when the detector cannot run on it
            Err(e) => (Vec::new(), Some(format!("automatic picking: {e}"))),
            Ok(found) if found.is_empty() => (
                Vec::new(),
                Some("no particles of the model's size found automatically: click in the field to pick by hand".into()),
            ),
            Ok(found) => (
                found.iter().map(|p| p.to_pick(u)).collect(),
                None,
            ),
        }
    }
}

/// Adds the detector's picks to a field document as candidates, but not
/// those within a particle's outer radius of a pick already there (placed
/// by hand while the detector ran); the document's picking ends. Returns
/// how many were added (`None` for a document that is not a field).
pub fn add_candidates(doc: &mut Document, found: &[Pick]) -> Option<usize> {
    let p = doc.particles.as_mut()?;
    p.picking = false;
    let reach = {
        let [major, tube] = p.torus();
        major + tube
    };
    let before = p.picks.len();
    for f in found {
        let taken = p.picks.iter().any(|e| {
            e.state != PickState::Removed
                && (e.pick.x_nm - f.x_nm).hypot(e.pick.y_nm - f.y_nm) < reach
        });
        if !taken {
            p.picks.push(PickEntry {
                pick: *f,
                state: PickState::Candidate,
                manual: false,
            });
        }
    }
    let added = p.picks.len() - before;
    if added > 0 {
        for _ in 0..added {
            doc.results.push();
        }
        refresh_frames(doc);
    }
    Some(added)
}

/// Adds a pick by hand at `(x, y)` nm (accepted): a new particle frame at
/// the end of the document. Returns its number (`None` for a document that
/// is not a table, or a position that is not finite).
pub fn add_pick(doc: &mut Document, x_nm: f64, y_nm: f64) -> Option<usize> {
    let p = doc.particles.as_mut()?;
    if !(x_nm.is_finite() && y_nm.is_finite()) {
        return None;
    }
    let n_locs = p.locs_near(x_nm, y_nm);
    p.picks.push(PickEntry {
        pick: Pick { x_nm, y_nm, n_locs },
        state: PickState::Accepted,
        manual: true,
    });
    doc.results.push();
    refresh_frames(doc);
    let k = doc.frames.len() - 1;
    doc.history.added(k);
    doc.unsaved = true;
    Some(k)
}

/// Moves pick `k` to `(x, y)` nm: its localisation count is taken again,
/// its particle frame is rendered anew and its fit is dropped. Returns the
/// new localisation count (`None` for a document that is not a table, a
/// pick that does not exist or a position that is not finite).
pub fn move_pick(doc: &mut Document, k: usize, x_nm: f64, y_nm: f64) -> Option<usize> {
    let p = doc.particles.as_mut()?;
    if !(x_nm.is_finite() && y_nm.is_finite()) || k >= p.picks.len() {
        return None;
    }
    let n_locs = p.locs_near(x_nm, y_nm);
    doc.history
        .moved(k, p.picks[k], doc.results.get(k).cloned());
    let e = &mut p.picks[k];
    e.pick = Pick { x_nm, y_nm, n_locs };
    e.manual = true;
    refresh_frames(doc);
    doc.results.clear(k);
    doc.unsaved = true;
    Some(n_locs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::locs::{generate_field, write_field, FieldConfig};

    /// Four particles in 40 × 40 camera pixels.
    fn field_config() -> FieldConfig {
        FieldConfig {
            particles: 4,
            field_px: [40, 40],
            seed: 5,
            ..FieldConfig::default()
        }
    }

    fn field(dir: &Path) -> std::path::PathBuf {
        let cfg = field_config();
        let f = generate_field(&cfg).unwrap();
        write_field(&cfg, &f, dir).unwrap().thunderstorm
    }

    const LOAD: TableLoad = TableLoad {
        torus_nm: [180.0, 40.0],
        pixel_size_nm: None,
        use_z: true,
        z_scale: 1.0,
        flip_z: false,
    };

    #[test]
    fn a_moved_pick_is_recounted_rendered_anew_and_unfitted() {
        let dir = tempfile::tempdir().unwrap();
        let path = field(dir.path());
        let mut doc = load_table(&path, &LOAD, &AtomicBool::new(false)).unwrap();
        let first = doc.particles.as_ref().unwrap().picks[0].pick;
        let old = doc.frames.get(0).unwrap().data.clone();
        doc.results
            .set(0, Err("a stand-in result for the old place".into()));
        // 5 µm away: off the particle, so far fewer localisations
        let n = move_pick(&mut doc, 0, first.x_nm + 5000.0, first.y_nm).unwrap();
        let p = doc.particles.as_ref().unwrap();
        assert_eq!(p.picks[0].pick.x_nm, first.x_nm + 5000.0);
        assert_eq!(p.picks[0].pick.n_locs, n);
        assert!(n < first.n_locs / 2, "{n} vs {}", first.n_locs);
        assert!(p.picks[0].manual);
        assert_ne!(
            doc.frames.get(0).unwrap().data,
            old,
            "the frame is rendered anew"
        );
        assert!(doc.results.get(0).is_none(), "the old result is dropped");
        assert_eq!(doc.frames.len(), 4);
        // and back: the same frame as before
        move_pick(&mut doc, 0, first.x_nm, first.y_nm).unwrap();
        assert_eq!(doc.frames.get(0).unwrap().data, old);
        // nothing to move, or nowhere to move it
        assert!(move_pick(&mut doc, 9, 0.0, 0.0).is_none());
        assert!(move_pick(&mut doc, 0, f64::NAN, 0.0).is_none());
    }

    #[test]
    fn a_field_image_opens_before_its_picks_which_skip_those_made_by_hand() {
        let dir = tempfile::tempdir().unwrap();
        let f = generate_field(&field_config()).unwrap();
        let view = LocView {
            origin_nm: [0.0, 0.0],
            pixel_nm: 10.0,
            width: 520,
            height: 520,
        };
        let x: Vec<f32> = f.locs.iter().map(|l| l.x_nm).collect();
        let y: Vec<f32> = f.locs.iter().map(|l| l.y_nm).collect();
        let p: Vec<f32> = f.locs.iter().map(|l| l.precision_nm).collect();
        let data = render_locs(&x, &y, Some(&p), &view, LocMode::Blur { min_blur_nm: 5.0 });
        let path = dir.path().join("field.tif");
        let frame = Frame {
            width: 520,
            height: 520,
            data,
        };
        crate::io::write_tiff_stack(&path, &[frame], crate::io::WriteSample::F32, Some(10.0))
            .unwrap();
        let stack = crate::io::open(&path).unwrap();
        let (mut doc, picking) =
            load_image_field(&path, stack, &LOAD, &AtomicBool::new(false)).unwrap();
        // the field opens with no picks while the detector has not run
        assert_eq!(picking.doc, doc.id);
        assert!(doc.particles.as_ref().unwrap().picking);
        assert_eq!(doc.frames.len(), 0);
        // the status bar describes the image, not the particle frames
        assert_eq!(
            doc.particles.as_ref().unwrap().status_line(),
            "520 × 520 px image · 10 nm/px · finding particles…"
        );
        // meanwhile the user picks one particle by hand
        let t = f.truth[0];
        assert_eq!(add_pick(&mut doc, t.x_nm + 20.0, t.y_nm), Some(0));
        let (found, note) = picking.run();
        assert_eq!(found.len(), 4, "{note:?}");
        assert!(note.is_none());
        // its candidate is not added twice; the others follow it
        assert_eq!(add_candidates(&mut doc, &found), Some(3));
        let p = doc.particles.as_ref().unwrap();
        assert!(!p.picking);
        assert_eq!(p.picks.len(), 4);
        assert!(p.picks[0].manual && p.picks[0].state == PickState::Accepted);
        assert!(p.picks[1..].iter().all(|e| e.state == PickState::Candidate));
        for tr in &f.truth[1..] {
            assert!(
                p.picks
                    .iter()
                    .any(|e| (e.pick.x_nm - tr.x_nm).hypot(e.pick.y_nm - tr.y_nm) < 150.0),
                "{tr:?} not picked"
            );
        }
        assert_eq!(doc.frames.len(), 4);
        assert_eq!(doc.results.len(), 4);
        assert_eq!(doc.info.frames, 4);
        assert_eq!(
            p.status_line(),
            "520 × 520 px image · 10 nm/px · 4 particles"
        );
    }

    #[test]
    fn a_table_opens_as_particles_that_are_accepted_added_and_saved() {
        let dir = tempfile::tempdir().unwrap();
        let path = field(dir.path());
        let mut doc = load_table(&path, &LOAD, &AtomicBool::new(false)).unwrap();
        let p = doc.particles.as_mut().unwrap();
        assert_eq!(p.picks.len(), 4);
        assert_eq!(doc.frames.len(), 4);
        assert!(p.accepted().is_empty());
        assert_eq!(p.accept_all(), 4);
        // a click on a particle finds it; one far away finds none
        let first = p.picks[0].pick;
        assert_eq!(p.pick_at(first.x_nm + 50.0, first.y_nm), Some(0));
        assert_eq!(p.pick_at(-1e6, -1e6), None);
        p.picks[1].state = PickState::Removed;
        // a pick by hand becomes particle 4 with its own frame
        let k = add_pick(&mut doc, first.x_nm, first.y_nm).unwrap();
        assert_eq!(k, 4);
        assert_eq!(doc.frames.len(), 5);
        assert_eq!(doc.results.len(), 5);
        assert_eq!(
            doc.frames.get(4).unwrap().data,
            doc.frames.get(0).unwrap().data
        );
        let p = doc.particles.as_ref().unwrap();
        assert!(p.picks[4].manual && p.picks[4].pick.n_locs > 30);
        let out = dir.path().join("picks.csv");
        assert_eq!(p.save_picks(&out).unwrap(), 4);
        let back = locs::read_picks(&out).unwrap();
        assert_eq!(back.len(), 4);
        // loaded back, the picks are accepted, recounted at the saved centres
        // (within 5 % of the picker's counts, taken at its previous centre)
        let mut doc2 = load_table(&path, &LOAD, &AtomicBool::new(false)).unwrap();
        let q = doc2.particles.as_mut().unwrap();
        assert_eq!(q.replace_picks(&back), 4);
        assert_eq!(q.accepted().len(), 4);
        for (a, b) in q.picks.iter().zip(&back) {
            assert!(
                a.pick.n_locs.abs_diff(b.n_locs) * 20 <= b.n_locs,
                "{} vs {}",
                a.pick.n_locs,
                b.n_locs
            );
        }
    }

    #[test]
    fn a_table_too_wide_to_pick_still_opens_to_be_picked_by_hand() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stray.csv");
        // coordinates no density map can span (a unit mix-up, a broken export)
        std::fs::write(&path, "x [nm],y [nm]\n-1e30,0\n1e30,1e7\n").unwrap();
        let doc = load_table(&path, &LOAD, &AtomicBool::new(false)).unwrap();
        let p = doc.particles.as_ref().unwrap();
        assert!(p.picks.is_empty());
        let w = doc.info.warnings.join("; ");
        assert!(
            w.contains("too large to pick") && w.contains("pick by hand"),
            "{w}"
        );
        assert!(!w.contains("found automatically"), "{w}");
    }

    #[test]
    fn an_empty_table_and_a_bad_model_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.csv");
        std::fs::write(&path, "\"x [nm]\",\"y [nm]\"\n").unwrap();
        let Err(e) = load_table(&path, &LOAD, &AtomicBool::new(false)) else {
            panic!("an empty table opened");
        };
        assert!(e.to_string().contains("empty.csv"), "{e}");
        let good = field(dir.path());
        let bad = TableLoad {
            torus_nm: [40.0, 180.0],
            ..LOAD
        };
        let Err(e) = load_table(&good, &bad, &AtomicBool::new(false)) else {
            panic!("an inside-out torus was accepted");
        };
        assert!(e.to_string().contains("cannot be fitted"), "{e}");
    }

    #[test]
    fn broken_tables_are_errors_that_name_the_file() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/locs");
        for (name, expect) in [
            ("picasso_truncated.hdf5", "picasso_truncated.hdf5"),
            ("picasso_noyaml.hdf5", "pixel size"),
            ("wrong_columns.csv", "columns"),
            ("header_only.csv", "header_only.csv"),
        ] {
            let Err(e) = load_table(&fixtures.join(name), &LOAD, &AtomicBool::new(false)) else {
                panic!("{name} opened");
            };
            let text = e.to_string();
            assert!(text.contains(expect), "{name}: {text}");
        }
        // a Picasso file without its .yaml opens once the pixel size is given
        let with_size = TableLoad {
            pixel_size_nm: Some(130.0),
            ..LOAD
        };
        let ok = load_table(
            &fixtures.join("picasso_noyaml.hdf5"),
            &with_size,
            &AtomicBool::new(false),
        );
        assert!(ok.is_ok(), "{:?}", ok.err());
    }
}
