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

use super::fit::{fit_frame, start_from_estimate, FitOptions, FitOutcome};
use super::refine::{FitModel, FitState};
use super::train::{Estimator, TrainError};
use crate::export::PoseRow;
use crate::geometry::Symmetry;
use crate::shapes::{Model, ShapeError, TorusSpec, Units};

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
    /// `torus`, `torus-gap`, `torus-marker`, `ring:N`, or a point-cloud path.
    pub model: String,
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
            model: "torus".into(),
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
        self.model == "torus"
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
        let mut model = match self.model.as_str() {
            "torus" => Model::torus(spec, self.points, 1)?,
            "torus-gap" => Model::torus_missing_arc(spec, self.points, 90.0, 1)?,
            "torus-marker" => {
                Model::torus_with_marker(spec, self.points, [major + tube, 0.0, 0.0], 10.0, 1)?
            }
            m if m.starts_with("ring:") => {
                let n: u32 = m[5..].parse().map_err(|_| {
                    PipelineError::Model(format!("'{m}': expected ring:N with N a whole number"))
                })?;
                Model::ring_of_blobs(
                    major,
                    n,
                    (self.points / n.max(1) as usize).max(1),
                    tube.max(0.0),
                    self.units,
                    1,
                )?
            }
            path => {
                let mut m = Model::load(Path::new(path))?;
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
        match self.model.as_str() {
            "torus" | "torus-gap" | "torus-marker" => format!(
                "{} R {} {unit}, r {} {unit}",
                self.model, self.torus[0], self.torus[1]
            ),
            m if m.starts_with("ring:") => format!("{m} R {} {unit}", self.torus[0]),
            path => Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.to_string()),
        }
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

/// Opens the compute device for the network and logs which one it is.
pub fn pick_device(choice: DeviceChoice) -> Result<Device, PipelineError> {
    let dev = match choice {
        DeviceChoice::Cpu => Device::Cpu,
        DeviceChoice::Cuda => Device::new_cuda(0).map_err(|e| {
            PipelineError::Device(format!("cuda (build with --features cuda): {e}"))
        })?,
        DeviceChoice::Metal => Device::new_metal(0).map_err(|e| {
            PipelineError::Device(format!("metal (build with --features metal): {e}"))
        })?,
        DeviceChoice::Auto => Device::new_cuda(0)
            .or_else(|_| Device::new_metal(0))
            .unwrap_or(Device::Cpu),
    };
    tracing::info!("network device: {}", device_name(&dev));
    Ok(dev)
}

/// `cpu`, `cuda` or `metal`.
pub fn device_name(dev: &Device) -> &'static str {
    if dev.is_cpu() {
        "cpu"
    } else if dev.is_cuda() {
        "cuda"
    } else {
        "metal"
    }
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
    pub fn starts(
        &self,
        frames: &[(&[f32], usize, usize)],
    ) -> Result<Vec<Option<FitState>>, PipelineError> {
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
    pub fn fit_batch(
        &self,
        frames: &[(&[f32], usize, usize)],
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
            .map(|(&(f, w, h), start)| {
                fit_frame(f, w, h, &self.model, &self.opts, start)
                    .map(|outcome| FrameFit { outcome, cnn_ms })
                    .map_err(|e| e.to_string())
            })
            .collect())
    }

    /// Fits one frame from a given state (the viewer's Refine button).
    pub fn refine_from(
        &self,
        frame: &[f32],
        width: usize,
        height: usize,
        start: FitState,
    ) -> Result<FitOutcome, String> {
        fit_frame(frame, width, height, &self.model, &self.opts, Some(start))
            .map_err(|e| e.to_string())
    }
}

/// The pose-CSV row of a fitted frame, with the extra columns `fit` writes.
pub fn outcome_row(frame: usize, fit: &FrameFit) -> PoseRow {
    let o = &fit.outcome;
    let mut row = PoseRow::new(frame, o.state.pose, o.state.sigma);
    row.score = o.score;
    row.set("scale", format!("{:.5}", o.state.scale));
    row.set("tube_px", format!("{:.4}", o.state.shape * o.state.scale));
    row.set("converged", o.converged);
    row.set("iterations", o.iterations);
    row.set("start", format!("{:?}", o.source).to_lowercase());
    row.set("cnn_ms", format!("{:.3}", fit.cnn_ms));
    row.set("start_ms", format!("{:.3}", o.start_ms));
    row.set("refine_ms", format!("{:.3}", o.refine_ms));
    row.set("error", "");
    row
}

/// The fitted state recorded in a pose-CSV row (the inverse of
/// [`outcome_row`]); `scale` and `tube_px` default to 1 and the model's own
/// tube when the row lacks them. `None` for a failed row.
pub fn state_from_row(row: &PoseRow, default_tube_px: f64) -> Option<FitState> {
    if row.get("error").is_some_and(|e| !e.is_empty()) || !row.pose.q.w.is_finite() {
        return None;
    }
    let num = |k: &str| row.get(k).and_then(|v| v.trim().parse::<f64>().ok());
    let scale = num("scale").filter(|s| *s > 0.0).unwrap_or(1.0);
    let tube_px = num("tube_px").unwrap_or(default_tube_px);
    Some(FitState {
        pose: row.pose,
        scale,
        sigma: if row.sigma.is_finite() && row.sigma > 0.0 {
            row.sigma
        } else {
            1.6
        },
        shape: tube_px / scale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{Pose, Quat};

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
    fn bad_specs_are_errors() {
        let bad = ModelSpec {
            torus: [5.0, 6.0],
            ..ModelSpec::default()
        };
        assert!(bad.fit_model(1.6).is_err());
        let ring = ModelSpec {
            model: "ring:x".into(),
            ..ModelSpec::default()
        };
        assert!(ring
            .build_model()
            .unwrap_err()
            .to_string()
            .contains("ring:N"));
        let missing = ModelSpec {
            model: "/nonexistent/model.ply".into(),
            ..ModelSpec::default()
        };
        assert!(missing.build_model().is_err());
    }

    #[test]
    fn rows_round_trip_the_state() {
        let q = Quat::from_euler_zyz_deg(30.0, 50.0, 0.0);
        let fit = FrameFit {
            outcome: FitOutcome {
                state: FitState {
                    pose: Pose::new(q, [1.5, -2.0]),
                    scale: 1.1,
                    sigma: 1.7,
                    shape: 4.0,
                },
                score: 0.9,
                converged: true,
                iterations: 4,
                source: super::super::fit::StartSource::Network,
                start_ms: 0.0,
                refine_ms: 1.0,
            },
            cnn_ms: 0.5,
        };
        let row = outcome_row(3, &fit);
        let st = state_from_row(&row, 5.0).unwrap();
        assert!(st.pose.q.angle_to(q) < 1e-6);
        assert!((st.scale - 1.1).abs() < 1e-4);
        assert!((st.shape * st.scale - 4.4).abs() < 1e-3);
        assert!((st.sigma - 1.7).abs() < 1e-9);
        assert!(state_from_row(&PoseRow::failed(0, "bad"), 5.0).is_none());
    }
}
