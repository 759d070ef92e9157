//! A JPEG-compressed TIFF chunk must not declare a larger frame than the
//! chunk it fills.
//!
//! The `tiff` crate hands each chunk to zune-jpeg, which allocates its
//! output from the dimensions in the JPEG's own frame header (up to its
//! 16384 × 16384 cap, about 1 GB) before finding out that the data cannot
//! fill it. So a 2 kB file could ask for a gigabyte. [`frame_size`] walks
//! the chunk's marker segments up to the frame header (SOF) and returns its
//! size, to be checked against the tile or strip before decoding.

use std::io::{Read, Seek, SeekFrom};

/// The `(width, height)` in the frame header of the JPEG stream at
/// `offset..offset + len`. `Ok(None)` when the stream holds no frame header
/// (abbreviated tables-only data); `Err` with a reason for a stream that is
/// not JPEG or whose segments run past `len`.
pub(super) fn frame_size<R: Read + Seek>(
    r: &mut R,
    offset: u64,
    len: u64,
) -> Result<Option<(u32, u32)>, String> {
    let mut at = 0u64;
    let mut read = |at: u64, buf: &mut [u8]| -> Result<(), String> {
        if at + buf.len() as u64 > len {
            return Err("the JPEG stream ends inside a segment header".into());
        }
        r.seek(SeekFrom::Start(offset + at))
            .and_then(|_| r.read_exact(buf))
            .map_err(|e| format!("reading the JPEG stream: {e}"))
    };
    let mut soi = [0u8; 2];
    read(at, &mut soi)?;
    if soi != [0xFF, 0xD8] {
        return Err("the chunk does not start with a JPEG SOI marker".into());
    }
    at += 2;
    // a stream has a handful of segments before its frame header; the bound
    // only stops a crafted chain of empty segments
    for _ in 0..4096 {
        let mut m = [0u8; 2];
        read(at, &mut m)?;
        if m[0] != 0xFF {
            return Err(format!("no JPEG marker at byte {at} of the chunk"));
        }
        if m[1] == 0xFF {
            at += 1; // fill byte
            continue;
        }
        let marker = m[1];
        // markers without a length
        if marker == 0xD8 || marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            at += 2;
            continue;
        }
        if marker == 0xD9 || marker == 0xDA {
            return Ok(None); // end of image or start of scan before any frame header
        }
        let mut l = [0u8; 2];
        read(at + 2, &mut l)?;
        let seg = u64::from(u16::from_be_bytes(l));
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let mut h = [0u8; 5];
            read(at + 4, &mut h)?;
            let height = u32::from(u16::from_be_bytes([h[1], h[2]]));
            let width = u32::from(u16::from_be_bytes([h[3], h[4]]));
            return Ok(Some((width, height)));
        }
        if seg < 2 {
            return Err(format!("a JPEG segment of length {seg} at byte {at}"));
        }
        at += 2 + seg;
    }
    Err("more than 4096 JPEG segments before the frame header".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn stream(w: u16, h: u16) -> Vec<u8> {
        let mut s = vec![0xFF, 0xD8];
        // an APP0 segment of 6 bytes, then SOF0
        s.extend([0xFF, 0xE0, 0x00, 0x06, b'J', b'F', b'I', b'F']);
        s.extend([0xFF, 0xC0, 0x00, 0x0B, 8]);
        s.extend(h.to_be_bytes());
        s.extend(w.to_be_bytes());
        s.extend([1, 1, 0x11, 0]);
        s
    }

    #[test]
    fn reads_the_frame_size_after_other_segments() {
        let mut data = vec![7u8; 5];
        data.extend(stream(640, 16));
        let len = data.len() as u64 - 5;
        let got = frame_size(&mut Cursor::new(data), 5, len).unwrap();
        assert_eq!(got, Some((640, 16)));
    }

    #[test]
    fn tables_only_and_broken_streams() {
        let tables = vec![0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x02, 0xFF, 0xD9];
        let n = tables.len() as u64;
        assert_eq!(frame_size(&mut Cursor::new(tables), 0, n).unwrap(), None);
        let not_jpeg = vec![0u8; 16];
        assert!(frame_size(&mut Cursor::new(not_jpeg), 0, 16).is_err());
        let mut cut = stream(64, 64);
        cut.truncate(12);
        assert!(frame_size(&mut Cursor::new(cut), 0, 12).is_err());
    }
}
