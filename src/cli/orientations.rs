//! `posescope orientations`: how the fitted particles of pose CSVs are
//! oriented as a whole — the tilt histogram against random orientation and
//! whether the sample is isotropic (the viewer's Results → Orientations);
//! rows fitted with a 3D table's z (`z_locs` > 0) also say which way their
//! axes tilt.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use posescope::estimate::pose::orientations::{InPlane, TiltSummary, ViewAxis};
use posescope::export::annotate::write_png;
use posescope::export::orientations::orientation_figure;
use posescope::io::{read_pose_csv, PoseRow};

#[derive(Args)]
pub struct OrientationsArgs {
    /// Pose CSVs (from `posescope fit` or the viewer's Save CSV); failed rows are left out.
    #[arg(required = true, value_name = "POSES")]
    poses: Vec<PathBuf>,
    /// Tilt bins over 0–90°.
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(u32).range(1..=90))]
    bins: u32,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the figure (axes on an equal-area disc, tilt histogram) as a PNG.
    #[arg(long, value_name = "FILE")]
    png: Option<PathBuf>,
}

pub fn run(a: OrientationsArgs) -> Result<()> {
    let (mut axes, mut failed) = (Vec::new(), 0usize);
    for path in &a.poses {
        let rows = read_pose_csv(path).with_context(|| format!("reading {}", path.display()))?;
        for r in rows {
            if r.pose.q.is_finite() {
                axes.push(view_axis(&r));
            } else {
                failed += 1;
            }
        }
    }
    let Some(s) = TiltSummary::of_axes(&axes, a.bins as usize) else {
        bail!(
            "no fitted pose in {} ({failed} failed rows)",
            a.poses
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let in_plane = InPlane::new(&axes);
    if let Some(png) = &a.png {
        write_png(png, &orientation_figure(&axes, &s)?)
            .with_context(|| format!("writing {}", png.display()))?;
        eprintln!("figure → {}", png.display());
    }
    if a.json {
        #[derive(serde::Serialize)]
        struct Report<'a> {
            #[serde(flatten)]
            tilts: &'a TiltSummary,
            in_plane: Option<InPlane>,
        }
        let report = Report {
            tilts: &s,
            in_plane,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    if failed > 0 {
        println!("{failed} failed rows left out");
    }
    println!("tilt from the optical axis (0° face-on, 90° edge-on); 'random' is the count expected of randomly oriented particles");
    let most = s.bins.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    for b in &s.bins {
        let bar = "█".repeat((b.count * 40).div_ceil(most));
        let range = format!("{:.0}–{:.0}°", b.lo_deg, b.hi_deg);
        println!(
            "  {range:>7} {:>6}  random {:>7.1}  {bar}",
            b.count, b.isotropic
        );
    }
    println!("{}", s.verdict());
    for line in in_plane.iter().flat_map(InPlane::verdicts) {
        println!("{line}");
    }
    Ok(())
}

/// The view axis of a fitted row: directed where its `z_locs` column says
/// the localisations' z entered the fit.
fn view_axis(r: &PoseRow) -> ViewAxis {
    let with_z = r
        .get("z_locs")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|n| n > 0);
    ViewAxis::of_fit(r.pose.q, with_z)
}

/// The one-line verdict `fit` prints after its rows: how the fitted
/// frames or particles are oriented (nothing for fewer than two).
pub fn print_verdict(rows: &[PoseRow]) {
    let axes: Vec<ViewAxis> = rows
        .iter()
        .filter(|r| r.pose.q.is_finite())
        .map(view_axis)
        .collect();
    if let Some(s) = TiltSummary::of_axes(&axes, 9).filter(|s| s.n >= 2) {
        println!("orientations: {}", s.verdict());
    }
    for line in InPlane::new(&axes).iter().flat_map(InPlane::verdicts) {
        println!("orientations: {line}");
    }
}
