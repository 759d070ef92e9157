//! The frames as learning sees them: each background-subtracted, cut to a
//! common square around its particle, scaled to unit RMS, and blurred or
//! binned for the coarse levels of the curriculum.

use crate::io::Frame;

use super::LearnError;

/// Where a prepared frame came from, for its output row.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameId {
    /// Source file, when frames come from several files.
    pub file: Option<String>,
    /// Frame index within the file.
    pub frame: usize,
}

/// Every usable frame, cropped to `side × side` around its particle.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Side of the square crops, pixels.
    pub side: usize,
    /// Crops, row-major, background-subtracted and scaled to unit RMS.
    pub crops: Vec<Vec<f32>>,
    /// Centre of each crop relative to its frame's centre, pixels: a shift
    /// in the crop plus this is the shift in the frame.
    pub origin: Vec<[f64; 2]>,
    /// The particle's intensity centroid within its crop (a starting shift).
    pub start_shift: Vec<[f64; 2]>,
    /// Where each crop came from.
    pub ids: Vec<FrameId>,
    /// Frames that could not be used, and why.
    pub skipped: Vec<(FrameId, String)>,
    /// Radius of the particle estimated from the frames' second moments
    /// (the radius of a sphere, or of a ring, with the same spread), pixels.
    pub radius: f64,
}

/// Background (20th percentile), noise (MAD below the median) and the
/// centroid and spread of the signal clearly above them.
struct Spot {
    background: f64,
    centroid: [f64; 2],
    trace_var: f64,
}

fn spot(f: &Frame) -> Option<Spot> {
    let mut sorted = f.data.clone();
    sorted.sort_unstable_by(f32::total_cmp);
    let q = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize] as f64;
    let (background, median) = (q(0.2), q(0.5));
    let mut dev: Vec<f32> = f
        .data
        .iter()
        .map(|&v| (v as f64 - median).abs() as f32)
        .collect();
    let mid = dev.len() / 2;
    let mad = *dev.select_nth_unstable_by(mid, f32::total_cmp).1 as f64 * 1.4826;
    let cut = background + 2.0 * mad;
    let (mut m0, mut mx, mut my) = (0.0, 0.0, 0.0);
    for (i, &v) in f.data.iter().enumerate() {
        let w = (v as f64 - cut).max(0.0);
        m0 += w;
        mx += w * ((i % f.width) as f64 + 0.5);
        my += w * ((i / f.width) as f64 + 0.5);
    }
    if m0.is_nan() || m0 <= 0.0 {
        return None;
    }
    let c = [mx / m0, my / m0];
    let mut t = 0.0;
    for (i, &v) in f.data.iter().enumerate() {
        let w = (v as f64 - cut).max(0.0);
        let dx = (i % f.width) as f64 + 0.5 - c[0];
        let dy = (i / f.width) as f64 + 0.5 - c[1];
        t += w * (dx * dx + dy * dy);
    }
    Some(Spot {
        background,
        centroid: c,
        trace_var: t / m0,
    })
}

impl Prepared {
    /// Prepares `frames` for a PSF of `sigma` pixels. Frames that are blank
    /// or not finite are skipped with the reason; fewer than two usable
    /// frames is an error.
    pub fn new(frames: Vec<(FrameId, Frame)>, sigma: f64) -> Result<Self, LearnError> {
        let mut spots = Vec::new();
        let mut skipped = Vec::new();
        for (id, f) in frames {
            if f.width < 8 || f.height < 8 {
                skipped.push((id, format!("{}×{} is too small", f.width, f.height)));
                continue;
            }
            let Some((filled, _)) = f.finite_filled() else {
                skipped.push((id, "no finite pixel".into()));
                continue;
            };
            let filled = filled.into_owned();
            match spot(&filled) {
                Some(s) => spots.push((id, filled, s)),
                None => skipped.push((id, "no particle above the background".into())),
            }
        }
        if spots.len() < 2 {
            return Err(LearnError::Input(format!(
                "learning needs at least two frames with a particle; {} usable of {}",
                spots.len(),
                spots.len() + skipped.len()
            )));
        }
        // the particle's spread: a sphere of radius ρ projects to ⟨x²+y²⟩ = 2ρ²/3,
        // a ring of radius R seen from random directions to the same 2R²/3
        let mut traces: Vec<f64> = spots.iter().map(|(_, _, s)| s.trace_var).collect();
        traces.sort_by(f64::total_cmp);
        let t = traces[traces.len() / 2];
        let radius = (1.5 * (t - 2.0 * sigma * sigma)).max(1.0).sqrt();
        let smallest = spots
            .iter()
            .map(|(_, f, _)| f.width.min(f.height))
            .min()
            .unwrap_or(8);
        let half = (1.25 * radius + 3.0 * sigma + 2.0).ceil() as usize;
        let side = (2 * half)
            .next_multiple_of(4)
            .clamp(8, smallest.max(8) & !1);
        let mut out = Prepared {
            side,
            crops: Vec::with_capacity(spots.len()),
            origin: Vec::with_capacity(spots.len()),
            start_shift: Vec::with_capacity(spots.len()),
            ids: Vec::with_capacity(spots.len()),
            skipped,
            radius,
        };
        for (id, f, s) in spots {
            let (x0, y0) = (
                s.centroid[0].round() as i64 - (side / 2) as i64,
                s.centroid[1].round() as i64 - (side / 2) as i64,
            );
            let mut crop = vec![0.0f32; side * side];
            for r in 0..side {
                let y = y0 + r as i64;
                if y < 0 || y >= f.height as i64 {
                    continue;
                }
                for c in 0..side {
                    let x = x0 + c as i64;
                    if x >= 0 && x < f.width as i64 {
                        crop[r * side + c] = (f.data[y as usize * f.width + x as usize] as f64
                            - s.background) as f32;
                    }
                }
            }
            let n = crop.len() as f64;
            let mean = crop.iter().map(|&v| v as f64).sum::<f64>() / n;
            let rms = (crop.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
            if rms.is_nan() || rms <= 0.0 {
                out.skipped.push((id, "flat frame".into()));
                continue;
            }
            crop.iter_mut().for_each(|v| *v = (*v as f64 / rms) as f32);
            let centre = [x0 as f64 + side as f64 / 2.0, y0 as f64 + side as f64 / 2.0];
            out.origin.push([
                centre[0] - f.width as f64 / 2.0,
                centre[1] - f.height as f64 / 2.0,
            ]);
            out.start_shift
                .push([s.centroid[0] - centre[0], s.centroid[1] - centre[1]]);
            out.crops.push(crop);
            out.ids.push(id);
        }
        Ok(out)
    }

    /// Number of usable frames.
    pub fn len(&self) -> usize {
        self.crops.len()
    }

    /// Whether no frame is usable.
    pub fn is_empty(&self) -> bool {
        self.crops.is_empty()
    }
}

/// A separable Gaussian blur of a `side × side` image (zero outside).
pub fn blur(img: &[f32], side: usize, sigma: f64) -> Vec<f32> {
    if sigma < 0.05 {
        return img.to_vec();
    }
    let reach = (3.5 * sigma).ceil() as i64;
    let taps: Vec<f32> = (-reach..=reach)
        .map(|d| (-(d * d) as f64 / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let norm: f32 = taps.iter().sum();
    let taps: Vec<f32> = taps.iter().map(|t| t / norm).collect();
    let n = side as i64;
    let mut tmp = vec![0.0f32; side * side];
    for r in 0..side {
        let row = &img[r * side..(r + 1) * side];
        for c in 0..n {
            let mut acc = 0.0;
            for (k, &t) in taps.iter().enumerate() {
                let x = c + k as i64 - reach;
                if (0..n).contains(&x) {
                    acc += t * row[x as usize];
                }
            }
            tmp[r * side + c as usize] = acc;
        }
    }
    let mut out = vec![0.0f32; side * side];
    for r in 0..n {
        for (k, &t) in taps.iter().enumerate() {
            let y = r + k as i64 - reach;
            if !(0..n).contains(&y) {
                continue;
            }
            let src = &tmp[y as usize * side..(y as usize + 1) * side];
            let dst = &mut out[r as usize * side..(r as usize + 1) * side];
            dst.iter_mut().zip(src).for_each(|(d, s)| *d += t * s);
        }
    }
    out
}

/// Averages `bin × bin` blocks of a `side × side` image (`side` divisible by `bin`).
pub fn bin_image(img: &[f32], side: usize, bin: usize) -> Vec<f32> {
    if bin <= 1 {
        return img.to_vec();
    }
    let s = side / bin;
    let mut out = vec![0.0f32; s * s];
    let inv = 1.0 / (bin * bin) as f32;
    for r in 0..s * bin {
        for c in 0..s * bin {
            out[(r / bin) * s + c / bin] += img[r * side + c] * inv;
        }
    }
    out
}

/// Zero mean and unit norm (all zeros when the image is constant).
pub fn standardise(img: &mut [f32]) {
    let n = img.len() as f64;
    let mean = img.iter().map(|&v| v as f64).sum::<f64>() / n;
    let ss: f64 = img.iter().map(|&v| (v as f64 - mean).powi(2)).sum();
    let inv = if ss > 0.0 { 1.0 / ss.sqrt() } else { 0.0 };
    img.iter_mut()
        .for_each(|v| *v = ((*v as f64 - mean) * inv) as f32);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(w: usize, h: usize, at: [f64; 2], spread: f64) -> Frame {
        let data = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f64 + 0.5 - at[0], (i / w) as f64 + 0.5 - at[1]);
                (100.0 + 500.0 * (-(x * x + y * y) / (2.0 * spread * spread)).exp()) as f32
            })
            .collect();
        Frame::new(w, h, data)
    }

    #[test]
    fn crops_follow_each_particle_and_record_where_it_was() {
        let id = |frame| FrameId { file: None, frame };
        let frames = vec![
            (id(0), blob(96, 80, [40.3, 50.0], 4.0)),
            (id(1), blob(96, 80, [60.0, 30.6], 4.0)),
            (id(2), Frame::new(96, 80, vec![f32::NAN; 96 * 80])),
        ];
        let p = Prepared::new(frames, 1.0).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p.skipped.len(), 1);
        assert!(p.skipped[0].1.contains("finite"), "{:?}", p.skipped);
        // a Gaussian blob of spread s has ⟨x²+y²⟩ = 2s²
        let expect = (1.5f64 * (2.0 * 16.0 - 2.0)).sqrt();
        assert!((p.radius - expect).abs() < 0.5, "radius {}", p.radius);
        // crop centre + start shift is the blob's position relative to the frame centre
        let at0 = [
            p.origin[0][0] + p.start_shift[0][0],
            p.origin[0][1] + p.start_shift[0][1],
        ];
        assert!((at0[0] - (40.3 - 48.0)).abs() < 0.05 && (at0[1] - (50.0 - 40.0)).abs() < 0.05);
        let at1 = [
            p.origin[1][0] + p.start_shift[1][0],
            p.origin[1][1] + p.start_shift[1][1],
        ];
        assert!(
            (at1[0] - 12.0).abs() < 0.05 && (at1[1] + 9.4).abs() < 0.05,
            "{at1:?}"
        );
        let rms = (p.crops[0].iter().map(|v| v * v).sum::<f32>() / p.crops[0].len() as f32).sqrt();
        assert!(rms > 0.9, "unit-RMS crops");
    }

    #[test]
    fn too_few_usable_frames_is_a_clear_error() {
        let e = Prepared::new(
            vec![(
                FrameId {
                    file: None,
                    frame: 0,
                },
                Frame::zeros(32, 32),
            )],
            1.0,
        )
        .unwrap_err();
        assert!(e.to_string().contains("at least two"), "{e}");
    }

    #[test]
    fn blur_keeps_the_sum_and_binning_averages() {
        let mut img = vec![0.0f32; 32 * 32];
        img[16 * 32 + 16] = 1.0;
        let b = blur(&img, 32, 2.0);
        assert!((b.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        assert!(b[16 * 32 + 16] < 0.05 && b[16 * 32 + 18] > 0.0);
        let binned = bin_image(&[1.0; 64], 8, 2);
        assert_eq!(binned, vec![1.0; 16]);
    }
}
