//! `posescope train`: trains the orientation network on synthetic frames
//! generated on the fly; checkpoints and a JSON sidecar at --out.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::ProgressStyle;

use super::args::{progress, DeviceArg};
use posescope::estimate::pose::pipeline::{device_name, pick_device};
use posescope::estimate::pose::train::{train_on, LossKind, TrainConfig};
use posescope::shapes::ModelKind;

#[derive(Clone, Copy, ValueEnum)]
pub enum LossArg {
    Supervised,
    Render,
}

#[derive(Args)]
pub struct TrainArgs {
    /// Model to train for (only the torus has a network so far).
    #[arg(long, default_value = "torus")]
    model: ModelKind,
    /// Output weights (.safetensors); the sidecar goes next to it as .json.
    #[arg(long)]
    out: PathBuf,
    /// Epochs of --epoch-size frames.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Frames per epoch (data is generated on the fly, never repeated).
    #[arg(long, default_value_t = 8192)]
    epoch_size: usize,
    /// Frames per step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Peak learning rate (AdamW with cosine decay).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Seed of the weights and the data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Continue from the weights and sidecar at --out.
    #[arg(long)]
    resume: bool,
    /// Loss: supervised (symmetry-aware, on the axis) or render (self-supervised render-and-compare).
    #[arg(long, value_enum, default_value = "supervised")]
    loss: LossArg,
    /// Validation frames.
    #[arg(long, default_value_t = 256)]
    val_frames: usize,
    /// Steps between validations and checkpoints.
    #[arg(long, default_value_t = 200)]
    val_every: usize,
    /// Where to train: cpu (the fast path), cuda or metal (candle's stock
    /// layers on that GPU; needs a build with that feature), or auto.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceArg,
}

pub fn run(a: TrainArgs) -> Result<()> {
    if !a.model.is_torus() {
        bail!(
            "only the torus has a trainable network so far (got --model {})",
            a.model
        );
    }
    if let Some(t) = a.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t.max(1))
            .build_global()
            .context("setting the thread count")?;
    }
    let steps = (a.epochs * a.epoch_size).div_ceil(a.batch.max(1));
    let cfg = TrainConfig {
        steps,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
        val_frames: a.val_frames,
        val_every: a.val_every,
        loss: match a.loss {
            LossArg::Supervised => LossKind::Supervised,
            LossArg::Render => LossKind::Render,
        },
        command: std::env::args().collect::<Vec<_>>().join(" "),
        ..TrainConfig::default()
    };
    let dev = pick_device(a.device.into())?;
    let bar = progress(steps as u64, "train");
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} steps ({per_sec}, eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let device = device_name(&dev);
    let meta = train_on(&cfg, &a.out, a.resume, &dev, &|p| {
        bar.set_position(p.step as u64);
        let val = p
            .val_median_deg
            .map_or("-".to_string(), |v| format!("{v:.2}°"));
        bar.set_message(format!(
            "{device}: {:.0} img/s, loss {:.4} val median {val}",
            p.img_per_s, p.loss
        ));
    })?;
    bar.finish_and_clear();
    let v = meta.validation.axis_error_deg;
    println!(
        "trained {} steps in {:.0} s → {} (validation axis error: median {} p90 {})",
        meta.steps_done,
        meta.wall_s,
        a.out.display(),
        v.map_or("-".into(), |s| format!("{:.2}°", s.median)),
        v.map_or("-".into(), |s| format!("{:.2}°", s.p90)),
    );
    Ok(())
}
