//! Tests of the fast convolution and the orientation CNN against candle's stock ops.

use candle_core::{DType, Device, Module, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use posescope::estimate::nn::conv::{Conv2dConfig, ConvBackend, FastConv2d};
use posescope::estimate::nn::net::{bench_cnn, NetConfig, OrientationNet, LEAKY_SLOPE};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

// ---------------------------------------------------------------- helpers

/// A tensor of uniform values in [-1, 1) from a seeded generator.
fn random(rng: &mut ChaCha8Rng, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(data, shape, &Device::Cpu).expect("tensor")
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().and_then(|t| t.to_vec1()).expect("flatten")
}

/// max |a − b|.
fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    flat(a)
        .iter()
        .zip(&flat(b))
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// max |a − b| / max |b| (with an absolute floor for near-zero references).
fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    let scale = flat(b).iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    max_diff(a, b) / scale
}

/// candle's own conv2d + bias + LeakyReLU on NCHW data: the reference.
fn stock(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    cfg: Conv2dConfig,
    leaky: Option<f64>,
) -> Result<Tensor> {
    let y = x.conv2d(w, cfg.padding, cfg.stride, 1, 1)?;
    let y = match b {
        Some(b) => y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?)?,
        None => y,
    };
    match leaky {
        Some(s) => candle_nn::ops::leaky_relu(&y, s),
        None => Ok(y),
    }
}

/// One random convolution problem.
#[derive(Clone, Debug)]
struct Case {
    batch: usize,
    in_c: usize,
    out_c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    cfg: Conv2dConfig,
    bias: bool,
    leaky: Option<f64>,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (1..=4usize, 1..=8usize, 1..=8usize),
        (5..=20usize, 5..=20usize, 1..=5usize, 1..=5usize),
        (1..=2usize, 0..=2usize, any::<bool>()),
        (
            prop_oneof![Just(None), Just(Some(0.01)), Just(Some(0.2))],
            any::<u64>(),
        ),
    )
        .prop_map(
            |((batch, in_c, out_c), (h, w, kh, kw), (stride, padding, bias), (leaky, seed))| Case {
                batch,
                in_c,
                out_c,
                h,
                w,
                kh,
                kw,
                cfg: Conv2dConfig { stride, padding },
                bias,
                leaky,
                seed,
            },
        )
}

/// Variables of a case: input (NCHW), weight, bias and the output weights
/// `r` of the scalar loss `sum(y · r)`.
struct Problem {
    x: Var,
    w: Var,
    b: Option<Var>,
}

impl Problem {
    fn new(c: &Case) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(c.seed);
        let x = random(&mut rng, &[c.batch, c.in_c, c.h, c.w]);
        let w = random(&mut rng, &[c.out_c, c.in_c, c.kh, c.kw]);
        let b = c.bias.then(|| random(&mut rng, &[c.out_c]));
        Self {
            x: Var::from_tensor(&x).expect("x"),
            w: Var::from_tensor(&w).expect("w"),
            b: b.map(|b| Var::from_tensor(&b).expect("b")),
        }
    }

    fn layer(&self, c: &Case) -> FastConv2d {
        let b = self.b.as_ref().map(|b| b.as_tensor().clone());
        FastConv2d::from_tensors(self.w.as_tensor().clone(), b, c.cfg, c.leaky).expect("layer")
    }

    /// Gradients of `sum(y · r)` w.r.t. x, w and b.
    fn grads(&self, y: &Tensor, r: &Tensor) -> (Tensor, Tensor, Option<Tensor>) {
        let loss = (y * r).and_then(|t| t.sum_all()).expect("loss");
        let g = loss.backward().expect("backward");
        let get = |v: &Var| g.get(v.as_tensor()).expect("gradient missing").clone();
        (get(&self.x), get(&self.w), self.b.as_ref().map(get))
    }
}

/// Whether candle's stock conv2d backward handles the case: it derives the
/// `conv_transpose2d` output padding from the height alone, so it fails
/// (shape mismatch) when height and width leave different remainders.
fn stock_backward_works(c: &Case) -> bool {
    let (s, p) = (c.cfg.stride, c.cfg.padding);
    (c.h + 2 * p - c.kh) % s == (c.w + 2 * p - c.kw) % s
}

/// The f64 direct-loop reference of one layer and its gradients, NCHW.
struct Reference {
    y: Tensor,
    dx: Tensor,
    dw: Tensor,
    db: Tensor,
    /// The largest sum of |terms| behind one bias gradient: the scale of
    /// an f32 sum's rounding error, which `|db|` is not when terms cancel.
    db_terms: f32,
}

/// Direct-loop f64 reference of `y = leaky(conv(x, w) + b)` and of the
/// gradients of `sum(y · r)`.
fn naive(c: &Case, p: &Problem, r: &Tensor) -> Reference {
    let v = |t: &Tensor| -> Vec<f64> {
        let v: Vec<f32> = t.flatten_all().and_then(|t| t.to_vec1()).expect("vec");
        v.into_iter().map(f64::from).collect()
    };
    let (x, w, r) = (v(p.x.as_tensor()), v(p.w.as_tensor()), v(r));
    let b = p.b.as_ref().map(|b| v(b.as_tensor()));
    let (s, pad) = (c.cfg.stride, c.cfg.padding as isize);
    let oh = (c.h + 2 * c.cfg.padding - c.kh) / s + 1;
    let ow = (c.w + 2 * c.cfg.padding - c.kw) / s + 1;
    let slope = c.leaky.unwrap_or(1.0);
    let xi = |n: usize, ci: usize, y: usize, xx: usize| ((n * c.in_c + ci) * c.h + y) * c.w + xx;
    let wi =
        |o: usize, ci: usize, ky: usize, kx: usize| ((o * c.in_c + ci) * c.kh + ky) * c.kw + kx;
    // every (output index, input index, weight index) of the convolution
    let mut taps = Vec::new();
    for n in 0..c.batch {
        for o in 0..c.out_c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let yi = ((n * c.out_c + o) * oh + oy) * ow + ox;
                    for ci in 0..c.in_c {
                        for ky in 0..c.kh {
                            for kx in 0..c.kw {
                                let iy = (oy * s + ky) as isize - pad;
                                let ix = (ox * s + kx) as isize - pad;
                                if iy >= 0 && ix >= 0 && (iy as usize) < c.h && (ix as usize) < c.w
                                {
                                    taps.push((
                                        yi,
                                        xi(n, ci, iy as usize, ix as usize),
                                        wi(o, ci, ky, kx),
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let out_len = c.batch * c.out_c * oh * ow;
    let channel = |yi: usize| (yi / (oh * ow)) % c.out_c;
    let mut z: Vec<f64> = (0..out_len)
        .map(|yi| b.as_ref().map_or(0.0, |b| b[channel(yi)]))
        .collect();
    for &(yi, xj, wj) in &taps {
        z[yi] += x[xj] * w[wj];
    }
    let y: Vec<f64> = z
        .iter()
        .map(|&z| if z > 0.0 { z } else { slope * z })
        .collect();
    let dz: Vec<f64> = z
        .iter()
        .zip(&r)
        .map(|(&z, &r)| if z > 0.0 { r } else { slope * r })
        .collect();
    let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; c.out_c]);
    for &(yi, xj, wj) in &taps {
        dx[xj] += dz[yi] * w[wj];
        dw[wj] += dz[yi] * x[xj];
    }
    let mut db_abs = vec![0.0f64; c.out_c];
    for (yi, d) in dz.iter().enumerate() {
        db[channel(yi)] += d;
        db_abs[channel(yi)] += d.abs();
    }
    let t = |v: Vec<f64>, shape: &[usize]| {
        let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor")
    };
    Reference {
        y: t(y, &[c.batch, c.out_c, oh, ow]),
        dx: t(dx, &[c.batch, c.in_c, c.h, c.w]),
        dw: t(dw, &[c.out_c, c.in_c, c.kh, c.kw]),
        db: t(db, &[c.out_c]),
        db_terms: db_abs.into_iter().fold(0.0, f64::max) as f32,
    }
}

/// max |a − b| / `terms`, for sums whose terms add to `terms` in absolute
/// value (with the same floor as [`rel_err`]).
fn sum_err(a: &Tensor, b: &Tensor, terms: f32) -> f32 {
    max_diff(a, b) / terms.max(1e-3)
}

/// Compares the fast layer, through `forward` (NCHW) or `forward_nhwc`, with
/// candle's stock ops (forward output and, where candle's backward works, the
/// three gradients) and with the f64 direct-loop reference.
fn check_case(c: &Case, nhwc: bool) -> std::result::Result<(), TestCaseError> {
    let p = Problem::new(c);
    let layer = p.layer(c);
    let reference = stock(
        p.x.as_tensor(),
        p.w.as_tensor(),
        p.b.as_ref().map(|b| b.as_tensor()),
        c.cfg,
        c.leaky,
    )
    .expect("stock");
    let fast = if nhwc {
        let x = p.x.as_tensor().permute((0, 2, 3, 1)).expect("permute");
        layer.forward_nhwc(&x).and_then(|y| y.permute((0, 3, 1, 2)))
    } else {
        layer.forward(p.x.as_tensor())
    }
    .expect("fast");
    let e = rel_err(&fast, &reference);
    prop_assert!(e < 1e-5, "forward rel err {e} vs stock for {c:?}");

    let mut rng = ChaCha8Rng::seed_from_u64(c.seed ^ 0x5eed);
    let r = random(&mut rng, reference.dims());
    let (dx, dw, db) = p.grads(&fast, &r);
    let n = naive(c, &p, &r);
    let mut checks = vec![
        ("y vs f64", rel_err(&fast, &n.y), 1e-5),
        ("dx vs f64", rel_err(&dx, &n.dx), 1e-4),
        ("dw vs f64", rel_err(&dw, &n.dw), 1e-4),
    ];
    match &db {
        Some(db) => checks.push(("db vs f64", sum_err(db, &n.db, n.db_terms), 2e-5)),
        None => prop_assert!(p.b.is_none(), "bias gradient missing"),
    }
    if stock_backward_works(c) {
        let (dx_s, dw_s, db_s) = p.grads(&reference, &r);
        checks.push(("dx vs stock", rel_err(&dx, &dx_s), 1e-4));
        checks.push(("dw vs stock", rel_err(&dw, &dw_s), 1e-4));
        if let (Some(db), Some(db_s)) = (&db, &db_s) {
            checks.push(("db vs stock", sum_err(db, db_s, n.db_terms), 2e-5));
        }
    }
    for (what, e, tol) in checks {
        prop_assert!(e < tol, "{what}: rel err {e} for {c:?}");
    }
    Ok(())
}

/// The layer on an input that needs no gradient (a network's first layer):
/// output, weight and bias gradients against the f64 reference. Inputs with
/// one channel take the direct kernels of `conv_c1`.
fn check_weight_grads_only(c: &Case) -> std::result::Result<(), TestCaseError> {
    let p = Problem::new(c);
    let layer = p.layer(c);
    let x = p.x.as_tensor().detach();
    let y = layer
        .forward_nhwc(&x.permute((0, 2, 3, 1)).expect("permute"))
        .and_then(|y| y.permute((0, 3, 1, 2)))
        .expect("fast");
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed ^ 0x5eed);
    let r = random(&mut rng, y.dims());
    let loss = (&y * &r).and_then(|t| t.sum_all()).expect("loss");
    let g = loss.backward().expect("backward");
    prop_assert!(g.get(&x).is_none(), "gradient for an untracked input");
    let n = naive(c, &p, &r);
    let e = rel_err(&y, &n.y);
    prop_assert!(e < 1e-5, "forward rel err {e} for {c:?}");
    let dw = g.get(p.w.as_tensor()).expect("dw");
    let e = rel_err(dw, &n.dw);
    prop_assert!(e < 1e-4, "dw rel err {e} for {c:?}");
    if let Some(b) = &p.b {
        // a bias gradient is one sum per channel: its f32 rounding scales
        // with the sum of |terms|, not with |db| (terms may cancel)
        let e = sum_err(g.get(b.as_tensor()).expect("db"), &n.db, n.db_terms);
        prop_assert!(e < 2e-5, "db err {e} of the sum of |terms| for {c:?}");
    }
    Ok(())
}

// ---------------------------------------------------------------- the layer

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Half the cases with one input channel (the direct kernels).
    #[test]
    fn fast_conv_weight_grads_without_input_grad(c in case(), one in any::<bool>()) {
        prop_assume!(c.kh <= c.h + 2 * c.cfg.padding && c.kw <= c.w + 2 * c.cfg.padding);
        let c = Case { in_c: if one { 1 } else { c.in_c }, ..c };
        check_weight_grads_only(&c)?;
    }
}

/// One input channel on first-layer shapes: several row blocks per thread,
/// output channels not a multiple of the vector width, with 1 and 3 threads.
#[test]
fn one_channel_layer_on_first_layer_shapes() {
    for (threads, out_c, h, k, stride, pad, batch) in [
        (2, 16, 64, 5, 2, 2, 3),
        (3, 20, 33, 3, 1, 1, 2),
        (1, 7, 40, 2, 2, 1, 1),
    ] {
        let c = Case {
            batch,
            in_c: 1,
            out_c,
            h,
            w: h + 3,
            kh: k,
            kw: k,
            cfg: Conv2dConfig {
                stride,
                padding: pad,
            },
            bias: true,
            leaky: Some(0.01),
            seed: out_c as u64,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| check_weight_grads_only(&c))
            .expect("matches the f64 reference");
        pool.install(|| check_case(&c, true))
            .expect("matches stock and f64 with an input gradient");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fast_conv_matches_stock_nchw(c in case()) {
        prop_assume!(c.kh <= c.h + 2 * c.cfg.padding && c.kw <= c.w + 2 * c.cfg.padding);
        check_case(&c, false)?;
    }

    #[test]
    fn fast_conv_matches_stock_nhwc(c in case()) {
        prop_assume!(c.kh <= c.h + 2 * c.cfg.padding && c.kw <= c.w + 2 * c.cfg.padding);
        check_case(&c, true)?;
    }
}

/// Large enough that every thread works through several row blocks, with
/// both even and odd kernels.
#[test]
fn fast_conv_matches_stock_on_large_inputs() {
    for (batch, kh, stride, padding) in [(5, 3, 1, 1), (3, 2, 2, 1), (1, 5, 2, 2), (2, 4, 1, 0)] {
        let c = Case {
            batch,
            in_c: 24,
            out_c: 40,
            h: 45,
            w: 38,
            kh,
            kw: kh,
            cfg: Conv2dConfig { stride, padding },
            bias: true,
            leaky: Some(LEAKY_SLOPE),
            seed: 7 + batch as u64,
        };
        check_case(&c, false).expect("nchw");
        check_case(&c, true).expect("nhwc");
    }
}

/// Late-layer shapes: few output pixels, many channels. At batch 1 the layer
/// works in channel order on the stored weight, at batch 3 in tap order.
#[test]
fn fast_conv_matches_stock_on_late_layer_shapes() {
    for (batch, kh, stride, padding, h) in [
        (1, 3, 1, 1, 6),
        (3, 3, 1, 1, 6),
        (1, 2, 2, 1, 9),
        (2, 3, 2, 1, 5),
    ] {
        let c = Case {
            batch,
            in_c: 32,
            out_c: 48,
            h,
            w: h,
            kh,
            kw: kh,
            cfg: Conv2dConfig { stride, padding },
            bias: true,
            leaky: Some(LEAKY_SLOPE),
            seed: 21 + batch as u64,
        };
        check_case(&c, false).expect("nchw");
        check_case(&c, true).expect("nhwc");
    }
}

/// The threading modes (images per thread, rows per thread, parallel GEMMs)
/// give the same results with 1, 3 and 5 threads.
#[test]
fn fast_conv_is_correct_with_any_thread_count() {
    for threads in [1, 3, 5] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| {
            for batch in [1, 2, 4, 7] {
                let c = Case {
                    batch,
                    in_c: 5,
                    out_c: 6,
                    h: 21,
                    w: 17,
                    kh: 3,
                    kw: 3,
                    cfg: Conv2dConfig {
                        stride: 1,
                        padding: 1,
                    },
                    bias: true,
                    leaky: Some(0.2),
                    seed: batch as u64,
                };
                check_case(&c, true).expect("nhwc");
            }
        });
    }
}

/// An input view with an offset and odd strides (a narrowed, transposed tensor).
#[test]
fn fast_conv_reads_strided_views() -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let big = random(&mut rng, &[3, 5, 14, 12]);
    let x = big.narrow(0, 1, 2)?.narrow(1, 1, 3)?.transpose(2, 3)?; // (2, 3, 12, 14)
    let w = random(&mut rng, &[4, 3, 3, 3]);
    let b = random(&mut rng, &[4]);
    let cfg = Conv2dConfig {
        stride: 2,
        padding: 1,
    };
    let layer = FastConv2d::from_tensors(w.clone(), Some(b.clone()), cfg, Some(0.2))?;
    let e = rel_err(
        &layer.forward(&x)?,
        &stock(&x.contiguous()?, &w, Some(&b), cfg, Some(0.2))?,
    );
    assert!(e < 1e-5, "rel err {e}");
    Ok(())
}

/// The stock backend of the layer is exactly the reference.
#[test]
fn stock_backend_is_candle_conv2d() -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let x = random(&mut rng, &[2, 3, 9, 9]);
    let w = random(&mut rng, &[5, 3, 3, 3]);
    let cfg = Conv2dConfig {
        stride: 1,
        padding: 1,
    };
    let layer = FastConv2d::from_tensors(w.clone(), None, cfg, Some(0.01))?
        .with_backend(ConvBackend::Stock);
    let e = rel_err(&layer.forward(&x)?, &stock(&x, &w, None, cfg, Some(0.01))?);
    assert_eq!(e, 0.0);
    Ok(())
}

#[test]
fn layer_rejects_bad_arguments() -> Result<()> {
    let w = Tensor::zeros((4, 3, 3, 3), DType::F32, &Device::Cpu)?;
    let cfg = Conv2dConfig::default();
    assert!(FastConv2d::from_tensors(w.clone(), None, cfg, Some(-0.1)).is_err());
    let wrong_bias = Tensor::zeros(5, DType::F32, &Device::Cpu)?;
    assert!(FastConv2d::from_tensors(w.clone(), Some(wrong_bias), cfg, None).is_err());
    let zero_stride = Conv2dConfig {
        stride: 0,
        padding: 0,
    };
    assert!(FastConv2d::from_tensors(w.clone(), None, zero_stride, None).is_err());
    let layer = FastConv2d::from_tensors(w, None, cfg, None)?;
    let wrong_channels = Tensor::zeros((1, 2, 8, 8), DType::F32, &Device::Cpu)?;
    assert!(layer.forward(&wrong_channels).is_err());
    let too_small = Tensor::zeros((1, 3, 2, 2), DType::F32, &Device::Cpu)?;
    assert!(layer.forward(&too_small).is_err());
    assert_eq!(layer.output_size(8, 10), Some((6, 8)));
    Ok(())
}

/// Kaiming-normal weights with the LeakyReLU gain, zero bias, candle_nn names.
#[test]
fn layer_init_is_kaiming() -> Result<()> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let cfg = Conv2dConfig::default();
    let layer = FastConv2d::new(vb.pp("c"), 64, 128, 3, cfg, Some(0.01))?;
    let std = layer
        .weight()
        .sqr()?
        .mean_all()?
        .sqrt()?
        .to_scalar::<f32>()?;
    let expected = (2.0 / (1.0 + 0.01f32 * 0.01) / (64.0 * 9.0)).sqrt();
    assert!(
        (std / expected - 1.0).abs() < 0.05,
        "std {std} vs {expected}"
    );
    let bias = layer
        .bias()
        .expect("bias")
        .abs()?
        .sum_all()?
        .to_scalar::<f32>()?;
    assert_eq!(bias, 0.0);
    let names: Vec<String> = varmap
        .data()
        .lock()
        .expect("lock")
        .keys()
        .cloned()
        .collect();
    assert!(names.contains(&"c.weight".to_string()) && names.contains(&"c.bias".to_string()));
    Ok(())
}

// ---------------------------------------------------------------- the network

fn small_config() -> NetConfig {
    NetConfig {
        input_size: 24,
        channels: vec![4, 4, 8, 8, 16],
        hidden: 16,
        outputs: 5,
        ..NetConfig::default()
    }
}

#[test]
fn default_and_holly_shapes() -> Result<()> {
    let d = NetConfig::default();
    let sizes: Vec<usize> = d.conv_layers()?.iter().map(|l| l.out_size).collect();
    assert_eq!(sizes, [32, 32, 16, 16, 8, 8, 4]);
    assert_eq!(d.flat_features()?, 4096);
    assert_eq!((d.hidden, d.outputs), (256, 9));

    let h = NetConfig::holly();
    let layers = h.conv_layers()?;
    let sizes: Vec<usize> = layers.iter().map(|l| l.out_size).collect();
    assert_eq!(sizes, [64, 64, 33, 33, 17, 17, 9, 9, 5, 5]);
    let kernels: Vec<usize> = layers.iter().map(|l| l.kernel).collect();
    assert_eq!(kernels, [5, 3, 2, 3, 2, 3, 2, 3, 2, 3]);
    assert_eq!(h.flat_features()?, 6400);
    assert_eq!(h.outputs, 6);

    for cfg in [d, h] {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let net = OrientationNet::new(vb, &cfg)?;
        let x = Tensor::randn(
            0f32,
            1.0,
            (2, 1, cfg.input_size, cfg.input_size),
            &Device::Cpu,
        )?;
        assert_eq!(net.forward(&x)?.dims(), [2, cfg.outputs]);
    }
    Ok(())
}

#[test]
fn net_rejects_bad_input_and_config() -> Result<()> {
    let cfg = small_config();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let net = OrientationNet::new(vb, &cfg)?;
    let wrong = Tensor::zeros((1, 1, 20, 20), DType::F32, &Device::Cpu)?;
    assert!(net.forward(&wrong).is_err());
    let two_channels = Tensor::zeros((1, 2, 24, 24), DType::F32, &Device::Cpu)?;
    assert!(net.forward(&two_channels).is_err());
    let tiny = NetConfig {
        input_size: 0,
        ..NetConfig::default()
    };
    assert!(tiny.conv_layers().is_err());
    let empty = NetConfig {
        channels: vec![],
        ..NetConfig::default()
    };
    assert!(empty.conv_layers().is_err());
    Ok(())
}

/// Fast and stock backends share weights and agree on outputs and gradients.
#[test]
fn fast_and_stock_nets_agree() -> Result<()> {
    let cfg = small_config();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let fast = OrientationNet::new(vb.clone(), &cfg)?;
    let stock = OrientationNet::with_backend(vb, &cfg, ConvBackend::Stock)?;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let x = random(&mut rng, &[3, 1, 24, 24]);
    let (yf, ys) = (fast.forward(&x)?, stock.forward(&x)?);
    let e = rel_err(&yf, &ys);
    assert!(e < 1e-5, "output rel err {e}");
    let gf = yf.sqr()?.sum_all()?.backward()?;
    let gs = ys.sqr()?.sum_all()?.backward()?;
    let vars = varmap.data().lock().expect("lock").clone();
    assert_eq!(vars.len(), 2 * cfg.channels.len() + 4);
    for (name, var) in &vars {
        let f = gf.get(var.as_tensor()).expect("fast grad");
        let s = gs.get(var.as_tensor()).expect("stock grad");
        let e = rel_err(f, s);
        assert!(e < 1e-4, "{name}: gradient rel err {e}");
    }
    Ok(())
}

/// No batch statistics: a frame gives the same output alone or in a batch.
#[test]
fn batch_one_matches_batched() -> Result<()> {
    let cfg = small_config();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let net = OrientationNet::new(vb, &cfg)?;
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let x = random(&mut rng, &[4, 1, 24, 24]);
    let batched = net.forward(&x)?;
    for i in 0..4 {
        let single = net.forward(&x.narrow(0, i, 1)?)?;
        let e = rel_err(&single, &batched.narrow(0, i, 1)?);
        assert!(e < 1e-5, "frame {i}: rel err {e}");
    }
    Ok(())
}

/// A few AdamW steps on a fixed batch lower the loss.
#[test]
fn net_trains() -> Result<()> {
    use candle_nn::{AdamW, Optimizer, ParamsAdamW};
    let cfg = small_config();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let net = OrientationNet::new(vb, &cfg)?;
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let x = random(&mut rng, &[8, 1, 24, 24]);
    let target = random(&mut rng, &[8, cfg.outputs]);
    let params = ParamsAdamW {
        lr: 1e-3,
        ..ParamsAdamW::default()
    };
    let mut opt = AdamW::new(varmap.all_vars(), params)?;
    let loss = |net: &OrientationNet| candle_nn::loss::mse(&net.forward(&x)?, &target);
    let first = loss(&net)?.to_scalar::<f32>()?;
    for _ in 0..30 {
        opt.backward_step(&loss(&net)?)?;
    }
    let last = loss(&net)?.to_scalar::<f32>()?;
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    Ok(())
}

/// FusedAdamW takes the same steps as candle_nn::AdamW: on the fused path
/// (f32, CPU; large enough for the parallel update) and on the tensor-op
/// path (f64).
#[test]
fn fused_adamw_matches_candle_adamw() -> Result<()> {
    use candle_nn::{AdamW, Optimizer, ParamsAdamW};
    use posescope::estimate::nn::optim::FusedAdamW;
    let params = ParamsAdamW {
        lr: 0.01,
        weight_decay: 0.1,
        ..ParamsAdamW::default()
    };
    for (dtype, n) in [(DType::F32, 100_000), (DType::F32, 37), (DType::F64, 500)] {
        let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
        let init = random(&mut rng, &[n]).to_dtype(dtype)?;
        let target = random(&mut rng, &[n]).to_dtype(dtype)?;
        let (a, b) = (Var::from_tensor(&init)?, Var::from_tensor(&init)?);
        let mut fused = FusedAdamW::new(vec![a.clone()], params.clone())?;
        let mut reference = AdamW::new(vec![b.clone()], params.clone())?;
        for _ in 0..4 {
            fused.backward_step(&(a.as_tensor() - &target)?.sqr()?.sum_all()?)?;
            reference.backward_step(&(b.as_tensor() - &target)?.sqr()?.sum_all()?)?;
        }
        let (fa, fb) = (a.to_dtype(DType::F32)?, b.to_dtype(DType::F32)?);
        let e = rel_err(&fa, &fb);
        assert!(e < 1e-5, "{dtype:?} n={n}: rel err {e}");
        let moved = rel_err(&fa, &init.to_dtype(DType::F32)?);
        assert!(moved > 1e-3, "{dtype:?} n={n}: parameters did not move");
    }
    Ok(())
}

#[test]
fn bench_reports_throughput() -> Result<()> {
    let r = bench_cnn(&small_config(), 2, 2)?;
    assert_eq!((r.batch, r.iters, r.backend), (2, 2, ConvBackend::Fast));
    assert!(r.forward_img_per_s.is_finite() && r.forward_img_per_s > 0.0);
    assert!(r.train_step_img_per_s.is_finite() && r.train_step_img_per_s > 0.0);
    assert_eq!(r.threads, rayon::current_num_threads());
    let json = serde_json::to_string(&r).expect("json");
    assert!(json.contains("\"backend\":\"fast\""));
    assert!(bench_cnn(&small_config(), 0, 2).is_err());
    Ok(())
}

// ------------------------------------------------- the fast training step

/// A random small architecture that fits its input.
fn net_config() -> impl Strategy<Value = NetConfig> {
    (
        (6..=20usize, prop::collection::vec(1..=10usize, 1..=4)),
        (1..=12usize, 1..=7usize, 1..=3usize, 0..=1usize),
    )
        .prop_map(
            |((input_size, channels), (hidden, outputs, down_kernel, down_padding))| NetConfig {
                input_size,
                channels,
                hidden,
                outputs,
                down_kernel,
                down_padding,
            },
        )
        .prop_filter("the convolutions must fit", |c| c.conv_layers().is_ok())
}

/// A network and its variables, on the CPU.
fn build(cfg: &NetConfig, backend: ConvBackend) -> Result<(OrientationNet, VarMap)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let net = OrientationNet::with_backend(vb, cfg, backend)?;
    Ok((net, varmap))
}

/// Copies of `net`'s parameters (a snapshot that later steps leave alone).
fn parameter_copies(net: &OrientationNet) -> Result<Vec<Tensor>> {
    net.parameters()
        .expect("parameters")
        .iter()
        .map(|p| p.copy())
        .collect()
}

/// Copies every variable of `from` into the same-named variable of `to`.
fn copy_vars(from: &VarMap, to: &VarMap) -> Result<()> {
    let src = from.data().lock().expect("lock");
    let dst = to.data().lock().expect("lock");
    assert_eq!(src.len(), dst.len());
    for (name, var) in dst.iter() {
        var.set(&src[name].as_tensor().copy()?)?;
    }
    Ok(())
}

/// The two losses of the gradient tests: MSE against a target, and a
/// nonlinear one that mixes the outputs (like train.rs's losses, which
/// normalise and square parts of the output).
#[derive(Clone, Copy, Debug)]
enum TestLoss {
    Mse,
    Mixed,
}

fn test_loss(kind: TestLoss, out: &Tensor, target: &Tensor) -> Result<Tensor> {
    match kind {
        TestLoss::Mse => candle_nn::loss::mse(out, target),
        TestLoss::Mixed => {
            let norm = (out.sqr()?.sum_keepdim(1)? + 1e-3)?.sqrt()?;
            let unit = out.broadcast_div(&norm)?;
            let cos = (unit * target)?.sum(1)?;
            (1.0 - cos.sqr()?)?.mean_all()? + (out.tanh()? - target)?.abs()?.mean_all()?
        }
    }
}

/// The reference: the network through candle's autograd (with the fast
/// convolution op, itself checked against candle's stock conv2d above).
fn autograd_grads(
    net: &OrientationNet,
    x: &Tensor,
    f: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<(f32, Vec<Tensor>)> {
    let loss = f(&net.forward(x)?)?;
    let grads = loss.backward()?;
    let params = net.parameters().expect("parameters");
    let g = params
        .iter()
        .map(|p| grads.get(p).cloned().expect("gradient"))
        .collect();
    Ok((loss.to_scalar::<f32>()?, g))
}

fn check_trainer_grads(
    cfg: &NetConfig,
    batch: usize,
    kind: TestLoss,
    seed: u64,
) -> std::result::Result<(), TestCaseError> {
    use posescope::estimate::nn::trainer::NetTrainer;
    let (net, _vars) = build(cfg, ConvBackend::Fast).expect("net");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let s = cfg.input_size;
    let x = random(&mut rng, &[batch, 1, s, s]);
    let target = random(&mut rng, &[batch, cfg.outputs]);
    let f = |out: &Tensor| test_loss(kind, out, &target);
    let (ref_loss, reference) = autograd_grads(&net, &x, f).expect("autograd");
    let mut trainer = NetTrainer::new();
    let loss = trainer.backward(&net, &x, f).expect("fast backward");
    let loss = loss.to_scalar::<f32>().expect("scalar");
    prop_assert!(
        (loss - ref_loss).abs() <= 1e-5 * ref_loss.abs().max(1.0),
        "loss {loss} vs {ref_loss}"
    );
    let fast = trainer
        .gradients(&net)
        .expect("gradients")
        .expect("some gradients");
    prop_assert_eq!(fast.len(), reference.len());
    for (i, (a, b)) in fast.iter().zip(&reference).enumerate() {
        let e = rel_err(a, b);
        prop_assert!(
            e < 1e-4,
            "{:?} parameter {}: gradient rel err {}",
            kind,
            i,
            e
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The hand-written backward pass gives candle autograd's gradients for
    /// every parameter, on random architectures and batches.
    #[test]
    fn trainer_gradients_match_autograd(
        cfg in net_config(),
        batch in 1..=5usize,
        mixed in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let kind = if mixed { TestLoss::Mixed } else { TestLoss::Mse };
        check_trainer_grads(&cfg, batch, kind, seed)?;
    }
}

/// The same on the real architectures at batch 3 and 8 (many rows per
/// thread, the channel-order layers, the large dense layer). Training runs
/// the same forward kernels as the autograd path (Winograd is for inference
/// only), so the LeakyReLU masks agree and so do the gradients.
#[test]
fn trainer_gradients_match_autograd_on_default_and_holly() {
    for (cfg, batch) in [
        (NetConfig::default(), 3),
        (NetConfig::default(), 8),
        (NetConfig::holly(), 2),
    ] {
        for (i, kind) in [TestLoss::Mse, TestLoss::Mixed].into_iter().enumerate() {
            check_trainer_grads(&cfg, batch, kind, 40 + i as u64).expect("gradients match");
        }
    }
}

/// Training steps with the fast step and with candle's autograd (both with
/// FusedAdamW, the latter also with candle's stock convolution) leave the
/// same weights.
#[test]
fn trainer_steps_match_autograd_steps() -> Result<()> {
    use candle_nn::{Optimizer, ParamsAdamW};
    use posescope::estimate::nn::optim::FusedAdamW;
    use posescope::estimate::nn::trainer::NetTrainer;
    let params = ParamsAdamW {
        lr: 1e-2,
        weight_decay: 0.05,
        // a large eps keeps the update a smooth function of the gradient
        // near zero, so rounding-level gradient differences cannot flip the
        // sign of a near-sign(g) step
        eps: 1e-3,
        ..ParamsAdamW::default()
    };
    let cfg = small_config();
    for kind in [TestLoss::Mse, TestLoss::Mixed] {
        let (fast, fast_vars) = build(&cfg, ConvBackend::Fast)?;
        let (auto, auto_vars) = build(&cfg, ConvBackend::Fast)?;
        let (stock, stock_vars) = build(&cfg, ConvBackend::Stock)?;
        copy_vars(&fast_vars, &auto_vars)?;
        copy_vars(&fast_vars, &stock_vars)?;
        let initial = parameter_copies(&fast)?;
        let mut opt_fast = FusedAdamW::new(fast_vars.all_vars(), params.clone())?;
        let mut opt_auto = FusedAdamW::new(auto_vars.all_vars(), params.clone())?;
        let mut opt_stock = FusedAdamW::new(stock_vars.all_vars(), params.clone())?;
        let mut trainer = NetTrainer::new();
        let mut fallback = NetTrainer::new();
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        for step in 0..4 {
            // the batch size changes between steps: the buffers must follow
            let batch = [4, 4, 1, 6][step];
            let x = random(&mut rng, &[batch, 1, 24, 24]);
            let target = random(&mut rng, &[batch, cfg.outputs]);
            let f = |out: &Tensor| test_loss(kind, out, &target);
            let lf = trainer
                .step(&fast, &x, f, &mut opt_fast)?
                .to_scalar::<f32>()?;
            let la = f(&auto.forward(&x)?)?;
            opt_auto.backward_step(&la)?;
            let la = la.to_scalar::<f32>()?;
            // the stock backend goes through the fallback of `step`
            let ls = fallback
                .step(&stock, &x, f, &mut opt_stock)?
                .to_scalar::<f32>()?;
            assert!(fallback.gradients(&stock)?.is_none());
            assert!(
                (lf - la).abs() < 1e-4 * la.abs().max(1.0),
                "{kind:?} step {step}: loss {lf} vs {la}"
            );
            assert!(
                (lf - ls).abs() < 1e-4 * la.abs().max(1.0),
                "{kind:?} step {step}: loss {lf} vs stock {ls}"
            );
        }
        let (pf, pa, ps) = (
            fast.parameters().expect("p"),
            auto.parameters().expect("p"),
            stock.parameters().expect("p"),
        );
        for (i, ((f, a), (s, init))) in pf.iter().zip(&pa).zip(ps.iter().zip(&initial)).enumerate()
        {
            let moved = (f - init)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(moved > 1e-3, "{kind:?} parameter {i} did not move");
            let d = (f - a)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(
                d < 2e-5,
                "{kind:?} parameter {i}: fast vs autograd weights differ by {d}"
            );
            let d = (f - s)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(
                d < 2e-5,
                "{kind:?} parameter {i}: fast vs stock weights differ by {d}"
            );
        }
    }
    Ok(())
}

/// A loss that does not depend on the network updates nothing (as with
/// candle's autograd); bad inputs are errors, not panics.
#[test]
fn trainer_edge_cases() -> Result<()> {
    use candle_nn::{Optimizer, ParamsAdamW};
    use posescope::estimate::nn::optim::FusedAdamW;
    use posescope::estimate::nn::trainer::NetTrainer;
    let cfg = small_config();
    let (net, vars) = build(&cfg, ConvBackend::Fast)?;
    let mut opt = FusedAdamW::new(vars.all_vars(), ParamsAdamW::default())?;
    let mut trainer = NetTrainer::new();
    let before = parameter_copies(&net)?;
    let x = Tensor::randn(0f32, 1.0, (2, 1, 24, 24), &Device::Cpu)?;
    let constant = Tensor::new(3f32, &Device::Cpu)?;
    let loss = trainer.step(&net, &x, |_| Ok(constant.clone()), &mut opt)?;
    assert_eq!(loss.to_scalar::<f32>()?, 3.0);
    assert!(trainer.gradients(&net)?.is_none());
    for (a, b) in net.parameters().expect("p").iter().zip(&before) {
        assert_eq!(
            a.to_vec1::<f32>()
                .or_else(|_| a.flatten_all()?.to_vec1::<f32>())?,
            b.flatten_all()?.to_vec1::<f32>()?
        );
    }
    let wrong = Tensor::zeros((1, 1, 20, 20), DType::F32, &Device::Cpu)?;
    assert!(trainer
        .step(&net, &wrong, |o| o.sum_all(), &mut opt)
        .is_err());
    let f64_input = Tensor::zeros((1, 1, 24, 24), DType::F64, &Device::Cpu)?;
    assert!(trainer.backward(&net, &f64_input, |o| o.sum_all()).is_err());
    // a gradient for a tensor the optimiser does not own
    let stranger = Tensor::zeros(4, DType::F32, &Device::Cpu)?;
    assert!(opt.step_slices(&[(&stranger, &[0.0; 4])]).is_err());
    Ok(())
}

/// Inference through the trainer's buffers gives `forward`'s outputs, on
/// both backends and across batch sizes, and tracks no gradient.
#[test]
fn trainer_infer_matches_forward() -> Result<()> {
    use posescope::estimate::nn::trainer::NetTrainer;
    let mut buffers = NetTrainer::new();
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    for cfg in [small_config(), NetConfig::default(), NetConfig::holly()] {
        let (fast, vars) = build(&cfg, ConvBackend::Fast)?;
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        let stock = OrientationNet::with_backend(vb, &cfg, ConvBackend::Stock)?;
        for batch in [3, 1, 4] {
            let s = cfg.input_size;
            let x = random(&mut rng, &[batch, 1, s, s]);
            let reference = fast.forward(&x)?;
            let y = buffers.infer(&fast, &x)?;
            let e = rel_err(&y, &reference);
            assert!(e < 1e-5, "{cfg:?} batch {batch}: rel err {e}");
            assert!(!y.track_op());
            let e = rel_err(&buffers.infer(&stock, &x)?, &reference);
            assert!(e < 1e-4, "stock fallback, batch {batch}: rel err {e}");
        }
    }
    Ok(())
}
