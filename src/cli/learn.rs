//! `posescope learn`: the 3D structure and every frame's pose from many
//! single-particle frames, with no model given (the library's
//! [`Learner`], which the viewer's Learn panel runs too).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use clap::Args;

use super::args::{parse_floats, progress};
use posescope::estimate::learn::compare::ring_radius;
use posescope::estimate::learn::input::{read_frames, table_frames};
use posescope::estimate::learn::{InitShape, LearnConfig, LearnState, Learner, Phase};
use posescope::geometry::Symmetry;
use posescope::io::locs::is_table;
use posescope::io::write_pose_csv;

#[derive(Args)]
pub struct LearnArgs {
    /// Image files or folders of single-particle frames (every frame of
    /// each), or one localisation table (its picked particles).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// For a table: the picks CSV (`posescope pick`); default: the table's
    /// groups (Picasso's picked files), else picked automatically.
    #[arg(long)]
    picks: Option<PathBuf>,
    /// For a table: the particle's size as a torus R,r in nm (for picking and
    /// the particle frames' pixel size, R/20 nm).
    #[arg(long, default_value = "180,40")]
    particle_nm: String,
    /// The learned point cloud (PLY: x, y, z, weight, in pixels).
    #[arg(long)]
    out: PathBuf,
    /// Every frame's pose in the learned cloud's frame (pose CSV).
    #[arg(long)]
    poses: PathBuf,
    /// Starting structure: auto (a sphere; with a cN/dN prior, a ring about
    /// its axis), sphere, ring, blob, or a model file in pixels.
    #[arg(long, default_value = "auto")]
    init: InitShape,
    /// Points in the cloud.
    #[arg(long, default_value_t = 800)]
    points: usize,
    /// Symmetry prior about model z: c1 (none), cN or dN.
    #[arg(long, default_value = "c1")]
    symmetry: Symmetry,
    /// Iterations (pose assignment + structure update each).
    #[arg(long, default_value_t = 16)]
    iterations: usize,
    /// Seed of the starting cloud (a run is deterministic for a seed).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// PSF sigma of the frames, pixels.
    #[arg(long, default_value_t = 1.6)]
    sigma: f64,
    /// Rotations in the template search of each iteration.
    #[arg(long, default_value_t = 4000)]
    search: usize,
    /// Structure (Adam) steps per iteration.
    #[arg(long, default_value_t = 30)]
    steps: usize,
    /// Checkpoint written after every iteration (default: OUT with .ckpt.json).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Continue from the checkpoint instead of starting over (same files).
    #[arg(long)]
    resume: bool,
}

pub fn run(a: LearnArgs) -> Result<()> {
    let t0 = std::time::Instant::now();
    let checkpoint = a
        .checkpoint
        .clone()
        .unwrap_or_else(|| a.out.with_extension("ckpt.json"));
    let (frames, warnings) = match a.files.as_slice() {
        [table] if is_table(table) && table.is_file() => {
            let size = parse_floats::<2>(&a.particle_nm, "--particle-nm")?;
            let t = table_frames(table, a.picks.as_deref(), size)?;
            eprintln!(
                "{}: {} picked particles, rendered at {:.2} nm per pixel (the learned cloud is in these pixels)",
                table.display(),
                t.frames.len(),
                t.pixel_nm
            );
            (t.frames, t.warnings)
        }
        _ => read_frames(&a.files)?,
    };
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let mut learner = if a.resume {
        let state = LearnState::load(&checkpoint).context("--resume")?;
        eprintln!(
            "resuming at iteration {} of {} from {}",
            state.iteration,
            state.config.iterations,
            checkpoint.display()
        );
        Learner::resume(frames, state)?
    } else {
        let config = LearnConfig {
            init: a.init.clone(),
            points: a.points,
            symmetry: a.symmetry,
            iterations: a.iterations,
            seed: a.seed,
            sigma: a.sigma,
            search: a.search,
            steps: a.steps,
            ..LearnConfig::default()
        };
        Learner::new(frames, config)?
    };
    let (used, skipped) = learner.frames();
    for (id, why) in skipped {
        eprintln!("warning: frame {} skipped: {why}", id.frame);
    }
    let (radius, side) = learner.geometry();
    eprintln!(
        "learning from {used} frames: particle radius ≈ {radius:.1} px, crops {side}×{side} px, {} points",
        learner.current_cloud().0.len()
    );
    let cfg = learner.state().config.clone();
    let per_iteration = cfg.steps as u64 + 1;
    let bar = progress(cfg.iterations as u64 * per_iteration, "learn");
    bar.set_position(learner.state().iteration as u64 * per_iteration);
    let cancel = AtomicBool::new(false);
    let mut last_loss = learner.state().history.last().map_or(f64::NAN, |h| h.loss);
    learner.run(
        Some(&checkpoint),
        &cancel,
        &mut |phase| match phase {
            Phase::Poses => bar.set_message("learn: poses"),
            Phase::Structure { loss, .. } => {
                bar.set_message(format!("learn: loss {loss:.4}"));
                bar.inc(1);
            }
        },
        &mut |l, stats| {
            last_loss = stats.loss;
            bar.set_position(l.state().iteration as u64 * per_iteration);
            bar.suspend(|| {
                eprintln!(
                    "iteration {:>3}/{}: loss {:.4}, median NCC {:.3}, blur {:.1} px, {:.1} s",
                    l.state().iteration,
                    cfg.iterations,
                    stats.loss,
                    stats.median_ncc,
                    stats.blur,
                    stats.seconds
                )
            });
        },
    )?;
    bar.finish_and_clear();
    let learned = learner.result()?;
    learned
        .model
        .save_ply(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    write_pose_csv(&a.poses, &learned.poses)?;
    let m = &learned.model;
    println!(
        "learned {} points from {used} frames in {:.1} s (loss {last_loss:.4}; ring radius about z {:.2} px)",
        m.len(),
        t0.elapsed().as_secs_f64(),
        ring_radius(&m.points, &m.weights)
    );
    println!("  model       {}", a.out.display());
    println!("  poses       {}", a.poses.display());
    println!("  checkpoint  {}", checkpoint.display());
    Ok(())
}
