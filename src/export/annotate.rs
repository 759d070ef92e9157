//! Annotated PNG of one fitted frame: the raw frame, the model render and
//! their overlay side by side, a scale bar, and the pose written out below.
//! The viewer's Ctrl+E and `posescope export` both go through [`annotate`]
//! and [`write_png`].
//!
//! ```text
//!  ┌──────────────────────────────────────────────┐
//!  │ raw          model         overlay           │  captions
//!  │ ┌────────┐   ┌────────┐   ┌────────┐         │
//!  │ │        │   │        │   │        │         │  tiles, each upscale× nearest-neighbour
//!  │ │   ▬▬ 1µm   │        │   │        │         │  scale bar in the raw tile
//!  │ └────────┘   └────────┘   └────────┘         │
//!  │ file / frame / rotation / q / axis / …       │  annotation_lines
//!  └──────────────────────────────────────────────┘
//! ```
//!
//! Colours come from [`crate::render::display`], so the tiles match the
//! viewer. Text is the Hack font that egui ships, rasterised with `ab_glyph`.

use std::path::Path;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::{ImageEncoder, Rgba, RgbaImage};

use crate::geometry::Pose;
use crate::io::Frame;
use crate::io::{atomic_write, OutputError};
use crate::render::display::{colorize, overlay_rgba, scale_bar, Contrast, Lut};

/// Largest exported image side in pixels; larger layouts are refused.
pub const MAX_SIDE: u32 = 16_384;
/// Largest integer zoom of the tiles.
pub const MAX_UPSCALE: u32 = 16;
/// Background colour.
pub const BACKGROUND: [u8; 4] = [32, 32, 32, 255];
/// Text colour.
const TEXT: [u8; 4] = [225, 225, 225, 255];
/// Scale bar colour and its outline.
const BAR: [u8; 4] = [255, 255, 255, 255];
const BAR_OUTLINE: [u8; 4] = [0, 0, 0, 255];
/// Captions above the tiles, left to right.
pub const CAPTIONS: [&str; 3] = ["raw", "model", "overlay"];
/// Longest file name shown; longer ones keep their end, after "…".
const MAX_FILE_CHARS: usize = 72;

/// What is written under the tiles.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    /// Source file, as shown.
    pub file: String,
    /// Frame index in the file, from 0 (as in the pose CSV).
    pub frame: usize,
    /// Number of frames in the file.
    pub frames: usize,
    /// The pose (rotation model → camera, shift in pixels).
    pub pose: Pose,
    /// PSF σ in pixels.
    pub sigma: f64,
    /// Fit score (normalised cross-correlation), if any.
    pub score: Option<f64>,
    /// The fit's axis standard error from photon noise, degrees, if known.
    pub axis_sd_deg: Option<f64>,
    /// Model name.
    pub model: String,
    /// Pixel size in nm; draws the scale bar when known.
    pub pixel_size_nm: Option<f64>,
}

/// `x` with `decimals` decimals, "—" when not finite, and no "-0.00".
fn fixed(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    let s = format!("{x:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// `(a, b, c)` with `decimals` decimals each.
fn tuple(v: &[f64], decimals: usize) -> String {
    let parts: Vec<String> = v.iter().map(|&x| fixed(x, decimals)).collect();
    format!("({})", parts.join(", "))
}

/// Angle in degrees between an axis and the optical axis (camera z), folded
/// into 0–90° since ±axis and the projection mirror look the same.
pub fn axis_tilt_deg(axis: [f64; 3]) -> f64 {
    let n = (axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]).sqrt();
    if !(n > 0.0 && n.is_finite()) {
        return f64::NAN;
    }
    (axis[2].abs() / n).clamp(0.0, 1.0).acos().to_degrees()
}

/// The text block: file, frame, rotation (ZYZ Euler, quaternion, axis and
/// its tilt from the optical axis), shift, σ, score and model. Quaternion
/// and axis to 4 decimals, angles to 2. Values that are not finite (a failed
/// fit) show as "—".
pub fn annotation_lines(a: &Annotation) -> Vec<String> {
    let file: String = if a.file.chars().count() > MAX_FILE_CHARS {
        let tail: Vec<char> = a.file.chars().rev().take(MAX_FILE_CHARS - 1).collect();
        std::iter::once('…').chain(tail.into_iter().rev()).collect()
    } else {
        a.file.clone()
    };
    let q = a.pose.q.canonical();
    let (rot, tilt, psi) = if q.is_finite() {
        q.to_euler_zyz_deg()
    } else {
        (f64::NAN, f64::NAN, f64::NAN)
    };
    let axis = if q.is_finite() {
        q.axis()
    } else {
        [f64::NAN; 3]
    };
    let score = a.score.map_or_else(|| "—".to_string(), |s| fixed(s, 4));
    let mut model = format!("model {}", a.model);
    if let Some(px) = a.pixel_size_nm.filter(|p| p.is_finite() && *p > 0.0) {
        model.push_str(&format!("   pixel {} nm", fixed(px, 2)));
    }
    vec![
        file,
        format!("frame {} / {}", a.frame, a.frames),
        format!(
            "Euler ZYZ (RELION rot, tilt, psi): rot {}°  tilt {}°  psi {}°",
            fixed(rot, 2),
            fixed(tilt, 2),
            fixed(psi, 2)
        ),
        format!("q (w, x, y, z) = {}", tuple(&[q.w, q.x, q.y, q.z], 4)),
        format!(
            "axis (x, y, z) = {}   tilt from optical axis {}°{}",
            tuple(&axis, 4),
            fixed(axis_tilt_deg(axis), 2),
            a.axis_sd_deg
                .filter(|s| s.is_finite())
                .map_or(String::new(), |s| format!(
                    "   ± {}° (photon noise)",
                    fixed(s, 2)
                ))
        ),
        format!(
            "shift (x, y) = {} px   σ = {} px",
            tuple(&a.pose.shift, 2),
            fixed(a.sigma, 2)
        ),
        format!("score (NCC) {score}"),
        model,
    ]
}

/// How the tiles look.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AnnotateOptions {
    /// Colour map of the raw and model tiles.
    pub lut: Lut,
    /// Contrast of the raw tile (and of the raw channel of the overlay). The
    /// model tile always uses the model's full range.
    pub contrast: Contrast,
    /// Integer nearest-neighbour zoom of the tiles, `1..=`[`MAX_UPSCALE`].
    pub upscale: u32,
}

impl Default for AnnotateOptions {
    /// Grey, contrast `[0, 1]` (set it from the frame, e.g. with
    /// [`AnnotateOptions::for_frame`]), upscale 4.
    fn default() -> Self {
        Self {
            lut: Lut::Grey,
            contrast: Contrast::default(),
            upscale: 4,
        }
    }
}

impl AnnotateOptions {
    /// The defaults with Fiji-style auto-contrast (0.35 % saturated) of `data`.
    pub fn for_frame(data: &[f32]) -> Self {
        Self {
            contrast: crate::render::display::auto_contrast(
                data,
                crate::render::display::auto_contrast_fraction(0),
            ),
            ..Self::default()
        }
    }
}

/// Where everything goes in the exported image (pixels of the output).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layout {
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// Width of one tile (frame width × upscale).
    pub tile_width: u32,
    /// Height of one tile (frame height × upscale).
    pub tile_height: u32,
    /// Top-left corners `[x, y]` of the raw, model and overlay tiles.
    pub tiles: [[u32; 2]; 3],
    /// Top of the caption row.
    pub caption_top: u32,
    /// Top of the first text line below the tiles.
    pub text_top: u32,
    /// Height of one text line.
    pub line_height: u32,
    /// Font size of captions and text, in pixels.
    pub font_px: f32,
    /// Margin around everything and gap between tiles.
    pub gap: u32,
}

fn invalid(msg: impl Into<String>) -> OutputError {
    OutputError::Invalid(msg.into())
}

pub(super) fn hack() -> Result<FontRef<'static>, OutputError> {
    FontRef::try_from_slice(epaint_default_fonts::HACK_REGULAR)
        .map_err(|e| invalid(format!("bundled font: {e}")))
}

/// Font size for an upscale: grows with the zoom so text keeps its size
/// relative to the tiles.
fn font_px(upscale: u32) -> f32 {
    (5.0 * upscale as f32).clamp(13.0, 64.0)
}

/// Width in pixels of `text` set in `font` at `scale`.
pub(super) fn text_width(font: &FontRef<'_>, scale: PxScale, text: &str) -> f32 {
    let sf = font.as_scaled(scale);
    let mut w = 0.0;
    let mut prev = None;
    for c in text.chars() {
        let id = sf.glyph_id(c);
        if let Some(p) = prev {
            w += sf.kern(p, id);
        }
        w += sf.h_advance(id);
        prev = Some(id);
    }
    w
}

fn to_u32(x: u64, what: &str) -> Result<u32, OutputError> {
    match u32::try_from(x) {
        Ok(v) if v <= MAX_SIDE => Ok(v),
        _ => Err(invalid(format!(
            "{what} of {x} px exceeds the {MAX_SIDE} px limit; lower the upscale"
        ))),
    }
}

/// The layout of a `width × height` frame exported with `opts` and the text
/// `lines` (from [`annotation_lines`]); an error when the upscale is out of
/// range, the frame is empty, or a side would exceed [`MAX_SIDE`].
pub fn layout(
    width: usize,
    height: usize,
    opts: &AnnotateOptions,
    lines: &[String],
) -> Result<Layout, OutputError> {
    if !(1..=MAX_UPSCALE).contains(&opts.upscale) {
        return Err(invalid(format!(
            "upscale must be 1 to {MAX_UPSCALE}, got {}",
            opts.upscale
        )));
    }
    if width == 0 || height == 0 {
        return Err(invalid(format!("empty frame ({width}×{height})")));
    }
    let u = u64::from(opts.upscale);
    let big = |x: usize| u64::try_from(x).unwrap_or(u64::MAX);
    let tile_w = to_u32(big(width).saturating_mul(u), "tile width")?;
    let tile_h = to_u32(big(height).saturating_mul(u), "tile height")?;
    let font = hack()?;
    let font_px = font_px(opts.upscale);
    let scale = PxScale::from(font_px);
    let sf = font.as_scaled(scale);
    let line_h = ((sf.ascent() - sf.descent() + sf.line_gap()).ceil() as u32).max(1);
    let gap = (2 * opts.upscale).max(8);
    let text_w = lines
        .iter()
        .map(|l| text_width(&font, scale, l).ceil() as u64)
        .max()
        .unwrap_or(0);
    let tiles_w = 3 * u64::from(tile_w) + 2 * u64::from(gap);
    let width_total = to_u32(tiles_w.max(text_w) + 2 * u64::from(gap), "image width")?;
    let caption_top = gap;
    let tile_top = caption_top + line_h + gap / 2;
    let text_top = u64::from(tile_top) + u64::from(tile_h) + u64::from(gap);
    let height_total = to_u32(
        text_top + big(lines.len()).saturating_mul(u64::from(line_h)) + u64::from(gap),
        "image height",
    )?;
    let tiles = std::array::from_fn(|k| [gap + k as u32 * (tile_w + gap), tile_top]);
    Ok(Layout {
        width: width_total,
        height: height_total,
        tile_width: tile_w,
        tile_height: tile_h,
        tiles,
        caption_top,
        text_top: text_top as u32,
        line_height: line_h,
        font_px,
        gap,
    })
}

/// A clip rectangle `[x0, x1) × [y0, y1)` in output pixels.
#[derive(Clone, Copy)]
pub(super) struct Clip {
    pub(super) x0: i64,
    pub(super) y0: i64,
    pub(super) x1: i64,
    pub(super) y1: i64,
}

impl Clip {
    pub(super) fn of(img: &RgbaImage) -> Clip {
        Clip {
            x0: 0,
            y0: 0,
            x1: i64::from(img.width()),
            y1: i64::from(img.height()),
        }
    }

    fn contains(&self, x: i64, y: i64) -> bool {
        x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1
    }
}

/// Blends `colour` over pixel `(x, y)` with coverage `alpha` in 0..1.
pub(super) fn blend(img: &mut RgbaImage, clip: Clip, x: i64, y: i64, colour: [u8; 4], alpha: f32) {
    let img_clip = Clip::of(img);
    if !clip.contains(x, y) || !img_clip.contains(x, y) {
        return;
    }
    let a = alpha.clamp(0.0, 1.0);
    let p = img.get_pixel_mut(x as u32, y as u32);
    for (dst, &src) in p.0.iter_mut().zip(&colour).take(3) {
        *dst = (f32::from(*dst) * (1.0 - a) + f32::from(src) * a).round() as u8;
    }
    p.0[3] = 255;
}

pub(super) fn fill_rect(img: &mut RgbaImage, clip: Clip, r: Clip, colour: [u8; 4]) {
    for y in r.y0..r.y1 {
        for x in r.x0..r.x1 {
            blend(img, clip, x, y, colour, 1.0);
        }
    }
}

/// Draws `text` with its top-left at `(x, top)`.
pub(super) fn draw_text(
    img: &mut RgbaImage,
    clip: Clip,
    font: &FontRef<'_>,
    scale: PxScale,
    (x, top): (f32, f32),
    text: &str,
    colour: [u8; 4],
) {
    let sf = font.as_scaled(scale);
    let baseline = top + sf.ascent();
    let mut pen = x;
    let mut prev = None;
    for c in text.chars() {
        let id = sf.glyph_id(c);
        if let Some(p) = prev {
            pen += sf.kern(p, id);
        }
        let glyph = id.with_scale_and_position(scale, ab_glyph::point(pen, baseline));
        if let Some(outlined) = font.outline_glyph(glyph) {
            let b = outlined.px_bounds();
            let (bx, by) = (b.min.x as i64, b.min.y as i64);
            outlined.draw(|gx, gy, cov| {
                blend(
                    img,
                    clip,
                    bx + i64::from(gx),
                    by + i64::from(gy),
                    colour,
                    cov,
                );
            });
        }
        pen += sf.h_advance(id);
        prev = Some(id);
    }
}

/// Copies RGBA8 `pixels` of a `w × h` image into `img` at `(x0, y0)`, each
/// pixel as an `upscale × upscale` block.
fn blit(img: &mut RgbaImage, pixels: &[u8], w: usize, (x0, y0): (u32, u32), upscale: u32) {
    for (i, px) in pixels.chunks_exact(4).enumerate() {
        let (sx, sy) = ((i % w) as u32, (i / w) as u32);
        let colour = Rgba([px[0], px[1], px[2], px[3]]);
        for dy in 0..upscale {
            for dx in 0..upscale {
                img.put_pixel(x0 + sx * upscale + dx, y0 + sy * upscale + dy, colour);
            }
        }
    }
}

/// Draws the scale bar in the bottom-right corner of the raw tile.
fn draw_scale_bar(
    img: &mut RgbaImage,
    font: &FontRef<'_>,
    lay: &Layout,
    frame_width: usize,
    pixel_size_nm: f64,
    upscale: u32,
) {
    let Some(bar) = scale_bar(pixel_size_nm, frame_width as f64) else {
        return;
    };
    let u = i64::from(upscale);
    let [tx, ty] = lay.tiles[0].map(i64::from);
    let tile = Clip {
        x0: tx,
        y0: ty,
        x1: tx + i64::from(lay.tile_width),
        y1: ty + i64::from(lay.tile_height),
    };
    let len = ((bar.length_px * upscale as f64).round() as i64).max(1);
    let thick = u.max(2);
    let outline = (u / 4).max(1);
    let pad = (2 * u).max(3);
    let x1 = tile.x1 - pad;
    let y1 = tile.y1 - pad;
    let r = Clip {
        x0: (x1 - len).max(tile.x0 + outline),
        y0: y1 - thick,
        x1,
        y1,
    };
    let halo = Clip {
        x0: r.x0 - outline,
        y0: r.y0 - outline,
        x1: r.x1 + outline,
        y1: r.y1 + outline,
    };
    fill_rect(img, tile, halo, BAR_OUTLINE);
    fill_rect(img, tile, r, BAR);
    // label centred above the bar, kept inside the tile
    let scale = PxScale::from((lay.font_px * 0.8).max(11.0));
    let w = text_width(font, scale, &bar.label);
    let height = font.as_scaled(scale).height();
    let cx = (r.x0 + r.x1) as f32 / 2.0;
    let x = (cx - w / 2.0)
        .min(tile.x1 as f32 - w - 1.0)
        .max(tile.x0 as f32 + 1.0);
    let top = halo.y0 as f32 - height - outline as f32;
    for (dx, dy) in [(-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0)] {
        let off = outline as f32;
        let pos = (x + dx * off, top + dy * off);
        draw_text(img, tile, font, scale, pos, &bar.label, BAR_OUTLINE);
    }
    draw_text(img, tile, font, scale, (x, top), &bar.label, BAR);
}

/// The annotated image of `raw` and its model render `model` (same size,
/// row-major): raw, model and overlay tiles with captions, a scale bar when
/// the pixel size is known, and [`annotation_lines`] below; see [`layout`].
///
/// Errors (never panics) when the model or frame data do not match the
/// frame size, the upscale is out of range or the image would be too large.
pub fn annotate(
    raw: &Frame,
    model: &[f32],
    a: &Annotation,
    opts: &AnnotateOptions,
) -> Result<RgbaImage, OutputError> {
    let (w, h) = (raw.width, raw.height);
    let n = w.checked_mul(h);
    if n != Some(raw.data.len()) {
        return Err(invalid(format!(
            "frame holds {} values for {w}×{h} pixels",
            raw.data.len()
        )));
    }
    if n != Some(model.len()) {
        return Err(invalid(format!(
            "model render holds {} values for a {w}×{h} frame",
            model.len()
        )));
    }
    let lines = annotation_lines(a);
    let lay = layout(w, h, opts, &lines)?;
    let font = hack()?;
    let mut img = RgbaImage::from_pixel(lay.width, lay.height, Rgba(BACKGROUND));
    let clip = Clip::of(&img);

    let model_c = Contrast::full(model);
    let tiles = [
        colorize(&raw.data, opts.contrast, opts.lut),
        colorize(model, model_c, opts.lut),
        overlay_rgba(&raw.data, opts.contrast, model, model_c),
    ];
    let scale = PxScale::from(lay.font_px);
    for (k, pixels) in tiles.iter().enumerate() {
        let [x, y] = lay.tiles[k];
        blit(&mut img, pixels, w, (x, y), opts.upscale);
        let pos = (x as f32, lay.caption_top as f32);
        draw_text(&mut img, clip, &font, scale, pos, CAPTIONS[k], TEXT);
    }
    if let Some(px) = a.pixel_size_nm {
        draw_scale_bar(&mut img, &font, &lay, w, px, opts.upscale);
    }
    for (i, line) in lines.iter().enumerate() {
        let top = lay.text_top as f32 + (i as u32 * lay.line_height) as f32;
        draw_text(
            &mut img,
            clip,
            &font,
            scale,
            (lay.gap as f32, top),
            line,
            TEXT,
        );
    }
    Ok(img)
}

/// Writes `img` as an 8-bit RGBA PNG to `path` (temp file, then rename), so
/// a failure leaves no file.
pub fn write_png(path: &Path, img: &RgbaImage) -> Result<(), OutputError> {
    atomic_write(path, |w| {
        image::codecs::png::PngEncoder::new(w)
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgba8,
            )
            .map_err(|e| OutputError::Io {
                path: path.to_path_buf(),
                cause: std::io::Error::other(e),
            })
    })
}

/// Standard file name of an exported frame: `<stem>_f<frame, 4 digits>.png`,
/// e.g. `stack_f0007.png`.
pub fn export_dir_name(file: &Path, frame: usize) -> String {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "frame".into());
    format!("{stem}_f{frame:04}.png")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Quat;

    fn annotation() -> Annotation {
        Annotation {
            file: "data/stack.tif".into(),
            frame: 7,
            frames: 20,
            pose: Pose::new(Quat::from_euler_zyz_deg(30.0, 60.0, -45.0), [1.5, -2.0]),
            sigma: 1.6,
            score: Some(0.93),
            axis_sd_deg: Some(0.25),
            model: "torus".into(),
            pixel_size_nm: None,
        }
    }

    #[test]
    fn lines_carry_the_pose() {
        let lines = annotation_lines(&annotation());
        let all = lines.join("\n");
        assert_eq!(lines[0], "data/stack.tif");
        assert_eq!(lines[1], "frame 7 / 20");
        assert!(all.contains("   ± 0.25° (photon noise)"), "{all}");
        assert!(all.contains("ZYZ (RELION rot, tilt, psi)"), "{all}");
        assert!(
            all.contains("rot 30.00°  tilt 60.00°  psi -45.00°"),
            "{all}"
        );
        let q = Quat::from_euler_zyz_deg(30.0, 60.0, -45.0).canonical();
        let qs = format!("({:.4}, {:.4}, {:.4}, {:.4})", q.w, q.x, q.y, q.z);
        assert!(all.contains(&format!("q (w, x, y, z) = {qs}")), "{all}");
        assert!(all.contains("tilt from optical axis 60.00°"), "{all}");
        assert!(all.contains("shift (x, y) = (1.50, -2.00) px"), "{all}");
        assert!(all.contains("σ = 1.60 px"), "{all}");
        assert!(all.contains("score (NCC) 0.9300"), "{all}");
        assert!(all.contains("model torus"), "{all}");
        assert!(!all.contains("-0.00"), "{all}");
    }

    #[test]
    fn lines_without_score_or_pose() {
        let mut a = annotation();
        a.score = None;
        a.pose = Pose::new(Quat::NAN, [f64::NAN; 2]);
        a.file = "x".repeat(500);
        let lines = annotation_lines(&a);
        assert!(lines.iter().any(|l| l == "score (NCC) —"), "{lines:?}");
        assert!(lines[2].contains("rot —°"), "{}", lines[2]);
        assert!(!lines.join("").contains("NaN"));
        assert_eq!(lines[0].chars().count(), MAX_FILE_CHARS);
        assert!(lines[0].starts_with('…'));
    }

    #[test]
    fn axis_tilt_folds_sign_and_mirror() {
        assert!((axis_tilt_deg([0.0, 0.0, 1.0])).abs() < 1e-9);
        assert!((axis_tilt_deg([0.0, 0.0, -1.0])).abs() < 1e-9);
        assert!((axis_tilt_deg([1.0, 0.0, 0.0]) - 90.0).abs() < 1e-9);
        let t = axis_tilt_deg([0.5, 0.0, -(0.75f64).sqrt()]);
        assert!((t - 30.0).abs() < 1e-9, "{t}");
        // a tilt past 90° reads as its mirror
        let q = Quat::from_euler_zyz_deg(10.0, 120.0, 0.0);
        assert!((axis_tilt_deg(q.axis()) - 60.0).abs() < 1e-9);
        assert!(axis_tilt_deg([0.0; 3]).is_nan());
    }

    #[test]
    fn font_has_the_symbols_used() {
        let font = hack().unwrap();
        for c in ['σ', 'µ', '°', '—', '…', '×'] {
            assert_ne!(font.glyph_id(c).0, 0, "no glyph for {c}");
        }
    }

    #[test]
    fn layout_checks_limits() {
        let lines = annotation_lines(&annotation());
        let opts = AnnotateOptions::default();
        let l = layout(64, 48, &opts, &lines).unwrap();
        assert_eq!((l.tile_width, l.tile_height), (256, 192));
        assert!(l.width >= 3 * 256 && l.tiles[2][0] + 256 <= l.width);
        assert!(l.tiles[0][0] + 256 < l.tiles[1][0]);
        assert!(l.text_top >= l.tiles[0][1] + 192);
        assert_eq!(
            l.height,
            l.text_top + lines.len() as u32 * l.line_height + l.gap
        );
        for bad in [0, 17] {
            let o = AnnotateOptions {
                upscale: bad,
                ..opts
            };
            assert!(layout(64, 48, &o, &lines).is_err());
        }
        assert!(layout(0, 48, &opts, &lines).is_err());
        let o = AnnotateOptions {
            upscale: 16,
            ..opts
        };
        let e = layout(2000, 10, &o, &lines).unwrap_err().to_string();
        assert!(e.contains("16384"), "{e}");
        assert!(layout(usize::MAX, usize::MAX, &o, &lines).is_err());
    }

    #[test]
    fn annotate_rejects_bad_sizes() {
        let frame = Frame {
            width: 4,
            height: 4,
            data: vec![0.0; 15],
        };
        let a = annotation();
        let opts = AnnotateOptions::default();
        assert!(annotate(&frame, &[0.0; 16], &a, &opts).is_err());
        let frame = Frame::new(4, 4, vec![0.0; 16]);
        let e = annotate(&frame, &[0.0; 9], &a, &opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("model"), "{e}");
        assert!(annotate(&frame, &[0.0; 16], &a, &opts).is_ok());
    }

    #[test]
    fn export_names() {
        assert_eq!(
            export_dir_name(Path::new("/d/stack.tif"), 7),
            "stack_f0007.png"
        );
        assert_eq!(
            export_dir_name(Path::new("a.b.ome.tif"), 12345),
            "a.b.ome_f12345.png"
        );
        assert_eq!(export_dir_name(Path::new(""), 0), "frame_f0000.png");
    }

    #[test]
    fn options_for_frame_use_auto_contrast() {
        let data: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let o = AnnotateOptions::for_frame(&data);
        assert!(o.contrast.min > 0.0 && o.contrast.max < 999.0, "{o:?}");
        assert_eq!(o.upscale, 4);
    }
}
