//! Fitting benchmarks on thin-torus frames (R 20 px, r 5 px, PSF σ 1.6 px,
//! Poisson + read noise, 128×128).
//!
//! Run with `cargo bench --bench fit`. Results are recorded in docs/PERFORMANCE.md.

use posescope::estimate::pose::estimator::Estimator;
use posescope::estimate::pose::fit::{fit_frame, start_from_estimate, FitOptions};
use posescope::estimate::pose::refine::{refine, RefineConfig};
use posescope::geometry::{Pose, Quat};
use posescope::render::scene::{FitModel, FitState};
use posescope::synth::{generate_frame, SynthConfig, SynthFrame};
use rayon::prelude::*;

fn main() {
    divan::main();
}

const FRAMES: usize = 32;

fn thin_torus() -> Vec<SynthFrame> {
    let cfg = SynthConfig::thin_torus(FRAMES, 4242);
    (0..FRAMES)
        .map(|i| generate_frame(&cfg, i).unwrap())
        .collect()
}

/// A start about 5° and 1 px away from the truth, as a network would give.
fn near_start(f: &SynthFrame) -> FitState {
    let q = Quat::from_axis_angle([0.6, 0.8, 0.0], 5f64.to_radians()) * f.truth.pose.q;
    FitState {
        pose: Pose::new(
            q,
            [f.truth.pose.shift[0] + 1.0, f.truth.pose.shift[1] - 0.8],
        ),
        scale: 1.05,
        sigma: 1.8,
        shape: 5.5,
    }
}

/// One refinement on one thread, from a start near the truth.
#[divan::bench]
fn refine_one(bencher: divan::Bencher) {
    let frames = thin_torus();
    let model = FitModel::torus(20.0, 5.0, 1.6);
    let run = |f: &SynthFrame| {
        refine(
            &f.image.data,
            128,
            128,
            &model,
            &near_start(f),
            &RefineConfig::default(),
        )
        .unwrap()
    };
    let its: usize = frames.iter().map(|f| run(f).iterations).sum();
    eprintln!(
        "refine_one: {} points, {:.1} iterations on average",
        model.base.len(),
        its as f64 / FRAMES as f64
    );
    let mut i = 0;
    bencher.bench_local(|| {
        let f = &frames[i % FRAMES];
        i += 1;
        run(f)
    });
}

/// The whole fit of 32 frames on all cores: network (batch) + refinement.
/// Divide by 32 for the time per frame. Skipped without the bundled model.
#[divan::bench(sample_count = 10)]
fn fit_batch_32_with_network(bencher: divan::Bencher) {
    let weights = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/torus.safetensors");
    let Ok(est) = Estimator::load(&weights, &candle_core::Device::Cpu) else {
        eprintln!("no assets/torus.safetensors: skipped");
        return;
    };
    let frames = thin_torus();
    let model = FitModel::torus(20.0, 5.0, 1.6);
    let opts = FitOptions::default();
    bencher.bench_local(|| {
        let input: Vec<&posescope::io::Frame> = frames.iter().map(|f| &f.image).collect();
        let starts = est.estimate(&input).unwrap();
        frames
            .par_iter()
            .zip(starts)
            .map(|(f, e)| {
                let st = start_from_estimate(&e, &model, 20.0);
                fit_frame(&f.image.data, 128, 128, &model, &opts, Some(st))
                    .unwrap()
                    .score
            })
            .sum::<f64>()
    });
}
