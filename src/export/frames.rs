//! Annotated PNGs of fitted frames: the one code path behind
//! `posescope fit --png-dir`, `posescope export` and the viewer's Ctrl+E.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::annotate::{annotate, export_dir_name, write_png, AnnotateOptions, Annotation};
use super::ExportError;
use crate::estimate::refine::{render_state, FitModel, FitState};
use crate::io::Frame;
use crate::render::display::{auto_contrast, auto_contrast_fraction, Contrast, Lut};
use crate::render::kernel::Scratch;

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

/// One frame and its fitted state, ready to export.
pub struct FrameExport<'a> {
    /// The raw frame.
    pub frame: &'a Frame,
    /// The file it came from.
    pub file: &'a Path,
    /// Its index in the file.
    pub index: usize,
    /// Frames in the file.
    pub frames: usize,
    /// The fitted (or user-set) state.
    pub state: FitState,
    /// Its score, when known.
    pub score: Option<f64>,
    /// The model rendered at `state`.
    pub model: &'a FitModel,
    /// The model's name as shown to users.
    pub model_name: &'a str,
    /// Pixel size in nm, for the scale bar.
    pub pixel_size_nm: Option<f64>,
}

impl FrameExport<'_> {
    /// The model render at the state, at the frame's size.
    pub fn render(&self) -> Vec<f32> {
        render_state(
            self.model,
            &self.state,
            self.frame.width,
            self.frame.height,
            &mut Scratch::default(),
        )
    }

    /// The annotated image.
    pub fn image(&self, look: &ExportLook) -> Result<image::RgbaImage, ExportError> {
        let contrast = look
            .contrast
            .unwrap_or_else(|| auto_contrast(&self.frame.data, auto_contrast_fraction(0)));
        let annotation = Annotation {
            file: self.file.display().to_string(),
            frame: self.index,
            frames: self.frames,
            pose: self.state.pose,
            sigma: self.state.sigma,
            score: self.score,
            model: self.model_name.to_string(),
            pixel_size_nm: self.pixel_size_nm,
        };
        let opts = AnnotateOptions {
            lut: look.lut,
            contrast,
            upscale: look.upscale,
        };
        annotate(self.frame, &self.render(), &annotation, &opts)
    }

    /// Writes the annotated PNG to `path` (temp file, then rename).
    pub fn write(&self, path: &Path, look: &ExportLook) -> Result<(), ExportError> {
        write_png(path, &self.image(look)?)
    }

    /// Writes the annotated PNG into `dir` under its standard name and returns the path.
    pub fn write_into(&self, dir: &Path, look: &ExportLook) -> Result<PathBuf, ExportError> {
        let path = dir.join(export_dir_name(self.file, self.index));
        self.write(&path, look)?;
        Ok(path)
    }
}
