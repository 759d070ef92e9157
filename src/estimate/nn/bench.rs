//! Throughput of the orientation CNN (what `posescope bench` reports), on the
//! CPU or, with [`bench_cnn_on`], on a GPU.
//!
//! Both measurements run on random frames after a warm-up:
//! * forward: one inference pass per iteration ([`NetTrainer::infer`]: no
//!   backprop graph, reused buffers; [`OrientationNet::forward`] for the
//!   stock backend);
//! * training step: forward, MSE loss against random targets, backward and an
//!   AdamW update: with [`FusedAdamW`] through [`NetTrainer::step`] (the
//!   hand-written backward pass for the fast backend, candle's autograd
//!   otherwise), with [`candle_nn::AdamW`] through candle's autograd.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{bail, DType, Device, Result, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use super::conv::ConvBackend;
use super::net::{NetConfig, OrientationNet};
use super::optim::{AdamWKind, FusedAdamW};
use super::trainer::NetTrainer;

/// Set once [`tune_malloc`] has applied its settings.
static MALLOC_TUNED: AtomicBool = AtomicBool::new(false);

/// Tunes glibc's malloc for training loops, process-wide: allocations up to
/// 32 MiB come from the heap instead of fresh `mmap`s, and freed memory is
/// kept instead of being returned to the kernel (retained up to the peak
/// footprint).
///
/// Every candle op allocates its output, and with glibc's defaults each
/// large activation or gradient buffer is mapped and page-faulted in anew
/// on every step; on the 2-core benchmark machine this tuning raised the
/// training throughput of the HOLLy net at batch 32 by about 30 %. Call it
/// early in `main`, before spawning threads. Returns whether the settings
/// were applied (only on Linux with glibc; a no-op returning `false`
/// elsewhere).
pub fn tune_malloc() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::ffi::c_int;
        extern "C" {
            fn mallopt(param: c_int, value: c_int) -> c_int;
        }
        const M_TRIM_THRESHOLD: c_int = -1;
        const M_TOP_PAD: c_int = -2;
        const M_MMAP_THRESHOLD: c_int = -3;
        // SAFETY: mallopt only sets allocator parameters (under glibc's
        // arena lock); it returns 1 on success.
        let ok = unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1
                && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1
                && mallopt(M_TOP_PAD, 64 << 20) == 1
        };
        if ok {
            MALLOC_TUNED.store(true, Ordering::Relaxed);
        }
        ok
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Images per second for inference and for training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    pub backend: ConvBackend,
    pub optimizer: AdamWKind,
    /// Whether [`tune_malloc`] was applied in this process.
    pub malloc_tuned: bool,
    pub batch: usize,
    /// Timed iterations of each measurement (after the warm-up).
    pub iters: usize,
    /// Rayon threads available to the run.
    pub threads: usize,
    /// `cpu`, `cuda` or `metal`.
    #[serde(default = "cpu_name")]
    pub device: String,
    pub forward_img_per_s: f64,
    pub train_step_img_per_s: f64,
}

fn cpu_name() -> String {
    "cpu".into()
}

/// Benchmarks `cfg` on the CPU with the fast convolution and the fused
/// AdamW; see [`bench_cnn_with`].
pub fn bench_cnn(cfg: &NetConfig, batch: usize, iters: usize) -> Result<BenchResult> {
    bench_cnn_with(cfg, batch, iters, ConvBackend::Fast, AdamWKind::Fused)
}

/// Benchmarks `cfg` on `dev`: on the CPU as [`bench_cnn`]; elsewhere with
/// candle's stock layers, autograd and [`candle_nn::AdamW`] (the path
/// training takes there), synchronising the device before each clock read.
pub fn bench_cnn_on(
    cfg: &NetConfig,
    batch: usize,
    iters: usize,
    dev: &Device,
) -> Result<BenchResult> {
    if dev.is_cpu() {
        return bench_cnn(cfg, batch, iters);
    }
    if batch == 0 || iters == 0 {
        bail!("bench_cnn: batch ({batch}) and iters ({iters}) must be positive");
    }
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, dev);
    let net = OrientationNet::with_backend(vb, cfg, ConvBackend::Stock)?;
    let s = cfg.input_size;
    let x = Tensor::randn(0f32, 1.0, (batch, 1, s, s), dev)?;
    let target = Tensor::randn(0f32, 1.0, (batch, cfg.outputs), dev)?;
    let warmup = (iters / 5).max(1);
    let sync = || dev.synchronize();
    let forward_s = time(warmup, iters, || {
        net.forward(&x)?;
        sync()
    })?;
    let params = ParamsAdamW {
        lr: 1e-4,
        ..ParamsAdamW::default()
    };
    let mut opt = AdamW::new(varmap.all_vars(), params)?;
    let train_s = time(warmup, iters, || {
        let loss = candle_nn::loss::mse(&net.forward(&x)?, &target)?;
        opt.backward_step(&loss)?;
        sync()
    })?;
    let images = (batch * iters) as f64;
    Ok(BenchResult {
        backend: ConvBackend::Stock,
        optimizer: AdamWKind::Candle,
        malloc_tuned: MALLOC_TUNED.load(Ordering::Relaxed),
        batch,
        iters,
        threads: rayon::current_num_threads(),
        device: super::device::device_name(dev).into(),
        forward_img_per_s: images / forward_s,
        train_step_img_per_s: images / train_s,
    })
}

/// Benchmarks `cfg` on the CPU with the given convolution backend and
/// optimiser: `iters` timed forward passes and `iters` timed training steps
/// on a batch of `batch` random frames, each after `max(1, iters / 5)`
/// untimed ones.
pub fn bench_cnn_with(
    cfg: &NetConfig,
    batch: usize,
    iters: usize,
    backend: ConvBackend,
    optimizer: AdamWKind,
) -> Result<BenchResult> {
    if batch == 0 || iters == 0 {
        bail!("bench_cnn: batch ({batch}) and iters ({iters}) must be positive");
    }
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let net = OrientationNet::with_backend(vb, cfg, backend)?;
    let s = cfg.input_size;
    let x = Tensor::randn(0f32, 1.0, (batch, 1, s, s), &dev)?;
    let target = Tensor::randn(0f32, 1.0, (batch, cfg.outputs), &dev)?;
    let warmup = (iters / 5).max(1);

    let mut buffers = NetTrainer::new();
    let forward_s = time(warmup, iters, || buffers.infer(&net, &x).map(drop))?;
    let params = ParamsAdamW {
        lr: 1e-4,
        ..ParamsAdamW::default()
    };
    let vars = varmap.all_vars();
    let train_s = match optimizer {
        AdamWKind::Fused => {
            let mut opt = FusedAdamW::new(vars, params)?;
            let mut trainer = NetTrainer::new();
            time(warmup, iters, || {
                let mse = |out: &Tensor| candle_nn::loss::mse(out, &target);
                trainer.step(&net, &x, mse, &mut opt).map(drop)
            })?
        }
        AdamWKind::Candle => {
            let opt = AdamW::new(vars, params)?;
            time_training(&net, opt, &x, &target, warmup, iters)?
        }
    };
    let images = (batch * iters) as f64;
    Ok(BenchResult {
        backend,
        optimizer,
        malloc_tuned: MALLOC_TUNED.load(Ordering::Relaxed),
        batch,
        iters,
        threads: rayon::current_num_threads(),
        device: cpu_name(),
        forward_img_per_s: images / forward_s,
        train_step_img_per_s: images / train_s,
    })
}

/// Seconds taken by `iters` training steps after `warmup` untimed ones.
fn time_training<O: Optimizer>(
    net: &OrientationNet,
    mut opt: O,
    x: &Tensor,
    target: &Tensor,
    warmup: usize,
    iters: usize,
) -> Result<f64> {
    time(warmup, iters, || {
        let loss = candle_nn::loss::mse(&net.forward(x)?, target)?;
        opt.backward_step(&loss)
    })
}

/// Seconds taken by `iters` calls of `f` after `warmup` untimed ones.
fn time(warmup: usize, iters: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let start = Instant::now();
    for _ in 0..iters {
        f()?;
    }
    Ok(start.elapsed().as_secs_f64())
}
