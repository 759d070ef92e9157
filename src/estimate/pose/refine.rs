//! Render-and-compare refinement of a pose against one frame.
//!
//! # Score
//! The score is the normalised cross-correlation (NCC) between the frame and
//! the rendered model. Fitting `frame ≈ a·render + b` by least squares with the
//! best gain `a` and offset `b` is the same as maximising the NCC, so the fit
//! needs no camera calibration (gain, offset, background, photon count). A
//! Poisson likelihood would be statistically tighter for calibrated photon
//! counts, but users' files rarely state gain and offset; NCC also makes the
//! score comparable across frames and files (1 = perfect, 0 = unrelated).
//!
//! # Method
//! Levenberg–Marquardt on the pose (a rotation increment `ω` applied in the
//! camera frame, `R ← exp([ω]×)·R`), the shift, `ln scale`, `ln σ`, optionally
//! the torus tube radius, and the linear `a`, `b`. Each iteration renders the
//! frame together with its exact derivative images
//! ([`crate::render::kernel::splat_frame_jacobian`]) and solves the damped
//! normal equations (a few dozen unknowns at most).
//!
//! Renders, Jacobians and sums cover only the bounding box of the projected
//! points plus the PSF's reach (±4σ for derivatives, ±6σ for the cost), not
//! the whole frame: outside it the render and its derivatives are zero, and
//! the whole-frame sums follow from the frame's own totals.

use crate::geometry::{solve_spd, Pose, Quat};
use crate::render::kernel::{self, splat_frame_jacobian, JacobianSpec, Scratch};
use crate::render::scene::{FitModel, FitState};

/// Settings of [`refine`].
#[derive(Clone, Debug)]
pub struct RefineConfig {
    /// Maximum Levenberg–Marquardt iterations.
    pub max_iters: usize,
    /// Stop when the relative decrease of the cost falls below this.
    pub tolerance: f64,
    /// Fit the PSF σ.
    pub fit_sigma: bool,
    /// Fit the model scale.
    pub fit_scale: bool,
    /// Fit the shape parameter (tube radius), when the model has one.
    pub fit_shape: bool,
}

impl Default for RefineConfig {
    fn default() -> Self {
        Self {
            max_iters: 20,
            tolerance: 1e-3,
            fit_sigma: true,
            fit_scale: true,
            fit_shape: true,
        }
    }
}

/// The outcome of a refinement.
#[derive(Clone, Copy, Debug)]
pub struct RefineResult {
    /// Fitted parameters.
    pub state: FitState,
    /// NCC between the frame and the fitted render (1 is perfect).
    pub score: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Whether the cost stopped decreasing before `max_iters`.
    pub converged: bool,
    /// The axis's standard error, degrees, where the refinement computes it
    /// ([`refine_weighted`]; see [`fit_axis_standard_error`]); NaN otherwise.
    pub axis_sd_deg: f64,
}

/// Errors from refinement.
#[derive(Debug, thiserror::Error)]
pub enum RefineError {
    /// The frame cannot be fitted.
    #[error("cannot fit this frame: {0}")]
    BadFrame(String),
}

/// Checks that a frame can be fitted: the right size and finite pixels.
pub fn check_frame(frame: &[f32], width: usize, height: usize) -> Result<(), RefineError> {
    if frame.len() != width * height {
        return Err(RefineError::BadFrame(format!(
            "{} pixels for a {width}×{height} frame",
            frame.len()
        )));
    }
    if width < 4 || height < 4 {
        return Err(RefineError::BadFrame(format!(
            "a {width}×{height} frame is too small (a particle needs at least 4×4 pixels)"
        )));
    }
    if let Some(i) = frame.iter().position(|v| !v.is_finite()) {
        return Err(RefineError::BadFrame(format!(
            "pixel ({}, {}) is {}",
            i % width,
            i / width,
            frame[i]
        )));
    }
    Ok(())
}

/// Which parameters are free, in Jacobian order.
struct Layout {
    shape: bool,
    log_sigma: bool,
    scale: bool,
}

impl Layout {
    /// `(du, dv)`-driven parameters: ω (3), shift (2), [ln s], [ρ].
    fn geometric(&self) -> usize {
        5 + usize::from(self.scale) + usize::from(self.shape)
    }
}

/// A frame centred on its mean, with its sum of squares: what every
/// evaluation of the fit needs, computed once.
///
/// With per-pixel weights `w` every sum is weighted: `ss = Σ w·c²`,
/// `total = Σ w·c`, `w_total = Σ w` (the pixel count when unweighted), and
/// `wc = w·c` makes `Σ w·img·c` a plain dot product.
struct CentredFrame {
    centred: Vec<f32>,
    width: usize,
    ss: f64,
    /// `Σ w·centred` (zero up to rounding), for sums over the whole frame.
    total: f64,
    /// `Σ w` over the frame.
    w_total: f64,
    /// Per-pixel weights and `w·centred`; `None`: every pixel weighs 1.
    weighted: Option<Weighted>,
}

/// The weights of a weighted least-squares fit, and the weighted frame.
struct Weighted {
    w: Vec<f32>,
    wc: Vec<f32>,
}

/// A rectangle of the frame: the pixels a render can touch.
#[derive(Clone, Copy, Debug)]
struct Crop {
    x0: usize,
    y0: usize,
    w: usize,
    h: usize,
}

impl Crop {
    /// The bounding box of `uv` grown by `margin` pixels, inside the frame;
    /// `None` when no point is near the frame.
    fn around(uv: &[f32], margin: f32, width: usize, height: usize) -> Option<Self> {
        let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
        for p in uv.chunks_exact(2) {
            for k in 0..2 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        let span = |lo: f32, hi: f32, len: usize| -> Option<(usize, usize)> {
            let a = (lo - margin).floor().max(0.0);
            let b = (hi + margin).ceil().min(len as f32);
            // also rejects NaN
            if a < b && b > 0.0 && a < len as f32 {
                Some((a as usize, b as usize - a as usize))
            } else {
                None
            }
        };
        let (x0, w) = span(lo[0], hi[0], width)?;
        let (y0, h) = span(lo[1], hi[1], height)?;
        Some(Self { x0, y0, w, h })
    }

    /// Shifts `uv` into crop coordinates (whole pixels, so sampling is unchanged).
    fn shift(&self, uv: &mut [f32]) {
        for p in uv.chunks_exact_mut(2) {
            p[0] -= self.x0 as f32;
            p[1] -= self.y0 as f32;
        }
    }
}

impl CentredFrame {
    fn new(frame: &[f32], width: usize) -> Self {
        let mean = frame.iter().map(|&v| v as f64).sum::<f64>() / frame.len().max(1) as f64;
        let centred: Vec<f32> = frame.iter().map(|&v| (v as f64 - mean) as f32).collect();
        let ss = centred.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let total = centred.iter().map(|&v| v as f64).sum();
        Self {
            w_total: centred.len() as f64,
            centred,
            width,
            ss,
            total,
            weighted: None,
        }
    }

    /// The frame with per-pixel weights `w` (finite, ≥ 0, one per pixel),
    /// centred on its weighted mean.
    fn weighted(frame: &[f32], width: usize, w: Vec<f32>) -> Self {
        let w_total: f64 = w.iter().map(|&x| x as f64).sum();
        let mean = frame
            .iter()
            .zip(&w)
            .map(|(&v, &x)| v as f64 * x as f64)
            .sum::<f64>()
            / w_total.max(1e-300);
        let centred: Vec<f32> = frame.iter().map(|&v| (v as f64 - mean) as f32).collect();
        let wc: Vec<f32> = centred.iter().zip(&w).map(|(c, x)| c * x).collect();
        let ss = dot(&wc, &centred);
        let total = sum(&wc);
        Self {
            centred,
            width,
            ss,
            total,
            w_total,
            weighted: Some(Weighted { w, wc }),
        }
    }

    /// `Σ w²·(b − centred)²` over the frame: the offset's share of the
    /// sandwich covariance where the model is zero.
    fn offset_meat(&self, b: f64) -> f64 {
        let sq = |w: f64, f: f32| (w * (b - f64::from(f))).powi(2);
        match &self.weighted {
            Some(k) => {
                k.w.iter()
                    .zip(&self.centred)
                    .map(|(&w, &f)| sq(f64::from(w), f))
                    .sum()
            }
            None => self.centred.iter().map(|&f| sq(1.0, f)).sum(),
        }
    }

    /// `Σ w·img·centred` for an image of the crop (zero outside it).
    fn dot_crop(&self, img: &[f32], c: &Crop) -> f64 {
        let f = self.weighted.as_ref().map_or(&self.centred, |k| &k.wc);
        img.chunks_exact(c.w)
            .enumerate()
            .map(|(r, row)| {
                let o = (c.y0 + r) * self.width + c.x0;
                dot(row, &f[o..o + c.w])
            })
            .sum()
    }

    /// `Σ w·img` and `Σ w·img²` for an image of the crop.
    fn img_sums(&self, img: &[f32], c: &Crop) -> (f64, f64) {
        match &self.weighted {
            None => (sum(img), dot(img, img)),
            Some(k) => {
                let (mut s1, mut s2) = (0.0, 0.0);
                for (r, row) in img.chunks_exact(c.w).enumerate() {
                    let o = (c.y0 + r) * self.width + c.x0;
                    let wr = &k.w[o..o + c.w];
                    s1 += dot(row, wr);
                    s2 += dot3(row, row, wr);
                }
                (s1, s2)
            }
        }
    }

    /// The weights inside the crop, row by row (empty when unweighted).
    fn weights_crop(&self, c: &Crop, out: &mut Vec<f32>) {
        out.clear();
        if let Some(k) = &self.weighted {
            for r in 0..c.h {
                let o = (c.y0 + r) * self.width + c.x0;
                out.extend_from_slice(&k.w[o..o + c.w]);
            }
        }
    }

    /// The frame's values inside the crop, row by row.
    fn crop_into(&self, c: &Crop, out: &mut Vec<f32>) {
        out.clear();
        for r in 0..c.h {
            let o = (c.y0 + r) * self.width + c.x0;
            out.extend_from_slice(&self.centred[o..o + c.w]);
        }
    }

    /// Least-squares gain `a` and offset `b` of `centred ≈ a·img + b`, and the
    /// residual sum of squares, for an image of the crop that is zero
    /// elsewhere. Using the centred frame keeps the sums free of
    /// cancellation, so f32 lanes are accurate enough.
    fn linear_fit(&self, img: &[f32], c: &Crop) -> (f64, f64, f64) {
        let n = self.w_total;
        let (si, sii) = self.img_sums(img, c);
        let var_i = sii - si * si / n;
        let cov = self.dot_crop(img, c) - si * self.total / n;
        let a = if var_i > 0.0 { cov / var_i } else { 0.0 };
        let b = (self.total - a * si) / n;
        (
            a,
            b,
            (self.ss - self.total * self.total / n - a * cov).max(0.0),
        )
    }
}

/// `Σ x` in f32 lanes of 8, summed in f64.
fn sum(x: &[f32]) -> f64 {
    let mut acc = [0.0f32; 8];
    let mut xc = x.chunks_exact(8);
    for a in &mut xc {
        for k in 0..8 {
            acc[k] += a[k];
        }
    }
    acc.iter().map(|&v| v as f64).sum::<f64>()
        + xc.remainder().iter().map(|&v| v as f64).sum::<f64>()
}

/// `Σ x·y` in f32 lanes of 8, summed in f64 (vectorises; exact enough for normal equations).
fn dot(x: &[f32], y: &[f32]) -> f64 {
    let mut acc = [0.0f32; 8];
    let mut xc = x.chunks_exact(8);
    let mut yc = y.chunks_exact(8);
    for (a, b) in (&mut xc).zip(&mut yc) {
        for k in 0..8 {
            acc[k] += a[k] * b[k];
        }
    }
    let tail: f64 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(a, b)| (*a as f64) * (*b as f64))
        .sum();
    acc.iter().map(|&v| v as f64).sum::<f64>() + tail
}

/// `Σ x·y·z` in f32 lanes of 8, summed in f64.
fn dot3(x: &[f32], y: &[f32], z: &[f32]) -> f64 {
    let mut acc = [0.0f32; 8];
    let (mut xc, mut yc, mut zc) = (x.chunks_exact(8), y.chunks_exact(8), z.chunks_exact(8));
    for ((a, b), c) in (&mut xc).zip(&mut yc).zip(&mut zc) {
        for k in 0..8 {
            acc[k] += a[k] * b[k] * c[k];
        }
    }
    let tail: f64 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .zip(zc.remainder())
        .map(|((a, b), c)| (*a as f64) * (*b as f64) * (*c as f64))
        .sum();
    acc.iter().map(|&v| v as f64).sum::<f64>() + tail
}

/// Gauss–Newton normal equations `(H, g)` for the columns
/// `[a·J_0 … a·J_{m−1}, I, 1]` and residual `r = a·I + b − F`, weighted by
/// `w` (the crop's weights; empty: all 1), over a frame of total weight
/// `w_total` of which `image`, `jac` and `frame` hold the crop (outside it
/// `I` and `J` are zero; `frame_total` is `Σ w·F` over the frame).
#[allow(clippy::too_many_arguments)]
fn normal_equations(
    jac: &[f32],
    image: &[f32],
    frame: &[f32],
    w: &[f32],
    frame_total: f64,
    w_total: f64,
    m: usize,
    a: f64,
    b: f64,
) -> (Vec<f64>, Vec<f64>) {
    let crop = image.len();
    let p = m + 2;
    let col = |j: usize| &jac[j * crop..(j + 1) * crop];
    let residual: Vec<f32> = image
        .iter()
        .zip(frame)
        .map(|(&i, &f)| (a * i as f64 + b - f as f64) as f32)
        .collect();
    // the weighted columns: w·J and w·I (the columns themselves when unweighted)
    let (mut jw, mut iw) = (Vec::new(), Vec::new());
    if !w.is_empty() {
        jw.reserve_exact(m * crop);
        for j in 0..m {
            jw.extend(col(j).iter().zip(w).map(|(v, k)| v * k));
        }
        iw.extend(image.iter().zip(w).map(|(v, k)| v * k));
    }
    let wcol = |j: usize| {
        if w.is_empty() {
            col(j)
        } else {
            &jw[j * crop..(j + 1) * crop]
        }
    };
    let wimage: &[f32] = if w.is_empty() { image } else { &iw };
    let mut h = vec![0.0f64; p * p];
    let mut g = vec![0.0f64; p];
    for i in 0..m {
        for j in 0..=i {
            h[i * p + j] = a * a * dot(wcol(i), col(j));
        }
        h[m * p + i] = a * dot(wimage, col(i));
        h[(m + 1) * p + i] = a * sum(wcol(i));
        g[i] = a * dot(wcol(i), &residual);
    }
    let si = sum(wimage);
    h[m * p + m] = dot(wimage, image);
    h[(m + 1) * p + m] = si;
    h[(m + 1) * p + m + 1] = w_total;
    g[m] = dot(wimage, &residual);
    // Σ over the whole frame of w·(a·I + b − F)
    g[m + 1] = a * si + b * w_total - frame_total;
    for i in 0..p {
        for j in 0..i {
            h[j * p + i] = h[i * p + j];
        }
    }
    (h, g)
}

/// Projections and cropped renders of a model for one frame, with the
/// buffers reused between evaluations.
struct Projector<'a> {
    model: &'a FitModel,
    width: usize,
    height: usize,
    pts: Vec<[f32; 3]>,
    uv: Vec<f32>,
    img: Vec<f32>,
    scratch: Scratch,
}

impl<'a> Projector<'a> {
    fn new(model: &'a FitModel, width: usize, height: usize) -> Self {
        Self {
            model,
            width,
            height,
            pts: Vec::with_capacity(model.base.len()),
            uv: Vec::with_capacity(2 * model.base.len()),
            img: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    /// Model points at the state's shape parameter, into `self.pts`.
    fn points(&mut self, shape: f64) {
        self.pts.clear();
        match &self.model.mode {
            Some(m) => self.pts.extend(
                self.model
                    .base
                    .iter()
                    .zip(m)
                    .map(|(p, d)| [0, 1, 2].map(|k| p[k] + shape as f32 * d[k])),
            ),
            None => self.pts.extend_from_slice(&self.model.base),
        }
    }

    /// Pixel positions of the points at a state, into `self.uv`
    /// (the same arithmetic as [`crate::render::cpu::project_points`]).
    fn project(&mut self, st: &FitState) {
        self.points(st.shape);
        let s = st.scale;
        let (cu, cv) = (
            self.width as f64 / 2.0 + st.pose.shift[0],
            self.height as f64 / 2.0 + st.pose.shift[1],
        );
        let r = st.pose.q.to_matrix().map(|row| row.map(|x| x * s));
        self.uv.clear();
        self.uv.extend(self.pts.iter().flat_map(|p| {
            let p = [p[0] as f64, p[1] as f64, p[2] as f64];
            [
                (cu + r[0][0] * p[0] + r[0][1] * p[1] + r[0][2] * p[2]) as f32,
                (cv + r[1][0] * p[0] + r[1][1] * p[1] + r[1][2] * p[2]) as f32,
            ]
        }));
    }

    /// Renders the state into `self.img` over the points' bounding box
    /// (plus the ±6σ reach of the PSF, which holds every non-zero pixel of
    /// the full render). `Err(true)`: nothing lands in the frame;
    /// `Err(false)`: σ is not a positive number.
    fn render_crop(&mut self, st: &FitState) -> Result<Crop, bool> {
        self.project(st);
        let sigma = st.sigma as f32;
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(false);
        }
        let margin = kernel::TRUNCATE_SIGMAS * sigma + 2.0;
        let c = Crop::around(&self.uv, margin, self.width, self.height).ok_or(true)?;
        c.shift(&mut self.uv);
        self.img.resize(c.w * c.h, 0.0);
        kernel::splat_frame_fit(
            &self.uv,
            &self.model.weights,
            sigma,
            c.w,
            c.h,
            &mut self.scratch,
            &mut self.img,
        );
        Ok(c)
    }

    /// The least-squares cost `min_{a,b} ‖a·I + b − F‖²` of a state, from
    /// the cropped render.
    fn cost(&mut self, st: &FitState, target: &CentredFrame) -> f64 {
        match self.render_crop(st) {
            Ok(c) => target.linear_fit(&self.img, &c).2,
            // nothing in view: the cost of a blank render
            Err(true) => target.ss - target.total * target.total / target.w_total,
            Err(false) => f64::INFINITY,
        }
    }

    /// The NCC of the state's render with the frame ([`score`]), from the
    /// cropped render: `1 − cost/Σ(F − F̄)²` is the squared NCC, and its
    /// sign is that of the fitted gain.
    fn ncc(&mut self, st: &FitState, target: &CentredFrame) -> f64 {
        let Ok(c) = self.render_crop(st) else {
            return 0.0;
        };
        let n = target.centred.len() as f64;
        let si = sum(&self.img);
        let var_i = dot(&self.img, &self.img) - si * si / n;
        let var_f = target.ss - target.total * target.total / n;
        let cov = target.dot_crop(&self.img, &c) - si * target.total / n;
        if var_i <= 0.0 || var_f <= 0.0 {
            0.0
        } else {
            cov / (var_i * var_f).sqrt()
        }
    }
}

/// Refines `start` against `frame` (`width × height`, row-major, finite)
/// by least squares with every pixel weighted alike.
pub fn refine(
    frame: &[f32],
    width: usize,
    height: usize,
    model: &FitModel,
    start: &FitState,
    cfg: &RefineConfig,
) -> Result<RefineResult, RefineError> {
    check_frame(frame, width, height)?;
    let target = CentredFrame::new(frame, width);
    let (state, iterations, converged, _) = levenberg_marquardt(model, start, cfg, &target, height);
    let mut proj = Projector::new(model, width, height);
    Ok(RefineResult {
        state,
        score: proj.ncc(&state, &target),
        iterations,
        converged,
        axis_sd_deg: f64::NAN,
    })
}

/// Refines `start` by least squares with each pixel weighted by the inverse
/// of its expected variance, `1 / (signal + floor·peak)`, where the signal
/// is `start`'s fitted render above the offset. For a sparsely labelled
/// particle against a smooth model the misfit is the labelling's
/// lumpiness, whose variance grows with the signal (each label adds a PSF
/// of the same brightness): these weights match that, where uniform ones
/// let the bright lumps pull the fit. `floor` (a fraction of the peak)
/// stands for the background's noise and keeps dark pixels from weighing
/// without bound. Start from a converged [`refine`]: the weights come from
/// its render. The score is the plain NCC, as for [`refine`].
pub fn refine_weighted(
    frame: &[f32],
    width: usize,
    height: usize,
    model: &FitModel,
    start: &FitState,
    cfg: &RefineConfig,
    floor: f64,
) -> Result<RefineResult, RefineError> {
    check_frame(frame, width, height)?;
    let plain = CentredFrame::new(frame, width);
    let mut proj = Projector::new(model, width, height);
    let Some(w) = signal_weights(&plain, &mut proj, start, floor) else {
        return refine(frame, width, height, model, start, cfg);
    };
    let target = CentredFrame::weighted(frame, width, w);
    let (state, iterations, converged, lin) =
        levenberg_marquardt(model, start, cfg, &target, height);
    // the curvature and residuals at the end: the last linearisation, or,
    // when a step was taken from it, a new one there (one more derivative
    // render; the step's first-order residuals leave the figure 10–30 %
    // off from frame to frame)
    let at_end = lin.and_then(|mut l| {
        if l.step.is_some() {
            l.step = None;
            l.at(&mut proj, &state, &target, height).then_some(l)
        } else {
            Some(l)
        }
    });
    let axis_sd_deg = at_end
        .and_then(|l| l.rotation_covariance(&target))
        .map_or(f64::NAN, |c| axis_standard_error(state.pose.q, &c));
    Ok(RefineResult {
        state,
        score: proj.ncc(&state, &plain),
        iterations,
        converged,
        axis_sd_deg,
    })
}

/// The weights of [`refine_weighted`] from `state`'s fitted render: `1 /
/// (signal + floor·peak)`, scaled so that a background pixel weighs 1;
/// `None` when the render has no signal or `floor` is not positive.
fn signal_weights(
    plain: &CentredFrame,
    proj: &mut Projector<'_>,
    state: &FitState,
    floor: f64,
) -> Option<Vec<f32>> {
    let width = plain.width;
    // the state's fitted signal a·I over the frame (zero outside its crop)
    let mut signal = vec![0.0f32; plain.centred.len()];
    if let Ok(c) = proj.render_crop(state) {
        let (a, _, _) = plain.linear_fit(&proj.img, &c);
        for (r, row) in proj.img.chunks_exact(c.w).enumerate() {
            let o = (c.y0 + r) * width + c.x0;
            for (d, &v) in signal[o..o + c.w].iter_mut().zip(row) {
                *d = (a * v as f64).max(0.0) as f32;
            }
        }
    }
    let peak = signal.iter().fold(0.0f32, |m, &v| m.max(v));
    if !(peak > 0.0 && floor > 0.0 && floor.is_finite()) {
        return None;
    }
    let add = (floor * peak as f64) as f32;
    Some(signal.iter().map(|&v| add / (v + add)).collect())
}

/// The model linearised at a state over the crop where its derivatives
/// live: the render, the derivative images, the frame and weights there,
/// and the best gain and offset. Buffers are reused between states.
struct Linear {
    layout: Layout,
    /// Derivative images: the geometric parameters, then ln σ if fitted.
    n_img: usize,
    dudv: Vec<f32>,
    image: Vec<f32>,
    jac: Vec<f32>,
    frame_crop: Vec<f32>,
    w_crop: Vec<f32>,
    crop: Crop,
    a: f64,
    b: f64,
    /// The step taken from this linearisation, if one was: the residuals
    /// at its end are the linearisation's moved by it.
    step: Option<Vec<f64>>,
}

impl Linear {
    /// Derivatives reach ±4σ, less than the exact cost needs.
    const RADIUS_SIGMAS: f32 = 4.0;

    fn new(model: &FitModel, cfg: &RefineConfig) -> Self {
        let layout = Layout {
            shape: cfg.fit_shape && model.mode.is_some(),
            log_sigma: cfg.fit_sigma,
            scale: cfg.fit_scale,
        };
        let k = layout.geometric();
        Self {
            n_img: k + usize::from(layout.log_sigma),
            dudv: vec![0.0; 2 * model.base.len() * k],
            layout,
            image: Vec::new(),
            jac: Vec::new(),
            frame_crop: Vec::new(),
            w_crop: Vec::new(),
            crop: Crop {
                x0: 0,
                y0: 0,
                w: 0,
                h: 0,
            },
            a: 0.0,
            b: 0.0,
            step: None,
        }
    }

    /// Parameters of the normal equations: the images', gain and offset.
    fn params(&self) -> usize {
        self.n_img + 2
    }

    /// Linearises at `state`; `false` when nothing of the model is in view.
    fn at(
        &mut self,
        proj: &mut Projector<'_>,
        state: &FitState,
        target: &CentredFrame,
        height: usize,
    ) -> bool {
        let (model, layout) = (proj.model, &self.layout);
        let k = layout.geometric();
        // per-point positions and sensitivities at the state
        proj.project(state);
        let rot = state.pose.q.to_matrix();
        let s = state.scale;
        for i in 0..model.base.len() {
            let q = proj.pts[i].map(|x| x as f64);
            let c = [0, 1, 2].map(|r| rot[r][0] * q[0] + rot[r][1] * q[1] + rot[r][2] * q[2]);
            let d = &mut self.dudv[i * 2 * k..(i + 1) * 2 * k];
            // ∂(u, v)/∂θ: ω_x, ω_y, ω_z (camera-frame rotation), shift x, shift y
            let mut sens = [[0.0f64; 2]; 7];
            sens[..5].copy_from_slice(&[
                [0.0, -s * c[2]],
                [s * c[2], 0.0],
                [-s * c[1], s * c[0]],
                [1.0, 0.0],
                [0.0, 1.0],
            ]);
            let mut j = 5;
            if layout.scale {
                sens[j] = [s * c[0], s * c[1]]; // ln scale
                j += 1;
            }
            if let (true, Some(m)) = (layout.shape, &model.mode) {
                let t = m[i].map(|x| x as f64);
                sens[j] =
                    [0, 1].map(|r| s * (rot[r][0] * t[0] + rot[r][1] * t[1] + rot[r][2] * t[2]));
                // shape
            }
            for (dst, sv) in d.chunks_exact_mut(2).zip(&sens) {
                dst[0] = sv[0] as f32;
                dst[1] = sv[1] as f32;
            }
        }
        let sigma = state.sigma as f32;
        // the derivative images are zero beyond the points' reach: work on that crop
        let margin = Self::RADIUS_SIGMAS * sigma + 2.0;
        let Some(crop) = Crop::around(&proj.uv, margin, target.width, height) else {
            return false;
        };
        crop.shift(&mut proj.uv);
        let cplane = crop.w * crop.h;
        self.image.resize(cplane, 0.0);
        self.jac.resize(self.n_img * cplane, 0.0);
        let spec = JacobianSpec {
            width: crop.w,
            height: crop.h,
            sigma,
            params: k,
            log_sigma: layout.log_sigma,
            radius_sigmas: Self::RADIUS_SIGMAS,
        };
        let (image, jac) = (&mut self.image, &mut self.jac);
        splat_frame_jacobian(&proj.uv, &self.dudv, &model.weights, &spec, image, jac);
        target.crop_into(&crop, &mut self.frame_crop);
        (self.a, self.b, _) = target.linear_fit(&self.image, &crop);
        target.weights_crop(&crop, &mut self.w_crop);
        self.crop = crop;
        true
    }

    /// The Gauss–Newton normal equations `(H, g)` at the state.
    fn normal_equations(&self, target: &CentredFrame) -> (Vec<f64>, Vec<f64>) {
        normal_equations(
            &self.jac,
            &self.image,
            &self.frame_crop,
            &self.w_crop,
            target.total,
            target.w_total,
            self.n_img,
            self.a,
            self.b,
        )
    }

    /// The rotation's covariance by the sandwich `H⁻¹·M·H⁻¹` with
    /// `M = Σ w²·r²·g·gᵀ` over the pixels (`g` the columns of the fit,
    /// `r` the residual): each pixel's own squared residual stands for its
    /// variance, so it holds for Poisson noise, whose variance follows the
    /// signal, as for a background-limited frame. `None` when `H` is
    /// singular.
    fn rotation_covariance(&self, target: &CentredFrame) -> Option<[[f64; 3]; 3]> {
        let (h, _) = self.normal_equations(target);
        let p = self.params();
        let (m, cplane) = (self.n_img, self.image.len());
        // (w·r)² per pixel of the crop, with r the residual at the end of
        // the step taken from here (to first order), then M's entries as
        // weighted dot products of the columns a·J_j, I and 1 (vectorised,
        // as for H)
        let moved = |i: usize| {
            self.step.as_ref().map_or(0.0, |st| {
                let jac: f64 = (0..m)
                    .map(|j| self.a * f64::from(self.jac[j * cplane + i]) * st[j])
                    .sum();
                jac + f64::from(self.image[i]) * st[m] + st[m + 1]
            })
        };
        let wr2: Vec<f32> = (0..cplane)
            .map(|i| {
                let w = self.w_crop.get(i).map_or(1.0, |&w| f64::from(w));
                let r = self.a * f64::from(self.image[i]) + self.b - f64::from(self.frame_crop[i])
                    + moved(i);
                (w * r).powi(2) as f32
            })
            .collect();
        let ones = vec![1.0f32; cplane];
        let col = |j: usize| -> &[f32] {
            match j {
                j if j < m => &self.jac[j * cplane..(j + 1) * cplane],
                j if j == m => &self.image,
                _ => &ones,
            }
        };
        let scale = |j: usize| if j < m { self.a } else { 1.0 };
        let mut meat = vec![0.0f64; p * p];
        for u in 0..p {
            for v in 0..=u {
                meat[u * p + v] = scale(u) * scale(v) * dot3(col(u), col(v), &wr2);
            }
        }
        let crop_offset = sum(&wr2);
        // outside the crop only the offset's column is non-zero
        let b = self.b + self.step.as_ref().map_or(0.0, |st| st[m + 1]);
        meat[p * p - 1] += target.offset_meat(b) - crop_offset;
        for u in 0..p {
            for v in 0..u {
                meat[v * p + u] = meat[u * p + v];
            }
        }
        // X = H⁻¹'s first three columns; the rotation block is Xᵀ·M·X. H is
        // singular where the image changes only to second order with the
        // tilt (a torus seen face-on or edge-on, where the tilt's two signs
        // give mirror images): no linear standard error there
        let x: Vec<Vec<f64>> = (0..3)
            .map(|j| {
                let mut e = vec![0.0; p];
                e[j] = 1.0;
                solve_spd(&h, &e, p)
            })
            .collect::<Option<_>>()?;
        let mut cov = [[0.0; 3]; 3];
        for a in 0..3 {
            for b in 0..3 {
                let mut sum = 0.0;
                for u in 0..p {
                    let mu: f64 = (0..p).map(|v| meat[u * p + v] * x[b][v]).sum();
                    sum += x[a][u] * mu;
                }
                cov[a][b] = sum;
            }
        }
        cov.iter().flatten().all(|v| v.is_finite()).then_some(cov)
    }
}

/// Levenberg–Marquardt on the (weighted) least-squares cost against
/// `target`, from `start`: the final state, the iterations run, whether it
/// converged, and the last linearisation (`None` when nothing was in view).
fn levenberg_marquardt(
    model: &FitModel,
    start: &FitState,
    cfg: &RefineConfig,
    target: &CentredFrame,
    height: usize,
) -> (FitState, usize, bool, Option<Linear>) {
    let mut lin = Linear::new(model, cfg);
    let p = lin.params();
    let mut state = *start;
    let mut proj = Projector::new(model, target.width, height);
    let mut cost = proj.cost(&state, target);
    let mut lambda = 1e-3;
    let mut converged = false;
    let mut iterations = 0;
    let mut linearised = false;
    for _ in 0..cfg.max_iters {
        iterations += 1;
        linearised = lin.at(&mut proj, &state, target, height);
        lin.step = None;
        if !linearised {
            converged = true; // nothing in view: nothing to fit
            break;
        }
        let (h, g) = lin.normal_equations(target);
        // damped steps until one lowers the cost
        let mut improved = false;
        for _ in 0..8 {
            let mut hd = h.clone();
            for i in 0..p {
                hd[i * p + i] += lambda * h[i * p + i].max(1e-12);
            }
            let neg_g: Vec<f64> = g.iter().map(|x| -x).collect();
            let Some(step) = solve_spd(&hd, &neg_g, p) else {
                lambda *= 10.0;
                continue;
            };
            let cand = apply_step(&state, &step, &lin.layout);
            let c = proj.cost(&cand, target);
            if c < cost {
                let rel = (cost - c) / cost.max(1e-300);
                state = cand;
                lin.step = Some(step);
                cost = c;
                lambda = (lambda / 3.0).max(1e-9);
                improved = true;
                if rel < cfg.tolerance {
                    converged = true;
                }
                break;
            }
            lambda *= 4.0;
        }
        if !improved {
            // no damped step lowers the cost: a (local) minimum
            converged = true;
        }
        if converged {
            break;
        }
    }
    (state, iterations, converged, linearised.then_some(lin))
}

/// The axis's standard error in degrees for a rotation covariance `cov`
/// (of a camera-frame increment ω, `R ← exp([ω]×)·R`) at the rotation `q`:
/// the axis `a` moves by `ω × a`, whose mean square is `tr Σ − aᵀΣa`.
pub fn axis_standard_error(q: Quat, cov: &[[f64; 3]; 3]) -> f64 {
    let a = q.axis();
    let trace = cov[0][0] + cov[1][1] + cov[2][2];
    let along: f64 = (0..3)
        .map(|i| (0..3).map(|j| a[i] * cov[i][j] * a[j]).sum::<f64>())
        .sum();
    (trace - along).max(0.0).sqrt().to_degrees()
}

/// The standard error of the axis of a fit at `state` to `frame`, degrees
/// (NaN when the fit's curvature is singular or nothing is in view): the
/// sandwich covariance of the least-squares fit that [`refine`] (or, with
/// `floor`, [`refine_weighted`]) ends at. It is the spread that the
/// frame's pixel noise alone would give; a particle's labelling (sparse,
/// uneven sites) adds error that no single frame shows.
pub fn fit_axis_standard_error(
    frame: &[f32],
    width: usize,
    height: usize,
    model: &FitModel,
    state: &FitState,
    cfg: &RefineConfig,
    floor: Option<f64>,
) -> f64 {
    if check_frame(frame, width, height).is_err() {
        return f64::NAN;
    }
    let plain = CentredFrame::new(frame, width);
    let mut proj = Projector::new(model, width, height);
    let target = match floor.and_then(|f| signal_weights(&plain, &mut proj, state, f)) {
        Some(w) => CentredFrame::weighted(frame, width, w),
        None => plain,
    };
    let mut lin = Linear::new(model, cfg);
    if !lin.at(&mut proj, state, &target, height) {
        return f64::NAN;
    }
    lin.rotation_covariance(&target)
        .map_or(f64::NAN, |c| axis_standard_error(state.pose.q, &c))
}

fn apply_step(state: &FitState, step: &[f64], layout: &Layout) -> FitState {
    let omega = [step[0], step[1], step[2]];
    let q: Quat = Quat::from_rotvec(omega) * state.pose.q;
    let mut next = FitState {
        pose: Pose::new(
            q,
            [state.pose.shift[0] + step[3], state.pose.shift[1] + step[4]],
        ),
        ..*state
    };
    let mut j = 5;
    if layout.scale {
        next.scale = (state.scale * step[j].clamp(-0.5, 0.5).exp()).clamp(0.05, 20.0);
        j += 1;
    }
    if layout.shape {
        next.shape = (state.shape + step[j]).max(0.0);
        j += 1;
    }
    if layout.log_sigma {
        next.sigma = (state.sigma * step[j].clamp(-0.5, 0.5).exp()).clamp(0.3, 30.0);
    }
    next
}

/// Keeps `kernel` in the public path for callers that need raw access.
pub use kernel::TRUNCATE_SIGMAS;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Symmetry;
    use crate::render::scene::{render_state, score};

    #[test]
    fn frames_that_cannot_be_fitted_say_why() {
        let msg = |f: &[f32], w, h| check_frame(f, w, h).unwrap_err().to_string();
        assert!(msg(&[0.0; 15], 5, 3).contains("5×3 frame is too small"));
        assert!(msg(&[0.0; 15], 4, 4).contains("15 pixels for a 4×4 frame"));
        let mut f = vec![1.0; 16];
        f[6] = f32::NAN;
        assert!(msg(&f, 4, 4).contains("pixel (2, 1) is NaN"));
        assert!(check_frame(&[1.0; 16], 4, 4).is_ok());
    }

    fn frame_of(model: &FitModel, st: &FitState, size: usize) -> Vec<f32> {
        // a bright particle over an offset, as a camera would see it
        render_state(model, st, size, size, &mut Scratch::default())
            .iter()
            .map(|v| 300.0 * v + 100.0)
            .collect()
    }

    #[test]
    fn recovers_a_perturbed_torus_pose_exactly_without_noise() {
        let truth_model = FitModel::torus(20.0, 5.0, 1.6);
        let truth = FitState {
            pose: Pose::new(Quat::from_euler_zyz_deg(35.0, 55.0, 0.0), [2.5, -1.5]),
            scale: 1.0,
            sigma: 1.6,
            shape: 5.0,
        };
        let frame = frame_of(&truth_model, &truth, 96);
        let start = FitState {
            pose: Pose::new(Quat::from_euler_zyz_deg(45.0, 45.0, 0.0), [0.0, 0.0]),
            scale: 1.1,
            sigma: 2.0,
            shape: 4.0,
        };
        let before = score(&frame, 96, 96, &truth_model, &start);
        let r = refine(
            &frame,
            96,
            96,
            &truth_model,
            &start,
            &RefineConfig::default(),
        )
        .unwrap();
        let err = Symmetry::TORUS
            .axis_error(r.state.pose.q, truth.pose.q)
            .to_degrees();
        assert!(
            err < 0.05,
            "axis error {err}° after {} iterations",
            r.iterations
        );
        assert!(
            r.score > 0.9999 && r.score > before,
            "score {} (start {before})",
            r.score
        );
        assert!((r.state.sigma - 1.6).abs() < 0.01, "σ {}", r.state.sigma);
        assert!(
            (r.state.scale - 1.0).abs() < 0.01,
            "scale {}",
            r.state.scale
        );
        assert!((r.state.shape - 5.0).abs() < 0.1, "tube {}", r.state.shape);
        assert!(
            (r.state.pose.shift[0] - 2.5).abs() < 0.02
                && (r.state.pose.shift[1] + 1.5).abs() < 0.02
        );
        assert!(r.converged);
    }

    #[test]
    fn the_axis_standard_error_is_the_spread_of_fits_over_noise() {
        // the exact model under Poisson noise, 60 realisations: the spread of
        // the fitted axes about the truth against the standard error each
        // fit reports (a plain fit's and the weighted pass's)
        use rand::SeedableRng;
        use rand_distr::{Distribution, Poisson};
        let model = FitModel::torus(20.0, 5.0, 1.6);
        let truth = FitState {
            pose: Pose::new(Quat::from_euler_zyz_deg(25.0, 55.0, 0.0), [1.0, -2.0]),
            scale: 1.0,
            sigma: 1.6,
            shape: 5.0,
        };
        let clean: Vec<f32> = render_state(&model, &truth, 80, 80, &mut Scratch::default())
            .iter()
            .map(|v| 40.0 * v + 10.0)
            .collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let cfg = RefineConfig::default();
        for floor in [None, Some(0.05)] {
            // Σ err², Σ sd² (a separate linearisation at the fit) and, for
            // the weighted pass, Σ of its own figure squared
            let (mut sq_err, mut sq_sd, mut sq_own) = (0.0, 0.0, 0.0);
            let runs = 60;
            for _ in 0..runs {
                let noisy: Vec<f32> = clean
                    .iter()
                    .map(|&m| Poisson::new(f64::from(m)).unwrap().sample(&mut rng) as f32)
                    .collect();
                let r = match floor {
                    Some(f) => refine_weighted(&noisy, 80, 80, &model, &truth, &cfg, f).unwrap(),
                    None => refine(&noisy, 80, 80, &model, &truth, &cfg).unwrap(),
                };
                let sd = fit_axis_standard_error(&noisy, 80, 80, &model, &r.state, &cfg, floor);
                let err = Symmetry::TORUS
                    .axis_error(r.state.pose.q, truth.pose.q)
                    .to_degrees();
                sq_err += err * err;
                sq_sd += sd * sd;
                sq_own += r.axis_sd_deg * r.axis_sd_deg;
            }
            let ratio = (sq_err / sq_sd).sqrt();
            assert!(
                (0.8..1.25).contains(&ratio),
                "{floor:?}: rms error / rms sd = {ratio}"
            );
            match floor {
                // the weighted pass's own figure, from its last linearisation
                Some(_) => {
                    let own = (sq_err / sq_own).sqrt();
                    assert!((0.8..1.25).contains(&own), "rms error / rms own sd = {own}");
                }
                None => assert!(sq_own.is_nan(), "a plain refine computes none"),
            }
        }
    }

    #[test]
    fn weighted_refinement_recovers_an_exact_pose_without_noise() {
        // with no misfit the weighted cost's minimum is the truth, whatever
        // the weights: this checks the weighted normal equations
        let model = FitModel::torus(20.0, 5.0, 1.6);
        let truth = FitState {
            pose: Pose::new(Quat::from_euler_zyz_deg(-70.0, 40.0, 0.0), [-3.0, 2.0]),
            scale: 1.0,
            sigma: 1.6,
            shape: 5.0,
        };
        let frame = frame_of(&model, &truth, 96);
        let start = FitState {
            pose: Pose::new(Quat::from_euler_zyz_deg(-62.0, 46.0, 0.0), [-2.0, 1.0]),
            scale: 1.05,
            sigma: 1.8,
            shape: 4.5,
        };
        let cfg = RefineConfig::default();
        let r = refine_weighted(&frame, 96, 96, &model, &start, &cfg, 0.01).unwrap();
        let err = Symmetry::TORUS
            .axis_error(r.state.pose.q, truth.pose.q)
            .to_degrees();
        assert!(
            err < 0.05,
            "axis error {err}° after {} iterations",
            r.iterations
        );
        assert!((r.state.sigma - 1.6).abs() < 0.01, "σ {}", r.state.sigma);
        assert!(
            (r.state.pose.shift[0] + 3.0).abs() < 0.02
                && (r.state.pose.shift[1] - 2.0).abs() < 0.02,
            "shift {:?}",
            r.state.pose.shift
        );
        assert!(r.score > 0.9999, "score {}", r.score);
    }

    #[test]
    fn nearly_uniform_weights_give_the_plain_fit() {
        let model = FitModel::torus(20.0, 5.0, 1.6);
        let truth = FitState {
            pose: Pose::new(Quat::from_euler_zyz_deg(10.0, 65.0, 0.0), [1.0, 0.5]),
            scale: 1.0,
            sigma: 1.6,
            shape: 5.0,
        };
        // a misfit the weights would act on: a bright spot off the ring
        let mut frame = frame_of(&model, &truth, 96);
        for (i, v) in frame.iter_mut().enumerate() {
            let (x, y) = ((i % 96) as f32 - 70.0, (i / 96) as f32 - 40.0);
            *v += 200.0 * (-(x * x + y * y) / 8.0).exp();
        }
        let start = FitState {
            pose: Pose::new(Quat::from_euler_zyz_deg(16.0, 60.0, 0.0), [0.0, 0.0]),
            ..truth
        };
        let cfg = RefineConfig::default();
        let plain = refine(&frame, 96, 96, &model, &start, &cfg).unwrap();
        // floor ≫ 1: every weight is 1 within 1e-6
        let near = refine_weighted(&frame, 96, 96, &model, &start, &cfg, 1e6).unwrap();
        assert!(
            plain.state.pose.q.angle_to(near.state.pose.q).to_degrees() < 1e-3,
            "{:?} vs {:?}",
            plain.state,
            near.state
        );
        assert!((plain.score - near.score).abs() < 1e-6);
        // a real floor moves the fit (the weights do something)
        let weighted = refine_weighted(&frame, 96, 96, &model, &plain.state, &cfg, 0.01).unwrap();
        assert!(
            plain
                .state
                .pose
                .q
                .angle_to(weighted.state.pose.q)
                .to_degrees()
                > 1e-3
        );
    }

    #[test]
    fn signal_weights_fit_sparse_particles_closer_than_uniform_ones() {
        use crate::synth::{generate_frame, SynthConfig};
        // 300 labels of 400 photons on a thin torus: the misfit against a
        // smooth torus is the labelling's lumpiness
        let cfg = SynthConfig {
            sites: 300,
            photons: crate::synth::Range::fixed(400.0),
            ..SynthConfig::thin_torus(24, 77)
        };
        let model = FitModel::torus(20.0, 5.0, 1.6);
        let rc = RefineConfig::default();
        let (mut plain, mut weighted) = (Vec::new(), Vec::new());
        for k in 0..cfg.frames {
            let f = generate_frame(&cfg, k).unwrap();
            let truth = f.truth.pose;
            let start = FitState {
                pose: truth,
                scale: 1.0,
                sigma: 1.6,
                shape: 5.0,
            };
            let (w, h) = (f.image.width, f.image.height);
            let p = refine(&f.image.data, w, h, &model, &start, &rc).unwrap();
            let q = refine_weighted(&f.image.data, w, h, &model, &p.state, &rc, 0.01).unwrap();
            let err = |s: &FitState| Symmetry::TORUS.axis_error(s.pose.q, truth.q).to_degrees();
            plain.push(err(&p.state));
            weighted.push(err(&q.state));
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (mp, mw) = (median(&mut plain), median(&mut weighted));
        eprintln!("median axis error: weighted {mw:.3}°, uniform {mp:.3}°");
        assert!(
            mw < 0.9 * mp,
            "median axis error: weighted {mw}°, uniform {mp}°"
        );
    }

    #[test]
    fn refines_a_torus_cut_by_the_frame_edge() {
        // the cropped renders and Jacobians must agree with full frames at the border
        let model = FitModel::torus(20.0, 5.0, 1.6);
        let truth = FitState {
            pose: Pose::new(Quat::from_euler_zyz_deg(-20.0, 60.0, 0.0), [38.0, -30.0]),
            scale: 1.0,
            sigma: 1.6,
            shape: 5.0,
        };
        let frame = frame_of(&model, &truth, 96);
        let start = FitState {
            pose: Pose::new(Quat::from_euler_zyz_deg(-15.0, 55.0, 0.0), [37.0, -29.0]),
            ..truth
        };
        let r = refine(&frame, 96, 96, &model, &start, &RefineConfig::default()).unwrap();
        let err = Symmetry::TORUS
            .axis_error(r.state.pose.q, truth.pose.q)
            .to_degrees();
        assert!(err < 0.05, "axis error {err}°");
        let full = score(&frame, 96, 96, &model, &r.state);
        assert!((r.score - full).abs() < 1e-5, "{} vs {full}", r.score);
    }

    #[test]
    fn nan_frames_are_rejected() {
        let m = FitModel::torus(10.0, 2.0, 1.5);
        let mut frame = vec![0.0f32; 32 * 32];
        frame[40] = f32::NAN;
        let st = FitState {
            pose: Pose::default(),
            scale: 1.0,
            sigma: 1.5,
            shape: 2.0,
        };
        let e = refine(&frame, 32, 32, &m, &st, &RefineConfig::default()).unwrap_err();
        assert!(e.to_string().contains("(8, 1)"), "{e}");
    }
}
