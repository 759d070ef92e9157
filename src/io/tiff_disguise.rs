//! Pages the `tiff` crate refuses to interpret but can still decompress.
//!
//! tiff 0.11 decodes whole-byte samples and 1–7-bit grey, and refuses
//! palette pages and samples of other depths (12-, 14- or 24-bit camera
//! data, 4-bit RGB …). Their strips are still LZW, Deflate or PackBits
//! streams of byte-aligned rows, which the crate decompresses happily if it
//! believes the page is something else. So the decoder is shown the page
//! through a few rewritten directory entries, and the pixels are interpreted
//! here from the page's real tags:
//!
//! * palette pages are shown as BlackIsZero grey of the same depth: the
//!   crate returns the indices;
//! * pages of other depths are shown as 8-bit grey, one "pixel" per byte of
//!   a packed row (`ImageWidth` = bytes per row, one sample): the crate
//!   returns the packed rows, which [`super::tiff_samples::unpack_packed`]
//!   takes apart, undoing the horizontal predictor if there is one. That
//!   works for strips; tiles, planar multi-sample pages and extra samples at
//!   such depths are refused by name;
//! * CIE L*a*b* pages are shown as grey with three samples: the first, L*,
//!   is the lightness, which is the grey value.

use std::path::Path;

use super::tiff_ifd::TiffHeader;
use super::{read_exact_at, IoError, Source};

/// A byte range of the file shown with other contents.
#[derive(Clone, Debug)]
pub(super) struct Patch {
    pub at: u64,
    pub bytes: Vec<u8>,
}

/// The tags that decide how a page is shown, read from its own directory.
#[derive(Clone, Debug, Default)]
pub(super) struct RawTags {
    pub width: u64,
    pub bits: u16,
    pub samples: u16,
    pub photometric: u16,
    pub compression: u16,
    pub predictor: u16,
    pub planar: u16,
    pub sample_format: u16,
    pub tiled: bool,
    pub extra_samples: bool,
}

/// How the page is shown to the decoder, and what it really is.
#[derive(Clone, Debug)]
pub(super) enum Disguise {
    /// As it is.
    None,
    /// A palette page shown as grey of the same depth.
    Palette,
    /// A CIE L*a*b* page shown as three-sample grey: its first sample, L*
    /// (lightness), is the grey value.
    Lightness,
    /// Packed rows shown as 8-bit grey `row_bytes` wide.
    Packed {
        real: RawTags,
        row_bytes: u64,
        /// WhiteIsZero: the values are inverted after unpacking.
        invert: bool,
    },
}

/// The tags that [`plan`] needs from a directory's entry table `buf` (as
/// [`super::tiff_ifd::read_dir`] fills it), with TIFF's defaults for absent
/// ones; `source` is read only for arrays stored outside the table.
pub(super) fn raw_tags(
    source: &mut dyn Source,
    path: &Path,
    header: TiffHeader,
    buf: &[u8],
    page: usize,
    file_len: u64,
) -> Result<RawTags, IoError> {
    let mut t = RawTags {
        bits: 1,
        samples: 1,
        photometric: 1,
        compression: 1,
        predictor: 1,
        planar: 1,
        sample_format: 1,
        ..RawTags::default()
    };
    let size = header.entry_size() as usize;
    let entries = buf.len().saturating_sub(header.offset_size() as usize) / size;
    // BitsPerSample and SampleFormat may be arrays stored elsewhere: their first value
    let mut elsewhere: Vec<(u16, u64)> = Vec::new();
    for entry in buf.chunks_exact(size).take(entries) {
        let small = |v: u64| u16::try_from(v).unwrap_or(u16::MAX);
        let tag = header.u16(entry);
        let mut first = || match first_short_inline(header, entry) {
            Some(v) => Some(v),
            None => {
                if header.u16(&entry[2..]) == 3 {
                    elsewhere.push((tag, header.offset(value_field(header, entry))));
                }
                None
            }
        };
        match tag {
            256 => t.width = header.inline_uint(entry).unwrap_or(0),
            258 => t.bits = first().unwrap_or(t.bits),
            259 => t.compression = small(header.inline_uint(entry).unwrap_or(1)),
            262 => t.photometric = small(header.inline_uint(entry).unwrap_or(1)),
            277 => t.samples = small(header.inline_uint(entry).unwrap_or(1)),
            284 => t.planar = small(header.inline_uint(entry).unwrap_or(1)),
            317 => t.predictor = small(header.inline_uint(entry).unwrap_or(1)),
            322 | 323 => t.tiled = true,
            338 => t.extra_samples = true,
            339 => t.sample_format = first().unwrap_or(t.sample_format),
            _ => {}
        }
    }
    for (tag, at) in elsewhere {
        if at.checked_add(2).is_none_or(|end| end > file_len) {
            return Err(IoError::truncated(
                path,
                format!("page {page}: tag {tag}'s values lie past the end of the file"),
            ));
        }
        let mut v = [0u8; 2];
        read_exact_at(source, path, at, &mut v, &format!("page {page} tag {tag}"))?;
        let v = header.u16(&v);
        match tag {
            258 => t.bits = v,
            _ => t.sample_format = v,
        }
    }
    Ok(t)
}

/// An entry's value field (the values themselves when they fit, else their offset).
fn value_field(header: TiffHeader, entry: &[u8]) -> &[u8] {
    if header.big {
        &entry[12..20]
    } else {
        &entry[8..12]
    }
}

/// The first SHORT of an entry whose values are stored inline (`None` when
/// they are elsewhere in the file).
fn first_short_inline(header: TiffHeader, entry: &[u8]) -> Option<u16> {
    let typ = header.u16(&entry[2..]);
    let count = if header.big {
        header.u64(&entry[4..])
    } else {
        u64::from(header.u32(&entry[4..]))
    };
    (typ == 3 && count >= 1 && count.saturating_mul(2) <= header.offset_size())
        .then(|| header.u16(value_field(header, entry)))
}

/// Decides how the page described by `t` is shown; `Err` names what cannot
/// be shown at all.
pub(super) fn plan(t: &RawTags, page: usize) -> Result<Disguise, String> {
    let bits = t.bits;
    if t.photometric == 3 {
        return Ok(Disguise::Palette);
    }
    if matches!(t.photometric, 8..=10) && matches!(bits, 8 | 16) && t.planar == 1 {
        return Ok(Disguise::Lightness);
    }
    let native = matches!(bits, 8 | 16 | 32 | 64)
        || (bits < 8 && t.samples == 1 && matches!(t.photometric, 0 | 1));
    if native || bits == 0 || bits > 32 {
        // the decoder's own verdict (and its error) stands
        return Ok(Disguise::None);
    }
    let why = if t.tiled {
        Some("tiles")
    } else if !matches!(t.predictor, 1 | 2) {
        Some("a floating-point predictor")
    } else if !matches!(t.compression, 1 | 5 | 8 | 32946 | 32773) {
        Some("this compression")
    } else if t.planar == 2 && t.samples > 1 {
        Some("one plane per sample")
    } else if t.extra_samples {
        Some("extra (alpha) samples")
    } else if !matches!(t.photometric, 0 | 1 | 2 | 5) {
        Some("this colour model")
    } else if t.sample_format == 3 {
        Some("floating point")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(format!(
            "page {page}: {bits}-bit samples with {why} (packed depths are read from strips, \
             uncompressed, LZW, Deflate or PackBits)"
        ));
    }
    let row_bits = t
        .width
        .checked_mul(u64::from(t.samples))
        .and_then(|v| v.checked_mul(u64::from(bits)))
        .ok_or_else(|| format!("page {page}: row size overflows"))?;
    Ok(Disguise::Packed {
        real: t.clone(),
        row_bytes: row_bits.div_ceil(8),
        invert: t.photometric == 0,
    })
}

/// The rewrites of the entries in `buf` (the entry table of the directory
/// at `ifd`) that show the page as `d` says, and a null "next directory"
/// pointer.
pub(super) fn patches(
    path: &Path,
    header: TiffHeader,
    ifd: u64,
    buf: &[u8],
    page: usize,
    d: &Disguise,
) -> Result<Vec<Patch>, IoError> {
    let set: Vec<(u16, u64)> = match d {
        Disguise::None => Vec::new(),
        Disguise::Palette | Disguise::Lightness => vec![(262, 1)],
        Disguise::Packed { row_bytes, .. } => {
            // the predictor is undone here, on the real samples, not by the crate on bytes
            vec![
                (256, *row_bytes),
                (258, 8),
                (262, 1),
                (277, 1),
                (317, 1),
                (339, 1),
            ]
        }
    };
    let size = header.entry_size() as usize;
    let count_size = header.count_size();
    let entries = buf.len().saturating_sub(header.offset_size() as usize) / size;
    // the page's "next directory" pointer reads as 0: the decoder is started at each page
    // and never walks the chain (which may loop; see tiff_ifd::scan_chain)
    let mut out = vec![Patch {
        at: ifd + count_size + (entries * size) as u64,
        bytes: vec![0; header.offset_size() as usize],
    }];
    for (k, entry) in buf.chunks_exact(size).take(entries).enumerate() {
        let tag = header.u16(entry);
        let Some(&(_, value)) = set.iter().find(|(t, _)| *t == tag) else {
            continue;
        };
        let long = value > u64::from(u16::MAX);
        let value = u32::try_from(value)
            .map_err(|_| IoError::corrupt(path, format!("page {page}: row of {value} bytes")))?;
        // tag, type (SHORT or LONG), count 1, the value left-aligned in its field
        let mut e = header.encode(u64::from(tag), 2);
        e.extend(header.encode(if long { 4 } else { 3 }, 2));
        e.extend(header.encode(1, if header.big { 8 } else { 4 }));
        e.extend(header.encode(u64::from(value), if long { 4 } else { 2 }));
        e.resize(size, 0);
        out.push(Patch {
            at: ifd + count_size + (k * size) as u64,
            bytes: e,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(bits: u16, samples: u16, photometric: u16) -> RawTags {
        RawTags {
            width: 37,
            bits,
            samples,
            photometric,
            compression: 1,
            predictor: 1,
            planar: 1,
            sample_format: 1,
            ..RawTags::default()
        }
    }

    #[test]
    fn plans_follow_what_the_crate_decodes() {
        assert!(matches!(plan(&tags(16, 1, 1), 0), Ok(Disguise::None)));
        assert!(matches!(plan(&tags(4, 1, 0), 0), Ok(Disguise::None)));
        assert!(matches!(plan(&tags(8, 1, 3), 0), Ok(Disguise::Palette)));
        match plan(&tags(12, 1, 1), 0) {
            Ok(Disguise::Packed { row_bytes, .. }) => assert_eq!(row_bytes, 56), // 37·12/8 ↑
            other => panic!("{other:?}"),
        }
        match plan(&tags(4, 3, 2), 0) {
            Ok(Disguise::Packed { row_bytes, .. }) => assert_eq!(row_bytes, 56), // 37·3·4/8 ↑
            other => panic!("{other:?}"),
        }
        let tiled = RawTags {
            tiled: true,
            ..tags(12, 1, 1)
        };
        assert!(plan(&tiled, 2)
            .unwrap_err()
            .contains("page 2: 12-bit samples with tiles"));
    }
}
