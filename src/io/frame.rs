//! What a reader produces: a [`Frame`] of `f32` values, the [`StackInfo`]
//! known after opening, the stored [`SampleType`], and the [`Limits`] on what
//! a file may make the reader allocate.

use std::fmt;
use std::path::{Path, PathBuf};

use super::IoError;

/// Caps on what a file may make the reader allocate.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest frame accepted, counted as `f32` bytes of one frame (`width * height * 4`).
    /// Default 4 GiB: a 32768 × 32768 whole-field image (a stitched or rendered field
    /// of 160 µm at 5 nm) opens; a header claiming more is refused before any allocation.
    pub max_frame_bytes: u64,
    /// Largest number of frames (TIFF pages, FITS planes) accepted. Default 10 000 000.
    pub max_frames: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 4 << 30,
            max_frames: 10_000_000,
        }
    }
}

impl Limits {
    /// Largest raw (undecoded) sample buffer of one page: twice `max_frame_bytes`.
    pub(crate) fn max_raw_bytes(&self) -> u64 {
        self.max_frame_bytes.saturating_mul(2)
    }

    /// Checks that a `width × height` frame fits `max_frame_bytes` (as `f32`).
    pub fn check_frame(&self, path: &Path, width: u64, height: u64) -> Result<(), IoError> {
        let bytes = width
            .checked_mul(height)
            .and_then(|n| n.checked_mul(4))
            .unwrap_or(u64::MAX);
        if bytes > self.max_frame_bytes || usize::try_from(bytes).is_err() {
            return Err(IoError::limit(
                path,
                format!(
                    "{width}×{height} frame needs {bytes} bytes as float32, above the limit of {} \
                     bytes (Limits::max_frame_bytes)",
                    self.max_frame_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Checks a frame count against `max_frames`.
    pub(crate) fn check_frames(&self, path: &Path, frames: u64) -> Result<(), IoError> {
        if frames > self.max_frames as u64 {
            return Err(IoError::limit(
                path,
                format!(
                    "{frames} frames, above the limit of {} (Limits::max_frames)",
                    self.max_frames
                ),
            ));
        }
        Ok(())
    }

    /// Checks a raw sample buffer size against [`Limits::max_raw_bytes`].
    pub(crate) fn check_raw(&self, path: &Path, what: &str, bytes: u64) -> Result<(), IoError> {
        if bytes > self.max_raw_bytes() || usize::try_from(bytes).is_err() {
            return Err(IoError::limit(
                path,
                format!(
                    "{what} needs a {bytes}-byte sample buffer, above the limit of {} bytes \
                     (2 × Limits::max_frame_bytes)",
                    self.max_raw_bytes()
                ),
            ));
        }
        Ok(())
    }
}

/// The type of the samples as stored in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleType {
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
}

impl SampleType {
    /// Bytes per sample.
    pub fn bytes(self) -> usize {
        match self {
            SampleType::U8 | SampleType::I8 => 1,
            SampleType::U16 | SampleType::I16 => 2,
            SampleType::U32 | SampleType::I32 | SampleType::F32 => 4,
            SampleType::F64 => 8,
        }
    }

    /// Whether the samples are floating point (and may hold NaN).
    pub fn is_float(self) -> bool {
        matches!(self, SampleType::F32 | SampleType::F64)
    }
}

impl fmt::Display for SampleType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SampleType::U8 => "uint8",
            SampleType::U16 => "uint16",
            SampleType::U32 => "uint32",
            SampleType::I8 => "int8",
            SampleType::I16 => "int16",
            SampleType::I32 => "int32",
            SampleType::F32 => "float32",
            SampleType::F64 => "float64",
        })
    }
}

/// One grey-scale image, row-major, with the file's original sample values as `f32`.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` values, row by row (`data[y * width + x]`).
    pub data: Vec<f32>,
}

impl Frame {
    /// A frame from its data.
    ///
    /// # Panics
    /// If `data.len() != width * height`.
    pub fn new(width: usize, height: usize, data: Vec<f32>) -> Self {
        assert_eq!(
            Some(data.len()),
            width.checked_mul(height),
            "frame data length must be width * height"
        );
        Frame {
            width,
            height,
            data,
        }
    }

    /// A frame filled with zeros.
    pub fn zeros(width: usize, height: usize) -> Self {
        Frame::new(width, height, vec![0.0; width * height])
    }

    /// The value at column `x`, row `y`.
    ///
    /// # Panics
    /// If `x >= width` or `y >= height`.
    pub fn get(&self, x: usize, y: usize) -> f32 {
        assert!(
            x < self.width && y < self.height,
            "pixel ({x}, {y}) outside {}×{} frame",
            self.width,
            self.height
        );
        self.data[y * self.width + x]
    }

    /// The frame at the continuous position `(x, y)` (pixel `(c, r)` spans
    /// `[c, c + 1) × [r, r + 1)`, its centre at `(c + ½, r + ½)`),
    /// interpolated bilinearly between pixel centres and held at the edge
    /// pixels' values beyond the outer centres; `None` outside
    /// `[0, width] × [0, height]`. Non-finite pixels make a non-finite value.
    pub fn bilinear(&self, x: f64, y: f64) -> Option<f32> {
        let (w, h) = (self.width as f64, self.height as f64);
        if !((0.0..=w).contains(&x) && (0.0..=h).contains(&y)) || self.data.is_empty() {
            return None;
        }
        let fx = (x - 0.5).clamp(0.0, w - 1.0);
        let fy = (y - 0.5).clamp(0.0, h - 1.0);
        let (x0, y0) = (fx as usize, fy as usize);
        let (x1, y1) = ((x0 + 1).min(self.width - 1), (y0 + 1).min(self.height - 1));
        let (tx, ty) = ((fx - x0 as f64) as f32, (fy - y0 as f64) as f32);
        let at = |x: usize, y: usize| self.data[y * self.width + x];
        Some(
            (at(x0, y0) * (1.0 - tx) + at(x1, y0) * tx) * (1.0 - ty)
                + (at(x0, y1) * (1.0 - tx) + at(x1, y1) * tx) * ty,
        )
    }

    /// Number of NaN and ±∞ pixels.
    pub fn non_finite_count(&self) -> usize {
        self.data.iter().filter(|v| !v.is_finite()).count()
    }

    /// The frame for scoring and fitting: non-finite pixels (NaN, ±∞, e.g.
    /// masked or saturated regions of a float image) replaced by the median
    /// of the finite ones, i.e. by the background, so that they add nothing
    /// but a background pixel to a correlation. Borrowed when every pixel is
    /// finite; `None` when none is. The count replaced comes with it.
    pub fn finite_filled(&self) -> Option<(std::borrow::Cow<'_, Frame>, usize)> {
        let bad = self.non_finite_count();
        if bad == 0 {
            return Some((std::borrow::Cow::Borrowed(self), 0));
        }
        if bad == self.data.len() {
            return None;
        }
        let mut finite: Vec<f32> = self
            .data
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        let mid = finite.len() / 2;
        let median = *finite.select_nth_unstable_by(mid, f32::total_cmp).1;
        let data = self
            .data
            .iter()
            .map(|&v| if v.is_finite() { v } else { median })
            .collect();
        let filled = Frame {
            width: self.width,
            height: self.height,
            data,
        };
        Some((std::borrow::Cow::Owned(filled), bad))
    }

    /// Smallest and largest value, ignoring NaN. `(NaN, NaN)` if there is no other value.
    pub fn min_max(&self) -> (f32, f32) {
        let mut lo = f32::INFINITY;
        let mut hi = f32::NEG_INFINITY;
        let mut any = false;
        for &v in &self.data {
            if !v.is_nan() {
                any = true;
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if any {
            (lo, hi)
        } else {
            (f32::NAN, f32::NAN)
        }
    }
}

/// What is known about a stack after opening it (before reading any pixel data).
#[derive(Clone, Debug)]
pub struct StackInfo {
    /// The file's path (for [`open_bytes`](super::open_bytes), the name given).
    pub path: PathBuf,
    /// `"TIFF"`, `"BigTIFF"`, `"FITS"`, `"PNG"` or `"JPEG"`.
    pub format: &'static str,
    /// Frame width in pixels.
    pub width: usize,
    /// Frame height in pixels.
    pub height: usize,
    /// Number of frames.
    pub frames: usize,
    /// Type of the stored samples (for FITS, after the usual BZERO unsigned-integer conventions).
    pub sample_type: SampleType,
    /// Bits per stored sample: the type's own width, or fewer for packed
    /// TIFF samples (1–31 bits, e.g. 12-bit camera data held as `U16`).
    pub bits_per_sample: u8,
    /// The colour map of a palette image (8-bit RGB per index); its frames
    /// hold the indices.
    pub palette: Option<Vec<[u8; 3]>>,
    /// Pixel size in nanometres, when the file states it.
    pub pixel_size_nm: Option<f64>,
    /// Notes about conversions and oddities (colour → luminance, NaN pixels, skipped pages …).
    /// Frames read later may append to this list.
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_samples_centres_between_and_edges() {
        // 3 × 2: row 0 = 0, 10, 20; row 1 = 100, 110, 120
        let f = Frame::new(3, 2, vec![0.0, 10.0, 20.0, 100.0, 110.0, 120.0]);
        assert_eq!(f.bilinear(1.5, 0.5), Some(10.0));
        assert_eq!(f.bilinear(2.0, 1.0), Some(65.0));
        // beyond the outer centres the edge pixel holds, up to the border
        assert_eq!(f.bilinear(0.0, 0.0), Some(0.0));
        assert_eq!(f.bilinear(3.0, 2.0), Some(120.0));
        assert_eq!(f.bilinear(-0.01, 1.0), None);
        assert_eq!(f.bilinear(1.0, 2.01), None);
        assert_eq!(f.bilinear(f64::NAN, 1.0), None);
    }
}
