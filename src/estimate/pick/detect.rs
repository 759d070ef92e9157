//! The detector's image operations, shared by table and image picking:
//! a separable Gaussian blur and strict local maxima.

/// Separable Gaussian blur of a `w × h` image (edges clamp to zero).
pub fn blur(img: &[f32], w: usize, h: usize, sigma: f32) -> Vec<f32> {
    let r = (3.0 * sigma).ceil().max(1.0) as isize;
    let k: Vec<f32> = (-r..=r)
        .map(|d| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let mut tmp = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (j, kv) in k.iter().enumerate() {
                let xx = x as isize + j as isize - r;
                if xx >= 0 && (xx as usize) < w {
                    acc += kv * img[y * w + xx as usize];
                }
            }
            tmp[y * w + x] = acc;
        }
    }
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        for (j, kv) in k.iter().enumerate() {
            let yy = y as isize + j as isize - r;
            if yy < 0 || yy as usize >= h {
                continue;
            }
            let src = &tmp[yy as usize * w..(yy as usize + 1) * w];
            for (o, s) in out[y * w..(y + 1) * w].iter_mut().zip(src) {
                *o += kv * s;
            }
        }
    }
    out
}

/// Pixels that are the strict maximum (ties broken by index) of their
/// `(2·window + 1)²` neighbourhood and positive.
pub fn local_maxima(d: &[f32], w: usize, h: usize, window: isize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let v = d[y * w + x];
            if v <= 0.0 {
                continue;
            }
            let mut best = true;
            'n: for dy in -window..=window {
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
                        best = false;
                        break 'n;
                    }
                }
            }
            if best {
                out.push((x, y));
            }
        }
    }
    out
}
