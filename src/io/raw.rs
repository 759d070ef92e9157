//! Reading uncompressed sample planes straight from the file (FITS data, and ImageJ TIFF stacks
//! whose pages are stored back to back after a single directory).

use std::io::SeekFrom;
use std::path::Path;

use super::{IoError, SampleType, Source};

/// Byte order of stored samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endian {
    Little,
    Big,
}

/// Linear scaling applied to stored values: `value = zero + scale * stored`, and integer values
/// equal to `blank` become NaN (FITS `BZERO`, `BSCALE`, `BLANK`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Scaling {
    pub zero: f64,
    pub scale: f64,
    pub blank: Option<i64>,
}

impl Scaling {
    pub const IDENTITY: Scaling = Scaling {
        zero: 0.0,
        scale: 1.0,
        blank: None,
    };

    fn is_identity(&self) -> bool {
        self.zero == 0.0 && self.scale == 1.0 && self.blank.is_none()
    }
}

/// Bytes read per `read` call when streaming a plane (keeps the temporary buffer small).
const CHUNK: usize = 1 << 20;

/// How the samples of a plane are stored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Encoding {
    pub stored: SampleType,
    pub endian: Endian,
    pub scaling: Scaling,
}

/// Reads `pixels` samples starting at byte `offset` and converts them to `f32`.
///
/// The caller has checked that the data lies inside the file and that `pixels` fits the limits;
/// this only allocates the output plus a 1 MiB read buffer.
pub(crate) fn read_plane(
    source: &mut dyn Source,
    path: &Path,
    offset: u64,
    pixels: usize,
    enc: Encoding,
    what: &str,
) -> Result<Vec<f32>, IoError> {
    let Encoding {
        stored,
        endian,
        scaling,
    } = enc;
    let bps = stored.bytes();
    source
        .seek(SeekFrom::Start(offset))
        .map_err(|e| IoError::io(path, e))?;
    let mut out = Vec::with_capacity(pixels);
    let samples_per_chunk = (CHUNK / bps).max(1);
    let mut buf = vec![0u8; samples_per_chunk.min(pixels) * bps];
    let mut remaining = pixels;
    while remaining > 0 {
        let n = remaining.min(samples_per_chunk);
        let bytes = &mut buf[..n * bps];
        source
            .read_exact(bytes)
            .map_err(|e| IoError::read(path, what, e))?;
        convert(bytes, stored, endian, scaling, &mut out);
        remaining -= n;
    }
    Ok(out)
}

/// Converts whole samples in `bytes` and appends them to `out`.
pub(crate) fn convert(
    bytes: &[u8],
    stored: SampleType,
    endian: Endian,
    scaling: Scaling,
    out: &mut Vec<f32>,
) {
    macro_rules! ints {
        ($t:ty, $n:expr) => {{
            let it = bytes.chunks_exact($n).map(|c| {
                let mut a = [0u8; $n];
                a.copy_from_slice(c);
                match endian {
                    Endian::Little => <$t>::from_le_bytes(a),
                    Endian::Big => <$t>::from_be_bytes(a),
                }
            });
            if scaling.is_identity() {
                out.extend(it.map(|v| v as f32));
            } else {
                out.extend(it.map(|v| {
                    if scaling.blank == Some(v as i64) {
                        f32::NAN
                    } else {
                        (scaling.zero + scaling.scale * v as f64) as f32
                    }
                }));
            }
        }};
    }
    macro_rules! floats {
        ($t:ty, $n:expr) => {{
            let it = bytes.chunks_exact($n).map(|c| {
                let mut a = [0u8; $n];
                a.copy_from_slice(c);
                match endian {
                    Endian::Little => <$t>::from_le_bytes(a),
                    Endian::Big => <$t>::from_be_bytes(a),
                }
            });
            if scaling.zero == 0.0 && scaling.scale == 1.0 {
                out.extend(it.map(|v| v as f32));
            } else {
                out.extend(it.map(|v| (scaling.zero + scaling.scale * v as f64) as f32));
            }
        }};
    }
    match stored {
        SampleType::U8 => ints!(u8, 1),
        SampleType::I8 => ints!(i8, 1),
        SampleType::U16 => ints!(u16, 2),
        SampleType::I16 => ints!(i16, 2),
        SampleType::U32 => ints!(u32, 4),
        SampleType::I32 => ints!(i32, 4),
        SampleType::F32 => floats!(f32, 4),
        SampleType::F64 => floats!(f64, 8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_endianness_and_scaling() {
        let mut out = Vec::new();
        convert(
            &[0x01, 0x02, 0xff, 0xfe],
            SampleType::I16,
            Endian::Big,
            Scaling::IDENTITY,
            &mut out,
        );
        assert_eq!(out, vec![258.0, -2.0]);
        out.clear();
        convert(
            &[0x01, 0x02],
            SampleType::U16,
            Endian::Little,
            Scaling::IDENTITY,
            &mut out,
        );
        assert_eq!(out, vec![513.0]);
        out.clear();
        let s = Scaling {
            zero: 32768.0,
            scale: 1.0,
            blank: Some(-2),
        };
        convert(
            &[0x80, 0x00, 0xff, 0xfe],
            SampleType::I16,
            Endian::Big,
            s,
            &mut out,
        );
        assert_eq!(out[0], 0.0);
        assert!(out[1].is_nan());
        out.clear();
        convert(
            &1.5f64.to_be_bytes(),
            SampleType::F64,
            Endian::Big,
            Scaling {
                zero: 1.0,
                scale: 2.0,
                blank: None,
            },
            &mut out,
        );
        assert_eq!(out, vec![4.0]);
    }
}
