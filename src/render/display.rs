//! Display mapping on the CPU: colour maps (LUTs), contrast, Fiji-style
//! auto-contrast, histograms, the two-colour overlay, linear-fit residuals and
//! scale bars.
//!
//! Both the viewer and the headless PNG export ([`crate::export::annotate`])
//! map values to colours through this module, so an exported frame looks the
//! same as it does on screen. The GPU views upload [`Lut::table`] and
//! [`diverging_table`] as 256-entry textures.
//!
//! Values that are not finite (NaN, ±∞) never panic: they are ignored when
//! statistics are gathered and map to the bottom of a colour map (the centre
//! for the diverging residual map).

use serde::{Deserialize, Serialize};

/// A colour map from `[0, 1]` to RGBA (alpha always 255).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Lut {
    /// Black to white.
    #[default]
    Grey,
    /// White to black.
    Inverted,
    /// Matplotlib magma (black, purple, orange, pale yellow).
    Magma,
    /// Matplotlib inferno (black, purple, orange, yellow).
    Inferno,
    /// Matplotlib viridis (purple, teal, yellow).
    Viridis,
    /// Black to red to yellow to white.
    Hot,
}

impl Lut {
    /// Every colour map, in menu order.
    pub const ALL: [Lut; 6] = [
        Lut::Grey,
        Lut::Inverted,
        Lut::Magma,
        Lut::Inferno,
        Lut::Viridis,
        Lut::Hot,
    ];

    /// The name shown to users.
    pub fn name(self) -> &'static str {
        match self {
            Lut::Grey => "grey",
            Lut::Inverted => "inverted",
            Lut::Magma => "magma",
            Lut::Inferno => "inferno",
            Lut::Viridis => "viridis",
            Lut::Hot => "hot",
        }
    }

    /// Entry `i` of the 256-entry table.
    fn entry(self, i: u8) -> [u8; 4] {
        let gradient = |g: colorous::Gradient| {
            let c = g.eval_rational(usize::from(i), 256);
            [c.r, c.g, c.b, 255]
        };
        match self {
            Lut::Grey => [i, i, i, 255],
            Lut::Inverted => {
                let v = 255 - i;
                [v, v, v, 255]
            }
            Lut::Magma => gradient(colorous::MAGMA),
            Lut::Inferno => gradient(colorous::INFERNO),
            Lut::Viridis => gradient(colorous::VIRIDIS),
            Lut::Hot => {
                // three equal ramps: red, then green, then blue
                let ramp = |k: f32| {
                    let t = f32::from(i) / 255.0 * 3.0 - k;
                    (t.clamp(0.0, 1.0) * 255.0).round() as u8
                };
                [ramp(0.0), ramp(1.0), ramp(2.0), 255]
            }
        }
    }

    /// The 256-entry RGBA table: entry `i` is the colour of `t = i / 255`.
    pub fn table(self) -> [[u8; 4]; 256] {
        std::array::from_fn(|i| self.entry(i as u8))
    }

    /// The colour of `t`, clamped to `[0, 1]`; NaN maps like 0.
    pub fn map(self, t: f32) -> [u8; 4] {
        self.entry(lut_index(t))
    }
}

/// The table index of `t` in `[0, 1]` (clamped; NaN → 0).
fn lut_index(t: f32) -> u8 {
    if t.is_nan() {
        0
    } else {
        (t.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

/// The display range: `min` maps to the bottom of the colour map, `max` to the top.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contrast {
    /// Value shown as the lowest colour.
    pub min: f32,
    /// Value shown as the highest colour.
    pub max: f32,
}

impl Default for Contrast {
    /// `[0, 1]`.
    fn default() -> Self {
        Contrast { min: 0.0, max: 1.0 }
    }
}

impl Contrast {
    /// The full range of the finite values; `[0, 1]` when there are none and
    /// `[v, v + 1]` when they are all equal to `v`.
    pub fn full(data: &[f32]) -> Contrast {
        let (lo, hi) = finite_range(data).unwrap_or((0.0, 1.0));
        Contrast::ordered(lo, hi)
    }

    /// `[lo, hi]`, widened to `[lo, lo + 1]` when it is empty or degenerate.
    fn ordered(lo: f32, hi: f32) -> Contrast {
        if hi > lo && (hi - lo).is_finite() {
            Contrast { min: lo, max: hi }
        } else {
            // lo + 1 rounds back to lo for huge values; step to the next float then
            let up = lo + 1.0;
            let max = if up > lo { up } else { next_up(lo) };
            Contrast { min: lo, max }
        }
    }

    /// `v` mapped to `[0, 1]` (clamped). NaN gives 0. With an empty or
    /// inverted range, values above `min` give 1 and the rest 0.
    pub fn normalise(&self, v: f32) -> f32 {
        if v.is_nan() {
            return 0.0;
        }
        let span = f64::from(self.max) - f64::from(self.min);
        if !(span > 0.0 && span.is_finite()) {
            return if v > self.min { 1.0 } else { 0.0 };
        }
        let t = (f64::from(v) - f64::from(self.min)) / span;
        t.clamp(0.0, 1.0) as f32
    }
}

/// The next representable `f32` above a finite `x`.
fn next_up(x: f32) -> f32 {
    if x == f32::MAX {
        return x;
    }
    let bits = x.to_bits();
    let next = if x == 0.0 {
        1
    } else if x > 0.0 {
        bits + 1
    } else {
        bits - 1
    };
    f32::from_bits(next)
}

/// Smallest and largest finite value, if any.
fn finite_range(data: &[f32]) -> Option<(f32, f32)> {
    data.iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Fiji-style auto-contrast: the range that leaves `saturated` (a fraction,
/// e.g. 0.0035 for 0.35 %) of the finite values outside it, half below and
/// half above. `saturated` is clamped to `[0, 0.98]` (NaN counts as 0).
///
/// When the clipped range is empty (e.g. a mostly-zero image), the top end is
/// raised to the largest value; a constant image gives `[v, v + 1]`.
pub fn auto_contrast(data: &[f32], saturated: f64) -> Contrast {
    let mut finite: Vec<f32> = data.iter().copied().filter(|v| v.is_finite()).collect();
    let n = finite.len();
    if n == 0 {
        return Contrast::default();
    }
    let saturated = if saturated.is_nan() {
        0.0
    } else {
        saturated.clamp(0.0, 0.98)
    };
    // values strictly outside [lo, hi] on each side
    let k = ((n as f64 * saturated / 2.0).round() as usize).min((n - 1) / 2);
    let (_, &mut lo, _) = finite.select_nth_unstable_by(k, f32::total_cmp);
    let (_, &mut hi, _) = finite.select_nth_unstable_by(n - 1 - k, f32::total_cmp);
    if hi > lo {
        return Contrast { min: lo, max: hi };
    }
    let top = finite.iter().copied().fold(lo, f32::max);
    Contrast::ordered(lo, top)
}

/// The saturated fraction for the `press`-th consecutive press of "auto"
/// (from 0): 0.35 % first, then 0.35 % more on each press, at most 50 %.
pub fn auto_contrast_fraction(press: u32) -> f64 {
    (0.0035 * (f64::from(press) + 1.0)).min(0.5)
}

/// Counts of the finite values in `counts.len()` equal bins spanning `[lo, hi]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// Lower edge of the first bin (the smallest finite value).
    pub lo: f32,
    /// Upper edge of the last bin (the largest finite value).
    pub hi: f32,
    /// Values per bin; the largest value falls in the last bin.
    pub counts: Vec<u32>,
}

impl Histogram {
    /// Width of one bin (1 / bins when all values are equal).
    fn bin_width(&self) -> f64 {
        let span = f64::from(self.hi) - f64::from(self.lo);
        let span = if span > 0.0 && span.is_finite() {
            span
        } else {
            1.0
        };
        span / self.counts.len().max(1) as f64
    }

    /// Value at the centre of bin `i`.
    pub fn bin_centre(&self, i: usize) -> f32 {
        (f64::from(self.lo) + (i as f64 + 0.5) * self.bin_width()) as f32
    }

    /// Number of values counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }
}

/// Most bins [`histogram`] makes.
pub const MAX_HISTOGRAM_BINS: usize = 1 << 16;

/// Histogram of the finite values with `bins` bins (clamped to
/// `1..=`[`MAX_HISTOGRAM_BINS`]) over their range; `[0, 1]` and all counts 0
/// when there are none.
pub fn histogram(data: &[f32], bins: usize) -> Histogram {
    let bins = bins.clamp(1, MAX_HISTOGRAM_BINS);
    let (lo, hi) = finite_range(data).unwrap_or((0.0, 1.0));
    let mut h = Histogram {
        lo,
        hi,
        counts: vec![0; bins],
    };
    let width = h.bin_width();
    for &v in data.iter().filter(|v| v.is_finite()) {
        let i = ((f64::from(v) - f64::from(lo)) / width) as usize;
        let c = &mut h.counts[i.min(bins - 1)];
        *c = c.saturating_add(1);
    }
    h
}

/// RGBA8 bytes (4 per value) of `data` through `contrast` and `lut`.
pub fn colorize(data: &[f32], contrast: Contrast, lut: Lut) -> Vec<u8> {
    let table = lut.table();
    let mut out = Vec::with_capacity(data.len() * 4);
    for &v in data {
        if v.is_finite() {
            out.extend_from_slice(&table[usize::from(lut_index(contrast.normalise(v)))]);
        } else {
            out.extend_from_slice(&NON_FINITE_RGBA);
        }
    }
    out
}

/// RGBA8 of palette indices through the file's own palette (a palette TIFF
/// shown as its writer meant it); values that are not an index of the
/// palette are drawn in [`NON_FINITE_RGBA`].
pub fn colorize_palette(data: &[f32], palette: &[[u8; 3]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 4);
    for &v in data {
        let i = v as usize;
        match palette.get(i) {
            Some(&[r, g, b]) if v >= 0.0 && v.fract() == 0.0 => {
                out.extend_from_slice(&[r, g, b, 255])
            }
            _ => out.extend_from_slice(&NON_FINITE_RGBA),
        }
    }
    out
}

/// The colour of NaN and ±∞ pixels in every colour-mapped view and export:
/// pure cyan, which none of the colour maps contains.
pub const NON_FINITE_RGBA: [u8; 4] = [0, 255, 255, 255];

/// Overlay colour of the raw frame: magenta (red + blue).
pub const OVERLAY_RAW_RGB: [f32; 3] = [1.0, 0.0, 1.0];
/// Overlay colour of the model: green, the complement of [`OVERLAY_RAW_RGB`],
/// so where both are bright the overlay is white and where they agree it is grey.
pub const OVERLAY_MODEL_RGB: [f32; 3] = [0.0, 1.0, 0.0];

/// Two-colour merge of the raw frame (in [`OVERLAY_RAW_RGB`], through
/// `raw_c`) and the model (in [`OVERLAY_MODEL_RGB`], through `model_c`):
/// RGBA8, one pixel per value of the common length of `raw` and `model`.
pub fn overlay_rgba(raw: &[f32], raw_c: Contrast, model: &[f32], model_c: Contrast) -> Vec<u8> {
    let n = raw.len().min(model.len());
    let mut out = Vec::with_capacity(n * 4);
    for (&r, &m) in raw.iter().zip(model) {
        let (tr, tm) = (raw_c.normalise(r), model_c.normalise(m));
        for k in 0..3 {
            let v = tr * OVERLAY_RAW_RGB[k] + tm * OVERLAY_MODEL_RGB[k];
            out.push((v.clamp(0.0, 1.0) * 255.0).round() as u8);
        }
        out.push(255);
    }
    out
}

/// Least-squares `(a, b)` with `raw ≈ a·model + b`, over the pairs (of the
/// common length) where both values are finite. A constant model gives
/// `a = 0` and `b` the mean of `raw`; no usable pairs give `(0, 0)`.
pub fn fit_linear(raw: &[f32], model: &[f32]) -> (f32, f32) {
    let pairs = || {
        raw.iter()
            .zip(model)
            .filter(|(r, m)| r.is_finite() && m.is_finite())
            .map(|(&r, &m)| (f64::from(r), f64::from(m)))
    };
    let (mut n, mut sr, mut sm) = (0usize, 0.0f64, 0.0f64);
    for (r, m) in pairs() {
        n += 1;
        sr += r;
        sm += m;
    }
    if n == 0 {
        return (0.0, 0.0);
    }
    let (mr, mm) = (sr / n as f64, sm / n as f64);
    let (mut cov, mut var, mut sq) = (0.0f64, 0.0f64, 0.0f64);
    for (r, m) in pairs() {
        cov += (m - mm) * (r - mr);
        var += (m - mm) * (m - mm);
        sq += m * m;
    }
    // var ≤ 0 (or NaN): the model is constant to rounding
    let usable = var > 1e-12 * sq && var.is_finite();
    if !usable {
        return (0.0, mr as f32);
    }
    let a = cov / var;
    let b = mr - a * mm;
    if a.is_finite() && b.is_finite() {
        (a as f32, b as f32)
    } else {
        (0.0, mr as f32)
    }
}

/// `raw − (a·model + b)` with `(a, b)` from [`fit_linear`], over the common length.
pub fn residual(raw: &[f32], model: &[f32]) -> Vec<f32> {
    residual_values(raw, model, fit_linear(raw, model)).collect()
}

/// `raw − (a·model + b)` for a given `(a, b)` (from [`fit_linear`]), pixel by pixel.
pub fn residual_values<'a>(
    raw: &'a [f32],
    model: &'a [f32],
    (a, b): (f32, f32),
) -> impl Iterator<Item = f32> + 'a {
    raw.iter().zip(model).map(move |(&r, &m)| r - (a * m + b))
}

/// The diverging residual map as a 256-entry RGBA table: entry 0 is
/// `−limit` (blue), entry 255 is `+limit` (red), the middle is near white.
/// [`residual_rgba`] uses it; the GPU residual view uploads the same table.
pub fn diverging_table() -> [[u8; 4]; 256] {
    // colorous RED_BLUE runs red → white → blue; reverse it so negative is blue
    std::array::from_fn(|i| {
        let c = colorous::RED_BLUE.eval_rational(255 - i, 256);
        [c.r, c.g, c.b, 255]
    })
}

/// RGBA8 bytes of residuals through [`diverging_table`], symmetric about 0:
/// `±limit` are the ends of the map. A non-finite or non-positive `limit`
/// uses the largest finite `|residual|` instead. NaN shows as 0 (the centre).
pub fn residual_rgba(res: &[f32], limit: f32) -> Vec<u8> {
    let limit = if limit.is_finite() && limit > 0.0 {
        limit
    } else {
        let peak = res
            .iter()
            .filter(|v| v.is_finite())
            .fold(0.0f32, |acc, v| acc.max(v.abs()));
        if peak > 0.0 {
            peak
        } else {
            1.0
        }
    };
    let table = diverging_table();
    let mut out = Vec::with_capacity(res.len() * 4);
    for &v in res {
        let t = if v.is_nan() {
            0.5
        } else {
            0.5 + 0.5 * (f64::from(v) / f64::from(limit)) as f32
        };
        out.extend_from_slice(&table[usize::from(lut_index(t))]);
    }
    out
}

/// A scale bar: `length_px` image pixels long, standing for `length_nm`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleBar {
    /// Physical length in nanometres (a 1-2-5 number).
    pub length_nm: f64,
    /// Length in image pixels (multiply by the display zoom).
    pub length_px: f64,
    /// E.g. "500 nm" or "2 µm".
    pub label: String,
}

/// The scale bar for an image `image_width_px` pixels wide with pixels
/// `pixel_size_nm` wide: the 1-2-5 length (…, 100, 200, 500 nm, 1 µm, …)
/// nearest (in ratio) to 20 % of the image width. `None` when either argument
/// is not finite and positive.
pub fn scale_bar(pixel_size_nm: f64, image_width_px: f64) -> Option<ScaleBar> {
    let ok = |x: f64| x.is_finite() && x > 0.0;
    if !ok(pixel_size_nm) || !ok(image_width_px) {
        return None;
    }
    let target = 0.2 * image_width_px * pixel_size_nm;
    if !ok(target) {
        return None;
    }
    let decade = target.log10().floor() as i32;
    // candidates around the target; pick the closest in log ratio
    let (mantissa, exp) = (decade - 1..=decade + 1)
        .flat_map(|e| [1.0, 2.0, 5.0].map(|m| (m, e)))
        .min_by(|&(ma, ea), &(mb, eb)| {
            let da = (ma * 10f64.powi(ea) / target).ln().abs();
            let db = (mb * 10f64.powi(eb) / target).ln().abs();
            da.total_cmp(&db)
        })?;
    let length_nm = mantissa * 10f64.powi(exp);
    let length_px = length_nm / pixel_size_nm;
    if !ok(length_nm) || !ok(length_px) {
        return None;
    }
    // exp ≥ 3 is whole µm; otherwise nm with as many decimals as exp needs
    let label = if exp >= 3 {
        format!("{} µm", format_nice(mantissa, exp - 3))
    } else {
        format!("{} nm", format_nice(mantissa, exp))
    };
    Some(ScaleBar {
        length_nm,
        length_px,
        label,
    })
}

/// `mantissa · 10^exp` written without float noise: `5e-1` → "0.5", `2e4` → "20000".
fn format_nice(mantissa: f64, exp: i32) -> String {
    let v = mantissa * 10f64.powi(exp);
    if exp >= 0 {
        format!("{v:.0}")
    } else {
        format!("{v:.*}", (-exp) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lut_endpoints() {
        assert_eq!(Lut::Grey.map(0.0), [0, 0, 0, 255]);
        assert_eq!(Lut::Grey.map(1.0), [255, 255, 255, 255]);
        assert_eq!(Lut::Inverted.map(0.0), [255, 255, 255, 255]);
        assert_eq!(Lut::Inverted.map(1.0), [0, 0, 0, 255]);
        assert_eq!(Lut::Hot.map(0.0), [0, 0, 0, 255]);
        assert_eq!(Lut::Hot.map(1.0), [255, 255, 255, 255]);
        // a third of the way up hot is pure red, two thirds yellow
        assert_eq!(Lut::Hot.map(85.0 / 255.0), [255, 0, 0, 255]);
        assert_eq!(Lut::Hot.map(170.0 / 255.0), [255, 255, 0, 255]);
        // out of range clamps, NaN maps like 0
        assert_eq!(Lut::Grey.map(-3.0), [0, 0, 0, 255]);
        assert_eq!(Lut::Grey.map(7.0), [255, 255, 255, 255]);
        for lut in Lut::ALL {
            assert_eq!(lut.map(f32::NAN), lut.map(0.0), "{}", lut.name());
            let t = lut.table();
            assert_eq!(t[0], lut.map(0.0));
            assert_eq!(t[255], lut.map(1.0));
            assert!(t.iter().all(|c| c[3] == 255));
        }
        // magma starts near black and ends pale yellow
        let m = Lut::Magma.table();
        assert!(m[0][0] < 10 && m[0][1] < 10 && m[0][2] < 10, "{:?}", m[0]);
        assert!(
            m[255][0] > 240 && m[255][1] > 240 && m[255][2] > 150,
            "{:?}",
            m[255]
        );
        let names: std::collections::BTreeSet<_> = Lut::ALL.iter().map(|l| l.name()).collect();
        assert_eq!(names.len(), 6);
        assert_eq!(Lut::default(), Lut::Grey);
    }

    #[test]
    fn lut_serde_round_trip() {
        let s = serde_json::to_string(&Lut::Viridis).unwrap();
        assert_eq!(serde_json::from_str::<Lut>(&s).unwrap(), Lut::Viridis);
    }

    #[test]
    fn contrast_full_and_normalise() {
        let c = Contrast::full(&[f32::NAN, 2.0, -1.0, f32::INFINITY, 5.0]);
        assert_eq!(
            c,
            Contrast {
                min: -1.0,
                max: 5.0
            }
        );
        assert_eq!(c.normalise(-1.0), 0.0);
        assert_eq!(c.normalise(5.0), 1.0);
        assert!((c.normalise(2.0) - 0.5).abs() < 1e-6);
        assert_eq!(c.normalise(100.0), 1.0);
        assert_eq!(c.normalise(-100.0), 0.0);
        assert_eq!(c.normalise(f32::NAN), 0.0);
        assert_eq!(c.normalise(f32::INFINITY), 1.0);
        assert_eq!(Contrast::full(&[3.0, 3.0]), Contrast { min: 3.0, max: 4.0 });
        assert_eq!(Contrast::full(&[f32::NAN]), Contrast { min: 0.0, max: 1.0 });
        let big = Contrast::full(&[1e30]);
        assert!(big.max > big.min);
        // an inverted user range does not divide by zero
        let bad = Contrast { min: 2.0, max: 1.0 };
        assert_eq!(bad.normalise(3.0), 1.0);
        assert_eq!(bad.normalise(1.5), 0.0);
    }

    /// Fraction of `data` outside `c`.
    fn saturated_fraction(data: &[f32], c: Contrast) -> f64 {
        data.iter().filter(|&&v| v < c.min || v > c.max).count() as f64 / data.len() as f64
    }

    #[test]
    fn auto_contrast_saturates_the_requested_fraction() {
        // a shuffled ramp 0..10000 (order must not matter)
        let mut ramp: Vec<f32> = (0..10_000).map(|i| ((i * 7919) % 10_000) as f32).collect();
        let c = auto_contrast(&ramp, 0.0035);
        let f = saturated_fraction(&ramp, c);
        assert!((f - 0.0035).abs() <= 0.0002, "saturated {f}");
        // split evenly between the tails
        let below = ramp.iter().filter(|&&v| v < c.min).count();
        let above = ramp.iter().filter(|&&v| v > c.max).count();
        assert_eq!(below, above);
        // non-finite values are ignored
        ramp.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY]);
        assert_eq!(auto_contrast(&ramp, 0.0035), c);
        // more presses saturate more
        let c3 = auto_contrast(&ramp[..10_000], auto_contrast_fraction(3));
        let f3 = saturated_fraction(&ramp[..10_000], c3);
        assert!((f3 - 0.014).abs() <= 0.0002, "saturated {f3}");
        assert_eq!(auto_contrast_fraction(0), 0.0035);
        assert_eq!(auto_contrast_fraction(1000), 0.5);
        // 0 saturation is the full range
        assert_eq!(
            auto_contrast(&ramp, 0.0),
            Contrast {
                min: 0.0,
                max: 9999.0
            }
        );
    }

    #[test]
    fn auto_contrast_degenerate_inputs() {
        assert_eq!(auto_contrast(&[], 0.0035), Contrast::default());
        assert_eq!(auto_contrast(&[f32::NAN; 4], 0.0035), Contrast::default());
        assert_eq!(
            auto_contrast(&[2.0; 10], 0.0035),
            Contrast { min: 2.0, max: 3.0 }
        );
        // mostly zeros: the range still reaches the bright pixels
        let mut sparse = vec![0.0f32; 1000];
        sparse[10] = 50.0;
        let c = auto_contrast(&sparse, 0.0035);
        assert_eq!(
            c,
            Contrast {
                min: 0.0,
                max: 50.0
            }
        );
        // absurd fractions are clamped, never panic
        for s in [f64::NAN, -1.0, 2.0, f64::INFINITY] {
            let c = auto_contrast(&[1.0, 2.0, 3.0], s);
            assert!(c.max > c.min, "{s}: {c:?}");
        }
    }

    #[test]
    fn histogram_counts_finite_values() {
        let data = [0.0, 1.0, 2.0, 3.0, 4.0, f32::NAN, f32::INFINITY, 4.0];
        let h = histogram(&data, 4);
        assert_eq!(h.counts.len(), 4);
        assert_eq!(h.total(), 6);
        assert_eq!((h.lo, h.hi), (0.0, 4.0));
        assert_eq!(h.counts, vec![1, 1, 1, 3]);
        assert!((h.bin_centre(0) - 0.5).abs() < 1e-6);
        assert!((h.bin_centre(3) - 3.5).abs() < 1e-6);
        let ramp: Vec<f32> = (0..1000).map(|i| i as f32 * 0.37 - 50.0).collect();
        let h = histogram(&ramp, 64);
        assert_eq!(h.total(), 1000);
        // degenerate inputs
        assert_eq!(histogram(&[5.0; 3], 8).counts[0], 3);
        assert_eq!(histogram(&[], 8).total(), 0);
        assert_eq!(histogram(&[1.0], 0).counts.len(), 1);
        assert_eq!(
            histogram(&[1.0], usize::MAX).counts.len(),
            MAX_HISTOGRAM_BINS
        );
    }

    #[test]
    fn palette_images_use_their_own_colours() {
        let pal = [[1, 2, 3], [200, 100, 50]];
        let px = colorize_palette(&[1.0, 0.0, 2.0, 0.5, f32::NAN], &pal);
        assert_eq!(&px[0..4], &[200, 100, 50, 255]);
        assert_eq!(&px[4..8], &[1, 2, 3, 255]);
        for k in 2..5 {
            assert_eq!(&px[4 * k..4 * k + 4], &NON_FINITE_RGBA, "value {k}");
        }
    }

    #[test]
    fn colorize_uses_contrast_and_lut() {
        let c = Contrast {
            min: 10.0,
            max: 20.0,
        };
        let px = colorize(&[10.0, 20.0, 15.0, f32::NAN, 99.0], c, Lut::Grey);
        assert_eq!(px.len(), 20);
        assert_eq!(&px[0..4], &[0, 0, 0, 255]);
        assert_eq!(&px[4..8], &[255, 255, 255, 255]);
        assert_eq!(&px[8..12], &[128, 128, 128, 255]);
        assert_eq!(&px[12..16], &NON_FINITE_RGBA, "NaN is marked");
        assert_eq!(&px[16..20], &[255, 255, 255, 255]);
        let px = colorize(&[15.0], c, Lut::Viridis);
        assert_eq!(px, Lut::Viridis.map(0.5).to_vec());
    }

    #[test]
    fn overlay_colours() {
        let c = Contrast { min: 0.0, max: 1.0 };
        let px = overlay_rgba(&[1.0, 0.0, 1.0, 0.0], c, &[0.0, 1.0, 1.0, 0.0], c);
        assert_eq!(&px[0..4], &[255, 0, 255, 255], "raw only: magenta");
        assert_eq!(&px[4..8], &[0, 255, 0, 255], "model only: green");
        assert_eq!(&px[8..12], &[255, 255, 255, 255], "both: white");
        assert_eq!(&px[12..16], &[0, 0, 0, 255], "neither: black");
        // agreement at half intensity is neutral grey
        let px = overlay_rgba(&[0.5], c, &[0.5], c);
        assert!(px[0] == px[1] && px[1] == px[2] && px[0] > 100, "{px:?}");
        // mismatched lengths: common length, no panic
        assert_eq!(overlay_rgba(&[0.0; 3], c, &[0.0; 2], c).len(), 8);
    }

    #[test]
    fn fit_linear_recovers_gain_and_offset() {
        let model: Vec<f32> = (0..100).map(|i| ((i * 37) % 17) as f32 * 0.25).collect();
        let raw: Vec<f32> = model.iter().map(|m| 3.5 * m + 12.0).collect();
        let (a, b) = fit_linear(&raw, &model);
        assert!((a - 3.5).abs() < 1e-5, "a = {a}");
        assert!((b - 12.0).abs() < 1e-4, "b = {b}");
        let res = residual(&raw, &model);
        assert_eq!(res.len(), 100);
        assert!(res.iter().all(|r| r.abs() < 1e-4), "{res:?}");
        // a constant model: a = 0, b = mean
        let (a, b) = fit_linear(&[1.0, 2.0, 6.0], &[4.0; 3]);
        assert_eq!(a, 0.0);
        assert!((b - 3.0).abs() < 1e-6);
        // non-finite pairs are skipped; nothing usable gives (0, 0)
        let (a, b) = fit_linear(&[f32::NAN, 5.0, 7.0], &[0.0, 1.0, 2.0]);
        assert!((a - 2.0).abs() < 1e-6 && (b - 3.0).abs() < 1e-6, "{a} {b}");
        assert_eq!(fit_linear(&[], &[]), (0.0, 0.0));
        assert_eq!(fit_linear(&[f32::NAN], &[1.0]), (0.0, 0.0));
    }

    #[test]
    fn residual_map_is_symmetric() {
        let t = diverging_table();
        // negative ends blue, positive red
        assert!(t[0][2] > t[0][0], "{:?}", t[0]);
        assert!(t[255][0] > t[255][2], "{:?}", t[255]);
        let px = residual_rgba(&[-2.0, 0.0, 2.0, f32::NAN, 50.0], 2.0);
        assert_eq!(&px[0..4], &t[0]);
        assert_eq!(&px[8..12], &t[255]);
        assert_eq!(&px[4..8], &t[128]);
        assert_eq!(&px[12..16], &t[128]);
        assert_eq!(&px[16..20], &t[255]);
        // the centre is near white
        assert!(t[128][..3].iter().all(|&c| c > 230), "{:?}", t[128]);
        // automatic limit from the data
        let px = residual_rgba(&[-4.0, 1.0], f32::NAN);
        assert_eq!(&px[0..4], &t[0]);
        assert_eq!(residual_rgba(&[0.0], 0.0)[..4], t[128]);
    }

    #[test]
    fn scale_bar_picks_nice_lengths() {
        // 100 nm pixels, 64 px: target 1280 nm → 1 µm
        let s = scale_bar(100.0, 64.0).unwrap();
        assert_eq!(s.length_nm, 1000.0);
        assert_eq!(s.length_px, 10.0);
        assert_eq!(s.label, "1 µm");
        // 10 nm pixels, 256 px: target 512 nm → 500 nm
        let s = scale_bar(10.0, 256.0).unwrap();
        assert_eq!((s.length_nm, s.label.as_str()), (500.0, "500 nm"));
        // target 330 nm → 200 or 500 by ratio: 330/200 = 1.65 < 500/330 = 1.52? no → 500
        let s = scale_bar(1.0, 1650.0).unwrap();
        assert_eq!(s.label, "500 nm");
        let s = scale_bar(1.0, 1400.0).unwrap();
        assert_eq!(s.label, "200 nm");
        let s = scale_bar(160.0, 512.0).unwrap();
        assert_eq!((s.length_nm, s.label.as_str()), (20_000.0, "20 µm"));
        let s = scale_bar(0.01, 256.0).unwrap();
        assert_eq!(s.label, "0.5 nm");
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(scale_bar(bad, 64.0), None, "{bad}");
            assert_eq!(scale_bar(100.0, bad), None, "{bad}");
        }
        assert_eq!(scale_bar(f64::MAX, 64.0), None);
        // every bar is within a factor √(2.5) of 20 % of the width
        for px in [3.7, 16.0, 65.0, 108.3, 160.0] {
            for w in [17.0, 64.0, 300.0] {
                let s = scale_bar(px, w).unwrap();
                let r = s.length_px / (0.2 * w);
                assert!((0.6..=1.6).contains(&r), "{px} {w}: {r}");
                assert!(s.label.ends_with(" nm") || s.label.ends_with(" µm"));
            }
        }
    }
}
