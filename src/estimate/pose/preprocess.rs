//! Turning a frame into the network's input, the same way in training and inference.
//!
//! 1. **Field of view.** The network sees a 128 × 128 px window of the frame.
//!    A 128 × 128 frame is used whole; a larger one is cropped around its
//!    intensity centroid, a smaller one padded with its background.
//! 2. **Resampling.** The window is binned 2 × 2 to the 64 × 64 input. The
//!    torus sizes of interest (R 10–30 px, PSF σ 1–3 px) stay resolved at
//!    half resolution, and the network runs four times faster than at 128²;
//!    the refinement afterwards works at full resolution, so the final
//!    accuracy does not depend on the network's resolution.
//! 3. **Intensity.** The 20th percentile (background) is subtracted and the
//!    result divided by its 99.5th percentile, so gain, offset and photon
//!    counts do not matter.

use super::search::image_moments;

/// Side of the frame window the network sees, in frame pixels.
pub const FIELD: usize = 128;

/// A frame prepared for the network.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// `size × size` input, row-major.
    pub input: Vec<f32>,
    /// Centre of the window relative to the frame centre, frame pixels.
    pub window_offset: [f64; 2],
    /// Frame pixels per input pixel.
    pub factor: f64,
}

fn percentile(values: &[f32], p: f64) -> f32 {
    let mut v: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    let k = ((v.len() - 1) as f64 * p).round() as usize;
    let (_, x, _) = v.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
    *x
}

/// Prepares a `width × height` frame as a `size × size` network input.
///
/// `size` must divide [`FIELD`] (64 gives 2 × 2 binning).
pub fn prepare(frame: &[f32], width: usize, height: usize, size: usize) -> Prepared {
    let bin = (FIELD / size.max(1)).max(1);
    let bg = percentile(frame, 0.2);
    // window origin in frame pixels (may be negative: padding)
    let (ox, oy) = if width == FIELD && height == FIELD {
        (0i64, 0i64)
    } else {
        let c = image_moments(frame, width, height).map_or([0.0, 0.0], |m| m.centroid);
        let cx = width as f64 / 2.0 + c[0];
        let cy = height as f64 / 2.0 + c[1];
        (
            (cx - FIELD as f64 / 2.0).round() as i64,
            (cy - FIELD as f64 / 2.0).round() as i64,
        )
    };
    let mut input = vec![0.0f32; size * size];
    let inv = 1.0 / (bin * bin) as f32;
    for (i, out) in input.iter_mut().enumerate() {
        let (r, c) = (i / size, i % size);
        let mut acc = 0.0f32;
        for dy in 0..bin {
            for dx in 0..bin {
                let y = oy + (r * bin + dy) as i64;
                let x = ox + (c * bin + dx) as i64;
                let v = if x >= 0 && y >= 0 && (x as usize) < width && (y as usize) < height {
                    frame[y as usize * width + x as usize]
                } else {
                    bg
                };
                acc += if v.is_finite() { v - bg } else { 0.0 };
            }
        }
        *out = acc * inv;
    }
    let top = percentile(&input, 0.995);
    let scale = if top > 0.0 { 1.0 / top } else { 1.0 };
    input
        .iter_mut()
        .for_each(|v| *v = (*v * scale).clamp(-1.0, 4.0));
    Prepared {
        input,
        window_offset: [
            ox as f64 + FIELD as f64 / 2.0 - width as f64 / 2.0,
            oy as f64 + FIELD as f64 / 2.0 - height as f64 / 2.0,
        ],
        factor: bin as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_and_normalises_a_128_frame() {
        let mut frame = vec![100.0f32; 128 * 128];
        // a bright 12×12 block at rows 60–71, cols 66–77 (36 input pixels, above the 99.5th percentile)
        for r in 60..72 {
            for c in 66..78 {
                frame[r * 128 + c] = 300.0;
            }
        }
        let p = prepare(&frame, 128, 128, 64);
        assert_eq!(p.input.len(), 64 * 64);
        assert_eq!(p.window_offset, [0.0, 0.0]);
        assert_eq!(
            p.input[32 * 64 + 35],
            1.0,
            "the block maps to input pixels at the top of the scale"
        );
        assert_eq!(p.input[0], 0.0);
    }

    #[test]
    fn crops_a_large_frame_around_the_particle() {
        let (w, h) = (300, 200);
        let mut frame = vec![10.0f32; w * h];
        for r in 148..162 {
            for c in 218..232 {
                frame[r * w + c] = 50.0;
            }
        }
        let p = prepare(&frame, w, h, 64);
        // particle centre (225, 155) is 75, 55 from the frame centre (150, 100); 14×14 px covers ≥ 36 input pixels
        assert!(
            (p.window_offset[0] - 75.0).abs() <= 1.0 && (p.window_offset[1] - 55.0).abs() <= 1.0,
            "{:?}",
            p.window_offset
        );
        let peak = p.input.iter().cloned().fold(0.0f32, f32::max);
        assert_eq!(peak, 1.0);
    }
}
