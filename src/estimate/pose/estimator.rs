//! The trained orientation network at inference: loads a model file
//! (safetensors + sidecar) and turns a batch of frames into pose estimates in
//! frame pixels (rotation, shift, σ, torus radii), the start of a fit.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use super::preprocess::prepare;
use super::train::{load_meta, ModelMeta, TrainError, OUTPUTS, REFERENCE_MAJOR_PX, SHIFT_UNIT};
use crate::estimate::nn::net::OrientationNet;
use crate::estimate::nn::trainer::NetTrainer;
use crate::geometry::Quat;
use crate::io::Frame;

/// A trained network ready for inference.
pub struct Estimator {
    net: OrientationNet,
    /// Reusable buffers for inference on the CPU ([`NetTrainer::infer`]).
    buffers: std::sync::Mutex<NetTrainer>,
    meta: ModelMeta,
    device: Device,
}

/// One network estimate, in frame pixels.
#[derive(Clone, Copy, Debug)]
pub struct NetEstimate {
    /// Rotation (its axis is what the network is trained on).
    pub q: Quat,
    /// Shift from the frame centre.
    pub shift: [f64; 2],
    /// PSF σ.
    pub sigma: f64,
    /// Torus major radius.
    pub major_px: f64,
    /// Torus tube radius.
    pub tube_px: f64,
}

impl Estimator {
    /// Loads `weights` (safetensors) and its sidecar onto `device`.
    pub fn load(weights: &Path, device: &Device) -> Result<Self, TrainError> {
        let meta = load_meta(weights)?;
        if meta.net.outputs != OUTPUTS {
            return Err(TrainError::File {
                path: weights.to_path_buf(),
                message: format!(
                    "model has {} outputs, this version reads {OUTPUTS}",
                    meta.net.outputs
                ),
            });
        }
        // SAFETY of mmap is avoided: the file is read into memory.
        let bytes = std::fs::read(weights).map_err(|e| TrainError::File {
            path: weights.to_path_buf(),
            message: e.to_string(),
        })?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, device).map_err(|e| {
            TrainError::File {
                path: weights.to_path_buf(),
                message: format!("not a safetensors model: {e}"),
            }
        })?;
        let net = OrientationNet::new(vb, &meta.net).map_err(|e| TrainError::File {
            path: weights.to_path_buf(),
            message: format!("weights do not match the sidecar's architecture: {e}"),
        })?;
        Ok(Self {
            net,
            buffers: std::sync::Mutex::new(NetTrainer::new()),
            meta,
            device: device.clone(),
        })
    }

    /// The sidecar.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// The device the network runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Estimates a batch of frames.
    pub fn estimate(&self, frames: &[&Frame]) -> Result<Vec<NetEstimate>, TrainError> {
        if frames.is_empty() {
            return Ok(Vec::new());
        }
        let size = self.meta.net.input_size;
        let prepared: Vec<_> = frames
            .par_iter()
            .map(|f| prepare(&f.data, f.width, f.height, size))
            .collect();
        let input: Vec<f32> = prepared
            .iter()
            .flat_map(|p| p.input.iter().copied())
            .collect();
        let x = Tensor::from_vec(input, (frames.len(), 1, size, size), &self.device)?;
        // concurrent callers (or a poisoned lock) take the graph-building forward pass
        let out = match self.buffers.try_lock() {
            Ok(mut buffers) => buffers.infer(&self.net, &x)?,
            Err(_) => self.net.forward(&x)?,
        };
        let out = out.to_device(&Device::Cpu)?.to_vec2::<f32>()?;
        Ok(out
            .iter()
            .zip(&prepared)
            .map(|(o, p)| {
                let six = [0, 1, 2, 3, 4, 5].map(|k| o[k] as f64);
                let q = Quat::try_from_6d(&six).unwrap_or(Quat::IDENTITY);
                let major = REFERENCE_MAJOR_PX * (o[9] as f64).clamp(-3.0, 3.0).exp();
                NetEstimate {
                    q,
                    shift: [
                        p.window_offset[0] + SHIFT_UNIT * o[6] as f64,
                        p.window_offset[1] + SHIFT_UNIT * o[7] as f64,
                    ],
                    sigma: (o[8] as f64).clamp(-3.0, 4.0).exp(),
                    major_px: major,
                    tube_px: major * (o[10] as f64).clamp(0.0, 0.95),
                }
            })
            .collect())
    }
}
