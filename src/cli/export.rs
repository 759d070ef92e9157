//! `posescope export`: an annotated PNG per frame of a stack at the poses
//! of a pose CSV (the viewer's "Export all fitted frames", headless).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

use super::args::{progress, LookArgs, ModelArgs};
use posescope::estimate::pose::results::{state_from_row, FittedState};
use posescope::export::frames::ExportTarget;
use posescope::io::{self, read_pose_csv, PoseRow};

#[derive(Args)]
pub struct ExportArgs {
    /// Image file whose frames are exported.
    file: PathBuf,
    /// Pose CSV, as written by `posescope fit` or the viewer.
    #[arg(long)]
    poses: PathBuf,
    /// Output folder (created when missing); files are named STEM_fNNNN.png.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    look: LookArgs,
}

pub fn run(a: ExportArgs) -> Result<()> {
    let spec = a.model.spec()?;
    let look = a.look.look()?;
    let model = spec.fit_model(1.6).context("model")?;
    let rows = read_pose_csv(&a.poses)?;
    let mut stack = io::open(&a.file)?;
    let n = stack.len();
    let wanted = a.file.display().to_string();
    let file_name = a.file.file_name().map(|f| f.to_os_string());
    // rows of this file: all rows when the CSV has no file column
    let mine: Vec<&PoseRow> = rows
        .iter()
        .filter(|r| match &r.file {
            None => true,
            Some(f) => {
                *f == wanted || Path::new(f).file_name().map(|x| x.to_os_string()) == file_name
            }
        })
        .collect();
    if mine.is_empty() {
        bail!(
            "{}: no rows for {} (the file column names other files)",
            a.poses.display(),
            a.file.display()
        );
    }
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("creating output folder {}", a.out.display()))?;
    let tube = spec.tube_px();
    let mut skipped = 0usize;
    let mut states = Vec::new();
    for row in mine {
        let Some(state) = state_from_row(row, tube) else {
            skipped += 1;
            continue;
        };
        if row.frame >= n {
            eprintln!(
                "warning: row for frame {} but the file has {n} frames",
                row.frame
            );
            skipped += 1;
            continue;
        }
        states.push(FittedState {
            index: row.frame,
            state,
            score: row.score.is_finite().then_some(row.score),
            axis_sd_deg: row.get("axis_sd_deg").and_then(|v| v.trim().parse().ok()),
        });
    }
    let model_name = spec.describe();
    let target = ExportTarget {
        dir: &a.out,
        file: &a.file,
        frames: n,
        frame_files: None,
        model: &model,
        model_name: &model_name,
        pixel_size_nm: a.model.pixel_size.or(stack.info().pixel_size_nm),
        look,
    };
    let bar = progress(states.len() as u64, "export");
    let summary = target.write_all(
        states,
        |k| stack.frame(k).map_err(|e| e.to_string()),
        || bar.inc(1),
    );
    bar.finish_and_clear();
    if let Some(e) = summary.errors.first() {
        bail!(
            "{}: {} of {} frames could not be exported; the first: {e}",
            a.file.display(),
            summary.errors.len(),
            summary.errors.len() + summary.written
        );
    }
    println!(
        "wrote {} annotated PNGs ({skipped} rows skipped: failed fits or missing frames) → {}",
        summary.written,
        a.out.display()
    );
    Ok(())
}
