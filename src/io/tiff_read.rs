//! TIFF and BigTIFF stacks.
//!
//! Opening walks the IFD chain with a small parser of our own that reads only each directory's
//! entry table (no tag values, no pixel data), to count pages, skip reduced-resolution pages,
//! detect loops and check the first page's declared size against the limits. The offset of each
//! page's directory is kept. To decode page `i`, a `tiff::decoder::Decoder` is started on a view
//! of the file whose header points straight at that page's directory, so no other page is
//! touched and random access costs the same for every page.
//!
//! Before a page is decoded, the values of the tags that will be read are checked to lie inside
//! the file (the `tiff` crate sizes buffers from the counts declared in the directory), its
//! layout (compression, sample type, colour model) is checked, its declared sample buffer is
//! checked against the limits, and every strip or tile is checked to lie inside the file. The
//! `ImageDescription` is read by this module, not by the `tiff` crate, for the same reason.
//!
//! Compression: none, LZW, Deflate and PackBits. JPEG-in-TIFF and other codecs are rejected as
//! unsupported (they are rare in fluorescence microscopy and widen the attack surface).
//!
//! ImageJ writes stacks larger than 4 GiB as one directory followed by all the images back to
//! back, with `images=N` in its description. Such files are recognised and read plane by plane
//! directly from the file.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use tiff::decoder::ifd::Value;
use tiff::decoder::{ChunkType, Decoder, DecodingResult, DecodingSampleType};
use tiff::tags::Tag;
use tiff::{ColorType, TiffError};

use super::jpeg_guard;
use super::metadata::{self, Resolution};
use super::raw::{self, Encoding, Endian, Scaling};
use super::tiff_disguise::{self, Disguise, Patch};
use super::tiff_ifd::{check_entries, read_description, read_dir, scan_chain, TiffHeader};
use super::tiff_samples::{
    chunk_samples, plane_weights, to_gray, unpack_packed, ColorMode, Packed, SampleLayout,
};
use super::{
    guard, luminance_warning, read_exact_at, Ctx, Frame, Header, IoError, Limits, SampleType,
    Source,
};

/// Compressed data may expand at most this many times (LZW and Deflate stay well below; the
/// bound only stops tiny files from declaring huge images).
const MAX_EXPANSION: u64 = 4096;

/// What [`inspect`] learns about a page before decoding it.
#[derive(Clone, Debug)]
struct PageLayout {
    width: u32,
    height: u32,
    mode: ColorMode,
    color: ColorType,
    samples: usize,
    planar: bool,
    sample_type: SampleType,
    /// Bits per sample when not a whole number of bytes (decoded by
    /// [`unpack_packed`]).
    packed_bits: Option<u8>,
    /// Largest value of an integer sample (1 for floats).
    max: f32,
    /// Packed values to invert (`max − v`): WhiteIsZero pages the crate was
    /// shown as BlackIsZero.
    invert: bool,
    /// Packed rows stored as horizontal differences (Predictor 2).
    predictor: bool,
    /// What the page really is, when the decoder was shown something else.
    note: Option<String>,
    /// The palette (ColorMap) of a palette page, as 8-bit RGB.
    palette: Option<Vec<[u8; 3]>>,
    half_float: bool,
    compression: u16,
    white_is_zero: bool,
    /// `(start, length)` when all strips/tiles lie back to back in the file.
    contiguous: Option<(u64, u64)>,
}

/// ImageJ's > 4 GiB layout: all planes back to back after the first page's data.
#[derive(Clone, Copy, Debug)]
struct Contiguous {
    offset: u64,
    frame_bytes: u64,
    encoding: Encoding,
}

/// Reader state for an open TIFF stack.
pub(crate) struct TiffBackend {
    header: TiffHeader,
    /// Directory offset of each frame's page.
    pages: Vec<u64>,
    width: u32,
    height: u32,
    file_len: u64,
    contiguous: Option<Contiguous>,
}

impl TiffBackend {
    pub(crate) fn open(
        source: &mut dyn Source,
        ctx: &Ctx<'_>,
        file_len: u64,
    ) -> Result<(Self, Header), IoError> {
        let path = ctx.path;
        if file_len < 8 {
            return Err(IoError::truncated(
                path,
                format!("TIFF header needs 8 bytes, the file has {file_len}"),
            ));
        }
        let mut head = [0u8; 16];
        let head_len = file_len.min(16) as usize;
        read_exact_at(source, path, 0, &mut head[..head_len], "TIFF header")?;
        let little = head[0] == b'I';
        let mut header = TiffHeader { little, big: false };
        match header.u16(&head[2..]) {
            42 => {}
            43 => {
                header.big = true;
                if file_len < 16 {
                    return Err(IoError::truncated(
                        path,
                        format!("BigTIFF header needs 16 bytes, the file has {file_len}"),
                    ));
                }
                if header.u16(&head[4..]) != 8 || header.u16(&head[6..]) != 0 {
                    return Err(IoError::corrupt(
                        path,
                        "BigTIFF header: offset size is not 8 bytes",
                    ));
                }
            }
            other => {
                return Err(IoError::corrupt(
                    path,
                    format!("TIFF version {other} is not 42 or 43"),
                ))
            }
        }
        let first = header.offset(&head[header.first_ifd_field() as usize..]);
        if first == 0 {
            return Err(IoError::corrupt(
                path,
                "no image directory (first IFD offset is 0)",
            ));
        }

        let mut warnings = Vec::new();
        let (pages, (width, height)) =
            scan_chain(source, ctx, header, first, file_len, &mut warnings)?;
        let first_page = pages[0];

        // Values of the tags we and the decoder read must lie inside the file; the description
        // is read here rather than by the `tiff` crate, which sizes its buffer from the tag.
        let desc_ref = check_entries(source, path, header, first_page, 0, file_len)?;
        let description = match desc_ref {
            Some(d) => read_description(source, path, header, d, file_len, &mut warnings)?,
            None => None,
        };

        // Decode the first page's directory with the tiff crate: layout and metadata.
        let (layout, x_res, res_unit) = guard(path, "page 0", || {
            let (mut dec, layout) = page_decoder(source, header, first_page, 0, ctx, file_len)?;
            let x_res = match dec.find_tag(Tag::XResolution) {
                Ok(Some(v)) => resolution(v),
                _ => None,
            };
            let res_unit = dec
                .find_tag_unsigned::<u16>(Tag::ResolutionUnit)
                .ok()
                .flatten();
            Ok((layout, x_res, res_unit))
        })?;
        if (u64::from(layout.width), u64::from(layout.height)) != (width, height) {
            return Err(IoError::corrupt(
                path,
                format!(
                    "page 0: directory scan found {width}×{height} but the decoder reads {}×{}",
                    layout.width, layout.height
                ),
            ));
        }

        match layout.mode {
            ColorMode::Gray => {}
            ColorMode::Rgb => {
                warnings.push(luminance_warning(&format!("{:?} image", layout.color)));
                if layout.samples > 3 {
                    warnings.push("alpha channel ignored".to_string());
                }
            }
            ColorMode::First if layout.note.is_some() => {}
            ColorMode::First => warnings.push(match layout.color {
                ColorType::YCbCr(_) => {
                    "YCbCr image: its luma (Y) is used as the grey value".to_string()
                }
                other => format!(
                    "{other:?} image with {} samples per pixel: only the first sample is used",
                    layout.samples
                ),
            }),
            ColorMode::Cmyk => warnings.push(luminance_warning(&format!(
                "{:?} image (converted as R = (1 − C)(1 − K), no colour profile)",
                layout.color
            ))),
        }
        if let Some(note) = &layout.note {
            warnings.push(note.clone());
        }
        if let Some(p) = &layout.palette {
            warnings.push(format!(
                "palette image: pixel values are indices into its {} colours",
                p.len()
            ));
        }
        if let Some(bits) = layout.packed_bits {
            warnings.push(format!("{bits}-bit samples"));
        }
        if layout.half_float {
            warnings.push("16-bit float samples are widened to float32".to_string());
        }

        let pixel_size_nm =
            metadata::pixel_size_nm(description.as_deref(), x_res, res_unit, &mut warnings);
        warnings.extend(metadata::hyperstack_note(description.as_deref()));

        let mut frames = pages.len();
        let mut contiguous = None;
        let imagej_images = description
            .as_deref()
            .filter(|d| d.trim_start().starts_with("ImageJ="))
            .and_then(|d| metadata::imagej_field(d, "images"))
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(images), 1) = (imagej_images, pages.len()) {
            if images > 1 {
                let c = imagej_contiguous(ctx, header, &layout, images, file_len)?;
                if let Some(c) = c {
                    frames = usize::try_from(images).map_err(|_| {
                        IoError::limit(
                            path,
                            format!("{images} frames do not fit in memory indices"),
                        )
                    })?;
                    contiguous = Some(c);
                } else {
                    warnings.push(format!(
                        "ImageJ description declares {images} images but the file has one page \
                         whose data is not a plain contiguous block; only page 0 is read"
                    ));
                }
            }
        }

        let info = Header {
            format: if header.big { "BigTIFF" } else { "TIFF" },
            width: width as usize,
            height: height as usize,
            frames,
            sample_type: layout.sample_type,
            bits_per_sample: layout.color.bit_depth(),
            palette: layout.palette.clone(),
            pixel_size_nm,
            warnings,
        };
        Ok((
            TiffBackend {
                header,
                pages,
                width: layout.width,
                height: layout.height,
                file_len,
                contiguous,
            },
            info,
        ))
    }

    pub(crate) fn read_frame(
        &self,
        source: &mut dyn Source,
        ctx: &Ctx<'_>,
        index: usize,
    ) -> Result<Frame, IoError> {
        let path = ctx.path;
        let (w, h) = (self.width as usize, self.height as usize);
        if let Some(c) = self.contiguous {
            let offset = c.offset + index as u64 * c.frame_bytes;
            let data = raw::read_plane(
                source,
                path,
                offset,
                w * h,
                c.encoding,
                &format!("image {index}"),
            )?;
            return Ok(Frame {
                width: w,
                height: h,
                data,
            });
        }
        let ifd = *self.pages.get(index).ok_or_else(|| {
            IoError::corrupt(path, format!("page {index} missing from the page table"))
        })?;
        check_entries(source, path, self.header, ifd, index, self.file_len)?;
        let what = format!("page {index}");
        guard(path, &what, || {
            let (mut dec, layout) =
                page_decoder(source, self.header, ifd, index, ctx, self.file_len)?;
            if (layout.width, layout.height) != (self.width, self.height) {
                return Err(IoError::unsupported(
                    path,
                    format!(
                        "page {index} is {}×{} but page 0 is {}×{}; stacks of differently sized \
                         pages are not supported",
                        layout.width, layout.height, self.width, self.height
                    ),
                ));
            }
            let tiled_planar = layout.planar && dec.get_chunk_type() == ChunkType::Tile;
            let data = if let Some(bits) = layout.packed_bits {
                read_packed(&mut dec, &layout, bits)
            } else if tiled_planar && plane_weights(layout.mode).is_some() {
                read_tiled_planar(&mut dec, &layout)
            } else {
                let mut result = DecodingResult::U8(Vec::new());
                dec.read_image_to_buffer(&mut result)
                    .map(|_| to_gray(result, &layout.samples()))
            }
            .map_err(|e| tiff_error(path, index, e))?;
            let data = data.ok_or_else(|| {
                IoError::corrupt(
                    path,
                    format!("page {index}: decoder returned too few samples"),
                )
            })?;
            Ok(Frame {
                width: w,
                height: h,
                data,
            })
        })
    }
}

/// A view of the file whose header's first-IFD pointer is replaced, so that a fresh
/// `tiff::decoder::Decoder` starts at any page without walking the chain.
struct Patched<'a> {
    inner: &'a mut dyn Source,
    pos: u64,
    /// The header's first-IFD pointer, then any directory entries shown
    /// otherwise ([`super::tiff_disguise`]).
    patches: Vec<Patch>,
}

impl<'a> Patched<'a> {
    fn new(
        inner: &'a mut dyn Source,
        header: TiffHeader,
        ifd: u64,
        mut entries: Vec<Patch>,
    ) -> io::Result<Self> {
        let pos = inner.seek(SeekFrom::Start(0))?;
        // Page offsets of classic TIFF came from 32-bit fields.
        let offset = if header.big {
            ifd
        } else {
            ifd.min(u64::from(u32::MAX))
        };
        let bytes = header.encode(offset, header.offset_size() as usize);
        let mut patches = vec![Patch {
            at: header.first_ifd_field(),
            bytes,
        }];
        patches.append(&mut entries);
        Ok(Patched {
            inner,
            pos,
            patches,
        })
    }
}

impl Read for Patched<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let start = self.pos;
        let end = start + n as u64;
        for p in &self.patches {
            let lo = start.max(p.at);
            let hi = end.min(p.at + p.bytes.len() as u64);
            for i in lo..hi {
                buf[(i - start) as usize] = p.bytes[(i - p.at) as usize];
            }
        }
        self.pos = end;
        Ok(n)
    }
}

impl Seek for Patched<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.pos = self.inner.seek(pos)?;
        Ok(self.pos)
    }
}

/// A decoder on page `index` (directory at `ifd`), shown the page as
/// [`tiff_disguise::plan`] decides, and the page's layout in its real terms.
fn page_decoder<'a>(
    source: &'a mut dyn Source,
    header: TiffHeader,
    ifd: u64,
    index: usize,
    ctx: &Ctx<'_>,
    file_len: u64,
) -> Result<(Decoder<Patched<'a>>, PageLayout), IoError> {
    let path = ctx.path;
    // the directory's entry table, read once for both the plan and the patches
    let mut dir = Vec::new();
    read_dir(source, path, header, ifd, index, file_len, &mut dir)?;
    let raw = tiff_disguise::raw_tags(source, path, header, &dir, index, file_len)?;
    let disguise = tiff_disguise::plan(&raw, index).map_err(|m| IoError::unsupported(path, m))?;
    let entries = tiff_disguise::patches(path, header, ifd, &dir, index, &disguise)?;
    let mut dec = decoder_at(source, header, ifd, ctx.limits, file_len, entries)
        .map_err(|e| tiff_error(path, index, e))?;
    let mut layout = inspect(&mut dec, path, index, file_len, ctx.limits)?;
    match disguise {
        Disguise::None => {}
        Disguise::Lightness => {
            layout.note =
                Some("CIE L*a*b* image: its lightness L* is used as the grey value".to_string());
        }
        Disguise::Palette => {
            let map = dec
                .find_tag_unsigned_vec::<u16>(Tag::ColorMap)
                .map_err(|e| tiff_error(path, index, e))?
                .unwrap_or_default();
            let n = map.len() / 3;
            if n == 0 {
                return Err(IoError::corrupt(
                    path,
                    format!("page {index}: palette image without a ColorMap"),
                ));
            }
            layout.palette = Some(
                (0..n)
                    .map(|i| [map[i], map[n + i], map[2 * n + i]].map(|v| (v >> 8) as u8))
                    .collect(),
            );
        }
        Disguise::Packed { real, invert, .. } => {
            let bits = real.bits as u8;
            let samples = usize::from(real.samples);
            let signed = real.sample_format == 2;
            layout.width = u32::try_from(real.width).map_err(|_| {
                IoError::corrupt(path, format!("page {index}: width {}", real.width))
            })?;
            ctx.limits
                .check_frame(path, real.width, u64::from(layout.height))?;
            (layout.mode, layout.color) = match (real.photometric, samples) {
                (2, _) => (ColorMode::Rgb, ColorType::RGB(bits)),
                (5, _) => (ColorMode::Cmyk, ColorType::CMYK(bits)),
                (_, 1) => (ColorMode::Gray, ColorType::Gray(bits)),
                (_, n) => (
                    ColorMode::First,
                    ColorType::Multiband {
                        bit_depth: bits,
                        num_samples: n as u16,
                    },
                ),
            };
            layout.samples = samples;
            layout.planar = false;
            layout.packed_bits = Some(bits);
            layout.sample_type = match (signed, bits) {
                (false, ..=8) => SampleType::U8,
                (false, ..=16) => SampleType::U16,
                (false, _) => SampleType::U32,
                (true, ..=8) => SampleType::I8,
                (true, ..=16) => SampleType::I16,
                (true, _) => SampleType::I32,
            };
            layout.max = integer_max(bits, signed);
            layout.invert = invert;
            layout.predictor = real.predictor == 2;
        }
    }
    Ok((dec, layout))
}

/// The largest value of a `bits`-bit integer sample.
fn integer_max(bits: u8, signed: bool) -> f32 {
    if signed {
        ((1u64 << bits.saturating_sub(1).min(62)) - 1) as f32
    } else {
        ((1u64 << bits.min(63)) - 1) as f32
    }
}

/// A `tiff` decoder positioned on the page whose directory is at `ifd`.
fn decoder_at<'a>(
    source: &'a mut dyn Source,
    header: TiffHeader,
    ifd: u64,
    limits: &Limits,
    file_len: u64,
    entries: Vec<Patch>,
) -> Result<Decoder<Patched<'a>>, TiffError> {
    let patched = Patched::new(source, header, ifd, entries)?;
    let mut tl = tiff::decoder::Limits::default();
    let raw = usize::try_from(limits.max_raw_bytes()).unwrap_or(usize::MAX);
    let len = usize::try_from(file_len).unwrap_or(usize::MAX);
    tl.decoding_buffer_size = raw;
    // Tag values and compressed chunks cannot be larger than the file itself.
    tl.ifd_value_size = len.clamp(1 << 12, 64 << 20);
    tl.intermediate_buffer_size = len.min(raw).max(1 << 12);
    Ok(Decoder::new(patched)?.with_limits(tl))
}

fn compression_name(code: u16) -> &'static str {
    match code {
        1 => "none",
        2 => "CCITT RLE",
        3 => "CCITT Group 3 fax",
        4 => "CCITT Group 4 fax",
        5 => "LZW",
        6 => "old-style JPEG",
        7 => "JPEG",
        8 | 32946 => "Deflate",
        32773 => "PackBits",
        34712 => "JPEG 2000",
        34887..=34889 => "LERC",
        34925 => "LZMA",
        50000 => "Zstandard",
        50001 => "WebP",
        _ => "unknown",
    }
}

/// Checks that the current page can be decoded within the limits; returns its layout.
fn inspect<R: Read + Seek>(
    dec: &mut Decoder<R>,
    path: &Path,
    page: usize,
    file_len: u64,
    limits: &Limits,
) -> Result<PageLayout, IoError> {
    let err = |e| tiff_error(path, page, e);
    let (width, height) = dec.dimensions().map_err(err)?;
    limits.check_frame(path, u64::from(width), u64::from(height))?;
    let compression = dec
        .find_tag_unsigned::<u16>(Tag::Compression)
        .map_err(err)?
        .unwrap_or(1);
    if !matches!(compression, 1 | 4 | 5 | 7 | 8 | 32946 | 32773) {
        return Err(IoError::unsupported(
            path,
            format!(
                "page {page}: compression {} ({compression}); supported are none, LZW, Deflate, \
                 PackBits, JPEG and CCITT Group 4 fax",
                compression_name(compression)
            ),
        ));
    }
    let photometric = dec
        .find_tag_unsigned::<u16>(Tag::PhotometricInterpretation)
        .map_err(err)?;
    let white_is_zero = photometric == Some(0);
    let color = dec.colortype().map_err(err)?;
    let (mode, samples) = match color {
        ColorType::Gray(_) => (ColorMode::Gray, 1),
        ColorType::RGB(_) => (ColorMode::Rgb, 3),
        ColorType::RGBA(_) => (ColorMode::Rgb, 4),
        ColorType::CMYK(_) => (ColorMode::Cmyk, 4),
        ColorType::CMYKA(_) => (ColorMode::Cmyk, 5),
        ColorType::GrayA(_) => (ColorMode::First, 2),
        ColorType::YCbCr(_) => {
            // JPEG handles chroma subsampling itself; uncompressed YCbCr is
            // subsampled 2×2 unless the tag says 1×1, in blocks this reader
            // does not take apart
            let sub = dec
                .find_tag_unsigned_vec::<u16>(Tag::Unknown(530))
                .map_err(err)?
                .unwrap_or_else(|| vec![2, 2]);
            if compression != 7 && sub.iter().any(|&s| s != 1) {
                return Err(IoError::unsupported(
                    path,
                    format!(
                        "page {page}: YCbCr with {sub:?} chroma subsampling outside JPEG \
                         compression"
                    ),
                ));
            }
            (ColorMode::First, 3)
        }
        ColorType::Multiband { num_samples, .. } => (ColorMode::First, usize::from(num_samples)),
        other => {
            return Err(IoError::unsupported(
                path,
                format!("page {page}: colour model {other:?}"),
            ))
        }
    };
    let bits = color.bit_depth();
    let buffer = dec.image_buffer_layout().map_err(err)?;
    let whole_bytes = matches!(bits, 8 | 16 | 32 | 64);
    let (sample_type, half_float) = match buffer.sample_type {
        Some(DecodingSampleType::U8) => (SampleType::U8, false),
        Some(DecodingSampleType::U16) => (SampleType::U16, false),
        Some(DecodingSampleType::U32) => (SampleType::U32, false),
        Some(DecodingSampleType::I8) => (SampleType::I8, false),
        Some(DecodingSampleType::I16) => (SampleType::I16, false),
        Some(DecodingSampleType::I32) => (SampleType::I32, false),
        Some(DecodingSampleType::F16) => (SampleType::F32, true),
        Some(DecodingSampleType::F32) => (SampleType::F32, false),
        Some(DecodingSampleType::F64) => (SampleType::F64, false),
        Some(other) => {
            return Err(IoError::unsupported(
                path,
                format!("page {page}: {bits}-bit {other:?} samples (64-bit integers)"),
            ))
        }
        None => {
            return Err(IoError::unsupported(
                path,
                format!(
                    "page {page}: {bits}-bit samples of format {:?}",
                    buffer.sample_format
                ),
            ))
        }
    };
    let float = matches!(sample_type, SampleType::F32 | SampleType::F64);
    if float && !whole_bytes && !half_float {
        return Err(IoError::unsupported(
            path,
            format!("page {page}: {bits}-bit floating-point samples (16, 32 and 64 are read)"),
        ));
    }
    if !whole_bytes && white_is_zero && bits > 8 {
        return Err(IoError::unsupported(
            path,
            format!("page {page}: {bits}-bit WhiteIsZero samples"),
        ));
    }
    let signed = matches!(
        sample_type,
        SampleType::I8 | SampleType::I16 | SampleType::I32
    );
    let max = if float {
        1.0
    } else {
        integer_max(bits, signed)
    };
    let raw_bytes = buffer.complete_len as u64;
    limits.check_raw(path, &format!("page {page}"), raw_bytes)?;

    // Every strip/tile must lie inside the file, and there must be enough data to fill the
    // image, before anything is allocated for it.
    let (offsets_tag, counts_tag, kind) = match dec.get_chunk_type() {
        ChunkType::Strip => (Tag::StripOffsets, Tag::StripByteCounts, "strip"),
        ChunkType::Tile => (Tag::TileOffsets, Tag::TileByteCounts, "tile"),
    };
    let offsets: Vec<u64> = dec
        .find_tag_unsigned_vec(offsets_tag)
        .map_err(err)?
        .unwrap_or_default();
    let counts: Vec<u64> = dec
        .find_tag_unsigned_vec(counts_tag)
        .map_err(err)?
        .unwrap_or_default();
    if offsets.len() != counts.len() || offsets.is_empty() {
        return Err(IoError::corrupt(
            path,
            format!(
                "page {page}: {} {kind} offsets but {} byte counts",
                offsets.len(),
                counts.len()
            ),
        ));
    }
    let mut total: u64 = 0;
    let mut contiguous = true;
    for (k, (&o, &c)) in offsets.iter().zip(&counts).enumerate() {
        if o.checked_add(c).is_none_or(|end| end > file_len) {
            return Err(IoError::truncated(
                path,
                format!(
                    "page {page}: {kind} {k} (offset {o}, {c} bytes) extends past the end of the \
                     file ({file_len} bytes)"
                ),
            ));
        }
        if k > 0 && offsets[k - 1] + counts[k - 1] != o {
            contiguous = false;
        }
        total += c;
    }
    if compression == 7 {
        // zune-jpeg sizes its output from the JPEG's own frame header: check it first
        let (cw, ch) = dec.chunk_dimensions();
        for (k, (&o, &c)) in offsets.iter().zip(&counts).enumerate() {
            if c == 0 {
                continue;
            }
            match jpeg_guard::frame_size(dec.inner(), o, c) {
                Ok(Some((w, h))) if w > cw.saturating_add(16) || h > ch.saturating_add(16) => {
                    return Err(IoError::corrupt(
                        path,
                        format!(
                            "page {page}: JPEG {kind} {k} declares a {w}×{h} frame for a \
                             {cw}×{ch} {kind}"
                        ),
                    ))
                }
                Ok(_) => {}
                Err(m) => {
                    return Err(IoError::corrupt(
                        path,
                        format!("page {page}: {kind} {k}: {m}"),
                    ))
                }
            }
        }
    }
    if compression == 1 {
        if total < raw_bytes {
            return Err(IoError::corrupt(
                path,
                format!(
                    "page {page}: {total} bytes of uncompressed data but a {width}×{height} image \
                     needs {raw_bytes}"
                ),
            ));
        }
    } else if raw_bytes > total.saturating_mul(MAX_EXPANSION) {
        return Err(IoError::corrupt(
            path,
            format!(
                "page {page}: {total} bytes of compressed data cannot hold the {raw_bytes} bytes \
                 of a {width}×{height} image"
            ),
        ));
    }
    Ok(PageLayout {
        width,
        height,
        mode,
        color,
        samples,
        planar: buffer.planes > 1,
        sample_type,
        packed_bits: (!whole_bytes && !half_float).then_some(bits),
        max,
        invert: false,
        predictor: false,
        note: None,
        palette: None,
        half_float,
        compression,
        white_is_zero,
        contiguous: contiguous.then(|| (offsets[0], total)),
    })
}

/// Recognises ImageJ's layout for stacks over 4 GiB: one directory, `images=N`, uncompressed
/// grey data whose planes follow each other.
fn imagej_contiguous(
    ctx: &Ctx<'_>,
    header: TiffHeader,
    layout: &PageLayout,
    images: u64,
    file_len: u64,
) -> Result<Option<Contiguous>, IoError> {
    let Some((start, len)) = layout.contiguous else {
        return Ok(None);
    };
    if layout.compression != 1
        || layout.samples != 1
        || layout.half_float
        || layout.white_is_zero
        || layout.planar
    {
        return Ok(None);
    }
    let frame_bytes =
        u64::from(layout.width) * u64::from(layout.height) * layout.sample_type.bytes() as u64;
    if len != frame_bytes {
        return Ok(None);
    }
    ctx.limits.check_frames(ctx.path, images)?;
    let end = images
        .checked_mul(frame_bytes)
        .and_then(|n| n.checked_add(start));
    if end.is_none_or(|e| e > file_len) {
        return Err(IoError::truncated(
            ctx.path,
            format!(
                "ImageJ stack declares {images} images of {frame_bytes} bytes from offset {start}, \
                 but the file ends at {file_len} bytes"
            ),
        ));
    }
    Ok(Some(Contiguous {
        offset: start,
        frame_bytes,
        encoding: Encoding {
            stored: layout.sample_type,
            endian: if header.little {
                Endian::Little
            } else {
                Endian::Big
            },
            scaling: Scaling::IDENTITY,
        },
    }))
}

/// `XResolution` as a fraction.
fn resolution(v: Value) -> Option<Resolution> {
    let (num, den) = match v {
        Value::Rational(n, d) => (f64::from(n), f64::from(d)),
        Value::Float(f) => (f64::from(f), 1.0),
        Value::Double(f) => (f, 1.0),
        Value::Short(n) => (f64::from(n), 1.0),
        Value::Unsigned(n) => (f64::from(n), 1.0),
        Value::List(mut l) if !l.is_empty() => return resolution(l.swap_remove(0)),
        _ => return None,
    };
    Some(Resolution { num, den })
}

impl PageLayout {
    fn samples(&self) -> SampleLayout {
        SampleLayout {
            width: self.width as usize,
            height: self.height as usize,
            samples: self.samples,
            planar: self.planar,
            mode: self.mode,
            max: self.max,
        }
    }
}

/// A page whose samples are not whole bytes (1–31 bits): packed rows from
/// the crate (natively for 1–7-bit grey, else through the 8-bit disguise),
/// unpacked here (`None`: too few bytes for the layout).
fn read_packed<R: Read + Seek>(
    dec: &mut Decoder<R>,
    l: &PageLayout,
    bits: u8,
) -> Result<Option<Vec<f32>>, TiffError> {
    let layout = dec.image_buffer_layout()?;
    let mut bytes = vec![0u8; layout.complete_len];
    dec.read_image_bytes(&mut bytes)?;
    let packed = Packed {
        bits,
        row_stride: layout.row_stride.map_or(0, |r| r.get()),
        plane_stride: layout.plane_stride.map_or(0, |p| p.get()),
        signed: matches!(
            l.sample_type,
            SampleType::I8 | SampleType::I16 | SampleType::I32
        ),
        predictor: l.predictor,
    };
    let mut values = unpack_packed(&bytes, &packed, &l.samples());
    if let (Some(v), true) = (&mut values, l.invert) {
        for x in v.iter_mut() {
            *x = l.max - *x;
        }
    }
    Ok(values)
}

/// A tiled page with one plane per sample (PlanarConfiguration 2), decoded
/// tile by tile straight into grey values (`None`: a tile holds too few
/// samples). tiff 0.11's whole-image read fails an assertion on such pages
/// when the image is not a whole number of tiles (reported in
/// docs/FUZZING.md); its per-tile read is sound. Memory: one frame of f32 and
/// one tile.
fn read_tiled_planar<R: Read + Seek>(
    dec: &mut Decoder<R>,
    l: &PageLayout,
) -> Result<Option<Vec<f32>>, TiffError> {
    let (w, h) = (l.width as usize, l.height as usize);
    let (tw, th) = dec.chunk_dimensions();
    let (tw, th) = (tw.max(1) as usize, th.max(1) as usize);
    let across = w.div_ceil(tw);
    let per_plane = across * h.div_ceil(th);
    let Some(weights) = plane_weights(l.mode) else {
        return Ok(None);
    };
    if (dec.tile_count()? as usize) < per_plane * weights.len() {
        return Ok(None);
    }
    let mut out = vec![0f32; w * h];
    for (plane, &weight) in weights.iter().enumerate() {
        for t in 0..per_plane {
            let chunk = (plane * per_plane + t) as u32;
            // the tile's part inside the image, computed here: the crate takes
            // the bottom padding of planes after the first for full rows
            let (x0, y0) = ((t % across) * tw, (t / across) * th);
            let (cw, ch) = (tw.min(w - x0), th.min(h - y0));
            // the crate's row length of what it returns
            let stride = dec.chunk_data_dimensions(chunk).0 as usize;
            let Some(samples) = chunk_samples(dec.read_chunk(chunk)?) else {
                return Ok(None);
            };
            if stride < cw || samples.len() < stride * ch {
                return Ok(None);
            }
            for (r, row) in samples.chunks_exact(stride).take(ch).enumerate() {
                let row = &row[..cw];
                let at = (y0 + r) * w + x0;
                for (o, v) in out[at..at + cw].iter_mut().zip(row) {
                    *o += weight * v;
                }
            }
        }
    }
    Ok(Some(out))
}

/// Maps a `tiff` crate error on `page` to an [`IoError`].
fn tiff_error(path: &Path, page: usize, e: TiffError) -> IoError {
    match e {
        TiffError::IoError(io) => match io.kind() {
            io::ErrorKind::UnexpectedEof => {
                IoError::truncated(path, format!("page {page}: unexpected end of data"))
            }
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::Other => {
                IoError::corrupt(path, format!("page {page}: {io}"))
            }
            _ => IoError::io(path, io),
        },
        TiffError::FormatError(f) => IoError::corrupt(path, format!("page {page}: {f}")),
        TiffError::UnsupportedError(u) => IoError::unsupported(path, format!("page {page}: {u}")),
        TiffError::LimitsExceeded => IoError::limit(
            path,
            format!("page {page}: the TIFF decoder's allocation limit was exceeded"),
        ),
        TiffError::IntSizeError => IoError::limit(
            path,
            format!("page {page}: sizes exceed this platform's integer range"),
        ),
        TiffError::UsageError(u) => IoError::corrupt(path, format!("page {page}: {u}")),
    }
}
