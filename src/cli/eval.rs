//! `posescope eval`: symmetry-aware errors of predicted poses against the truth.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use posescope::estimate::pose::eval::evaluate;
use posescope::geometry::Symmetry;
use posescope::io::read_pose_csv;

#[derive(Args)]
pub struct EvalArgs {
    /// Truth pose CSV (e.g. from `posescope synth`).
    #[arg(long)]
    truth: PathBuf,
    /// Predicted pose CSV (e.g. from `posescope fit`).
    #[arg(long)]
    pred: PathBuf,
    /// Symmetry of the model: torus (D∞ + mirror), c8, d8+m, c1, …
    #[arg(long, default_value = "torus")]
    symmetry: Symmetry,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: EvalArgs) -> Result<()> {
    let truth = read_pose_csv(&a.truth)?;
    let pred = read_pose_csv(&a.pred)?;
    let r = evaluate(&truth, &pred, &a.symmetry);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("symmetry      {}", r.symmetry);
    println!(
        "frames        {} truth, {} matched, {} missing, {} failed",
        r.truth_rows, r.matched, r.missing, r.failed
    );
    if let Some(s) = r.axis_error {
        println!(
            "axis error    median {:.3}°  p90 {:.3}°  mean {:.3}°  max {:.3}°",
            s.median, s.p90, s.mean, s.max
        );
    }
    if let Some(s) = r.rotation_error {
        println!(
            "rotation err  median {:.3}°  p90 {:.3}°  mean {:.3}°  max {:.3}°",
            s.median, s.p90, s.mean, s.max
        );
    }
    if r.matched == 0 {
        bail!("no prediction matches a truth row (compare the frame and file columns)");
    }
    Ok(())
}
