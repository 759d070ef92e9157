//! The whole per-frame pipeline shared by `posescope fit`, `posescope export`
//! and the viewer: which model, which network, and the CNN → refinement chain.
//!
//! Everything a front end needs to go from "torus, R 20 px, r 5 px" and a
//! batch of frames to fitted poses lives here, so the CLI and the GUI cannot
//! drift apart.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::estimator::Estimator;
use super::fit::{fit_frame, start_from_estimate, FitOptions, FitOutcome};
use super::train::TrainError;
use crate::geometry::Symmetry;
use crate::io::Frame;
use crate::render::scene::{FitModel, FitState};
use crate::shapes::{Model, ModelKind, ShapeError, TorusSpec, Units};

/// Errors from setting up the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The model description is not usable.
    #[error("model: {0}")]
    Model(String),
    /// A model file could not be read.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// The network could not be loaded or run.
    #[error(transparent)]
    Network(#[from] TrainError),
    /// The requested compute device is not available.
    #[error("device: {0}")]
    Device(String),
}

/// What model to fit, as a user names it (CLI flags, viewer settings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Which model.
    pub model: ModelKind,
    /// Torus radii `[R, r]` in `units`.
    pub torus: [f64; 2],
    /// Units of the model.
    pub units: Units,
    /// Pixel size in nm (needed for nm models).
    pub pixel_size: Option<f64>,
    /// Points sampled on parametric models.
    pub points: usize,
    /// Symmetry override.
    pub symmetry: Option<Symmetry>,
}

impl Default for ModelSpec {
    /// The bundled network's model: a torus of R 20 px, r 5 px.
    fn default() -> Self {
        Self {
            model: ModelKind::Torus,
            torus: [20.0, 5.0],
            units: Units::Px,
            pixel_size: None,
            points: 2000,
            symmetry: None,
        }
    }
}

impl ModelSpec {
    /// True for the parametric torus whose tube radius is fitted.
    pub fn is_torus(&self) -> bool {
        self.model.is_torus()
    }

    fn to_px(&self) -> Result<f64, PipelineError> {
        match self.units {
            Units::Px => Ok(1.0),
            Units::Nm => match self.pixel_size {
                Some(p) if p.is_finite() && p > 0.0 => Ok(1.0 / p),
                _ => Err(PipelineError::Model(
                    "the model is in nm: a pixel size is needed to convert it to pixels".into(),
                )),
            },
        }
    }

    /// The torus major radius in pixels (the template size for network starts).
    pub fn template_major_px(&self) -> f64 {
        self.torus[0] * self.to_px().unwrap_or(1.0)
    }

    /// The torus tube radius in pixels (the starting tube of displays and exports).
    pub fn tube_px(&self) -> f64 {
        self.torus[1] * self.to_px().unwrap_or(1.0)
    }

    /// Builds the point model in image pixels.
    pub fn build_model(&self) -> Result<Model, PipelineError> {
        let [major, tube] = self.torus;
        let spec = TorusSpec {
            major_radius: major,
            tube_radius: tube,
            units: self.units,
        };
        let mut model = match &self.model {
            ModelKind::Torus => Model::torus(spec, self.points, 1)?,
            ModelKind::TorusGap => Model::torus_missing_arc(spec, self.points, 90.0, 1)?,
            ModelKind::TorusMarker => {
                Model::torus_with_marker(spec, self.points, [major + tube, 0.0, 0.0], 10.0, 1)?
            }
            &ModelKind::Ring(n) => Model::ring_of_blobs(
                major,
                n,
                (self.points / n.max(1) as usize).max(1),
                tube.max(0.0),
                self.units,
                1,
            )?,
            ModelKind::File(path) => {
                let mut m = Model::load(path)?;
                if self.units == Units::Nm {
                    m.units = Units::Nm;
                }
                m
            }
        };
        if let Some(s) = self.symmetry {
            model = model.with_symmetry(s);
        }
        if model.units == Units::Nm {
            let px = self.pixel_size.ok_or_else(|| {
                PipelineError::Model(
                    "the model is in nm: give a pixel size (--pixel-size NM) to convert it".into(),
                )
            })?;
            model = model.to_pixels(px)?;
        }
        Ok(model)
    }

    /// The model prepared for fitting: a torus with a fitted tube radius, or
    /// any other model as a rigid cloud.
    pub fn fit_model(&self, sigma: f64) -> Result<FitModel, PipelineError> {
        if self.is_torus() {
            let to_px = self.to_px()?;
            let [major, tube] = self.torus;
            if !(major > 0.0 && tube >= 0.0 && tube < major) {
                return Err(PipelineError::Model(format!(
                    "torus {major},{tube}: need R > 0 and 0 ≤ r < R"
                )));
            }
            let mut m = FitModel::torus(major * to_px, tube * to_px, sigma);
            if let Some(s) = self.symmetry {
                m.symmetry = s;
            }
            Ok(m)
        } else {
            Ok(FitModel::rigid(&self.build_model()?))
        }
    }

    /// A short human-readable name, e.g. `torus R 20 px, r 5 px`.
    pub fn describe(&self) -> String {
        let unit = match self.units {
            Units::Px => "px",
            Units::Nm => "nm",
        };
        match &self.model {
            k if k.is_torus_family() => {
                let [major, tube] = self.torus.map(short_number);
                format!("{k} R {major} {unit}, r {tube} {unit}")
            }
            ModelKind::File(path) => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
            k => format!("{k} R {} {unit}", short_number(self.torus[0])),
        }
    }
}

/// A length for a label: at most three decimals, no trailing zeros
/// (`20`, `4.444`, `0.5`).
pub fn short_number(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" || s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// Where the network runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceChoice {
    /// A GPU when one is compiled in and present, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device 0 (needs the `cuda` feature).
    Cuda,
    /// Metal device 0 (needs the `metal` feature).
    Metal,
}

pub use crate::estimate::nn::device::device_name;

/// Opens the compute device for the network and logs which one it is.
pub fn pick_device(choice: DeviceChoice) -> Result<Device, PipelineError> {
    let dev = match choice {
        DeviceChoice::Cpu => Device::Cpu,
        // the hint names the feature only for builds without it; a CUDA build
        // on a machine without a GPU says what the driver said
        DeviceChoice::Cuda => Device::new_cuda(0).map_err(|e| {
            let hint = if cfg!(feature = "cuda") {
                ""
            } else {
                " (this build has no CUDA: build with --features cuda)"
            };
            PipelineError::Device(format!("cuda{hint}: {e}"))
        })?,
        DeviceChoice::Metal => Device::new_metal(0).map_err(|e| {
            let hint = if cfg!(feature = "metal") {
                ""
            } else {
                " (this build has no Metal: build with --features metal)"
            };
            PipelineError::Device(format!("metal{hint}: {e}"))
        })?,
        DeviceChoice::Auto => Device::new_cuda(0)
            .or_else(|_| Device::new_metal(0))
            .unwrap_or(Device::Cpu),
    };
    tracing::info!("network device: {}", device_name(&dev));
    Ok(dev)
}

/// A bundled file (`rel` inside the repository, e.g. `assets/torus.safetensors`),
/// looked up beside the working directory, the executable and the sources.
pub fn find_asset(rel: &Path) -> Option<PathBuf> {
    let mut candidates = vec![rel.to_path_buf()];
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join(rel));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel));
    candidates.into_iter().find(|p| p.exists())
}

/// The bundled torus network.
pub fn default_weights() -> Option<PathBuf> {
    find_asset(Path::new("assets/torus.safetensors"))
}

/// One fitted frame and the network's share of the time.
#[derive(Clone, Copy, Debug)]
pub struct FrameFit {
    /// The fit.
    pub outcome: FitOutcome,
    /// Network milliseconds per frame (0 without a network).
    pub cnn_ms: f64,
    /// Non-finite pixels (NaN, ±∞) that were replaced by the frame's median
    /// before fitting ([`Frame::finite_filled`]).
    pub nonfinite_px: usize,
}

/// The per-frame error of a frame with no finite pixel.
fn all_non_finite() -> String {
    "every pixel is non-finite (NaN or ±∞): nothing to fit".into()
}

/// A model, an optional network and the fit settings: fits batches of frames.
pub struct Fitter {
    /// The model being fitted.
    pub model: FitModel,
    /// The network supplying starts (None: coarse search).
    pub estimator: Option<Estimator>,
    /// Fit settings.
    pub opts: FitOptions,
    /// Torus major radius of the model in pixels (network starts are scaled by it).
    pub template_major: f64,
}

impl Fitter {
    /// A fitter for `spec`. `weights`: the network to use (ignored for models
    /// other than the torus unless given explicitly); `None` with `use_net`
    /// looks up the bundled network for the torus.
    pub fn new(
        spec: &ModelSpec,
        opts: FitOptions,
        weights: Option<&Path>,
        use_net: bool,
        device: DeviceChoice,
    ) -> Result<Self, PipelineError> {
        let model = spec.fit_model(opts.sigma)?;
        let estimator = if !use_net || (!spec.is_torus() && weights.is_none()) {
            None
        } else {
            match weights.map(Path::to_path_buf).or_else(default_weights) {
                Some(w) => Some(Estimator::load(&w, &pick_device(device)?)?),
                None => {
                    tracing::warn!("no network weights found: starting from a coarse search");
                    None
                }
            }
        };
        Ok(Self {
            model,
            estimator,
            opts,
            template_major: spec.template_major_px(),
        })
    }

    /// Network starts for a batch (one network call), `None` per frame without a network.
    pub fn starts(&self, frames: &[&Frame]) -> Result<Vec<Option<FitState>>, PipelineError> {
        Ok(match &self.estimator {
            Some(est) => est
                .estimate(frames)?
                .iter()
                .map(|e| Some(start_from_estimate(e, &self.model, self.template_major)))
                .collect(),
            None => vec![None; frames.len()],
        })
    }

    /// Fits a batch of frames: the network runs once on the batch, then each
    /// frame is refined in parallel. A frame that fails gets its error.
    /// Non-finite pixels are replaced by the frame's median (the network's
    /// preprocessing already skips them); a frame with no finite pixel fails.
    pub fn fit_batch(
        &self,
        frames: &[&Frame],
    ) -> Result<Vec<Result<FrameFit, String>>, PipelineError> {
        use rayon::prelude::*;
        let t = Instant::now();
        let starts = self.starts(frames)?;
        let cnn_ms = if self.estimator.is_some() {
            t.elapsed().as_secs_f64() * 1e3 / frames.len().max(1) as f64
        } else {
            0.0
        };
        Ok(frames
            .par_iter()
            .zip(starts)
            .map(|(f, start)| {
                let (f, nonfinite_px) = f.finite_filled().ok_or_else(all_non_finite)?;
                fit_frame(&f.data, f.width, f.height, &self.model, &self.opts, start)
                    .map(|outcome| FrameFit {
                        outcome,
                        cnn_ms,
                        nonfinite_px,
                    })
                    .map_err(|e| e.to_string())
            })
            .collect())
    }

    /// Fits one frame from a given state (the viewer's Refine button).
    pub fn refine_from(&self, frame: &Frame, start: FitState) -> Result<FitOutcome, String> {
        let (frame, _) = frame.finite_filled().ok_or_else(all_non_finite)?;
        fit_frame(
            &frame.data,
            frame.width,
            frame.height,
            &self.model,
            &self.opts,
            Some(start),
        )
        .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nm_torus_needs_a_pixel_size() {
        let spec = ModelSpec {
            units: Units::Nm,
            torus: [1300.0, 325.0],
            ..ModelSpec::default()
        };
        let err = spec.fit_model(1.6).unwrap_err().to_string();
        assert!(err.contains("pixel size"), "{err}");
        let ok = ModelSpec {
            pixel_size: Some(65.0),
            ..spec
        };
        assert!((ok.template_major_px() - 20.0).abs() < 1e-9);
        assert!((ok.tube_px() - 5.0).abs() < 1e-9);
        assert!(ok.fit_model(1.6).is_ok());
    }

    #[test]
    fn model_names_round_their_lengths() {
        let spec = ModelSpec {
            torus: [20.0, 40.0 / 9.0],
            ..ModelSpec::default()
        };
        assert_eq!(spec.describe(), "torus R 20 px, r 4.444 px");
        assert_eq!(short_number(0.5), "0.5");
        assert_eq!(short_number(0.0), "0");
        assert_eq!(short_number(-0.0001), "0");
        assert_eq!(short_number(180.0), "180");
    }

    #[test]
    fn bad_specs_are_errors() {
        let bad = ModelSpec {
            torus: [5.0, 6.0],
            ..ModelSpec::default()
        };
        assert!(bad.fit_model(1.6).is_err());
        assert!("ring:x"
            .parse::<ModelKind>()
            .unwrap_err()
            .to_string()
            .contains("ring:N"));
        let missing = ModelSpec {
            model: ModelKind::File("/nonexistent/model.ply".into()),
            ..ModelSpec::default()
        };
        assert!(missing.build_model().is_err());
    }
}
