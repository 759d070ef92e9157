//! The orientation figure, for a paper or a lab notebook: the fitted axes
//! on an equal-area disc (each as both its ends: one image cannot tell them
//! apart; or its far end alone where a 3D table's z did) beside the tilt histogram with what random orientation gives,
//! and the isotropy verdict as its title. White ground, as journals print.
//! `posescope orientations --png` and the viewer's Results → Orientations →
//! Save figure both write through [`orientation_figure`].

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::RgbaImage;

use super::annotate::{blend, draw_text, fill_rect, hack, text_width, Clip};
use crate::estimate::pose::orientations::{
    equal_area_radius, isotropic_cdf, InPlane, TiltSummary, ViewAxis,
};
use crate::io::OutputError;

const WIDTH: u32 = 820;
const HEIGHT: u32 = 446;
const INK: [u8; 4] = [20, 20, 20, 255];
const GRID: [u8; 4] = [175, 175, 175, 255];
const AXES: [u8; 4] = [31, 119, 180, 255];
const BARS: [u8; 4] = [120, 165, 205, 255];
const RANDOM: [u8; 4] = [230, 120, 20, 255];

/// The disc: centre and radius, pixels.
const DISC: (f64, f64, f64) = (200.0, 248.0, 150.0);
/// The histogram's plot area `[x0, x1] × [y0, y1]`, pixels.
const PLOT: (f64, f64, f64, f64) = (470.0, 790.0, 120.0, 366.0);

/// Header lines the layout leaves room for; more push the plots down.
const HEADER_LINES: usize = 4;
/// Height of a header line, pixels.
const LINE: f64 = 17.0;

/// The header: "N particles, median …" / "consistent with …", "in the
/// image plane (…)" / "a preferred direction …" and, where 3D fits tell
/// which way their axes tilt, the same two lines of that.
fn header(axes: &[ViewAxis], s: &TiltSummary) -> Vec<String> {
    let mut lines: Vec<String> = s.verdict().splitn(2, "; ").map(str::to_owned).collect();
    for verdict in InPlane::new(axes).iter().flat_map(InPlane::verdicts) {
        lines.extend(verdict.splitn(2, ": ").map(str::to_owned));
    }
    lines
}

/// The lines under the disc: a third where 3D fits show one end.
fn captions(axes: &[ViewAxis]) -> Vec<&'static str> {
    let mut lines = vec!["axes, equal-area: centre face-on, rim edge-on"];
    if axes.iter().any(|a| a.directed) {
        lines.push("x right, y down as in the image; both ends of each axis,");
        lines.push("but of a 3D fit its far end: the way it tilts");
    } else {
        lines.push("x right, y down as in the image; both ends of each axis");
    }
    lines
}

/// Height of a caption line, pixels.
const CAPTION_LINE: u32 = 16;

/// How far `header` pushes the plots down, pixels.
fn drop_of(header: &[String]) -> f64 {
    header.len().saturating_sub(HEADER_LINES) as f64 * LINE
}

/// The figure of `axes` (one per fitted particle) and their tilt summary.
pub fn orientation_figure(axes: &[ViewAxis], s: &TiltSummary) -> Result<RgbaImage, OutputError> {
    let lines = header(axes, s);
    let drop = drop_of(&lines);
    let extra_captions = captions(axes).len() as u32 - 2;
    let height = HEIGHT + drop as u32 + CAPTION_LINE * extra_captions;
    let mut img = RgbaImage::from_pixel(WIDTH, height, image::Rgba([255; 4]));
    let clip = Clip::of(&img);
    let font = hack()?;
    let small = PxScale::from(12.0);
    for (k, line) in lines.iter().enumerate() {
        let top = 8.0 + LINE as f32 * k as f32;
        put(&mut img, &font, PxScale::from(14.0), (16.0, top), line, INK);
    }

    // the disc: the axes' ends, smaller and fainter as they crowd so that
    // dense regions still read, under the rings at 30° and 60°, the rim
    // (edge-on) and the image axes
    let (cx, cy, r) = (DISC.0, DISC.1 + drop, DISC.2);
    let n = axes.len().max(1) as f64;
    let dot_r = (2.6 * (300.0 / n).sqrt()).clamp(0.9, 2.6);
    let alpha = (0.9 - 0.12 * (n as f32).log10()).clamp(0.45, 0.9);
    for a in axes {
        for [x, y] in a.equal_area() {
            disc(&mut img, clip, cx + r * x, cy - r * y, dot_r, AXES, alpha);
        }
    }
    for (tilt, colour) in [(30.0, GRID), (60.0, GRID), (90.0, INK)] {
        let ring = circle(cx, cy, r * equal_area_radius(tilt));
        polyline(&mut img, clip, &ring, colour);
    }
    polyline(&mut img, clip, &[[cx - r, cy], [cx + r, cy]], GRID);
    polyline(&mut img, clip, &[[cx, cy - r], [cx, cy + r]], GRID);
    // the rings' tilts on white patches at their upper right, over the axes
    let line_h = font.as_scaled(small).height();
    for tilt in [30.0, 60.0] {
        let rr = r * equal_area_radius(tilt) * std::f64::consts::FRAC_1_SQRT_2;
        let (x, y) = ((cx + rr) as f32, (cy - rr) as f32 - line_h);
        let label = format!("{tilt:.0}°");
        let w = text_width(&font, small, &label);
        let patch = Clip {
            x0: x as i64 - 1,
            x1: (x + w) as i64 + 2,
            y0: y as i64,
            y1: (y + line_h) as i64,
        };
        fill_rect(&mut img, clip, patch, [255; 4]);
        put(&mut img, &font, small, (x, y), &label, INK);
    }
    let below = (cy + r) as f32;
    for (k, caption) in captions(axes).into_iter().enumerate() {
        centred(
            &mut img,
            &font,
            small,
            (cx as f32, below + 8.0 + CAPTION_LINE as f32 * k as f32),
            caption,
        );
    }

    histogram(&mut img, &font, s, drop);
    Ok(img)
}

/// `text` with its top-left at `at`.
fn put(
    img: &mut RgbaImage,
    font: &FontRef<'_>,
    scale: PxScale,
    at: (f32, f32),
    text: &str,
    colour: [u8; 4],
) {
    draw_text(img, Clip::of(img), font, scale, at, text, colour);
}

/// `text` in ink, centred on `x`, its top at `top`.
fn centred(
    img: &mut RgbaImage,
    font: &FontRef<'_>,
    scale: PxScale,
    (x, top): (f32, f32),
    text: &str,
) {
    let w = text_width(font, scale, text);
    put(img, font, scale, (x - w / 2.0, top), text, INK);
}

/// The tilt histogram with the random-orientation curve and its axes,
/// `drop` pixels below its place in [`PLOT`].
fn histogram(img: &mut RgbaImage, font: &FontRef<'_>, s: &TiltSummary, drop: f64) {
    let clip = Clip::of(img);
    let (x0, x1, y0, y1) = (PLOT.0, PLOT.1, PLOT.2 + drop, PLOT.3 + drop);
    let small = PxScale::from(12.0);
    let line_h = font.as_scaled(small).height();
    let width = s.bins.first().map_or(10.0, |b| b.hi_deg - b.lo_deg);
    let n = s.n as f64;
    let expected = |t: f64| n * (isotropic_cdf(t + width / 2.0) - isotropic_cdf(t - width / 2.0));
    let most = s
        .bins
        .iter()
        .map(|b| b.count as f64)
        .fold(expected(90.0 - width / 2.0), f64::max)
        .max(1.0);
    let step = nice_step(most / 4.0);
    let top = (most / step).ceil() * step;
    let px = |t: f64| x0 + (x1 - x0) * t / 90.0;
    let py = |v: f64| y1 - (y1 - y0) * v / top;
    let rect = |x: [f64; 2], y: [f64; 2]| Clip {
        x0: x[0].round() as i64,
        x1: x[1].round() as i64,
        y0: y[0].round() as i64,
        y1: y[1].round() as i64,
    };
    for b in &s.bins {
        let bar = rect(
            [px(b.lo_deg) + 1.0, px(b.hi_deg) - 1.0],
            [py(b.count as f64), y1],
        );
        fill_rect(img, clip, bar, BARS);
    }
    let curve: Vec<[f64; 2]> = (0..=64)
        .map(|k| {
            let t = width / 2.0 + (90.0 - width) * f64::from(k) / 64.0;
            [px(t), py(expected(t))]
        })
        .collect();
    thick(img, &curve, RANDOM);
    // axes, ticks and labels
    polyline(img, clip, &[[x0, y0], [x0, y1], [x1, y1]], INK);
    for t in [0.0, 30.0, 60.0, 90.0] {
        polyline(img, clip, &[[px(t), y1], [px(t), y1 + 4.0]], INK);
        centred(
            img,
            font,
            small,
            (px(t) as f32, y1 as f32 + 6.0),
            &format!("{t:.0}"),
        );
    }
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        polyline(img, clip, &[[x0 - 4.0, py(v)], [x0, py(v)]], INK);
        let label = format!("{v:.0}");
        let w = text_width(font, small, &label);
        put(
            img,
            font,
            small,
            (x0 as f32 - 7.0 - w, py(v) as f32 - line_h / 2.0),
            &label,
            INK,
        );
        v += step;
    }
    let mid = ((x0 + x1) / 2.0) as f32;
    centred(
        img,
        font,
        small,
        (mid, y1 as f32 + 24.0),
        "tilt from the optical axis (°): 0 face-on, 90 edge-on",
    );
    put(
        img,
        font,
        small,
        (x0 as f32 - 40.0, y0 as f32 - 34.0),
        "particles",
        INK,
    );
    // the legend
    let (lx, ly) = (x0 + 12.0, y0 - 16.0);
    fill_rect(img, clip, rect([lx, lx + 14.0], [ly - 4.0, ly + 6.0]), BARS);
    put(
        img,
        font,
        small,
        (lx as f32 + 20.0, ly as f32 - line_h / 2.0),
        "fitted",
        INK,
    );
    thick(
        img,
        &[[lx + 90.0, ly + 1.0], [lx + 104.0, ly + 1.0]],
        RANDOM,
    );
    let at = (lx as f32 + 110.0, ly as f32 - line_h / 2.0);
    put(img, font, small, at, "random orientation", INK);
}

/// A line about two pixels thick through `points`.
fn thick(img: &mut RgbaImage, points: &[[f64; 2]], colour: [u8; 4]) {
    let clip = Clip::of(img);
    for d in [-0.5, 0.0, 0.5] {
        let shifted: Vec<[f64; 2]> = points.iter().map(|p| [p[0], p[1] + d]).collect();
        polyline(img, clip, &shifted, colour);
    }
}

/// A round step (1, 2 or 5 × 10ⁿ) at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let p = 10f64.powf(raw.max(1.0).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * p)
}

fn circle(cx: f64, cy: f64, r: f64) -> Vec<[f64; 2]> {
    (0..=256)
        .map(|k| {
            let u = std::f64::consts::TAU * f64::from(k) / 256.0;
            [cx + r * u.cos(), cy + r * u.sin()]
        })
        .collect()
}

/// A one-pixel line through `points`, each step spread over the pixels
/// it covers.
fn polyline(img: &mut RgbaImage, clip: Clip, points: &[[f64; 2]], colour: [u8; 4]) {
    for w in points.windows(2) {
        let [a, b] = [w[0], w[1]];
        let n = ((b[0] - a[0]).hypot(b[1] - a[1]) * 2.0).ceil().max(1.0) as usize;
        for k in 0..=n {
            let t = k as f64 / n as f64;
            let (x, y) = (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t);
            let (fx, fy) = ((x - 0.5).floor(), (y - 0.5).floor());
            let (ax, ay) = ((x - 0.5 - fx) as f32, (y - 0.5 - fy) as f32);
            for (dx, wx) in [(0i64, 1.0 - ax), (1, ax)] {
                for (dy, wy) in [(0i64, 1.0 - ay), (1, ay)] {
                    let (px, py) = (fx as i64 + dx, fy as i64 + dy);
                    blend(img, clip, px, py, colour, 0.6 * wx * wy);
                }
            }
        }
    }
}

/// A filled disc of radius `r` at `(x, y)`, its edge anti-aliased.
fn disc(img: &mut RgbaImage, clip: Clip, x: f64, y: f64, r: f64, colour: [u8; 4], alpha: f32) {
    if !(x.is_finite() && y.is_finite()) {
        return;
    }
    let (lo_x, hi_x) = ((x - r - 1.0).floor() as i64, (x + r + 1.0).ceil() as i64);
    let (lo_y, hi_y) = ((y - r - 1.0).floor() as i64, (y + r + 1.0).ceil() as i64);
    for py in lo_y..=hi_y {
        for px in lo_x..=hi_x {
            let d = (px as f64 + 0.5 - x).hypot(py as f64 + 0.5 - y);
            let cover = (r + 0.5 - d).clamp(0.0, 1.0) as f32;
            if cover > 0.0 {
                blend(img, clip, px, py, colour, alpha * cover);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_axis_blue(p: [u8; 4]) -> bool {
        p[2] > 150 && p[0] < 120
    }

    #[test]
    fn the_figure_puts_each_axis_at_its_ends_and_bars_to_their_counts() {
        // one particle edge-on along image +x, one face-on, two at 60°
        let axes = [
            ViewAxis {
                tilt_deg: 90.0,
                azimuth_deg: 0.0,
                directed: false,
            },
            ViewAxis {
                tilt_deg: 0.0,
                azimuth_deg: 0.0,
                directed: false,
            },
            ViewAxis {
                tilt_deg: 60.0,
                azimuth_deg: 90.0,
                directed: false,
            },
            ViewAxis {
                tilt_deg: 60.0,
                azimuth_deg: 90.0,
                directed: true,
            },
            // a 3D fit's axis, its far end toward 45° (down-right on the page)
            ViewAxis {
                tilt_deg: 60.0,
                azimuth_deg: 45.0,
                directed: true,
            },
        ];
        let s = TiltSummary::of_axes(&axes, 3).unwrap();
        let img = orientation_figure(&axes, &s).unwrap();
        // the directed axes' tilt directions add two header lines
        assert_eq!(header(&axes, &s).len(), HEADER_LINES + 2);
        let drop = 2.0 * LINE;
        // and one caption line
        assert_eq!(
            img.dimensions(),
            (WIDTH, HEIGHT + drop as u32 + CAPTION_LINE)
        );
        let px = |x: f64, y: f64| img.get_pixel(x.round() as u32, y.round() as u32).0;
        // an axis drawn about (x, y): blue within two pixels (rings and the
        // image axes are drawn over the dots)
        let near = |x: f64, y: f64| {
            (-2..=2)
                .any(|dx| (-2..=2).any(|dy| is_axis_blue(px(x + f64::from(dx), y + f64::from(dy)))))
        };
        let (cx, cy, r) = (DISC.0, DISC.1 + drop, DISC.2);
        // edge-on along x: both ends on the rim at left and right; face-on: the centre
        assert!(near(cx + r, cy) && near(cx - r, cy));
        assert!(near(cx, cy));
        // azimuth 90° is image +y, down on the page: both ends on the vertical
        let r60 = r * equal_area_radius(60.0);
        assert!(near(cx, cy + r60) && near(cx, cy - r60));
        // the directed axis at its far end only
        let d = r60 * std::f64::consts::FRAC_1_SQRT_2;
        assert!(near(cx + d, cy + d));
        assert!(!near(cx - d, cy - d));
        // nothing where no axis is
        assert!(!near(cx + r60 * 0.7, cy - r60 * 0.7));
        assert!(!near(cx + r60, cy));
        // bars: 0–30° holds 1, 30–60° 0 (60° falls in the last bin), 60–90° 4
        let (x0, x1, y1) = (PLOT.0, PLOT.1, PLOT.3 + drop);
        let bar_top = |bin: f64| {
            let x = x0 + (x1 - x0) * (bin * 30.0 + 15.0) / 90.0;
            (0..img.height())
                .find(|&y| img.get_pixel(x as u32, y).0 == BARS)
                .map(|y| y1 - f64::from(y))
        };
        let (one, none, four) = (bar_top(0.0), bar_top(1.0), bar_top(2.0));
        assert!(none.is_none(), "{none:?}");
        let (one, four) = (one.unwrap(), four.unwrap());
        assert!((four / one - 4.0).abs() < 0.05, "{one} {four}");
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(0.3), 1.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(12.0), 20.0);
        assert_eq!(nice_step(130.0), 200.0);
    }
}
