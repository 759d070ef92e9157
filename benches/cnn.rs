//! CNN throughput on the CPU: forward pass and training step (forward, MSE,
//! backward, AdamW) at batch 1 and 32, for the default orientation net and the
//! HOLLy prototype net, with the fast GEMM convolution and with candle's stock
//! `conv2d`.
//!
//! "forward_fast" is inference through [`NetTrainer::infer`] (no backprop
//! graph, reused buffers), "forward_fast_graph" `OrientationNet::forward`.
//! "train_fast" is the fast convolution with [`FusedAdamW`], trained through
//! [`NetTrainer`] (the hand-written backward pass of `posescope train`);
//! "fast_autograd" the same through candle's autograd; "fast_candle_adamw"
//! the fast convolution with `candle_nn::AdamW` (autograd); "stock" is candle's
//! `conv2d` with `candle_nn::AdamW`. The `optimizer` group times one AdamW
//! step on the HOLLy net's 3.0 M parameters.
//!
//! The harness applies `tune_malloc()` unless `POSESCOPE_DEFAULT_MALLOC` is
//! set.
//!
//! Run with `cargo bench --bench cnn` (filter with e.g. `-- holly`). The
//! PyTorch counterpart is `bench/pytorch_cnn.py`; results are recorded in
//! docs/CNN_PERFORMANCE.md.

use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use divan::counter::ItemsCount;
use divan::Bencher;
use posescope::estimate::nn::conv::ConvBackend;
use posescope::estimate::nn::net::{NetConfig, OrientationNet};
use posescope::estimate::nn::optim::{AdamWKind, FusedAdamW};
use posescope::estimate::nn::trainer::NetTrainer;

fn main() {
    // The recommended process settings (see docs/CNN_PERFORMANCE.md); set
    // POSESCOPE_DEFAULT_MALLOC=1 to measure with glibc's defaults.
    if std::env::var_os("POSESCOPE_DEFAULT_MALLOC").is_none() {
        posescope::estimate::nn::net::tune_malloc();
    }
    divan::main();
}

const BATCHES: [usize; 2] = [1, 32];

/// Either optimiser.
enum Opt {
    Fused(FusedAdamW),
    Candle(AdamW),
}

impl Opt {
    fn new(kind: AdamWKind, vars: &VarMap) -> candle_core::Result<Self> {
        let params = ParamsAdamW {
            lr: 1e-4,
            ..ParamsAdamW::default()
        };
        Ok(match kind {
            AdamWKind::Fused => Self::Fused(FusedAdamW::new(vars.all_vars(), params)?),
            AdamWKind::Candle => Self::Candle(AdamW::new(vars.all_vars(), params)?),
        })
    }

    fn step(&mut self, grads: &candle_core::backprop::GradStore) -> candle_core::Result<()> {
        match self {
            Self::Fused(o) => o.step(grads),
            Self::Candle(o) => o.step(grads),
        }
    }
}

/// A network with its optimiser and one random batch.
struct Setup {
    net: OrientationNet,
    opt: Opt,
    x: Tensor,
    target: Tensor,
    _vars: VarMap,
}

impl Setup {
    fn new(
        cfg: &NetConfig,
        backend: ConvBackend,
        optimizer: AdamWKind,
        batch: usize,
    ) -> candle_core::Result<Self> {
        let dev = Device::Cpu;
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &dev);
        let net = OrientationNet::with_backend(vb, cfg, backend)?;
        let opt = Opt::new(optimizer, &vars)?;
        let s = cfg.input_size;
        let x = Tensor::randn(0f32, 1.0, (batch, 1, s, s), &dev)?;
        let target = Tensor::randn(0f32, 1.0, (batch, cfg.outputs), &dev)?;
        Ok(Self {
            net,
            opt,
            x,
            target,
            _vars: vars,
        })
    }

    fn forward(&self) -> candle_core::Result<Tensor> {
        self.net.forward(&self.x)
    }

    /// Through candle's autograd.
    fn train_step(&mut self) -> candle_core::Result<()> {
        let loss = candle_nn::loss::mse(&self.net.forward(&self.x)?, &self.target)?;
        self.opt.step(&loss.backward()?)
    }

    /// Through [`NetTrainer`] (FusedAdamW only).
    fn trainer_step(&mut self, trainer: &mut NetTrainer) -> candle_core::Result<()> {
        let Opt::Fused(opt) = &mut self.opt else {
            candle_core::bail!("NetTrainer steps need FusedAdamW");
        };
        let target = &self.target;
        let mse = |out: &Tensor| candle_nn::loss::mse(out, target);
        trainer.step(&self.net, &self.x, mse, opt).map(drop)
    }
}

/// `OrientationNet::forward` (builds candle's backprop graph).
fn forward(bencher: Bencher, cfg: NetConfig, backend: ConvBackend, batch: usize) {
    let setup = Setup::new(&cfg, backend, AdamWKind::Fused, batch).expect("setup");
    setup.forward().expect("warm-up");
    bencher
        .counter(ItemsCount::new(batch))
        .bench_local(|| setup.forward().expect("forward"));
}

/// Inference through [`NetTrainer::infer`] (no graph, reused buffers), as
/// `posescope bench` and the estimator run it.
fn infer(bencher: Bencher, cfg: NetConfig, batch: usize) {
    let setup = Setup::new(&cfg, ConvBackend::Fast, AdamWKind::Fused, batch).expect("setup");
    let mut buffers = NetTrainer::new();
    buffers.infer(&setup.net, &setup.x).expect("warm-up");
    bencher
        .counter(ItemsCount::new(batch))
        .bench_local(|| buffers.infer(&setup.net, &setup.x).expect("forward"));
}

fn train(bencher: Bencher, cfg: NetConfig, backend: ConvBackend, opt: AdamWKind, batch: usize) {
    let mut setup = Setup::new(&cfg, backend, opt, batch).expect("setup");
    setup.train_step().expect("warm-up");
    bencher
        .counter(ItemsCount::new(batch))
        .bench_local(|| setup.train_step().expect("train step"));
}

/// The training step of `posescope train` and `posescope bench`: the fast
/// convolution, [`NetTrainer`] and FusedAdamW.
fn train_trainer(bencher: Bencher, cfg: NetConfig, batch: usize) {
    let mut setup = Setup::new(&cfg, ConvBackend::Fast, AdamWKind::Fused, batch).expect("setup");
    let mut trainer = NetTrainer::new();
    setup.trainer_step(&mut trainer).expect("warm-up");
    bencher
        .counter(ItemsCount::new(batch))
        .bench_local(|| setup.trainer_step(&mut trainer).expect("train step"));
}

/// The default orientation net: 64×64 input, 7 convolutions, 9 outputs.
#[divan::bench_group(sample_count = 20, sample_size = 1)]
mod default_net {
    use super::*;

    #[divan::bench(args = BATCHES)]
    fn forward_fast(b: Bencher, batch: usize) {
        infer(b, NetConfig::default(), batch);
    }

    #[divan::bench(args = BATCHES)]
    fn forward_fast_graph(b: Bencher, batch: usize) {
        forward(b, NetConfig::default(), ConvBackend::Fast, batch);
    }

    #[divan::bench(args = BATCHES)]
    fn forward_stock(b: Bencher, batch: usize) {
        forward(b, NetConfig::default(), ConvBackend::Stock, batch);
    }

    #[divan::bench(args = BATCHES)]
    fn train_fast(b: Bencher, batch: usize) {
        train_trainer(b, NetConfig::default(), batch);
    }

    #[divan::bench(args = BATCHES)]
    fn train_fast_autograd(b: Bencher, batch: usize) {
        train(
            b,
            NetConfig::default(),
            ConvBackend::Fast,
            AdamWKind::Fused,
            batch,
        );
    }

    #[divan::bench(args = BATCHES)]
    fn train_fast_candle_adamw(b: Bencher, batch: usize) {
        train(
            b,
            NetConfig::default(),
            ConvBackend::Fast,
            AdamWKind::Candle,
            batch,
        );
    }

    #[divan::bench(args = BATCHES)]
    fn train_stock(b: Bencher, batch: usize) {
        train(
            b,
            NetConfig::default(),
            ConvBackend::Stock,
            AdamWKind::Candle,
            batch,
        );
    }
}

/// The HOLLy prototype net: 128×128 input, 10 convolutions, 6 outputs.
#[divan::bench_group(sample_count = 10, sample_size = 1)]
mod holly_net {
    use super::*;

    #[divan::bench(args = BATCHES)]
    fn forward_fast(b: Bencher, batch: usize) {
        infer(b, NetConfig::holly(), batch);
    }

    #[divan::bench(args = BATCHES)]
    fn forward_fast_graph(b: Bencher, batch: usize) {
        forward(b, NetConfig::holly(), ConvBackend::Fast, batch);
    }

    #[divan::bench(args = BATCHES)]
    fn forward_stock(b: Bencher, batch: usize) {
        forward(b, NetConfig::holly(), ConvBackend::Stock, batch);
    }

    #[divan::bench(args = BATCHES)]
    fn train_fast(b: Bencher, batch: usize) {
        train_trainer(b, NetConfig::holly(), batch);
    }

    #[divan::bench(args = BATCHES)]
    fn train_fast_autograd(b: Bencher, batch: usize) {
        train(
            b,
            NetConfig::holly(),
            ConvBackend::Fast,
            AdamWKind::Fused,
            batch,
        );
    }

    #[divan::bench(args = BATCHES)]
    fn train_fast_candle_adamw(b: Bencher, batch: usize) {
        train(
            b,
            NetConfig::holly(),
            ConvBackend::Fast,
            AdamWKind::Candle,
            batch,
        );
    }

    #[divan::bench(args = BATCHES)]
    fn train_stock(b: Bencher, batch: usize) {
        train(
            b,
            NetConfig::holly(),
            ConvBackend::Stock,
            AdamWKind::Candle,
            batch,
        );
    }
}

/// One AdamW step on the HOLLy net's parameters, gradients precomputed.
#[divan::bench_group(sample_count = 20, sample_size = 1)]
mod optimizer {
    use super::*;

    fn step(bencher: Bencher, kind: AdamWKind) {
        let mut setup = Setup::new(&NetConfig::holly(), ConvBackend::Fast, kind, 1).expect("setup");
        let loss =
            candle_nn::loss::mse(&setup.forward().expect("forward"), &setup.target).expect("loss");
        let grads = loss.backward().expect("backward");
        setup.opt.step(&grads).expect("warm-up");
        bencher.bench_local(|| setup.opt.step(&grads).expect("step"));
    }

    #[divan::bench]
    fn adamw_fused(b: Bencher) {
        step(b, AdamWKind::Fused);
    }

    #[divan::bench]
    fn adamw_candle(b: Bencher) {
        step(b, AdamWKind::Candle);
    }
}

/// Each convolution of a net alone at batch 32 (fast path): forward, and
/// forward + backward (gradients of input, weight and bias; the first layer's
/// input needs none in the network, but gets one here).
mod layers {
    use super::*;
    use posescope::estimate::nn::conv::{Conv2dConfig, FastConv2d};

    /// Layer `i` of `cfg` and an NHWC input variable at batch 32.
    pub fn layer(cfg: &NetConfig, i: usize) -> (FastConv2d, candle_core::Var) {
        let specs = cfg.conv_layers().expect("layers");
        let spec = specs[i];
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        let conv_cfg = Conv2dConfig {
            stride: spec.stride,
            padding: spec.padding,
        };
        let conv = FastConv2d::new(
            vb,
            spec.in_channels,
            spec.out_channels,
            spec.kernel,
            conv_cfg,
            Some(0.01),
        )
        .expect("conv");
        let side = if i == 0 {
            cfg.input_size
        } else {
            specs[i - 1].out_size
        };
        let x =
            candle_core::Var::randn(0f32, 1.0, (32, side, side, spec.in_channels), &Device::Cpu)
                .expect("x");
        (conv, x)
    }

    pub fn forward(b: Bencher, cfg: &NetConfig, i: usize) {
        let (conv, x) = layer(cfg, i);
        b.bench_local(|| conv.forward_nhwc(&x).expect("forward"));
    }

    pub fn forward_backward(b: Bencher, cfg: &NetConfig, i: usize) {
        let (conv, x) = layer(cfg, i);
        b.bench_local(|| {
            let y = conv.forward_nhwc(&x).expect("forward");
            y.sum_all().and_then(|s| s.backward()).expect("backward")
        });
    }
}

/// Each convolution of the HOLLy net alone at batch 32.
#[divan::bench_group(sample_count = 10, sample_size = 1)]
mod holly_layers {
    use super::*;

    const LAYERS: [usize; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

    #[divan::bench(args = LAYERS)]
    fn forward(b: Bencher, i: usize) {
        layers::forward(b, &NetConfig::holly(), i);
    }

    #[divan::bench(args = LAYERS)]
    fn forward_backward(b: Bencher, i: usize) {
        layers::forward_backward(b, &NetConfig::holly(), i);
    }
}

/// Each convolution of the default net alone at batch 32.
#[divan::bench_group(sample_count = 20, sample_size = 1)]
mod default_layers {
    use super::*;

    const LAYERS: [usize; 7] = [0, 1, 2, 3, 4, 5, 6];

    #[divan::bench(args = LAYERS)]
    fn forward(b: Bencher, i: usize) {
        layers::forward(b, &NetConfig::default(), i);
    }

    #[divan::bench(args = LAYERS)]
    fn forward_backward(b: Bencher, i: usize) {
        layers::forward_backward(b, &NetConfig::default(), i);
    }
}
