//! The TIFF directory chain, read by a small parser of our own: the header's
//! byte order and offset size, each directory's entry table (no tag values,
//! no pixel data), the checks that tag values lie inside the file, and the
//! `ImageDescription`. [`super::tiff_read`] uses it to count pages and to
//! start the `tiff` decoder straight at one page.

use std::collections::HashSet;
use std::path::Path;

use super::{read_exact_at, Ctx, IoError, Source};

/// Largest number of entries accepted in one directory.
pub(super) const MAX_IFD_ENTRIES: u64 = 65_535;

/// Fixed facts from the file header.
#[derive(Clone, Copy, Debug)]
pub(super) struct TiffHeader {
    pub(super) little: bool,
    pub(super) big: bool,
}

impl TiffHeader {
    pub(super) fn u16(&self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.little {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        }
    }

    pub(super) fn u32(&self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    }

    pub(super) fn u64(&self, b: &[u8]) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        if self.little {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        }
    }

    /// `v` as `width` (2, 4 or 8) bytes in the file's byte order: the
    /// inverse of [`u16`](Self::u16), [`u32`](Self::u32) and [`u64`](Self::u64).
    pub(super) fn encode(&self, v: u64, width: usize) -> Vec<u8> {
        let b = if self.little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        if self.little {
            b[..width].to_vec()
        } else {
            b[8 - width..].to_vec()
        }
    }

    /// An offset-sized field (4 bytes in TIFF, 8 in BigTIFF).
    pub(super) fn offset(&self, b: &[u8]) -> u64 {
        if self.big {
            self.u64(b)
        } else {
            u64::from(self.u32(b))
        }
    }

    pub(super) fn count_size(&self) -> u64 {
        if self.big {
            8
        } else {
            2
        }
    }

    pub(super) fn entry_size(&self) -> u64 {
        if self.big {
            20
        } else {
            12
        }
    }

    pub(super) fn offset_size(&self) -> u64 {
        if self.big {
            8
        } else {
            4
        }
    }

    /// Where the first-IFD pointer sits in the header.
    pub(super) fn first_ifd_field(&self) -> u64 {
        if self.big {
            8
        } else {
            4
        }
    }

    /// The value of a single SHORT/LONG/LONG8/BYTE entry stored inline, if it is one.
    pub(super) fn inline_uint(&self, entry: &[u8]) -> Option<u64> {
        let typ = self.u16(&entry[2..]);
        let (count, value) = if self.big {
            (self.u64(&entry[4..]), &entry[12..20])
        } else {
            (u64::from(self.u32(&entry[4..])), &entry[8..12])
        };
        if count != 1 {
            return None;
        }
        match typ {
            1 => Some(u64::from(value[0])),
            3 => Some(u64::from(self.u16(value))),
            4 => Some(u64::from(self.u32(value))),
            16 if self.big => Some(self.u64(value)),
            _ => None,
        }
    }
}

/// One directory found while walking the chain.
pub(super) struct DirInfo {
    /// Offset just past the directory (its `next` field included).
    pub(super) end: u64,
    pub(super) width: u64,
    pub(super) height: u64,
    pub(super) subfile_type: u64,
    pub(super) next: u64,
}

/// Walks the IFD chain from `first`. Returns the directory offsets of the pages that make up
/// the stack and their dimensions.
pub(super) fn scan_chain(
    source: &mut dyn Source,
    ctx: &Ctx<'_>,
    header: TiffHeader,
    first: u64,
    file_len: u64,
    warnings: &mut Vec<String>,
) -> Result<(Vec<u64>, (u64, u64)), IoError> {
    let path = ctx.path;
    let mut pages: Vec<u64> = Vec::new();
    let mut reduced: Vec<u64> = Vec::new();
    let mut dims: Option<(u64, u64)> = None;
    let mut reduced_dims: Option<(u64, u64)> = None;
    let mut mismatched = 0usize;
    // Offsets normally increase along the chain; only once one does not do we pay for a set
    // of all visited offsets to detect loops.
    let mut seen: Option<HashSet<u64>> = None;
    let mut prev = 0u64;
    let mut prev_end = 0u64;
    let mut offset = first;
    let mut index = 0usize;
    let mut buf = Vec::new();
    while offset != 0 {
        if index >= ctx.limits.max_frames {
            return Err(IoError::limit(
                path,
                format!(
                    "more than {} pages in the IFD chain (Limits::max_frames)",
                    ctx.limits.max_frames
                ),
            ));
        }
        if offset <= prev && seen.is_none() {
            seen = Some(pages.iter().chain(&reduced).copied().collect());
        }
        if let Some(seen) = &mut seen {
            if !seen.insert(offset) {
                // libtiff stops here too: the pages so far are the stack
                warnings.push(format!(
                    "the image directory chain loops back to offset {offset} after page {}; \
                     the pages before the loop are read",
                    index.saturating_sub(1)
                ));
                break;
            }
        }
        if offset > prev && offset < prev_end {
            return Err(IoError::corrupt(
                path,
                format!(
                    "page {index}: image directory at offset {offset} overlaps the previous one"
                ),
            ));
        }
        prev = offset;
        let dir = read_dir(source, path, header, offset, index, file_len, &mut buf)?;
        prev_end = dir.end;
        // NewSubfileType bit 0: reduced-resolution copy; bit 2: transparency mask.
        if dir.subfile_type & 0b101 != 0 {
            reduced.push(offset);
            reduced_dims.get_or_insert((dir.width, dir.height));
        } else {
            match dims {
                None => {
                    ctx.limits.check_frame(path, dir.width, dir.height)?;
                    dims = Some((dir.width, dir.height));
                }
                Some(d) if d != (dir.width, dir.height) => mismatched += 1,
                Some(_) => {}
            }
            pages.push(offset);
        }
        offset = dir.next;
        index += 1;
    }
    let dims = match dims {
        Some(d) => {
            if !reduced.is_empty() {
                warnings.push(format!(
                    "skipped {} reduced-resolution or mask page(s) (NewSubfileType)",
                    reduced.len()
                ));
            }
            d
        }
        None => {
            // Only reduced-resolution pages: use them rather than nothing.
            let d = reduced_dims.unwrap_or((0, 0));
            ctx.limits.check_frame(path, d.0, d.1)?;
            pages = reduced;
            d
        }
    };
    if mismatched > 0 {
        warnings.push(format!(
            "{mismatched} page(s) differ in size from page 0 ({}×{}); reading them gives an error",
            dims.0, dims.1
        ));
    }
    Ok((pages, dims))
}

/// Reads the entry table of the directory at `offset`.
pub(super) fn read_dir(
    source: &mut dyn Source,
    path: &Path,
    header: TiffHeader,
    offset: u64,
    index: usize,
    file_len: u64,
    buf: &mut Vec<u8>,
) -> Result<DirInfo, IoError> {
    let count_size = header.count_size();
    // Decoders see the file through `Patched`, which rewrites part of the header: a directory
    // overlapping the header would read differently there than here.
    if offset < header.first_ifd_field() + header.offset_size() {
        return Err(IoError::corrupt(
            path,
            format!("page {index}: image directory offset {offset} lies inside the file header"),
        ));
    }
    if offset
        .checked_add(count_size)
        .is_none_or(|end| end > file_len)
    {
        return Err(IoError::truncated(
            path,
            format!(
                "page {index}: image directory offset {offset} is past the end of the file \
                 ({file_len} bytes)"
            ),
        ));
    }
    let mut count_buf = [0u8; 8];
    let count_bytes = &mut count_buf[..count_size as usize];
    read_exact_at(
        source,
        path,
        offset,
        count_bytes,
        &format!("page {index} directory"),
    )?;
    let count = if header.big {
        header.u64(count_bytes)
    } else {
        u64::from(header.u16(count_bytes))
    };
    if count == 0 || count > MAX_IFD_ENTRIES {
        return Err(IoError::corrupt(
            path,
            format!("page {index}: image directory at offset {offset} has {count} entries"),
        ));
    }
    let block = count * header.entry_size() + header.offset_size();
    let start = offset + count_size;
    if start + block > file_len {
        return Err(IoError::truncated(
            path,
            format!(
                "page {index}: image directory at offset {offset} ({count} entries) extends past \
                 the end of the file ({file_len} bytes)"
            ),
        ));
    }
    buf.resize(block as usize, 0);
    read_exact_at(source, path, start, buf, &format!("page {index} directory"))?;
    let mut dir = DirInfo {
        end: start + block,
        width: 0,
        height: 0,
        subfile_type: 0,
        next: header.offset(&buf[(count * header.entry_size()) as usize..]),
    };
    for entry in
        buf[..(count * header.entry_size()) as usize].chunks_exact(header.entry_size() as usize)
    {
        let tag = header.u16(entry);
        match tag {
            254 => dir.subfile_type = header.inline_uint(entry).unwrap_or(0),
            256 => dir.width = header.inline_uint(entry).unwrap_or(0),
            257 => dir.height = header.inline_uint(entry).unwrap_or(0),
            _ => {}
        }
    }
    Ok(dir)
}

/// Tags whose values the `tiff` decoder or this module reads.
pub(super) const READ_TAGS: [u16; 22] = [
    254, 256, 257, 258, 259, 262, 270, 273, 277, 278, 279, 282, 283, 284, 296, 317, 322, 323, 324,
    325, 338, 339,
];

/// Bytes per value of a TIFF field type (0 for unknown types).
pub(super) fn type_size(t: u16) -> u64 {
    match t {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 | 16..=18 => 8,
        _ => 0,
    }
}

/// Where the `ImageDescription` text is.
#[derive(Clone, Copy, Debug)]
pub(super) struct DescRef {
    pub(super) count: u64,
    /// The entry's value field: the text itself when it fits, else its offset.
    pub(super) field: [u8; 8],
}

/// Re-reads the directory of `page` and checks that the values of every tag that will be read
/// lie inside the file, so that no decoder sizes a buffer from a count the file cannot back.
/// Returns where the page's `ImageDescription` is, if it has one.
pub(super) fn check_entries(
    source: &mut dyn Source,
    path: &Path,
    header: TiffHeader,
    ifd: u64,
    page: usize,
    file_len: u64,
) -> Result<Option<DescRef>, IoError> {
    let mut buf = Vec::new();
    let dir = read_dir(source, path, header, ifd, page, file_len, &mut buf)?;
    let entries = &buf[..(dir.end - ifd - header.count_size() - header.offset_size()) as usize];
    let inline = header.offset_size();
    let mut desc = None;
    for entry in entries.chunks_exact(header.entry_size() as usize) {
        let tag = header.u16(entry);
        let typ = header.u16(&entry[2..]);
        if header.big && type_size(typ) == 0 {
            // tiff 0.11 skips an unknown-type entry as 12 bytes even in BigTIFF (20-byte
            // entries), and then misreads the rest of the directory. Found by fuzzing.
            return Err(IoError::corrupt(
                path,
                format!("page {page}: tag {tag} has unknown field type {typ}"),
            ));
        }
        if !READ_TAGS.contains(&tag) && tag != 347 && tag != 530 {
            continue;
        }
        let (count, field) = if header.big {
            (header.u64(&entry[4..]), &entry[12..20])
        } else {
            (u64::from(header.u32(&entry[4..])), &entry[8..12])
        };
        let total = count.checked_mul(type_size(typ));
        let in_file = match total {
            None => false,
            Some(t) if t <= inline => true,
            Some(t) => header
                .offset(field)
                .checked_add(t)
                .is_some_and(|end| end <= file_len),
        };
        if !in_file {
            return Err(IoError::truncated(
                path,
                format!(
                    "page {page}: the value of tag {tag} ({count} × type {typ}) extends past the                      end of the file ({file_len} bytes)"
                ),
            ));
        }
        if tag == 270 && matches!(typ, 1 | 2 | 7) {
            let mut f = [0u8; 8];
            f[..field.len()].copy_from_slice(field);
            desc = Some(DescRef { count, field: f });
        }
    }
    Ok(desc)
}

/// Largest `ImageDescription` read (OME-XML of big acquisitions can be tens of MB).
pub(super) const MAX_DESCRIPTION: u64 = 64 << 20;

/// Reads the `ImageDescription` text (UTF-8, or Latin-1 when it is not valid UTF-8).
pub(super) fn read_description(
    source: &mut dyn Source,
    path: &Path,
    header: TiffHeader,
    d: DescRef,
    file_len: u64,
    warnings: &mut Vec<String>,
) -> Result<Option<String>, IoError> {
    if d.count > MAX_DESCRIPTION {
        warnings.push(format!(
            "ImageDescription of {} bytes is too long; ignored",
            d.count
        ));
        return Ok(None);
    }
    let mut bytes = if d.count <= header.offset_size() {
        d.field[..d.count as usize].to_vec()
    } else {
        let offset = header.offset(&d.field);
        if offset.saturating_add(d.count) > file_len {
            return Ok(None);
        }
        let mut b = vec![0u8; d.count as usize];
        read_exact_at(source, path, offset, &mut b, "ImageDescription")?;
        b
    };
    if let Some(nul) = bytes.iter().position(|&b| b == 0) {
        bytes.truncate(nul);
    }
    Ok(Some(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::TiffHeader;

    #[test]
    fn encode_is_the_inverse_of_the_readers() {
        for little in [true, false] {
            let h = TiffHeader { little, big: true };
            assert_eq!(h.u16(&h.encode(0xABCD, 2)), 0xABCD);
            assert_eq!(h.u32(&h.encode(0x1234_5678, 4)), 0x1234_5678);
            assert_eq!(
                h.u64(&h.encode(0x0102_0304_0506_0708, 8)),
                0x0102_0304_0506_0708
            );
        }
        assert_eq!(
            TiffHeader {
                little: false,
                big: false
            }
            .encode(3, 2),
            [0, 3]
        );
    }
}
