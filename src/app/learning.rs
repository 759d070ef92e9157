//! The Learn tab's state, apart from its widgets: the settings the user
//! edits, the run in progress as the job last reported it (iteration, loss
//! curve, the current cloud for the 3D view), pause, and what a finished run
//! left (the learned model and poses) until the user takes it as the model.
//!
//! The run itself is the library's [`Learner`], driven by a job
//! ([`super::jobs::Jobs::learn`]), the same loop as `posescope learn`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::AppError;
use super::frame_store::FrameStore;
use super::state::DocId;
use crate::estimate::learn::data::FrameId;
use crate::estimate::learn::{LearnConfig, Learned, Learner, Phase};
use crate::estimate::pose::fit::{FitOutcome, StartSource};
use crate::estimate::pose::pipeline::FrameFit;
use crate::estimate::pose::results::FrameResult;
use crate::geometry::Symmetry;
use crate::render::scene::FitState;

/// What the job reports after each iteration.
#[derive(Clone, Debug, Default)]
pub struct LearnProgress {
    /// Iterations done.
    pub iteration: usize,
    /// Iterations in all.
    pub of: usize,
    /// Loss after each iteration.
    pub losses: Vec<f64>,
    /// The current cloud (expanded, model frame, pixels).
    pub cloud: Vec<[f32; 3]>,
    /// Frames learned from.
    pub frames: usize,
}

/// The Learn tab's state.
pub struct Learning {
    /// Settings of the next run.
    pub config: LearnConfig,
    /// The symmetry prior as typed (c1, cN, dN).
    pub symmetry_text: String,
    /// The document of the run in progress or last finished.
    pub doc: Option<DocId>,
    /// The last report of the run.
    pub progress: LearnProgress,
    /// Whether a run is going.
    pub running: bool,
    /// Set while the user has paused the run (the job waits).
    pub paused: Arc<AtomicBool>,
    /// When the run started, and time spent paused.
    pub started: Option<Instant>,
    /// A finished run's result, until used or replaced.
    pub learned: Option<Learned>,
    /// Orbit of the cloud view.
    pub orbit: super::orbit::Orbit,
}

impl Default for Learning {
    fn default() -> Self {
        Self {
            config: LearnConfig::default(),
            symmetry_text: "c1".into(),
            doc: None,
            progress: LearnProgress::default(),
            running: false,
            paused: Arc::new(AtomicBool::new(false)),
            started: None,
            learned: None,
            orbit: super::orbit::Orbit::default(),
        }
    }
}

impl Learning {
    /// The settings for a run, with the typed symmetry parsed.
    pub fn run_config(&self) -> Result<LearnConfig, String> {
        let symmetry = Symmetry::parse(self.symmetry_text.trim())
            .map_err(|e| format!("symmetry prior '{}': {e}", self.symmetry_text.trim()))?;
        let config = LearnConfig {
            symmetry,
            ..self.config.clone()
        };
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// Seconds since the run started.
    pub fn elapsed(&self) -> Duration {
        self.started.map_or(Duration::ZERO, |t| t.elapsed())
    }
}

/// The job body: reads the frames `which` of `frames`, learns, reports each
/// iteration through `report`, and waits while `paused` is set.
pub fn learn_job(
    frames: &FrameStore,
    which: &[usize],
    config: LearnConfig,
    paused: &AtomicBool,
    cancel: &AtomicBool,
    mut report: impl FnMut(LearnProgress),
) -> Result<Option<Learned>, AppError> {
    let mut input = Vec::with_capacity(which.len());
    for &k in which {
        if cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let f = frames.frame(k).map_err(AppError::Learn)?;
        input.push((
            FrameId {
                file: None,
                frame: k,
            },
            f.as_ref().clone(),
        ));
    }
    let mut learner = Learner::new(input, config).map_err(|e| AppError::Learn(e.to_string()))?;
    let used = learner.frames().0;
    let of = learner.state().config.iterations;
    report(LearnProgress {
        iteration: 0,
        of,
        losses: Vec::new(),
        cloud: learner.current_cloud().0,
        frames: used,
    });
    let finished = learner
        .run(
            None,
            cancel,
            &mut |_: Phase| {
                while paused.load(Ordering::Relaxed) && !cancel.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(40));
                }
            },
            &mut |l, _| {
                report(LearnProgress {
                    iteration: l.state().iteration,
                    of,
                    losses: l.state().history.iter().map(|h| h.loss).collect(),
                    cloud: l.current_cloud().0,
                    frames: used,
                })
            },
        )
        .map_err(|e| AppError::Learn(e.to_string()))?;
    if !finished {
        return Ok(None);
    }
    learner
        .result()
        .map(Some)
        .map_err(|e| AppError::Learn(e.to_string()))
}

/// Where "use as model" writes the learned cloud: beside the data, or in the
/// app's data folder when that is read-only.
pub fn model_path(data: &Path) -> Vec<PathBuf> {
    let mut name = data.file_name().unwrap_or_default().to_os_string();
    name.push(".learned.ply");
    let mut out = vec![data.with_file_name(&name)];
    if let Some(fallback) = super::autosave::fallback_path(data) {
        let f = fallback
            .to_string_lossy()
            .replace(".posescope.csv", ".learned.ply");
        out.push(PathBuf::from(f));
    }
    out
}

/// The learned poses as fit results of the document's frames.
pub fn as_results(learned: &Learned) -> Vec<(usize, FrameResult)> {
    learned
        .poses
        .iter()
        .map(|row| {
            let result = if row.pose.q.is_finite() {
                Ok(FrameFit {
                    outcome: FitOutcome {
                        state: FitState {
                            pose: row.pose,
                            scale: 1.0,
                            sigma: row.sigma,
                            shape: 0.0,
                        },
                        score: row.score,
                        converged: true,
                        iterations: 0,
                        axis_sd_deg: f64::NAN,
                        z_locs: 0,
                        source: StartSource::Search,
                        start_ms: 0.0,
                        refine_ms: 0.0,
                    },
                    cnn_ms: 0.0,
                    nonfinite_px: 0,
                })
            } else {
                Err(row.get("error").unwrap_or("not learned").to_string())
            };
            (row.frame, result)
        })
        .collect()
}

impl super::PoseScopeApp {
    /// Starts a run on the current document with the tab's settings.
    pub(super) fn start_learning(&mut self) {
        if self.learning.running {
            return;
        }
        let config = match self.learning.run_config() {
            Ok(c) => c,
            Err(e) => {
                self.session.error(AppError::Learn(e));
                return;
            }
        };
        let Some(doc) = self.session.doc() else {
            self.session.error(AppError::Learn(
                "open a stack of particle frames first".into(),
            ));
            return;
        };
        // a table: the accepted picks, or every pick when none is accepted yet
        let which: Vec<usize> = match &doc.particles {
            Some(p) => {
                let accepted: Vec<usize> = (0..p.picks.len())
                    .filter(|&k| p.picks[k].state == super::particles::PickState::Accepted)
                    .collect();
                if accepted.is_empty() {
                    (0..p.picks.len())
                        .filter(|&k| p.picks[k].state != super::particles::PickState::Removed)
                        .collect()
                } else {
                    accepted
                }
            }
            None => (0..doc.frames.len()).collect(),
        };
        if which.len() < 2 {
            self.session.error(AppError::Learn(format!(
                "{}: learning needs many particle frames; this document has {}",
                doc.path.display(),
                which.len()
            )));
            return;
        }
        let z_note = match doc.particles.as_ref().map(|p| &p.source) {
            Some(super::particles::FieldSource::Table { table, .. }) => {
                crate::estimate::learn::input::unused_z_note(table)
            }
            _ => None,
        };
        let (id, frames) = (doc.id, doc.frames.clone());
        if let Some(note) = z_note {
            self.session.info(note);
        }
        let l = &mut self.learning;
        l.doc = Some(id);
        l.running = true;
        l.learned = None;
        l.paused.store(false, Ordering::Relaxed);
        l.started = Some(Instant::now());
        l.progress = LearnProgress {
            of: config.iterations,
            frames: which.len(),
            ..LearnProgress::default()
        };
        self.jobs.learn(id, frames, which, config, l.paused.clone());
    }

    /// Writes the learned cloud beside the data (or in the app's folder),
    /// switches fitting to it and fills the results with the learned poses.
    pub(super) fn use_learned_model(&mut self) {
        let (Some(learned), Some(doc_id)) = (self.learning.learned.as_ref(), self.learning.doc)
        else {
            return;
        };
        let Some(doc) = self.session.docs.iter().find(|d| d.id == doc_id) else {
            self.session.error(AppError::Learn(
                "the document learned from is closed".into(),
            ));
            return;
        };
        let mut written = None;
        let mut last_err = None;
        for path in model_path(&doc.path) {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            match learned.model.save_ply(&path) {
                Ok(()) => {
                    written = Some(path);
                    break;
                }
                Err(e) => last_err = Some(e.to_string()),
            }
        }
        let Some(path) = written else {
            self.session.error(AppError::Learn(format!(
                "could not write the learned model: {}",
                last_err.unwrap_or_default()
            )));
            return;
        };
        let results = as_results(learned);
        // the fits the learned poses replace come back with Undo
        if let Some(doc) = self.session.doc_by_id_mut(doc_id) {
            let frames: Vec<usize> = results.iter().map(|(k, _)| *k).collect();
            doc.history
                .fits("use the learned model".into(), &doc.results, &frames);
        }
        for (k, result) in results {
            self.session.record_result(doc_id, k, result, false);
        }
        let spec = crate::estimate::pose::pipeline::ModelSpec {
            model: crate::shapes::ModelKind::File(path.clone()),
            units: crate::shapes::Units::Px,
            symmetry: Some(learned.model.symmetry),
            ..crate::estimate::pose::pipeline::ModelSpec::default()
        };
        self.session.info(format!(
            "fitting with the learned model {} (it was {}: the Model tab switches back; \
             Undo restores the fits it replaced)",
            path.display(),
            self.settings.model.describe()
        ));
        self.ui.model_edit = spec.clone();
        self.set_model(spec);
    }
}
