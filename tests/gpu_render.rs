//! GPU ↔ CPU agreement of the splat renderer, and the composite pass.
//!
//! Needs a wgpu adapter; a software one (lavapipe from mesa-vulkan-drivers)
//! is enough. Without any adapter the tests fail, unless
//! `POSESCOPE_SKIP_GPU=1` is set, in which case they print a notice and pass.
//!
//! Tolerance (see `posescope::render::gpu`): both renderers cut each
//! Gaussian at 6σ, so the difference is f32 rounding only. With an
//! `R32Float` accumulation: `max|gpu − cpu| ≤ 1e-3·max(cpu) + 1e-6` and
//! totals within 1e-4 relative. With `Rgba16Float` (11-bit mantissa, one
//! rounding per blend, sub-ulp contributions lost):
//! `5e-2·max(cpu) + 1e-3`, totals within 5e-2.

use std::sync::OnceLock;

use posescope::geometry::Quat;
use posescope::render::cpu::render_frame;
use posescope::render::gpu::{
    headless_device, Composite, CompositeMode, GpuError, GpuRenderer, SplatScene,
};
use posescope::render::SplatParams;
use posescope::shapes::{Model, TorusSpec, Units};

type Gpu = (wgpu::Device, wgpu::Queue, wgpu::AdapterInfo);

/// The headless device, made once per test process and shared by the
/// tests (a wgpu device is safe to share between threads): `None` (skip)
/// only when `POSESCOPE_SKIP_GPU=1`. One device per test meant lavapipe
/// devices created and destroyed on several threads at once, and a CI run
/// died of a SIGSEGV inside the driver doing that.
fn gpu() -> Option<Gpu> {
    static SHARED: OnceLock<Result<Gpu, String>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| {
        let g = headless_device().map_err(|e| e.to_string())?;
        eprintln!(
            "adapter: {} ({:?}, {:?}), FLOAT32_BLENDABLE: {}",
            g.2.name,
            g.2.backend,
            g.2.device_type,
            g.0.features().contains(wgpu::Features::FLOAT32_BLENDABLE)
        );
        Ok(g)
    });
    match shared {
        Ok(g) => Some(g.clone()),
        Err(e) if std::env::var("POSESCOPE_SKIP_GPU").as_deref() == Ok("1") => {
            eprintln!("SKIPPED: no GPU adapter ({e}); POSESCOPE_SKIP_GPU=1 is set");
            None
        }
        Err(e) => panic!(
            "no GPU adapter for the GPU render tests: {e}. Install a Vulkan driver \
             (mesa-vulkan-drivers provides the lavapipe software rasteriser) or set \
             POSESCOPE_SKIP_GPU=1 to skip these tests."
        ),
    }
}

fn torus() -> Model {
    let spec = TorusSpec {
        major_radius: 20.0,
        tube_radius: 5.0,
        units: Units::Px,
    };
    let mut m = Model::torus(spec, 2000, 7).unwrap();
    m.weights = vec![3.0; m.len()];
    m
}

fn grey() -> Composite {
    Composite {
        mode: CompositeMode::Model,
        lut: Composite::grey_lut(),
        raw_contrast: (0.0, 1.0),
        model_contrast: (0.0, 1.0),
        residual_ab: (1.0, 0.0),
        residual_limit: 1.0,
    }
}

struct Pose {
    q: Quat,
    shift: [f64; 2],
    sigma: f32,
    scale: f32,
    width: usize,
    height: usize,
}

fn poses() -> Vec<Pose> {
    let mut out = Vec::new();
    for &(width, height) in &[(128, 128), (96, 64)] {
        out.push(Pose {
            q: Quat::from_euler_zyz_deg(0.0, 0.0, 0.0),
            shift: [0.0, 0.0],
            sigma: 1.2,
            scale: 1.0,
            width,
            height,
        });
        out.push(Pose {
            q: Quat::from_euler_zyz_deg(30.0, 55.0, -20.0),
            shift: [3.7, -2.25],
            sigma: 1.2,
            scale: 1.3,
            width,
            height,
        });
        out.push(Pose {
            q: Quat::from_euler_zyz_deg(-110.0, 80.0, 45.0),
            shift: [-5.3, 4.1],
            sigma: 2.5,
            scale: 1.0,
            width,
            height,
        });
        // partly outside the frame
        out.push(Pose {
            q: Quat::from_euler_zyz_deg(10.0, 20.0, 0.0),
            shift: [30.0, 25.0],
            sigma: 2.5,
            scale: 1.3,
            width,
            height,
        });
    }
    out
}

fn scene<'a>(m: &'a Model, p: &Pose) -> SplatScene<'a> {
    SplatScene {
        points: &m.points,
        weights: &m.weights,
        rot: p.q.to_matrix(),
        shift: p.shift,
        params: SplatParams {
            width: p.width,
            height: p.height,
            sigma: p.sigma,
            scale: p.scale,
        },
    }
}

/// (relative max-abs tolerance, absolute, relative total tolerance)
fn tolerance(format: wgpu::TextureFormat) -> (f32, f32, f64) {
    match format {
        wgpu::TextureFormat::R32Float => (1e-3, 1e-6, 1e-4),
        _ => (5e-2, 1e-3, 5e-2),
    }
}

/// `cut_loss`: the fraction of each Gaussian's mass outside its quad, which
/// the total may additionally lack (0 at the CPU's own 6 σ cut).
fn check_agreement(g: &Gpu, renderer: &mut GpuRenderer, cut_loss: f64) {
    let (device, queue, _) = g;
    let m = torus();
    let format = renderer.accumulation_format();
    let (rel, abs, rel_total) = tolerance(format);
    let rel_total = rel_total + cut_loss;
    let mut worst = 0.0f32;
    for p in poses() {
        let s = scene(&m, &p);
        let cpu = render_frame(s.points, s.weights, &s.rot, s.shift, &s.params).unwrap();
        renderer.render(device, queue, &s, &grey()).unwrap();
        assert_eq!(renderer.display_size(), (p.width as u32, p.height as u32));
        let gpu = renderer.read_accumulation(device, queue).unwrap();
        assert_eq!(gpu.len(), cpu.len());
        let peak = cpu.iter().fold(0.0f32, |a, &b| a.max(b));
        assert!(peak > 0.0);
        let (i, diff) = gpu
            .iter()
            .zip(&cpu)
            .map(|(a, b)| (a - b).abs())
            .enumerate()
            .fold(
                (0, 0.0f32),
                |acc, (i, d)| if d > acc.1 { (i, d) } else { acc },
            );
        let tol = rel * peak + abs;
        let total_cpu: f64 = cpu.iter().map(|&x| f64::from(x)).sum();
        let total_gpu: f64 = gpu.iter().map(|&x| f64::from(x)).sum();
        eprintln!(
            "{format:?} {}×{} σ {} s {}: max|gpu−cpu| = {diff:.3e} ({:.2e} of peak {peak:.4}), \
             totals cpu {total_cpu:.3} gpu {total_gpu:.3}",
            p.width,
            p.height,
            p.sigma,
            p.scale,
            diff / peak
        );
        assert!(
            diff <= tol,
            "{format:?}: pixel {i} (row {}, col {}) gpu {} cpu {}, |diff| {diff} > tolerance {tol}",
            i / p.width,
            i % p.width,
            gpu[i],
            cpu[i]
        );
        assert!(
            (total_gpu - total_cpu).abs() <= rel_total * total_cpu,
            "{format:?}: totals gpu {total_gpu} cpu {total_cpu}"
        );
        worst = worst.max(diff / peak);
    }
    eprintln!("{format:?}: worst max|gpu−cpu|/peak = {worst:.3e}");
}

#[test]
fn gpu_matches_cpu() {
    let Some(g) = gpu() else { return };
    let mut renderer = GpuRenderer::new(&g.0);
    eprintln!("default accumulation: {:?}", renderer.accumulation_format());
    check_agreement(&g, &mut renderer, 0.0);
}

/// The viewer's cut (radius 4 σ): each point loses at most e^-8 ≈ 3.4e-4 of
/// its own peak at the splat's edge, so the same 1e-3·peak bound holds; a
/// disc of 4 σ holds e^-8 = 3.4e-4 less of each point's mass than the
/// CPU's 6 σ square, which the totals may lack in addition.
#[test]
fn gpu_matches_cpu_at_display_cut() {
    let Some(g) = gpu() else { return };
    let mut renderer = GpuRenderer::new(&g.0);
    renderer.set_cut_sigmas(posescope::render::gpu::DISPLAY_CUT_SIGMAS);
    assert_eq!(renderer.cut_sigmas(), 4.0);
    check_agreement(&g, &mut renderer, 3.4e-4);
    // out-of-range cuts are clamped, not trusted
    renderer.set_cut_sigmas(0.5);
    assert_eq!(renderer.cut_sigmas(), 3.0);
    renderer.set_cut_sigmas(f32::NAN);
    assert_eq!(renderer.cut_sigmas(), posescope::render::gpu::CUT_SIGMAS);
}

#[test]
fn gpu_matches_cpu_f16_fallback() {
    let Some(g) = gpu() else { return };
    let mut renderer =
        GpuRenderer::with_accumulation_format(&g.0, wgpu::TextureFormat::Rgba16Float).unwrap();
    check_agreement(&g, &mut renderer, 0.0);
}

#[test]
fn generation_tracks_size() {
    let Some((device, queue, _)) = gpu() else {
        return;
    };
    let m = torus();
    let mut renderer = GpuRenderer::new(&device);
    assert_eq!(renderer.display_size(), (0, 0));
    assert!(renderer.display_view().is_none());
    let mut p = poses().remove(0);
    renderer
        .render(&device, &queue, &scene(&m, &p), &grey())
        .unwrap();
    let g1 = renderer.generation();
    renderer
        .render(&device, &queue, &scene(&m, &p), &grey())
        .unwrap();
    assert_eq!(renderer.generation(), g1);
    p.width = 50;
    renderer
        .render(&device, &queue, &scene(&m, &p), &grey())
        .unwrap();
    assert_eq!(renderer.generation(), g1 + 1);
    assert_eq!(renderer.display_size(), (50, 128));
    assert!(renderer.display_view().is_some());
    // empty model: all zero
    let empty = SplatScene {
        points: &[],
        weights: &[],
        ..scene(&m, &p)
    };
    renderer.render(&device, &queue, &empty, &grey()).unwrap();
    assert!(renderer
        .read_accumulation(&device, &queue)
        .unwrap()
        .iter()
        .all(|&x| x == 0.0));
}

#[test]
fn composite_model_grey_lut() {
    let Some((device, queue, _)) = gpu() else {
        return;
    };
    let m = torus();
    let mut renderer = GpuRenderer::new(&device);
    let p = &poses()[1];
    let s = scene(&m, p);
    let cpu = render_frame(s.points, s.weights, &s.rot, s.shift, &s.params).unwrap();
    let peak = cpu.iter().fold(0.0f32, |a, &b| a.max(b));
    let comp = Composite {
        model_contrast: (0.0, peak),
        ..grey()
    };
    renderer.render(&device, &queue, &s, &comp).unwrap();
    let rgba = renderer.read_display(&device, &queue).unwrap();
    assert_eq!(rgba.len(), 4 * p.width * p.height);
    let slack = match renderer.accumulation_format() {
        wgpu::TextureFormat::R32Float => 1,
        _ => 3,
    };
    let argmax = cpu
        .iter()
        .enumerate()
        .fold(0, |best, (i, &x)| if x > cpu[best] { i } else { best });
    // the peak, an empty corner and a pixel on the flank of the ring
    let flank = cpu
        .iter()
        .position(|&x| x > 0.3 * peak && x < 0.6 * peak)
        .unwrap();
    for i in [argmax, 0, flank] {
        let want = (cpu[i] / peak * 255.0).round() as i32;
        let px = &rgba[4 * i..4 * i + 4];
        assert_eq!(px[0], px[1]);
        assert_eq!(px[1], px[2]);
        assert_eq!(px[3], 255);
        assert!(
            (i32::from(px[0]) - want).abs() <= slack,
            "pixel {i}: byte {} want {want}",
            px[0]
        );
    }
    // the peak takes the top of the LUT (within the f16 fallback's rounding)
    assert!(
        255 - i32::from(rgba[4 * argmax]) < slack,
        "peak byte {}",
        rgba[4 * argmax]
    );
    assert_eq!(rgba[0], 0);
    // every pixel, against the CPU image
    for (i, px) in rgba.chunks_exact(4).enumerate() {
        let want = (cpu[i] / peak * 255.0).round() as i32;
        assert!((i32::from(px[0]) - want).abs() <= slack, "pixel {i}");
    }
}

#[test]
fn composite_raw_overlay_residual() {
    let Some((device, queue, _)) = gpu() else {
        return;
    };
    let m = torus();
    let mut renderer = GpuRenderer::new(&device);
    let p = &poses()[5]; // 96×64
    let (w, h) = (p.width, p.height);
    let s = scene(&m, p);
    let raw: Vec<f32> = (0..w * h).map(|i| (i % 256) as f32).collect();
    renderer.set_raw(&device, &queue, &raw, w, h).unwrap();

    // Raw: byte = value exactly
    let comp = Composite {
        mode: CompositeMode::Raw,
        raw_contrast: (0.0, 255.0),
        ..grey()
    };
    renderer.render(&device, &queue, &s, &comp).unwrap();
    let rgba = renderer.read_display(&device, &queue).unwrap();
    for (i, px) in rgba.chunks_exact(4).enumerate() {
        assert_eq!(
            px,
            [(i % 256) as u8, (i % 256) as u8, (i % 256) as u8, 255],
            "pixel {i}"
        );
    }

    // Overlay: raw in R and B, model in G
    let model = renderer.read_accumulation(&device, &queue).unwrap();
    let peak = model.iter().fold(0.0f32, |a, &b| a.max(b));
    let comp = Composite {
        mode: CompositeMode::Overlay,
        raw_contrast: (0.0, 255.0),
        model_contrast: (0.0, peak),
        ..grey()
    };
    renderer.render(&device, &queue, &s, &comp).unwrap();
    let rgba = renderer.read_display(&device, &queue).unwrap();
    for (i, px) in rgba.chunks_exact(4).enumerate() {
        let g = (model[i] / peak * 255.0).round() as i32;
        assert_eq!(px[0], (i % 256) as u8, "pixel {i}");
        assert_eq!(px[2], (i % 256) as u8, "pixel {i}");
        assert!(
            (i32::from(px[1]) - g).abs() <= 1,
            "pixel {i}: {} vs {g}",
            px[1]
        );
        assert_eq!(px[3], 255);
    }

    // Residual of the model against itself, offset by b = −0.3·limit:
    // t = 0.5 + 0.5·0.3 = 0.65 → entry round(165.75) = 166 everywhere.
    renderer.set_raw(&device, &queue, &model, w, h).unwrap();
    let limit = 2.0;
    let comp = Composite {
        mode: CompositeMode::Residual,
        residual_ab: (1.0, -0.3 * limit),
        residual_limit: limit,
        ..grey()
    };
    renderer.render(&device, &queue, &s, &comp).unwrap();
    let rgba = renderer.read_display(&device, &queue).unwrap();
    for (i, px) in rgba.chunks_exact(4).enumerate() {
        assert_eq!(px, [166, 166, 166, 255], "pixel {i}");
    }

    // A smaller raw frame reads as 0 outside its extent.
    let small = vec![255.0f32; 10 * 5];
    renderer.set_raw(&device, &queue, &small, 10, 5).unwrap();
    let comp = Composite {
        mode: CompositeMode::Raw,
        raw_contrast: (0.0, 255.0),
        ..grey()
    };
    renderer.render(&device, &queue, &s, &comp).unwrap();
    let rgba = renderer.read_display(&device, &queue).unwrap();
    for r in 0..h {
        for c in 0..w {
            let want = if r < 5 && c < 10 { 255 } else { 0 };
            assert_eq!(rgba[4 * (r * w + c)], want, "row {r} col {c}");
        }
    }
}

#[test]
fn invalid_input_is_an_error() {
    let Some((device, queue, _)) = gpu() else {
        return;
    };
    let m = torus();
    let mut renderer = GpuRenderer::new(&device);
    assert!(matches!(
        renderer.read_accumulation(&device, &queue),
        Err(GpuError::Readback(_))
    ));
    assert!(matches!(
        renderer.read_display(&device, &queue),
        Err(GpuError::Readback(_))
    ));
    let p = &poses()[0];
    let good = scene(&m, p);
    let with = |f: &dyn Fn(&mut SplatParams)| {
        let mut s = good;
        f(&mut s.params);
        s
    };
    let bad = [
        with(&|p| p.sigma = f32::NAN),
        with(&|p| p.sigma = 0.0),
        with(&|p| p.sigma = f32::INFINITY),
        with(&|p| p.width = 0),
        with(&|p| p.height = 0),
        with(&|p| p.width = 8193),
        with(&|p| p.scale = f32::NAN),
        SplatScene {
            weights: &m.weights[1..],
            ..good
        },
        SplatScene {
            shift: [f64::NAN, 0.0],
            ..good
        },
    ];
    for s in &bad {
        let r = renderer.render(&device, &queue, s, &grey());
        assert!(matches!(r, Err(GpuError::Invalid(_))), "{:?}", s.params);
    }
    let nan_point = [[0.0, f32::NAN, 0.0]];
    let s = SplatScene {
        points: &nan_point,
        weights: &[1.0],
        ..good
    };
    assert!(renderer.render(&device, &queue, &s, &grey()).is_err());
    // nothing was created by the failed calls
    assert_eq!(renderer.display_size(), (0, 0));
    assert!(renderer.set_raw(&device, &queue, &[0.0; 5], 2, 2).is_err());
    assert!(renderer.set_raw(&device, &queue, &[], 0, 0).is_err());
    // and the renderer still works afterwards
    renderer.render(&device, &queue, &good, &grey()).unwrap();
    assert_eq!(renderer.display_size(), (128, 128));
}

/// `n` localisations in a `side_nm` square from `origin`, precisions 5–15 nm
/// (seeded), plus a few non-finite rows the GPU upload must skip.
fn locs(n: usize, origin: [f32; 2], side_nm: f32, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut x: Vec<f32> = (0..n)
        .map(|_| origin[0] + rng.random::<f32>() * side_nm)
        .collect();
    let y: Vec<f32> = (0..n)
        .map(|_| origin[1] + rng.random::<f32>() * side_nm)
        .collect();
    let p: Vec<f32> = (0..n).map(|_| 5.0 + 10.0 * rng.random::<f32>()).collect();
    x[3] = f32::NAN;
    (x, y, p)
}

#[test]
fn gpu_localisation_renders_agree_with_the_cpu_reference() {
    use posescope::render::gpu::GpuLocRenderer;
    use posescope::render::locs::{render_locs, LocMode, LocView};
    let Some((device, queue, _)) = gpu() else {
        return;
    };
    let mut r = GpuLocRenderer::new(&device);
    let f32_target = r.accumulation_format() == wgpu::TextureFormat::R32Float;
    let (peak_tol, total_tol) = if f32_target {
        (1e-3, 1e-4)
    } else {
        (5e-2, 5e-2)
    };
    // a field 80 µm from the origin (f32 nm keep 0.008 nm there), and a
    // view that cuts localisations at its edges
    let (x, y, p) = locs(20_000, [80_000.0, 40_000.0], 3000.0, 7);
    let uploaded = r.set_locs(&device, &queue, &x, &y, Some(&p));
    assert_eq!(uploaded, x.len() - 1, "the NaN row is left out");
    for (view, min_blur) in [
        (
            LocView {
                origin_nm: [80_100.0, 40_050.0],
                pixel_nm: 10.0,
                width: 256,
                height: 200,
            },
            10.0,
        ),
        // zoomed in: σ of several pixels
        (
            LocView {
                origin_nm: [81_000.0, 41_000.0],
                pixel_nm: 2.5,
                width: 300,
                height: 300,
            },
            5.0,
        ),
        // σ 0 everywhere: one count per localisation (histogram)
        (
            LocView {
                origin_nm: [80_000.0, 40_000.0],
                pixel_nm: 50.0,
                width: 60,
                height: 60,
            },
            0.0,
        ),
    ] {
        let gpu_img = r.render(&device, &queue, &view, min_blur).unwrap();
        let cpu_img = if min_blur > 0.0 {
            render_locs(
                &x,
                &y,
                Some(&p),
                &view,
                LocMode::Blur {
                    min_blur_nm: min_blur,
                },
            )
        } else {
            render_locs(&x, &y, None, &view, LocMode::Histogram)
        };
        if min_blur == 0.0 {
            // the GPU took the histogram path only where σ is 0: redo with no precisions
            r.set_locs(&device, &queue, &x, &y, None);
            let g = r.render(&device, &queue, &view, 0.0).unwrap();
            assert_eq!(g, cpu_img, "histogram counts differ");
            let total: f32 = g.iter().sum();
            assert_eq!(total, (x.len() - 1) as f32, "every finite row counted once");
            continue;
        }
        assert_eq!(gpu_img.len(), cpu_img.len());
        let peak = cpu_img.iter().copied().fold(0.0, f32::max);
        let worst = gpu_img
            .iter()
            .zip(&cpu_img)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            worst <= peak_tol * peak + 1e-6,
            "{view:?}: max |gpu − cpu| {worst} vs peak {peak}"
        );
        let (tg, tc): (f64, f64) = (
            gpu_img.iter().map(|&v| f64::from(v)).sum(),
            cpu_img.iter().map(|&v| f64::from(v)).sum(),
        );
        assert!(
            (tg - tc).abs() <= total_tol * tc,
            "{view:?}: totals {tg} vs {tc}"
        );
        assert!(tc > 100.0, "the view holds localisations: {tc}");
    }
    // bad views are errors, and the renderer still works afterwards
    let bad = LocView {
        origin_nm: [0.0, 0.0],
        pixel_nm: 0.0,
        width: 10,
        height: 10,
    };
    assert!(matches!(
        r.render(&device, &queue, &bad, 1.0),
        Err(GpuError::Invalid(_))
    ));
    let huge = LocView {
        pixel_nm: 1.0,
        width: 100_000,
        ..bad
    };
    assert!(matches!(
        r.render(&device, &queue, &huge, 1.0),
        Err(GpuError::Invalid(_))
    ));
}
