//! The overview of a whole field: the rendered field (LUT and contrast as
//! in the viewer) with every particle's fitted model drawn in place — the
//! outline of the posed torus's centre circle, an ellipse — and its number;
//! picks not fitted yet are drawn as dashed circles. A scale bar when the
//! pixel size is known. `posescope fit TABLE --overview` and the viewer's
//! "Export overview" both write through [`overview`] and
//! [`write_png`](super::annotate::write_png).

use ab_glyph::{Font, PxScale, ScaleFont};
use image::RgbaImage;

use super::annotate::{blend, draw_text, fill_rect, hack, text_width, Clip};
use crate::geometry::{Quat, Vec3};
use crate::io::locs::LocTable;
use crate::io::OutputError;
use crate::render::display::{auto_contrast, colorize, scale_bar, Contrast, Lut};
use crate::render::locs::{render_locs, LocMode, LocView};

/// One particle of the overview, in field-image pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OverviewParticle {
    /// The number shown beside it.
    pub number: usize,
    /// Centre, pixels (x right, y down).
    pub centre_px: [f64; 2],
    /// Radius of the model's centre circle (the torus R), pixels.
    pub radius_px: f64,
    /// The fitted symmetry axis; `None` for a pick not fitted yet.
    pub axis: Option<Vec3>,
}

/// Fitted outlines.
const FITTED: [u8; 4] = [64, 255, 96, 255];
/// Unfitted picks.
const PICK: [u8; 4] = [255, 214, 10, 255];
const HALO: [u8; 4] = [0, 0, 0, 255];

/// Largest overview, pixels.
const MAX_PIXELS: u64 = 1 << 28;

/// The overview of a `width × height` field image `data` (row-major).
pub fn overview(
    data: &[f32],
    width: usize,
    height: usize,
    contrast: Contrast,
    lut: Lut,
    particles: &[OverviewParticle],
    pixel_size_nm: Option<f64>,
) -> Result<RgbaImage, OutputError> {
    let invalid = |m: String| OutputError::Invalid(m);
    if width == 0 || height == 0 || data.len() != width.saturating_mul(height) {
        return Err(invalid(format!(
            "the field image has {} values for {width} × {height} pixels",
            data.len()
        )));
    }
    if (width as u64) * (height as u64) > MAX_PIXELS {
        return Err(invalid(format!(
            "a {width} × {height} overview is too large; use a coarser pixel size"
        )));
    }
    let rgba = colorize(data, contrast, lut);
    let mut img = RgbaImage::from_raw(width as u32, height as u32, rgba)
        .ok_or_else(|| invalid("the field image does not fit its size".into()))?;
    let font = hack()?;
    let clip = Clip::of(&img);
    let text_px = (height.min(width) as f32 / 60.0).clamp(11.0, 28.0);
    let scale = PxScale::from(text_px);
    for p in particles {
        let ok = p.centre_px.iter().all(|v| v.is_finite())
            && p.radius_px.is_finite()
            && p.radius_px > 0.0;
        if !ok {
            continue;
        }
        let (colour, dashed, points) = match p.axis.and_then(|a| Quat::from_symmetry_axis(a, 0.0)) {
            Some(q) => (FITTED, false, ellipse(q, p.radius_px)),
            None => (PICK, true, ellipse(Quat::IDENTITY, p.radius_px)),
        };
        let n = points.len();
        for (k, d) in points.iter().enumerate() {
            if dashed && (k * 12 / n) % 2 == 1 {
                continue;
            }
            let (x, y) = (p.centre_px[0] + d[0], p.centre_px[1] + d[1]);
            dot(&mut img, clip, x, y, colour);
        }
        // the number at the upper right of the particle, with a halo
        let label = p.number.to_string();
        let tx = (p.centre_px[0] + 0.75 * p.radius_px) as f32;
        let ty = (p.centre_px[1] - 0.75 * p.radius_px) as f32 - font.as_scaled(scale).height();
        halo_text(&mut img, clip, &font, scale, (tx, ty), &label, colour);
    }
    if let Some(bar) = pixel_size_nm.and_then(|s| scale_bar(s, width as f64)) {
        let len = bar.length_px.round().max(1.0) as i64;
        let thick = (height as i64 / 200).max(3);
        let pad = (width.min(height) as i64 / 40).max(6);
        let r = Clip {
            x0: width as i64 - pad - len,
            y0: height as i64 - pad - thick,
            x1: width as i64 - pad,
            y1: height as i64 - pad,
        };
        let halo = Clip {
            x0: r.x0 - 1,
            y0: r.y0 - 1,
            x1: r.x1 + 1,
            y1: r.y1 + 1,
        };
        fill_rect(&mut img, clip, halo, HALO);
        fill_rect(&mut img, clip, r, [255; 4]);
        let w = text_width(&font, scale, &bar.label);
        let top = halo.y0 as f32 - font.as_scaled(scale).height() - 2.0;
        let x = ((r.x0 + r.x1) as f32 - w) / 2.0;
        halo_text(&mut img, clip, &font, scale, (x, top), &bar.label, [255; 4]);
    }
    Ok(img)
}

/// A particle in the table's nanometre frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParticleNm {
    pub number: usize,
    pub centre_nm: [f64; 2],
    pub axis: Option<Vec3>,
}

/// The overview of a whole localisation table at `pixel_nm` per pixel
/// (Picasso-style individual blur, at least one pixel; auto-contrast
/// saturating 0.5 %), with `particles` of centre-circle radius `radius_nm`.
pub fn table_overview(
    table: &LocTable,
    pixel_nm: f64,
    radius_nm: f64,
    particles: &[ParticleNm],
    lut: Lut,
) -> Result<RgbaImage, OutputError> {
    let margin = 2.0 * radius_nm.max(0.0);
    let view = LocView::covering(
        table.summary().extent_nm,
        pixel_nm,
        margin,
        MAX_PIXELS as usize,
    )
    .ok_or_else(|| {
        OutputError::Invalid(format!(
            "{}: the field at {pixel_nm} nm per pixel is too large (or the pixel size is unusable)",
            table.path.display()
        ))
    })?;
    let data = render_locs(
        &table.x_nm,
        &table.y_nm,
        table.precision_nm.as_deref(),
        &view,
        LocMode::Blur {
            min_blur_nm: pixel_nm as f32,
        },
    );
    field_overview(&data, &view, radius_nm, particles, lut, Some(pixel_nm))
}

/// The overview of any field rendered as `data` into `view` (a table's, or
/// an image's window), with `particles` (in the view's units) of
/// centre-circle radius `radius`; auto-contrast saturating 0.5 %, the
/// outside of an image drawn black. The scale bar needs `pixel_size_nm`.
pub fn field_overview(
    data: &[f32],
    view: &LocView,
    radius: f64,
    particles: &[ParticleNm],
    lut: Lut,
    pixel_size_nm: Option<f64>,
) -> Result<RgbaImage, OutputError> {
    let to_px = |c: [f64; 2]| {
        [
            (c[0] - view.origin_nm[0]) / view.pixel_nm,
            (c[1] - view.origin_nm[1]) / view.pixel_nm,
        ]
    };
    let parts: Vec<OverviewParticle> = particles
        .iter()
        .map(|p| OverviewParticle {
            number: p.number,
            centre_px: to_px(p.centre_nm),
            radius_px: radius / view.pixel_nm,
            axis: p.axis,
        })
        .collect();
    let contrast = auto_contrast(data, 0.005);
    let outside = crate::render::mip::OUTSIDE;
    let data: Vec<f32> = data
        .iter()
        .map(|&v| if v == outside { contrast.min } else { v })
        .collect();
    overview(
        &data,
        view.width,
        view.height,
        contrast,
        lut,
        &parts,
        pixel_size_nm,
    )
}

/// `text` in `colour` with a one-pixel black halo, readable on any field.
fn halo_text(
    img: &mut RgbaImage,
    clip: Clip,
    font: &ab_glyph::FontRef<'_>,
    scale: PxScale,
    (x, y): (f32, f32),
    text: &str,
    colour: [u8; 4],
) {
    for (dx, dy) in [(-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0)] {
        draw_text(img, clip, font, scale, (x + dx, y + dy), text, HALO);
    }
    draw_text(img, clip, font, scale, (x, y), text, colour);
}

/// The projected circle of radius `r` in the model's xy plane, posed by
/// `q`, as offsets from the centre (enough points for a 1-pixel line).
fn ellipse(q: Quat, r: f64) -> Vec<[f64; 2]> {
    let n = ((std::f64::consts::TAU * r * 2.0).ceil() as usize).clamp(32, 20_000);
    (0..n)
        .map(|k| {
            let u = std::f64::consts::TAU * k as f64 / n as f64;
            let v = q.rotate([r * u.cos(), r * u.sin(), 0.0]);
            [v[0], v[1]]
        })
        .collect()
}

/// A 2-pixel dot centred at `(x, y)`, spread over the pixels it covers.
fn dot(img: &mut RgbaImage, clip: Clip, x: f64, y: f64, colour: [u8; 4]) {
    let (fx, fy) = ((x - 0.5).floor(), (y - 0.5).floor());
    let (ax, ay) = ((x - 0.5 - fx) as f32, (y - 0.5 - fy) as f32);
    for (dx, wx) in [(0i64, 1.0 - ax), (1, ax)] {
        for (dy, wy) in [(0i64, 1.0 - ay), (1, ay)] {
            let alpha = (2.0 * wx * wy).min(1.0);
            blend(img, clip, fx as i64 + dx, fy as i64 + dy, colour, alpha);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(img: &RgbaImage, x: u32, y: u32) -> [u8; 4] {
        img.get_pixel(x, y).0
    }

    #[test]
    fn fitted_particles_are_drawn_as_their_projected_circle() {
        let (w, h) = (200, 120);
        let data = vec![0.0f32; w * h];
        // a face-on particle at (60, 60) r 30 and one seen edge-on (axis along x) at (150, 60)
        let parts = [
            OverviewParticle {
                number: 1,
                centre_px: [60.0, 60.0],
                radius_px: 30.0,
                axis: Some([0.0, 0.0, 1.0]),
            },
            OverviewParticle {
                number: 2,
                centre_px: [150.0, 60.0],
                radius_px: 30.0,
                axis: Some([1.0, 0.0, 0.0]),
            },
        ];
        let c = Contrast { min: 0.0, max: 1.0 };
        let img = overview(&data, w, h, c, Lut::Grey, &parts, None).unwrap();
        let green = |p: [u8; 4]| p[1] > 150 && p[0] < 150;
        // the face-on circle passes through (90, 60) and (60, 90), not its centre
        assert!(green(px(&img, 90, 60)) && green(px(&img, 60, 90)));
        assert!(!green(px(&img, 60, 60)));
        // the edge-on one is a vertical line through its centre, not a circle
        assert!(green(px(&img, 150, 80)));
        assert!(!green(px(&img, 180, 60)));
    }

    #[test]
    fn unfitted_picks_are_yellow_and_bad_sizes_are_errors() {
        let data = vec![0.0f32; 64 * 64];
        let c = Contrast { min: 0.0, max: 1.0 };
        let p = OverviewParticle {
            number: 7,
            centre_px: [32.0, 32.0],
            radius_px: 20.0,
            axis: None,
        };
        let img = overview(&data, 64, 64, c, Lut::Grey, &[p], Some(50.0)).unwrap();
        let yellow = img
            .pixels()
            .filter(|p| p.0[0] > 200 && p.0[1] > 150 && p.0[2] < 100)
            .count();
        assert!(yellow > 20, "{yellow}");
        assert!(overview(&data, 65, 64, c, Lut::Grey, &[p], None).is_err());
    }
}
