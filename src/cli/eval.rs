//! `posescope eval`: symmetry-aware errors of predicted poses against the truth.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use posescope::estimate::learn::compare::structure_report;
use posescope::estimate::pose::eval::{evaluate, EvalReport};
use posescope::geometry::Symmetry;
use posescope::io::read_pose_csv;
use posescope::io::PoseRow;
use posescope::shapes::Model;

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
    /// A learned structure (`posescope learn --out`): also compare it with
    /// --truth-model (Chamfer distance after the best alignment, and the
    /// pose errors after the same alignment).
    #[arg(long, requires = "truth_model")]
    model: Option<PathBuf>,
    /// The known model the data were made from (pixels).
    #[arg(long, requires = "model")]
    truth_model: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: EvalArgs) -> Result<()> {
    let truth = read_pose_csv(&a.truth)?;
    let pred = read_pose_csv(&a.pred)?;
    if let (Some(model), Some(known)) = (&a.model, &a.truth_model) {
        return structure(&a, model, known, &truth, &pred);
    }
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
    print_errors(&r);
    if r.matched == 0 {
        bail!("no prediction matches a truth row (compare the frame and file columns)");
    }
    Ok(())
}

fn print_errors(r: &EvalReport) {
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
    if let (Some(f), Some(a)) = (r.floor, r.axis_error) {
        println!(
            "3D floor      median {:.3}°  p90 {:.3}°  (axis error: {:.2}× the floor at the median, {:.2}× at p90)",
            f.median,
            f.p90,
            a.median / f.median,
            a.p90 / f.p90
        );
    }
}

/// `eval --model learned.ply --truth-model known.ply`.
fn structure(
    a: &EvalArgs,
    model: &std::path::Path,
    known: &std::path::Path,
    truth: &[PoseRow],
    pred: &[PoseRow],
) -> Result<()> {
    let learned = Model::load(model)?;
    let known = Model::load(known)?;
    if learned.units != known.units {
        bail!(
            "{} is in {} and {} in {}: compare models in the same units",
            model.display(),
            learned.units,
            a.truth_model.as_deref().unwrap_or(model).display(),
            known.units
        );
    }
    let r = structure_report(&learned, &known, truth, pred, &a.symmetry);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "structure     Chamfer {:.3} px after the best alignment{}",
        r.chamfer_px,
        if r.mirrored { " (mirrored)" } else { "" }
    );
    println!(
        "ring radius   {:.3} px (weighted mean distance from model z)",
        r.ring_radius_px
    );
    println!("symmetry      {}", r.poses.symmetry);
    println!(
        "frames        {} truth, {} matched, {} missing, {} failed",
        r.poses.truth_rows, r.poses.matched, r.poses.missing, r.poses.failed
    );
    print_errors(&r.poses);
    if r.poses.matched == 0 {
        bail!("no prediction matches a truth row (compare the frame and file columns)");
    }
    Ok(())
}
