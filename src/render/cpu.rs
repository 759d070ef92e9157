//! The CPU renderer: batched, differentiable through candle autograd.
//!
//! The splat itself is a candle [`CustomOp3`] whose forward and backward
//! passes are GEMMs over the separable Gaussian profiles (see
//! [`super::kernel`]). Projection, rotation, shift and scale are ordinary
//! candle ops, so gradients flow to the rotation parameters, the shift, σ,
//! the scale and the point positions. On devices other than the CPU, or for
//! dtypes other than f32, [`splat`] falls back to the same formula written in
//! stock candle ops.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor, D};
use gemm::Parallelism;
use rayon::prelude::*;

use super::kernel::{self, Scratch};
use super::{RenderError, SplatParams};

type Result<T> = std::result::Result<T, RenderError>;

/// The splat as a candle op: `(uv (B,N,2), weights (B,N), sigma (B)) → (B,H,W)`.
#[derive(Clone, Copy, Debug)]
struct SplatOp {
    width: usize,
    height: usize,
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("splat: {what} must be contiguous"),
    }
}

/// Runs `f` on every frame of a batch, in parallel across frames when there
/// are several and inside the GEMM when there is one.
fn per_frame<T: Send>(batch: usize, f: impl Fn(usize, Parallelism) -> T + Sync) -> Vec<T> {
    if batch == 1 {
        vec![f(0, Parallelism::Rayon(rayon::current_num_threads()))]
    } else {
        (0..batch)
            .into_par_iter()
            .map(|b| f(b, Parallelism::None))
            .collect()
    }
}

impl CustomOp3 for SplatOp {
    fn name(&self) -> &'static str {
        "posescope-splat"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, n, _) = l1.shape().dims3()?;
        let uv = contiguous(s1, l1, "uv")?;
        let w = contiguous(s2, l2, "weights")?;
        let sigma = contiguous(s3, l3, "sigma")?;
        let (wd, ht) = (self.width, self.height);
        let mut out = vec![0.0f32; b * ht * wd];
        if b == 1 {
            let mut scratch = Scratch::default();
            let par = Parallelism::Rayon(rayon::current_num_threads());
            kernel::splat_frame(uv, w, sigma[0], wd, ht, par, &mut scratch, &mut out);
        } else {
            out.par_chunks_mut(ht * wd).enumerate().for_each_init(
                Scratch::default,
                |scratch, (i, frame)| {
                    kernel::splat_frame(
                        &uv[i * 2 * n..(i + 1) * 2 * n],
                        &w[i * n..(i + 1) * n],
                        sigma[i],
                        wd,
                        ht,
                        Parallelism::None,
                        scratch,
                        frame,
                    )
                },
            );
        }
        Ok((CpuStorage::F32(out), Shape::from((b, ht, wd))))
    }

    fn bwd(
        &self,
        uv: &Tensor,
        weights: &Tensor,
        sigma: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, n, _) = uv.dims3()?;
        let (wd, ht) = (self.width, self.height);
        let uv_v = uv.flatten_all()?.to_vec1::<f32>()?;
        let w_v = weights.flatten_all()?.to_vec1::<f32>()?;
        let s_v = sigma.to_vec1::<f32>()?;
        let g_v = grad_res.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let grads = per_frame(b, |i, par| {
            kernel::splat_frame_backward(
                &uv_v[i * 2 * n..(i + 1) * 2 * n],
                &w_v[i * n..(i + 1) * n],
                s_v[i],
                wd,
                ht,
                &g_v[i * ht * wd..(i + 1) * ht * wd],
                par,
            )
        });
        let dev = uv.device();
        let g_uv: Vec<f32> = grads.iter().flat_map(|g| g.uv.iter().copied()).collect();
        let g_w: Vec<f32> = grads
            .iter()
            .flat_map(|g| g.weights.iter().copied())
            .collect();
        let g_s: Vec<f32> = grads.iter().map(|g| g.sigma).collect();
        Ok((
            Some(Tensor::from_vec(g_uv, (b, n, 2), dev)?),
            Some(Tensor::from_vec(g_w, (b, n), dev)?),
            Some(Tensor::from_vec(g_s, b, dev)?),
        ))
    }
}

fn check_dims(
    uv: &Tensor,
    weights: &Tensor,
    sigma: &Tensor,
    width: usize,
    height: usize,
) -> Result<usize> {
    let (b, n, two) = uv.dims3()?;
    if two != 2 {
        return Err(RenderError::Invalid(format!(
            "uv must be (B,N,2), got {:?}",
            uv.dims()
        )));
    }
    if weights.dims() != [b, n] {
        return Err(RenderError::Invalid(format!(
            "weights must be (B,N) = ({b},{n}), got {:?}",
            weights.dims()
        )));
    }
    if sigma.dims() != [b] {
        return Err(RenderError::Invalid(format!(
            "sigma must be (B) = ({b}), got {:?}",
            sigma.dims()
        )));
    }
    if width == 0 || height == 0 || width.saturating_mul(height) > 1 << 26 {
        return Err(RenderError::Invalid(format!("image size {width}×{height}")));
    }
    Ok(b)
}

/// Splats projected points into images: `(uv (B,N,2), weights (B,N), sigma (B)) → (B,H,W)`.
///
/// Differentiable with respect to all three inputs.
pub fn splat(
    uv: &Tensor,
    weights: &Tensor,
    sigma: &Tensor,
    width: usize,
    height: usize,
) -> Result<Tensor> {
    check_dims(uv, weights, sigma, width, height)?;
    if uv.device().is_cpu() && uv.dtype() == DType::F32 {
        let op = SplatOp { width, height };
        Ok(uv
            .contiguous()?
            .apply_op3(&weights.contiguous()?, &sigma.contiguous()?, op)?)
    } else {
        splat_ops(uv, weights, sigma, width, height)
    }
}

/// [`splat`] in stock candle ops: broadcast profiles and one batched matmul.
///
/// Works on every device; it is also the cross-check for the custom op's
/// hand-written backward pass.
pub fn splat_ops(
    uv: &Tensor,
    weights: &Tensor,
    sigma: &Tensor,
    width: usize,
    height: usize,
) -> Result<Tensor> {
    let b = check_dims(uv, weights, sigma, width, height)?;
    let dev = uv.device();
    let dt = uv.dtype();
    let centres = |len: usize| -> candle_core::Result<Tensor> {
        Tensor::arange(0u32, len as u32, dev)?
            .to_dtype(dt)?
            .affine(1.0, 0.5)?
            .reshape((1, 1, len))
    };
    let s = sigma.reshape((b, 1, 1))?;
    let inv2s2 = (s.sqr()? * 2.0)?.recip()?;
    let profile = |coord: &Tensor, len: usize| -> candle_core::Result<Tensor> {
        let d = centres(len)?.broadcast_sub(&coord.unsqueeze(2)?)?; // (B,N,len)
        d.sqr()?.broadcast_mul(&inv2s2)?.neg()?.exp()
    };
    let u = uv.narrow(2, 0, 1)?.squeeze(2)?;
    let v = uv.narrow(2, 1, 1)?.squeeze(2)?;
    let gx = profile(&u, width)?; // (B,N,W)
    let gy = profile(&v, height)?; // (B,N,H)
    let norm = (s.sqr()? * (2.0 * std::f64::consts::PI))?.recip()?; // (B,1,1)
    let gy = gy
        .broadcast_mul(&weights.unsqueeze(2)?)?
        .broadcast_mul(&norm)?;
    Ok(gy.transpose(1, 2)?.contiguous()?.matmul(&gx)?)
}

/// Projects model points into image coordinates.
///
/// `points (N,3)`, `rot (B,3,3)` (model → camera), `shift (B,2)` pixels,
/// `scale (B)` → `uv (B,N,2)` with `u = W/2 + shift_x + s·(R·p)_x` and
/// `v = H/2 + shift_y + s·(R·p)_y`.
pub fn project(
    points: &Tensor,
    rot: &Tensor,
    shift: &Tensor,
    scale: &Tensor,
    width: usize,
    height: usize,
) -> Result<Tensor> {
    let (n, three) = points.dims2()?;
    let (b, r1, r2) = rot.dims3()?;
    if three != 3 || r1 != 3 || r2 != 3 {
        return Err(RenderError::Invalid(format!(
            "points must be (N,3) and rot (B,3,3), got {:?} and {:?}",
            points.dims(),
            rot.dims()
        )));
    }
    // Only the first two rows of R matter to an orthographic projection.
    let r2 = rot.narrow(1, 0, 2)?; // (B,2,3)
    let cam = points
        .unsqueeze(0)?
        .broadcast_as((b, n, 3))?
        .matmul(&r2.transpose(1, 2)?)?; // (B,N,2)
    let centre = Tensor::new(&[width as f32 / 2.0, height as f32 / 2.0], points.device())?
        .to_dtype(points.dtype())?
        .reshape((1, 1, 2))?;
    let offset = shift.reshape((b, 1, 2))?.broadcast_add(&centre)?;
    Ok(cam
        .broadcast_mul(&scale.reshape((b, 1, 1))?)?
        .broadcast_add(&offset)?)
}

/// Projects and splats: `points (N,3)`, `weights (N)`, `rot (B,3,3)`,
/// `shift (B,2)`, `sigma (B)`, `scale (B)` → images `(B,H,W)`.
#[allow(clippy::too_many_arguments)]
pub fn render(
    points: &Tensor,
    weights: &Tensor,
    rot: &Tensor,
    shift: &Tensor,
    sigma: &Tensor,
    scale: &Tensor,
    width: usize,
    height: usize,
) -> Result<Tensor> {
    let uv = project(points, rot, shift, scale, width, height)?;
    let (b, n, _) = uv.dims3()?;
    let w = weights.reshape((1, n))?.broadcast_as((b, n))?;
    splat(&uv, &w, sigma, width, height)
}

/// Projects model points to `(u, v)` pairs without candle (for the fast path).
pub fn project_points(
    points: &[[f32; 3]],
    rot: &[[f64; 3]; 3],
    shift: [f64; 2],
    params: &SplatParams,
) -> Vec<f32> {
    let s = params.scale as f64;
    let (cu, cv) = (
        params.width as f64 / 2.0 + shift[0],
        params.height as f64 / 2.0 + shift[1],
    );
    let r = rot.map(|row| row.map(|x| x * s));
    points
        .iter()
        .flat_map(|p| {
            let p = [p[0] as f64, p[1] as f64, p[2] as f64];
            [
                (cu + r[0][0] * p[0] + r[0][1] * p[1] + r[0][2] * p[2]) as f32,
                (cv + r[1][0] * p[0] + r[1][1] * p[1] + r[1][2] * p[2]) as f32,
            ]
        })
        .collect()
}

/// Renders one frame without autograd: the fast path for synthesis, scoring
/// and display. `out` must hold `width·height` values and is overwritten.
pub fn render_frame_into(
    points: &[[f32; 3]],
    weights: &[f32],
    rot: &[[f64; 3]; 3],
    shift: [f64; 2],
    params: &SplatParams,
    scratch: &mut Scratch,
    out: &mut [f32],
) -> Result<()> {
    if points.len() != weights.len() {
        return Err(RenderError::Invalid(format!(
            "{} points but {} weights",
            points.len(),
            weights.len()
        )));
    }
    if !(params.sigma.is_finite() && params.sigma > 0.0) {
        return Err(RenderError::Invalid(format!(
            "PSF sigma must be positive, got {}",
            params.sigma
        )));
    }
    if out.len() != params.width * params.height || out.is_empty() {
        return Err(RenderError::Invalid(format!(
            "output holds {} values for a {}×{} image",
            out.len(),
            params.width,
            params.height
        )));
    }
    let uv = project_points(points, rot, shift, params);
    kernel::splat_frame(
        &uv,
        weights,
        params.sigma,
        params.width,
        params.height,
        Parallelism::None,
        scratch,
        out,
    );
    Ok(())
}

/// Renders one frame without autograd, allocating the output.
pub fn render_frame(
    points: &[[f32; 3]],
    weights: &[f32],
    rot: &[[f64; 3]; 3],
    shift: [f64; 2],
    params: &SplatParams,
) -> Result<Vec<f32>> {
    let mut out = vec![0.0; params.width * params.height];
    render_frame_into(
        points,
        weights,
        rot,
        shift,
        params,
        &mut Scratch::default(),
        &mut out,
    )?;
    Ok(out)
}

/// Sum over the last two dims, a helper for image-level losses.
pub fn image_sums(images: &Tensor) -> Result<Tensor> {
    Ok(images.sum(D::Minus1)?.sum(D::Minus1)?)
}

/// Rotation matrices from the continuous 6-D representation (Zhou et al. 2019),
/// in candle ops so that gradients reach the six parameters.
///
/// `six (B,6)` holds the first two columns of R (`a1 = six[0..3]`,
/// `a2 = six[3..6]`); Gram–Schmidt makes them orthonormal and the third
/// column is their cross product. Returns `(B,3,3)`, row-major `R[b, row, col]`.
pub fn rotation_from_6d(six: &Tensor) -> Result<Tensor> {
    let (b, k) = six.dims2()?;
    if k != 6 {
        return Err(RenderError::Invalid(format!(
            "6-D rotations must be (B,6), got {:?}",
            six.dims()
        )));
    }
    let normalise = |v: &Tensor| -> candle_core::Result<Tensor> {
        let n = v
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12, f64::INFINITY)?;
        v.broadcast_div(&n)
    };
    let a1 = six.narrow(1, 0, 3)?;
    let a2 = six.narrow(1, 3, 3)?;
    let b1 = normalise(&a1)?;
    let proj = (&b1 * &a2)?.sum_keepdim(1)?;
    let b2 = normalise(&(a2 - b1.broadcast_mul(&proj)?)?)?;
    let c = |v: &Tensor, i: usize| v.narrow(1, i, 1);
    let b3 = Tensor::cat(
        &[
            ((c(&b1, 1)? * c(&b2, 2)?)? - (c(&b1, 2)? * c(&b2, 1)?)?)?,
            ((c(&b1, 2)? * c(&b2, 0)?)? - (c(&b1, 0)? * c(&b2, 2)?)?)?,
            ((c(&b1, 0)? * c(&b2, 1)?)? - (c(&b1, 1)? * c(&b2, 0)?)?)?,
        ],
        1,
    )?;
    debug_assert_eq!(b3.dims(), [b, 3]);
    Ok(Tensor::stack(&[b1, b2, b3], 2)?)
}

#[cfg(test)]
#[path = "cpu_tests.rs"]
mod tests;
