//! A direct per-pixel evaluation of the splat formula in f64.
//!
//! It is slow (`N·H·W` exponentials) and exists to check the fast renderers.

use super::SplatParams;

/// Renders `points` (model frame, pixels) with rotation `rot` (row-major,
/// model → camera) and `shift` (pixels from the image centre).
pub fn render_naive(
    points: &[[f32; 3]],
    weights: &[f32],
    rot: &[[f64; 3]; 3],
    shift: [f64; 2],
    params: &SplatParams,
) -> Vec<f64> {
    let (w, h) = (params.width, params.height);
    let sigma = params.sigma as f64;
    let s = params.scale as f64;
    let norm = 1.0 / (2.0 * std::f64::consts::PI * sigma * sigma);
    let mut out = vec![0.0; w * h];
    for (p, &wt) in points.iter().zip(weights) {
        let p = [p[0] as f64, p[1] as f64, p[2] as f64];
        let cx = rot[0][0] * p[0] + rot[0][1] * p[1] + rot[0][2] * p[2];
        let cy = rot[1][0] * p[0] + rot[1][1] * p[1] + rot[1][2] * p[2];
        let u = w as f64 / 2.0 + shift[0] + s * cx;
        let v = h as f64 / 2.0 + shift[1] + s * cy;
        for r in 0..h {
            for c in 0..w {
                let dx = c as f64 + 0.5 - u;
                let dy = r as f64 + 0.5 - v;
                out[r * w + c] +=
                    wt as f64 * norm * (-(dx * dx + dy * dy) / (2.0 * sigma * sigma)).exp();
            }
        }
    }
    out
}
