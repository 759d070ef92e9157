//! Background work for the viewer: loading files, building the fitter,
//! estimating and refining. Nothing here blocks the UI thread: each job runs
//! on its own thread, reports progress through atomics and results through a
//! channel, and checks a cancel flag between frames.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use crate::estimate::fit::FitOptions;
use crate::estimate::pipeline::{DeviceChoice, Fitter, FrameFit, ModelSpec};
use crate::estimate::refine::FitState;
use crate::io::{Frame, StackInfo};

/// Most pixel values a viewer document may hold in memory (1 GiB of f32).
/// Larger stacks are for `posescope fit`, which streams them.
pub const MAX_DOCUMENT_VALUES: usize = 1 << 28;

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

/// A file loaded into memory.
pub struct Document {
    /// Unique per load (the GPU re-uploads the raw frame when it changes).
    pub id: u64,
    /// Where it came from.
    pub path: PathBuf,
    /// Its description (size, pixel size, …).
    pub info: StackInfo,
    /// Every frame (shared with estimation jobs without copying).
    pub frames: Arc<Vec<Frame>>,
    /// Per-frame fit results (None: not fitted; Err: the fit failed).
    pub results: Vec<Option<Result<FrameFit, String>>>,
}

/// What a job sends back.
pub enum Message {
    /// A file finished loading (or failed).
    Loaded(Result<Document, String>),
    /// The fitter for a model is ready (or failed), tagged with its spec.
    FitterReady(ModelSpec, Result<Arc<Fitter>, String>),
    /// One frame was fitted.
    Fitted {
        /// The document's path (results for closed documents are dropped).
        path: PathBuf,
        /// The frame.
        frame: usize,
        /// The fit.
        result: Result<FrameFit, String>,
        /// Move the sliders to it (single-frame Estimate and Refine).
        apply: bool,
    },
    /// A job ended (finished or cancelled); `note` is shown to the user.
    Finished {
        /// Job id.
        id: u64,
        /// What to tell the user, if anything.
        note: Option<String>,
    },
}

/// A running job, as the UI sees it.
pub struct JobHandle {
    /// Unique id.
    pub id: u64,
    /// Shown next to the progress bar.
    pub label: String,
    /// Units done.
    pub done: Arc<AtomicUsize>,
    /// Units in all.
    pub total: usize,
    /// Set to ask the job to stop.
    pub cancel: Arc<AtomicBool>,
}

impl JobHandle {
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

    /// True while a job with this label prefix runs.
    pub fn running_kind(&self, prefix: &str) -> bool {
        self.running.iter().any(|j| j.label.starts_with(prefix))
    }

    /// Asks every job to stop.
    pub fn cancel_all(&self) {
        for j in &self.running {
            j.cancel.store(true, Ordering::Relaxed);
        }
    }

    fn spawn(
        &mut self,
        label: String,
        total: usize,
        work: impl FnOnce(Ctx) -> Option<String> + Send + 'static,
    ) {
        let id = self.next_id;
        self.next_id += 1;
        let handle = JobHandle {
            id,
            label,
            done: Arc::new(AtomicUsize::new(0)),
            total,
            cancel: Arc::new(AtomicBool::new(false)),
        };
        let ctx = Ctx {
            tx: self.tx.clone(),
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
                    .unwrap_or_else(|_| Some("internal error: a background job crashed".into()));
                let _ = tx.send(Message::Finished { id, note });
                wake();
            })
            .expect("spawning a thread");
    }

    /// Loads files into documents.
    pub fn load(&mut self, paths: Vec<PathBuf>) {
        for path in paths {
            let label = format!(
                "Loading {}",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            );
            self.spawn(label, 1, move |ctx| {
                let doc = load_document(&path, &ctx);
                let cancelled = ctx.cancelled();
                if !cancelled {
                    ctx.send(Message::Loaded(doc));
                }
                cancelled.then(|| format!("cancelled loading {}", path.display()))
            });
        }
    }

    /// Builds the fitter (loads the network) for a model.
    pub fn build_fitter(&mut self, spec: ModelSpec, opts: FitOptions) {
        self.spawn("Loading model".into(), 1, move |ctx| {
            let fitter = Fitter::new(&spec, opts, None, true, DeviceChoice::Auto)
                .map(Arc::new)
                .map_err(|e| format!("model {}: {e}", spec.describe()));
            ctx.send(Message::FitterReady(spec, fitter));
            None
        });
    }

    /// Estimates (CNN + refinement) the given frames of a document, in
    /// batches, reporting each; `apply` moves the sliders to the result.
    pub fn estimate(
        &mut self,
        fitter: Arc<Fitter>,
        path: PathBuf,
        frames: Arc<Vec<Frame>>,
        which: Vec<usize>,
        apply: bool,
    ) {
        let label = if which.len() == 1 {
            format!("Estimating frame {}", which[0])
        } else {
            format!("Estimating {} frames", which.len())
        };
        self.spawn(label, which.len(), move |ctx| {
            let which: Vec<usize> = which.into_iter().filter(|&k| k < frames.len()).collect();
            for chunk in which.chunks(32) {
                if ctx.cancelled() {
                    return Some(format!(
                        "estimation cancelled after {} frames",
                        ctx.done.load(Ordering::Relaxed)
                    ));
                }
                let batch: Vec<(&[f32], usize, usize)> = chunk
                    .iter()
                    .map(|&k| (frames[k].data.as_slice(), frames[k].width, frames[k].height))
                    .collect();
                match job_pool().install(|| fitter.fit_batch(&batch)) {
                    Ok(results) => {
                        for (k, result) in chunk.iter().zip(results) {
                            ctx.send(Message::Fitted {
                                path: path.clone(),
                                frame: *k,
                                result,
                                apply,
                            });
                        }
                    }
                    Err(e) => return Some(format!("estimation failed: {e}")),
                }
                ctx.done.fetch_add(chunk.len(), Ordering::Relaxed);
                (ctx.wake)();
            }
            None
        });
    }

    /// Refines one frame from the given state.
    pub fn refine(
        &mut self,
        fitter: Arc<Fitter>,
        path: PathBuf,
        index: usize,
        frame: Frame,
        start: FitState,
    ) {
        self.spawn(format!("Refining frame {index}"), 1, move |ctx| {
            let result = fitter
                .refine_from(&frame.data, frame.width, frame.height, start)
                .map(|outcome| FrameFit {
                    outcome,
                    cnn_ms: 0.0,
                });
            ctx.send(Message::Fitted {
                path,
                frame: index,
                result,
                apply: true,
            });
            None
        });
    }
}

/// What a job body gets.
pub struct Ctx {
    tx: Sender<Message>,
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

    /// True once the user asked to stop.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Reads every frame of a file, refusing stacks too large to hold.
pub fn load_document(path: &std::path::Path, ctx: &Ctx) -> Result<Document, String> {
    let mut stack = crate::io::open(path).map_err(|e| e.to_string())?;
    let info = stack.info().clone();
    let values = info
        .width
        .saturating_mul(info.height)
        .saturating_mul(info.frames);
    if values > MAX_DOCUMENT_VALUES {
        return Err(format!(
            "{}: {} frames of {}×{} are too many to view at once ({} M values, limit {} M); \
             fit it headless with `posescope fit`",
            path.display(),
            info.frames,
            info.width,
            info.height,
            values >> 20,
            MAX_DOCUMENT_VALUES >> 20
        ));
    }
    let mut frames = Vec::with_capacity(info.frames);
    for i in 0..info.frames {
        if ctx.cancelled() {
            return Err("cancelled".into());
        }
        let f = stack.frame(i).map_err(|e| e.to_string())?;
        if let Some(bad) = f.data.iter().position(|v| !v.is_finite()) {
            return Err(format!(
                "{}: frame {i} has a non-finite pixel ({}, {}) = {}",
                path.display(),
                bad % f.width,
                bad / f.width,
                f.data[bad]
            ));
        }
        frames.push(f);
    }
    if frames.is_empty() {
        return Err(format!("{}: the file holds no frames", path.display()));
    }
    let n = frames.len();
    static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
    Ok(Document {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed) as u64,
        path: path.to_path_buf(),
        info,
        frames: Arc::new(frames),
        results: vec![None; n],
    })
}
