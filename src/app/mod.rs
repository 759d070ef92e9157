//! The viewer: an eframe/egui application over the library.
//!
//! Owns the UI and nothing below it. The parts, as in napari (layer model,
//! controls and visual apart) and rerun (view state apart from UI code):
//!
//! - [`state`]: the session as plain data (documents with their results, the
//!   frame, the pose sliders, contrast, notices) and the persisted settings;
//! - [`live`]: what the session derives — the display model, its render at the
//!   slider pose and the score, the sweeps — rendered once per change;
//! - [`actions`]: what the user asked for; panels push actions and the app
//!   applies them once per frame;
//! - [`jobs`]: background work (load, model, estimate via the library's batch
//!   fit, refine, sweeps) on threads with progress and cancel;
//! - `panels`, `controls`, `explorer`, `orientations_panel`: the widgets, which
//!   read state and push actions;
//! - [`view`], [`pixel_view`], [`gpu_view`], [`orbit`], `images`: drawing
//!   the raw frame and the model (WGSL shaders of [`crate::render::gpu`], or
//!   the CPU renderer);
//! - [`particles`], [`field_view`], `field_gpu`, `picks_panel`: field
//!   documents (a localisation table, or a whole-field image through its mip
//!   pyramid) whose frames are their picked particles, the field page and the
//!   Picks tab;
//! - [`error`]: the typed errors that reach the notice bar;
//! - `window`: opening the native window (eframe options, fonts).
//!
//! Estimation runs the same [`Fitter`] and batch loop as `posescope fit`,
//! scores come from [`crate::render::scene`], and Ctrl+E writes through
//! [`crate::export::frames`] like `posescope export`.

pub mod actions;
pub mod autosave;
mod controls;
pub mod error;
mod explorer;
mod field_gpu;
pub mod field_view;
pub mod frame_store;
pub mod gpu_view;
pub mod history;
mod images;
pub mod jobs;
mod learn_panel;
pub mod learning;
pub mod live;
mod measure;
pub mod orbit;
mod orientations_panel;
mod panels;
pub mod particles;
pub mod pick_store;
mod picks_panel;
pub mod pixel_view;
pub mod state;
pub mod view;
mod window;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use egui::TextureHandle;

use crate::estimate::pick::Pick;
use crate::estimate::pose::fit::FitOptions;
use crate::estimate::pose::pipeline::{find_asset, Fitter};
use crate::estimate::pose::results::FrameResult;
use crate::render::display::{self, Contrast};
use actions::Action;
use gpu_view::GpuModelView;
use jobs::{JobKind, Jobs, Message, Note};
use live::LiveView;
pub use live::{sweep_scores, Sweeps, SWEEP_STEPS};
pub use measure::MeasureMode;
use state::DocId;
pub use state::{Layout, Notice, PoseControls, Session, Settings};
use view::ViewTransform;
pub use window::{display_problem, run};

const SETTINGS_KEY: &str = "posescope-settings";

/// Which page the right-hand panel shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RightTab {
    /// Sweeps and equivalent poses.
    #[default]
    Symmetry,
    /// The per-frame results table.
    Results,
    /// A table's picks.
    Picks,
    /// Structure learning.
    Learn,
}

/// The UI's own state: view transforms, tabs, textures and GPU views, and
/// caches of what is drawn. None of it is part of the session.
#[derive(Default)]
struct UiState {
    view: ViewTransform,
    orbit: orbit::Orbit,
    right_tab: RightTab,
    /// Pixel under the cursor and its value.
    hover: Option<(usize, usize, f32)>,
    /// The model being edited in the Model section (applied with "Apply model").
    model_edit: crate::estimate::pose::pipeline::ModelSpec,
    /// The frame auto-estimate last asked for (once per frame shown).
    auto_requested: Option<(DocId, usize)>,
    /// The frame on screen and since when.
    shown: Option<((DocId, usize), Instant)>,
    /// Auto-estimate will fit the frame on screen after this much longer.
    auto_pending: Option<std::time::Duration>,
    /// Fewer filled pixels (software rasterisers).
    lean: bool,
    /// The model view uses the WGSL shader (when a GPU view exists).
    gpu_model: bool,
    /// The image views draw through PoseScope's own wgpu pass.
    pixel_views: bool,
    /// Paint the window background in the UI pass (hosts that clear otherwise).
    paint_background: bool,
    gpu: Option<GpuModelView>,
    gpu_error: Option<String>,
    raw_tex: Option<TextureHandle>,
    cpu_model_tex: Option<TextureHandle>,
    /// The raw frame's colours when drawn by the pixel views, with their generation.
    raw_pixels: Option<(Arc<[u8]>, u64)>,
    /// Bumped whenever CPU-made pixels change (the GPU re-uploads them).
    pixel_generation: u64,
    raw_key: Option<(DocId, usize, [u32; 2], display::Lut)>,
    auto_contrast_cache: std::cell::Cell<Option<((DocId, usize), Contrast)>>,
    histogram: Option<((DocId, usize), Arc<display::Histogram>)>,
    /// The field of a table document.
    field: field_view::FieldView,
    /// A table document shows its field (true) or the particle (false).
    show_field: bool,
}

/// The PoseScope viewer.
pub struct PoseScopeApp {
    settings: Settings,
    session: Session,
    live: LiveView,
    fitter: Option<Arc<Fitter>>,
    jobs: Jobs,
    ui: UiState,
    measure: Option<measure::MeasureFps>,
    autosaver: autosave::Autosaver,
    learning: learning::Learning,
}

impl PoseScopeApp {
    /// Creates the app, restores settings and starts loading `files` (the
    /// bundled sample when empty) and the model.
    pub fn new(cc: &eframe::CreationContext<'_>, files: Vec<PathBuf>) -> Self {
        let settings: Settings = cc
            .storage
            .and_then(|s| eframe::get_value(s, SETTINGS_KEY))
            .unwrap_or_default();
        window::add_fallback_fonts(&cc.egui_ctx);
        let ctx = cc.egui_ctx.clone();
        let mut app = Self::with_settings(settings, Arc::new(move || ctx.request_repaint()));
        if let Some(rs) = cc.wgpu_render_state.as_ref() {
            pixel_view::PixelViews::install(rs);
            app.ui.pixel_views = true;
            let software = rs.adapter.get_info().device_type == wgpu::DeviceType::Cpu;
            app.ui.lean = software;
            app.ui.gpu_model = !software;
        }
        // POSESCOPE_CPU_VIEW=1 draws the model view on the CPU (a fallback for broken drivers)
        if std::env::var_os("POSESCOPE_CPU_VIEW").is_none() {
            if let Some(rs) = cc.wgpu_render_state.as_ref() {
                app.ui.gpu = Some(GpuModelView::new(rs));
            }
        }
        app.ui.field.gpu = cc
            .wgpu_render_state
            .as_ref()
            .and_then(field_gpu::FieldGpu::new);
        let files = if files.is_empty() {
            sample_stack().into_iter().collect()
        } else {
            files
        };
        app.open_paths(files);
        app
    }

    fn with_settings(settings: Settings, wake: Arc<dyn Fn() + Send + Sync>) -> Self {
        let mut jobs = Jobs::new(wake);
        jobs.build_fitter(settings.model.clone(), FitOptions::default());
        let session = Session {
            controls: PoseControls {
                tube_px: settings.model.tube_px(),
                ..PoseControls::default()
            },
            ..Session::default()
        };
        let ui = UiState {
            model_edit: settings.model.clone(),
            gpu_model: true,
            ..UiState::default()
        };
        let mut app = Self {
            settings,
            session,
            live: LiveView::default(),
            fitter: None,
            jobs,
            ui,
            measure: None,
            autosaver: autosave::Autosaver::default(),
            learning: learning::Learning::default(),
        };
        app.update_model();
        app
    }

    /// Runs the FPS measurement: the tilt slider moves every frame for
    /// `seconds`, then the app prints the rate and closes.
    /// With `with_batch`, Estimate all runs in the background meanwhile;
    /// `mode` says what moves every UI frame.
    pub fn measure_fps(&mut self, seconds: f64, with_batch: bool, mode: MeasureMode) {
        self.measure = Some(measure::MeasureFps::new(seconds, with_batch, mode));
    }

    // ---- public state, for tests and embedding ------------------------------

    /// The session: documents, frame, sliders, notices.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The slider values.
    pub fn controls(&self) -> PoseControls {
        self.session.controls
    }

    /// Sets the slider values.
    pub fn set_controls(&mut self, c: PoseControls) {
        self.apply(vec![Action::SetControls(c)]);
    }

    /// The live NCC score of the current pose against the current frame.
    pub fn score(&self) -> f64 {
        self.live.score
    }

    /// Renders of the model made so far (one per pose change).
    pub fn renders(&self) -> u64 {
        self.live.renders
    }

    /// Index of the current frame.
    pub fn frame_index(&self) -> usize {
        self.session.frame
    }

    /// Frames in the current document (0 when none is open).
    pub fn frame_count(&self) -> usize {
        self.session.frame_count()
    }

    /// Path of the current document.
    pub fn current_path(&self) -> Option<&Path> {
        self.session.doc().map(|d| d.path.as_path())
    }

    /// Open documents.
    pub fn document_count(&self) -> usize {
        self.session.docs.len()
    }

    /// True while background work runs (loading, model, estimation, sweeps)
    /// or is about to (a frame waiting to be auto-estimated).
    pub fn busy(&self) -> bool {
        self.jobs.busy() || self.ui.auto_pending.is_some()
    }

    /// True once the network/model for fitting is loaded.
    pub fn fitter_ready(&self) -> bool {
        self.fitter.is_some()
    }

    /// Notices on screen.
    pub fn notices(&self) -> &[Notice] {
        &self.session.notices
    }

    /// Settings (as they will be saved).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Mutable settings (tests set the export folder here).
    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    /// The Learn tab's state (its settings are what the tab edits).
    pub fn learning_mut(&mut self) -> &mut learning::Learning {
        &mut self.learning
    }

    /// The fit result of a frame of the current document.
    pub fn result(&self, frame: usize) -> Option<&FrameResult> {
        self.session.result(frame)
    }

    /// Renders the fields of tables on the GPU of `rs` whatever the adapter
    /// (a software one included, where the CPU is otherwise used).
    pub fn use_field_gpu(&mut self, rs: &egui_wgpu::RenderState) {
        self.ui.field.gpu = Some(field_gpu::FieldGpu::on(rs));
    }

    /// Table field renders made on the GPU so far.
    pub fn field_gpu_renders(&self) -> u64 {
        self.ui
            .field
            .gpu
            .as_ref()
            .map_or(0, field_gpu::FieldGpu::renders)
    }

    /// Whether a table document shows its field (else its particle).
    pub fn showing_field(&self) -> bool {
        self.ui.show_field
    }

    /// Renders of the field view so far.
    pub fn field_renders(&self) -> u64 {
        self.ui.field.renders
    }

    /// Where pick `k` of the current table is drawn in the field view
    /// (screen points), as of the last frame.
    pub fn pick_on_screen(&self, k: usize) -> Option<egui::Pos2> {
        let e = self.session.doc()?.particles.as_ref()?.picks.get(k)?;
        self.ui.field.screen_pos(e.pick.x_nm, e.pick.y_nm)
    }

    /// Pick `k` of the current table: its position in the field, nm.
    pub fn pick_nm(&self, k: usize) -> Option<[f64; 2]> {
        let e = self.session.doc()?.particles.as_ref()?.picks.get(k)?;
        Some([e.pick.x_nm, e.pick.y_nm])
    }

    /// The pick selected in the field, if any.
    pub fn selected_pick(&self) -> Option<usize> {
        self.ui.field.selected
    }

    /// Pick `k`'s review state in the current field.
    pub fn pick_state(&self, k: usize) -> Option<particles::PickState> {
        let e = self.session.doc()?.particles.as_ref()?.picks.get(k)?;
        Some(e.state)
    }

    /// The field position under a screen point, nm, as of the last frame.
    pub fn field_point_nm(&self, pos: egui::Pos2) -> Option<[f64; 2]> {
        self.ui.field.point_nm(pos)
    }

    /// The last PNG written by Export.
    pub fn last_export(&self) -> Option<&Path> {
        self.session.last_export.as_deref()
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
        self.ui.paint_background = on;
    }

    /// The GPU accumulation format (None: no GPU view).
    pub fn gpu_format(&self) -> Option<wgpu::TextureFormat> {
        self.ui.gpu.as_ref().map(|g| g.accumulation_format())
    }

    /// Whether lean drawing is on (View → Lean drawing; default: on for a
    /// software rasteriser).
    pub fn lean_drawing(&self) -> bool {
        self.ui.lean
    }

    /// Turns lean drawing on or off (View → Lean drawing).
    pub fn set_lean_drawing(&mut self, on: bool) {
        self.ui.lean = on;
    }

    /// Whether the image views draw through PoseScope's own wgpu pass.
    pub fn pixel_views(&self) -> bool {
        self.ui.pixel_views
    }

    /// The shown particle's localisations with a z, about its centre at
    /// `shift` (px), for the 3D view ([`particles::ParticleDoc::locs_3d`]).
    pub fn particle_locs_3d(&self, shift: [f64; 2]) -> Option<Vec<[f32; 3]>> {
        let doc = self.session.doc()?;
        doc.particles.as_ref()?.locs_3d(self.session.frame, shift)
    }

    /// Whether the model view is drawn by the GPU (false: the CPU renderer,
    /// by choice or as a fallback).
    pub fn gpu_active(&self) -> bool {
        self.ui.gpu.is_some() && self.ui.gpu_error.is_none() && self.ui.gpu_model
    }

    /// Whether the GPU model view is chosen (View → GPU model view; default:
    /// on, except on a software rasteriser).
    pub fn gpu_model_view(&self) -> bool {
        self.ui.gpu_model
    }

    /// Chooses the GPU (true) or the CPU renderer for the model view.
    pub fn set_gpu_model_view(&mut self, on: bool) {
        self.ui.gpu_model = on;
    }

    // ---- the frame loop -------------------------------------------------------

    /// The display model follows the model spec (errors become a notice).
    fn update_model(&mut self) {
        if let Err(e) = self.live.set_model(&self.settings.model) {
            self.session.error(format!("model: {e}"));
        }
    }

    /// The detector's candidates for a field image arrived: they are added
    /// (unless the document was closed meanwhile), then its saved results
    /// restored when its picks are the detector's alone.
    fn field_picked(&mut self, id: DocId, picks: &[Pick], note: Option<String>) {
        let tube = self.settings.model.tube_px();
        let autosave = self.settings.autosave;
        let Some(doc) = self.session.doc_by_id_mut(id) else {
            return;
        };
        let by_hand = doc.frames.len();
        if particles::add_candidates(doc, picks).is_none() {
            return;
        }
        let restored = (autosave && by_hand == 0)
            .then(|| autosave::restore_into(doc, tube))
            .flatten();
        let path = doc.path.clone();
        // counted after a restore, which may have replaced the detector's picks
        let what = doc.particles.as_ref().map(|p| {
            let candidates = p.indices(particles::PickState::Candidate).len();
            (p.describe(), candidates)
        });
        if let Some(text) = restored {
            self.session.info(text);
            // the field on screen: its frames and the frame's fit are new
            if self.session.doc().is_some_and(|d| d.id == id) {
                self.reshow_frame();
            }
        }
        if let Some(text) = what.and_then(|(w, n)| candidates_notice(&w, n)) {
            self.session.info(text);
        }
        if let Some(note) = note {
            self.session.info(format!("{}: {note}", path.display()));
        }
    }

    /// Takes in what the jobs sent.
    fn handle_messages(&mut self) {
        for msg in self.jobs.poll() {
            match msg {
                Message::Loaded(Ok(mut doc)) => {
                    // a field image's saved results wait for its picks
                    let picking = doc.particles.as_ref().is_some_and(|p| p.picking);
                    if self.settings.autosave && !picking {
                        let tube = self.settings.model.tube_px();
                        if let Some(text) = autosave::restore_into(&mut doc, tube) {
                            self.session.info(text);
                        }
                    }
                    if !doc.info.warnings.is_empty() {
                        let w = doc.info.warnings.join("; ");
                        self.session.info(format!("{}: {w}", doc.path.display()));
                    }
                    self.settings.remember_recent(&doc.path);
                    // a table's particles are fitted with the model in particle-frame pixels
                    let table_spec = doc.particles.as_ref().map(|p| {
                        let n = p.indices(particles::PickState::Candidate).len();
                        (p.spec_px(), n, p.describe())
                    });
                    self.session.add_document(doc);
                    self.ui.view.fit_pending = true;
                    self.ui.field.fit_pending = true;
                    self.ui.field.selected = None;
                    self.ui.show_field = table_spec.is_some();
                    if let Some((spec, picks, what)) = table_spec {
                        if let Some(text) = candidates_notice(&what, picks).filter(|_| !picking) {
                            self.session.info(text);
                        }
                        self.ui.right_tab = RightTab::Picks;
                        self.ui.model_edit = spec.clone();
                        self.set_model(spec);
                    }
                }
                Message::Picked { doc, picks, note } => self.field_picked(doc, &picks, note),
                Message::ShowDocument(id) => {
                    if let Some(i) = self.session.docs.iter().position(|d| d.id == id) {
                        self.session.switch_document(i);
                        self.ui.view.fit_pending = true;
                        self.ui.field.fit_pending = true;
                        self.ui.show_field = self.session.docs[i].particles.is_some();
                    }
                }
                Message::Loaded(Err(e)) => {
                    let hint = matches!(
                        e,
                        error::AppError::Read(crate::io::IoError::NeedsPixelSize { .. })
                    );
                    self.session.error(e);
                    if hint {
                        self.session.info(
                            "in the viewer: give the camera pixel size under Picks → Opening tables, then open the file again",
                        );
                    }
                }
                Message::FitterReady(spec, result) => {
                    if spec == self.settings.model {
                        match result {
                            Ok(f) => self.fitter = Some(f),
                            Err(e) => self.session.error(e),
                        }
                    }
                }
                Message::Fitted {
                    doc,
                    frame,
                    result,
                    apply,
                } => self.session.record_result(doc, frame, result, apply),
                Message::Swept(s) => self.live.sweeps = Some(s),
                Message::Resized { doc, setup } => {
                    let table = self.session.docs.iter_mut().find(|d| d.id == doc);
                    if let Some(p) = table.and_then(|d| d.particles.as_mut()) {
                        p.set_setup(setup);
                    }
                }
                Message::LearnProgress(doc, p) => {
                    if self.learning.doc == Some(doc) {
                        self.learning.progress = p;
                    }
                }
                Message::Learned(doc, learned) => {
                    if self.learning.doc == Some(doc) {
                        self.learning.running = false;
                        self.learning
                            .paused
                            .store(false, std::sync::atomic::Ordering::Relaxed);
                        if let Some(l) = learned {
                            self.session.info(format!(
                                "learned a {}-point structure from {} frames: press \"Use as model\" in the Learn tab",
                                l.model.len(),
                                self.learning.progress.frames
                            ));
                            self.learning.learned = Some(*l);
                        }
                    }
                }
                Message::Finished { note, .. } => {
                    // a job ended: save what it produced now, not after the debounce
                    self.autosave(true);
                    match note {
                        Some(Note::Info(n)) => self.session.info(n),
                        Some(Note::Error(e)) => self.session.error(e),
                        None => {}
                    }
                }
            }
        }
    }

    /// Saves unsaved results (debounced unless `force`); failures become notices.
    fn autosave(&mut self, force: bool) {
        if !self.settings.autosave {
            return;
        }
        for e in self.autosaver.tick(&mut self.session.docs, force) {
            self.session
                .error(format!("autosaving results failed: {e}"));
        }
    }

    /// Starts the symmetry-explorer sweeps when the pose settled somewhere new.
    fn update_sweeps(&mut self, dragging: bool) {
        if dragging || self.jobs.running(JobKind::Sweep) || self.live.sweeps_current(&self.session)
        {
            return;
        }
        let (Some(key), Some(doc)) = (self.session.frame_key(), self.session.doc()) else {
            return;
        };
        let frames = doc.frames.clone();
        self.jobs
            .sweep(key, frames, self.live.model.clone(), self.session.controls);
    }

    /// Keyboard shortcuts, as actions.
    fn keys(&self, ctx: &egui::Context) -> Vec<Action> {
        use egui::{Key, KeyboardShortcut, Modifiers};
        let mut out = Vec::new();
        for (key, action) in [
            (Key::O, Action::OpenDialog),
            (Key::E, Action::ExportCurrent),
            (Key::S, Action::SaveResultsDialog),
        ] {
            let shortcut = KeyboardShortcut::new(Modifiers::COMMAND, key);
            if ctx.input_mut(|i| i.consume_shortcut(&shortcut)) {
                out.push(action);
            }
        }
        if ctx.egui_wants_keyboard_input() {
            // a text field has its own Ctrl+Z
            return out;
        }
        let undo = KeyboardShortcut::new(Modifiers::COMMAND, Key::Z);
        if ctx.input_mut(|i| i.consume_shortcut(&undo)) {
            out.push(Action::Undo);
        }
        let (left, right, home) = ctx.input(|i| {
            (
                i.key_pressed(Key::ArrowLeft),
                i.key_pressed(Key::ArrowRight),
                i.key_pressed(Key::Home),
            )
        });
        let k = self.session.frame;
        if left && k > 0 {
            out.push(Action::GoToFrame(k - 1));
        }
        if right {
            out.push(Action::GoToFrame(k + 1));
        }
        if home {
            out.push(Action::FitView);
        }
        let on_field = self.session.doc().is_some_and(|d| d.particles.is_some());
        if on_field && ctx.input(|i| i.key_pressed(Key::A)) {
            out.push(Action::AcceptSelectedPick);
        }
        if on_field && ctx.input(|i| i.key_pressed(Key::N)) {
            out.push(Action::NextCandidate);
        }
        if ctx.input(|i| i.key_pressed(Key::Delete) || i.key_pressed(Key::Backspace)) {
            out.push(Action::RemoveSelectedPick);
        }
        out
    }

    /// Files dropped on the window, as an action.
    fn drops(&self, ctx: &egui::Context) -> Option<Action> {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        (!dropped.is_empty()).then_some(Action::Open(dropped))
    }
}

impl eframe::App for PoseScopeApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let t0 = Instant::now();
        let ctx = ui.ctx().clone();
        if ctx.tessellation_options(|o| o.feathering) == self.ui.lean {
            apply_lean_drawing(&ctx, self.ui.lean);
        }
        if self.ui.paint_background {
            let fill = ctx.global_style().visuals.panel_fill;
            ui.painter().rect_filled(ui.max_rect(), 0.0, fill);
        }
        self.handle_messages();
        // input first, so this frame draws what the keys asked for
        let mut actions = self.keys(&ctx);
        actions.extend(self.drops(&ctx));
        actions.extend(self.auto_estimate());
        if let Some(wait) = self.ui.auto_pending {
            ctx.request_repaint_after(wait);
        }
        self.apply(actions);
        self.live.update(&self.session);
        // the panels read the state and collect what the user does
        let mut actions = Vec::new();
        self.panels(ui, &ctx, frame, &mut actions);
        // the FPS measurement stands for a slider drag: no sweeps meanwhile
        let dragging = ctx.dragged_id().is_some() || self.measure.is_some();
        actions.extend(self.tick_measure(&ctx, t0.elapsed().as_secs_f64()));
        self.apply(actions);
        if self.live.update(&self.session) {
            // a pose changed by the panels: draw its render and score next
            ctx.request_repaint();
        }
        self.update_sweeps(dragging);
        self.autosave(false);
        if self.jobs.busy() {
            // progress bars advance without input
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        // the panels are drawn unfilled on top of this (see `panels`)
        visuals.panel_fill.to_normalized_gamma_f32()
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, SETTINGS_KEY, &self.settings);
        // eframe saves on exit and every 30 s: results too, and this one
        // waits (at most a few seconds) until they are on disk
        self.autosave(true);
        self.autosaver.flush(std::time::Duration::from_secs(5));
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

/// The bundled sample stack.
pub fn sample_stack() -> Option<PathBuf> {
    find_asset(Path::new("assets/sample/stack.tif"))
}

/// The notice for a field's candidates: "`what`, N candidate particles";
/// none when there are none (the load's own note says why, and what to do).
fn candidates_notice(what: &str, picks: usize) -> Option<String> {
    let what = what.split(" · ").next().unwrap_or_default();
    (picks > 0)
        .then(|| format!("{what}, {picks} candidate particles: review them in the Picks tab"))
}
