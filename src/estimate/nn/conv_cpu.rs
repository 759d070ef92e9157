//! CPU kernels behind [`super::conv::FastConv2d`].
//!
//! Everything here works on NHWC data (batch, row, column, channel), which
//! turns a convolution into one tall GEMM per block of output pixels:
//!
//! * forward: `Y (rows × O) = cols (rows × K) · Wᵀ (K × O)`, where a row is an
//!   output pixel `(b, oy, ox)`, `K = kh·kw·C` and `cols` is the im2col patch
//!   matrix; bias and LeakyReLU are applied while the block is still in cache;
//! * weight gradient: `dW (O × K) += dZᵀ (O × rows) · cols (rows × K)`;
//! * input gradient: `dcols (rows × K) = dZ (rows × O) · W (O × K)` followed by
//!   col2im (a scatter-add of every patch back onto the input).
//!
//! `dZ` is the gradient before the activation: `dY` scaled by the LeakyReLU
//! slope where the output is negative (the sign of the output equals the
//! sign of the pre-activation for any slope ≥ 0).
//!
//! The patch dimension `K` comes in two orders ([`KOrder`]). Ordered by tap
//! `(ky, kx, c)`, im2col copies contiguous channel runs, and the weight is
//! rearranged once per call to `(kh, kw, C, O)` so the GEMM reads it without
//! packing. When a call has few output pixels compared with the size of the
//! weight (late layers at batch 1), rearranging the weight would cost more
//! than the convolution, so `K` is ordered by channel `(c, ky, kx)` instead:
//! the weight is used in candle's own layout and the output block is computed
//! transposed.
//!
//! Rows are processed in blocks of [`block_rows`] so the patch matrix of a
//! block stays in cache and the full im2col matrix never exists. Threads
//! split the batch (whole images, so col2im never races); with fewer images
//! than threads they split the rows, or the GEMMs themselves run in parallel.

use std::cell::RefCell;

use gemm::Parallelism;

use super::conv_c1;
use super::conv_geometry::{ConvGeometry, NhwcView, Patches};
use rayon::prelude::*;

thread_local! {
    /// Scratch buffers kept per thread between calls, so the large patch
    /// blocks are not freshly mapped (and page-faulted in) on every call.
    static POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// A scratch buffer from this thread's pool, returned to it on drop. Its
/// contents are unspecified (stale data, never uninitialised memory).
pub(crate) struct Scratch(Vec<f32>);

impl Scratch {
    /// Buffers larger than this (floats) are freed instead of pooled.
    const KEEP_MAX: usize = 8 << 20;
    /// Buffers kept per thread.
    const KEEP_COUNT: usize = 4;

    pub(crate) fn new(n: usize) -> Self {
        let mut buf = POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default();
        if buf.len() < n {
            buf.resize(n, 0.0);
        }
        Self(buf)
    }

    /// The first `n` elements.
    pub(crate) fn get(&mut self, n: usize) -> &mut [f32] {
        if self.0.len() < n {
            self.0.resize(n, 0.0);
        }
        &mut self.0[..n]
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        if buf.capacity() <= Self::KEEP_MAX {
            POOL.with(|p| {
                let mut p = p.borrow_mut();
                if p.len() < Self::KEEP_COUNT {
                    p.push(buf);
                }
            });
        }
    }
}

/// Rows per block: the patch block (`rows × K` floats) stays around 1 MiB,
/// with at least 256 rows so each GEMM amortises packing the weights (and,
/// in the backward pass, reading and writing the weight gradient).
pub(crate) fn block_rows(kdim: usize) -> usize {
    const TARGET_FLOATS: usize = 256 * 1024;
    (TARGET_FLOATS / kdim.max(1)).clamp(256, 4096)
}

/// Order of the patch dimension `K` of im2col and of the weight operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KOrder {
    /// `(ky, kx, c)`: contiguous channel runs; weight from [`weight_hwio`].
    Taps,
    /// `(c, ky, kx)`: the layout of the weight itself, `(O, C, kh, kw)`.
    Channels,
}

impl KOrder {
    /// Channel order when the batch has fewer output pixels than it would
    /// take to amortise rearranging the weight: `rows · (K + O) ≤ K · O`.
    pub fn for_geometry(g: &ConvGeometry) -> Self {
        let (k, o) = (g.kdim(), g.out_c);
        if g.rows() * (k + o) <= k * o {
            Self::Channels
        } else {
            Self::Taps
        }
    }
}

/// The weight as a GEMM operand, in either order.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Weights<'a> {
    /// `(K, O)` from [`weight_hwio`], `K` in tap order.
    Taps(&'a [f32]),
    /// `(O, C, kh, kw)` as stored, `K` in channel order.
    Channels(&'a [f32]),
}

impl<'a> Weights<'a> {
    fn order(&self) -> KOrder {
        match self {
            Self::Taps(_) => KOrder::Taps,
            Self::Channels(_) => KOrder::Channels,
        }
    }

    /// The `(K × O)` matrix `Wᵀ`.
    fn k_by_o(&self, g: &ConvGeometry) -> Mat<'a> {
        match *self {
            Self::Taps(data) => Mat {
                data,
                rs: g.out_c,
                cs: 1,
            },
            Self::Channels(data) => Mat {
                data,
                rs: 1,
                cs: g.kdim(),
            },
        }
    }

    /// The `(O × K)` matrix `W`.
    fn o_by_k(&self, g: &ConvGeometry) -> Mat<'a> {
        let t = self.k_by_o(g);
        Mat {
            data: t.data,
            rs: t.cs,
            cs: t.rs,
        }
    }
}

/// The weight `(O, C, kh, kw)` as the GEMM operand `(K, O)` = `(kh, kw, C, O)`:
/// output channels contiguous, so the GEMM reads it without packing.
///
/// A tiled transpose: one task per 16 input channels, which for each block of
/// 16 output channels and each tap fills a 16 × 16 tile; the source rows of
/// the block stay in L1 across the taps.
pub(crate) fn weight_hwio(w: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let mut out = vec![0.0f32; w.len()];
    weight_hwio_into(w, g, &mut out);
    out
}

/// [`weight_hwio`] into `out` (`w.len()` elements, every one overwritten).
pub(crate) fn weight_hwio_into(w: &[f32], g: &ConvGeometry, out: &mut [f32]) {
    const TILE: usize = 16;
    let (c, o, taps) = (g.in_c, g.out_c, g.kh * g.kw);
    let k = c * taps;
    debug_assert_eq!(out.len(), w.len());
    if o == 0 || k == 0 {
        return;
    }
    // tiles[i][t]: destination rows `t·C + 16·i ..` (up to 16 of them)
    let mut tiles: Vec<Vec<&mut [f32]>> = (0..c.div_ceil(TILE))
        .map(|_| Vec::with_capacity(taps))
        .collect();
    for slab in out.chunks_mut(c * o) {
        for (i, rows) in slab.chunks_mut(TILE * o).enumerate() {
            tiles[i].push(rows);
        }
    }
    let fill = |i: usize, mut rows: Vec<&mut [f32]>| {
        let c0 = i * TILE;
        for o0 in (0..o).step_by(TILE) {
            let o1 = (o0 + TILE).min(o);
            for (t, dst) in rows.iter_mut().enumerate() {
                // one 16 × 16 tile: few enough lines for the L1 despite the
                // power-of-two strides
                for (j, dst) in dst.chunks_exact_mut(o).enumerate() {
                    let src = &w[(c0 + j) * taps + t..];
                    for (oi, d) in (o0..o1).zip(&mut dst[o0..o1]) {
                        *d = src[oi * k];
                    }
                }
            }
        }
    };
    if w.len() < 64 * 1024 {
        tiles.into_iter().enumerate().for_each(|(i, r)| fill(i, r));
    } else {
        tiles
            .into_par_iter()
            .enumerate()
            .for_each(|(i, r)| fill(i, r));
    }
}

/// Sums the per-thread weight gradients (`O × K`, `K` in `order`) into the
/// `(O, C, kh, kw)` layout, one output channel per task.
#[cfg(test)]
fn reduce_weight_grads(parts: &[Vec<f32>], g: &ConvGeometry, order: KOrder) -> Vec<f32> {
    let mut out = vec![0.0f32; g.out_c * g.kdim()];
    reduce_weight_grads_into(parts, g, order, &mut out);
    out
}

/// [`reduce_weight_grads`] into `out` (`O·K` elements, overwritten).
fn reduce_weight_grads_into(parts: &[Vec<f32>], g: &ConvGeometry, order: KOrder, out: &mut [f32]) {
    let (c, taps, k) = (g.in_c, g.kh * g.kw, g.kdim());
    if k == 0 {
        return;
    }
    let row = |oi: usize, dst: &mut [f32]| {
        dst.fill(0.0);
        for part in parts {
            let src = &part[oi * k..(oi + 1) * k];
            match order {
                KOrder::Channels => {
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d += s;
                    }
                }
                KOrder::Taps => {
                    for (t, run) in src.chunks_exact(c).enumerate() {
                        for (ci, s) in run.iter().enumerate() {
                            dst[ci * taps + t] += s;
                        }
                    }
                }
            }
        }
    };
    if out.len() < 64 * 1024 {
        out.chunks_exact_mut(k)
            .enumerate()
            .for_each(|(oi, dst)| row(oi, dst));
    } else {
        out.par_chunks_exact_mut(k)
            .enumerate()
            .for_each(|(oi, dst)| row(oi, dst));
    }
}

/// `dst.copy_from_slice(src)` for the short runs of im2col, in fixed-size
/// pieces the compiler turns into vector moves instead of a `memcpy` call.
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    const W: usize = 16;
    let mut d = dst.chunks_exact_mut(W);
    let mut s = src.chunks_exact(W);
    for (d, s) in (&mut d).zip(&mut s) {
        d.copy_from_slice(s);
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

/// Fills `cols` (`n × K`, `n = cols.len() / K`) with the patches of output
/// rows `row0 .. row0 + n`, `K` in `order`; out-of-image taps are zero.
pub(crate) fn im2col(
    x: &NhwcView<'_>,
    g: &ConvGeometry,
    row0: usize,
    cols: &mut [f32],
    order: KOrder,
) {
    match order {
        KOrder::Taps => im2col_taps(x, g, row0, cols),
        KOrder::Channels => im2col_channels(x, g, row0, cols),
    }
}

fn im2col_taps(x: &NhwcView<'_>, g: &ConvGeometry, row0: usize, cols: &mut [f32]) {
    let (c, kw) = (g.in_c, g.kw);
    let k = g.kdim();
    let row_runs = x.row_runs_contiguous(g);
    let pixel_runs = x.pixels_contiguous(g);
    let [sb, sy, sx, sc] = x.strides;
    for (dst_row, patch) in cols.chunks_exact_mut(k).zip(Patches::from_row(g, row0)) {
        let (lo, hi) = (patch.kx_lo * c, patch.kx_hi * c);
        for (ky, dst) in dst_row.chunks_exact_mut(kw * c).enumerate() {
            // (`fill` on an empty range still costs a memset call)
            let Some(iy) = patch.input_row(g, ky) else {
                dst.fill(0.0);
                continue;
            };
            if lo > 0 {
                dst[..lo].fill(0.0);
            }
            if hi < dst.len() {
                dst[hi..].fill(0.0);
            }
            if lo == hi {
                continue;
            }
            let run = &mut dst[lo..hi];
            let base = x.offset + patch.b * sb + iy * sy + patch.first_col() * sx;
            if row_runs {
                copy_run(run, &x.data[base..base + run.len()]);
            } else if pixel_runs {
                for (j, px) in run.chunks_exact_mut(c).enumerate() {
                    let at = base + j * sx;
                    copy_run(px, &x.data[at..at + c]);
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

fn im2col_channels(x: &NhwcView<'_>, g: &ConvGeometry, row0: usize, cols: &mut [f32]) {
    let (c, kw, taps) = (g.in_c, g.kw, g.kh * g.kw);
    let k = g.kdim();
    let [sb, sy, sx, sc] = x.strides;
    for (dst, patch) in cols.chunks_exact_mut(k).zip(Patches::from_row(g, row0)) {
        dst.fill(0.0);
        for ky in 0..g.kh {
            let Some(iy) = patch.input_row(g, ky) else {
                continue;
            };
            for kx in patch.kx_lo..patch.kx_hi {
                let ix = (patch.ix0 + kx as isize) as usize;
                let base = x.offset + patch.b * sb + iy * sy + ix * sx;
                let t = ky * kw + kx;
                for ci in 0..c {
                    dst[ci * taps + t] = x.data[base + ci * sc];
                }
            }
        }
    }
}

/// Scatter-adds the patch gradients `dcols` (`n × K`, `K` in `order`) of
/// output rows `row0 .. row0 + n` onto `dx`, contiguous NHWC starting at
/// image `img0`.
pub(crate) fn col2im_add(
    dcols: &[f32],
    g: &ConvGeometry,
    row0: usize,
    img0: usize,
    dx: &mut [f32],
    order: KOrder,
) {
    let (c, kw, taps) = (g.in_c, g.kw, g.kh * g.kw);
    let k = g.kdim();
    let (sb, sy) = (g.in_image(), g.in_w * c);
    for (src_row, patch) in dcols.chunks_exact(k).zip(Patches::from_row(g, row0)) {
        let b = patch.b - img0;
        for ky in 0..g.kh {
            let Some(iy) = patch.input_row(g, ky) else {
                continue;
            };
            let (lo, hi) = (patch.kx_lo * c, patch.kx_hi * c);
            if lo == hi {
                continue;
            }
            let base = b * sb + iy * sy + patch.first_col() * c;
            let dst = &mut dx[base..base + (hi - lo)];
            match order {
                KOrder::Taps => {
                    let src = &src_row[ky * kw * c + lo..ky * kw * c + hi];
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d += s;
                    }
                }
                KOrder::Channels => {
                    for (j, px) in dst.chunks_exact_mut(c).enumerate() {
                        let t = ky * kw + patch.kx_lo + j;
                        for (ci, d) in px.iter_mut().enumerate() {
                            *d += src_row[ci * taps + t];
                        }
                    }
                }
            }
        }
    }
}

/// A read-only matrix operand: data plus row and column strides.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl Mat<'_> {
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// A GEMM destination: row-major (`cs == 1`) or column-major (`rs == 1`).
pub(crate) struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rs: usize,
    pub cs: usize,
}

/// `dst (m × n) = [dst +] lhs (m × k) · rhs (k × n)`.
pub(crate) fn gemm_into(
    (m, n, k): (usize, usize, usize),
    dst: MatMut<'_>,
    accumulate: bool,
    lhs: Mat<'_>,
    rhs: Mat<'_>,
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    // distinct (i, j) must be distinct elements, all inside the slice
    let row_major = dst.cs == 1 && dst.rs >= n;
    let col_major = dst.rs == 1 && dst.cs >= m;
    assert!(row_major || col_major, "gemm: overlapping destination");
    assert!(
        (m - 1) * dst.rs + (n - 1) * dst.cs < dst.data.len(),
        "gemm: dst too small"
    );
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst.data[i * dst.rs + j * dst.cs] = 0.0;
                }
            }
        }
        return;
    }
    assert!(lhs.fits(m, k), "gemm: lhs too small");
    assert!(rhs.fits(k, n), "gemm: rhs too small");
    // SAFETY: the asserts above keep every element gemm touches inside the
    // three slices and the destination elements distinct; `dst` is borrowed
    // mutably, so it aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            dst.cs as isize,
            dst.rs as isize,
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

/// LeakyReLU (identity for `None`).
#[inline(always)]
pub(crate) fn activate(v: f32, leaky: Option<f32>) -> f32 {
    match leaky {
        Some(slope) => v.max(0.0) + v.min(0.0) * slope,
        None => v,
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
        if leaky.is_some() {
            for v in row.iter_mut() {
                *v = activate(*v, leaky);
            }
        }
    }
}

/// Forward convolution; `bias` has `O` entries. Returns the contiguous NHWC
/// output `(B, OH, OW, O)`.
pub(crate) fn conv2d_forward(
    x: &NhwcView<'_>,
    w: Weights<'_>,
    bias: Option<&[f32]>,
    g: &ConvGeometry,
    leaky: Option<f32>,
) -> Vec<f32> {
    let mut y = vec![0.0f32; g.rows() * g.out_c];
    conv2d_forward_into(x, w, bias, g, leaky, &mut y);
    y
}

/// [`conv2d_forward`] into `y` (`B·OH·OW·O` elements, every one overwritten).
pub(crate) fn conv2d_forward_into(
    x: &NhwcView<'_>,
    w: Weights<'_>,
    bias: Option<&[f32]>,
    g: &ConvGeometry,
    leaky: Option<f32>,
    y: &mut [f32],
) {
    let (k, o, rows) = (g.kdim(), g.out_c, g.rows());
    debug_assert_eq!(y.len(), rows * o);
    if rows == 0 || o == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    if let (1, Weights::Taps(wt)) = (g.in_c, w) {
        // one input channel: direct accumulation (conv_c1), a few tasks per thread
        let chunk = rows.div_ceil(4 * threads).max(64);
        y.par_chunks_mut(chunk * o)
            .enumerate()
            .for_each(|(i, yb)| conv_c1::forward_rows(x, g, wt, bias, leaky, i * chunk, yb));
        return;
    }
    let order = w.order();
    let wt = w.k_by_o(g);
    let block = match order {
        // split the rows across threads, each reads the (small) weight
        KOrder::Taps => block_rows(k).min(rows.div_ceil(threads)).max(1),
        // few rows, large weight: one block, the GEMM splits the weight
        KOrder::Channels => block_rows(k),
    };
    let par = if rows.div_ceil(block) < threads {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    let scratch = || (Scratch::new(block * k), Scratch::new(block * o));
    y.par_chunks_mut(block * o)
        .enumerate()
        .for_each_init(scratch, |(cols, acc), (i, yb)| {
            let n = yb.len() / o;
            let cols = cols.get(n * k);
            im2col(x, g, i * block, cols, order);
            let lhs = Mat {
                data: cols,
                rs: k,
                cs: 1,
            };
            match order {
                KOrder::Taps => {
                    let dst = MatMut {
                        data: yb,
                        rs: o,
                        cs: 1,
                    };
                    gemm_into((n, o, k), dst, false, lhs, wt, par);
                    bias_leaky(yb, o, bias, leaky);
                }
                KOrder::Channels => {
                    // column-major block: the weight is the unpacked rhs
                    let acc = acc.get(n * o);
                    let dst = MatMut {
                        data: acc,
                        rs: 1,
                        cs: n,
                    };
                    gemm_into((n, o, k), dst, false, lhs, wt, par);
                    for (r, row) in yb.chunks_exact_mut(o).enumerate() {
                        for (oi, v) in row.iter_mut().enumerate() {
                            let z = acc[oi * n + r] + bias.map_or(0.0, |b| b[oi]);
                            *v = activate(z, leaky);
                        }
                    }
                }
            }
        });
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

/// Where a range of rows sends its patch gradients.
enum DxSink<'a> {
    /// No input gradient wanted.
    Skip,
    /// col2im straight into `dx`, the contiguous NHWC input gradient of the
    /// range's images, which start at image `img0`.
    Scatter { dx: &'a mut [f32], img0: usize },
    /// Keep the patch gradients (`rows × K`) for a col2im after all ranges.
    Store(&'a mut [f32]),
}

/// With fewer images than threads, split rows across threads only when each
/// thread gets at least this many; below it the GEMMs are parallel instead.
const MIN_ROWS_PER_THREAD: usize = 64;

/// Backward convolution: the input, weight and bias gradients.
///
/// With at least as many images as threads, each thread takes whole images
/// and scatters its patch gradients into its own slice of `dx`. With fewer
/// images, the threads split the rows, keep the patch gradients, and one
/// col2im runs at the end. For very few rows, and in channel order (where
/// the weight dominates), a single range runs with parallel GEMMs.
pub(crate) fn conv2d_backward(
    x: &NhwcView<'_>,
    w: Weights<'_>,
    g: &ConvGeometry,
    inputs: &BackwardInputs<'_>,
) -> ConvGrads {
    let mut dx = inputs.need_dx.then(|| vec![0.0f32; g.batch * g.in_image()]);
    let mut dw = vec![0.0f32; g.out_c * g.kdim()];
    let mut db = vec![0.0f32; g.out_c];
    conv2d_backward_into(x, w, g, inputs, dx.as_deref_mut(), &mut dw, &mut db);
    ConvGrads { dx, dw, db }
}

/// [`conv2d_backward`] into caller-provided buffers, every element of which
/// is overwritten: `dx` (contiguous NHWC, `B·H·W·C`; `None`: not wanted,
/// `inputs.need_dx` is ignored), `dw` (`(O, C, kh, kw)`) and `db` (`O`).
pub(crate) fn conv2d_backward_into(
    x: &NhwcView<'_>,
    w: Weights<'_>,
    g: &ConvGeometry,
    inputs: &BackwardInputs<'_>,
    mut dx: Option<&mut [f32]>,
    dw: &mut [f32],
    db: &mut [f32],
) {
    let (k, o, rows) = (g.kdim(), g.out_c, g.rows());
    debug_assert_eq!(dw.len(), o * k);
    debug_assert_eq!(db.len(), o);
    debug_assert!(dx
        .as_ref()
        .is_none_or(|d| d.len() == g.batch * g.in_image()));
    let order = w.order();
    let threads = rayon::current_num_threads();
    let run = |range, sink, par| backward_rows(x, w, g, inputs, range, sink, par);
    let split = threads > 1 && order == KOrder::Taps;

    let partials: Vec<(Vec<f32>, Vec<f32>)> = if g.in_c == 1 && dx.is_none() {
        // one input channel, no input gradient: direct accumulation (conv_c1);
        // with one input channel both K orders are the tap order
        let per = rows.div_ceil(threads).max(1);
        (0..rows.div_ceil(per))
            .into_par_iter()
            .map(|i| c1_weight_grads(x, g, inputs, (i * per, ((i + 1) * per).min(rows))))
            .collect()
    } else if split && g.batch >= threads {
        let per_group = g.batch.div_ceil(threads);
        let group_rows = per_group * g.pixels();
        let range = |gi: usize| (gi * group_rows, ((gi + 1) * group_rows).min(rows));
        match dx.as_deref_mut() {
            Some(dx) if g.in_image() > 0 => dx
                .par_chunks_mut(per_group * g.in_image())
                .enumerate()
                .map(|(gi, dx)| {
                    // each thread clears its own images (in parallel, and
                    // into its cache just before the scatter-adds)
                    dx.fill(0.0);
                    let img0 = gi * per_group;
                    run(range(gi), DxSink::Scatter { dx, img0 }, Parallelism::None)
                })
                .collect(),
            _ => (0..g.batch.div_ceil(per_group))
                .into_par_iter()
                .map(|gi| run(range(gi), DxSink::Skip, Parallelism::None))
                .collect(),
        }
    } else if split && rows >= threads * MIN_ROWS_PER_THREAD {
        let part = rows.div_ceil(threads);
        let range = |i: usize| (i * part, ((i + 1) * part).min(rows));
        match dx.as_deref_mut() {
            Some(dx) => {
                let mut dcols = Scratch::new(rows * k);
                let dcols = dcols.get(rows * k);
                let partials = dcols
                    .par_chunks_mut(part * k)
                    .enumerate()
                    .map(|(i, d)| run(range(i), DxSink::Store(d), Parallelism::None))
                    .collect();
                dx.fill(0.0);
                col2im_add(dcols, g, 0, 0, dx, order);
                partials
            }
            None => (0..rows.div_ceil(part))
                .into_par_iter()
                .map(|i| run(range(i), DxSink::Skip, Parallelism::None))
                .collect(),
        }
    } else {
        let par = if threads > 1 {
            Parallelism::Rayon(threads)
        } else {
            Parallelism::None
        };
        let sink = match dx {
            Some(dx) => {
                dx.fill(0.0);
                DxSink::Scatter { dx, img0: 0 }
            }
            None => DxSink::Skip,
        };
        vec![run((0, rows), sink, par)]
    };

    db.fill(0.0);
    for (_, pb) in &partials {
        for (a, b) in db.iter_mut().zip(pb) {
            *a += b;
        }
    }
    let (dws, _): (Vec<_>, Vec<_>) = partials.into_iter().unzip();
    reduce_weight_grads_into(&dws, g, order, dw);
}

/// The weight (`O × K`) and bias gradients of output rows `r0 .. r1` of a
/// one-channel convolution, summed over blocks of rows (partial sums stay
/// short for accuracy).
fn c1_weight_grads(
    x: &NhwcView<'_>,
    g: &ConvGeometry,
    inputs: &BackwardInputs<'_>,
    (r0, r1): (usize, usize),
) -> (Vec<f32>, Vec<f32>) {
    const BLOCK: usize = 512;
    let (k, o) = (g.kdim(), g.out_c);
    let mut total = vec![0.0f32; k * o];
    let mut block = vec![0.0f32; k * o];
    let mut db = vec![0.0f32; o];
    let mut block_db = vec![0.0f32; o];
    let mut dz = vec![0.0f32; o];
    let (y, dy, leaky) = (inputs.y, inputs.dy, inputs.leaky);
    for b0 in (r0..r1).step_by(BLOCK) {
        block.fill(0.0);
        block_db.fill(0.0);
        let rows = (b0, (b0 + BLOCK).min(r1));
        conv_c1::weight_grad_rows(x, g, y, dy, leaky, rows, &mut block, &mut block_db, &mut dz);
        for (t, s) in total.iter_mut().zip(&block) {
            *t += s;
        }
        for (t, s) in db.iter_mut().zip(&block_db) {
            *t += s;
        }
    }
    // (taps, O) → (O, taps)
    let mut dw = vec![0.0f32; o * k];
    for (t, row) in total.chunks_exact(o).enumerate() {
        for (oi, v) in row.iter().enumerate() {
            dw[oi * k + t] = *v;
        }
    }
    (dw, db)
}

/// The backward pass over output rows `r0 .. r1`, in blocks: returns this
/// range's weight gradient (`O × K`, `K` in the order of `w`) and bias
/// gradient, and sends the patch gradients to `sink`.
fn backward_rows(
    x: &NhwcView<'_>,
    w: Weights<'_>,
    g: &ConvGeometry,
    inputs: &BackwardInputs<'_>,
    (r0, r1): (usize, usize),
    mut sink: DxSink<'_>,
    par: Parallelism,
) -> (Vec<f32>, Vec<f32>) {
    let (k, o) = (g.kdim(), g.out_c);
    let order = w.order();
    let block = block_rows(k);
    let mut dw = vec![0.0f32; o * k];
    let mut db = vec![0.0f32; o];
    let mut dz_buf = Scratch::new(block * o);
    let mut cols = Scratch::new(block * k);
    let mut dcols_buf = Scratch::new(match sink {
        DxSink::Scatter { .. } => block * k,
        _ => 0,
    });
    for row0 in (r0..r1).step_by(block) {
        let n = block.min(r1 - row0);
        let dy = &inputs.dy[row0 * o..(row0 + n) * o];
        let dz: &[f32] = match inputs.leaky {
            Some(slope) => {
                let y = &inputs.y[row0 * o..(row0 + n) * o];
                let dz = dz_buf.get(n * o);
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
        let cols = cols.get(n * k);
        im2col(x, g, row0, cols, order);
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
        let dw_dst = MatMut {
            data: &mut dw,
            rs: k,
            cs: 1,
        };
        gemm_into((o, k, n), dw_dst, true, dzt, colm, par);

        let dzm = Mat {
            data: dz,
            rs: o,
            cs: 1,
        };
        let wm = w.o_by_k(g);
        let dcols_into = |dcols: &mut [f32]| {
            let dst = MatMut {
                data: dcols,
                rs: k,
                cs: 1,
            };
            gemm_into((n, k, o), dst, false, dzm, wm, par);
        };
        match &mut sink {
            DxSink::Skip => {}
            DxSink::Scatter { dx, img0 } => {
                let dcols = dcols_buf.get(n * k);
                dcols_into(dcols);
                col2im_add(dcols, g, row0, *img0, dx, order);
            }
            DxSink::Store(dcols) => {
                let at = (row0 - r0) * k;
                dcols_into(&mut dcols[at..at + n * k]);
            }
        }
    }
    (dw, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(c: usize, o: usize, kh: usize, kw: usize) -> ConvGeometry {
        ConvGeometry::new(1, (7, 6, c), o, (kh, kw), 1, 1).expect("geometry")
    }

    /// o = 1, c = 2, ky = 1, kx = 0 of a (4, 3, 2, 3) weight: natively at
    /// 18 + (2·2 + 1)·3 + 0 = 33; in (kh, kw, C, O) at ((1·3 + 0)·3 + 2)·4 + 1
    /// = 45; in GEMM rows (O, kh, kw, C) at 18 + (1·3 + 0)·3 + 2 = 29.
    #[test]
    fn weight_layouts() {
        let g = geometry(3, 4, 2, 3);
        let w: Vec<f32> = (0..4 * 3 * 2 * 3).map(|i| i as f32).collect();
        let wt = weight_hwio(&w, &g);
        assert_eq!(wt[45], 33.0);
        let mut sorted = wt.clone();
        sorted.sort_by(f32::total_cmp);
        assert_eq!(sorted, w);
        let mut rows = vec![0.0f32; w.len()];
        for o in 0..4 {
            for k in 0..18 {
                rows[o * 18 + k] = wt[k * 4 + o];
            }
        }
        assert_eq!(rows[29], 33.0);
        let halves: Vec<f32> = rows.iter().map(|v| v / 2.0).collect();
        let parts = [halves.clone(), halves];
        assert_eq!(reduce_weight_grads(&parts, &g, KOrder::Taps), w);
        assert_eq!(reduce_weight_grads(&parts, &g, KOrder::Channels), rows);
    }

    /// The shapes of tests/nn.rs `fast_conv_matches_stock_on_late_layer_shapes`
    /// reach both orders.
    #[test]
    fn order_follows_rows_and_weight_size() {
        let g = |batch| ConvGeometry::new(batch, (6, 6, 32), 48, (3, 3), 1, 1).expect("g");
        assert_eq!(KOrder::for_geometry(&g(1)), KOrder::Channels);
        assert_eq!(KOrder::for_geometry(&g(3)), KOrder::Taps);
        let g = ConvGeometry::new(1, (9, 9, 32), 48, (2, 2), 2, 1).expect("g");
        assert_eq!(KOrder::for_geometry(&g), KOrder::Channels);
        let g = ConvGeometry::new(2, (5, 5, 32), 48, (3, 3), 2, 1).expect("g");
        assert_eq!(KOrder::for_geometry(&g), KOrder::Channels);
    }

    /// col2im is the adjoint of im2col: <im2col(x), c> = <x, col2im(c)>.
    #[test]
    fn col2im_is_adjoint_of_im2col() {
        for (stride, pad, k) in [(1, 1, 3), (2, 1, 2), (2, 0, 3), (1, 2, 1)] {
            let g = ConvGeometry::new(2, (7, 6, 3), 1, (k, k), stride, pad).expect("geometry");
            // small integers: every sum below is exact in f32
            let x: Vec<f32> = (0..g.batch * g.in_image())
                .map(|i| ((i * 7919) % 13) as f32 - 6.0)
                .collect();
            let c: Vec<f32> = (0..g.rows() * g.kdim())
                .map(|i| ((i * 104_729) % 17) as f32 - 8.0)
                .collect();
            for order in [KOrder::Taps, KOrder::Channels] {
                let mut cols = vec![0.0f32; c.len()];
                im2col(&NhwcView::contiguous(&x, &g), &g, 0, &mut cols, order);
                let mut dx = vec![0.0f32; x.len()];
                col2im_add(&c, &g, 0, 0, &mut dx, order);
                let lhs: f32 = cols.iter().zip(&c).map(|(a, b)| a * b).sum();
                let rhs: f32 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
                assert_eq!(lhs, rhs, "{order:?}, stride {stride} pad {pad} kernel {k}");
                assert!(lhs != 0.0);
            }
        }
    }
}
