//! Direct kernels for convolutions with one input channel (a network's first
//! layer), used by `conv_cpu` instead of im2col + GEMM.
//!
//! With `C = 1` the patch dimension is only `kh·kw` (25 for a 5×5 kernel), so
//! im2col + GEMM spends most of its time copying single floats into the
//! patch matrix and packing it, not multiplying (about 17 GFLOP/s for the
//! HOLLy net's first layer at batch 32). Here every output pixel accumulates
//! its `O` channels directly: for each tap inside the image, the input value
//! times the tap's weight row, vectorised over the output channels. The
//! weight gradient is the transpose: for each tap, the input value times the
//! pixel's `dZ` row, into a `(taps, O)` accumulator.
//!
//! The loops are compiled for AVX-512 and for AVX2 + FMA besides the
//! baseline, and chosen at run time (the crate is built for generic x86-64).

use super::conv_geometry::{ConvGeometry, NhwcView, Patch, Patches};

use crate::simd::simd_dispatch;

simd_dispatch! {
    /// Output rows `row0 .. row0 + y.len() / O` of a `C = 1` convolution:
    /// `y = leaky(bias + Σ_taps x · wt[tap])`, `wt` the `(taps, O)` weight
    /// (`weight_hwio`), `bias` `O` entries.
    pub(crate) fn forward_rows(
        x: &NhwcView<'_>,
        g: &ConvGeometry,
        wt: &[f32],
        bias: Option<&[f32]>,
        leaky: Option<f32>,
        row0: usize,
        y: &mut [f32],
    ) => forward_rows_impl
}

simd_dispatch! {
    /// Accumulates the weight gradient (`dwt`, `(taps, O)`) and the bias
    /// gradient (`db`, `O`) of output rows `r0 .. r1` of a `C = 1`
    /// convolution; `y` and `dy` are the whole contiguous NHWC output and its
    /// gradient, `dz` is scratch of `O` floats.
    pub(crate) fn weight_grad_rows(
        x: &NhwcView<'_>,
        g: &ConvGeometry,
        y: &[f32],
        dy: &[f32],
        leaky: Option<f32>,
        rows: (usize, usize),
        dwt: &mut [f32],
        db: &mut [f32],
        dz: &mut [f32],
    ) => weight_grad_rows_impl
}

/// Output pixels computed together by the forward kernel's fast path: each
/// weight row is loaded once for all of them, and their accumulators are
/// independent chains of multiply-adds.
const QUAD: usize = 4;
/// Output channels per vector step of the forward kernel.
const LANES: usize = 16;

#[inline(always)]
fn forward_rows_impl(
    x: &NhwcView<'_>,
    g: &ConvGeometry,
    wt: &[f32],
    bias: Option<&[f32]>,
    leaky: Option<f32>,
    row0: usize,
    y: &mut [f32],
) {
    let o = g.out_c;
    if o == 0 {
        return;
    }
    let n = y.len() / o;
    let patches: Vec<Patch> = Patches::from_row(g, row0).take(n).collect();
    // a pixel whose kernel columns all fall inside the image
    let inside = |p: &Patch| p.kx_lo == 0 && p.kx_hi == g.kw;
    let mut r = 0;
    while r < n {
        let p = patches[r];
        let quad = o.is_multiple_of(LANES)
            && r + QUAD <= n
            && patches[r..r + QUAD]
                .iter()
                .all(|q| inside(q) && q.b == p.b && q.iy0 == p.iy0);
        if quad {
            let rows = &mut y[r * o..(r + QUAD) * o];
            forward_quad(x, g, wt, bias, leaky, &p, rows);
            r += QUAD;
        } else {
            forward_pixel(x, g, wt, bias, leaky, &p, &mut y[r * o..(r + 1) * o]);
            r += 1;
        }
    }
}

/// `QUAD` consecutive output pixels of one output row, all inside the image
/// along x (`p` is the first); `rows` holds their `QUAD × O` outputs.
#[inline(always)]
fn forward_quad(
    x: &NhwcView<'_>,
    g: &ConvGeometry,
    wt: &[f32],
    bias: Option<&[f32]>,
    leaky: Option<f32>,
    p: &Patch,
    rows: &mut [f32],
) {
    let o = g.out_c;
    let [sb, sy, sx, _] = x.strides;
    let ix0 = p.ix0 as usize;
    for c in 0..o / LANES {
        let mut acc = [[0.0f32; LANES]; QUAD];
        if let Some(b) = bias {
            for a in acc.iter_mut() {
                a.copy_from_slice(&b[c * LANES..(c + 1) * LANES]);
            }
        }
        for ky in 0..g.kh {
            let Some(iy) = p.input_row(g, ky) else {
                continue;
            };
            let base = x.offset + p.b * sb + iy * sy;
            for kx in 0..g.kw {
                let at = (ky * g.kw + kx) * o + c * LANES;
                let w: &[f32; LANES] = wt[at..at + LANES].try_into().expect("16 weights");
                for (k, a) in acc.iter_mut().enumerate() {
                    let v = x.data[base + (ix0 + k * g.stride + kx) * sx];
                    for l in 0..LANES {
                        a[l] += v * w[l];
                    }
                }
            }
        }
        for (k, a) in acc.iter().enumerate() {
            let dst = &mut rows[k * o + c * LANES..k * o + (c + 1) * LANES];
            for (d, v) in dst.iter_mut().zip(a) {
                *d = match leaky {
                    Some(s) => v.max(0.0) + v.min(0.0) * s,
                    None => *v,
                };
            }
        }
    }
}

/// One output pixel (any position), `yrow` its `O` outputs.
#[inline(always)]
fn forward_pixel(
    x: &NhwcView<'_>,
    g: &ConvGeometry,
    wt: &[f32],
    bias: Option<&[f32]>,
    leaky: Option<f32>,
    patch: &Patch,
    yrow: &mut [f32],
) {
    let o = g.out_c;
    let [sb, sy, sx, _] = x.strides;
    const L: usize = LANES;
    let full = o / L * L;
    match bias {
        Some(b) => yrow.copy_from_slice(&b[..o]),
        None => yrow.fill(0.0),
    }
    // blocks of 16 channels, accumulated in registers; each kernel row
    // sums into its own fresh register first, so the rows' chains of
    // multiply-adds overlap instead of waiting on one accumulator
    for (c, ychunk) in yrow[..full].chunks_exact_mut(L).enumerate() {
        let mut acc: [f32; L] = [0.0; L];
        acc.copy_from_slice(ychunk);
        for ky in 0..g.kh {
            let Some(iy) = patch.input_row(g, ky) else {
                continue;
            };
            let base = x.offset + patch.b * sb + iy * sy;
            let mut row = [0.0f32; L];
            for kx in patch.kx_lo..patch.kx_hi {
                let ix = (patch.ix0 + kx as isize) as usize;
                let v = x.data[base + ix * sx];
                let at = (ky * g.kw + kx) * o + c * L;
                let w: &[f32; L] = wt[at..at + L].try_into().expect("16 weights");
                for l in 0..L {
                    row[l] += v * w[l];
                }
            }
            for l in 0..L {
                acc[l] += row[l];
            }
        }
        ychunk.copy_from_slice(&acc);
    }
    let rest = &mut yrow[full..];
    for_each_tap(x, g, patch, |t, v| {
        for (a, &w) in rest.iter_mut().zip(&wt[t * o + full..(t + 1) * o]) {
            *a += v * w;
        }
    });
    if let Some(s) = leaky {
        for v in yrow.iter_mut() {
            *v = v.max(0.0) + v.min(0.0) * s;
        }
    }
}

/// Calls `f(tap, value)` for each kernel tap of `patch` that falls inside
/// the image: the tap index `ky·kw + kx` and the input value under it.
#[inline(always)]
fn for_each_tap(x: &NhwcView<'_>, g: &ConvGeometry, patch: &Patch, mut f: impl FnMut(usize, f32)) {
    let [sb, sy, sx, _] = x.strides;
    for ky in 0..g.kh {
        let Some(iy) = patch.input_row(g, ky) else {
            continue;
        };
        let base = x.offset + patch.b * sb + iy * sy;
        for kx in patch.kx_lo..patch.kx_hi {
            let ix = (patch.ix0 + kx as isize) as usize;
            f(ky * g.kw + kx, x.data[base + ix * sx]);
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn weight_grad_rows_impl(
    x: &NhwcView<'_>,
    g: &ConvGeometry,
    y: &[f32],
    dy: &[f32],
    leaky: Option<f32>,
    (r0, r1): (usize, usize),
    dwt: &mut [f32],
    db: &mut [f32],
    dz: &mut [f32],
) {
    let o = g.out_c;
    let dz = &mut dz[..o];
    for (r, patch) in (r0..r1).zip(Patches::from_row(g, r0)) {
        let dyr = &dy[r * o..(r + 1) * o];
        match leaky {
            Some(s) => {
                let yr = &y[r * o..(r + 1) * o];
                for ((z, &d), &yv) in dz.iter_mut().zip(dyr).zip(yr) {
                    *z = if yv > 0.0 { d } else { d * s };
                }
            }
            None => dz.copy_from_slice(dyr),
        }
        for (s, &z) in db.iter_mut().zip(dz.iter()) {
            *s += z;
        }
        for_each_tap(x, g, &patch, |t, v| {
            for (a, &z) in dwt[t * o..(t + 1) * o].iter_mut().zip(dz.iter()) {
                *a += v * z;
            }
        });
    }
}
