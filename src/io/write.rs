//! Writers: multi-page grey-scale TIFF stacks and 16-bit PNG previews.
//!
//! Both write to `<path>.tmp` and rename it to `<path>` once complete, so a crash or error
//! never leaves a half-written file under the final name.

use std::fs::{self, File};
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use tiff::encoder::{colortype, Rational, TiffEncoder, TiffKind};
use tiff::tags::{ResolutionUnit, Tag};

use super::{Frame, IoError};

/// Sample type written by [`write_tiff_stack`].
#[derive(Clone, Copy, Debug)]
pub enum WriteSample {
    /// Unsigned 16-bit: values are rounded and clamped to `0..=65535` (NaN becomes 0).
    U16,
    /// 32-bit float: values are written unchanged.
    F32,
}

/// Files whose pixel data exceed this are written as BigTIFF.
const BIGTIFF_THRESHOLD: u64 = 4_000_000_000;

/// Writes `frames` as a multi-page grey-scale TIFF.
///
/// The first page carries an ImageJ description (`ImageJ=1.11a`, `images=N`, `frames=N` and,
/// with a pixel size, `unit=nm`), so ImageJ/Fiji open the file as a stack. With
/// `pixel_size_nm`, every page gets `XResolution`/`YResolution` = pixels per nm and
/// `ResolutionUnit` = none, the ImageJ convention that [`open`](super::open) reads back.
/// Stacks over about 4 GB are written as BigTIFF.
pub fn write_tiff_stack(
    path: &Path,
    frames: &[Frame],
    sample: WriteSample,
    pixel_size_nm: Option<f64>,
) -> Result<(), IoError> {
    let (width, height) = check_frames(path, frames)?;
    let w = u32::try_from(width)
        .map_err(|_| IoError::invalid_input(path, format!("width {width} exceeds TIFF's 2^32")))?;
    let h = u32::try_from(height).map_err(|_| {
        IoError::invalid_input(path, format!("height {height} exceeds TIFF's 2^32"))
    })?;
    let resolution = match pixel_size_nm {
        None => None,
        Some(p) => Some(pixels_per_nm(p).ok_or_else(|| {
            IoError::invalid_input(path, format!("pixel size {p} nm is not a positive number"))
        })?),
    };
    let mut description = format!("ImageJ=1.11a\nimages={}\n", frames.len());
    if frames.len() > 1 {
        description.push_str(&format!("frames={}\n", frames.len()));
    }
    if pixel_size_nm.is_some() {
        description.push_str("unit=nm\n");
    }
    description.push_str("loop=false\n");

    let bytes_per_sample: u64 = match sample {
        WriteSample::U16 => 2,
        WriteSample::F32 => 4,
    };
    let data_bytes = (width as u64)
        .saturating_mul(height as u64)
        .saturating_mul(bytes_per_sample)
        .saturating_mul(frames.len() as u64);
    let page = Page {
        width: w,
        height: h,
        sample,
        description: &description,
        resolution,
    };
    write_atomically(path, |file| {
        if data_bytes > BIGTIFF_THRESHOLD {
            let mut enc = TiffEncoder::new_big(file)?;
            encode_pages(&mut enc, frames, &page)
        } else {
            let mut enc = TiffEncoder::new(file)?;
            encode_pages(&mut enc, frames, &page)
        }
    })
}

/// Writes one frame as a 16-bit grey PNG, mapping `lo..hi` linearly to `0..65535` (values
/// outside are clamped, NaN becomes 0).
pub fn write_png_gray16(path: &Path, frame: &Frame, lo: f32, hi: f32) -> Result<(), IoError> {
    let (width, height) = check_frames(path, std::slice::from_ref(frame))?;
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return Err(IoError::invalid_input(
            path,
            format!("display range {lo}..{hi} must be finite with hi > lo"),
        ));
    }
    let w = u32::try_from(width)
        .map_err(|_| IoError::invalid_input(path, format!("width {width} too large for PNG")))?;
    let h = u32::try_from(height)
        .map_err(|_| IoError::invalid_input(path, format!("height {height} too large for PNG")))?;
    let scale = 65535.0 / (f64::from(hi) - f64::from(lo));
    let data: Vec<u16> = frame
        .data
        .iter()
        .map(|&v| {
            if v.is_nan() {
                0
            } else {
                ((f64::from(v) - f64::from(lo)) * scale)
                    .round()
                    .clamp(0.0, 65535.0) as u16
            }
        })
        .collect();
    let buffer = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_raw(w, h, data)
        .ok_or_else(|| IoError::invalid_input(path, "frame data does not match its size"))?;
    write_atomically(path, |file| {
        buffer.write_to(file, image::ImageFormat::Png)?;
        Ok(())
    })
}

/// Errors inside the writers, before they get the path attached.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("{0}")]
    Tiff(#[from] tiff::TiffError),
    #[error("{0}")]
    Image(#[from] image::ImageError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn check_frames(path: &Path, frames: &[Frame]) -> Result<(usize, usize), IoError> {
    let first = frames
        .first()
        .ok_or_else(|| IoError::invalid_input(path, "no frames to write"))?;
    let (w, h) = (first.width, first.height);
    if w == 0 || h == 0 {
        return Err(IoError::invalid_input(
            path,
            format!("frame size {w}×{h} is empty"),
        ));
    }
    for (i, f) in frames.iter().enumerate() {
        if (f.width, f.height) != (w, h) {
            return Err(IoError::invalid_input(
                path,
                format!(
                    "frame {i} is {}×{} but frame 0 is {w}×{h}",
                    f.width, f.height
                ),
            ));
        }
        if Some(f.data.len()) != w.checked_mul(h) {
            return Err(IoError::invalid_input(
                path,
                format!("frame {i} has {} values for {w}×{h} pixels", f.data.len()),
            ));
        }
    }
    Ok((w, h))
}

/// `1 / pixel_size_nm` as a TIFF rational with as many significant digits as fit.
fn pixels_per_nm(pixel_size_nm: f64) -> Option<Rational> {
    if !(pixel_size_nm.is_finite() && pixel_size_nm > 0.0) {
        return None;
    }
    // n / d = 1 / p  ⇔  d = p · n; take the largest power-of-ten n that keeps d in u32.
    let mut n: u64 = 1_000_000_000;
    while n > 1 && (pixel_size_nm * n as f64).round() > f64::from(u32::MAX) {
        n /= 10;
    }
    let d = (pixel_size_nm * n as f64).round();
    if d < 1.0 || d > f64::from(u32::MAX) {
        return None;
    }
    let d = d as u64;
    let g = gcd(n, d);
    Some(Rational {
        n: u32::try_from(n / g).ok()?,
        d: u32::try_from(d / g).ok()?,
    })
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

struct Page<'a> {
    width: u32,
    height: u32,
    sample: WriteSample,
    description: &'a str,
    resolution: Option<Rational>,
}

fn encode_pages<W: Write + Seek, K: TiffKind>(
    enc: &mut TiffEncoder<W, K>,
    frames: &[Frame],
    page: &Page<'_>,
) -> Result<(), WriteError> {
    let mut u16_buf: Vec<u16> = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        macro_rules! write_page {
            ($color:ty, $data:expr) => {{
                let mut image = enc.new_image::<$color>(page.width, page.height)?;
                let dir = image.encoder();
                if i == 0 {
                    dir.write_tag(Tag::ImageDescription, page.description)?;
                }
                if let Some(r) = &page.resolution {
                    dir.write_tag(Tag::XResolution, r.clone())?;
                    dir.write_tag(Tag::YResolution, r.clone())?;
                    dir.write_tag(Tag::ResolutionUnit, ResolutionUnit::None.to_u16())?;
                }
                image.write_data($data)?;
            }};
        }
        match page.sample {
            WriteSample::U16 => {
                u16_buf.clear();
                u16_buf.extend(frame.data.iter().map(|&v| {
                    if v.is_nan() {
                        0
                    } else {
                        v.round().clamp(0.0, 65535.0) as u16
                    }
                }));
                write_page!(colortype::Gray16, &u16_buf);
            }
            WriteSample::F32 => write_page!(colortype::Gray32Float, &frame.data),
        }
    }
    Ok(())
}

/// `<path>.tmp`.
fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Runs `write` on a buffered `<path>.tmp`, syncs it and renames it to `path`; removes the
/// temporary file on failure.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), WriteError>,
) -> Result<(), IoError> {
    let tmp = tmp_path(path);
    let result = (|| -> Result<(), IoError> {
        let file = File::create(&tmp).map_err(|e| IoError::io(&tmp, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        write(&mut out).map_err(|e| match e {
            WriteError::Io(io) => IoError::io(&tmp, io),
            other => IoError::invalid_input(path, format!("encoder failed: {other}")),
        })?;
        let file = out
            .into_inner()
            .map_err(|e| IoError::io(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| IoError::io(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| IoError::io(path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rational_round_trips_pixel_size() {
        for p in [108.3, 65.0, 160.0, 0.5, 1.0, 6500.25, 1e-3] {
            let r = pixels_per_nm(p).unwrap();
            let back = f64::from(r.d) / f64::from(r.n);
            assert!(
                (back - p).abs() <= 1e-9 * p,
                "{p} → {}/{} → {back}",
                r.n,
                r.d
            );
        }
        assert!(pixels_per_nm(0.0).is_none());
        assert!(pixels_per_nm(f64::NAN).is_none());
        assert!(pixels_per_nm(-3.0).is_none());
    }

    #[test]
    fn tmp_path_appends_suffix() {
        assert_eq!(tmp_path(Path::new("a/b.tif")), PathBuf::from("a/b.tif.tmp"));
    }
}
