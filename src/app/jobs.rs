//! Background work for the viewer: loading files, building the fitter,
//! estimating and refining, and the symmetry-explorer sweeps. Nothing here
//! blocks the UI thread: each job runs on its own thread, reports progress
//! through atomics and results through a channel, and checks a cancel flag.
//! Estimation runs the library's batch fit
//! ([`crate::estimate::pose::batch::fit_frames`]), the same loop
//! as `posescope fit`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use super::error::{AppError, IN_MEMORY_VALUES};
use super::frame_store::FrameStore;
use super::learning::{learn_job, LearnProgress};
use super::live::{sweep_scores, Sweeps};
use super::particles::{load_image_field, load_table, FieldPicking, LocRefiner, TableLoad};
use super::state::{DocId, Document, PoseControls};
use crate::estimate::image_particles::is_whole_field;
use crate::estimate::learn::{LearnConfig, Learned};
use crate::estimate::particles::ParticleSetup;
use crate::estimate::pick::Pick;
use crate::estimate::pose::batch::{fit_frames, BatchOptions};
use crate::estimate::pose::fit::FitOptions;
use crate::estimate::pose::pipeline::{DeviceChoice, Fitter, FrameFit, ModelSpec};
use crate::estimate::pose::results::{FitResults, FrameResult};
use crate::io::{ImageSequence, SequenceOpen};
use crate::render::scene::{FitModel, FitState};

/// The threads estimation jobs run on: one core fewer than the machine has
/// (at least one), so the UI and the GPU driver (a software one, maybe) keep a
/// core while a batch runs.
fn job_pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.saturating_sub(1).max(1))
            .thread_name(|i| format!("posescope-fit-{i}"))
            .build()
            .expect("building the estimation thread pool")
    })
}

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// Reading a file into a document.
    Load,
    /// Building the fitter (loading the network) for a model.
    BuildFitter,
    /// Estimating frames (network + refinement).
    Estimate,
    /// Refining one frame from the slider pose.
    Refine,
    /// The symmetry explorer's score sweeps.
    Sweep,
    /// Learning the structure from a document's frames.
    Learn,
    /// Fitting a table's torus size to its particles (with their poses).
    FitSize,
}

impl JobKind {
    /// Jobs that fit frames (Estimate, Refine and FitSize wait for each other).
    pub fn fits(self) -> bool {
        matches!(self, JobKind::Estimate | JobKind::Refine | JobKind::FitSize)
    }
}

/// What a job sends back.
pub enum Message {
    /// A file finished loading (or failed).
    Loaded(Result<Document, AppError>),
    /// The detector ended on a field image opened before it ran: its
    /// candidates (field units) and what to tell the user, if anything.
    Picked {
        /// The document.
        doc: DocId,
        /// The candidates.
        picks: Vec<Pick>,
        /// Why there are none, when there are none.
        note: Option<String>,
    },
    /// Files opened one by one have all loaded: show this one (the first),
    /// not the last that arrived.
    ShowDocument(DocId),
    /// The fitter for a model is ready (or failed), tagged with its spec.
    FitterReady(ModelSpec, Result<Arc<Fitter>, AppError>),
    /// One frame was fitted.
    Fitted {
        /// The document (results for closed documents are dropped).
        doc: DocId,
        /// The frame.
        frame: usize,
        /// The fit.
        result: FrameResult,
        /// Move the sliders to it (single-frame Estimate and Refine).
        apply: bool,
    },
    /// The sweeps for a frame and pose.
    Swept(Sweeps),
    /// A learning run finished an iteration.
    LearnProgress(DocId, LearnProgress),
    /// A learning run finished (`None`: cancelled or failed; the note says which).
    Learned(DocId, Option<Box<Learned>>),
    /// A table's torus size was fitted to its particles: its setup now.
    Resized {
        /// The document.
        doc: DocId,
        /// The setup with the fitted torus.
        setup: Arc<ParticleSetup>,
    },
    /// A job ended (finished or cancelled); `note` is shown to the user.
    Finished {
        /// Job id.
        id: u64,
        /// What to tell the user, if anything.
        note: Option<Note>,
    },
}

/// What a finished job tells the user.
pub enum Note {
    /// Information (e.g. "cancelled after 12 frames").
    Info(String),
    /// An error.
    Error(AppError),
}

/// A running job, as the UI sees it.
pub struct JobHandle {
    /// Unique id.
    pub id: u64,
    /// What it does.
    pub kind: JobKind,
    /// Shown next to the progress bar; the job may change it as it moves
    /// to another stage ([`Ctx::set_label`]).
    label: Arc<Mutex<String>>,
    /// Units done.
    pub done: Arc<AtomicUsize>,
    /// Units in all.
    pub total: usize,
    /// Set to ask the job to stop.
    pub cancel: Arc<AtomicBool>,
}

impl JobHandle {
    /// What the job is doing now.
    pub fn label(&self) -> String {
        self.label.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Fraction done, 0..1.
    pub fn fraction(&self) -> f32 {
        if self.total == 0 {
            0.0
        } else {
            (self.done.load(Ordering::Relaxed) as f32 / self.total as f32).min(1.0)
        }
    }
}

/// Starts jobs and collects their messages.
pub struct Jobs {
    tx: Sender<Message>,
    rx: Receiver<Message>,
    /// Jobs still running.
    pub running: Vec<JobHandle>,
    next_id: u64,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl Jobs {
    /// A job runner that calls `wake` whenever a job has news (the GUI asks
    /// for a repaint there).
    pub fn new(wake: Arc<dyn Fn() + Send + Sync>) -> Self {
        let (tx, rx) = channel();
        Self {
            tx,
            rx,
            running: Vec::new(),
            next_id: 1,
            wake,
        }
    }

    /// Messages that arrived since the last call; finished jobs leave `running`.
    pub fn poll(&mut self) -> Vec<Message> {
        let msgs: Vec<Message> = self.rx.try_iter().collect();
        for m in &msgs {
            if let Message::Finished { id, .. } = m {
                self.running.retain(|j| j.id != *id);
            }
        }
        msgs
    }

    /// True while any job runs.
    pub fn busy(&self) -> bool {
        !self.running.is_empty()
    }

    /// True while a job of this kind runs.
    pub fn running(&self, kind: JobKind) -> bool {
        self.running.iter().any(|j| j.kind == kind)
    }

    /// True while a job that fits frames runs.
    pub fn fitting(&self) -> bool {
        self.running.iter().any(|j| j.kind.fits())
    }

    /// Jobs shown in the status bar, with a progress bar and Cancel.
    pub fn visible(&self) -> impl Iterator<Item = &JobHandle> {
        self.running.iter().filter(|j| j.kind != JobKind::Sweep)
    }

    /// Asks the jobs of one kind to stop.
    pub fn cancel_kind(&self, kind: JobKind) {
        for j in self.running.iter().filter(|j| j.kind == kind) {
            j.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Asks every job to stop.
    pub fn cancel_all(&self) {
        for j in &self.running {
            j.cancel.store(true, Ordering::Relaxed);
        }
    }

    fn spawn(
        &mut self,
        kind: JobKind,
        label: String,
        total: usize,
        work: impl FnOnce(Ctx) -> Option<Note> + Send + 'static,
    ) {
        let id = self.next_id;
        self.next_id += 1;
        let handle = JobHandle {
            id,
            kind,
            label: Arc::new(Mutex::new(label)),
            done: Arc::new(AtomicUsize::new(0)),
            total,
            cancel: Arc::new(AtomicBool::new(false)),
        };
        let ctx = Ctx {
            tx: self.tx.clone(),
            label: handle.label.clone(),
            done: handle.done.clone(),
            cancel: handle.cancel.clone(),
            wake: self.wake.clone(),
        };
        self.running.push(handle);
        std::thread::Builder::new()
            .name(format!("posescope-job-{id}"))
            .spawn(move || {
                let tx = ctx.tx.clone();
                let wake = ctx.wake.clone();
                // a panic in a job must not take the viewer down
                let note = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(ctx)))
                    .unwrap_or_else(|_| {
                        Some(Note::Info(
                            "internal error: a background job crashed".into(),
                        ))
                    });
                let _ = tx.send(Message::Finished { id, note });
                wake();
            })
            .expect("spawning a thread");
    }

    /// Loads files into documents (localisation tables and single large
    /// images as fields of particles, opened with `table`). Two or more
    /// single-frame images of one size (a folder of cut-outs) open as one
    /// image sequence.
    pub fn load(&mut self, paths: Vec<PathBuf>, table: TableLoad) {
        let (tables, images): (Vec<PathBuf>, Vec<PathBuf>) = paths
            .into_iter()
            .partition(|p| crate::io::locs::is_table(p));
        for path in tables {
            self.spawn_load("Loading", path, move |path, cancel| {
                load_table(path, &table, cancel).map(Loaded::Done)
            });
        }
        if images.len() >= 2 {
            self.load_images(images, table);
            return;
        }
        for path in images {
            self.spawn_load("Loading", path, move |path, cancel| {
                load_image(path, &table, false, cancel)
            });
        }
    }

    /// Several images: one sequence when they are one ([`ImageSequence`]),
    /// else each on its own, in order, in one job (so a folder of a
    /// thousand files is not a thousand threads).
    fn load_images(&mut self, images: Vec<PathBuf>, table: TableLoad) {
        let n = images.len();
        let label = format!("Opening {n} images");
        self.spawn(JobKind::Load, label, n, move |ctx| {
            open_images(&ctx, &images, table)
        });
    }

    /// Loads one image as a field (its frame 0 picked into particles),
    /// whatever its size.
    pub fn load_field(&mut self, path: PathBuf, table: TableLoad) {
        self.spawn_load("Picking", path, move |path, cancel| {
            load_image(path, &table, true, cancel)
        });
    }

    /// A job that loads `path` into a document with `open`, labelled
    /// "`verb` file name".
    fn spawn_load(
        &mut self,
        verb: &str,
        path: PathBuf,
        open: impl FnOnce(&std::path::Path, &AtomicBool) -> Result<Loaded, AppError> + Send + 'static,
    ) {
        let name = file_name(&path);
        self.spawn(JobKind::Load, format!("{verb} {name}"), 1, move |ctx| {
            let loaded = open(&path, &ctx.cancel);
            deliver(&ctx, &path, &name, loaded)
        });
    }

    /// Builds the fitter (loads the network) for a model.
    pub fn build_fitter(&mut self, spec: ModelSpec, opts: FitOptions) {
        self.spawn(
            JobKind::BuildFitter,
            "Loading model".into(),
            1,
            move |ctx| {
                let fitter = Fitter::new(&spec, opts, None, true, DeviceChoice::Auto)
                    .map(Arc::new)
                    .map_err(|source| AppError::Model {
                        model: spec.describe(),
                        source,
                    });
                ctx.send(Message::FitterReady(spec, fitter));
                None
            },
        );
    }

    /// Estimates (CNN + refinement) the given frames of a document through
    /// the library's batch fit, reporting each; `apply` moves the sliders to
    /// the result. Particles of a table are then refined on their
    /// localisations (`locs`), as `posescope fit TABLE` does.
    pub fn estimate(
        &mut self,
        fitter: Arc<Fitter>,
        doc: DocId,
        frames: Arc<FrameStore>,
        which: Vec<usize>,
        apply: bool,
        locs: Option<LocRefiner>,
    ) {
        let label = if which.len() == 1 {
            format!("Estimating frame {}", which[0])
        } else {
            format!("Estimating {} frames", which.len())
        };
        self.spawn(JobKind::Estimate, label, which.len(), move |ctx| {
            let opts = BatchOptions {
                cancel: Some(ctx.cancel.as_ref()),
                ..BatchOptions::default()
            };
            let load = |k: usize| frames.frame(k);
            // the particles' 3D localisation fits, to check z against the model
            let depth_fits = std::sync::Mutex::new(Vec::new());
            let run = job_pool().install(|| {
                fit_frames(&fitter, &which, load, opts, |mut item| {
                    if let Some(r) = &locs {
                        let fit = r.refine(item.index, &mut item.result);
                        if let Some(f) = fit.filter(|f| f.z_locs > 0) {
                            if let Ok(mut v) = depth_fits.lock() {
                                v.push((item.index, f));
                            }
                        }
                    }
                    ctx.send(Message::Fitted {
                        doc,
                        frame: item.index,
                        result: item.result,
                        apply,
                    });
                    ctx.done.fetch_add(1, Ordering::Relaxed);
                })
            });
            match run {
                Ok(s) if s.cancelled => Some(Note::Info(format!(
                    "estimation cancelled after {} frames",
                    s.done()
                ))),
                Ok(_) => {
                    let fits = depth_fits.into_inner().unwrap_or_default();
                    let z = locs
                        .filter(|_| fits.len() > 1)
                        .and_then(|r| job_pool().install(|| r.z_scale(&fits)));
                    z.map(|z| Note::Info(z_scale_note(&z)))
                }
                Err(e) => Some(Note::Error(AppError::Estimate(e))),
            }
        });
    }

    /// Fits the table's torus size to the particles `which` (their
    /// `results` as starts), as `fit TABLE --fit-size` does; their poses
    /// follow, and the document's setup takes the size.
    pub fn fit_size(
        &mut self,
        doc: DocId,
        locs: LocRefiner,
        which: Vec<usize>,
        results: Vec<FrameResult>,
    ) {
        let label = format!("Fitting the torus size to {} particles", which.len());
        let total = crate::estimate::torus_size::TYPICAL_ROUNDS;
        let path = locs.table_path();
        self.spawn(JobKind::FitSize, label, total, move |ctx| {
            let round = |k: usize, p: &crate::estimate::locfit::size::ProfilePoint| {
                if let Ok(mut l) = ctx.label.lock() {
                    *l = format!(
                        "Fitting the torus size: round {}, R {:.1} nm (r {:.1} nm)",
                        k + 1,
                        p.major_nm,
                        p.tube.tube_nm
                    );
                }
                // a moving window takes more rounds than the bar's length
                ctx.done.store((k + 1).min(total - 1), Ordering::Relaxed);
            };
            let run = job_pool().install(|| locs.fit_size(&which, results, round));
            match run {
                Ok((setup, report, results)) => {
                    for (k, result) in which.into_iter().zip(results) {
                        ctx.send(Message::Fitted {
                            doc,
                            frame: k,
                            result,
                            apply: false,
                        });
                    }
                    ctx.send(Message::Resized {
                        doc,
                        setup: Arc::new(setup),
                    });
                    Some(Note::Info(format!(
                        "{}; this table's fits now use it (Opening tables sets the torus for tables opened later)",
                        report.describe()
                    )))
                }
                Err(e) => Some(Note::Error(AppError::Table {
                    path,
                    detail: format!("fitting the torus size: {e}"),
                })),
            }
        });
    }

    /// Refines one frame from the given state.
    pub fn refine(
        &mut self,
        fitter: Arc<Fitter>,
        doc: DocId,
        index: usize,
        frames: Arc<FrameStore>,
        start: FitState,
        locs: Option<LocRefiner>,
    ) {
        self.spawn(
            JobKind::Refine,
            format!("Refining frame {index}"),
            1,
            move |ctx| {
                let mut result = match frames.get(index) {
                    Some(f) => fitter.refine_from(&f, start).map(|outcome| FrameFit {
                        outcome,
                        cnn_ms: 0.0,
                        nonfinite_px: f.non_finite_count(),
                    }),
                    None => Err(format!("frame {index} is not in the document")),
                };
                if let Some(r) = &locs {
                    r.refine(index, &mut result);
                }
                ctx.send(Message::Fitted {
                    doc,
                    frame: index,
                    result,
                    apply: true,
                });
                None
            },
        );
    }

    /// Computes the symmetry-explorer sweeps of a frame at a pose.
    pub fn sweep(
        &mut self,
        key: (DocId, usize),
        frames: Arc<FrameStore>,
        model: Arc<FitModel>,
        at: PoseControls,
    ) {
        self.spawn(JobKind::Sweep, "Sweeps".into(), 1, move |ctx| {
            if let Some(frame) = frames.get(key.1) {
                let curves = sweep_scores(&frame, &model, &at);
                ctx.send(Message::Swept(Sweeps { at, key, curves }));
            }
            None
        });
    }
}

/// The viewer's words for a 3D table's z check, with where to correct it.
fn z_scale_note(z: &crate::estimate::locfit::ZScale) -> String {
    let fix = if z.suggests_correction() {
        " (Picks → Opening tables → z ×, then open the table again)"
    } else {
        ""
    };
    format!("{}: {}{fix}", z.describe(), z.verdict())
}

impl Jobs {
    /// Learns the structure from the frames `which` of a document (the
    /// library's learner, as `posescope learn`), reporting every iteration;
    /// the run waits while `paused` is set.
    pub fn learn(
        &mut self,
        doc: DocId,
        frames: Arc<FrameStore>,
        which: Vec<usize>,
        config: LearnConfig,
        paused: Arc<AtomicBool>,
    ) {
        let total = config.iterations;
        let label = format!("Learning from {} frames", which.len());
        self.spawn(JobKind::Learn, label, total, move |ctx| {
            let run = job_pool().install(|| {
                learn_job(&frames, &which, config, &paused, &ctx.cancel, |p| {
                    ctx.done.store(p.iteration, Ordering::Relaxed);
                    ctx.send(Message::LearnProgress(doc, p));
                })
            });
            let (learned, note) = match run {
                Ok(Some(l)) => (Some(Box::new(l)), None),
                Ok(None) => (None, Some(Note::Info("learning cancelled".into()))),
                Err(e) => (None, Some(Note::Error(e))),
            };
            ctx.send(Message::Learned(doc, learned));
            note
        });
    }
}

/// What a job body gets.
pub struct Ctx {
    tx: Sender<Message>,
    label: Arc<Mutex<String>>,
    /// Units done (the job advances it).
    pub done: Arc<AtomicUsize>,
    cancel: Arc<AtomicBool>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl Ctx {
    /// Sends a message and wakes the UI.
    pub fn send(&self, m: Message) {
        let _ = self.tx.send(m);
        (self.wake)();
    }

    /// Changes the job's label (a new stage) and wakes the UI.
    pub fn set_label(&self, label: String) {
        if let Ok(mut l) = self.label.lock() {
            *l = label;
        }
        (self.wake)();
    }
}

/// A path's file name, for labels (the frame bar's too).
pub(super) fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Hands what a load job read to the UI: the document, or the error; for a
/// field image, the document first and then, once the detector has run on
/// it, its candidates. Returns the job's closing note (a cancel).
fn deliver(
    ctx: &Ctx,
    path: &std::path::Path,
    name: &str,
    loaded: Result<Loaded, AppError>,
) -> Option<Note> {
    match loaded {
        Err(AppError::Cancelled) => {
            Some(Note::Info(format!("cancelled loading {}", path.display())))
        }
        Err(e) => {
            ctx.send(Message::Loaded(Err(e)));
            None
        }
        Ok(Loaded::Done(doc)) => {
            ctx.send(Message::Loaded(Ok(doc)));
            None
        }
        Ok(Loaded::Picking(doc, picking)) => {
            // the field is shown while its particles are found
            ctx.send(Message::Loaded(Ok(doc)));
            ctx.set_label(format!("Finding particles in {name}"));
            let (mut picks, mut note) = picking.run();
            if ctx.cancel.load(Ordering::Relaxed) {
                // the field stays open, for picking by hand
                picks.clear();
                note =
                    Some("automatic picking cancelled: click in the field to pick by hand".into());
            }
            ctx.send(Message::Picked {
                doc: picking.doc,
                picks,
                note,
            });
            None
        }
    }
}

/// The work of [`Jobs::load_images`]: the images as one sequence, or one by
/// one when they are not one. Returns the job's closing note.
fn open_images(ctx: &Ctx, images: &[PathBuf], table: TableLoad) -> Option<Note> {
    let n = images.len();
    // absolute paths, so that a sequence's saved rows name its files
    // wherever it is opened from next time
    let absolute: Vec<PathBuf> = images
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .collect();
    let opened = ImageSequence::open(&absolute, &ctx.cancel, |k| {
        ctx.done.store(k, Ordering::Relaxed);
    });
    match opened {
        SequenceOpen::Cancelled => {
            return Some(Note::Info(format!("cancelled opening {n} images")));
        }
        SequenceOpen::Sequence(seq) if !single_is_field(seq.info()) => {
            ctx.send(Message::Loaded(Ok(sequence_document(seq))));
            return None;
        }
        SequenceOpen::Sequence(_) => {}
        SequenceOpen::NotOne(why) => tracing::info!("{n} images opened one by one: {why}"),
    }
    ctx.done.store(0, Ordering::Relaxed);
    let mut first = None;
    for (k, path) in images.iter().enumerate() {
        if ctx.cancel.load(Ordering::Relaxed) {
            return Some(Note::Info(format!(
                "cancelled opening images after {k} of {n}"
            )));
        }
        let name = file_name(path);
        ctx.set_label(format!("Loading {name} ({} of {n})", k + 1));
        let loaded = load_image(path, &table, false, &ctx.cancel);
        if let Ok(Loaded::Done(d) | Loaded::Picking(d, _)) = &loaded {
            first = first.or(Some(d.id));
        }
        if let Some(note) = deliver(ctx, path, &name, loaded) {
            return Some(note);
        }
        ctx.done.store(k + 1, Ordering::Relaxed);
    }
    if let Some(id) = first {
        ctx.send(Message::ShowDocument(id));
    }
    None
}

/// Whether one file of a sequence alone would open as a field (a
/// whole-field image per file: those open one by one, as fields).
fn single_is_field(info: &crate::io::StackInfo) -> bool {
    is_whole_field(&crate::io::StackInfo {
        frames: 1,
        ..info.clone()
    })
}

/// An image sequence's document: its folder, one frame per file, read on
/// demand.
fn sequence_document(seq: ImageSequence) -> Document {
    // the files were made absolute before opening (open_images), so the
    // folder is too, and its results sidecar lands beside it
    let info = seq.info().clone();
    let path = info.path.clone();
    let n = seq.len();
    let frame_bytes = info.width * info.height * 4;
    let seq = Arc::new(seq);
    Document {
        id: DocId::next(),
        path,
        info,
        frames: Arc::new(FrameStore::from_source(
            seq.clone(),
            frame_bytes,
            LAZY_CACHE_BYTES,
        )),
        results: FitResults::new(n),
        unsaved: false,
        particles: None,
        sequence: Some(seq),
        history: Default::default(),
    }
}

/// What a load job has read.
enum Loaded {
    /// A document, complete.
    Done(Document),
    /// A field image's document, and the picking still to run on it.
    Picking(Document, FieldPicking),
}

/// Opens an image file once and reads it into a document: as a field
/// (see [`is_whole_field`]; always with `as_field`), or as frames.
fn load_image(
    path: &std::path::Path,
    table: &TableLoad,
    as_field: bool,
    cancel: &AtomicBool,
) -> Result<Loaded, AppError> {
    let stack = crate::io::open(path)?;
    if as_field || is_whole_field(stack.info()) {
        let (doc, picking) = load_image_field(path, stack, table, cancel)?;
        Ok(Loaded::Picking(doc, picking))
    } else {
        load_document(path, stack, cancel).map(Loaded::Done)
    }
}

/// Reads an opened file into a document: every frame when they fit in
/// [`IN_MEMORY_VALUES`], else only the first, the rest on demand.
pub fn load_document(
    path: &std::path::Path,
    mut stack: crate::io::Stack,
    cancel: &AtomicBool,
) -> Result<Document, AppError> {
    let info = stack.info().clone();
    let values = info
        .width
        .saturating_mul(info.height)
        .saturating_mul(info.frames);
    if info.frames == 0 {
        return Err(AppError::Empty(path.to_path_buf()));
    }
    if values > IN_MEMORY_VALUES {
        // read frame 0 now, so a file that cannot be read fails at open
        stack.frame(0)?;
        let n = info.frames;
        return Ok(Document {
            id: DocId::next(),
            path: path.to_path_buf(),
            info,
            frames: Arc::new(FrameStore::lazy(stack, LAZY_CACHE_BYTES)),
            results: FitResults::new(n),
            unsaved: false,
            particles: None,
            sequence: None,
            history: Default::default(),
        });
    }
    let mut frames = Vec::with_capacity(info.frames);
    for i in 0..info.frames {
        if cancel.load(Ordering::Relaxed) {
            return Err(AppError::Cancelled);
        }
        // non-finite pixels stay: drawn in NON_FINITE_RGBA, counted in the
        // status bar, and replaced by the frame's median for scores and fits
        frames.push(stack.frame(i)?);
    }
    if frames.is_empty() {
        return Err(AppError::Empty(path.to_path_buf()));
    }
    let n = frames.len();
    Ok(Document {
        id: DocId::next(),
        path: path.to_path_buf(),
        info,
        frames: Arc::new(FrameStore::memory(frames)),
        results: FitResults::new(n),
        unsaved: false,
        particles: None,
        sequence: None,
        history: Default::default(),
    })
}

/// Frames a lazy document keeps in memory, bytes.
const LAZY_CACHE_BYTES: usize = 128 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_relabels_itself_between_stages() {
        let mut jobs = Jobs::new(Arc::new(|| {}));
        let (go_on, wait) = channel::<()>();
        let (staged, stage) = channel::<()>();
        jobs.spawn(JobKind::Load, "Loading a.tif".into(), 1, move |ctx| {
            wait.recv().ok();
            ctx.set_label("Finding particles in a.tif".into());
            staged.send(()).ok();
            wait.recv().ok();
            None
        });
        let label = |jobs: &Jobs| jobs.visible().map(JobHandle::label).collect::<Vec<_>>();
        assert_eq!(label(&jobs), ["Loading a.tif"]);
        go_on.send(()).unwrap();
        stage.recv().unwrap();
        assert_eq!(label(&jobs), ["Finding particles in a.tif"]);
        go_on.send(()).unwrap();
        // the job ends: its Finished message removes it
        while jobs.visible().next().is_some() {
            jobs.poll();
            std::thread::yield_now();
        }
    }
}
