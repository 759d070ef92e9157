//! Training the orientation network on synthetic frames generated on the fly,
//! and the model file (safetensors weights + JSON sidecar) it produces.
//!
//! # Outputs of the network
//! `[0..6)` the rotation in the continuous 6-D representation (Zhou et al.),
//! `[6..8)` the shift in frame pixels / 8, `[8]` ln σ (frame pixels),
//! `[9]` ln(R / 20 px), `[10]` r / R.
//!
//! # Loss
//! The supervised loss does not penalise poses the image cannot tell apart:
//! for an axial, mirror-symmetric model (the torus) the rotation term is
//! `1 − max((p·t)², (p·mirror_z(t))²)` for predicted axis `p` and true axis
//! `t` — zero for `±t` and `±mirror_z(t)` alike. Shift, σ and the torus
//! geometry add squared errors (weight 0.1 each).

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Optimizer, ParamsAdamW, VarBuilder, VarMap};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::eval::Stats;
use super::preprocess::{prepare, FIELD};
use crate::estimate::nn::conv::ConvBackend;
use crate::estimate::nn::net::{NetConfig, OrientationNet};
use crate::estimate::nn::optim::FusedAdamW;
use crate::estimate::nn::trainer::NetTrainer;
use crate::geometry::axis_error;
use crate::render::cpu::rotation_from_6d;
use crate::synth::{generate_frame, SynthConfig};

/// Number of network outputs (see the module docs).
pub const OUTPUTS: usize = 11;
/// The torus major radius that `ln(R / 20 px)` is relative to.
pub const REFERENCE_MAJOR_PX: f64 = 20.0;
pub(crate) const SHIFT_UNIT: f64 = 8.0;

/// Errors from training and from model files.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Synthetic data could not be generated.
    #[error(transparent)]
    Synth(#[from] crate::synth::SynthError),
    /// A model file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The settings are unusable.
    #[error("invalid training settings: {0}")]
    Config(String),
    /// An output could not be written.
    #[error(transparent)]
    Export(#[from] crate::io::OutputError),
}

/// Which loss trains the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LossKind {
    /// Supervised, symmetry-aware (see the module docs).
    Supervised,
    /// Self-supervised render-and-compare, as in the HOLLy prototype: the
    /// predicted torus (pose, shift, σ, R, r) is rendered through the
    /// differentiable splat, binned like the input, both images are scaled
    /// to a sum of 100, and the loss is their mean absolute difference. No
    /// pose labels are used; symmetric poses are equivalent by construction.
    Render,
}

/// The optimiser of a training run (see `POSESCOPE_TRAIN_STOCK` in [`train`]).
enum TrainOpt {
    /// [`NetTrainer`]'s step (hand-written backward pass) with FusedAdamW.
    Fused(Box<NetTrainer>, FusedAdamW),
    /// candle's autograd with `candle_nn::AdamW`.
    Candle(candle_nn::AdamW),
}

impl TrainOpt {
    fn set_learning_rate(&mut self, lr: f64) {
        match self {
            Self::Fused(_, o) => o.set_learning_rate(lr),
            Self::Candle(o) => o.set_learning_rate(lr),
        }
    }

    /// One step on the input `x`: forward, `loss_fn` on the raw outputs,
    /// backward, update. Returns the loss.
    fn step<F>(
        &mut self,
        net: &OrientationNet,
        x: &Tensor,
        loss_fn: F,
    ) -> candle_core::Result<Tensor>
    where
        F: FnOnce(&Tensor) -> candle_core::Result<Tensor> + Send,
    {
        match self {
            Self::Fused(trainer, o) => trainer.step(net, x, loss_fn, o),
            Self::Candle(o) => {
                let loss = loss_fn(&net.forward(x)?)?;
                o.backward_step(&loss)?;
                Ok(loss)
            }
        }
    }
}

/// Everything that defines a training run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Ranges of the synthetic training data (its `frames` and `seed` are ignored).
    pub data: SynthConfig,
    /// Network architecture.
    pub net: NetConfig,
    /// Optimiser steps.
    pub steps: usize,
    /// Frames per step.
    pub batch: usize,
    /// Peak learning rate (AdamW, cosine decay to 5 %).
    pub lr: f64,
    /// Seed of the weights and the data.
    pub seed: u64,
    /// Loss.
    pub loss: LossKind,
    /// Validation frames (never used for training).
    pub val_frames: usize,
    /// Steps between validations and checkpoints.
    pub val_every: usize,
    /// The command line that started the run, recorded in the sidecar.
    pub command: String,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            data: SynthConfig::default(),
            net: NetConfig {
                outputs: OUTPUTS,
                ..NetConfig::default()
            },
            steps: 2000,
            batch: 32,
            lr: 1e-3,
            seed: 1,
            loss: LossKind::Supervised,
            val_frames: 256,
            val_every: 200,
            command: String::new(),
        }
    }
}

/// Validation figures, in degrees.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Validation {
    /// Frames.
    pub frames: usize,
    /// Symmetry-aware axis error of the network alone.
    pub axis_error_deg: Option<StatsRecord>,
}

/// [`Stats`] as stored in the sidecar.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct StatsRecord {
    /// Median.
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Mean.
    pub mean: f64,
}

impl From<Stats> for StatsRecord {
    fn from(s: Stats) -> Self {
        Self {
            median: s.median,
            p90: s.p90,
            mean: s.mean,
        }
    }
}

/// The JSON sidecar of a model file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Sidecar format version.
    pub format: u32,
    /// Architecture.
    pub net: NetConfig,
    /// Frame window the network sees, frame pixels.
    pub field_px: usize,
    /// What the outputs mean.
    pub outputs: Vec<String>,
    /// How frames are normalised.
    pub normalisation: String,
    /// The training run.
    pub training: TrainConfig,
    /// Steps completed.
    pub steps_done: usize,
    /// Wall time of the training so far, seconds.
    pub wall_s: f64,
    /// Last training loss (running mean).
    pub train_loss: f64,
    /// Validation figures at the last checkpoint.
    pub validation: Validation,
    /// Machine the run used (CPU model and thread count).
    pub machine: String,
}

/// The sidecar path of a weights file: `x.safetensors` → `x.json`.
pub fn sidecar_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

/// A batch of prepared inputs and targets.
struct Batch {
    input: Tensor,
    axis: Tensor,
    other: Tensor,
    axes: Vec<[f64; 3]>,
}

/// Generates frames `start..start + n` of the data stream and prepares them.
fn make_batch(
    data: &SynthConfig,
    start: usize,
    n: usize,
    size: usize,
    dev: &Device,
) -> Result<Batch, TrainError> {
    let items: Vec<(Vec<f32>, [f64; 3], [f32; 5])> = (start..start + n)
        .into_par_iter()
        .map(|i| -> Result<_, TrainError> {
            let f = generate_frame(data, i)?;
            let p = prepare(&f.image.data, f.image.width, f.image.height, size);
            let t = &f.truth;
            let num = |k: &str| {
                t.get(k)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(f64::NAN)
            };
            let (major, tube) = (num("major_radius_px"), num("tube_radius_px"));
            let other = [
                ((t.pose.shift[0] - p.window_offset[0]) / SHIFT_UNIT) as f32,
                ((t.pose.shift[1] - p.window_offset[1]) / SHIFT_UNIT) as f32,
                t.sigma.ln() as f32,
                (major / REFERENCE_MAJOR_PX).ln() as f32,
                (tube / major) as f32,
            ];
            Ok((p.input, t.pose.q.axis(), other))
        })
        .collect::<Result<_, _>>()?;
    let mut input = Vec::with_capacity(n * size * size);
    let mut axis = Vec::with_capacity(n * 3);
    let mut other = Vec::with_capacity(n * 5);
    let mut axes = Vec::with_capacity(n);
    for (i, a, o) in items {
        input.extend(i);
        axis.extend(a.map(|x| x as f32));
        other.extend(o);
        axes.push(a);
    }
    Ok(Batch {
        input: Tensor::from_vec(input, (n, 1, size, size), dev)?,
        axis: Tensor::from_vec(axis, (n, 3), dev)?,
        other: Tensor::from_vec(other, (n, 5), dev)?,
        axes,
    })
}

/// The predicted axis `R·e_z` from raw outputs `(B, OUTPUTS)`.
pub fn predicted_axis(out: &Tensor) -> candle_core::Result<Tensor> {
    let r = rotation_from_6d(&out.narrow(1, 0, 6)?)
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    r.narrow(2, 2, 1)?.squeeze(2)
}

/// Unit torus directions for the render loss: ring directions `e` and tube
/// directions `t`, so that a torus of radii (R, r) is `R·e + r·t`.
struct TorusBasis {
    ring: Tensor,
    tube: Tensor,
    weights: Tensor,
}

impl TorusBasis {
    fn new(dev: &Device) -> candle_core::Result<Self> {
        let (n_az, n_tube) = (64usize, 12usize);
        let mut ring = Vec::with_capacity(n_az * n_tube * 3);
        let mut tube = Vec::with_capacity(n_az * n_tube * 3);
        for i in 0..n_az {
            let phi = std::f32::consts::TAU * i as f32 / n_az as f32;
            for j in 0..n_tube {
                let v = std::f32::consts::TAU * (j as f32 + 0.5) / n_tube as f32;
                ring.extend([phi.cos(), phi.sin(), 0.0]);
                tube.extend([v.cos() * phi.cos(), v.cos() * phi.sin(), v.sin()]);
            }
        }
        let n = n_az * n_tube;
        Ok(Self {
            ring: Tensor::from_vec(ring, (1, n, 3), dev)?,
            tube: Tensor::from_vec(tube, (1, n, 3), dev)?,
            weights: Tensor::ones((1, n), DType::F32, dev)?,
        })
    }
}

/// Scales each image of `(B, …)` to a sum of 100, as the prototype did.
fn sum_to_100(x: &Tensor) -> candle_core::Result<Tensor> {
    let b = x.dim(0)?;
    let flat = x.reshape((b, ()))?;
    let s = flat.sum_keepdim(1)?.clamp(1e-6, f64::INFINITY)?;
    flat.broadcast_div(&s)? * 100.0
}

/// The render-and-compare loss (see [`LossKind::Render`]).
fn render_loss(out: &Tensor, batch: &Batch, basis: &TorusBasis) -> candle_core::Result<Tensor> {
    let b = out.dim(0)?;
    let size = batch.input.dim(3)?;
    let bin = FIELD / size;
    let rot = rotation_from_6d(&out.narrow(1, 0, 6)?)
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let shift = (out.narrow(1, 6, 2)? * SHIFT_UNIT)?;
    let sigma = out.narrow(1, 8, 1)?.clamp(-1.5, 2.5)?.exp()?.squeeze(1)?;
    let major = (out.narrow(1, 9, 1)?.clamp(-2.0, 2.0)?.exp()? * REFERENCE_MAJOR_PX)?; // (B,1)
    let tube = (&major * out.narrow(1, 10, 1)?.clamp(0.0, 0.9)?)?;
    let n = basis.ring.dim(1)?;
    let pts = basis
        .ring
        .broadcast_mul(&major.reshape((b, 1, 1))?)?
        .broadcast_add(&basis.tube.broadcast_mul(&tube.reshape((b, 1, 1))?)?)?; // (B,N,3)
    let cam = pts.matmul(&rot.narrow(1, 0, 2)?.transpose(1, 2)?)?; // (B,N,2)
    let centre =
        Tensor::new(&[FIELD as f32 / 2.0, FIELD as f32 / 2.0], out.device())?.reshape((1, 1, 2))?;
    let uv = cam
        .broadcast_add(&shift.reshape((b, 1, 2))?)?
        .broadcast_add(&centre)?;
    let w = basis.weights.broadcast_as((b, n))?.contiguous()?;
    let img = crate::render::cpu::splat(&uv, &w, &sigma, FIELD, FIELD)
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let img = img.reshape((b, 1, FIELD, FIELD))?.avg_pool2d(bin)?;
    let pred = sum_to_100(&img)?;
    let target = sum_to_100(&batch.input.clamp(0.0, f64::INFINITY)?)?;
    (pred - target)?.abs()?.mean_all()
}

/// The symmetry-aware supervised loss (module docs).
fn loss(out: &Tensor, batch: &Batch) -> candle_core::Result<Tensor> {
    let p = predicted_axis(out)?;
    let flip = Tensor::new(&[1.0f32, 1.0, -1.0], out.device())?;
    let m = batch.axis.broadcast_mul(&flip)?;
    let c1 = (&p * &batch.axis)?.sum(D::Minus1)?.sqr()?;
    let c2 = (&p * &m)?.sum(D::Minus1)?.sqr()?;
    let rot = (1.0 - c1.maximum(&c2)?)?.mean_all()?;
    let rest = (out.narrow(1, 6, 5)? - &batch.other)?.sqr()?.mean_all()?;
    rot + (rest * 0.5)?
}

fn validate(net: &OrientationNet, val: &Batch) -> Result<Option<Stats>, TrainError> {
    let mut errs = Vec::new();
    let n = val.axes.len();
    for s in (0..n).step_by(64) {
        let len = 64.min(n - s);
        let out = net.forward(&val.input.narrow(0, s, len)?)?;
        let p = predicted_axis(&out)?.to_vec2::<f32>()?;
        for (k, a) in p.iter().enumerate() {
            let a = [a[0] as f64, a[1] as f64, a[2] as f64];
            errs.push(axis_error(a, val.axes[s + k]).to_degrees());
        }
    }
    Ok(Stats::of(&errs))
}

/// Re-initialises every variable from `seed` (candle's CPU initialiser cannot
/// be seeded): Kaiming-uniform weights, `bound = √(6 / fan_in)`, and zero biases.
/// Variables are visited in name order, so the result depends on the seed only.
fn seeded_init(varmap: &VarMap, seed: u64) -> Result<(), TrainError> {
    use rand::{Rng, SeedableRng};
    let data = varmap
        .data()
        .lock()
        .map_err(|_| TrainError::Config("variable map poisoned".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let n: usize = dims.iter().product();
        let values: Vec<f32> = if name.ends_with("bias") || dims.len() < 2 {
            vec![0.0; n]
        } else {
            let fan_in: usize = dims[1..].iter().product();
            let bound = (6.0 / fan_in as f64).sqrt() as f32;
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        };
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
    }
    Ok(())
}

/// Progress of a run, for bars and logs.
#[derive(Clone, Copy, Debug)]
pub struct TrainProgress {
    /// Steps done.
    pub step: usize,
    /// Total steps.
    pub steps: usize,
    /// Running mean of the loss.
    pub loss: f64,
    /// Median validation axis error of the last validation, degrees.
    pub val_median_deg: Option<f64>,
    /// Training throughput of this run so far (frames per second, data
    /// generation and validation included).
    pub img_per_s: f64,
}

fn machine(dev: &Device) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let threads = rayon::current_num_threads();
    if dev.is_cpu() {
        format!("{cpu}, {threads} threads")
    } else {
        let name = crate::estimate::nn::device::device_name(dev);
        format!("{name} device 0 (host: {cpu}, {threads} threads)")
    }
}

fn save(varmap: &VarMap, meta: &ModelMeta, weights: &Path) -> Result<(), TrainError> {
    let file_err = |path: &Path, message: String| TrainError::File {
        path: path.to_path_buf(),
        message,
    };
    if let Some(dir) = weights.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e.to_string()))?;
    }
    let tmp = crate::io::temp_sibling(weights);
    varmap
        .save(&tmp)
        .map_err(|e| file_err(weights, e.to_string()))?;
    std::fs::rename(&tmp, weights).map_err(|e| file_err(weights, e.to_string()))?;
    let side = sidecar_path(weights);
    let json = serde_json::to_string_pretty(meta).map_err(|e| file_err(&side, e.to_string()))?;
    crate::io::atomic_write(&side, |w| {
        use std::io::Write;
        w.write_all(json.as_bytes())
            .map_err(|e| file_err(&side, e.to_string()))
    })
}

/// Reads a sidecar.
pub fn load_meta(weights: &Path) -> Result<ModelMeta, TrainError> {
    let side = sidecar_path(weights);
    let text = std::fs::read_to_string(&side).map_err(|e| TrainError::File {
        path: side.clone(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| TrainError::File {
        path: side,
        message: format!("not a PoseScope model sidecar: {e}"),
    })
}

/// Trains (or, with `resume`, continues training) and writes `weights` plus
/// its sidecar at every validation. Deterministic for a given seed and
/// thread count. Each step runs [`NetTrainer::step`] (fast convolution,
/// hand-written backward pass, [`FusedAdamW`]). With the environment
/// variable `POSESCOPE_TRAIN_STOCK=1` it uses candle's stock convolution,
/// autograd and `candle_nn::AdamW` instead (for timing comparisons only).
pub fn train(
    cfg: &TrainConfig,
    weights: &Path,
    resume: bool,
    on_progress: &dyn Fn(TrainProgress),
) -> Result<ModelMeta, TrainError> {
    train_on(cfg, weights, resume, &Device::Cpu, on_progress)
}

/// [`train`] on `dev`. Off the CPU the fast convolution, its hand-written
/// backward pass and the fused AdamW (all CPU code) give way to candle's
/// stock convolution, autograd and `candle_nn::AdamW` on that device; the
/// render loss, whose splat is a CPU op, is refused there rather than run
/// through copies to the CPU.
pub fn train_on(
    cfg: &TrainConfig,
    weights: &Path,
    resume: bool,
    dev: &Device,
    on_progress: &dyn Fn(TrainProgress),
) -> Result<ModelMeta, TrainError> {
    if !dev.is_cpu() && cfg.loss == LossKind::Render {
        return Err(TrainError::Config(
            "the render loss runs on the CPU only (its splat is a CPU op); use the supervised loss on a GPU".into(),
        ));
    }
    if cfg.batch == 0 || cfg.steps == 0 || cfg.lr.is_nan() || cfg.lr <= 0.0 {
        return Err(TrainError::Config(
            "batch, steps and lr must be positive".into(),
        ));
    }
    if cfg.net.outputs != OUTPUTS
        || cfg.net.input_size == 0
        || !FIELD.is_multiple_of(cfg.net.input_size)
    {
        return Err(TrainError::Config(format!(
            "the network needs {OUTPUTS} outputs and an input size dividing {FIELD}"
        )));
    }
    cfg.data.validate()?;
    let mut varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, dev);
    // POSESCOPE_TRAIN_STOCK=1: candle's own conv2d and AdamW, for timing the
    // fast path against (docs/CNN_PERFORMANCE.md); same weights and results
    // up to rounding. Off the CPU the stock path is the only one.
    let stock =
        !dev.is_cpu() || std::env::var_os("POSESCOPE_TRAIN_STOCK").is_some_and(|v| v != "0");
    let backend = if stock {
        ConvBackend::Stock
    } else {
        ConvBackend::Fast
    };
    let net = OrientationNet::with_backend(vb, &cfg.net, backend)?;
    seeded_init(&varmap, cfg.seed)?;
    let mut meta = ModelMeta {
        format: 1,
        net: cfg.net.clone(),
        field_px: FIELD,
        outputs: [
            "6d_rotation_0", "6d_rotation_1", "6d_rotation_2", "6d_rotation_3", "6d_rotation_4", "6d_rotation_5",
            "shift_x_px/8", "shift_y_px/8", "ln_sigma_px", "ln(R_px/20)", "r/R",
        ]
        .map(String::from)
        .to_vec(),
        normalisation: "128 px window (centroid crop), 2×2 binning to 64², minus 20th percentile, divided by 99.5th percentile, clamped to [-1, 4]".into(),
        training: cfg.clone(),
        steps_done: 0,
        wall_s: 0.0,
        train_loss: f64::NAN,
        validation: Validation::default(),
        machine: machine(dev),
    };
    if resume && weights.exists() {
        varmap.load(weights).map_err(|e| TrainError::File {
            path: weights.to_path_buf(),
            message: e.to_string(),
        })?;
        let old = load_meta(weights)?;
        meta.steps_done = old.steps_done;
        meta.wall_s = old.wall_s;
    }
    let params = ParamsAdamW {
        lr: cfg.lr,
        weight_decay: 1e-4,
        ..Default::default()
    };
    let mut opt = if stock {
        TrainOpt::Candle(candle_nn::AdamW::new(varmap.all_vars(), params)?)
    } else {
        TrainOpt::Fused(
            Box::new(NetTrainer::new()),
            FusedAdamW::new(varmap.all_vars(), params)?,
        )
    };
    // validation data: its own seed, never seen in training
    let val_data = SynthConfig {
        seed: cfg.seed.wrapping_add(0x9E37_79B9_7F4A_7C15),
        ..cfg.data.clone()
    };
    let train_data = SynthConfig {
        seed: cfg.seed,
        ..cfg.data.clone()
    };
    let val = make_batch(&val_data, 0, cfg.val_frames.max(1), cfg.net.input_size, dev)?;
    let basis = TorusBasis::new(dev)?;
    let t0 = Instant::now();
    let wall0 = meta.wall_s;
    let mut running = f64::NAN;
    let mut last_val = None;
    let first_step = meta.steps_done;
    for step in first_step..cfg.steps {
        let progress = step as f64 / cfg.steps as f64;
        opt.set_learning_rate(
            cfg.lr * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())),
        );
        let batch = make_batch(
            &train_data,
            step * cfg.batch,
            cfg.batch,
            cfg.net.input_size,
            dev,
        )?;
        let l = opt.step(&net, &batch.input, |out| match cfg.loss {
            LossKind::Supervised => loss(out, &batch),
            LossKind::Render => render_loss(out, &batch, &basis),
        })?;
        let lv = l.to_scalar::<f32>()? as f64;
        running = if running.is_nan() {
            lv
        } else {
            0.98 * running + 0.02 * lv
        };
        let done = step + 1;
        if done % cfg.val_every.max(1) == 0 || done == cfg.steps {
            let v = validate(&net, &val)?;
            last_val = v.map(|s| s.median);
            meta.steps_done = done;
            meta.wall_s = wall0 + t0.elapsed().as_secs_f64();
            meta.train_loss = running;
            meta.validation = Validation {
                frames: val.axes.len(),
                axis_error_deg: v.map(StatsRecord::from),
            };
            save(&varmap, &meta, weights)?;
        }
        let elapsed = t0.elapsed().as_secs_f64();
        on_progress(TrainProgress {
            step: done,
            steps: cfg.steps,
            loss: running,
            val_median_deg: last_val,
            img_per_s: ((done - first_step) * cfg.batch) as f64 / elapsed.max(1e-9),
        });
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::super::estimator::Estimator;
    use super::*;
    use crate::synth::Range;

    /// A network and data small enough to train for a few steps in a test.
    fn tiny(steps: usize, loss: LossKind, val_frames: usize, val_every: usize) -> TrainConfig {
        TrainConfig {
            data: SynthConfig {
                sites: 60,
                ..SynthConfig::default()
            },
            net: NetConfig {
                input_size: 32,
                channels: vec![8, 8, 16],
                hidden: 32,
                outputs: OUTPUTS,
                ..NetConfig::default()
            },
            steps,
            batch: 8,
            lr: 2e-3,
            loss,
            val_frames,
            val_every,
            ..TrainConfig::default()
        }
    }

    /// Trains `cfg` into `weights` and returns the sidecar and the running loss after each step.
    fn train_recording(cfg: &TrainConfig, weights: &Path) -> (ModelMeta, Vec<f64>) {
        let losses = std::sync::Mutex::new(Vec::new());
        let meta = train(cfg, weights, false, &|p| {
            losses.lock().unwrap().push(p.loss)
        })
        .unwrap();
        (meta, losses.into_inner().unwrap())
    }

    /// max |a − b| over max |b| (floor 1e-3).
    fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
        let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        let diff = a
            .iter()
            .zip(&b)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        diff / scale
    }

    /// The fast training step with both real losses: the same gradients as
    /// candle's autograd through the whole network, and after a few steps
    /// the same weights.
    #[test]
    fn fast_step_matches_autograd_for_both_losses() {
        let cfg = tiny(1, LossKind::Supervised, 1, 1);
        let dev = Device::Cpu;
        let basis = TorusBasis::new(&dev).unwrap();
        for kind in [LossKind::Supervised, LossKind::Render] {
            let loss_of = |out: &Tensor, batch: &Batch| match kind {
                LossKind::Supervised => loss(out, batch),
                LossKind::Render => render_loss(out, batch, &basis),
            };
            let build = || {
                let varmap = VarMap::new();
                let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
                let net = OrientationNet::new(vb, &cfg.net).unwrap();
                seeded_init(&varmap, 5).unwrap();
                (net, varmap)
            };
            let ((fast, fast_vars), (auto, auto_vars)) = (build(), build());
            // gradients of one batch
            let batch = make_batch(&cfg.data, 100, 6, cfg.net.input_size, &dev).unwrap();
            let reference = loss_of(&auto.forward(&batch.input).unwrap(), &batch)
                .unwrap()
                .backward()
                .unwrap();
            let mut trainer = NetTrainer::new();
            trainer
                .backward(&fast, &batch.input, |out| loss_of(out, &batch))
                .unwrap();
            let grads = trainer.gradients(&fast).unwrap().unwrap();
            for (i, (g, p)) in grads.iter().zip(auto.parameters().unwrap()).enumerate() {
                let e = rel_err(g, reference.get(&p).unwrap());
                assert!(e < 1e-4, "{kind:?} parameter {i}: gradient rel err {e}");
            }
            // a few steps
            let params = ParamsAdamW {
                lr: 1e-3,
                weight_decay: 1e-4,
                eps: 1e-4,
                ..Default::default()
            };
            let mut fast_opt = TrainOpt::Fused(
                Box::new(NetTrainer::new()),
                FusedAdamW::new(fast_vars.all_vars(), params.clone()).unwrap(),
            );
            let mut auto_opt = FusedAdamW::new(auto_vars.all_vars(), params).unwrap();
            for step in 0..3 {
                let batch = make_batch(&cfg.data, step * 8, 8, cfg.net.input_size, &dev).unwrap();
                let lf = fast_opt
                    .step(&fast, &batch.input, |out| loss_of(out, &batch))
                    .unwrap();
                let la = loss_of(&auto.forward(&batch.input).unwrap(), &batch).unwrap();
                auto_opt.backward_step(&la).unwrap();
                let (lf, la) = (
                    lf.to_scalar::<f32>().unwrap(),
                    la.to_scalar::<f32>().unwrap(),
                );
                assert!(
                    (lf - la).abs() < 1e-4 * la.abs().max(1.0),
                    "{kind:?} step {step}: {lf} vs {la}"
                );
            }
            for (i, (f, a)) in fast
                .parameters()
                .unwrap()
                .iter()
                .zip(auto.parameters().unwrap())
                .enumerate()
            {
                let d = crate::test_util::max_abs_diff(f, &a);
                assert!(d < 1e-5, "{kind:?} parameter {i}: weights differ by {d}");
            }
        }
    }

    #[test]
    fn render_loss_trains_without_labels() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = tiny(30, LossKind::Render, 8, 30);
        let (_, losses) = train_recording(&cfg, &dir.path().join("r.safetensors"));
        assert!(losses.iter().all(|l| l.is_finite()));
        assert!(
            *losses.last().unwrap() < losses[0],
            "render loss did not fall: {losses:?}"
        );
    }

    #[test]
    fn a_tiny_network_learns_and_round_trips_through_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let weights = dir.path().join("tiny.safetensors");
        let mut cfg = tiny(40, LossKind::Supervised, 16, 20);
        cfg.data.major_radius_px = Range::new(15.0, 25.0);
        let (meta, losses) = train_recording(&cfg, &weights);
        let (first, last) = (losses[0], *losses.last().unwrap());
        assert!(last < first, "running loss did not fall: {first} → {last}");
        assert_eq!(meta.steps_done, 40);
        assert!(meta.validation.axis_error_deg.is_some());
        let est = Estimator::load(&weights, &Device::Cpu).unwrap();
        let f = generate_frame(&cfg.data, 12345).unwrap();
        let e = est.estimate(&[&f.image]).unwrap();
        assert_eq!(e.len(), 1);
        assert!(e[0].sigma > 0.0 && e[0].major_px > 0.0);
        // a corrupt weights file is a clear error
        std::fs::write(&weights, b"not safetensors").unwrap();
        let err = Estimator::load(&weights, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("tiny.safetensors"), "{err}");
    }
}
