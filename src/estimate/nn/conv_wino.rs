//! Winograd F(2×2, 3×3) forward convolution for the 3×3, stride-1,
//! padding-1 layers, used by [`NetTrainer::infer`](super::trainer::NetTrainer::infer)
//! (the estimator, `posescope fit`, `posescope bench`) instead of im2col +
//! GEMM. Training keeps im2col + GEMM: its forward pass must give the same
//! LeakyReLU masks as the backward pass's reference, candle's autograd,
//! and rounding-level differences can flip the sign of a pre-activation
//! that sits at zero.
//!
//! The output is cut into 2×2 tiles; each reads a 4×4 input patch `d`. With
//! the kernel `g` transformed once per call to `U = G g Gᵀ` (4×4) and the
//! patch to `V = Bᵀ d B`, the tile is `Y = Aᵀ (U ⊙ V) A`. Summed over the
//! input channels, the elementwise product is 16 independent matrix products
//! (one per position ξ of the 4×4 grid): `M_ξ (tiles × O) = V_ξ (tiles × C) ·
//! U_ξ (C × O)`. That is 16·C·O multiply-adds per tile of 4 outputs instead
//! of 36·C·O, 2.25× fewer, minus the edge tiles' waste when a side is odd.
//!
//! `B`, `G` and `A` hold only 0, ±1 and ±½, so the transforms add and halve;
//! the result differs from the direct convolution by rounding only (a few
//! units in the last place of the sums; the tests bound it at 1e-5 of the
//! output's scale).
//!
//! Layouts: `U` is `(C, 16, O)`, so the weight of position ξ is a `C × O`
//! matrix with row stride `16·O`; a block of tiles keeps `V` as `(tiles, 16,
//! C)` and `M` as `(tiles, 16, O)`, so the input transform writes, and the
//! output transform reads, one contiguous run per tile. Threads take blocks
//! of whole tile rows, sized so `V` and `M` stay in the L2 cache; the
//! outputs of consecutive tile rows are consecutive in NHWC, so each block
//! owns one slice of the output.

use gemm::Parallelism;
use rayon::prelude::*;

use super::conv_cpu::{activate, gemm_into, Mat, MatMut, Scratch};
use super::conv_geometry::{ConvGeometry, NhwcView};
use crate::simd::simd_dispatch;

/// Positions of the 4×4 transform grid.
const POS: usize = 16;
/// Channels per vectorised step of the transforms.
const LANES: usize = 16;
/// Fewer channels than this on either side: im2col + GEMM is as fast.
const MIN_CHANNELS: usize = 16;
/// Fewer tiles in the batch than this: the 16 small GEMMs cost more than
/// one im2col GEMM (the late layers at batch 1).
const MIN_TILES: usize = 16;

/// Tiles in the batch: `B · ⌈OH/2⌉ · ⌈OW/2⌉`.
fn tiles(g: &ConvGeometry) -> usize {
    g.batch * g.out_h.div_ceil(2) * g.out_w.div_ceil(2)
}

/// Whether this module runs the layer (3×3, stride 1, padding 1, enough
/// channels and tiles).
pub(crate) fn applies(g: &ConvGeometry) -> bool {
    g.kh == 3
        && g.kw == 3
        && g.stride == 1
        && g.pad == 1
        && g.in_c >= MIN_CHANNELS
        && g.out_c >= MIN_CHANNELS
        && tiles(g) >= MIN_TILES
}

/// Length of the transformed weight, `16·C·O`.
pub(crate) fn weight_len(g: &ConvGeometry) -> usize {
    POS * g.in_c * g.out_c
}

/// `U = G g Gᵀ` of every kernel of `w` `(O, C, 3, 3)` into `u` `(C, 16, O)`
/// ([`weight_len`] elements, every one overwritten).
pub(crate) fn transform_weights_into(w: &[f32], g: &ConvGeometry, u: &mut [f32]) {
    let (c, o) = (g.in_c, g.out_c);
    debug_assert_eq!(w.len(), o * c * 9);
    debug_assert_eq!(u.len(), weight_len(g));
    if o == 0 {
        return;
    }
    let channel = |ci: usize, dst: &mut [f32]| {
        for oi in 0..o {
            let k = &w[(oi * c + ci) * 9..][..9];
            // G g: 4 × 3, G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
            let mut t = [0.0f32; 12];
            for j in 0..3 {
                let (g0, g1, g2) = (k[j], k[3 + j], k[6 + j]);
                t[j] = g0;
                t[3 + j] = 0.5 * (g0 + g1 + g2);
                t[6 + j] = 0.5 * (g0 - g1 + g2);
                t[9 + j] = g2;
            }
            // (G g) Gᵀ: 4 × 4
            for i in 0..4 {
                let (a0, a1, a2) = (t[3 * i], t[3 * i + 1], t[3 * i + 2]);
                dst[4 * i * o + oi] = a0;
                dst[(4 * i + 1) * o + oi] = 0.5 * (a0 + a1 + a2);
                dst[(4 * i + 2) * o + oi] = 0.5 * (a0 - a1 + a2);
                dst[(4 * i + 3) * o + oi] = a2;
            }
        }
    };
    if u.len() < 64 * 1024 {
        u.chunks_exact_mut(POS * o)
            .enumerate()
            .for_each(|(ci, dst)| channel(ci, dst));
    } else {
        u.par_chunks_exact_mut(POS * o)
            .enumerate()
            .for_each(|(ci, dst)| channel(ci, dst));
    }
}

/// Tiles per block: `V` and `M` of a block together about 1 MiB.
fn block_tiles(g: &ConvGeometry) -> usize {
    const TARGET_FLOATS: usize = 256 * 1024;
    (TARGET_FLOATS / (POS * (g.in_c + g.out_c))).clamp(32, 512)
}

/// The convolution of `x` with the transformed weight `u`
/// ([`transform_weights_into`]) plus `bias`, through the LeakyReLU `leaky`,
/// into `y` (contiguous NHWC `(B, OH, OW, O)`, every element overwritten).
/// The layer must be one that [`applies`] accepts (the tile-count limit
/// aside).
pub(crate) fn forward_into(
    x: &NhwcView<'_>,
    u: &[f32],
    bias: Option<&[f32]>,
    g: &ConvGeometry,
    leaky: Option<f32>,
    y: &mut [f32],
) {
    assert!(
        g.kh == 3 && g.kw == 3 && g.stride == 1 && g.pad == 1,
        "winograd: 3×3 stride 1 padding 1 only"
    );
    let (c, o) = (g.in_c, g.out_c);
    assert_eq!(u.len(), weight_len(g), "winograd: weight length");
    assert_eq!(y.len(), g.rows() * o, "winograd: output length");
    assert!(c > 0, "winograd: no input channels");
    if y.is_empty() {
        return;
    }
    let (tiles_y, tiles_x) = (g.out_h.div_ceil(2), g.out_w.div_ceil(2));
    let tile_rows = g.batch * tiles_y;
    let threads = rayon::current_num_threads().max(1);
    let rows_per_block = (block_tiles(g) / tiles_x)
        .max(1)
        .min(tile_rows.div_ceil(threads));
    let blocks = tile_rows.div_ceil(rows_per_block);
    let par = if blocks < threads {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // first output element of tile row r (image r / tiles_y)
    let image = g.out_h * g.out_w * o;
    let y_at = |r: usize| (r / tiles_y) * image + (2 * (r % tiles_y)).min(g.out_h) * g.out_w * o;
    let mut parts = Vec::with_capacity(blocks);
    let mut rest = y;
    for i in 0..blocks {
        let r0 = i * rows_per_block;
        let r1 = (r0 + rows_per_block).min(tile_rows);
        let (head, tail) = rest.split_at_mut(y_at(r1) - y_at(r0));
        parts.push((r0, r1, head));
        rest = tail;
    }
    let scratch = || (Scratch::new(0), Scratch::new(0), Scratch::new(0));
    parts
        .into_par_iter()
        .for_each_init(scratch, |(vs, ms, ds), (r0, r1, yb)| {
            let n = (r1 - r0) * tiles_x;
            let v = vs.get(n * POS * c);
            input_tiles(x, g, (r0, r1), ds.get(POS * c), v);
            let m = ms.get(n * POS * o);
            for p in 0..POS {
                gemm_into(
                    (n, o, c),
                    MatMut {
                        data: &mut m[p * o..],
                        rs: POS * o,
                        cs: 1,
                    },
                    false,
                    Mat {
                        data: &v[p * c..],
                        rs: POS * c,
                        cs: 1,
                    },
                    Mat {
                        data: &u[p * o..],
                        rs: POS * o,
                        cs: 1,
                    },
                    par,
                );
            }
            output_tiles(m, g, (r0, r1), bias, leaky, yb);
        });
}

simd_dispatch! {
    /// `V = Bᵀ d B` of the tiles of tile rows `r0 .. r1` into `v`
    /// (`(tiles, 16, C)`); `d` is scratch of `16·C` floats.
    pub(crate) fn input_tiles(
        x: &NhwcView<'_>,
        g: &ConvGeometry,
        rows: (usize, usize),
        d: &mut [f32],
        v: &mut [f32],
    ) => input_tiles_impl
}

simd_dispatch! {
    /// `Y = leaky(Aᵀ M A + bias)` of the tiles of tile rows `r0 .. r1` from
    /// `m` (`(tiles, 16, O)`) into `yb`, the outputs of those rows.
    pub(crate) fn output_tiles(
        m: &[f32],
        g: &ConvGeometry,
        rows: (usize, usize),
        bias: Option<&[f32]>,
        leaky: Option<f32>,
        yb: &mut [f32],
    ) => output_tiles_impl
}

#[inline(always)]
fn input_tiles_impl(
    x: &NhwcView<'_>,
    g: &ConvGeometry,
    (r0, r1): (usize, usize),
    d: &mut [f32],
    v: &mut [f32],
) {
    let c = g.in_c;
    let tiles_y = g.out_h.div_ceil(2);
    let tiles_x = g.out_w.div_ceil(2);
    let [sb, sy, sx, sc] = x.strides;
    let mut tiles = v.chunks_exact_mut(POS * c);
    for r in r0..r1 {
        let (b, ty) = (r / tiles_y, r % tiles_y);
        for tx in 0..tiles_x {
            // the 4×4 patch, zero outside the image
            for (k, px) in d.chunks_exact_mut(c).enumerate() {
                let iy = (2 * ty + k / 4).checked_sub(1).filter(|&iy| iy < g.in_h);
                let ix = (2 * tx + k % 4).checked_sub(1).filter(|&ix| ix < g.in_w);
                let (Some(iy), Some(ix)) = (iy, ix) else {
                    px.fill(0.0);
                    continue;
                };
                let at = x.offset + b * sb + iy * sy + ix * sx;
                if sc == 1 {
                    px.copy_from_slice(&x.data[at..at + c]);
                } else {
                    for (ci, p) in px.iter_mut().enumerate() {
                        *p = x.data[at + ci * sc];
                    }
                }
            }
            let Some(tile) = tiles.next() else {
                return;
            };
            let mut c0 = 0;
            while c0 + LANES <= c {
                input_transform::<LANES>(d, c, c0, tile);
                c0 += LANES;
            }
            for ci in c0..c {
                input_transform::<1>(d, c, ci, tile);
            }
        }
    }
}

/// Channels `c0 .. c0 + L` of `V = Bᵀ d B`, `Bᵀ = [1 0 −1 0; 0 1 1 0;
/// 0 −1 1 0; 0 1 0 −1]`; `d` and `v` are 16 rows of `c`.
#[inline(always)]
fn input_transform<const L: usize>(d: &[f32], c: usize, c0: usize, v: &mut [f32]) {
    let row = |k: usize| -> [f32; L] {
        let mut a = [0.0; L];
        a.copy_from_slice(&d[k * c + c0..][..L]);
        a
    };
    let mut t = [[0.0f32; L]; POS];
    for j in 0..4 {
        let (d0, d1, d2, d3) = (row(j), row(4 + j), row(8 + j), row(12 + j));
        for l in 0..L {
            t[j][l] = d0[l] - d2[l];
            t[4 + j][l] = d1[l] + d2[l];
            t[8 + j][l] = d2[l] - d1[l];
            t[12 + j][l] = d1[l] - d3[l];
        }
    }
    for i in 0..4 {
        let (t0, t1, t2, t3) = (t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3]);
        let mut put = |k: usize, f: &dyn Fn(usize) -> f32| {
            for (l, out) in v[k * c + c0..][..L].iter_mut().enumerate() {
                *out = f(l);
            }
        };
        put(4 * i, &|l| t0[l] - t2[l]);
        put(4 * i + 1, &|l| t1[l] + t2[l]);
        put(4 * i + 2, &|l| t2[l] - t1[l]);
        put(4 * i + 3, &|l| t1[l] - t3[l]);
    }
}

#[inline(always)]
fn output_tiles_impl(
    m: &[f32],
    g: &ConvGeometry,
    (r0, r1): (usize, usize),
    bias: Option<&[f32]>,
    leaky: Option<f32>,
    yb: &mut [f32],
) {
    let o = g.out_c;
    let tiles_y = g.out_h.div_ceil(2);
    let tiles_x = g.out_w.div_ceil(2);
    let row_len = g.out_w * o;
    let mut at = 0;
    let mut tiles = m.chunks_exact(POS * o);
    for r in r0..r1 {
        let ty = r % tiles_y;
        let out_rows = (g.out_h - 2 * ty).min(2);
        let (top, bottom) = yb[at..at + out_rows * row_len].split_at_mut(row_len);
        for tx in 0..tiles_x {
            let Some(tile) = tiles.next() else {
                return;
            };
            let ox = 2 * tx;
            let cols = (g.out_w - ox).min(2);
            let place = (ox, cols, out_rows);
            let mut o0 = 0;
            while o0 + LANES <= o {
                output_block::<LANES>(tile, (top, bottom), place, o0, bias, leaky);
                o0 += LANES;
            }
            for oi in o0..o {
                output_block::<1>(tile, (top, bottom), place, oi, bias, leaky);
            }
        }
        at += out_rows * row_len;
    }
}

/// Channels `o0 .. o0 + L` of `Aᵀ M A`, `Aᵀ = [1 1 1 0; 0 1 −1 −1]`, in the
/// order (0, 0), (0, 1), (1, 0), (1, 1); `m` is 16 rows of `o`.
#[inline(always)]
fn output_transform<const L: usize>(m: &[f32], o: usize, o0: usize) -> [[f32; L]; 4] {
    let row = |k: usize| -> [f32; L] {
        let mut a = [0.0; L];
        a.copy_from_slice(&m[k * o + o0..][..L]);
        a
    };
    let mut s = [[0.0f32; L]; 8];
    for j in 0..4 {
        let (m0, m1, m2, m3) = (row(j), row(4 + j), row(8 + j), row(12 + j));
        for l in 0..L {
            s[j][l] = m0[l] + m1[l] + m2[l];
            s[4 + j][l] = m1[l] - m2[l] - m3[l];
        }
    }
    let mut out = [[0.0f32; L]; 4];
    for i in 0..2 {
        let (s0, s1, s2, s3) = (s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]);
        for l in 0..L {
            out[2 * i][l] = s0[l] + s1[l] + s2[l];
            out[2 * i + 1][l] = s1[l] - s2[l] - s3[l];
        }
    }
    out
}

/// Channels `o0 .. o0 + L` of the bias (zero without one).
#[inline(always)]
fn bias_lanes<const L: usize>(bias: Option<&[f32]>, o0: usize) -> [f32; L] {
    let mut b = [0.0; L];
    if let Some(bias) = bias {
        b.copy_from_slice(&bias[o0..o0 + L]);
    }
    b
}

/// Channels `o0 .. o0 + L` of a tile (`m`, 16 rows of `O`): `Aᵀ M A` plus
/// the bias, through the LeakyReLU, written at column `ox` of the output
/// rows `top` and `bottom`, keeping the `cols × out_rows` part inside the
/// image.
#[inline(always)]
fn output_block<const L: usize>(
    m: &[f32],
    (top, bottom): (&mut [f32], &mut [f32]),
    (ox, cols, out_rows): (usize, usize, usize),
    o0: usize,
    bias: Option<&[f32]>,
    leaky: Option<f32>,
) {
    let o = m.len() / POS;
    let out = output_transform::<L>(m, o, o0);
    let bias = bias_lanes::<L>(bias, o0);
    for (k, vals) in out.iter().enumerate() {
        let (dy, dx) = (k / 2, k % 2);
        if dy >= out_rows || dx >= cols {
            continue;
        }
        let dst_row = if dy == 0 { &mut *top } else { &mut *bottom };
        let dst = &mut dst_row[(ox + dx) * o + o0..][..L];
        for ((d, v), b) in dst.iter_mut().zip(vals).zip(&bias) {
            *d = activate(v + b, leaky);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::nn::conv_cpu::{conv2d_forward, weight_hwio, Weights};
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// Winograd against im2col + GEMM; returns max |difference| / max |y|.
    fn relative_error(g: &ConvGeometry, bias: bool, leaky: Option<f32>, strided: bool) -> f32 {
        let x = random(g.batch * g.in_image(), 1);
        let w = random(g.out_c * g.kdim(), 2);
        let b = random(g.out_c, 3);
        let bias = bias.then_some(&b[..]);
        let view = NhwcView::contiguous(&x, g);
        let expected = conv2d_forward(&view, Weights::Taps(&weight_hwio(&w, g)), bias, g, leaky);
        let mut u = vec![f32::NAN; weight_len(g)];
        transform_weights_into(&w, g, &mut u);
        let mut y = vec![f32::NAN; g.rows() * g.out_c];
        if strided {
            // the same input stored NCHW, read through strides
            let (h, w_, c) = (g.in_h, g.in_w, g.in_c);
            let mut nchw = vec![0.0f32; x.len()];
            for (i, v) in x.iter().enumerate() {
                let (b, rem) = (i / (h * w_ * c), i % (h * w_ * c));
                let (yy, xx, ci) = (rem / (w_ * c), rem / c % w_, rem % c);
                nchw[((b * c + ci) * h + yy) * w_ + xx] = *v;
            }
            let view = NhwcView {
                data: &nchw,
                offset: 0,
                strides: [c * h * w_, w_, 1, h * w_],
            };
            forward_into(&view, &u, bias, g, leaky, &mut y);
        } else {
            forward_into(&view, &u, bias, g, leaky, &mut y);
        }
        let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = y
            .iter()
            .zip(&expected)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff.is_finite(), "non-finite output");
        diff / scale
    }

    fn geometry(batch: usize, h: usize, w: usize, c: usize, o: usize) -> ConvGeometry {
        ConvGeometry::new(batch, (h, w, c), o, (3, 3), 1, 1).expect("geometry")
    }

    #[test]
    fn matches_im2col_on_the_holly_layers() {
        for (side, c, o) in [
            (64, 16, 32),
            (33, 32, 64),
            (17, 64, 128),
            (9, 128, 256),
            (5, 256, 256),
        ] {
            let g = geometry(2, side, side, c, o);
            let err = relative_error(&g, true, Some(0.01), false);
            assert!(err < 1e-5, "{side}×{side}, {c} → {o}: relative error {err}");
        }
    }

    #[test]
    fn a_constant_kernel_sums_the_neighbourhood() {
        // every weight 1, one channel in and out (below MIN_CHANNELS, but
        // forward_into takes any channel count): the 3×3 box sum
        let g = geometry(1, 3, 4, 1, 1);
        let x: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let mut u = vec![0.0; weight_len(&g)];
        transform_weights_into(&[1.0; 9], &g, &mut u);
        let mut y = vec![0.0; 12];
        forward_into(&NhwcView::contiguous(&x, &g), &u, None, &g, None, &mut y);
        // row 0: 0 1 2 3 / row 1: 4 5 6 7 / row 2: 8 9 10 11
        let expected = [
            10.0, 18.0, 24.0, 18.0, 27.0, 45.0, 54.0, 39.0, 26.0, 42.0, 48.0, 34.0,
        ];
        for (a, b) in y.iter().zip(expected) {
            assert!((a - b).abs() < 1e-4, "{y:?}");
        }
    }

    #[test]
    fn applies_only_to_3x3_stride_1_padding_1_with_enough_work() {
        assert!(applies(&geometry(32, 5, 5, 256, 256)));
        assert!(!applies(&geometry(1, 5, 5, 256, 256)), "9 tiles");
        assert!(applies(&geometry(1, 9, 9, 128, 256)), "25 tiles");
        assert!(!applies(&geometry(32, 64, 64, 1, 16)), "one input channel");
        let strided = ConvGeometry::new(32, (33, 33, 32), 32, (3, 3), 2, 1).unwrap();
        assert!(!applies(&strided));
        let k2 = ConvGeometry::new(32, (33, 33, 32), 32, (2, 2), 1, 1).unwrap();
        assert!(!applies(&k2));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn matches_im2col_on_random_shapes(
            batch in 1usize..4,
            h in 1usize..12,
            w in 1usize..12,
            c in 1usize..40,
            o in 1usize..40,
            bias in any::<bool>(),
            leaky in prop::option::of(0.0f32..0.3),
            strided in any::<bool>(),
        ) {
            let g = geometry(batch, h, w, c, o);
            let err = relative_error(&g, bias, leaky, strided);
            prop_assert!(err < 1e-5, "relative error {}", err);
        }
    }
}
