//! A fused, in-place AdamW optimiser for CPU training.
//!
//! [`candle_nn::AdamW`] updates each variable with about fifteen tensor ops,
//! each allocating (and page-faulting in) a fresh buffer the size of the
//! variable. For the orientation nets (1–3 M parameters) that dominates a
//! training step at small batch sizes. [`FusedAdamW`] computes the same update
//! in one parallel pass over each variable, writing the parameters and the
//! moment estimates in place; it takes the same [`ParamsAdamW`] and is a
//! drop-in [`Optimizer`].
//!
//! Variables that are not contiguous f32 tensors on the CPU are updated with
//! candle tensor ops, exactly as `candle_nn::AdamW` does.

use std::cell::RefCell;

use candle_core::backprop::GradStore;
use candle_core::{bail, CpuStorage, DType, InplaceOp1, InplaceOp2, Layout, Result, Tensor, Var};
use candle_nn::{Optimizer, ParamsAdamW};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Which AdamW implementation a training loop uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdamWKind {
    /// [`FusedAdamW`].
    #[default]
    Fused,
    /// [`candle_nn::AdamW`].
    Candle,
}

/// Elements per parallel work unit of the fused update.
const CHUNK: usize = 16 * 1024;

/// Per-step constants of the AdamW update.
#[derive(Clone, Copy, Debug)]
struct Coefs {
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    scale_m: f32,
    scale_v: f32,
    decay: f32,
    lr: f32,
    eps: f32,
}

/// Optimiser state of one variable.
#[derive(Debug)]
enum Moments {
    /// First and second moments of a contiguous CPU f32 variable.
    Cpu { m: Vec<f32>, v: Vec<f32> },
    /// Moments as tensors (other devices and dtypes).
    Tensors { m: Var, v: Var },
}

#[derive(Debug)]
struct VarState {
    var: Var,
    moments: Moments,
}

/// AdamW with the update of [`candle_nn::AdamW`], fused into one in-place pass.
#[derive(Debug)]
pub struct FusedAdamW {
    vars: Vec<VarState>,
    step_t: usize,
    params: ParamsAdamW,
}

fn fused_eligible(var: &Var) -> bool {
    var.device().is_cpu() && var.dtype() == DType::F32 && var.is_contiguous()
}

impl Optimizer for FusedAdamW {
    type Config = ParamsAdamW;

    fn new(vars: Vec<Var>, params: ParamsAdamW) -> Result<Self> {
        let vars = vars
            .into_iter()
            .filter(|v| v.dtype().is_float())
            .map(|var| {
                let moments = if fused_eligible(&var) {
                    let n = var.elem_count();
                    Moments::Cpu {
                        m: vec![0.0; n],
                        v: vec![0.0; n],
                    }
                } else {
                    Moments::Tensors {
                        m: Var::zeros(var.shape(), var.dtype(), var.device())?,
                        v: Var::zeros(var.shape(), var.dtype(), var.device())?,
                    }
                };
                Ok(VarState { var, moments })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            vars,
            step_t: 0,
            params,
        })
    }

    fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr
    }

    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let (k, scale_m, scale_v) = self.next_coefs();
        let p = &self.params;
        for state in &mut self.vars {
            let Some(g) = grads.get(&state.var) else {
                continue;
            };
            let g = &g.contiguous()?;
            match &mut state.moments {
                Moments::Cpu { m, v } => {
                    let op = FusedUpdate {
                        m: RefCell::new(m),
                        v: RefCell::new(v),
                        k,
                    };
                    state.var.inplace_op2(g, &op)?;
                }
                Moments::Tensors { m, v } => {
                    tensor_update(&state.var, m, v, g, p, scale_m, scale_v)?;
                }
            }
        }
        Ok(())
    }
}

impl FusedAdamW {
    pub fn params(&self) -> &ParamsAdamW {
        &self.params
    }

    /// Advances the step counter; the update's constants for the new step
    /// and the bias corrections `1 / (1 − βᵗ)`.
    fn next_coefs(&mut self) -> (Coefs, f64, f64) {
        self.step_t += 1;
        let p = &self.params;
        let t = i32::try_from(self.step_t).unwrap_or(i32::MAX);
        let scale_m = 1.0 / (1.0 - p.beta1.powi(t));
        let scale_v = 1.0 / (1.0 - p.beta2.powi(t));
        let k = Coefs {
            beta1: p.beta1 as f32,
            one_minus_beta1: (1.0 - p.beta1) as f32,
            beta2: p.beta2 as f32,
            one_minus_beta2: (1.0 - p.beta2) as f32,
            scale_m: scale_m as f32,
            scale_v: scale_v as f32,
            decay: (1.0 - p.lr * p.weight_decay) as f32,
            lr: p.lr as f32,
            eps: p.eps as f32,
        };
        (k, scale_m, scale_v)
    }

    /// One optimiser step with gradients given as contiguous f32 slices, one
    /// per tensor (matched to the optimiser's variables by tensor id, so a
    /// tensor sharing a variable's storage and id, as those handed out by a
    /// `VarMap`, names that variable). Variables without a gradient are left
    /// alone, as [`Optimizer::step`] does for a `GradStore` without them;
    /// tensors that are not among the variables are an error.
    pub fn step_slices(&mut self, grads: &[(&Tensor, &[f32])]) -> Result<()> {
        for (t, g) in grads {
            if g.len() != t.elem_count() {
                bail!(
                    "FusedAdamW: gradient of {} elements for a tensor of {}",
                    g.len(),
                    t.elem_count()
                );
            }
            if !self.vars.iter().any(|s| s.var.as_tensor().id() == t.id()) {
                bail!("FusedAdamW: a gradient for a tensor that is not an optimised variable");
            }
        }
        let (k, scale_m, scale_v) = self.next_coefs();
        let p = &self.params;
        for state in &mut self.vars {
            let id = state.var.as_tensor().id();
            let Some(&(_, g)) = grads.iter().find(|(t, _)| t.id() == id) else {
                continue;
            };
            match &mut state.moments {
                Moments::Cpu { m, v } => {
                    let op = SliceUpdate {
                        g,
                        m: RefCell::new(m),
                        v: RefCell::new(v),
                        k,
                    };
                    state.var.inplace_op1(&op)?;
                }
                Moments::Tensors { m, v } => {
                    let g = Tensor::from_slice(g, state.var.shape(), &candle_core::Device::Cpu)?
                        .to_device(state.var.device())?
                        .to_dtype(state.var.dtype())?;
                    tensor_update(&state.var, m, v, &g, p, scale_m, scale_v)?;
                }
            }
        }
        Ok(())
    }
}

/// candle_nn::AdamW's update, for variables the fused kernel does not take.
fn tensor_update(
    theta: &Var,
    m: &Var,
    v: &Var,
    g: &Tensor,
    p: &ParamsAdamW,
    scale_m: f64,
    scale_v: f64,
) -> Result<()> {
    let next_m = ((m.as_tensor() * p.beta1)? + (g * (1.0 - p.beta1))?)?;
    let next_v = ((v.as_tensor() * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?;
    let m_hat = (&next_m * scale_m)?;
    let v_hat = (&next_v * scale_v)?;
    let next_theta = (theta.as_tensor() * (1.0 - p.lr * p.weight_decay))?;
    let adjusted = (m_hat / (v_hat.sqrt()? + p.eps)?)?;
    let next_theta = (next_theta - (adjusted * p.lr)?)?;
    m.set(&next_m)?;
    v.set(&next_v)?;
    theta.set(&next_theta)
}

/// The in-place update of one variable; the moments ride along in the op.
struct FusedUpdate<'a> {
    m: RefCell<&'a mut Vec<f32>>,
    v: RefCell<&'a mut Vec<f32>>,
    k: Coefs,
}

/// The in-place update of one variable from a gradient slice.
struct SliceUpdate<'a> {
    g: &'a [f32],
    m: RefCell<&'a mut Vec<f32>>,
    v: RefCell<&'a mut Vec<f32>>,
    k: Coefs,
}

impl InplaceOp1 for SliceUpdate<'_> {
    fn name(&self) -> &'static str {
        "posescope-fused-adamw-slice"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> Result<()> {
        let CpuStorage::F32(theta) = s else {
            bail!("FusedAdamW: parameters must be f32");
        };
        let Some((a, b)) = l.contiguous_offsets() else {
            bail!("FusedAdamW: parameters must be contiguous");
        };
        let mut m = self.m.borrow_mut();
        let mut v = self.v.borrow_mut();
        update(&mut theta[a..b], self.g, &mut m, &mut v, &self.k)
    }
}

/// The fused update of a whole variable, in parallel chunks when large.
fn update(theta: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: &Coefs) -> Result<()> {
    if g.len() != theta.len() || m.len() != theta.len() || v.len() != theta.len() {
        bail!("FusedAdamW: gradient or state size does not match the parameter");
    }
    if theta.len() < 4 * CHUNK {
        update_chunk(theta, g, m, v, k);
    } else {
        theta
            .par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .for_each(|(((th, g), m), v)| update_chunk(th, g, m, v, k));
    }
    Ok(())
}

fn update_chunk(theta: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: &Coefs) {
    for (((th, &g), m), v) in theta.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = *m * k.beta1 + g * k.one_minus_beta1;
        *v = *v * k.beta2 + g * g * k.one_minus_beta2;
        let adjusted = (*m * k.scale_m) / ((*v * k.scale_v).sqrt() + k.eps);
        *th = *th * k.decay - adjusted * k.lr;
    }
}

impl InplaceOp2 for FusedUpdate<'_> {
    fn name(&self) -> &'static str {
        "posescope-fused-adamw"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let (CpuStorage::F32(theta), CpuStorage::F32(g)) = (s1, s2) else {
            bail!("FusedAdamW: parameters and gradients must be f32");
        };
        let (Some((a, b)), Some((ga, gb))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            bail!("FusedAdamW: parameters and gradients must be contiguous");
        };
        let mut m = self.m.borrow_mut();
        let mut v = self.v.borrow_mut();
        update(&mut theta[a..b], &g[ga..gb], &mut m, &mut v, &self.k)
    }
}
