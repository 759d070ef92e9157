//! PNG and JPEG (one frame each) through the `image` crate.
//!
//! Opening reads only the header (dimensions and colour type) and checks that the file is
//! complete: a PNG must end with its `IEND` chunk and a JPEG's last scan must be followed by
//! an end-of-image marker, since both decoders may otherwise return partial images without
//! complaint. The pixels are decoded when frame 0 is requested.

use std::io::{Read, SeekFrom};
use std::path::Path;

use image::{ColorType, DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};

use super::{guard, luminance_warning, Ctx, Frame, Header, IoError, SampleType, Source, LUMA};

/// The 12 bytes of a PNG `IEND` chunk (length 0, type, CRC).
const IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];

/// Reader state for an open PNG or JPEG.
pub(crate) struct RasterBackend {
    format: ImageFormat,
    width: u32,
    height: u32,
}

impl RasterBackend {
    pub(crate) fn open(
        source: &mut dyn Source,
        ctx: &Ctx<'_>,
        file_len: u64,
        png: bool,
    ) -> Result<(Self, Header), IoError> {
        let path = ctx.path;
        let (format, name) = if png {
            check_png_end(source, path, file_len)?;
            (ImageFormat::Png, "PNG")
        } else {
            check_jpeg_structure(source, path)?;
            (ImageFormat::Jpeg, "JPEG")
        };
        let (width, height, color) = guard(path, name, || {
            source
                .seek(SeekFrom::Start(0))
                .map_err(|e| IoError::io(path, e))?;
            let mut reader = ImageReader::with_format(&mut *source, format);
            reader.limits(image_limits(ctx));
            let decoder = reader.into_decoder().map_err(|e| image_error(path, e))?;
            let (w, h) = decoder.dimensions();
            ctx.limits.check_frame(path, u64::from(w), u64::from(h))?;
            ctx.limits.check_raw(path, name, decoder.total_bytes())?;
            Ok((w, h, decoder.color_type()))
        })?;
        let mut warnings = Vec::new();
        let sample_type = match color {
            ColorType::L8 | ColorType::La8 | ColorType::Rgb8 | ColorType::Rgba8 => SampleType::U8,
            ColorType::L16 | ColorType::La16 | ColorType::Rgb16 | ColorType::Rgba16 => {
                SampleType::U16
            }
            ColorType::Rgb32F | ColorType::Rgba32F => SampleType::F32,
            other => {
                return Err(IoError::unsupported(
                    path,
                    format!("{name} colour type {other:?}"),
                ))
            }
        };
        if color.has_color() {
            warnings.push(luminance_warning(&format!("{name} colour image")));
        }
        if color.has_alpha() {
            warnings.push("alpha channel ignored".to_string());
        }
        let header = Header {
            format: name,
            width: width as usize,
            height: height as usize,
            frames: 1,
            sample_type,
            bits_per_sample: (8 * sample_type.bytes()) as u8,
            palette: None,
            pixel_size_nm: None,
            warnings,
        };
        Ok((
            RasterBackend {
                format,
                width,
                height,
            },
            header,
        ))
    }

    pub(crate) fn read_frame(
        &self,
        source: &mut dyn Source,
        ctx: &Ctx<'_>,
    ) -> Result<Frame, IoError> {
        let path = ctx.path;
        let image = guard(path, "image", || {
            source
                .seek(SeekFrom::Start(0))
                .map_err(|e| IoError::io(path, e))?;
            let mut reader = ImageReader::with_format(&mut *source, self.format);
            reader.limits(image_limits(ctx));
            let decoder = reader.into_decoder().map_err(|e| image_error(path, e))?;
            DynamicImage::from_decoder(decoder).map_err(|e| image_error(path, e))
        })?;
        if (image.width(), image.height()) != (self.width, self.height) {
            return Err(IoError::corrupt(
                path,
                format!(
                    "decoded {}×{} but the header says {}×{}",
                    image.width(),
                    image.height(),
                    self.width,
                    self.height
                ),
            ));
        }
        let data = match image {
            DynamicImage::ImageLuma8(b) => b.into_raw().into_iter().map(f32::from).collect(),
            DynamicImage::ImageLumaA8(b) => first_of(b.as_raw(), 2, f32::from),
            DynamicImage::ImageRgb8(b) => luminance(b.as_raw(), 3, f32::from),
            DynamicImage::ImageRgba8(b) => luminance(b.as_raw(), 4, f32::from),
            DynamicImage::ImageLuma16(b) => b.into_raw().into_iter().map(f32::from).collect(),
            DynamicImage::ImageLumaA16(b) => first_of(b.as_raw(), 2, f32::from),
            DynamicImage::ImageRgb16(b) => luminance(b.as_raw(), 3, f32::from),
            DynamicImage::ImageRgba16(b) => luminance(b.as_raw(), 4, f32::from),
            DynamicImage::ImageRgb32F(b) => luminance(b.as_raw(), 3, |v| v),
            DynamicImage::ImageRgba32F(b) => luminance(b.as_raw(), 4, |v| v),
            other => {
                return Err(IoError::unsupported(
                    path,
                    format!("decoded colour type {:?}", other.color()),
                ))
            }
        };
        Ok(Frame {
            width: self.width as usize,
            height: self.height as usize,
            data,
        })
    }
}

fn image_limits(ctx: &Ctx<'_>) -> image::Limits {
    let mut l = image::Limits::default();
    l.max_alloc = Some(ctx.limits.max_raw_bytes());
    l
}

fn first_of<T: Copy>(v: &[T], spp: usize, f: impl Fn(T) -> f32) -> Vec<f32> {
    v.chunks_exact(spp).map(|p| f(p[0])).collect()
}

fn luminance<T: Copy>(v: &[T], spp: usize, f: impl Fn(T) -> f32) -> Vec<f32> {
    v.chunks_exact(spp)
        .map(|p| LUMA[0] * f(p[0]) + LUMA[1] * f(p[1]) + LUMA[2] * f(p[2]))
        .collect()
}

fn image_error(path: &Path, e: ImageError) -> IoError {
    match e {
        ImageError::Limits(l) => IoError::limit(path, format!("image decoder: {l}")),
        ImageError::IoError(io) => IoError::read(path, "image data", io),
        ImageError::Unsupported(u) => IoError::unsupported(path, u.to_string()),
        other => IoError::corrupt(path, other.to_string()),
    }
}

/// A PNG must end with an `IEND` chunk; allow up to 64 KiB of trailing bytes after it.
fn check_png_end(source: &mut dyn Source, path: &Path, file_len: u64) -> Result<(), IoError> {
    let tail_len = file_len.min(64 * 1024);
    let mut tail = vec![0u8; tail_len as usize];
    super::read_exact_at(source, path, file_len - tail_len, &mut tail, "PNG")?;
    if tail.windows(IEND.len()).any(|w| w == IEND) {
        Ok(())
    } else {
        Err(IoError::truncated(path, "PNG has no IEND chunk at its end"))
    }
}

/// Walks the JPEG marker segments and checks that an end-of-image marker follows the scans.
fn check_jpeg_structure(source: &mut dyn Source, path: &Path) -> Result<(), IoError> {
    let eof = || IoError::truncated(path, "JPEG ends before its end-of-image marker");
    let map = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            eof()
        } else {
            IoError::io(path, e)
        }
    };
    source
        .seek(SeekFrom::Start(2))
        .map_err(|e| IoError::io(path, e))?;
    let mut byte = [0u8; 1];
    let mut after_scan = false;
    loop {
        // Find the next marker: 0xFF (fill bytes allowed) followed by its code.
        let code = if after_scan {
            match scan_entropy(source).map_err(map)? {
                Some(code) => code,
                None => return Err(eof()),
            }
        } else {
            source.read_exact(&mut byte).map_err(map)?;
            if byte[0] != 0xFF {
                return Err(IoError::corrupt(
                    path,
                    format!("JPEG: expected a marker, found byte {:#04x}", byte[0]),
                ));
            }
            loop {
                source.read_exact(&mut byte).map_err(map)?;
                if byte[0] != 0xFF {
                    break byte[0];
                }
            }
        };
        match code {
            0xD9 => return Ok(()),
            0xD8 => {
                return Err(IoError::corrupt(
                    path,
                    "JPEG: unexpected start-of-image marker",
                ))
            }
            0x01 | 0xD0..=0xD7 => continue,
            0x00 => return Err(IoError::corrupt(path, "JPEG: invalid marker 0xFF00")),
            _ => {}
        }
        let mut len = [0u8; 2];
        source.read_exact(&mut len).map_err(map)?;
        let len = u16::from_be_bytes(len);
        if len < 2 {
            return Err(IoError::corrupt(
                path,
                format!("JPEG: segment {code:#04x} has length {len}"),
            ));
        }
        let skip = u64::from(len - 2);
        let copied = std::io::copy(&mut Read::take(&mut *source, skip), &mut std::io::sink())
            .map_err(|e| IoError::io(path, e))?;
        if copied != skip {
            return Err(eof());
        }
        after_scan = code == 0xDA;
    }
}

/// Skips entropy-coded data; returns the code of the next real marker (not stuffing or RST).
fn scan_entropy(source: &mut dyn Source) -> std::io::Result<Option<u8>> {
    let mut pending_ff = false;
    loop {
        let buf = source.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        let mut used = 0;
        let mut found = None;
        for &b in buf {
            used += 1;
            if pending_ff {
                match b {
                    0x00 | 0xD0..=0xD7 => pending_ff = false,
                    0xFF => {}
                    code => {
                        found = Some(code);
                        break;
                    }
                }
            } else if b == 0xFF {
                pending_ff = true;
            }
        }
        source.consume(used);
        if found.is_some() {
            return Ok(found);
        }
    }
}
