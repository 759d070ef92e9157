//! Learning the 3D structure from many particles, with no model given.
//!
//! Owns: the learning loop ([`Learner`]), its settings ([`LearnConfig`]),
//! its checkpoint ([`LearnState`]) and the comparison of a learned structure
//! with a known one ([`compare`]). The CLI's `posescope learn` and the
//! viewer's Learn panel drive the same [`Learner`].
//!
//! # Method: alternating projection matching and structure descent
//! Every iteration
//! 1. blurs the frames to the iteration's resolution (the curriculum: an
//!    extra Gaussian blur of 0.2·radius at the start, none from 70 % of the
//!    iterations on) and renders with the PSF widened to match;
//! 2. fits a pose to every frame against the current cloud ([`mod@assign`]):
//!    a template search over an even grid of rotations as one matrix product
//!    of binned frames and binned templates, then Levenberg–Marquardt from
//!    the best few and from the frame's previous pose;
//! 3. down-weights frames that fit badly (NCC more than 3 MADs below the
//!    median count 0.2);
//! 4. moves the points and their weights by Adam down the summed image loss
//!    of every frame at its pose, through the renderer's exact backward pass
//!    ([`structure`]), with the Cₙ/Dₙ prior imposed by construction (only
//!    the asymmetric unit is learned; the group expands it);
//! 5. recentres the cloud on its weighted centroid (the poses' shifts follow).
//!
//! Memory is O(frames·crop + points + grid·binned crop): one crop per frame,
//! never frames × pixels × points. The run is deterministic for a seed:
//! the only random draw is the starting cloud, and every parallel sum adds
//! fixed chunks in order. A [`LearnState`] after any iteration resumes to
//! the same result as an uninterrupted run.
//!
//! The handedness of the result is fixed by the convention in [`convention`].
//!
//! Nothing here knows wgpu or egui.

pub mod assign;
pub mod compare;
pub mod convention;
pub mod data;
pub mod input;
pub mod structure;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::geometry::{Mat3, Pose, Quat, Symmetry, SymmetryGroup};
use crate::io::PoseRow;
use crate::shapes::{Model, ShapeError, Units};

use assign::{assign, rotation_grid, AssignInput};
use data::{blur, FrameId, Prepared};
use structure::{loss_and_grad, Adam, Cloud, CropPose, LossInput};

/// Every input frame in reading order: the index of its crop, or why it was
/// left out.
type FrameOrder = Vec<(FrameId, Result<usize, String>)>;

/// Errors from learning.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// The frames or settings cannot be learned from.
    #[error("{0}")]
    Input(String),
    /// A checkpoint could not be read or written, or belongs to other data.
    #[error("checkpoint '{path}': {cause}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What went wrong.
        cause: String,
    },
    /// The starting model could not be used.
    #[error(transparent)]
    Shape(#[from] ShapeError),
}

/// The starting structure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum InitShape {
    /// A sphere without a symmetry prior; with a Cₙ/Dₙ prior, a ring about
    /// the prior's axis (a sphere gives the poses nothing to line the axis
    /// up with, and the run stalls).
    Auto,
    /// Points spread at random over a sphere of the particle's radius.
    Sphere,
    /// A flat ring of the particle's radius in the model xy plane.
    Ring,
    /// A Gaussian ball of half the particle's radius.
    Blob,
    /// The points of a model file (pixels).
    File(PathBuf),
}

impl std::str::FromStr for InitShape {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "auto" => InitShape::Auto,
            "sphere" => InitShape::Sphere,
            "ring" => InitShape::Ring,
            "blob" => InitShape::Blob,
            _ if s.contains('.') || s.contains('/') => InitShape::File(PathBuf::from(s)),
            _ => {
                return Err(format!(
                    "'{s}': expected sphere, ring, blob or a model file"
                ))
            }
        })
    }
}

/// Settings of a learning run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LearnConfig {
    /// Starting structure.
    pub init: InitShape,
    /// Points in the cloud (the asymmetric unit holds points/|G|).
    pub points: usize,
    /// Symmetry prior: C1 (none), Cₙ or Dₙ about model z.
    pub symmetry: Symmetry,
    /// Outer iterations (pose assignment + structure update).
    pub iterations: usize,
    /// Seed of the starting cloud.
    pub seed: u64,
    /// PSF σ of the frames, pixels.
    pub sigma: f64,
    /// Rotations in the template search.
    pub search: usize,
    /// Templates refined per frame.
    pub top: usize,
    /// Adam steps of the structure per iteration.
    pub steps: usize,
}

impl Default for LearnConfig {
    fn default() -> Self {
        Self {
            init: InitShape::Auto,
            points: 800,
            symmetry: Symmetry::NONE,
            iterations: 16,
            seed: 1,
            sigma: 1.6,
            search: 4000,
            top: 3,
            steps: 30,
        }
    }
}

impl LearnConfig {
    /// Checks the settings, naming the bad one.
    pub fn validate(&self) -> Result<(), LearnError> {
        let bad = |m: String| Err(LearnError::Input(m));
        if !(8..=20_000).contains(&self.points) {
            return bad(format!("--points {} must be within 8..20000", self.points));
        }
        if !(1..=10_000).contains(&self.iterations) {
            return bad(format!(
                "--iterations {} must be within 1..10000",
                self.iterations
            ));
        }
        if !(self.sigma.is_finite() && (0.3..=30.0).contains(&self.sigma)) {
            return bad(format!(
                "--sigma {} must be within 0.3..30 pixels",
                self.sigma
            ));
        }
        if !(100..=200_000).contains(&self.search) {
            return bad(format!(
                "--search {} must be within 100..200000",
                self.search
            ));
        }
        if self.top > 20 || self.steps > 10_000 {
            return bad("--top must be at most 20 and --steps at most 10000".into());
        }
        if self.symmetry.group.is_continuous() {
            return bad(format!(
                "symmetry {}: a learned structure takes a finite prior (c1, cN or dN); \
                 for a torus learn without a prior or with cN",
                self.symmetry.code()
            ));
        }
        Ok(())
    }

    /// The symmetry group as matrices, identity first.
    fn group(&self) -> Vec<Mat3> {
        self.symmetry
            .elements(0)
            .iter()
            .map(|q| q.to_matrix())
            .collect()
    }
}

/// One finished iteration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IterationStats {
    /// Unexplained fraction of the frames' variance after the structure update.
    pub loss: f64,
    /// Median NCC of the frames at their assigned poses.
    pub median_ncc: f64,
    /// Extra blur of the iteration, pixels.
    pub blur: f64,
    /// Seconds the iteration took.
    pub seconds: f64,
}

/// Everything a run needs to continue: its checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LearnState {
    /// Format version.
    pub version: u32,
    /// The settings of the run.
    pub config: LearnConfig,
    /// Usable frames, crop side and radius of the data it was started on
    /// (a resume on other data is refused).
    pub frames: usize,
    /// Side of the crops.
    pub side: usize,
    /// Estimated particle radius, pixels.
    pub radius: f64,
    /// Iterations completed.
    pub iteration: usize,
    /// The cloud.
    pub cloud: Cloud,
    /// Adam state of the positions.
    pub adam_points: Adam,
    /// Adam state of the log-weights.
    pub adam_weights: Adam,
    /// Poses in the crops (empty before the first iteration).
    pub poses: Vec<CropPose>,
    /// Frame weights.
    pub frame_w: Vec<f32>,
    /// One entry per completed iteration.
    pub history: Vec<IterationStats>,
}

const STATE_VERSION: u32 = 1;

impl LearnState {
    /// Writes the checkpoint atomically (JSON; floats round-trip exactly).
    pub fn save(&self, path: &Path) -> Result<(), LearnError> {
        let fail = |cause: String| LearnError::Checkpoint {
            path: path.to_path_buf(),
            cause,
        };
        crate::io::atomic_write(path, |w| {
            serde_json::to_writer(&mut *w, self)
                .map_err(|e| crate::io::OutputError::Invalid(e.to_string()))
        })
        .map_err(|e: crate::io::OutputError| fail(e.to_string()))
    }

    /// Reads a checkpoint written by [`LearnState::save`].
    pub fn load(path: &Path) -> Result<Self, LearnError> {
        let fail = |cause: String| LearnError::Checkpoint {
            path: path.to_path_buf(),
            cause,
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
        if meta.len() > 1 << 30 {
            return Err(fail(format!("{} bytes is not a checkpoint", meta.len())));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let s: LearnState = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
        if s.version != STATE_VERSION {
            return Err(fail(format!(
                "version {} (this build reads {STATE_VERSION})",
                s.version
            )));
        }
        let m = s.cloud.points.len();
        let finite = s.cloud.points.iter().flatten().all(|x| x.is_finite())
            && s.cloud.log_w.iter().all(|x| x.is_finite());
        if m == 0 || s.cloud.log_w.len() != m || !finite {
            return Err(fail("the cloud is empty or not finite".into()));
        }
        if !s.poses.is_empty() && s.poses.len() != s.frames || s.frame_w.len() != s.frames {
            return Err(fail("pose and frame counts disagree".into()));
        }
        s.config.validate().map_err(|e| fail(e.to_string()))?;
        Ok(s)
    }
}

/// What a step reports while it runs.
#[derive(Clone, Copy, Debug)]
pub enum Phase {
    /// Fitting the poses.
    Poses,
    /// Structure step `step` of `of`, with the current loss.
    Structure {
        /// Steps done.
        step: usize,
        /// Steps per iteration.
        of: usize,
        /// Loss before this step.
        loss: f64,
    },
}

/// How an iteration ended.
#[derive(Clone, Debug, PartialEq)]
pub enum StepOutcome {
    /// The iteration completed.
    Done(IterationStats),
    /// Cancelled: the state is that of the last completed iteration.
    Cancelled,
}

/// The learned structure and poses, in the reporting frame ([`convention`]).
#[derive(Clone, Debug)]
pub struct Learned {
    /// The cloud: every point of the expanded cloud with its weight, pixels.
    pub model: Model,
    /// One row per input frame (failed rows for skipped frames), in input order.
    pub poses: Vec<PoseRow>,
}

/// A learning run over prepared frames.
pub struct Learner {
    data: Prepared,
    state: LearnState,
    group: Vec<Mat3>,
    grid: Vec<Quat>,
    /// Input order of every frame: `Ok(index into data)` or the skip reason.
    order: Vec<(FrameId, Result<usize, String>)>,
}

/// The schedule of iteration `i` of `n`: extra blur (pixels) and step sizes.
fn schedule(i: usize, n: usize, radius: f64) -> (f64, f32, f32) {
    let t = i as f64 / n.max(1) as f64;
    let blur = 0.2 * radius * (1.0 - t / 0.7).max(0.0);
    let decay = 0.1f64.powf(i as f64 / (n.max(2) - 1) as f64);
    let lr_points = (0.03 * radius * decay) as f32;
    let lr_weights = (0.1 * decay) as f32;
    (blur, lr_points, lr_weights)
}

fn initial_cloud(cfg: &LearnConfig, radius: f64, order: usize) -> Result<Cloud, LearnError> {
    let n = (cfg.points / order.max(1)).max(4);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let init = match &cfg.init {
        InitShape::Auto if order > 1 => &InitShape::Ring,
        other => other,
    };
    let points: Vec<[f32; 3]> = match init {
        InitShape::Sphere | InitShape::Auto => (0..n)
            .map(|_| {
                let q = Quat::random_uniform(&mut rng);
                let a = q.axis();
                let r = radius * (1.0 + 0.05 * (rng.random::<f64>() - 0.5));
                a.map(|x| (x * r) as f32)
            })
            .collect(),
        InitShape::Ring => (0..n)
            .map(|i| {
                let t = std::f64::consts::TAU * (i as f64 + rng.random::<f64>() * 0.5) / n as f64;
                let z = 0.05 * radius * (rng.random::<f64>() - 0.5);
                [
                    (radius * t.cos()) as f32,
                    (radius * t.sin()) as f32,
                    z as f32,
                ]
            })
            .collect(),
        InitShape::Blob => {
            let normal = rand_distr::Normal::new(0.0, 0.5 * radius)
                .map_err(|e| LearnError::Input(e.to_string()))?;
            (0..n)
                .map(|_| [0; 3].map(|_| rand_distr::Distribution::sample(&normal, &mut rng) as f32))
                .collect()
        }
        InitShape::File(path) => {
            let m = Model::load(path)?;
            if m.units != Units::Px {
                return Err(LearnError::Input(format!(
                    "--init '{}': the model is in {}; give it in pixels",
                    path.display(),
                    m.units
                )));
            }
            let stride = m.len().div_ceil(n).max(1);
            let mut pts: Vec<[f32; 3]> = m.points.iter().step_by(stride).copied().collect();
            pts.truncate(n);
            if pts.is_empty() {
                return Err(LearnError::Input(format!(
                    "--init '{}': no points",
                    path.display()
                )));
            }
            pts
        }
    };
    Ok(Cloud {
        log_w: vec![0.0; points.len()],
        points,
    })
}

/// Frame weights from the NCCs: frames more than 3 MADs below the median count 0.2.
fn frame_weights(scores: &[f64]) -> Vec<f32> {
    let mut s: Vec<f64> = scores.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return vec![1.0; scores.len()];
    }
    s.sort_by(f64::total_cmp);
    let med = s[s.len() / 2];
    let mut dev: Vec<f64> = s.iter().map(|x| (x - med).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let mad = 1.4826 * dev[dev.len() / 2];
    scores
        .iter()
        .map(|&x| {
            if x.is_finite() && x >= med - 3.0 * mad {
                1.0
            } else {
                0.2
            }
        })
        .collect()
}

/// Spins about the cloud's axis of least spread, in 30° steps, each with and
/// without a half-turn about its axis of most spread: the poses a ring-like
/// cloud can barely tell apart (see [`assign::AssignInput::turns`]).
fn ring_turns(pts: &[[f32; 3]], w: &[f32]) -> Vec<Quat> {
    let total: f64 = w.iter().map(|&x| x as f64).sum::<f64>().max(1e-300);
    let mut c = [[0.0f64; 3]; 3];
    for (p, &wi) in pts.iter().zip(w) {
        for i in 0..3 {
            for j in 0..3 {
                c[i][j] += wi as f64 * p[i] as f64 * p[j] as f64 / total;
            }
        }
    }
    let (_, axes) = crate::geometry::sym_eigen3(&c);
    let mut out = Vec::new();
    for k in 1..12 {
        let spin = Quat::from_axis_angle(axes[2], std::f64::consts::TAU * k as f64 / 12.0);
        out.push(spin);
    }
    for k in 0..12 {
        let spin = Quat::from_axis_angle(axes[2], std::f64::consts::TAU * k as f64 / 12.0);
        out.push(spin * Quat::from_axis_angle(axes[0], std::f64::consts::PI));
    }
    out
}

fn median(xs: &[f64]) -> f64 {
    let mut s: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

impl Learner {
    /// Starts a run on `frames` (in input order).
    pub fn new(
        frames: Vec<(FrameId, crate::io::Frame)>,
        config: LearnConfig,
    ) -> Result<Self, LearnError> {
        config.validate()?;
        let (data, order) = Self::prepare(frames, config.sigma)?;
        let group = config.group();
        let cloud = initial_cloud(&config, data.radius, group.len())?;
        let state = LearnState {
            version: STATE_VERSION,
            frames: data.len(),
            side: data.side,
            radius: data.radius,
            iteration: 0,
            cloud,
            adam_points: Adam::default(),
            adam_weights: Adam::default(),
            poses: Vec::new(),
            frame_w: vec![1.0; data.len()],
            history: Vec::new(),
            config,
        };
        Ok(Self::with_state(data, order, state))
    }

    /// Continues a run from its checkpoint, on the same frames.
    pub fn resume(
        frames: Vec<(FrameId, crate::io::Frame)>,
        state: LearnState,
    ) -> Result<Self, LearnError> {
        let (data, order) = Self::prepare(frames, state.config.sigma)?;
        if data.len() != state.frames
            || data.side != state.side
            || (data.radius - state.radius).abs() > 1e-9
        {
            return Err(LearnError::Input(format!(
                "the checkpoint was made on {} frames cut to {} px; these files give {} frames cut to {} px",
                state.frames,
                state.side,
                data.len(),
                data.side
            )));
        }
        Ok(Self::with_state(data, order, state))
    }

    fn prepare(
        frames: Vec<(FrameId, crate::io::Frame)>,
        sigma: f64,
    ) -> Result<(Prepared, FrameOrder), LearnError> {
        let ids: Vec<FrameId> = frames.iter().map(|(id, _)| id.clone()).collect();
        let data = Prepared::new(frames, sigma)?;
        let mut next = 0;
        let order = ids
            .into_iter()
            .map(|id| {
                if data.ids.get(next) == Some(&id) {
                    next += 1;
                    (id, Ok(next - 1))
                } else {
                    let why = data
                        .skipped
                        .iter()
                        .find(|(s, _)| *s == id)
                        .map_or_else(|| "skipped".to_string(), |(_, w)| w.clone());
                    (id, Err(why))
                }
            })
            .collect();
        Ok((data, order))
    }

    fn with_state(
        data: Prepared,
        order: Vec<(FrameId, Result<usize, String>)>,
        state: LearnState,
    ) -> Self {
        Self {
            group: state.config.group(),
            grid: rotation_grid(state.config.search),
            data,
            state,
            order,
        }
    }

    /// The checkpoint of the run so far.
    pub fn state(&self) -> &LearnState {
        &self.state
    }

    /// Frames learned from, and frames skipped with their reasons.
    pub fn frames(&self) -> (usize, &[(FrameId, String)]) {
        (self.data.len(), &self.data.skipped)
    }

    /// Estimated particle radius and the crop side, pixels.
    pub fn geometry(&self) -> (f64, usize) {
        (self.data.radius, self.data.side)
    }

    /// Whether every iteration has run.
    pub fn is_done(&self) -> bool {
        self.state.iteration >= self.state.config.iterations
    }

    /// The current expanded cloud (for a live view), centred, in model coordinates.
    pub fn current_cloud(&self) -> (Vec<[f32; 3]>, Vec<f32>) {
        self.state.cloud.expanded(&self.group)
    }

    /// Runs the next iteration; `cancel` is checked between its parts.
    pub fn step(&mut self, cancel: &AtomicBool, on_phase: &mut dyn FnMut(Phase)) -> StepOutcome {
        let t0 = Instant::now();
        let st = &self.state;
        let cfg = &st.config;
        let (extra, lr_p, lr_w) = schedule(st.iteration, cfg.iterations, self.data.radius);
        let sigma = (cfg.sigma * cfg.sigma + extra * extra).sqrt();
        let side = self.data.side;
        on_phase(Phase::Poses);
        let crops: Vec<Vec<f32>> = self
            .data
            .crops
            .par_iter()
            .map(|c| blur(c, side, extra))
            .collect();
        if cancel.load(Ordering::Relaxed) {
            return StepOutcome::Cancelled;
        }
        let (pts, w) = st.cloud.expanded(&self.group);
        let previous = (!st.poses.is_empty()).then_some(st.poses.as_slice());
        let turns = ring_turns(&pts, &w);
        let poses = assign(
            &AssignInput {
                crops: &crops,
                side,
                sigma,
                start_shift: &self.data.start_shift,
                previous,
                grid: &self.grid,
                top: cfg.top,
                iterations: 8,
                turns: &turns,
            },
            &pts,
            &w,
        );
        if cancel.load(Ordering::Relaxed) {
            return StepOutcome::Cancelled;
        }
        let scores: Vec<f64> = poses.iter().map(|p| p.score).collect();
        let frame_w = frame_weights(&scores);
        let mut cloud = st.cloud.clone();
        let mut adam_p = st.adam_points.clone();
        let mut adam_w = st.adam_weights.clone();
        let mut flat: Vec<f32> = cloud.points.iter().flatten().copied().collect();
        let mut loss = f64::NAN;
        for s in 0..=cfg.steps {
            let lg = loss_and_grad(
                &cloud,
                &LossInput {
                    crops: &crops,
                    side,
                    poses: &poses,
                    frame_w: &frame_w,
                    sigma: sigma as f32,
                    group: &self.group,
                },
            );
            loss = lg.loss;
            if s == cfg.steps {
                break; // the last evaluation only measures
            }
            on_phase(Phase::Structure {
                step: s,
                of: cfg.steps,
                loss,
            });
            if cancel.load(Ordering::Relaxed) {
                return StepOutcome::Cancelled;
            }
            adam_p.step(&mut flat, &lg.points, lr_p);
            adam_w.step(&mut cloud.log_w, &lg.log_w, lr_w);
            for (p, c) in cloud.points.iter_mut().zip(flat.chunks_exact(3)) {
                p.copy_from_slice(c);
            }
            cloud.normalise_weights();
        }
        // faint points go where the density is (not in the last iterations,
        // which only polish)
        if st.iteration + 2 < cfg.iterations {
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ (0x9E37_79B9 + st.iteration as u64));
            let moved = cloud.respawn(0.35, 0.5 * side as f32, &mut rng);
            adam_p.reset(&moved, 3);
            adam_w.reset(&moved, 1);
        }
        // recentre: the expanded centroid lies on the symmetry axis, so moving
        // the unit by it keeps the group's axis through the origin
        let c = cloud.centroid(&self.group);
        for p in &mut cloud.points {
            for k in 0..3 {
                p[k] -= c[k] as f32;
            }
        }
        let poses: Vec<CropPose> = poses
            .into_iter()
            .map(|mut p| {
                let r = p.q.to_matrix();
                for (k, s) in p.shift.iter_mut().enumerate() {
                    *s += r[k][0] * c[0] + r[k][1] * c[1] + r[k][2] * c[2];
                }
                p
            })
            .collect();
        let stats = IterationStats {
            loss,
            median_ncc: median(&scores),
            blur: extra,
            seconds: t0.elapsed().as_secs_f64(),
        };
        let st = &mut self.state;
        st.cloud = cloud;
        st.adam_points = adam_p;
        st.adam_weights = adam_w;
        st.poses = poses;
        st.frame_w = frame_w;
        st.iteration += 1;
        st.history.push(stats.clone());
        StepOutcome::Done(stats)
    }

    /// Runs the remaining iterations, saving `checkpoint` after each; stops
    /// early (with the checkpoint of the last whole iteration) when `cancel`
    /// is set. `on_iteration` sees each finished iteration.
    pub fn run(
        &mut self,
        checkpoint: Option<&Path>,
        cancel: &AtomicBool,
        on_phase: &mut dyn FnMut(Phase),
        on_iteration: &mut dyn FnMut(&Learner, &IterationStats),
    ) -> Result<bool, LearnError> {
        while !self.is_done() {
            match self.step(cancel, on_phase) {
                StepOutcome::Cancelled => return Ok(false),
                StepOutcome::Done(stats) => {
                    if let Some(path) = checkpoint {
                        self.state.save(path)?;
                    }
                    on_iteration(self, &stats);
                }
            }
        }
        Ok(true)
    }

    /// The structure and poses so far, in the reporting frame.
    pub fn result(&self) -> Result<Learned, LearnError> {
        let (pts, w) = self.current_cloud();
        let axial = !matches!(self.state.config.symmetry.group, SymmetryGroup::C1);
        let canon = convention::canonical(&pts, &w, axial);
        let points: Vec<[f32; 3]> = pts
            .iter()
            .map(|p| canon.point(p.map(|x| x as f64)).map(|x| x as f32))
            .collect();
        let symmetry = Symmetry::new(self.state.config.symmetry.group, false);
        let model = Model::new("learned", points, w, Units::Px, symmetry)?;
        let sigma = self.state.config.sigma;
        let poses = self
            .order
            .iter()
            .map(|(id, at)| {
                let mut row = match at {
                    Ok(i) if !self.state.poses.is_empty() => {
                        let p = &self.state.poses[*i];
                        let o = self.data.origin[*i];
                        let mut row = PoseRow::new(
                            id.frame,
                            Pose::new(canon.pose(p.q), [o[0] + p.shift[0], o[1] + p.shift[1]]),
                            sigma,
                        );
                        row.score = p.score;
                        row.set("frame_weight", self.state.frame_w[*i]);
                        row
                    }
                    Ok(_) => PoseRow::failed(id.frame, "not learned yet"),
                    Err(why) => PoseRow::failed(id.frame, why),
                };
                row.file = id.file.clone();
                row
            })
            .collect();
        Ok(Learned { model, poses })
    }
}
