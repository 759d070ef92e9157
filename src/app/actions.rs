//! What the user asked for, as data. Panels, keys and drops only push
//! [`Action`]s; [`PoseScopeApp::apply`] carries them out once per UI frame,
//! after the panels are drawn, so one frame sees one consistent state and a
//! pose change renders once. Widgets that only change how things look (LUT,
//! layout, zoom) edit the settings directly; everything that starts work or
//! changes the session goes through here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a frame stays on screen before "Estimate each new frame" fits it.
pub const AUTO_ESTIMATE_AFTER: Duration = Duration::from_millis(250);

use super::particles::{add_pick, move_pick, PickState};
use super::state::PoseControls;
use super::PoseScopeApp;
use crate::estimate::pose::fit::FitOptions;
use crate::estimate::pose::pipeline::{Fitter, ModelSpec};
use crate::export::annotate::write_png;
use crate::export::frames::{ExportLook, ExportTarget, FrameAt};
use crate::export::overview::{field_overview, ParticleNm};
use crate::io::write_pose_csv;
use crate::render::display::{auto_contrast, auto_contrast_fraction, Contrast};

/// One request from the user.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Load files (File → Open recent, drag-and-drop, the command line).
    Open(Vec<PathBuf>),
    /// Show the Open dialog (Ctrl+O).
    OpenDialog,
    /// Choose a folder to open (its images, as one sequence when they are one).
    OpenFolderDialog,
    /// Show a frame of the current document.
    GoToFrame(usize),
    /// Show another open document.
    SwitchDocument(usize),
    /// Move the pose sliders.
    SetControls(PoseControls),
    /// Move the pose sliders as the user did (`what`: "pose change", "jump
    /// to the mirror pose"), which Undo takes back.
    EditPose {
        controls: PoseControls,
        what: String,
    },
    /// Use another model (rebuilds the display model and the fitter).
    SetModel(ModelSpec),
    /// Network + refinement on the frame on screen.
    EstimateCurrent,
    /// Network + refinement on every frame of the document.
    EstimateAll,
    /// Fit a table's torus size to its accepted picks (and their poses).
    FitTorusSize,
    /// Refinement from the slider pose.
    RefineCurrent,
    /// Stop every running job.
    CancelJobs,
    /// Fixed raw-frame contrast limits.
    SetContrast(Contrast),
    /// Fiji-style auto-contrast; each press saturates more.
    AutoContrast,
    /// The frame's full range.
    ResetContrast,
    /// The annotated PNG of the frame on screen (Ctrl+E).
    ExportCurrent,
    /// The annotated PNG of every fitted frame.
    ExportAll,
    /// Choose the export folder.
    ChooseExportFolder,
    /// Save the results as a pose CSV (Ctrl+S).
    SaveResultsDialog,
    /// Ask where to save the orientation figure (Results → Orientations).
    SaveOrientationFigureDialog,
    /// Dismiss a notice.
    DismissNotice(usize),
    /// Fit the images to the window (Home, double-click).
    FitView,
    /// Open the current single image again as a field, its particles picked
    /// (for renders smaller than the size that opens as a field by itself).
    OpenAsField,
    /// Table documents: show the whole field (true) or the particle (false).
    ShowField(bool),
    /// Table documents: select a pick (its particle becomes the frame).
    SelectPick(usize),
    /// Table documents: accept every candidate pick.
    AcceptAllPicks,
    /// Table documents: set one pick's state.
    SetPickState(usize, PickState),
    /// Table documents: add a pick by hand at a field position, nm.
    AddPick([f64; 2]),
    /// Table documents: move a pick to a field position, nm (its fit is
    /// dropped: it was of the particle at the old place).
    MovePick(usize, [f64; 2]),
    /// Table documents: remove the selected pick (Delete).
    RemoveSelectedPick,
    /// Undo the newest edit of the field's picks (Ctrl+Z, Edit → Undo).
    Undo,
    /// Accepts the selected pick and selects the next candidate (key A).
    AcceptSelectedPick,
    /// Selects the next candidate without changing any (key N).
    NextCandidate,
    /// Table documents: save the picks as CSV.
    SavePicksDialog,
    /// Table documents: replace the picks with a picks CSV's.
    LoadPicksDialog,
    /// Table documents: write the overview PNG of the field with every
    /// fitted particle drawn in place.
    ExportOverview,
    /// Learn the structure from the current document's frames (a table's
    /// accepted picks, or all of them).
    StartLearning,
    /// Pause (true) or resume (false) the learning run.
    PauseLearning(bool),
    /// Stop the learning run.
    CancelLearning,
    /// Take the learned cloud as the model and its poses as the results.
    UseLearnedModel,
}

impl PoseScopeApp {
    /// Carries out the actions, in order.
    pub fn apply(&mut self, actions: Vec<Action>) {
        for a in actions {
            self.apply_one(a);
        }
    }

    fn apply_one(&mut self, action: Action) {
        match action {
            Action::Open(paths) => self.open_paths(paths),
            Action::OpenAsField => {
                if let Some(doc) = self.session.doc().filter(|d| d.particles.is_none()) {
                    self.jobs
                        .load_field(doc.path.clone(), self.settings.table_load());
                }
            }
            Action::OpenDialog => self.open_dialog(),
            Action::OpenFolderDialog => {
                let mut dialog = rfd::FileDialog::new().set_title("Open a folder of images");
                if let Some(dir) = &self.settings.last_dir {
                    dialog = dialog.set_directory(dir);
                }
                if let Some(dir) = self.run_dialog(|| dialog.pick_folder()) {
                    self.open_paths(vec![dir]);
                }
            }
            Action::GoToFrame(k) => self.session.go_to_frame(k),
            Action::SwitchDocument(i) => {
                self.session.switch_document(i);
                self.ui.view.fit_pending = true;
            }
            Action::SetControls(c) => self.session.controls = c,
            Action::EditPose { controls, what } => self.edit_pose(controls, &what),
            Action::SetModel(spec) => self.set_model(spec),
            Action::EstimateCurrent => self.estimate(false),
            Action::EstimateAll => self.estimate(true),
            Action::FitTorusSize => self.fit_torus_size(),
            Action::RefineCurrent => self.refine_current(),
            Action::CancelJobs => self.jobs.cancel_all(),
            Action::SetContrast(c) => self.session.display.contrast = Some(c),
            Action::AutoContrast => {
                self.session.display.auto_presses += 1;
                let frac = auto_contrast_fraction(self.session.display.auto_presses);
                if let Some(f) = self.session.current_frame() {
                    self.session.display.contrast = Some(auto_contrast(&f.data, frac));
                }
            }
            Action::ResetContrast => {
                self.session.display.auto_presses = 0;
                if let Some(f) = self.session.current_frame() {
                    self.session.display.contrast = Some(Contrast::full(&f.data));
                }
            }
            Action::ExportCurrent => self.export_current(),
            Action::ExportAll => self.export_all(),
            Action::ChooseExportFolder => {
                if let Some(d) = self.run_dialog(|| rfd::FileDialog::new().pick_folder()) {
                    self.settings.export_dir = Some(d);
                }
            }
            Action::SaveResultsDialog => self.save_results_dialog(),
            Action::SaveOrientationFigureDialog => {
                let dialog =
                    self.save_dialog("Save orientation figure", "PNG", "orientations", "png");
                if let Some(path) = dialog {
                    self.save_orientation_figure(&path);
                }
            }
            Action::FitView => {
                self.ui.view.fit_pending = true;
                self.ui.field.fit_pending = true;
            }
            Action::ShowField(on) => self.ui.show_field = on,
            Action::SelectPick(k) => self.select_pick(k),
            Action::AcceptAllPicks => {
                if let Some((p, history)) = self.session.edit_field() {
                    let before = p.indices(PickState::Candidate);
                    let n = p.accept_all();
                    let changed = before
                        .into_iter()
                        .map(|k| (k, PickState::Candidate))
                        .collect();
                    history.states(format!("accept all ({n} picks)"), changed);
                    self.session.info(format!("accepted {n} picks"));
                }
            }
            Action::SetPickState(k, state) => self.set_pick_state(k, state),
            Action::Undo => self.undo(),
            Action::AddPick([x, y]) => {
                let added = self
                    .session
                    .docs
                    .get_mut(self.session.current)
                    .and_then(|d| add_pick(d, x, y));
                match added {
                    Some(k) => {
                        self.session.info(format!("added pick {k}"));
                        self.select_pick(k);
                    }
                    None => self.session.error("a pick could not be added here"),
                }
            }
            Action::MovePick(k, [x, y]) => {
                let moved = self
                    .session
                    .docs
                    .get_mut(self.session.current)
                    .and_then(|d| move_pick(d, k, x, y));
                match moved {
                    Some(n_locs) => {
                        let table = self
                            .session
                            .doc()
                            .and_then(|d| d.particles.as_ref())
                            .is_some_and(|p| p.is_table());
                        self.session.info(if table {
                            format!("moved pick {k} ({n_locs} localisations)")
                        } else {
                            format!("moved pick {k}")
                        });
                        self.frame_content_changed(k);
                        self.select_pick(k);
                    }
                    None => self
                        .session
                        .error(format!("pick {k} could not be moved there")),
                }
            }
            Action::RemoveSelectedPick => self.review_selected(PickState::Removed),
            Action::AcceptSelectedPick => self.review_selected(PickState::Accepted),
            Action::NextCandidate => self.select_next_candidate(),
            Action::SavePicksDialog => self.save_picks_dialog(),
            Action::LoadPicksDialog => {
                let mut dialog = rfd::FileDialog::new()
                    .set_title("Load picks")
                    .add_filter("Picks CSV", &["csv"]);
                if let Some(dir) = self.session.doc().and_then(|d| d.path.parent()) {
                    dialog = dialog.set_directory(dir);
                }
                if let Some(path) = self.run_dialog(|| dialog.pick_file()) {
                    self.load_picks(&path);
                }
            }
            Action::ExportOverview => {
                self.export_overview();
            }
            Action::StartLearning => self.start_learning(),
            Action::PauseLearning(p) => self
                .learning
                .paused
                .store(p, std::sync::atomic::Ordering::Relaxed),
            Action::CancelLearning => self.jobs.cancel_kind(super::jobs::JobKind::Learn),
            Action::UseLearnedModel => self.use_learned_model(),
            Action::DismissNotice(i) => {
                if i < self.session.notices.len() {
                    self.session.notices.remove(i);
                }
            }
        }
    }

    /// Starts loading files; a folder stands for the images inside it (in
    /// natural order).
    pub fn open_paths(&mut self, paths: Vec<PathBuf>) {
        let paths = match crate::io::expand_paths(&paths) {
            Ok(p) => p,
            Err(e) => {
                self.session.error(e);
                return;
            }
        };
        for p in &paths {
            if let Some(dir) = p.parent() {
                self.settings.last_dir = Some(dir.to_path_buf());
            }
        }
        self.jobs.load(paths, self.settings.table_load());
    }

    /// Frame `k` of the current document now holds other pixels (a moved
    /// pick): everything made from the old ones is dropped.
    fn frame_content_changed(&mut self, k: usize) {
        if self.session.frame != k {
            return;
        }
        self.ui.raw_key = None;
        self.ui.histogram = None;
        self.ui.auto_contrast_cache.set(None);
        self.live.frame_changed();
    }

    /// Gives the selected pick `state` (Delete: removed, A: accepted) and
    /// moves on to the next candidate, so a field is reviewed from the
    /// keyboard.
    fn review_selected(&mut self, state: PickState) {
        let Some(k) = self.ui.field.selected.take() else {
            if state == PickState::Accepted {
                // nothing selected yet: A starts the review
                self.select_next_candidate();
            }
            return;
        };
        let field = self.session.doc().and_then(|d| d.particles.as_ref());
        if field.and_then(|p| p.picks.get(k)).is_none() {
            return;
        }
        // no notice: the pick's circle and its row show its new state, and a
        // review of thousands of candidates must not stack thousands of notes
        self.set_pick_state(k, state);
        self.ui.field.selected = Some(k);
        self.select_next_candidate();
    }

    /// Gives pick `k` `state`, recorded for Undo.
    fn set_pick_state(&mut self, k: usize, state: PickState) {
        let Some((p, history)) = self.session.edit_field() else {
            return;
        };
        let Some(e) = p.picks.get_mut(k) else {
            return;
        };
        let before = e.state;
        if before == state {
            return;
        }
        e.state = state;
        let verb = match state {
            PickState::Accepted => "accept",
            PickState::Removed => "remove",
            PickState::Candidate => "reset",
        };
        history.states(format!("{verb} pick {k}"), vec![(k, before)]);
    }

    /// Moves the sliders as the user did, recording where they were.
    fn edit_pose(&mut self, controls: PoseControls, what: &str) {
        let (before, frame) = (self.session.controls, self.session.frame);
        if controls != before {
            if let Some(doc) = self.session.docs.get_mut(self.session.current) {
                doc.history
                    .pose(what, frame, before, std::time::Instant::now());
            }
        }
        self.session.controls = controls;
    }

    /// Undoes the newest edit of the document (Ctrl+Z) and shows what it
    /// concerned: the pick, or the frame with its sliders as they were.
    fn undo(&mut self) {
        let Some(doc) = self.session.docs.get_mut(self.session.current) else {
            return;
        };
        if doc.history.next_is_fit() && self.jobs.fitting() {
            self.session
                .info("a fit is running: let it finish (or Cancel it) before undoing one");
            return;
        }
        let Some(undone) = super::history::undo(doc) else {
            self.session.info("nothing to undo");
            return;
        };
        self.session.info(format!("undid: {}", undone.what));
        if let Some((frame, controls)) = undone.pose {
            if frame != self.session.frame {
                self.session.go_to_frame(frame);
            }
            self.session.controls = controls;
            return;
        }
        match undone.pick {
            Some(k) => {
                self.frame_content_changed(k);
                self.show_pick(k);
            }
            None => {
                let n = self.session.doc().map_or(0, |d| d.frames.len());
                if self.ui.field.selected.is_some_and(|k| k >= n) {
                    self.ui.field.selected = None;
                }
                self.reshow_frame();
            }
        }
    }

    /// The frame on screen again, after its document's frames or fits
    /// changed underneath it: the sliders take its fit, and everything
    /// made from its old pixels is dropped.
    pub(super) fn reshow_frame(&mut self) {
        let n = self.session.doc().map_or(0, |d| d.frames.len());
        let k = self.session.frame.min(n.saturating_sub(1));
        self.session.go_to_frame(k);
        self.frame_content_changed(k);
    }

    /// Selects pick `k`, shows its particle and brings it into view in the
    /// field and in the Picks list.
    fn show_pick(&mut self, k: usize) {
        let Some(p) = self.session.doc().and_then(|d| d.particles.as_ref()) else {
            return;
        };
        let Some(e) = p.picks.get(k) else {
            return;
        };
        let [major, tube] = p.torus();
        let (x, y) = (e.pick.x_nm, e.pick.y_nm);
        self.select_pick(k);
        self.ui.field.focus_on(x, y, major + tube);
        self.ui.field.reveal_selected = true;
    }

    /// Selects the candidate after the selected pick (N); when none is
    /// left, says so and keeps the selection.
    fn select_next_candidate(&mut self) {
        let Some(p) = self.session.doc().and_then(|d| d.particles.as_ref()) else {
            return;
        };
        match p.next_candidate(self.ui.field.selected) {
            Some(k) => self.show_pick(k),
            None => self
                .session
                .info("no candidates left to review: every pick is accepted or removed"),
        }
    }

    /// Selects a pick of the table on screen: its particle becomes the
    /// frame, and the field centres on it.
    fn select_pick(&mut self, k: usize) {
        let Some(p) = self.session.doc().and_then(|d| d.particles.as_ref()) else {
            return;
        };
        if let Some(e) = p.picks.get(k) {
            self.ui.field.selected = Some(k);
            self.ui.field.centre_on(e.pick.x_nm, e.pick.y_nm);
            self.session.go_to_frame(k);
        }
    }

    fn save_picks_dialog(&mut self) {
        if let Some(path) = self.save_csv_dialog("Save picks", "Picks CSV", "picks") {
            self.save_picks(&path);
        }
    }

    /// The Save dialog for a CSV about the current document, suggesting
    /// `<stem>_<suffix>.csv` beside it; `None` when cancelled.
    fn save_csv_dialog(&mut self, title: &str, filter: &str, suffix: &str) -> Option<PathBuf> {
        self.save_dialog(title, filter, suffix, "csv")
    }

    /// The Save dialog for a file about the current document, suggesting
    /// `<stem>_<suffix>.<ext>` beside it; `None` when cancelled.
    pub(super) fn save_dialog(
        &mut self,
        title: &str,
        filter: &str,
        suffix: &str,
        ext: &str,
    ) -> Option<PathBuf> {
        let doc = self.session.doc()?;
        let stem = doc
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "results".into());
        let mut dialog = rfd::FileDialog::new()
            .set_title(title)
            .add_filter(filter, &[ext])
            .set_file_name(format!("{stem}_{suffix}.{ext}"));
        if let Some(dir) = doc.path.parent() {
            dialog = dialog.set_directory(dir);
        }
        self.run_dialog(|| dialog.save_file())
    }

    /// Replaces the picks of the table on screen with a picks CSV's (all
    /// accepted; results so far are dropped, as the particles changed).
    pub fn load_picks(&mut self, path: &Path) {
        let Some(doc) = self.session.docs.get_mut(self.session.current) else {
            return;
        };
        let Some(p) = doc.particles.as_mut() else {
            self.session.info(
                "picks are for fields (localisation tables, whole-field images): open one first",
            );
            return;
        };
        let picks = match p.read_picks(path) {
            Ok(p) => p,
            Err(e) => {
                self.session.error(format!("loading picks failed: {e}"));
                return;
            }
        };
        let before = (p.picks.clone(), doc.results.clone());
        let n = p.replace_picks(&picks);
        doc.history.replaced(before.0, before.1);
        doc.results = crate::estimate::pose::results::FitResults::new(n);
        super::particles::refresh_frames(doc);
        doc.unsaved = true;
        self.ui.field.selected = None;
        self.ui.field.fit_pending = true;
        self.session.go_to_frame(0);
        self.session
            .info(format!("loaded {n} picks from {}", path.display()));
    }

    /// Saves the picks of the table on screen as a picks CSV.
    pub fn save_picks(&mut self, path: &Path) {
        let Some(p) = self.session.doc().and_then(|d| d.particles.as_ref()) else {
            self.session
                .info("no field (localisation table or whole-field image) is open");
            return;
        };
        match p.save_picks(path) {
            Ok(n) => self
                .session
                .info(format!("saved {n} picks to {}", path.display())),
            Err(e) => self.session.error(format!("saving picks failed: {e}")),
        }
    }

    /// Writes `<stem>_overview.png` (export folder, or beside the table):
    /// the field with every fitted particle outlined in place and numbered.
    pub fn export_overview(&mut self) -> Option<PathBuf> {
        let (Some(dir), Some(doc)) = (self.export_dir(), self.session.doc()) else {
            return None;
        };
        let Some(p) = doc.particles.as_ref() else {
            self.session
                .info("the overview is for fields: localisation tables and whole-field images");
            return None;
        };
        let particles: Vec<ParticleNm> = p
            .picks
            .iter()
            .enumerate()
            .filter(|(_, e)| e.state != PickState::Removed)
            .map(|(k, e)| {
                let fit = doc.results.fit(k);
                let shift = fit.map_or([0.0; 2], |f| f.outcome.state.pose.shift);
                ParticleNm {
                    number: k,
                    centre_nm: [
                        e.pick.x_nm + shift[0] * p.frame_pixel(),
                        e.pick.y_nm + shift[1] * p.frame_pixel(),
                    ],
                    axis: fit.map(|f| f.outcome.state.pose.q.axis()),
                }
            })
            .collect();
        let stem = doc
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "table".into());
        let path = dir.join(format!("{stem}_overview.png"));
        let written = match p.overview_view() {
            Some((view, pixel_nm)) => field_overview(
                &p.source.render(&view),
                &view,
                p.torus()[0],
                &particles,
                self.settings.lut,
                pixel_nm,
            )
            .and_then(|img| write_png(&path, &img)),
            None => Err(crate::io::OutputError::Invalid(
                "the field is too large for an overview at 10 nm per pixel".into(),
            )),
        };
        match written {
            Ok(()) => {
                let fitted = particles.iter().filter(|p| p.axis.is_some()).count();
                self.session.info(format!(
                    "overview of {} picks ({fitted} fitted) → {}",
                    particles.len(),
                    path.display()
                ));
                self.session.last_export = Some(path.clone());
                Some(path)
            }
            Err(e) => {
                self.session.error(format!("overview export failed: {e}"));
                None
            }
        }
    }

    /// Applies a new model spec: rebuilds the display model and the fitter.
    pub(super) fn set_model(&mut self, spec: ModelSpec) {
        if spec == self.settings.model {
            return;
        }
        if spec.is_torus() {
            self.session.controls.tube_px = spec.tube_px();
            self.session.controls.scale = 1.0;
        }
        self.settings.model = spec.clone();
        self.fitter = None;
        self.jobs.build_fitter(spec, FitOptions::default());
        self.update_model();
    }

    fn open_dialog(&mut self) {
        let mut dialog = rfd::FileDialog::new()
            .set_title("Open images")
            .add_filter(
                "Images (TIFF, FITS, PNG)",
                &[
                    "tif", "tiff", "btf", "fits", "fit", "fts", "png", "jpg", "jpeg",
                ],
            )
            .add_filter(
                "Localisation tables (Picasso HDF5; ThunderSTORM, SMAP, Zeiss ZEN, plain CSV/TSV)",
                &["hdf5", "h5", "csv", "tsv", "txt"],
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
            self.session.error(
                "no file dialog could be shown (PoseScope asks the XDG desktop portal, then \
                 zenity; neither answered): drop files on the window, or give them on the \
                 command line",
            );
        }
        out
    }

    /// With auto-estimate on, the action that fits a frame the first time it
    /// is shown — once it has stayed on screen for [`AUTO_ESTIMATE_AFTER`], so
    /// holding → through a stack does not fit every frame it passes.
    pub(super) fn auto_estimate(&mut self) -> Option<Action> {
        self.ui.auto_pending = None;
        let key = self.session.frame_key()?;
        if self.ui.shown.is_none_or(|(k, _)| k != key) {
            self.ui.shown = Some((key, Instant::now()));
        }
        if !self.settings.auto_estimate || self.fitter.is_none() || self.jobs.fitting() {
            return None;
        }
        let unfitted = self.session.result(self.session.frame).is_none();
        if unfitted && self.ui.auto_requested != Some(key) {
            let shown_for = self.ui.shown.map_or(Duration::ZERO, |(_, t)| t.elapsed());
            if shown_for < AUTO_ESTIMATE_AFTER {
                self.ui.auto_pending = Some(AUTO_ESTIMATE_AFTER - shown_for);
                return None;
            }
            self.ui.auto_requested = Some(key);
            return Some(Action::EstimateCurrent);
        }
        None
    }

    /// The fitter, or a notice that it is still loading.
    fn ready_fitter(&mut self) -> Option<Arc<Fitter>> {
        if self.fitter.is_none() {
            self.session
                .info("the model is still loading; try again in a moment");
        }
        self.fitter.clone()
    }

    /// Estimates the frame on screen, or every frame of the document.
    fn estimate(&mut self, all: bool) {
        let Some(fitter) = self.ready_fitter() else {
            return;
        };
        let Some(doc) = self.session.doc() else {
            return;
        };
        let which = match (&doc.particles, all) {
            (Some(p), true) => {
                let accepted = p.accepted();
                if accepted.is_empty() {
                    self.session.info(
                        "no accepted picks: accept candidates in the Picks tab (Accept all), or click in the field to pick",
                    );
                    return;
                }
                accepted
            }
            (None, true) => (0..doc.frames.len()).collect(),
            (_, false) if doc.frames.is_empty() => return,
            (_, false) => vec![self.session.frame],
        };
        let locs = doc.particles.as_ref().and_then(|p| p.refiner());
        let (id, frames) = (doc.id, doc.frames.clone());
        let name = match which.as_slice() {
            [k] if !all => format!("estimate frame {k}"),
            _ => format!("estimate all ({} frames)", which.len()),
        };
        self.record_fits(name, &which);
        self.jobs.estimate(fitter, id, frames, which, !all, locs);
    }

    /// Fits the table's torus size to its accepted picks (their fits as
    /// starts); the picks' fits and the table's torus are replaced, so Undo
    /// can bring them back.
    fn fit_torus_size(&mut self) {
        if self.jobs.fitting() {
            self.session
                .info("a fit is running: fit the torus size when it has finished");
            return;
        }
        let Some(doc) = self.session.doc() else {
            return;
        };
        let Some((p, locs)) = doc.particles.as_ref().and_then(|p| Some((p, p.refiner()?))) else {
            self.session
                .info("the torus size is fitted to a localisation table's particles: open a table");
            return;
        };
        let which = p.accepted();
        let min = crate::estimate::torus_size::MIN_PARTICLES;
        if which.len() < min {
            self.session.info(format!(
                "{} accepted picks: fitting the torus size needs at least {min} (Accept all, then Fit accepted)",
                which.len()
            ));
            return;
        }
        let results: Vec<_> = which
            .iter()
            .map(|&k| {
                doc.results
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| Err("not fitted yet".into()))
            })
            .collect();
        let (id, setup) = (doc.id, p.table_setup());
        if let (Some(doc), Some(setup)) = (self.session.docs.get_mut(self.session.current), setup) {
            let name = format!("fit the torus size ({} particles)", which.len());
            doc.history.resized(name, &doc.results, &which, setup);
        }
        self.jobs.fit_size(id, locs, which, results);
    }

    /// Records, for Undo, the fits of `frames` that a fit is about to replace.
    fn record_fits(&mut self, name: String, frames: &[usize]) {
        if let Some(doc) = self.session.docs.get_mut(self.session.current) {
            doc.history.fits(name, &doc.results, frames);
        }
    }

    fn refine_current(&mut self) {
        let Some(fitter) = self.ready_fitter() else {
            return;
        };
        let Some(doc) = self.session.doc() else {
            return;
        };
        let locs = doc.particles.as_ref().and_then(|p| p.refiner());
        let (id, frames) = (doc.id, doc.frames.clone());
        let start = self.session.controls.state();
        let k = self.session.frame;
        self.record_fits(format!("refine frame {k}"), &[k]);
        self.jobs.refine(fitter, id, k, frames, start, locs);
    }

    fn export_look(&self) -> ExportLook {
        ExportLook {
            lut: self.settings.lut,
            contrast: self.session.display.contrast,
            upscale: self.settings.export_zoom.clamp(1, 16),
        }
    }

    /// Where the current document's PNGs go, and what they share.
    fn export_target<'a>(&'a self, dir: &'a Path, model_name: &'a str) -> Option<ExportTarget<'a>> {
        let doc = self.session.doc()?;
        Some(ExportTarget {
            dir,
            file: &doc.path,
            frames: doc.frames.len(),
            frame_files: doc.sequence.as_ref().map(|s| s.files()),
            model: &self.live.model,
            model_name,
            pixel_size_nm: doc.info.pixel_size_nm,
            look: self.export_look(),
        })
    }

    fn export_dir(&self) -> Option<PathBuf> {
        let doc = self.session.doc()?;
        Some(
            self.settings
                .export_dir
                .clone()
                .or_else(|| doc.path.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from(".")),
        )
    }

    /// Ctrl+E: writes the annotated PNG of the current frame at the slider pose.
    fn export_current(&mut self) {
        let (Some(dir), Some(frame)) = (self.export_dir(), self.session.current_frame()) else {
            self.session.info("nothing to export: open an image first");
            return;
        };
        let name = self.settings.model.describe();
        let score = self.live.score;
        let state = self.session.controls.state();
        // the fit's standard error, while the sliders stand at the fit
        let axis_sd_deg = self
            .session
            .result(self.session.frame)
            .and_then(|r| r.as_ref().ok())
            .filter(|f| f.outcome.state.pose.q.angle_to(state.pose.q) < 1e-6)
            .map(|f| f.outcome.axis_sd_deg)
            .filter(|s| s.is_finite());
        let at = FrameAt {
            frame: &frame,
            index: self.session.frame,
            state,
            score: score.is_finite().then_some(score),
            axis_sd_deg,
        };
        let written = self
            .export_target(&dir, &name)
            .map(|t| t.write(&at))
            .expect("a document is open");
        match written {
            Ok(p) => {
                self.session.info(format!("exported {}", p.display()));
                self.session.last_export = Some(p);
            }
            Err(e) => self.session.error(format!("export failed: {e}")),
        }
    }

    /// Writes every fitted frame (at its fit) of the current document.
    fn export_all(&mut self) {
        let (Some(dir), Some(doc)) = (self.export_dir(), self.session.doc()) else {
            return;
        };
        let name = self.settings.model.describe();
        let frames = doc.frames.clone();
        let states: Vec<_> = doc.results.fitted_states().collect();
        let skipped = frames.len() - states.len();
        let summary = self
            .export_target(&dir, &name)
            .expect("a document is open")
            .write_all(
                states,
                |k| frames.get(k).ok_or_else(|| format!("no frame {k}")),
                || {},
            );
        let msg = format!(
            "exported {} frames to {} ({skipped} not fitted yet)",
            summary.written,
            dir.display()
        );
        match summary.errors.first() {
            Some(e) => self
                .session
                .error(format!("{msg}; {} failed: {e}", summary.errors.len())),
            None => self.session.info(msg),
        }
    }

    fn save_results_dialog(&mut self) {
        if let Some(path) = self.save_csv_dialog("Save results", "Pose CSV", "poses") {
            self.save_results(&path);
        }
    }

    /// Saves the current document's results as the CSV `posescope fit` writes.
    pub fn save_results(&mut self, path: &Path) {
        let Some(doc) = self.session.doc() else {
            return;
        };
        let rows = doc.result_rows();
        match write_pose_csv(path, &rows) {
            Ok(()) => self
                .session
                .info(format!("saved {} rows to {}", rows.len(), path.display())),
            Err(e) => self.session.error(format!("saving results failed: {e}")),
        }
    }
}
