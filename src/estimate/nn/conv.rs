//! A 2-D convolution layer whose CPU forward pass and both gradients are GEMMs.
//!
//! candle's own CPU `conv2d` runs its forward pass as im2col + GEMM, but its
//! backward pass is slow: the input gradient goes through a naive
//! `conv_transpose2d` loop and the kernel gradient is a convolution whose
//! kernel is as large as the output. (It also fails with a shape mismatch
//! when height and width leave different remainders modulo the stride: the
//! transposed convolution's output padding is derived from the height only.)
//! [`FastConv2d`] replaces the whole layer (convolution, bias and an optional
//! LeakyReLU) with one candle custom op whose forward and backward passes are
//! GEMMs through the `gemm` crate (see `conv_cpu.rs`):
//!
//! * the op works on NHWC data internally, so a batch is one tall GEMM and
//!   im2col copies contiguous channel runs;
//! * bias and LeakyReLU are fused into the forward pass, and their gradients
//!   into the backward pass;
//! * threads split the batch; with fewer images than threads they split the
//!   rows, and for small layers the GEMMs run in parallel instead;
//! * for late layers at small batch, where the weight outweighs the
//!   activations, the weight is used in place instead of being rearranged.
//!
//! The weight keeps candle's `(out, in, kh, kw)` layout and the variable names
//! of [`candle_nn::conv2d`] (`weight`, `bias`), so the same `VarMap` works with
//! either implementation. On devices other than the CPU, for dtypes other
//! than f32, or with [`ConvBackend::Stock`], the layer runs candle's own
//! `conv2d` + bias + [`candle_nn::ops::leaky_relu`] instead.

use std::borrow::Cow;
use std::sync::OnceLock;

use candle_core::{
    bail, CpuStorage, CustomOp2, CustomOp3, DType, Layout, Module, Result, Shape, Storage, Tensor,
};
use candle_nn::init::{FanInOut, NonLinearity, NormalOrUniform};
use candle_nn::{Init, VarBuilder};
use serde::{Deserialize, Serialize};

use super::conv_cpu::{self, BackwardInputs, KOrder, Weights};
use super::conv_geometry::{ConvGeometry, NhwcView};

/// Stride and zero padding of a convolution (the same on both axes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2dConfig {
    pub stride: usize,
    pub padding: usize,
}

impl Default for Conv2dConfig {
    fn default() -> Self {
        Self {
            stride: 1,
            padding: 0,
        }
    }
}

/// Which implementation a [`FastConv2d`] runs on the CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvBackend {
    /// The GEMM custom op of this module (falls back to `Stock` off the CPU).
    #[default]
    Fast,
    /// candle's own `conv2d`, bias add and `leaky_relu`, everywhere.
    Stock,
}

/// A convolution + bias + optional LeakyReLU layer; see the module docs.
#[derive(Clone, Debug)]
pub struct FastConv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    cfg: Conv2dConfig,
    leaky: Option<f64>,
    backend: ConvBackend,
}

impl FastConv2d {
    /// Creates a `k × k` layer with Kaiming-normal weights (fan-in, gain
    /// matched to the LeakyReLU slope) and zero bias, stored under
    /// `vb/weight` `(out_c, in_c, k, k)` and `vb/bias` `(out_c)`.
    ///
    /// `leaky` is the negative slope of the fused LeakyReLU (`None`: no
    /// activation); it must be finite and ≥ 0.
    pub fn new(
        vb: VarBuilder,
        in_c: usize,
        out_c: usize,
        k: usize,
        cfg: Conv2dConfig,
        leaky: Option<f64>,
    ) -> Result<Self> {
        let slope = leaky.unwrap_or(1.0);
        let init = Init::Kaiming {
            dist: NormalOrUniform::Normal,
            fan: FanInOut::FanIn,
            non_linearity: NonLinearity::ExplicitGain((2.0 / (1.0 + slope * slope)).sqrt()),
        };
        let weight = vb.get_with_hints((out_c, in_c, k, k), "weight", init)?;
        let bias = vb.get_with_hints(out_c, "bias", Init::Const(0.0))?;
        Self::from_tensors(weight, Some(bias), cfg, leaky)
    }

    /// Wraps existing tensors: `weight (out, in, kh, kw)`, `bias (out)`.
    pub fn from_tensors(
        weight: Tensor,
        bias: Option<Tensor>,
        cfg: Conv2dConfig,
        leaky: Option<f64>,
    ) -> Result<Self> {
        let (out_c, _, kh, kw) = weight.dims4()?;
        if kh == 0 || kw == 0 || cfg.stride == 0 {
            bail!(
                "FastConv2d: kernel {kh}×{kw} and stride {} must be positive",
                cfg.stride
            );
        }
        if let Some(b) = &bias {
            if b.dims() != [out_c] {
                bail!("FastConv2d: bias shape {:?}, expected [{out_c}]", b.dims());
            }
        }
        if let Some(s) = leaky {
            if !(s.is_finite() && s >= 0.0) {
                bail!("FastConv2d: LeakyReLU slope {s} must be finite and >= 0");
            }
        }
        Ok(Self {
            weight,
            bias,
            cfg,
            leaky,
            backend: ConvBackend::Fast,
        })
    }

    /// The same layer (sharing its variables) running on `backend`.
    pub fn with_backend(mut self, backend: ConvBackend) -> Self {
        self.backend = backend;
        self
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    pub fn config(&self) -> Conv2dConfig {
        self.cfg
    }

    /// Negative slope of the fused LeakyReLU, if any.
    pub fn leaky(&self) -> Option<f64> {
        self.leaky
    }

    pub fn backend(&self) -> ConvBackend {
        self.backend
    }

    /// Output `(height, width)` for an input of `(h, w)`, `None` if the kernel does not fit.
    pub fn output_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let (_, _, kh, kw) = self.weight.dims4().ok()?;
        let (s, p) = (self.cfg.stride, self.cfg.padding);
        Some((
            super::conv_geometry::out_len(h, kh, s, p)?,
            super::conv_geometry::out_len(w, kw, s, p)?,
        ))
    }

    /// Whether `x` takes the GEMM custom op (else candle's stock ops).
    fn fast_path(&self, x: &Tensor) -> bool {
        self.backend == ConvBackend::Fast
            && x.device().is_cpu()
            && x.dtype() == DType::F32
            && self.weight.dtype() == DType::F32
            && self.bias.as_ref().is_none_or(|b| b.dtype() == DType::F32)
    }

    /// The layer on NHWC data: `x (B, H, W, C)` → `(B, OH, OW, out)`.
    ///
    /// This is the layout the fast op works in, so a stack of layers called
    /// this way never transposes its activations.
    pub fn forward_nhwc(&self, x: &Tensor) -> Result<Tensor> {
        if self.fast_path(x) {
            self.apply_fast(x)
        } else {
            let y = self.forward_stock(&x.permute((0, 3, 1, 2))?)?;
            y.permute((0, 2, 3, 1))
        }
    }

    fn apply_fast(&self, x_nhwc: &Tensor) -> Result<Tensor> {
        let op = ConvOp {
            cfg: self.cfg,
            leaky: self.leaky.map(|s| s as f32),
            weight_hwio: OnceLock::new(),
        };
        match &self.bias {
            Some(b) => x_nhwc.apply_op3(&self.weight, b, ConvBiasOp(op)),
            None => x_nhwc.apply_op2(&self.weight, op),
        }
    }

    /// candle's own ops on NCHW data.
    fn forward_stock(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.conv2d(&self.weight, self.cfg.padding, self.cfg.stride, 1, 1)?;
        let y = match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?)?,
            None => y,
        };
        match self.leaky {
            Some(s) => candle_nn::ops::leaky_relu(&y, s),
            None => Ok(y),
        }
    }
}

impl Module for FastConv2d {
    /// `x (B, C, H, W)` → `(B, out, OH, OW)`.
    ///
    /// On the fast path the result is an NCHW view of NHWC memory; feeding it
    /// to another `FastConv2d` costs no copy in the forward pass (the
    /// gradients are transposed between layers, though: stacks of layers
    /// should use [`FastConv2d::forward_nhwc`]).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.fast_path(x) {
            self.apply_fast(&x.permute((0, 2, 3, 1))?)?
                .permute((0, 3, 1, 2))
        } else {
            self.forward_stock(x)
        }
    }
}

/// The fused layer without bias: `(x NHWC, weight)`.
///
/// One op is built per forward call; it keeps the weight rearranged for the
/// GEMMs so the backward pass of the same call does not redo that.
#[derive(Debug)]
struct ConvOp {
    cfg: Conv2dConfig,
    leaky: Option<f32>,
    weight_hwio: OnceLock<Vec<f32>>,
}

/// The fused layer with bias: `(x NHWC, weight, bias)`.
#[derive(Debug)]
struct ConvBiasOp(ConvOp);

fn f32_slice<'a>(s: &'a CpuStorage, what: &str) -> Result<&'a [f32]> {
    match s {
        CpuStorage::F32(v) => Ok(v),
        _ => bail!("FastConv2d: {what} must be f32"),
    }
}

/// The elements of a tensor in row-major order, borrowed when contiguous.
fn contiguous<'a>(data: &'a [f32], l: &Layout) -> Cow<'a, [f32]> {
    if let Some((a, b)) = l.contiguous_offsets() {
        return Cow::Borrowed(&data[a..b]);
    }
    let (dims, strides) = (l.dims(), l.stride());
    let mut out = Vec::with_capacity(l.shape().elem_count());
    let mut index = vec![0usize; dims.len()];
    for _ in 0..l.shape().elem_count() {
        let at: usize = index.iter().zip(strides).map(|(i, s)| i * s).sum();
        out.push(data[l.start_offset() + at]);
        for d in (0..dims.len()).rev() {
            index[d] += 1;
            if index[d] < dims[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Cow::Owned(out)
}

fn nhwc_view<'a>(data: &'a [f32], l: &Layout) -> Result<NhwcView<'a>> {
    let st = l.stride();
    if st.len() != 4 {
        bail!("FastConv2d: input must have rank 4, got {:?}", l.dims());
    }
    Ok(NhwcView {
        data,
        offset: l.start_offset(),
        strides: [st[0], st[1], st[2], st[3]],
    })
}

impl ConvOp {
    fn geometry(&self, x: &Layout, w: &Layout) -> Result<ConvGeometry> {
        let (b, h, wd, c) = x.shape().dims4()?;
        let (o, ci, kh, kw) = w.shape().dims4()?;
        if c != ci {
            bail!("FastConv2d: input has {c} channels, weight expects {ci}");
        }
        let (s, p) = (self.cfg.stride, self.cfg.padding);
        match ConvGeometry::new(b, (h, wd, c), o, (kh, kw), s, p) {
            Some(g) => Ok(g),
            None => bail!("FastConv2d: kernel {kh}×{kw} (stride {s}, padding {p}) does not fit a {h}×{wd} input"),
        }
    }

    fn fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bias: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.geometry(xl, wl)?;
        let x = nhwc_view(f32_slice(xs, "input")?, xl)?;
        let w = contiguous(f32_slice(ws, "weight")?, wl);
        let bias = match bias {
            Some((bs, bl)) => Some(contiguous(f32_slice(bs, "bias")?, bl)),
            None => None,
        };
        let weights = self.weights(&w, &g);
        let y = conv_cpu::conv2d_forward(&x, weights, bias.as_deref(), &g, self.leaky);
        let shape = Shape::from((g.batch, g.out_h, g.out_w, g.out_c));
        Ok((CpuStorage::F32(y), shape))
    }

    /// The weight `w` (`(O, C, kh, kw)`) as a GEMM operand in the order suited
    /// to `g`; the tap-order copy is made once per op.
    fn weights<'a>(&'a self, w: &'a [f32], g: &ConvGeometry) -> Weights<'a> {
        match KOrder::for_geometry(g) {
            KOrder::Taps => {
                Weights::Taps(self.weight_hwio.get_or_init(|| conv_cpu::weight_hwio(w, g)))
            }
            KOrder::Channels => Weights::Channels(w),
        }
    }

    /// The gradients `(dx, dw, db)` of the op applied to `x` and `w`.
    fn grads(
        &self,
        x: &Tensor,
        w: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Tensor, Tensor)> {
        let dy = grad_res.contiguous()?;
        let y = res.contiguous()?;
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = w.storage_and_layout();
        let (ys, yl) = y.storage_and_layout();
        let (dys, dyl) = dy.storage_and_layout();
        let (Storage::Cpu(xs), Storage::Cpu(ws), Storage::Cpu(ys), Storage::Cpu(dys)) =
            (&*xs, &*ws, &*ys, &*dys)
        else {
            bail!("FastConv2d: backward pass on a non-CPU device");
        };
        let g = self.geometry(xl, wl)?;
        let xv = nhwc_view(f32_slice(xs, "input")?, xl)?;
        let wv = contiguous(f32_slice(ws, "weight")?, wl);
        let yv = contiguous(f32_slice(ys, "output")?, yl);
        let dyv = contiguous(f32_slice(dys, "output gradient")?, dyl);
        let inputs = BackwardInputs {
            y: &yv,
            dy: &dyv,
            leaky: self.leaky,
            need_dx: x.track_op(),
        };
        let grads = conv_cpu::conv2d_backward(&xv, self.weights(&wv, &g), &g, &inputs);
        let dev = x.device();
        let dx = match grads.dx {
            Some(dx) => Some(Tensor::from_vec(dx, x.shape(), dev)?),
            None => None,
        };
        let dw = Tensor::from_vec(grads.dw, w.shape(), dev)?;
        let db = Tensor::from_vec(grads.db, g.out_c, dev)?;
        Ok((dx, dw, db))
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        "posescope-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.fwd(s1, l1, s2, l2, None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.grads(x, w, res, grad_res)?;
        Ok((dx, Some(dw)))
    }
}

impl CustomOp3 for ConvBiasOp {
    fn name(&self) -> &'static str {
        "posescope-conv2d-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.0.fwd(s1, l1, s2, l2, Some((s3, l3)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = self.0.grads(x, w, res, grad_res)?;
        let db = db.to_dtype(b.dtype())?;
        Ok((dx, Some(dw), Some(db)))
    }
}
