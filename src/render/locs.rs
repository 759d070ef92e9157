//! Rendering a localisation table into an image, as SMLM software does.
//!
//! * [`LocMode::Blur`] — Picasso's "individual blur": each localisation is a
//!   normalised Gaussian `1/(2πσ²)·exp(−d²/2σ²)` of σ = max(its precision, a
//!   minimum blur), in display pixels, evaluated at pixel centres and cut at
//!   ±3σ on each axis, so a render at any pixel size integrates to about
//!   the number of localisations.
//! * [`LocMode::Histogram`] — the count of localisations per pixel.
//!
//! The view ([`LocView`]) is a window of the table's nanometre plane at a
//! chosen pixel size, so zooming re-renders from the table instead of
//! enlarging a bitmap. The image is split into bands of rows rendered in
//! parallel; each localisation is bucketed into the bands its ±3σ footprint
//! touches. This CPU renderer is the reference and the headless path.

use rayon::prelude::*;

/// How localisations become intensity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LocMode {
    /// Gaussian per localisation, σ = max(precision, `min_blur_nm`).
    Blur { min_blur_nm: f32 },
    /// Count per pixel.
    Histogram,
}

/// A window of the nanometre plane: pixel `(c, r)` covers
/// `origin + [c, c+1) × [r, r+1) · pixel_nm`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocView {
    pub origin_nm: [f64; 2],
    pub pixel_nm: f64,
    pub width: usize,
    pub height: usize,
}

impl LocView {
    /// The origin and size in pixels (uncapped, so perhaps huge or not
    /// finite) of [`LocView::covering`]'s view.
    pub fn covering_size(
        extent_nm: [f32; 4],
        pixel_nm: f64,
        margin_nm: f64,
    ) -> ([f64; 2], f64, f64) {
        let x0 = f64::from(extent_nm[0]) - margin_nm;
        let y0 = f64::from(extent_nm[1]) - margin_nm;
        let w = ((f64::from(extent_nm[2]) + margin_nm - x0) / pixel_nm)
            .ceil()
            .max(1.0);
        let h = ((f64::from(extent_nm[3]) + margin_nm - y0) / pixel_nm)
            .ceil()
            .max(1.0);
        ([x0, y0], w, h)
    }

    /// The view of `extent_nm` (`[x_min, y_min, x_max, y_max]`) plus
    /// `margin_nm` on every side at `pixel_nm`, or `None` when it would
    /// exceed `max_pixels` (or the pixel size is unusable).
    pub fn covering(
        extent_nm: [f32; 4],
        pixel_nm: f64,
        margin_nm: f64,
        max_pixels: usize,
    ) -> Option<LocView> {
        if !(pixel_nm.is_finite() && pixel_nm > 0.0) {
            return None;
        }
        let ([x0, y0], w, h) = Self::covering_size(extent_nm, pixel_nm, margin_nm);
        if w * h > max_pixels as f64 || !(w * h).is_finite() {
            return None;
        }
        Some(LocView {
            origin_nm: [x0, y0],
            pixel_nm,
            width: w as usize,
            height: h as usize,
        })
    }
}

/// Rows per parallel band.
const BAND: usize = 32;

/// Renders localisations at `x_nm`, `y_nm` (with optional per-row
/// `precision_nm`) into `view` (row-major `width × height`).
pub fn render_locs(
    x_nm: &[f32],
    y_nm: &[f32],
    precision_nm: Option<&[f32]>,
    view: &LocView,
    mode: LocMode,
) -> Vec<f32> {
    let (w, h) = (view.width, view.height);
    let mut out = vec![0f32; w * h];
    if w == 0 || h == 0 {
        return out;
    }
    let inv = 1.0 / view.pixel_nm;
    let n = x_nm.len().min(y_nm.len());
    // display-pixel coordinates and σ of every localisation, and its bands
    let bands = h.div_ceil(BAND);
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); bands];
    let mut pos: Vec<[f32; 3]> = Vec::with_capacity(n);
    for i in 0..n {
        let u = ((f64::from(x_nm[i]) - view.origin_nm[0]) * inv) as f32;
        let v = ((f64::from(y_nm[i]) - view.origin_nm[1]) * inv) as f32;
        let s = match mode {
            LocMode::Histogram => 0.0,
            LocMode::Blur { min_blur_nm } => {
                let p = precision_nm.and_then(|p| p.get(i)).copied().unwrap_or(0.0);
                (p.max(min_blur_nm) as f64 * inv) as f32
            }
        };
        pos.push([u, v, s]);
        if !(u.is_finite() && v.is_finite()) {
            continue;
        }
        let reach = 3.0 * s;
        let (lo, hi) = (v - reach, v + reach);
        if hi < 0.0 || lo >= h as f32 || u + reach < 0.0 || u - reach >= w as f32 {
            continue;
        }
        let b0 = (lo.max(0.0) as usize / BAND).min(bands - 1);
        let b1 = ((hi.max(0.0) as usize).min(h - 1) / BAND).min(bands - 1);
        for m in &mut members[b0..=b1] {
            m.push(i as u32);
        }
    }
    out.par_chunks_mut(BAND * w)
        .zip(members.par_iter())
        .enumerate()
        .for_each(|(b, (band, idx))| {
            let r0 = b * BAND;
            let rows = band.len() / w;
            let mut gx: Vec<f32> = Vec::new();
            for &i in idx {
                let [u, v, s] = pos[i as usize];
                if mode == LocMode::Histogram || s <= 0.0 {
                    let (c, r) = (u.floor(), v.floor());
                    if c >= 0.0 && (c as usize) < w && r >= r0 as f32 && (r as usize) < r0 + rows {
                        band[(r as usize - r0) * w + c as usize] += 1.0;
                    }
                    continue;
                }
                splat(band, w, r0, rows, u, v, s, &mut gx);
            }
        });
    out
}

/// Adds one Gaussian (centre `(u, v)`, σ `s`, cut at ±3σ on each axis,
/// scaled by the analytic `1/(2πσ²)` as Picasso does) to the band of `rows`
/// rows starting at image row `r0`. The sum over its pixels is close to one
/// when σ spans a pixel or more; below that, sampling at pixel centres makes
/// it depend on where the localisation falls inside its pixel (Picasso's
/// behaviour too: set a minimum blur of about a display pixel to avoid it).
#[allow(clippy::too_many_arguments)]
fn splat(
    band: &mut [f32],
    w: usize,
    r0: usize,
    rows: usize,
    u: f32,
    v: f32,
    s: f32,
    gx: &mut Vec<f32>,
) {
    let reach = 3.0 * s;
    // pixels whose centre c + ½ lies within ±3σ (before clipping to the image)
    let c_lo = (u - reach - 0.5).ceil();
    let c_hi = (u + reach - 0.5).floor() + 1.0;
    let r_lo = (v - reach - 0.5).ceil();
    let r_hi = (v + reach - 0.5).floor() + 1.0;
    if c_lo >= c_hi || r_lo >= r_hi {
        return;
    }
    let k = -0.5 / (s * s);
    let g = |d: f32| (k * d * d).exp();
    let norm = 1.0 / (std::f32::consts::TAU * s * s);
    let c0 = c_lo.max(0.0) as usize;
    let c1 = c_hi.clamp(0.0, w as f32) as usize;
    let y0 = r_lo.max(r0 as f32) as usize;
    let y1 = r_hi.clamp(0.0, (r0 + rows) as f32) as usize;
    if c0 >= c1 || y0 >= y1 {
        return;
    }
    gx.clear();
    gx.extend((c0..c1).map(|c| g(c as f32 + 0.5 - u)));
    for r in y0..y1 {
        let gy = norm * g(r as f32 + 0.5 - v);
        let row = &mut band[(r - r0) * w..(r - r0 + 1) * w];
        for (o, x) in row[c0..c1].iter_mut().zip(gx.iter()) {
            *o += gy * x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(w: usize, h: usize, px: f64) -> LocView {
        LocView {
            origin_nm: [0.0, 0.0],
            pixel_nm: px,
            width: w,
            height: h,
        }
    }

    #[test]
    fn blur_integrates_to_the_count_and_matches_the_formula() {
        // one localisation at (105, 203) nm, precision 20 nm, 10 nm pixels
        let v = view(40, 60, 10.0);
        let img = render_locs(
            &[105.0],
            &[203.0],
            Some(&[20.0]),
            &v,
            LocMode::Blur { min_blur_nm: 5.0 },
        );
        let sum: f32 = img.iter().sum();
        assert!((sum - 1.0).abs() < 0.01, "sum {sum}");
        // the value itself: pixel (10, 20) is 0.2 px from the centre in y
        let expect = (-(0.2f32 * 0.2) / 8.0).exp() / (std::f32::consts::TAU * 4.0);
        assert!(
            (img[20 * 40 + 10] - expect).abs() < 1e-7,
            "{}",
            img[20 * 40 + 10]
        );
        // the Gaussian's shape: centre (10.5, 20.3) px, σ 2 px; pixel (10, 20)
        // is 0.2 px from it in y, pixel (12, 20) 1.5 px in x as well
        let g = |dx: f32, dy: f32| (-(dx * dx + dy * dy) / 8.0).exp();
        let ratio = img[20 * 40 + 12] / img[20 * 40 + 10];
        assert!((ratio - g(2.0, 0.2) / g(0.0, 0.2)).abs() < 1e-5, "{ratio}");
        // beyond 3σ: nothing
        assert_eq!(img[20 * 40 + 17], 0.0);
    }

    #[test]
    fn minimum_blur_and_band_edges() {
        // a localisation right on a band boundary (row 32) spreads into both bands
        let v = view(16, 70, 1.0);
        let img = render_locs(
            &[8.0],
            &[32.0],
            None,
            &v,
            LocMode::Blur { min_blur_nm: 2.0 },
        );
        let above: f32 = img[..32 * 16].iter().sum();
        let below: f32 = img[32 * 16..].iter().sum();
        assert!(
            (above - below).abs() < 0.05 && (above + below - 1.0).abs() < 0.02,
            "{above} {below}"
        );
    }

    #[test]
    fn histogram_counts_and_outside_points_are_dropped() {
        let v = view(4, 4, 10.0);
        let x = [5.0, 6.0, 35.0, -1.0, f32::NAN];
        let y = [5.0, 9.0, 39.9, 5.0, 5.0];
        let img = render_locs(&x, &y, None, &v, LocMode::Histogram);
        assert_eq!(img[0], 2.0);
        assert_eq!(img[3 * 4 + 3], 1.0);
        assert_eq!(img.iter().sum::<f32>(), 3.0);
    }

    #[test]
    fn covering_views_are_capped() {
        let v = LocView::covering([0.0, 0.0, 1000.0, 500.0], 10.0, 50.0, 1 << 20).unwrap();
        assert_eq!((v.width, v.height), (110, 60));
        assert_eq!(v.origin_nm, [-50.0, -50.0]);
        assert!(LocView::covering([0.0, 0.0, 1e9, 1e9], 1.0, 0.0, 1 << 20).is_none());
        assert!(LocView::covering([0.0; 4], f64::NAN, 0.0, 100).is_none());
    }
}
