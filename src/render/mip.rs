//! A large image shown at any zoom: a mip pyramid (each level the 2 × 2
//! mean of the one below, non-finite pixels left out) and the render of any
//! window of it at any pixel size from the level that matches — so a
//! 16k × 16k whole-field image is drawn as a screen-sized window, never as
//! one texture the GPU could not hold, and zooming out averages instead of
//! aliasing.
//!
//! The window is a [`LocView`] of the image plane in *field units*: one
//! image pixel is `unit` field units wide (its pixel size in nm when known,
//! so an image lines up with picks in nm, else 1).

use rayon::prelude::*;

use super::locs::LocView;
use crate::io::Frame;

/// The value of a rendered pixel outside the image (NaN stays the image's
/// own non-finite pixels).
pub const OUTSIDE: f32 = f32::NEG_INFINITY;

/// Levels stop once both sides are at most this many pixels.
const TOP_SIDE: usize = 256;

/// An image and its downsampled levels.
#[derive(Clone, Debug)]
pub struct MipPyramid {
    /// Level 0 is the image itself; level `k` is `2^k` times coarser.
    levels: Vec<Frame>,
}

impl MipPyramid {
    /// Builds the pyramid of `image` (it becomes level 0).
    pub fn new(image: Frame) -> Self {
        let mut levels = vec![image];
        loop {
            let last = levels.last().expect("level 0 exists");
            if last.width.max(last.height) <= TOP_SIDE || last.width < 2 || last.height < 2 {
                break;
            }
            let next = halve(last);
            levels.push(next);
        }
        Self { levels }
    }

    /// The image itself.
    pub fn image(&self) -> &Frame {
        &self.levels[0]
    }

    /// How many levels (1 for a small image).
    pub fn levels(&self) -> usize {
        self.levels.len()
    }

    /// Renders `view` (in field units, `unit` per image pixel): each output
    /// pixel samples, at its centre, the level whose pixels are at most as
    /// large as it — nearest neighbour at level 0 when zoomed in, so image
    /// pixels stay crisp squares; bilinear on the coarser levels. Outside
    /// the image: [`OUTSIDE`].
    pub fn render(&self, view: &LocView, unit: f64) -> Vec<f32> {
        let px_per_out = view.pixel_nm / unit;
        let level = if px_per_out >= 2.0 {
            (px_per_out.log2().floor() as usize).min(self.levels.len() - 1)
        } else {
            0
        };
        let img = &self.levels[level];
        let f = (1u64 << level) as f64;
        let (w0, h0) = (self.levels[0].width as f64, self.levels[0].height as f64);
        let mut out = vec![OUTSIDE; view.width * view.height];
        out.par_chunks_mut(view.width.max(1))
            .enumerate()
            .for_each(|(r, row)| {
                // image pixel coordinates of the output pixel centre
                let y = (view.origin_nm[1] + (r as f64 + 0.5) * view.pixel_nm) / unit;
                if !(0.0..h0).contains(&y) {
                    return;
                }
                for (c, o) in row.iter_mut().enumerate() {
                    let x = (view.origin_nm[0] + (c as f64 + 0.5) * view.pixel_nm) / unit;
                    if !(0.0..w0).contains(&x) {
                        continue;
                    }
                    *o = if level == 0 && px_per_out < 1.0 {
                        img.data[y as usize * img.width + x as usize]
                    } else {
                        img.bilinear(x / f, y / f).unwrap_or(f32::NAN)
                    };
                }
            });
        out
    }
}

/// The 2 × 2 mean of `img` (an odd last row or column averaged with
/// itself); non-finite pixels are left out, four of them give NaN.
fn halve(img: &Frame) -> Frame {
    let (w, h) = (img.width.div_ceil(2), img.height.div_ceil(2));
    let mut data = vec![0f32; w * h];
    data.par_chunks_mut(w).enumerate().for_each(|(r, row)| {
        let (y0, y1) = (2 * r, (2 * r + 1).min(img.height - 1));
        for (c, o) in row.iter_mut().enumerate() {
            let (x0, x1) = (2 * c, (2 * c + 1).min(img.width - 1));
            let (mut s, mut n) = (0f32, 0u32);
            for (x, y) in [(x0, y0), (x1, y0), (x0, y1), (x1, y1)] {
                let v = img.data[y * img.width + x];
                if v.is_finite() {
                    s += v;
                    n += 1;
                }
            }
            *o = if n > 0 { s / n as f32 } else { f32::NAN };
        }
    });
    Frame {
        width: w,
        height: h,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> Frame {
        Frame {
            width: w,
            height: h,
            data: (0..w * h)
                .map(|i| (i % w) as f32 + 1000.0 * (i / w) as f32)
                .collect(),
        }
    }

    #[test]
    fn levels_halve_until_small_and_keep_the_mean() {
        let p = MipPyramid::new(ramp(1000, 600));
        // 1000 → 500 → 250
        assert_eq!(p.levels(), 3);
        assert_eq!((p.levels[1].width, p.levels[1].height), (500, 300));
        assert_eq!((p.levels[2].width, p.levels[2].height), (250, 150));
        // level 1 pixel (3, 2) is the mean of rows 4–5, columns 6–7
        let want = (6.0 + 7.0) / 2.0 + 1000.0 * 4.5;
        assert_eq!(p.levels[1].data[2 * 500 + 3], want);
        // odd sides, and a pixel of NaNs only
        let mut odd = ramp(301, 3);
        odd.data[0] = f32::NAN;
        let h = halve(&odd);
        assert_eq!((h.width, h.height), (151, 2));
        assert_eq!(h.data[0], (1.0 + 1000.0 + 1001.0) / 3.0);
        assert_eq!(h.data[150], 300.0 + 500.0);
    }

    #[test]
    fn a_window_is_rendered_from_the_matching_level() {
        let p = MipPyramid::new(ramp(2048, 2048));
        // zoomed in 4×, 10 nm image pixels: nearest neighbour at level 0
        let v = LocView {
            origin_nm: [1000.0, 2000.0],
            pixel_nm: 2.5,
            width: 8,
            height: 8,
        };
        let out = p.render(&v, 10.0);
        assert_eq!(out[0], 100.0 + 1000.0 * 200.0);
        assert_eq!(out[3], 100.0 + 1000.0 * 200.0);
        assert_eq!(out[4], 101.0 + 1000.0 * 200.0);
        // zoomed out 4×: level 2, whose bilinear value at a pixel centre of
        // level 2 is the mean of the 4 × 4 block
        let v = LocView {
            origin_nm: [0.0, 0.0],
            pixel_nm: 4.0,
            width: 512,
            height: 512,
        };
        let out = p.render(&v, 1.0);
        assert_eq!(out.len(), 512 * 512);
        let (c, r) = (10, 20);
        let block = (4.0 * c as f32 + 1.5) + 1000.0 * (4.0 * r as f32 + 1.5);
        assert!(
            (out[r * 512 + c] - block).abs() < 1e-2,
            "{} vs {block}",
            out[r * 512 + c]
        );
        // outside the image
        let v = LocView {
            origin_nm: [-100.0, 0.0],
            pixel_nm: 1.0,
            width: 2,
            height: 1,
        };
        assert_eq!(p.render(&v, 1.0)[0], OUTSIDE);
    }
}
