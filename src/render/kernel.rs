//! Plain-slice kernels behind the CPU splat renderer.
//!
//! Every Gaussian splat factors into a row profile and a column profile,
//! `exp(-dx²/2σ²)·exp(-dy²/2σ²)`, so a frame is one matrix product
//! `I = (w·Gy)ᵀ (H×N) · Gx (N×W)`. This module fills the profiles with a
//! vectorisable exponential and runs the products through the `gemm` crate.
//! Memory is `O(N·(H+W))`; nothing here allocates `N·H·W`.

use gemm::Parallelism;

pub use crate::simd::exp_neg;
use crate::simd::simd_dispatch;

/// Which profile to fill: the Gaussian itself or one of its derivative factors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// `g(d) = exp(-d²/2σ²)`
    Gauss,
    /// `g(d)·d/σ²`, the derivative of `g` with respect to the centre
    DCentre,
    /// `g(d)·d²`, used for the derivative with respect to σ
    DSquared,
}

#[inline(always)]
fn profile_value(d: f32, k: f32, inv_s2: f32, kind: Profile) -> f32 {
    let g = exp_neg(-d * d * k);
    match kind {
        Profile::Gauss => g,
        Profile::DCentre => g * d * inv_s2,
        Profile::DSquared => g * d * d,
    }
}

#[inline(always)]
fn profiles_impl(centres: &[f32], len: usize, sigma: f32, kind: Profile, out: &mut [f32]) {
    const LANES: usize = 16;
    const STEP: [f32; LANES] = [
        0., 1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12., 13., 14., 15.,
    ];
    let k = 0.5 / (sigma * sigma);
    let inv_s2 = 1.0 / (sigma * sigma);
    for (row, &centre) in out.chunks_exact_mut(len).zip(centres) {
        // pixel centres are at c + 0.5; blocks of 16 keep the loop free of int→float conversions
        let mut base = 0.5 - centre;
        let mut blocks = row.chunks_exact_mut(LANES);
        for block in &mut blocks {
            for (o, s) in block.iter_mut().zip(STEP) {
                *o = profile_value(base + s, k, inv_s2, kind);
            }
            base += LANES as f32;
        }
        for (o, s) in blocks.into_remainder().iter_mut().zip(STEP) {
            *o = profile_value(base + s, k, inv_s2, kind);
        }
    }
}

#[inline(always)]
fn profiles_checked(centres: &[f32], len: usize, sigma: f32, kind: Profile, out: &mut [f32]) {
    assert_eq!(out.len(), centres.len() * len, "profile buffer size");
    profiles_impl(centres, len, sigma, kind, out)
}

simd_dispatch! {
    /// Fills `out[i·len + c]` with the 1-D profile of point `i` at pixel `c`
    /// (centre `c + 0.5`), for a point at continuous coordinate `centres[i]`.
    ///
    /// `out.len()` must be `centres.len() · len`.
    pub fn profiles(centres: &[f32], len: usize, sigma: f32, kind: Profile, out: &mut [f32]) => profiles_checked
}

/// The normalisation of a unit-mass 2-D Gaussian, `1/(2πσ²)`.
#[inline]
pub fn gauss_norm(sigma: f32) -> f32 {
    1.0 / (2.0 * std::f32::consts::PI * sigma * sigma)
}

/// Scratch buffers reused between frames.
#[derive(Default)]
pub struct Scratch {
    gx: Vec<f32>,
    gy: Vec<f32>,
    us: Vec<f32>,
    vs: Vec<f32>,
    starts: Vec<Block>,
}

/// One point's rank-1 block in the windowed splat.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    /// Which profile row (index into the compacted point list).
    index: usize,
    /// First column of the (padded) column window.
    col: usize,
    /// First image row that the block touches.
    row: usize,
    /// Rows of the padded row profile skipped before `row`.
    row_skip: usize,
    /// Rows the block touches.
    rows: usize,
    /// `w/(2πσ²)`
    scale: f32,
}

/// Dense evaluation of [`splat_frame`]: one GEMM over the full profiles.
///
/// Splats one frame: `out[r·W + c] = Σᵢ wᵢ/(2πσ²)·exp(-((c+½-uᵢ)² + (r+½-vᵢ)²)/2σ²)`.
///
/// `uv` holds `(u, v)` pairs in pixels (u along columns, v along rows).
/// The result overwrites `out` (`width·height` values, row-major).
#[allow(clippy::too_many_arguments)]
pub fn splat_frame_dense(
    uv: &[f32],
    weights: &[f32],
    sigma: f32,
    width: usize,
    height: usize,
    par: Parallelism,
    scratch: &mut Scratch,
    out: &mut [f32],
) {
    let n = weights.len();
    assert_eq!(uv.len(), 2 * n, "uv must hold two coordinates per point");
    assert_eq!(out.len(), width * height, "output size");
    if n == 0 {
        out.fill(0.0);
        return;
    }
    scratch.us.clear();
    scratch.vs.clear();
    scratch.us.extend(uv.iter().step_by(2));
    scratch.vs.extend(uv.iter().skip(1).step_by(2));
    scratch.gx.resize(n * width, 0.0);
    scratch.gy.resize(n * height, 0.0);
    profiles(&scratch.us, width, sigma, Profile::Gauss, &mut scratch.gx);
    profiles(&scratch.vs, height, sigma, Profile::Gauss, &mut scratch.gy);
    let norm = gauss_norm(sigma);
    for (row, &w) in scratch.gy.chunks_exact_mut(height).zip(weights) {
        let s = w * norm;
        row.iter_mut().for_each(|g| *g *= s);
    }
    // out (H×W) = gyᵀ (H×N) · gx (N×W)
    // SAFETY: all three buffers are sized above and the strides match their layouts.
    unsafe {
        gemm::gemm(
            height,
            width,
            n,
            out.as_mut_ptr(),
            1,
            width as isize,
            false,
            scratch.gy.as_ptr(),
            height as isize,
            1,
            scratch.gx.as_ptr(),
            1,
            width as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// Gradients of one frame's splat with respect to its inputs.
pub struct SplatGrads {
    /// `(du, dv)` per point, interleaved like the `uv` input.
    pub uv: Vec<f32>,
    /// Per-point weight gradient.
    pub weights: Vec<f32>,
    /// Gradient with respect to σ.
    pub sigma: f32,
}

/// Dense evaluation of [`splat_frame_backward`].
///
/// With `M = G·[Gx; Gx'; Gx·d²]ᵀ` (one GEMM of `H×W` by `W×3N`), every
/// gradient is a per-point dot product of length `H`:
/// `dL/dwᵢ = c·Σ_r gyᵢ·Aᵢ`, `dL/duᵢ = c·wᵢ·Σ_r gyᵢ·Bᵢ`, `dL/dvᵢ = c·wᵢ·Σ_r gy'ᵢ·Aᵢ`,
/// and `dL/dσ = Σᵢ c·wᵢ·[−2/σ·Σ gy·A + (Σ gy·d²·A + Σ gy·C)/σ³]`, with `c = 1/(2πσ²)`.
pub fn splat_frame_backward_dense(
    uv: &[f32],
    weights: &[f32],
    sigma: f32,
    width: usize,
    height: usize,
    grad: &[f32],
    par: Parallelism,
) -> SplatGrads {
    let n = weights.len();
    assert_eq!(uv.len(), 2 * n);
    assert_eq!(grad.len(), width * height);
    let us: Vec<f32> = uv.iter().step_by(2).copied().collect();
    let vs: Vec<f32> = uv.iter().skip(1).step_by(2).copied().collect();
    // P = [gx; gx'; gx·d²] as (3N × W)
    let mut p = vec![0.0f32; 3 * n * width];
    {
        let (a, rest) = p.split_at_mut(n * width);
        let (b, c) = rest.split_at_mut(n * width);
        profiles(&us, width, sigma, Profile::Gauss, a);
        profiles(&us, width, sigma, Profile::DCentre, b);
        profiles(&us, width, sigma, Profile::DSquared, c);
    }
    let mut gy = vec![0.0f32; n * height];
    let mut gy_d = vec![0.0f32; n * height];
    let mut gy_d2 = vec![0.0f32; n * height];
    profiles(&vs, height, sigma, Profile::Gauss, &mut gy);
    profiles(&vs, height, sigma, Profile::DCentre, &mut gy_d);
    profiles(&vs, height, sigma, Profile::DSquared, &mut gy_d2);
    // M (H × 3N), stored column-major so each point's column is contiguous.
    let mut m = vec![0.0f32; height * 3 * n];
    if n > 0 {
        // SAFETY: buffer sizes and strides match the layouts described above.
        unsafe {
            gemm::gemm(
                height,
                3 * n,
                width,
                m.as_mut_ptr(),
                height as isize,
                1,
                false,
                grad.as_ptr(),
                1,
                width as isize,
                p.as_ptr(),
                width as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                par,
            );
        }
    }
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f32>();
    let c = gauss_norm(sigma);
    let mut g_uv = vec![0.0f32; 2 * n];
    let mut g_w = vec![0.0f32; n];
    let mut g_sigma = 0.0f32;
    for i in 0..n {
        let col = |k: usize| &m[(k * n + i) * height..(k * n + i + 1) * height];
        let (a, b, cc) = (col(0), col(1), col(2));
        let gyi = &gy[i * height..(i + 1) * height];
        let gy_a = dot(gyi, a);
        g_w[i] = c * gy_a;
        g_uv[2 * i] = c * weights[i] * dot(gyi, b);
        g_uv[2 * i + 1] = c * weights[i] * dot(&gy_d[i * height..(i + 1) * height], a);
        let s3 = sigma * sigma * sigma;
        g_sigma += c
            * weights[i]
            * (-2.0 / sigma * gy_a
                + (dot(&gy_d2[i * height..(i + 1) * height], a) + dot(gyi, cc)) / s3);
    }
    SplatGrads {
        uv: g_uv,
        weights: g_w,
        sigma: g_sigma,
    }
}

/// Half-width of the window outside which a Gaussian profile is treated as
/// zero: `exp(-(6σ)²/2σ²) = e^-18 ≈ 1.5e-8`, below f32 resolution of the peak.
pub const TRUNCATE_SIGMAS: f32 = 6.0;

/// The pixel range `[lo, hi)` of a profile centred at `centre` on an axis of `len` pixels.
#[inline]
fn window(centre: f32, len: usize, radius: f32) -> (usize, usize) {
    // pixel c is sampled at c + 0.5
    let lo = (centre - radius - 0.5).floor();
    let hi = (centre + radius - 0.5).ceil() + 1.0;
    let clamp = |x: f32| -> usize {
        if x.is_nan() || x <= 0.0 {
            0
        } else if x >= len as f32 {
            len
        } else {
            x as usize
        }
    };
    (clamp(lo), clamp(hi))
}

/// Whether the windows cover so much of the frame that the dense GEMM is faster.
fn prefer_dense(sigma: f32, width: usize, height: usize) -> bool {
    let side = padded_window(sigma) as f32;
    side * side > 0.5 * (width * height) as f32
}

/// Fills `out[k]` with the profile at pixels `lo + k` for a point at `centre`.
#[inline(always)]
pub(crate) fn profile_window(centre: f32, lo: usize, sigma: f32, kind: Profile, out: &mut [f32]) {
    // same arithmetic as `profiles`, on a sub-range of the axis
    let len = out.len();
    profiles(&[centre - lo as f32], len, sigma, kind, out);
}

/// Profile length used by the windowed splat: at least `2·6σ + 3` pixels,
/// rounded up to a multiple of 16 so that every row fills whole SIMD registers.
fn padded_window(sigma: f32) -> usize {
    let need = (2.0 * TRUNCATE_SIGMAS * sigma).ceil() as usize + 3;
    need.div_ceil(16) * 16
}

/// Start of a window of `len` pixels that covers `centre ± radius` and stays
/// inside `[0, axis)`; `None` when the point is entirely outside the frame.
#[inline]
fn window_start(centre: f32, radius: f32, len: usize, axis: usize) -> Option<usize> {
    if !(centre + radius >= 0.0 && centre - radius <= axis as f32) {
        return None; // also rejects NaN
    }
    let lo = (centre - radius - 0.5).floor().max(0.0) as usize;
    Some(lo.min(axis - len))
}

#[inline(always)]
fn accumulate_impl(
    out: &mut [f32],
    width: usize,
    gx: &[f32],
    gy: &[f32],
    lx: usize,
    ly: usize,
    starts: &[Block],
) {
    for b in starts {
        let gxi = &gx[b.index * lx..(b.index + 1) * lx];
        let gyi = &gy[b.index * ly + b.row_skip..b.index * ly + b.row_skip + b.rows];
        let (c0, r0, s) = (b.col, b.row, b.scale);
        for (k, &g) in gyi.iter().enumerate() {
            let row = &mut out[(r0 + k) * width + c0..(r0 + k) * width + c0 + lx];
            axpy16(row, g * s, gxi);
        }
    }
}

simd_dispatch! {
    /// `out[(r0+k)·W + c0 + j] += s·gy[k]·gx[j]` for every point's window.
    fn accumulate(out: &mut [f32], width: usize, gx: &[f32], gy: &[f32], lx: usize, ly: usize, starts: &[Block]) => accumulate_impl
}

/// Splats one frame: `out[r·W + c] = Σᵢ wᵢ/(2πσ²)·exp(-((c+½-uᵢ)² + (r+½-vᵢ)²)/2σ²)`.
///
/// `uv` holds `(u, v)` pairs in pixels (u along columns, v along rows).
/// The result overwrites `out` (`width·height` values, row-major).
///
/// This is the product `(w·Gy)ᵀ·Gx` evaluated block-sparsely: a profile is
/// zero (below 1.5e-8 of its peak) more than [`TRUNCATE_SIGMAS`]·σ from its
/// centre, so each point adds one rank-1 block of about `(12σ)²` pixels,
/// with the exact Gaussian inside the block. When σ is so large that those
/// blocks cover most of the frame, the dense GEMM ([`splat_frame_dense`]) is
/// used instead.
#[allow(clippy::too_many_arguments)]
pub fn splat_frame(
    uv: &[f32],
    weights: &[f32],
    sigma: f32,
    width: usize,
    height: usize,
    par: Parallelism,
    scratch: &mut Scratch,
    out: &mut [f32],
) {
    let n = weights.len();
    assert_eq!(uv.len(), 2 * n, "uv must hold two coordinates per point");
    assert_eq!(out.len(), width * height, "output size");
    let (lx, ly) = (padded_window(sigma), padded_window(sigma));
    if prefer_dense(sigma, width, height) || lx > width || ly > height {
        return splat_frame_dense(uv, weights, sigma, width, height, par, scratch, out);
    }
    out.fill(0.0);
    let radius = TRUNCATE_SIGMAS * sigma;
    let norm = gauss_norm(sigma);
    scratch.us.clear();
    scratch.vs.clear();
    scratch.starts.clear();
    for (p, &w) in uv.chunks_exact(2).zip(weights) {
        let (Some(c0), Some(r0)) = (
            window_start(p[0], radius, lx, width),
            window_start(p[1], radius, ly, height),
        ) else {
            continue;
        };
        // the padded profile starts at r0; only rows within the radius are touched
        let (lo, hi) = window(p[1], height, radius);
        if lo >= hi {
            continue;
        }
        scratch.starts.push(Block {
            index: scratch.us.len(),
            col: c0,
            row: lo,
            row_skip: lo - r0,
            rows: hi - lo,
            scale: w * norm,
        });
        scratch.us.push(p[0] - c0 as f32);
        scratch.vs.push(p[1] - r0 as f32);
    }
    // neighbouring blocks one after another keep the output rows in cache
    scratch.starts.sort_unstable_by_key(|b| (b.row / 8, b.col));
    let m = scratch.us.len();
    scratch.gx.resize(m * lx, 0.0);
    scratch.gy.resize(m * ly, 0.0);
    profiles(&scratch.us, lx, sigma, Profile::Gauss, &mut scratch.gx);
    profiles(&scratch.vs, ly, sigma, Profile::Gauss, &mut scratch.gy);
    accumulate(
        out,
        width,
        &scratch.gx,
        &scratch.gy,
        lx,
        ly,
        &scratch.starts,
    );
}

/// [`splat_frame`] for the fit's repeated evaluations: the same image (to
/// f32 rounding), with each point's window widened to a multiple of 8 pixels
/// so that profiles take one exponential per pixel and every row update is
/// whole SIMD registers. Falls back to [`splat_frame`] for wide PSFs or
/// frames narrower than a window. (Rendering stays on [`splat_frame`] so
/// that synthetic data do not change with this optimisation.)
#[allow(clippy::too_many_arguments)]
pub fn splat_frame_fit(
    uv: &[f32],
    weights: &[f32],
    sigma: f32,
    width: usize,
    height: usize,
    scratch: &mut Scratch,
    out: &mut [f32],
) {
    let n = weights.len();
    assert_eq!(uv.len(), 2 * n, "uv must hold two coordinates per point");
    assert_eq!(out.len(), width * height, "output size");
    let lx = ((2.0 * TRUNCATE_SIGMAS * sigma).ceil() as usize + 3).div_ceil(8) * 8;
    if sigma.is_finite() && sigma > 0.0 && lx <= width.min(height) && lx <= 48 {
        splat_fixed(uv, weights, sigma, width, height, lx, out);
    } else {
        splat_frame(
            uv,
            weights,
            sigma,
            width,
            height,
            Parallelism::None,
            scratch,
            out,
        );
    }
}

simd_dispatch! {
    /// [`splat_frame`] with `lx × lx` windows (`lx` a multiple of 8 up to 48,
    /// covering `±6σ`, at most the frame size): each point's profiles come
    /// from one exponential per pixel and each row update is whole registers.
    fn splat_fixed(uv: &[f32], weights: &[f32], sigma: f32, width: usize, height: usize, lx: usize, out: &mut [f32]) => splat_fixed_impl
}

#[inline(always)]
fn splat_fixed_impl(
    uv: &[f32],
    weights: &[f32],
    sigma: f32,
    width: usize,
    height: usize,
    lx: usize,
    out: &mut [f32],
) {
    match lx {
        8 => splat_fixed_l::<8>(uv, weights, sigma, width, height, out),
        16 => splat_fixed_l::<16>(uv, weights, sigma, width, height, out),
        24 => splat_fixed_l::<24>(uv, weights, sigma, width, height, out),
        32 => splat_fixed_l::<32>(uv, weights, sigma, width, height, out),
        40 => splat_fixed_l::<40>(uv, weights, sigma, width, height, out),
        48 => splat_fixed_l::<48>(uv, weights, sigma, width, height, out),
        _ => unreachable!("window of {lx} pixels"),
    }
}

#[inline(always)]
fn splat_fixed_l<const L: usize>(
    uv: &[f32],
    weights: &[f32],
    sigma: f32,
    width: usize,
    height: usize,
    out: &mut [f32],
) {
    out.fill(0.0);
    let radius = TRUNCATE_SIGMAS * sigma;
    let norm = gauss_norm(sigma);
    let k = 0.5 / (sigma * sigma);
    for (p, &w) in uv.chunks_exact(2).zip(weights) {
        let (c0, c1) = window(p[0], width, radius);
        let (r0, r1) = window(p[1], height, radius);
        if c0 >= c1 || r0 >= r1 {
            continue;
        }
        let c0 = c0.min(width - L);
        let mut gx = [0.0f32; L];
        let mut gy = [0.0f32; L];
        let (bx, by) = (c0 as f32 + 0.5 - p[0], r0 as f32 + 0.5 - p[1]);
        for l in 0..L {
            let dx = bx + l as f32;
            let dy = by + l as f32;
            gx[l] = exp_neg(-dx * dx * k);
            gy[l] = exp_neg(-dy * dy * k);
        }
        let s = w * norm;
        for (j, &g) in gy.iter().enumerate().take((r1 - r0).min(L)) {
            let off = (r0 + j) * width + c0;
            row_axpy::<L>(&mut out[off..off + L], s * g, &gx);
        }
    }
}

/// The six 1-D profiles (Gauss, centre derivative, d² factor; columns and
/// rows) of one point over its window, shared by the backward pass and the
/// Jacobian render. Profiles are filled over whole 16-lane blocks (the extra
/// values are further along the same Gaussian) and exposed over the window.
#[derive(Default)]
struct WindowProfiles {
    buf: Vec<f32>,
    nx: usize,
    ny: usize,
    px: usize,
    py: usize,
}

impl WindowProfiles {
    /// Fills the profiles of the point `p = (u, v)` over its `±radius`
    /// window; returns `[c0, c1, r0, r1]`, or `None` when the window is empty.
    /// The d² profiles are left stale unless `with_d2`.
    fn fill(
        &mut self,
        p: &[f32],
        width: usize,
        height: usize,
        radius: f32,
        sigma: f32,
        with_d2: bool,
    ) -> Option<[usize; 4]> {
        let (c0, c1) = window(p[0], width, radius);
        let (r0, r1) = window(p[1], height, radius);
        if c0 >= c1 || r0 >= r1 {
            return None;
        }
        self.nx = c1 - c0;
        self.ny = r1 - r0;
        self.px = self.nx.div_ceil(16) * 16;
        self.py = self.ny.div_ceil(16) * 16;
        self.buf.resize(3 * self.px + 3 * self.py, 0.0);
        let (x, y) = self.buf.split_at_mut(3 * self.px);
        let kinds: &[Profile] = if with_d2 {
            &[Profile::Gauss, Profile::DCentre, Profile::DSquared]
        } else {
            &[Profile::Gauss, Profile::DCentre]
        };
        for (k, &kind) in kinds.iter().enumerate() {
            profile_window(
                p[0],
                c0,
                sigma,
                kind,
                &mut x[k * self.px..(k + 1) * self.px],
            );
            profile_window(
                p[1],
                r0,
                sigma,
                kind,
                &mut y[k * self.py..(k + 1) * self.py],
            );
        }
        Some([c0, c1, r0, r1])
    }

    /// `[gx, gx', gx·d², gy, gy', gy·d²]` over the window.
    fn slices(&self) -> [&[f32]; 6] {
        let (x, y) = self.buf.split_at(3 * self.px);
        let xs = |k: usize| &x[k * self.px..k * self.px + self.nx];
        let ys = |k: usize| &y[k * self.py..k * self.py + self.ny];
        [xs(0), xs(1), xs(2), ys(0), ys(1), ys(2)]
    }
}

/// Back-propagates `grad` (dL/dI, `width·height`) through [`splat_frame`].
///
/// Per point, with `A = G·gx`, `B = G·gx'`, `C = G·(gx·d²)` restricted to the
/// point's window: `dL/dwᵢ = c·Σ_r gy·A`, `dL/duᵢ = c·wᵢ·Σ_r gy·B`,
/// `dL/dvᵢ = c·wᵢ·Σ_r gy'·A`, and
/// `dL/dσ = Σᵢ c·wᵢ·[−2/σ·Σ gy·A + (Σ gy·d²·A + Σ gy·C)/σ³]` with `c = 1/(2πσ²)`.
pub fn splat_frame_backward(
    uv: &[f32],
    weights: &[f32],
    sigma: f32,
    width: usize,
    height: usize,
    grad: &[f32],
    par: Parallelism,
) -> SplatGrads {
    let n = weights.len();
    assert_eq!(uv.len(), 2 * n);
    assert_eq!(grad.len(), width * height);
    if prefer_dense(sigma, width, height) {
        return splat_frame_backward_dense(uv, weights, sigma, width, height, grad, par);
    }
    let radius = TRUNCATE_SIGMAS * sigma;
    let c = gauss_norm(sigma);
    let s3 = sigma * sigma * sigma;
    let mut g_uv = vec![0.0f32; 2 * n];
    let mut g_w = vec![0.0f32; n];
    let mut g_sigma = 0.0f32;
    let mut prof = WindowProfiles::default();
    for (i, (p, &w)) in uv.chunks_exact(2).zip(weights).enumerate() {
        let Some([c0, c1, r0, r1]) = prof.fill(p, width, height, radius, sigma, true) else {
            continue;
        };
        let nx = c1 - c0;
        let [gx, gx_d, gx_d2, gy, gy_d, gy_d2] = prof.slices();
        let (mut s_gy_a, mut s_gy_b, mut s_gyd_a, mut s_gyd2_a, mut s_gy_c) =
            (0.0, 0.0, 0.0, 0.0, 0.0);
        for (k, r) in (r0..r1).enumerate() {
            let row = &grad[r * width + c0..r * width + c1];
            let (mut a, mut b, mut cc) = (0.0f32, 0.0f32, 0.0f32);
            for j in 0..nx {
                a += row[j] * gx[j];
                b += row[j] * gx_d[j];
                cc += row[j] * gx_d2[j];
            }
            s_gy_a += gy[k] * a;
            s_gy_b += gy[k] * b;
            s_gyd_a += gy_d[k] * a;
            s_gyd2_a += gy_d2[k] * a;
            s_gy_c += gy[k] * cc;
        }
        g_w[i] = c * s_gy_a;
        g_uv[2 * i] = c * w * s_gy_b;
        g_uv[2 * i + 1] = c * w * s_gyd_a;
        g_sigma += c * w * (-2.0 / sigma * s_gy_a + (s_gyd2_a + s_gy_c) / s3);
    }
    SplatGrads {
        uv: g_uv,
        weights: g_w,
        sigma: g_sigma,
    }
}

/// Sizes of a Jacobian render.
#[derive(Clone, Copy, Debug)]
pub struct JacobianSpec {
    /// Image width.
    pub width: usize,
    /// Image height.
    pub height: usize,
    /// PSF σ in pixels.
    pub sigma: f32,
    /// Number of parameters given through per-point `(du, dv)` sensitivities.
    pub params: usize,
    /// Whether to add one more derivative image, with respect to `ln σ`.
    pub log_sigma: bool,
    /// Half-width of each point's window in σ ([`TRUNCATE_SIGMAS`] for an exact
    /// render; about 4 is plenty for the derivatives of a fit, e^-8 ≈ 3e-4).
    pub radius_sigmas: f32,
}

impl JacobianSpec {
    /// Number of derivative images written.
    pub fn images(&self) -> usize {
        self.params + usize::from(self.log_sigma)
    }
}

simd_dispatch! {
    /// Renders a frame and its derivative images for Gauss–Newton fitting.
    ///
    /// `dudv[(i·K + k)·2 ..]` holds `(∂uᵢ/∂θₖ, ∂vᵢ/∂θₖ)` for point `i` and
    /// parameter `k`. `image` receives the splat ([`splat_frame`]'s formula);
    /// `jac[k·W·H ..]` receives `∂I/∂θₖ`, and, with `log_sigma`, the last image is
    /// `∂I/∂ln σ`. Each point touches only its `±6σ` window, so the cost is about
    /// `2K + 3` times that of the forward splat.
    pub fn splat_frame_jacobian(uv: &[f32], dudv: &[f32], weights: &[f32], spec: &JacobianSpec, image: &mut [f32], jac: &mut [f32]) => jacobian_impl
}

#[inline(always)]
fn jacobian_impl(
    uv: &[f32],
    dudv: &[f32],
    weights: &[f32],
    spec: &JacobianSpec,
    image: &mut [f32],
    jac: &mut [f32],
) {
    let (width, height, sigma, k) = (spec.width, spec.height, spec.sigma, spec.params);
    let n = weights.len();
    let plane = width * height;
    assert_eq!(uv.len(), 2 * n);
    assert_eq!(dudv.len(), 2 * n * k);
    assert_eq!(image.len(), plane);
    assert_eq!(jac.len(), spec.images() * plane);
    image.fill(0.0);
    jac.fill(0.0);
    let radius = spec.radius_sigmas.clamp(1.0, TRUNCATE_SIGMAS) * sigma;
    // Every column window is widened to `lx` pixels, a multiple of 8 (the
    // extra pixels carry the same Gaussian further out), so that each row
    // update is a few whole SIMD registers instead of a short loop with a
    // scalar tail. Wider windows, or frames narrower than that, use the
    // exact-width loop.
    let lx = ((2.0 * radius).ceil() as usize + 3).div_ceil(8) * 8;
    let ctx = JacCtx {
        width,
        height,
        plane,
        radius,
        sigma,
        k,
        log_sigma: spec.log_sigma,
    };
    match lx {
        _ if lx > width => jacobian_any(uv, dudv, weights, &ctx, image, jac),
        8 => jacobian_fixed::<8>(uv, dudv, weights, &ctx, image, jac),
        16 => jacobian_fixed::<16>(uv, dudv, weights, &ctx, image, jac),
        24 => jacobian_fixed::<24>(uv, dudv, weights, &ctx, image, jac),
        32 => jacobian_fixed::<32>(uv, dudv, weights, &ctx, image, jac),
        40 => jacobian_fixed::<40>(uv, dudv, weights, &ctx, image, jac),
        48 => jacobian_fixed::<48>(uv, dudv, weights, &ctx, image, jac),
        _ => jacobian_any(uv, dudv, weights, &ctx, image, jac),
    }
}

/// Sizes shared by the two Jacobian loops.
struct JacCtx {
    width: usize,
    height: usize,
    plane: usize,
    radius: f32,
    sigma: f32,
    k: usize,
    log_sigma: bool,
}

/// The Gaussian profile `g = exp(−d²/2σ²)` over `L` pixel centres starting
/// at offset `base`, with `g·d/σ²` and `g·d²`, from one exponential per pixel.
#[inline(always)]
fn fixed_profiles<const L: usize>(
    base: f32,
    half_inv_s2: f32,
    inv_s2: f32,
) -> ([f32; L], [f32; L], [f32; L]) {
    let mut g = [0.0f32; L];
    let mut g_d = [0.0f32; L];
    let mut g_d2 = [0.0f32; L];
    for l in 0..L {
        let d = base + l as f32;
        let e = exp_neg(-d * d * half_inv_s2);
        g[l] = e;
        g_d[l] = e * d * inv_s2;
        g_d2[l] = e * d * d;
    }
    (g, g_d, g_d2)
}

/// The Jacobian render with column windows of exactly `L` pixels (`L ≤ width`).
#[inline(always)]
fn jacobian_fixed<const L: usize>(
    uv: &[f32],
    dudv: &[f32],
    weights: &[f32],
    ctx: &JacCtx,
    image: &mut [f32],
    jac: &mut [f32],
) {
    let (width, plane, sigma, k) = (ctx.width, ctx.plane, ctx.sigma, ctx.k);
    let norm = gauss_norm(sigma);
    let half_inv_s2 = 0.5 / (sigma * sigma);
    let inv_s2 = 1.0 / (sigma * sigma);
    for (i, (p, &w)) in uv.chunks_exact(2).zip(weights).enumerate() {
        let (c0, c1) = window(p[0], width, ctx.radius);
        let (r0, r1) = window(p[1], ctx.height, ctx.radius);
        if c0 >= c1 || r0 >= r1 {
            continue;
        }
        let c0 = c0.min(width - L);
        // column profiles: g, g·d/σ², g·d² from one exponential per pixel
        let (gx, gx_d, gx_d2) = fixed_profiles::<L>(c0 as f32 + 0.5 - p[0], half_inv_s2, inv_s2);
        // row profiles over L rows from r0 (the window has at most L rows)
        let ny = r1 - r0;
        let (gy, gy_d, gy_d2) = fixed_profiles::<L>(r0 as f32 + 0.5 - p[1], half_inv_s2, inv_s2);
        let s = w * norm;
        let sens = &dudv[i * 2 * k..(i + 1) * 2 * k];
        for j in 0..ny.min(L) {
            let off = (r0 + j) * width + c0;
            let a = s * gy[j];
            let ad = s * gy_d[j];
            row_axpy::<L>(&mut image[off..off + L], a, &gx);
            for (kk, d) in sens.chunks_exact(2).enumerate() {
                // ∂/∂θ of gy(v)·gx(u): gy·gx'·∂u/∂θ + gy'·gx·∂v/∂θ
                let o = kk * plane + off;
                row_axpy2::<L>(&mut jac[o..o + L], ad * d[1], &gx, a * d[0], &gx_d);
            }
            if ctx.log_sigma {
                // σ·∂/∂σ of c(σ)·gy·gx = c·[(−2·gy + gy·dy²/σ²)·gx + gy·gx·dx²/σ²]
                let o = k * plane + off;
                row_axpy2::<L>(
                    &mut jac[o..o + L],
                    s * (gy_d2[j] * inv_s2 - 2.0 * gy[j]),
                    &gx,
                    a * inv_s2,
                    &gx_d2,
                );
            }
        }
    }
}

/// `y += a·x` for exactly `L` values.
#[inline(always)]
fn row_axpy<const L: usize>(y: &mut [f32], a: f32, x: &[f32; L]) {
    // a local copy first, so the block vectorises (the compiler cannot
    // prove that `y` and `x` do not overlap)
    let mut t: [f32; L] = (&*y).try_into().expect("L lanes");
    for l in 0..L {
        t[l] += a * x[l];
    }
    y.copy_from_slice(&t);
}

/// `y += a·x + b·z` for exactly `L` values.
#[inline(always)]
fn row_axpy2<const L: usize>(y: &mut [f32], a: f32, x: &[f32; L], b: f32, z: &[f32; L]) {
    let mut t: [f32; L] = (&*y).try_into().expect("L lanes");
    for l in 0..L {
        t[l] += a * x[l] + b * z[l];
    }
    y.copy_from_slice(&t);
}

/// The Jacobian render with exact-width windows (any σ and frame size).
#[inline(always)]
fn jacobian_any(
    uv: &[f32],
    dudv: &[f32],
    weights: &[f32],
    ctx: &JacCtx,
    image: &mut [f32],
    jac: &mut [f32],
) {
    let (width, plane, sigma, k) = (ctx.width, ctx.plane, ctx.sigma, ctx.k);
    let norm = gauss_norm(sigma);
    let inv_s2 = 1.0 / (sigma * sigma);
    let mut prof = WindowProfiles::default();
    let mut coef: Vec<(f32, f32)> = vec![(0.0, 0.0); k];
    for (i, (p, &w)) in uv.chunks_exact(2).zip(weights).enumerate() {
        let Some([c0, _, r0, r1]) =
            prof.fill(p, width, ctx.height, ctx.radius, sigma, ctx.log_sigma)
        else {
            continue;
        };
        let [gx, gx_d, gx_d2, gy, gy_d, gy_d2] = prof.slices();
        let nx = gx.len();
        let s = w * norm;
        let sens = &dudv[i * 2 * k..(i + 1) * 2 * k];
        for (j, r) in (r0..r1).enumerate() {
            let off = r * width + c0;
            let a = s * gy[j];
            axpy(&mut image[off..off + nx], a, gx);
            for (c, d) in coef.iter_mut().zip(sens.chunks_exact(2)) {
                *c = (s * gy_d[j] * d[1], a * d[0]);
            }
            for (kk, &(alpha, beta)) in coef.iter().enumerate() {
                let row = &mut jac[kk * plane + off..kk * plane + off + nx];
                axpy2(row, alpha, gx, beta, gx_d);
            }
            if ctx.log_sigma {
                let row = &mut jac[k * plane + off..k * plane + off + nx];
                axpy2(
                    row,
                    s * (gy_d2[j] * inv_s2 - 2.0 * gy[j]),
                    gx,
                    a * inv_s2,
                    gx_d2,
                );
            }
        }
    }
}

/// `y += a·x` over whole blocks of 16 (`y.len()` a multiple of 16).
#[inline(always)]
fn axpy16(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.chunks_exact_mut(16).zip(x.chunks_exact(16)) {
        row_axpy::<16>(y, a, x.try_into().expect("16 lanes"));
    }
}

#[inline(always)]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

#[inline(always)]
fn axpy2(y: &mut [f32], a: f32, x: &[f32], b: f32, z: &[f32]) {
    for ((y, &x), &z) in y.iter_mut().zip(x).zip(z) {
        *y += a * x + b * z;
    }
}

#[cfg(test)]
#[path = "kernel_tests.rs"]
mod tests;
