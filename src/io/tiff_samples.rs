//! A TIFF page's decoded samples → one grey value per pixel.
//!
//! The `tiff` crate returns whole-byte samples typed (`DecodingResult`) and
//! samples of any other depth (1–7, 9–15, 17–31 bits) as the file's packed
//! rows, most significant bit first (natively, or through the disguise of
//! [`super::tiff_disguise`]). [`to_gray`] handles the first,
//! [`unpack_packed`] the second; both then reduce each pixel's samples by
//! the page's [`ColorMode`]: the sample itself, the first of several, the
//! luminance of RGB, or the luminance of CMYK after the naive
//! `R = (1 − C)(1 − K)` conversion.

use tiff::decoder::DecodingResult;

use super::LUMA;

/// How a page's samples become one grey value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ColorMode {
    /// One sample per pixel (grey, or a palette index).
    Gray,
    /// Several samples, the first is the grey (or luma) value.
    First,
    /// RGB(A): luminance of the first three.
    Rgb,
    /// CMYK: luminance of `(1 − C)(1 − K)` etc., on the samples' own scale.
    Cmyk,
}

/// Where a page's samples sit in the decoded buffer, and how they combine.
#[derive(Clone, Copy, Debug)]
pub(super) struct SampleLayout {
    pub width: usize,
    pub height: usize,
    /// Samples per pixel.
    pub samples: usize,
    /// One plane per sample (PlanarConfiguration 2) instead of interleaved.
    pub planar: bool,
    pub mode: ColorMode,
    /// Largest value of an integer sample (CMYK's scale); 1.0 for floats.
    pub max: f32,
}

impl SampleLayout {
    fn pixels(&self) -> usize {
        self.width * self.height
    }
}

/// One chunk's samples as f32 (`None` for 64-bit integers).
pub(super) fn chunk_samples(result: DecodingResult) -> Option<Vec<f32>> {
    Some(match result {
        DecodingResult::U8(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::U16(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::U32(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::I8(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::I16(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::I32(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::F16(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::F32(v) => v,
        DecodingResult::F64(v) => v.into_iter().map(|x| x as f32).collect(),
        _ => return None,
    })
}

/// Converts a decoded page of whole-byte samples to grey values (`None`: too
/// few samples).
pub(super) fn to_gray(result: DecodingResult, l: &SampleLayout) -> Option<Vec<f32>> {
    match result {
        DecodingResult::U8(v) => gray_from(&v, l, f32::from),
        DecodingResult::U16(v) => gray_from(&v, l, f32::from),
        DecodingResult::U32(v) => gray_from(&v, l, |x| x as f32),
        DecodingResult::I8(v) => gray_from(&v, l, f32::from),
        DecodingResult::I16(v) => gray_from(&v, l, f32::from),
        DecodingResult::I32(v) => gray_from(&v, l, |x| x as f32),
        DecodingResult::F16(v) => gray_from(&v, l, f32::from),
        DecodingResult::F32(v) => gray_from(&v, l, |x| x),
        DecodingResult::F64(v) => gray_from(&v, l, |x| x as f32),
        _ => None,
    }
}

/// The weights of each sample in the grey value, for planar readers that
/// accumulate plane by plane (`None` for CMYK, which is not linear).
pub(super) fn plane_weights(mode: ColorMode) -> Option<&'static [f32]> {
    match mode {
        ColorMode::Gray | ColorMode::First => Some(&[1.0]),
        ColorMode::Rgb => Some(&LUMA),
        ColorMode::Cmyk => None,
    }
}

fn gray_from<T: Copy>(v: &[T], l: &SampleLayout, f: impl Fn(T) -> f32) -> Option<Vec<f32>> {
    let px = l.pixels();
    let spp = l.samples;
    let needed = match l.mode {
        ColorMode::Gray | ColorMode::First => 1,
        ColorMode::Rgb => 3,
        ColorMode::Cmyk => 4,
    };
    // a page may claim RGB with one sample (found by the fuzzer)
    if spp < needed || v.len() < px.checked_mul(spp)? {
        return None;
    }
    let at = |i: usize, c: usize| {
        if l.planar {
            f(v[c * px + i])
        } else {
            f(v[i * spp + c])
        }
    };
    Some(match l.mode {
        ColorMode::Gray | ColorMode::First => (0..px).map(|i| at(i, 0)).collect(),
        ColorMode::Rgb => (0..px)
            .map(|i| LUMA[0] * at(i, 0) + LUMA[1] * at(i, 1) + LUMA[2] * at(i, 2))
            .collect(),
        ColorMode::Cmyk => {
            if spp < 4 {
                return None;
            }
            let m = l.max;
            (0..px)
                .map(|i| {
                    let k = m - at(i, 3);
                    let rgb = [0, 1, 2].map(|c| (m - at(i, c)) * k / m);
                    LUMA[0] * rgb[0] + LUMA[1] * rgb[1] + LUMA[2] * rgb[2]
                })
                .collect()
        }
    })
}

/// Geometry of a packed buffer as the `tiff` crate returns it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Packed {
    /// Bits per sample (1–31, not 8, 16 or 24 … any depth works).
    pub bits: u8,
    /// Bytes per row of one plane.
    pub row_stride: usize,
    /// Bytes per plane (planar pages).
    pub plane_stride: usize,
    /// Signed two's-complement samples.
    pub signed: bool,
    /// Rows were stored as differences from the previous pixel's sample
    /// (TIFF Predictor 2), modulo 2^bits.
    pub predictor: bool,
}

/// Unpacks MSB-first packed samples and reduces them to grey values
/// (`None`: the buffer is too short for the layout).
pub(super) fn unpack_packed(bytes: &[u8], p: &Packed, l: &SampleLayout) -> Option<Vec<f32>> {
    if p.bits == 0 || p.bits > 32 {
        return None;
    }
    let (planes, per_row) = if l.planar {
        (l.samples, l.width)
    } else {
        (1, l.width.checked_mul(l.samples)?)
    };
    let row_bits = per_row.checked_mul(usize::from(p.bits))?;
    if p.row_stride.checked_mul(8)? < row_bits {
        return None;
    }
    let plane_len = p.row_stride.checked_mul(l.height)?;
    let plane_step = if planes > 1 {
        p.plane_stride
    } else {
        plane_len
    };
    if planes > 1 && plane_step < plane_len {
        return None;
    }
    let needed = plane_step.checked_mul(planes - 1)?.checked_add(plane_len)?;
    if bytes.len() < needed {
        return None;
    }
    let mut samples = Vec::with_capacity(per_row * l.height * planes);
    let sign_bit = 1u64 << (p.bits - 1);
    let mask = (1u64 << p.bits) - 1;
    // the predictor works per sample of a pixel: `stride` values apart
    let stride = if l.planar { 1 } else { l.samples };
    let mut raw = vec![0u64; per_row];
    for plane in 0..planes {
        for r in 0..l.height {
            let row = &bytes[plane * plane_step + r * p.row_stride..][..p.row_stride];
            let mut acc: u64 = 0;
            let mut have: u32 = 0;
            let mut next = row.iter();
            for slot in raw.iter_mut() {
                while have < u32::from(p.bits) {
                    acc = (acc << 8) | u64::from(*next.next()?);
                    have += 8;
                }
                have -= u32::from(p.bits);
                *slot = (acc >> have) & mask;
                acc &= (1u64 << have) - 1;
            }
            if p.predictor {
                for i in stride..per_row {
                    raw[i] = (raw[i] + raw[i - stride]) & mask;
                }
            }
            samples.extend(raw.iter().map(|&v| {
                if p.signed && v & sign_bit != 0 {
                    (v as f64 - (1u64 << p.bits) as f64) as f32
                } else {
                    v as f32
                }
            }));
        }
    }
    gray_from(&samples, l, |x| x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(width: usize, height: usize, samples: usize, mode: ColorMode) -> SampleLayout {
        SampleLayout {
            width,
            height,
            samples,
            planar: false,
            mode,
            max: 255.0,
        }
    }

    #[test]
    fn unpacks_12_bit_rows_with_padding() {
        // 3 samples of 12 bits = 36 bits, padded to 5 bytes per row
        let vals = [0xABCu16, 0x123, 0xFFF];
        let mut bits: u64 = 0;
        for v in vals {
            bits = (bits << 12) | u64::from(v);
        }
        bits <<= 4; // pad to 40 bits
        let row: Vec<u8> = (0..5).rev().map(|k| (bits >> (8 * k)) as u8).collect();
        let buf = [row.clone(), row].concat();
        let p = Packed {
            bits: 12,
            row_stride: 5,
            plane_stride: 10,
            signed: false,
            predictor: false,
        };
        let g = unpack_packed(&buf, &p, &layout(3, 2, 1, ColorMode::Gray)).unwrap();
        assert_eq!(g, [2748.0, 291.0, 4095.0, 2748.0, 291.0, 4095.0]);
    }

    #[test]
    fn unpacks_1_bit_and_signed_4_bit() {
        let one = [0b1010_0000u8];
        let p = Packed {
            bits: 1,
            row_stride: 1,
            plane_stride: 1,
            signed: false,
            predictor: false,
        };
        let g = unpack_packed(&one, &p, &layout(3, 1, 1, ColorMode::Gray)).unwrap();
        assert_eq!(g, [1.0, 0.0, 1.0]);
        let four = [0xF7u8];
        let p = Packed {
            bits: 4,
            signed: true,
            ..p
        };
        let g = unpack_packed(&four, &p, &layout(2, 1, 1, ColorMode::Gray)).unwrap();
        assert_eq!(g, [-1.0, 7.0]);
    }

    #[test]
    fn horizontal_predictor_is_undone_per_sample_modulo_the_depth() {
        // two RGB-like pixels of 4-bit samples: (1, 2, 3) then differences (+1, −1 ≡ 15, +2)
        let buf = [0x12u8, 0x31, 0xF2];
        let p = Packed {
            bits: 4,
            row_stride: 3,
            plane_stride: 3,
            signed: false,
            predictor: true,
        };
        let l = SampleLayout {
            mode: ColorMode::First,
            ..layout(2, 1, 3, ColorMode::First)
        };
        let g = unpack_packed(&buf, &p, &l).unwrap();
        assert_eq!(g, [1.0, 2.0]);
    }

    #[test]
    fn short_buffers_are_refused_not_read_past() {
        let buf = [0u8; 3];
        let p = Packed {
            bits: 12,
            row_stride: 2,
            plane_stride: 2,
            signed: false,
            predictor: false,
        };
        assert!(unpack_packed(&buf, &p, &layout(1, 2, 1, ColorMode::Gray)).is_none());
        let p = Packed { row_stride: 1, ..p };
        assert!(unpack_packed(&buf, &p, &layout(1, 1, 1, ColorMode::Gray)).is_none());
    }

    #[test]
    fn too_few_samples_for_the_colour_model_are_refused() {
        // an "RGB" page with one sample per pixel
        let l = layout(4, 1, 1, ColorMode::Rgb);
        assert!(to_gray(DecodingResult::U8(vec![1, 2, 3, 4]), &l).is_none());
        let l = layout(1, 1, 3, ColorMode::Cmyk);
        assert!(to_gray(DecodingResult::U8(vec![1, 2, 3]), &l).is_none());
    }

    #[test]
    fn cmyk_white_and_black() {
        let l = layout(2, 1, 4, ColorMode::Cmyk);
        let g = to_gray(DecodingResult::U8(vec![0, 0, 0, 0, 0, 0, 0, 255]), &l).unwrap();
        assert!((g[0] - 255.0).abs() < 1e-3, "{g:?}");
        assert!(g[1].abs() < 1e-3, "{g:?}");
    }
}
