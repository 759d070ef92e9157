//! `posescope bench`: this machine's speed — CNN forward and training
//! throughput, one render, one refinement.

use anyhow::Result;
use clap::Args;

use super::args::DeviceArg;
use posescope::estimate::nn::bench::bench_cnn_on;
use posescope::estimate::nn::net::NetConfig;
use posescope::estimate::pose::fit::FitOptions;
use posescope::estimate::pose::pipeline::{device_name, pick_device, Fitter, ModelSpec};
use posescope::estimate::pose::refine::{refine, RefineConfig};
use posescope::estimate::pose::train::OUTPUTS;
use posescope::geometry::{Pose, Quat};
use posescope::render::scene::{FitModel, FitState};
use posescope::render::SplatParams;
use posescope::shapes::{Model, TorusSpec, Units};
use posescope::synth::{self, SynthConfig};

#[derive(Args)]
pub struct BenchArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Timed iterations per CNN measurement.
    #[arg(long, default_value_t = 10)]
    iters: usize,
    /// Where the CNN runs: cpu (the fast path), cuda or metal (needs a build
    /// with that feature), or auto.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceArg,
}

/// Median wall time of `f` over `n` runs, in milliseconds.
fn median_ms(n: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..n.max(1))
        .map(|_| {
            let t0 = std::time::Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

pub fn run(a: BenchArgs) -> Result<()> {
    let cfg = NetConfig {
        outputs: OUTPUTS,
        ..NetConfig::default()
    };
    let dev = pick_device(a.device.into())?;
    let mut cnn = Vec::new();
    for batch in [1usize, 32] {
        let iters = if batch == 1 { a.iters * 8 } else { a.iters };
        cnn.push(bench_cnn_on(&cfg, batch, iters, &dev)?);
    }
    let fit_ms = whole_fit_ms(a.device)?;
    // renderer: 500 points into 128×128, the fast path
    let torus = Model::torus(
        TorusSpec {
            major_radius: 20.0,
            tube_radius: 5.0,
            units: Units::Px,
        },
        500,
        1,
    )?;
    let params = SplatParams::new(128, 128, 1.6);
    let rot = Quat::from_euler_zyz_deg(30.0, 50.0, 0.0).to_matrix();
    let mut scratch = posescope::render::kernel::Scratch::default();
    let mut out = vec![0.0f32; 128 * 128];
    let render_ms = median_ms(200, || {
        posescope::render::cpu::render_frame_into(
            &torus.points,
            &torus.weights,
            &rot,
            [0.0; 2],
            &params,
            &mut scratch,
            &mut out,
        )
        .expect("valid render");
    });
    // refinement of a noisy thin-torus frame from a start 5° away
    let data = SynthConfig::thin_torus(1, 1);
    let frame = synth::generate_frame(&data, 0)?;
    let model = FitModel::torus(20.0, 5.0, 1.6);
    let t = &frame.truth;
    let start = FitState {
        pose: Pose::new(
            Quat::from_axis_angle([0.6, 0.8, 0.0], 5f64.to_radians()) * t.pose.q,
            t.pose.shift,
        ),
        scale: 1.05,
        sigma: 1.8,
        shape: 5.5,
    };
    let refine_ms = median_ms(20, || {
        refine(
            &frame.image.data,
            128,
            128,
            &model,
            &start,
            &RefineConfig::default(),
        )
        .expect("valid frame");
    });
    let report = serde_json::json!({
        "machine": {
            "threads": rayon::current_num_threads(),
            "arch": std::env::consts::ARCH,
        },
        "cnn": cnn,
        "device": device_name(&dev),
        "render_500_points_128px_ms": render_ms,
        "refine_thin_torus_ms": refine_ms,
        "whole_fit_ms_per_frame": fit_ms,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "PoseScope bench ({} threads, CNN on {})",
        rayon::current_num_threads(),
        device_name(&dev)
    );
    for r in &cnn {
        println!(
            "  CNN {}×{} batch {:>2}: forward {:>8.1} img/s, training step {:>8.1} img/s",
            cfg.input_size, cfg.input_size, r.batch, r.forward_img_per_s, r.train_step_img_per_s
        );
    }
    println!("  render 500 points → 128×128: {render_ms:.3} ms");
    println!("  refine one thin-torus frame (one thread): {refine_ms:.2} ms");
    match fit_ms {
        Some(ms) => println!("  whole fit (network + refinement), 64 frames: {ms:.2} ms per frame"),
        None => println!("  whole fit: skipped (no bundled network found)"),
    }
    Ok(())
}

/// Milliseconds per frame of the whole fit (bundled network on `device`,
/// then refinement on all cores) of 64 thin-torus frames in one batch, the
/// median of three runs after a warm-up; `None` without the bundled network.
fn whole_fit_ms(device: DeviceArg) -> Result<Option<f64>> {
    let fitter = Fitter::new(
        &ModelSpec::default(),
        FitOptions::default(),
        None,
        true,
        device.into(),
    )?;
    if fitter.estimator.is_none() {
        return Ok(None);
    }
    let data = SynthConfig::thin_torus(64, 7);
    let frames = (0..64)
        .map(|i| synth::generate_frame(&data, i).map(|f| f.image))
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<_> = frames.iter().collect();
    fitter.fit_batch(&refs)?;
    let ms = median_ms(3, || {
        fitter.fit_batch(&refs).expect("valid frames");
    });
    Ok(Some(ms / frames.len() as f64))
}
