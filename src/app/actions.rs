//! What the user asked for, as data. Panels, keys and drops only push
//! [`Action`]s; [`PoseScopeApp::apply`] carries them out once per UI frame,
//! after the panels are drawn, so one frame sees one consistent state and a
//! pose change renders once. Widgets that only change how things look (LUT,
//! layout, zoom) edit the settings directly; everything that starts work or
//! changes the session goes through here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::state::PoseControls;
use super::PoseScopeApp;
use crate::estimate::pose::fit::FitOptions;
use crate::estimate::pose::pipeline::{Fitter, ModelSpec};
use crate::export::frames::{ExportLook, ExportTarget, FrameAt};
use crate::io::write_pose_csv;
use crate::render::display::{auto_contrast, auto_contrast_fraction, Contrast};

/// One request from the user.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Load files (File → Open recent, drag-and-drop, the command line).
    Open(Vec<PathBuf>),
    /// Show the Open dialog (Ctrl+O).
    OpenDialog,
    /// Show a frame of the current document.
    GoToFrame(usize),
    /// Show another open document.
    SwitchDocument(usize),
    /// Move the pose sliders.
    SetControls(PoseControls),
    /// Use another model (rebuilds the display model and the fitter).
    SetModel(ModelSpec),
    /// Network + refinement on the frame on screen.
    EstimateCurrent,
    /// Network + refinement on every frame of the document.
    EstimateAll,
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
    /// Dismiss a notice.
    DismissNotice(usize),
    /// Fit the images to the window (Home, double-click).
    FitView,
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
            Action::OpenDialog => self.open_dialog(),
            Action::GoToFrame(k) => self.session.go_to_frame(k),
            Action::SwitchDocument(i) => {
                self.session.switch_document(i);
                self.ui.view.fit_pending = true;
            }
            Action::SetControls(c) => self.session.controls = c,
            Action::SetModel(spec) => self.set_model(spec),
            Action::EstimateCurrent => self.estimate(false),
            Action::EstimateAll => self.estimate(true),
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
            Action::FitView => self.ui.view.fit_pending = true,
            Action::DismissNotice(i) => {
                if i < self.session.notices.len() {
                    self.session.notices.remove(i);
                }
            }
        }
    }

    /// Starts loading files.
    pub fn open_paths(&mut self, paths: Vec<PathBuf>) {
        for p in &paths {
            if let Some(dir) = p.parent() {
                self.settings.last_dir = Some(dir.to_path_buf());
            }
        }
        self.jobs.load(paths);
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

    /// With auto-estimate on, the action that fits a frame the first time it is shown.
    pub(super) fn auto_estimate(&mut self) -> Option<Action> {
        if !self.settings.auto_estimate || self.fitter.is_none() || self.jobs.fitting() {
            return None;
        }
        let key = self.session.frame_key()?;
        let unfitted = self.session.result(self.session.frame).is_none();
        if unfitted && self.ui.auto_requested != Some(key) {
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
        let which = if all {
            (0..doc.frames.len()).collect()
        } else {
            vec![self.session.frame]
        };
        let (id, frames) = (doc.id, doc.frames.clone());
        self.jobs.estimate(fitter, id, frames, which, !all);
    }

    fn refine_current(&mut self) {
        let Some(fitter) = self.ready_fitter() else {
            return;
        };
        let Some(doc) = self.session.doc() else {
            return;
        };
        let (id, frames) = (doc.id, doc.frames.clone());
        let start = self.session.controls.state();
        self.jobs
            .refine(fitter, id, self.session.frame, frames, start);
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
        let at = FrameAt {
            frame,
            index: self.session.frame,
            state: self.session.controls.state(),
            score: score.is_finite().then_some(score),
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
        let Some(doc) = self.session.doc() else {
            return;
        };
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
        let Some(doc) = self.session.doc() else {
            return;
        };
        let rows = doc.results.rows(Some(&doc.path.display().to_string()));
        match write_pose_csv(path, &rows) {
            Ok(()) => self
                .session
                .info(format!("saved {} rows to {}", rows.len(), path.display())),
            Err(e) => self.session.error(format!("saving results failed: {e}")),
        }
    }
}
