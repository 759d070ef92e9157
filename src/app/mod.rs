//! The viewer: an eframe/egui application over the library.
//!
//! The app owns only UI state. Files are read by [`crate::io`], the model is
//! built by [`crate::estimate::pipeline`], scores come from
//! [`crate::estimate::refine::score`], estimation runs the same
//! [`Fitter`](crate::estimate::pipeline::Fitter) as `posescope fit`, the
//! model view is drawn by the WGSL shaders of [`crate::render::gpu`], and
//! Ctrl+E writes through [`crate::export::frames`] like `posescope export`.
//! Long work runs in [`jobs`] threads, so the UI never waits on I/O or
//! inference.

pub mod gpu_view;
pub mod jobs;
pub mod orbit;
mod panels;
pub mod pixel_view;
pub mod view;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use egui::{Color32, ColorImage, TextureHandle, TextureOptions};
use serde::{Deserialize, Serialize};

use crate::estimate::fit::FitOptions;
use crate::estimate::pipeline::{Fitter, FrameFit, ModelSpec};
use crate::estimate::refine::{render_state, score, FitModel, FitState};
use crate::export::frames::{ExportLook, FrameExport};
use crate::geometry::{Pose, Quat};
use crate::io::Frame;
use crate::render::display::{self, auto_contrast, auto_contrast_fraction, Contrast, Lut};
use crate::render::kernel::Scratch;
use gpu_view::{GpuModelView, Layout, ModelImage};
use jobs::{Document, Jobs, Message};
use view::{ViewImage, ViewTransform};

/// Settings kept across runs (eframe persistence).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Folder of the last opened file (for the Open dialog).
    pub last_dir: Option<PathBuf>,
    /// Recently opened files, newest first.
    pub recent: Vec<PathBuf>,
    /// Colour map.
    pub lut: Lut,
    /// Model panel layout.
    pub layout: Layout,
    /// The model.
    pub model: ModelSpec,
    /// Where exported PNGs go (None: beside the image file).
    pub export_dir: Option<PathBuf>,
    /// Integer zoom of exported PNGs.
    pub export_zoom: u32,
    /// Estimate each frame when it is first shown.
    pub auto_estimate: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            last_dir: None,
            recent: Vec::new(),
            lut: Lut::Grey,
            layout: Layout::SideBySide,
            model: ModelSpec::default(),
            export_dir: None,
            export_zoom: 4,
            auto_estimate: true,
        }
    }
}

const SETTINGS_KEY: &str = "posescope-settings";
const MAX_RECENT: usize = 10;

/// A message for the user, shown until dismissed.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    /// The text.
    pub text: String,
    /// Errors are red, information is blue.
    pub is_error: bool,
}

/// The slider values. Euler angles are kept as the user set them (not
/// recomputed from the quaternion), so dragging one never makes the others jump.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoseControls {
    /// Intrinsic ZYZ Euler angles (RELION rot, tilt, psi) in degrees.
    pub euler: [f64; 3],
    /// Shift from the image centre, pixels.
    pub shift: [f64; 2],
    /// PSF σ, pixels.
    pub sigma: f64,
    /// Model scale.
    pub scale: f64,
    /// Torus tube radius in image pixels (torus models only).
    pub tube_px: f64,
}

impl Default for PoseControls {
    fn default() -> Self {
        Self {
            euler: [0.0, 45.0, 0.0],
            shift: [0.0, 0.0],
            sigma: 1.6,
            scale: 1.0,
            tube_px: 5.0,
        }
    }
}

impl PoseControls {
    /// The fitted-state form.
    pub fn state(&self) -> FitState {
        let [a, b, c] = self.euler;
        FitState {
            pose: Pose::new(Quat::from_euler_zyz_deg(a, b, c), self.shift),
            scale: self.scale,
            sigma: self.sigma,
            shape: self.tube_px / self.scale.max(1e-6),
        }
    }

    /// Controls showing a fitted state.
    pub fn from_state(s: &FitState) -> Self {
        let (a, b, c) = s.pose.q.to_euler_zyz_deg();
        Self {
            euler: [a, b, c],
            shift: s.pose.shift,
            sigma: s.sigma,
            scale: s.scale,
            tube_px: s.shape * s.scale,
        }
    }
}

/// Score of each rotation angle swept through 360° with the others fixed.
#[derive(Clone, Debug)]
pub struct Sweeps {
    /// The controls the sweeps were computed for.
    pub at: PoseControls,
    /// The frame they were computed on.
    pub key: (u64, usize),
    /// `(angle°, score)` per Euler angle.
    pub curves: [Vec<[f64; 2]>; 3],
}

/// Steps of the symmetry-explorer sweeps (5° apart).
pub const SWEEP_STEPS: usize = 73;

/// Which page the right-hand panel shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RightTab {
    /// Sweeps and equivalent poses.
    #[default]
    Symmetry,
    /// The per-frame results table.
    Results,
}

struct MeasureFps {
    start: Instant,
    seconds: f64,
    frames: u64,
    ui_time: f64,
    with_batch: bool,
    batch_started: bool,
    slowest: f64,
    last: Option<Instant>,
    /// Process CPU seconds (all threads, the software rasteriser's included) at `start`.
    cpu_start: Option<f64>,
}

/// CPU time of the whole process so far (user + system, all threads), where
/// the platform tells it cheaply (Linux: `/proc/self/stat`, 10 ms ticks).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // fields after the parenthesised command name; utime and stime are the 14th and 15th
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The PoseScope viewer.
pub struct PoseScopeApp {
    settings: Settings,
    docs: Vec<Document>,
    current: usize,
    frame: usize,
    controls: PoseControls,
    model: Arc<FitModel>,
    model_key: Option<ModelSpec>,
    fitter: Option<Arc<Fitter>>,
    jobs: Jobs,
    notices: Vec<Notice>,
    contrast: Option<Contrast>,
    auto_presses: u32,
    auto_contrast_cache: std::cell::Cell<Option<((u64, usize), Contrast)>>,
    view: ViewTransform,
    raw_tex: Option<TextureHandle>,
    /// The raw frame's colours for the wgpu image views, with their generation.
    raw_pixels: Option<(Arc<[u8]>, u64)>,
    /// Counter for the generations of CPU-made view pixels.
    pixel_generation: u64,
    /// Whether the image views draw through [`pixel_view`] (eframe runs on wgpu).
    pixel_views: bool,
    /// Lean drawing: no feathering, plot backgrounds or table stripes; on by
    /// default on software rasterisers, where every filled pixel costs CPU.
    lean: bool,
    /// Whether the model view is rendered by the WGSL splat shader (View →
    /// GPU model view). Off by default on software rasterisers: there the
    /// "GPU" is the CPU, and the CPU renderer, which draws the score's
    /// model image anyway, gives the same picture for a fraction of the cost.
    gpu_model: bool,
    raw_key: Option<(u64, usize, [u32; 2], Lut)>,
    render_key: Option<(u64, usize, [u64; 8])>,
    model_render: Vec<f32>,
    score: f64,
    model_points: Vec<[f32; 3]>,
    gpu: Option<GpuModelView>,
    gpu_error: Option<String>,
    cpu_model_tex: Option<TextureHandle>,
    /// The histogram of the shown frame, keyed by (document id, frame).
    histogram: Option<((u64, usize), Arc<display::Histogram>)>,
    sweeps: Option<Sweeps>,
    sweep_rx: Option<std::sync::mpsc::Receiver<Sweeps>>,
    hover: Option<(usize, usize, f32)>,
    model_edit: ModelSpec,
    measure: Option<MeasureFps>,
    last_export: Option<PathBuf>,
    jobs_wake: Arc<dyn Fn() + Send + Sync>,
    right_tab: RightTab,
    paint_background: bool,
    auto_requested: Option<(u64, usize)>,
    orbit: orbit::Orbit,
}

impl PoseScopeApp {
    /// Creates the app, restores settings and starts loading `files` (the
    /// bundled sample when empty) and the model.
    pub fn new(cc: &eframe::CreationContext<'_>, files: Vec<PathBuf>) -> Self {
        let settings: Settings = cc
            .storage
            .and_then(|s| eframe::get_value(s, SETTINGS_KEY))
            .unwrap_or_default();
        add_fallback_fonts(&cc.egui_ctx);
        let ctx = cc.egui_ctx.clone();
        let mut app = Self::with_settings(settings, Arc::new(move || ctx.request_repaint()));
        if let Some(rs) = cc.wgpu_render_state.as_ref() {
            pixel_view::PixelViews::install(rs);
            app.pixel_views = true;
            let software = rs.adapter.get_info().device_type == wgpu::DeviceType::Cpu;
            app.lean = software;
            app.gpu_model = !software;
        }
        // POSESCOPE_CPU_VIEW=1 draws the model view on the CPU (a fallback for broken drivers)
        if std::env::var_os("POSESCOPE_CPU_VIEW").is_none() {
            if let Some(rs) = cc.wgpu_render_state.as_ref() {
                app.gpu = Some(GpuModelView::new(rs));
            }
        }
        let files = if files.is_empty() {
            sample_stack().into_iter().collect()
        } else {
            files
        };
        app.open_paths(files);
        app
    }

    fn with_settings(settings: Settings, wake: Arc<dyn Fn() + Send + Sync>) -> Self {
        let mut jobs = Jobs::new(wake.clone());
        jobs.build_fitter(settings.model.clone(), FitOptions::default());
        let controls = PoseControls {
            tube_px: settings.model.tube_px(),
            ..PoseControls::default()
        };
        let model_edit = settings.model.clone();
        let mut app = Self {
            settings,
            docs: Vec::new(),
            current: 0,
            frame: 0,
            controls,
            model: Arc::new(FitModel::torus(20.0, 5.0, 1.6)),
            model_key: None,
            fitter: None,
            jobs,
            notices: Vec::new(),
            contrast: None,
            auto_presses: 0,
            auto_contrast_cache: std::cell::Cell::new(None),
            view: ViewTransform::default(),
            raw_tex: None,
            raw_pixels: None,
            pixel_generation: 0,
            pixel_views: false,
            lean: false,
            gpu_model: true,
            raw_key: None,
            render_key: None,
            model_render: Vec::new(),
            score: f64::NAN,
            model_points: Vec::new(),
            gpu: None,
            gpu_error: None,
            cpu_model_tex: None,
            histogram: None,
            sweeps: None,
            sweep_rx: None,
            hover: None,
            model_edit,
            measure: None,
            last_export: None,
            jobs_wake: wake,
            right_tab: RightTab::Symmetry,
            paint_background: false,
            auto_requested: None,
            orbit: orbit::Orbit::default(),
        };
        app.update_model();
        app
    }

    /// Runs the FPS measurement: the tilt slider moves every frame for
    /// `seconds`, then the app prints the rate and closes.
    /// With `with_batch`, Estimate all runs in the background meanwhile.
    pub fn measure_fps(&mut self, seconds: f64, with_batch: bool) {
        self.measure = Some(MeasureFps {
            start: Instant::now(),
            seconds,
            frames: 0,
            ui_time: 0.0,
            with_batch,
            batch_started: false,
            slowest: 0.0,
            last: None,
            cpu_start: None,
        });
    }

    // ---- public state, for tests and embedding ------------------------------

    /// Starts loading files (File → Open, drag-and-drop, the command line).
    pub fn open_paths(&mut self, paths: Vec<PathBuf>) {
        for p in &paths {
            if let Some(dir) = p.parent() {
                self.settings.last_dir = Some(dir.to_path_buf());
            }
        }
        self.jobs.load(paths);
    }

    /// Puts a successfully opened file at the top of the recent list.
    fn remember_recent(&mut self, p: &Path) {
        self.settings.recent.retain(|r| r != p);
        self.settings.recent.insert(0, p.to_path_buf());
        self.settings.recent.truncate(MAX_RECENT);
    }

    /// The slider values.
    pub fn controls(&self) -> PoseControls {
        self.controls
    }

    /// Sets the slider values.
    pub fn set_controls(&mut self, c: PoseControls) {
        self.controls = c;
    }

    /// The live NCC score of the current pose against the current frame.
    pub fn score(&self) -> f64 {
        self.score
    }

    /// Index of the current frame.
    pub fn frame_index(&self) -> usize {
        self.frame
    }

    /// Frames in the current document (0 when none is open).
    pub fn frame_count(&self) -> usize {
        self.doc().map_or(0, |d| d.frames.len())
    }

    /// Path of the current document.
    pub fn current_path(&self) -> Option<&Path> {
        self.doc().map(|d| d.path.as_path())
    }

    /// Open documents.
    pub fn document_count(&self) -> usize {
        self.docs.len()
    }

    /// True while background work runs (loading, model, estimation).
    pub fn busy(&self) -> bool {
        self.jobs.busy() || self.sweep_rx.is_some()
    }

    /// True once the network/model for fitting is loaded.
    pub fn fitter_ready(&self) -> bool {
        self.fitter.is_some()
    }

    /// Notices on screen.
    pub fn notices(&self) -> &[Notice] {
        &self.notices
    }

    /// Settings (as they will be saved).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Mutable settings (tests set the export folder here).
    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    /// The fit result of a frame of the current document.
    pub fn result(&self, frame: usize) -> Option<&Result<FrameFit, String>> {
        self.doc()?.results.get(frame)?.as_ref()
    }

    /// The last PNG written by Export.
    pub fn last_export(&self) -> Option<&Path> {
        self.last_export.as_deref()
    }

    /// The raw-frame contrast in use.
    pub fn contrast(&self) -> Option<Contrast> {
        self.effective_contrast()
    }

    /// Paint the window background in the UI pass. eframe clears the window
    /// with the panel colour (see `clear_color`), so the app leaves panels
    /// unfilled; hosts that clear with something else (egui_kittest, an
    /// embedding app) turn this on.
    pub fn set_paint_background(&mut self, on: bool) {
        self.paint_background = on;
    }

    /// The GPU accumulation format (None: no GPU view).
    pub fn gpu_format(&self) -> Option<wgpu::TextureFormat> {
        self.gpu.as_ref().map(|g| g.accumulation_format())
    }

    /// Whether lean drawing is on (View → Lean drawing; default: on for a
    /// software rasteriser).
    pub fn lean_drawing(&self) -> bool {
        self.lean
    }

    /// Whether the image views draw through PoseScope's own wgpu pass.
    pub fn pixel_views(&self) -> bool {
        self.pixel_views
    }

    /// Whether the model view is drawn by the GPU (false: the CPU renderer,
    /// by choice or as a fallback).
    pub fn gpu_active(&self) -> bool {
        self.gpu.is_some() && self.gpu_error.is_none() && self.gpu_model
    }

    /// Whether the GPU model view is chosen (View → GPU model view; default:
    /// on, except on a software rasteriser).
    pub fn gpu_model_view(&self) -> bool {
        self.gpu_model
    }

    /// Chooses the GPU (true) or the CPU renderer for the model view.
    pub fn set_gpu_model_view(&mut self, on: bool) {
        self.gpu_model = on;
    }

    // ---- internals ------------------------------------------------------------

    fn doc(&self) -> Option<&Document> {
        self.docs.get(self.current)
    }

    fn current_frame(&self) -> Option<&Frame> {
        self.doc().and_then(|d| d.frames.get(self.frame))
    }

    fn error(&mut self, text: impl Into<String>) {
        let text = text.into();
        tracing::warn!("{text}");
        self.notices.push(Notice {
            text,
            is_error: true,
        });
    }

    fn info(&mut self, text: impl Into<String>) {
        self.notices.push(Notice {
            text: text.into(),
            is_error: false,
        });
    }

    /// The contrast of the frame on screen: the user's, or the frame's
    /// auto-contrast, computed once per frame shown (it is asked for several
    /// times a UI frame).
    fn effective_contrast(&self) -> Option<Contrast> {
        if let Some(c) = self.contrast {
            return Some(c);
        }
        let key = (self.doc()?.id, self.frame);
        match self.auto_contrast_cache.get() {
            Some((k, c)) if k == key => Some(c),
            _ => {
                let c = auto_contrast(&self.current_frame()?.data, auto_contrast_fraction(0));
                self.auto_contrast_cache.set(Some((key, c)));
                Some(c)
            }
        }
    }

    /// The display model: rebuilt when the model spec changes.
    fn update_model(&mut self) {
        let spec = self.settings.model.clone();
        if Some(&spec) == self.model_key.as_ref() {
            return;
        }
        // the fitter's own model, so the live score is the score a fit reports
        match spec.fit_model(FitOptions::default().sigma) {
            Ok(m) => {
                self.model = Arc::new(m);
                self.render_key = None;
                self.sweeps = None;
            }
            Err(e) => self.error(format!("model: {e}")),
        }
        self.model_key = Some(spec);
    }

    /// Applies a new model spec: rebuilds the display model and the fitter.
    fn set_model(&mut self, spec: ModelSpec) {
        if spec == self.settings.model {
            return;
        }
        if spec.is_torus() {
            self.controls.tube_px = spec.tube_px();
            self.controls.scale = 1.0;
        }
        self.settings.model = spec.clone();
        self.fitter = None;
        self.jobs.build_fitter(spec, FitOptions::default());
        self.update_model();
    }

    fn handle_messages(&mut self) {
        for msg in self.jobs.poll() {
            match msg {
                Message::Loaded(Ok(doc)) => {
                    let name = doc.path.display().to_string();
                    if !doc.info.warnings.is_empty() {
                        let w = doc.info.warnings.join("; ");
                        self.info(format!("{name}: {w}"));
                    }
                    self.remember_recent(&doc.path);
                    // reopening a file replaces it
                    self.docs.retain(|d| d.path != doc.path);
                    self.docs.push(doc);
                    self.current = self.docs.len() - 1;
                    self.go_to_frame(0);
                    self.contrast = None;
                    self.auto_presses = 0;
                    self.view.fit_pending = true;
                }
                Message::Loaded(Err(e)) => self.error(e),
                Message::FitterReady(spec, result) => {
                    if spec == self.settings.model {
                        match result {
                            Ok(f) => self.fitter = Some(f),
                            Err(e) => self.error(e),
                        }
                    }
                }
                Message::Fitted {
                    path,
                    frame,
                    result,
                    apply,
                } => {
                    let is_current = self.doc().is_some_and(|d| d.path == path);
                    // the frame on screen shows its new fit (batch results too)
                    if is_current && frame == self.frame && (apply || result.is_ok()) {
                        match &result {
                            Ok(fit) => {
                                self.controls = PoseControls::from_state(&fit.outcome.state);
                            }
                            Err(e) => self.error(format!("frame {frame}: {e}")),
                        }
                    }
                    if let Some(doc) = self.docs.iter_mut().find(|d| d.path == path) {
                        if let Some(slot) = doc.results.get_mut(frame) {
                            *slot = Some(result);
                        }
                    }
                }
                Message::Finished { note, .. } => {
                    if let Some(n) = note {
                        self.info(n);
                    }
                }
            }
        }
        if let Some(rx) = &self.sweep_rx {
            if let Ok(s) = rx.try_recv() {
                self.sweeps = Some(s);
                self.sweep_rx = None;
            }
        }
    }

    /// Moves to a frame of the current document; a fitted frame shows its fit.
    fn go_to_frame(&mut self, k: usize) {
        let n = self.frame_count();
        if n == 0 {
            return;
        }
        self.frame = k.min(n - 1);
        if let Some(Some(Ok(fit))) = self.doc().and_then(|d| d.results.get(self.frame)) {
            self.controls = PoseControls::from_state(&fit.outcome.state);
        }
    }

    /// Re-renders the model on the CPU and rescores it when the pose or frame changed.
    fn update_render(&mut self) {
        self.update_model();
        let c = self.controls;
        let st = c.state();
        let bits = [
            c.euler[0].to_bits(),
            c.euler[1].to_bits(),
            c.euler[2].to_bits(),
            c.shift[0].to_bits(),
            c.shift[1].to_bits(),
            c.sigma.to_bits(),
            c.scale.to_bits(),
            c.tube_px.to_bits() ^ (Arc::as_ptr(&self.model) as u64),
        ];
        let (render, sc, key) = {
            let Some(doc) = self.doc() else { return };
            let Some(f) = doc.frames.get(self.frame) else {
                return;
            };
            let key = (doc.id, self.frame, bits);
            if self.render_key == Some(key) {
                return;
            }
            let render = render_state(&self.model, &st, f.width, f.height, &mut Scratch::default());
            let sc = score(&f.data, f.width, f.height, &self.model, &st);
            (render, sc, key)
        };
        self.model_render = render;
        self.score = sc;
        self.model_points = self.model.points(st.shape);
        self.render_key = Some(key);
    }

    /// Starts the symmetry-explorer sweeps when the pose settled somewhere new.
    fn update_sweeps(&mut self, dragging: bool) {
        if dragging || self.sweep_rx.is_some() {
            return;
        }
        let Some(doc) = self.doc() else { return };
        let Some(f) = doc.frames.get(self.frame) else {
            return;
        };
        let key = (doc.id, self.frame);
        if self
            .sweeps
            .as_ref()
            .is_some_and(|s| s.key == key && s.at == self.controls)
        {
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let at = self.controls;
        let model = self.model.clone();
        let frame = f.clone();
        let wake = self.jobs_wake();
        std::thread::spawn(move || {
            let curves = sweep_scores(&frame, &model, &at);
            let _ = tx.send(Sweeps { at, key, curves });
            wake();
        });
        self.sweep_rx = Some(rx);
    }

    fn jobs_wake(&self) -> Arc<dyn Fn() + Send + Sync> {
        self.jobs_wake.clone()
    }

    /// Colours CPU-made pixels for a view: wgpu pixels, or an egui texture.
    fn cpu_view_image(
        &mut self,
        ctx: &egui::Context,
        which: pixel_view::Slot,
        rgba: Vec<u8>,
        [w, h]: [usize; 2],
    ) -> ViewImage {
        self.pixel_generation += 1;
        if self.pixel_views {
            let data: Arc<[u8]> = rgba.into();
            if which == pixel_view::Slot::Raw {
                self.raw_pixels = Some((data.clone(), self.pixel_generation));
            }
            return ViewImage::Gpu(
                which,
                pixel_view::PixelSource::Bytes {
                    data,
                    generation: self.pixel_generation,
                },
            );
        }
        let img = ColorImage::from_rgba_unmultiplied([w, h], &rgba);
        let (slot, name) = match which {
            pixel_view::Slot::Raw => (&mut self.raw_tex, "raw"),
            pixel_view::Slot::Model => (&mut self.cpu_model_tex, "model"),
        };
        match slot {
            Some(t) => t.set(img, TextureOptions::NEAREST),
            None => *slot = Some(ctx.load_texture(name, img, TextureOptions::NEAREST)),
        }
        ViewImage::Texture(slot.as_ref().expect("texture just set").id())
    }

    fn raw_image(&mut self, ctx: &egui::Context) -> Option<ViewImage> {
        let c = self.effective_contrast()?;
        let key = (
            self.doc()?.id,
            self.frame,
            [c.min.to_bits(), c.max.to_bits()],
            self.settings.lut,
        );
        if self.raw_key == Some(key) {
            if let Some((data, generation)) = &self.raw_pixels {
                let source = pixel_view::PixelSource::Bytes {
                    data: data.clone(),
                    generation: *generation,
                };
                return Some(ViewImage::Gpu(pixel_view::Slot::Raw, source));
            }
            if let Some(t) = &self.raw_tex {
                return Some(ViewImage::Texture(t.id()));
            }
        }
        let f = self.current_frame()?;
        let (rgba, size) = (
            display::colorize(&f.data, c, self.settings.lut),
            [f.width, f.height],
        );
        self.raw_key = Some(key);
        Some(self.cpu_view_image(ctx, pixel_view::Slot::Raw, rgba, size))
    }

    fn model_image(&mut self, ctx: &egui::Context, frame: &eframe::Frame) -> Option<ViewImage> {
        // the frames are shared (Arc), so the frame is borrowed, not copied
        let frames = self.doc()?.frames.clone();
        let f = frames.get(self.frame)?;
        let doc_id = self.doc()?.id;
        let raw_contrast = self.effective_contrast()?;
        let st = self.controls.state();
        let img = ModelImage {
            points: &self.model_points,
            weights: &self.model.weights,
            rot: st.pose.q.to_matrix(),
            shift: st.pose.shift,
            params: crate::render::SplatParams {
                width: f.width,
                height: f.height,
                sigma: st.sigma as f32,
                scale: st.scale as f32,
            },
            raw: &f.data,
            raw_contrast,
            cpu_render: &self.model_render,
            lut: self.settings.lut,
            layout: self.settings.layout,
        };
        if self.gpu_error.is_none() && self.gpu_model {
            if let (Some(gpu), Some(rs)) = (self.gpu.as_mut(), frame.wgpu_render_state()) {
                match gpu.draw(rs, &img, doc_id ^ ((self.frame as u64) << 40)) {
                    Ok(texture) if self.pixel_views => {
                        let source = pixel_view::PixelSource::Texture(texture);
                        return Some(ViewImage::Gpu(pixel_view::Slot::Model, source));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let msg = format!("GPU model view failed, drawing on the CPU instead: {e}");
                        self.gpu_error = Some(e);
                        self.error(msg);
                        return None;
                    }
                }
            }
        }
        let rgba = img.cpu_rgba();
        let size = [f.width, f.height];
        Some(self.cpu_view_image(ctx, pixel_view::Slot::Model, rgba, size))
    }

    // ---- actions ----------------------------------------------------------------

    fn open_dialog(&mut self) {
        let mut dialog = rfd::FileDialog::new()
            .set_title("Open images")
            .add_filter(
                "Images (TIFF, FITS, PNG)",
                &[
                    "tif", "tiff", "btf", "fits", "fit", "fts", "png", "jpg", "jpeg",
                ],
            )
            .add_filter("All files", &["*"]);
        if let Some(dir) = &self.settings.last_dir {
            dialog = dialog.set_directory(dir);
        }
        if let Some(paths) = self.run_dialog(|| dialog.pick_files()) {
            self.open_paths(paths);
        }
    }

    /// Runs a blocking rfd dialog; `None` when cancelled. A "cancel" too
    /// quick for a person (under 150 ms) means, on Linux, that no dialog could
    /// be shown (no XDG desktop portal and no zenity), which rfd reports only
    /// as a cancel: that gets a notice.
    pub(super) fn run_dialog<T>(&mut self, dialog: impl FnOnce() -> Option<T>) -> Option<T> {
        let t0 = Instant::now();
        let out = dialog();
        if out.is_none() && cfg!(target_os = "linux") && t0.elapsed().as_millis() < 150 {
            self.error(
                "no file dialog could be shown (PoseScope asks the XDG desktop portal, then \
                 zenity; neither answered): drop files on the window, or give them on the \
                 command line"
                    .to_string(),
            );
        }
        out
    }

    /// With auto-estimate on, fits a frame the first time it is shown.
    fn auto_estimate(&mut self) {
        if !self.settings.auto_estimate
            || self.fitter.is_none()
            || self.jobs.running_kind("Estimating")
            || self.jobs.running_kind("Refining")
        {
            return;
        }
        let Some(doc) = self.doc() else { return };
        let key = (doc.id, self.frame);
        let unfitted = matches!(doc.results.get(self.frame), Some(None));
        if unfitted && self.auto_requested != Some(key) {
            self.auto_requested = Some(key);
            self.estimate_current();
        }
    }

    /// The fitter, or a notice that it is still loading.
    fn ready_fitter(&mut self) -> Option<Arc<Fitter>> {
        if self.fitter.is_none() {
            self.info("the model is still loading; try again in a moment");
        }
        self.fitter.clone()
    }

    /// The fitter and the current document's path and frames.
    fn current_job(&mut self) -> Option<(Arc<Fitter>, PathBuf, Arc<Vec<Frame>>)> {
        let fitter = self.ready_fitter()?;
        let doc = self.doc()?;
        (self.frame < doc.frames.len()).then(|| (fitter, doc.path.clone(), doc.frames.clone()))
    }

    fn estimate_current(&mut self) {
        if let Some((fitter, path, frames)) = self.current_job() {
            self.jobs
                .estimate(fitter, path, frames, vec![self.frame], true);
        }
    }

    fn estimate_all(&mut self) {
        if let Some((fitter, path, frames)) = self.current_job() {
            let all = (0..frames.len()).collect();
            self.jobs.estimate(fitter, path, frames, all, false);
        }
    }

    fn refine_current(&mut self) {
        if let Some((fitter, path, frames)) = self.current_job() {
            let start = self.controls.state();
            let f = frames[self.frame].clone();
            self.jobs.refine(fitter, path, self.frame, f, start);
        }
    }

    fn export_dir_for(&self, doc: &Document) -> PathBuf {
        self.settings
            .export_dir
            .clone()
            .or_else(|| doc.path.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."))
    }

    fn export_look(&self) -> ExportLook {
        ExportLook {
            lut: self.settings.lut,
            contrast: self.contrast,
            upscale: self.settings.export_zoom.clamp(1, 16),
        }
    }

    /// Ctrl+E: writes the annotated PNG of the current frame at the slider pose.
    fn export_current(&mut self) {
        let Some(doc) = self.doc() else {
            self.info("nothing to export: open an image first");
            return;
        };
        let Some(f) = doc.frames.get(self.frame) else {
            return;
        };
        let dir = self.export_dir_for(doc);
        let job = FrameExport {
            frame: f,
            file: &doc.path,
            index: self.frame,
            frames: doc.frames.len(),
            state: self.controls.state(),
            score: self.score.is_finite().then_some(self.score),
            model: &self.model,
            model_name: &self.settings.model.describe(),
            pixel_size_nm: doc.info.pixel_size_nm,
        };
        match job.write_into(&dir, &self.export_look()) {
            Ok(p) => {
                self.info(format!("exported {}", p.display()));
                self.last_export = Some(p);
            }
            Err(e) => self.error(format!("export failed: {e}")),
        }
    }

    /// Writes every fitted frame (at its fit) of the current document.
    fn export_all(&mut self) {
        let Some(doc) = self.doc() else { return };
        let dir = self.export_dir_for(doc);
        let look = self.export_look();
        let name = self.settings.model.describe();
        let (mut written, mut skipped, mut errors) = (0, 0, Vec::new());
        for (k, f) in doc.frames.iter().enumerate() {
            let Some(Some(Ok(fit))) = doc.results.get(k) else {
                skipped += 1;
                continue;
            };
            let job = FrameExport {
                frame: f,
                file: &doc.path,
                index: k,
                frames: doc.frames.len(),
                state: fit.outcome.state,
                score: Some(fit.outcome.score),
                model: &self.model,
                model_name: &name,
                pixel_size_nm: doc.info.pixel_size_nm,
            };
            match job.write_into(&dir, &look) {
                Ok(_) => written += 1,
                Err(e) => errors.push(e.to_string()),
            }
        }
        let msg = format!(
            "exported {written} frames to {} ({skipped} not fitted yet)",
            dir.display()
        );
        if let Some(e) = errors.first() {
            self.error(format!("{msg}; {} failed: {e}", errors.len()));
        } else {
            self.info(msg);
        }
    }

    fn save_results_dialog(&mut self) {
        let Some(doc) = self.doc() else { return };
        let stem = doc
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "results".into());
        let mut dialog = rfd::FileDialog::new()
            .set_title("Save results")
            .add_filter("Pose CSV", &["csv"])
            .set_file_name(format!("{stem}_poses.csv"));
        if let Some(dir) = doc.path.parent() {
            dialog = dialog.set_directory(dir);
        }
        if let Some(path) = self.run_dialog(|| dialog.save_file()) {
            self.save_results(&path);
        }
    }

    /// Saves the current document's results as the CSV `posescope fit` writes.
    pub fn save_results(&mut self, path: &Path) {
        let Some(doc) = self.doc() else { return };
        let name = doc.path.display().to_string();
        let rows: Vec<_> = doc
            .results
            .iter()
            .enumerate()
            .filter_map(|(k, r)| {
                let mut row = match r.as_ref()? {
                    Ok(fit) => crate::estimate::pipeline::outcome_row(k, fit),
                    Err(e) => crate::export::PoseRow::failed(k, e),
                };
                row.file = Some(name.clone());
                Some(row)
            })
            .collect();
        match crate::export::write_pose_csv(path, &rows) {
            Ok(()) => self.info(format!("saved {} rows to {}", rows.len(), path.display())),
            Err(e) => self.error(format!("saving results failed: {e}")),
        }
    }

    fn handle_keys(&mut self, ctx: &egui::Context) {
        use egui::{Key, KeyboardShortcut, Modifiers};
        let open = KeyboardShortcut::new(Modifiers::COMMAND, Key::O);
        let export = KeyboardShortcut::new(Modifiers::COMMAND, Key::E);
        let save = KeyboardShortcut::new(Modifiers::COMMAND, Key::S);
        if ctx.input_mut(|i| i.consume_shortcut(&open)) {
            self.open_dialog();
        }
        if ctx.input_mut(|i| i.consume_shortcut(&export)) {
            self.export_current();
        }
        if ctx.input_mut(|i| i.consume_shortcut(&save)) {
            self.save_results_dialog();
        }
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        let (left, right, home) = ctx.input(|i| {
            (
                i.key_pressed(Key::ArrowLeft),
                i.key_pressed(Key::ArrowRight),
                i.key_pressed(Key::Home),
            )
        });
        if left && self.frame > 0 {
            self.go_to_frame(self.frame - 1);
        }
        if right {
            self.go_to_frame(self.frame + 1);
        }
        if home {
            self.view.fit_pending = true;
        }
    }

    fn handle_drops(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        if !dropped.is_empty() {
            self.open_paths(dropped);
        }
    }

    fn tick_measure(&mut self, ctx: &egui::Context, ui_seconds: f64) {
        let gpu = self.gpu_active();
        let ready = !self.docs.is_empty() && self.fitter.is_some();
        let Some(m) = self.measure.as_mut() else {
            return;
        };
        ctx.request_repaint();
        if !ready || (m.with_batch && !m.batch_started) {
            // time from the first frame that shows an image (and, with a batch, runs it)
            m.start = Instant::now();
            m.cpu_start = process_cpu_seconds();
            if ready && m.with_batch {
                m.batch_started = true;
                self.estimate_all();
            }
            return;
        }
        let now = Instant::now();
        if let Some(last) = m.last {
            m.slowest = m.slowest.max((now - last).as_secs_f64());
        }
        m.last = Some(now);
        m.frames += 1;
        m.ui_time += ui_seconds;
        // drag the tilt slider: a new pose (render + score) every frame
        self.controls.euler[1] = (self.controls.euler[1] + 1.0) % 180.0;
        let elapsed = m.start.elapsed().as_secs_f64();
        if elapsed >= m.seconds {
            let batch = if m.with_batch {
                let fitted = self
                    .doc()
                    .map_or(0, |d| d.results.iter().filter(|r| r.is_some()).count());
                format!(
                    "; batch running: {} ({fitted} frames fitted)",
                    self.jobs.running_kind("Estimating")
                )
            } else {
                String::new()
            };
            let m = self.measure.take().expect("measuring");
            let process = match (m.cpu_start, process_cpu_seconds()) {
                (Some(a), Some(b)) => format!(
                    "; whole process (rasteriser included) {:.1} ms CPU/frame",
                    1e3 * (b - a) / m.frames as f64
                ),
                _ => String::new(),
            };
            println!(
                "fps {:.1} over {elapsed:.1} s ({} frames, slowest frame {:.1} ms); UI+render CPU time {:.2} ms/frame{process}; model view on {}{batch}",
                m.frames as f64 / elapsed,
                m.frames,
                1e3 * m.slowest,
                1e3 * m.ui_time / m.frames as f64,
                if gpu { "the GPU (wgpu)" } else { "the CPU" }
            );
            self.jobs.cancel_all();
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }
}

impl eframe::App for PoseScopeApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let t0 = Instant::now();
        let ctx = ui.ctx().clone();
        if ctx.tessellation_options(|o| o.feathering) == self.lean {
            apply_lean_drawing(&ctx, self.lean);
        }
        if self.paint_background {
            let fill = ctx.global_style().visuals.panel_fill;
            ui.painter().rect_filled(ui.max_rect(), 0.0, fill);
        }
        self.handle_messages();
        self.handle_drops(&ctx);
        self.handle_keys(&ctx);
        self.auto_estimate();
        self.update_render();
        self.panels(ui, &ctx, frame);
        // the FPS measurement stands for a slider drag: no sweeps meanwhile
        let dragging = ctx.dragged_id().is_some() || self.measure.is_some();
        self.update_sweeps(dragging);
        if self.jobs.busy() {
            // progress bars advance without input
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
        self.tick_measure(&ctx, t0.elapsed().as_secs_f64());
    }

    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        // the panels are drawn unfilled on top of this (see `panels`)
        visuals.panel_fill.to_normalized_gamma_f32()
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, SETTINGS_KEY, &self.settings);
    }
}

/// Lean drawing for software rasterisers, where each small triangle costs a
/// few microseconds of CPU (llvmpipe shades whole 4×4 blocks and sets up every
/// triangle): no feathered edges and square widget corners (a rounded slider
/// handle is over a hundred triangles, a square one two). Off restores egui's look.
fn apply_lean_drawing(ctx: &egui::Context, lean: bool) {
    ctx.tessellation_options_mut(|o| o.feathering = !lean);
    ctx.all_styles_mut(|style| {
        let defaults = if style.visuals.dark_mode {
            egui::Visuals::dark()
        } else {
            egui::Visuals::light()
        };
        let v = &mut style.visuals;
        let w = &mut v.widgets;
        for (state, default) in [
            (&mut w.noninteractive, defaults.widgets.noninteractive),
            (&mut w.inactive, defaults.widgets.inactive),
            (&mut w.hovered, defaults.widgets.hovered),
            (&mut w.active, defaults.widgets.active),
            (&mut w.open, defaults.widgets.open),
        ] {
            state.corner_radius = if lean {
                egui::CornerRadius::ZERO
            } else {
                default.corner_radius
            };
        }
        if lean {
            v.menu_corner_radius = egui::CornerRadius::ZERO;
            v.window_corner_radius = egui::CornerRadius::ZERO;
        } else {
            v.menu_corner_radius = defaults.menu_corner_radius;
            v.window_corner_radius = defaults.window_corner_radius;
        }
    });
}

/// Scores of each Euler angle swept over −180…180° with the others fixed.
pub fn sweep_scores(frame: &Frame, model: &FitModel, at: &PoseControls) -> [Vec<[f64; 2]>; 3] {
    use rayon::prelude::*;
    [0usize, 1, 2].map(|k| {
        (0..SWEEP_STEPS)
            .into_par_iter()
            .map(|i| {
                let angle = -180.0 + 360.0 * i as f64 / (SWEEP_STEPS - 1) as f64;
                let mut c = *at;
                c.euler[k] = angle;
                [
                    angle,
                    score(&frame.data, frame.width, frame.height, model, &c.state()),
                ]
            })
            .collect()
    })
}

/// The bundled sample stack.
pub fn sample_stack() -> Option<PathBuf> {
    crate::estimate::pipeline::find_asset(Path::new("assets/sample/stack.tif"))
}

/// Why the viewer cannot open a window here, if it cannot.
pub fn display_problem() -> Option<String> {
    if cfg!(target_os = "linux")
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        return Some(
            "no display found (DISPLAY and WAYLAND_DISPLAY are unset): the viewer needs a desktop; \
             headless, use `posescope fit`, `posescope export`, `posescope info` (see `posescope --help`)"
                .into(),
        );
    }
    None
}

/// The initial window size: 1440×900, or `POSESCOPE_WINDOW=WxH` (for measurements).
fn window_size() -> [f32; 2] {
    std::env::var("POSESCOPE_WINDOW")
        .ok()
        .and_then(|v| {
            let (w, h) = v.split_once('x')?;
            Some([w.trim().parse().ok()?, h.trim().parse().ok()?])
        })
        .filter(|[w, h]: &[f32; 2]| *w >= 320.0 && *h >= 240.0)
        .unwrap_or([1440.0, 900.0])
}

/// The window surface: vsync and one frame in flight, unless
/// `POSESCOPE_PRESENT` says `novsync` or `lowlatency` (for measurements).
fn surface_config() -> egui_wgpu::SurfaceConfig {
    match std::env::var("POSESCOPE_PRESENT").as_deref() {
        Ok("novsync") => egui_wgpu::SurfaceConfig {
            present_mode: wgpu::PresentMode::AutoNoVsync,
            desired_maximum_frame_latency: Some(2),
        },
        Ok("lowlatency") => egui_wgpu::SurfaceConfig::LOW_LATENCY,
        // two frames in flight: the UI thread builds the next frame while a
        // software rasteriser still draws this one (lavapipe: 38 → 41–46 fps)
        _ => egui_wgpu::SurfaceConfig::HIGH_THROUGHPUT,
    }
}

/// Opens the viewer window on `files` (the bundled sample when empty).
/// `measure_fps`: animate the pose for that many seconds, print the frame rate and
/// exit; `with_batch`: run Estimate all meanwhile.
pub fn run(files: Vec<PathBuf>, measure_fps: Option<f64>, with_batch: bool) -> anyhow::Result<()> {
    if let Some(p) = display_problem() {
        anyhow::bail!(p);
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("PoseScope")
            .with_inner_size(window_size())
            .with_min_inner_size([640.0, 480.0])
            .with_drag_and_drop(true),
        renderer: eframe::Renderer::Wgpu,
        // dithering costs per pixel on software rasterisers and is invisible on this dark UI
        dithering: false,
        wgpu_options: egui_wgpu::WgpuConfiguration {
            wgpu_setup: gpu_view::wgpu_setup(),
            surface: surface_config(),
            ..Default::default()
        },
        ..Default::default()
    };
    eframe::run_native(
        "PoseScope",
        options,
        Box::new(move |cc| {
            let mut app = PoseScopeApp::new(cc, files);
            if let Some(s) = measure_fps {
                app.measure_fps(s, with_batch);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("could not open the viewer window: {e}"))
}

/// Lets proportional text fall back to egui's monospace font (Hack), which
/// has the arrows and triangles the proportional font lacks.
fn add_fallback_fonts(ctx: &egui::Context) {
    let mut fonts = egui::FontDefinitions::default();
    let mono = fonts
        .families
        .get(&egui::FontFamily::Monospace)
        .and_then(|v| v.first().cloned());
    if let Some(mono) = mono {
        let prop = fonts
            .families
            .entry(egui::FontFamily::Proportional)
            .or_default();
        if !prop.contains(&mono) {
            prop.push(mono);
        }
    }
    ctx.set_fonts(fonts);
}

/// Colour of a score: red (poor) to green (good).
pub(crate) fn score_colour(s: f64) -> Color32 {
    if !s.is_finite() {
        return Color32::GRAY;
    }
    let t = ((s - 0.5) / 0.45).clamp(0.0, 1.0) as f32;
    Color32::from_rgb(
        (230.0 * (1.0 - t) + 60.0 * t) as u8,
        (80.0 + 140.0 * t) as u8,
        70,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_fill_missing_fields() {
        let s = Settings {
            lut: Lut::Magma,
            layout: Layout::Residual,
            recent: vec![PathBuf::from("/data/a.tif")],
            export_zoom: 3,
            ..Settings::default()
        };
        let text = serde_json::to_string(&s).unwrap();
        let back: Settings = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        // settings saved by an older version (fewer fields) still load
        let old: Settings = serde_json::from_str(r#"{"lut":"Hot"}"#).unwrap();
        assert_eq!(old.lut, Lut::Hot);
        assert_eq!(old.export_zoom, 4);
        assert!(old.auto_estimate);
    }

    #[test]
    fn controls_round_trip_through_the_fitted_state() {
        let c = PoseControls {
            euler: [30.0, 60.0, -20.0],
            shift: [1.5, -2.0],
            sigma: 1.8,
            scale: 1.2,
            tube_px: 6.0,
        };
        let back = PoseControls::from_state(&c.state());
        for k in 0..3 {
            assert!((back.euler[k] - c.euler[k]).abs() < 1e-9, "{back:?}");
        }
        assert!((back.tube_px - 6.0).abs() < 1e-12 && back.shift == c.shift);
    }

    #[test]
    fn sweeps_peak_at_the_true_tilt_and_are_flat_in_psi() {
        let model = FitModel::torus(20.0, 5.0, 1.6);
        let truth = PoseControls {
            euler: [40.0, 60.0, 0.0],
            ..PoseControls::default()
        };
        let data = render_state(&model, &truth.state(), 96, 96, &mut Scratch::default());
        let frame = Frame {
            width: 96,
            height: 96,
            data,
        };
        let [rot, tilt, psi] = sweep_scores(&frame, &model, &truth);
        let best = |c: &Vec<[f64; 2]>| {
            c.iter()
                .cloned()
                .fold([0.0, -2.0], |a, p| if p[1] > a[1] { p } else { a })
        };
        assert!(
            (best(&tilt)[0] - 60.0).abs() <= 5.0 || (best(&tilt)[0] + 60.0).abs() <= 5.0,
            "{:?}",
            best(&tilt)
        );
        assert!(best(&rot)[1] > 0.99);
        let (lo, hi) = psi
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), p| (l.min(p[1]), h.max(p[1])));
        assert!(
            hi - lo < 1e-3,
            "psi (the invisible spin) changes the score: {lo}..{hi}"
        );
        assert_eq!(rot.len(), SWEEP_STEPS);
    }
}
