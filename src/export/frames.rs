//! Annotated PNGs of fitted frames: the one code path behind
//! `posescope fit --png-dir`, `posescope export` and the viewer's Ctrl+E.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::annotate::{annotate, export_dir_name, write_png, AnnotateOptions, Annotation};
use crate::estimate::pose::results::FittedState;
use crate::io::Frame;
use crate::io::OutputError;
use crate::render::display::{auto_contrast, auto_contrast_fraction, Contrast, Lut};
use crate::render::kernel::Scratch;
use crate::render::scene::{render_state, FitModel, FitState};

/// How exported frames look.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportLook {
    /// Colour map of the raw frame and the model.
    pub lut: Lut,
    /// Raw-frame contrast; `None` is Fiji-style auto-contrast (0.35 % saturated) per frame.
    pub contrast: Option<Contrast>,
    /// Integer zoom of the exported tiles.
    pub upscale: u32,
}

impl Default for ExportLook {
    fn default() -> Self {
        Self {
            lut: Lut::default(),
            contrast: None,
            upscale: 4,
        }
    }
}

/// Where and how a file's frames are exported: what every frame of one
/// file shares.
pub struct ExportTarget<'a> {
    /// The folder the PNGs go to.
    pub dir: &'a Path,
    /// The file the frames come from.
    pub file: &'a Path,
    /// Frames in the file.
    pub frames: usize,
    /// For an image sequence: each frame's own file (frame `k` is then
    /// frame 0 of `frame_files[k]`, in names and annotations).
    pub frame_files: Option<&'a [PathBuf]>,
    /// The model rendered at each state.
    pub model: &'a FitModel,
    /// The model's name as shown to users.
    pub model_name: &'a str,
    /// Pixel size in nm, for the scale bar.
    pub pixel_size_nm: Option<f64>,
    /// Colour map, contrast and zoom.
    pub look: ExportLook,
}

/// One frame at a fitted (or user-set) state.
#[derive(Clone, Copy)]
pub struct FrameAt<'a> {
    /// The raw frame.
    pub frame: &'a Frame,
    /// Its index in the file.
    pub index: usize,
    /// The state the model is shown at.
    pub state: FitState,
    /// Its score, when known.
    pub score: Option<f64>,
    /// The fit's axis standard error, degrees, when the state is a fit's.
    pub axis_sd_deg: Option<f64>,
}

/// What exporting several frames did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// PNGs written.
    pub written: usize,
    /// Frames that could not be read or written, with the reason.
    pub errors: Vec<String>,
}

impl ExportTarget<'_> {
    /// The model render at a frame's state, at the frame's size.
    pub fn render(&self, at: &FrameAt<'_>) -> Vec<f32> {
        render_state(
            self.model,
            &at.state,
            at.frame.width,
            at.frame.height,
            &mut Scratch::default(),
        )
    }

    /// Where frame `index` comes from: its file, its frame in that file and
    /// the file's frame count.
    fn source(&self, index: usize) -> (&Path, usize, usize) {
        match self.frame_files.and_then(|f| f.get(index)) {
            Some(file) => (file, 0, 1),
            None => (self.file, index, self.frames),
        }
    }

    /// The annotated image of one frame.
    pub fn image(&self, at: &FrameAt<'_>) -> Result<image::RgbaImage, OutputError> {
        let contrast = self
            .look
            .contrast
            .unwrap_or_else(|| auto_contrast(&at.frame.data, auto_contrast_fraction(0)));
        let (file, frame, frames) = self.source(at.index);
        let annotation = Annotation {
            file: file.display().to_string(),
            frame,
            frames,
            pose: at.state.pose,
            sigma: at.state.sigma,
            score: at.score,
            axis_sd_deg: at.axis_sd_deg,
            model: self.model_name.to_string(),
            pixel_size_nm: self.pixel_size_nm,
        };
        let opts = AnnotateOptions {
            lut: self.look.lut,
            contrast,
            upscale: self.look.upscale,
        };
        annotate(at.frame, &self.render(at), &annotation, &opts)
    }

    /// Writes one frame's annotated PNG into the folder under its standard
    /// name (temp file, then rename) and returns the path.
    pub fn write(&self, at: &FrameAt<'_>) -> Result<PathBuf, OutputError> {
        let (file, frame, _) = self.source(at.index);
        let path = self.dir.join(export_dir_name(file, frame));
        write_png(&path, &self.image(at)?)?;
        Ok(path)
    }

    /// Writes every fitted frame in `states`, reading each frame through
    /// `load`; `progress` is called once per state. A frame that cannot be
    /// read or written is recorded in the summary and the rest go on.
    pub fn write_all<F: std::borrow::Borrow<Frame>>(
        &self,
        states: impl IntoIterator<Item = FittedState>,
        mut load: impl FnMut(usize) -> Result<F, String>,
        mut progress: impl FnMut(),
    ) -> ExportSummary {
        let mut summary = ExportSummary::default();
        for s in states {
            let index = s.index;
            let written = load(index).and_then(|f| {
                let at = FrameAt {
                    frame: f.borrow(),
                    index,
                    state: s.state,
                    score: s.score,
                    axis_sd_deg: s.axis_sd_deg,
                };
                self.write(&at).map_err(|e| e.to_string())
            });
            match written {
                Ok(_) => summary.written += 1,
                Err(e) => summary.errors.push(format!("frame {index}: {e}")),
            }
            progress();
        }
        summary
    }
}
