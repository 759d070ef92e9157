//! CPU kernels behind [`super::conv::FastConv2d`].
//!
//! Everything here works on NHWC data (batch, row, column, channel), which
//! turns a convolution into one tall GEMM per block of output pixels:
//!
//! * forward: `Y (rows × O) = cols (rows × K) · Wᵀ (K × O)`, where a row is an
//!   output pixel `(b, oy, ox)`, `K = kh·kw·C` ordered `(ky, kx, c)` and
//!   `cols` is the im2col patch matrix; bias and LeakyReLU are applied while
//!   the block is still in cache;
//! * weight gradient: `dW (O × K) += dZᵀ (O × rows) · cols (rows × K)`;
//! * input gradient: `dcols (rows × K) = dZ (rows × O) · W (O × K)` followed by
//!   col2im (a scatter-add of every patch back onto the input).
//!
//! `dZ` is the gradient before the activation: `dY` scaled by the LeakyReLU
//! slope where the output is negative (the sign of the output equals the
//! sign of the pre-activation for any slope ≥ 0).
//!
//! Rows are processed in blocks of [`block_rows`] so the patch matrix of a
//! block stays in the L2 cache and the full im2col matrix never exists.
//! Threads split the batch (whole images, so col2im never races); with fewer
//! images than threads the GEMMs themselves run in parallel instead.

use gemm::Parallelism;
use rayon::prelude::*;

/// The shape of one convolution, NHWC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvGeometry {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub out_c: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub out_h: usize,
    pub out_w: usize,
}

/// Output length along one axis, `None` when the kernel does not fit.
pub(crate) fn out_len(input: usize, kernel: usize, stride: usize, pad: usize) -> Option<usize> {
    if stride == 0 || kernel == 0 || input + 2 * pad < kernel {
        return None;
    }
    Some((input + 2 * pad - kernel) / stride + 1)
}

impl ConvGeometry {
    /// `None` when the stride is zero or the kernel does not fit in the padded input.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        batch: usize,
        (in_h, in_w, in_c): (usize, usize, usize),
        out_c: usize,
        (kh, kw): (usize, usize),
        stride: usize,
        pad: usize,
    ) -> Option<Self> {
        let out_h = out_len(in_h, kh, stride, pad)?;
        let out_w = out_len(in_w, kw, stride, pad)?;
        Some(Self {
            batch,
            in_h,
            in_w,
            in_c,
            out_c,
            kh,
            kw,
            stride,
            pad,
            out_h,
            out_w,
        })
    }

    /// Length of one patch: `kh·kw·C`.
    pub fn kdim(&self) -> usize {
        self.kh * self.kw * self.in_c
    }

    /// Output pixels per image.
    pub fn pixels(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Output pixels in the batch (GEMM rows).
    pub fn rows(&self) -> usize {
        self.batch * self.pixels()
    }

    /// Elements of one input image.
    pub fn in_image(&self) -> usize {
        self.in_h * self.in_w * self.in_c
    }
}

/// A read-only strided view of an NHWC tensor (element strides, any order).
#[derive(Clone, Copy, Debug)]
pub(crate) struct NhwcView<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub strides: [usize; 4],
}

impl<'a> NhwcView<'a> {
    /// A view of contiguous NHWC data.
    #[cfg(test)]
    pub fn contiguous(data: &'a [f32], g: &ConvGeometry) -> Self {
        Self {
            data,
            offset: 0,
            strides: [g.in_image(), g.in_w * g.in_c, g.in_c, 1],
        }
    }

    /// Whether `(x, c)` runs of one input row are contiguous in memory.
    fn row_runs_contiguous(&self, g: &ConvGeometry) -> bool {
        (g.in_c == 1 || self.strides[3] == 1) && (g.in_w == 1 || self.strides[2] == g.in_c)
    }

    /// Whether the channels of one pixel are contiguous in memory.
    fn pixels_contiguous(&self, g: &ConvGeometry) -> bool {
        g.in_c == 1 || self.strides[3] == 1
    }
}

/// Rows per block: the patch block (`rows × K` floats) stays around 256 KiB.
pub(crate) fn block_rows(kdim: usize) -> usize {
    const TARGET_FLOATS: usize = 64 * 1024;
    (TARGET_FLOATS / kdim.max(1)).clamp(32, 1024)
}

/// The weight `(O, C, kh, kw)` rearranged to GEMM rows `(O, kh, kw, C)`.
pub(crate) fn weight_to_rows(w: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let (c, kh, kw) = (g.in_c, g.kh, g.kw);
    let k = g.kdim();
    let mut out = vec![0.0f32; g.out_c * k];
    for (o, dst) in out.chunks_exact_mut(k).enumerate() {
        let src = &w[o * k..(o + 1) * k];
        for ci in 0..c {
            for ky in 0..kh {
                for kx in 0..kw {
                    dst[(ky * kw + kx) * c + ci] = src[(ci * kh + ky) * kw + kx];
                }
            }
        }
    }
    out
}

/// Inverse of [`weight_to_rows`]: GEMM rows `(O, kh, kw, C)` back to `(O, C, kh, kw)`.
pub(crate) fn rows_to_weight(wr: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let (c, kh, kw) = (g.in_c, g.kh, g.kw);
    let k = g.kdim();
    let mut out = vec![0.0f32; g.out_c * k];
    for (o, dst) in out.chunks_exact_mut(k).enumerate() {
        let src = &wr[o * k..(o + 1) * k];
        for ci in 0..c {
            for ky in 0..kh {
                for kx in 0..kw {
                    dst[(ci * kh + ky) * kw + kx] = src[(ky * kw + kx) * c + ci];
                }
            }
        }
    }
    out
}

/// Where output pixel `row` reads its patch: image, top-left input corner and
/// the range of kernel columns that fall inside the input.
#[derive(Clone, Copy, Debug)]
struct Patch {
    b: usize,
    iy0: isize,
    ix0: isize,
    kx_lo: usize,
    kx_hi: usize,
}

impl Patch {
    fn new(g: &ConvGeometry, row: usize) -> Self {
        let p = g.pixels();
        let (b, rem) = (row / p, row % p);
        let (oy, ox) = (rem / g.out_w, rem % g.out_w);
        let iy0 = (oy * g.stride) as isize - g.pad as isize;
        let ix0 = (ox * g.stride) as isize - g.pad as isize;
        let kx_lo = (-ix0).clamp(0, g.kw as isize) as usize;
        let kx_hi = (g.in_w as isize - ix0).clamp(kx_lo as isize, g.kw as isize) as usize;
        Self {
            b,
            iy0,
            ix0,
            kx_lo,
            kx_hi,
        }
    }

    /// The input row read by kernel row `ky`, if it is inside the image.
    fn input_row(&self, g: &ConvGeometry, ky: usize) -> Option<usize> {
        let iy = self.iy0 + ky as isize;
        (iy >= 0 && (iy as usize) < g.in_h).then_some(iy as usize)
    }

    /// First input column read by the valid kernel columns.
    fn first_col(&self) -> usize {
        (self.ix0 + self.kx_lo as isize) as usize
    }
}

/// Fills `cols` (`n × K`, `n = cols.len() / K`) with the patches of output
/// rows `row0 .. row0 + n`; out-of-image taps are zero.
pub(crate) fn im2col(x: &NhwcView<'_>, g: &ConvGeometry, row0: usize, cols: &mut [f32]) {
    let (c, kw) = (g.in_c, g.kw);
    let k = g.kdim();
    let row_runs = x.row_runs_contiguous(g);
    let pixel_runs = x.pixels_contiguous(g);
    let [sb, sy, sx, sc] = x.strides;
    for (i, dst_row) in cols.chunks_exact_mut(k).enumerate() {
        let patch = Patch::new(g, row0 + i);
        for (ky, dst) in dst_row.chunks_exact_mut(kw * c).enumerate() {
            let Some(iy) = patch.input_row(g, ky) else {
                dst.fill(0.0);
                continue;
            };
            let (lo, hi) = (patch.kx_lo * c, patch.kx_hi * c);
            dst[..lo].fill(0.0);
            dst[hi..].fill(0.0);
            if lo == hi {
                continue;
            }
            let run = &mut dst[lo..hi];
            let base = x.offset + patch.b * sb + iy * sy + patch.first_col() * sx;
            if row_runs {
                run.copy_from_slice(&x.data[base..base + run.len()]);
            } else if pixel_runs {
                for (j, px) in run.chunks_exact_mut(c).enumerate() {
                    let at = base + j * sx;
                    px.copy_from_slice(&x.data[at..at + c]);
                }
            } else {
                for (j, px) in run.chunks_exact_mut(c).enumerate() {
                    for (ci, v) in px.iter_mut().enumerate() {
                        *v = x.data[base + j * sx + ci * sc];
                    }
                }
            }
        }
    }
}

/// Scatter-adds the patch gradients `dcols` (`n × K`) of output rows
/// `row0 .. row0 + n` onto `dx`, contiguous NHWC starting at image `img0`.
pub(crate) fn col2im_add(
    dcols: &[f32],
    g: &ConvGeometry,
    row0: usize,
    img0: usize,
    dx: &mut [f32],
) {
    let (c, kw) = (g.in_c, g.kw);
    let k = g.kdim();
    let (sb, sy) = (g.in_image(), g.in_w * c);
    for (i, src_row) in dcols.chunks_exact(k).enumerate() {
        let patch = Patch::new(g, row0 + i);
        let b = patch.b - img0;
        for (ky, src) in src_row.chunks_exact(kw * c).enumerate() {
            let Some(iy) = patch.input_row(g, ky) else {
                continue;
            };
            let (lo, hi) = (patch.kx_lo * c, patch.kx_hi * c);
            if lo == hi {
                continue;
            }
            let base = b * sb + iy * sy + patch.first_col() * c;
            let dst = &mut dx[base..base + (hi - lo)];
            for (d, s) in dst.iter_mut().zip(&src[lo..hi]) {
                *d += s;
            }
        }
    }
}

/// A read-only matrix operand: data plus row and column strides.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl Mat<'_> {
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// `dst (m × n, row stride dst_rs) = [dst +] lhs (m × k) · rhs (k × n)`.
#[allow(clippy::too_many_arguments)]
fn gemm_into(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    lhs: Mat<'_>,
    rhs: Mat<'_>,
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * dst_rs + n <= dst.len(), "gemm: dst too small");
    if k == 0 {
        if !accumulate {
            for row in 0..m {
                dst[row * dst_rs..row * dst_rs + n].fill(0.0);
            }
        }
        return;
    }
    assert!(lhs.fits(m, k), "gemm: lhs too small");
    assert!(rhs.fits(k, n), "gemm: rhs too small");
    // SAFETY: the asserts above keep every element gemm touches inside the
    // three slices; `dst` is borrowed mutably, so it aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// `y ← leaky(y + bias)` on a block of rows of `o` channels.
fn bias_leaky(y: &mut [f32], o: usize, bias: Option<&[f32]>, leaky: Option<f32>) {
    for row in y.chunks_exact_mut(o) {
        if let Some(bias) = bias {
            for (v, b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
        if let Some(slope) = leaky {
            for v in row.iter_mut() {
                *v = v.max(0.0) + v.min(0.0) * slope;
            }
        }
    }
}

/// Forward convolution. `w` is `(O, C, kh, kw)` contiguous, `bias` has `O`
/// entries; returns the contiguous NHWC output `(B, OH, OW, O)`.
pub(crate) fn conv2d_forward(
    x: &NhwcView<'_>,
    w: &[f32],
    bias: Option<&[f32]>,
    g: &ConvGeometry,
    leaky: Option<f32>,
) -> Vec<f32> {
    let (k, o, rows) = (g.kdim(), g.out_c, g.rows());
    let wr = weight_to_rows(w, g);
    let mut y = vec![0.0f32; rows * o];
    if rows == 0 || o == 0 {
        return y;
    }
    let threads = rayon::current_num_threads();
    let block = block_rows(k).min(rows.div_ceil(threads)).max(1);
    let par = if rows.div_ceil(block) < threads {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    let wt = Mat {
        data: &wr,
        rs: 1,
        cs: k,
    };
    y.par_chunks_mut(block * o).enumerate().for_each_init(
        || vec![0.0f32; block * k],
        |cols, (i, yb)| {
            let n = yb.len() / o;
            let cols = &mut cols[..n * k];
            im2col(x, g, i * block, cols);
            let lhs = Mat {
                data: cols,
                rs: k,
                cs: 1,
            };
            gemm_into((n, o, k), yb, o, false, lhs, wt, par);
            bias_leaky(yb, o, bias, leaky);
        },
    );
    y
}

/// Gradients of one convolution, in the layouts of its arguments.
#[derive(Debug)]
pub(crate) struct ConvGrads {
    /// `(B, H, W, C)` contiguous, when requested.
    pub dx: Option<Vec<f32>>,
    /// `(O, C, kh, kw)` contiguous.
    pub dw: Vec<f32>,
    /// `O` entries.
    pub db: Vec<f32>,
}

/// What the backward pass reads besides the input and the weight.
pub(crate) struct BackwardInputs<'a> {
    /// The forward output, contiguous NHWC (only read with a LeakyReLU).
    pub y: &'a [f32],
    /// The gradient of the output, contiguous NHWC.
    pub dy: &'a [f32],
    pub leaky: Option<f32>,
    pub need_dx: bool,
}

/// Backward convolution: the input, weight and bias gradients.
pub(crate) fn conv2d_backward(
    x: &NhwcView<'_>,
    w: &[f32],
    g: &ConvGeometry,
    inputs: &BackwardInputs<'_>,
) -> ConvGrads {
    let (k, o) = (g.kdim(), g.out_c);
    let wr = weight_to_rows(w, g);
    let threads = rayon::current_num_threads();
    let per_group = g.batch.div_ceil(threads.min(g.batch).max(1)).max(1);
    let groups = g.batch.div_ceil(per_group);
    let par = if groups < threads {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    let block = block_rows(k);
    let p = g.pixels();

    let run_group = |gi: usize, mut dx: Option<&mut [f32]>| -> (Vec<f32>, Vec<f32>) {
        let img0 = gi * per_group;
        let (r0, r1) = (img0 * p, ((img0 + per_group).min(g.batch)) * p);
        let mut dw = vec![0.0f32; o * k];
        let mut db = vec![0.0f32; o];
        let mut dz = vec![0.0f32; block * o];
        let mut cols = vec![0.0f32; block * k];
        let mut dcols = if dx.is_some() {
            vec![0.0f32; block * k]
        } else {
            Vec::new()
        };
        for row0 in (r0..r1).step_by(block) {
            let n = block.min(r1 - row0);
            let dy = &inputs.dy[row0 * o..(row0 + n) * o];
            let dz: &[f32] = match inputs.leaky {
                Some(slope) => {
                    let y = &inputs.y[row0 * o..(row0 + n) * o];
                    let dz = &mut dz[..n * o];
                    for ((z, &d), &y) in dz.iter_mut().zip(dy).zip(y) {
                        *z = if y > 0.0 { d } else { d * slope };
                    }
                    dz
                }
                None => dy,
            };
            for row in dz.chunks_exact(o) {
                for (s, d) in db.iter_mut().zip(row) {
                    *s += d;
                }
            }
            let cols = &mut cols[..n * k];
            im2col(x, g, row0, cols);
            let dzt = Mat {
                data: dz,
                rs: 1,
                cs: o,
            };
            let colm = Mat {
                data: cols,
                rs: k,
                cs: 1,
            };
            gemm_into((o, k, n), &mut dw, k, true, dzt, colm, par);
            if let Some(dx) = dx.as_deref_mut() {
                let dcols = &mut dcols[..n * k];
                let dzm = Mat {
                    data: dz,
                    rs: o,
                    cs: 1,
                };
                let wm = Mat {
                    data: &wr,
                    rs: k,
                    cs: 1,
                };
                gemm_into((n, k, o), dcols, k, false, dzm, wm, par);
                col2im_add(dcols, g, row0, img0, dx);
            }
        }
        (dw, db)
    };

    let (partials, dx) = if inputs.need_dx {
        let mut dx = vec![0.0f32; g.batch * g.in_image()];
        let partials: Vec<_> = if g.in_image() == 0 {
            (0..groups).map(|gi| run_group(gi, None)).collect()
        } else {
            dx.par_chunks_mut(per_group * g.in_image())
                .enumerate()
                .map(|(gi, dx)| run_group(gi, Some(dx)))
                .collect()
        };
        (partials, Some(dx))
    } else {
        let partials: Vec<_> = (0..groups)
            .into_par_iter()
            .map(|gi| run_group(gi, None))
            .collect();
        (partials, None)
    };

    let mut dw = vec![0.0f32; o * k];
    let mut db = vec![0.0f32; o];
    for (pw, pb) in &partials {
        for (a, b) in dw.iter_mut().zip(pw) {
            *a += b;
        }
        for (a, b) in db.iter_mut().zip(pb) {
            *a += b;
        }
    }
    ConvGrads {
        dx,
        dw: rows_to_weight(&dw, g),
        db,
    }
}
