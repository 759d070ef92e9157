//! A CPU training step for [`OrientationNet`] that bypasses candle's autograd
//! for the network itself.
//!
//! Through candle's autograd, a training step allocates every activation and
//! every gradient afresh and accumulates each node's gradient as
//! `zeros_like(x) + grad` (two more activation-sized passes per layer); on the
//! benchmark machine this was about a sixth of a batch-32 step, much of it
//! threads waiting. [`NetTrainer`] instead
//!
//! 1. runs the forward pass into activation buffers it keeps between steps
//!    (NHWC, the layouts of `conv_cpu`), with each convolution's weight
//!    rearranged once per step for both passes;
//! 2. hands the network output to the caller's loss as a fresh leaf variable,
//!    so candle's autograd only differentiates the loss with respect to that
//!    small `(B, outputs)` tensor (any candle loss works unchanged);
//! 3. back-propagates by hand through fc2, the LeakyReLU, fc1 and the
//!    convolutions (the GEMM kernels of `conv_cpu`), writing each parameter's
//!    gradient into a buffer it keeps;
//! 4. updates the parameters in place with [`FusedAdamW::step_slices`].
//!
//! The parameters stay the network's candle variables, so a `VarMap` saves
//! and loads them as before. For networks on other devices, in other dtypes,
//! or with [`ConvBackend::Stock`], [`NetTrainer::step`] falls back to
//! candle's autograd with the same optimiser.

use candle_core::{bail, CpuStorage, DType, Layout, Result, Storage, Tensor, Var};
use candle_nn::Optimizer;
use gemm::Parallelism;

use super::conv::ConvBackend;
use super::conv_cpu::{self, BackwardInputs, KOrder, Mat, MatMut, Weights};
use super::conv_geometry::{ConvGeometry, NhwcView};
use super::conv_wino;
use super::net::{OrientationNet, LEAKY_SLOPE};
use super::optim::FusedAdamW;

/// Buffers and gradients of the fast training step; see the module docs.
///
/// One trainer serves one network at a time; its buffers adapt to the batch
/// size and architecture of each call (they are reallocated only when those
/// change).
#[derive(Debug, Default)]
pub struct NetTrainer {
    /// Geometry of each convolution at the current batch size.
    layers: Vec<ConvGeometry>,
    /// Output of each convolution (after its LeakyReLU), NHWC.
    acts: Vec<Vec<f32>>,
    /// Gradient with respect to each convolution's output.
    dacts: Vec<Vec<f32>>,
    /// Tap-order weights (`weight_hwio`) of the layers that use them.
    w_taps: Vec<Vec<f32>>,
    /// Winograd-transformed weights of the layers that use them in inference
    /// (`conv_wino`).
    w_wino: Vec<Vec<f32>>,
    /// fc1 output after its LeakyReLU, `(B, hidden)`.
    hidden: Vec<f32>,
    /// fc1 output before its bias, `(hidden, B)` (column-major `(B, hidden)`).
    hidden_t: Vec<f32>,
    /// Gradient with respect to `hidden`, then to fc1's pre-activation.
    dhidden: Vec<f32>,
    /// The raw network outputs `(B, outputs)`.
    out: Vec<f32>,
    /// Gradient of each parameter, in the order of [`OrientationNet::parameters`].
    grads: Vec<Vec<f32>>,
    /// Whether `grads` holds the gradients of the last step.
    have_grads: bool,
}

/// The f32 elements of a contiguous CPU tensor's storage.
fn cpu_f32<'a>(storage: &'a Storage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let Storage::Cpu(CpuStorage::F32(data)) = storage else {
        bail!("NetTrainer: {what} must be an f32 CPU tensor");
    };
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => bail!("NetTrainer: {what} must be contiguous"),
    }
}

/// The `(B, S, S, 1)` input as a strided NHWC view (any layout).
fn input_view<'a>(storage: &'a Storage, layout: &Layout) -> Result<NhwcView<'a>> {
    let Storage::Cpu(CpuStorage::F32(data)) = storage else {
        bail!("NetTrainer: the input must be an f32 CPU tensor");
    };
    let st = layout.stride();
    Ok(NhwcView {
        data,
        offset: layout.start_offset(),
        strides: [st[0], st[1], st[2], st[3]],
    })
}

/// `buf` resized to `n` elements (contents unspecified; callers overwrite them).
fn sized(buf: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if buf.len() != n {
        buf.clear();
        buf.resize(n, 0.0);
    }
    &mut buf[..]
}

/// Runs `f` on a rayon pool thread, so the parallel loops inside it start
/// from within the pool instead of handing work over and back each time.
fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(|_| f())
    }
}

fn threads_par() -> Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// `rows ← leaky(rows + bias)` on a row-major `(n, width)` block.
fn bias_leaky_rows(rows: &mut [f32], bias: &[f32], leaky: Option<f32>) {
    for row in rows.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            let z = *v + b;
            *v = match leaky {
                Some(s) => z.max(0.0) + z.min(0.0) * s,
                None => z,
            };
        }
    }
}

/// Column sums of a row-major `(n, width)` block into `out` (`width` entries).
fn column_sums(rows: &[f32], out: &mut [f32]) {
    out.fill(0.0);
    for row in rows.chunks_exact(out.len()) {
        for (s, v) in out.iter_mut().zip(row) {
            *s += v;
        }
    }
}

impl NetTrainer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `net` on input `x` takes the fast path (else the fallback).
    pub fn supports(net: &OrientationNet, x: &Tensor) -> bool {
        net.backend() == ConvBackend::Fast
            && x.device().is_cpu()
            && x.dtype() == DType::F32
            && net.parameters().is_some_and(|ps| {
                ps.iter()
                    .all(|p| p.device().is_cpu() && p.dtype() == DType::F32 && p.is_contiguous())
            })
    }

    /// One training step: forward pass, `loss_fn` on the raw outputs
    /// `(B, outputs)`, backward pass and an AdamW update of the network's
    /// variables with `opt` (which must have been built over them, e.g. from
    /// the `VarMap` the network was created with). Returns the loss.
    ///
    /// Networks that [`supports`](Self::supports) rejects are trained through
    /// candle's autograd instead (`opt.backward_step`), with the same result
    /// up to rounding.
    pub fn step<F>(
        &mut self,
        net: &OrientationNet,
        x: &Tensor,
        loss_fn: F,
        opt: &mut FusedAdamW,
    ) -> Result<Tensor>
    where
        F: FnOnce(&Tensor) -> Result<Tensor> + Send,
    {
        if !Self::supports(net, x) {
            self.have_grads = false;
            let loss = loss_fn(&net.forward(x)?)?;
            opt.backward_step(&loss)?;
            return Ok(loss);
        }
        in_pool(|| {
            let loss = self.backward_inner(net, x, loss_fn)?;
            if self.have_grads {
                let params = net.parameters().unwrap_or_default();
                let pairs: Vec<(&Tensor, &[f32])> = params
                    .iter()
                    .zip(&self.grads)
                    .map(|(p, g)| (p, g.as_slice()))
                    .collect();
                opt.step_slices(&pairs)?;
            }
            Ok(loss)
        })
    }

    /// Inference: the raw outputs `(B, outputs)` of `net` for `x`, through
    /// the trainer's buffers and without building candle's backprop graph
    /// (the result tracks no gradient). Networks that
    /// [`supports`](Self::supports) rejects run [`OrientationNet::forward`].
    pub fn infer(&mut self, net: &OrientationNet, x: &Tensor) -> Result<Tensor> {
        if !Self::supports(net, x) {
            return net.forward(x);
        }
        self.have_grads = false;
        in_pool(|| {
            let (b, x) = self.input(net, x, false)?;
            let params = Self::params(net)?;
            let cfg = net.config();
            self.forward_pass(&x, &params, cfg.hidden, cfg.outputs, false)?;
            Tensor::from_slice(&self.out, (b, cfg.outputs), x.device())
        })
    }

    /// Forward pass, `loss_fn` and backward pass without an update: returns
    /// the loss and leaves the parameter gradients in the trainer (see
    /// [`gradients`](Self::gradients)). Fails for networks that
    /// [`supports`](Self::supports) rejects.
    pub fn backward<F>(&mut self, net: &OrientationNet, x: &Tensor, loss_fn: F) -> Result<Tensor>
    where
        F: FnOnce(&Tensor) -> Result<Tensor> + Send,
    {
        if !Self::supports(net, x) {
            bail!("NetTrainer: the fast path needs the fast backend and f32 CPU tensors");
        }
        in_pool(|| self.backward_inner(net, x, loss_fn))
    }

    /// The parameter gradients of the last [`backward`](Self::backward) or
    /// fast [`step`](Self::step), as tensors shaped like the parameters, in
    /// the order of [`OrientationNet::parameters`]; `None` when there are
    /// none (no step yet, the fallback was used, or the loss did not depend
    /// on the network output).
    pub fn gradients(&self, net: &OrientationNet) -> Result<Option<Vec<Tensor>>> {
        if !self.have_grads {
            return Ok(None);
        }
        let Some(params) = net.parameters() else {
            return Ok(None);
        };
        if params.len() != self.grads.len() {
            bail!("NetTrainer: the gradients belong to another network");
        }
        params
            .iter()
            .zip(&self.grads)
            .map(|(p, g)| Tensor::from_slice(g, p.shape(), p.device()))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    fn params(net: &OrientationNet) -> Result<Vec<Tensor>> {
        net.parameters()
            .ok_or_else(|| candle_core::Error::Msg("NetTrainer: a layer has no bias".into()))
    }

    /// Checks `x (B, 1, S, S)` against `net`, sizes the buffers (the gradient
    /// buffers only when `training`) and returns `B` and `x` as NHWC.
    fn input(
        &mut self,
        net: &OrientationNet,
        x: &Tensor,
        training: bool,
    ) -> Result<(usize, Tensor)> {
        let (b, c, h, w) = x.dims4()?;
        let s = net.config().input_size;
        if c != 1 || h != s || w != s {
            bail!(
                "NetTrainer: input {:?}, expected (B, 1, {s}, {s})",
                x.dims()
            );
        }
        self.prepare(net, b, training)?;
        // one channel: NCHW and NHWC coincide
        Ok((b, x.reshape((b, s, s, 1))?))
    }

    /// Sizes the buffers for `net` at batch `b`.
    fn prepare(&mut self, net: &OrientationNet, b: usize, training: bool) -> Result<()> {
        let cfg = net.config();
        let specs = cfg.conv_layers()?;
        let mut layers = Vec::with_capacity(specs.len());
        let mut size = cfg.input_size;
        for s in &specs {
            let Some(g) = ConvGeometry::new(
                b,
                (size, size, s.in_channels),
                s.out_channels,
                (s.kernel, s.kernel),
                s.stride,
                s.padding,
            ) else {
                bail!("NetTrainer: a convolution does not fit its input");
            };
            size = g.out_h;
            layers.push(g);
        }
        let n = layers.len();
        self.acts.resize_with(n, Vec::new);
        self.dacts.resize_with(n, Vec::new);
        self.w_taps.resize_with(n, Vec::new);
        self.w_wino.resize_with(n, Vec::new);
        for (i, g) in layers.iter().enumerate() {
            sized(&mut self.acts[i], g.rows() * g.out_c);
            if training {
                sized(&mut self.dacts[i], g.rows() * g.out_c);
            }
            let w_len = match KOrder::for_geometry(g) {
                KOrder::Taps => g.out_c * g.kdim(),
                KOrder::Channels => 0,
            };
            sized(&mut self.w_taps[i], w_len);
            let wino_len = if conv_wino::applies(g) {
                conv_wino::weight_len(g)
            } else {
                0
            };
            sized(&mut self.w_wino[i], wino_len);
        }
        sized(&mut self.hidden, b * cfg.hidden);
        sized(&mut self.out, b * cfg.outputs);
        if training {
            sized(&mut self.dhidden, b * cfg.hidden);
            let params = Self::params(net)?;
            self.grads.resize_with(params.len(), Vec::new);
            for (g, p) in self.grads.iter_mut().zip(&params) {
                sized(g, p.elem_count());
            }
        }
        self.layers = layers;
        Ok(())
    }

    fn backward_inner<F>(&mut self, net: &OrientationNet, x: &Tensor, loss_fn: F) -> Result<Tensor>
    where
        F: FnOnce(&Tensor) -> Result<Tensor>,
    {
        self.have_grads = false;
        let cfg = net.config();
        let (b, x) = self.input(net, x, true)?;
        let params = Self::params(net)?;

        self.forward_pass(&x, &params, cfg.hidden, cfg.outputs, true)?;

        // the loss, differentiated by candle with respect to the outputs only
        let out = Var::from_tensor(&Tensor::from_slice(
            &self.out,
            (b, cfg.outputs),
            x.device(),
        )?)?;
        let loss = loss_fn(out.as_tensor())?;
        let grads = loss.backward()?;
        let Some(dout) = grads.get(out.as_tensor()) else {
            // the loss does not depend on the network: no gradients (as with
            // candle's autograd, whose optimisers then skip every variable)
            return Ok(loss);
        };
        let dout = dout.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        drop(grads);

        self.backward_pass(&x, &params, &dout, cfg.hidden, cfg.outputs)?;
        self.have_grads = true;
        Ok(loss)
    }

    fn forward_pass(
        &mut self,
        x: &Tensor,
        params: &[Tensor],
        hidden: usize,
        outputs: usize,
        training: bool,
    ) -> Result<()> {
        let guards: Vec<_> = params.iter().map(|p| p.storage_and_layout()).collect();
        let p = |i: usize| cpu_f32(&guards[i].0, guards[i].1, "a parameter");
        let (xs, xl) = x.storage_and_layout();
        let input = input_view(&xs, xl)?;
        let slope = Some(LEAKY_SLOPE as f32);
        let n = self.layers.len();
        for i in 0..n {
            let g = self.layers[i];
            let w = p(2 * i)?;
            let bias = p(2 * i + 1)?;
            let (before, rest) = self.acts.split_at_mut(i);
            let xv = match before.last() {
                Some(prev) => NhwcView {
                    data: prev,
                    offset: 0,
                    strides: [g.in_image(), g.in_w * g.in_c, g.in_c, 1],
                },
                None => input,
            };
            let taps = KOrder::for_geometry(&g) == KOrder::Taps;
            // Winograd for inference only: in training, the forward pass
            // stays bitwise the one candle's autograd path runs, so the
            // LeakyReLU masks (and hence the gradients) match it exactly
            let wino = !training && conv_wino::applies(&g);
            if taps && !wino {
                conv_cpu::weight_hwio_into(w, &g, &mut self.w_taps[i]);
            }
            if wino {
                conv_wino::transform_weights_into(w, &g, &mut self.w_wino[i]);
                conv_wino::forward_into(&xv, &self.w_wino[i], Some(bias), &g, slope, &mut rest[0]);
            } else {
                let weights = if taps {
                    Weights::Taps(&self.w_taps[i])
                } else {
                    Weights::Channels(w)
                };
                conv_cpu::conv2d_forward_into(&xv, weights, Some(bias), &g, slope, &mut rest[0]);
            }
        }
        let flat = &self.acts[n - 1];
        let b = self.out.len() / outputs;
        let features = flat.len() / b;
        let (w1, b1, w2, b2) = (p(2 * n)?, p(2 * n + 1)?, p(2 * n + 2)?, p(2 * n + 3)?);
        // hidden (B × H) = flat (B × F) · W1ᵀ (F × H), computed column-major
        // (into `hidden_t`) so the GEMM reads W1 as stored: with a row-major
        // destination it would pack the whole transposed weight every call
        // (3.6 of the default net's 16 ms at batch 32)
        let hidden_t = sized(&mut self.hidden_t, b * hidden);
        conv_cpu::gemm_into(
            (b, hidden, features),
            MatMut {
                data: hidden_t,
                rs: 1,
                cs: b,
            },
            false,
            Mat {
                data: flat,
                rs: features,
                cs: 1,
            },
            Mat {
                data: w1,
                rs: 1,
                cs: features,
            },
            threads_par(),
        );
        for (bi, row) in self.hidden.chunks_exact_mut(hidden).enumerate() {
            for (h, v) in row.iter_mut().enumerate() {
                *v = hidden_t[h * b + bi];
            }
        }
        bias_leaky_rows(&mut self.hidden, b1, slope);
        // out (B × O) = hidden (B × H) · W2ᵀ (H × O)
        conv_cpu::gemm_into(
            (b, outputs, hidden),
            MatMut {
                data: &mut self.out,
                rs: outputs,
                cs: 1,
            },
            false,
            Mat {
                data: &self.hidden,
                rs: hidden,
                cs: 1,
            },
            Mat {
                data: w2,
                rs: 1,
                cs: hidden,
            },
            Parallelism::None,
        );
        bias_leaky_rows(&mut self.out, b2, None);
        Ok(())
    }

    fn backward_pass(
        &mut self,
        x: &Tensor,
        params: &[Tensor],
        dout: &[f32],
        hidden: usize,
        outputs: usize,
    ) -> Result<()> {
        let guards: Vec<_> = params.iter().map(|p| p.storage_and_layout()).collect();
        let p = |i: usize| cpu_f32(&guards[i].0, guards[i].1, "a parameter");
        let n = self.layers.len();
        let b = self.out.len() / outputs;
        if dout.len() != b * outputs {
            bail!("NetTrainer: the loss gradient has the wrong size");
        }
        let slope = LEAKY_SLOPE as f32;
        let (w1, w2) = (p(2 * n)?, p(2 * n + 2)?);
        let (conv_grads, head_grads) = self.grads.split_at_mut(2 * n);
        let [dw1, db1, dw2, db2] = head_grads else {
            bail!("NetTrainer: unexpected parameter count");
        };
        let par = threads_par();

        // fc2: dW2 (O × H) = doutᵀ · hidden, db2 = Σ dout, dhidden = dout · W2
        conv_cpu::gemm_into(
            (outputs, hidden, b),
            MatMut {
                data: dw2,
                rs: hidden,
                cs: 1,
            },
            false,
            Mat {
                data: dout,
                rs: 1,
                cs: outputs,
            },
            Mat {
                data: &self.hidden,
                rs: hidden,
                cs: 1,
            },
            Parallelism::None,
        );
        column_sums(dout, db2);
        conv_cpu::gemm_into(
            (b, hidden, outputs),
            MatMut {
                data: &mut self.dhidden,
                rs: hidden,
                cs: 1,
            },
            false,
            Mat {
                data: dout,
                rs: outputs,
                cs: 1,
            },
            Mat {
                data: w2,
                rs: hidden,
                cs: 1,
            },
            Parallelism::None,
        );
        // LeakyReLU: the output's sign is the pre-activation's
        for (d, &h) in self.dhidden.iter_mut().zip(&self.hidden) {
            if h <= 0.0 {
                *d *= slope;
            }
        }
        // fc1: dW1 (H × F) = dZ1ᵀ · flat, db1 = Σ dZ1, dflat = dZ1 · W1
        let features = self.acts[n - 1].len() / b;
        conv_cpu::gemm_into(
            (hidden, features, b),
            MatMut {
                data: dw1,
                rs: features,
                cs: 1,
            },
            false,
            Mat {
                data: &self.dhidden,
                rs: 1,
                cs: hidden,
            },
            Mat {
                data: &self.acts[n - 1],
                rs: features,
                cs: 1,
            },
            par,
        );
        column_sums(&self.dhidden, db1);
        conv_cpu::gemm_into(
            (b, features, hidden),
            MatMut {
                data: &mut self.dacts[n - 1],
                rs: features,
                cs: 1,
            },
            false,
            Mat {
                data: &self.dhidden,
                rs: hidden,
                cs: 1,
            },
            Mat {
                data: w1,
                rs: features,
                cs: 1,
            },
            par,
        );

        // the convolutions, last to first
        let (xs, xl) = x.storage_and_layout();
        let input = input_view(&xs, xl)?;
        for i in (0..n).rev() {
            let g = self.layers[i];
            let xv = if i == 0 {
                input
            } else {
                NhwcView {
                    data: &self.acts[i - 1],
                    offset: 0,
                    strides: [g.in_image(), g.in_w * g.in_c, g.in_c, 1],
                }
            };
            let weights = match KOrder::for_geometry(&g) {
                KOrder::Taps => Weights::Taps(&self.w_taps[i]),
                KOrder::Channels => Weights::Channels(p(2 * i)?),
            };
            let (dbefore, drest) = self.dacts.split_at_mut(i);
            let inputs = BackwardInputs {
                y: &self.acts[i],
                dy: &drest[0],
                leaky: Some(slope),
                need_dx: i > 0,
            };
            let (dw, rest) = conv_grads[2 * i..].split_at_mut(1);
            conv_cpu::conv2d_backward_into(
                &xv,
                weights,
                &g,
                &inputs,
                dbefore.last_mut().map(|d| d.as_mut_slice()),
                &mut dw[0],
                &mut rest[0],
            );
        }
        Ok(())
    }
}
