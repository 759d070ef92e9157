//! The detector's image operations, shared by table and image picking:
//! a separable Gaussian blur (plain and edge-normalised) and strict local
//! maxima, all parallel over rows and independent of the thread count.

use rayon::prelude::*;

/// The taps of a Gaussian of `sigma`, cut at ±3σ (at least ±1).
fn taps(sigma: f32) -> (Vec<f32>, usize) {
    let r = (3.0 * sigma).ceil().max(1.0) as usize;
    let k = (0..=2 * r)
        .map(|j| {
            let d = j as f32 - r as f32;
            (-(d * d) / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    (k, r)
}

/// Separable Gaussian blur of a `w × h` image (edges clamp to zero),
/// rows in parallel; each output value is summed in a fixed order, so the
/// result does not depend on the thread count.
pub fn blur(img: &[f32], w: usize, h: usize, sigma: f32) -> Vec<f32> {
    let (k, r) = taps(sigma);
    let mut tmp = vec![0f32; w * h];
    tmp.par_chunks_mut(w.max(1))
        .zip(img.par_chunks(w.max(1)))
        .for_each(|(out, row)| {
            // tap by tap over the whole row (vectorised); each output
            // still sums its taps in ascending order
            for (j, &kv) in k.iter().enumerate() {
                // outputs x with 0 ≤ x + j − r < w
                let x0 = r.saturating_sub(j);
                let x1 = (w + r).saturating_sub(j).min(w);
                if x0 >= x1 {
                    continue;
                }
                let src = &row[x0 + j - r..x1 + j - r];
                for (o, &v) in out[x0..x1].iter_mut().zip(src) {
                    *o += kv * v;
                }
            }
        });
    let mut out = vec![0f32; w * h];
    out.par_chunks_mut(w.max(1)).enumerate().for_each(|(y, o)| {
        let lo = r.saturating_sub(y);
        let hi = (2 * r).min(h - 1 + r - y);
        for (j, &kv) in k.iter().enumerate().take(hi + 1).skip(lo) {
            let yy = y + j - r;
            for (o, s) in o.iter_mut().zip(&tmp[yy * w..(yy + 1) * w]) {
                *o += kv * s;
            }
        }
    });
    out
}

/// A Gaussian blur normalised by the blurred support, so the edges keep
/// the local mean instead of fading to zero (the support's blur is the
/// product of its two 1-D sums).
pub fn normalised_blur(img: &[f32], w: usize, h: usize, sigma: f32) -> Vec<f32> {
    let sigma = sigma.max(0.5);
    let (k, r) = taps(sigma);
    let support = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|x| {
                let lo = r.saturating_sub(x);
                let hi = (2 * r).min(n - 1 + r - x);
                k[lo..=hi].iter().sum()
            })
            .collect()
    };
    let (sx, sy) = (support(w), support(h));
    let mut out = blur(img, w, h, sigma);
    out.par_chunks_mut(w.max(1))
        .enumerate()
        .for_each(|(y, row)| {
            for (v, dx) in row.iter_mut().zip(&sx) {
                let d = dx * sy[y];
                *v = if d > 0.0 { *v / d } else { 0.0 };
            }
        });
    out
}

/// Pixels that are the strict maximum (ties broken by index) of their
/// `(2·window + 1)²` neighbourhood and positive.
pub fn local_maxima(d: &[f32], w: usize, h: usize, window: isize) -> Vec<(usize, usize)> {
    (0..h)
        .into_par_iter()
        .flat_map_iter(|y| {
            (0..w)
                .filter(move |&x| is_peak(d, w, h, window, x, y))
                .map(move |x| (x, y))
        })
        .collect()
}

/// Whether pixel `(x, y)` is positive and the strict maximum of its
/// neighbourhood (ties go to the later pixel).
fn is_peak(d: &[f32], w: usize, h: usize, window: isize, x: usize, y: usize) -> bool {
    let v = d[y * w + x];
    if v <= 0.0 {
        return false;
    }
    for dy in -window..=window {
        let yy = y as isize + dy;
        if yy < 0 || yy as usize >= h {
            continue;
        }
        for dx in -window..=window {
            let xx = x as isize + dx;
            if xx < 0 || xx as usize >= w || (dx == 0 && dy == 0) {
                continue;
            }
            let o = d[yy as usize * w + xx as usize];
            let later = (yy as usize, xx as usize) > (y, x);
            if o > v || (o == v && later) {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blur_matches_a_direct_sum_and_normalises_at_the_edges() {
        let (w, h) = (37, 23);
        let img: Vec<f32> = (0..w * h).map(|i| ((i * 7919) % 101) as f32).collect();
        let sigma = 2.3f32;
        let out = blur(&img, w, h, sigma);
        let r = (3.0 * sigma).ceil() as isize;
        let g = |d: isize| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp();
        for (x, y) in [(0, 0), (5, 7), (36, 22), (18, 0)] {
            let mut want = 0.0;
            for dy in -r..=r {
                for dx in -r..=r {
                    let (xx, yy) = (x as isize + dx, y as isize + dy);
                    if (0..w as isize).contains(&xx) && (0..h as isize).contains(&yy) {
                        want += g(dx) * g(dy) * img[yy as usize * w + xx as usize];
                    }
                }
            }
            let got = out[y * w + x];
            assert!(
                (got - want).abs() < 1e-3 * want.abs().max(1.0),
                "({x}, {y}): {got} vs {want}"
            );
        }
        // a constant image stays constant everywhere, edges included
        let flat = normalised_blur(&vec![4.0; w * h], w, h, sigma);
        assert!(flat.iter().all(|v| (v - 4.0).abs() < 1e-4));
    }

    #[test]
    fn peaks_are_strict_and_ties_go_to_one() {
        let mut d = vec![0f32; 10 * 10];
        d[3 * 10 + 3] = 5.0;
        d[3 * 10 + 4] = 5.0;
        d[8 * 10 + 8] = 2.0;
        assert_eq!(local_maxima(&d, 10, 10, 2), vec![(4, 3), (8, 8)]);
    }
}
