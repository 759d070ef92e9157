//! The viewer's state as plain data, with no egui in it: the persisted
//! settings, the open documents with their results, the frame on screen, the
//! pose sliders, the display contrast and the notices. Panels read it and
//! send [`Action`](super::actions::Action)s; only `apply` changes it. Tests
//! can build and inspect it without a window.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::frame_store::FrameStore;
use super::particles::TableLoad;
use crate::estimate::particles::DEFAULT_TORUS_NM;
use crate::estimate::pose::pipeline::ModelSpec;
use crate::estimate::pose::results::{FitResults, FrameResult};
use crate::geometry::{Pose, Quat};
use crate::io::{Frame, ImageSequence, PoseRow, StackInfo};
use crate::render::display::{Contrast, Lut};
use crate::render::scene::FitState;

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
    /// Save results beside the data as they arrive, and restore them on open.
    pub autosave: bool,
    /// The particle of localisation tables: a torus `[R, r]` in nm
    /// (default CEP152-like, 180 and 40 nm).
    pub particle_torus_nm: [f64; 2],
    /// Camera pixel size for tables that do not state it (a Picasso file
    /// without its `.yaml`), nm.
    pub table_pixel_nm: Option<f64>,
    /// Fit the z of 3D tables (which tells each axis from its mirror).
    pub table_use_z: bool,
    /// Factor on 3D tables' z (a refractive-index correction).
    pub table_z_scale: f64,
    /// Negate 3D tables' z (for software whose z grows toward the viewer).
    pub table_flip_z: bool,
}

impl Settings {
    /// How the next table is opened.
    pub fn table_load(&self) -> TableLoad {
        TableLoad {
            torus_nm: self.particle_torus_nm,
            pixel_size_nm: self.table_pixel_nm,
            use_z: self.table_use_z,
            z_scale: self.table_z_scale,
            flip_z: self.table_flip_z,
        }
    }
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
            autosave: true,
            particle_torus_nm: DEFAULT_TORUS_NM,
            table_pixel_nm: None,
            table_use_z: true,
            table_z_scale: 1.0,
            table_flip_z: false,
        }
    }
}

/// Most files in File → Open recent.
pub const MAX_RECENT: usize = 10;

impl Settings {
    /// Puts a successfully opened file at the top of the recent list.
    pub fn remember_recent(&mut self, p: &Path) {
        self.recent.retain(|r| r != p);
        self.recent.insert(0, p.to_path_buf());
        self.recent.truncate(MAX_RECENT);
    }
}

/// What the model panel shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Layout {
    /// Raw frame and model render side by side.
    #[default]
    SideBySide,
    /// Raw frame (magenta) merged with the model (green).
    Overlay,
    /// Raw frame minus the least-squares scaled model.
    Residual,
    /// The posed points in 3D, with an orbit camera.
    Orbit3d,
}

impl Layout {
    /// All layouts, in menu order.
    pub const ALL: [Layout; 4] = [
        Layout::SideBySide,
        Layout::Overlay,
        Layout::Residual,
        Layout::Orbit3d,
    ];

    /// Menu name.
    pub fn name(self) -> &'static str {
        match self {
            Layout::SideBySide => "Side by side",
            Layout::Overlay => "Overlay",
            Layout::Residual => "Residual",
            Layout::Orbit3d => "3D",
        }
    }
}

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

/// A document's identity, unique per load: results and GPU uploads find
/// their document by it, and a reopened file is a new document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId(pub u64);

impl DocId {
    /// A fresh id.
    pub fn next() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        DocId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A file loaded into memory, with its fit results.
pub struct Document {
    /// Unique per load.
    pub id: DocId,
    /// Where it came from.
    pub path: PathBuf,
    /// Its description (size, pixel size, …).
    pub info: StackInfo,
    /// Its frames, in memory or read on demand (shared with jobs).
    pub frames: Arc<FrameStore>,
    /// Per-frame fit results.
    pub results: FitResults,
    /// Results changed since the last autosave.
    pub unsaved: bool,
    /// For a localisation table: the table and its picks (frame `k` is
    /// pick `k`'s particle).
    pub particles: Option<super::particles::ParticleDoc>,
    /// For an image sequence (single-frame files of one size opened
    /// together): its files, frame `k` being file `k`.
    pub sequence: Option<Arc<ImageSequence>>,
    /// The user's edits (picks, fits that replaced others), for Undo.
    pub history: super::history::EditHistory,
}

impl Document {
    /// A document of frames already in memory (tests, and frames made by the
    /// app itself); every frame must have the first frame's size.
    pub fn in_memory(path: impl Into<PathBuf>, frames: Vec<Frame>) -> Self {
        let path = path.into();
        let (width, height) = frames.first().map_or((0, 0), |f| (f.width, f.height));
        let n = frames.len();
        Self {
            id: DocId::next(),
            info: StackInfo {
                path: path.clone(),
                format: "memory",
                width,
                height,
                frames: n,
                sample_type: crate::io::SampleType::F32,
                bits_per_sample: 32,
                palette: None,
                pixel_size_nm: None,
                warnings: Vec::new(),
            },
            path,
            frames: Arc::new(FrameStore::memory(frames)),
            results: FitResults::new(n),
            unsaved: false,
            particles: None,
            sequence: None,
            history: Default::default(),
        }
    }

    /// The file frame `k` came from, for a sequence; `None` otherwise.
    pub fn frame_file(&self, k: usize) -> Option<&Path> {
        self.sequence.as_ref()?.files().get(k).map(PathBuf::as_path)
    }

    /// The pose-CSV rows of the results, as `posescope fit` writes them: the
    /// data file and its frame — for a sequence, each frame's own file and
    /// frame 0, as `posescope fit FOLDER` writes.
    pub fn result_rows(&self) -> Vec<PoseRow> {
        let mut rows = self.results.rows(Some(&self.path.display().to_string()));
        if let Some(seq) = &self.sequence {
            for row in &mut rows {
                if let Some(file) = seq.files().get(row.frame) {
                    row.file = Some(file.display().to_string());
                    row.frame = 0;
                }
            }
        }
        rows
    }
}

/// The raw-frame contrast the user chose.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DisplayState {
    /// Fixed limits; `None` is the frame's auto-contrast.
    pub contrast: Option<Contrast>,
    /// Presses of Auto since the last reset (each saturates more).
    pub auto_presses: u32,
}

/// Everything the user is looking at and working on.
#[derive(Default)]
pub struct Session {
    /// Open documents, in the order they were opened.
    pub docs: Vec<Document>,
    /// The document on screen (an index into `docs`).
    pub current: usize,
    /// The frame on screen.
    pub frame: usize,
    /// The pose sliders.
    pub controls: PoseControls,
    /// Raw-frame contrast.
    pub display: DisplayState,
    /// Messages for the user, oldest first.
    pub notices: Vec<Notice>,
    /// The last PNG written by Export.
    pub last_export: Option<PathBuf>,
}

impl Session {
    /// The document on screen.
    pub fn doc(&self) -> Option<&Document> {
        self.docs.get(self.current)
    }

    /// The picks of the field on screen and its edit history, to edit the
    /// picks: the document is marked unsaved, so that they are autosaved.
    pub fn edit_field(
        &mut self,
    ) -> Option<(
        &mut super::particles::ParticleDoc,
        &mut super::history::EditHistory,
    )> {
        let doc = self.docs.get_mut(self.current)?;
        let p = doc.particles.as_mut()?;
        doc.unsaved = true;
        Some((p, &mut doc.history))
    }

    /// A document by id (it may have been closed or replaced).
    pub fn doc_by_id_mut(&mut self, id: DocId) -> Option<&mut Document> {
        self.docs.iter_mut().find(|d| d.id == id)
    }

    /// The frame on screen (read from the file if it is not in memory).
    pub fn current_frame(&self) -> Option<Arc<Frame>> {
        self.doc().and_then(|d| d.frames.get(self.frame))
    }

    /// Frames in the document on screen.
    pub fn frame_count(&self) -> usize {
        self.doc().map_or(0, |d| d.frames.len())
    }

    /// The result of a frame of the document on screen.
    pub fn result(&self, frame: usize) -> Option<&FrameResult> {
        self.doc().and_then(|d| d.results.get(frame))
    }

    /// `(document, frame)` of the frame on screen.
    pub fn frame_key(&self) -> Option<(DocId, usize)> {
        Some((self.doc()?.id, self.frame))
    }

    /// Adds a loaded document (replacing one of the same path) and shows its first frame.
    pub fn add_document(&mut self, doc: Document) {
        self.docs.retain(|d| d.path != doc.path);
        self.docs.push(doc);
        self.current = self.docs.len() - 1;
        self.display = DisplayState::default();
        self.go_to_frame(0);
    }

    /// Shows another open document from its first frame.
    pub fn switch_document(&mut self, index: usize) {
        if index < self.docs.len() && index != self.current {
            self.current = index;
            self.display.contrast = None;
            self.go_to_frame(0);
        }
    }

    /// Moves to a frame of the current document; a fitted frame shows its fit.
    pub fn go_to_frame(&mut self, k: usize) {
        let n = self.frame_count();
        if n == 0 {
            return;
        }
        self.frame = k.min(n - 1);
        if let Some(d) = self.doc() {
            d.frames.prefetch(self.frame);
        }
        if let Some(fit) = self.doc().and_then(|d| d.results.fit(self.frame)) {
            self.controls = PoseControls::from_state(&fit.outcome.state);
        }
    }

    /// Records a fit result; the frame on screen shows it (an error as a
    /// notice when `apply`, i.e. when the user asked for this very frame).
    pub fn record_result(&mut self, doc: DocId, frame: usize, result: FrameResult, apply: bool) {
        let on_screen = self.frame_key() == Some((doc, frame));
        if on_screen && (apply || result.is_ok()) {
            match &result {
                Ok(fit) => self.controls = PoseControls::from_state(&fit.outcome.state),
                Err(e) => self.error(format!("frame {frame}: {e}")),
            }
        }
        if let Some(d) = self.doc_by_id_mut(doc) {
            d.results.set(frame, result);
            d.unsaved = true;
        }
    }

    /// Shows an error.
    pub fn error(&mut self, text: impl std::fmt::Display) {
        let text = text.to_string();
        tracing::warn!("{text}");
        self.notices.push(Notice {
            text,
            is_error: true,
        });
    }

    /// Shows a piece of information.
    pub fn info(&mut self, text: impl std::fmt::Display) {
        self.notices.push(Notice {
            text: text.to_string(),
            is_error: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::pose::fit::{FitOutcome, StartSource};
    use crate::estimate::pose::pipeline::FrameFit;

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
        assert!(old.auto_estimate && old.autosave);
        // and the model keeps its persisted name
        let m: Settings = serde_json::from_str(r#"{"model":{"model":"ring:8","torus":[15,1],"units":"Px","pixel_size":null,"points":2000,"symmetry":null}}"#).unwrap();
        assert_eq!(m.model.model.to_string(), "ring:8");
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

    fn doc(path: &str, frames: usize) -> Document {
        Document::in_memory(path, vec![Frame::zeros(8, 8); frames])
    }

    #[test]
    fn results_find_their_document_by_id_and_move_the_sliders_on_screen() {
        let mut s = Session::default();
        let a = doc("/a.tif", 3);
        let a_id = a.id;
        s.add_document(a);
        let b = doc("/b.tif", 2);
        let b_id = b.id;
        s.add_document(b);
        assert_eq!(s.current, 1);
        let state = PoseControls {
            euler: [10.0, 20.0, 0.0],
            ..PoseControls::default()
        }
        .state();
        let fit = FrameFit {
            outcome: FitOutcome {
                state,
                score: 0.8,
                converged: true,
                iterations: 3,
                axis_sd_deg: 0.5,
                z_locs: 0,
                source: StartSource::Network,
                start_ms: 0.0,
                refine_ms: 0.0,
            },
            cnn_ms: 0.0,
            nonfinite_px: 0,
        };
        // a result for a document not on screen leaves the sliders alone
        s.record_result(a_id, 0, Ok(fit), false);
        assert_eq!(s.controls, PoseControls::default());
        assert!(s.docs[0].results.fit(0).is_some());
        // one for the frame on screen moves them
        s.record_result(b_id, 0, Ok(fit), false);
        assert!((s.controls.euler[1] - 20.0).abs() < 1e-9);
        // a failure the user asked for is a notice
        s.record_result(b_id, 0, Err("no signal".into()), true);
        assert!(s.notices.last().unwrap().is_error);
        // reopening a file replaces its document
        s.add_document(doc("/a.tif", 5));
        assert_eq!(s.docs.len(), 2);
        assert_eq!(s.frame_count(), 5);
        s.record_result(a_id, 1, Err("stale".into()), false);
        assert!(s.docs.iter().all(|d| d.results.done() <= 1));
    }
}
