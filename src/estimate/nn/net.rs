//! The orientation CNN: a plain stack of strided convolutions and two dense layers.
//!
//! Default architecture (input 1×64×64, [`NetConfig::default`]):
//!
//! | layer | kernel | stride | pad | output |
//! |---|---|---|---|---|
//! | conv0 | 5×5 | 2 | 2 | 32×32×32 |
//! | conv1 | 3×3 | 1 | 1 | 32×32×32 |
//! | conv2 | 3×3 | 2 | 1 | 64×16×16 |
//! | conv3 | 3×3 | 1 | 1 | 64×16×16 |
//! | conv4 | 3×3 | 2 | 1 | 128×8×8 |
//! | conv5 | 3×3 | 1 | 1 | 128×8×8 |
//! | conv6 | 3×3 | 2 | 1 | 256×4×4 |
//! | fc1 | 4096 → 256 | | | |
//! | fc2 | 256 → 9 | | | |
//!
//! Every convolution and fc1 are followed by a LeakyReLU with slope
//! [`LEAKY_SLOPE`] (0.01, PyTorch's default and what the HOLLy prototype
//! uses); fc2 is linear: the caller maps the raw outputs (6-D rotation,
//! 2 shift, 1 σ) to their ranges.
//!
//! There is no BatchNorm: inference stays a pure function of one frame (no
//! running statistics, no train/eval switch, identical results at batch 1
//! and batch 32) and the layers stay fusable. Kaiming-normal initialisation
//! with the LeakyReLU gain keeps activations at unit scale through the eight
//! layers, which is enough for this depth to train.
//!
//! The convolutions run on NHWC data ([`FastConv2d::forward_nhwc`]); the
//! features are flattened in `(y, x, channel)` order before fc1, on every
//! backend, so one set of weights works with both backends and all devices.
//! On the CPU the forward pass runs on a rayon pool thread, so the layers'
//! parallel loops do not bounce between the caller's thread and the pool.
//!
//! Throughput, and how to get it (the training step and inference of
//! [`NetTrainer`](super::trainer::NetTrainer), fused AdamW,
//! [`tune_malloc`]), is documented in docs/CNN_PERFORMANCE.md; [`bench_cnn`]
//! measures it.

use candle_core::{bail, DType, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

pub use super::bench::{bench_cnn, bench_cnn_with, tune_malloc, BenchResult};
use super::conv::{Conv2dConfig, ConvBackend, FastConv2d};

/// Negative slope of every LeakyReLU in the network.
pub const LEAKY_SLOPE: f64 = 0.01;

fn default_down_kernel() -> usize {
    3
}

fn default_down_padding() -> usize {
    1
}

/// Architecture of an [`OrientationNet`].
///
/// Layer 0 is a 5×5 stride-2 convolution (padding 2) to `channels[0]`; after
/// it, odd layers are 3×3 stride-1 convolutions (padding 1) and even layers
/// are `down_kernel`×`down_kernel` stride-2 convolutions (padding
/// `down_padding`), layer `i` producing `channels[i]` channels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    /// Side of the square single-channel input frame.
    pub input_size: usize,
    /// Output channels of each convolution.
    pub channels: Vec<usize>,
    /// Width of the hidden dense layer.
    pub hidden: usize,
    /// Number of raw outputs.
    pub outputs: usize,
    /// Kernel side of the stride-2 layers after the first.
    #[serde(default = "default_down_kernel")]
    pub down_kernel: usize,
    /// Padding of the stride-2 layers after the first.
    #[serde(default = "default_down_padding")]
    pub down_padding: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            input_size: 64,
            channels: vec![32, 32, 64, 64, 128, 128, 256],
            hidden: 256,
            outputs: 9,
            down_kernel: 3,
            down_padding: 1,
        }
    }
}

/// One convolution of a [`NetConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvLayerSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    /// Output side (the input is square).
    pub out_size: usize,
}

impl NetConfig {
    /// The network of the HOLLy prototype, used as a benchmark: 128×128
    /// input, a 5×5 stride-2 convolution to 16 channels, four pairs of
    /// (3×3 stride 1, 2×2 stride 2 padding 1) convolutions taking the
    /// channels 16 → 32 → 64 → 128 → 256, a last 3×3 convolution at 256, then
    /// fc 6400 → 256 → 6. Spatial sides: 128 → 64 → 64 → 33 → 33 → 17 → 17 →
    /// 9 → 9 → 5 → 5, so the flattened features are 256·5·5 = 6400.
    /// (The prototype's BatchNorm layers are left out.)
    pub fn holly() -> Self {
        Self {
            input_size: 128,
            channels: vec![16, 32, 32, 64, 64, 128, 128, 256, 256, 256],
            hidden: 256,
            outputs: 6,
            down_kernel: 2,
            down_padding: 1,
        }
    }

    /// The convolutions, in order, with their spatial sizes.
    pub fn conv_layers(&self) -> Result<Vec<ConvLayerSpec>> {
        if self.channels.is_empty() || self.channels.contains(&0) {
            bail!("NetConfig: channels must be non-empty and positive");
        }
        if self.input_size == 0 || self.down_kernel == 0 || self.hidden == 0 || self.outputs == 0 {
            bail!("NetConfig: input_size, down_kernel, hidden and outputs must be positive");
        }
        let mut layers = Vec::with_capacity(self.channels.len());
        let (mut size, mut in_c) = (self.input_size, 1);
        for (i, &out_c) in self.channels.iter().enumerate() {
            let (kernel, stride, padding) = match i {
                0 => (5, 2, 2),
                i if i % 2 == 1 => (3, 1, 1),
                _ => (self.down_kernel, 2, self.down_padding),
            };
            let Some(out) = (size + 2 * padding)
                .checked_sub(kernel)
                .map(|d| d / stride + 1)
            else {
                bail!(
                    "NetConfig: layer {i} ({kernel}×{kernel}) does not fit a {size}×{size} input"
                );
            };
            layers.push(ConvLayerSpec {
                in_channels: in_c,
                out_channels: out_c,
                kernel,
                stride,
                padding,
                out_size: out,
            });
            (size, in_c) = (out, out_c);
        }
        Ok(layers)
    }

    /// Length of the flattened feature vector fed to fc1.
    pub fn flat_features(&self) -> Result<usize> {
        let layers = self.conv_layers()?;
        let last = layers[layers.len() - 1];
        Ok(last.out_size * last.out_size * last.out_channels)
    }
}

/// The orientation CNN; see the module docs.
#[derive(Clone, Debug)]
pub struct OrientationNet {
    convs: Vec<FastConv2d>,
    fc1: Linear,
    fc2: Linear,
    cfg: NetConfig,
    backend: ConvBackend,
}

impl OrientationNet {
    /// Builds the network with the fast convolution; variables live under
    /// `conv{i}`, `fc1` and `fc2`.
    pub fn new(vb: VarBuilder, cfg: &NetConfig) -> Result<Self> {
        Self::with_backend(vb, cfg, ConvBackend::Fast)
    }

    /// Builds the network with the given convolution backend (same variables).
    pub fn with_backend(vb: VarBuilder, cfg: &NetConfig, backend: ConvBackend) -> Result<Self> {
        let layers = cfg.conv_layers()?;
        let convs = layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let conv_cfg = Conv2dConfig {
                    stride: l.stride,
                    padding: l.padding,
                };
                FastConv2d::new(
                    vb.pp(format!("conv{i}")),
                    l.in_channels,
                    l.out_channels,
                    l.kernel,
                    conv_cfg,
                    Some(LEAKY_SLOPE),
                )
                .map(|c| c.with_backend(backend))
            })
            .collect::<Result<Vec<_>>>()?;
        let fc1 = candle_nn::linear(cfg.flat_features()?, cfg.hidden, vb.pp("fc1"))?;
        let fc2 = candle_nn::linear(cfg.hidden, cfg.outputs, vb.pp("fc2"))?;
        Ok(Self {
            convs,
            fc1,
            fc2,
            cfg: cfg.clone(),
            backend,
        })
    }

    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    pub fn backend(&self) -> ConvBackend {
        self.backend
    }

    /// The trainable tensors (sharing storage with the `VarMap`'s variables),
    /// in layer order: `conv{i}` weight and bias for each convolution, then
    /// fc1 weight and bias, fc2 weight and bias. `None` if a layer has no
    /// bias (networks built by [`OrientationNet::new`] always have them).
    pub fn parameters(&self) -> Option<Vec<Tensor>> {
        let mut ps = Vec::with_capacity(2 * self.convs.len() + 4);
        for conv in &self.convs {
            ps.push(conv.weight().clone());
            ps.push(conv.bias()?.clone());
        }
        for fc in [&self.fc1, &self.fc2] {
            ps.push(fc.weight().clone());
            ps.push(fc.bias()?.clone());
        }
        Some(ps)
    }

    /// `x (B, 1, S, S)` → raw outputs `(B, outputs)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let s = self.cfg.input_size;
        if c != 1 || h != s || w != s {
            bail!(
                "OrientationNet: input {:?}, expected (B, 1, {s}, {s})",
                x.dims()
            );
        }
        let fast =
            self.backend == ConvBackend::Fast && x.device().is_cpu() && x.dtype() == DType::F32;
        if fast && rayon::current_thread_index().is_none() {
            // Run the whole pass on a pool thread: the layers' parallel loops
            // then start from inside the pool instead of handing work from
            // this thread to the pool and back for every layer.
            return rayon::scope(|_| self.forward_inner(x, b, fast));
        }
        self.forward_inner(x, b, fast)
    }

    fn forward_inner(&self, x: &Tensor, b: usize, fast: bool) -> Result<Tensor> {
        let s = self.cfg.input_size;
        let features = if fast {
            // One channel: NCHW and NHWC coincide.
            let mut h = x.reshape((b, s, s, 1))?;
            for conv in &self.convs {
                h = conv.forward_nhwc(&h)?;
            }
            h
        } else {
            let mut h = x.clone();
            for conv in &self.convs {
                h = conv.forward(&h)?;
            }
            h.permute((0, 2, 3, 1))?
        };
        let h = features.flatten_from(1)?;
        let h = candle_nn::ops::leaky_relu(&self.fc1.forward(&h)?, LEAKY_SLOPE)?;
        self.fc2.forward(&h)
    }
}

impl Module for OrientationNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        OrientationNet::forward(self, x)
    }
}
